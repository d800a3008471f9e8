/*
 * nfs4/ attribute layer: supported masks per minor version, fattr4 bytes for a known
 * stat (expected bytes built field by field from the RFC 7530 / 8881 / 7862 layouts),
 * request ∩ supported, write-only and rdattr_error rules, lazy statfs, buffer limits,
 * settable-attribute decoding with every error class, owner mapping in numeric and
 * domain mode, VERIFY comparison, and random inputs that must never crash.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "check.h"
#include "nfs4/nfs4_attr.h"
#include "nfs4/nfs4_idmap.h"

#define BIT(a) (1u << ((a) % 32))

/* ---- expected-bytes builder ---- */

struct exp {
    uint8_t b[4096];
    size_t n;
};

static void put32(struct exp *e, uint32_t v)
{
    xdr_put_be32(e->b + e->n, v);
    e->n += 4;
}

static void put64(struct exp *e, uint64_t v)
{
    put32(e, (uint32_t)(v >> 32));
    put32(e, (uint32_t)v);
}

static void put_str(struct exp *e, const char *s)
{
    uint32_t len = (uint32_t)strlen(s);
    put32(e, len);
    memcpy(e->b + e->n, s, len);
    e->n += len;
    while (e->n % 4)
        e->b[e->n++] = 0;
}

/* Start of a fattr4: bitmap words, then a length to patch by exp_end. */
static size_t exp_begin(struct exp *e, const uint32_t *w, uint32_t n)
{
    e->n = 0;
    put32(e, n);
    for (uint32_t i = 0; i < n; i++)
        put32(e, w[i]);
    put32(e, 0);
    return e->n;
}

static void exp_end(struct exp *e, size_t vals_at)
{
    xdr_put_be32(e->b + vals_at - 4, (uint32_t)(e->n - vals_at));
}

static int check_bytes(const char *what, const uint8_t *got, size_t got_len, const struct exp *e)
{
    if (got_len == e->n && memcmp(got, e->b, got_len) == 0)
        return 1;
    fprintf(stderr, "%s: encoded %zu bytes, expected %zu\n", what, got_len, e->n);
    for (size_t i = 0; i < got_len || i < e->n; i += 4) {
        uint32_t g = i + 4 <= got_len ? xdr_get_be32(got + i) : 0xdeadbeef;
        uint32_t x = i + 4 <= e->n ? xdr_get_be32(e->b + i) : 0xdeadbeef;
        fprintf(stderr, "  %4zu: %08x %08x%s\n", i, g, x, g != x ? "  <--" : "");
    }
    return 0;
}

/* ---- a known object ---- */

static struct stat known_stat(void)
{
    struct stat st;
    memset(&st, 0, sizeof(st));
    st.st_mode = S_IFREG | 04755;
    st.st_ino = 0x123456789aULL;
    st.st_nlink = 3;
    st.st_uid = 1000;
    st.st_gid = 100;
    st.st_size = 0x100000001LL;
    st.st_blocks = 9;
    st.st_rdev = makedev(0, 0);
    st.st_atim = (struct timespec){.tv_sec = 1700000000, .tv_nsec = 1};
    st.st_mtim = (struct timespec){.tv_sec = 1700000001, .tv_nsec = 999999999};
    st.st_ctim = (struct timespec){.tv_sec = 1700000002, .tv_nsec = 5};
    return st;
}

static const uint8_t known_fh[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};

static int statfs_calls;
static int statfs_status;

static int fake_statfs(void *ctx, struct fs_statfs *sf)
{
    (void)ctx;
    statfs_calls++;
    if (statfs_status)
        return statfs_status;
    sf->total_bytes = 1000000;
    sf->free_bytes = 600000;
    sf->avail_bytes = 500000;
    sf->total_files = 1000;
    sf->free_files = 700;
    sf->avail_files = 650;
    sf->name_max = 255;
    return 0;
}

static void known_src(struct nfs4_attr_src *src, const struct stat *st)
{
    nfs4_attr_src_defaults(src, st);
    src->get_statfs = fake_statfs;
    src->fh = known_fh;
    src->fh_len = sizeof(known_fh);
    src->fsid_major = 7;
    src->fsid_minor = 0;
}

static int encode(uint8_t *buf, size_t size, const uint32_t *req, uint32_t n,
                  const struct nfs4_attr_src *src, unsigned minor, size_t *len)
{
    struct xdr_enc x;
    xdr_enc_init(&x, buf, size);
    int rc = nfs4_attr_encode(&x, req, n, src, minor);
    *len = xdr_enc_len(&x);
    return rc;
}

/* ---- tests ---- */

static void test_masks(void)
{
    const uint32_t *s0 = nfs4_attr_supported(0), *s1 = nfs4_attr_supported(1),
                   *s2 = nfs4_attr_supported(2);
    /* hand-computed from the lists in nfs4_attr.h */
    CHECK_EQ(s0[0], 0xFCFFAFFFu);
    CHECK_EQ(s0[1], 0x00F9BE3Eu);
    CHECK_EQ(s0[2], 0);
    CHECK_EQ(s1[0], 0xFCFFAFFFu);
    CHECK_EQ(s1[1], 0x40F9BE3Eu);
    CHECK_EQ(s1[2], 0x00000C02u);
    CHECK_EQ(s2[1], 0x40F9BE3Eu);
    CHECK_EQ(s2[2], 0x0046AC02u); /* + open_arguments (86) */
    CHECK(nfs4_attr_supported(9) == s2);

    const uint32_t *w0 = nfs4_attr_writable(0), *w2 = nfs4_attr_writable(2);
    CHECK_EQ(w0[0], BIT(NFS4_ATTR_SIZE));
    CHECK_EQ(w0[1], BIT(NFS4_ATTR_MODE) | BIT(NFS4_ATTR_OWNER) | BIT(NFS4_ATTR_OWNER_GROUP) |
                        BIT(NFS4_ATTR_TIME_ACCESS_SET) | BIT(NFS4_ATTR_TIME_MODIFY_SET));
    CHECK_EQ(w0[2], 0);
    CHECK_EQ(w2[2], BIT(NFS4_ATTR_MODE_SET_MASKED) | BIT(NFS4_ATTR_MODE_UMASK));

    const uint32_t *e0 = nfs4_attr_exclcreat(0), *e1 = nfs4_attr_exclcreat(1);
    CHECK_EQ(e0[0] | e0[1] | e0[2], 0);
    CHECK_EQ(e1[0], BIT(NFS4_ATTR_SIZE));
    CHECK_EQ(e1[1], BIT(NFS4_ATTR_MODE) | BIT(NFS4_ATTR_OWNER) | BIT(NFS4_ATTR_OWNER_GROUP));
    CHECK_EQ(e1[2], BIT(NFS4_ATTR_MODE_SET_MASKED));
}

