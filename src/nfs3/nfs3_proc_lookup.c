/*
 * LOOKUP and READLINK (RFC 1813 sections 3.3.3, 3.3.5).
 */
#include <string.h>

#include "nfs3/nfs3_proc.h"

enum rpc_accept_status nfs3_proc_lookup(struct rpc_call *call)
{
    LOOKUP3args args;
    LOOKUP3res res;
    struct nfs3_obj dir;
    struct fs_fh fh;
    struct stat st;
    uint8_t fhbuf[FH_WIRE_MAX];
    bool resolved;

    if (!xdr_decode_LOOKUP3args(&call->args, &args))
        return RPC_GARBAGE_ARGS;
    memset(&res, 0, sizeof(res));
    res.status = nfs3_resolve(call, &args.what.dir, &dir);
    resolved = res.status == NFS3_OK;
    if (res.status == NFS3_OK)
        res.status = nfs3_check_name(&args.what.name, NFS3_NAME_LOOKUP);
    if (res.status == NFS3_OK)
        res.status = nfs3_status(NFS3_FS(&dir, lookup, &dir.cred, &dir.fh, args.what.name.val,
                                         args.what.name.len, &fh, &st));
    if (res.status == NFS3_OK) {
        nfs3_wrap_fh(&dir, &fh, fhbuf, &res.resok.object);
        nfs3_post_op_attr_fh(&dir, &fh, &st, &res.resok.obj_attributes);
        nfs3_post_op_attr(&dir, NULL, &res.resok.dir_attributes);
    } else if (resolved) {
        nfs3_post_op_attr(&dir, NULL, &res.resfail.dir_attributes);
    }
    return nfs3_reply(xdr_encode_LOOKUP3res(&call->res, &res));
}

enum rpc_accept_status nfs3_proc_readlink(struct rpc_call *call)
{
    READLINK3args args;
    READLINK3res res;
    struct nfs3_obj obj;
    struct stat st;
    char target[NFS3_PATH_MAX];
    size_t len = 0;
    bool have_st = false;

    if (!xdr_decode_READLINK3args(&call->args, &args))
        return RPC_GARBAGE_ARGS;
    memset(&res, 0, sizeof(res));
    res.status = nfs3_resolve(call, &args.symlink, &obj);
    if (res.status == NFS3_OK) {
        res.status = nfs3_status(nfs3_getattr(&obj, &st));
        have_st = res.status == NFS3_OK;
    }
    if (res.status == NFS3_OK && !S_ISLNK(st.st_mode))
        res.status = NFS3ERR_INVAL;
    if (res.status == NFS3_OK)
        res.status = nfs3_status(NFS3_FS(&obj, readlink, &obj.fh, target, sizeof(target), &len));
    if (res.status == NFS3_OK) {
        nfs3_post_op_attr(&obj, &st, &res.resok.symlink_attributes);
        res.resok.data.len = (uint32_t)len;
        res.resok.data.val = target;
    } else if (have_st) {
        nfs3_post_op_attr(&obj, &st, &res.resfail.symlink_attributes);
    }
    return nfs3_reply(xdr_encode_READLINK3res(&call->res, &res));
}
