/*
 * The posix backend (src/fs/posix.c) against a temporary directory: every fs_ops
 * operation, handles that survive closing and reopening the export (a restart),
 * readdir cookies that stay valid while entries are deleted, ESTALE after remove,
 * ".." at the export root, permission rules, credentials enforced by the kernel, the
 * fd cache under a tiny limit and under concurrent use, the directory cache (hits equal
 * to uncached listings, changes right after a listing, budgets, concurrent listers).
 *
 * Needs root (open_by_handle_at and switching fsuid); exits 77 (skipped) otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "fs/fs.h"
#include "fs/posix_dircache.h"

static const struct fs_ops *ops = &fs_posix_ops;
static char base[64];
static struct fs_export *ex;
static struct fs_fh rootfh;

static const struct fs_cred root_cred = {0, 0, 0, {0}};
static const struct fs_cred alice = {1000, 1000, 1, {1000}};
static const struct fs_cred bob = {2000, 2000, 0, {0}};
static const struct fs_cred carol = {3000, 3000, 2, {3000, 5000}};

#define S(x) x, strlen(x)

static char *path_of(const char *rel)
{
    static char buf[512];
    snprintf(buf, sizeof(buf), "%s/%s", base, rel);
    return buf;
}

static bool same_fh(const struct fs_fh *a, const struct fs_fh *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static int create(const struct fs_cred *c, const struct fs_fh *dir, const char *name, mode_t mode,
                  struct fs_fh *out)
{
    struct stat st;
    return ops->create(ex, c, dir, S(name), mode, true, out, &st);
}

static int lookup(const struct fs_cred *c, const struct fs_fh *dir, const char *name, struct fs_fh *out,
                  struct stat *st)
{
    struct stat tmp;
    return ops->lookup(ex, c, dir, S(name), out, st ? st : &tmp);
}

static int getattr(const struct fs_fh *fh, struct stat *st)
{
    struct stat tmp;
    return ops->getattr(ex, fh, st ? st : &tmp);
}

/* What READDIRPLUS says about one name of dir: 0 with its handle and attributes,
 * -ENODATA when it is listed without them, -ENOENT when it is not listed. */
struct plus_find {
    const char *name;
    int rc;
    struct fs_fh fh;
    struct stat st;
};

static int plus_find_cb(void *ctx, const struct fs_dirent *de)
{
    struct plus_find *p = ctx;
    if (de->namelen != strlen(p->name) || memcmp(de->name, p->name, de->namelen) != 0)
        return 0;
    p->rc = -ENODATA;
    if (de->fh && de->st) {
        p->rc = 0;
        p->fh = *de->fh;
        p->st = *de->st;
    }
    return 0;
}

static int plus_lookup(const struct fs_fh *dir, const char *name, struct fs_fh *fh, struct stat *st)
{
    struct plus_find p = {.name = name, .rc = -ENOENT};
    bool eof;
    int err = ops->readdir(ex, &root_cred, dir, 0, FS_READDIR_PLUS, plus_find_cb, &p, &eof);
    if (err)
        return err;
    *fh = p.fh;
    *st = p.st;
    return p.rc;
}

static void reopen(void)
{
    ops->export_close(ex);
    ex = NULL;
    CHECK_EQ(ops->export_open(base, &ex), 0);
    struct fs_fh r;
    CHECK_EQ(ops->root(ex, &r), 0);
    CHECK(same_fh(&r, &rootfh)); /* the root's handle is persistent too */
}

/* ---- tests ---- */

static void test_export_open(void)
{
    struct fs_export *e = NULL;
    CHECK_EQ(ops->export_open("/nonexistent-peernfs", &e), -ENOENT);
    int fd = open(path_of("plain"), O_CREAT | O_WRONLY, 0644);
    close(fd);
    CHECK_EQ(ops->export_open(path_of("plain"), &e), -ENOTDIR);
    unlink(path_of("plain"));
    CHECK(rootfh.len > 4 && rootfh.len <= FS_FH_MAX);
    struct stat st, real;
    CHECK_EQ(getattr(&rootfh, &st), 0);
    CHECK_EQ(stat(base, &real), 0);
    CHECK_EQ(st.st_ino, real.st_ino);
    CHECK_EQ(st.st_dev, real.st_dev);
}

