/* The NFSv3 ops vector: portmap v2 / rpcbind v4 GETPORT, MOUNT v3 MNT, NFSv3 calls. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/nfs3_reply.h"
#include "client/nfs_client_impl.h"
#include "xdr/mount_xdr.h"
#include "xdr/nfs3_xdr.h"
#include "xdr/rpcb_prot_xdr.h"

#define WRAP_ENC(T) \
    static bool enc_##T(struct xdr_enc *x, const void *v) { return xdr_encode_##T(x, v); }
WRAP_ENC(mapping)
WRAP_ENC(rpcb)
WRAP_ENC(dirpath)
WRAP_ENC(GETATTR3args)
WRAP_ENC(SETATTR3args)
WRAP_ENC(LOOKUP3args)
WRAP_ENC(READ3args)
WRAP_ENC(WRITE3args)
WRAP_ENC(COMMIT3args)
WRAP_ENC(CREATE3args)
WRAP_ENC(MKDIR3args)
WRAP_ENC(SYMLINK3args)
WRAP_ENC(REMOVE3args)
WRAP_ENC(RMDIR3args)
WRAP_ENC(RENAME3args)
WRAP_ENC(LINK3args)
WRAP_ENC(READLINK3args)
WRAP_ENC(READDIR3args)
WRAP_ENC(READDIRPLUS3args)
WRAP_ENC(FSSTAT3args)
WRAP_ENC(FSINFO3args)

static nfs_fh3 fh3(const struct nfs_fh *f) { return (nfs_fh3){ { f->len, f->data } }; }
static struct xdr_string str(const char *s) { return (struct xdr_string){ (uint32_t)strlen(s), s }; }
static diropargs3 dirop(const struct nfs_fh *dir, const char *name)
{
    return (diropargs3){ fh3(dir), str(name) };
}

/* One blocking NFSv3 call: 0 with rep to decode (then rpc_reply_free), else a status. */
static int call3(struct nfs_client *c, uint32_t proc, rpc_xdr_enc_fn enc, const void *args,
                 struct rpc_reply *rep)
{
    int st = rpc_clnt_call(c->rpc, NFS_PROGRAM, NFS_V3, proc, &c->cred, enc, args,
                           c->timeout_ms, rep);
    if (st) {
        st = nfs_client_rpc_status(st, rep);
        rpc_reply_free(rep);
    }
    return st;
}

/* ---- connecting: ports, mount, fsinfo ---- */

void nfs_client_set_port(struct sockaddr_storage *ss, uint16_t port)
{
    if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
    else
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
}

/* Ask rpcbind on port 111 for (prog, vers) over TCP: portmap v2 GETPORT over IPv4,
 * rpcbind v4 GETADDR with netid tcp6 over IPv6 (portmap only knows IPv4). */
int nfs_client_rpcb_getport(struct nfs_client *c, uint32_t prog, uint32_t vers, uint16_t *port,
                        char *err, size_t errlen)
{
    struct sockaddr_storage ss = c->addr;
    nfs_client_set_port(&ss, PMAP_PORT);
    int st = 0;
    struct rpc_clnt *r = rpc_clnt_connect((struct sockaddr *)&ss, c->addrlen, c->timeout_ms, &st);
    if (!r) {
        snprintf(err, errlen, "rpcbind (port 111): %s", nfs_client_strerror(st));
        return st;
    }
    struct rpc_reply rep;
    if (ss.ss_family == AF_INET6) {
        rpcb args = { prog, vers, str("tcp6"), str(""), str("") };
        st = rpc_clnt_call(r, RPCBPROG, RPCBVERS4, RPCBPROC_GETADDR, NULL, enc_rpcb, &args,
                           c->timeout_ms, &rep);
        if (!st)
            st = nfs3_reply_getaddr(&rep.res, port);
    } else {
        mapping args = { prog, vers, PMAP_IPPROTO_TCP, 0 };
        st = rpc_clnt_call(r, PMAP_PROG, PMAP_VERS, PMAPPROC_GETPORT, NULL, enc_mapping, &args,
                           c->timeout_ms, &rep);
        if (!st)
            st = nfs3_reply_getport(&rep.res, port);
    }
    st = nfs_client_rpc_status(st, &rep);
    rpc_reply_free(&rep);
    rpc_clnt_destroy(r);
    if (!st && *port == 0)
        st = -EPROTONOSUPPORT;
    if (st)
        snprintf(err, errlen, "rpcbind: no TCP port for program %u version %u: %s", prog, vers,
                 nfs_client_strerror(st));
    return st;
}

