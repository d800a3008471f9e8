/*
 * Filehandles in a COMPOUND: PUTFH, PUTROOTFH, PUTPUBFH, GETFH, SAVEFH, RESTOREFH,
 * LOOKUP, LOOKUPP, SECINFO, SECINFO_NO_NAME; and the access checks every filehandle
 * goes through (the export's client rules, squashing, the `secure` port rule) — the
 * same rules as NFSv3, through the same export table. Whether the call's flavor may use
 * a filehandle (sec=, NFS4ERR_WRONGSEC) depends on the ops around it, so the COMPOUND
 * engine decides it (nfs4_compound.c); SECINFO here tells the client the flavors.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "nfs4/nfs4_attr.h"
#include "nfs4/nfs4_internal.h"

/* The caller's credential after the rule's squash options (AUTH_NONE = anonymous). */

/* The caller's access to `ex`: ACCESS without a rule, PERM from an unreserved port on
 * a `secure` export (as knfsd). */
static nfsstat4 nfs4_export_access(struct nfs4_compound *c, struct export *ex, struct nfs4_fh *out)
{
    const struct export_rule *rule = export_client_rule(ex, c->call->peer);
    if (!rule)
        return NFS4ERR_ACCESS;
    if (!export_port_allowed(rule, c->call->peer))
        return NFS4ERR_PERM;
    out->ex = ex;
    out->rule = rule;
    const struct rpc_cred *cr = &c->call->cred;
    export_squash_caller(rule, cr->has_ids, cr->uid, cr->gid, cr->ngids, cr->gids, &out->cred);
    return NFS4_OK;
}

void nfs4_fh_set_pseudo(struct nfs4_compound *c, struct pseudo_node *n, struct nfs4_fh *out)
{
    memset(out, 0, sizeof(*out));
    out->kind = NFS4_FH_PSEUDO;
    out->node = n;
    out->wire_len = pseudo_fh_wrap(&c->srv->pseudo, n, out->wire);
}

void nfs4_fh_set_export(struct nfs4_compound *c, const struct nfs4_fh *dir, const struct fs_fh *fh,
                        struct nfs4_fh *out)
{
    if (out != dir) {
        out->kind = NFS4_FH_EXPORT;
        out->node = NULL;
        out->ex = dir->ex;
        out->rule = dir->rule;
        out->cred = dir->cred;
    }
    out->fh = *fh;
    out->wire_len = fh_wrap(&c->srv->fh_key, out->ex->id, fh, out->wire);
}

nfsstat4 nfs4_fh_set_export_root(struct nfs4_compound *c, struct export *ex, struct nfs4_fh *out)
{
    struct nfs4_fh f = {.kind = NFS4_FH_EXPORT};
    nfsstat4 st = nfs4_export_access(c, ex, &f);
    if (st != NFS4_OK)
        return st;
    nfs4_fh_set_export(c, &f, &ex->root, &f);
    *out = f;
    return NFS4_OK;
}

nfsstat4 nfs4_fh_set_root(struct nfs4_compound *c, struct nfs4_fh *out)
{
    struct pseudo_node *root = c->srv->pseudo.root;
    if (root->export)
        return nfs4_fh_set_export_root(c, root->export, out);
    nfs4_fh_set_pseudo(c, root, out);
    return NFS4_OK;
}

nfsstat4 nfs4_fh_from_wire(struct nfs4_compound *c, const uint8_t *wire, uint32_t len, struct nfs4_fh *out)
{
    if (len == 0 || len > FH_WIRE_MAX)
        return NFS4ERR_BADHANDLE;
    if (pseudo_fh_is_pseudo(wire, len)) {
        struct pseudo_node *n;
        int err = pseudo_fh_unwrap(&c->srv->pseudo, wire, len, &n);
        if (err)
            return err == -ESTALE ? NFS4ERR_STALE : NFS4ERR_BADHANDLE;
        if (n->export) /* the tree changed: that path is now an export */
            return NFS4ERR_STALE;
        nfs4_fh_set_pseudo(c, n, out);
        return NFS4_OK;
    }
    struct export *ex;
    struct nfs4_fh f = {.kind = NFS4_FH_EXPORT};
    int err = fh_unwrap(&c->srv->fh_key, c->srv->exports, wire, len, &ex, &f.fh);
    if (err)
        return err == -ESTALE ? NFS4ERR_STALE : NFS4ERR_BADHANDLE;
    nfsstat4 st = nfs4_export_access(c, ex, &f);
    if (st != NFS4_OK)
        return st;
    memcpy(f.wire, wire, len);
    f.wire_len = len;
    *out = f;
    return NFS4_OK;
}