static void test_encode_known(void)
{
    struct stat st = known_stat();
    struct nfs4_attr_src src;
    uint8_t buf[4096];
    size_t len;
    struct exp e;

    nfs4_idmap_configure(NULL);
    known_src(&src, &st);

    /* type change size fsid fileid | mode numlinks owner owner_group time_modify */
    uint32_t req[2] = {BIT(NFS4_ATTR_TYPE) | BIT(NFS4_ATTR_CHANGE) | BIT(NFS4_ATTR_SIZE) |
                           BIT(NFS4_ATTR_FSID) | BIT(NFS4_ATTR_FILEID),
                       BIT(NFS4_ATTR_MODE) | BIT(NFS4_ATTR_NUMLINKS) | BIT(NFS4_ATTR_OWNER) |
                           BIT(NFS4_ATTR_OWNER_GROUP) | BIT(NFS4_ATTR_TIME_MODIFY)};
    CHECK_EQ(encode(buf, sizeof(buf), req, 2, &src, 0, &len), 0);
    size_t at = exp_begin(&e, req, 2);
    put32(&e, 1);                                     /* NF4REG */
    put64(&e, (1700000002ULL << 30) + 5);             /* change from ctime */
    put64(&e, 0x100000001ULL);                        /* size */
    put64(&e, 7), put64(&e, 0);                       /* fsid */
    put64(&e, 0x123456789aULL);                       /* fileid */
    put32(&e, 04755);                                 /* mode */
    put32(&e, 3);                                     /* numlinks */
    put_str(&e, "1000");                              /* owner */
    put_str(&e, "100");                               /* owner_group: padded */
    put64(&e, 1700000001), put32(&e, 999999999);      /* time_modify */
    exp_end(&e, at);
    CHECK(check_bytes("known", buf, len, &e));

    size_t sz = 0;
    CHECK_EQ(nfs4_attr_encoded_size(req, 2, &src, 0, &sz), 0);
    CHECK_EQ(sz, len);

    /* Constant attributes and the rest of word 0 (filehandle, lease, booleans). */
    uint32_t req2[1] = {BIT(NFS4_ATTR_FH_EXPIRE_TYPE) | BIT(NFS4_ATTR_LINK_SUPPORT) |
                        BIT(NFS4_ATTR_SYMLINK_SUPPORT) | BIT(NFS4_ATTR_NAMED_ATTR) |
                        BIT(NFS4_ATTR_UNIQUE_HANDLES) | BIT(NFS4_ATTR_LEASE_TIME) |
                        BIT(NFS4_ATTR_RDATTR_ERROR) | BIT(NFS4_ATTR_ACLSUPPORT) |
                        BIT(NFS4_ATTR_CANSETTIME) | BIT(NFS4_ATTR_CASE_INSENSITIVE) |
                        BIT(NFS4_ATTR_CASE_PRESERVING) | BIT(NFS4_ATTR_CHOWN_RESTRICTED) |
                        BIT(NFS4_ATTR_FILEHANDLE) | BIT(NFS4_ATTR_HOMOGENEOUS) |
                        BIT(NFS4_ATTR_MAXFILESIZE) | BIT(NFS4_ATTR_MAXLINK) | BIT(NFS4_ATTR_MAXNAME) |
                        BIT(NFS4_ATTR_MAXREAD) | BIT(NFS4_ATTR_MAXWRITE)};
    CHECK_EQ(encode(buf, sizeof(buf), req2, 1, &src, 1, &len), 0);
    at = exp_begin(&e, req2, 1);
    put32(&e, 0);                         /* FH4_PERSISTENT */
    put32(&e, 1), put32(&e, 1), put32(&e, 0); /* link, symlink, named_attr */
    put32(&e, 1);                         /* unique_handles */
    put32(&e, 90);                        /* lease_time */
    put32(&e, 0);                         /* rdattr_error: NFS4_OK */
    put32(&e, 0);                         /* aclsupport */
    put32(&e, 1), put32(&e, 0), put32(&e, 1), put32(&e, 1); /* cansettime..chown_restricted */
    put32(&e, 10);                        /* filehandle */
    memcpy(e.b + e.n, known_fh, 10), e.n += 10, e.b[e.n++] = 0, e.b[e.n++] = 0;
    put32(&e, 1);                         /* homogeneous */
    put64(&e, INT64_MAX);                 /* maxfilesize */
    put32(&e, 65000), put32(&e, 255);     /* maxlink, maxname */
    put64(&e, 1 << 20), put64(&e, 1 << 20);
    exp_end(&e, at);
    CHECK(check_bytes("constants", buf, len, &e));

    /* Space and time attributes, rawdev of a character device. */
    st.st_mode = S_IFCHR | 0620;
    st.st_rdev = makedev(136, 5);
    uint32_t req3[2] = {BIT(NFS4_ATTR_FILES_AVAIL) | BIT(NFS4_ATTR_FILES_FREE) | BIT(NFS4_ATTR_FILES_TOTAL),
                        BIT(NFS4_ATTR_RAWDEV) | BIT(NFS4_ATTR_SPACE_AVAIL) | BIT(NFS4_ATTR_SPACE_FREE) |
                            BIT(NFS4_ATTR_SPACE_TOTAL) | BIT(NFS4_ATTR_SPACE_USED) |
                            BIT(NFS4_ATTR_TIME_ACCESS) | BIT(NFS4_ATTR_TIME_DELTA) |
                            BIT(NFS4_ATTR_TIME_METADATA) | BIT(NFS4_ATTR_MOUNTED_ON_FILEID)};
    statfs_calls = 0;
    CHECK_EQ(encode(buf, sizeof(buf), req3, 2, &src, 0, &len), 0);
    CHECK_EQ(statfs_calls, 1); /* six attributes, one statfs */
    at = exp_begin(&e, req3, 2);
    put64(&e, 650), put64(&e, 700), put64(&e, 1000);
    put32(&e, 136), put32(&e, 5);
    put64(&e, 500000), put64(&e, 600000), put64(&e, 1000000);
    put64(&e, 9 * 512);
    put64(&e, 1700000000), put32(&e, 1);
    put64(&e, 0), put32(&e, 1); /* time_delta: 1 ns */
    put64(&e, 1700000002), put32(&e, 5);
    put64(&e, 0x123456789aULL);
    exp_end(&e, at);
    CHECK(check_bytes("space+time", buf, len, &e));

    /* type of every kind */
    static const struct { mode_t m; uint32_t t; } types[] = {
        {S_IFREG, 1}, {S_IFDIR, 2}, {S_IFBLK, 3}, {S_IFCHR, 4}, {S_IFLNK, 5}, {S_IFSOCK, 6}, {S_IFIFO, 7},
    };
    uint32_t rtype = BIT(NFS4_ATTR_TYPE);
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        st.st_mode = types[i].m | 0644;
        CHECK_EQ(encode(buf, sizeof(buf), &rtype, 1, &src, 0, &len), 0);
        CHECK_EQ(len, 16);
        CHECK_EQ(xdr_get_be32(buf + 12), types[i].t);
    }
}