static int mnt(struct rpc_clnt *m, struct nfs_client *c, const char *path, struct nfs_fh *fh)
{
    dirpath dp = str(path);
    struct rpc_reply rep;
    int st = rpc_clnt_call(m, MOUNT_PROGRAM, MOUNT_V3, MOUNTPROC3_MNT, &c->cred, enc_dirpath,
                           &dp, c->timeout_ms, &rep);
    if (!st)
        st = nfs3_reply_mnt(&rep.res, fh);
    st = nfs_client_rpc_status(st, &rep);
    rpc_reply_free(&rep);
    return st;
}

/* The longest prefix of the URL path the server mounts (or exactly export=). */
static int mount_longest(struct rpc_clnt *m, struct nfs_client *c, const struct nfs_url *u,
                         char *err, size_t errlen)
{
    const char *path = u->path;
    size_t plen = strlen(path);
    if (u->export_path) {
        size_t elen = strlen(u->export_path);
        if (strncmp(path, u->export_path, elen) || (path[elen] && path[elen] != '/' && elen > 1)) {
            snprintf(err, errlen, "URL path %s is not under export=%s", path, u->export_path);
            return -EINVAL;
        }
        plen = elen;
    }
    char *try = strndup(path, plen);
    if (!try)
        return -ENOMEM;
    int first = 0;
    for (;;) {
        int st = mnt(m, c, try, &c->root);
        if (st == 0) {
            size_t tl = strlen(try);
            const char *rest = path + (tl == 1 ? 1 : tl);
            c->rest = strdup(*rest == '/' ? rest + 1 : rest);
            free(try);
            return c->rest ? 0 : -ENOMEM;
        }
        if (!first)
            first = st;
        char *slash = strrchr(try, '/');
        /* transport and RPC errors will not improve with a shorter path */
        if (st < 0 || u->export_path || !slash || strcmp(try, "/") == 0)
            break;
        slash[slash == try ? 1 : 0] = 0;
    }
    snprintf(err, errlen, "MOUNT %s: %s%s", u->export_path ? u->export_path : path,
             nfs_client_strerror(first),
             first == MNT3ERR_ACCES ? " (a `secure` export needs a privileged source port)" : "");
    free(try);
    return first;
}

static int fsinfo(struct nfs_client *c)
{
    FSINFO3args args = { fh3(&c->root) };
    struct rpc_reply rep;
    int st = call3(c, NFSPROC3_FSINFO, enc_FSINFO3args, &args, &rep);
    if (st)
        return st;
    uint32_t rt, wt, dt;
    st = nfs3_reply_fsinfo(&rep.res, &rt, &wt, &dt);
    rpc_reply_free(&rep);
    if (st)
        return st;
    rt &= ~4095u, wt &= ~4095u;
    c->rsize = rt < 4096 ? 4096 : rt > NFS_CLIENT_IO_MAX ? NFS_CLIENT_IO_MAX : rt;
    c->wsize = wt < 4096 ? 4096 : wt > NFS_CLIENT_IO_MAX ? NFS_CLIENT_IO_MAX : wt;
    c->dtpref = dt < 4096 ? 4096 : dt > 65536 ? 65536 : dt;
    return 0;
}

