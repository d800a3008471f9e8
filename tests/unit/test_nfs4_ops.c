/*
 * Unit tests for the NFSv4 directory, data and xattr ops (src/nfs4/nfs4_dir.c,
 * nfs4_io.c, nfs4_xattr.c):
 * the handlers called directly with a hand-made COMPOUND context, no engine and no
 * network. Two directories under a temporary directory are exported (rw and ro to
 * 127.0.0.1), so the pseudo filesystem has a directory holding both.
 *
 * DIRECT ops (READ, READ_PLUS, READDIR, READLINK, GETXATTR, LISTXATTRS) encode their
 * result into the reply
 * buffer: it is decoded with the generated decoders and checked. The other ops fill
 * their result structure, which is checked as it is.
 *
 * Needs root (the posix backend opens files by handle); exits 77 (skipped) otherwise.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "check.h"
#include "nfs4/nfs4_attr.h"
#include "nfs4/nfs4_internal.h"
#include "nfs4/nfs4_io.h"

#define RES_BUF_SIZE ((1u << 20) + (1u << 20) / 10)

static uint8_t resbuf[RES_BUF_SIZE];
static uint8_t dec_arena_mem[4 << 20];

static char tmpdir[64];
static char path_rw[128], path_ro[128];
static struct export_table table;
static struct nfs4_server srv;
static struct sockaddr_in peer;
static struct rpc_call call;
static struct xdr_enc enc;
static struct nfs4_compound cc;

/* ---- running ops ---- */

static nfsstat4 run_op(nfs4_op_fn fn, nfs_argop4 *arg, nfs_resop4 *res, size_t room)
{
    memset(res, 0, sizeof(*res));
    xdr_enc_init(&enc, resbuf, room);
    cc.enc = &enc;
    cc.direct_overflow = false;
    nfsstat4 st = fn(&cc, arg, res);
    fs_posix_thread_reset();
    return st;
}

/* A decoder over what a DIRECT op wrote. */
static void direct_result(struct xdr_dec *d)
{
    static struct xdr_arena arena;
    xdr_arena_init(&arena, dec_arena_mem, sizeof(dec_arena_mem));
    xdr_dec_init(d, resbuf, xdr_enc_len(&enc), &arena);
}

static component4 NAME(const char *s)
{
    component4 n = {.len = (uint32_t)strlen(s), .val = (const uint8_t *)s};
    return n;
}

/* The current filehandle: an export's root, or an object below the current one. */
static void cur_export_root(const char *path)
{
    struct export *ex = export_by_path(&table, path, strlen(path));
    CHECK(ex != NULL);
    CHECK_EQ(nfs4_fh_set_export_root(&cc, ex, &cc.cur), NFS4_OK);
}

static nfsstat4 cur_lookup(const char *name)
{
    nfs_argop4 a = {.argop = OP_LOOKUP, .oplookup = {.objname = NAME(name)}};
    nfs_resop4 r;
    return run_op(nfs4_op_lookup, &a, &r, sizeof(resbuf));
}

static void cur_path(const char *export_path, const char *name)
{
    cur_export_root(export_path);
    if (name)
        CHECK_EQ(cur_lookup(name), NFS4_OK);
}

static void save_cur(void)
{
    cc.saved = cc.cur;
}

static void write_file(const char *dir, const char *name, const char *data, off_t size)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    int fd = open(p, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    CHECK(fd >= 0);
    if (data)
        CHECK_EQ(write(fd, data, strlen(data)), (long long)strlen(data));
    if (size)
        CHECK_EQ(ftruncate(fd, size), 0);
    close(fd);
}

static bool exists(const char *dir, const char *name, struct stat *st)
{
    char p[256];
    struct stat tmp;
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return lstat(p, st ? st : &tmp) == 0;
}

/* ---- CREATE ---- */

static nfsstat4 create_obj(nfs_ftype4 type, const char *name, const char *link, int mode, CREATE4res *out)
{
    static uint32_t mask[2];
    static uint8_t vals[4];
    nfs_argop4 a = {.argop = OP_CREATE};
    a.opcreate.objtype.type = type;
    if (type == NF4LNK)
        a.opcreate.objtype.linkdata = NAME(link);
    a.opcreate.objname = NAME(name);
    if (mode >= 0) {
        mask[0] = 0;
        mask[1] = 1u << (NFS4_ATTR_MODE - 32);
        xdr_put_be32(vals, (uint32_t)mode);
        a.opcreate.createattrs.attrmask.len = 2;
        a.opcreate.createattrs.attrmask.val = mask;
        a.opcreate.createattrs.attr_vals.len = 4;
        a.opcreate.createattrs.attr_vals.val = vals;
    }
    nfs_resop4 r;
    nfsstat4 st = run_op(nfs4_op_create, &a, &r, sizeof(resbuf));
    CHECK_EQ(r.opcreate.status, st);
    if (out)
        *out = r.opcreate;
    return st;
}

static nfsstat4 readlink_cur(char *buf, size_t size)
{
    nfs_argop4 a = {.argop = OP_READLINK};
    nfs_resop4 r;
    nfsstat4 st = run_op(nfs4_op_readlink, &a, &r, sizeof(resbuf));
    if (st != NFS4_OK)
        return st;
    CHECK(!cc.direct_overflow);
    struct xdr_dec d;
    READLINK4res rl;
    direct_result(&d);
    CHECK(xdr_decode_READLINK4res(&d, &rl));
    CHECK_EQ(xdr_dec_left(&d), 0);
    CHECK_EQ(rl.status, NFS4_OK);
    CHECK(rl.resok4.link.len < size);
    memcpy(buf, rl.resok4.link.val, rl.resok4.link.len);
    buf[rl.resok4.link.len] = '\0';
    return st;
}

static void test_create(void)
{
    CREATE4res r;
    struct stat st;

    cur_path(path_rw, NULL);
    struct nfs4_fh dir = cc.cur;
    CHECK_EQ(create_obj(NF4DIR, "d1", NULL, 0700, &r), NFS4_OK);
    CHECK(!r.resok4.cinfo.atomic);
    CHECK(r.resok4.attrset.len >= 2 && (r.resok4.attrset.val[1] & (1u << (NFS4_ATTR_MODE - 32))));
    CHECK(exists(path_rw, "d1", &st) && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700);
    /* the new directory is the current filehandle */
    CHECK(cc.cur.fh.len != dir.fh.len || memcmp(cc.cur.fh.data, dir.fh.data, dir.fh.len) != 0);
    CHECK_EQ(create_obj(NF4FIFO, "fifo", NULL, 0640, NULL), NFS4_OK);
    CHECK(exists(path_rw, "d1/fifo", &st) && S_ISFIFO(st.st_mode) && (st.st_mode & 07777) == 0640);

    cc.cur = dir;
    CHECK_EQ(create_obj(NF4LNK, "l1", "some/target", -1, &r), NFS4_OK);
    CHECK_EQ(r.resok4.attrset.len, 0);
    char target[64];
    CHECK_EQ(readlink_cur(target, sizeof(target)), NFS4_OK);
    CHECK(strcmp(target, "some/target") == 0);

    cc.cur = dir;
    CHECK_EQ(create_obj(NF4REG, "reg", NULL, -1, NULL), NFS4ERR_BADTYPE);
    CHECK_EQ(create_obj(NF4DIR, "d1", NULL, -1, NULL), NFS4ERR_EXIST);
    CHECK_EQ(create_obj(NF4DIR, ".", NULL, -1, NULL), NFS4ERR_BADNAME);
    CHECK_EQ(create_obj(NF4DIR, "..", NULL, -1, NULL), NFS4ERR_BADNAME);
    CHECK_EQ(create_obj(NF4DIR, "", NULL, -1, NULL), NFS4ERR_INVAL);
    CHECK_EQ(create_obj(NF4DIR, "a/b", NULL, -1, NULL), NFS4ERR_BADNAME);
    CHECK_EQ(create_obj(NF4LNK, "l2", "", -1, NULL), NFS4ERR_INVAL);
    CHECK_EQ(create_obj(NF4ATTRDIR, "x", NULL, -1, NULL), NFS4ERR_BADTYPE);
    CHECK(!exists(path_rw, "reg", NULL) && !exists(path_rw, "l2", NULL));
    /* READLINK of anything but a symlink */
    CHECK_EQ(readlink_cur(target, sizeof(target)), NFS4ERR_INVAL);

    /* a file is no directory; the read-only export and the pseudo fs are read-only */
    write_file(path_rw, "plain", "x", 0);
    cur_path(path_rw, "plain");
    CHECK_EQ(create_obj(NF4DIR, "d", NULL, -1, NULL), NFS4ERR_NOTDIR);
    cur_path(path_ro, NULL);
    CHECK_EQ(create_obj(NF4DIR, "d", NULL, -1, NULL), NFS4ERR_ROFS);
    CHECK_EQ(nfs4_fh_set_root(&cc, &cc.cur), NFS4_OK);
    CHECK_EQ(create_obj(NF4DIR, "d", NULL, -1, NULL), NFS4ERR_ROFS);
}

