/*
 * NFSv4 attributes: fattr4 encoding, settable-attribute decoding, VERIFY comparison.
 * The interface and the supported set are described in nfs4_attr.h.
 */
#include <limits.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "nfs4/nfs4_attr.h"
#include "nfs4/nfs4_idmap.h"

/* ---- which attributes we support, per minor version ---- */

#define A_R 1u  /* can be read (GETATTR, READDIR, VERIFY) */
#define A_W 2u  /* can be set (SETATTR, createattrs) */
#define A_RW 3u

/* Every supported attribute: name, first minor version, access. */
#define NFS4_ATTR_LIST(X, m, w)                 \
    X(SUPPORTED_ATTRS, 0, A_R, m, w)            \
    X(TYPE, 0, A_R, m, w)                       \
    X(FH_EXPIRE_TYPE, 0, A_R, m, w)             \
    X(CHANGE, 0, A_R, m, w)                     \
    X(SIZE, 0, A_RW, m, w)                      \
    X(LINK_SUPPORT, 0, A_R, m, w)               \
    X(SYMLINK_SUPPORT, 0, A_R, m, w)            \
    X(NAMED_ATTR, 0, A_R, m, w)                 \
    X(FSID, 0, A_R, m, w)                       \
    X(UNIQUE_HANDLES, 0, A_R, m, w)             \
    X(LEASE_TIME, 0, A_R, m, w)                 \
    X(RDATTR_ERROR, 0, A_R, m, w)               \
    X(ACLSUPPORT, 0, A_R, m, w)                 \
    X(CANSETTIME, 0, A_R, m, w)                 \
    X(CASE_INSENSITIVE, 0, A_R, m, w)           \
    X(CASE_PRESERVING, 0, A_R, m, w)            \
    X(CHOWN_RESTRICTED, 0, A_R, m, w)           \
    X(FILEHANDLE, 0, A_R, m, w)                 \
    X(FILEID, 0, A_R, m, w)                     \
    X(FILES_AVAIL, 0, A_R, m, w)                \
    X(FILES_FREE, 0, A_R, m, w)                 \
    X(FILES_TOTAL, 0, A_R, m, w)                \
    X(HOMOGENEOUS, 0, A_R, m, w)                \
    X(MAXFILESIZE, 0, A_R, m, w)                \
    X(MAXLINK, 0, A_R, m, w)                    \
    X(MAXNAME, 0, A_R, m, w)                    \
    X(MAXREAD, 0, A_R, m, w)                    \
    X(MAXWRITE, 0, A_R, m, w)                   \
    X(MODE, 0, A_RW, m, w)                      \
    X(NO_TRUNC, 0, A_R, m, w)                   \
    X(NUMLINKS, 0, A_R, m, w)                   \
    X(OWNER, 0, A_RW, m, w)                     \
    X(OWNER_GROUP, 0, A_RW, m, w)               \
    X(RAWDEV, 0, A_R, m, w)                     \
    X(SPACE_AVAIL, 0, A_R, m, w)                \
    X(SPACE_FREE, 0, A_R, m, w)                 \
    X(SPACE_TOTAL, 0, A_R, m, w)                \
    X(SPACE_USED, 0, A_R, m, w)                 \
    X(TIME_ACCESS, 0, A_R, m, w)                \
    X(TIME_ACCESS_SET, 0, A_W, m, w)            \
    X(TIME_DELTA, 0, A_R, m, w)                 \
    X(TIME_METADATA, 0, A_R, m, w)              \
    X(TIME_MODIFY, 0, A_R, m, w)                \
    X(TIME_MODIFY_SET, 0, A_W, m, w)            \
    X(MOUNTED_ON_FILEID, 0, A_R, m, w)          \
    X(FS_LAYOUT_TYPES, 1, A_R, m, w)            \
    X(LAYOUT_BLKSIZE, 1, A_R, m, w)             \
    X(MODE_SET_MASKED, 1, A_W, m, w)            \
    X(SUPPATTR_EXCLCREAT, 1, A_R, m, w)         \
    X(CLONE_BLKSIZE, 2, A_R, m, w)              \
    X(CHANGE_ATTR_TYPE, 2, A_R, m, w)           \
    X(MODE_UMASK, 2, A_W, m, w)                 \
    X(XATTR_SUPPORT, 2, A_R, m, w)              \
    X(OPEN_ARGUMENTS, 2, A_R, m, w)