static void test_create_read_write(void)
{
    struct fs_fh f, again;
    struct stat st;
    CHECK_EQ(ops->create(ex, &alice, &rootfh, S("f"), 0666, true, &f, &st), 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(st.st_mode & 07777, 0666); /* exactly as asked: no umask */
    CHECK_EQ(st.st_uid, 1000);
    CHECK_EQ(st.st_gid, 1000);
    CHECK_EQ(ops->create(ex, &alice, &rootfh, S("f"), 0666, true, &again, &st), -EEXIST);
    CHECK_EQ(ops->create(ex, &alice, &rootfh, S("f"), 0600, false, &again, &st), 0);
    CHECK(same_fh(&f, &again));
    CHECK_EQ(st.st_mode & 07777, 0666); /* an existing file keeps its mode */
    CHECK_EQ(ops->create(ex, &alice, &rootfh, S("."), 0600, false, &again, &st), -EEXIST);

    size_t n = 0;
    CHECK_EQ(ops->write(ex, &f, 0, "hello world", 11, FS_UNSTABLE, &n, &st), 0);
    CHECK_EQ(n, 11);
    CHECK_EQ(st.st_size, 11);
    CHECK_EQ(ops->write(ex, &f, 100, "0123456789", 10, FS_FILE_SYNC, &n, &st), 0);
    CHECK_EQ(n, 10);
    CHECK_EQ(st.st_size, 110);
    CHECK_EQ(ops->write(ex, &f, 105, "ABCDEF", 6, FS_DATA_SYNC, &n, &st), 0);
    CHECK_EQ(st.st_size, 111);
    CHECK_EQ(ops->write(ex, &f, 0, "", 0, FS_FILE_SYNC, &n, &st), 0);
    CHECK_EQ(n, 0);

    char buf[256];
    bool eof = true;
    CHECK_EQ(ops->read(ex, &f, 0, buf, 5, &n, &eof), 0);
    CHECK_EQ(n, 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    CHECK(!eof);
    CHECK_EQ(ops->read(ex, &f, 0, buf, sizeof(buf), &n, &eof), 0);
    CHECK_EQ(n, 111);
    CHECK(eof);
    CHECK(memcmp(buf + 100, "01234ABCDEF", 11) == 0);
    CHECK_EQ(ops->read(ex, &f, 100, buf, 11, &n, &eof), 0); /* ends exactly at EOF */
    CHECK_EQ(n, 11);
    CHECK(eof);
    CHECK_EQ(ops->read(ex, &f, 99, buf, 11, &n, &eof), 0);
    CHECK(!eof);
    CHECK_EQ(ops->read(ex, &f, 500, buf, 10, &n, &eof), 0);
    CHECK_EQ(n, 0);
    CHECK(eof);
    CHECK_EQ(ops->read(ex, &f, 0, buf, 0, &n, &eof), 0);
    CHECK(!eof);
    CHECK_EQ(ops->read(ex, &f, 111, buf, 0, &n, &eof), 0);
    CHECK(eof);
    CHECK_EQ(ops->commit(ex, &f, 0, 0), 0);
    CHECK_EQ(ops->commit(ex, &f, 10, 100), 0);

    /* the data really is on disk where a local reader sees it */
    int fd = open(path_of("f"), O_RDONLY);
    CHECK_EQ(pread(fd, buf, 11, 0), 11);
    CHECK(memcmp(buf, "hello world", 11) == 0);
    close(fd);

    CHECK_EQ(ops->read(ex, &rootfh, 0, buf, 10, &n, &eof), -EISDIR);
    CHECK_EQ(ops->write(ex, &rootfh, 0, "x", 1, FS_UNSTABLE, &n, &st), -EISDIR);
    CHECK_EQ(ops->commit(ex, &rootfh, 0, 0), -EISDIR);
}

static void test_lookup(void)
{
    struct fs_fh f, fh;
    struct stat st;
    CHECK_EQ(lookup(&alice, &rootfh, "f", &f, &st), 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(st.st_size, 111);
    CHECK_EQ(lookup(&alice, &rootfh, ".", &fh, &st), 0);
    CHECK(same_fh(&fh, &rootfh));
    CHECK(S_ISDIR(st.st_mode));
    CHECK_EQ(lookup(&alice, &rootfh, "..", &fh, &st), 0); /* never above the export */
    CHECK(same_fh(&fh, &rootfh));
    CHECK_EQ(plus_lookup(&rootfh, "..", &fh, &st), 0);
    CHECK(same_fh(&fh, &rootfh));
    CHECK_EQ(lookup(&alice, &rootfh, "missing", &fh, NULL), -ENOENT);
    CHECK_EQ(lookup(&alice, &f, "x", &fh, NULL), -ENOTDIR);

    CHECK_EQ(ops->lookup(ex, &alice, &rootfh, "", 0, &fh, &st), -EINVAL);
    CHECK_EQ(lookup(&alice, &rootfh, "a/b", &fh, NULL), -EINVAL);
    CHECK_EQ(ops->lookup(ex, &alice, &rootfh, "f\0x", 3, &fh, &st), -EINVAL);
    char longname[300];
    memset(longname, 'n', sizeof(longname));
    longname[256] = '\0';
    CHECK_EQ(lookup(&alice, &rootfh, longname, &fh, NULL), -ENAMETOOLONG);
    longname[255] = '\0';
    CHECK_EQ(lookup(&alice, &rootfh, longname, &fh, NULL), -ENOENT);
    CHECK_EQ(create(&alice, &rootfh, longname, 0644, &fh), 0); /* 255 is fine */
    CHECK_EQ(ops->remove(ex, &alice, &rootfh, S(longname), false), 0);

    /* a name not NUL-terminated where it ends: only namelen counts */
    CHECK_EQ(ops->lookup(ex, &alice, &rootfh, "fXYZ", 1, &fh, &st), 0);
    CHECK(same_fh(&fh, &f));

    /* subdirectory: ".." is the parent */
    struct fs_fh d, dd;
    CHECK_EQ(ops->mkdir(ex, &alice, &rootfh, S("sub"), 0755, &d, &st), 0);
    CHECK_EQ(lookup(&alice, &d, "..", &dd, &st), 0);
    CHECK(same_fh(&dd, &rootfh));
    CHECK_EQ(plus_lookup(&d, "..", &dd, &st), 0);
    CHECK(same_fh(&dd, &rootfh));
    CHECK_EQ(plus_lookup(&d, ".", &dd, &st), 0);
    CHECK(same_fh(&dd, &d));
    CHECK_EQ(plus_lookup(&rootfh, "f", &fh, &st), 0);
    CHECK(same_fh(&fh, &f));
    CHECK_EQ(st.st_size, 111);
    CHECK_EQ(plus_lookup(&rootfh, "nope", &fh, &st), -ENOENT);
    CHECK_EQ(ops->remove(ex, &alice, &rootfh, S("sub"), true), 0);
}

static void test_make_things(void)
{
    struct fs_fh d, sl, fifo, sock, chr, fh;
    struct stat st;
    CHECK_EQ(ops->mkdir(ex, &alice, &rootfh, S("d"), 0750, &d, &st), 0);
    CHECK(S_ISDIR(st.st_mode));
    CHECK_EQ(st.st_mode & 07777, 0750);
    CHECK_EQ(st.st_uid, 1000);
    CHECK_EQ(ops->mkdir(ex, &alice, &rootfh, S("d"), 0750, &fh, &st), -EEXIST);
    CHECK_EQ(ops->mkdir(ex, &alice, &rootfh, S(".."), 0750, &fh, &st), -EEXIST);

    CHECK_EQ(ops->symlink(ex, &alice, &rootfh, S("sl"), S("some/target"), &sl, &st), 0);
    CHECK(S_ISLNK(st.st_mode));
    CHECK_EQ(st.st_uid, 1000);
    char buf[64];
    size_t len = 0;
    CHECK_EQ(ops->readlink(ex, &sl, buf, sizeof(buf), &len), 0);
    CHECK_EQ(len, 11);
    CHECK(memcmp(buf, "some/target", 11) == 0);
    CHECK_EQ(ops->readlink(ex, &sl, buf, 11, &len), -ENAMETOOLONG);
    CHECK_EQ(ops->readlink(ex, &d, buf, sizeof(buf), &len), -EINVAL);
    CHECK_EQ(ops->symlink(ex, &alice, &rootfh, S("sl2"), "", 0, &fh, &st), -EINVAL);
    CHECK_EQ(ops->symlink(ex, &alice, &rootfh, S("sl2"), "a\0b", 3, &fh, &st), -EINVAL);
    size_t n;
    bool eof;
    CHECK_EQ(ops->read(ex, &sl, 0, buf, 10, &n, &eof), -EINVAL);
    /* lookup of a symlink does not follow it */
    CHECK_EQ(lookup(&alice, &rootfh, "sl", &fh, &st), 0);
    CHECK(same_fh(&fh, &sl));
    CHECK(S_ISLNK(st.st_mode));

    CHECK_EQ(ops->mknod(ex, &alice, &rootfh, S("fifo"), S_IFIFO | 0640, 0, &fifo, &st), 0);
    CHECK(S_ISFIFO(st.st_mode));
    CHECK_EQ(st.st_mode & 07777, 0640);
    CHECK_EQ(ops->mknod(ex, &alice, &rootfh, S("sock"), S_IFSOCK | 0600, 0, &sock, &st), 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK_EQ(ops->mknod(ex, &alice, &rootfh, S("chr"), S_IFCHR | 0600, makedev(1, 3), &chr, &st), -EPERM);
    CHECK_EQ(ops->mknod(ex, &root_cred, &rootfh, S("chr"), S_IFCHR | 0600, makedev(1, 3), &chr, &st), 0);
    CHECK(S_ISCHR(st.st_mode));
    CHECK_EQ(st.st_rdev, makedev(1, 3));
    CHECK_EQ(st.st_uid, 0);
    CHECK_EQ(ops->mknod(ex, &root_cred, &rootfh, S("blk"), S_IFBLK | 0600, makedev(7, 0), &fh, &st), 0);
    CHECK(S_ISBLK(st.st_mode));
    CHECK_EQ(ops->mknod(ex, &root_cred, &rootfh, S("reg"), S_IFREG | 0600, 0, &fh, &st), -EINVAL);
    /* special files are never opened for I/O: reading a device is refused */
    CHECK_EQ(ops->read(ex, &chr, 0, buf, 10, &n, &eof), -EINVAL);
    CHECK_EQ(ops->read(ex, &fifo, 0, buf, 10, &n, &eof), -EINVAL);
    CHECK_EQ(getattr(&fifo, &st), 0);
    CHECK(S_ISFIFO(st.st_mode));
    static const char *const made[] = {"fifo", "sock", "chr", "blk"};
    for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++)
        CHECK_EQ(ops->remove(ex, &root_cred, &rootfh, S(made[i]), false), 0);
    CHECK_EQ(getattr(&chr, NULL), -ESTALE);
}

static void test_setattr(void)
{
    struct fs_fh f, g;
    struct stat st;
    struct fs_setattr sa;
    CHECK_EQ(lookup(&alice, &rootfh, "f", &f, NULL), 0);

    memset(&sa, 0, sizeof(sa));
    sa.mask = FS_SET_MODE;
    sa.mode = 0640;
    CHECK_EQ(ops->setattr(ex, &alice, &f, &sa, &st), 0);
    CHECK_EQ(st.st_mode & 07777, 0640);
    CHECK_EQ(ops->setattr(ex, &bob, &f, &sa, &st), -EPERM); /* not the owner */

    sa.mask = FS_SET_SIZE;
    sa.size = 5;
    CHECK_EQ(ops->setattr(ex, &bob, &f, &sa, &st), -EACCES); /* no write permission */
    CHECK_EQ(ops->setattr(ex, &alice, &f, &sa, &st), 0);
    CHECK_EQ(st.st_size, 5);
    sa.size = 1 << 20;
    CHECK_EQ(ops->setattr(ex, &alice, &f, &sa, &st), 0);
    CHECK_EQ(st.st_size, 1 << 20);
    sa.size = 11;
    CHECK_EQ(ops->setattr(ex, &alice, &f, &sa, &st), 0);
    CHECK_EQ(ops->setattr(ex, &alice, &rootfh, &sa, &st), -EISDIR);

    /* the owner may truncate a file whose mode forbids writing (knfsd does the same) */
    sa.mask = FS_SET_MODE;
    sa.mode = 0444;
    CHECK_EQ(ops->setattr(ex, &alice, &f, &sa, &st), 0);
    sa.mask = FS_SET_SIZE;
    sa.size = 10;
    CHECK_EQ(ops->setattr(ex, &alice, &f, &sa, &st), 0);
    CHECK_EQ(st.st_size, 10);
    size_t n;
    CHECK_EQ(ops->write(ex, &f, 10, "d", 1, FS_UNSTABLE, &n, &st), 0); /* backend does not check */
    CHECK_EQ(st.st_size, 11);

    sa.mask = FS_SET_ATIME | FS_SET_MTIME;
    sa.atime.tv_sec = 1000000000;
    sa.atime.tv_nsec = 5;
    sa.mtime.tv_sec = 1200000000;
    sa.mtime.tv_nsec = 7;
    CHECK_EQ(ops->setattr(ex, &bob, &f, &sa, &st), -EPERM);
    CHECK_EQ(ops->setattr(ex, &alice, &f, &sa, &st), 0);
    CHECK_EQ(st.st_atim.tv_sec, 1000000000);
    CHECK_EQ(st.st_atim.tv_nsec, 5);
    CHECK_EQ(st.st_mtim.tv_sec, 1200000000);
    CHECK_EQ(st.st_mtim.tv_nsec, 7);
    sa.mask = FS_SET_MTIME_NOW;
    CHECK_EQ(ops->setattr(ex, &alice, &f, &sa, &st), 0);
    CHECK(st.st_mtim.tv_sec > 1600000000);
    CHECK_EQ(st.st_atim.tv_sec, 1000000000);
    /* size and mtime together: the explicit mtime wins over the truncation's */
    sa.mask = FS_SET_SIZE | FS_SET_MTIME;
    sa.size = 3;
    sa.mtime.tv_sec = 1300000000;
    sa.mtime.tv_nsec = 0;
    CHECK_EQ(ops->setattr(ex, &alice, &f, &sa, &st), 0);
    CHECK_EQ(st.st_size, 3);
    CHECK_EQ(st.st_mtim.tv_sec, 1300000000);

    /* owner and group: root may, the owner may only give the file to a group it is in */
    sa.mask = FS_SET_UID | FS_SET_GID;
    sa.uid = 2000;
    sa.gid = 2000;
    CHECK_EQ(ops->setattr(ex, &alice, &f, &sa, &st), -EPERM);
    CHECK_EQ(ops->setattr(ex, &root_cred, &f, &sa, &st), 0);
    CHECK_EQ(st.st_uid, 2000);
    CHECK_EQ(st.st_gid, 2000);
    sa.mask = FS_SET_GID;
    sa.gid = 5000;
    CHECK_EQ(ops->setattr(ex, &bob, &f, &sa, &st), -EPERM);
    struct fs_cred bob5000 = bob;
    bob5000.ngroups = 1;
    bob5000.groups[0] = 5000;
    CHECK_EQ(ops->setattr(ex, &bob5000, &f, &sa, &st), 0);
    CHECK_EQ(st.st_gid, 5000);
    sa.mask = FS_SET_UID | FS_SET_GID;
    sa.uid = 1000;
    sa.gid = 1000;
    CHECK_EQ(ops->setattr(ex, &root_cred, &f, &sa, &st), 0);
    sa.mask = FS_SET_MODE;
    sa.mode = 0644;
    CHECK_EQ(ops->setattr(ex, &alice, &f, &sa, &st), 0);

    /* special objects: mode on a symlink is ignored, times work (O_PATH fds) */
    CHECK_EQ(lookup(&alice, &rootfh, "sl", &g, NULL), 0);
    sa.mask = FS_SET_MODE | FS_SET_MTIME;
    sa.mode = 0600;
    sa.mtime.tv_sec = 1400000000;
    CHECK_EQ(ops->setattr(ex, &alice, &g, &sa, &st), 0);
    CHECK(S_ISLNK(st.st_mode));
    CHECK_EQ(st.st_mtim.tv_sec, 1400000000);
    struct fs_fh fifo;
    CHECK_EQ(ops->mknod(ex, &alice, &rootfh, S("fifo2"), S_IFIFO | 0600, 0, &fifo, &st), 0);
    sa.mask = FS_SET_MODE;
    sa.mode = 0604;
    CHECK_EQ(ops->setattr(ex, &alice, &fifo, &sa, &st), 0);
    CHECK_EQ(st.st_mode & 07777, 0604);
    sa.mask = FS_SET_SIZE;
    CHECK_EQ(ops->setattr(ex, &alice, &fifo, &sa, &st), -EINVAL);
    CHECK_EQ(ops->remove(ex, &alice, &rootfh, S("fifo2"), false), 0);
}

static void test_link_rename_remove(void)
{
    struct fs_fh f, d, fh, a, b;
    struct stat st;
    CHECK_EQ(lookup(&alice, &rootfh, "f", &f, NULL), 0);
    CHECK_EQ(lookup(&alice, &rootfh, "d", &d, NULL), 0);

    CHECK_EQ(ops->link(ex, &alice, &f, &rootfh, S("f2")), 0);
    CHECK_EQ(getattr(&f, &st), 0);
    CHECK_EQ(st.st_nlink, 2);
    CHECK_EQ(ops->link(ex, &alice, &f, &rootfh, S("f2")), -EEXIST);
    CHECK_EQ(ops->link(ex, &alice, &d, &rootfh, S("dlink")), -EISDIR);
    CHECK_EQ(ops->link(ex, &alice, &f, &f, S("x")), -ENOTDIR);
    struct fs_fh sl;
    CHECK_EQ(lookup(&alice, &rootfh, "sl", &sl, NULL), 0);
    CHECK_EQ(ops->link(ex, &alice, &sl, &rootfh, S("sl-hard")), 0); /* the link itself */
    CHECK_EQ(lookup(&alice, &rootfh, "sl-hard", &fh, &st), 0);
    CHECK(same_fh(&fh, &sl));
    CHECK(S_ISLNK(st.st_mode));
    CHECK_EQ(ops->remove(ex, &alice, &rootfh, S("sl-hard"), false), 0);

    /* rename across directories keeps the handle */
    CHECK_EQ(ops->rename(ex, &alice, &rootfh, S("f2"), &d, S("f3")), 0);
    CHECK_EQ(lookup(&alice, &d, "f3", &fh, NULL), 0);
    CHECK(same_fh(&fh, &f));
    CHECK_EQ(lookup(&alice, &rootfh, "f2", &fh, NULL), -ENOENT);
    CHECK_EQ(ops->rename(ex, &alice, &rootfh, S("."), &d, S("x")), -EINVAL);
    CHECK_EQ(ops->rename(ex, &alice, &rootfh, S("f"), &d, S("..")), -EINVAL);
    CHECK_EQ(ops->rename(ex, &alice, &rootfh, S("nope"), &d, S("x")), -ENOENT);

    /* rename over an existing name: the displaced file's handle goes stale */
    CHECK_EQ(create(&alice, &rootfh, "a", 0644, &a), 0);
    CHECK_EQ(create(&alice, &rootfh, "b", 0644, &b), 0);
    CHECK_EQ(getattr(&b, NULL), 0);
    CHECK_EQ(ops->rename(ex, &alice, &rootfh, S("a"), &rootfh, S("b")), 0);
    CHECK_EQ(getattr(&b, NULL), -ESTALE);
    CHECK_EQ(lookup(&alice, &rootfh, "b", &fh, NULL), 0);
    CHECK(same_fh(&fh, &a));
    /* over one of two links: the handle stays valid */
    CHECK_EQ(ops->link(ex, &alice, &a, &rootfh, S("a2")), 0);
    CHECK_EQ(create(&alice, &rootfh, "c", 0644, &fh), 0);
    CHECK_EQ(ops->rename(ex, &alice, &rootfh, S("c"), &rootfh, S("a2")), 0);
    CHECK_EQ(getattr(&a, &st), 0);
    CHECK_EQ(st.st_nlink, 1);

    /* remove */
    CHECK_EQ(getattr(&a, NULL), 0);
    CHECK_EQ(ops->remove(ex, &alice, &rootfh, S("b"), false), 0);
    CHECK_EQ(getattr(&a, NULL), -ESTALE);
    size_t n;
    bool eof;
    char buf[8];
    CHECK_EQ(ops->read(ex, &a, 0, buf, sizeof(buf), &n, &eof), -ESTALE);
    CHECK_EQ(ops->remove(ex, &alice, &rootfh, S("b"), false), -ENOENT);
    CHECK_EQ(ops->remove(ex, &alice, &rootfh, S("a2"), false), 0);
    CHECK_EQ(ops->remove(ex, &alice, &rootfh, S("d"), false), -EISDIR);
    CHECK_EQ(ops->remove(ex, &alice, &rootfh, S("f"), true), -ENOTDIR);
    CHECK_EQ(ops->remove(ex, &alice, &rootfh, S("d"), true), -ENOTEMPTY);
    CHECK_EQ(ops->remove(ex, &alice, &rootfh, S(".."), true), -EINVAL);
    CHECK_EQ(ops->remove(ex, &alice, &d, S("f3"), false), 0);
    CHECK_EQ(getattr(&f, &st), 0); /* still linked as "f" */
    CHECK_EQ(st.st_nlink, 1);
    CHECK_EQ(ops->remove(ex, &alice, &rootfh, S("d"), true), 0);
    CHECK_EQ(getattr(&d, NULL), -ESTALE);
    CHECK_EQ(lookup(&alice, &d, "x", &fh, NULL), -ESTALE);

    /* removed behind our back by a local process, while cached */
    struct fs_fh local;
    CHECK_EQ(create(&alice, &rootfh, "local", 0644, &local), 0);
    CHECK_EQ(getattr(&local, NULL), 0);
    CHECK_EQ(unlink(path_of("local")), 0);
    CHECK_EQ(getattr(&local, NULL), -ESTALE);
}

static void test_bad_handles(void)
{
    struct fs_fh bad;
    struct stat st;
    memset(&bad, 0, sizeof(bad));
    for (int len = 0; len <= 4; len++) {
        bad.len = (uint8_t)len;
        CHECK_EQ(ops->getattr(ex, &bad, &st), -EBADF);
    }
    bad.len = FS_FH_MAX + 1;
    CHECK_EQ(ops->getattr(ex, &bad, &st), -EBADF);
    bad = rootfh;
    for (int i = 4; i < bad.len; i++)
        bad.data[i] ^= 0x5a;
    CHECK_EQ(ops->getattr(ex, &bad, &st), -ESTALE);
    bad = rootfh;
    bad.data[0] ^= 0x40; /* an unknown handle type */
    int rc = ops->getattr(ex, &bad, &st);
    CHECK(rc == -ESTALE || rc == -EBADF);
}

static void test_restart(void)
{
    struct fs_fh f, d, sl, fh;
    struct stat st1, st2;
    CHECK_EQ(lookup(&alice, &rootfh, "f", &f, &st1), 0);
    CHECK_EQ(ops->mkdir(ex, &alice, &rootfh, S("persist"), 0755, &d, &st2), 0);
    CHECK_EQ(lookup(&alice, &rootfh, "sl", &sl, NULL), 0);
    reopen();
    CHECK_EQ(getattr(&f, &st2), 0);
    CHECK_EQ(st1.st_ino, st2.st_ino);
    CHECK_EQ(getattr(&d, &st2), 0);
    CHECK(S_ISDIR(st2.st_mode));
    CHECK_EQ(getattr(&sl, &st2), 0);
    CHECK(S_ISLNK(st2.st_mode));
    CHECK_EQ(lookup(&alice, &rootfh, "f", &fh, NULL), 0);
    CHECK(same_fh(&fh, &f));
    char buf[16];
    size_t n;
    bool eof;
    CHECK_EQ(ops->read(ex, &f, 0, buf, sizeof(buf), &n, &eof), 0);
    CHECK_EQ(n, 3);
    CHECK_EQ(ops->remove(ex, &alice, &rootfh, S("persist"), true), 0);
    reopen();
    CHECK_EQ(getattr(&d, NULL), -ESTALE);
}

/* ---- readdir ---- */

#define NFILES 300

struct seen {
    int count[NFILES];
    int dot, dotdot, others;
    int limit; /* entries to take before stopping (0: all) */
    int taken;
    uint64_t last_cookie;
    uint64_t dotdot_ino;
    int fail_after; /* return -EIO after this many (0: never) */
};

static int collect(void *ctx, const struct fs_dirent *de)
{
    struct seen *s = ctx;
    if (s->fail_after && s->taken == s->fail_after)
        return -EIO;
    if (s->limit && s->taken == s->limit)
        return 1;
    s->taken++;
    s->last_cookie = de->cookie;
    if (de->namelen == 1 && de->name[0] == '.')
        s->dot++;
    else if (de->namelen == 2 && memcmp(de->name, "..", 2) == 0) {
        s->dotdot++;
        s->dotdot_ino = de->fileid;
    } else if (de->namelen > 1 && de->name[0] == 'e' && atoi(de->name + 1) < NFILES)
        s->count[atoi(de->name + 1)]++;
    else
        s->others++;
    return 0;
}

static void test_readdir(void)
{
    struct fs_fh dir, fh;
    struct stat st;
    CHECK_EQ(ops->mkdir(ex, &alice, &rootfh, S("big"), 0755, &dir, &st), 0);
    char name[32];
    for (int i = 0; i < NFILES; i++) {
        snprintf(name, sizeof(name), "e%d", i);
        CHECK_EQ(create(&alice, &dir, name, 0644, &fh), 0);
    }

    /* all at once */
    struct seen *s = calloc(1, sizeof(*s));
    bool eof = false;
    CHECK_EQ(ops->readdir(ex, &alice, &dir, 0, 0, collect, s, &eof), 0);
    CHECK(eof);
    CHECK_EQ(s->dot, 1);
    CHECK_EQ(s->dotdot, 1);
    CHECK_EQ(s->others, 0);
    for (int i = 0; i < NFILES; i++)
        CHECK_EQ(s->count[i], 1);
    struct stat rootst;
    CHECK_EQ(getattr(&rootfh, &rootst), 0);
    CHECK_EQ(s->dotdot_ino, rootst.st_ino); /* ".." of big is the root */

    /* in chunks of 25, deleting files between calls: every file that was never deleted
     * is seen exactly once, nothing is seen twice */
    memset(s, 0, sizeof(*s));
    bool deleted[NFILES] = {false};
    uint64_t cookie = 0;
    int calls = 0;
    eof = false;
    while (!eof && calls < 1000) {
        s->limit = s->taken + 25;
        CHECK_EQ(ops->readdir(ex, &alice, &dir, cookie, 0, collect, s, &eof), 0);
        cookie = s->last_cookie;
        calls++;
        /* delete three files: some already seen, some not yet */
        for (int k = 0; k < 3; k++) {
            int victim = (calls * 37 + k * 101) % NFILES;
            if (deleted[victim])
                continue;
            snprintf(name, sizeof(name), "e%d", victim);
            CHECK_EQ(ops->remove(ex, &alice, &dir, S(name), false), 0);
            deleted[victim] = true;
        }
    }
    CHECK(eof);
    CHECK(calls > 5);
    int missing = 0, twice = 0;
    for (int i = 0; i < NFILES; i++) {
        if (s->count[i] > 1)
            twice++;
        if (!deleted[i] && s->count[i] != 1)
            missing++;
    }
    CHECK_EQ(twice, 0);
    CHECK_EQ(missing, 0);
    CHECK_EQ(s->dot, 1);
    CHECK_EQ(s->dotdot, 1);

    /* resuming at the last cookie after eof gives nothing more */
    memset(s, 0, sizeof(*s));
    eof = false;
    CHECK_EQ(ops->readdir(ex, &alice, &dir, cookie, 0, collect, s, &eof), 0);
    CHECK(eof);
    CHECK_EQ(s->taken, 0);

    /* stop after the last entry: not eof (the entry was not consumed) */
    memset(s, 0, sizeof(*s));
    s->limit = 1;
    CHECK_EQ(ops->readdir(ex, &alice, &dir, 0, 0, collect, s, &eof), 0);
    CHECK(!eof);
    CHECK_EQ(s->taken, 1);

    /* errors from the callback abort */
    memset(s, 0, sizeof(*s));
    s->fail_after = 3;
    CHECK_EQ(ops->readdir(ex, &alice, &dir, 0, 0, collect, s, &eof), -EIO);

    /* the root's ".." shows the root itself */
    struct stat rst;
    CHECK_EQ(getattr(&rootfh, &rst), 0);
    memset(s, 0, sizeof(*s));
    CHECK_EQ(ops->readdir(ex, &alice, &rootfh, 0, 0, collect, s, &eof), 0);
    CHECK_EQ(s->dotdot, 1);
    CHECK_EQ(s->dotdot_ino, rst.st_ino);

    /* permission: read is needed */
    struct fs_setattr sa = {.mask = FS_SET_MODE, .mode = 0700};
    CHECK_EQ(ops->setattr(ex, &alice, &dir, &sa, &st), 0);
    CHECK_EQ(ops->readdir(ex, &bob, &dir, 0, 0, collect, s, &eof), -EACCES);
    struct fs_fh f;
    CHECK_EQ(lookup(&alice, &rootfh, "f", &f, NULL), 0);
    CHECK_EQ(ops->readdir(ex, &alice, &f, 0, 0, collect, s, &eof), -ENOTDIR);

    for (int i = 0; i < NFILES; i++) {
        if (deleted[i])
            continue;
        snprintf(name, sizeof(name), "e%d", i);
        CHECK_EQ(ops->remove(ex, &alice, &dir, S(name), false), 0);
    }
    CHECK_EQ(ops->remove(ex, &alice, &rootfh, S("big"), true), 0);
    free(s);
}

/* ---- the directory cache (posix_dircache.c) ---- */

struct listed {
    char name[64];
    uint64_t fileid, cookie;
    uint8_t type;
    bool has; /* handle and attributes given */
    struct fs_fh fh;
    uint64_t st_ino;
};

struct listing {
    struct listed *v;
    int n, cap;
    int limit; /* entries one call takes (0: all) */
    int taken; /* in this call */
};

static int list_cb(void *ctx, const struct fs_dirent *de)
{
    struct listing *l = ctx;
    if (l->limit && l->taken == l->limit)
        return 1;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->v = realloc(l->v, (size_t)l->cap * sizeof(*l->v));
    }
    struct listed *e = &l->v[l->n++];
    memset(e, 0, sizeof(*e));
    snprintf(e->name, sizeof(e->name), "%.*s", (int)de->namelen, de->name);
    e->fileid = de->fileid;
    e->cookie = de->cookie;
    e->type = de->type;
    CHECK((de->fh == NULL) == (de->st == NULL));
    if (de->fh && de->st) {
        e->has = true;
        e->fh = *de->fh;
        e->st_ino = de->st->st_ino;
    }
    l->taken++;
    return 0;
}

/* List dir from the start in calls of `chunk` entries (0: as many as one call gives).
 * Returns the number of calls, or the error. */
static int list_all(const struct fs_cred *c, const struct fs_fh *dir, unsigned flags, int chunk,
                    struct listing *l)
{
    uint64_t cookie = 0;
    bool eof = false;
    int calls = 0;
    l->n = 0;
    while (!eof && calls < 100000) {
        l->taken = 0;
        l->limit = chunk;
        int err = ops->readdir(ex, c, dir, cookie, flags, list_cb, l, &eof);
        if (err)
            return err;
        calls++;
        if (l->n)
            cookie = l->v[l->n - 1].cookie;
    }
    return calls;
}

static bool same_listing(const struct listing *a, const struct listing *b, bool plus)
{
    if (a->n != b->n) {
        fprintf(stderr, "listings differ: %d vs %d entries\n", a->n, b->n);
        return false;
    }
    for (int i = 0; i < a->n; i++) {
        const struct listed *x = &a->v[i], *y = &b->v[i];
        bool same = strcmp(x->name, y->name) == 0 && x->fileid == y->fileid &&
                    x->cookie == y->cookie && x->type == y->type;
        if (plus)
            same = same && x->has == y->has &&
                   (!x->has || (same_fh(&x->fh, &y->fh) && x->st_ino == y->st_ino));
        if (!same) {
            fprintf(stderr, "listings differ at %d: %s / %s\n", i, x->name, y->name);
            return false;
        }
    }
    return true;
}

static const struct listed *find_listed(const struct listing *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->v[i].name, name) == 0)
            return &l->v[i];
    return NULL;
}

