/*
 * NFSv4 file attributes (RFC 7530 section 5, RFC 8881 section 5, RFC 7862 section 12,
 * RFC 8275 mode_umask, RFC 8276 xattr_support): the fattr4 encoder for GETATTR and
 * READDIR, the decoder of settable attributes for SETATTR / CREATE / OPEN, and the
 * comparison behind VERIFY / NVERIFY.
 *
 * Wire form of fattr4: bitmap4 (uint32 count + words) then attrlist4 (opaque<>: the
 * values of the attributes whose bits are set, packed in attribute-number order).
 * Everything here is hand-written over the xdr/ cursor primitives because GETATTR and
 * READDIR are the hottest paths of an NFSv4 server: no mallocs, bitmaps precomputed at
 * compile time, one pass over the requested bits.
 *
 * Attribute numbers are NFS4_ATTR_* (not FATTR4_*, which the generated nfs4 header
 * defines as macros). Error values are the RFC's nfsstat4 numbers, so callers return
 * them as the operation's status as they are.
 *
 * Support by minor version (anything else is "unsupported": silently left out of
 * GETATTR/READDIR replies, NFS4ERR_ATTRNOTSUPP in SETATTR/VERIFY):
 *   4.0  supported_attrs type fh_expire_type change size link_support symlink_support
 *        named_attr fsid unique_handles lease_time rdattr_error aclsupport cansettime
 *        case_insensitive case_preserving chown_restricted filehandle fileid
 *        files_avail files_free files_total homogeneous maxfilesize maxlink maxname
 *        maxread maxwrite mode no_trunc numlinks owner owner_group rawdev space_avail
 *        space_free space_total space_used time_access time_access_set time_delta
 *        time_metadata time_modify time_modify_set mounted_on_fileid
 *   4.1  + fs_layout_types layout_blksize mode_set_masked suppattr_exclcreat
 *   4.2  + clone_blksize change_attr_type mode_umask xattr_support open_arguments
 * Not supported: acl (we have no ACLs: aclsupport is 0, and, as knfsd does on file
 * systems without ACLs, acl is left out of supported_attrs so that GETATTR and SETATTR
 * agree), archive, hidden, system, mimetype, quota_*, time_backup, time_create,
 * fs_locations, 4.1 dacl/sacl/retention/notification attributes, fs_charset_cap,
 * space_freed, sec_label.
 */
#ifndef PEERNFS_NFS4_ATTR_H
#define PEERNFS_NFS4_ATTR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "fs/fs.h"
#include "xdr/xdr.h"

