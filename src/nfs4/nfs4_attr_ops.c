/*
 * GETATTR, SETATTR, VERIFY, NVERIFY and ACCESS (RFC 8881 18.7, 18.30, 18.31, 18.15,
 * 18.1). The fattr4 codec is nfs4_attr.c; this file says what the attribute source of a
 * filehandle is (pseudo directory or exported object) and runs the ops.
 */
#include <string.h>

#include "nfs4/nfs4_attr.h"
#include "nfs4/nfs4_internal.h"
#include "nfs4/nfs4_io.h"

/* fsids: every export its own (its id), the pseudo-fs (0, 0). Minor 1 keeps an
 * export id of 0 (fsid=0 in the exports file) apart from the pseudo-fs. */
#define NFS4_FSID_MINOR_EXPORT 1

struct nfs4_statfs_ctx {
    const struct nfs4_fh *fh;
};

static int nfs4_attr_statfs(void *ctx, struct fs_statfs *out)
{
    const struct nfs4_fh *f = ctx;
    if (f->kind != NFS4_FH_EXPORT) {
        memset(out, 0, sizeof(*out));
        out->name_max = NFS4_NAME_MAX;
        return 0;
    }
    int err = NFS4_FS(f, statfs, &f->fh, out);
    return err ? (int)nfs4_errno(err) : 0;
}

void nfs4_fh_attr_src(struct nfs4_compound *c, const struct nfs4_fh *f, const struct stat *st,
                        struct nfs4_attr_src *src)
{
    nfs4_attr_src_defaults(src, st);
    src->get_statfs = nfs4_attr_statfs;
    src->statfs_ctx = (void *)f;
    src->fh = f->wire;
    src->fh_len = f->wire_len;
    src->lease_time = state_lease_time(c->srv->state);
    if (f->kind == NFS4_FH_EXPORT) {
        /* RFC 8276 xattr_support: the xattr ops work here (the pseudo-fs has none). The Linux
         * client asks at mount time; a backend without them answers false. */
        src->xattr_support = nfs4_xattr_supported(f);
        src->fsid_major = f->ex->id;
        src->fsid_minor = NFS4_FSID_MINOR_EXPORT;
        if (nfs4_fh_is_export_root(f)) {
            struct pseudo_node *n = pseudo_node_of_export(&c->srv->pseudo, f->ex);
            if (n && n->parent)
                src->mounted_on_fileid = pseudo_node_fileid(n);
        }
    } else {
        src->fsid_major = 0;
        src->fsid_minor = 0;
    }
}

/* The attributes of the current filehandle (pseudo directories are synthesised). */
static nfsstat4 nfs4_cur_stat(struct nfs4_compound *c, const struct nfs4_fh *f, struct stat *st)
{
    if (f->kind == NFS4_FH_PSEUDO) {
        pseudo_node_stat(&c->srv->pseudo, f->node, st);
        return NFS4_OK;
    }
    return nfs4_fh_getattr(f, st);
}

static nfsstat4 nfs4_attr_status(struct nfs4_compound *c, int err)
{
    if (err == NFS4ATTR_ERR_NOSPACE)
        return c->minor >= 1 ? NFS4ERR_REP_TOO_BIG : NFS4ERR_RESOURCE;
    return (nfsstat4)err;
}

/* GETATTR encodes the fattr4 straight into the reply. */
/*
 * Another client holds a write delegation of the file: it may have written data we have
 * not seen, so a GETATTR of size or change waits (DELAY) for its CB_GETATTR answer
 * (RFC 8881 10.4.3, state_deleg_getattr). If the holder reports a change, the reply shows
 * its size and the time of its answer as mtime and ctime (so a new change value), as a
 * kernel server stamps the file. 4.0 requests name no client (the holder's own GETATTR
 * would wait for itself), so only 4.1+ ask.
 * An event loop must not wait for the answer (it may be the one that reads it), so a
 * request that has changed nothing yet moves to the blocking pool and waits there, up to
 * NFS4_CB_GETATTR_WAIT_MS; a holder slower than that gets the asker a DELAY.
 */