static int v3_mount(struct nfs_client *c, const struct nfs_url *u, char *err, size_t errlen)
{
    uint16_t nfsport = u->port, mntport = u->mountport;
    int st;
    if (!mntport && (st = nfs_client_rpcb_getport(c, MOUNT_PROGRAM, MOUNT_V3, &mntport, err, errlen)))
        return st;
    if (!nfsport && (st = nfs_client_rpcb_getport(c, NFS_PROGRAM, NFS_V3, &nfsport, err, errlen)))
        return st;

    struct sockaddr_storage ss = c->addr;
    nfs_client_set_port(&ss, mntport);
    struct rpc_clnt *m = nfs_client_rpc_connect((struct sockaddr *)&ss, c->addrlen,
                                                c->timeout_ms, &st);
    if (!m) {
        snprintf(err, errlen, "MOUNT port %u: %s", mntport, nfs_client_strerror(st));
        return st;
    }
    st = mount_longest(m, c, u, err, errlen);
    rpc_clnt_destroy(m); /* no UMNT: it is advisory and our mounts last one process */
    if (st)
        return st;

    nfs_client_set_port(&c->addr, nfsport);
    c->rpc = nfs_client_rpc_connect((struct sockaddr *)&c->addr, c->addrlen, c->timeout_ms, &st);
    if (!c->rpc) {
        snprintf(err, errlen, "NFS port %u: %s", nfsport, nfs_client_strerror(st));
        return st;
    }
    if ((st = fsinfo(c)))
        snprintf(err, errlen, "FSINFO: %s", nfs_client_strerror(st));
    return st;
}

static void v3_unmount(struct nfs_client *c)
{
    rpc_clnt_destroy(c->rpc);
    c->rpc = NULL;
}

/* ---- attributes and names ---- */

static int v3_getattr(struct nfs_client *c, const struct nfs_fh *fh, struct nfs_attr *attr)
{
    GETATTR3args args = { fh3(fh) };
    struct rpc_reply rep;
    int st = call3(c, NFSPROC3_GETATTR, enc_GETATTR3args, &args, &rep);
    if (st)
        return st;
    st = nfs3_reply_getattr(&rep.res, attr);
    rpc_reply_free(&rep);
    return st;
}

static sattr3 sattr_from(const struct nfs_setattr *sa)
{
    sattr3 s;
    memset(&s, 0, sizeof(s));
    s.mode.set_it = sa->set_mode, s.mode.mode = sa->mode;
    s.uid.set_it = sa->set_uid, s.uid.uid = sa->uid;
    s.gid.set_it = sa->set_gid, s.gid.gid = sa->gid;
    s.size.set_it = sa->set_size, s.size.size = sa->size;
    s.atime.set_it = !sa->set_atime ? DONT_CHANGE : sa->atime_now ? SET_TO_SERVER_TIME
                                                                  : SET_TO_CLIENT_TIME;
    s.atime.atime = (nfstime3){ (uint32_t)sa->atime.sec, sa->atime.nsec };
    s.mtime.set_it = !sa->set_mtime ? DONT_CHANGE : sa->mtime_now ? SET_TO_SERVER_TIME
                                                                  : SET_TO_CLIENT_TIME;
    s.mtime.mtime = (nfstime3){ (uint32_t)sa->mtime.sec, sa->mtime.nsec };
    return s;
}

static int v3_setattr(struct nfs_client *c, const struct nfs_fh *fh, const struct nfs_setattr *sa,
                      struct nfs_attr *attr)
{
    SETATTR3args args;
    memset(&args, 0, sizeof(args));
    args.object = fh3(fh);
    args.new_attributes = sattr_from(sa);
    struct rpc_reply rep;
    int st = call3(c, NFSPROC3_SETATTR, enc_SETATTR3args, &args, &rep);
    if (st)
        return st;
    st = nfs3_reply_setattr(&rep.res);
    rpc_reply_free(&rep);
    return st || !attr ? st : v3_getattr(c, fh, attr);
}

static int v3_lookup(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                     struct nfs_fh *fh, struct nfs_attr *attr)
{
    LOOKUP3args args = { dirop(dir, name) };
    struct rpc_reply rep;
    int st = call3(c, NFSPROC3_LOOKUP, enc_LOOKUP3args, &args, &rep);
    if (st)
        return st;
    st = nfs3_reply_lookup(&rep.res, fh, attr);
    rpc_reply_free(&rep);
    return st == -ENODATA ? v3_getattr(c, fh, attr) : st;
}