/* A snapshot is reused only once the directory's ctime is older than the trust window
 * (20 ms): wait that long after changing a directory a test wants cached. */
static void age_dir(void)
{
    usleep(30 * 1000);
}

static struct fs_posix_dircache_stats dc_stats(void)
{
    struct fs_posix_dircache_stats s;
    fs_posix_dircache_stats(&s);
    return s;
}

static void dc_defaults(void)
{
    fs_posix_set_dircache_limit((size_t)64 << 20, 4096);
}

/* The cached path gives exactly what the uncached one gives: names, cookies, types,
 * fileids, handles; in one call, in small calls, resumed anywhere. */
static void test_dircache_hits(void)
{
    struct fs_fh dir, fh;
    struct stat st;
    char name[96];
    CHECK_EQ(ops->mkdir(ex, &alice, &rootfh, S("dc"), 0755, &dir, &st), 0);
    for (int i = 0; i < 700; i++) {
        snprintf(name, sizeof(name), "n%d-%.*s", i, i % 50,
                 "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz");
        CHECK_EQ(create(&alice, &dir, name, 0644, &fh), 0);
    }
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof(name), "sub%d", i);
        CHECK_EQ(ops->mkdir(ex, &alice, &dir, S(name), 0755, &fh, &st), 0);
        snprintf(name, sizeof(name), "link%d", i);
        CHECK_EQ(ops->symlink(ex, &alice, &dir, S(name), S("target"), &fh, &st), 0);
    }
    const int total = 700 + 10 + 2;

    /* the reference: no cache at all */
    struct listing ref = {0}, l = {0};
    fs_posix_set_dircache_limit(0, 0);
    age_dir();
    CHECK(list_all(&alice, &dir, FS_READDIR_PLUS, 0, &ref) > 0);
    CHECK_EQ(ref.n, total);
    CHECK(list_all(&alice, &dir, FS_READDIR_PLUS, 37, &l) > 5);
    CHECK(same_listing(&ref, &l, true));
    CHECK_EQ(dc_stats().dirs, 0);
    for (int i = 0; i < ref.n; i++) {
        const struct listed *e = &ref.v[i];
        CHECK(e->has);
        CHECK_EQ(e->st_ino, e->fileid);
        struct stat a;
        if (e->has && strcmp(e->name, "..") != 0) {
            CHECK_EQ(getattr(&e->fh, &a), 0);
            CHECK_EQ(a.st_ino, e->fileid);
        }
    }
    const struct listed *dot = find_listed(&ref, "."), *dotdot = find_listed(&ref, "..");
    CHECK(dot && same_fh(&dot->fh, &dir));
    CHECK(dotdot && same_fh(&dotdot->fh, &rootfh));

    /* cached: the first listing fills the snapshot, the others reuse it */
    dc_defaults();
    struct fs_posix_dircache_stats s0 = dc_stats();
    CHECK(list_all(&alice, &dir, FS_READDIR_PLUS, 0, &l) > 0);
    CHECK(same_listing(&ref, &l, true));
    int calls = list_all(&alice, &dir, FS_READDIR_PLUS, 37, &l);
    CHECK(same_listing(&ref, &l, true));
    calls += list_all(&bob, &dir, FS_READDIR_PLUS, 1, &l);
    CHECK(same_listing(&ref, &l, true));
    calls += list_all(&alice, &dir, 0, 13, &l);
    CHECK(same_listing(&ref, &l, false));
    struct fs_posix_dircache_stats s1 = dc_stats();
    CHECK(s1.hits - s0.hits >= (uint64_t)calls);
    CHECK(s1.misses - s0.misses <= 2);
    CHECK(s1.dirs >= 1);

    /* resumed at any cookie: the entry after it */
    unsigned seed = 42;
    for (int k = 0; k < 200; k++) {
        int i = (int)(rand_r(&seed) % (unsigned)ref.n);
        struct listing one = {0};
        bool eof = false;
        one.limit = 1;
        CHECK_EQ(ops->readdir(ex, &alice, &dir, ref.v[i].cookie, FS_READDIR_PLUS, list_cb, &one, &eof),
                 0);
        if (i == ref.n - 1) {
            CHECK_EQ(one.n, 0);
            CHECK(eof);
        } else {
            CHECK_EQ(one.n, 1);
            CHECK(one.n == 1 && strcmp(one.v[0].name, ref.v[i + 1].name) == 0);
            CHECK(one.n == 1 && one.v[0].cookie == ref.v[i + 1].cookie);
            CHECK(one.n == 1 && same_fh(&one.v[0].fh, &ref.v[i + 1].fh));
        }
        free(one.v);
    }
    free(ref.v);
    free(l.v);
    CHECK_EQ(system("rm -rf \"$PEERNFS_T\"/dc"), 0);
}

