/*
 * The directory operations: READDIR, CREATE, REMOVE, RENAME, LINK and READLINK
 * (RFC 7530 16.24, 16.4, 16.26, 16.27, 16.9, 16.25; RFC 8881 18.23, 18.4, 18.25,
 * 18.26, 18.9, 18.24).
 *
 * Ops that change a directory return change_info4 with the directory's change
 * attribute before and after, computed as the attribute layer computes CHANGE (so a
 * client can match them with GETATTR), and atomic = false: the backend gives no way to
 * read both around the change atomically, and a false atomic makes clients revalidate
 * the directory rather than trust the pair.
 *
 * Names the client chooses (CREATE, REMOVE, RENAME, LINK) go through nfs4_check_name,
 * which also refuses "." and ".." with BADNAME, as knfsd does.
 */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "nfs4/nfs4_attr.h"
#include "nfs4/nfs4_io.h"

/* Modes for objects created without a mode attribute. */
#define NFS4_DEFAULT_DIR_MODE 0755
#define NFS4_DEFAULT_NODE_MODE 0644

/* ------------------------------------------------------------------------------ */
/* Shared by the ops that change directories                                       */
/* ------------------------------------------------------------------------------ */

/* A directory of an export that an op is about to change: its attributes in st. The
 * pseudo filesystem is read-only (the engine refuses MODIFIES ops there already). */
static nfsstat4 nfs4_dir_begin(const struct nfs4_compound *c, const struct nfs4_fh *f, struct stat *st)
{
    switch (f->kind) {
    case NFS4_FH_NONE:
        return NFS4ERR_NOFILEHANDLE;
    case NFS4_FH_PSEUDO:
        return NFS4ERR_ROFS;
    case NFS4_FH_EXPORT:
        break;
    }
    if (nfs4_fh_read_only(f))
        return NFS4ERR_ROFS;
    nfsstat4 s = nfs4_fh_getattr(f, st);
    if (s != NFS4_OK)
        return s;
    return nfs4_want_type(c->minor, st->st_mode, S_IFDIR);
}

/* change_info4 of a directory (or, for the xattr ops, of the object): `before` from its
 * attributes taken before the change, `after` read now. When they cannot be read the
 * client still learns that something changed: after = before + 1 (atomic is false, so it
 * revalidates anyway). */
void nfs4_cinfo(const struct nfs4_fh *dir, const struct stat *before, change_info4 *ci)
{
    struct stat now;
    ci->atomic = false;
    ci->before = nfs4_attr_change_from_stat(before);
    if (nfs4_fh_getattr(dir, &now) == NFS4_OK)
        ci->after = nfs4_attr_change_from_stat(&now);
    else
        ci->after = ci->before + 1;
}

static const char *nfs4_name(const component4 *name)
{
    return (const char *)name->val;
}

/*
 * Before an object's name goes away or changes (REMOVE, RENAME) or it gets a new one
 * (LINK): recall conflicting delegations of other clients. DELAY while a recall runs;
 * the client retries. Directories carry no delegations here.
 */
static nfsstat4 nfs4_break_delegations(struct nfs4_compound *c, const struct nfs4_fh *dir,
                                       const struct fs_fh *obj)
{
    if (!c->srv->state)
        return NFS4_OK;
    struct nfs4_fh f;
    nfs4_fh_set_export(c, dir, obj, &f);
    size_t len;
    const void *key = nfs4_file_key(&f, &len);
    return nfs4_state_status(state_deleg_conflicts(c->srv->state, key, len, nfs4_client(c), true));
}

/* The object a name in `dir` refers to, for delegation checks; NFS4_OK with
 * *found = false when there is none. */
static nfsstat4 nfs4_dir_lookup(const struct nfs4_fh *dir, const component4 *name, struct fs_fh *out,
                                struct stat *st, bool *found)
{
    int err = NFS4_FS(dir, lookup, &dir->cred, &dir->fh, nfs4_name(name), name->len, out, st);
    *found = err == 0;
    return err == -ENOENT ? NFS4_OK : nfs4_errno(err);
}

/* ------------------------------------------------------------------------------ */
/* CREATE                                                                          */
/* ------------------------------------------------------------------------------ */

/* The type CREATE makes: regular files are made by OPEN (BADTYPE), and named
 * attributes are not offered. */