/* ---- READ / WRITE / COMMIT / GETATTR, asynchronous ---- */

struct io_ctx {
    nfs_io_done_fn done;
    nfs_attr_done_fn attr_done;
    void *arg;
    void *buf;
    struct nfs_read_ref *ref; /* READ into the reply itself (buf unused) */
    uint32_t count;
    uint32_t proc;
};

static void io_done(void *arg, int status, struct rpc_reply *rep)
{
    struct io_ctx *x = arg;
    struct nfs_io_result r;
    struct nfs_attr a;
    memset(&r, 0, sizeof(r));
    int st = nfs_client_rpc_status(status, rep);
    if (!st) {
        switch (x->proc) {
        case NFSPROC3_READ:
            if (!x->ref) {
                st = nfs3_reply_read(&rep->res, x->buf, x->count, &r);
                break;
            }
            st = nfs3_reply_read_ref(&rep->res, x->count, &r, &x->ref->data);
            if (!st) { /* the data stays where it arrived: the caller frees the reply */
                x->ref->hold = *rep;
                rep->rb = NULL;
                rep->buf = NULL;
            }
            break;
        case NFSPROC3_WRITE: st = nfs3_reply_write(&rep->res, x->count, &r); break;
        case NFSPROC3_COMMIT: st = nfs3_reply_commit(&rep->res, &r); break;
        default: st = nfs3_reply_getattr(&rep->res, &a); break;
        }
    }
    rpc_reply_free(rep);
    if (x->attr_done)
        x->attr_done(x->arg, st, st ? NULL : &a);
    else
        x->done(x->arg, st, &r);
    free(x);
}

static int call3_async(struct nfs_client *c, uint32_t proc, rpc_xdr_enc_fn enc, const void *args,
                       struct io_ctx *x)
{
    x->proc = proc;
    int st = rpc_clnt_call_async(c->rpc, NFS_PROGRAM, NFS_V3, proc, &c->cred, enc, args,
                                 c->timeout_ms, io_done, x);
    if (st)
        free(x);
    return st;
}

static struct io_ctx *io_ctx_new(nfs_io_done_fn done, void *arg, void *buf, uint32_t count)
{
    struct io_ctx *x = calloc(1, sizeof(*x));
    if (x)
        *x = (struct io_ctx){ .done = done, .arg = arg, .buf = buf, .count = count };
    return x;
}

static int v3_read_async(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off, void *buf,
                         uint32_t count, nfs_io_done_fn done, void *arg)
{
    struct io_ctx *x = io_ctx_new(done, arg, buf, count);
    READ3args args = { fh3(fh), off, count };
    return x ? call3_async(c, NFSPROC3_READ, enc_READ3args, &args, x) : -ENOMEM;
}

static int v3_read_async_ref(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off,
                             uint32_t count, struct nfs_read_ref *ref, nfs_io_done_fn done,
                             void *arg)
{
    struct io_ctx *x = io_ctx_new(done, arg, NULL, count);
    READ3args args = { fh3(fh), off, count };
    if (!x)
        return -ENOMEM;
    x->ref = ref;
    return call3_async(c, NFSPROC3_READ, enc_READ3args, &args, x);
}

static int v3_write_async(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off,
                          const void *buf, uint32_t count, enum nfs_stable stable,
                          nfs_io_done_fn done, void *arg)
{
    struct io_ctx *x = io_ctx_new(done, arg, NULL, count);
    /* the data (last in WRITE3args) goes out from buf, not through an encode buffer */
    WRITE3args args = { fh3(fh), off, count, (stable_how)stable, { 0, NULL } };
    if (!x)
        return -ENOMEM;
    x->proc = NFSPROC3_WRITE;
    int st = rpc_clnt_call_async_payload(c->rpc, NFS_PROGRAM, NFS_V3, NFSPROC3_WRITE, &c->cred,
                                         enc_WRITE3args, &args, buf, count, c->timeout_ms,
                                         io_done, x);
    if (st)
        free(x);
    return st;
}