static void test_minor_versions(void)
{
    struct stat st = known_stat();
    struct nfs4_attr_src src;
    uint8_t buf[1024];
    size_t len;
    struct exp e;

    known_src(&src, &st);
    src.nlayout_types = 1;
    src.layout_types[0] = 1; /* LAYOUT4_NFSV4_1_FILES */
    src.clone_blksize = 4096;
    src.xattr_support = true;

    /* supported_attrs + the 4.1 and 4.2 attributes */
    uint32_t req[3] = {BIT(NFS4_ATTR_SUPPORTED_ATTRS), BIT(NFS4_ATTR_FS_LAYOUT_TYPES),
                       BIT(NFS4_ATTR_LAYOUT_BLKSIZE) | BIT(NFS4_ATTR_SUPPATTR_EXCLCREAT) |
                           BIT(NFS4_ATTR_CLONE_BLKSIZE) | BIT(NFS4_ATTR_CHANGE_ATTR_TYPE) |
                           BIT(NFS4_ATTR_XATTR_SUPPORT) | BIT(NFS4_ATTR_OPEN_ARGUMENTS)};

    CHECK_EQ(encode(buf, sizeof(buf), req, 3, &src, 0, &len), 0);
    uint32_t got0[1] = {BIT(NFS4_ATTR_SUPPORTED_ATTRS)};
    size_t at = exp_begin(&e, got0, 1); /* 4.1/4.2 attributes silently omitted */
    put32(&e, 2), put32(&e, 0xFCFFAFFFu), put32(&e, 0x00F9BE3Eu);
    exp_end(&e, at);
    CHECK(check_bytes("minor 0", buf, len, &e));

    CHECK_EQ(encode(buf, sizeof(buf), req, 3, &src, 1, &len), 0);
    uint32_t got1[3] = {req[0], req[1], BIT(NFS4_ATTR_LAYOUT_BLKSIZE) | BIT(NFS4_ATTR_SUPPATTR_EXCLCREAT)};
    /* exclcreat 4.1 has a word-2 bit (mode_set_masked): three words */
    at = exp_begin(&e, got1, 3);
    put32(&e, 3), put32(&e, 0xFCFFAFFFu), put32(&e, 0x40F9BE3Eu), put32(&e, 0xC02);
    put32(&e, 1), put32(&e, 1);
    put32(&e, 1 << 20);
    put32(&e, 3), put32(&e, BIT(NFS4_ATTR_SIZE)),
        put32(&e, BIT(NFS4_ATTR_MODE) | BIT(NFS4_ATTR_OWNER) | BIT(NFS4_ATTR_OWNER_GROUP)),
        put32(&e, BIT(NFS4_ATTR_MODE_SET_MASKED));
    exp_end(&e, at);
    CHECK(check_bytes("minor 1", buf, len, &e));

    CHECK_EQ(encode(buf, sizeof(buf), req, 3, &src, 2, &len), 0);
    at = exp_begin(&e, req, 3);
    put32(&e, 3), put32(&e, 0xFCFFAFFFu), put32(&e, 0x40F9BE3Eu), put32(&e, 0x46AC02);
    put32(&e, 1), put32(&e, 1);
    put32(&e, 1 << 20);
    put32(&e, 3), put32(&e, BIT(NFS4_ATTR_SIZE)),
        put32(&e, BIT(NFS4_ATTR_MODE) | BIT(NFS4_ATTR_OWNER) | BIT(NFS4_ATTR_OWNER_GROUP)),
        put32(&e, BIT(NFS4_ATTR_MODE_SET_MASKED) | BIT(NFS4_ATTR_MODE_UMASK));
    put32(&e, 4096); /* clone_blksize */
    put32(&e, 3);    /* NFS4_CHANGE_TYPE_IS_TIME_METADATA */
    put32(&e, 1);    /* xattr_support */
    /* open_arguments (RFC 9754): five one-word bitmaps */
    put32(&e, 1), put32(&e, 0xe);  /* share access READ, WRITE, BOTH */
    put32(&e, 1), put32(&e, 0xf);  /* deny NONE..BOTH */
    put32(&e, 1), put32(&e, 0x3e); /* wants READ, WRITE, ANY, NO_DELEG, CANCEL */
    put32(&e, 1), put32(&e, 0x37); /* claims NULL, PREVIOUS, DELEGATE_CUR, FH, DELEG_CUR_FH */
    put32(&e, 1), put32(&e, 0xf);  /* create modes */
    exp_end(&e, at);
    CHECK(check_bytes("minor 2", buf, len, &e));
}