#define NFS4_CB_GETATTR_WAIT_MS 250u
static nfsstat4 nfs4_getattr_write_deleg(struct nfs4_compound *c, const bitmap4 *req, struct stat *st)
{
    const uint32_t asked = 1u << FATTR4_CHANGE | 1u << FATTR4_SIZE;
    if (c->minor == 0 || c->cur.kind != NFS4_FH_EXPORT || !S_ISREG(st->st_mode) || req->len == 0 ||
        !(req->val[0] & asked) || !nfs4_deleg_active(c->srv))
        return NFS4_OK;
    size_t klen;
    const void *key = nfs4_file_key(&c->cur, &klen);
    struct state_deleg_attrs a;
    bool have;
    struct state_server *ss = c->srv->state;
    struct state_client *asking = nfs4_client(c);
    nfsstat4 s = nfs4_state_status(state_deleg_getattr(ss, key, klen, asking, &a, &have));
    if (s == NFS4ERR_DELAY && nfs4_compound_requeue(c))
        return s; /* runs again on the blocking pool, where it may wait for the answer */
    if (s == NFS4ERR_DELAY && c->call->on_blocking_pool &&
        state_deleg_getattr_wait(ss, key, klen, asking, NFS4_CB_GETATTR_WAIT_MS))
        s = nfs4_state_status(state_deleg_getattr(ss, key, klen, asking, &a, &have));
    if (s != NFS4_OK || !have)
        return s;
    if (a.change != nfs4_attr_change_from_stat(st) || a.size != (uint64_t)st->st_size) {
        st->st_size = (off_t)a.size;
        st->st_mtim = st->st_ctim = a.at;
    }
    return NFS4_OK;
}

NFS4_OP(getattr)
{
    (void)res;
    const bitmap4 *req = &arg->opgetattr.attr_request;
    struct stat st;
    nfsstat4 s = nfs4_cur_stat(c, &c->cur, &st);
    if (s == NFS4_OK)
        s = nfs4_getattr_write_deleg(c, req, &st);
    if (s != NFS4_OK)
        return s;
    struct nfs4_attr_src src;
    nfs4_fh_attr_src(c, &c->cur, &st, &src);
    uint8_t *start = c->enc->p;
    if (!xdr_enc_u32(c->enc, NFS4_OK))
        return nfs4_attr_status(c, NFS4ATTR_ERR_NOSPACE);
    int err = nfs4_attr_encode(c->enc, req->val, req->len, &src, c->minor);
    if (err) {
        c->enc->p = start;
        return nfs4_attr_status(c, err);
    }
    return NFS4_OK;
}

/* SETATTR: size changes need a stateid that allows writing (RFC 8881 18.30.3). */
static nfsstat4 nfs4_setattr(struct nfs4_compound *c, SETATTR4args *a, uint32_t *attrsset)
{
    if (c->cur.kind != NFS4_FH_EXPORT)
        return NFS4ERR_ROFS;
    struct nfs4_attr_set set;
    int err = nfs4_attr_decode_set(a->obj_attributes.attrmask.val, a->obj_attributes.attrmask.len,
                                   a->obj_attributes.attr_vals.val, a->obj_attributes.attr_vals.len, &set,
                                   attrsset, c->minor);
    if (err)
        return (nfsstat4)err;
    if (set.mask & NFS4_SET_MODE_UMASK)
        return NFS4ERR_INVAL;
    struct stat st;
    nfsstat4 s = nfs4_fh_getattr(&c->cur, &st);
    if (s != NFS4_OK)
        return s;
    if (set.mask & NFS4_SET_SIZE) {
        if (S_ISDIR(st.st_mode))
            return NFS4ERR_ISDIR;
        if (!S_ISREG(st.st_mode))
            return NFS4ERR_INVAL;
        s = nfs4_check_io_stateid(c, &a->stateid, true);
        if (s != NFS4_OK)
            return s;
    }
    struct fs_setattr fsa;
    nfs4_attr_set_to_fs(&set, st.st_mode, &fsa);
    if (fsa.mask == 0)
        return NFS4_OK;
    size_t klen;
    const void *key = nfs4_file_key(&c->cur, &klen);
    enum state_status ds = state_deleg_conflicts(c->srv->state, key, klen, c->client, true);
    if (ds != STATE_OK)
        return nfs4_state_status(ds);
    struct stat post;
    return nfs4_errno(NFS4_FS(&c->cur, setattr, &c->cur.cred, &c->cur.fh, &fsa, &post));
}

