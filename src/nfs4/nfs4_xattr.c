/*
 * Extended attributes (RFC 8276, NFSv4.2): GETXATTR, SETXATTR, LISTXATTRS and
 * REMOVEXATTR. The op table flags (nfs4_compound.c):
 *   GETXATTR     NEED_FH | MIN_MINOR2 | DIRECT      (the value is read into the reply)
 *   SETXATTR     NEED_FH | MIN_MINOR2 | MODIFIES
 *   LISTXATTRS   NEED_FH | MIN_MINOR2 | DIRECT      (names are encoded into the reply)
 *   REMOVEXATTR  NEED_FH | MIN_MINOR2 | MODIFIES
 *
 * Only the user namespace exists on the wire (RFC 8276 has no other): the backend takes
 * and lists names without the "user." prefix and keeps other namespaces out of sight.
 * Access is the backing filesystem's, decided with the caller's squashed credential:
 * reading a value needs read permission, changing one write permission (or ownership,
 * sticky directories). LISTXATTRS is checked here for read permission, as READ is,
 * since the kernel lets anyone list.
 *
 * Names are component4s: empty is INVAL, longer than 255 bytes NAMETOOLONG, not UTF-8
 * INVAL (as every component4 here), and a NUL inside, which no backend can store,
 * BADNAME. The posix backend also answers NAMETOOLONG for names of 251-255 bytes, which
 * the prefix would take past Linux's 255 (knfsd's limit is the same).
 *
 * Sizes: a value is at most FS_XATTR_SIZE_MAX (64 KiB, Linux's XATTR_SIZE_MAX); a
 * value that does not fit the reply (the buffer, the session's ca_maxresponsesize) is
 * XATTR2BIG, as is a SETXATTR value over 64 KiB. LISTXATTRS reads the whole list (at
 * most FS_XATTR_LIST_MAX bytes) on every call, sorts it by name so that its cookies, an
 * index into that order, mean the same from one call to the next, and returns the part
 * that fits la_maxcount (which bounds LISTXATTRS4resok: cookie, names and eof, as the
 * Linux client counts it).
 */
#include <stdlib.h>
#include <string.h>

#include "nfs4/nfs4_attr.h"
#include "nfs4/nfs4_internal.h"
#include "nfs4/nfs4_io.h"

/* An object of an export whose backend has the xattr ops (every one or none, fs.h) and
 * whose filesystem stores user xattrs; never the pseudo filesystem. */
bool nfs4_xattr_supported(const struct nfs4_fh *f)
{
    if (f->kind != NFS4_FH_EXPORT)
        return false;
    const struct fs_ops *ops = f->ex->ops;
    return ops->xattr_supported && ops->getxattr && ops->setxattr && ops->listxattr && ops->removexattr &&
           ops->xattr_supported(f->ex->fs);
}

static nfsstat4 nfs4_xattr_check_name(const xattrkey4 *name)
{
    if (name->len == 0)
        return NFS4ERR_INVAL;
    if (name->len > NFS4_NAME_MAX)
        return NFS4ERR_NAMETOOLONG;
    if (!nfs4_attr_utf8_valid(name->val, name->len))
        return NFS4ERR_INVAL;
    if (memchr(name->val, '\0', name->len))
        return NFS4ERR_BADNAME;
    return NFS4_OK;
}

/*
 * The checks every xattr op starts with: xattrs are supported there (else NOTSUPP, the
 * pseudo filesystem included), the name (NULL: LISTXATTRS), and the object's
 * attributes in *st.
 */
static nfsstat4 nfs4_xattr_begin(struct nfs4_compound *c, const xattrkey4 *name, struct stat *st)
{
    if (!nfs4_xattr_supported(&c->cur))
        return NFS4ERR_NOTSUPP;
    nfsstat4 s = nfs4_fh_getattr(&c->cur, st);
    if (s != NFS4_OK)
        return s;
    return name ? nfs4_xattr_check_name(name) : NFS4_OK;
}

/* Bytes of reply left for what is still to be encoded: the buffer's room and, in a
 * session, what ca_maxresponsesize leaves (the engine checks that limit only after the
 * op, which would turn a big value into REP_TOO_BIG instead of XATTR2BIG). */
static size_t nfs4_xattr_reply_room(const struct nfs4_compound *c)
{
    const struct xdr_enc *x = c->enc;
    size_t left = xdr_enc_left(x);
    if (c->max_reply) {
        size_t used = (size_t)(x->p - c->reply_start);
        size_t session = used < c->max_reply ? c->max_reply - used : 0;
        if (session < left)
            left = session;
    }
    return left;
}

/* ---- GETXATTR ---- */