/* A name's handle, by LOOKUP. */
static bool lookup_fh(const struct fs_fh *dir, const char *name, struct fs_fh *fh)
{
    return lookup(&root_cred, dir, name, fh, NULL) == 0;
}

/* The listing holds exactly `names` (besides "." and ".."), each with its current handle. */
static void check_listing(const struct fs_fh *dir, const struct listing *l, char names[][32], int n)
{
    CHECK_EQ(l->n, n + 2);
    for (int i = 0; i < n; i++) {
        const struct listed *e = find_listed(l, names[i]);
        struct fs_fh fh;
        CHECK(e != NULL);
        CHECK(lookup_fh(dir, names[i], &fh));
        if (!e)
            continue;
        CHECK(e->has);
        if (e->has && !same_fh(&e->fh, &fh)) {
            fprintf(stderr, "%s: stale handle from the listing\n", names[i]);
            check_failures++;
        }
    }
}

/*
 * Changes right after a listing (well within one clock tick, by us and by local
 * processes) are seen by the next listing: adds, removes, renames, a name removed and
 * made again (a new inode, often with the old inode number), a change that puts the
 * directory's mtime back.
 */
static void test_dircache_changes(void)
{
    struct fs_fh dir, fh, old;
    struct stat st;
    char names[200][32];
    int n = 0;
    char path[64];
    CHECK_EQ(ops->mkdir(ex, &root_cred, &rootfh, S("chg"), 0777, &dir, &st), 0);
    for (; n < 100; n++) {
        snprintf(names[n], sizeof(names[n]), "f%d", n);
        CHECK_EQ(create(&root_cred, &dir, names[n], 0644, &fh), 0);
    }
    age_dir();
    struct listing l = {0};
    for (int round = 0; round < 60; round++) {
        bool local = round % 2;
        CHECK(list_all(&root_cred, &dir, FS_READDIR_PLUS, round % 3 ? 7 : 0, &l) > 0);
        check_listing(&dir, &l, names, n);
        int victim = (round * 7) % n;
        snprintf(path, sizeof(path), "chg/%s", names[victim]);
        switch (round % 4) {
        case 0: /* add */
            snprintf(names[n], sizeof(names[n]), "new%d", round);
            if (local) {
                snprintf(path, sizeof(path), "chg/%s", names[n]);
                close(open(path_of(path), O_CREAT | O_WRONLY, 0644));
            } else {
                CHECK_EQ(create(&root_cred, &dir, names[n], 0644, &fh), 0);
            }
            n++;
            break;
        case 1: /* remove */
            if (local)
                CHECK_EQ(unlink(path_of(path)), 0);
            else
                CHECK_EQ(ops->remove(ex, &root_cred, &dir, S(names[victim]), false), 0);
            memmove(names[victim], names[victim + 1], (size_t)(n - victim - 1) * sizeof(names[0]));
            n--;
            break;
        case 2: { /* rename */
            char to[32], tpath[64];
            snprintf(to, sizeof(to), "ren%d", round);
            snprintf(tpath, sizeof(tpath), "chg/%s", to);
            CHECK(lookup_fh(&dir, names[victim], &old));
            if (local) {
                char from[512];
                snprintf(from, sizeof(from), "%s", path_of(path));
                CHECK_EQ(rename(from, path_of(tpath)), 0);
            } else {
                CHECK_EQ(ops->rename(ex, &root_cred, &dir, S(names[victim]), &dir, S(to)), 0);
            }
            snprintf(names[victim], sizeof(names[victim]), "%s", to);
            CHECK(lookup_fh(&dir, to, &fh) && same_fh(&fh, &old)); /* the same file */
            break;
        }
        case 3: /* remove and make again: a new file under the old name */
            CHECK(lookup_fh(&dir, names[victim], &old));
            if (local) {
                CHECK_EQ(unlink(path_of(path)), 0);
                close(open(path_of(path), O_CREAT | O_WRONLY, 0644));
            } else {
                CHECK_EQ(ops->remove(ex, &root_cred, &dir, S(names[victim]), false), 0);
                CHECK_EQ(create(&root_cred, &dir, names[victim], 0644, &fh), 0);
            }
            CHECK(lookup_fh(&dir, names[victim], &fh) && !same_fh(&fh, &old));
            CHECK_EQ(getattr(&old, NULL), -ESTALE);
            break;
        }
        CHECK(list_all(&root_cred, &dir, FS_READDIR_PLUS, round % 3 ? 0 : 11, &l) > 0);
        check_listing(&dir, &l, names, n);
        if (round % 10 == 9)
            age_dir(); /* now and then from a snapshot that may be reused */
    }

    /* two changes within one tick, a listing between them: the snapshot made between
     * them must not be reused (the second change may leave the times as they were) */
    for (int round = 0; round < 100 && n < 200; round++) {
        snprintf(names[n], sizeof(names[n]), "t%d", round);
        snprintf(path, sizeof(path), "chg/%s", names[n]);
        close(open(path_of(path), O_CREAT | O_WRONLY, 0644));
        n++;
        CHECK(list_all(&root_cred, &dir, FS_READDIR_PLUS, 0, &l) > 0);
        int victim = round % n;
        snprintf(path, sizeof(path), "chg/%s", names[victim]);
        CHECK_EQ(unlink(path_of(path)), 0);
        memmove(names[victim], names[victim + 1], (size_t)(n - victim - 1) * sizeof(names[0]));
        n--;
        CHECK(list_all(&root_cred, &dir, FS_READDIR_PLUS, 0, &l) > 0);
        check_listing(&dir, &l, names, n);
    }

    /* a local process adds a name and sets the directory's mtime back: ctime tells */
    age_dir();
    CHECK(list_all(&root_cred, &dir, FS_READDIR_PLUS, 0, &l) > 0);
    struct stat before;
    CHECK_EQ(stat(path_of("chg"), &before), 0);
    snprintf(names[n], sizeof(names[n]), "sneaky");
    close(open(path_of("chg/sneaky"), O_CREAT | O_WRONLY, 0644));
    n++;
    struct timespec ts[2] = {before.st_atim, before.st_mtim};
    CHECK_EQ(utimensat(AT_FDCWD, path_of("chg"), ts, 0), 0);
    CHECK(list_all(&root_cred, &dir, FS_READDIR_PLUS, 0, &l) > 0);
    check_listing(&dir, &l, names, n);

    free(l.v);
    CHECK_EQ(system("rm -rf \"$PEERNFS_T\"/chg"), 0);
}