/* Attribute numbers (RFC 7530 5.8 / RFC 8881 5.6-5.8 / RFC 7862 12.2). */
enum nfs4_attr_num {
    NFS4_ATTR_SUPPORTED_ATTRS = 0,
    NFS4_ATTR_TYPE = 1,
    NFS4_ATTR_FH_EXPIRE_TYPE = 2,
    NFS4_ATTR_CHANGE = 3,
    NFS4_ATTR_SIZE = 4,
    NFS4_ATTR_LINK_SUPPORT = 5,
    NFS4_ATTR_SYMLINK_SUPPORT = 6,
    NFS4_ATTR_NAMED_ATTR = 7,
    NFS4_ATTR_FSID = 8,
    NFS4_ATTR_UNIQUE_HANDLES = 9,
    NFS4_ATTR_LEASE_TIME = 10,
    NFS4_ATTR_RDATTR_ERROR = 11,
    NFS4_ATTR_ACL = 12,
    NFS4_ATTR_ACLSUPPORT = 13,
    NFS4_ATTR_ARCHIVE = 14,
    NFS4_ATTR_CANSETTIME = 15,
    NFS4_ATTR_CASE_INSENSITIVE = 16,
    NFS4_ATTR_CASE_PRESERVING = 17,
    NFS4_ATTR_CHOWN_RESTRICTED = 18,
    NFS4_ATTR_FILEHANDLE = 19,
    NFS4_ATTR_FILEID = 20,
    NFS4_ATTR_FILES_AVAIL = 21,
    NFS4_ATTR_FILES_FREE = 22,
    NFS4_ATTR_FILES_TOTAL = 23,
    NFS4_ATTR_FS_LOCATIONS = 24,
    NFS4_ATTR_HIDDEN = 25,
    NFS4_ATTR_HOMOGENEOUS = 26,
    NFS4_ATTR_MAXFILESIZE = 27,
    NFS4_ATTR_MAXLINK = 28,
    NFS4_ATTR_MAXNAME = 29,
    NFS4_ATTR_MAXREAD = 30,
    NFS4_ATTR_MAXWRITE = 31,
    NFS4_ATTR_MIMETYPE = 32,
    NFS4_ATTR_MODE = 33,
    NFS4_ATTR_NO_TRUNC = 34,
    NFS4_ATTR_NUMLINKS = 35,
    NFS4_ATTR_OWNER = 36,
    NFS4_ATTR_OWNER_GROUP = 37,
    NFS4_ATTR_QUOTA_AVAIL_HARD = 38,
    NFS4_ATTR_QUOTA_AVAIL_SOFT = 39,
    NFS4_ATTR_QUOTA_USED = 40,
    NFS4_ATTR_RAWDEV = 41,
    NFS4_ATTR_SPACE_AVAIL = 42,
    NFS4_ATTR_SPACE_FREE = 43,
    NFS4_ATTR_SPACE_TOTAL = 44,
    NFS4_ATTR_SPACE_USED = 45,
    NFS4_ATTR_SYSTEM = 46,
    NFS4_ATTR_TIME_ACCESS = 47,
    NFS4_ATTR_TIME_ACCESS_SET = 48,
    NFS4_ATTR_TIME_BACKUP = 49,
    NFS4_ATTR_TIME_CREATE = 50,
    NFS4_ATTR_TIME_DELTA = 51,
    NFS4_ATTR_TIME_METADATA = 52,
    NFS4_ATTR_TIME_MODIFY = 53,
    NFS4_ATTR_TIME_MODIFY_SET = 54,
    NFS4_ATTR_MOUNTED_ON_FILEID = 55,
    /* NFSv4.1 */
    NFS4_ATTR_DIR_NOTIF_DELAY = 56,
    NFS4_ATTR_DIRENT_NOTIF_DELAY = 57,
    NFS4_ATTR_DACL = 58,
    NFS4_ATTR_SACL = 59,
    NFS4_ATTR_CHANGE_POLICY = 60,
    NFS4_ATTR_FS_STATUS = 61,
    NFS4_ATTR_FS_LAYOUT_TYPES = 62,
    NFS4_ATTR_LAYOUT_HINT = 63,
    NFS4_ATTR_LAYOUT_TYPES = 64,
    NFS4_ATTR_LAYOUT_BLKSIZE = 65,
    NFS4_ATTR_LAYOUT_ALIGNMENT = 66,
    NFS4_ATTR_FS_LOCATIONS_INFO = 67,
    NFS4_ATTR_MDSTHRESHOLD = 68,
    NFS4_ATTR_RETENTION_GET = 69,
    NFS4_ATTR_RETENTION_SET = 70,
    NFS4_ATTR_RETENTEVT_GET = 71,
    NFS4_ATTR_RETENTEVT_SET = 72,
    NFS4_ATTR_RETENTION_HOLD = 73,
    NFS4_ATTR_MODE_SET_MASKED = 74,
    NFS4_ATTR_SUPPATTR_EXCLCREAT = 75,
    NFS4_ATTR_FS_CHARSET_CAP = 76,
    /* NFSv4.2 */
    NFS4_ATTR_CLONE_BLKSIZE = 77,
    NFS4_ATTR_SPACE_FREED = 78,
    NFS4_ATTR_CHANGE_ATTR_TYPE = 79,
    NFS4_ATTR_SEC_LABEL = 80,
    NFS4_ATTR_MODE_UMASK = 81,   /* RFC 8275 */
    NFS4_ATTR_XATTR_SUPPORT = 82, /* RFC 8276 */
    NFS4_ATTR_OPEN_ARGUMENTS = 86, /* RFC 9754 */
};