/* GETXATTR4res in place: status, value length, value read straight into the reply. */
NFS4_OP(getxattr)
{
    const GETXATTR4args *a = &arg->opgetxattr;
    struct stat st;
    (void)res;
    nfsstat4 s = nfs4_xattr_begin(c, &a->gxa_name, &st);
    if (s != NFS4_OK)
        return s;
    struct xdr_enc *x = c->enc;
    uint8_t *mark = x->p;
    uint8_t *head = xdr_enc_reserve(x, 8);
    if (!head) {
        c->direct_overflow = true;
        return NFS4_OK;
    }
    size_t room = nfs4_xattr_reply_room(c) & ~(size_t)3;
    if (room > FS_XATTR_SIZE_MAX)
        room = FS_XATTR_SIZE_MAX;
    size_t len = 0;
    const struct nfs4_fh *f = &c->cur;
    int err = NFS4_FS(f, getxattr, &f->cred, &f->fh, (const char *)a->gxa_name.val, a->gxa_name.len, x->p, room,
                      &len);
    if (err) {
        x->p = mark;
        return nfs4_errno(err); /* -ERANGE: larger than the reply allows, XATTR2BIG */
    }
    if (len > room) { /* a backend must not, but the reply must stay sound */
        x->p = mark;
        return NFS4ERR_SERVERFAULT;
    }
    xdr_enc_shrink(x, x->p, (uint32_t)len);
    xdr_put_be32(head, NFS4_OK);
    xdr_put_be32(head + 4, (uint32_t)len);
    return NFS4_OK;
}

/* ---- SETXATTR and REMOVEXATTR ---- */

static enum fs_xattr_how nfs4_xattr_how(setxattr_option4 option)
{
    switch (option) {
    case SETXATTR4_CREATE:
        return FS_XATTR_CREATE;
    case SETXATTR4_REPLACE:
        return FS_XATTR_REPLACE;
    default:
        return FS_XATTR_EITHER;
    }
}

/* A change of the object's xattrs: delegations of other clients are recalled first
 * (holders cache the change attribute, which the change moves), as for SETATTR. */
static nfsstat4 nfs4_xattr_deleg_check(struct nfs4_compound *c)
{
    size_t klen;
    const void *key = nfs4_file_key(&c->cur, &klen);
    return nfs4_state_status(state_deleg_conflicts(c->srv->state, key, klen, nfs4_client(c), true));
}

static nfsstat4 nfs4_setxattr(struct nfs4_compound *c, const SETXATTR4args *a, change_info4 *ci)
{
    struct stat st;
    nfsstat4 s = nfs4_xattr_begin(c, &a->sxa_key, &st);
    if (s != NFS4_OK)
        return s;
    /* The engine refuses MODIFIES ops on read-only exports; kept should the table and
     * the op disagree. */
    if (nfs4_fh_read_only(&c->cur))
        return NFS4ERR_ROFS;
    if (a->sxa_value.len > FS_XATTR_SIZE_MAX)
        return NFS4ERR_XATTR2BIG;
    s = nfs4_xattr_deleg_check(c);
    if (s != NFS4_OK)
        return s;
    const struct nfs4_fh *f = &c->cur;
    int err = NFS4_FS(f, setxattr, &f->cred, &f->fh, (const char *)a->sxa_key.val, a->sxa_key.len,
                      a->sxa_value.val, a->sxa_value.len, nfs4_xattr_how(a->sxa_option));
    if (err)
        return nfs4_errno(err);
    nfs4_cinfo(f, &st, ci);
    return NFS4_OK;
}

NFS4_OP(setxattr)
{
    SETXATTR4res *r = &res->opsetxattr;
    return r->sxr_status = nfs4_setxattr(c, &arg->opsetxattr, &r->sxr_info);
}

static nfsstat4 nfs4_removexattr(struct nfs4_compound *c, const REMOVEXATTR4args *a, change_info4 *ci)
{
    struct stat st;
    nfsstat4 s = nfs4_xattr_begin(c, &a->rxa_name, &st);
    if (s != NFS4_OK)
        return s;
    if (nfs4_fh_read_only(&c->cur))
        return NFS4ERR_ROFS;
    s = nfs4_xattr_deleg_check(c);
    if (s != NFS4_OK)
        return s;
    const struct nfs4_fh *f = &c->cur;
    int err = NFS4_FS(f, removexattr, &f->cred, &f->fh, (const char *)a->rxa_name.val, a->rxa_name.len);
    if (err)
        return nfs4_errno(err);
    nfs4_cinfo(f, &st, ci);
    return NFS4_OK;
}

NFS4_OP(removexattr)
{
    REMOVEXATTR4res *r = &res->opremovexattr;
    return r->rxr_status = nfs4_removexattr(c, &arg->opremovexattr, &r->rxr_info);
}

/* ---- LISTXATTRS ---- */

struct nfs4_xattr_name {
    const char *name;
    uint32_t len;
};

/* A whole listing: the backend's NUL-terminated names, indexed and sorted. */
struct nfs4_xattr_list {
    char *buf;
    struct nfs4_xattr_name *names;
    uint32_t n;
};

static int nfs4_xattr_name_cmp(const void *a, const void *b)
{
    const struct nfs4_xattr_name *x = a, *y = b;
    uint32_t n = x->len < y->len ? x->len : y->len;
    int d = memcmp(x->name, y->name, n);
    return d ? d : (x->len > y->len) - (x->len < y->len);
}