#define ATTR_BIT_IN_WORD(a, w) ((NFS4_ATTR_##a) / 32 == (w) ? 1u << ((NFS4_ATTR_##a) % 32) : 0u)
#define ATTR_IF(a, minv, acc, m, w, want) | ((minv) <= (m) && ((acc) & (want)) ? ATTR_BIT_IN_WORD(a, w) : 0u)
#define ATTR_SUPP(a, minv, acc, m, w) ATTR_IF(a, minv, acc, m, w, A_RW)
#define ATTR_READ(a, minv, acc, m, w) ATTR_IF(a, minv, acc, m, w, A_R)
#define ATTR_WRITE(a, minv, acc, m, w) ATTR_IF(a, minv, acc, m, w, A_W)
#define WORDS_OF(X, m) {(0u NFS4_ATTR_LIST(X, m, 0)), (0u NFS4_ATTR_LIST(X, m, 1)), (0u NFS4_ATTR_LIST(X, m, 2))}
#define MASKS(X) {WORDS_OF(X, 0), WORDS_OF(X, 1), WORDS_OF(X, 2)}

static const uint32_t attr_supported[3][NFS4_ATTR_WORDS] = MASKS(ATTR_SUPP);
static const uint32_t attr_readable[3][NFS4_ATTR_WORDS] = MASKS(ATTR_READ);
static const uint32_t attr_writable[3][NFS4_ATTR_WORDS] = MASKS(ATTR_WRITE);

/* EXCLUSIVE4_1 keeps its verifier in atime/mtime (RFC 8881 18.16.3 lets the server
 * choose), so the time setters are the settable attributes it cannot take. */
#define EXCL_TIMES(w) (ATTR_BIT_IN_WORD(TIME_ACCESS_SET, w) | ATTR_BIT_IN_WORD(TIME_MODIFY_SET, w))
#define EXCL_WORD(m, w) ((0u NFS4_ATTR_LIST(ATTR_WRITE, m, w)) & ~EXCL_TIMES(w))
#define EXCL_WORDS(m) {EXCL_WORD(m, 0), EXCL_WORD(m, 1), EXCL_WORD(m, 2)}
static const uint32_t attr_exclcreat[3][NFS4_ATTR_WORDS] = {
    {0, 0, 0}, /* there is no EXCLUSIVE4_1 before 4.1 */
    EXCL_WORDS(1),
    EXCL_WORDS(2),
};

/*
 * open_arguments (RFC 9754 section 3): which OPEN arguments this server takes, each a
 * bitmap4 of the values of its open_args_* enum: share access READ, WRITE, BOTH; every
 * deny mode; the delegation wants READ, WRITE, ANY, NO_DELEG and CANCEL (the
 * OPEN4_SHARE_ACCESS_WANT_* values >> 8; no timestamps or OPEN_XOR_DELEGATION); claims
 * NULL, PREVIOUS, DELEGATE_CUR, FH and DELEG_CUR_FH (the _PREV ones answer NOTSUPP); all
 * four create modes.
 */
static bool enc_open_arguments(struct xdr_enc *x)
{
    static const uint32_t words[5] = {
        1u << 1 | 1u << 2 | 1u << 3,                      /* oa_share_access */
        1u << 0 | 1u << 1 | 1u << 2 | 1u << 3,            /* oa_share_deny */
        1u << 1 | 1u << 2 | 1u << 3 | 1u << 4 | 1u << 5,  /* oa_share_access_want */
        1u << 0 | 1u << 1 | 1u << 2 | 1u << 4 | 1u << 5,  /* oa_open_claim */
        1u << 0 | 1u << 1 | 1u << 2 | 1u << 3,            /* oa_create_mode */
    };
    bool ok = true;
    for (unsigned i = 0; ok && i < 5; i++)
        ok = xdr_enc_u32(x, 1) && xdr_enc_u32(x, words[i]);
    return ok;
}

/* Largest fattr4 we can produce: every attribute, a maximal filehandle and owners. */
#define ATTR_ENCODED_MAX 2048

static unsigned attr_minor(unsigned minorversion)
{
    return minorversion > NFS4_ATTR_MINOR_MAX ? NFS4_ATTR_MINOR_MAX : minorversion;
}

const uint32_t *nfs4_attr_supported(unsigned minorversion)
{
    return attr_supported[attr_minor(minorversion)];
}

const uint32_t *nfs4_attr_writable(unsigned minorversion)
{
    return attr_writable[attr_minor(minorversion)];
}

const uint32_t *nfs4_attr_exclcreat(unsigned minorversion)
{
    return attr_exclcreat[attr_minor(minorversion)];
}

