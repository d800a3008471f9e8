#include "client/nfs3_reply.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "xdr/mount_xdr.h"
#include "xdr/nfs3_xdr.h"
#include "xdr/rpcb_prot_xdr.h"

#define NAME_MAX_WIRE 1024 /* longest entry name accepted from a server */

static bool fh_from3(struct nfs_fh *out, const struct xdr_opaque *in)
{
    if (in->len == 0 || in->len > NFS3_FHSIZE)
        return false;
    out->len = in->len;
    memcpy(out->data, in->val, in->len);
    return true;
}

static void attr_from3(struct nfs_attr *a, const fattr3 *f)
{
    a->type = (enum nfs_ftype)f->type;
    a->mode = f->mode & 07777;
    a->nlink = f->nlink;
    a->uid = f->uid;
    a->gid = f->gid;
    a->size = f->size;
    a->used = f->used;
    a->rdev_major = f->rdev.specdata1;
    a->rdev_minor = f->rdev.specdata2;
    a->fsid = f->fsid;
    a->fileid = f->fileid;
    a->atime = (struct nfs_time){ f->atime.seconds, f->atime.nseconds };
    a->mtime = (struct nfs_time){ f->mtime.seconds, f->mtime.nseconds };
    a->ctime = (struct nfs_time){ f->ctime.seconds, f->ctime.nseconds };
}

int nfs3_reply_getport(struct xdr_dec *x, uint16_t *port)
{
    uint32_t p;
    if (!xdr_dec_u32(x, &p) || p > 65535)
        return -EBADMSG;
    *port = (uint16_t)p;
    return 0;
}

int nfs3_reply_getaddr(struct xdr_dec *x, uint16_t *port)
{
    struct xdr_string s;
    if (!xdr_dec_string(x, &s, 256))
        return -EBADMSG;
    *port = 0;
    if (s.len == 0)
        return 0; /* not registered */
    /* h1.h2...p1.p2: the last two dot-separated numbers are the port */
    char buf[257];
    memcpy(buf, s.val, s.len);
    buf[s.len] = 0;
    long part[2];
    char *end = buf + s.len;
    for (int i = 1; i >= 0; i--) {
        char *dot = end;
        while (dot > buf && dot[-1] != '.')
            dot--;
        if (dot == buf || dot == end || end - dot > 3)
            return -EBADMSG;
        part[i] = 0;
        for (char *c = dot; c < end; c++) {
            if (*c < '0' || *c > '9')
                return -EBADMSG;
            part[i] = part[i] * 10 + (*c - '0');
        }
        if (part[i] > 255)
            return -EBADMSG;
        end = dot - 1;
    }
    *port = (uint16_t)(part[0] * 256 + part[1]);
    return 0;
}

int nfs3_reply_mnt(struct xdr_dec *x, struct nfs_fh *fh)
{
    uint8_t mem[1024];
    struct xdr_arena arena;
    xdr_arena_init(&arena, mem, sizeof(mem));
    x->arena = &arena;
    mountres3 res;
    bool ok = xdr_decode_mountres3(x, &res);
    x->arena = NULL;
    if (!ok)
        return -EBADMSG;
    if (res.fhs_status != MNT3_OK)
        return (int)res.fhs_status;
    return fh_from3(fh, &res.mountinfo.fhandle) ? 0 : -EBADMSG;
}

int nfs3_reply_fsinfo(struct xdr_dec *x, uint32_t *rtmax, uint32_t *wtmax, uint32_t *dtpref)
{
    FSINFO3res res;
    if (!xdr_decode_FSINFO3res(x, &res))
        return -EBADMSG;
    if (res.status != NFS3_OK)
        return (int)res.status;
    *rtmax = res.resok.rtmax;
    *wtmax = res.resok.wtmax;
    *dtpref = res.resok.dtpref;
    return 0;
}

int nfs3_reply_getattr(struct xdr_dec *x, struct nfs_attr *attr)
{
    GETATTR3res res;
    if (!xdr_decode_GETATTR3res(x, &res))
        return -EBADMSG;
    if (res.status != NFS3_OK)
        return (int)res.status;
    if (attr)
        attr_from3(attr, &res.resok.obj_attributes);
    return 0;
}

int nfs3_reply_setattr(struct xdr_dec *x)
{
    SETATTR3res res;
    if (!xdr_decode_SETATTR3res(x, &res))
        return -EBADMSG;
    return (int)res.status;
}

int nfs3_reply_lookup(struct xdr_dec *x, struct nfs_fh *fh, struct nfs_attr *attr)
{
    LOOKUP3res res;
    if (!xdr_decode_LOOKUP3res(x, &res))
        return -EBADMSG;
    if (res.status != NFS3_OK)
        return (int)res.status;
    if (!fh_from3(fh, &res.resok.object.data))
        return -EBADMSG;
    if (attr) {
        if (!res.resok.obj_attributes.attributes_follow)
            return -ENODATA; /* the caller asks GETATTR */
        attr_from3(attr, &res.resok.obj_attributes.attributes);
    }
    return 0;
}

