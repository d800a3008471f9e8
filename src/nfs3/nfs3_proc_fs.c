/*
 * FSSTAT, FSINFO and PATHCONF (RFC 1813 sections 3.3.18 - 3.3.20).
 */
#include <string.h>

#include "nfs3/nfs3_proc.h"

/* Resolve the object and fetch its attributes; *have_st says whether st was filled. */
static nfsstat3 nfs3_fs_query_begin(struct rpc_call *call, const nfs_fh3 *fh, struct nfs3_obj *obj,
                                    struct stat *st, bool *have_st)
{
    nfsstat3 status = nfs3_resolve(call, fh, obj);
    *have_st = false;
    if (status != NFS3_OK)
        return status;
    status = nfs3_status(nfs3_getattr(obj, st));
    *have_st = status == NFS3_OK;
    return status;
}

enum rpc_accept_status nfs3_proc_fsstat(struct rpc_call *call)
{
    FSSTAT3args args;
    FSSTAT3res res;
    struct nfs3_obj obj;
    struct stat st;
    struct fs_statfs sf;
    bool have_st;

    if (!xdr_decode_FSSTAT3args(&call->args, &args))
        return RPC_GARBAGE_ARGS;
    memset(&res, 0, sizeof(res));
    res.status = nfs3_fs_query_begin(call, &args.fsroot, &obj, &st, &have_st);
    if (res.status == NFS3_OK)
        res.status = nfs3_status(NFS3_FS(&obj, statfs, &obj.fh, &sf));
    if (res.status != NFS3_OK) {
        if (have_st)
            nfs3_post_op_attr(&obj, &st, &res.resfail.obj_attributes);
        return nfs3_reply(xdr_encode_FSSTAT3res(&call->res, &res));
    }
    FSSTAT3resok *ok = &res.resok;
    nfs3_post_op_attr(&obj, &st, &ok->obj_attributes);
    ok->tbytes = sf.total_bytes;
    ok->fbytes = sf.free_bytes;
    ok->abytes = sf.avail_bytes;
    ok->tfiles = sf.total_files;
    ok->ffiles = sf.free_files;
    ok->afiles = sf.avail_files;
    ok->invarsec = 0; /* the numbers change at any time */
    return nfs3_reply(xdr_encode_FSSTAT3res(&call->res, &res));
}

enum rpc_accept_status nfs3_proc_fsinfo(struct rpc_call *call)
{
    FSINFO3args args;
    FSINFO3res res;
    struct nfs3_obj obj;
    struct stat st;
    bool have_st;

    if (!xdr_decode_FSINFO3args(&call->args, &args))
        return RPC_GARBAGE_ARGS;
    memset(&res, 0, sizeof(res));
    res.status = nfs3_fs_query_begin(call, &args.fsroot, &obj, &st, &have_st);
    if (res.status != NFS3_OK) {
        if (have_st)
            nfs3_post_op_attr(&obj, &st, &res.resfail.obj_attributes);
        return nfs3_reply(xdr_encode_FSINFO3res(&call->res, &res));
    }
    FSINFO3resok *ok = &res.resok;
    if (!obj.weak_flavor)
        nfs3_post_op_attr(&obj, &st, &ok->obj_attributes);
    ok->rtmax = NFS3_RTMAX;
    ok->rtpref = NFS3_RTMAX;
    ok->rtmult = 4096;
    ok->wtmax = NFS3_WTMAX;
    ok->wtpref = NFS3_WTMAX;
    ok->wtmult = 4096;
    ok->dtpref = NFS3_DTPREF;
    ok->maxfilesize = INT64_MAX; /* off_t's limit; the backing filesystem may refuse earlier (FBIG) */
    ok->time_delta.seconds = 0;
    ok->time_delta.nseconds = 1;
    ok->properties = FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS | FSF3_CANSETTIME;
    return nfs3_reply(xdr_encode_FSINFO3res(&call->res, &res));
}

enum rpc_accept_status nfs3_proc_pathconf(struct rpc_call *call)
{
    PATHCONF3args args;
    PATHCONF3res res;
    struct nfs3_obj obj;
    struct stat st;
    bool have_st;

    if (!xdr_decode_PATHCONF3args(&call->args, &args))
        return RPC_GARBAGE_ARGS;
    memset(&res, 0, sizeof(res));
    res.status = nfs3_fs_query_begin(call, &args.object, &obj, &st, &have_st);
    if (res.status != NFS3_OK) {
        if (have_st)
            nfs3_post_op_attr(&obj, &st, &res.resfail.obj_attributes);
        return nfs3_reply(xdr_encode_PATHCONF3res(&call->res, &res));
    }
    PATHCONF3resok *ok = &res.resok;
    nfs3_post_op_attr(&obj, &st, &ok->obj_attributes);
    ok->linkmax = 65000; /* ext4's and XFS's order of magnitude; clients only display it */
    ok->name_max = NFS3_NAME_MAX;
    ok->no_trunc = true;
    ok->chown_restricted = true;
    ok->case_insensitive = false;
    ok->case_preserving = true;
    return nfs3_reply(xdr_encode_PATHCONF3res(&call->res, &res));
}
