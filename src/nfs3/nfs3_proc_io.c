/*
 * READ, WRITE and COMMIT (RFC 1813 sections 3.3.6, 3.3.7, 3.3.21).
 *
 * READ data is read straight into the reply buffer; WRITE data is written straight
 * from the request buffer. Neither is copied in between.
 */
#include <string.h>

#include "nfs3/nfs3_proc.h"

/* A regular file the caller may do `may` to. Reading is also allowed with execute
 * permission alone: a client must read a mode 0711 program to execute it. */
static nfsstat3 nfs3_io_check(const struct nfs3_obj *obj, const struct stat *st, unsigned may)
{
    if (S_ISDIR(st->st_mode))
        return NFS3ERR_ISDIR;
    if (!S_ISREG(st->st_mode))
        return NFS3ERR_INVAL;
    int err = NFS3_FS(obj, permission, &obj->cred, st, may);
    if (err && may == FS_MAY_READ && NFS3_FS(obj, permission, &obj->cred, st, FS_MAY_EXEC) == 0)
        err = 0;
    return nfs3_status(err);
}

/*
 * Encode a successful READ3res around data read in place: status and attributes, then
 * count, eof and the opaque length (filled in once known), then the data area. The
 * attributes are those from before the read, so the data is never older than what
 * they describe. Returns NFS3_OK, or an error with the encoder rewound to `mark`.
 */
static nfsstat3 nfs3_read_in_place(struct rpc_call *call, const struct nfs3_obj *obj,
                                   const struct stat *st, const READ3args *args)
{
    struct xdr_enc *x = &call->res;
    uint8_t *mark = x->p;
    nfsstat3 ok = NFS3_OK;
    post_op_attr attrs;

    nfs3_post_op_attr(obj, st, &attrs);
    uint8_t *counts = NULL;
    if (xdr_encode_nfsstat3(x, &ok) && xdr_encode_post_op_attr(x, &attrs))
        counts = xdr_enc_reserve(x, 12);
    if (!counts) {
        x->p = mark;
        return NFS3ERR_SERVERFAULT;
    }
    uint32_t want = args->count < NFS3_RTMAX ? args->count : NFS3_RTMAX;
    if (want > (xdr_enc_left(x) & ~(size_t)3))
        want = (uint32_t)(xdr_enc_left(x) & ~(size_t)3);
    uint8_t *data = xdr_enc_reserve(x, want);
    size_t n = 0;
    bool eof = false;
    int err = NFS3_FS(obj, read, &obj->fh, args->offset, data, want, &n, &eof);
    if (err) {
        x->p = mark;
        return nfs3_status(err);
    }
    xdr_enc_shrink(x, data, (uint32_t)n);
    xdr_put_be32(counts, (uint32_t)n);
    xdr_put_be32(counts + 4, eof);
    xdr_put_be32(counts + 8, (uint32_t)n);
    return NFS3_OK;
}

enum rpc_accept_status nfs3_proc_read(struct rpc_call *call)
{
    READ3args args;
    READ3res res;
    struct nfs3_obj obj;
    struct stat st;
    bool have_st = false;

    if (!xdr_decode_READ3args(&call->args, &args))
        return RPC_GARBAGE_ARGS;
    memset(&res, 0, sizeof(res));
    res.status = nfs3_resolve(call, &args.file, &obj);
    if (res.status == NFS3_OK) {
        res.status = nfs3_status(nfs3_getattr(&obj, &st));
        have_st = res.status == NFS3_OK;
    }
    if (res.status == NFS3_OK)
        res.status = nfs3_io_check(&obj, &st, FS_MAY_READ);
    if (res.status == NFS3_OK)
        res.status = nfs3_deleg_break(&obj, &obj.fh, false);
    if (res.status == NFS3_OK)
        res.status = nfs3_read_in_place(call, &obj, &st, &args);
    if (res.status == NFS3_OK)
        return RPC_SUCCESS;
    if (have_st)
        nfs3_post_op_attr(&obj, &st, &res.resfail.file_attributes);
    return nfs3_reply(xdr_encode_READ3res(&call->res, &res));
}