/* Bitmap words that can hold a bit we know (attributes 0..95). */
#define NFS4_ATTR_WORDS 3
#define NFS4_ATTR_MINOR_MAX 2

/* Longest wire filehandle (NFS4_FHSIZE). */
#define NFS4_ATTR_FH_MAX 128

/* Statuses returned here: nfsstat4 values (RFC 7530 13 / RFC 8881 15), plus NOSPACE. */
enum nfs4_attr_err {
    NFS4ATTR_OK = 0,
    /* The reply buffer (or the bound given) is too small; nothing was written. The
     * caller maps it: NFS4ERR_RESOURCE (4.0), NFS4ERR_REP_TOO_BIG (4.1+), or, in
     * READDIR, the end of this reply's entries. */
    NFS4ATTR_ERR_NOSPACE = -1,
    NFS4ATTR_ERR_IO = 5,
    NFS4ATTR_ERR_INVAL = 22,
    NFS4ATTR_ERR_SERVERFAULT = 10006,
    NFS4ATTR_ERR_SAME = 10009,
    NFS4ATTR_ERR_RESOURCE = 10018,
    NFS4ATTR_ERR_NOT_SAME = 10027,
    NFS4ATTR_ERR_ATTRNOTSUPP = 10032,
    NFS4ATTR_ERR_BADXDR = 10036,
    NFS4ATTR_ERR_BADOWNER = 10039,
};

/* nfs_ftype4 */
enum nfs4_ftype {
    NFS4_NF4REG = 1,
    NFS4_NF4DIR = 2,
    NFS4_NF4BLK = 3,
    NFS4_NF4CHR = 4,
    NFS4_NF4LNK = 5,
    NFS4_NF4SOCK = 6,
    NFS4_NF4FIFO = 7,
    NFS4_NF4ATTRDIR = 8,
    NFS4_NF4NAMEDATTR = 9,
};

/* change_attr_type4 (RFC 7862 12.2.3) */
enum nfs4_change_attr_type {
    NFS4_CHANGE_IS_MONOTONIC_INCR = 0,
    NFS4_CHANGE_IS_VERSION_COUNTER = 1,
    NFS4_CHANGE_IS_VERSION_COUNTER_NOPNFS = 2,
    NFS4_CHANGE_IS_TIME_METADATA = 3,
    NFS4_CHANGE_IS_UNDEFINED = 4,
};

#define NFS4_ATTR_MAX_LAYOUT_TYPES 4

/*
 * What the encoder knows about one object. Fill it with nfs4_attr_src_defaults() (the
 * defaults below) and override per export / per object. Nothing is copied: pointers
 * must stay valid for the call.
 */
struct nfs4_attr_src {
    const struct stat *st; /* required unless rdattr_error != 0 */

    /* Space and files attributes: called at most once per encode and only when one of
     * them is requested. Returns 0 or an nfsstat4 that the encoder returns as is. A
     * READDIR caller that wants one statfs per reply caches in its ctx. NULL = those
     * attributes are reported as 0. */
    int (*get_statfs)(void *ctx, struct fs_statfs *out);
    void *statfs_ctx;

    /* Wire filehandle (the FILEHANDLE attribute); fh_len 0 = not known here, and the
     * attribute is then left out of the reply. */
    const uint8_t *fh;
    uint32_t fh_len;

    /* fsid: the export id (the pseudo-fs root has its own), stable across restarts. */
    uint64_t fsid_major, fsid_minor;
    /* Fileid of the directory this object is mounted on (differs from st_ino only for
     * the root of an export reached from the pseudo-fs); default st_ino. */
    uint64_t mounted_on_fileid;

    /* CHANGE, and how clients may interpret it (4.2 change_attr_type). Default: from
     * ctime, see nfs4_attr_change_from_stat(), typed IS_TIME_METADATA. */
    uint64_t change;
    uint32_t change_attr_type;