int nfs3_reply_read_ref(struct xdr_dec *x, uint32_t count, struct nfs_io_result *r,
                        const uint8_t **data)
{
    READ3res res;
    if (!xdr_decode_READ3res(x, &res))
        return -EBADMSG;
    if (res.status != NFS3_OK)
        return (int)res.status;
    if (res.resok.data.len > count || res.resok.count != res.resok.data.len)
        return -EBADMSG;
    *data = res.resok.data.val;
    r->count = res.resok.data.len;
    r->eof = res.resok.eof;
    return 0;
}

int nfs3_reply_read(struct xdr_dec *x, void *buf, uint32_t count, struct nfs_io_result *r)
{
    const uint8_t *data = NULL;
    int st = nfs3_reply_read_ref(x, count, r, &data);
    if (!st && r->count)
        memcpy(buf, data, r->count);
    return st;
}

int nfs3_reply_write(struct xdr_dec *x, uint32_t count, struct nfs_io_result *r)
{
    WRITE3res res;
    if (!xdr_decode_WRITE3res(x, &res))
        return -EBADMSG;
    if (res.status != NFS3_OK)
        return (int)res.status;
    if (res.resok.count > count)
        return -EBADMSG;
    r->count = res.resok.count;
    r->committed = (enum nfs_stable)res.resok.committed;
    memcpy(r->verf, res.resok.verf, sizeof(r->verf));
    return 0;
}

int nfs3_reply_commit(struct xdr_dec *x, struct nfs_io_result *r)
{
    COMMIT3res res;
    if (!xdr_decode_COMMIT3res(x, &res))
        return -EBADMSG;
    if (res.status != NFS3_OK)
        return (int)res.status;
    r->committed = NFS_FILE_SYNC;
    memcpy(r->verf, res.resok.verf, sizeof(r->verf));
    return 0;
}

/* CREATE3res, MKDIR3res and SYMLINK3res share one layout. */
int nfs3_reply_create(struct xdr_dec *x, uint32_t proc, struct nfs_fh *fh, bool *have_fh,
                      struct nfs_attr *attr)
{
    union {
        CREATE3res c;
        MKDIR3res m;
        SYMLINK3res s;
    } u;
    const post_op_fh3 *obj;
    const post_op_attr *oa;
    nfsstat3 st;
    if (proc == NFSPROC3_CREATE) {
        if (!xdr_decode_CREATE3res(x, &u.c))
            return -EBADMSG;
        st = u.c.status, obj = &u.c.resok.obj, oa = &u.c.resok.obj_attributes;
    } else if (proc == NFSPROC3_MKDIR) {
        if (!xdr_decode_MKDIR3res(x, &u.m))
            return -EBADMSG;
        st = u.m.status, obj = &u.m.resok.obj, oa = &u.m.resok.obj_attributes;
    } else if (proc == NFSPROC3_SYMLINK) {
        if (!xdr_decode_SYMLINK3res(x, &u.s))
            return -EBADMSG;
        st = u.s.status, obj = &u.s.resok.obj, oa = &u.s.resok.obj_attributes;
    } else {
        return -EINVAL;
    }
    if (st != NFS3_OK)
        return (int)st;
    *have_fh = obj->handle_follows;
    if (obj->handle_follows && !fh_from3(fh, &obj->handle.data))
        return -EBADMSG;
    if (attr && oa->attributes_follow)
        attr_from3(attr, &oa->attributes);
    else if (attr)
        *have_fh = false; /* the caller looks it up to get both */
    return 0;
}

int nfs3_reply_status(struct xdr_dec *x, uint32_t proc)
{
    union {
        REMOVE3res rm;
        RMDIR3res rd;
        RENAME3res rn;
        LINK3res ln;
    } u;
    bool ok;
    switch (proc) {
    case NFSPROC3_REMOVE: ok = xdr_decode_REMOVE3res(x, &u.rm); break;
    case NFSPROC3_RMDIR: ok = xdr_decode_RMDIR3res(x, &u.rd); break;
    case NFSPROC3_RENAME: ok = xdr_decode_RENAME3res(x, &u.rn); break;
    case NFSPROC3_LINK: ok = xdr_decode_LINK3res(x, &u.ln); break;
    default: return -EINVAL;
    }
    /* every one of them starts with its nfsstat3 */
    return ok ? (int)u.rm.status : -EBADMSG;
}