uint64_t nfs4_attr_change_from_stat(const struct stat *st)
{
    return ((uint64_t)st->st_ctim.tv_sec << 30) + (uint64_t)st->st_ctim.tv_nsec;
}

void nfs4_attr_src_defaults(struct nfs4_attr_src *src, const struct stat *st)
{
    memset(src, 0, sizeof(*src));
    src->st = st;
    if (st) {
        src->mounted_on_fileid = st->st_ino;
        src->change = nfs4_attr_change_from_stat(st);
    }
    src->change_attr_type = NFS4_CHANGE_IS_TIME_METADATA;
    src->lease_time = 90;
    src->maxname = 255;
    src->maxlink = 65000;
    src->maxread = src->maxwrite = 1u << 20;
    src->maxfilesize = INT64_MAX;
    src->layout_blksize = 1u << 20;
}

bool nfs4_bitmap_encode(struct xdr_enc *x, const uint32_t *words, uint32_t nwords)
{
    uint32_t n = nwords;
    while (n > 1 && words[n - 1] == 0)
        n--;
    if (n == 0)
        return xdr_enc_u32(x, 1) && xdr_enc_u32(x, 0);
    if (xdr_enc_left(x) < 4 + 4 * (size_t)n)
        return false;
    xdr_enc_u32(x, n);
    for (uint32_t i = 0; i < n; i++)
        xdr_enc_u32(x, words[i]);
    return true;
}

static uint32_t attr_ftype(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFDIR:
        return NFS4_NF4DIR;
    case S_IFBLK:
        return NFS4_NF4BLK;
    case S_IFCHR:
        return NFS4_NF4CHR;
    case S_IFLNK:
        return NFS4_NF4LNK;
    case S_IFSOCK:
        return NFS4_NF4SOCK;
    case S_IFIFO:
        return NFS4_NF4FIFO;
    default:
        return NFS4_NF4REG;
    }
}

static bool enc_time(struct xdr_enc *x, struct timespec ts)
{
    return xdr_enc_i64(x, (int64_t)ts.tv_sec) && xdr_enc_u32(x, (uint32_t)ts.tv_nsec);
}

/*
 * The bits to answer: request ∩ supported, minus what this object cannot give.
 * 0, INVAL (a write-only attribute asked for), or the object's rdattr_error.
 */
static int attr_reply_bits(const uint32_t *request, uint32_t nwords, const struct nfs4_attr_src *src,
                           unsigned minor, uint32_t out[NFS4_ATTR_WORDS])
{
    uint32_t wonly = 0;
    for (unsigned w = 0; w < NFS4_ATTR_WORDS; w++) {
        out[w] = (w < nwords ? request[w] : 0) & attr_supported[minor][w];
        wonly |= out[w] & ~attr_readable[minor][w];
    }
    if (wonly)
        return NFS4ATTR_ERR_INVAL;
    if (src->rdattr_error) {
        if (!nfs4_bitmap_isset(out, NFS4_ATTR_WORDS, NFS4_ATTR_RDATTR_ERROR))
            return (int)src->rdattr_error;
        memset(out, 0, NFS4_ATTR_WORDS * sizeof(out[0]));
        nfs4_bitmap_set(out, NFS4_ATTR_RDATTR_ERROR);
        return 0;
    }
    if (src->fh_len == 0 || src->fh_len > NFS4_ATTR_FH_MAX)
        out[NFS4_ATTR_FILEHANDLE / 32] &= ~(1u << (NFS4_ATTR_FILEHANDLE % 32));
    return 0;
}

/* statfs for the space/files attributes, fetched on first use. */
struct attr_statfs {
    const struct nfs4_attr_src *src;
    bool have, sizing; /* sizing: only the length matters, do not call the backend */
    struct fs_statfs sf;
};

static int attr_statfs_get(struct attr_statfs *s)
{
    if (s->have)
        return 0;
    memset(&s->sf, 0, sizeof(s->sf));
    if (!s->sizing && s->src->get_statfs) {
        int rc = s->src->get_statfs(s->src->statfs_ctx, &s->sf);
        if (rc)
            return rc;
    }
    s->have = true;
    return 0;
}

static bool enc_owner(struct xdr_enc *x, uint32_t id, bool group)
{
    char name[NFS4_IDMAP_NAME_MAX + 1];
    size_t n = group ? nfs4_idmap_gid_to_name((gid_t)id, name, sizeof(name))
                     : nfs4_idmap_uid_to_name((uid_t)id, name, sizeof(name));
    return xdr_enc_opaque(x, name, (uint32_t)n, 0);
}