/* ---- READ, WRITE, COMMIT, READ_PLUS ---- */

static nfsstat4 write_cur(uint64_t off, const char *data, stable_how4 how, WRITE4res *out)
{
    nfs_argop4 a = {.argop = OP_WRITE};
    a.opwrite.offset = off;
    a.opwrite.stable = how;
    a.opwrite.data.len = (uint32_t)strlen(data);
    a.opwrite.data.val = (const uint8_t *)data;
    nfs_resop4 r;
    nfsstat4 st = run_op(nfs4_op_write, &a, &r, sizeof(resbuf));
    CHECK_EQ(r.opwrite.status, st);
    if (out)
        *out = r.opwrite;
    return st;
}

/* READ into buf (NUL-terminated); *eof. */
static nfsstat4 read_cur(uint64_t off, uint32_t count, char *buf, size_t size, bool *eof, size_t room)
{
    nfs_argop4 a = {.argop = OP_READ, .opread = {.offset = off, .count = count}};
    nfs_resop4 r;
    nfsstat4 st = run_op(nfs4_op_read, &a, &r, room);
    if (st != NFS4_OK || cc.direct_overflow)
        return st;
    struct xdr_dec d;
    READ4res rr;
    direct_result(&d);
    CHECK(xdr_decode_READ4res(&d, &rr));
    CHECK_EQ(xdr_dec_left(&d), 0);
    CHECK_EQ(rr.status, NFS4_OK);
    CHECK(rr.resok4.data.len < size);
    memcpy(buf, rr.resok4.data.val, rr.resok4.data.len);
    buf[rr.resok4.data.len] = '\0';
    *eof = rr.resok4.eof;
    return st;
}

static void test_read_write(void)
{
    WRITE4res w;
    char buf[128];
    bool eof;

    write_file(path_rw, "data", NULL, 0);
    cur_path(path_rw, "data");
    CHECK_EQ(write_cur(0, "hello world", FILE_SYNC4, &w), NFS4_OK);
    CHECK_EQ(w.resok4.count, 11);
    CHECK_EQ(w.resok4.committed, FILE_SYNC4);
    CHECK(memcmp(w.resok4.writeverf, srv.write_verf, 8) == 0);
    CHECK_EQ(write_cur(6, "WORLD", UNSTABLE4, &w), NFS4_OK);
    CHECK_EQ(w.resok4.committed, UNSTABLE4);
    CHECK_EQ(write_cur((uint64_t)INT64_MAX, "x", UNSTABLE4, NULL), NFS4ERR_FBIG);

    CHECK_EQ(read_cur(0, 100, buf, sizeof(buf), &eof, sizeof(resbuf)), NFS4_OK);
    CHECK(strcmp(buf, "hello WORLD") == 0 && eof);
    CHECK_EQ(read_cur(0, 5, buf, sizeof(buf), &eof, sizeof(resbuf)), NFS4_OK);
    CHECK(strcmp(buf, "hello") == 0 && !eof);
    CHECK_EQ(read_cur(11, 5, buf, sizeof(buf), &eof, sizeof(resbuf)), NFS4_OK);
    CHECK(buf[0] == '\0' && eof);
    CHECK_EQ(read_cur(1ull << 63, 5, buf, sizeof(buf), &eof, sizeof(resbuf)), NFS4ERR_INVAL);
    /* no room in the reply: the engine answers REP_TOO_BIG / RESOURCE */
    CHECK_EQ(read_cur(0, 5, buf, sizeof(buf), &eof, 8), NFS4_OK);
    CHECK(cc.direct_overflow);
    CHECK_EQ(xdr_enc_len(&enc), 0);

    nfs_argop4 a = {.argop = OP_COMMIT, .opcommit = {.offset = 0, .count = 0}};
    nfs_resop4 r;
    CHECK_EQ(run_op(nfs4_op_commit, &a, &r, sizeof(resbuf)), NFS4_OK);
    CHECK(memcmp(r.opcommit.resok4.writeverf, srv.write_verf, 8) == 0);
    a.opcommit.offset = UINT64_MAX;
    CHECK_EQ(run_op(nfs4_op_commit, &a, &r, sizeof(resbuf)), NFS4ERR_INVAL);

    /* READ_PLUS: one data segment, none at the end */
    nfs_argop4 p = {.argop = OP_READ_PLUS, .opread_plus = {.rpa_offset = 6, .rpa_count = 100}};
    CHECK_EQ(run_op(nfs4_op_read_plus, &p, &r, sizeof(resbuf)), NFS4_OK);
    struct xdr_dec d;
    READ_PLUS4res rp;
    direct_result(&d);
    CHECK(xdr_decode_READ_PLUS4res(&d, &rp));
    CHECK_EQ(xdr_dec_left(&d), 0);
    CHECK_EQ(rp.rp_status, NFS4_OK);
    CHECK(rp.rp_resok4.rpr_eof);
    CHECK_EQ(rp.rp_resok4.rpr_contents.len, 1);
    if (rp.rp_resok4.rpr_contents.len == 1) {
        const read_plus_content *s = &rp.rp_resok4.rpr_contents.val[0];
        CHECK_EQ(s->rpc_content, NFS4_CONTENT_DATA);
        CHECK_EQ(s->rpc_data.d_offset, 6);
        CHECK(s->rpc_data.d_data.len == 5 && memcmp(s->rpc_data.d_data.val, "WORLD", 5) == 0);
    }
    p.opread_plus.rpa_offset = 100;
    CHECK_EQ(run_op(nfs4_op_read_plus, &p, &r, sizeof(resbuf)), NFS4_OK);
    direct_result(&d);
    CHECK(xdr_decode_READ_PLUS4res(&d, &rp));
    CHECK(rp.rp_resok4.rpr_eof && rp.rp_resok4.rpr_contents.len == 0);

    /* types: a directory is ISDIR; a symlink INVAL in 4.0, SYMLINK in 4.1; a FIFO
     * WRONG_TYPE in 4.1 */
    cur_path(path_rw, NULL);
    CHECK_EQ(read_cur(0, 5, buf, sizeof(buf), &eof, sizeof(resbuf)), NFS4ERR_ISDIR);
    CHECK_EQ(write_cur(0, "x", UNSTABLE4, NULL), NFS4ERR_ISDIR);
    cur_path(path_rw, "l1");
    CHECK_EQ(read_cur(0, 5, buf, sizeof(buf), &eof, sizeof(resbuf)), NFS4ERR_INVAL);
    cc.minor = 1;
    CHECK_EQ(read_cur(0, 5, buf, sizeof(buf), &eof, sizeof(resbuf)), NFS4ERR_SYMLINK);
    cur_path(path_rw, "d1");
    CHECK_EQ(cur_lookup("fifo"), NFS4_OK);
    CHECK_EQ(write_cur(0, "x", UNSTABLE4, NULL), NFS4ERR_WRONG_TYPE);
    cc.minor = 0;
    CHECK_EQ(nfs4_fh_set_root(&cc, &cc.cur), NFS4_OK);
    CHECK_EQ(read_cur(0, 5, buf, sizeof(buf), &eof, sizeof(resbuf)), NFS4ERR_ISDIR);

    /* read-only export */
    write_file(path_ro, "rofile", "abc", 0);
    cur_path(path_ro, "rofile");
    CHECK_EQ(write_cur(0, "x", UNSTABLE4, NULL), NFS4ERR_ROFS);
    CHECK_EQ(read_cur(0, 5, buf, sizeof(buf), &eof, sizeof(resbuf)), NFS4_OK);
    CHECK(strcmp(buf, "abc") == 0);
}

