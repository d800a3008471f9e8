/*
 * Inside the client library: the per-version ops vector and the client structure.
 * nfs_client.c holds what every version shares (URL handling, blocking wrappers over
 * the async calls, pipelined transfers, path walks, messages, lock polling);
 * nfs3_client.c is the NFSv3 + MOUNT v3 + portmap vector (locks: nlm_client.c);
 * nfs4_client.c the NFSv4.0/4.1/4.2 one (4.0: no session, owner seqids of nfs4_v40.c;
 * 4.1+: COMPOUND with SEQUENCE on the slots of
 * nfs4_slots.c, a back channel on the same connection served by nfs4_cb.c, replies
 * decoded by nfs4_reply.c; its state manager thread, which renews the lease and
 * recovers from lost connections and server restarts, is nfs4_recover.c).
 */
#ifndef PEERNFS_CLIENT_NFS_CLIENT_IMPL_H
#define PEERNFS_CLIENT_NFS_CLIENT_IMPL_H

#include <sys/socket.h>

#include "client/nfs_client.h"
#include "rpc/clnt.h"

/* A READ whose data is left in the reply instead of being copied out: data points at
 * res->count bytes inside hold (release with rpc_reply_free). */
struct nfs_read_ref {
    const uint8_t *data;
    struct rpc_reply hold;
};

struct nfs_client_ops {
    const char *name;
    /* connect and mount: fills c->root, c->rest, c->rsize, c->wsize */
    int (*mount)(struct nfs_client *c, const struct nfs_url *u, char *err, size_t errlen);
    void (*unmount)(struct nfs_client *c);
    int (*lookup)(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                  struct nfs_fh *fh, struct nfs_attr *attr);
    int (*getattr)(struct nfs_client *c, const struct nfs_fh *fh, struct nfs_attr *attr);
    int (*setattr)(struct nfs_client *c, const struct nfs_fh *fh, const struct nfs_setattr *sa,
                   struct nfs_attr *attr);
    int (*open)(struct nfs_client *c, const char *path, int flags, uint32_t mode,
                struct nfs_file *f);
    int (*open_at)(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                   int flags, uint32_t mode, struct nfs_file *f);
    int (*close)(struct nfs_client *c, struct nfs_file *f);
    int (*read_async)(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off, void *buf,
                      uint32_t count, nfs_io_done_fn done, void *arg);
    int (*write_async)(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off,
                       const void *buf, uint32_t count, enum nfs_stable stable,
                       nfs_io_done_fn done, void *arg);
    /* write_async whose buf stays valid (unchanged) until done has run, so it need
     * not be copied for retransmissions; NULL: write_async serves */
    int (*write_async_keep)(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off,
                            const void *buf, uint32_t count, enum nfs_stable stable,
                            nfs_io_done_fn done, void *arg);
    /* read_async that fills *ref (before done runs, when done sees status 0) instead of
     * copying into a buffer: the pipelined transfers hand the data on from there */
    int (*read_async_ref)(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off,
                          uint32_t count, struct nfs_read_ref *ref, nfs_io_done_fn done,
                          void *arg);
    int (*commit_async)(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off,
                        uint32_t count, nfs_io_done_fn done, void *arg);
    int (*getattr_async)(struct nfs_client *c, const struct nfs_fh *fh, nfs_attr_done_fn done,
                         void *arg);
    int (*create)(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                  uint32_t mode, bool exclusive, struct nfs_fh *fh, struct nfs_attr *attr);
    int (*mkdir)(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                 uint32_t mode, struct nfs_fh *fh, struct nfs_attr *attr);
    int (*remove)(struct nfs_client *c, const struct nfs_fh *dir, const char *name);
    int (*rmdir)(struct nfs_client *c, const struct nfs_fh *dir, const char *name);
    int (*rename)(struct nfs_client *c, const struct nfs_fh *from_dir, const char *from,
                  const struct nfs_fh *to_dir, const char *to);
    int (*link)(struct nfs_client *c, const struct nfs_fh *file, const struct nfs_fh *dir,
                const char *name);
    int (*symlink)(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                   const char *target, struct nfs_fh *fh);
    int (*readlink)(struct nfs_client *c, const struct nfs_fh *fh, char *buf, size_t len);
    int (*fsstat)(struct nfs_client *c, const struct nfs_fh *fh, struct nfs_fsstat *st);
    int (*readdir)(struct nfs_client *c, const struct nfs_fh *dir, bool plus, nfs_dirent_fn fn,
                   void *arg);
    /* byte-range locks: len 0 = to the end of the file; a conflict is -EAGAIN */
    int (*lock)(struct nfs_client *c, struct nfs_file *f, bool write, uint64_t off, uint64_t len);
    int (*unlock)(struct nfs_client *c, struct nfs_file *f, uint64_t off, uint64_t len);
    int (*testlock)(struct nfs_client *c, struct nfs_file *f, bool write, uint64_t off,
                    uint64_t len, struct nfs_lock_conflict *conflict);
};