static void test_request_rules(void)
{
    struct stat st = known_stat();
    struct nfs4_attr_src src;
    uint8_t buf[1024];
    size_t len;
    struct exp e;

    known_src(&src, &st);

    /* unsupported (acl, archive, hidden, quota, time_create, bits 83..85, 87..) are omitted;
     * words beyond the third are ignored */
    uint32_t req[5] = {BIT(NFS4_ATTR_TYPE) | BIT(NFS4_ATTR_ACL) | BIT(NFS4_ATTR_ARCHIVE) |
                           BIT(NFS4_ATTR_HIDDEN) | BIT(NFS4_ATTR_FS_LOCATIONS),
                       BIT(NFS4_ATTR_QUOTA_USED) | BIT(NFS4_ATTR_TIME_CREATE) | BIT(NFS4_ATTR_TIME_BACKUP),
                       (0xfff80000u & ~BIT(NFS4_ATTR_OPEN_ARGUMENTS)) | BIT(NFS4_ATTR_SEC_LABEL), 0xffffffffu, 1};
    CHECK_EQ(encode(buf, sizeof(buf), req, 5, &src, 2, &len), 0);
    uint32_t got[1] = {BIT(NFS4_ATTR_TYPE)};
    size_t at = exp_begin(&e, got, 1);
    put32(&e, 1);
    exp_end(&e, at);
    CHECK(check_bytes("intersection", buf, len, &e));

    /* empty request: one zero word, empty attrlist */
    CHECK_EQ(encode(buf, sizeof(buf), req, 0, &src, 0, &len), 0);
    CHECK_EQ(len, 12);
    CHECK_EQ(xdr_get_be32(buf), 1);
    CHECK_EQ(xdr_get_be32(buf + 4), 0);
    CHECK_EQ(xdr_get_be32(buf + 8), 0);

    /* write-only attributes cannot be read: INVAL, cursor untouched */
    uint32_t wo[2] = {BIT(NFS4_ATTR_TYPE), BIT(NFS4_ATTR_TIME_ACCESS_SET)};
    CHECK_EQ(encode(buf, sizeof(buf), wo, 2, &src, 0, &len), NFS4ATTR_ERR_INVAL);
    CHECK_EQ(len, 0);
    uint32_t wo2[3] = {0, 0, BIT(NFS4_ATTR_MODE_UMASK)};
    CHECK_EQ(encode(buf, sizeof(buf), wo2, 3, &src, 2, &len), NFS4ATTR_ERR_INVAL);
    /* ... but in 4.0 mode_umask does not exist: omitted, not INVAL */
    CHECK_EQ(encode(buf, sizeof(buf), wo2, 3, &src, 0, &len), 0);

    /* no filehandle known: FILEHANDLE left out */
    src.fh_len = 0;
    uint32_t rfh[1] = {BIT(NFS4_ATTR_FILEHANDLE) | BIT(NFS4_ATTR_TYPE)};
    CHECK_EQ(encode(buf, sizeof(buf), rfh, 1, &src, 0, &len), 0);
    CHECK_EQ(xdr_get_be32(buf + 4), BIT(NFS4_ATTR_TYPE));
    known_src(&src, &st);

    /* rdattr_error: with the bit, the fattr4 holds only it; without, it is the status */
    struct nfs4_attr_src bad;
    nfs4_attr_src_defaults(&bad, NULL);
    bad.rdattr_error = 13; /* NFS4ERR_ACCESS */
    uint32_t rd[2] = {BIT(NFS4_ATTR_TYPE) | BIT(NFS4_ATTR_RDATTR_ERROR), BIT(NFS4_ATTR_MODE)};
    CHECK_EQ(encode(buf, sizeof(buf), rd, 2, &bad, 1, &len), 0);
    uint32_t rdgot[1] = {BIT(NFS4_ATTR_RDATTR_ERROR)};
    at = exp_begin(&e, rdgot, 1);
    put32(&e, 13);
    exp_end(&e, at);
    CHECK(check_bytes("rdattr_error", buf, len, &e));
    rd[0] = BIT(NFS4_ATTR_TYPE);
    CHECK_EQ(encode(buf, sizeof(buf), rd, 2, &bad, 1, &len), 13);
    CHECK_EQ(len, 0);
}

static void test_statfs_and_space(void)
{
    struct stat st = known_stat();
    struct nfs4_attr_src src;
    uint8_t buf[1024];
    size_t len;

    known_src(&src, &st);
    uint32_t nospace[2] = {BIT(NFS4_ATTR_TYPE) | BIT(NFS4_ATTR_SIZE), BIT(NFS4_ATTR_SPACE_USED)};
    statfs_calls = 0;
    CHECK_EQ(encode(buf, sizeof(buf), nospace, 2, &src, 0, &len), 0);
    CHECK_EQ(statfs_calls, 0); /* space_used comes from the stat */

    uint32_t space[2] = {BIT(NFS4_ATTR_TYPE), BIT(NFS4_ATTR_SPACE_AVAIL)};
    size_t sz;
    CHECK_EQ(nfs4_attr_encoded_size(space, 2, &src, 0, &sz), 0);
    CHECK_EQ(statfs_calls, 0); /* sizing never asks the backend */
    CHECK_EQ(sz, 4 + 8 + 4 + 4 + 8);
    statfs_status = 5; /* NFS4ERR_IO */
    CHECK_EQ(encode(buf, sizeof(buf), space, 2, &src, 0, &len), 5);
    CHECK_EQ(len, 0);
    statfs_status = 0;
    src.get_statfs = NULL; /* no callback: zeros */
    CHECK_EQ(encode(buf, sizeof(buf), space, 2, &src, 0, &len), 0);
    CHECK_EQ(xdr_get_be32(buf + 20) | xdr_get_be32(buf + 24), 0);

    /* every buffer size below the need gives NOSPACE and leaves the cursor alone */
    known_src(&src, &st);
    const uint32_t *all = nfs4_attr_supported(2);
    const uint32_t write_only[3] = {0, BIT(NFS4_ATTR_TIME_ACCESS_SET) | BIT(NFS4_ATTR_TIME_MODIFY_SET),
                                    BIT(NFS4_ATTR_MODE_SET_MASKED) | BIT(NFS4_ATTR_MODE_UMASK)};
    uint32_t readable[3];
    for (int i = 0; i < 3; i++)
        readable[i] = all[i] & ~write_only[i];
    size_t full;
    CHECK_EQ(encode(buf, sizeof(buf), readable, 3, &src, 2, &full), 0);
    CHECK_EQ(nfs4_attr_encoded_size(readable, 3, &src, 2, &sz), 0);
    CHECK_EQ(sz, full);
    for (size_t lim = 0; lim < full; lim++) {
        struct xdr_enc x;
        xdr_enc_init(&x, buf, lim);
        if (nfs4_attr_encode(&x, readable, 3, &src, 2) != NFS4ATTR_ERR_NOSPACE || xdr_enc_len(&x)) {
            CHECK(!"NOSPACE expected");
            break;
        }
        xdr_enc_init(&x, buf, sizeof(buf));
        if (nfs4_attr_encode_bounded(&x, lim, readable, 3, &src, 2) != NFS4ATTR_ERR_NOSPACE ||
            xdr_enc_len(&x)) {
            CHECK(!"bounded NOSPACE expected");
            break;
        }
    }
    struct xdr_enc x;
    xdr_enc_init(&x, buf, sizeof(buf));
    CHECK_EQ(nfs4_attr_encode_bounded(&x, full, readable, 3, &src, 2), 0);
    CHECK_EQ(xdr_enc_len(&x), full);
}

/* ---- settable attributes ---- */

static int decode(const uint32_t *bm, uint32_t n, const struct exp *e, struct nfs4_attr_set *set,
                  uint32_t *attrset, unsigned minor)
{
    return nfs4_attr_decode_set(bm, n, e->b, (uint32_t)e->n, set, attrset, minor);
}

