/*
 * Wire filehandles: wrap a backend handle with its export id and a SipHash-2-4 MAC,
 * and check all of it on the way back in (layout in fh.h).
 *
 * The key lives in STATE_DIR/fh.key so that handles stay valid across restarts. It is
 * created once, atomically: written to a private temporary file, made durable, then
 * link(2)ed into place, which fails if another process won the race (then that
 * process's key is used). A key file that exists but is not exactly 16 bytes is an
 * error, never silently replaced: replacing it would make every handle clients hold
 * stale.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/fh.h"
#include "fs/siphash.h"

#define FH_VERSION 1
#define FH_HDR 4
#define FH_MAC 8
#define FH_KEY_FILE "fh.key"

static int fh_key_read(const char *path, struct fh_key *key)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    struct stat st;
    int err = 0;
    if (fstat(fd, &st) < 0)
        err = -errno;
    else if (!S_ISREG(st.st_mode) || st.st_size != (off_t)sizeof(key->k))
        err = -EINVAL; /* not ours, or damaged: refuse rather than invalidate handles */
    else if (pread(fd, key->k, sizeof(key->k), 0) != (ssize_t)sizeof(key->k))
        err = -EIO;
    close(fd);
    return err;
}

static int random_bytes(uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = getrandom(buf, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int err = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return err;
}

/* Write a new random key to a temporary file and link it into place. */
static int fh_key_create(const char *dir, const char *path, struct fh_key *key)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, FH_KEY_FILE) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    int err = random_bytes(key->k, sizeof(key->k));
    if (err)
        return err;
    int fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
    if (fd < 0)
        return -errno;
    if (write(fd, key->k, sizeof(key->k)) != (ssize_t)sizeof(key->k))
        err = errno ? -errno : -EIO;
    else if (fsync(fd) < 0)
        err = -errno;
    close(fd);
    if (!err && link(tmp, path) < 0)
        err = -errno;
    unlink(tmp);
    if (err == -EEXIST) /* another process created it first: use theirs */
        return fh_key_read(path, key);
    if (!err)
        err = fsync_dir(dir);
    return err;
}

int fh_key_load(struct fh_key *key, const char *state_dir)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", state_dir, FH_KEY_FILE) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    int err = fh_key_read(path, key);
    if (err != -ENOENT)
        return err;
    if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
        return -errno;
    return fh_key_create(state_dir, path, key);
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

uint32_t fh_wrap(const struct fh_key *key, uint16_t export_id, const struct fs_fh *bfh,
                 uint8_t out[FH_WIRE_MAX])
{
    if (bfh->len == 0 || bfh->len > FS_FH_MAX)
        return 0;
    uint32_t n = bfh->len;
    out[0] = FH_VERSION;
    out[1] = (uint8_t)n;
    out[2] = (uint8_t)(export_id >> 8);
    out[3] = (uint8_t)export_id;
    memcpy(out + FH_HDR, bfh->data, n);
    put_le64(out + FH_HDR + n, siphash24(key->k, out, FH_HDR + n));
    return FH_HDR + n + FH_MAC;
}

/* Compare without an early exit, so the time taken says nothing about where a forged
 * MAC first differs. */
static bool mac_equal(const uint8_t *a, const uint8_t *b)
{
    uint8_t diff = 0;
    for (int i = 0; i < FH_MAC; i++)
        diff |= a[i] ^ b[i];
    return diff == 0;
}

int fh_unwrap(const struct fh_key *key, const struct export_table *t, const uint8_t *wire,
              uint32_t len, struct export **ex, struct fs_fh *bfh)
{
    if (len < FH_HDR + 1 + FH_MAC || len > FH_WIRE_MAX || wire[0] != FH_VERSION)
        return -EBADMSG;
    uint32_t n = wire[1];
    if (n == 0 || n > FS_FH_MAX || len != FH_HDR + n + FH_MAC)
        return -EBADMSG;
    uint8_t mac[FH_MAC];
    put_le64(mac, siphash24(key->k, wire, FH_HDR + n));
    if (!mac_equal(mac, wire + FH_HDR + n))
        return -EBADMSG;
    struct export *e = export_by_id(t, (uint16_t)(wire[2] << 8 | wire[3]));
    if (!e)
        return -ESTALE;
    bfh->len = (uint8_t)n;
    memcpy(bfh->data, wire + FH_HDR, n);
    *ex = e;
    return 0;
}