static nfsstat4 nfs4_create_type(const createtype4 *t, mode_t *fmt, dev_t *rdev)
{
    *rdev = 0;
    switch (t->type) {
    case NF4DIR:
        *fmt = S_IFDIR;
        return NFS4_OK;
    case NF4LNK:
        *fmt = S_IFLNK;
        return NFS4_OK;
    case NF4BLK:
    case NF4CHR:
        *fmt = t->type == NF4BLK ? S_IFBLK : S_IFCHR;
        *rdev = makedev(t->devdata.specdata1, t->devdata.specdata2);
        return NFS4_OK;
    case NF4SOCK:
        *fmt = S_IFSOCK;
        return NFS4_OK;
    case NF4FIFO:
        *fmt = S_IFIFO;
        return NFS4_OK;
    default:
        return NFS4ERR_BADTYPE;
    }
}

/* A symlink's target: what symlink(2) accepts. */
static nfsstat4 nfs4_check_linkdata(const linktext4 *l)
{
    if (l->len == 0)
        return NFS4ERR_INVAL;
    if (l->len >= NFS4_LINK_MAX)
        return NFS4ERR_NAMETOOLONG;
    if (memchr(l->val, '\0', l->len))
        return NFS4ERR_INVAL;
    return NFS4_OK;
}

/* The mode-carrying attributes: taken by the create call itself. */
static const unsigned nfs4_mode_attrs[] = {NFS4_ATTR_MODE, NFS4_ATTR_MODE_SET_MASKED, NFS4_ATTR_MODE_UMASK};

static void nfs4_attrset_keep_mode(uint32_t attrset[NFS4_ATTR_WORDS], bool keep_mode)
{
    uint32_t kept[NFS4_ATTR_WORDS] = {0};
    for (size_t i = 0; keep_mode && i < sizeof(nfs4_mode_attrs) / sizeof(nfs4_mode_attrs[0]); i++)
        if (nfs4_bitmap_isset(attrset, NFS4_ATTR_WORDS, nfs4_mode_attrs[i]))
            nfs4_bitmap_set(kept, nfs4_mode_attrs[i]);
    memcpy(attrset, kept, sizeof(kept));
}

struct nfs4_create {
    mode_t fmt;
    dev_t rdev;
    struct nfs4_attr_set set;
    uint32_t attrset[NFS4_ATTR_WORDS];
    struct fs_fh fh;
    struct stat st;
};

/* Decode createattrs: what to apply, and the attrset to answer. */
static nfsstat4 nfs4_create_attrs(const struct nfs4_compound *c, const fattr4 *fa, struct nfs4_create *k)
{
    memset(k->attrset, 0, sizeof(k->attrset));
    int rc = nfs4_attr_decode_set(fa->attrmask.val, fa->attrmask.len, fa->attr_vals.val, fa->attr_vals.len,
                                  &k->set, k->attrset, c->minor);
    if (rc != 0)
        return (nfsstat4)rc;
    /* None of the types CREATE makes has a size to set. */
    if (k->set.mask & NFS4_SET_SIZE)
        return NFS4ERR_INVAL;
    return NFS4_OK;
}

/* Make the object with its mode; then set the other attributes. A failure there keeps
 * the object (as knfsd) and only narrows attrset to what was set (RFC 8881 18.4.3). */
static nfsstat4 nfs4_create_object(struct nfs4_compound *c, const CREATE4args *a, struct nfs4_create *k)
{
    const struct nfs4_fh *dir = &c->cur;
    mode_t dflt = k->fmt == S_IFDIR ? NFS4_DEFAULT_DIR_MODE : NFS4_DEFAULT_NODE_MODE;
    struct fs_setattr sa;
    nfs4_attr_set_to_fs(&k->set, dflt, &sa);
    mode_t mode = (sa.mask & FS_SET_MODE) ? sa.mode & 07777 : dflt;
    sa.mask &= ~(unsigned)FS_SET_MODE;

    const char *name = nfs4_name(&a->objname);
    int err;
    switch (k->fmt) {
    case S_IFDIR:
        err = NFS4_FS(dir, mkdir, &dir->cred, &dir->fh, name, a->objname.len, mode, &k->fh, &k->st);
        break;
    case S_IFLNK:
        err = NFS4_FS(dir, symlink, &dir->cred, &dir->fh, name, a->objname.len,
                      (const char *)a->objtype.linkdata.val, a->objtype.linkdata.len, &k->fh, &k->st);
        break;
    default:
        err = NFS4_FS(dir, mknod, &dir->cred, &dir->fh, name, a->objname.len, k->fmt | mode, k->rdev, &k->fh,
                      &k->st);
        break;
    }
    if (err)
        return nfs4_errno(err);
    /* Linux symlinks have no mode of their own: it was not set. */
    bool mode_set = k->fmt != S_IFLNK;
    if (!mode_set)
        nfs4_attrset_keep_mode(k->attrset, false);
    if (sa.mask && NFS4_FS(dir, setattr, &dir->cred, &k->fh, &sa, &k->st) != 0)
        nfs4_attrset_keep_mode(k->attrset, mode_set);
    return NFS4_OK;
}

