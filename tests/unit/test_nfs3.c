/*
 * Unit tests for nfs3/: the NFSv3 and MOUNT handlers called directly, no network.
 *
 * Four directories under a temporary directory are exported (rw to 127.0.0.1 without
 * root squash, ro to everyone, rw only to 10.0.0.0/8, rw to everyone with root squash).
 * Each test builds a struct rpc_call by hand: arguments encoded with the generated
 * encoders, results decoded with the generated decoders and checked.
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
#include <sys/sysmacros.h>
#include <unistd.h>

#include "check.h"
#include "fs/export.h"
#include "fs/fh.h"
#include "nfs3/nfs3.h"
#include "xdr/mount_xdr.h"
#include "xdr/nfs3_xdr.h"

#define RES_BUF_SIZE ((1u << 20) + (1u << 20) / 10) /* 1.1 MiB, as rpc/ gives handlers */

static uint8_t argbuf[RES_BUF_SIZE + 4096];
static uint8_t resbuf[RES_BUF_SIZE];
static uint8_t args_arena_mem[64 * 1024];
static uint8_t res_arena_mem[8 << 20];
static struct xdr_arena res_arena;

static char tmpdir[64];
static char path_rw[128], path_ro[128], path_none[128], path_sq[128], path_async[128], path_state[128];
static struct export_table table;
static struct nfs_service svc;

static struct sockaddr_in peer;
static struct rpc_cred cred;

/* ---- calling handlers ---- */

static void set_cred(uint32_t flavor, uint32_t uid, uint32_t gid)
{
    memset(&cred, 0, sizeof(cred));
    cred.flavor = flavor;
    cred.has_ids = flavor == RPC_AUTH_SYS;
    cred.uid = uid;
    cred.gid = gid;
}

static const struct rpc_proc_desc *find_proc(const struct rpc_program_desc *prog, uint32_t vers, uint32_t proc)
{
    for (uint32_t i = 0; i < prog->nvers; i++)
        if (prog->versions[i].vers == vers && proc < prog->versions[i].nprocs)
            return &prog->versions[i].procs[proc];
    return NULL;
}

/* Run one procedure on `arglen` bytes of argbuf; d gets a decoder over the results. */
static enum rpc_accept_status dispatch(const struct rpc_program_desc *prog, uint32_t vers, uint32_t proc,
                                       size_t arglen, struct xdr_dec *d)
{
    static struct xdr_arena args_arena;
    const struct rpc_proc_desc *desc = find_proc(prog, vers, proc);
    if (!desc || !desc->fn)
        return RPC_PROC_UNAVAIL;
    struct rpc_call call = {
        .peer = (const struct sockaddr *)&peer,
        .peer_len = sizeof(peer),
        .xid = 1,
        .prog = prog->prog,
        .vers = vers,
        .proc = proc,
        .cred = cred,
        .prog_ctx = &svc,
    };
    xdr_arena_init(&args_arena, args_arena_mem, sizeof(args_arena_mem));
    xdr_dec_init(&call.args, argbuf, arglen, &args_arena);
    xdr_enc_init(&call.res, resbuf, sizeof(resbuf));
    enum rpc_accept_status st = desc->fn(&call);
    /* the backend leaves the thread's fsuid as the caller's: the test's own file
     * operations run as the process */
    fs_posix_thread_reset();
    xdr_arena_init(&res_arena, res_arena_mem, sizeof(res_arena_mem));
    xdr_dec_init(d, resbuf, xdr_enc_len(&call.res), &res_arena);
    return st;
}