/* ---- SEEK, ALLOCATE, DEALLOCATE ---- */

static nfsstat4 seek_cur(uint64_t off, data_content4 what, SEEK4res *out)
{
    nfs_argop4 a = {.argop = OP_SEEK, .opseek = {.sa_offset = off, .sa_what = what}};
    nfs_resop4 r;
    nfsstat4 st = run_op(nfs4_op_seek, &a, &r, sizeof(resbuf));
    CHECK_EQ(r.opseek.sa_status, st);
    *out = r.opseek;
    return st;
}

static void test_seek_allocate(void)
{
    SEEK4res s;
    struct stat st;
    const off_t size = 1 << 20;

    cc.minor = 2;
    write_file(path_rw, "sparse", "data", size);
    cur_path(path_rw, "sparse");
    CHECK_EQ(seek_cur(0, NFS4_CONTENT_DATA, &s), NFS4_OK);
    CHECK_EQ(s.resok4.sr_offset, 0);
    CHECK(!s.resok4.sr_eof);
    CHECK_EQ(seek_cur(0, NFS4_CONTENT_HOLE, &s), NFS4_OK);
    /* a filesystem without hole reporting gives the implied hole at the end */
    CHECK(s.resok4.sr_offset > 0 && s.resok4.sr_offset <= (uint64_t)size);
    CHECK_EQ(s.resok4.sr_eof, s.resok4.sr_offset == (uint64_t)size);
    CHECK_EQ(seek_cur((uint64_t)size, NFS4_CONTENT_DATA, &s), NFS4ERR_NXIO);
    CHECK_EQ(seek_cur((uint64_t)size + 10, NFS4_CONTENT_HOLE, &s), NFS4ERR_NXIO);

    nfs_argop4 a = {.argop = OP_ALLOCATE, .opallocate = {.aa_offset = 0, .aa_length = 2 * (uint64_t)size}};
    nfs_resop4 r;
    nfsstat4 ast = run_op(nfs4_op_allocate, &a, &r, sizeof(resbuf));
    CHECK(ast == NFS4_OK || ast == NFS4ERR_NOTSUPP);
    if (ast == NFS4_OK)
        CHECK(exists(path_rw, "sparse", &st) && st.st_size == 2 * size);
    a.opallocate.aa_length = 0;
    CHECK_EQ(run_op(nfs4_op_allocate, &a, &r, sizeof(resbuf)), NFS4ERR_INVAL);
    a.opallocate.aa_offset = UINT64_MAX - 1;
    a.opallocate.aa_length = 10;
    CHECK_EQ(run_op(nfs4_op_allocate, &a, &r, sizeof(resbuf)), NFS4ERR_FBIG);

    nfs_argop4 da = {.argop = OP_DEALLOCATE, .opdeallocate = {.da_offset = 0, .da_length = 4096}};
    nfsstat4 dst = run_op(nfs4_op_deallocate, &da, &r, sizeof(resbuf));
    CHECK(dst == NFS4_OK || dst == NFS4ERR_NOTSUPP);
    if (dst == NFS4_OK) {
        char buf[8];
        bool eof;
        CHECK_EQ(read_cur(0, 4, buf, sizeof(buf), &eof, sizeof(resbuf)), NFS4_OK);
        CHECK(memcmp(buf, "\0\0\0\0", 4) == 0);
        CHECK(exists(path_rw, "sparse", &st) && st.st_size >= size);
    }
    cur_path(path_rw, NULL);
    CHECK_EQ(seek_cur(0, NFS4_CONTENT_DATA, &s), NFS4ERR_ISDIR);
    cc.minor = 0;
}

/* ---- REMOVE, RENAME, LINK ---- */

static nfsstat4 remove_name(const char *name)
{
    nfs_argop4 a = {.argop = OP_REMOVE, .opremove = {.target = NAME(name)}};
    nfs_resop4 r;
    nfsstat4 st = run_op(nfs4_op_remove, &a, &r, sizeof(resbuf));
    CHECK_EQ(r.opremove.status, st);
    if (st == NFS4_OK)
        CHECK(!r.opremove.resok4.cinfo.atomic);
    return st;
}

static nfsstat4 rename_names(const char *from, const char *to)
{
    nfs_argop4 a = {.argop = OP_RENAME, .oprename = {.oldname = NAME(from), .newname = NAME(to)}};
    nfs_resop4 r;
    nfsstat4 st = run_op(nfs4_op_rename, &a, &r, sizeof(resbuf));
    CHECK_EQ(r.oprename.status, st);
    return st;
}

static nfsstat4 link_name(const char *name)
{
    nfs_argop4 a = {.argop = OP_LINK, .oplink = {.newname = NAME(name)}};
    nfs_resop4 r;
    nfsstat4 st = run_op(nfs4_op_link, &a, &r, sizeof(resbuf));
    CHECK_EQ(r.oplink.status, st);
    return st;
}