static void test_decode_set(void)
{
    struct nfs4_attr_set set;
    uint32_t attrset[NFS4_ATTR_WORDS];
    struct exp e;

    nfs4_idmap_configure(NULL);

    /* every settable 4.0 attribute at once */
    uint32_t bm[2] = {BIT(NFS4_ATTR_SIZE), BIT(NFS4_ATTR_MODE) | BIT(NFS4_ATTR_OWNER) |
                                               BIT(NFS4_ATTR_OWNER_GROUP) | BIT(NFS4_ATTR_TIME_ACCESS_SET) |
                                               BIT(NFS4_ATTR_TIME_MODIFY_SET)};
    e.n = 0;
    put64(&e, 12345);
    put32(&e, S_IFDIR | 01777);
    put_str(&e, "1001");
    put_str(&e, "50");
    put32(&e, 1), put64(&e, (uint64_t)-5), put32(&e, 7); /* client time, before 1970 */
    put32(&e, 0);                                        /* server time */
    CHECK_EQ(decode(bm, 2, &e, &set, attrset, 0), 0);
    CHECK_EQ(set.mask, NFS4_SET_SIZE | NFS4_SET_MODE | NFS4_SET_UID | NFS4_SET_GID | NFS4_SET_ATIME |
                           NFS4_SET_MTIME_NOW);
    CHECK_EQ(set.size, 12345);
    CHECK_EQ(set.mode, 01777);
    CHECK_EQ(set.uid, 1001);
    CHECK_EQ(set.gid, 50);
    CHECK_EQ(set.atime.tv_sec, -5);
    CHECK_EQ(set.atime.tv_nsec, 7);
    CHECK_EQ(attrset[0], bm[0]);
    CHECK_EQ(attrset[1], bm[1]);
    CHECK_EQ(attrset[2], 0);

    struct fs_setattr fs;
    nfs4_attr_set_to_fs(&set, 0644, &fs);
    CHECK_EQ(fs.mask, FS_SET_SIZE | FS_SET_MODE | FS_SET_UID | FS_SET_GID | FS_SET_ATIME | FS_SET_MTIME_NOW);
    CHECK_EQ(fs.mode, 01777);
    CHECK_EQ(fs.atime.tv_sec, -5);

    /* the reverse combination of the time setters */
    uint32_t tb[2] = {0, BIT(NFS4_ATTR_TIME_ACCESS_SET) | BIT(NFS4_ATTR_TIME_MODIFY_SET)};
    e.n = 0;
    put32(&e, 0);
    put32(&e, 1), put64(&e, 1700000000), put32(&e, 999999999);
    CHECK_EQ(decode(tb, 2, &e, &set, attrset, 0), 0);
    CHECK_EQ(set.mask, NFS4_SET_ATIME_NOW | NFS4_SET_MTIME);
    CHECK_EQ(set.mtime.tv_sec, 1700000000);
    nfs4_attr_set_to_fs(&set, 0, &fs);
    CHECK_EQ(fs.mask, FS_SET_ATIME_NOW | FS_SET_MTIME);
    CHECK_EQ(fs.mtime.tv_nsec, 999999999);

    /* empty bitmap, empty values: nothing to set */
    e.n = 0;
    CHECK_EQ(decode(bm, 0, &e, &set, attrset, 0), 0);
    CHECK_EQ(set.mask, 0);

    /* mode_set_masked (4.1) */
    uint32_t mm[3] = {0, 0, BIT(NFS4_ATTR_MODE_SET_MASKED)};
    e.n = 0;
    put32(&e, 0107), put32(&e, 0177);
    CHECK_EQ(decode(mm, 3, &e, &set, attrset, 0), NFS4ATTR_ERR_ATTRNOTSUPP);
    CHECK_EQ(decode(mm, 3, &e, &set, attrset, 1), 0);
    CHECK_EQ(set.mask, NFS4_SET_MODE_MASKED);
    CHECK(nfs4_attr_set_needs_mode(&set));
    nfs4_attr_set_to_fs(&set, 04666, &fs);
    CHECK_EQ(fs.mask, FS_SET_MODE);
    CHECK_EQ(fs.mode, 04707); /* 04666 with 0177 replaced by 0107 */
    CHECK_EQ(attrset[2], BIT(NFS4_ATTR_MODE_SET_MASKED));

    /* mode_umask (4.2) */
    uint32_t mu[3] = {0, 0, BIT(NFS4_ATTR_MODE_UMASK)};
    e.n = 0;
    put32(&e, 0777), put32(&e, 022);
    CHECK_EQ(decode(mu, 3, &e, &set, attrset, 1), NFS4ATTR_ERR_ATTRNOTSUPP);
    CHECK_EQ(decode(mu, 3, &e, &set, attrset, 2), 0);
    CHECK_EQ(set.mask, NFS4_SET_MODE_UMASK);
    CHECK(!nfs4_attr_set_needs_mode(&set));
    nfs4_attr_set_to_fs(&set, 0, &fs);
    CHECK_EQ(fs.mode, 0755);

    /* mode twice over: INVAL */
    uint32_t both[3] = {0, BIT(NFS4_ATTR_MODE), BIT(NFS4_ATTR_MODE_UMASK)};
    e.n = 0;
    put32(&e, 0644), put32(&e, 0777), put32(&e, 022);
    CHECK_EQ(decode(both, 3, &e, &set, attrset, 2), NFS4ATTR_ERR_INVAL);
    CHECK_EQ(attrset[1] | attrset[2], 0);
    uint32_t both2[3] = {0, 0, BIT(NFS4_ATTR_MODE_UMASK) | BIT(NFS4_ATTR_MODE_SET_MASKED)};
    e.n = 0;
    put32(&e, 0644), put32(&e, 0777), put32(&e, 0777), put32(&e, 022);
    CHECK_EQ(decode(both2, 3, &e, &set, attrset, 2), NFS4ATTR_ERR_INVAL);

    /* errors */
    uint32_t sz[1] = {BIT(NFS4_ATTR_SIZE)};
    e.n = 0;
    put32(&e, 1); /* truncated uint64 */
    CHECK_EQ(decode(sz, 1, &e, &set, attrset, 0), NFS4ATTR_ERR_BADXDR);
    CHECK_EQ(attrset[0], 0);
    CHECK_EQ(set.mask, 0);
    e.n = 0;
    put64(&e, 1), put32(&e, 0); /* trailing bytes */
    CHECK_EQ(decode(sz, 1, &e, &set, attrset, 0), NFS4ATTR_ERR_BADXDR);
    CHECK_EQ(set.mask, 0);
    e.n = 0;
    put64(&e, 1);
    e.b[e.n++] = 0; /* one odd trailing byte */
    CHECK_EQ(decode(sz, 1, &e, &set, attrset, 0), NFS4ATTR_ERR_BADXDR);

    uint32_t ro[1] = {BIT(NFS4_ATTR_SIZE) | BIT(NFS4_ATTR_TYPE)}; /* type is read-only */
    e.n = 0;
    put64(&e, 1), put32(&e, 1);
    CHECK_EQ(decode(ro, 1, &e, &set, attrset, 0), NFS4ATTR_ERR_INVAL);
    uint32_t ro2[2] = {0, BIT(NFS4_ATTR_TIME_MODIFY)}; /* time_modify: only via _set */
    CHECK_EQ(decode(ro2, 2, &e, &set, attrset, 0), NFS4ATTR_ERR_INVAL);
    uint32_t acl[1] = {BIT(NFS4_ATTR_ACL)};
    CHECK_EQ(decode(acl, 1, &e, &set, attrset, 0), NFS4ATTR_ERR_ATTRNOTSUPP);
    uint32_t acl_ro[1] = {BIT(NFS4_ATTR_ACL) | BIT(NFS4_ATTR_TYPE)}; /* unsupported wins */
    CHECK_EQ(decode(acl_ro, 1, &e, &set, attrset, 0), NFS4ATTR_ERR_ATTRNOTSUPP);
    uint32_t unknown[3] = {0, 0, 1u << 31};
    CHECK_EQ(decode(unknown, 3, &e, &set, attrset, 2), NFS4ATTR_ERR_ATTRNOTSUPP);
    uint32_t far[4] = {BIT(NFS4_ATTR_SIZE), 0, 0, 1};
    e.n = 0;
    put64(&e, 1);
    CHECK_EQ(decode(far, 4, &e, &set, attrset, 2), NFS4ATTR_ERR_ATTRNOTSUPP);
    far[3] = 0; /* zero words beyond ours are fine */
    CHECK_EQ(decode(far, 4, &e, &set, attrset, 2), 0);

    uint32_t ta[2] = {0, BIT(NFS4_ATTR_TIME_ACCESS_SET)};
    e.n = 0;
    put32(&e, 2); /* bad time_how4 */
    CHECK_EQ(decode(ta, 2, &e, &set, attrset, 0), NFS4ATTR_ERR_BADXDR);
    e.n = 0;
    put32(&e, 1), put64(&e, 0), put32(&e, 1000000000); /* nseconds out of range */
    CHECK_EQ(decode(ta, 2, &e, &set, attrset, 0), NFS4ATTR_ERR_INVAL);
    e.n = 0;
    put32(&e, 1), put64(&e, 0); /* nfstime4 cut short */
    CHECK_EQ(decode(ta, 2, &e, &set, attrset, 0), NFS4ATTR_ERR_BADXDR);

    uint32_t ow[2] = {0, BIT(NFS4_ATTR_OWNER)};
    e.n = 0;
    put_str(&e, "");
    CHECK_EQ(decode(ow, 2, &e, &set, attrset, 0), NFS4ATTR_ERR_INVAL);
    e.n = 0;
    put_str(&e, "\xc0\xaf"); /* overlong '/' */
    CHECK_EQ(decode(ow, 2, &e, &set, attrset, 0), NFS4ATTR_ERR_INVAL);
    e.n = 0;
    put_str(&e, "alice"); /* numeric mode: names do not map */
    CHECK_EQ(decode(ow, 2, &e, &set, attrset, 0), NFS4ATTR_ERR_BADOWNER);
    e.n = 0;
    put_str(&e, "4294967295");
    CHECK_EQ(decode(ow, 2, &e, &set, attrset, 0), NFS4ATTR_ERR_BADOWNER);
    e.n = 0;
    put32(&e, 100); /* string length beyond the data */
    put32(&e, 0x31313131);
    CHECK_EQ(decode(ow, 2, &e, &set, attrset, 0), NFS4ATTR_ERR_BADXDR);
    e.n = 0;
    put32(&e, 1), put32(&e, 0x31000000 | 0x00ff0000); /* "1" with garbage padding is fine */
    CHECK_EQ(decode(ow, 2, &e, &set, attrset, 0), 0);
    CHECK_EQ(set.uid, 1);
}

