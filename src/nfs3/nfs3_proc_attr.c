/*
 * GETATTR, SETATTR and ACCESS (RFC 1813 sections 3.3.1, 3.3.2, 3.3.4).
 */
#include <string.h>

#include "nfs3/nfs3_proc.h"

enum rpc_accept_status nfs3_proc_null(struct rpc_call *call)
{
    return RPC_SUCCESS;
}

enum rpc_accept_status nfs3_proc_getattr(struct rpc_call *call)
{
    GETATTR3args args;
    GETATTR3res res;
    struct nfs3_obj obj;
    struct stat st;

    if (!xdr_decode_GETATTR3args(&call->args, &args))
        return RPC_GARBAGE_ARGS;
    memset(&res, 0, sizeof(res));
    res.status = nfs3_resolve(call, &args.object, &obj);
    if (res.status == NFS3_OK)
        res.status = nfs3_status(nfs3_getattr(&obj, &st));
    if (res.status == NFS3_OK)
        nfs3_fattr(&obj, &st, &res.resok.obj_attributes);
    return nfs3_reply(xdr_encode_GETATTR3res(&call->res, &res));
}

static bool nfs3_time_eq(nfstime3 a, nfstime3 b)
{
    return a.seconds == b.seconds && a.nseconds == b.nseconds;
}

/* The work of SETATTR once the object is known; *post is set when it changed. */
static nfsstat3 nfs3_setattr_obj(const struct nfs3_obj *obj, const SETATTR3args *args,
                                 const struct stat *pre, struct stat *post, bool *changed)
{
    struct fs_setattr sa;

    *changed = false;
    if (nfs3_read_only(obj))
        return NFS3ERR_ROFS;
    /* Guarded SETATTR: the client's idea of ctime must still be right, so that a
     * retransmitted truncate cannot undo writes made after the first one. */
    if (args->guard.check && !nfs3_time_eq(args->guard.obj_ctime, nfs3_time(pre->st_ctim)))
        return NFS3ERR_NOT_SYNC;
    nfs3_sattr_to_fs(&args->new_attributes, &sa);
    if (sa.mask == 0)
        return NFS3_OK;
    nfsstat3 st = nfs3_deleg_break(obj, &obj->fh, true);
    if (st != NFS3_OK)
        return st;
    int err = NFS3_FS(obj, setattr, &obj->cred, &obj->fh, &sa, post);
    *changed = err == 0;
    return nfs3_status(err);
}

enum rpc_accept_status nfs3_proc_setattr(struct rpc_call *call)
{
    SETATTR3args args;
    SETATTR3res res;
    struct nfs3_obj obj;
    struct stat pre, post;
    bool changed;

    if (!xdr_decode_SETATTR3args(&call->args, &args))
        return RPC_GARBAGE_ARGS;
    memset(&res, 0, sizeof(res));
    res.status = nfs3_resolve(call, &args.object, &obj);
    if (res.status == NFS3_OK)
        res.status = nfs3_status(nfs3_getattr(&obj, &pre));
    if (res.status != NFS3_OK)
        return nfs3_reply(xdr_encode_SETATTR3res(&call->res, &res));

    res.status = nfs3_setattr_obj(&obj, &args, &pre, &post, &changed);
    /* resok and resfail both hold just the wcc data */
    wcc_data *wcc = res.status == NFS3_OK ? &res.resok.obj_wcc : &res.resfail.obj_wcc;
    nfs3_wcc(&obj, &pre, changed ? &post : NULL, wcc);
    return nfs3_reply(xdr_encode_SETATTR3res(&call->res, &res));
}

/*
 * May the caller do `may` (FS_MAY_*) to the object, as open(2) would check it?
 * fs permission lets an owner read and write whatever the mode says (for I/O on files
 * opened before a chmod), but ACCESS must report what the mode allows, or a client
 * would let the owner open a 0444 file for writing. So the owner's bits are checked
 * here as well; the backend still has its say (a read-only backing filesystem).
 */
static bool nfs3_may(const struct nfs3_obj *obj, const struct stat *st, unsigned may)
{
    bool owner = obj->cred.uid != 0 && obj->cred.uid == st->st_uid;
    if (owner && ((st->st_mode >> 6) & may) != may)
        return false;
    return NFS3_FS(obj, permission, &obj->cred, st, may) == 0;
}

/* ACCESS3_* bits -> FS_MAY_* bits, by object type (as Linux knfsd maps them). */
struct nfs3_access_map {
    uint32_t access;
    unsigned may;
};

static const struct nfs3_access_map nfs3_dir_access[] = {
    {ACCESS3_READ, FS_MAY_READ},
    {ACCESS3_LOOKUP, FS_MAY_EXEC},
    {ACCESS3_MODIFY, FS_MAY_WRITE | FS_MAY_EXEC},
    {ACCESS3_EXTEND, FS_MAY_WRITE | FS_MAY_EXEC},
    {ACCESS3_DELETE, FS_MAY_WRITE | FS_MAY_EXEC},
    {0, 0},
};

static const struct nfs3_access_map nfs3_file_access[] = {
    {ACCESS3_READ, FS_MAY_READ},
    {ACCESS3_EXECUTE, FS_MAY_EXEC},
    {ACCESS3_MODIFY, FS_MAY_WRITE},
    {ACCESS3_EXTEND, FS_MAY_WRITE},
    {0, 0},
};

static uint32_t nfs3_access_granted(const struct nfs3_obj *obj, const struct stat *st, uint32_t asked)
{
    const struct nfs3_access_map *map = S_ISDIR(st->st_mode) ? nfs3_dir_access : nfs3_file_access;
    uint32_t granted = 0;

    if (nfs3_read_only(obj))
        asked &= ~(uint32_t)(ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE);
    for (; map->access; map++)
        if ((asked & map->access) && nfs3_may(obj, st, map->may))
            granted |= map->access;
    return granted;
}

enum rpc_accept_status nfs3_proc_access(struct rpc_call *call)
{
    ACCESS3args args;
    ACCESS3res res;
    struct nfs3_obj obj;
    struct stat st;

    if (!xdr_decode_ACCESS3args(&call->args, &args))
        return RPC_GARBAGE_ARGS;
    memset(&res, 0, sizeof(res));
    res.status = nfs3_resolve(call, &args.object, &obj);
    if (res.status == NFS3_OK)
        res.status = nfs3_status(nfs3_getattr(&obj, &st));
    if (res.status == NFS3_OK) {
        nfs3_post_op_attr(&obj, &st, &res.resok.obj_attributes);
        res.resok.access = nfs3_access_granted(&obj, &st, args.access);
    }
    return nfs3_reply(xdr_encode_ACCESS3res(&call->res, &res));
}