/*
 * attrset must outlive the handler (the engine encodes the result afterwards): it goes
 * into the request's own createattrs bitmap, which lives as long as the request and has
 * room for it, attrset being a subset of the bits asked for.
 */
static void nfs4_attrset_result(bitmap4 *request, const uint32_t attrset[NFS4_ATTR_WORDS], bitmap4 *out)
{
    for (uint32_t i = 0; i < request->len; i++)
        request->val[i] = i < NFS4_ATTR_WORDS ? attrset[i] : 0;
    *out = *request;
}

NFS4_OP(create)
{
    CREATE4args *a = &arg->opcreate;
    CREATE4res *r = &res->opcreate;
    struct nfs4_create k;
    struct stat dst;

    nfsstat4 s = nfs4_dir_begin(c, &c->cur, &dst);
    if (s == NFS4_OK)
        s = nfs4_check_name(&a->objname);
    if (s == NFS4_OK)
        s = nfs4_create_type(&a->objtype, &k.fmt, &k.rdev);
    if (s == NFS4_OK && k.fmt == S_IFLNK)
        s = nfs4_check_linkdata(&a->objtype.linkdata);
    if (s == NFS4_OK)
        s = nfs4_create_attrs(c, &a->createattrs, &k);
    if (s == NFS4_OK)
        s = nfs4_create_object(c, a, &k);
    if (s != NFS4_OK)
        return r->status = s;
    nfs4_cinfo(&c->cur, &dst, &r->resok4.cinfo);
    nfs4_attrset_result(&a->createattrs.attrmask, k.attrset, &r->resok4.attrset);
    /* The new object becomes the current filehandle (RFC 8881 18.4.3). */
    nfs4_fh_set_export(c, &c->cur, &k.fh, &c->cur);
    c->have_cur_stateid = false;
    return r->status = NFS4_OK;
}

/* ------------------------------------------------------------------------------ */
/* REMOVE, RENAME, LINK                                                            */
/* ------------------------------------------------------------------------------ */

/* Remove a file or a directory (REMOVE does both): rmdir or unlink semantics by what
 * the name is now, once more the other way should it change type in between. */
static nfsstat4 nfs4_remove_name(struct nfs4_compound *c, const component4 *name)
{
    const struct nfs4_fh *dir = &c->cur;
    struct fs_fh fh;
    struct stat st;
    bool found;
    nfsstat4 s = nfs4_dir_lookup(dir, name, &fh, &st, &found);
    if (s != NFS4_OK)
        return s;
    if (!found)
        return NFS4ERR_NOENT;
    s = nfs4_break_delegations(c, dir, &fh);
    if (s != NFS4_OK)
        return s;
    bool dir_only = S_ISDIR(st.st_mode);
    int err = NFS4_FS(dir, remove, &dir->cred, &dir->fh, nfs4_name(name), name->len, dir_only);
    if (err == -EISDIR || err == -ENOTDIR)
        err = NFS4_FS(dir, remove, &dir->cred, &dir->fh, nfs4_name(name), name->len, !dir_only);
    return nfs4_errno(err);
}