static void test_utf8(void)
{
    CHECK(nfs4_attr_utf8_valid((const uint8_t *)"", 0));
    CHECK(nfs4_attr_utf8_valid((const uint8_t *)"abc", 3));
    CHECK(nfs4_attr_utf8_valid((const uint8_t *)"\xc3\xa9", 2));         /* é */
    CHECK(nfs4_attr_utf8_valid((const uint8_t *)"\xe2\x82\xac", 3));     /* € */
    CHECK(nfs4_attr_utf8_valid((const uint8_t *)"\xf0\x9f\x98\x80", 4)); /* U+1F600 */
    CHECK(!nfs4_attr_utf8_valid((const uint8_t *)"\xc3", 1));
    CHECK(!nfs4_attr_utf8_valid((const uint8_t *)"\x80", 1));
    CHECK(!nfs4_attr_utf8_valid((const uint8_t *)"\xe0\x80\xaf", 3));     /* overlong */
    CHECK(!nfs4_attr_utf8_valid((const uint8_t *)"\xed\xa0\x80", 3));     /* surrogate */
    CHECK(!nfs4_attr_utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    CHECK(!nfs4_attr_utf8_valid((const uint8_t *)"\xff", 1));
    /* U+FFFE / U+FFFF are not characters (pynfs LOOK7, OPEN13, COMP3) */
    CHECK(!nfs4_attr_utf8_valid((const uint8_t *)"\xef\xbf\xbe", 3));
    CHECK(!nfs4_attr_utf8_valid((const uint8_t *)"\xef\xbf\xbf", 3));
    CHECK(!nfs4_attr_utf8_valid((const uint8_t *)"a\xef\xbf\xbez", 5));
    CHECK(nfs4_attr_utf8_valid((const uint8_t *)"\xef\xbf\xbd", 3));     /* U+FFFD is one */
    CHECK(nfs4_attr_utf8_valid((const uint8_t *)"\xf0\x9f\xbf\xbe", 4)); /* U+1FFFE: valid UTF-8 */
    /* the rest of pynfs' invalid set */
    static const char *const pynfs_bad[] = {
        "\xc0\xc1", "\xe0\x8a", "\xc0\xaf", "\xfc\x80\x80\x80\x80\xaf", "\xed\xbf\xbf",
        "\xe3\xc0\xc0", "\xc0\x90", "\xbf", "\xfe", "\xc0 ", "\xdf ", "\xe0 ", "\xef ",
        "\xf0 ", "\xf7 ", "\xf8 ", "\xfb ", "\xfc ", "\xfd ",
    };
    for (size_t i = 0; i < sizeof(pynfs_bad) / sizeof(pynfs_bad[0]); i++)
        CHECK(!nfs4_attr_utf8_valid((const uint8_t *)pynfs_bad[i], strlen(pynfs_bad[i])));
}

static void test_idmap(void)
{
    char buf[NFS4_IDMAP_NAME_MAX + 1];
    uid_t uid = 99;
    gid_t gid = 99;

    CHECK_EQ(nfs4_idmap_configure(NULL), 0);
    CHECK_EQ(nfs4_idmap_uid_to_name(0, buf, sizeof(buf)), 1);
    CHECK(strcmp(buf, "0") == 0);
    CHECK_EQ(nfs4_idmap_uid_to_name(4294967294u, buf, sizeof(buf)), 10);
    CHECK(strcmp(buf, "4294967294") == 0);
    CHECK_EQ(nfs4_idmap_gid_to_name(1000, buf, 4), 0); /* too small */
    CHECK_EQ(nfs4_idmap_gid_to_name(1000, buf, 5), 4);
    CHECK_EQ(nfs4_idmap_name_to_uid("0", 1, &uid), 0);
    CHECK_EQ(uid, 0);
    CHECK_EQ(nfs4_idmap_name_to_gid("0012", 4, &gid), 0);
    CHECK_EQ(gid, 12);
    CHECK_EQ(nfs4_idmap_name_to_uid("", 0, &uid), NFS4ATTR_ERR_BADOWNER);
    CHECK_EQ(nfs4_idmap_name_to_uid("-1", 2, &uid), NFS4ATTR_ERR_BADOWNER);
    CHECK_EQ(nfs4_idmap_name_to_uid("12345678901", 11, &uid), NFS4ATTR_ERR_BADOWNER);
    CHECK_EQ(nfs4_idmap_name_to_uid("root@example.org", 16, &uid), NFS4ATTR_ERR_BADOWNER);

    CHECK_EQ(nfs4_idmap_configure("bad@domain"), -1);
    CHECK_EQ(nfs4_idmap_configure("Example.ORG"), 0);
    for (int round = 0; round < 2; round++) { /* the second round comes from the cache */
        CHECK_EQ(nfs4_idmap_uid_to_name(0, buf, sizeof(buf)), strlen("root@Example.ORG"));
        CHECK(strcmp(buf, "root@Example.ORG") == 0);
        CHECK_EQ(nfs4_idmap_gid_to_name(0, buf, sizeof(buf)), strlen("root@Example.ORG"));
        CHECK(strcmp(buf, "root@Example.ORG") == 0);
        uid = 99;
        CHECK_EQ(nfs4_idmap_name_to_uid("root@example.org", 16, &uid), 0);
        CHECK_EQ(uid, 0);
        gid = 99;
        CHECK_EQ(nfs4_idmap_name_to_gid("root@EXAMPLE.org", 16, &gid), 0);
        CHECK_EQ(gid, 0);
        uid = 99;
        CHECK_EQ(nfs4_idmap_name_to_uid("root", 4, &uid), 0); /* bare name */
        CHECK_EQ(uid, 0);
        CHECK_EQ(nfs4_idmap_name_to_uid("1000", 4, &uid), 0); /* numbers always */
        CHECK_EQ(uid, 1000);
        CHECK_EQ(nfs4_idmap_name_to_uid("root@other.org", 14, &uid), NFS4ATTR_ERR_BADOWNER);
        CHECK_EQ(nfs4_idmap_name_to_uid("@example.org", 12, &uid), NFS4ATTR_ERR_BADOWNER);
        CHECK_EQ(nfs4_idmap_name_to_uid("no-such-user-peernfs@example.org", 32, &uid),
                 NFS4ATTR_ERR_BADOWNER);
        CHECK_EQ(nfs4_idmap_name_to_uid("ro\0t", 4, &uid), NFS4ATTR_ERR_BADOWNER);
        /* an id without a name travels as a number */
        CHECK_EQ(nfs4_idmap_uid_to_name(3999999999u, buf, sizeof(buf)), 10);
        CHECK(strcmp(buf, "3999999999") == 0);
    }

    /* the encoder and decoder use the mapping */
    struct stat st = known_stat();
    st.st_uid = 0;
    st.st_gid = 0;
    struct nfs4_attr_src src;
    known_src(&src, &st);
    uint8_t out[256];
    size_t len;
    uint32_t req[2] = {0, BIT(NFS4_ATTR_OWNER) | BIT(NFS4_ATTR_OWNER_GROUP)};
    CHECK_EQ(encode(out, sizeof(out), req, 2, &src, 0, &len), 0);
    struct exp e;
    size_t at = exp_begin(&e, req, 2);
    put_str(&e, "root@Example.ORG");
    put_str(&e, "root@Example.ORG");
    exp_end(&e, at);
    CHECK(check_bytes("owner@domain", out, len, &e));
    struct nfs4_attr_set set;
    uint32_t attrset[3];
    CHECK_EQ(nfs4_attr_decode_set(req, 2, out + 16, (uint32_t)(len - 16), &set, attrset, 0), 0);
    CHECK_EQ(set.uid, 0);
    CHECK_EQ(set.gid, 0);

    CHECK_EQ(nfs4_idmap_configure(""), 0); /* back to numeric */
    CHECK_EQ(nfs4_idmap_uid_to_name(0, buf, sizeof(buf)), 1);
    CHECK_EQ(nfs4_idmap_name_to_uid("root@Example.ORG", 16, &uid), NFS4ATTR_ERR_BADOWNER);
}

static void test_compare(void)
{
    struct stat st = known_stat();
    struct nfs4_attr_src src;
    uint8_t buf[1024];
    size_t len;
    bool equal = true;

    nfs4_idmap_configure(NULL);
    known_src(&src, &st);
    uint32_t req[2] = {BIT(NFS4_ATTR_SIZE) | BIT(NFS4_ATTR_CHANGE) | BIT(NFS4_ATTR_FILEHANDLE),
                       BIT(NFS4_ATTR_MODE) | BIT(NFS4_ATTR_OWNER) | BIT(NFS4_ATTR_SPACE_TOTAL)};
    CHECK_EQ(encode(buf, sizeof(buf), req, 2, &src, 0, &len), 0);
    const uint8_t *vals = buf + 16;
    uint32_t vlen = (uint32_t)(len - 16);
    CHECK_EQ(xdr_get_be32(buf + 12), vlen);

    CHECK_EQ(nfs4_attr_compare(req, 2, vals, vlen, &src, 0, &equal), 0);
    CHECK(equal);
    st.st_size++;
    CHECK_EQ(nfs4_attr_compare(req, 2, vals, vlen, &src, 0, &equal), 0);
    CHECK(!equal);
    st.st_size--;
    CHECK_EQ(nfs4_attr_compare(req, 2, vals, vlen - 4, &src, 0, &equal), 0);
    CHECK(!equal); /* short */
    CHECK_EQ(nfs4_attr_compare(req, 2, vals, vlen, &src, 0, &equal), 0);
    CHECK(equal);

    uint32_t rd[1] = {BIT(NFS4_ATTR_RDATTR_ERROR)};
    CHECK_EQ(nfs4_attr_compare(rd, 1, vals, 4, &src, 0, &equal), NFS4ATTR_ERR_INVAL);
    uint32_t wo[2] = {0, BIT(NFS4_ATTR_TIME_MODIFY_SET)};
    CHECK_EQ(nfs4_attr_compare(wo, 2, vals, 4, &src, 0, &equal), NFS4ATTR_ERR_INVAL);
    uint32_t acl[1] = {BIT(NFS4_ATTR_ACL) | BIT(NFS4_ATTR_RDATTR_ERROR)};
    CHECK_EQ(nfs4_attr_compare(acl, 1, vals, 4, &src, 0, &equal), NFS4ATTR_ERR_ATTRNOTSUPP);
    uint32_t v42[3] = {0, 0, BIT(NFS4_ATTR_XATTR_SUPPORT)};
    CHECK_EQ(nfs4_attr_compare(v42, 3, vals, 4, &src, 1, &equal), NFS4ATTR_ERR_ATTRNOTSUPP);
    uint8_t f[4] = {0, 0, 0, 0};
    CHECK_EQ(nfs4_attr_compare(v42, 3, f, 4, &src, 2, &equal), 0);
    CHECK(equal); /* xattr_support false */
    statfs_status = 5;
    CHECK_EQ(nfs4_attr_compare(req, 2, vals, vlen, &src, 0, &equal), 5);
    statfs_status = 0;
    CHECK_EQ(nfs4_attr_compare(req, 0, vals, 0, &src, 0, &equal), 0);
    CHECK(equal); /* nothing compared */
}

/* Many threads through the domain-mode cache (collisions included): answers stay right. */
static void *idmap_worker(void *arg)
{
    long bad = 0;
    char buf[NFS4_IDMAP_NAME_MAX + 1], want[32];
    for (uint32_t i = 0; i < 20000; i++) {
        uint32_t id = (i * 7919u + (uint32_t)(uintptr_t)arg) % 100 + 100000; /* no names */
        size_t n = nfs4_idmap_uid_to_name(id, buf, sizeof(buf));
        snprintf(want, sizeof(want), "%u", id);
        bad += n != strlen(want) || strcmp(buf, want) != 0;
        uid_t uid = 1;
        bad += nfs4_idmap_name_to_uid("root@example.org", 16, &uid) != 0 || uid != 0;
        gid_t gid = 1;
        bad += nfs4_idmap_gid_to_name(0, buf, sizeof(buf)) != 16 || nfs4_idmap_name_to_gid(buf, 16, &gid) || gid;
    }
    return (void *)bad;
}

static void test_idmap_threads(void)
{
    pthread_t t[4];
    CHECK_EQ(nfs4_idmap_configure("example.org"), 0);
    for (long i = 0; i < 4; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, idmap_worker, (void *)i), 0);
    for (int i = 0; i < 4; i++) {
        void *bad;
        pthread_join(t[i], &bad);
        CHECK_EQ((long)bad, 0);
    }
    nfs4_idmap_configure(NULL);
}

