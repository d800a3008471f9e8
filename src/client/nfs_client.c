/* What every protocol version shares: connecting, messages, blocking wrappers over the
 * asynchronous calls, path walks, and pipelined whole-range transfers. */
#include "client/nfs_client_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/nfs_window.h"
#include "util/log.h"

/* nfs_write_range commits every NFS_WRITE_BATCH bytes, so that a server restart costs
 * at most that much sent again; a batch whose writes or COMMIT saw another write
 * verifier is sent again (up to NFS_WRITE_RESENDS times). */
#define NFS_WRITE_BATCH (64ull << 20)
#define NFS_WRITE_RESENDS 5

/* ---- connecting ---- */

/* Root callers connect from a reserved source port, which exports marked `secure` (the
 * exports(5) default) require; others (or when every reserved port is taken) connect
 * from an ordinary port and such exports refuse them. */

#define RESVPORT_LO 600
#define RESVPORT_HI 1023

/* bindresvport(3)-style: a free port in [600, 1023] (needs CAP_NET_BIND_SERVICE). */
static int connect_resvport(const struct sockaddr *sa, socklen_t len, int timeout_ms)
{
    for (int port = RESVPORT_HI; port >= RESVPORT_LO; port--) {
        int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            return -errno;
        struct sockaddr_storage me;
        memset(&me, 0, sizeof(me));
        me.ss_family = sa->sa_family;
        if (sa->sa_family == AF_INET6)
            ((struct sockaddr_in6 *)&me)->sin6_port = htons((uint16_t)port);
        else
            ((struct sockaddr_in *)&me)->sin_port = htons((uint16_t)port);
        if (bind(fd, (struct sockaddr *)&me, len) < 0) {
            int e = errno;
            close(fd);
            if (e == EADDRINUSE)
                continue;
            return -e;
        }
        if (connect(fd, sa, len) < 0 && errno != EINPROGRESS) {
            int e = errno;
            close(fd);
            if (e == EADDRNOTAVAIL || e == EADDRINUSE)
                continue;
            return -e;
        }
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (poll(&p, 1, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 ||
            soerr) {
            close(fd);
            return soerr ? -soerr : -ETIMEDOUT;
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        return fd;
    }
    return -EADDRINUSE;
}

struct rpc_clnt *nfs_client_rpc_connect(const struct sockaddr *sa, socklen_t len, int timeout_ms,
                                        int *err)
{
    if (geteuid() == 0) {
        int fd = connect_resvport(sa, len, timeout_ms);
        if (fd >= 0)
            return rpc_clnt_connect_fd(fd, err);
        if (fd != -EADDRINUSE && fd != -EACCES && fd != -EPERM) {
            *err = fd;
            return NULL;
        }
    }
    return rpc_clnt_connect(sa, len, timeout_ms, err);
}

int nfs_client_rpc_status(int st, const struct rpc_reply *rep)
{
    if (st != -EPROTO || !rep || !rep->buf)
        return st;
    const struct rpc_reply_info *i = &rep->info;
    if (i->reply_stat == RPC_MSG_DENIED)
        return i->reject_stat == RPC_AUTH_ERROR ? -EACCES : -EPROTONOSUPPORT;
    switch (i->accept_stat) {
    case RPC_PROG_UNAVAIL:
    case RPC_PROG_MISMATCH:
    case RPC_PROC_UNAVAIL: return -EPROTONOSUPPORT;
    case RPC_SYSTEM_ERR: return -EREMOTEIO;
    default: return -EPROTO;
    }
}

static void cred_init(struct rpc_cred *cr, const struct nfs_url *u)
{
    memset(cr, 0, sizeof(*cr));
    cr->flavor = RPC_AUTH_SYS;
    cr->uid = u->uid >= 0 ? (uint32_t)u->uid : geteuid();
    cr->gid = u->gid >= 0 ? (uint32_t)u->gid : getegid();
    if (u->uid < 0) {
        gid_t g[RPC_AUTHSYS_MAXGIDS];
        int n = getgroups(RPC_AUTHSYS_MAXGIDS, g);
        for (int i = 0; i < n; i++)
            cr->gids[cr->ngids++] = g[i];
    }
    if (gethostname(cr->machinename, sizeof(cr->machinename) - 1) < 0)
        strcpy(cr->machinename, "peernfs");
    cr->machinename[sizeof(cr->machinename) - 1] = 0;
    cr->machinename_len = (uint32_t)strlen(cr->machinename);
}

struct nfs_client *nfs_client_connect_url(const struct nfs_url *u, int *status, char *err,
                                          size_t errlen)
{
    if (errlen)
        err[0] = 0;
    if (u->vers_major != 3 && u->vers_major != 4) {
        snprintf(err, errlen, "NFSv%d.%d: not implemented (this client speaks NFSv3, 4.0, 4.1, 4.2)",
                 u->vers_major, u->vers_minor);
        *status = -EPROTONOSUPPORT;
        return NULL;
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai;
    int e = getaddrinfo(u->host, NULL, &hints, &ai);
    if (e) {
        snprintf(err, errlen, "%s: %s", u->host, gai_strerror(e));
        *status = -EHOSTUNREACH;
        return NULL;
    }
    struct nfs_client *c = calloc(1, sizeof(*c));
    if (!c) {
        freeaddrinfo(ai);
        *status = -ENOMEM;
        return NULL;
    }
    memcpy(&c->addr, ai->ai_addr, ai->ai_addrlen);
    c->addrlen = ai->ai_addrlen;
    freeaddrinfo(ai);
    c->ops = u->vers_major == 3 ? &nfs3_client_ops : &nfs4_client_ops;
    c->vers = u->vers_major == 3 ? 3 : 40 + u->vers_minor;
    c->nlmport = u->nlmport;
    c->timeout_ms = u->timeo_s * 1000;
    c->window = u->window;
    cred_init(&c->cred, u);
    *status = c->ops->mount(c, u, err, errlen);
    if (*status) {
        nfs_client_destroy(c);
        return NULL;
    }
    return c;
}

struct nfs_client *nfs_client_connect(const char *url, int *status, char *err, size_t errlen)
{
    struct nfs_url u;
    *status = nfs_url_parse(url, &u, err, errlen);
    if (*status)
        return NULL;
    struct nfs_client *c = nfs_client_connect_url(&u, status, err, errlen);
    nfs_url_free(&u);
    return c;
}

void nfs_client_destroy(struct nfs_client *c)
{
    if (!c)
        return;
    nfs_async_shutdown(c);
    nlm_client_free(c);
    if (c->rpc || c->v4)
        c->ops->unmount(c);
    free(c->rest);
    free(c);
}

const struct nfs_fh *nfs_client_root(const struct nfs_client *c) { return &c->root; }
const char *nfs_client_url_rest(const struct nfs_client *c) { return c->rest ? c->rest : ""; }
uint32_t nfs_client_rsize(const struct nfs_client *c) { return c->rsize; }
uint32_t nfs_client_wsize(const struct nfs_client *c) { return c->wsize; }
int nfs_client_version(const struct nfs_client *c) { return c->vers; }

/* ---- messages ---- */

const char *nfs_client_strerror(int st)
{
    static const struct { int code; const char *msg; } nfs[] = {
        { 0, "success" },
        { 1, "not owner (NFS3ERR_PERM)" },
        { 2, "no such file or directory (NFS3ERR_NOENT)" },
        { 5, "I/O error (NFS3ERR_IO)" },
        { 6, "no such device or address (NFS3ERR_NXIO)" },
        { 13, "permission denied (NFS3ERR_ACCES)" },
        { 17, "file exists (NFS3ERR_EXIST)" },
        { 18, "cross-device link (NFS3ERR_XDEV)" },
        { 19, "no such device (NFS3ERR_NODEV)" },
        { 20, "not a directory (NFS3ERR_NOTDIR)" },
        { 21, "is a directory (NFS3ERR_ISDIR)" },
        { 22, "invalid argument (NFS3ERR_INVAL)" },
        { 27, "file too large (NFS3ERR_FBIG)" },
        { 28, "no space left on device (NFS3ERR_NOSPC)" },
        { 30, "read-only file system (NFS3ERR_ROFS)" },
        { 31, "too many links (NFS3ERR_MLINK)" },
        { 63, "file name too long (NFS3ERR_NAMETOOLONG)" },
        { 66, "directory not empty (NFS3ERR_NOTEMPTY)" },
        { 69, "quota exceeded (NFS3ERR_DQUOT)" },
        { 70, "stale file handle (NFS3ERR_STALE)" },
        { 71, "too many levels of remote in path (NFS3ERR_REMOTE)" },
        { 10001, "illegal file handle (NFS3ERR_BADHANDLE)" },
        { 10002, "update synchronization mismatch (NFS3ERR_NOT_SYNC)" },
        { 10003, "stale directory cookie (NFS3ERR_BAD_COOKIE)" },
        { 10004, "operation not supported (NFS3ERR_NOTSUPP)" },
        { 10005, "buffer or request too small (NFS3ERR_TOOSMALL)" },
        { 10006, "server fault (NFS3ERR_SERVERFAULT)" },
        { 10007, "type not supported (NFS3ERR_BADTYPE)" },
        { 10008, "server busy, try again (NFS3ERR_JUKEBOX)" },
        { 10009, "handle not of the right type (NFS4ERR_SAME or _BAD_STATEID range)" },
        { 10010, "lock held by someone else (NFS4ERR_DENIED)" },
        { 10011, "lease expired (NFS4ERR_EXPIRED)" },
        { 10012, "file locked (NFS4ERR_LOCKED)" },
        { 10013, "server in its grace period (NFS4ERR_GRACE)" },
        { 10014, "file handle expired (NFS4ERR_FHEXPIRED)" },
        { 10015, "share reservation denied (NFS4ERR_SHARE_DENIED)" },
        { 10016, "wrong security flavor (NFS4ERR_WRONGSEC)" },
        { 10017, "clientid in use (NFS4ERR_CLID_INUSE)" },
        { 10018, "server resource exhausted (NFS4ERR_RESOURCE)" },
        { 10020, "no current file handle (NFS4ERR_NOFILEHANDLE)" },
        { 10022, "stale clientid (NFS4ERR_STALE_CLIENTID)" },
        { 10023, "stale stateid (NFS4ERR_STALE_STATEID)" },
        { 10024, "old stateid (NFS4ERR_OLD_STATEID)" },
        { 10025, "bad stateid (NFS4ERR_BAD_STATEID)" },
        { 10026, "bad seqid (NFS4ERR_BAD_SEQID)" },
        { 10029, "symbolic link (NFS4ERR_SYMLINK)" },
        { 10036, "malformed request (NFS4ERR_BADXDR)" },
        { 10037, "locks held (NFS4ERR_LOCKS_HELD)" },
        { 10038, "file not open for that (NFS4ERR_OPENMODE)" },
        { 10044, "illegal operation (NFS4ERR_OP_ILLEGAL)" },
        { 10047, "client has been revoked (NFS4ERR_ADMIN_REVOKED)" },
        { 10048, "callback path down (NFS4ERR_CB_PATH_DOWN)" },
        { 10052, "bad session (NFS4ERR_BADSESSION)" },
        { 10053, "bad slot (NFS4ERR_BADSLOT)" },
        { 10063, "sequence misordered (NFS4ERR_SEQ_MISORDERED)" },
        { 10068, "retry uncached reply (NFS4ERR_RETRY_UNCACHED_REP)" },
        { 10071, "too many operations (NFS4ERR_TOO_MANY_OPS)" },
        { 10073, "op not in session (NFS4ERR_OP_NOT_IN_SESSION)" },
        { 10087, "delegation already wanted (NFS4ERR_DELEG_ALREADY_WANTED)" },
        { -EAGAIN, "lock held by someone else" },
        { -EDEADLK, "lock would deadlock (NLM4_DEADLCK)" },
        { -ENOLCK, "the server refused the lock (no locks available / NLM failed)" },
        { -EBADMSG, "malformed reply from the server" },
        { -EACCES, "the server refused our RPC credentials (AUTH_ERROR; a `secure` export "
                   "needs a privileged source port)" },
        { -EPROTONOSUPPORT, "program, version or procedure not supported by the server" },
        { -EREMOTEIO, "server-side RPC failure (SYSTEM_ERR)" },
        { -EPROTO, "RPC protocol error" },
        { -ETIMEDOUT, "no reply from the server (timed out)" },
        { -ECONNRESET, "connection to the server lost" },
        { -ECONNREFUSED, "connection refused" },
        { -ENOTSUP, "not supported by this client yet" },
    };
    for (size_t i = 0; i < sizeof(nfs) / sizeof(nfs[0]); i++)
        if (nfs[i].code == st)
            return nfs[i].msg;
    if (st < 0)
        return strerror(-st);
    return "unknown NFS error";
}

/* ---- blocking wrappers over the asynchronous calls ---- */

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool finished;
    int status;
    struct nfs_io_result res;
    struct nfs_attr *attr;
};
#define WAITER_INIT { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0, { 0 }, NULL }

static void waiter_finish(struct waiter *w, int status)
{
    pthread_mutex_lock(&w->mu);
    w->status = status;
    w->finished = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void io_waited(void *arg, int status, const struct nfs_io_result *res)
{
    struct waiter *w = arg;
    if (res)
        w->res = *res;
    waiter_finish(w, status);
}

static void attr_waited(void *arg, int status, const struct nfs_attr *attr)
{
    struct waiter *w = arg;
    if (attr && w->attr)
        *w->attr = *attr;
    waiter_finish(w, status);
}

static int waiter_wait(struct waiter *w, int issued, struct nfs_io_result *res)
{
    if (issued)
        return issued;
    pthread_mutex_lock(&w->mu);
    while (!w->finished)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    if (res)
        *res = w->res;
    return w->status;
}

int nfs_read(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off, void *buf,
             uint32_t count, struct nfs_io_result *res)
{
    struct waiter w = WAITER_INIT;
    return waiter_wait(&w, nfs_read_async(c, fh, off, buf, count, io_waited, &w), res);
}

int nfs_write(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off, const void *buf,
              uint32_t count, enum nfs_stable stable, struct nfs_io_result *res)
{
    struct waiter w = WAITER_INIT;
    return waiter_wait(&w, nfs_write_async(c, fh, off, buf, count, stable, io_waited, &w), res);
}

int nfs_commit(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off, uint32_t count,
               struct nfs_io_result *res)
{
    struct waiter w = WAITER_INIT;
    return waiter_wait(&w, nfs_commit_async(c, fh, off, count, io_waited, &w), res);
}

int nfs_read_async(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off, void *buf,
                   uint32_t count, nfs_io_done_fn done, void *arg)
{
    if (count > c->rsize)
        return -EINVAL;
    return c->ops->read_async(c, fh, off, buf, count, done, arg);
}

int nfs_write_async(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off,
                    const void *buf, uint32_t count, enum nfs_stable stable,
                    nfs_io_done_fn done, void *arg)
{
    if (count > c->wsize)
        return -EINVAL;
    return c->ops->write_async(c, fh, off, buf, count, stable, done, arg);
}

int nfs_commit_async(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off,
                     uint32_t count, nfs_io_done_fn done, void *arg)
{
    return c->ops->commit_async(c, fh, off, count, done, arg);
}

int nfs_getattr_async(struct nfs_client *c, const struct nfs_fh *fh, nfs_attr_done_fn done,
                      void *arg)
{
    return c->ops->getattr_async(c, fh, done, arg);
}

int nfs_getattr(struct nfs_client *c, const struct nfs_fh *fh, struct nfs_attr *attr)
{
    struct waiter w = WAITER_INIT;
    w.attr = attr;
    return waiter_wait(&w, nfs_getattr_async(c, fh, attr_waited, &w), NULL);
}

/* ---- the rest of the blocking API: straight to the version's ops ---- */

int nfs_lookup(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
               struct nfs_fh *fh, struct nfs_attr *attr)
{
    return c->ops->lookup(c, dir, name, fh, attr);
}

int nfs_setattr(struct nfs_client *c, const struct nfs_fh *fh, const struct nfs_setattr *sa,
                struct nfs_attr *attr)
{
    return c->ops->setattr(c, fh, sa, attr);
}

int nfs_create(struct nfs_client *c, const struct nfs_fh *dir, const char *name, uint32_t mode,
               bool exclusive, struct nfs_fh *fh, struct nfs_attr *attr)
{
    return c->ops->create(c, dir, name, mode, exclusive, fh, attr);
}

int nfs_mkdir(struct nfs_client *c, const struct nfs_fh *dir, const char *name, uint32_t mode,
              struct nfs_fh *fh, struct nfs_attr *attr)
{
    return c->ops->mkdir(c, dir, name, mode, fh, attr);
}

int nfs_remove(struct nfs_client *c, const struct nfs_fh *dir, const char *name)
{
    return c->ops->remove(c, dir, name);
}

int nfs_rmdir(struct nfs_client *c, const struct nfs_fh *dir, const char *name)
{
    return c->ops->rmdir(c, dir, name);
}

int nfs_rename(struct nfs_client *c, const struct nfs_fh *from_dir, const char *from,
               const struct nfs_fh *to_dir, const char *to)
{
    return c->ops->rename(c, from_dir, from, to_dir, to);
}

int nfs_link(struct nfs_client *c, const struct nfs_fh *file, const struct nfs_fh *dir,
             const char *name)
{
    return c->ops->link(c, file, dir, name);
}

int nfs_symlink(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                const char *target, struct nfs_fh *fh)
{
    return c->ops->symlink(c, dir, name, target, fh);
}

int nfs_readlink(struct nfs_client *c, const struct nfs_fh *fh, char *buf, size_t len)
{
    return c->ops->readlink(c, fh, buf, len);
}

int nfs_fsstat(struct nfs_client *c, const struct nfs_fh *fh, struct nfs_fsstat *st)
{
    return c->ops->fsstat(c, fh, st);
}

int nfs_readdir(struct nfs_client *c, const struct nfs_fh *dir, bool plus, nfs_dirent_fn fn,
                void *arg)
{
    return c->ops->readdir(c, dir, plus, fn, arg);
}

int nfs_open(struct nfs_client *c, const char *path, int flags, uint32_t mode,
             struct nfs_file *f)
{
    int st = c->ops->open(c, path, flags, mode, f);
    f->flags = flags;
    return st;
}

int nfs_close(struct nfs_client *c, struct nfs_file *f) { return c->ops->close(c, f); }

/* Poll for a lock (see nfs_client.h: no GRANTED callbacks, no v4 blocking-lock wait):
 * 100 ms doubling to 2 s between attempts. */
int nfs_lock(struct nfs_client *c, struct nfs_file *f, enum nfs_lock_type type, uint64_t off,
             uint64_t len, bool wait)
{
    if (type == NFS_LOCK_UNLOCK)
        return nfs_unlock(c, f, off, len);
    if (type != NFS_LOCK_READ && type != NFS_LOCK_WRITE)
        return -EINVAL;
    unsigned delay_ms = 100;
    for (;;) {
        int st = c->ops->lock(c, f, type == NFS_LOCK_WRITE, off, len);
        if (st != -EAGAIN || !wait)
            return st;
        if (nfs_async_sleep(c, delay_ms))
            return -ECANCELED; /* the client is being destroyed */
        delay_ms = delay_ms >= 1000 ? 2000 : delay_ms * 2;
    }
}

int nfs_unlock(struct nfs_client *c, struct nfs_file *f, uint64_t off, uint64_t len)
{
    return c->ops->unlock(c, f, off, len);
}

int nfs_testlock(struct nfs_client *c, struct nfs_file *f, enum nfs_lock_type type,
                 uint64_t off, uint64_t len, struct nfs_lock_conflict *conflict)
{
    struct nfs_lock_conflict tmp;
    if (type != NFS_LOCK_READ && type != NFS_LOCK_WRITE)
        return -EINVAL;
    return c->ops->testlock(c, f, type == NFS_LOCK_WRITE, off, len, conflict ? conflict : &tmp);
}

/* ---- paths ---- */

int nfs_lookup_path(struct nfs_client *c, const char *path, struct nfs_fh *fh,
                    struct nfs_attr *attr)
{
    struct nfs_fh cur = c->root;
    char name[1025];
    const char *p = path;
    while (*p) {
        size_t n = strcspn(p, "/");
        if (n >= sizeof(name))
            return 63; /* NFS3ERR_NAMETOOLONG */
        memcpy(name, p, n);
        name[n] = 0;
        p += n + (p[n] == '/');
        if (n == 0 || strcmp(name, ".") == 0)
            continue;
        struct nfs_fh next;
        int st = c->ops->lookup(c, &cur, name, &next, NULL);
        if (st)
            return st;
        cur = next;
    }
    *fh = cur;
    return attr ? nfs_getattr(c, fh, attr) : 0;
}

/* open_at for versions without open state: look name up in dir, create / truncate as
 * asked. */
int nfs_open_at_by_lookup(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                          int flags, uint32_t mode, struct nfs_file *f)
{
    memset(f, 0, sizeof(*f));
    int st = (flags & NFS_O_EXCL) ? 2 : c->ops->lookup(c, dir, name, &f->fh, &f->attr);
    if (st == 2 /* NOENT */ && (flags & NFS_O_CREAT))
        return c->ops->create(c, dir, name, mode, (flags & NFS_O_EXCL) != 0, &f->fh, &f->attr);
    if (st)
        return st;
    if ((flags & NFS_O_TRUNC) && f->attr.type == NFS_REG && f->attr.size) {
        struct nfs_setattr sa = { .set_size = true, .size = 0 };
        st = c->ops->setattr(c, &f->fh, &sa, &f->attr);
    }
    return st;
}

int nfs_open_by_lookup(struct nfs_client *c, const char *path, int flags, uint32_t mode,
                       struct nfs_file *f)
{
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    if (!*name) { /* the root */
        memset(f, 0, sizeof(*f));
        return nfs_lookup_path(c, path, &f->fh, &f->attr);
    }
    char *parent = strndup(path, slash ? (size_t)(slash - path) : 0);
    if (!parent)
        return -ENOMEM;
    struct nfs_fh dir;
    int st = nfs_lookup_path(c, parent, &dir, NULL);
    free(parent);
    if (st) {
        memset(f, 0, sizeof(*f));
        return st;
    }
    return nfs_open_at_by_lookup(c, &dir, name, flags, mode, f);
}

int nfs_open_at(struct nfs_client *c, const struct nfs_fh *dir, const char *name, int flags,
                uint32_t mode, struct nfs_file *f)
{
    if (!*name || strchr(name, '/'))
        return -EINVAL;
    int st = c->ops->open_at(c, dir, name, flags, mode, f);
    f->flags = flags;
    return st;
}

/* ---- pipelined transfers ---- */

struct xfer_req {
    struct xfer *x;
    unsigned slot;
    uint32_t asked;
    uint32_t pos; /* where in its slot the request's data goes */
    int status;
    struct nfs_io_result res;
    struct nfs_read_ref ref; /* reads by reference: the reply holding the data */
    uint64_t off;            /* reads: where the request starts in the file */
    bool sunk;               /* its data went to the sink from the completion */
    int sink_status;         /* what the sink returned then */
};

/* One transfer's requests and buffers; reused batch after batch by nfs_write_range, so
 * the buffers' pages are faulted in once. */
struct xfer {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned ndone;
    unsigned done_q[NFS_WINDOW_MAX]; /* slots whose request completed, not yet processed */
    struct xfer_req req[NFS_WINDOW_MAX];
    /* Slot data: writes fill buf; reads leave a chunk in the reply it came in (hold,
     * data) when one reply brought all of it, and assemble it in buf (allocated on
     * first need) only when the server answered short. */
    uint8_t *buf[NFS_WINDOW_MAX];
    struct rpc_reply hold[NFS_WINDOW_MAX];
    const uint8_t *data[NFS_WINDOW_MAX];
    bool by_ref;
    /* reads into a sink that takes chunks in any order (nfs_xfer_opts.sink_any_order):
     * a complete chunk goes to it from the completion, on the receive thread */
    nfs_sink_fn early_sink;
    void *early_arg;
    uint32_t chunk;
    unsigned nslots;
    struct nfs_window w;
    unsigned outstanding; /* requests sent whose completion is not processed yet */
    int error;
    uint64_t progress_base; /* bytes of the range done before this transfer */
    /* writes: the verifier every UNSTABLE write must match at COMMIT */
    bool have_verf, unstable, verf_changed;
    uint8_t verf[8];
};

/* A read that brought its whole chunk in one reply (or ended it at EOF). */
static bool read_is_whole_chunk(const struct xfer_req *r, const struct nfs_io_result *res)
{
    return r->pos == 0 && res->count <= r->asked && (res->count == r->asked || res->eof);
}

static void xfer_req_done(void *arg, int status, const struct nfs_io_result *res)
{
    struct xfer_req *r = arg;
    struct xfer *x = r->x;
    r->sunk = x->early_sink && status == 0 && res && read_is_whole_chunk(r, res);
    if (r->sunk) {
        /* no hand-off to the calling thread: the data goes out from the reply buffer
         * while it is warm, and the caller only does the bookkeeping */
        r->sink_status = res->count ? x->early_sink(x->early_arg, r->off, r->ref.data,
                                                    res->count)
                                    : 0;
        rpc_reply_free(&r->ref.hold);
    }
    pthread_mutex_lock(&x->mu);
    r->status = status;
    if (res)
        r->res = *res;
    x->done_q[x->ndone++] = r->slot;
    pthread_cond_signal(&x->cv);
    pthread_mutex_unlock(&x->mu);
}

/* bufs: allocate every slot's buffer now (writes); reads by reference allocate lazily. */
static int xfer_init(struct xfer *x, uint32_t chunk, unsigned window, bool bufs)
{
    memset(x, 0, sizeof(*x));
    pthread_mutex_init(&x->mu, NULL);
    pthread_cond_init(&x->cv, NULL);
    x->chunk = chunk ? chunk : 1;
    x->nslots = window < 1 ? 1 : window > NFS_WINDOW_MAX ? NFS_WINDOW_MAX : window;
    for (unsigned i = 0; i < x->nslots; i++) {
        if (bufs && !(x->buf[i] = malloc(x->chunk)))
            return -ENOMEM;
        x->req[i].x = x;
        x->req[i].slot = i;
    }
    return 0;
}

/* Start the range [off, off+len) on an idle transfer. */
static void xfer_start(struct xfer *x, uint64_t off, uint64_t len)
{
    nfs_window_init(&x->w, off, len, x->chunk, x->nslots);
    x->ndone = x->outstanding = 0;
    x->error = 0;
    x->have_verf = x->unstable = x->verf_changed = false;
}

static void xfer_free(struct xfer *x)
{
    for (unsigned i = 0; i < NFS_WINDOW_MAX; i++) {
        free(x->buf[i]);
        rpc_reply_free(&x->hold[i]);
    }
    pthread_mutex_destroy(&x->mu);
    pthread_cond_destroy(&x->cv);
}

static void xfer_fail(struct xfer *x, int st)
{
    if (!x->error)
        x->error = st;
}

/* A read by reference completed: keep its reply as the slot's data when it brought the
 * whole chunk (or ended at EOF), else copy its bytes into the slot's buffer. */
static int xfer_take_read(struct xfer *x, struct xfer_req *r)
{
    unsigned s = r->slot;
    uint32_t got = r->res.count;
    int st = 0;
    if (read_is_whole_chunk(r, &r->res)) {
        rpc_reply_free(&x->hold[s]);
        x->hold[s] = r->ref.hold;
        x->data[s] = r->ref.data;
        memset(&r->ref, 0, sizeof(r->ref));
        return 0;
    }
    if (got > r->asked) /* nfs_window_complete refuses it too */
        st = -EBADMSG;
    else if (!x->buf[s] && !(x->buf[s] = malloc(x->chunk)))
        st = -ENOMEM;
    else if (got)
        memcpy(x->buf[s] + r->pos, r->ref.data, got);
    rpc_reply_free(&r->ref.hold);
    return st;
}

/* Wait for at least one completion and feed them all to the window. */
static void xfer_reap(struct xfer *x, bool is_write)
{
    unsigned q[NFS_WINDOW_MAX], n;
    pthread_mutex_lock(&x->mu);
    while (x->ndone == 0)
        pthread_cond_wait(&x->cv, &x->mu);
    n = x->ndone;
    memcpy(q, x->done_q, n * sizeof(q[0]));
    x->ndone = 0;
    pthread_mutex_unlock(&x->mu);
    for (unsigned i = 0; i < n; i++) {
        struct xfer_req *r = &x->req[q[i]];
        x->outstanding--;
        if (r->status) {
            xfer_fail(x, r->status);
            continue;
        }
        if (is_write && r->res.committed == NFS_UNSTABLE) {
            /* the server restarted between our writes: the earlier ones may be lost */
            if (x->have_verf && memcmp(x->verf, r->res.verf, 8))
                x->verf_changed = true;
            memcpy(x->verf, r->res.verf, 8);
            x->have_verf = x->unstable = true;
        }
        if (!is_write && r->sunk) {
            if (r->sink_status) {
                xfer_fail(x, r->sink_status);
                continue;
            }
        } else if (!is_write && x->by_ref) {
            int st = xfer_take_read(x, r);
            if (st) {
                xfer_fail(x, st);
                continue;
            }
        }
        if (!nfs_window_complete(&x->w, r->slot, r->asked, r->res.count, !is_write && r->res.eof))
            xfer_fail(x, -EBADMSG);
    }
}

/* Hand a completed head slot to the sink and free its data. */
static int xfer_deliver_head(struct xfer *x, unsigned s, nfs_sink_fn sink, void *sink_arg)
{
    struct nfs_slot *sl = &x->w.slot[s];
    const uint8_t *data = x->hold[s].buf ? x->data[s] : x->buf[s];
    /* a slot is done by one whole-chunk reply (already in the sink when it was sunk) or
     * by pieces assembled here; req[s] is the request that completed it last */
    int st = sink && sl->len && !x->req[s].sunk ? sink(sink_arg, sl->off, data, sl->len) : 0;
    rpc_reply_free(&x->hold[s]);
    x->data[s] = NULL;
    return st;
}

typedef int (*xfer_issue_fn)(struct nfs_client *c, const struct nfs_fh *fh, struct xfer *x,
                             unsigned s, uint64_t off, uint32_t len, uint32_t pos, void *arg);

static int xfer_run(struct nfs_client *c, const struct nfs_fh *fh, struct xfer *x, bool is_write,
                    xfer_issue_fn issue, void *arg, nfs_sink_fn sink, void *sink_arg,
                    const struct nfs_xfer_opts *o, uint64_t *done_bytes)
{
    uint64_t delivered = 0;
    for (;;) {
        unsigned s;
        uint64_t off;
        uint32_t len, pos;
        while (!x->error && nfs_window_next(&x->w, &s, &off, &len, &pos)) {
            x->req[s].asked = len;
            x->req[s].pos = pos;
            int st = issue(c, fh, x, s, off, len, pos, arg);
            if (st)
                xfer_fail(x, st);
            else
                x->outstanding++;
        }
        bool released = false;
        while (!x->error && nfs_window_head_done(&x->w, &s)) {
            struct nfs_slot *sl = &x->w.slot[s];
            int st = xfer_deliver_head(x, s, sink, sink_arg);
            if (st) {
                xfer_fail(x, st);
                break;
            }
            delivered += sl->len;
            nfs_window_release_head(&x->w);
            released = true;
            if (o && o->progress)
                o->progress(o->progress_arg, x->progress_base + delivered);
        }
        if (x->outstanding == 0 && (x->error || nfs_window_finished(&x->w)))
            break;
        if (x->outstanding == 0) {
            /* released slots make room for new requests; otherwise we are stuck,
             * which the window's invariants rule out */
            if (!released)
                xfer_fail(x, -EIO);
            continue;
        }
        xfer_reap(x, is_write);
    }
    if (done_bytes)
        *done_bytes = delivered;
    return x->error;
}

static int issue_read(struct nfs_client *c, const struct nfs_fh *fh, struct xfer *x, unsigned s,
                      uint64_t off, uint32_t len, uint32_t pos, void *arg)
{
    (void)arg;
    if (x->by_ref) {
        x->req[s].off = off;
        memset(&x->req[s].ref, 0, sizeof(x->req[s].ref));
        return c->ops->read_async_ref(c, fh, off, len, &x->req[s].ref, xfer_req_done,
                                      &x->req[s]);
    }
    return nfs_read_async(c, fh, off, x->buf[s] + pos, len, xfer_req_done, &x->req[s]);
}

static unsigned xfer_window(const struct nfs_client *c, const struct nfs_xfer_opts *o)
{
    return (unsigned)(o && o->window > 0 ? o->window : c->window);
}

int nfs_read_range(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off, uint64_t len,
                   nfs_sink_fn sink, void *arg, const struct nfs_xfer_opts *o,
                   uint64_t *done_bytes)
{
    struct xfer *x = malloc(sizeof(*x));
    if (!x)
        return -ENOMEM;
    bool by_ref = c->ops->read_async_ref != NULL;
    int st = xfer_init(x, c->rsize, xfer_window(c, o), !by_ref);
    x->by_ref = by_ref;
    if (by_ref && o && o->sink_any_order) {
        x->early_sink = sink;
        x->early_arg = arg;
    }
    if (!st) {
        xfer_start(x, off, len);
        st = xfer_run(c, fh, x, false, issue_read, NULL, sink, arg, o, done_bytes);
    }
    xfer_free(x);
    free(x);
    return st;
}

struct write_src {
    nfs_source_fn source;
    void *arg;
};

static int issue_write(struct nfs_client *c, const struct nfs_fh *fh, struct xfer *x, unsigned s,
                       uint64_t off, uint32_t len, uint32_t pos, void *arg)
{
    struct write_src *src = arg;
    if (pos == 0) { /* a new chunk: fetch its data (a remainder reuses it) */
        int st = src->source(src->arg, off, x->buf[s], len);
        if (st)
            return st;
    }
    /* the slot's buffer is not reused before this request completes */
    if (c->ops->write_async_keep)
        return c->ops->write_async_keep(c, fh, off, x->buf[s] + pos, len, NFS_UNSTABLE,
                                        xfer_req_done, &x->req[s]);
    return nfs_write_async(c, fh, off, x->buf[s] + pos, len, NFS_UNSTABLE, xfer_req_done,
                           &x->req[s]);
}

/* UNSTABLE writes of [off, off+len) (the COMMIT is the caller's). */
static int write_batch(struct nfs_client *c, const struct nfs_fh *fh, struct xfer *x,
                       uint64_t off, uint64_t len, struct write_src *src,
                       const struct nfs_xfer_opts *o, uint64_t base)
{
    xfer_start(x, off, len);
    x->progress_base = base;
    return xfer_run(c, fh, x, true, issue_write, src, NULL, NULL, o, NULL);
}

static uint32_t commit_count(uint64_t len) { return len > UINT32_MAX ? 0 : (uint32_t)len; }

/* Write a batch again until a COMMIT shows the verifier its writes saw. */
static int rewrite_batch(struct nfs_client *c, const struct nfs_fh *fh, struct xfer *x,
                         uint64_t off, uint64_t len, struct write_src *src,
                         const struct nfs_xfer_opts *o, uint64_t base)
{
    for (int tries = 1; tries < NFS_WRITE_RESENDS; tries++) {
        log_info("nfs client: the write verifier changed (server restart): writing "
                 "[%llu, +%llu) again", (unsigned long long)off, (unsigned long long)len);
        int st = write_batch(c, fh, x, off, len, src, o, base);
        if (st || !x->unstable)
            return st;
        struct nfs_io_result r;
        st = nfs_commit(c, fh, off, commit_count(len), &r);
        if (st || (!x->verf_changed && !memcmp(r.verf, x->verf, 8)))
            return st;
    }
    return 5; /* NFS3ERR_IO: the server keeps losing uncommitted data */
}

/* The COMMIT of the previous batch runs while the next batch is written, so the
 * server's flush to disk does not stall the pipeline. */
struct batch_commit {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool busy, finished;
    int status;
    struct nfs_io_result res;
    uint64_t off, len, base; /* the batch */
    bool verf_changed;       /* its writes saw two verifiers */
    uint8_t verf[8];         /* the one they saw last */
};

static void batch_commit_done(void *arg, int status, const struct nfs_io_result *res)
{
    struct batch_commit *b = arg;
    pthread_mutex_lock(&b->mu);
    b->status = status;
    if (res)
        b->res = *res;
    b->finished = true;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

/* COMMIT [off, +len), whose writes saw verf (and more than one when verf_changed). */
static int batch_commit_start(struct nfs_client *c, const struct nfs_fh *fh,
                              struct batch_commit *b, uint64_t off, uint64_t len,
                              uint64_t base, bool verf_changed, const uint8_t *verf)
{
    b->off = off;
    b->len = len;
    b->base = base;
    b->verf_changed = verf_changed;
    memcpy(b->verf, verf, 8);
    b->finished = false;
    int st = nfs_commit_async(c, fh, off, commit_count(len), batch_commit_done, b);
    b->busy = st == 0;
    return st;
}

/* Wait for the COMMIT in flight: 0 when its batch is on stable storage, 1 when the
 * batch must be written again, else a status. */
static int batch_commit_wait(struct batch_commit *b)
{
    if (!b->busy)
        return 0;
    pthread_mutex_lock(&b->mu);
    while (!b->finished)
        pthread_cond_wait(&b->cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
    b->busy = false;
    if (b->status)
        return b->status;
    return b->verf_changed || memcmp(b->res.verf, b->verf, 8) ? 1 : 0;
}

/* Settle the COMMIT in flight, writing its batch again when the server lost it. */
static int batch_commit_settle(struct nfs_client *c, const struct nfs_fh *fh,
                               struct batch_commit *b, struct xfer *x, struct write_src *src,
                               const struct nfs_xfer_opts *o)
{
    int st = batch_commit_wait(b);
    return st == 1 ? rewrite_batch(c, fh, x, b->off, b->len, src, o, b->base) : st;
}

int nfs_write_range(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off, uint64_t len,
                    nfs_source_fn source, void *arg, const struct nfs_xfer_opts *o)
{
    struct write_src src = { source, arg };
    struct xfer *x = malloc(sizeof(*x));
    if (!x)
        return -ENOMEM;
    struct batch_commit b = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
    int st = xfer_init(x, c->wsize, xfer_window(c, o), true);
    for (uint64_t done = 0; !st && done < len;) {
        uint64_t n = len - done < NFS_WRITE_BATCH ? len - done : NFS_WRITE_BATCH;
        st = write_batch(c, fh, x, off + done, n, &src, o, done);
        /* this batch's verifier state: a rewrite of the previous one reuses x */
        bool unstable = x->unstable, verf_changed = x->verf_changed;
        uint8_t verf[8];
        memcpy(verf, x->verf, 8);
        if (!st) /* the previous batch's COMMIT, sent before this batch's writes */
            st = batch_commit_settle(c, fh, &b, x, &src, o);
        if (!st && unstable)
            st = batch_commit_start(c, fh, &b, off + done, n, done, verf_changed, verf);
        done += n;
    }
    /* always wait: the completion writes to b, on our stack */
    int last = st ? batch_commit_wait(&b) : batch_commit_settle(c, fh, &b, x, &src, o);
    if (!st)
        st = last;
    xfer_free(x);
    free(x);
    pthread_mutex_destroy(&b.mu);
    pthread_cond_destroy(&b.cv);
    return st;
}