static enum fs_stable nfs3_fs_stable(stable_how how)
{
    switch (how) {
    case UNSTABLE:
        return FS_UNSTABLE;
    case DATA_SYNC:
        return FS_DATA_SYNC;
    default:
        return FS_FILE_SYNC;
    }
}

/* The work of WRITE once the object and its attributes are known. */
static nfsstat3 nfs3_write_obj(const struct nfs3_obj *obj, const WRITE3args *args, const struct stat *pre,
                               struct stat *post, size_t *written)
{
    if (nfs3_read_only(obj))
        return NFS3ERR_ROFS;
    nfsstat3 st = nfs3_io_check(obj, pre, FS_MAY_WRITE);
    if (st == NFS3_OK)
        st = nfs3_deleg_break(obj, &obj->fh, true);
    if (st != NFS3_OK)
        return st;
    /* The backend writes exactly as durably as asked, so `committed` is `stable`;
     * on an `async` export it is what the admin told us to claim. */
    enum fs_stable how = nfs3_async(obj) ? FS_UNSTABLE : nfs3_fs_stable(args->stable);
    return nfs3_status(NFS3_FS(obj, write, &obj->fh, args->offset, args->data.val, args->count, how,
                               written, post));
}

enum rpc_accept_status nfs3_proc_write(struct rpc_call *call)
{
    WRITE3args args;
    WRITE3res res;
    struct nfs3_obj obj;
    struct stat pre, post;
    size_t written = 0;

    if (!xdr_decode_WRITE3args(&call->args, &args))
        return RPC_GARBAGE_ARGS;
    /* As Linux knfsd: the count must describe the data that came with it. */
    if (args.count != args.data.len)
        return RPC_GARBAGE_ARGS;
    memset(&res, 0, sizeof(res));
    res.status = nfs3_resolve(call, &args.file, &obj);
    if (res.status == NFS3_OK)
        res.status = nfs3_status(nfs3_getattr(&obj, &pre));
    if (res.status != NFS3_OK)
        return nfs3_reply(xdr_encode_WRITE3res(&call->res, &res));

    res.status = nfs3_write_obj(&obj, &args, &pre, &post, &written);
    if (res.status != NFS3_OK) {
        nfs3_wcc(&obj, &pre, NULL, &res.resfail.file_wcc);
        return nfs3_reply(xdr_encode_WRITE3res(&call->res, &res));
    }
    nfs3_wcc(&obj, &pre, &post, &res.resok.file_wcc);
    res.resok.count = (count3)written;
    res.resok.committed = args.stable;
    memcpy(res.resok.verf, obj.svc->write_verf, sizeof(res.resok.verf));
    return nfs3_reply(xdr_encode_WRITE3res(&call->res, &res));
}

enum rpc_accept_status nfs3_proc_commit(struct rpc_call *call)
{
    COMMIT3args args;
    COMMIT3res res;
    struct nfs3_obj obj;
    struct stat pre;

    if (!xdr_decode_COMMIT3args(&call->args, &args))
        return RPC_GARBAGE_ARGS;
    memset(&res, 0, sizeof(res));
    res.status = nfs3_resolve(call, &args.file, &obj);
    if (res.status == NFS3_OK)
        res.status = nfs3_status(nfs3_getattr(&obj, &pre));
    if (res.status != NFS3_OK)
        return nfs3_reply(xdr_encode_COMMIT3res(&call->res, &res));

    if (S_ISDIR(pre.st_mode))
        res.status = NFS3ERR_ISDIR;
    else if (!S_ISREG(pre.st_mode))
        res.status = NFS3ERR_INVAL;
    else if (!nfs3_async(&obj))
        res.status = nfs3_status(NFS3_FS(&obj, commit, &obj.fh, args.offset, args.count));
    if (res.status != NFS3_OK) {
        nfs3_wcc(&obj, &pre, NULL, &res.resfail.file_wcc);
        return nfs3_reply(xdr_encode_COMMIT3res(&call->res, &res));
    }
    nfs3_wcc(&obj, &pre, NULL, &res.resok.file_wcc);
    memcpy(res.resok.verf, obj.svc->write_verf, sizeof(res.resok.verf));
    return nfs3_reply(xdr_encode_COMMIT3res(&call->res, &res));
}