/* Space and files attributes: 0 or the status of get_statfs, with *v set. */
static int attr_statfs_value(unsigned attr, struct attr_statfs *sfs, uint64_t *v)
{
    int rc = attr_statfs_get(sfs);
    if (rc)
        return rc;
    switch (attr) {
    case NFS4_ATTR_FILES_AVAIL:
        *v = sfs->sf.avail_files;
        break;
    case NFS4_ATTR_FILES_FREE:
        *v = sfs->sf.free_files;
        break;
    case NFS4_ATTR_FILES_TOTAL:
        *v = sfs->sf.total_files;
        break;
    case NFS4_ATTR_SPACE_AVAIL:
        *v = sfs->sf.avail_bytes;
        break;
    case NFS4_ATTR_SPACE_FREE:
        *v = sfs->sf.free_bytes;
        break;
    default: /* NFS4_ATTR_SPACE_TOTAL */
        *v = sfs->sf.total_bytes;
        break;
    }
    return 0;
}

/*
 * One attribute's value. Returns 0, NOSPACE, or get_statfs's status. Only attributes
 * in attr_readable reach here; `src->st` is NULL only when rdattr_error is the one
 * attribute asked for.
 */
static int enc_attr(struct xdr_enc *x, unsigned attr, const struct nfs4_attr_src *src, unsigned minor,
                    struct attr_statfs *sfs)
{
    const struct stat *st = src->st;
    bool ok;
    uint64_t v;
    int rc;

