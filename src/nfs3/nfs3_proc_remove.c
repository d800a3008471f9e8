/*
 * REMOVE and RMDIR (RFC 1813 sections 3.3.12, 3.3.13).
 */
#include <string.h>

#include "nfs3/nfs3_proc.h"

/* Remove `what`: with rmdir semantics when dir_only, else unlink semantics (a directory
 * then gives NFS3ERR_ISDIR, from the backend's EISDIR). */
static nfsstat3 nfs3_remove_name(struct rpc_call *call, const diropargs3 *what, bool dir_only,
                                 struct nfs3_dir_change *d)
{
    nfsstat3 status = nfs3_dir_change_begin(call, &what->dir, NULL, d);
    if (status == NFS3_OK)
        status = nfs3_check_name(&what->name, NFS3_NAME_REMOVE);
    if (status == NFS3_OK && !dir_only)
        status = nfs3_deleg_break_name(&d->dir, &what->name);
    if (status == NFS3_OK)
        status = nfs3_status(NFS3_FS(&d->dir, remove, &d->dir.cred, &d->dir.fh, what->name.val,
                                     what->name.len, dir_only));
    return status;
}

enum rpc_accept_status nfs3_proc_remove(struct rpc_call *call)
{
    REMOVE3args args;
    REMOVE3res res;
    struct nfs3_dir_change d;

    if (!xdr_decode_REMOVE3args(&call->args, &args))
        return RPC_GARBAGE_ARGS;
    memset(&res, 0, sizeof(res));
    res.status = nfs3_remove_name(call, &args.object, false, &d);
    nfs3_dir_change_wcc(&d, res.status == NFS3_OK ? &res.resok.dir_wcc : &res.resfail.dir_wcc);
    return nfs3_reply(xdr_encode_REMOVE3res(&call->res, &res));
}

enum rpc_accept_status nfs3_proc_rmdir(struct rpc_call *call)
{
    RMDIR3args args;
    RMDIR3res res;
    struct nfs3_dir_change d;

    if (!xdr_decode_RMDIR3args(&call->args, &args))
        return RPC_GARBAGE_ARGS;
    memset(&res, 0, sizeof(res));
    res.status = nfs3_remove_name(call, &args.object, true, &d);
    nfs3_dir_change_wcc(&d, res.status == NFS3_OK ? &res.resok.dir_wcc : &res.resfail.dir_wcc);
    return nfs3_reply(xdr_encode_RMDIR3res(&call->res, &res));
}
