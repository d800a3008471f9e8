/*
 * NLM lock owner and host keys for the lock space, and lock space statuses as NLM4
 * statuses (the one table for the protocol).
 */
#include <string.h>

#include "nlm/nlm_internal.h"

static const uint8_t nlm_key_tag[3] = { 'n', 'l', 'm' };

size_t nlm_host_key(uint8_t *out, const char *name, size_t name_len)
{
    if (name_len > LM_MAXSTRLEN)
        name_len = LM_MAXSTRLEN;
    memcpy(out, nlm_key_tag, 3);
    memcpy(out + 3, name, name_len);
    return 3 + name_len;
}

size_t nlm_owner_key(uint8_t *out, const char *name, size_t name_len, int32_t svid, const uint8_t *oh,
                     size_t oh_len)
{
    uint32_t v = (uint32_t)svid;
    size_t n = 0;

    if (name_len > LM_MAXSTRLEN)
        name_len = LM_MAXSTRLEN;
    if (oh_len > MAXNETOBJ_SZ)
        oh_len = MAXNETOBJ_SZ;
    memcpy(out, nlm_key_tag, 3);
    n = 3;
    out[n++] = (uint8_t)(name_len >> 8);
    out[n++] = (uint8_t)name_len;
    memcpy(out + n, name, name_len);
    n += name_len;
    out[n++] = (uint8_t)(v >> 24);
    out[n++] = (uint8_t)(v >> 16);
    out[n++] = (uint8_t)(v >> 8);
    out[n++] = (uint8_t)v;
    if (oh_len)
        memcpy(out + n, oh, oh_len);
    return n + oh_len;
}

bool nlm_owner_key_parse(const uint8_t *key, size_t len, int32_t *svid, const uint8_t **oh, size_t *oh_len)
{
    if (len < 3 + 2 + 4 || memcmp(key, nlm_key_tag, 3) != 0)
        return false;
    size_t name_len = (size_t)key[3] << 8 | key[4];
    if (name_len > LM_MAXSTRLEN || len < 3 + 2 + name_len + 4)
        return false;
    const uint8_t *p = key + 5 + name_len;
    *svid = (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
    *oh = p + 4;
    *oh_len = len - (size_t)(p + 4 - key);
    return *oh_len <= MAXNETOBJ_SZ;
}

nlm4_stats nlm_status(enum lock_status st)
{
    switch (st) {
    case LOCK_OK:
    case LOCK_NOT_QUEUED: /* CANCEL of a waiter that is not queued: nothing to cancel */
        return NLM4_GRANTED;
    case LOCK_DENIED:
        return NLM4_DENIED;
    case LOCK_BLOCKED:
    case LOCK_ALREADY_QUEUED:
        return NLM4_BLOCKED;
    case LOCK_NOLOCKS:
        return NLM4_DENIED_NOLOCKS;
    case LOCK_STALE:
        return NLM4_STALE_FH;
    case LOCK_ACCESS: /* the backing file cannot be opened for the lock's access */
    case LOCK_IO:
    case LOCK_INVAL:
        break;
    }
    return NLM4_FAILED;
}