static void nfs4_xattr_list_free(struct nfs4_xattr_list *l)
{
    free(l->names);
    free(l->buf);
}

/* Index the names of buf[0..len) (each NUL-terminated; empty ones skipped). */
static nfsstat4 nfs4_xattr_list_index(struct nfs4_xattr_list *l, size_t len)
{
    size_t count = 0;
    for (size_t i = 0; i < len; i++)
        count += l->buf[i] == '\0';
    l->names = calloc(count ? count : 1, sizeof(*l->names));
    if (!l->names)
        return NFS4ERR_RESOURCE;
    for (size_t i = 0; i < len;) {
        size_t n = strnlen(l->buf + i, len - i);
        if (n > 0 && n <= NFS4_NAME_MAX) /* a backend's longer name cannot be a component4 */
            l->names[l->n++] = (struct nfs4_xattr_name){l->buf + i, (uint32_t)n};
        i += n + 1;
    }
    qsort(l->names, l->n, sizeof(*l->names), nfs4_xattr_name_cmp);
    return NFS4_OK;
}

static nfsstat4 nfs4_xattr_list_read(struct nfs4_compound *c, struct nfs4_xattr_list *l)
{
    memset(l, 0, sizeof(*l));
    l->buf = malloc(FS_XATTR_LIST_MAX);
    if (!l->buf)
        return NFS4ERR_RESOURCE;
    size_t len = 0;
    const struct nfs4_fh *f = &c->cur;
    int err = NFS4_FS(f, listxattr, &f->cred, &f->fh, l->buf, FS_XATTR_LIST_MAX, &len);
    if (err)
        return nfs4_errno(err);
    if (len > FS_XATTR_LIST_MAX)
        return NFS4ERR_SERVERFAULT;
    return nfs4_xattr_list_index(l, len);
}

/*
 * LISTXATTRS4res in place from entry `cookie` on: status, cookie, names, eof. Names
 * stop at la_maxcount (TOOSMALL when not even the first fits) or at the end of the
 * reply (REP_TOO_BIG through direct_overflow when not even the first fits).
 */
static nfsstat4 nfs4_listxattrs_encode(struct nfs4_compound *c, const struct nfs4_xattr_list *l,
                                       const LISTXATTRS4args *a)
{
    /* cookie (8), name count (4), eof (4): what even an empty answer holds */
    const uint32_t fixed = 16;
    if (a->lxa_maxcount < fixed)
        return NFS4ERR_TOOSMALL;
    struct xdr_enc *x = c->enc;
    uint8_t *mark = x->p;
    size_t room = nfs4_xattr_reply_room(c);
    uint8_t *head = room >= 4 + fixed ? xdr_enc_reserve(x, 4 + 8 + 4) : NULL;
    if (!head) {
        c->direct_overflow = true;
        return NFS4_OK;
    }
    size_t budget = a->lxa_maxcount - fixed;
    size_t buffer = room - 4 - fixed;
    uint64_t i = a->lxa_cookie;
    uint32_t count = 0;
    for (; i < l->n && count < PEERNFS4_MAX_XATTRS; i++, count++) {
        const struct nfs4_xattr_name *nm = &l->names[i];
        size_t need = 4 + XDR_ROUNDUP(nm->len);
        if (need > budget || need > buffer) {
            if (count > 0)
                break;
            x->p = mark;
            if (need > budget)
                return NFS4ERR_TOOSMALL;
            c->direct_overflow = true;
            return NFS4_OK;
        }
        if (!xdr_enc_opaque(x, nm->name, nm->len, 0)) { /* room was checked */
            x->p = mark;
            return NFS4ERR_SERVERFAULT;
        }
        budget -= need;
        buffer -= need;
    }
    bool eof = i >= l->n;
    xdr_put_be32(head, NFS4_OK);
    xdr_put_be32(head + 4, (uint32_t)(i >> 32));
    xdr_put_be32(head + 8, (uint32_t)i);
    xdr_put_be32(head + 12, count);
    if (!xdr_enc_u32(x, eof)) {
        x->p = mark;
        return NFS4ERR_SERVERFAULT;
    }
    return NFS4_OK;
}

NFS4_OP(listxattrs)
{
    const LISTXATTRS4args *a = &arg->oplistxattrs;
    struct stat st;
    (void)res;
    nfsstat4 s = nfs4_xattr_begin(c, NULL, &st);
    if (s != NFS4_OK)
        return s;
    /* The kernel lists to anyone; reading names is reading the object (XALIST is a
     * read access, RFC 8276 8.4.3), so the caller needs read permission. */
    int err = NFS4_FS(&c->cur, permission, &c->cur.cred, &st, FS_MAY_READ);
    if (err)
        return nfs4_errno(err);
    struct nfs4_xattr_list l;
    s = nfs4_xattr_list_read(c, &l);
    if (s == NFS4_OK && a->lxa_cookie > l.n)
        s = NFS4ERR_BAD_COOKIE;
    if (s == NFS4_OK)
        s = nfs4_listxattrs_encode(c, &l, a);
    nfs4_xattr_list_free(&l);
    return s;
}