static void test_remove_rename_link(void)
{
    struct stat st;
    char p[256];

    snprintf(p, sizeof(p), "%s/rdir", path_rw);
    CHECK_EQ(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/rdir/sub", path_rw);
    CHECK_EQ(mkdir(p, 0755), 0);
    write_file(path_rw, "rdir/sub/f", "x", 0);
    write_file(path_rw, "rdir/g", "y", 0);

    cur_path(path_rw, "rdir");
    CHECK_EQ(remove_name("sub"), NFS4ERR_NOTEMPTY);
    CHECK_EQ(remove_name("missing"), NFS4ERR_NOENT);
    CHECK_EQ(remove_name("."), NFS4ERR_BADNAME);
    CHECK_EQ(remove_name(""), NFS4ERR_INVAL);

    /* RENAME: saved = source directory, current = target directory */
    cur_path(path_rw, "rdir");
    save_cur();
    CHECK_EQ(cur_lookup("sub"), NFS4_OK);
    CHECK_EQ(rename_names("g", "g2"), NFS4_OK);
    CHECK(!exists(path_rw, "rdir/g", NULL) && exists(path_rw, "rdir/sub/g2", NULL));
    CHECK_EQ(rename_names("g", "g3"), NFS4ERR_NOENT);
    CHECK_EQ(rename_names("..", "g3"), NFS4ERR_BADNAME);
    /* a directory onto a non-empty directory */
    snprintf(p, sizeof(p), "%s/rdir/e", path_rw);
    CHECK_EQ(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/rdir/sub/full", path_rw);
    CHECK_EQ(mkdir(p, 0755), 0);
    write_file(path_rw, "rdir/sub/full/x", "z", 0);
    CHECK_EQ(rename_names("e", "full"), NFS4ERR_EXIST);
    /* across exports */
    cur_path(path_ro, NULL);
    CHECK_EQ(rename_names("e", "e"), NFS4ERR_XDEV);

    /* LINK: saved = the file, current = the directory */
    cur_path(path_rw, "rdir");
    CHECK_EQ(cur_lookup("sub"), NFS4_OK);
    CHECK_EQ(cur_lookup("g2"), NFS4_OK);
    save_cur();
    cur_path(path_rw, "rdir");
    CHECK_EQ(link_name("g2-link"), NFS4_OK);
    CHECK(exists(path_rw, "rdir/g2-link", &st) && st.st_nlink == 2);
    CHECK_EQ(link_name("g2-link"), NFS4ERR_EXIST);
    save_cur(); /* a directory */
    CHECK_EQ(link_name("dirlink"), NFS4ERR_ISDIR);
    cc.saved.kind = NFS4_FH_NONE;
    CHECK_EQ(link_name("x"), NFS4ERR_NOFILEHANDLE);

    /* REMOVE takes files and empty directories alike */
    cur_path(path_rw, "rdir");
    CHECK_EQ(remove_name("g2-link"), NFS4_OK);
    CHECK_EQ(remove_name("e"), NFS4_OK);
    CHECK(!exists(path_rw, "rdir/g2-link", NULL) && !exists(path_rw, "rdir/e", NULL));
    cur_path(path_ro, NULL);
    CHECK_EQ(remove_name("rofile"), NFS4ERR_ROFS);
}

/* ---- READDIR ---- */

#define NFILES 60

struct listing {
    unsigned seen[NFILES];
    unsigned others;
    unsigned entries;
    uint64_t last_cookie;
    verifier4 verf;
    bool eof;
};

static nfsstat4 readdir_cur(uint64_t cookie, const verifier4 verf, uint32_t dircount, uint32_t maxcount,
                            const uint32_t *req, uint32_t nreq, READDIR4res *out)
{
    nfs_argop4 a = {.argop = OP_READDIR};
    a.opreaddir.cookie = cookie;
    memcpy(a.opreaddir.cookieverf, verf, sizeof(verifier4));
    a.opreaddir.dircount = dircount;
    a.opreaddir.maxcount = maxcount;
    a.opreaddir.attr_request.len = nreq;
    a.opreaddir.attr_request.val = (uint32_t *)req;
    nfs_resop4 r;
    nfsstat4 st = run_op(nfs4_op_readdir, &a, &r, sizeof(resbuf));
    if (st != NFS4_OK)
        return st;
    CHECK(!cc.direct_overflow);
    struct xdr_dec d;
    direct_result(&d);
    CHECK(xdr_decode_READDIR4res(&d, out));
    CHECK_EQ(xdr_dec_left(&d), 0);
    CHECK_EQ(out->status, NFS4_OK);
    CHECK(xdr_enc_len(&enc) <= maxcount + 4); /* maxcount: READDIR4resok, the status excluded */
    return st;
}

/* One page into l: names f00..f59 counted, cookies never 1 or 2. */
static void take_page(struct listing *l, const READDIR4res *res, const uint32_t *req)
{
    memcpy(l->verf, res->resok4.cookieverf, sizeof(verifier4));
    l->eof = res->resok4.reply.eof;
    for (const entry4 *e = res->resok4.reply.entries; e; e = e->nextentry) {
        l->entries++;
        CHECK(e->cookie > 2);
        l->last_cookie = e->cookie;
        char name[300];
        memcpy(name, e->name.val, e->name.len);
        name[e->name.len] = '\0';
        CHECK(strcmp(name, ".") != 0 && strcmp(name, "..") != 0);
        unsigned i;
        if (sscanf(name, "f%u", &i) == 1 && i < NFILES)
            l->seen[i]++;
        else
            l->others++;
        /* the attributes asked for came back (type is word 0, size word 0) */
        if (req)
            CHECK(e->attrs.attrmask.len >= 1 && (e->attrs.attrmask.val[0] & req[0]) == req[0]);
        else
            CHECK(e->attrs.attr_vals.len == 0);
    }
}

static void list_all(const uint32_t *req, uint32_t nreq, uint32_t maxcount, struct listing *l)
{
    static const verifier4 zero;
    READDIR4res res;
    memset(l, 0, sizeof(*l));
    CHECK_EQ(readdir_cur(0, zero, 0, maxcount, req, nreq, &res), NFS4_OK);
    take_page(l, &res, req);
    for (int pages = 1; !l->eof && pages < 1000; pages++) {
        CHECK_EQ(readdir_cur(l->last_cookie, l->verf, 0, maxcount, req, nreq, &res), NFS4_OK);
        take_page(l, &res, req);
    }
}

static void test_readdir(void)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/list", path_rw);
    CHECK_EQ(mkdir(p, 0755), 0);
    for (int i = 0; i < NFILES; i++) {
        char n[16];
        snprintf(n, sizeof(n), "list/f%02d", i);
        write_file(path_rw, n, "x", 0);
    }
    cur_path(path_rw, "list");

    struct listing l;
    /* type + fileid: from the directory entries alone */
    const uint32_t cheap[2] = {(1u << NFS4_ATTR_TYPE) | (1u << NFS4_ATTR_FILEID),
                               1u << (NFS4_ATTR_MOUNTED_ON_FILEID - 32)};
    list_all(cheap, 2, 400, &l);
    CHECK(l.eof);
    CHECK_EQ(l.others, 0);
    for (int i = 0; i < NFILES; i++)
        CHECK_EQ(l.seen[i], 1);
    /* type, size, filehandle, rdattr_error: the backend's attributes */
    const uint32_t full[2] = {(1u << NFS4_ATTR_TYPE) | (1u << NFS4_ATTR_SIZE) | (1u << NFS4_ATTR_RDATTR_ERROR) |
                                  (1u << NFS4_ATTR_FILEHANDLE),
                              1u << (NFS4_ATTR_MODE - 32)};
    list_all(full, 2, 1000, &l);
    CHECK(l.eof);
    CHECK_EQ(l.entries, NFILES);
    for (int i = 0; i < NFILES; i++)
        CHECK_EQ(l.seen[i], 1);
    /* no attributes at all, one big page */
    list_all(NULL, 0, 64 * 1024, &l);
    CHECK(l.eof);
    CHECK_EQ(l.entries, NFILES);

    /* cookies and verifiers */
    static const verifier4 zero;
    verifier4 other = {1, 2, 3, 4, 5, 6, 7, 8};
    READDIR4res res;
    CHECK_EQ(readdir_cur(1, zero, 0, 4096, cheap, 2, &res), NFS4ERR_BAD_COOKIE);
    CHECK_EQ(readdir_cur(2, zero, 0, 4096, cheap, 2, &res), NFS4ERR_BAD_COOKIE);
    CHECK_EQ(readdir_cur(l.last_cookie, other, 0, 4096, cheap, 2, &res), NFS4ERR_NOT_SAME);
    CHECK_EQ(readdir_cur(0, other, 0, 4096, cheap, 2, &res), NFS4_OK);
    CHECK_EQ(readdir_cur(l.last_cookie, zero, 0, 4096, cheap, 2, &res), NFS4_OK);
    CHECK(res.resok4.reply.eof && !res.resok4.reply.entries);
    /* the end of the listing fits in 16 bytes (verifier, no entry, eof), not in 15 */
    CHECK_EQ(readdir_cur(l.last_cookie, zero, 0, 16, cheap, 2, &res), NFS4_OK);
    CHECK(res.resok4.reply.eof && !res.resok4.reply.entries);
    CHECK_EQ(readdir_cur(l.last_cookie, zero, 0, 15, cheap, 2, &res), NFS4ERR_TOOSMALL);
    /* not even one entry fits */
    CHECK_EQ(readdir_cur(0, zero, 0, 40, cheap, 2, &res), NFS4ERR_TOOSMALL);
    /* dircount limits the entries but never below one */
    CHECK_EQ(readdir_cur(0, zero, 1, 64 * 1024, cheap, 2, &res), NFS4_OK);
    CHECK(res.resok4.reply.entries && !res.resok4.reply.entries->nextentry && !res.resok4.reply.eof);
    /* a write-only attribute fails the listing */
    const uint32_t wo[2] = {0, 1u << (NFS4_ATTR_TIME_MODIFY_SET - 32)};
    CHECK_EQ(readdir_cur(0, zero, 0, 4096, wo, 2, &res), NFS4ERR_INVAL);

    /* entries of an export root: mounted_on_fileid is each entry's own fileid (only
     * the root itself is mounted on the pseudo fs), with and without backend attrs */
    const uint32_t ids[2][2] = {{1u << NFS4_ATTR_FILEID, 1u << (NFS4_ATTR_MOUNTED_ON_FILEID - 32)},
                                {(1u << NFS4_ATTR_FILEID) | (1u << NFS4_ATTR_SIZE),
                                 1u << (NFS4_ATTR_MOUNTED_ON_FILEID - 32)}};
    cur_path(path_rw, NULL);
    for (int k = 0; k < 2; k++) {
        CHECK_EQ(readdir_cur(0, zero, 0, 64 * 1024, ids[k], 2, &res), NFS4_OK);
        unsigned n = 0;
        size_t fileid_at = 0, mounted_at = k == 0 ? 8 : 16;
        for (const entry4 *e = res.resok4.reply.entries; e; e = e->nextentry, n++) {
            CHECK_EQ(e->attrs.attr_vals.len, mounted_at + 8);
            if (e->attrs.attr_vals.len != mounted_at + 8)
                continue;
            const uint8_t *v = e->attrs.attr_vals.val;
            if (k == 1)
                fileid_at = 8; /* size comes first */
            CHECK(memcmp(v + fileid_at, v + mounted_at, 8) == 0);
        }
        CHECK(n > 3);
    }

    cur_path(path_rw, "list");
    CHECK_EQ(cur_lookup("f00"), NFS4_OK);
    CHECK_EQ(readdir_cur(0, zero, 0, 4096, cheap, 2, &res), NFS4ERR_NOTDIR);
}

/* The pseudo directory holding both exports lists them with their own fsids. */
static void test_readdir_pseudo(void)
{
    static const verifier4 zero;
    READDIR4res res;

    CHECK_EQ(nfs4_fh_set_root(&cc, &cc.cur), NFS4_OK);
    /* walk down to the temporary directory: /tmp/peernfs-ops4-XXXXXX */
    CHECK_EQ(cur_lookup("tmp"), NFS4_OK);
    CHECK_EQ(cur_lookup(tmpdir + 5), NFS4_OK);
    CHECK_EQ(cc.cur.kind, NFS4_FH_PSEUDO);
    const uint32_t req[2] = {(1u << NFS4_ATTR_TYPE) | (1u << NFS4_ATTR_FSID), 1u << (NFS4_ATTR_MOUNTED_ON_FILEID - 32)};
    CHECK_EQ(readdir_cur(0, zero, 0, 4096, req, 2, &res), NFS4_OK);
    CHECK(res.resok4.reply.eof);
    unsigned n = 0;
    uint64_t fsid_major[2] = {0, 0};
    for (const entry4 *e = res.resok4.reply.entries; e; e = e->nextentry, n++) {
        CHECK(e->cookie > 2);
        CHECK(e->name.len == 2 && (memcmp(e->name.val, "ro", 2) == 0 || memcmp(e->name.val, "rw", 2) == 0));
        /* type (4) fsid (16) mounted_on_fileid (8) */
        CHECK_EQ(e->attrs.attr_vals.len, 28);
        if (e->attrs.attr_vals.len == 28 && n < 2) {
            const uint8_t *v = e->attrs.attr_vals.val;
            CHECK_EQ(xdr_get_be32(v), NF4DIR);
            fsid_major[n] = (uint64_t)xdr_get_be32(v + 4) << 32 | xdr_get_be32(v + 8);
        }
    }
    CHECK_EQ(n, 2);
    CHECK(fsid_major[0] != fsid_major[1]);
    /* resuming after the first entry gives the second only */
    if (res.resok4.reply.entries) {
        uint64_t first = res.resok4.reply.entries->cookie;
        CHECK_EQ(readdir_cur(first, res.resok4.cookieverf, 0, 4096, req, 2, &res), NFS4_OK);
        CHECK(res.resok4.reply.entries && !res.resok4.reply.entries->nextentry && res.resok4.reply.eof);
    }
}

/* ---- extended attributes (RFC 8276) ---- */

static nfsstat4 setxattr_cur(setxattr_option4 how, const char *name, const void *val, uint32_t len,
                             change_info4 *ci)
{
    nfs_argop4 a = {.argop = OP_SETXATTR};
    a.opsetxattr.sxa_option = how;
    a.opsetxattr.sxa_key = NAME(name);
    a.opsetxattr.sxa_value.len = len;
    a.opsetxattr.sxa_value.val = val;
    nfs_resop4 r;
    nfsstat4 st = run_op(nfs4_op_setxattr, &a, &r, sizeof(resbuf));
    CHECK_EQ(r.opsetxattr.sxr_status, st);
    if (ci && st == NFS4_OK)
        *ci = r.opsetxattr.sxr_info;
    return st;
}

static nfsstat4 removexattr_cur(const char *name)
{
    nfs_argop4 a = {.argop = OP_REMOVEXATTR, .opremovexattr = {.rxa_name = NAME(name)}};
    nfs_resop4 r;
    nfsstat4 st = run_op(nfs4_op_removexattr, &a, &r, sizeof(resbuf));
    CHECK_EQ(r.opremovexattr.rxr_status, st);
    if (st == NFS4_OK)
        CHECK(!r.opremovexattr.rxr_info.atomic && r.opremovexattr.rxr_info.after >= r.opremovexattr.rxr_info.before);
    return st;
}

/* GETXATTR of a name given as bytes (names with a NUL); the value NUL-terminated in buf. */
static nfsstat4 getxattr_key(xattrkey4 key, char *buf, size_t size, uint32_t *len, size_t room)
{
    nfs_argop4 a = {.argop = OP_GETXATTR, .opgetxattr = {.gxa_name = key}};
    nfs_resop4 r;
    nfsstat4 st = run_op(nfs4_op_getxattr, &a, &r, room);
    if (st != NFS4_OK || cc.direct_overflow)
        return st;
    struct xdr_dec d;
    GETXATTR4res g;
    direct_result(&d);
    CHECK(xdr_decode_GETXATTR4res(&d, &g));
    CHECK_EQ(xdr_dec_left(&d), 0);
    CHECK_EQ(g.gxr_status, NFS4_OK);
    CHECK(g.gxr_value.len < size);
    if (g.gxr_value.len < size) {
        memcpy(buf, g.gxr_value.val, g.gxr_value.len);
        buf[g.gxr_value.len] = '\0';
    }
    if (len)
        *len = g.gxr_value.len;
    return st;
}

static nfsstat4 getxattr_cur(const char *name, char *buf, size_t size)
{
    return getxattr_key(NAME(name), buf, size, NULL, sizeof(resbuf));
}

/* One LISTXATTRS page: names appended to names[] (NUL-separated, "|" between them). */
static nfsstat4 listxattrs_cur(uint64_t cookie, uint32_t maxcount, char *names, size_t size, uint32_t *count,
                               uint64_t *next, bool *eof)
{
    nfs_argop4 a = {.argop = OP_LISTXATTRS, .oplistxattrs = {.lxa_cookie = cookie, .lxa_maxcount = maxcount}};
    nfs_resop4 r;
    nfsstat4 st = run_op(nfs4_op_listxattrs, &a, &r, sizeof(resbuf));
    if (st != NFS4_OK)
        return st;
    CHECK(!cc.direct_overflow);
    struct xdr_dec d;
    LISTXATTRS4res l;
    direct_result(&d);
    CHECK(xdr_decode_LISTXATTRS4res(&d, &l));
    CHECK_EQ(xdr_dec_left(&d), 0);
    CHECK_EQ(l.lxr_status, NFS4_OK);
    /* the resok part (cookie, names, eof) stays within maxcount */
    CHECK(xdr_enc_len(&enc) - 4 <= maxcount);
    *count = l.lxr_value.lxr_names.len;
    *next = l.lxr_value.lxr_cookie;
    *eof = l.lxr_value.lxr_eof;
    for (uint32_t i = 0; i < l.lxr_value.lxr_names.len; i++) {
        const xattrkey4 *k = &l.lxr_value.lxr_names.val[i];
        size_t used = strlen(names);
        if (used + k->len + 2 < size) {
            memcpy(names + used, k->val, k->len);
            names[used + k->len] = '|';
            names[used + k->len + 1] = '\0';
        }
    }
    return st;
}

static nfsstat4 access_cur(uint32_t asked, uint32_t *supported, uint32_t *granted)
{
    nfs_argop4 a = {.argop = OP_ACCESS, .opaccess = {.access = asked}};
    nfs_resop4 r;
    nfsstat4 st = run_op(nfs4_op_access, &a, &r, sizeof(resbuf));
    *supported = r.opaccess.resok4.supported;
    *granted = r.opaccess.resok4.access;
    return st;
}

/* The xattr_support attribute of the current filehandle (-1: not in the reply). */
static int xattr_support_cur(void)
{
    nfs_argop4 a = {.argop = OP_GETATTR};
    uint32_t req[3] = {0, 0, 1u << (NFS4_ATTR_XATTR_SUPPORT - 64)};
    a.opgetattr.attr_request.len = 3;
    a.opgetattr.attr_request.val = req;
    nfs_resop4 r;
    CHECK_EQ(run_op(nfs4_op_getattr, &a, &r, sizeof(resbuf)), NFS4_OK);
    struct xdr_dec d;
    GETATTR4res g;
    direct_result(&d);
    CHECK(xdr_decode_GETATTR4res(&d, &g));
    CHECK_EQ(g.status, NFS4_OK);
    if (g.resok4.obj_attributes.attr_vals.len != 4)
        return -1;
    return (int)xdr_get_be32(g.resok4.obj_attributes.attr_vals.val);
}

#define XA_ALL (ACCESS4_XAREAD | ACCESS4_XAWRITE | ACCESS4_XALIST)

/* Does the filesystem under path_rw store user xattrs? (tmpfs before Linux 6.6 does not) */
static bool fs_has_user_xattrs(void)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/probe", path_rw);
    write_file(path_rw, "probe", NULL, 0);
    bool ok = setxattr(p, "user.probe", "1", 1, 0) == 0;
    if (!ok)
        CHECK(errno == ENOTSUP);
    unlink(p);
    return ok;
}