    uint32_t lease_time;   /* seconds; default 90 */
    uint32_t rdattr_error; /* nfsstat4: the object's attributes could not be read */
    uint32_t maxname;      /* default 255 */
    uint32_t maxlink;      /* default 65000 (ext4/XFS order; clients only display it) */
    uint64_t maxread, maxwrite; /* default 1 MiB */
    uint64_t maxfilesize;       /* default INT64_MAX */
    uint32_t layout_blksize;    /* 4.1; default 1 MiB */
    uint32_t clone_blksize;     /* 4.2; default 0 (no CLONE) */
    uint32_t nlayout_types;     /* 4.1 fs_layout_types; default none (no pNFS) */
    uint32_t layout_types[NFS4_ATTR_MAX_LAYOUT_TYPES];
    bool xattr_support; /* 4.2 (RFC 8276): the xattr operations work here; default false */
};

/* Defaults for everything but `st`'s own values (see the field comments). */
void nfs4_attr_src_defaults(struct nfs4_attr_src *src, const struct stat *st);

/*
 * The change attribute from ctime: seconds << 30 | nanoseconds (nanoseconds < 2^30, so
 * distinct ctimes give distinct values and the order of ctimes is kept, which is what
 * IS_TIME_METADATA promises: the Linux client then only requires it not to go back).
 * Every modification of data or metadata sets ctime, so every one changes it, within the
 * backing filesystem's timestamp granularity; userspace cannot read the inode's
 * i_version, so this is the best a posix backend can give. Callers holding a better
 * counter (own-modification generations) override src.change / change_attr_type.
 */
uint64_t nfs4_attr_change_from_stat(const struct stat *st);

/* Supported / settable / exclusive-create (suppattr_exclcreat) / write-only masks for a
 * minor version (> 2 is treated as 2): NFS4_ATTR_WORDS words each. */
const uint32_t *nfs4_attr_supported(unsigned minorversion);
const uint32_t *nfs4_attr_writable(unsigned minorversion);
const uint32_t *nfs4_attr_exclcreat(unsigned minorversion);

static inline bool nfs4_bitmap_isset(const uint32_t *words, uint32_t nwords, unsigned attr)
{
    return attr / 32 < nwords && (words[attr / 32] >> (attr % 32)) & 1u;
}

static inline void nfs4_bitmap_set(uint32_t *words, unsigned attr)
{
    words[attr / 32] |= 1u << (attr % 32);
}

/* bitmap4 with trailing zero words dropped (at least one word is written, as knfsd). */
bool nfs4_bitmap_encode(struct xdr_enc *x, const uint32_t *words, uint32_t nwords);

/*
 * Write a full fattr4 for `src`: its bitmap is the request ∩ supported(minorversion),
 * unsupported requested attributes are silently omitted (RFC 8881 18.7.3). `nwords` may
 * exceed NFS4_ATTR_WORDS (higher words are ignored: nothing there is supported).
 *
 * When src->rdattr_error != 0 the object has no attributes: with rdattr_error requested
 * the fattr4 holds just it (READDIR's per-entry error), otherwise that error is returned.
 *
 * Returns 0; NFS4ATTR_ERR_NOSPACE; NFS4ATTR_ERR_INVAL when a write-only attribute
 * (time_access_set, time_modify_set, mode_set_masked, mode_umask) is requested
 * (RFC 8881 5.5); get_statfs's status; or src->rdattr_error as above. On error the
 * cursor is where it was.
 */
int nfs4_attr_encode(struct xdr_enc *x, const uint32_t *request, uint32_t nwords,
                     const struct nfs4_attr_src *src, unsigned minorversion);

/* The same, using at most `max_bytes` of the buffer (READDIR's dircount/maxcount
 * budgets): NFS4ATTR_ERR_NOSPACE when the fattr4 would be longer. */
int nfs4_attr_encode_bounded(struct xdr_enc *x, size_t max_bytes, const uint32_t *request,
                             uint32_t nwords, const struct nfs4_attr_src *src,
                             unsigned minorversion);

/* Size in bytes nfs4_attr_encode would write, without writing it. Same statuses, but
 * never calls get_statfs (space and files attributes have a fixed size). */
int nfs4_attr_encoded_size(const uint32_t *request, uint32_t nwords,
                           const struct nfs4_attr_src *src, unsigned minorversion, size_t *len);

/* ---- settable attributes (SETATTR, CREATE createattrs, OPEN createattrs) ---- */

