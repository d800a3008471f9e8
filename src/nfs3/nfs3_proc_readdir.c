/*
 * READDIR and READDIRPLUS (RFC 1813 sections 3.3.16, 3.3.17).
 *
 * Entries are encoded one at a time straight into the reply, as the backend hands them
 * over, until the next one would not fit in the client's count (READDIR) or maxcount
 * and dircount (READDIRPLUS). The list stays well formed after every entry: it always
 * ends in a "no more entries" word, which the next entry overwrites with "one more".
 *
 * Cookies are the backend's, stable across calls and restarts. The cookie verifier is
 * derived from the directory's identity only - not from its mtime, because `rm -r`
 * changes the directory while it lists it, and the cookies stay valid anyway.
 */
#include <string.h>

#include "nfs3/nfs3_proc.h"

struct nfs3_readdir_ctx {
    struct rpc_call *call;
    const struct nfs3_obj *dir;
    bool plus;
    uint8_t *list_tail;   /* the "no more entries" word after the last entry */
    uint8_t *limit;       /* entries must end before this (room for eof is kept) */
    uint64_t dir_room;    /* READDIRPLUS: dircount bytes left */
    unsigned nentries;
    bool stopped;         /* an entry did not fit */
};

static void nfs3_cookieverf(const struct nfs3_obj *dir, const struct stat *st, cookieverf3 verf)
{
    uint64_t v = (uint64_t)st->st_ino ^ ((uint64_t)dir->ex->id << 48);
    if (v == 0)
        v = 1; /* zero means "no verifier" to clients */
    xdr_put_be32(verf, (uint32_t)(v >> 32));
    xdr_put_be32(verf + 4, (uint32_t)v);
}

/* A zero verifier with a non-zero cookie is accepted: clients that lost the verifier
 * (or never kept it) resume with zero, and the cookies are valid regardless. */
static bool nfs3_cookieverf_ok(uint64_t cookie, const cookieverf3 sent, const cookieverf3 ours)
{
    static const cookieverf3 zero;
    return cookie == 0 || memcmp(sent, zero, sizeof(zero)) == 0 || memcmp(sent, ours, sizeof(zero)) == 0;
}

/* Bytes of directory information an entry takes, as dircount counts them. */
static uint64_t nfs3_entry_dirbytes(const struct fs_dirent *de)
{
    return 4 + 8 + 4 + XDR_ROUNDUP(de->namelen) + 8;
}

static bool nfs3_encode_entry(struct nfs3_readdir_ctx *c, struct xdr_enc *x, const struct fs_dirent *de)
{
    filename3 name = {.len = de->namelen, .val = de->name};

    if (!c->plus) {
        entry3 e = {.fileid = de->fileid, .name = name, .cookie = de->cookie, .nextentry = NULL};
        return xdr_encode_entry3(x, &e);
    }
    entryplus3 e = {.fileid = de->fileid, .name = name, .cookie = de->cookie, .nextentry = NULL};
    uint8_t fhbuf[FH_WIRE_MAX];
    /* The backend gives no handle and attributes for an entry removed since it was
     * read (or one it cannot vouch for): it is listed without them, and the client
     * looks it up if it cares. */
    if (de->fh && de->st) {
        nfs3_post_op_attr_fh(c->dir, de->fh, de->st, &e.name_attributes);
        nfs3_post_op_fh(c->dir, de->fh, fhbuf, &e.name_handle);
    }
    return xdr_encode_entryplus3(x, &e);
}

/* fs readdir callback: append one entry, or stop when it does not fit. */
static int nfs3_readdir_entry(void *arg, const struct fs_dirent *de)
{
    struct nfs3_readdir_ctx *c = arg;
    struct xdr_enc *res = &c->call->res;
    uint64_t dirbytes = nfs3_entry_dirbytes(de);

    /* dircount never keeps out the first entry: a reply without entries helps nobody */
    if (c->plus && c->nentries > 0 && dirbytes > c->dir_room)
        goto stop;
    struct xdr_enc x = {.start = res->start, .p = res->p, .end = c->limit};
    if (!nfs3_encode_entry(c, &x, de))
        goto stop;
    xdr_put_be32(c->list_tail, 1);
    res->p = x.p;
    c->list_tail = x.p - 4;
    c->nentries++;
    c->dir_room = dirbytes < c->dir_room ? c->dir_room - dirbytes : 0;
    return 0;
stop:
    c->stopped = true;
    return 1;
}

/* The end of the room for entries: `count` bytes from `mark` (where the result
 * starts), less the eof word, and never past the reply buffer. */
static uint8_t *nfs3_readdir_limit(const struct xdr_enc *res, const uint8_t *mark, uint32_t count)
{
    uint8_t *end = res->end - 4;
    uint8_t *limit = (size_t)(end - mark) > count ? (uint8_t *)mark + count - 4 : end;
    if (count < 4 || limit < res->p)
        limit = res->p;
    return limit;
}

