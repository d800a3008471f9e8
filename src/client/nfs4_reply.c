#include "client/nfs4_reply.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>

#define NAME_MAX_WIRE 1024 /* longest entry name accepted from a server */

int nfs4_reply_compound(struct xdr_dec *x, COMPOUND4res *res)
{
    memset(res, 0, sizeof(*res));
    return xdr_decode_COMPOUND4res(x, res) ? 0 : -EBADMSG;
}

int nfs4_fh_from_wire(struct nfs_fh *out, const nfs_fh4 *in)
{
    if (in->len == 0 || in->len > NFS4_FHSIZE || in->len > NFS_CLIENT_FH_MAX)
        return -EBADMSG;
    out->len = in->len;
    memcpy(out->data, in->val, in->len);
    return 0;
}

uint32_t nfs4_owner_to_id(const struct xdr_opaque *s, bool group)
{
    char name[256];
    if (s->len == 0 || s->len >= sizeof(name))
        return 65534;
    memcpy(name, s->val, s->len);
    name[s->len] = 0;
    uint64_t v = 0;
    size_t i = 0;
    for (; name[i] >= '0' && name[i] <= '9' && v <= UINT32_MAX; i++)
        v = v * 10 + (uint64_t)(name[i] - '0');
    if (name[i] == 0 && v <= UINT32_MAX)
        return (uint32_t)v;
    char *at = strchr(name, '@');
    if (at)
        *at = 0;
    /* getpwnam_r / getgrnam_r: the library runs on many threads */
    char buf[4096];
    if (group) {
        struct group g, *gp = NULL;
        return getgrnam_r(name, &g, buf, sizeof(buf), &gp) == 0 && gp ? (uint32_t)gp->gr_gid : 65534;
    }
    struct passwd p, *pp = NULL;
    return getpwnam_r(name, &p, buf, sizeof(buf), &pp) == 0 && pp ? (uint32_t)pp->pw_uid : 65534;
}

static bool dec_time(struct xdr_dec *x, struct nfs_time *t)
{
    int64_t s;
    uint32_t ns;
    if (!xdr_dec_i64(x, &s) || !xdr_dec_u32(x, &ns) || ns >= 1000000000u)
        return false;
    *t = (struct nfs_time){ s, ns };
    return true;
}

/* One attribute's value, in bitmap order (RFC 8881 5.6, 5.7). */
static bool dec_attr(struct xdr_dec *x, unsigned n, struct nfs4_fattr *o)
{
    struct nfs_attr *a = &o->attr;
    uint32_t v32, w32;
    uint64_t v64, w64;
    struct xdr_opaque s;
    switch (n) {
    case FATTR4_TYPE:
        if (!xdr_dec_u32(x, &v32) || v32 < NF4REG || v32 > NF4NAMEDATTR)
            return false;
        a->type = v32 <= NF4FIFO ? (enum nfs_ftype)v32 : NFS_REG;
        return true;
    case FATTR4_CHANGE: return xdr_dec_u64(x, &v64);
    case FATTR4_SIZE: return xdr_dec_u64(x, &a->size);
    case FATTR4_FSID:
        if (!xdr_dec_u64(x, &v64) || !xdr_dec_u64(x, &w64))
            return false;
        a->fsid = v64 ^ (w64 << 32 | w64 >> 32);
        return true;
    case FATTR4_LEASE_TIME: return xdr_dec_u32(x, &o->lease_time);
    case FATTR4_RDATTR_ERROR: return xdr_dec_u32(x, &o->rdattr_error);
    case FATTR4_FILEHANDLE:
        if (!xdr_dec_opaque(x, &s, NFS4_FHSIZE))
            return false;
        return nfs4_fh_from_wire(&o->fh, &s) == 0;
    case FATTR4_FILEID: return xdr_dec_u64(x, &a->fileid);
    case FATTR4_FILES_AVAIL: return xdr_dec_u64(x, &o->fsstat.avail_files);
    case FATTR4_FILES_FREE: return xdr_dec_u64(x, &o->fsstat.free_files);
    case FATTR4_FILES_TOTAL: return xdr_dec_u64(x, &o->fsstat.total_files);
    case FATTR4_MAXREAD: return xdr_dec_u64(x, &o->maxread);
    case FATTR4_MAXWRITE: return xdr_dec_u64(x, &o->maxwrite);
    case FATTR4_MODE:
        if (!xdr_dec_u32(x, &v32))
            return false;
        a->mode = v32 & 07777;
        return true;
    case FATTR4_NUMLINKS: return xdr_dec_u32(x, &a->nlink);
    case FATTR4_OWNER:
    case FATTR4_OWNER_GROUP:
        if (!xdr_dec_opaque(x, &s, 1024))
            return false;
        if (n == FATTR4_OWNER)
            a->uid = nfs4_owner_to_id(&s, false);
        else
            a->gid = nfs4_owner_to_id(&s, true);
        return true;
    case FATTR4_RAWDEV:
        if (!xdr_dec_u32(x, &v32) || !xdr_dec_u32(x, &w32))
            return false;
        a->rdev_major = v32, a->rdev_minor = w32;
        return true;
    case FATTR4_SPACE_AVAIL: return xdr_dec_u64(x, &o->fsstat.avail_bytes);
    case FATTR4_SPACE_FREE: return xdr_dec_u64(x, &o->fsstat.free_bytes);
    case FATTR4_SPACE_TOTAL: return xdr_dec_u64(x, &o->fsstat.total_bytes);
    case FATTR4_SPACE_USED: return xdr_dec_u64(x, &a->used);
    case FATTR4_TIME_ACCESS: return dec_time(x, &a->atime);
    case FATTR4_TIME_METADATA: return dec_time(x, &a->ctime);
    case FATTR4_TIME_MODIFY: return dec_time(x, &a->mtime);
    case FATTR4_MOUNTED_ON_FILEID: return xdr_dec_u64(x, &v64);
    default: return false; /* not one we know how to skip */
    }
}

