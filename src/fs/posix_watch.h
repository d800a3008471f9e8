/*
 * The posix backend's open watcher (private to src/fs/): local processes' opens of files
 * the protocol layer has delegated to NFS clients are held until the delegation is
 * taken back (fs_ops.watch_begin in fs.h is the contract).
 *
 * One fanotify group (FAN_CLASS_CONTENT) for the process, with a FAN_OPEN_PERM mark on
 * each watched inode. Opens by this process are allowed at once (they are the server's
 * own: the fd cache, the lock space); another process's open is held, the protocol
 * layer is asked to recall (fs_watch_cb.held) and the open is answered FAN_ALLOW once
 * nothing is delegated any more, or after PXW_HOLD_MAX_MS. A watch whose file is no
 * longer delegated is dropped by a sweep every PXW_SWEEP_MS.
 *
 * A second group (FAN_CLASS_NOTIF | FAN_REPORT_FID) watches the same inodes for changes
 * that open nothing: chmod/chown/utimes, link, unlink, rename of the file or over it.
 * Those are told after the fact, so another process's change recalls the delegation
 * then (nothing waits for it).
 *
 * Needs CAP_SYS_ADMIN (fanotify permission events); without it pxw_begin answers
 * -EOPNOTSUPP. truncate(2) by path is seen only after the fact (an attribute change).
 */
#ifndef PEERNFS_FS_POSIX_WATCH_H
#define PEERNFS_FS_POSIX_WATCH_H

#include <stddef.h>
#include <sys/stat.h>

#include "fs/fs.h"

#define PXW_MAX_WATCHES 8192u  /* watched inodes at once (each keeps an O_PATH fd) */
#define PXW_MAX_HELD 4096u     /* opens held at once; beyond, opens are allowed */
#define PXW_HOLD_MAX_MS 45000u /* as Linux's default lease-break-time */
#define PXW_POLL_MS 20u        /* re-asking while opens are held */
#define PXW_SWEEP_MS 2000u

/*
 * Watch the inode of `path_fd` (an O_PATH fd of a regular file, whose stat is `st`;
 * the watch takes it over, or closes it when the inode is watched already). `key` names
 * the file to cb. Every success is paired with pxw_end. Errors: -EOPNOTSUPP (no
 * fanotify), -ENOSPC (too many watches), -EBUSY (watched under another key).
 */
int pxw_begin(int path_fd, const struct stat *st, const void *key, size_t keylen,
              const struct fs_watch_cb *cb, struct fs_watch **out);
void pxw_end(struct fs_watch *w);
void pxw_forget(const struct fs_watch_cb *cb);

#endif
