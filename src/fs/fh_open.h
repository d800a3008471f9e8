/*
 * Open a backend object by handle as a NEW file descriptor, for code that must own an
 * open file description of its own (the lock space: one per lock owner and file).
 *
 * Interim home: this belongs in struct fs_ops as `open_fd(ex, fh, flags)`; it lives
 * here, outside fs.h, until that change is made (posix only for now).
 */
#ifndef PEERNFS_FS_FH_OPEN_H
#define PEERNFS_FS_FH_OPEN_H

#include "fs/export.h"
#include "fs/fs.h"

/* flags: O_ACCMODE plus O_* modifiers (O_CLOEXEC is always added). Runs with the
 * process's file capabilities (no caller credential: access is decided by the
 * protocol layer). Returns the fd, -ESTALE (removed or unknown object), -EBADF (bad
 * handle), -EOPNOTSUPP (backend without this hook) or -errno. */
int fs_open_fd(const struct export *ex, const struct fs_fh *fh, int flags);

#endif
