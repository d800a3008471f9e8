/*
 * Delegation recalls for access that does not come through NFSv4 (NFSv3, NLM): RFC 8881
 * section 10.4 lets a client holding a delegation serve opens, reads, writes and locks
 * from its cache, so any other access to the file must recall the delegation first.
 *
 * NFSv3 calls this on every READ and WRITE, so the common case (no delegation exists
 * anywhere) costs one relaxed atomic load; only then is the file's key made and the
 * state lock taken.
 */
#include "nfs4/nfs4_internal.h"

bool nfs4_deleg_active(struct nfs4_server *s)
{
    return s->state && state_deleg_count(s->state) != 0;
}

/* Out of line: its key buffer (and the stack protector's canary) would otherwise cost
 * the fast path a large frame on every NFSv3 READ and WRITE. */
static __attribute__((noinline)) bool nfs4_deleg_break_file(struct nfs4_server *s, const struct export *ex,
                                                            const struct fs_fh *fh, bool write)
{
    /* state/ names a file by its wire handle, which NFSv3 wraps with the same key */
    uint8_t key[FH_WIRE_MAX];
    uint32_t len = fh_wrap(&s->fh_key, ex->id, fh, key);
    return len && state_deleg_break_for_file(s->state, key, len, write);
}

bool nfs4_deleg_break(struct nfs4_server *s, const struct export *ex, const struct fs_fh *fh, bool write)
{
    return nfs4_deleg_active(s) && nfs4_deleg_break_file(s, ex, fh, write);
}

/* A local process opens a file the backend watches for us: is it still delegated? */
bool nfs4_deleg_watch_held(void *ctx, const void *key, size_t keylen, bool recall)
{
    struct nfs4_server *s = ctx;
    return state_deleg_held(s->state, key, keylen, recall);
}