/* The byte and directory budgets hold, by eviction; listings stay right meanwhile. */
static void test_dircache_budget(void)
{
    struct fs_fh dirs[12], big, fh;
    struct stat st;
    char name[64];
    struct listing l = {0};
    CHECK_EQ(ops->mkdir(ex, &root_cred, &rootfh, S("budget"), 0755, &fh, &st), 0);
    for (int d = 0; d < 12; d++) {
        snprintf(name, sizeof(name), "d%d", d);
        CHECK_EQ(ops->mkdir(ex, &root_cred, &fh, S(name), 0755, &dirs[d], &st), 0);
        for (int i = 0; i < 40; i++) {
            snprintf(name, sizeof(name), "file-%d", i);
            struct fs_fh f;
            CHECK_EQ(create(&root_cred, &dirs[d], name, 0644, &f), 0);
        }
    }
    CHECK_EQ(ops->mkdir(ex, &root_cred, &fh, S("big"), 0755, &big, &st), 0);
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof(name), "a-rather-long-file-name-%d", i);
        struct fs_fh f;
        CHECK_EQ(create(&root_cred, &big, name, 0644, &f), 0);
    }
    age_dir();

    /* at most 4 directories */
    fs_posix_set_dircache_limit((size_t)1 << 20, 4);
    struct fs_posix_dircache_stats s0 = dc_stats();
    for (int pass = 0; pass < 2; pass++)
        for (int d = 0; d < 12; d++) {
            CHECK(list_all(&root_cred, &dirs[d], FS_READDIR_PLUS, 15, &l) > 0);
            CHECK_EQ(l.n, 42);
            CHECK(dc_stats().dirs <= 4);
        }
    CHECK(dc_stats().evictions > s0.evictions);
    CHECK(dc_stats().bytes <= (size_t)1 << 20);

    /* at most 64 KiB: a few of the small ones (a quarter of the budget must hold one
     * small snapshot, whose entries carry room for cached attributes) */
    fs_posix_set_dircache_limit(64 << 10, 1000);
    CHECK(dc_stats().bytes <= 64 << 10);
    for (int pass = 0; pass < 2; pass++)
        for (int d = 0; d < 12; d++) {
            CHECK(list_all(&root_cred, &dirs[d], 0, 0, &l) > 0);
            CHECK_EQ(l.n, 42);
            CHECK(dc_stats().bytes <= 64 << 10);
        }
    CHECK(dc_stats().dirs >= 1);

    /* a directory beyond a quarter of the budget is not kept, and lists right */
    for (int pass = 0; pass < 2; pass++) {
        int calls = list_all(&root_cred, &big, FS_READDIR_PLUS, 100, &l);
        CHECK(calls > 25);
        CHECK_EQ(l.n, 3002);
        CHECK(dc_stats().bytes <= 64 << 10);
    }

    /* nothing at all */
    fs_posix_set_dircache_limit(0, 0);
    CHECK_EQ(dc_stats().dirs, 0);
    CHECK_EQ(dc_stats().bytes, 0);
    CHECK(list_all(&root_cred, &dirs[0], FS_READDIR_PLUS, 5, &l) > 0);
    CHECK_EQ(l.n, 42);
    CHECK_EQ(dc_stats().dirs, 0);
    dc_defaults();
    free(l.v);
    CHECK_EQ(system("rm -rf \"$PEERNFS_T\"/budget"), 0);
}