/* Encode args with xdr_encode_ARGT, run, decode with xdr_decode_REST; the status. */
#define RUN(prog, vers, proc, ARGT, argp, REST, resp)                                      \
    ({                                                                                     \
        struct xdr_enc e_;                                                                 \
        struct xdr_dec d_;                                                                 \
        xdr_enc_init(&e_, argbuf, sizeof(argbuf));                                         \
        CHECK(xdr_encode_##ARGT(&e_, argp));                                               \
        enum rpc_accept_status st_ = dispatch(prog, vers, proc, xdr_enc_len(&e_), &d_);    \
        if (st_ == RPC_SUCCESS) {                                                          \
            CHECK(xdr_decode_##REST(&d_, resp));                                           \
            CHECK(xdr_dec_left(&d_) == 0);                                                \
        }                                                                                  \
        st_;                                                                               \
    })

#define NFS(PROC, argp, resp) RUN(&nfs3_program, NFS_V3, NFSPROC3_##PROC, PROC##3args, argp, PROC##3res, resp)
#define NFS_OK(PROC, argp, resp) CHECK_EQ(NFS(PROC, argp, resp), RPC_SUCCESS)

/* ---- handles and names ---- */

struct tfh {
    uint32_t len;
    uint8_t data[NFS3_FHSIZE];
};

static nfs_fh3 FH(const struct tfh *t)
{
    nfs_fh3 f = {.data = {.len = t->len, .val = t->data}};
    return f;
}

static void keep_fh(struct tfh *t, const nfs_fh3 *f)
{
    CHECK(f->data.len <= NFS3_FHSIZE);
    t->len = f->data.len;
    memcpy(t->data, f->data.val, f->data.len);
}

static filename3 NAME(const char *s)
{
    filename3 n = {.len = (uint32_t)strlen(s), .val = s};
    return n;
}

static diropargs3 WHERE(const struct tfh *dir, const char *name)
{
    diropargs3 d = {.dir = FH(dir), .name = NAME(name)};
    return d;
}

static void local_path(char *buf, size_t len, const char *exp, const char *rel)
{
    snprintf(buf, len, "%s/%s", exp, rel);
}

/* ---- procedure helpers (results copied out of the reply buffer) ---- */

static struct tfh root_rw, root_ro, root_none, root_sq, root_async;

static mountstat3 mnt(const char *path, struct tfh *out)
{
    dirpath p = {.len = (uint32_t)strlen(path), .val = path};
    mountres3 r;
    CHECK_EQ(RUN(&mount_program, MOUNT_V3, MOUNTPROC3_MNT, dirpath, &p, mountres3, &r), RPC_SUCCESS);
    if (r.fhs_status == MNT3_OK) {
        CHECK_EQ(r.mountinfo.auth_flavors.len, 1);
        if (r.mountinfo.auth_flavors.len == 1)
            CHECK_EQ(r.mountinfo.auth_flavors.val[0], 1);
        if (out) {
            out->len = r.mountinfo.fhandle.len;
            memcpy(out->data, r.mountinfo.fhandle.val, out->len);
        }
    }
    return r.fhs_status;
}

static nfsstat3 getattr(const struct tfh *fh, fattr3 *out)
{
    GETATTR3args a = {.object = FH(fh)};
    GETATTR3res r;
    NFS_OK(GETATTR, &a, &r);
    if (r.status == NFS3_OK && out)
        *out = r.resok.obj_attributes;
    return r.status;
}

static nfsstat3 lookup(const struct tfh *dir, const char *name, struct tfh *out, fattr3 *attrs)
{
    LOOKUP3args a = {.what = WHERE(dir, name)};
    LOOKUP3res r;
    NFS_OK(LOOKUP, &a, &r);
    if (r.status == NFS3_OK) {
        CHECK(r.resok.dir_attributes.attributes_follow);
        CHECK(r.resok.obj_attributes.attributes_follow);
        if (out)
            keep_fh(out, &r.resok.object);
        if (attrs)
            *attrs = r.resok.obj_attributes.attributes;
    }
    return r.status;
}

static sattr3 sattr_mode(uint32_t mode)
{
    sattr3 s;
    memset(&s, 0, sizeof(s));
    s.mode.set_it = true;
    s.mode.mode = mode;
    return s;
}

static nfsstat3 create(const struct tfh *dir, const char *name, createmode3 how, const sattr3 *attrs,
                       const uint8_t verf[8], struct tfh *out, fattr3 *fa)
{
    CREATE3args a;
    CREATE3res r;
    memset(&a, 0, sizeof(a));
    a.where = WHERE(dir, name);
    a.how.mode = how;
    if (how == EXCLUSIVE)
        memcpy(a.how.verf, verf, 8);
    else
        a.how.obj_attributes = *attrs;
    NFS_OK(CREATE, &a, &r);
    if (r.status == NFS3_OK) {
        CHECK(r.resok.obj.handle_follows);
        CHECK(r.resok.obj_attributes.attributes_follow);
        CHECK(r.resok.dir_wcc.before.attributes_follow);
        CHECK(r.resok.dir_wcc.after.attributes_follow);
        if (out)
            keep_fh(out, &r.resok.obj.handle);
        if (fa)
            *fa = r.resok.obj_attributes.attributes;
    }
    return r.status;
}

static nfsstat3 create_file(const struct tfh *dir, const char *name, uint32_t mode, struct tfh *out)
{
    sattr3 s = sattr_mode(mode);
    return create(dir, name, GUARDED, &s, NULL, out, NULL);
}

static nfsstat3 mkdir3(const struct tfh *dir, const char *name, uint32_t mode, struct tfh *out)
{
    MKDIR3args a = {.where = WHERE(dir, name), .attributes = sattr_mode(mode)};
    MKDIR3res r;
    NFS_OK(MKDIR, &a, &r);
    if (r.status == NFS3_OK) {
        CHECK(r.resok.obj.handle_follows);
        CHECK_EQ(r.resok.obj_attributes.attributes.type, NF3DIR);
        if (out)
            keep_fh(out, &r.resok.obj.handle);
    }
    return r.status;
}

static nfsstat3 write3(const struct tfh *fh, uint64_t off, const void *data, uint32_t len, stable_how how,
                       WRITE3resok *ok)
{
    WRITE3args a = {.file = FH(fh), .offset = off, .count = len, .stable = how,
                    .data = {.len = len, .val = data}};
    WRITE3res r;
    NFS_OK(WRITE, &a, &r);
    if (r.status == NFS3_OK && ok)
        *ok = r.resok;
    return r.status;
}

static nfsstat3 read3(const struct tfh *fh, uint64_t off, uint32_t count, void *buf, uint32_t *n, bool *eof)
{
    READ3args a = {.file = FH(fh), .offset = off, .count = count};
    READ3res r;
    NFS_OK(READ, &a, &r);
    if (r.status == NFS3_OK) {
        CHECK(r.resok.file_attributes.attributes_follow);
        CHECK_EQ(r.resok.count, r.resok.data.len);
        *n = r.resok.count;
        *eof = r.resok.eof;
        memcpy(buf, r.resok.data.val, r.resok.data.len);
    }
    return r.status;
}

static nfsstat3 remove3(const struct tfh *dir, const char *name)
{
    REMOVE3args a = {.object = WHERE(dir, name)};
    REMOVE3res r;
    NFS_OK(REMOVE, &a, &r);
    return r.status;
}

static nfsstat3 rmdir3(const struct tfh *dir, const char *name)
{
    RMDIR3args a = {.object = WHERE(dir, name)};
    RMDIR3res r;
    NFS_OK(RMDIR, &a, &r);
    return r.status;
}

static uint32_t access3(const struct tfh *fh, uint32_t asked, nfsstat3 *status)
{
    ACCESS3args a = {.object = FH(fh), .access = asked};
    ACCESS3res r;
    NFS_OK(ACCESS, &a, &r);
    *status = r.status;
    return r.status == NFS3_OK ? r.resok.access : 0;
}

/* ---- setup ---- */

static int setup(void)
{
    char text[1024], file[192], err[256];

    strcpy(tmpdir, "/tmp/peernfs-nfs3-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        tmpdir[0] = '\0';
        return -1;
    }
    snprintf(path_rw, sizeof(path_rw), "%s/rw", tmpdir);
    snprintf(path_ro, sizeof(path_ro), "%s/ro", tmpdir);
    snprintf(path_none, sizeof(path_none), "%s/none", tmpdir);
    snprintf(path_sq, sizeof(path_sq), "%s/sq", tmpdir);
    snprintf(path_async, sizeof(path_async), "%s/async", tmpdir);
    snprintf(path_state, sizeof(path_state), "%s/state", tmpdir);
    if (mkdir(path_rw, 0755) || mkdir(path_ro, 0755) || mkdir(path_none, 0755) || mkdir(path_sq, 0777) ||
        mkdir(path_async, 0755))
        return -1;
    chmod(path_sq, 0777);
    snprintf(text, sizeof(text),
             "%s 127.0.0.1(rw,no_root_squash,fsid=1)\n"
             "%s *(ro,no_root_squash,fsid=2)\n"
             "%s 10.0.0.0/8(rw,fsid=3)\n"
             "%s *(rw,fsid=4)\n"
             "%s *(rw,no_root_squash,async,insecure,fsid=5)\n",
             path_rw, path_ro, path_none, path_sq, path_async);
    snprintf(file, sizeof(file), "%s/exports", tmpdir);
    FILE *f = fopen(file, "w");
    if (!f)
        return -1;
    fputs(text, f);
    fclose(f);
    int rc = export_table_load(&table, file, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "export_table_load: %s\n", err);
        return -1;
    }
    rc = nfs_service_init(&svc, &table, path_state);
    if (rc) {
        fprintf(stderr, "nfs_service_init: %s\n", strerror(-rc));
        return -1;
    }
    peer.sin_family = AF_INET;
    peer.sin_port = htons(700);
    peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    set_cred(RPC_AUTH_SYS, 0, 0);
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    return remove(path) < 0 ? -1 : 0;
}

static void remove_tmpdir(void)
{
    if (tmpdir[0] && nftw(tmpdir, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
}

static void teardown(void)
{
    nfs_service_fini(&svc);
    export_table_free(&table);
    remove_tmpdir();
}

/* ---- MOUNT ---- */

static void test_mount(void)
{
    char sub[256];
    struct tfh fh, fh2;

    CHECK_EQ(mnt(path_rw, &root_rw), MNT3_OK);
    CHECK_EQ(mnt(path_ro, &root_ro), MNT3_OK);
    CHECK_EQ(mnt(path_sq, &root_sq), MNT3_OK);
    CHECK_EQ(mnt(path_async, &root_async), MNT3_OK);
    /* no rule for 127.0.0.1 */
    CHECK_EQ(mnt(path_none, NULL), MNT3ERR_ACCES);
    /* several exports: "/" names none of them */
    CHECK_EQ(mnt("/", NULL), MNT3ERR_NOENT);
    CHECK_EQ(mnt("relative", NULL), MNT3ERR_INVAL);
    /* a subdirectory, with sloppy slashes */
    local_path(sub, sizeof(sub), path_rw, "mdir");
    CHECK_EQ(mkdir(sub, 0755), 0);
    snprintf(sub, sizeof(sub), "%s//mdir/", path_rw);
    CHECK_EQ(mnt(sub, &fh), MNT3_OK);
    CHECK_EQ(lookup(&root_rw, "mdir", &fh2, NULL), NFS3_OK);
    fattr3 a1, a2;
    CHECK_EQ(getattr(&fh, &a1), NFS3_OK);
    CHECK_EQ(getattr(&fh2, &a2), NFS3_OK);
    CHECK_EQ(a1.fileid, a2.fileid);
    /* .. escapes, missing directories, files and symlinks on the way are refused */
    snprintf(sub, sizeof(sub), "%s/mdir/../../ro", path_rw);
    CHECK_EQ(mnt(sub, NULL), MNT3ERR_ACCES);
    snprintf(sub, sizeof(sub), "%s/missing", path_rw);
    CHECK_EQ(mnt(sub, NULL), MNT3ERR_NOENT);
    char target[256];
    local_path(sub, sizeof(sub), path_rw, "mlink");
    CHECK_EQ(symlink(path_ro, sub), 0);
    CHECK_EQ(mnt(sub, NULL), MNT3ERR_NOTDIR);
    local_path(target, sizeof(target), path_rw, "mfile");
    close(open(target, O_CREAT | O_WRONLY, 0644));
    CHECK_EQ(mnt(target, NULL), MNT3ERR_NOTDIR);

    /* AUTH_NONE callers may mount (as the anonymous user) */
    set_cred(RPC_AUTH_NONE, 0, 0);
    CHECK_EQ(mnt(path_ro, NULL), MNT3_OK);
    set_cred(RPC_AUTH_SYS, 0, 0);

    /* DUMP lists each (client, path) once */
    mountlist ml = NULL;
    CHECK_EQ(RUN(&mount_program, MOUNT_V3, MOUNTPROC3_DUMP, mountlist, &ml, mountlist, &ml), RPC_SUCCESS);
    int n = 0, n_rw = 0;
    for (mountbody *b = ml; b; b = b->ml_next) {
        n++;
        CHECK(b->ml_hostname.len == 9 && memcmp(b->ml_hostname.val, "127.0.0.1", 9) == 0);
        if (b->ml_directory.len == strlen(path_rw) && memcmp(b->ml_directory.val, path_rw, b->ml_directory.len) == 0)
            n_rw++;
    }
    CHECK_EQ(n, 5); /* rw, ro, sq, async, rw//mdir/ */
    CHECK_EQ(n_rw, 1);

    /* UMNT removes one, UMNTALL the rest */
    dirpath p = {.len = (uint32_t)strlen(path_ro), .val = path_ro};
    struct xdr_enc e;
    struct xdr_dec d;
    xdr_enc_init(&e, argbuf, sizeof(argbuf));
    CHECK(xdr_encode_dirpath(&e, &p));
    CHECK_EQ(dispatch(&mount_program, MOUNT_V3, MOUNTPROC3_UMNT, xdr_enc_len(&e), &d), RPC_SUCCESS);
    CHECK_EQ(xdr_dec_left(&d), 0);
    CHECK_EQ(RUN(&mount_program, MOUNT_V3, MOUNTPROC3_DUMP, mountlist, &ml, mountlist, &ml), RPC_SUCCESS);
    n = 0;
    for (mountbody *b = ml; b; b = b->ml_next)
        n++;
    CHECK_EQ(n, 4);
    CHECK_EQ(dispatch(&mount_program, MOUNT_V3, MOUNTPROC3_UMNTALL, 0, &d), RPC_SUCCESS);
    CHECK_EQ(RUN(&mount_program, MOUNT_V3, MOUNTPROC3_DUMP, mountlist, &ml, mountlist, &ml), RPC_SUCCESS);
    CHECK(ml == NULL);

    /* EXPORT: every export with its client names */
    mntexports ex = NULL;
    CHECK_EQ(RUN(&mount_program, MOUNT_V3, MOUNTPROC3_EXPORT, mntexports, &ex, mntexports, &ex), RPC_SUCCESS);
    int nex = 0;
    for (exportnode *x = ex; x; x = x->ex_next) {
        nex++;
        CHECK(x->ex_groups != NULL);
        if (!x->ex_groups)
            continue;
        const mntname *g = &x->ex_groups->gr_name;
        if (x->ex_dir.len == strlen(path_none) && memcmp(x->ex_dir.val, path_none, x->ex_dir.len) == 0)
            CHECK(g->len == 10 && memcmp(g->val, "10.0.0.0/8", 10) == 0);
        if (x->ex_dir.len == strlen(path_rw) && memcmp(x->ex_dir.val, path_rw, x->ex_dir.len) == 0)
            CHECK(g->len == 9 && memcmp(g->val, "127.0.0.1", 9) == 0);
        if (x->ex_dir.len == strlen(path_ro) && memcmp(x->ex_dir.val, path_ro, x->ex_dir.len) == 0)
            CHECK(g->len == 1 && g->val[0] == '*');
    }
    CHECK_EQ(nex, 5);

    /* version 1: EXPORT works, MNT is refused (no NFSv2) */
    CHECK_EQ(RUN(&mount_program, MOUNTVERS, MOUNTPROC_EXPORT, mntexports, &ex, mntexports, &ex), RPC_SUCCESS);
    fhstatus fs1;
    CHECK_EQ(RUN(&mount_program, MOUNTVERS, MOUNTPROC_MNT, dirpath, &p, fhstatus, &fs1), RPC_SUCCESS);
    CHECK_EQ(fs1.status, EACCES);
    CHECK_EQ(dispatch(&mount_program, MOUNT_V3, MOUNTPROC3_NULL, 0, &d), RPC_SUCCESS);
    CHECK_EQ(xdr_dec_left(&d), 0);
    /* garbage: a truncated path */
    xdr_put_be32(argbuf, 100);
    CHECK_EQ(dispatch(&mount_program, MOUNT_V3, MOUNTPROC3_MNT, 8, &d), RPC_GARBAGE_ARGS);
}

/* ---- dispatch tables ---- */

static void test_proc_flags(void)
{
    const struct rpc_proc_desc *null = find_proc(&nfs3_program, 3, NFSPROC3_NULL);
    CHECK(null && null->flags == 0);
    for (uint32_t p = 1; p <= NFSPROC3_COMMIT; p++) {
        const struct rpc_proc_desc *d = find_proc(&nfs3_program, 3, p);
        CHECK(d && d->fn && (d->flags & RPC_PROC_NEED_AUTH_SYS));
    }
    CHECK(find_proc(&nfs3_program, 3, NFSPROC3_WRITE)->flags & RPC_PROC_BLOCKING);
    CHECK(find_proc(&nfs3_program, 3, NFSPROC3_COMMIT)->flags & RPC_PROC_BLOCKING);
    CHECK(find_proc(&nfs3_program, 3, 22) == NULL);
    CHECK_EQ(nfs3_program.prog, 100003);
    CHECK_EQ(mount_program.prog, 100005);
    for (uint32_t p = 0; p <= MOUNTPROC3_EXPORT; p++) {
        CHECK(find_proc(&mount_program, 3, p) && find_proc(&mount_program, 3, p)->flags == 0);
        CHECK(find_proc(&mount_program, 1, p) && find_proc(&mount_program, 1, p)->fn);
    }
    struct xdr_dec d;
    CHECK_EQ(dispatch(&nfs3_program, 3, NFSPROC3_NULL, 0, &d), RPC_SUCCESS);
    CHECK_EQ(xdr_dec_left(&d), 0);
}

/* ---- handles ---- */

static void test_handles(void)
{
    fattr3 a;
    struct stat st;
    struct tfh bad = root_rw;

    CHECK_EQ(getattr(&root_rw, &a), NFS3_OK);
    CHECK_EQ(stat(path_rw, &st), 0);
    CHECK_EQ(a.type, NF3DIR);
    CHECK_EQ(a.fileid, st.st_ino);
    CHECK_EQ(a.fsid, 1); /* the export id (fsid=1) */
    CHECK_EQ(a.mode, st.st_mode & 07777);

    /* forged: one bit of the MAC flipped, a truncated handle, an empty one */
    bad.data[bad.len - 1] ^= 1;
    CHECK_EQ(getattr(&bad, NULL), NFS3ERR_BADHANDLE);
    bad = root_rw;
    bad.len -= 1;
    CHECK_EQ(getattr(&bad, NULL), NFS3ERR_BADHANDLE);
    bad.len = 0;
    CHECK_EQ(getattr(&bad, NULL), NFS3ERR_BADHANDLE);

    /* well-formed, but of an export that does not exist */
    struct export *ex = export_by_id(&table, 1);
    CHECK(ex != NULL);
    struct tfh unknown;
    unknown.len = fh_wrap(&svc.fh_key, 999, &ex->root, unknown.data);
    CHECK_EQ(getattr(&unknown, NULL), NFS3ERR_STALE);

    /* of a removed file */
    struct tfh f;
    char p[256];
    CHECK_EQ(create_file(&root_rw, "gone", 0644, &f), NFS3_OK);
    local_path(p, sizeof(p), path_rw, "gone");
    CHECK_EQ(unlink(p), 0);
    CHECK_EQ(getattr(&f, NULL), NFS3ERR_STALE);

    /* of an export the client has no rule for */
    struct export *none = export_by_id(&table, 3);
    CHECK(none != NULL);
    root_none.len = fh_wrap(&svc.fh_key, 3, &none->root, root_none.data);
    CHECK_EQ(getattr(&root_none, NULL), NFS3ERR_ACCES);

    /* garbage arguments */
    struct xdr_dec d;
    xdr_put_be32(argbuf, 200); /* a handle longer than NFS3_FHSIZE */
    CHECK_EQ(dispatch(&nfs3_program, 3, NFSPROC3_GETATTR, 4, &d), RPC_GARBAGE_ARGS);
    CHECK_EQ(dispatch(&nfs3_program, 3, NFSPROC3_GETATTR, 0, &d), RPC_GARBAGE_ARGS);
}

/* ---- LOOKUP and names ---- */

static void test_lookup(void)
{
    struct tfh f, dot, dotdot;
    fattr3 a, ra;
    char longname[300];

    CHECK_EQ(create_file(&root_rw, "lk", 0640, &f), NFS3_OK);
    CHECK_EQ(lookup(&root_rw, "lk", NULL, &a), NFS3_OK);
    CHECK_EQ(a.type, NF3REG);
    CHECK_EQ(a.mode, 0640);

    LOOKUP3args la = {.what = WHERE(&root_rw, "nope")};
    LOOKUP3res lr;
    NFS_OK(LOOKUP, &la, &lr);
    CHECK_EQ(lr.status, NFS3ERR_NOENT);
    CHECK(lr.resfail.dir_attributes.attributes_follow);

    CHECK_EQ(getattr(&root_rw, &ra), NFS3_OK);
    CHECK_EQ(lookup(&root_rw, ".", &dot, &a), NFS3_OK);
    CHECK_EQ(a.fileid, ra.fileid);
    /* ".." of the export root stays at the root */
    CHECK_EQ(lookup(&root_rw, "..", &dotdot, &a), NFS3_OK);
    CHECK_EQ(a.fileid, ra.fileid);

    memset(longname, 'x', 256);
    longname[256] = '\0';
    CHECK_EQ(lookup(&root_rw, longname, NULL, NULL), NFS3ERR_NAMETOOLONG);
    longname[255] = '\0';
    CHECK_EQ(lookup(&root_rw, longname, NULL, NULL), NFS3ERR_NOENT);
    CHECK_EQ(lookup(&root_rw, "a/b", NULL, NULL), NFS3ERR_ACCES);
    CHECK_EQ(lookup(&root_rw, "", NULL, NULL), NFS3ERR_ACCES);
    /* lookup in a file */
    CHECK_EQ(lookup(&f, "x", NULL, NULL), NFS3ERR_NOTDIR);
}

/* ---- CREATE ---- */

static void test_create(void)
{
    struct tfh f, f2;
    fattr3 a, a2;
    sattr3 s = sattr_mode(0600);
    char p[256];
    const uint8_t verf[8] = {0x81, 2, 3, 4, 5, 6, 7, 8};
    const uint8_t verf2[8] = {9, 9, 9, 9, 9, 9, 9, 9};

    CHECK_EQ(create(&root_rw, "c1", UNCHECKED, &s, NULL, &f, &a), NFS3_OK);
    CHECK_EQ(a.mode, 0600);
    CHECK_EQ(a.size, 0);
    /* UNCHECKED on an existing file: no error, only the size applies */
    CHECK_EQ(write3(&f, 0, "hello", 5, FILE_SYNC, NULL), NFS3_OK);
    sattr3 s2 = sattr_mode(0644);
    CHECK_EQ(create(&root_rw, "c1", UNCHECKED, &s2, NULL, &f2, &a2), NFS3_OK);
    CHECK_EQ(a2.fileid, a.fileid);
    CHECK_EQ(a2.size, 5);
    CHECK_EQ(a2.mode, 0600);
    s2.size.set_it = true;
    s2.size.size = 0;
    CHECK_EQ(create(&root_rw, "c1", UNCHECKED, &s2, NULL, &f2, &a2), NFS3_OK);
    CHECK_EQ(a2.size, 0);
    /* GUARDED on an existing file */
    CHECK_EQ(create(&root_rw, "c1", GUARDED, &s, NULL, NULL, NULL), NFS3ERR_EXIST);
    /* UNCHECKED over a directory */
    CHECK_EQ(create(&root_rw, "mdir", UNCHECKED, &s, NULL, NULL, NULL), NFS3ERR_EXIST);

    /* EXCLUSIVE: verifier in the times; a retransmission succeeds, another verifier not */
    CHECK_EQ(create(&root_rw, "cx", EXCLUSIVE, NULL, verf, &f, &a), NFS3_OK);
    CHECK_EQ(a.mtime.seconds, 0x01020304);
    CHECK_EQ(a.atime.seconds, 0x05060708);
    CHECK_EQ(create(&root_rw, "cx", EXCLUSIVE, NULL, verf, &f2, &a2), NFS3_OK);
    CHECK_EQ(a2.fileid, a.fileid);
    CHECK(f2.len == f.len && memcmp(f2.data, f.data, f.len) == 0);
    CHECK_EQ(create(&root_rw, "cx", EXCLUSIVE, NULL, verf2, NULL, NULL), NFS3ERR_EXIST);
    CHECK_EQ(create(&root_rw, "c1", EXCLUSIVE, NULL, verf, NULL, NULL), NFS3ERR_EXIST);

    /* names */
    CHECK_EQ(create(&root_rw, ".", GUARDED, &s, NULL, NULL, NULL), NFS3ERR_EXIST);
    CHECK_EQ(create(&root_rw, "..", UNCHECKED, &s, NULL, NULL, NULL), NFS3ERR_EXIST);
    CHECK_EQ(create(&root_rw, "a/b", UNCHECKED, &s, NULL, NULL, NULL), NFS3ERR_ACCES);

    /* the failure carries the directory's wcc data */
    CREATE3args ca;
    CREATE3res cr;
    memset(&ca, 0, sizeof(ca));
    ca.where = WHERE(&root_rw, "c1");
    ca.how.mode = GUARDED;
    NFS_OK(CREATE, &ca, &cr);
    CHECK_EQ(cr.status, NFS3ERR_EXIST);
    CHECK(cr.resfail.dir_wcc.before.attributes_follow);
    CHECK(cr.resfail.dir_wcc.after.attributes_follow);

    /* invalid createmode: garbage */
    struct xdr_enc e;
    struct xdr_dec d;
    xdr_enc_init(&e, argbuf, sizeof(argbuf));
    nfs_fh3 root = FH(&root_rw);
    filename3 n = NAME("bad");
    CHECK(xdr_encode_nfs_fh3(&e, &root) && xdr_encode_filename3(&e, &n) && xdr_enc_u32(&e, 7));
    CHECK_EQ(dispatch(&nfs3_program, 3, NFSPROC3_CREATE, xdr_enc_len(&e), &d), RPC_GARBAGE_ARGS);

    struct stat st;
    local_path(p, sizeof(p), path_rw, "cx");
    CHECK_EQ(stat(p, &st), 0);
    CHECK_EQ(st.st_mtim.tv_sec, 0x01020304);
}

/* ---- WRITE, READ, COMMIT ---- */

static void test_io(void)
{
    struct tfh f, d;
    WRITE3resok w;
    uint32_t n;
    bool eof;
    static uint8_t big[(1u << 20) + 8192], back[(1u << 20) + 8192];

    CHECK_EQ(create_file(&root_rw, "io", 0644, &f), NFS3_OK);
    CHECK_EQ(write3(&f, 0, "abcdefgh", 8, UNSTABLE, &w), NFS3_OK);
    CHECK_EQ(w.count, 8);
    CHECK_EQ(w.committed, UNSTABLE);
    CHECK(memcmp(w.verf, svc.write_verf, 8) == 0);
    CHECK(w.file_wcc.before.attributes_follow);
    CHECK_EQ(w.file_wcc.before.attributes.size, 0);
    CHECK_EQ(w.file_wcc.after.attributes.size, 8);
    CHECK_EQ(write3(&f, 8, "ij", 2, DATA_SYNC, &w), NFS3_OK);
    CHECK_EQ(w.committed, DATA_SYNC);
    CHECK_EQ(write3(&f, 10, "kl", 2, FILE_SYNC, &w), NFS3_OK);
    CHECK_EQ(w.committed, FILE_SYNC);
    CHECK_EQ(w.file_wcc.before.attributes.size, 10);

    char buf[64];
    CHECK_EQ(read3(&f, 0, 64, buf, &n, &eof), NFS3_OK);
    CHECK_EQ(n, 12);
    CHECK(eof);
    CHECK(memcmp(buf, "abcdefghijkl", 12) == 0);
    CHECK_EQ(read3(&f, 2, 3, buf, &n, &eof), NFS3_OK);
    CHECK_EQ(n, 3);
    CHECK(!eof);
    CHECK(memcmp(buf, "cde", 3) == 0);
    CHECK_EQ(read3(&f, 100, 10, buf, &n, &eof), NFS3_OK);
    CHECK_EQ(n, 0);
    CHECK(eof);
    /* odd lengths are padded correctly in the reply (the decoder checks the layout) */
    CHECK_EQ(read3(&f, 1, 5, buf, &n, &eof), NFS3_OK);
    CHECK(n == 5 && memcmp(buf, "bcdef", 5) == 0);

    /* 1 MiB + 8 KiB at once: the read is capped at rtmax */
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 31 + (i >> 12));
    CHECK_EQ(write3(&f, 0, big, sizeof(big), UNSTABLE, &w), NFS3_OK);
    CHECK_EQ(w.count, sizeof(big));
    CHECK_EQ(read3(&f, 0, sizeof(big), back, &n, &eof), NFS3_OK);
    CHECK_EQ(n, 1u << 20);
    CHECK(!eof);
    CHECK(memcmp(back, big, n) == 0);
    CHECK_EQ(read3(&f, 1u << 20, 1u << 20, back, &n, &eof), NFS3_OK);
    CHECK_EQ(n, 8192);
    CHECK(eof);
    CHECK(memcmp(back, big + (1u << 20), 8192) == 0);

    /* COMMIT: the verifier, and wcc data */
    COMMIT3args ca = {.file = FH(&f), .offset = 0, .count = 0};
    COMMIT3res cr;
    NFS_OK(COMMIT, &ca, &cr);
    CHECK_EQ(cr.status, NFS3_OK);
    CHECK(memcmp(cr.resok.verf, svc.write_verf, 8) == 0);
    CHECK(cr.resok.file_wcc.after.attributes_follow);
    CHECK_EQ(cr.resok.file_wcc.after.attributes.size, sizeof(big));

    /* not regular files */
    CHECK_EQ(mkdir3(&root_rw, "iodir", 0755, &d), NFS3_OK);
    CHECK_EQ(write3(&d, 0, "x", 1, UNSTABLE, NULL), NFS3ERR_ISDIR);
    CHECK_EQ(read3(&d, 0, 1, buf, &n, &eof), NFS3ERR_ISDIR);
    ca.file = FH(&d);
    NFS_OK(COMMIT, &ca, &cr);
    CHECK_EQ(cr.status, NFS3ERR_ISDIR);

    /* count and data length disagree: garbage */
    WRITE3args wa = {.file = FH(&f), .offset = 0, .count = 5, .stable = UNSTABLE, .data = {.len = 3, .val = (const uint8_t *)"abc"}};
    WRITE3res wr;
    CHECK_EQ(NFS(WRITE, &wa, &wr), RPC_GARBAGE_ARGS);

    /* zero-length write */
    CHECK_EQ(write3(&f, 0, "", 0, FILE_SYNC, &w), NFS3_OK);
    CHECK_EQ(w.count, 0);
}

/* ---- SETATTR ---- */

static void test_setattr(void)
{
    struct tfh f;
    fattr3 a;
    SETATTR3args sa;
    SETATTR3res sr;

    CHECK_EQ(create_file(&root_rw, "sa", 0644, &f), NFS3_OK);
    CHECK_EQ(write3(&f, 0, "0123456789", 10, FILE_SYNC, NULL), NFS3_OK);
    CHECK_EQ(getattr(&f, &a), NFS3_OK);

    memset(&sa, 0, sizeof(sa));
    sa.object = FH(&f);
    sa.new_attributes = sattr_mode(0600);
    sa.new_attributes.size.set_it = true;
    sa.new_attributes.size.size = 4;
    sa.new_attributes.mtime.set_it = SET_TO_CLIENT_TIME;
    sa.new_attributes.mtime.mtime.seconds = 1000000000;
    sa.new_attributes.mtime.mtime.nseconds = 5;
    sa.new_attributes.atime.set_it = SET_TO_SERVER_TIME;
    NFS_OK(SETATTR, &sa, &sr);
    CHECK_EQ(sr.status, NFS3_OK);
    CHECK(sr.resok.obj_wcc.before.attributes_follow);
    CHECK_EQ(sr.resok.obj_wcc.before.attributes.size, 10);
    CHECK(sr.resok.obj_wcc.after.attributes_follow);
    CHECK_EQ(sr.resok.obj_wcc.after.attributes.size, 4);
    CHECK_EQ(sr.resok.obj_wcc.after.attributes.mode, 0600);
    CHECK_EQ(sr.resok.obj_wcc.after.attributes.mtime.seconds, 1000000000);
    CHECK_EQ(sr.resok.obj_wcc.after.attributes.mtime.nseconds, 5);
    CHECK(sr.resok.obj_wcc.after.attributes.atime.seconds > 1000000000);

    /* guarded: a ctime that is not the object's -> NOT_SYNC, nothing changed */
    CHECK_EQ(getattr(&f, &a), NFS3_OK);
    memset(&sa, 0, sizeof(sa));
    sa.object = FH(&f);
    sa.new_attributes = sattr_mode(0644);
    sa.guard.check = true;
    sa.guard.obj_ctime = a.ctime;
    sa.guard.obj_ctime.nseconds ^= 1;
    NFS_OK(SETATTR, &sa, &sr);
    CHECK_EQ(sr.status, NFS3ERR_NOT_SYNC);
    CHECK(sr.resfail.obj_wcc.after.attributes_follow);
    CHECK_EQ(sr.resfail.obj_wcc.after.attributes.mode, 0600);
    /* the right ctime -> done */
    sa.guard.obj_ctime = a.ctime;
    NFS_OK(SETATTR, &sa, &sr);
    CHECK_EQ(sr.status, NFS3_OK);
    CHECK_EQ(sr.resok.obj_wcc.after.attributes.mode, 0644);

    /* nothing to set */
    memset(&sa, 0, sizeof(sa));
    sa.object = FH(&f);
    NFS_OK(SETATTR, &sa, &sr);
    CHECK_EQ(sr.status, NFS3_OK);

    /* chown by root */
    memset(&sa, 0, sizeof(sa));
    sa.object = FH(&f);
    sa.new_attributes.uid.set_it = true;
    sa.new_attributes.uid.uid = 1234;
    sa.new_attributes.gid.set_it = true;
    sa.new_attributes.gid.gid = 4321;
    NFS_OK(SETATTR, &sa, &sr);
    CHECK_EQ(sr.status, NFS3_OK);
    CHECK_EQ(sr.resok.obj_wcc.after.attributes.uid, 1234);
    CHECK_EQ(sr.resok.obj_wcc.after.attributes.gid, 4321);
    /* and not by someone else */
    set_cred(RPC_AUTH_SYS, 1000, 1000);
    sa.new_attributes.uid.uid = 1000;
    NFS_OK(SETATTR, &sa, &sr);
    CHECK_EQ(sr.status, NFS3ERR_PERM);
    set_cred(RPC_AUTH_SYS, 0, 0);
}

/* ---- ACCESS ---- */

static void test_access(void)
{
    const uint32_t all = ACCESS3_READ | ACCESS3_LOOKUP | ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE |
                         ACCESS3_EXECUTE;
    nfsstat3 st;
    struct tfh f, ro_f;
    char p[256];

    /* root on a directory of a rw export: everything a directory has */
    CHECK_EQ(access3(&root_rw, all, &st), ACCESS3_READ | ACCESS3_LOOKUP | ACCESS3_MODIFY | ACCESS3_EXTEND |
                                              ACCESS3_DELETE);
    CHECK_EQ(st, NFS3_OK);
    /* only what was asked */
    CHECK_EQ(access3(&root_rw, ACCESS3_READ, &st), ACCESS3_READ);
    /* read-only export: no modifying bits */
    CHECK_EQ(access3(&root_ro, all, &st), ACCESS3_READ | ACCESS3_LOOKUP);

    /* a 0444 file owned by uid 1000: its owner may read, not write, not execute */
    CHECK_EQ(create_file(&root_rw, "ac", 0444, &f), NFS3_OK);
    local_path(p, sizeof(p), path_rw, "ac");
    CHECK_EQ(chown(p, 1000, 1000), 0);
    set_cred(RPC_AUTH_SYS, 1000, 1000);
    CHECK_EQ(access3(&f, all, &st), ACCESS3_READ);
    /* 0754: owner rwx, group r-x, others r-- */
    CHECK_EQ(chmod(p, 0754), 0);
    CHECK_EQ(access3(&f, all, &st), ACCESS3_READ | ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_EXECUTE);
    set_cred(RPC_AUTH_SYS, 2000, 1000);
    CHECK_EQ(access3(&f, all, &st), ACCESS3_READ | ACCESS3_EXECUTE);
    set_cred(RPC_AUTH_SYS, 2000, 2000);
    CHECK_EQ(access3(&f, all, &st), ACCESS3_READ);
    set_cred(RPC_AUTH_SYS, 0, 0);
    /* root may execute only what someone may execute */
    CHECK_EQ(chmod(p, 0644), 0);
    CHECK_EQ(access3(&f, ACCESS3_EXECUTE | ACCESS3_READ, &st), ACCESS3_READ);

    /* ro export file */
    local_path(p, sizeof(p), path_ro, "rofile");
    close(open(p, O_CREAT | O_WRONLY, 0666));
    CHECK_EQ(lookup(&root_ro, "rofile", &ro_f, NULL), NFS3_OK);
    CHECK_EQ(access3(&ro_f, all, &st), ACCESS3_READ);
}

/* ---- the other namespace procedures ---- */

static void test_namespace(void)
{
    struct tfh d1, d2, f, l, ln;
    fattr3 a;
    char p[256];

    /* MKDIR */
    CHECK_EQ(mkdir3(&root_rw, "ns1", 0750, &d1), NFS3_OK);
    CHECK_EQ(getattr(&d1, &a), NFS3_OK);
    CHECK_EQ(a.mode, 0750);
    CHECK_EQ(mkdir3(&root_rw, "ns1", 0750, NULL), NFS3ERR_EXIST);
    CHECK_EQ(mkdir3(&root_rw, "..", 0750, NULL), NFS3ERR_EXIST);
    CHECK_EQ(mkdir3(&root_rw, "ns2", 0755, &d2), NFS3_OK);

    /* SYMLINK + READLINK */
    SYMLINK3args sa;
    SYMLINK3res sr;
    memset(&sa, 0, sizeof(sa));
    sa.where = WHERE(&d1, "sl");
    sa.symlink.symlink_attributes = sattr_mode(0777);
    sa.symlink.symlink_data.val = "../some/target";
    sa.symlink.symlink_data.len = 14;
    NFS_OK(SYMLINK, &sa, &sr);
    CHECK_EQ(sr.status, NFS3_OK);
    CHECK_EQ(sr.resok.obj_attributes.attributes.type, NF3LNK);
    keep_fh(&l, &sr.resok.obj.handle);
    READLINK3args ra = {.symlink = FH(&l)};
    READLINK3res rr;
    NFS_OK(READLINK, &ra, &rr);
    CHECK_EQ(rr.status, NFS3_OK);
    CHECK(rr.resok.data.len == 14 && memcmp(rr.resok.data.val, "../some/target", 14) == 0);
    CHECK(rr.resok.symlink_attributes.attributes_follow);
    ra.symlink = FH(&d1);
    NFS_OK(READLINK, &ra, &rr);
    CHECK_EQ(rr.status, NFS3ERR_INVAL);
    sa.symlink.symlink_data.len = 0;
    sa.where = WHERE(&d1, "sl2");
    NFS_OK(SYMLINK, &sa, &sr);
    CHECK_EQ(sr.status, NFS3ERR_NOENT);

    /* MKNOD: fifo, socket, char device; regular files etc. are BADTYPE */
    MKNOD3args ma;
    MKNOD3res mr;
    memset(&ma, 0, sizeof(ma));
    ma.where = WHERE(&d1, "fifo");
    ma.what.type = NF3FIFO;
    ma.what.pipe_attributes = sattr_mode(0600);
    NFS_OK(MKNOD, &ma, &mr);
    CHECK_EQ(mr.status, NFS3_OK);
    CHECK_EQ(mr.resok.obj_attributes.attributes.type, NF3FIFO);
    CHECK_EQ(mr.resok.obj_attributes.attributes.mode, 0600);
    ma.where = WHERE(&d1, "sock");
    ma.what.type = NF3SOCK;
    NFS_OK(MKNOD, &ma, &mr);
    CHECK_EQ(mr.status, NFS3_OK);
    CHECK_EQ(mr.resok.obj_attributes.attributes.type, NF3SOCK);
    memset(&ma, 0, sizeof(ma));
    ma.where = WHERE(&d1, "chr");
    ma.what.type = NF3CHR;
    ma.what.device.dev_attributes = sattr_mode(0644);
    ma.what.device.spec.specdata1 = 1;
    ma.what.device.spec.specdata2 = 3;
    NFS_OK(MKNOD, &ma, &mr);
    if (mr.status == NFS3_OK) {
        CHECK_EQ(mr.resok.obj_attributes.attributes.type, NF3CHR);
        CHECK_EQ(mr.resok.obj_attributes.attributes.rdev.specdata1, 1);
        CHECK_EQ(mr.resok.obj_attributes.attributes.rdev.specdata2, 3);
    } else {
        CHECK_EQ(mr.status, NFS3ERR_PERM); /* a container without CAP_MKNOD */
    }
    const ftype3 badtypes[] = {NF3REG, NF3DIR, NF3LNK};
    for (size_t i = 0; i < sizeof(badtypes) / sizeof(badtypes[0]); i++) {
        memset(&ma, 0, sizeof(ma));
        ma.where = WHERE(&d1, "bad");
        ma.what.type = badtypes[i];
        NFS_OK(MKNOD, &ma, &mr);
        CHECK_EQ(mr.status, NFS3ERR_BADTYPE);
    }

    /* LINK */
    CHECK_EQ(create_file(&d1, "f", 0644, &f), NFS3_OK);
    LINK3args la = {.file = FH(&f), .link = WHERE(&d2, "f-link")};
    LINK3res lr;
    NFS_OK(LINK, &la, &lr);
    CHECK_EQ(lr.status, NFS3_OK);
    CHECK_EQ(lr.resok.file_attributes.attributes.nlink, 2);
    CHECK(lr.resok.linkdir_wcc.before.attributes_follow && lr.resok.linkdir_wcc.after.attributes_follow);
    NFS_OK(LINK, &la, &lr);
    CHECK_EQ(lr.status, NFS3ERR_EXIST);
    CHECK(lr.resfail.file_attributes.attributes_follow);
    la.link = WHERE(&root_sq, "x");
    NFS_OK(LINK, &la, &lr);
    CHECK_EQ(lr.status, NFS3ERR_XDEV);
    CHECK_EQ(lookup(&d2, "f-link", &ln, &a), NFS3_OK);

    /* RENAME across directories, over an existing file, and across exports */
    RENAME3args na = {.from = WHERE(&d1, "f"), .to = WHERE(&d2, "g")};
    RENAME3res nr;
    NFS_OK(RENAME, &na, &nr);
    CHECK_EQ(nr.status, NFS3_OK);
    CHECK(nr.resok.fromdir_wcc.after.attributes_follow && nr.resok.todir_wcc.after.attributes_follow);
    CHECK_EQ(lookup(&d1, "f", NULL, NULL), NFS3ERR_NOENT);
    CHECK_EQ(lookup(&d2, "g", NULL, &a), NFS3_OK);
    na.from = WHERE(&d2, "g");
    na.to = WHERE(&d2, "f-link"); /* same inode: a no-op, as rename(2) */
    NFS_OK(RENAME, &na, &nr);
    CHECK_EQ(nr.status, NFS3_OK);
    na.from = WHERE(&d2, "missing");
    NFS_OK(RENAME, &na, &nr);
    CHECK_EQ(nr.status, NFS3ERR_NOENT);
    na.from = WHERE(&d2, "g");
    na.to = WHERE(&root_sq, "g");
    NFS_OK(RENAME, &na, &nr);
    CHECK_EQ(nr.status, NFS3ERR_XDEV);
    na.to = WHERE(&d2, "..");
    NFS_OK(RENAME, &na, &nr);
    CHECK_EQ(nr.status, NFS3ERR_INVAL);
    na.from = WHERE(&root_rw, "ns1");
    na.to = WHERE(&d1, "sub"); /* a directory into itself */
    NFS_OK(RENAME, &na, &nr);
    CHECK_EQ(nr.status, NFS3ERR_INVAL);

    /* REMOVE and RMDIR */
    CHECK_EQ(remove3(&d2, "g"), NFS3_OK);
    CHECK_EQ(remove3(&d2, "g"), NFS3ERR_NOENT);
    CHECK_EQ(remove3(&root_rw, "ns1"), NFS3ERR_ISDIR);
    CHECK_EQ(rmdir3(&root_rw, "ns1"), NFS3ERR_NOTEMPTY);
    CHECK_EQ(rmdir3(&d2, "f-link"), NFS3ERR_NOTDIR);
    CHECK_EQ(rmdir3(&d1, "."), NFS3ERR_INVAL);
    CHECK_EQ(remove3(&d1, ".."), NFS3ERR_INVAL);
    REMOVE3args rma = {.object = WHERE(&d2, "f-link")};
    REMOVE3res rmr;
    NFS_OK(REMOVE, &rma, &rmr);
    CHECK_EQ(rmr.status, NFS3_OK);
    CHECK(rmr.resok.dir_wcc.before.attributes_follow && rmr.resok.dir_wcc.after.attributes_follow);
    CHECK(rmr.resok.dir_wcc.after.attributes.mtime.seconds >= rmr.resok.dir_wcc.before.attributes.mtime.seconds);
    CHECK_EQ(rmdir3(&root_rw, "ns2"), NFS3_OK);
    local_path(p, sizeof(p), path_rw, "ns2");
    CHECK(access(p, F_OK) != 0);
    /* a handle of the removed directory is stale */
    CHECK_EQ(getattr(&d2, NULL), NFS3ERR_STALE);
}

/* ---- read-only export ---- */

static void test_rofs(void)
{
    struct tfh f;
    char p[256];

    local_path(p, sizeof(p), path_ro, "data");
    int fd = open(p, O_CREAT | O_WRONLY, 0666);
    CHECK(fd >= 0 && write(fd, "ro!", 3) == 3);
    close(fd);
    local_path(p, sizeof(p), path_ro, "dir");
    CHECK_EQ(mkdir(p, 0777), 0);
    CHECK_EQ(lookup(&root_ro, "data", &f, NULL), NFS3_OK);

    sattr3 s = sattr_mode(0644);
    CHECK_EQ(create(&root_ro, "new", UNCHECKED, &s, NULL, NULL, NULL), NFS3ERR_ROFS);
    CHECK_EQ(mkdir3(&root_ro, "newdir", 0755, NULL), NFS3ERR_ROFS);
    CHECK_EQ(write3(&f, 0, "x", 1, FILE_SYNC, NULL), NFS3ERR_ROFS);
    CHECK_EQ(remove3(&root_ro, "data"), NFS3ERR_ROFS);
    CHECK_EQ(rmdir3(&root_ro, "dir"), NFS3ERR_ROFS);
    SETATTR3args sa;
    SETATTR3res sr;
    memset(&sa, 0, sizeof(sa));
    sa.object = FH(&f);
    sa.new_attributes = s;
    NFS_OK(SETATTR, &sa, &sr);
    CHECK_EQ(sr.status, NFS3ERR_ROFS);
    RENAME3args na = {.from = WHERE(&root_ro, "data"), .to = WHERE(&root_ro, "data2")};
    RENAME3res nr;
    NFS_OK(RENAME, &na, &nr);
    CHECK_EQ(nr.status, NFS3ERR_ROFS);
    LINK3args la = {.file = FH(&f), .link = WHERE(&root_ro, "l")};
    LINK3res lr;
    NFS_OK(LINK, &la, &lr);
    CHECK_EQ(lr.status, NFS3ERR_ROFS);
    SYMLINK3args syma;
    SYMLINK3res symr;
    memset(&syma, 0, sizeof(syma));
    syma.where = WHERE(&root_ro, "sl");
    syma.symlink.symlink_data.val = "x";
    syma.symlink.symlink_data.len = 1;
    NFS_OK(SYMLINK, &syma, &symr);
    CHECK_EQ(symr.status, NFS3ERR_ROFS);
    MKNOD3args ma;
    MKNOD3res mr;
    memset(&ma, 0, sizeof(ma));
    ma.where = WHERE(&root_ro, "fifo");
    ma.what.type = NF3FIFO;
    NFS_OK(MKNOD, &ma, &mr);
    CHECK_EQ(mr.status, NFS3ERR_ROFS);

    /* reading is fine */
    char buf[8];
    uint32_t n;
    bool eof;
    CHECK_EQ(read3(&f, 0, 8, buf, &n, &eof), NFS3_OK);
    CHECK(n == 3 && eof && memcmp(buf, "ro!", 3) == 0);
}

/* ---- root squash ---- */

static void test_squash(void)
{
    struct tfh f;
    fattr3 a;

    sattr3 s = sattr_mode(0644);
    CHECK_EQ(create(&root_sq, "squashed", GUARDED, &s, NULL, &f, &a), NFS3_OK);
    CHECK_EQ(a.uid, 65534);
    CHECK_EQ(a.gid, 65534);
    set_cred(RPC_AUTH_SYS, 1000, 100);
    CHECK_EQ(create(&root_sq, "user", GUARDED, &s, NULL, &f, &a), NFS3_OK);
    CHECK_EQ(a.uid, 1000);
    CHECK_EQ(a.gid, 100);
    set_cred(RPC_AUTH_SYS, 0, 0);
}

/* ---- secure / insecure, sync / async ---- */

static void test_export_options(void)
{
    struct tfh f;
    WRITE3resok w;

    /* an unreserved source port: refused by `secure` exports, served by `insecure` */
    peer.sin_port = htons(2049 + 1000);
    CHECK_EQ(getattr(&root_rw, NULL), NFS3ERR_PERM);
    CHECK_EQ(mnt(path_rw, NULL), MNT3ERR_ACCES);
    CHECK_EQ(getattr(&root_async, NULL), NFS3_OK);
    CHECK_EQ(mnt(path_async, NULL), MNT3_OK);
    peer.sin_port = htons(1023);
    CHECK_EQ(getattr(&root_rw, NULL), NFS3_OK);
    peer.sin_port = htons(700);

    /* `async`: stable writes are claimed as asked; COMMIT still answers */
    CHECK_EQ(create_file(&root_async, "a", 0644, &f), NFS3_OK);
    CHECK_EQ(write3(&f, 0, "async", 5, FILE_SYNC, &w), NFS3_OK);
    CHECK_EQ(w.committed, FILE_SYNC);
    CHECK_EQ(w.count, 5);
    COMMIT3args ca = {.file = FH(&f)};
    COMMIT3res cr;
    NFS_OK(COMMIT, &ca, &cr);
    CHECK_EQ(cr.status, NFS3_OK);
    CHECK(memcmp(cr.resok.verf, svc.write_verf, 8) == 0);
    char buf[8];
    uint32_t n;
    bool eof;
    CHECK_EQ(read3(&f, 0, 8, buf, &n, &eof), NFS3_OK);
    CHECK(n == 5 && eof && memcmp(buf, "async", 5) == 0);
}

/* ---- READDIR / READDIRPLUS ---- */

#define NDIRFILES 150

struct seen {
    int count[NDIRFILES + 2]; /* files, then ".", ".." */
};

static void seen_name(struct seen *s, const char *name, uint32_t len)
{
    char buf[300];
    memcpy(buf, name, len);
    buf[len] = '\0';
    if (strcmp(buf, ".") == 0)
        s->count[NDIRFILES]++;
    else if (strcmp(buf, "..") == 0)
        s->count[NDIRFILES + 1]++;
    else {
        int i = -1;
        CHECK(sscanf(buf, "entry-%d", &i) == 1 && i >= 0 && i < NDIRFILES);
        if (i >= 0 && i < NDIRFILES)
            s->count[i]++;
    }
}

static void check_seen_once(const struct seen *s)
{
    for (int i = 0; i < NDIRFILES + 2; i++)
        if (s->count[i] != 1) {
            fprintf(stderr, "entry %d seen %d times\n", i, s->count[i]);
            check_failures++;
        }
}

/* Make `dir` hold NDIRFILES files with names of varying length. */
static void fill_dir(struct tfh *dir)
{
    CHECK_EQ(mkdir3(&root_rw, "big", 0755, dir), NFS3_OK);
    for (int i = 0; i < NDIRFILES; i++) {
        char name[128];
        snprintf(name, sizeof(name), "entry-%d-%.*s", i, i % 40, "padpadpadpadpadpadpadpadpadpadpadpadpadpad");
        CHECK_EQ(create_file(dir, name, 0644, NULL), NFS3_OK);
    }
}

static void test_readdir(const struct tfh *dir)
{
    struct seen s = {0};
    READDIR3args a;
    READDIR3res r;
    int calls = 0;
    bool eof = false;
    cookieverf3 verf = {0};

    memset(&a, 0, sizeof(a));
    a.dir = FH(dir);
    a.count = 512;
    while (!eof && calls < 1000) {
        calls++;
        NFS_OK(READDIR, &a, &r);
        CHECK_EQ(r.status, NFS3_OK);
        if (r.status != NFS3_OK)
            break;
        CHECK(r.resok.dir_attributes.attributes_follow);
        if (calls == 1)
            memcpy(verf, r.resok.cookieverf, 8);
        CHECK(memcmp(verf, r.resok.cookieverf, 8) == 0);
        CHECK(memcmp(verf, (cookieverf3){0}, 8) != 0);
        int n = 0;
        for (entry3 *e = r.resok.reply.entries; e; e = e->nextentry) {
            seen_name(&s, e->name.val, e->name.len);
            a.cookie = e->cookie;
            n++;
        }
        CHECK(n > 0);
        eof = r.resok.reply.eof;
        memcpy(a.cookieverf, r.resok.cookieverf, 8);
    }
    CHECK(eof);
    CHECK(calls > 5); /* 512 bytes hold ~15 entries */
    check_seen_once(&s);

    /* one big call holds everything */
    memset(&s, 0, sizeof(s));
    a.cookie = 0;
    memset(a.cookieverf, 0, 8);
    a.count = 64 * 1024;
    NFS_OK(READDIR, &a, &r);
    CHECK_EQ(r.status, NFS3_OK);
    CHECK(r.resok.reply.eof);
    for (entry3 *e = r.resok.reply.entries; e; e = e->nextentry)
        seen_name(&s, e->name.val, e->name.len);
    check_seen_once(&s);

    /* the count is honoured: the encoded result is never larger */
    for (uint32_t count = 120; count < 700; count += 37) {
        struct xdr_enc e;
        struct xdr_dec d;
        a.count = count;
        a.cookie = 0;
        xdr_enc_init(&e, argbuf, sizeof(argbuf));
        CHECK(xdr_encode_READDIR3args(&e, &a));
        CHECK_EQ(dispatch(&nfs3_program, 3, NFSPROC3_READDIR, xdr_enc_len(&e), &d), RPC_SUCCESS);
        CHECK(xdr_dec_left(&d) <= count);
    }

    /* too small for one entry */
    a.cookie = 0;
    a.count = 16;
    NFS_OK(READDIR, &a, &r);
    CHECK_EQ(r.status, NFS3ERR_TOOSMALL);
    a.count = 100;
    NFS_OK(READDIR, &a, &r);
    CHECK_EQ(r.status, NFS3ERR_TOOSMALL);

    /* a verifier of another directory with a cookie: BAD_COOKIE; zero: accepted */
    a.count = 4096;
    a.cookie = 0;
    NFS_OK(READDIR, &a, &r);
    CHECK_EQ(r.status, NFS3_OK);
    a.cookie = r.resok.reply.entries->cookie;
    memcpy(a.cookieverf, verf, 8);
    a.cookieverf[7] ^= 0x55;
    NFS_OK(READDIR, &a, &r);
    CHECK_EQ(r.status, NFS3ERR_BAD_COOKIE);
    memset(a.cookieverf, 0, 8);
    NFS_OK(READDIR, &a, &r);
    CHECK_EQ(r.status, NFS3_OK);

    /* not a directory */
    struct tfh f;
    CHECK_EQ(lookup(dir, "entry-1-p", &f, NULL), NFS3_OK);
    a.dir = FH(&f);
    a.cookie = 0;
    NFS_OK(READDIR, &a, &r);
    CHECK_EQ(r.status, NFS3ERR_NOTDIR);
}

static void test_readdirplus(const struct tfh *dir)
{
    struct seen s = {0};
    READDIRPLUS3args a;
    READDIRPLUS3res r;
    int calls = 0;
    bool eof = false;

    memset(&a, 0, sizeof(a));
    a.dir = FH(dir);
    a.dircount = 256;
    a.maxcount = 2048;
    while (!eof && calls < 1000) {
        calls++;
        NFS_OK(READDIRPLUS, &a, &r);
        CHECK_EQ(r.status, NFS3_OK);
        if (r.status != NFS3_OK)
            break;
        int n = 0;
        for (entryplus3 *e = r.resok.reply.entries; e; e = e->nextentry) {
            seen_name(&s, e->name.val, e->name.len);
            CHECK(e->name_attributes.attributes_follow);
            CHECK(e->name_handle.handle_follows);
            CHECK_EQ(e->name_attributes.attributes.fileid, e->fileid);
            a.cookie = e->cookie;
            n++;
        }
        CHECK(n > 0);
        eof = r.resok.reply.eof;
        memcpy(a.cookieverf, r.resok.cookieverf, 8);
    }
    CHECK(eof);
    CHECK(calls > 10);
    check_seen_once(&s);

    /* the handles work */
    a.cookie = 0;
    memset(a.cookieverf, 0, 8);
    a.dircount = 0; /* no separate limit */
    a.maxcount = 1 << 20;
    NFS_OK(READDIRPLUS, &a, &r);
    CHECK_EQ(r.status, NFS3_OK);
    CHECK(r.resok.reply.eof);
    struct tfh h;
    fattr3 fa;
    uint64_t want = 0;
    int n = 0;
    for (entryplus3 *e = r.resok.reply.entries; e; e = e->nextentry) {
        n++;
        if (e->name.len > 8 && memcmp(e->name.val, "entry-7-", 8) == 0) {
            keep_fh(&h, &e->name_handle.handle);
            want = e->fileid;
        }
    }
    CHECK_EQ(n, NDIRFILES + 2);
    CHECK_EQ(getattr(&h, &fa), NFS3_OK);
    CHECK_EQ(fa.fileid, want);

    /* maxcount honoured, TOOSMALL below one entry */
    for (uint32_t maxcount = 300; maxcount < 1500; maxcount += 101) {
        struct xdr_enc e;
        struct xdr_dec d;
        a.maxcount = maxcount;
        a.dircount = maxcount;
        xdr_enc_init(&e, argbuf, sizeof(argbuf));
        CHECK(xdr_encode_READDIRPLUS3args(&e, &a));
        CHECK_EQ(dispatch(&nfs3_program, 3, NFSPROC3_READDIRPLUS, xdr_enc_len(&e), &d), RPC_SUCCESS);
        CHECK(xdr_dec_left(&d) <= maxcount);
    }
    a.maxcount = 150;
    NFS_OK(READDIRPLUS, &a, &r);
    CHECK_EQ(r.status, NFS3ERR_TOOSMALL);
}

/* Removing entries while listing (rm -r): cookies and the verifier stay valid. */
static void test_readdir_while_removing(const struct tfh *dir)
{
    READDIR3args a;
    READDIR3res r;
    int removed = 0, calls = 0;
    bool eof = false;

    memset(&a, 0, sizeof(a));
    a.dir = FH(dir);
    a.count = 1024;
    while (!eof && calls++ < 1000) {
        NFS_OK(READDIR, &a, &r);
        CHECK_EQ(r.status, NFS3_OK);
        if (r.status != NFS3_OK)
            break;
        char names[64][300];
        int n = 0;
        for (entry3 *e = r.resok.reply.entries; e; e = e->nextentry) {
            a.cookie = e->cookie;
            if (n < 64 && !(e->name.len <= 2 && e->name.val[0] == '.')) {
                memcpy(names[n], e->name.val, e->name.len);
                names[n++][e->name.len] = '\0';
            }
        }
        eof = r.resok.reply.eof;
        memcpy(a.cookieverf, r.resok.cookieverf, 8);
        for (int i = 0; i < n; i++)
            if (remove3(dir, names[i]) == NFS3_OK)
                removed++;
    }
    CHECK(eof);
    CHECK_EQ(removed, NDIRFILES);
    CHECK_EQ(rmdir3(&root_rw, "big"), NFS3_OK);
}

/* ---- FSSTAT, FSINFO, PATHCONF ---- */

static void test_fs_info(void)
{
    FSSTAT3args sa = {.fsroot = FH(&root_rw)};
    FSSTAT3res sr;
    NFS_OK(FSSTAT, &sa, &sr);
    CHECK_EQ(sr.status, NFS3_OK);
    CHECK(sr.resok.obj_attributes.attributes_follow);
    CHECK(sr.resok.tbytes > 0 && sr.resok.fbytes <= sr.resok.tbytes && sr.resok.abytes <= sr.resok.fbytes);
    CHECK(sr.resok.tfiles > 0);

    FSINFO3args ia = {.fsroot = FH(&root_rw)};
    FSINFO3res ir;
    NFS_OK(FSINFO, &ia, &ir);
    CHECK_EQ(ir.status, NFS3_OK);
    CHECK_EQ(ir.resok.rtmax, 1u << 20);
    CHECK_EQ(ir.resok.wtmax, 1u << 20);
    CHECK_EQ(ir.resok.rtpref, 1u << 20);
    CHECK_EQ(ir.resok.wtpref, 1u << 20);
    CHECK(ir.resok.dtpref >= 4096);
    CHECK(ir.resok.maxfilesize > (1ull << 40));
    CHECK_EQ(ir.resok.time_delta.seconds, 0);
    CHECK_EQ(ir.resok.time_delta.nseconds, 1);
    CHECK_EQ(ir.resok.properties, FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS | FSF3_CANSETTIME);

    PATHCONF3args pa = {.object = FH(&root_rw)};
    PATHCONF3res pr;
    NFS_OK(PATHCONF, &pa, &pr);
    CHECK_EQ(pr.status, NFS3_OK);
    CHECK_EQ(pr.resok.name_max, 255);
    CHECK(pr.resok.no_trunc && pr.resok.chown_restricted && pr.resok.case_preserving);
    CHECK(!pr.resok.case_insensitive);

    struct tfh bad = root_rw;
    bad.data[5] ^= 0x40;
    ia.fsroot = FH(&bad);
    NFS_OK(FSINFO, &ia, &ir);
    CHECK_EQ(ir.status, NFS3ERR_BADHANDLE);
    CHECK(!ir.resfail.obj_attributes.attributes_follow);
}

int main(void)
{
    if (geteuid() != 0) {
        printf("test_nfs3: skipped (needs root for open_by_handle_at)\n");
        return 77;
    }
    if (setup() != 0) {
        fprintf(stderr, "test_nfs3: setup failed\n");
        remove_tmpdir();
        return 1;
    }
    umask(0);
    test_proc_flags();
    test_mount();
    test_handles();
    test_lookup();
    test_create();
    test_io();
    test_setattr();
    test_access();
    test_namespace();
    test_rofs();
    test_squash();
    test_export_options();
    struct tfh big;
    fill_dir(&big);
    test_readdir(&big);
    test_readdirplus(&big);
    test_readdir_while_removing(&big);
    test_fs_info();
    teardown();
    return check_report("test_nfs3");
}