extern const struct nfs_client_ops nfs3_client_ops;
extern const struct nfs_client_ops nfs4_client_ops;

struct nfs4_state; /* nfs4_client.c: session, slots, back channel, open / lock state */
struct nlm_state;  /* nlm_client.c: the NLM connection and lock owner of a v3 client */

struct nfs_client {
    const struct nfs_client_ops *ops;
    int vers; /* 3, 40, 41 or 42 */
    struct rpc_clnt *rpc; /* the NFS connection */
    struct rpc_cred cred;
    int timeout_ms;
    int window;
    struct sockaddr_storage addr; /* the server (port filled per program) */
    socklen_t addrlen;
    struct nfs_fh root;
    char *rest; /* URL path below the mounted export */
    uint32_t rsize, wsize, dtpref;
    uint16_t nlmport; /* URL nlmport= (0: rpcbind, then the NFS port) */
    struct nfs4_state *v4;
    struct nlm_state *nlm;
    struct nfs_async *async; /* nfs_async.c: the workers of the *_async metadata calls */
};

/* nfs_async.c: stop the workers (queued calls fail with -ECANCELED, running ones
 * finish), before the connection goes; and a sleep that nfs_async_shutdown cuts short
 * (-ECANCELED), for the lock polls. */
void nfs_async_shutdown(struct nfs_client *c);
int nfs_async_sleep(struct nfs_client *c, unsigned ms);

/* NLM v4 (nlm_client.c) for NFSv3 clients; nlm_client_free on destroy. */
int nlm_client_lock(struct nfs_client *c, struct nfs_file *f, bool write, uint64_t off,
                    uint64_t len);
int nlm_client_unlock(struct nfs_client *c, struct nfs_file *f, uint64_t off, uint64_t len);
int nlm_client_test(struct nfs_client *c, struct nfs_file *f, bool write, uint64_t off,
                    uint64_t len, struct nfs_lock_conflict *conflict);
void nlm_client_free(struct nfs_client *c);
/* rpcbind GETPORT / GETADDR for (prog, vers) over TCP (nfs3_client.c). */
int nfs_client_rpcb_getport(struct nfs_client *c, uint32_t prog, uint32_t vers, uint16_t *port,
                            char *err, size_t errlen);
void nfs_client_set_port(struct sockaddr_storage *ss, uint16_t port);

/* Connect a TCP RPC client to sa, from a reserved source port when we are root and rpc/
 * offers a way to hand it a bound socket (see nfs_client.c). */
struct rpc_clnt *nfs_client_rpc_connect(const struct sockaddr *sa, socklen_t len,
                                        int timeout_ms, int *err);
/* An RPC-level failure (rpc_clnt_call's -EPROTO with rep->info) as a status. */
int nfs_client_rpc_status(int rpc_status, const struct rpc_reply *rep);
/* open() for versions without open state: walk the path, create / truncate as asked. */
int nfs_open_by_lookup(struct nfs_client *c, const char *path, int flags, uint32_t mode,
                       struct nfs_file *f);
int nfs_open_at_by_lookup(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                          int flags, uint32_t mode, struct nfs_file *f);

#endif