/* The trust rule, with made-up attributes (no kernel since 6.13 shows the hazard: a
 * directory's ctime is fine-grained once someone looked at it): a snapshot is reused
 * only when the directory's ctime was older than the window before its fstat. */
static bool reused_after(long long age_ns, bool whole_seconds)
{
    static uint64_t fake = 1;
    struct fs_fh fh = {.len = 12};
    uint64_t id = fake++;
    memcpy(fh.data + 4, &id, sizeof(id));
    struct timespec t0 = {.tv_sec = 1700000000, .tv_nsec = 500000000};
    long long c = (long long)t0.tv_sec * 1000000000LL + t0.tv_nsec - age_ns;
    struct stat st;
    memset(&st, 0, sizeof(st));
    st.st_ino = 1234;
    st.st_ctim.tv_sec = c / 1000000000LL;
    st.st_ctim.tv_nsec = whole_seconds ? 0 : c % 1000000000LL;
    st.st_mtim = st.st_ctim;
    struct dc_dir *a, *b, *x;
    struct dc_pos pos;
    CHECK_EQ(dc_open(77, &fh, id, &st, &t0, 0, &a, &pos), 0);
    CHECK_EQ(dc_open(77, &fh, id, &st, &t0, 0, &b, &pos), 0);
    bool same = a == b;
    st.st_size = 4096; /* any change of the directory: never reused */
    CHECK_EQ(dc_open(77, &fh, id, &st, &t0, 0, &x, &pos), 0);
    CHECK(x != a && x != b);
    dc_put(x);
    dc_put(a);
    dc_put(b);
    return same;
}

static void test_dircache_trust_window(void)
{
    CHECK(!reused_after(0, false));
    CHECK(!reused_after(DC_TRUST_NS / 2, false));
    CHECK(!reused_after(DC_TRUST_NS - 1, false));
    CHECK(!reused_after(-DC_TRUST_NS, false)); /* a ctime in the future */
    CHECK(reused_after(DC_TRUST_NS, false));
    CHECK(reused_after(3600LL * 1000000000LL, false));
    /* whole seconds: the filesystem may have cut up to 1 s (2 s on FAT) off the time of
     * a change */
    CHECK(!reused_after(1500LL * 1000000, true));
    CHECK(reused_after(3LL * 1000000000LL, true));
    dc_forget_owner(77);
}