NFS4_OP(remove)
{
    const REMOVE4args *a = &arg->opremove;
    REMOVE4res *r = &res->opremove;
    struct stat dst;

    nfsstat4 s = nfs4_dir_begin(c, &c->cur, &dst);
    if (s == NFS4_OK)
        s = nfs4_check_name(&a->target);
    if (s == NFS4_OK)
        s = nfs4_remove_name(c, &a->target);
    if (s != NFS4_OK)
        return r->status = s;
    nfs4_cinfo(&c->cur, &dst, &r->resok4.cinfo);
    return r->status = NFS4_OK;
}

/* The saved filehandle of RENAME and LINK: in the current filehandle's export. */
static nfsstat4 nfs4_saved_same_export(const struct nfs4_compound *c)
{
    if (c->saved.kind == NFS4_FH_NONE)
        return NFS4ERR_NOFILEHANDLE;
    if (c->saved.kind != NFS4_FH_EXPORT || c->saved.ex != c->cur.ex)
        return NFS4ERR_XDEV;
    return NFS4_OK;
}

/* rename(2)'s errors where RFC 8881 18.26.4 wants EXIST: the target is a non-empty
 * directory, or a directory and a non-directory meet (as knfsd maps them). */
static nfsstat4 nfs4_rename_status(int err)
{
    if (err == -ENOTEMPTY || err == -EISDIR || err == -ENOTDIR)
        return NFS4ERR_EXIST;
    return nfs4_errno(err);
}

static nfsstat4 nfs4_rename_names(struct nfs4_compound *c, const RENAME4args *a)
{
    const struct nfs4_fh *from = &c->saved, *to = &c->cur;
    struct fs_fh fh;
    struct stat st;
    bool found;
    nfsstat4 s = nfs4_dir_lookup(from, &a->oldname, &fh, &st, &found);
    if (s != NFS4_OK)
        return s;
    if (!found)
        return NFS4ERR_NOENT;
    s = nfs4_break_delegations(c, from, &fh);
    if (s != NFS4_OK)
        return s;
    /* A file the new name replaces loses its name too. */
    s = nfs4_dir_lookup(to, &a->newname, &fh, &st, &found);
    if (s == NFS4_OK && found)
        s = nfs4_break_delegations(c, to, &fh);
    if (s != NFS4_OK)
        return s;
    return nfs4_rename_status(NFS4_FS(from, rename, &from->cred, &from->fh, nfs4_name(&a->oldname),
                                      a->oldname.len, &to->fh, nfs4_name(&a->newname), a->newname.len));
}

/* RENAME: saved filehandle = source directory, current = target directory. */
NFS4_OP(rename)
{
    const RENAME4args *a = &arg->oprename;
    RENAME4res *r = &res->oprename;
    struct stat from_st, to_st;

    nfsstat4 s = nfs4_saved_same_export(c);
    if (s == NFS4_OK)
        s = nfs4_dir_begin(c, &c->saved, &from_st);
    if (s == NFS4_OK)
        s = nfs4_dir_begin(c, &c->cur, &to_st);
    if (s == NFS4_OK)
        s = nfs4_check_name(&a->oldname);
    if (s == NFS4_OK)
        s = nfs4_check_name(&a->newname);
    if (s == NFS4_OK)
        s = nfs4_rename_names(c, a);
    if (s != NFS4_OK)
        return r->status = s;
    nfs4_cinfo(&c->saved, &from_st, &r->resok4.source_cinfo);
    nfs4_cinfo(&c->cur, &to_st, &r->resok4.target_cinfo);
    return r->status = NFS4_OK;
}

/* LINK: saved filehandle = the file, current = the directory of the new name. */
NFS4_OP(link)
{
    const LINK4args *a = &arg->oplink;
    LINK4res *r = &res->oplink;
    const struct nfs4_fh *file = &c->saved, *dir = &c->cur;
    struct stat dst, fst;

    nfsstat4 s = nfs4_saved_same_export(c);
    if (s == NFS4_OK)
        s = nfs4_dir_begin(c, dir, &dst);
    if (s == NFS4_OK)
        s = nfs4_fh_getattr(file, &fst);
    if (s == NFS4_OK && S_ISDIR(fst.st_mode))
        s = NFS4ERR_ISDIR;
    if (s == NFS4_OK)
        s = nfs4_check_name(&a->newname);
    if (s == NFS4_OK)
        s = nfs4_break_delegations(c, file, &file->fh);
    if (s == NFS4_OK)
        s = nfs4_errno(NFS4_FS(dir, link, &dir->cred, &file->fh, &dir->fh, nfs4_name(&a->newname),
                               a->newname.len));
    if (s != NFS4_OK)
        return r->status = s;
    nfs4_cinfo(dir, &dst, &r->resok4.cinfo);
    return r->status = NFS4_OK;
}