nfsstat4 nfs4_fh_getattr(const struct nfs4_fh *f, struct stat *st)
{
    switch (f->kind) {
    case NFS4_FH_PSEUDO:
        return NFS4ERR_SERVERFAULT; /* callers use pseudo_node_stat */
    case NFS4_FH_EXPORT:
        return nfs4_errno(NFS4_FS(f, getattr, &f->fh, st));
    case NFS4_FH_NONE:
        break;
    }
    return NFS4ERR_NOFILEHANDLE;
}

bool nfs4_fh_is_export_root(const struct nfs4_fh *f)
{
    return f->kind == NFS4_FH_EXPORT && f->fh.len == f->ex->root.len &&
           memcmp(f->fh.data, f->ex->root.data, f->fh.len) == 0;
}

bool nfs4_fh_read_only(const struct nfs4_fh *f)
{
    return f->kind != NFS4_FH_EXPORT || !(f->rule->opts & EXPORT_RW);
}

nfsstat4 nfs4_check_name(const component4 *name)
{
    if (name->len == 0)
        return NFS4ERR_INVAL;
    if (name->len > NFS4_NAME_MAX)
        return NFS4ERR_NAMETOOLONG;
    if (!nfs4_attr_utf8_valid(name->val, name->len))
        return NFS4ERR_INVAL;
    if (memchr(name->val, '/', name->len) || memchr(name->val, '\0', name->len))
        return NFS4ERR_BADNAME;
    if ((name->len == 1 && name->val[0] == '.') ||
        (name->len == 2 && name->val[0] == '.' && name->val[1] == '.'))
        return NFS4ERR_BADNAME;
    return NFS4_OK;
}

/* 4.1: a new current filehandle without a stateid leaves the current stateid undefined
 * (RFC 8881 16.2.3.1.2). */
static void nfs4_fh_changed(struct nfs4_compound *c)
{
    c->have_cur_stateid = false;
}

NFS4_OP(putfh)
{
    const nfs_fh4 *fh = &arg->opputfh.object;
    nfsstat4 st = nfs4_fh_from_wire(c, fh->val, fh->len, &c->cur);
    if (st != NFS4_OK)
        c->cur.kind = NFS4_FH_NONE;
    nfs4_fh_changed(c);
    return res->opputfh.status = st;
}

NFS4_OP(putrootfh)
{
    (void)arg;
    nfsstat4 st = nfs4_fh_set_root(c, &c->cur);
    nfs4_fh_changed(c);
    return res->opputrootfh.status = st;
}

/* The public filehandle is the root of the pseudo-filesystem (WebNFS is not offered). */
NFS4_OP(putpubfh)
{
    (void)arg;
    nfsstat4 st = nfs4_fh_set_root(c, &c->cur);
    nfs4_fh_changed(c);
    return res->opputpubfh.status = st;
}

NFS4_OP(getfh)
{
    (void)arg;
    res->opgetfh.resok4.object.len = c->cur.wire_len;
    res->opgetfh.resok4.object.val = c->cur.wire;
    return res->opgetfh.status = NFS4_OK;
}

NFS4_OP(savefh)
{
    (void)arg;
    c->saved = c->cur;
    c->have_saved_stateid = c->have_cur_stateid;
    c->saved_stateid = c->cur_stateid;
    return res->opsavefh.status = NFS4_OK;
}

NFS4_OP(restorefh)
{
    (void)arg;
    if (c->saved.kind == NFS4_FH_NONE)
        return res->oprestorefh.status = NFS4ERR_RESTOREFH;
    c->cur = c->saved;
    c->have_cur_stateid = c->have_saved_stateid;
    c->cur_stateid = c->saved_stateid;
    return res->oprestorefh.status = NFS4_OK;
}

