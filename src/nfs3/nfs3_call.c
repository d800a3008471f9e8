/*
 * Per-call access control shared by every NFSv3 procedure: from the wire filehandle to
 * an export, the client's export rule and the credential the backend runs with; and the
 * checks on file names that arrive in arguments.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "nfs3/nfs3_proc.h"

void nfs3_squash_cred(const struct rpc_call *call, const struct export_rule *rule, struct fs_cred *out)
{
    /* AUTH_NONE (MOUNT accepts it): the caller is anonymous. */
    const struct rpc_cred *cr = &call->cred;
    export_squash_caller(rule, cr->has_ids, cr->uid, cr->gid, cr->ngids, cr->gids, out);
}

bool nfs3_port_allowed(const struct rpc_call *call, const struct export_rule *rule)
{
    return export_port_allowed(rule, call->peer);
}

/*
 * The rule's sec= list against the call's flavor. RFC 2623 2.3.2: the client uses a
 * flavor from MNT's list; the server refuses others, as an RPC authentication error
 * (AUTH_TOOWEAK, from nfs3_sec_gate) since nothing about the object is wrong. One
 * exception there: FSINFO with AUTH_SYS or AUTH_NONE, which clients may send while they
 * are still settling on a flavor (Solaris and others at mount time), is served, with
 * *weak set so that its reply leaves out the object's attributes: the static facts of
 * FSINFO are all the export gives away to an unaccepted flavor.
 */
static bool nfs3_sec_ok(const struct rpc_call *call, const struct export_rule *rule, bool *weak)
{
    uint32_t flavor = rpc_cred_pseudoflavor(&call->cred);
    *weak = false;
    if (export_sec_allowed(rule, flavor))
        return true;
    if (call->proc == NFSPROC3_FSINFO && (flavor == RPC_PSEUDO_NONE || flavor == RPC_PSEUDO_SYS)) {
        *weak = true;
        return true;
    }
    return false;
}

/* Whether every rule of the export takes this flavor: then no client rule needs finding. */
static bool nfs3_sec_ok_everywhere(const struct export *ex, uint32_t flavor)
{
    for (unsigned i = 0; i < ex->nrules; i++)
        if (!export_sec_allowed(&ex->rules[i], flavor))
            return false;
    return true;
}

/* The same over every export: the usual case (sec=sys everywhere, AUTH_SYS callers)
 * then skips decoding and unwrapping the handle a second time. */
static bool nfs3_sec_ok_in_every_export(const struct export_table *t, uint32_t flavor)
{
    for (unsigned i = 0; i < t->nexports; i++)
        if (!nfs3_sec_ok_everywhere(&t->exports[i], flavor))
            return false;
    return true;
}

enum rpc_accept_status nfs3_sec_gate(struct rpc_call *call)
{
    struct nfs_service *svc = call->prog_ctx;
    struct xdr_dec peek = call->args; /* the handler decodes the arguments again */
    nfs_fh3 wire;
    struct export *ex;
    struct fs_fh fh;
    bool weak;

    if (nfs3_sec_ok_in_every_export(svc->exports, rpc_cred_pseudoflavor(&call->cred)))
        return RPC_SUCCESS;
    /* Every NFSv3 procedure but NULL starts with the handle it works on; a bad handle
     * or a client without a rule is the handler's to answer, as before. */
    if (!xdr_decode_nfs_fh3(&peek, &wire) ||
        fh_unwrap(&svc->fh_key, svc->exports, wire.data.val, wire.data.len, &ex, &fh) != 0)
        return RPC_SUCCESS;
    if (nfs3_sec_ok_everywhere(ex, rpc_cred_pseudoflavor(&call->cred)))
        return RPC_SUCCESS;
    const struct export_rule *rule = export_client_rule(ex, call->peer);
    if (rule && !nfs3_sec_ok(call, rule, &weak))
        return RPC_AUTH_TOOWEAK;
    return RPC_SUCCESS;
}