static int v3_commit_async(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off,
                           uint32_t count, nfs_io_done_fn done, void *arg)
{
    struct io_ctx *x = io_ctx_new(done, arg, NULL, count);
    COMMIT3args args = { fh3(fh), off, count };
    return x ? call3_async(c, NFSPROC3_COMMIT, enc_COMMIT3args, &args, x) : -ENOMEM;
}

static int v3_getattr_async(struct nfs_client *c, const struct nfs_fh *fh, nfs_attr_done_fn done,
                            void *arg)
{
    struct io_ctx *x = io_ctx_new(NULL, arg, NULL, 0);
    if (!x)
        return -ENOMEM;
    x->attr_done = done;
    GETATTR3args args = { fh3(fh) };
    return call3_async(c, NFSPROC3_GETATTR, enc_GETATTR3args, &args, x);
}

/* ---- directory operations ---- */

static int made(struct nfs_client *c, uint32_t proc, rpc_xdr_enc_fn enc, const void *args,
                const struct nfs_fh *dir, const char *name, struct nfs_fh *fh,
                struct nfs_attr *attr)
{
    struct rpc_reply rep;
    int st = call3(c, proc, enc, args, &rep);
    if (st)
        return st;
    struct nfs_fh tmp;
    bool have = false;
    st = nfs3_reply_create(&rep.res, proc, fh ? fh : &tmp, &have, attr);
    rpc_reply_free(&rep);
    if (st || have || (!fh && !attr))
        return st;
    /* the server did not say (RFC 1813 allows it): ask */
    return v3_lookup(c, dir, name, fh ? fh : &tmp, attr);
}

static int v3_create(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                     uint32_t mode, bool exclusive, struct nfs_fh *fh, struct nfs_attr *attr)
{
    CREATE3args args;
    memset(&args, 0, sizeof(args));
    args.where = dirop(dir, name);
    args.how.mode = exclusive ? GUARDED : UNCHECKED;
    args.how.obj_attributes.mode.set_it = true;
    args.how.obj_attributes.mode.mode = mode;
    return made(c, NFSPROC3_CREATE, enc_CREATE3args, &args, dir, name, fh, attr);
}

static int v3_mkdir(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                    uint32_t mode, struct nfs_fh *fh, struct nfs_attr *attr)
{
    MKDIR3args args;
    memset(&args, 0, sizeof(args));
    args.where = dirop(dir, name);
    args.attributes.mode.set_it = true;
    args.attributes.mode.mode = mode;
    return made(c, NFSPROC3_MKDIR, enc_MKDIR3args, &args, dir, name, fh, attr);
}

static int v3_symlink(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                      const char *target, struct nfs_fh *fh)
{
    SYMLINK3args args;
    memset(&args, 0, sizeof(args));
    args.where = dirop(dir, name);
    args.symlink.symlink_data = str(target);
    return made(c, NFSPROC3_SYMLINK, enc_SYMLINK3args, &args, dir, name, fh, NULL);
}

static int status_call(struct nfs_client *c, uint32_t proc, rpc_xdr_enc_fn enc, const void *args)
{
    struct rpc_reply rep;
    int st = call3(c, proc, enc, args, &rep);
    if (st)
        return st;
    st = nfs3_reply_status(&rep.res, proc);
    rpc_reply_free(&rep);
    return st;
}

static int v3_remove(struct nfs_client *c, const struct nfs_fh *dir, const char *name)
{
    REMOVE3args args = { dirop(dir, name) };
    return status_call(c, NFSPROC3_REMOVE, enc_REMOVE3args, &args);
}

static int v3_rmdir(struct nfs_client *c, const struct nfs_fh *dir, const char *name)
{
    RMDIR3args args = { dirop(dir, name) };
    return status_call(c, NFSPROC3_RMDIR, enc_RMDIR3args, &args);
}

