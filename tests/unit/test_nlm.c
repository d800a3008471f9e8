/* nlm/: owner and host keys (encode/decode), lock space status -> NLM4 status table,
 * the v1/v3 translation (statuses, 32-bit ranges, GRANTED arguments). */
#include <string.h>

#include "check.h"
#include "nlm/nlm_internal.h"

static void test_owner_key_roundtrip(void)
{
    uint8_t key[NLM_KEY_MAX], oh[MAXNETOBJ_SZ];
    memset(oh, 0xab, sizeof(oh));
    size_t n = nlm_owner_key(key, "client-1", 8, -5, oh, 7);
    int32_t svid = 0;
    const uint8_t *poh;
    size_t ohlen;
    CHECK(nlm_owner_key_parse(key, n, &svid, &poh, &ohlen));
    CHECK_EQ(svid, -5);
    CHECK_EQ(ohlen, 7u);
    CHECK(memcmp(poh, oh, 7) == 0);
    /* empty oh, longest name and oh */
    char name[LM_MAXSTRLEN];
    memset(name, 'x', sizeof(name));
    n = nlm_owner_key(key, name, sizeof(name), 42, oh, sizeof(oh));
    CHECK(n <= NLM_KEY_MAX);
    CHECK(nlm_owner_key_parse(key, n, &svid, &poh, &ohlen));
    CHECK_EQ(svid, 42);
    CHECK_EQ(ohlen, (size_t)MAXNETOBJ_SZ);
    n = nlm_owner_key(key, "h", 1, 1, NULL, 0);
    CHECK(nlm_owner_key_parse(key, n, &svid, &poh, &ohlen));
    CHECK_EQ(ohlen, 0u);
    /* different owners, different keys */
    uint8_t k2[NLM_KEY_MAX];
    size_t n2 = nlm_owner_key(k2, "h", 1, 2, NULL, 0);
    CHECK(n == n2 && memcmp(key, k2, n) != 0);
    /* truncated and foreign keys are refused */
    CHECK(!nlm_owner_key_parse(key, n - 1, &svid, &poh, &ohlen));
    CHECK(!nlm_owner_key_parse((const uint8_t *)"v4:clientid-owner", 17, &svid, &poh, &ohlen));
    uint8_t bad[9] = { 'n', 'l', 'm', 0xff, 0xff, 0, 0, 0, 0 };
    CHECK(!nlm_owner_key_parse(bad, sizeof(bad), &svid, &poh, &ohlen));
}

static void test_host_key(void)
{
    uint8_t a[NLM_KEY_MAX], b[NLM_KEY_MAX];
    size_t na = nlm_host_key(a, "client", 6), nb = nlm_host_key(b, "client", 6);
    CHECK(na == nb && memcmp(a, b, na) == 0);
    CHECK_EQ(na, 9u);
}

static void test_status(void)
{
    CHECK_EQ(nlm_status(LOCK_OK), NLM4_GRANTED);
    CHECK_EQ(nlm_status(LOCK_DENIED), NLM4_DENIED);
    CHECK_EQ(nlm_status(LOCK_BLOCKED), NLM4_BLOCKED);
    CHECK_EQ(nlm_status(LOCK_ALREADY_QUEUED), NLM4_BLOCKED);
    CHECK_EQ(nlm_status(LOCK_NOLOCKS), NLM4_DENIED_NOLOCKS);
    CHECK_EQ(nlm_status(LOCK_STALE), NLM4_STALE_FH);
    CHECK_EQ(nlm_status(LOCK_IO), NLM4_FAILED);
    CHECK_EQ(nlm_status(LOCK_ACCESS), NLM4_FAILED);
    CHECK_EQ(nlm_status(LOCK_NOT_QUEUED), NLM4_GRANTED);
}

/* Versions 1 and 3: the nearest LCK_* status, 32-bit ranges widened and narrowed. */
static void test_v1_status(void)
{
    CHECK_EQ(nlm1_status(NLM4_GRANTED), LCK_GRANTED);
    CHECK_EQ(nlm1_status(NLM4_DENIED), LCK_DENIED);
    CHECK_EQ(nlm1_status(NLM4_DENIED_NOLOCKS), LCK_DENIED_NOLOCKS);
    CHECK_EQ(nlm1_status(NLM4_BLOCKED), LCK_BLOCKED);
    CHECK_EQ(nlm1_status(NLM4_DENIED_GRACE_PERIOD), LCK_DENIED_GRACE_PERIOD);
    CHECK_EQ(nlm1_status(NLM4_DEADLCK), LCK_DENIED);
    CHECK_EQ(nlm1_status(NLM4_ROFS), LCK_DENIED_NOLOCKS);
    CHECK_EQ(nlm1_status(NLM4_STALE_FH), LCK_DENIED_NOLOCKS);
    CHECK_EQ(nlm1_status(NLM4_FBIG), LCK_DENIED_NOLOCKS);
    CHECK_EQ(nlm1_status(NLM4_FAILED), LCK_DENIED_NOLOCKS);
}