/*
 * Encode a successful result: status, directory attributes, verifier, then entries
 * from `cookie` on, then eof. Returns NFS3_OK, or an error with the encoder rewound to
 * where it started.
 */
static nfsstat3 nfs3_readdir_encode(struct nfs3_readdir_ctx *c, const struct stat *st, uint64_t cookie,
                                    uint32_t maxcount)
{
    struct xdr_enc *res = &c->call->res;
    uint8_t *mark = res->p;
    nfsstat3 ok = NFS3_OK;
    post_op_attr attrs;
    cookieverf3 verf;

    nfs3_post_op_attr(c->dir, st, &attrs);
    nfs3_cookieverf(c->dir, st, verf);
    if (!xdr_encode_nfsstat3(res, &ok) || !xdr_encode_post_op_attr(res, &attrs) ||
        !xdr_encode_cookieverf3(res, &verf) || !xdr_enc_bool(res, false)) {
        res->p = mark;
        return NFS3ERR_SERVERFAULT;
    }
    c->list_tail = res->p - 4;
    c->limit = nfs3_readdir_limit(res, mark, maxcount);

    bool eof = false;
    unsigned flags = c->plus ? FS_READDIR_PLUS : 0;
    int err = NFS3_FS(c->dir, readdir, &c->dir->cred, &c->dir->fh, cookie, flags, nfs3_readdir_entry, c,
                      &eof);
    nfsstat3 status = nfs3_status(err);
    if (status == NFS3_OK && c->nentries == 0 && c->stopped)
        status = NFS3ERR_TOOSMALL;
    if (status != NFS3_OK) {
        res->p = mark;
        return status;
    }
    xdr_put_be32(res->p, eof && !c->stopped); /* the limit kept room for it */
    res->p += 4;
    return NFS3_OK;
}

/* Checks before listing: a directory, and a verifier that belongs to it. */
static nfsstat3 nfs3_readdir_check(const struct nfs3_obj *dir, const struct stat *st, uint64_t cookie,
                                   const cookieverf3 verf)
{
    cookieverf3 ours;

    if (!S_ISDIR(st->st_mode))
        return NFS3ERR_NOTDIR;
    nfs3_cookieverf(dir, st, ours);
    return nfs3_cookieverf_ok(cookie, verf, ours) ? NFS3_OK : NFS3ERR_BAD_COOKIE;
}

enum rpc_accept_status nfs3_proc_readdir(struct rpc_call *call)
{
    READDIR3args args;
    READDIR3res res;
    struct nfs3_obj dir;
    struct stat st;
    bool have_st = false;

    if (!xdr_decode_READDIR3args(&call->args, &args))
        return RPC_GARBAGE_ARGS;
    memset(&res, 0, sizeof(res));
    res.status = nfs3_resolve(call, &args.dir, &dir);
    if (res.status == NFS3_OK) {
        res.status = nfs3_status(nfs3_getattr(&dir, &st));
        have_st = res.status == NFS3_OK;
    }
    if (res.status == NFS3_OK)
        res.status = nfs3_readdir_check(&dir, &st, args.cookie, args.cookieverf);
    if (res.status == NFS3_OK) {
        struct nfs3_readdir_ctx c = {.call = call, .dir = &dir, .plus = false};
        res.status = nfs3_readdir_encode(&c, &st, args.cookie, args.count);
        if (res.status == NFS3_OK)
            return RPC_SUCCESS;
    }
    if (have_st)
        nfs3_post_op_attr(&dir, &st, &res.resfail.dir_attributes);
    return nfs3_reply(xdr_encode_READDIR3res(&call->res, &res));
}

enum rpc_accept_status nfs3_proc_readdirplus(struct rpc_call *call)
{
    READDIRPLUS3args args;
    READDIRPLUS3res res;
    struct nfs3_obj dir;
    struct stat st;
    bool have_st = false;

    if (!xdr_decode_READDIRPLUS3args(&call->args, &args))
        return RPC_GARBAGE_ARGS;
    memset(&res, 0, sizeof(res));
    res.status = nfs3_resolve(call, &args.dir, &dir);
    if (res.status == NFS3_OK) {
        res.status = nfs3_status(nfs3_getattr(&dir, &st));
        have_st = res.status == NFS3_OK;
    }
    if (res.status == NFS3_OK)
        res.status = nfs3_readdir_check(&dir, &st, args.cookie, args.cookieverf);
    if (res.status == NFS3_OK) {
        /* dircount 0: the client set no separate limit */
        uint64_t dir_room = args.dircount ? args.dircount : UINT64_MAX;
        struct nfs3_readdir_ctx c = {.call = call, .dir = &dir, .plus = true, .dir_room = dir_room};
        res.status = nfs3_readdir_encode(&c, &st, args.cookie, args.maxcount);
        if (res.status == NFS3_OK)
            return RPC_SUCCESS;
    }
    if (have_st)
        nfs3_post_op_attr(&dir, &st, &res.resfail.dir_attributes);
    return nfs3_reply(xdr_encode_READDIRPLUS3res(&call->res, &res));
}