#define CONC_FILES 1500

static struct fs_fh conc_dir, conc_dir2;
static struct fs_fh conc_fh[CONC_FILES];
static atomic_bool conc_stop;

struct lister {
    int id;
    int errors;
    int listings;
};

/* Full listings in random chunks: every stable file exactly once, with its handle. */
static void *conc_lister(void *arg)
{
    struct lister *w = arg;
    unsigned seed = (unsigned)w->id * 7919u + 3;
    struct listing l = {0};
    static const struct fs_cred *creds[] = {&root_cred, &alice, &bob};
    unsigned char *seen = malloc(CONC_FILES);
    for (int k = 0; k < 25; k++) {
        const struct fs_fh *dir = k % 5 == 4 ? &conc_dir2 : &conc_dir;
        int chunk = (int)(rand_r(&seed) % 120);
        unsigned flags = k % 3 ? FS_READDIR_PLUS : 0;
        if (list_all(creds[k % 3], dir, flags, chunk, &l) < 0) {
            w->errors++;
            continue;
        }
        w->listings++;
        if (dir == &conc_dir2) {
            if (l.n != 52)
                w->errors++;
            continue;
        }
        memset(seen, 0, CONC_FILES);
        for (int i = 0; i < l.n; i++) {
            int idx;
            if (sscanf(l.v[i].name, "c%d", &idx) != 1 || idx < 0 || idx >= CONC_FILES)
                continue;
            seen[idx]++;
            if (flags && (!l.v[i].has || !same_fh(&l.v[i].fh, &conc_fh[idx])))
                w->errors++;
        }
        for (int i = 0; i < CONC_FILES; i++)
            if (seen[i] != 1)
                w->errors++;
    }
    free(seen);
    free(l.v);
    fs_posix_thread_reset();
    return NULL;
}

/* Local churn in the directory being listed: names come and go. */
static void *conc_mutator(void *arg)
{
    (void)arg;
    char path[512];
    for (int i = 0; !atomic_load(&conc_stop); i++) {
        snprintf(path, sizeof(path), "%s/conc/tmp%d", base, i % 50);
        if (i % 100 < 50)
            close(open(path, O_CREAT | O_WRONLY, 0644));
        else
            unlink(path);
        if (i % 16 == 0)
            usleep(500);
    }
    return NULL;
}

/* The budget changes under the readers: snapshots in use get evicted. */
static void *conc_squeezer(void *arg)
{
    (void)arg;
    for (int i = 0; !atomic_load(&conc_stop); i++) {
        if (i % 2)
            fs_posix_set_dircache_limit(16 << 10, 2);
        else
            dc_defaults();
        usleep(2000);
    }
    dc_defaults();
    return NULL;
}

static void test_dircache_threads(void)
{
    struct stat st;
    struct fs_fh fh;
    char name[32];
    CHECK_EQ(ops->mkdir(ex, &root_cred, &rootfh, S("conc"), 0755, &conc_dir, &st), 0);
    CHECK_EQ(ops->mkdir(ex, &root_cred, &rootfh, S("conc2"), 0755, &conc_dir2, &st), 0);
    for (int i = 0; i < CONC_FILES; i++) {
        snprintf(name, sizeof(name), "c%d", i);
        CHECK_EQ(create(&root_cred, &conc_dir, name, 0644, &conc_fh[i]), 0);
    }
    for (int i = 0; i < 50; i++) {
        snprintf(name, sizeof(name), "x%d", i);
        CHECK_EQ(create(&root_cred, &conc_dir2, name, 0644, &fh), 0);
    }
    age_dir();

    for (int phase = 0; phase < 2; phase++) {
        /* phase 0: a quiet directory (snapshots shared by all listers); phase 1: local
         * churn in it and the budget changing under the listers */
        enum { NL = 6 };
        pthread_t th[NL], mut, sq;
        struct lister w[NL];
        atomic_store(&conc_stop, false);
        if (phase == 1) {
            pthread_create(&mut, NULL, conc_mutator, NULL);
            pthread_create(&sq, NULL, conc_squeezer, NULL);
        }
        for (int i = 0; i < NL; i++) {
            w[i] = (struct lister){.id = i + phase * NL};
            pthread_create(&th[i], NULL, conc_lister, &w[i]);
        }
        for (int i = 0; i < NL; i++) {
            pthread_join(th[i], NULL);
            CHECK_EQ(w[i].errors, 0);
            CHECK_EQ(w[i].listings, 25);
        }
        atomic_store(&conc_stop, true);
        if (phase == 1) {
            pthread_join(mut, NULL);
            pthread_join(sq, NULL);
        }
    }
    dc_defaults();
    CHECK_EQ(system("rm -rf \"$PEERNFS_T\"/conc \"$PEERNFS_T\"/conc2"), 0);
}

/* ---- permissions ---- */

static void test_permission_rules(void)
{
    struct stat st;
    memset(&st, 0, sizeof(st));
    st.st_uid = 1000;
    st.st_gid = 5000;
    st.st_mode = S_IFREG | 0640;
    /* owner: always read and write, exec only with the x bit */
    CHECK_EQ(ops->permission(ex, &alice, &st, FS_MAY_READ | FS_MAY_WRITE), 0);
    CHECK_EQ(ops->permission(ex, &alice, &st, FS_MAY_EXEC), -EACCES);
    st.st_mode = S_IFREG | 0000;
    CHECK_EQ(ops->permission(ex, &alice, &st, FS_MAY_READ | FS_MAY_WRITE), 0);
    st.st_mode = S_IFREG | 0100;
    CHECK_EQ(ops->permission(ex, &alice, &st, FS_MAY_EXEC), 0);
    /* group, through the supplementary list */
    st.st_mode = S_IFREG | 0640;
    CHECK_EQ(ops->permission(ex, &carol, &st, FS_MAY_READ), 0);
    CHECK_EQ(ops->permission(ex, &carol, &st, FS_MAY_WRITE), -EACCES);
    struct fs_cred g = bob;
    g.gid = 5000;
    CHECK_EQ(ops->permission(ex, &g, &st, FS_MAY_READ), 0);
    /* others */
    CHECK_EQ(ops->permission(ex, &bob, &st, FS_MAY_READ), -EACCES);
    st.st_mode = S_IFREG | 0604;
    CHECK_EQ(ops->permission(ex, &bob, &st, FS_MAY_READ), 0);
    CHECK_EQ(ops->permission(ex, &carol, &st, FS_MAY_READ), -EACCES); /* group bits rule */
    /* root: anything, exec only if someone may */
    st.st_mode = S_IFREG | 0000;
    CHECK_EQ(ops->permission(ex, &root_cred, &st, FS_MAY_READ | FS_MAY_WRITE), 0);
    CHECK_EQ(ops->permission(ex, &root_cred, &st, FS_MAY_EXEC), -EACCES);
    st.st_mode = S_IFREG | 0001;
    CHECK_EQ(ops->permission(ex, &root_cred, &st, FS_MAY_EXEC), 0);
    st.st_mode = S_IFDIR | 0000;
    CHECK_EQ(ops->permission(ex, &root_cred, &st, FS_MAY_EXEC | FS_MAY_READ | FS_MAY_WRITE), 0);
    CHECK_EQ(ops->permission(ex, &bob, &st, 0), 0);
}

