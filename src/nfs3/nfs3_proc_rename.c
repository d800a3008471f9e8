/*
 * RENAME and LINK (RFC 1813 sections 3.3.14, 3.3.15): the procedures with two
 * filehandles, which must belong to the same export (else NFS3ERR_XDEV).
 */
#include <string.h>

#include "nfs3/nfs3_proc.h"

static nfsstat3 nfs3_rename_names(struct rpc_call *call, const RENAME3args *args, struct nfs3_dir_change *from,
                                  struct nfs3_dir_change *to)
{
    memset(to, 0, sizeof(*to));
    nfsstat3 status = nfs3_dir_change_begin(call, &args->from.dir, NULL, from);
    if (status != NFS3_OK)
        return status;
    status = nfs3_dir_change_begin(call, &args->to.dir, &from->dir, to);
    if (status == NFS3_OK)
        status = nfs3_check_name(&args->from.name, NFS3_NAME_REMOVE);
    if (status == NFS3_OK)
        status = nfs3_check_name(&args->to.name, NFS3_NAME_REMOVE);
    /* the object renamed, and the one the new name replaces */
    if (status == NFS3_OK)
        status = nfs3_deleg_break_name(&from->dir, &args->from.name);
    if (status == NFS3_OK)
        status = nfs3_deleg_break_name(&to->dir, &args->to.name);
    if (status != NFS3_OK)
        return status;
    return nfs3_status(NFS3_FS(&from->dir, rename, &from->dir.cred, &from->dir.fh, args->from.name.val,
                               args->from.name.len, &to->dir.fh, args->to.name.val, args->to.name.len));
}

enum rpc_accept_status nfs3_proc_rename(struct rpc_call *call)
{
    RENAME3args args;
    RENAME3res res;
    struct nfs3_dir_change from, to;

    if (!xdr_decode_RENAME3args(&call->args, &args))
        return RPC_GARBAGE_ARGS;
    memset(&res, 0, sizeof(res));
    res.status = nfs3_rename_names(call, &args, &from, &to);
    if (res.status == NFS3_OK) {
        nfs3_dir_change_wcc(&from, &res.resok.fromdir_wcc);
        nfs3_dir_change_wcc(&to, &res.resok.todir_wcc);
    } else {
        nfs3_dir_change_wcc(&from, &res.resfail.fromdir_wcc);
        nfs3_dir_change_wcc(&to, &res.resfail.todir_wcc);
    }
    return nfs3_reply(xdr_encode_RENAME3res(&call->res, &res));
}

static nfsstat3 nfs3_link_name(struct rpc_call *call, const LINK3args *args, struct nfs3_obj *file,
                               bool *file_resolved, struct nfs3_dir_change *dir)
{
    memset(dir, 0, sizeof(*dir));
    nfsstat3 status = nfs3_resolve(call, &args->file, file);
    *file_resolved = status == NFS3_OK;
    if (status == NFS3_OK)
        status = nfs3_dir_change_begin(call, &args->link.dir, file, dir);
    if (status == NFS3_OK)
        status = nfs3_check_name(&args->link.name, NFS3_NAME_CREATE);
    if (status == NFS3_OK)
        status = nfs3_deleg_break(file, &file->fh, true);
    if (status != NFS3_OK)
        return status;
    return nfs3_status(NFS3_FS(&dir->dir, link, &dir->dir.cred, &file->fh, &dir->dir.fh, args->link.name.val,
                               args->link.name.len));
}

enum rpc_accept_status nfs3_proc_link(struct rpc_call *call)
{
    LINK3args args;
    LINK3res res;
    struct nfs3_obj file;
    struct nfs3_dir_change dir;
    bool file_resolved;

    if (!xdr_decode_LINK3args(&call->args, &args))
        return RPC_GARBAGE_ARGS;
    memset(&res, 0, sizeof(res));
    res.status = nfs3_link_name(call, &args, &file, &file_resolved, &dir);
    if (res.status == NFS3_OK) {
        nfs3_post_op_attr(&file, NULL, &res.resok.file_attributes);
        nfs3_dir_change_wcc(&dir, &res.resok.linkdir_wcc);
    } else {
        if (file_resolved)
            nfs3_post_op_attr(&file, NULL, &res.resfail.file_attributes);
        nfs3_dir_change_wcc(&dir, &res.resfail.linkdir_wcc);
    }
    return nfs3_reply(xdr_encode_LINK3res(&call->res, &res));
}