NFS4_OP(setattr)
{
    SETATTR4res *r = &res->opsetattr;
    uint32_t *set = xdr_arena_alloc(c->call->args.arena, NFS4_ATTR_WORDS, sizeof(uint32_t));
    if (!set)
        return r->status = NFS4ERR_RESOURCE;
    memset(set, 0, NFS4_ATTR_WORDS * sizeof(uint32_t));
    r->status = nfs4_setattr(c, &arg->opsetattr, set);
    r->attrsset.val = set;
    r->attrsset.len = 0;
    if (r->status == NFS4_OK)
        for (uint32_t i = 0; i < NFS4_ATTR_WORDS; i++)
            if (set[i])
                r->attrsset.len = i + 1;
    return r->status;
}

/* VERIFY and NVERIFY: SAME / NOT_SAME decide whether the COMPOUND goes on. */
static nfsstat4 nfs4_verify(struct nfs4_compound *c, const fattr4 *fa, bool want_equal)
{
    struct stat st;
    nfsstat4 s = nfs4_cur_stat(c, &c->cur, &st);
    if (s != NFS4_OK)
        return s;
    struct nfs4_attr_src src;
    nfs4_fh_attr_src(c, &c->cur, &st, &src);
    bool equal = false;
    int err = nfs4_attr_compare(fa->attrmask.val, fa->attrmask.len, fa->attr_vals.val, fa->attr_vals.len, &src,
                                c->minor, &equal);
    if (err)
        return nfs4_attr_status(c, err);
    if (want_equal)
        return equal ? NFS4_OK : NFS4ERR_NOT_SAME;
    return equal ? NFS4ERR_SAME : NFS4_OK;
}

NFS4_OP(verify)
{
    return res->opverify.status = nfs4_verify(c, &arg->opverify.obj_attributes, true);
}

NFS4_OP(nverify)
{
    return res->opnverify.status = nfs4_verify(c, &arg->opnverify.obj_attributes, false);
}

/*
 * ACCESS: what the caller may do, as open(2) would decide. The owner's mode bits are
 * checked here as well as the backend's permission (which lets an owner do I/O on a
 * file whatever its mode, for files opened before a chmod), so that a client does not
 * open a 0444 file for writing on the owner's behalf (same rule as NFSv3 ACCESS).
 */
struct nfs4_access_map {
    uint32_t access;
    unsigned may;
};

/* The RFC 8276 (4.2) bits: reading and listing xattrs are read access, changing them
 * write access (8.4.3), of the object itself (a directory's xattrs need no search). */
static const struct nfs4_access_map nfs4_dir_access[] = {
    {ACCESS4_READ, FS_MAY_READ},
    {ACCESS4_LOOKUP, FS_MAY_EXEC},
    {ACCESS4_MODIFY, FS_MAY_WRITE | FS_MAY_EXEC},
    {ACCESS4_EXTEND, FS_MAY_WRITE | FS_MAY_EXEC},
    {ACCESS4_DELETE, FS_MAY_WRITE | FS_MAY_EXEC},
    {ACCESS4_XAREAD, FS_MAY_READ},
    {ACCESS4_XAWRITE, FS_MAY_WRITE},
    {ACCESS4_XALIST, FS_MAY_READ},
    {0, 0},
};