static void test_credentials(void)
{
    struct fs_fh priv, sticky, team, fh, f;
    struct stat st;
    struct fs_setattr sa = {.mask = FS_SET_MODE};

    /* search permission: lookups inside a 0700 root-owned directory fail for others */
    CHECK_EQ(ops->mkdir(ex, &root_cred, &rootfh, S("priv"), 0700, &priv, &st), 0);
    CHECK_EQ(create(&root_cred, &priv, "secret", 0644, &fh), 0);
    CHECK_EQ(lookup(&alice, &priv, "secret", &fh, NULL), -EACCES);
    CHECK_EQ(lookup(&alice, &priv, ".", &fh, NULL), -EACCES);
    CHECK_EQ(lookup(&root_cred, &priv, "secret", &fh, NULL), 0);
    CHECK_EQ(create(&alice, &priv, "mine", 0644, &fh), -EACCES);
    CHECK_EQ(ops->mkdir(ex, &alice, &priv, S("sub"), 0755, &fh, &st), -EACCES);
    CHECK_EQ(ops->remove(ex, &alice, &priv, S("secret"), false), -EACCES);
    CHECK_EQ(ops->symlink(ex, &alice, &priv, S("l"), S("x"), &fh, &st), -EACCES);

    /* sticky directory: only the owner removes or renames */
    CHECK_EQ(ops->mkdir(ex, &root_cred, &rootfh, S("tmp"), 01777, &sticky, &st), 0);
    CHECK_EQ(st.st_mode & 07777, 01777);
    CHECK_EQ(create(&alice, &sticky, "alices", 0666, &f), 0);
    CHECK_EQ(ops->remove(ex, &bob, &sticky, S("alices"), false), -EPERM);
    CHECK_EQ(ops->rename(ex, &bob, &sticky, S("alices"), &sticky, S("bobs")), -EPERM);
    CHECK_EQ(ops->rename(ex, &alice, &sticky, S("alices"), &sticky, S("alices2")), 0);
    CHECK_EQ(ops->remove(ex, &alice, &sticky, S("alices2"), false), 0);

    /* group membership from the supplementary list: carol is in 5000 */
    CHECK_EQ(ops->mkdir(ex, &root_cred, &rootfh, S("team"), 0770, &team, &st), 0);
    sa.mask = FS_SET_GID;
    sa.gid = 5000;
    CHECK_EQ(ops->setattr(ex, &root_cred, &team, &sa, &st), 0);
    CHECK_EQ(create(&bob, &team, "bobs", 0644, &fh), -EACCES);
    CHECK_EQ(create(&carol, &team, "carols", 0644, &fh), 0);
    CHECK_EQ(getattr(&fh, &st), 0);
    CHECK_EQ(st.st_uid, 3000);
    CHECK_EQ(st.st_gid, 3000);
    CHECK_EQ(create(&bob, &team, "bobs", 0644, &fh), -EACCES); /* still not, after carol */
    CHECK_EQ(ops->remove(ex, &carol, &team, S("carols"), false), 0);
    /* a setgid directory gives new files its group */
    sa.mask = FS_SET_MODE;
    sa.mode = 02770;
    CHECK_EQ(ops->setattr(ex, &root_cred, &team, &sa, &st), 0);
    CHECK_EQ(create(&carol, &team, "carols", 0644, &fh), 0);
    CHECK_EQ(getattr(&fh, &st), 0);
    CHECK_EQ(st.st_gid, 5000);

    /* after all that, root still opens by handle and creates as root */
    reopen();
    CHECK_EQ(getattr(&fh, &st), 0);
    CHECK_EQ(create(&root_cred, &priv, "root2", 0600, &fh), 0);
    CHECK_EQ(getattr(&fh, &st), 0);
    CHECK_EQ(st.st_uid, 0);

    /* uid -1 is not a user */
    struct fs_cred nobody = {UINT32_MAX, 1, 0, {0}};
    CHECK_EQ(create(&nobody, &sticky, "x", 0644, &fh), -EINVAL);

    /* the thread's identity can be given back */
    CHECK_EQ(create(&alice, &sticky, "y", 0644, &fh), 0);
    CHECK_EQ((int)syscall(SYS_setfsuid, -1), 1000);
    fs_posix_thread_reset();
    CHECK_EQ((int)syscall(SYS_setfsuid, -1), 0);
    CHECK_EQ((int)syscall(SYS_setfsgid, -1), 0);
    mode_t old = umask(022);
    CHECK_EQ(old, 022); /* the test's own umask is back */
    umask(old);

    CHECK_EQ(system("rm -rf \"$PEERNFS_T\"/priv \"$PEERNFS_T\"/tmp \"$PEERNFS_T\"/team"), 0);
}

static void test_statfs(void)
{
    struct fs_statfs sf;
    CHECK_EQ(ops->statfs(ex, &rootfh, &sf), 0);
    CHECK(sf.total_bytes > 0);
    CHECK(sf.avail_bytes <= sf.free_bytes);
    CHECK(sf.free_bytes <= sf.total_bytes);
    CHECK_EQ(sf.name_max, 255);
}

static void test_mount_crossing(void)
{
    struct fs_fh m, fh;
    struct stat st;
    CHECK_EQ(ops->mkdir(ex, &root_cred, &rootfh, S("mnt"), 0755, &m, &st), 0);
    if (mount("peernfs-test", path_of("mnt"), "tmpfs", 0, "size=1m") < 0) {
        printf("test_posix: cannot mount tmpfs (%s), mount crossing not tested\n", strerror(errno));
    } else {
        CHECK_EQ(lookup(&root_cred, &rootfh, "mnt", &fh, NULL), -EXDEV);
        CHECK_EQ(plus_lookup(&rootfh, "mnt", &fh, &st), -ENODATA); /* listed, no handle */
        CHECK_EQ(umount(path_of("mnt")), 0);
        CHECK_EQ(lookup(&root_cred, &rootfh, "mnt", &fh, NULL), 0);
        CHECK(same_fh(&fh, &m));
    }
    CHECK_EQ(ops->remove(ex, &root_cred, &rootfh, S("mnt"), true), 0);
}

/* ---- the cache under pressure ---- */

#define MANY 400
static struct fs_fh many[MANY];

static void test_small_cache(void)
{
    struct fs_fh dir;
    struct stat st;
    fs_posix_set_cache_limit(16);
    reopen();
    CHECK_EQ(ops->mkdir(ex, &alice, &rootfh, S("many"), 0755, &dir, &st), 0);
    char name[32];
    for (int i = 0; i < MANY; i++) {
        snprintf(name, sizeof(name), "m%d", i);
        CHECK_EQ(create(&alice, &dir, name, 0644, &many[i]), 0);
        size_t n;
        CHECK_EQ(ops->write(ex, &many[i], 0, name, strlen(name), FS_UNSTABLE, &n, &st), 0);
    }
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < MANY; i++) {
            char buf[32];
            size_t n = 0;
            bool eof;
            CHECK_EQ(getattr(&many[i], &st), 0);
            CHECK_EQ(ops->read(ex, &many[i], 0, buf, sizeof(buf), &n, &eof), 0);
            snprintf(name, sizeof(name), "m%d", i);
            CHECK_EQ(n, strlen(name));
            CHECK(memcmp(buf, name, n) == 0);
        }
    }
    /* the cache stays near its limit */
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "test $(ls /proc/%d/fd | wc -l) -lt 100", getpid());
    CHECK_EQ(system(cmd), 0);
}

struct worker {
    int id;
    int errors;
};

static void *hammer(void *arg)
{
    struct worker *w = arg;
    unsigned seed = (unsigned)w->id * 7919u + 1;
    struct fs_fh dir;
    struct stat st;
    if (lookup(&alice, &rootfh, "many", &dir, NULL) != 0)
        w->errors++;
    for (int k = 0; k < 4000; k++) {
        int i = (int)(rand_r(&seed) % MANY);
        char buf[64], name[32];
        size_t n;
        bool eof;
        struct fs_fh fh;
        snprintf(name, sizeof(name), "m%d", i);
        switch (rand_r(&seed) % 5) {
        case 0:
            if (getattr(&many[i], &st) != 0)
                w->errors++;
            break;
        case 1:
            if (ops->read(ex, &many[i], 0, buf, sizeof(buf), &n, &eof) != 0 || n < strlen(name))
                w->errors++;
            break;
        case 2:
            if (ops->write(ex, &many[i], 64, "z", 1, FS_UNSTABLE, &n, &st) != 0)
                w->errors++;
            break;
        case 3:
            if (lookup(k % 2 ? &alice : &bob, &dir, name, &fh, NULL) != 0 || !same_fh(&fh, &many[i]))
                w->errors++;
            break;
        case 4: {
            struct fs_setattr sa = {.mask = FS_SET_MTIME_NOW};
            if (ops->setattr(ex, &alice, &many[i], &sa, &st) != 0)
                w->errors++;
            break;
        }
        }
    }
    fs_posix_thread_reset();
    return NULL;
}

static void test_concurrency(void)
{
    pthread_t th[6];
    struct worker w[6];
    for (int i = 0; i < 6; i++) {
        w[i].id = i;
        w[i].errors = 0;
        pthread_create(&th[i], NULL, hammer, &w[i]);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ(w[i].errors, 0);
    }
    fs_posix_set_cache_limit(0);
    reopen();
}

int main(void)
{
    if (geteuid() != 0) {
        printf("test_posix: needs root (open_by_handle_at), skipped\n");
        return 77;
    }
    umask(022);
    snprintf(base, sizeof(base), "/tmp/peernfs-posix-XXXXXX");
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        return 1;
    }
    setenv("PEERNFS_T", base, 1);
    chmod(base, 0777);
    int rc = ops->export_open(base, &ex);
    if (rc == -EPERM || rc == -EOPNOTSUPP || rc == -EOVERFLOW) {
        printf("test_posix: no usable file handles here (%s), skipped\n", strerror(-rc));
        rmdir(base);
        return 77;
    }
    CHECK_EQ(rc, 0);
    if (rc)
        return check_report("test_posix");
    CHECK_EQ(ops->root(ex, &rootfh), 0);

    test_export_open();
    test_create_read_write();
    test_lookup();
    test_make_things();
    test_setattr();
    test_link_rename_remove();
    test_bad_handles();
    test_restart();
    test_readdir();
    test_dircache_trust_window();
    test_dircache_hits();
    test_dircache_changes();
    test_dircache_budget();
    test_dircache_threads();
    test_permission_rules();
    test_credentials();
    test_statfs();
    test_mount_crossing();
    test_small_cache();
    test_concurrency();

    ops->export_close(ex);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", base);
    return check_report("test_posix");
}