/* ------------------------------------------------------------------------------ */
/* READLINK                                                                        */
/* ------------------------------------------------------------------------------ */

/* DIRECT: the target is read into a stack buffer, so it is encoded here, before the
 * buffer goes. Anything but a symlink is INVAL (RFC 8881 18.24.3). */
NFS4_OP(readlink)
{
    struct stat st;
    char target[NFS4_LINK_MAX];
    size_t len = 0;
    (void)arg, (void)res;

    if (c->cur.kind != NFS4_FH_EXPORT)
        return c->cur.kind == NFS4_FH_PSEUDO ? NFS4ERR_INVAL : NFS4ERR_NOFILEHANDLE;
    nfsstat4 s = nfs4_fh_getattr(&c->cur, &st);
    if (s != NFS4_OK)
        return s;
    if (!S_ISLNK(st.st_mode))
        return NFS4ERR_INVAL;
    s = nfs4_errno(NFS4_FS(&c->cur, readlink, &c->cur.fh, target, sizeof(target), &len));
    if (s != NFS4_OK)
        return s;
    struct xdr_enc *x = c->enc;
    uint8_t *mark = x->p;
    if (!xdr_enc_u32(x, NFS4_OK) || !xdr_enc_opaque(x, target, (uint32_t)len, 0)) {
        x->p = mark;
        c->direct_overflow = true;
    }
    return NFS4_OK;
}

/* ------------------------------------------------------------------------------ */
/* READDIR                                                                         */
/* ------------------------------------------------------------------------------ */

/*
 * Cookies: 0 starts a listing, 1 and 2 are reserved (RFC 8881 18.23.3: they stand for
 * "." and ".." in some clients). The backend's cookies (d_off values, below 2^63) are
 * shifted up by 2, so the first cookie we hand out is at least 3 and every one maps
 * back exactly. Pseudo directories use index + 3.
 */
#define NFS4_COOKIE_SHIFT 2u

/* The cookie verifier names the directory only, like NFSv3's: the backend's cookies
 * stay valid while the directory changes (rm -r changes it while listing it). */
static void nfs4_cookieverf(const struct nfs4_fh *dir, const struct stat *st, verifier4 verf)
{
    uint64_t v;
    if (dir->kind == NFS4_FH_PSEUDO)
        v = dir->node->id | 1u;
    else
        v = (uint64_t)st->st_ino ^ ((uint64_t)dir->ex->id << 48);
    if (v == 0)
        v = 1; /* zero means "no verifier" */
    xdr_put_be32(verf, (uint32_t)(v >> 32));
    xdr_put_be32(verf + 4, (uint32_t)v);
}

/* Cookie and verifier checks: BAD_COOKIE for the reserved cookies; a verifier that is
 * neither zero nor this directory's is NOT_SAME (cookie 0 ignores it, as clients that
 * restart a listing may send their old one). */
static nfsstat4 nfs4_readdir_check_cookie(const READDIR4args *a, const verifier4 ours)
{
    static const verifier4 zero;
    if (a->cookie == 1 || a->cookie == 2)
        return NFS4ERR_BAD_COOKIE;
    if (a->cookie == 0 || memcmp(a->cookieverf, zero, sizeof(zero)) == 0 ||
        memcmp(a->cookieverf, ours, sizeof(zero)) == 0)
        return NFS4_OK;
    return NFS4ERR_NOT_SAME;
}

/* Attributes a directory entry gives without a stat of the object. */
static bool nfs4_dirent_attrs_only(const uint32_t *req, uint32_t nwords)
{
    static const unsigned cheap[] = {NFS4_ATTR_TYPE, NFS4_ATTR_FILEID, NFS4_ATTR_MOUNTED_ON_FILEID,
                                     NFS4_ATTR_RDATTR_ERROR};
    uint32_t mask[NFS4_ATTR_WORDS] = {0};
    for (size_t i = 0; i < sizeof(cheap) / sizeof(cheap[0]); i++)
        nfs4_bitmap_set(mask, cheap[i]);
    for (uint32_t w = 0; w < nwords; w++)
        if (req[w] & ~(w < NFS4_ATTR_WORDS ? mask[w] : 0))
            return false;
    return true;
}

