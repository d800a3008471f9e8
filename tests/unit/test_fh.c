/*
 * Wire filehandles (src/fs/fh.c) and SipHash-2-4 (src/fs/siphash.c): the reference
 * vectors of the SipHash paper (key 00..0f, messages 00, 00 01, ...), wrap/unwrap round
 * trips, and every way a handle can be malformed, forged or stale. Also the key file:
 * created once with mode 0600, reused afterwards, a damaged one refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "fs/export.h"
#include "fs/fh.h"
#include "fs/siphash.h"

/* SipHash-2-4 outputs (as bytes) for message lengths 0..16, from the paper's
 * reference implementation (vectors.h); length 15 is the paper's Appendix A example. */
static const uint8_t sip_vectors[17][8] = {
    {0x31, 0x0e, 0x0e, 0xdd, 0x47, 0xdb, 0x6f, 0x72}, {0xfd, 0x67, 0xdc, 0x93, 0xc5, 0x39, 0xf8, 0x74},
    {0x5a, 0x4f, 0xa9, 0xd9, 0x09, 0x80, 0x6c, 0x0d}, {0x2d, 0x7e, 0xfb, 0xd7, 0x96, 0x66, 0x67, 0x85},
    {0xb7, 0x87, 0x71, 0x27, 0xe0, 0x94, 0x27, 0xcf}, {0x8d, 0xa6, 0x99, 0xcd, 0x64, 0x55, 0x76, 0x18},
    {0xce, 0xe3, 0xfe, 0x58, 0x6e, 0x46, 0xc9, 0xcb}, {0x37, 0xd1, 0x01, 0x8b, 0xf5, 0x00, 0x02, 0xab},
    {0x62, 0x24, 0x93, 0x9a, 0x79, 0xf5, 0xf5, 0x93}, {0xb0, 0xe4, 0xa9, 0x0b, 0xdf, 0x82, 0x00, 0x9e},
    {0xf3, 0xb9, 0xdd, 0x94, 0xc5, 0xbb, 0x5d, 0x7a}, {0xa7, 0xad, 0x6b, 0x22, 0x46, 0x2f, 0xb3, 0xf4},
    {0xfb, 0xe5, 0x0e, 0x86, 0xbc, 0x8f, 0x1e, 0x75}, {0x90, 0x3d, 0x84, 0xc0, 0x27, 0x56, 0xea, 0x14},
    {0xee, 0xf2, 0x7a, 0x8e, 0x90, 0xca, 0x23, 0xf7}, {0xe5, 0x45, 0xbe, 0x49, 0x61, 0xca, 0x29, 0xa1},
    {0xdb, 0x9b, 0xc2, 0x57, 0x7f, 0xcc, 0x2a, 0x3f},
};

static void test_siphash_vectors(void)
{
    uint8_t key[16], msg[17];
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)i;
    for (int i = 0; i < 17; i++)
        msg[i] = (uint8_t)i;
    for (size_t len = 0; len < 17; len++) {
        uint64_t h = siphash24(key, msg, len);
        uint8_t out[8];
        for (int i = 0; i < 8; i++)
            out[i] = (uint8_t)(h >> (8 * i));
        if (memcmp(out, sip_vectors[len], 8) != 0) {
            fprintf(stderr, "siphash vector %zu mismatch\n", len);
            check_failures++;
        }
    }
    /* the paper's Appendix A value as a 64-bit number */
    CHECK(siphash24(key, msg, 15) == 0xa129ca6149be45e5ull);
}

static struct fs_fh sample_fh(uint8_t len, uint8_t seed)
{
    struct fs_fh fh;
    memset(&fh, 0, sizeof(fh));
    fh.len = len;
    for (int i = 0; i < len; i++)
        fh.data[i] = (uint8_t)(seed + i * 7);
    return fh;
}