    switch (attr) {
    case NFS4_ATTR_SUPPORTED_ATTRS:
        ok = nfs4_bitmap_encode(x, attr_supported[minor], NFS4_ATTR_WORDS);
        break;
    case NFS4_ATTR_TYPE:
        ok = xdr_enc_u32(x, attr_ftype(st->st_mode));
        break;
    case NFS4_ATTR_FH_EXPIRE_TYPE:
        ok = xdr_enc_u32(x, 0); /* FH4_PERSISTENT: handles survive restarts */
        break;
    case NFS4_ATTR_CHANGE:
        ok = xdr_enc_u64(x, src->change);
        break;
    case NFS4_ATTR_SIZE:
        ok = xdr_enc_u64(x, (uint64_t)st->st_size);
        break;
    case NFS4_ATTR_LINK_SUPPORT:
    case NFS4_ATTR_SYMLINK_SUPPORT:
    case NFS4_ATTR_UNIQUE_HANDLES:
    case NFS4_ATTR_CANSETTIME:
    case NFS4_ATTR_CASE_PRESERVING:
    case NFS4_ATTR_CHOWN_RESTRICTED:
    case NFS4_ATTR_HOMOGENEOUS:
    case NFS4_ATTR_NO_TRUNC:
        ok = xdr_enc_bool(x, true);
        break;
    case NFS4_ATTR_NAMED_ATTR:
    case NFS4_ATTR_CASE_INSENSITIVE:
        ok = xdr_enc_bool(x, false);
        break;
    case NFS4_ATTR_FSID:
        ok = xdr_enc_u64(x, src->fsid_major) && xdr_enc_u64(x, src->fsid_minor);
        break;
    case NFS4_ATTR_LEASE_TIME:
        ok = xdr_enc_u32(x, src->lease_time);
        break;
    case NFS4_ATTR_RDATTR_ERROR:
        ok = xdr_enc_u32(x, src->rdattr_error);
        break;
    case NFS4_ATTR_ACLSUPPORT:
        ok = xdr_enc_u32(x, 0);
        break;
    case NFS4_ATTR_FILEHANDLE:
        ok = xdr_enc_opaque(x, src->fh, src->fh_len, NFS4_ATTR_FH_MAX);
        break;
    case NFS4_ATTR_FILEID:
        ok = xdr_enc_u64(x, (uint64_t)st->st_ino);
        break;
    case NFS4_ATTR_FILES_AVAIL:
    case NFS4_ATTR_FILES_FREE:
    case NFS4_ATTR_FILES_TOTAL:
    case NFS4_ATTR_SPACE_AVAIL:
    case NFS4_ATTR_SPACE_FREE:
    case NFS4_ATTR_SPACE_TOTAL:
        rc = attr_statfs_value(attr, sfs, &v);
        if (rc)
            return rc;
        ok = xdr_enc_u64(x, v);
        break;
    case NFS4_ATTR_MAXFILESIZE:
        ok = xdr_enc_u64(x, src->maxfilesize);
        break;
    case NFS4_ATTR_MAXLINK:
        ok = xdr_enc_u32(x, src->maxlink);
        break;
    case NFS4_ATTR_MAXNAME:
        ok = xdr_enc_u32(x, src->maxname);
        break;
    case NFS4_ATTR_MAXREAD:
        ok = xdr_enc_u64(x, src->maxread);
        break;
    case NFS4_ATTR_MAXWRITE:
        ok = xdr_enc_u64(x, src->maxwrite);
        break;
    case NFS4_ATTR_MODE:
        ok = xdr_enc_u32(x, st->st_mode & 07777);
        break;
    case NFS4_ATTR_NUMLINKS:
        ok = xdr_enc_u32(x, st->st_nlink > UINT32_MAX ? UINT32_MAX : (uint32_t)st->st_nlink);
        break;
    case NFS4_ATTR_OWNER:
        ok = enc_owner(x, st->st_uid, false);
        break;
    case NFS4_ATTR_OWNER_GROUP:
        ok = enc_owner(x, st->st_gid, true);
        break;
    case NFS4_ATTR_RAWDEV:
        ok = xdr_enc_u32(x, major(st->st_rdev)) && xdr_enc_u32(x, minor(st->st_rdev));
        break;
    case NFS4_ATTR_SPACE_USED:
        ok = xdr_enc_u64(x, (uint64_t)st->st_blocks * 512u);
        break;
    case NFS4_ATTR_TIME_ACCESS:
        ok = enc_time(x, st->st_atim);
        break;
    case NFS4_ATTR_TIME_DELTA:
        ok = enc_time(x, (struct timespec){.tv_sec = 0, .tv_nsec = 1});
        break;
    case NFS4_ATTR_TIME_METADATA:
        ok = enc_time(x, st->st_ctim);
        break;
    case NFS4_ATTR_TIME_MODIFY:
        ok = enc_time(x, st->st_mtim);
        break;
    case NFS4_ATTR_MOUNTED_ON_FILEID:
        ok = xdr_enc_u64(x, src->mounted_on_fileid);
        break;
    case NFS4_ATTR_FS_LAYOUT_TYPES: {
        uint32_t n = src->nlayout_types > NFS4_ATTR_MAX_LAYOUT_TYPES ? NFS4_ATTR_MAX_LAYOUT_TYPES
                                                                     : src->nlayout_types;
        ok = xdr_enc_u32(x, n);
        for (uint32_t i = 0; ok && i < n; i++)
            ok = xdr_enc_u32(x, src->layout_types[i]);
        break;
    }
    case NFS4_ATTR_LAYOUT_BLKSIZE:
        ok = xdr_enc_u32(x, src->layout_blksize);
        break;
    case NFS4_ATTR_SUPPATTR_EXCLCREAT:
        ok = nfs4_bitmap_encode(x, attr_exclcreat[minor], NFS4_ATTR_WORDS);
        break;
    case NFS4_ATTR_CLONE_BLKSIZE:
        ok = xdr_enc_u32(x, src->clone_blksize);
        break;
    case NFS4_ATTR_CHANGE_ATTR_TYPE:
        ok = xdr_enc_u32(x, src->change_attr_type);
        break;
    case NFS4_ATTR_XATTR_SUPPORT:
        ok = xdr_enc_bool(x, src->xattr_support);
        break;
    case NFS4_ATTR_OPEN_ARGUMENTS:
        ok = enc_open_arguments(x);
        break;
    default: /* not readable: attr_reply_bits refused it */
        return NFS4ATTR_ERR_SERVERFAULT;
    }
    return ok ? 0 : NFS4ATTR_ERR_NOSPACE;
}

static int attr_encode(struct xdr_enc *x, const uint32_t *request, uint32_t nwords,
                       const struct nfs4_attr_src *src, unsigned minorversion, bool sizing)
{
    unsigned minor = attr_minor(minorversion);
    uint32_t bits[NFS4_ATTR_WORDS];
    struct attr_statfs sfs = {.src = src, .sizing = sizing};
    uint8_t *start = x->p, *lenp;
    int rc = attr_reply_bits(request, nwords, src, minor, bits);

    if (rc)
        return rc;
    if (!src->st && !src->rdattr_error)
        return NFS4ATTR_ERR_SERVERFAULT; /* caller bug: no attributes and no error */
    if (!nfs4_bitmap_encode(x, bits, NFS4_ATTR_WORDS) || !(lenp = xdr_enc_reserve(x, 4))) {
        x->p = start;
        return NFS4ATTR_ERR_NOSPACE;
    }
    for (unsigned w = 0; w < NFS4_ATTR_WORDS; w++) {
        for (uint32_t b = bits[w]; b; b &= b - 1) {
            rc = enc_attr(x, w * 32 + (unsigned)__builtin_ctz(b), src, minor, &sfs);
            if (rc) {
                x->p = start;
                return rc;
            }
        }
    }
    xdr_put_be32(lenp, (uint32_t)(x->p - lenp - 4));
    return 0;
}

