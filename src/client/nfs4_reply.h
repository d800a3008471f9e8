/*
 * Decoders of NFSv4.1 COMPOUND replies into the library's types, apart from the calls so
 * tests/fuzz/fuzz_client_replies.c can feed them hostile bytes. Each returns 0, the
 * server's status (positive nfsstat4), or -EBADMSG for a malformed, truncated or
 * inconsistent reply (results of ops we did not send, a handle longer than 128 bytes,
 * an attribute we did not ask for, a name with '/' in it).
 */
#ifndef PEERNFS_CLIENT_NFS4_REPLY_H
#define PEERNFS_CLIENT_NFS4_REPLY_H

#include "client/nfs_client.h"
#include "xdr/nfs4_xdr.h"
#include "xdr/xdr.h"

/* Attribute numbers the client asks for (RFC 8881 5.6 / 5.7). */
#define NFS4_ATTR_BIT(n) (1ull << (n))
#define NFS4_ATTRS_STAT                                                                    \
    (NFS4_ATTR_BIT(FATTR4_TYPE) | NFS4_ATTR_BIT(FATTR4_SIZE) | NFS4_ATTR_BIT(FATTR4_FSID) | \
     NFS4_ATTR_BIT(FATTR4_FILEID) | NFS4_ATTR_BIT(FATTR4_MODE) |                           \
     NFS4_ATTR_BIT(FATTR4_NUMLINKS) | NFS4_ATTR_BIT(FATTR4_OWNER) |                        \
     NFS4_ATTR_BIT(FATTR4_OWNER_GROUP) | NFS4_ATTR_BIT(FATTR4_RAWDEV) |                    \
     NFS4_ATTR_BIT(FATTR4_SPACE_USED) | NFS4_ATTR_BIT(FATTR4_TIME_ACCESS) |                \
     NFS4_ATTR_BIT(FATTR4_TIME_METADATA) | NFS4_ATTR_BIT(FATTR4_TIME_MODIFY))
#define NFS4_ATTRS_FSSTAT                                                                  \
    (NFS4_ATTR_BIT(FATTR4_FILES_AVAIL) | NFS4_ATTR_BIT(FATTR4_FILES_FREE) |                \
     NFS4_ATTR_BIT(FATTR4_FILES_TOTAL) | NFS4_ATTR_BIT(FATTR4_SPACE_AVAIL) |               \
     NFS4_ATTR_BIT(FATTR4_SPACE_FREE) | NFS4_ATTR_BIT(FATTR4_SPACE_TOTAL))
#define NFS4_ATTRS_FSINFO                                                                  \
    (NFS4_ATTR_BIT(FATTR4_LEASE_TIME) | NFS4_ATTR_BIT(FATTR4_MAXREAD) |                    \
     NFS4_ATTR_BIT(FATTR4_MAXWRITE))

/* What a fattr4 held: `have` has a bit per attribute number present. */
struct nfs4_fattr {
    uint64_t have;
    struct nfs_attr attr;
    struct nfs_fh fh;           /* FATTR4_FILEHANDLE (READDIR) */
    uint32_t rdattr_error;      /* FATTR4_RDATTR_ERROR (READDIR) */
    uint32_t lease_time;
    uint64_t maxread, maxwrite;
    struct nfs_fsstat fsstat;
};

/* Decode a COMPOUND4res (arena for its arrays; zero-copy into the receive buffer). */
int nfs4_reply_compound(struct xdr_dec *x, COMPOUND4res *res);
/* The attributes of a fattr4: only attribute numbers < 64 in the `want` mask are
 * accepted (others, or trailing bytes, are malformed). */
int nfs4_reply_fattr(const fattr4 *f, uint64_t want, struct nfs4_fattr *out);
/* numeric owner strings ("1000"); "name@domain" via the local passwd / group files;
 * unknown names map to 65534 (nobody). */
uint32_t nfs4_owner_to_id(const struct xdr_opaque *s, bool group);

/* One READDIR reply: fn per entry (with attributes and handle when the server gave
 * them), cookie / verifier / eof advanced. A reply with no entries that is not at EOF
 * is malformed (it would loop). */
struct nfs4_dircursor {
    uint64_t cookie;
    uint8_t verf[8];
    bool eof;
};
int nfs4_reply_readdir(const READDIR4resok *ok, uint64_t want, struct nfs4_dircursor *cur,
                       nfs_dirent_fn fn, void *arg);

/* Encode the settable attributes of sa (mode, owner, owner_group, size, times) as a
 * fattr4 into buf (bitmap words in mask[2]); false if buf is too small. For OPEN /
 * CREATE: mode only via create_mode (set_mode ignored when create_mode >= 0). */
bool nfs4_encode_sattr(const struct nfs_setattr *sa, uint8_t *buf, size_t buflen,
                       uint32_t mask[2], fattr4 *out);

/* The handle of a GETFH result / a wire nfs_fh4. */
int nfs4_fh_from_wire(struct nfs_fh *out, const nfs_fh4 *in);

#endif