/* The object's type decides what LOOKUP-like ops may do with it. */
static nfsstat4 nfs4_require_dir(const struct nfs4_fh *f, struct stat *st)
{
    if (f->kind == NFS4_FH_PSEUDO)
        return NFS4_OK;
    nfsstat4 s = nfs4_fh_getattr(f, st);
    if (s != NFS4_OK)
        return s;
    if (S_ISDIR(st->st_mode))
        return NFS4_OK;
    return S_ISLNK(st->st_mode) ? NFS4ERR_SYMLINK : NFS4ERR_NOTDIR;
}

static nfsstat4 nfs4_lookup_pseudo(struct nfs4_compound *c, const component4 *name, struct nfs4_fh *out)
{
    struct pseudo_node *n = pseudo_node_child(c->cur.node, (const char *)name->val, name->len);
    if (!n || !pseudo_node_visible(n, c->call->peer))
        return NFS4ERR_NOENT;
    if (n->export)
        return nfs4_fh_set_export_root(c, n->export, out);
    nfs4_fh_set_pseudo(c, n, out);
    return NFS4_OK;
}

/* LOOKUP (RFC 8881 18.15): one component; a symlink or non-directory current
 * filehandle is SYMLINK / NOTDIR; a pseudo directory joins the exports. */
static nfsstat4 nfs4_lookup(struct nfs4_compound *c, const component4 *name)
{
    struct stat st;
    nfsstat4 s = nfs4_require_dir(&c->cur, &st);
    if (s != NFS4_OK)
        return s;
    s = nfs4_check_name(name);
    if (s != NFS4_OK)
        return s;
    if (c->cur.kind == NFS4_FH_PSEUDO)
        return nfs4_lookup_pseudo(c, name, &c->cur);
    struct fs_fh out;
    struct stat ost;
    int err = NFS4_FS(&c->cur, lookup, &c->cur.cred, &c->cur.fh, (const char *)name->val, name->len, &out, &ost);
    if (err)
        return nfs4_errno(err);
    nfs4_fh_set_export(c, &c->cur, &out, &c->cur);
    return NFS4_OK;
}

NFS4_OP(lookup)
{
    nfsstat4 st = nfs4_lookup(c, &arg->oplookup.objname);
    nfs4_fh_changed(c);
    return res->oplookup.status = st;
}

/* LOOKUPP: the parent; from an export's root that is the pseudo directory it sits in. */
static nfsstat4 nfs4_lookupp(struct nfs4_compound *c)
{
    struct stat st;
    nfsstat4 s = nfs4_require_dir(&c->cur, &st);
    if (s == NFS4ERR_SYMLINK && c->minor == 0)
        s = NFS4ERR_NOTDIR; /* 4.0 (RFC 7530 16.14) has no SYMLINK for LOOKUPP */
    if (s != NFS4_OK)
        return s;
    if (c->cur.kind == NFS4_FH_PSEUDO) {
        if (!c->cur.node->parent)
            return NFS4ERR_NOENT;
        nfs4_fh_set_pseudo(c, c->cur.node->parent, &c->cur);
        return NFS4_OK;
    }
    if (nfs4_fh_is_export_root(&c->cur)) {
        struct pseudo_node *n = pseudo_node_of_export(&c->srv->pseudo, c->cur.ex);
        if (!n || !n->parent)
            return NFS4ERR_NOENT;
        nfs4_fh_set_pseudo(c, n->parent, &c->cur);
        return NFS4_OK;
    }
    struct fs_fh out;
    struct stat ost;
    int err = NFS4_FS(&c->cur, lookup, &c->cur.cred, &c->cur.fh, "..", 2, &out, &ost);
    if (err)
        return nfs4_errno(err);
    nfs4_fh_set_export(c, &c->cur, &out, &c->cur);
    return NFS4_OK;
}

NFS4_OP(lookupp)
{
    (void)arg;
    nfsstat4 st = nfs4_lookupp(c);
    nfs4_fh_changed(c);
    return res->oplookupp.status = st;
}