nfsstat3 nfs3_resolve(struct rpc_call *call, const nfs_fh3 *wire, struct nfs3_obj *obj)
{
    struct nfs_service *svc = call->prog_ctx;

    memset(obj, 0, sizeof(*obj));
    obj->svc = svc;
    int err = fh_unwrap(&svc->fh_key, svc->exports, wire->data.val, wire->data.len, &obj->ex, &obj->fh);
    if (err == -EBADMSG)
        return NFS3ERR_BADHANDLE;
    if (err)
        return NFS3ERR_STALE;
    obj->rule = export_client_rule(obj->ex, call->peer);
    if (!obj->rule)
        return NFS3ERR_ACCES;
    if (!nfs3_port_allowed(call, obj->rule))
        return NFS3ERR_PERM; /* as knfsd */
    if (!nfs3_sec_ok(call, obj->rule, &obj->weak_flavor))
        return NFS3ERR_ACCES; /* a second handle (RENAME, LINK); the first met nfs3_sec_gate */
    nfs3_squash_cred(call, obj->rule, &obj->cred);
    return NFS3_OK;
}

nfsstat3 nfs3_resolve_peer(struct rpc_call *call, const nfs_fh3 *wire, const struct nfs3_obj *first,
                           struct nfs3_obj *obj)
{
    nfsstat3 st = nfs3_resolve(call, wire, obj);
    if (st == NFS3_OK && obj->ex != first->ex)
        return NFS3ERR_XDEV;
    return st;
}

static bool nfs3_is_dot_or_dotdot(const filename3 *name)
{
    return (name->len == 1 && name->val[0] == '.') ||
           (name->len == 2 && name->val[0] == '.' && name->val[1] == '.');
}

/*
 * A name is one path component. Empty names and names holding '/' or NUL are refused
 * with NFS3ERR_ACCES, as older Linux knfsd did (current knfsd rejects them while
 * decoding, with GARBAGE_ARGS; a status reaches the application as an errno instead of
 * an I/O error). "." and ".." can be looked up, already exist for the creating
 * procedures (as mkdir(2) says EEXIST), and are invalid to remove or rename (EINVAL).
 */
nfsstat3 nfs3_check_name(const filename3 *name, enum nfs3_name_use use)
{
    if (name->len > NFS3_NAME_MAX)
        return NFS3ERR_NAMETOOLONG;
    if (name->len == 0 || memchr(name->val, '/', name->len) || memchr(name->val, '\0', name->len))
        return NFS3ERR_ACCES;
    if (!nfs3_is_dot_or_dotdot(name))
        return NFS3_OK;
    switch (use) {
    case NFS3_NAME_LOOKUP:
        return NFS3_OK;
    case NFS3_NAME_CREATE:
        return NFS3ERR_EXIST;
    case NFS3_NAME_REMOVE:
        break;
    }
    return NFS3ERR_INVAL;
}

nfsstat3 nfs3_deleg_break_name(const struct nfs3_obj *dir, const filename3 *name)
{
    struct fs_fh fh;
    struct stat st;

    if (!nfs_deleg_active(dir->svc))
        return NFS3_OK;
    /* Nothing there, or nothing the caller may see: the operation itself reports it.
     * Directories are never delegated. */
    if (NFS3_FS(dir, lookup, &dir->cred, &dir->fh, name->val, name->len, &fh, &st) != 0 || S_ISDIR(st.st_mode))
        return NFS3_OK;
    return nfs3_deleg_break(dir, &fh, true);
}

enum rpc_accept_status nfs3_reply(bool encoded)
{
    return encoded ? RPC_SUCCESS : RPC_SYSTEM_ERR;
}

nfsstat3 nfs3_dir_change_begin(struct rpc_call *call, const nfs_fh3 *fh, const struct nfs3_obj *first,
                               struct nfs3_dir_change *d)
{
    memset(d, 0, sizeof(*d));
    nfsstat3 status = first ? nfs3_resolve_peer(call, fh, first, &d->dir) : nfs3_resolve(call, fh, &d->dir);
    if (status != NFS3_OK)
        return status;
    d->resolved = true;
    d->have_pre = nfs3_getattr(&d->dir, &d->pre) == 0;
    return nfs3_read_only(&d->dir) ? NFS3ERR_ROFS : NFS3_OK;
}

void nfs3_dir_change_wcc(const struct nfs3_dir_change *d, wcc_data *w)
{
    if (d->resolved)
        nfs3_wcc(&d->dir, d->have_pre ? &d->pre : NULL, NULL, w);
}
