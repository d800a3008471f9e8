/*
 * fs_open_fd for the posix backend: open_by_handle_at relative to the export root.
 * The handle layout (4 bytes handle_type, little endian, then the kernel's handle
 * bytes) is the posix backend's, see posix.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/fh_open.h"
#include "fs/posix_cred.h"

#define FHO_TYPE_BYTES 4

union fho_handle {
    struct file_handle fh;
    char buf[sizeof(struct file_handle) + FS_FH_MAX];
};

int fs_open_fd(const struct export *ex, const struct fs_fh *fh, int flags)
{
    union fho_handle h;

    if (ex->ops != &fs_posix_ops)
        return -EOPNOTSUPP;
    if (fh->len <= FHO_TYPE_BYTES || fh->len > FS_FH_MAX)
        return -EBADF;
    const uint8_t *d = fh->data;
    h.fh.handle_type = (int)((uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24);
    h.fh.handle_bytes = fh->len - FHO_TYPE_BYTES;
    memcpy(h.fh.f_handle, d + FHO_TYPE_BYTES, h.fh.handle_bytes);

    int err = px_cred_root(); /* open_by_handle_at needs CAP_DAC_READ_SEARCH */
    if (err)
        return err;
    int mnt = open(ex->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* not O_PATH: EBADF */
    if (mnt < 0)
        return -errno;
    int fd = open_by_handle_at(mnt, &h.fh, flags | O_CLOEXEC);
    err = fd < 0 ? errno : 0;
    close(mnt);
    if (fd >= 0) {
        struct stat st;
        if (fstat(fd, &st) == 0 && st.st_nlink == 0) {
            close(fd);
            return -ESTALE;
        }
        return fd;
    }
    if (err == ENOENT || err == ESTALE)
        return -ESTALE;
    if (err == EINVAL)
        return -EBADF;
    return -err;
}