/* A backend without the xattr ops: NOTSUPP everywhere and xattr_support false, with a
 * GETATTR that still succeeds (the Linux client asks for it at mount). */
static void test_xattr_unsupported(void)
{
    static struct fs_ops no_xattrs;
    char buf[16];
    no_xattrs = fs_posix_ops;
    no_xattrs.xattr_supported = NULL;
    no_xattrs.getxattr = NULL;
    no_xattrs.setxattr = NULL;
    no_xattrs.listxattr = NULL;
    no_xattrs.removexattr = NULL;
    write_file(path_rw, "xa-nosupp", NULL, 0);
    cur_path(path_rw, "xa-nosupp");
    struct export *ex = cc.cur.ex;
    const struct fs_ops *saved = ex->ops;
    ex->ops = &no_xattrs;
    CHECK_EQ(xattr_support_cur(), 0);
    CHECK_EQ(getxattr_cur("a", buf, sizeof(buf)), NFS4ERR_NOTSUPP);
    CHECK_EQ(setxattr_cur(SETXATTR4_EITHER, "a", "1", 1, NULL), NFS4ERR_NOTSUPP);
    CHECK_EQ(removexattr_cur("a"), NFS4ERR_NOTSUPP);
    uint32_t count;
    uint64_t next;
    bool eof;
    CHECK_EQ(listxattrs_cur(0, 4096, buf, sizeof(buf), &count, &next, &eof), NFS4ERR_NOTSUPP);
    ex->ops = saved;
}