int nfs4_attr_encode(struct xdr_enc *x, const uint32_t *request, uint32_t nwords,
                     const struct nfs4_attr_src *src, unsigned minorversion)
{
    return attr_encode(x, request, nwords, src, minorversion, false);
}

int nfs4_attr_encode_bounded(struct xdr_enc *x, size_t max_bytes, const uint32_t *request,
                             uint32_t nwords, const struct nfs4_attr_src *src, unsigned minorversion)
{
    struct xdr_enc sub = *x;
    if (max_bytes < xdr_enc_left(x))
        sub.end = sub.p + max_bytes;
    int rc = attr_encode(&sub, request, nwords, src, minorversion, false);
    if (rc == 0)
        x->p = sub.p;
    return rc;
}

int nfs4_attr_encoded_size(const uint32_t *request, uint32_t nwords,
                           const struct nfs4_attr_src *src, unsigned minorversion, size_t *len)
{
    uint8_t scratch[ATTR_ENCODED_MAX];
    struct xdr_enc x;
    xdr_enc_init(&x, scratch, sizeof(scratch));
    int rc = attr_encode(&x, request, nwords, src, minorversion, true);
    if (rc == NFS4ATTR_ERR_NOSPACE)
        rc = NFS4ATTR_ERR_SERVERFAULT; /* ATTR_ENCODED_MAX is too small: a bug */
    if (rc == 0)
        *len = xdr_enc_len(&x);
    return rc;
}

/* ---- settable attributes ---- */

bool nfs4_attr_utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            n = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (len - i - 1 < n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        /* overlong forms, beyond U+10FFFF, surrogates, and U+FFFE / U+FFFF: never
         * characters (U+FFFE is a byte-swapped BOM), refused as pynfs and RFC 3629 do */
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
            return false;
        i += n + 1;
    }
    return true;
}

/* settime4: SET_TO_SERVER_TIME4 (0) or SET_TO_CLIENT_TIME4 (1) + nfstime4. */
static int dec_settime(struct xdr_dec *d, struct timespec *ts, bool *now)
{
    uint32_t how, nsec;
    int64_t sec;

    if (!xdr_dec_u32(d, &how))
        return NFS4ATTR_ERR_BADXDR;
    if (how == 0) {
        *now = true;
        return 0;
    }
    if (how != 1)
        return NFS4ATTR_ERR_BADXDR;
    if (!xdr_dec_i64(d, &sec) || !xdr_dec_u32(d, &nsec))
        return NFS4ATTR_ERR_BADXDR;
    if (nsec >= 1000000000u)
        return NFS4ATTR_ERR_INVAL;
    *now = false;
    ts->tv_sec = (time_t)sec;
    ts->tv_nsec = (long)nsec;
    return 0;
}

/* owner / owner_group: utf8str_mixed naming a user or group we know. */
static int dec_owner(struct xdr_dec *d, bool group, struct nfs4_attr_set *out)
{
    struct xdr_string s;

    if (!xdr_dec_string(d, &s, 0))
        return NFS4ATTR_ERR_BADXDR;
    if (s.len == 0 || !nfs4_attr_utf8_valid((const uint8_t *)s.val, s.len))
        return NFS4ATTR_ERR_INVAL; /* RFC 7530 12.7: bad UTF-8 is INVAL */
    if (group)
        return nfs4_idmap_name_to_gid(s.val, s.len, &out->gid);
    return nfs4_idmap_name_to_uid(s.val, s.len, &out->uid);
}

