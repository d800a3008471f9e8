/*
 * Per-thread filesystem identity for the posix backend (private to src/fs/).
 *
 * Linux checks file access against the fsuid, fsgid and supplementary groups of the
 * calling thread, and a raw setfsuid/setfsgid/setgroups system call changes them for
 * that thread only (glibc's wrappers of setgroups and friends change every thread).
 * The identity last set is remembered per thread, so a run of requests from one user
 * costs no system call at all.
 *
 * While the fsuid is not 0 the thread lacks the filesystem capabilities, among them
 * CAP_DAC_READ_SEARCH, which open_by_handle_at needs: px_cred_root() gets them back.
 */
#ifndef PEERNFS_FS_POSIX_CRED_H
#define PEERNFS_FS_POSIX_CRED_H

#include "fs/fs.h"

/* Run the thread's file accesses as `cred`. 0, -EINVAL (uid or gid -1) or -EPERM. */
int px_cred_enter(const struct fs_cred *cred);
/* fsuid 0 (filesystem capabilities back); gid and groups are left as they are. */
int px_cred_root(void);

/* Give the thread a umask of its own, 0 (unshare(CLONE_FS)): the modes clients send
 * have had their umask applied already. */
void px_umask_zero(void);
/* Whether the thread's umask is 0; if not (unshare refused), new objects need their
 * mode set explicitly. */
bool px_umask_is_zero(void);

#endif