static void test_xattr_names_values(void)
{
    char buf[512], p[256];
    change_info4 ci;
    memset(&ci, 0, sizeof(ci));

    write_file(path_rw, "xa", NULL, 0);
    snprintf(p, sizeof(p), "%s/xa", path_rw);
    cur_path(path_rw, "xa");
    CHECK_EQ(xattr_support_cur(), 1);
    CHECK_EQ(setxattr_cur(SETXATTR4_EITHER, "color", "blue", 4, &ci), NFS4_OK);
    CHECK(!ci.atomic && ci.after >= ci.before);
    /* stored in the user namespace, under the name the client gave */
    ssize_t n = getxattr(p, "user.color", buf, sizeof(buf));
    CHECK(n == 4 && memcmp(buf, "blue", 4) == 0);
    CHECK_EQ(getxattr_cur("color", buf, sizeof(buf)), NFS4_OK);
    CHECK(strcmp(buf, "blue") == 0);
    CHECK_EQ(getxattr_cur("missing", buf, sizeof(buf)), NFS4ERR_NOXATTR);
    /* CREATE of an existing one, REPLACE of a missing one */
    CHECK_EQ(setxattr_cur(SETXATTR4_CREATE, "color", "red", 3, NULL), NFS4ERR_EXIST);
    CHECK_EQ(setxattr_cur(SETXATTR4_REPLACE, "missing", "red", 3, NULL), NFS4ERR_NOXATTR);
    CHECK_EQ(setxattr_cur(SETXATTR4_REPLACE, "color", "red", 3, NULL), NFS4_OK);
    CHECK_EQ(setxattr_cur(SETXATTR4_CREATE, "shape", "", 0, NULL), NFS4_OK);
    uint32_t len = 99;
    CHECK_EQ(getxattr_key(NAME("shape"), buf, sizeof(buf), &len, sizeof(resbuf)), NFS4_OK);
    CHECK_EQ(len, 0);
    CHECK_EQ(getxattr_cur("color", buf, sizeof(buf)), NFS4_OK);
    CHECK(strcmp(buf, "red") == 0);

    /* names: empty, too long (with and without the "user." prefix), NUL inside, not UTF-8 */
    char longname[260];
    memset(longname, 'n', sizeof(longname));
    longname[256] = '\0';
    CHECK_EQ(setxattr_cur(SETXATTR4_EITHER, "", "1", 1, NULL), NFS4ERR_INVAL);
    CHECK_EQ(setxattr_cur(SETXATTR4_EITHER, longname, "1", 1, NULL), NFS4ERR_NAMETOOLONG);
    longname[251] = '\0';
    CHECK_EQ(setxattr_cur(SETXATTR4_EITHER, longname, "1", 1, NULL), NFS4ERR_NAMETOOLONG);
    longname[250] = '\0';
    CHECK_EQ(setxattr_cur(SETXATTR4_EITHER, longname, "1", 1, NULL), NFS4_OK);
    CHECK_EQ(removexattr_cur(longname), NFS4_OK);
    xattrkey4 nul = {.len = 3, .val = (const uint8_t *)"a\0b"};
    CHECK_EQ(getxattr_key(nul, buf, sizeof(buf), NULL, sizeof(resbuf)), NFS4ERR_BADNAME);
    CHECK_EQ(getxattr_cur("\xc0\xc1", buf, sizeof(buf)), NFS4ERR_INVAL);
    CHECK_EQ(getxattr_cur("", buf, sizeof(buf)), NFS4ERR_INVAL);

    /* values: over 64 KiB is XATTR2BIG before the backend; one larger than the reply
     * room is XATTR2BIG too; no room for even the header is the engine's overflow */
    static uint8_t big[FS_XATTR_SIZE_MAX + 1];
    memset(big, 'v', sizeof(big));
    CHECK_EQ(setxattr_cur(SETXATTR4_EITHER, "big", big, sizeof(big), NULL), NFS4ERR_XATTR2BIG);
    CHECK_EQ(setxattr_cur(SETXATTR4_EITHER, "big", big, 1000, NULL), NFS4_OK);
    CHECK_EQ(getxattr_key(NAME("big"), buf, sizeof(buf), NULL, 200), NFS4ERR_XATTR2BIG);
    CHECK_EQ(getxattr_key(NAME("big"), buf, sizeof(buf), NULL, 4), NFS4_OK);
    CHECK(cc.direct_overflow);
    char *bigbuf = malloc(2000);
    CHECK_EQ(getxattr_key(NAME("big"), bigbuf, 2000, &len, 1008), NFS4_OK);
    CHECK_EQ(len, 1000);
    free(bigbuf);
    /* a session's ca_maxresponsesize bounds the value as the buffer does */
    cc.reply_start = resbuf;
    cc.max_reply = 500;
    CHECK_EQ(getxattr_key(NAME("big"), buf, sizeof(buf), NULL, sizeof(resbuf)), NFS4ERR_XATTR2BIG);
    cc.max_reply = 0;
    cc.reply_start = NULL;

    /* REMOVEXATTR */
    CHECK_EQ(removexattr_cur("big"), NFS4_OK);
    CHECK_EQ(removexattr_cur("big"), NFS4ERR_NOXATTR);
    CHECK_EQ(getxattr_cur("big", buf, sizeof(buf)), NFS4ERR_NOXATTR);
    CHECK(getxattr(p, "user.big", NULL, 0) < 0 && errno == ENODATA);
}