int nfs4_reply_fattr(const fattr4 *f, uint64_t want, struct nfs4_fattr *out)
{
    memset(out, 0, sizeof(*out));
    uint64_t mask = 0;
    for (uint32_t w = 0; w < f->attrmask.len; w++) {
        if (w >= 2) {
            if (f->attrmask.val[w])
                return -EBADMSG; /* attribute numbers >= 64: never asked for */
            continue;
        }
        mask |= (uint64_t)f->attrmask.val[w] << (32 * w);
    }
    if (mask & ~want)
        return -EBADMSG;
    struct xdr_dec x;
    xdr_dec_init(&x, f->attr_vals.val, f->attr_vals.len, NULL);
    for (unsigned n = 0; n < 64; n++) {
        if (!(mask & (1ull << n)))
            continue;
        if (!dec_attr(&x, n, out))
            return -EBADMSG;
    }
    if (xdr_dec_left(&x))
        return -EBADMSG;
    out->have = mask;
    return 0;
}

int nfs4_reply_readdir(const READDIR4resok *ok, uint64_t want, struct nfs4_dircursor *cur,
                       nfs_dirent_fn fn, void *arg)
{
    char name[NAME_MAX_WIRE + 1];
    unsigned n = 0;
    memcpy(cur->verf, ok->cookieverf, 8);
    for (const entry4 *e = ok->reply.entries; e; e = e->nextentry) {
        if (e->name.len == 0 || e->name.len > NAME_MAX_WIRE || memchr(e->name.val, '/', e->name.len) ||
            memchr(e->name.val, 0, e->name.len))
            return -EBADMSG;
        memcpy(name, e->name.val, e->name.len);
        name[e->name.len] = 0;
        struct nfs4_fattr fa;
        int st = nfs4_reply_fattr(&e->attrs, want, &fa);
        if (st)
            return st;
        cur->cookie = e->cookie;
        n++;
        if (!strcmp(name, ".") || !strcmp(name, ".."))
            continue;
        bool attrs_ok = (fa.have & NFS4_ATTR_BIT(FATTR4_TYPE)) &&
                        !(fa.have & NFS4_ATTR_BIT(FATTR4_RDATTR_ERROR) && fa.rdattr_error);
        struct nfs_dirent d = {
            .name = name,
            .fileid = fa.attr.fileid,
            .cookie = e->cookie,
            .attr = attrs_ok ? &fa.attr : NULL,
            .fh = (fa.have & NFS4_ATTR_BIT(FATTR4_FILEHANDLE)) ? &fa.fh : NULL,
        };
        st = fn(arg, &d);
        if (st)
            return st;
    }
    cur->eof = ok->reply.eof;
    if (n == 0 && !cur->eof)
        return -EBADMSG;
    return 0;
}

static bool enc_time(struct xdr_enc *x, bool now, const struct nfs_time *t)
{
    if (now)
        return xdr_enc_u32(x, SET_TO_SERVER_TIME4);
    return xdr_enc_u32(x, SET_TO_CLIENT_TIME4) && xdr_enc_i64(x, t->sec) && xdr_enc_u32(x, t->nsec);
}

static bool enc_id(struct xdr_enc *x, uint32_t id)
{
    char s[16];
    int n = snprintf(s, sizeof(s), "%u", id);
    return xdr_enc_opaque(x, s, (uint32_t)n, 0);
}

bool nfs4_encode_sattr(const struct nfs_setattr *sa, uint8_t *buf, size_t buflen,
                       uint32_t mask[2], fattr4 *out)
{
    struct xdr_enc x;
    xdr_enc_init(&x, buf, buflen);
    uint64_t m = 0;
    bool ok = true;
    /* ascending attribute numbers: size 4, mode 33, owner 36, group 37, atime 48, mtime 54 */
    if (sa->set_size)
        ok &= xdr_enc_u64(&x, sa->size), m |= NFS4_ATTR_BIT(FATTR4_SIZE);
    if (sa->set_mode)
        ok &= xdr_enc_u32(&x, sa->mode & 07777), m |= NFS4_ATTR_BIT(FATTR4_MODE);
    if (sa->set_uid)
        ok &= enc_id(&x, sa->uid), m |= NFS4_ATTR_BIT(FATTR4_OWNER);
    if (sa->set_gid)
        ok &= enc_id(&x, sa->gid), m |= NFS4_ATTR_BIT(FATTR4_OWNER_GROUP);
    if (sa->set_atime)
        ok &= enc_time(&x, sa->atime_now, &sa->atime), m |= NFS4_ATTR_BIT(FATTR4_TIME_ACCESS_SET);
    if (sa->set_mtime)
        ok &= enc_time(&x, sa->mtime_now, &sa->mtime), m |= NFS4_ATTR_BIT(FATTR4_TIME_MODIFY_SET);
    mask[0] = (uint32_t)m;
    mask[1] = (uint32_t)(m >> 32);
    out->attrmask.len = mask[1] ? 2 : 1;
    out->attrmask.val = mask;
    out->attr_vals.len = (uint32_t)xdr_enc_len(&x);
    out->attr_vals.val = buf;
    return ok;
}