static void test_v1_ranges(void)
{
    uint8_t fh[32];
    memset(fh, 7, sizeof(fh));
    nlm1_lock l1 = { .caller_name = { 4, "host" }, .fh = { sizeof(fh), fh }, .oh = { 2, (const uint8_t *)"oh" },
                     .uppid = -3, .l_offset = UINT32_MAX, .l_len = 0 };
    nlm4_lock l4;
    nlm1_lock_widen(&l1, &l4);
    CHECK_EQ(l4.l_offset, (uint64_t)UINT32_MAX);
    CHECK_EQ(l4.l_len, 0u); /* to the end of the file in both */
    CHECK_EQ(l4.svid, -3);
    CHECK(l4.fh.len == 32 && l4.fh.val == fh && l4.caller_name.len == 4 && l4.oh.len == 2);

    nlm4_holder h4 = { .exclusive = true, .svid = 9, .oh = { 2, (const uint8_t *)"oh" }, .l_offset = 10,
                       .l_len = 20 };
    nlm1_holder h1;
    nlm1_holder_narrow(&h4, &h1);
    CHECK(h1.exclusive && h1.uppid == 9 && h1.oh.len == 2 && h1.l_offset == 10 && h1.l_len == 20);
    h4.l_offset = (uint64_t)1 << 40;
    h4.l_len = ((uint64_t)1 << 32) + 1;
    nlm1_holder_narrow(&h4, &h1);
    CHECK_EQ(h1.l_offset, UINT32_MAX);
    CHECK_EQ(h1.l_len, UINT32_MAX);
    h4.l_len = 0;
    nlm1_holder_narrow(&h4, &h1);
    CHECK_EQ(h1.l_len, 0u);
    h4.l_offset = UINT32_MAX;
    h4.l_len = UINT32_MAX;
    nlm1_holder_narrow(&h4, &h1);
    CHECK(h1.l_offset == UINT32_MAX && h1.l_len == UINT32_MAX);
}

/* A blocked v1/v3 lock's GRANTED callback carries v1 arguments: they decode as
 * nlm1_testargs, not as v4 ones. */
static void test_v1_granted_args(void)
{
    uint8_t fh[32], buf[4096], arena_mem[1024];
    memset(fh, 1, sizeof(fh));
    nlm4_testargs g = { .cookie = { 3, (const uint8_t *)"ck1" }, .exclusive = true,
                        .alock = { .caller_name = { 1, "h" }, .fh = { sizeof(fh), fh },
                                   .oh = { 1, (const uint8_t *)"o" }, .svid = 12, .l_offset = 0xfffffff0u,
                                   .l_len = 0x10 } };
    struct xdr_enc x;
    xdr_enc_init(&x, buf, sizeof(buf));
    CHECK(nlm1_encode_testargs(&x, &g));
    /* cookie 4+4, exclusive 4, caller 4+4, fh 4+32, oh 4+4, uppid 4, offset 4, length 4 */
    CHECK_EQ(xdr_enc_len(&x), 76u);
    struct xdr_arena arena;
    struct xdr_dec d;
    xdr_arena_init(&arena, arena_mem, sizeof(arena_mem));
    xdr_dec_init(&d, buf, xdr_enc_len(&x), &arena);
    nlm1_testargs back;
    CHECK(xdr_decode_nlm1_testargs(&d, &back));
    CHECK(back.exclusive && back.alock.uppid == 12 && back.alock.l_offset == 0xfffffff0u &&
          back.alock.l_len == 0x10 && back.alock.fh.len == 32 && memcmp(back.alock.fh.val, fh, 32) == 0 &&
          back.cookie.len == 3 && memcmp(back.cookie.val, "ck1", 3) == 0);
    CHECK(d.p == d.end);
}

int main(void)
{
    test_owner_key_roundtrip();
    test_host_key();
    test_status();
    test_v1_status();
    test_v1_ranges();
    test_v1_granted_args();
    return check_report("test_nlm");
}