static void test_xattr_list(void)
{
    char names[4096], p[256];
    uint32_t count;
    uint64_t next;
    bool eof;

    write_file(path_rw, "xl", NULL, 0);
    snprintf(p, sizeof(p), "%s/xl", path_rw);
    cur_path(path_rw, "xl");
    /* empty: an empty list with eof fits the 16 bytes of cookie, count and eof */
    names[0] = '\0';
    CHECK_EQ(listxattrs_cur(0, 16, names, sizeof(names), &count, &next, &eof), NFS4_OK);
    CHECK(count == 0 && eof && next == 0);
    CHECK_EQ(listxattrs_cur(0, 15, names, sizeof(names), &count, &next, &eof), NFS4ERR_TOOSMALL);
    /* 20 names set out of order, plus one of another namespace that must not show */
    for (int i = 19; i >= 0; i--) {
        char nm[16];
        snprintf(nm, sizeof(nm), "n%02d", i);
        CHECK_EQ(setxattr_cur(SETXATTR4_CREATE, nm, "x", 1, NULL), NFS4_OK);
    }
    CHECK_EQ(setxattr(p, "trusted.hidden", "1", 1, 0), 0);
    names[0] = '\0';
    CHECK_EQ(listxattrs_cur(0, 65536, names, sizeof(names), &count, &next, &eof), NFS4_OK);
    CHECK(count == 20 && eof && next == 20);
    CHECK(strncmp(names, "n00|n01|n02|", 12) == 0);
    CHECK(strstr(names, "hidden") == NULL && strstr(names, "user.") == NULL);
    /* paging: each name is 8 bytes (length + "nNN" padded): 16 + 3 * 8 gives 3 a page */
    char paged[4096] = "";
    uint64_t cookie = 0;
    unsigned pages = 0;
    do {
        CHECK_EQ(listxattrs_cur(cookie, 16 + 3 * 8, paged, sizeof(paged), &count, &next, &eof), NFS4_OK);
        CHECK(count == 3 || (eof && count == 2));
        CHECK_EQ(next, cookie + count);
        cookie = next;
    } while (!eof && ++pages < 20);
    CHECK_EQ(pages, 6);
    CHECK(strcmp(paged, names) == 0);
    /* not even one name fits; a cookie at the end; past it */
    CHECK_EQ(listxattrs_cur(0, 16 + 7, paged, sizeof(paged), &count, &next, &eof), NFS4ERR_TOOSMALL);
    CHECK_EQ(listxattrs_cur(20, 16, paged, sizeof(paged), &count, &next, &eof), NFS4_OK);
    CHECK(count == 0 && eof && next == 20);
    CHECK_EQ(listxattrs_cur(21, 4096, paged, sizeof(paged), &count, &next, &eof), NFS4ERR_BAD_COOKIE);
    CHECK_EQ(listxattrs_cur(UINT64_MAX, 4096, paged, sizeof(paged), &count, &next, &eof), NFS4ERR_BAD_COOKIE);
}

/* Directories carry xattrs; symlinks do not; read-only exports refuse changes; the
 * caller's credential decides access. */
