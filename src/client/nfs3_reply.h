/*
 * Decoders of NFSv3 / MOUNT v3 / portmap replies into the library's types. Each takes
 * the cursor rpc/ left at the procedure results and returns 0, the server's status
 * (positive), or -EBADMSG for a malformed, truncated or inconsistent reply (a count
 * larger than asked, a handle longer than the protocol allows, a name with '/' in it).
 * Separate from the calls so the fuzz target (tests/fuzz/fuzz_client_replies.c) can
 * feed them hostile bytes.
 */
#ifndef PEERNFS_CLIENT_NFS3_REPLY_H
#define PEERNFS_CLIENT_NFS3_REPLY_H

#include "client/nfs_client.h"
#include "xdr/xdr.h"

int nfs3_reply_getport(struct xdr_dec *x, uint16_t *port);
/* RPCBPROC_GETADDR (v3/v4): a universal address; 0 with *port = 0 when unregistered */
int nfs3_reply_getaddr(struct xdr_dec *x, uint16_t *port);
int nfs3_reply_mnt(struct xdr_dec *x, struct nfs_fh *fh);
int nfs3_reply_fsinfo(struct xdr_dec *x, uint32_t *rtmax, uint32_t *wtmax, uint32_t *dtpref);
int nfs3_reply_getattr(struct xdr_dec *x, struct nfs_attr *attr);
int nfs3_reply_setattr(struct xdr_dec *x);
int nfs3_reply_lookup(struct xdr_dec *x, struct nfs_fh *fh, struct nfs_attr *attr);
/* READ: the data is copied to buf (count bytes of room). */
int nfs3_reply_read(struct xdr_dec *x, void *buf, uint32_t count, struct nfs_io_result *r);
/* READ without the copy: *data points at the r->count bytes inside the reply. */
int nfs3_reply_read_ref(struct xdr_dec *x, uint32_t count, struct nfs_io_result *r,
                        const uint8_t **data);
int nfs3_reply_write(struct xdr_dec *x, uint32_t count, struct nfs_io_result *r);
int nfs3_reply_commit(struct xdr_dec *x, struct nfs_io_result *r);
/* CREATE / MKDIR / SYMLINK: *have_fh false when the server sent no handle. */
int nfs3_reply_create(struct xdr_dec *x, uint32_t proc, struct nfs_fh *fh, bool *have_fh,
                      struct nfs_attr *attr);
/* REMOVE / RMDIR / RENAME / LINK: only the status matters. */
int nfs3_reply_status(struct xdr_dec *x, uint32_t proc);
int nfs3_reply_readlink(struct xdr_dec *x, char *buf, size_t len);
int nfs3_reply_fsstat(struct xdr_dec *x, struct nfs_fsstat *st);

/* One READDIR / READDIRPLUS reply: calls fn per entry (not "." / ".."), advances the
 * cursor. A reply with no entries that is not at EOF is malformed (it would loop). */
struct nfs3_dircursor {
    uint64_t cookie;
    uint8_t verf[8];
    bool eof;
};
int nfs3_reply_readdir(struct xdr_dec *x, bool plus, struct nfs3_dircursor *cur,
                       nfs_dirent_fn fn, void *arg);

#endif