int nfs3_reply_readlink(struct xdr_dec *x, char *buf, size_t len)
{
    READLINK3res res;
    if (!xdr_decode_READLINK3res(x, &res))
        return -EBADMSG;
    if (res.status != NFS3_OK)
        return (int)res.status;
    if (res.resok.data.len >= len)
        return -ENAMETOOLONG;
    if (memchr(res.resok.data.val, 0, res.resok.data.len))
        return -EBADMSG;
    memcpy(buf, res.resok.data.val, res.resok.data.len);
    buf[res.resok.data.len] = 0;
    return 0;
}

int nfs3_reply_fsstat(struct xdr_dec *x, struct nfs_fsstat *st)
{
    FSSTAT3res res;
    if (!xdr_decode_FSSTAT3res(x, &res))
        return -EBADMSG;
    if (res.status != NFS3_OK)
        return (int)res.status;
    *st = (struct nfs_fsstat){ res.resok.tbytes, res.resok.fbytes, res.resok.abytes,
                               res.resok.tfiles, res.resok.ffiles, res.resok.afiles };
    return 0;
}

/* A name fit to hand to callers: no '/', no NUL, not empty, not absurdly long. */
static int copy_name(const struct xdr_string *s, char *out)
{
    if (s->len == 0 || s->len > NAME_MAX_WIRE || memchr(s->val, '/', s->len) ||
        memchr(s->val, 0, s->len))
        return -EBADMSG;
    memcpy(out, s->val, s->len);
    out[s->len] = 0;
    return 0;
}

static bool dot_or_dotdot(const char *n) { return !strcmp(n, ".") || !strcmp(n, ".."); }

static int walk_plain(const entry3 *e, struct nfs3_dircursor *cur, nfs_dirent_fn fn, void *arg)
{
    char name[NAME_MAX_WIRE + 1];
    for (; e; e = e->nextentry) {
        int st = copy_name(&e->name, name);
        if (st)
            return st;
        cur->cookie = e->cookie;
        if (dot_or_dotdot(name))
            continue;
        struct nfs_dirent d = { .name = name, .fileid = e->fileid, .cookie = e->cookie };
        if ((st = fn(arg, &d)))
            return st;
    }
    return 0;
}

static int walk_plus(const entryplus3 *e, struct nfs3_dircursor *cur, nfs_dirent_fn fn,
                     void *arg)
{
    char name[NAME_MAX_WIRE + 1];
    for (; e; e = e->nextentry) {
        int st = copy_name(&e->name, name);
        if (st)
            return st;
        cur->cookie = e->cookie;
        if (dot_or_dotdot(name))
            continue;
        struct nfs_attr attr;
        struct nfs_fh fh;
        struct nfs_dirent d = { .name = name, .fileid = e->fileid, .cookie = e->cookie };
        if (e->name_attributes.attributes_follow) {
            attr_from3(&attr, &e->name_attributes.attributes);
            d.attr = &attr;
        }
        if (e->name_handle.handle_follows) {
            if (!fh_from3(&fh, &e->name_handle.handle.data))
                return -EBADMSG;
            d.fh = &fh;
        }
        if ((st = fn(arg, &d)))
            return st;
    }
    return 0;
}

int nfs3_reply_readdir(struct xdr_dec *x, bool plus, struct nfs3_dircursor *cur,
                       nfs_dirent_fn fn, void *arg)
{
    /* every entry takes >= 24 bytes on the wire: that bounds the arena */
    size_t esize = plus ? sizeof(entryplus3) : sizeof(entry3);
    size_t asize = (xdr_dec_left(x) / 24 + 1) * esize;
    void *mem = malloc(asize);
    if (!mem)
        return -ENOMEM;
    struct xdr_arena arena;
    xdr_arena_init(&arena, mem, asize);
    x->arena = &arena;
    union {
        READDIR3res r;
        READDIRPLUS3res p;
    } u;
    int st;
    bool ok = plus ? xdr_decode_READDIRPLUS3res(x, &u.p) : xdr_decode_READDIR3res(x, &u.r);
    x->arena = NULL;
    if (!ok)
        st = -EBADMSG;
    else if (plus ? u.p.status : u.r.status)
        st = (int)(plus ? u.p.status : u.r.status);
    else {
        bool any = plus ? u.p.resok.reply.entries != NULL : u.r.resok.reply.entries != NULL;
        cur->eof = plus ? u.p.resok.reply.eof : u.r.resok.reply.eof;
        memcpy(cur->verf, plus ? u.p.resok.cookieverf : u.r.resok.cookieverf, 8);
        if (!any && !cur->eof)
            st = -EBADMSG;
        else
            st = plus ? walk_plus(u.p.resok.reply.entries, cur, fn, arg)
                      : walk_plain(u.r.resok.reply.entries, cur, fn, arg);
    }
    free(mem);
    return st;
}