static void test_wrap_unwrap(void)
{
    struct export_table t;
    char err[256];
    CHECK_EQ(export_table_parse(&t, "/a *(rw,fsid=7)\n/b *(fsid=300)\n", "t", err, sizeof(err)), 0);
    CHECK_EQ(t.nexports, 2);
    struct fh_key key;
    for (int i = 0; i < 16; i++)
        key.k[i] = (uint8_t)(0xa0 + i);

    uint8_t wire[FH_WIRE_MAX];
    struct export *ex = NULL;
    struct fs_fh out;
    for (uint8_t len = 1; len <= FS_FH_MAX; len++) {
        struct fs_fh fh = sample_fh(len, len);
        uint32_t n = fh_wrap(&key, 300, &fh, wire);
        CHECK_EQ(n, 4u + len + 8u);
        CHECK(n <= FH_WIRE_MAX);
        CHECK_EQ(wire[0], 1);
        CHECK_EQ(wire[1], len);
        CHECK_EQ(wire[2], 300 >> 8);
        CHECK_EQ(wire[3], 300 & 0xff);
        memset(&out, 0, sizeof(out));
        CHECK_EQ(fh_unwrap(&key, &t, wire, n, &ex, &out), 0);
        CHECK(ex == &t.exports[1]);
        CHECK_EQ(out.len, len);
        CHECK(memcmp(out.data, fh.data, len) == 0);
    }

    struct fs_fh fh = sample_fh(12, 3);
    uint32_t n = fh_wrap(&key, 7, &fh, wire);
    CHECK_EQ(fh_unwrap(&key, &t, wire, n, &ex, &out), 0);
    CHECK(ex == &t.exports[0]);

    /* every single-bit change anywhere is caught */
    for (uint32_t i = 0; i < n; i++) {
        for (int b = 0; b < 8; b++) {
            uint8_t bad[FH_WIRE_MAX];
            memcpy(bad, wire, n);
            bad[i] ^= (uint8_t)(1u << b);
            int rc = fh_unwrap(&key, &t, bad, n, &ex, &out);
            if (rc != -EBADMSG) {
                fprintf(stderr, "bit flip at byte %u bit %d: rc %d\n", i, b, rc);
                check_failures++;
            }
        }
    }
    /* truncated, extended, empty */
    for (uint32_t len = 0; len < n; len++)
        CHECK_EQ(fh_unwrap(&key, &t, wire, len, &ex, &out), -EBADMSG);
    uint8_t longer[FH_WIRE_MAX] = {0};
    memcpy(longer, wire, n);
    CHECK_EQ(fh_unwrap(&key, &t, longer, n + 1, &ex, &out), -EBADMSG);
    CHECK_EQ(fh_unwrap(&key, &t, longer, FH_WIRE_MAX + 1, &ex, &out), -EBADMSG);
    /* wrong version with a MAC that is valid for it: still refused */
    {
        uint8_t v2[FH_WIRE_MAX];
        memcpy(v2, wire, n);
        v2[0] = 2;
        uint64_t mac = siphash24(key.k, v2, 4 + 12);
        for (int i = 0; i < 8; i++)
            v2[16 + i] = (uint8_t)(mac >> (8 * i));
        CHECK_EQ(fh_unwrap(&key, &t, v2, n, &ex, &out), -EBADMSG);
    }
    /* a length byte larger than FS_FH_MAX */
    {
        uint8_t big[FH_WIRE_MAX];
        memset(big, 0, sizeof(big));
        big[0] = 1;
        big[1] = FS_FH_MAX + 1;
        CHECK_EQ(fh_unwrap(&key, &t, big, FH_WIRE_MAX, &ex, &out), -EBADMSG);
    }
    /* another key: forged */
    struct fh_key other = key;
    other.k[0] ^= 1;
    CHECK_EQ(fh_unwrap(&other, &t, wire, n, &ex, &out), -EBADMSG);
    /* a valid MAC for an export id the table does not have: stale */
    n = fh_wrap(&key, 8, &fh, wire);
    CHECK_EQ(fh_unwrap(&key, &t, wire, n, &ex, &out), -ESTALE);
    /* invalid backend handles are not wrapped */
    struct fs_fh empty = sample_fh(0, 0);
    CHECK_EQ(fh_wrap(&key, 7, &empty, wire), 0);
    export_table_free(&t);
}

static void test_key_file(void)
{
    char dir[] = "/tmp/peernfs-fhkey-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char state[512], path[600];
    snprintf(state, sizeof(state), "%s/state", dir); /* created by fh_key_load */
    snprintf(path, sizeof(path), "%s/fh.key", state);

    struct fh_key k1, k2;
    CHECK_EQ(fh_key_load(&k1, state), 0);
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);
    CHECK_EQ(st.st_mode & 07777, 0600);
    CHECK_EQ(st.st_size, 16);
    CHECK_EQ(fh_key_load(&k2, state), 0);
    CHECK(memcmp(k1.k, k2.k, 16) == 0);
    static const uint8_t zero[16];
    CHECK(memcmp(k1.k, zero, 16) != 0);

    /* no temporary file left behind */
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "test $(ls -A %s | wc -l) -eq 1", state);
    CHECK_EQ(system(cmd), 0);

    /* a damaged key file is an error, not silently replaced */
    int fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, "short", 5), 5);
    close(fd);
    CHECK_EQ(fh_key_load(&k2, state), -EINVAL);

    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK_EQ(system(cmd), 0);
}

int main(void)
{
    test_siphash_vectors();
    test_wrap_unwrap();
    test_key_file();
    return check_report("test_fh");
}