static int dec_set_attr(struct xdr_dec *d, unsigned attr, struct nfs4_attr_set *out)
{
    uint32_t a, b;
    bool now;
    int rc;

    switch (attr) {
    case NFS4_ATTR_SIZE:
        if (!xdr_dec_u64(d, &out->size))
            return NFS4ATTR_ERR_BADXDR;
        out->mask |= NFS4_SET_SIZE;
        return 0;
    case NFS4_ATTR_MODE:
        if (!xdr_dec_u32(d, &a))
            return NFS4ATTR_ERR_BADXDR;
        out->mode = a & 07777; /* type bits are not the client's to set */
        out->mask |= NFS4_SET_MODE;
        return 0;
    case NFS4_ATTR_OWNER:
    case NFS4_ATTR_OWNER_GROUP:
        rc = dec_owner(d, attr == NFS4_ATTR_OWNER_GROUP, out);
        if (rc == 0)
            out->mask |= attr == NFS4_ATTR_OWNER ? NFS4_SET_UID : NFS4_SET_GID;
        return rc;
    case NFS4_ATTR_TIME_ACCESS_SET:
        rc = dec_settime(d, &out->atime, &now);
        if (rc == 0)
            out->mask |= now ? NFS4_SET_ATIME_NOW : NFS4_SET_ATIME;
        return rc;
    case NFS4_ATTR_TIME_MODIFY_SET:
        rc = dec_settime(d, &out->mtime, &now);
        if (rc == 0)
            out->mask |= now ? NFS4_SET_MTIME_NOW : NFS4_SET_MTIME;
        return rc;
    case NFS4_ATTR_MODE_SET_MASKED: /* mode_masked4 {mm_value_to_set, mm_mask_bits} */
        if (!xdr_dec_u32(d, &a) || !xdr_dec_u32(d, &b))
            return NFS4ATTR_ERR_BADXDR;
        out->mode = a & 07777;
        out->mode_mask = b & 07777;
        out->mask |= NFS4_SET_MODE_MASKED;
        return 0;
    case NFS4_ATTR_MODE_UMASK: /* mode_umask4 {mu_mode, mu_umask} */
        if (!xdr_dec_u32(d, &a) || !xdr_dec_u32(d, &b))
            return NFS4ATTR_ERR_BADXDR;
        out->mode = a & 07777;
        out->umask = b & 0777;
        out->mask |= NFS4_SET_MODE_UMASK;
        return 0;
    default: /* not writable: refused before decoding */
        return NFS4ATTR_ERR_SERVERFAULT;
    }
}

/* Bitmap of a request that sets attributes: ATTRNOTSUPP, INVAL or 0. */
static int attr_check_settable(const uint32_t *bitmap, uint32_t nwords, unsigned minor)
{
    bool read_only = false;
    for (uint32_t w = 0; w < nwords; w++) {
        if (w >= NFS4_ATTR_WORDS) {
            if (bitmap[w])
                return NFS4ATTR_ERR_ATTRNOTSUPP;
            continue;
        }
        if (bitmap[w] & ~attr_supported[minor][w])
            return NFS4ATTR_ERR_ATTRNOTSUPP;
        if (bitmap[w] & ~attr_writable[minor][w])
            read_only = true;
    }
    return read_only ? NFS4ATTR_ERR_INVAL : 0;
}

int nfs4_attr_decode_set(const uint32_t *bitmap, uint32_t nwords, const uint8_t *vals,
                         uint32_t len, struct nfs4_attr_set *out, uint32_t *attrset_out,
                         unsigned minorversion)
{
    unsigned minor = attr_minor(minorversion);
    struct xdr_dec d;
    int rc;

    memset(out, 0, sizeof(*out));
    memset(attrset_out, 0, NFS4_ATTR_WORDS * sizeof(attrset_out[0]));
    rc = attr_check_settable(bitmap, nwords, minor);
    if (rc)
        return rc;
    xdr_dec_init(&d, vals, len, NULL);
    for (unsigned w = 0; w < NFS4_ATTR_WORDS && w < nwords; w++) {
        for (uint32_t b = bitmap[w]; b; b &= b - 1) {
            rc = dec_set_attr(&d, w * 32 + (unsigned)__builtin_ctz(b), out);
            if (rc) {
                memset(out, 0, sizeof(*out));
                return rc;
            }
        }
    }
    if (xdr_dec_left(&d)) {
        memset(out, 0, sizeof(*out));
        return NFS4ATTR_ERR_BADXDR;
    }
    /* One way to say what the mode becomes (RFC 8881 6.2.4, RFC 8275). */
    unsigned modes = out->mask & (NFS4_SET_MODE | NFS4_SET_MODE_MASKED | NFS4_SET_MODE_UMASK);
    if (modes & (modes - 1)) {
        memset(out, 0, sizeof(*out));
        return NFS4ATTR_ERR_INVAL;
    }
    for (unsigned w = 0; w < NFS4_ATTR_WORDS && w < nwords; w++)
        attrset_out[w] = bitmap[w];
    return 0;
}

bool nfs4_attr_set_needs_mode(const struct nfs4_attr_set *set)
{
    return (set->mask & NFS4_SET_MODE_MASKED) && set->mode_mask != 07777;
}