static void test_xattr_objects_access(void)
{
    char buf[64], p[256];
    uint32_t supported, granted;

    CHECK_EQ(mkdir(strcat(strcpy(p, path_rw), "/xdir"), 0755), 0);
    cur_path(path_rw, "xdir");
    CHECK_EQ(setxattr_cur(SETXATTR4_EITHER, "d", "1", 1, NULL), NFS4_OK);
    CHECK_EQ(getxattr_cur("d", buf, sizeof(buf)), NFS4_OK);
    CHECK_EQ(access_cur(XA_ALL | ACCESS4_LOOKUP, &supported, &granted), NFS4_OK);
    CHECK_EQ(supported, XA_ALL | ACCESS4_LOOKUP);
    CHECK_EQ(granted, XA_ALL | ACCESS4_LOOKUP);

    snprintf(p, sizeof(p), "%s/xlink", path_rw);
    CHECK_EQ(symlink("xa", p), 0);
    cur_path(path_rw, "xlink");
    CHECK_EQ(getxattr_cur("color", buf, sizeof(buf)), NFS4ERR_NOTSUPP);
    CHECK_EQ(setxattr_cur(SETXATTR4_EITHER, "l", "1", 1, NULL), NFS4ERR_NOTSUPP);
    CHECK_EQ(access_cur(XA_ALL, &supported, &granted), NFS4_OK);
    CHECK_EQ(granted & XA_ALL, 0);

    /* read-only export: read and list work, changes are ROFS, XAWRITE is not granted */
    write_file(path_ro, "xro", NULL, 0);
    snprintf(p, sizeof(p), "%s/xro", path_ro);
    CHECK_EQ(setxattr(p, "user.k", "v", 1, 0), 0);
    cur_path(path_ro, "xro");
    CHECK_EQ(getxattr_cur("k", buf, sizeof(buf)), NFS4_OK);
    CHECK(strcmp(buf, "v") == 0);
    CHECK_EQ(setxattr_cur(SETXATTR4_EITHER, "k", "w", 1, NULL), NFS4ERR_ROFS);
    CHECK_EQ(removexattr_cur("k"), NFS4ERR_ROFS);
    CHECK_EQ(access_cur(XA_ALL, &supported, &granted), NFS4_OK);
    CHECK_EQ(granted, ACCESS4_XAREAD | ACCESS4_XALIST);

    /* another user: reads a 0644 file's xattrs but may not change them; a 0600 file's
     * are out of reach altogether */
    write_file(path_rw, "xother", NULL, 0);
    snprintf(p, sizeof(p), "%s/xother", path_rw);
    CHECK_EQ(setxattr(p, "user.k", "v", 1, 0), 0);
    cur_path(path_rw, "xother");
    cc.cur.cred.uid = cc.cur.cred.gid = 1000;
    cc.cur.cred.ngroups = 0;
    CHECK_EQ(getxattr_cur("k", buf, sizeof(buf)), NFS4_OK);
    CHECK_EQ(setxattr_cur(SETXATTR4_EITHER, "k", "w", 1, NULL), NFS4ERR_ACCESS);
    CHECK_EQ(removexattr_cur("k"), NFS4ERR_ACCESS);
    CHECK_EQ(access_cur(XA_ALL, &supported, &granted), NFS4_OK);
    CHECK_EQ(granted, ACCESS4_XAREAD | ACCESS4_XALIST);
    CHECK_EQ(chmod(p, 0600), 0);
    CHECK_EQ(getxattr_cur("k", buf, sizeof(buf)), NFS4ERR_ACCESS);
    uint32_t count;
    uint64_t next;
    bool eof;
    CHECK_EQ(listxattrs_cur(0, 4096, buf, sizeof(buf), &count, &next, &eof), NFS4ERR_ACCESS);
    CHECK_EQ(access_cur(XA_ALL, &supported, &granted), NFS4_OK);
    CHECK_EQ(granted, 0);
}

static void test_xattr(void)
{
    uint32_t supported, granted;
    char buf[16];
    uint32_t saved_minor = cc.minor;
    cc.minor = 2;
    test_xattr_unsupported();

    /* the pseudo filesystem has none, and says so */
    CHECK_EQ(nfs4_fh_set_root(&cc, &cc.cur), NFS4_OK);
    CHECK_EQ(xattr_support_cur(), 0);
    CHECK_EQ(getxattr_cur("a", buf, sizeof(buf)), NFS4ERR_NOTSUPP);
    CHECK_EQ(access_cur(XA_ALL | ACCESS4_READ, &supported, &granted), NFS4_OK);
    CHECK_EQ(granted, ACCESS4_READ);

    /* the xattr ACCESS bits are 4.2's: left out of `supported` before */
    write_file(path_rw, "xacc", NULL, 0);
    cur_path(path_rw, "xacc");
    cc.minor = 1;
    CHECK_EQ(access_cur(XA_ALL | ACCESS4_READ, &supported, &granted), NFS4_OK);
    CHECK_EQ(supported, ACCESS4_READ);
    cc.minor = 2;
    CHECK_EQ(access_cur(XA_ALL | ACCESS4_READ, &supported, &granted), NFS4_OK);
    CHECK_EQ(supported, XA_ALL | ACCESS4_READ);
    CHECK_EQ(granted, XA_ALL | ACCESS4_READ);

    if (!fs_has_user_xattrs()) {
        /* the export's filesystem has no user xattrs: false and NOTSUPP, not failures */
        printf("test_nfs4_ops: %s has no user xattrs; checking NOTSUPP only\n", path_rw);
        CHECK_EQ(xattr_support_cur(), 0);
        CHECK_EQ(getxattr_cur("a", buf, sizeof(buf)), NFS4ERR_NOTSUPP);
        CHECK_EQ(setxattr_cur(SETXATTR4_EITHER, "a", "1", 1, NULL), NFS4ERR_NOTSUPP);
    } else {
        test_xattr_names_values();
        test_xattr_list();
        test_xattr_objects_access();
    }
    cc.minor = saved_minor;
}

/* ---- setup ---- */

static int setup(void)
{
    char text[512], file[192], err[256];

    strcpy(tmpdir, "/tmp/peernfs-ops4-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        tmpdir[0] = '\0';
        return -1;
    }
    snprintf(path_rw, sizeof(path_rw), "%s/rw", tmpdir);
    snprintf(path_ro, sizeof(path_ro), "%s/ro", tmpdir);
    if (mkdir(path_rw, 0755) || mkdir(path_ro, 0755))
        return -1;
    snprintf(text, sizeof(text),
             "%s 127.0.0.1(rw,no_root_squash,fsid=11)\n"
             "%s 127.0.0.1(ro,no_root_squash,fsid=12)\n",
             path_rw, path_ro);
    snprintf(file, sizeof(file), "%s/exports", tmpdir);
    FILE *f = fopen(file, "w");
    if (!f)
        return -1;
    fputs(text, f);
    fclose(f);
    if (export_table_load(&table, file, err, sizeof(err))) {
        fprintf(stderr, "export_table_load: %s\n", err);
        return -1;
    }
    srv.exports = &table;
    memset(srv.fh_key.k, 0x5a, sizeof(srv.fh_key.k));
    memcpy(srv.write_verf, "verf0001", 8);
    if (pseudo_fs_build(&srv.pseudo, &table, &srv.fh_key))
        return -1;
    struct state_params sp = {.grace_time_s = UINT32_MAX};
    srv.state = state_server_create(&sp);
    if (!srv.state)
        return -1;
    peer.sin_family = AF_INET;
    peer.sin_port = htons(700);
    peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    call.peer = (const struct sockaddr *)&peer;
    call.peer_len = sizeof(peer);
    call.cred.flavor = RPC_AUTH_SYS;
    call.cred.has_ids = true;
    cc.call = &call;
    cc.srv = &srv;
    cc.minor = 0;
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)type, (void)ftw;
    return remove(path) < 0 ? -1 : 0;
}

static void teardown(void)
{
    if (srv.state)
        state_server_destroy(srv.state);
    pseudo_fs_free(&srv.pseudo);
    export_table_free(&table);
    if (tmpdir[0] && nftw(tmpdir, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
}

int main(void)
{
    if (geteuid() != 0) {
        printf("test_nfs4_ops: skipped (needs root for open_by_handle_at)\n");
        return 77;
    }
    if (setup() != 0) {
        fprintf(stderr, "test_nfs4_ops: setup failed: %s\n", strerror(errno));
        teardown();
        return 1;
    }
    test_create();
    test_read_write();
    test_seek_allocate();
    test_remove_rename_link();
    test_readdir();
    test_readdir_pseudo();
    test_xattr();
    teardown();
    return check_report("test_nfs4_ops");
}
