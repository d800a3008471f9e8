/*
 * libFuzzer target: the NFSv4 attribute layer on client-supplied fattr4s.
 *
 *   byte 0   bits 0-1 minor version (3 = an unknown later one), bit 2 domain idmap
 *            mode, bits 3-7 reply buffer size / 8 for the encoder
 *   byte 1   bitmap word count (mod 6)
 *   then     the bitmap words (big endian), then the attrlist4 bytes
 *
 * Each input goes through nfs4_attr_decode_set (SETATTR/CREATE/OPEN), on success
 * nfs4_attr_set_to_fs, then nfs4_attr_compare (VERIFY) and nfs4_attr_encode (GETATTR)
 * with the same bitmap against a fixed object. Invariants checked: statuses are the
 * documented ones, a failed decode sets nothing, encoded_size matches the encoder.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nfs4/nfs4_attr.h"
#include "nfs4/nfs4_idmap.h"

static int fake_statfs(void *ctx, struct fs_statfs *sf)
{
    (void)ctx;
    sf->total_bytes = 1u << 30;
    sf->free_bytes = sf->avail_bytes = 1u << 29;
    sf->total_files = 1000;
    sf->free_files = sf->avail_files = 10;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int domain_mode = -1;
    static const uint8_t fh[64] = {1};
    uint32_t bitmap[5], attrset[NFS4_ATTR_WORDS];
    struct nfs4_attr_set set;
    struct fs_setattr fs;
    uint8_t out[512];

    if (size < 2)
        return 0;
    unsigned minor = data[0] & 3;
    int want_domain = (data[0] >> 2) & 1;
    size_t cap = (size_t)(data[0] >> 3) * 16 + 8;
    uint32_t nwords = data[1] % 6;
    data += 2, size -= 2;
    if (size < 4 * (size_t)nwords)
        return 0;
    for (uint32_t i = 0; i < nwords; i++)
        bitmap[i] = xdr_get_be32(data + 4 * i);
    data += 4 * nwords, size -= 4 * nwords;
    if (size > UINT32_MAX)
        return 0;
    if (want_domain != domain_mode) { /* reconfiguring clears the cache: only on change */
        nfs4_idmap_configure(want_domain ? "fuzz.example" : NULL);
        domain_mode = want_domain;
    }

    /* copy so that ASan sees reads past the end of the attrlist */
    uint8_t *vals = malloc(size ? size : 1);
    if (!vals)
        return 0;
    memcpy(vals, data, size);

    int rc = nfs4_attr_decode_set(bitmap, nwords, vals, (uint32_t)size, &set, attrset, minor);
    if (rc == 0) {
        nfs4_attr_set_to_fs(&set, 0644, &fs);
    } else {
        if (rc != NFS4ATTR_ERR_ATTRNOTSUPP && rc != NFS4ATTR_ERR_INVAL && rc != NFS4ATTR_ERR_BADXDR &&
            rc != NFS4ATTR_ERR_BADOWNER)
            abort();
        if (set.mask || attrset[0] || attrset[1] || attrset[2])
            abort();
    }

    struct stat st;
    memset(&st, 0, sizeof(st));
    st.st_mode = S_IFREG | 0644;
    st.st_ino = 42;
    st.st_nlink = 1;
    st.st_uid = 0;
    st.st_size = (off_t)size;
    struct nfs4_attr_src src;
    nfs4_attr_src_defaults(&src, &st);
    src.get_statfs = fake_statfs;
    src.fh = fh;
    src.fh_len = sizeof(fh);

    bool equal;
    rc = nfs4_attr_compare(bitmap, nwords, vals, (uint32_t)size, &src, minor, &equal);
    if (rc != 0 && rc != NFS4ATTR_ERR_ATTRNOTSUPP && rc != NFS4ATTR_ERR_INVAL)
        abort();

    struct xdr_enc x;
    xdr_enc_init(&x, out, cap < sizeof(out) ? cap : sizeof(out));
    rc = nfs4_attr_encode(&x, bitmap, nwords, &src, minor);
    if (rc == 0) {
        size_t len;
        if (nfs4_attr_encoded_size(bitmap, nwords, &src, minor, &len) != 0 || len != xdr_enc_len(&x))
            abort();
    } else if ((rc != NFS4ATTR_ERR_NOSPACE && rc != NFS4ATTR_ERR_INVAL) || xdr_enc_len(&x) != 0) {
        abort();
    }
    free(vals);
    return 0;
}