/* ---- random inputs ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)rng_state;
}

static uint32_t rnd_bits(void)
{
    switch (rnd() % 4) {
    case 0:
        return 0;
    case 1:
        return rnd();
    case 2:
        return 1u << (rnd() % 32);
    default:
        return rnd() & rnd();
    }
}

static void test_random(void)
{
    struct stat st = known_stat();
    struct nfs4_attr_src src;
    uint8_t buf[4096], vals[256];
    uint32_t bm[5], attrset[3];
    struct nfs4_attr_set set;
    bool equal;
    static uint8_t big_fh[140];

    for (int i = 0; i < 200000; i++) {
        uint32_t n = rnd() % 6;
        for (uint32_t k = 0; k < n; k++)
            bm[k] = rnd_bits();
        unsigned minor = rnd() % 4;
        uint32_t len = rnd() % sizeof(vals);
        for (uint32_t k = 0; k < len; k++)
            vals[k] = (uint8_t)(rnd() % 4 ? rnd() % 3 : rnd()); /* small numbers are likely */
        if (i % 1000 == 0)
            nfs4_idmap_configure(i % 20000 == 10000 ? "example.org" : NULL); /* NSS is slow */

        int rc = nfs4_attr_decode_set(bm, n, vals, len, &set, attrset, minor);
        CHECK(rc == 0 || rc == NFS4ATTR_ERR_ATTRNOTSUPP || rc == NFS4ATTR_ERR_INVAL ||
              rc == NFS4ATTR_ERR_BADXDR || rc == NFS4ATTR_ERR_BADOWNER);
        if (rc != 0)
            CHECK_EQ(set.mask | attrset[0] | attrset[1] | attrset[2], 0);

        st.st_mode = (mode_t)rnd();
        st.st_nlink = rnd();
        st.st_uid = rnd() % 3 ? rnd() % 2000 : rnd();
        st.st_ctim.tv_nsec = rnd() % 1000000000;
        known_src(&src, &st);
        src.fh = big_fh;
        src.fh_len = rnd() % sizeof(big_fh);
        src.nlayout_types = rnd() % 6;
        src.rdattr_error = rnd() % 8 ? 0 : 10001;
        size_t cap = rnd() % 2 ? sizeof(buf) : rnd() % 200, len_out;
        rc = encode(buf, cap, bm, n, &src, minor, &len_out);
        if (rc == 0) {
            size_t sz = 0;
            CHECK_EQ(nfs4_attr_encoded_size(bm, n, &src, minor, &sz), 0);
            CHECK_EQ(sz, len_out);
        } else {
            CHECK_EQ(len_out, 0);
        }
        rc = nfs4_attr_compare(bm, n, vals, len, &src, minor, &equal);
        CHECK(rc == 0 || rc == NFS4ATTR_ERR_ATTRNOTSUPP || rc == NFS4ATTR_ERR_INVAL ||
              rc == NFS4ATTR_ERR_SERVERFAULT || rc == 10001);
        if (check_failures > 20)
            break;
    }
    nfs4_idmap_configure(NULL);
}

int main(void)
{
    test_masks();
    test_encode_known();
    test_minor_versions();
    test_request_rules();
    test_statfs_and_space();
    test_utf8();
    test_decode_set();
    test_idmap();
    test_compare();
    test_idmap_threads();
    test_random();
    return check_report("test_nfs4_attr");
}
