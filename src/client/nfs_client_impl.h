/*
 * Inside the client library: the per-version ops vector and the client structure.
 * nfs_client.c holds what every version shares (URL handling, blocking wrappers over
 * the async calls, pipelined transfers, path walks, messages); nfs3_client.c is the
 * NFSv3 + MOUNT v3 + portmap vector. An NFSv4.x vector (nfs4_client.c, COMPOUND with
 * SEQUENCE, a session and a back channel on the same connection) goes beside it.
 */
#ifndef PEERNFS_CLIENT_NFS_CLIENT_IMPL_H
#define PEERNFS_CLIENT_NFS_CLIENT_IMPL_H

#include <sys/socket.h>

#include "client/nfs_client.h"
#include "rpc/clnt.h"

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
    int (*close)(struct nfs_client *c, struct nfs_file *f);
    int (*read_async)(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off, void *buf,
                      uint32_t count, nfs_io_done_fn done, void *arg);
    int (*write_async)(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off,
                       const void *buf, uint32_t count, enum nfs_stable stable,
                       nfs_io_done_fn done, void *arg);
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
};

extern const struct nfs_client_ops nfs3_client_ops;

struct nfs_client {
    const struct nfs_client_ops *ops;
    int vers; /* 3; 40/41/42 later */
    struct rpc_clnt *rpc; /* the NFS connection */
    struct rpc_cred cred;
    int timeout_ms;
    int window;
    struct sockaddr_storage addr; /* the server (port filled per program) */
    socklen_t addrlen;
    struct nfs_fh root;
    char *rest; /* URL path below the mounted export */
    uint32_t rsize, wsize, dtpref;
};

/* Connect a TCP RPC client to sa, from a reserved source port when we are root and rpc/
 * offers a way to hand it a bound socket (see nfs_client.c). */
struct rpc_clnt *nfs_client_rpc_connect(const struct sockaddr *sa, socklen_t len,
                                        int timeout_ms, int *err);
/* An RPC-level failure (rpc_clnt_call's -EPROTO with rep->info) as a status. */
int nfs_client_rpc_status(int rpc_status, const struct rpc_reply *rep);
/* open() for versions without open state: walk the path, create / truncate as asked. */
int nfs_open_by_lookup(struct nfs_client *c, const char *path, int flags, uint32_t mode,
                       struct nfs_file *f);

#endif