void nfs4_attr_set_to_fs(const struct nfs4_attr_set *set, mode_t cur_mode, struct fs_setattr *out)
{
    memset(out, 0, sizeof(*out));
    if (set->mask & NFS4_SET_MODE) {
        out->mask |= FS_SET_MODE;
        out->mode = set->mode;
    } else if (set->mask & NFS4_SET_MODE_MASKED) {
        out->mask |= FS_SET_MODE;
        out->mode = (mode_t)((cur_mode & 07777 & ~set->mode_mask) | (set->mode & set->mode_mask));
    } else if (set->mask & NFS4_SET_MODE_UMASK) {
        out->mask |= FS_SET_MODE;
        out->mode = (mode_t)(set->mode & ~set->umask);
    }
    if (set->mask & NFS4_SET_UID) {
        out->mask |= FS_SET_UID;
        out->uid = set->uid;
    }
    if (set->mask & NFS4_SET_GID) {
        out->mask |= FS_SET_GID;
        out->gid = set->gid;
    }
    if (set->mask & NFS4_SET_SIZE) {
        out->mask |= FS_SET_SIZE;
        out->size = set->size;
    }
    if (set->mask & NFS4_SET_ATIME) {
        out->mask |= FS_SET_ATIME;
        out->atime = set->atime;
    }
    if (set->mask & NFS4_SET_ATIME_NOW)
        out->mask |= FS_SET_ATIME_NOW;
    if (set->mask & NFS4_SET_MTIME) {
        out->mask |= FS_SET_MTIME;
        out->mtime = set->mtime;
    }
    if (set->mask & NFS4_SET_MTIME_NOW)
        out->mask |= FS_SET_MTIME_NOW;
}

/* ---- VERIFY / NVERIFY ---- */

int nfs4_attr_compare(const uint32_t *bitmap, uint32_t nwords, const uint8_t *vals, uint32_t len,
                      const struct nfs4_attr_src *src, unsigned minorversion, bool *equal)
{
    unsigned minor = attr_minor(minorversion);
    uint32_t want[NFS4_ATTR_WORDS] = {0};
    uint8_t buf[ATTR_ENCODED_MAX];
    struct xdr_enc x;
    struct xdr_dec d;
    uint32_t n, ours_len;
    bool invalid = false;
    int rc;

    *equal = false;
    for (uint32_t w = 0; w < nwords; w++) {
        if (w >= NFS4_ATTR_WORDS) {
            if (bitmap[w])
                return NFS4ATTR_ERR_ATTRNOTSUPP;
            continue;
        }
        if (bitmap[w] & ~attr_supported[minor][w])
            return NFS4ATTR_ERR_ATTRNOTSUPP;
        invalid |= (bitmap[w] & ~attr_readable[minor][w]) != 0;
        want[w] = bitmap[w];
    }
    /* rdattr_error is not a property of the object (RFC 8881 18.31.3), and set-only
     * attributes have no value to compare (5.5). */
    if (invalid || nfs4_bitmap_isset(want, NFS4_ATTR_WORDS, NFS4_ATTR_RDATTR_ERROR))
        return NFS4ATTR_ERR_INVAL;

    xdr_enc_init(&x, buf, sizeof(buf));
    rc = nfs4_attr_encode(&x, want, NFS4_ATTR_WORDS, src, minor);
    if (rc == NFS4ATTR_ERR_NOSPACE)
        return NFS4ATTR_ERR_SERVERFAULT;
    if (rc)
        return rc;
    /* Our fattr4: the same bits (all are supported) unless the source lacked one. */
    xdr_dec_init(&d, buf, xdr_enc_len(&x), NULL);
    if (!xdr_dec_u32(&d, &n) || n > NFS4_ATTR_WORDS)
        return NFS4ATTR_ERR_SERVERFAULT;
    for (uint32_t w = 0; w < NFS4_ATTR_WORDS; w++) {
        uint32_t ours = 0;
        if (w < n && !xdr_dec_u32(&d, &ours))
            return NFS4ATTR_ERR_SERVERFAULT;
        if (ours != want[w])
            return NFS4ATTR_ERR_SERVERFAULT; /* e.g. FILEHANDLE without src->fh */
    }
    if (!xdr_dec_u32(&d, &ours_len) || ours_len != xdr_dec_left(&d))
        return NFS4ATTR_ERR_SERVERFAULT;
    *equal = ours_len == len && (len == 0 || memcmp(d.p, vals, len) == 0);
    return 0;
}
