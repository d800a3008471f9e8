/* nlm/: owner and host keys (encode/decode), lock space status -> NLM4 status table. */
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

int main(void)
{
    test_owner_key_roundtrip();
    test_host_key();
    test_status();
    return check_report("test_nlm");
}