static int v3_rename(struct nfs_client *c, const struct nfs_fh *from_dir, const char *from,
                     const struct nfs_fh *to_dir, const char *to)
{
    RENAME3args args = { dirop(from_dir, from), dirop(to_dir, to) };
    return status_call(c, NFSPROC3_RENAME, enc_RENAME3args, &args);
}

static int v3_link(struct nfs_client *c, const struct nfs_fh *file, const struct nfs_fh *dir,
                   const char *name)
{
    LINK3args args = { fh3(file), dirop(dir, name) };
    return status_call(c, NFSPROC3_LINK, enc_LINK3args, &args);
}

static int v3_readlink(struct nfs_client *c, const struct nfs_fh *fh, char *buf, size_t len)
{
    READLINK3args args = { fh3(fh) };
    struct rpc_reply rep;
    int st = call3(c, NFSPROC3_READLINK, enc_READLINK3args, &args, &rep);
    if (st)
        return st;
    st = nfs3_reply_readlink(&rep.res, buf, len);
    rpc_reply_free(&rep);
    return st;
}

static int v3_fsstat(struct nfs_client *c, const struct nfs_fh *fh, struct nfs_fsstat *fs)
{
    FSSTAT3args args = { fh3(fh) };
    struct rpc_reply rep;
    int st = call3(c, NFSPROC3_FSSTAT, enc_FSSTAT3args, &args, &rep);
    if (st)
        return st;
    st = nfs3_reply_fsstat(&rep.res, fs);
    rpc_reply_free(&rep);
    return st;
}

static int v3_readdir(struct nfs_client *c, const struct nfs_fh *dir, bool plus,
                      nfs_dirent_fn fn, void *arg)
{
    struct nfs3_dircursor cur;
    memset(&cur, 0, sizeof(cur));
    while (!cur.eof) {
        struct rpc_reply rep;
        int st;
        if (plus) {
            READDIRPLUS3args a = { fh3(dir), cur.cookie, { 0 }, c->dtpref, 8 * c->dtpref };
            memcpy(a.cookieverf, cur.verf, 8);
            st = call3(c, NFSPROC3_READDIRPLUS, enc_READDIRPLUS3args, &a, &rep);
        } else {
            READDIR3args a = { fh3(dir), cur.cookie, { 0 }, c->dtpref };
            memcpy(a.cookieverf, cur.verf, 8);
            st = call3(c, NFSPROC3_READDIR, enc_READDIR3args, &a, &rep);
        }
        if (st)
            return st;
        st = nfs3_reply_readdir(&rep.res, plus, &cur, fn, arg);
        rpc_reply_free(&rep);
        if (st == NFS3ERR_NOTSUPP && plus && cur.cookie == 0) {
            plus = false; /* a server without READDIRPLUS: plain names */
            continue;
        }
        if (st)
            return st;
    }
    return 0;
}

/* v3 has no open state: open = lookup (+ create / truncate), close = nothing. */
static int v3_close(struct nfs_client *c, struct nfs_file *f) { return 0; }

const struct nfs_client_ops nfs3_client_ops = {
    .name = "NFSv3",
    .mount = v3_mount,
    .unmount = v3_unmount,
    .lookup = v3_lookup,
    .getattr = v3_getattr,
    .setattr = v3_setattr,
    .open = nfs_open_by_lookup,
    .open_at = nfs_open_at_by_lookup,
    .close = v3_close,
    .read_async = v3_read_async,
    .write_async = v3_write_async,
    .read_async_ref = v3_read_async_ref,
    .commit_async = v3_commit_async,
    .getattr_async = v3_getattr_async,
    .create = v3_create,
    .mkdir = v3_mkdir,
    .remove = v3_remove,
    .rmdir = v3_rmdir,
    .rename = v3_rename,
    .link = v3_link,
    .symlink = v3_symlink,
    .readlink = v3_readlink,
    .fsstat = v3_fsstat,
    .readdir = v3_readdir,
    .lock = nlm_client_lock,
    .unlock = nlm_client_unlock,
    .testlock = nlm_client_test,
};