struct nfs4_readdir {
    struct nfs4_compound *c;
    const struct nfs4_fh *dir;
    const uint32_t *req; /* attr_request */
    uint32_t nwords;
    bool plus;           /* entries need the backend's handle and attributes */
    bool want_rdattr_error;
    struct xdr_enc *x;
    uint8_t *list_tail;  /* the "no more entries" word after the last entry */
    uint8_t *limit;      /* entries end before this (room for eof is kept) */
    uint64_t dir_room;   /* dircount bytes left */
    unsigned nentries;
    bool stopped;        /* an entry did not fit */
    nfsstat4 error;      /* an entry failed the whole READDIR */
    /* one statfs per reply for the space attributes */
    bool have_sf;
    int sf_err;
    struct fs_statfs sf;
};

static int nfs4_readdir_statfs(void *ctx, struct fs_statfs *out)
{
    struct nfs4_readdir *r = ctx;
    if (!r->have_sf) {
        r->sf_err = NFS4_FS(r->dir, statfs, &r->dir->fh, &r->sf);
        r->have_sf = true;
    }
    if (r->sf_err)
        return (int)nfs4_errno(r->sf_err);
    *out = r->sf;
    return 0;
}

/* Bytes of directory information an entry takes, as dircount counts them (cookie,
 * name, and the list word). */
static uint64_t nfs4_entry_dirbytes(uint32_t namelen)
{
    return 4 + 8 + 4 + XDR_ROUNDUP(namelen);
}

/*
 * Append one entry (cookie, name, fattr4, then a new "no more entries" word) and turn
 * the previous end word into "one more". Returns 0 (appended or skipped), 1 (did not
 * fit: stop) or -1 (r->error set).
 */
static int nfs4_readdir_put(struct nfs4_readdir *r, uint64_t cookie, const char *name, uint32_t namelen,
                            const struct nfs4_attr_src *src)
{
    uint64_t dirbytes = nfs4_entry_dirbytes(namelen);
    /* dircount never keeps out the first entry: a reply without one helps nobody */
    if (r->nentries > 0 && dirbytes > r->dir_room)
        goto stop;
    struct xdr_enc e = {.start = r->x->start, .p = r->x->p, .end = r->limit};
    if (!xdr_enc_u64(&e, cookie) || !xdr_enc_opaque(&e, name, namelen, 0))
        goto stop;
    int rc = nfs4_attr_encode(&e, r->req, r->nwords, src, r->c->minor);
    if (rc == NFS4ATTR_ERR_NOSPACE)
        goto stop;
    if (rc != 0) {
        r->error = (nfsstat4)rc;
        return -1;
    }
    if (!xdr_enc_u32(&e, 0))
        goto stop;
    xdr_put_be32(r->list_tail, 1);
    r->list_tail = e.p - 4;
    r->x->p = e.p;
    r->nentries++;
    r->dir_room = dirbytes < r->dir_room ? r->dir_room - dirbytes : 0;
    return 0;
stop:
    r->stopped = true;
    return 1;
}

/* An entry whose attributes cannot be had: rdattr_error if the client asked for it,
 * else the whole READDIR fails with that error. */
static int nfs4_readdir_put_error(struct nfs4_readdir *r, uint64_t cookie, const char *name, uint32_t namelen,
                                  nfsstat4 err)
{
    if (!r->want_rdattr_error) {
        r->error = err;
        return -1;
    }
    struct nfs4_attr_src src;
    nfs4_attr_src_defaults(&src, NULL);
    src.rdattr_error = err;
    return nfs4_readdir_put(r, cookie, name, namelen, &src);
}