/*
 * SECINFO and SECINFO_NO_NAME list the flavors of the object's export rule (pseudo
 * directories: pseudo_node_sec) in the admin's order of preference: AUTH_SYS as flavor
 * 1, Kerberos as RPCSEC_GSS triples (RFC 7530 3.2.1, RFC 8881 2.6.3.1).
 *
 * The Kerberos 5 mechanism is 1.2.840.113554.1.2.2. sec_oid4 carries it as the DER
 * contents octets of the OID, without the 06 09 tag and length: what a gss_OID holds
 * (RFC 2744), and what the Linux, FreeBSD and Ganesha servers send and the Linux client
 * compares against its own mechanism OIDs.
 */
static const uint8_t nfs4_krb5_oid[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02};

static void nfs4_secinfo_entry(uint32_t pseudoflavor, secinfo4 *out)
{
    memset(out, 0, sizeof(*out));
    switch (pseudoflavor) {
    case EXPORT_SEC_KRB5:
        out->flavor_info.service = RPC_GSS_SVC_NONE;
        break;
    case EXPORT_SEC_KRB5I:
        out->flavor_info.service = RPC_GSS_SVC_INTEGRITY;
        break;
    case EXPORT_SEC_KRB5P:
        out->flavor_info.service = RPC_GSS_SVC_PRIVACY;
        break;
    default: /* EXPORT_SEC_SYS, the only other flavor sec= knows */
        out->flavor = RPC_AUTH_SYS;
        return;
    }
    out->flavor = RPC_AUTH_GSS;
    out->flavor_info.oid.len = sizeof(nfs4_krb5_oid);
    out->flavor_info.oid.val = nfs4_krb5_oid;
    out->flavor_info.qop = 0; /* the mechanism's default protection */
}

/* The flavors `target` may be used with, into r (entries in the call's arena). */
static nfsstat4 nfs4_secinfo_result(struct nfs4_compound *c, const struct nfs4_fh *target, SECINFO4res *r)
{
    uint32_t pseudo[EXPORT_SEC_MAX];
    const uint32_t *list = pseudo;
    unsigned n;
    if (target->kind == NFS4_FH_PSEUDO)
        n = pseudo_node_sec(target->node, c->call->peer, pseudo);
    else
        n = export_sec_list(target->rule, &list);
    secinfo4 *v = xdr_arena_alloc(c->call->args.arena, n, sizeof(*v));
    if (!v)
        return NFS4ERR_SERVERFAULT;
    for (unsigned i = 0; i < n; i++)
        nfs4_secinfo_entry(list[i], &v[i]);
    r->resok4.len = n;
    r->resok4.val = v;
    return NFS4_OK;
}

/* SECINFO: the name must exist (as LOOKUP would find it); 4.1 consumes the current
 * filehandle (RFC 8881 2.6.3.1.1.8). Whatever the call's flavor: it is how a client
 * learns the right one after WRONGSEC (nfs4_compound.c). */
NFS4_OP(secinfo)
{
    struct nfs4_fh saved = c->cur;
    nfsstat4 st = nfs4_lookup(c, &arg->opsecinfo.name);
    struct nfs4_fh target = c->cur;
    c->cur = saved;
    if (st == NFS4_OK)
        st = nfs4_secinfo_result(c, &target, &res->opsecinfo);
    if (st == NFS4_OK && c->minor >= 1)
        c->cur.kind = NFS4_FH_NONE;
    return res->opsecinfo.status = st;
}

NFS4_OP(secinfo_no_name)
{
    nfsstat4 st = NFS4_OK;
    struct nfs4_fh target = c->cur;
    if (arg->opsecinfo_no_name == SECINFO_STYLE4_PARENT) {
        struct nfs4_fh saved = c->cur;
        st = nfs4_lookupp(c);
        target = c->cur;
        c->cur = saved;
    } else if (arg->opsecinfo_no_name != SECINFO_STYLE4_CURRENT_FH) {
        st = NFS4ERR_INVAL;
    }
    if (st == NFS4_OK)
        st = nfs4_secinfo_result(c, &target, &res->opsecinfo_no_name);
    if (st == NFS4_OK)
        c->cur.kind = NFS4_FH_NONE;
    return res->opsecinfo_no_name.status = st;
}