static const struct nfs4_access_map nfs4_file_access[] = {
    {ACCESS4_READ, FS_MAY_READ},
    {ACCESS4_EXECUTE, FS_MAY_EXEC},
    {ACCESS4_MODIFY, FS_MAY_WRITE},
    {ACCESS4_EXTEND, FS_MAY_WRITE},
    {ACCESS4_XAREAD, FS_MAY_READ},
    {ACCESS4_XAWRITE, FS_MAY_WRITE},
    {ACCESS4_XALIST, FS_MAY_READ},
    {0, 0},
};

#define NFS4_ACCESS_ALL                                                                            \
    (ACCESS4_READ | ACCESS4_LOOKUP | ACCESS4_MODIFY | ACCESS4_EXTEND | ACCESS4_DELETE | ACCESS4_EXECUTE)
#define NFS4_ACCESS_XATTR (ACCESS4_XAREAD | ACCESS4_XAWRITE | ACCESS4_XALIST)
#define NFS4_ACCESS_WRITES (ACCESS4_MODIFY | ACCESS4_EXTEND | ACCESS4_DELETE | ACCESS4_XAWRITE)
#define NFS4_ACCESS_DIR (ACCESS4_READ | ACCESS4_LOOKUP | ACCESS4_MODIFY | ACCESS4_EXTEND | ACCESS4_DELETE)
#define NFS4_ACCESS_NONDIR (ACCESS4_READ | ACCESS4_MODIFY | ACCESS4_EXTEND | ACCESS4_EXECUTE)

static bool nfs4_may(const struct nfs4_fh *f, const struct stat *st, unsigned may)
{
    bool owner = f->cred.uid != 0 && f->cred.uid == st->st_uid;
    if (owner && ((st->st_mode >> 6) & may) != may)
        return false;
    return NFS4_FS(f, permission, &f->cred, st, may) == 0;
}

NFS4_OP(access)
{
    ACCESS4res *r = &res->opaccess;
    uint32_t asked = arg->opaccess.access;
    if (asked & ~(uint32_t)(NFS4_ACCESS_ALL | NFS4_ACCESS_XATTR))
        return r->status = NFS4ERR_INVAL;
    /* The xattr bits are 4.2's (RFC 8276 8.4.3); older minor versions leave them out
     * of `supported`, as a server that does not know them. */
    asked &= c->minor >= 2 ? NFS4_ACCESS_ALL | NFS4_ACCESS_XATTR : NFS4_ACCESS_ALL;
    struct stat st;
    nfsstat4 s = nfs4_cur_stat(c, &c->cur, &st);
    if (s != NFS4_OK)
        return r->status = s;
    /* supported names only the bits that mean something for this type (RFC 8881
     * 18.1.3: LOOKUP and DELETE for directories, EXECUTE for the rest), as the maps. */
    uint32_t supported =
        asked & ((S_ISDIR(st.st_mode) ? NFS4_ACCESS_DIR : NFS4_ACCESS_NONDIR) | NFS4_ACCESS_XATTR);
    uint32_t granted = 0;
    if (c->cur.kind == NFS4_FH_PSEUDO) {
        granted = supported & (ACCESS4_READ | ACCESS4_LOOKUP); /* no xattrs there */
    } else {
        const struct nfs4_access_map *map = S_ISDIR(st.st_mode) ? nfs4_dir_access : nfs4_file_access;
        uint32_t want = nfs4_fh_read_only(&c->cur) ? supported & ~(uint32_t)NFS4_ACCESS_WRITES : supported;
        /* Linux keeps user xattrs off symlinks and special files. */
        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
            want &= ~(uint32_t)NFS4_ACCESS_XATTR;
        for (; map->access; map++)
            if ((want & map->access) && nfs4_may(&c->cur, &st, map->may))
                granted |= map->access;
    }
    r->resok4.supported = supported;
    r->resok4.access = granted;
    return r->status = NFS4_OK;
}