enum nfs4_set_mask {
    NFS4_SET_SIZE = 1u << 0,
    NFS4_SET_MODE = 1u << 1,        /* mode */
    NFS4_SET_MODE_MASKED = 1u << 2, /* 4.1 mode_set_masked: mode_mask says which bits */
    NFS4_SET_MODE_UMASK = 1u << 3,  /* 4.2 mode_umask: mode & ~umask; CREATE/OPEN only */
    NFS4_SET_UID = 1u << 4,
    NFS4_SET_GID = 1u << 5,
    NFS4_SET_ATIME = 1u << 6,     /* to .atime */
    NFS4_SET_ATIME_NOW = 1u << 7, /* SET_TO_SERVER_TIME4 */
    NFS4_SET_MTIME = 1u << 8,
    NFS4_SET_MTIME_NOW = 1u << 9,
};

struct nfs4_attr_set {
    unsigned mask; /* NFS4_SET_* */
    uint64_t size;
    uint32_t mode;      /* 07777 bits: mode, mm_value_to_set or mu_mode */
    uint32_t mode_mask; /* mode_set_masked: mm_mask_bits & 07777 */
    uint32_t umask;     /* mode_umask: mu_umask & 0777 */
    uid_t uid;
    gid_t gid;
    struct timespec atime, mtime;
};

/*
 * Decode the attrlist4 `vals`/`len` of a fattr4 whose bitmap is `bitmap`/`nwords` into
 * `out`, and set attrset_out (NFS4_ATTR_WORDS words) to the attributes it holds: the
 * attrsset a successful SETATTR returns (a failed one returns an empty bitmap).
 *
 * Errors, checked in this order (as RFC 8881 18.30 and knfsd): an attribute that is not
 * supported in this minor version, or an unknown bit -> ATTRNOTSUPP; a supported but
 * read-only one -> INVAL; a value that is truncated, has trailing bytes, a bad settime4
 * discriminant -> BADXDR; nseconds >= 10^9, owner/group strings that are empty or not
 * UTF-8 (RFC 7530 12.7), mode together with mode_set_masked or mode_umask -> INVAL; an
 * owner or group that does not map -> BADOWNER.
 *
 * mode_umask is only meaningful when creating (RFC 8275): a SETATTR handler returns
 * NFS4ERR_INVAL when out->mask has NFS4_SET_MODE_UMASK.
 */
int nfs4_attr_decode_set(const uint32_t *bitmap, uint32_t nwords, const uint8_t *vals,
                         uint32_t len, struct nfs4_attr_set *out, uint32_t *attrset_out,
                         unsigned minorversion);

/* Whether nfs4_attr_set_to_fs needs the object's current mode (a partial mode_set_masked). */
bool nfs4_attr_set_needs_mode(const struct nfs4_attr_set *set);

/*
 * The backend's setattr request. `cur_mode` is the object's current mode for SETATTR, or
 * the mode a new object would get without attributes (CREATE/OPEN); it only matters for
 * mode_set_masked. mode_umask's umask always applies: the server has no ACLs that could
 * be inherited instead (RFC 8275 section 3).
 */
void nfs4_attr_set_to_fs(const struct nfs4_attr_set *set, mode_t cur_mode, struct fs_setattr *out);

/*
 * VERIFY / NVERIFY (RFC 8881 18.31, 18.15): compare the client's fattr4 with the
 * object's. Returns 0 with *equal set; ATTRNOTSUPP for an unsupported attribute; INVAL
 * for rdattr_error or a write-only attribute in the bitmap; get_statfs's status.
 * Values are compared as encoded bytes, so a value the client encodes differently (an
 * owner given numerically that we render as name@domain) compares unequal.
 */
int nfs4_attr_compare(const uint32_t *bitmap, uint32_t nwords, const uint8_t *vals, uint32_t len,
                      const struct nfs4_attr_src *src, unsigned minorversion, bool *equal);

/* Strict UTF-8 check (no overlong forms, surrogates or code points above U+10FFFF). */
bool nfs4_attr_utf8_valid(const uint8_t *s, size_t len);

#endif