static bool nfs4_is_dot(const char *name, uint32_t len)
{
    return (len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.');
}

/* fs readdir callback for export directories. */
static int nfs4_readdir_entry(void *arg, const struct fs_dirent *de)
{
    struct nfs4_readdir *r = arg;
    if (nfs4_is_dot(de->name, de->namelen)) /* not part of an NFSv4 listing */
        return 0;
    if (de->cookie > UINT64_MAX - NFS4_COOKIE_SHIFT)
        return -EOVERFLOW;
    uint64_t cookie = de->cookie + NFS4_COOKIE_SHIFT;

    struct fs_fh fh;
    struct stat st;
    const struct fs_fh *fhp = de->fh;
    const struct stat *stp = de->st;
    if (!r->plus && de->type != DT_UNKNOWN) {
        /* only type and fileid are asked for: the entry itself has them */
        memset(&st, 0, sizeof(st));
        st.st_mode = DTTOIF(de->type);
        st.st_ino = de->fileid;
        stp = &st;
    } else if (!fhp || !stp) {
        /* a name the listing saw but the backend could not vouch for: look once more */
        int err = NFS4_FS(r->dir, lookup, &r->dir->cred, &r->dir->fh, de->name, de->namelen, &fh, &st);
        if (err == -ENOENT)
            return 0; /* removed since it was listed: not an entry any more */
        if (err)
            return nfs4_readdir_put_error(r, cookie, de->name, de->namelen, nfs4_errno(err)) < 0 ? -EIO : 0;
        fhp = &fh;
        stp = &st;
    }
    struct nfs4_fh f;
    struct nfs4_attr_src src;
    if (fhp) {
        nfs4_fh_set_export(r->c, r->dir, fhp, &f);
        nfs4_fh_attr_src(r->c, &f, stp, &src);
    } else {
        /* No handle: the FILEHANDLE attribute is left out, and the source must not
         * pass for the directory itself (an export root's mounted_on_fileid). */
        struct nfs4_fh nofh = *r->dir;
        nofh.wire_len = 0;
        nofh.fh.len = 0;
        nfs4_fh_attr_src(r->c, &nofh, stp, &src);
        src.fh_len = 0;
        src.mounted_on_fileid = stp->st_ino;
    }
    src.get_statfs = nfs4_readdir_statfs;
    src.statfs_ctx = r;
    int rc = nfs4_readdir_put(r, cookie, de->name, de->namelen, &src);
    return rc < 0 ? -EIO : rc;
}

/* A child of a pseudo directory: an export root (with that export's attributes and
 * the pseudo node's fileid as mounted_on_fileid) or another pseudo directory. */
static int nfs4_readdir_pseudo_child(struct nfs4_readdir *r, struct pseudo_node *n, uint64_t cookie)
{
    struct nfs4_compound *c = r->c;
    uint32_t namelen = (uint32_t)strlen(n->name);
    struct nfs4_fh f;
    struct stat st;
    struct nfs4_attr_src src;
    if (n->export) {
        nfsstat4 s = nfs4_fh_set_export_root(c, n->export, &f);
        if (s == NFS4_OK)
            s = nfs4_fh_getattr(&f, &st);
        if (s != NFS4_OK)
            return nfs4_readdir_put_error(r, cookie, n->name, namelen, s);
        nfs4_fh_attr_src(c, &f, &st, &src);
        src.mounted_on_fileid = pseudo_node_fileid(n);
    } else {
        nfs4_fh_set_pseudo(c, n, &f);
        pseudo_node_stat(&c->srv->pseudo, n, &st);
        nfs4_fh_attr_src(c, &f, &st, &src);
    }
    return nfs4_readdir_put(r, cookie, n->name, namelen, &src);
}

/* List a pseudo directory's visible children from `cookie`. */
static nfsstat4 nfs4_readdir_pseudo(struct nfs4_readdir *r, uint64_t cookie, bool *eof)
{
    const struct pseudo_node *dir = r->dir->node;
    uint64_t start = cookie ? cookie - NFS4_COOKIE_SHIFT : 0;
    *eof = true;
    for (uint64_t i = start; i < dir->nchildren; i++) {
        struct pseudo_node *n = dir->children[i];
        if (!pseudo_node_visible(n, r->c->call->peer))
            continue;
        int rc = nfs4_readdir_pseudo_child(r, n, i + 1 + NFS4_COOKIE_SHIFT);
        if (rc < 0)
            return r->error;
        if (rc > 0) {
            *eof = false;
            break;
        }
    }
    return NFS4_OK;
}

/* The end of the room for entries: maxcount bytes from `mark` (where READDIR4resok
 * starts), less the eof word, and never past the reply buffer. */
static uint8_t *nfs4_readdir_limit(const struct xdr_enc *x, const uint8_t *mark, uint32_t maxcount)
{
    uint8_t *end = x->end - 4;
    uint8_t *limit = (size_t)(end - mark) > maxcount ? (uint8_t *)mark + maxcount - 4 : end;
    if (maxcount < 4 || limit < x->p)
        limit = x->p;
    return limit;
}

/*
 * Encode the result in place: status, verifier, entries, eof. maxcount bounds the
 * READDIR4resok part, the status excluded (RFC 7530 16.24.4, RFC 8881 18.23.3); TOOSMALL
 * when not even one entry fits, REP_TOO_BIG / RESOURCE (through direct_overflow) when
 * the reply buffer is what is short.
 */
static nfsstat4 nfs4_readdir_encode(struct nfs4_readdir *r, const READDIR4args *a, const verifier4 verf)
{
    struct xdr_enc *x = r->x;
    uint8_t *mark = x->p;
    /* Even an empty listing needs a verifier, an empty list and eof: 16 bytes. */
    if (a->maxcount < NFS4_VERIFIER_SIZE + 4 + 4)
        return NFS4ERR_TOOSMALL;
    if (!xdr_enc_u32(x, NFS4_OK) || !xdr_enc_fixed(x, verf, NFS4_VERIFIER_SIZE) || !xdr_enc_u32(x, 0) ||
        xdr_enc_left(x) < 4) {
        x->p = mark;
        r->c->direct_overflow = true;
        return NFS4_OK;
    }
    r->list_tail = x->p - 4;
    r->limit = nfs4_readdir_limit(x, mark + 4, a->maxcount);
    bool buffer_bound = r->limit == x->end - 4;

    bool eof = false;
    nfsstat4 s;
    if (r->dir->kind == NFS4_FH_PSEUDO) {
        s = nfs4_readdir_pseudo(r, a->cookie, &eof);
    } else {
        unsigned flags = r->plus ? FS_READDIR_PLUS : 0;
        uint64_t cookie = a->cookie ? a->cookie - NFS4_COOKIE_SHIFT : 0;
        int err = NFS4_FS(r->dir, readdir, &r->dir->cred, &r->dir->fh, cookie, flags, nfs4_readdir_entry, r, &eof);
        s = r->error != NFS4_OK ? r->error : nfs4_errno(err);
    }
    if (s == NFS4_OK && r->nentries == 0 && r->stopped) {
        if (buffer_bound) {
            x->p = mark;
            r->c->direct_overflow = true;
            return NFS4_OK;
        }
        s = NFS4ERR_TOOSMALL;
    }
    if (s != NFS4_OK) {
        x->p = mark;
        return s;
    }
    xdr_put_be32(x->p, eof && !r->stopped); /* the limit kept room for it */
    x->p += 4;
    return NFS4_OK;
}

NFS4_OP(readdir)
{
    const READDIR4args *a = &arg->opreaddir;
    struct stat st;
    verifier4 verf;
    (void)res;

    if (c->cur.kind == NFS4_FH_PSEUDO) {
        pseudo_node_stat(&c->srv->pseudo, c->cur.node, &st);
    } else {
        nfsstat4 s = nfs4_fh_getattr(&c->cur, &st);
        if (s != NFS4_OK)
            return s;
        s = nfs4_want_type(c->minor, st.st_mode, S_IFDIR);
        if (s != NFS4_OK)
            return s;
    }
    nfs4_cookieverf(&c->cur, &st, verf);
    nfsstat4 s = nfs4_readdir_check_cookie(a, verf);
    if (s != NFS4_OK)
        return s;
    struct nfs4_readdir r = {
        .c = c,
        .dir = &c->cur,
        .req = a->attr_request.val,
        .nwords = a->attr_request.len,
        .want_rdattr_error = nfs4_bitmap_isset(a->attr_request.val, a->attr_request.len, NFS4_ATTR_RDATTR_ERROR),
        .x = c->enc,
        /* dircount 0: no separate limit */
        .dir_room = a->dircount ? a->dircount : UINT64_MAX,
        .error = NFS4_OK,
    };
    r.plus = !nfs4_dirent_attrs_only(r.req, r.nwords);
    return nfs4_readdir_encode(&r, a, verf);
}
