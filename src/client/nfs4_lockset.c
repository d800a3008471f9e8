#include "client/nfs4_lockset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint64_t range_end(uint64_t off, uint64_t len)
{
    return len == 0 || len == UINT64_MAX || len > UINT64_MAX - off ? UINT64_MAX : off + len;
}

uint64_t nfs4_lock_range_len(const struct nfs4_lock_range *r)
{
    return r->end == UINT64_MAX ? UINT64_MAX : r->end - r->off;
}

static int reserve(struct nfs4_lockset *s, uint32_t more)
{
    if (s->n + more <= s->cap)
        return 0;
    if (s->n + more > NFS4_LOCKSET_MAX)
        return -ENOLCK;
    uint32_t cap = s->cap ? s->cap * 2 : 4;
    while (cap < s->n + more)
        cap *= 2;
    if (cap > NFS4_LOCKSET_MAX)
        cap = NFS4_LOCKSET_MAX;
    struct nfs4_lock_range *r = realloc(s->r, cap * sizeof(*r));
    if (!r)
        return -ENOMEM;
    s->r = r;
    s->cap = cap;
    return 0;
}

/* Cut [off, end) out of every range; a range cut in the middle becomes two, which
 * needs at most one more entry per call (the ranges are disjoint, so only one range can
 * contain the whole cut strictly inside it). The caller reserved that entry. */
static void cut(struct nfs4_lockset *s, uint64_t off, uint64_t end)
{
    uint32_t n = s->n;
    for (uint32_t i = 0; i < n;) {
        struct nfs4_lock_range *r = &s->r[i];
        if (r->end <= off || r->off >= end) {
            i++;
        } else if (r->off < off && r->end > end) {
            s->r[s->n++] = (struct nfs4_lock_range){ end, r->end, r->write };
            r->end = off;
            i++;
        } else if (r->off < off) {
            r->end = off;
            i++;
        } else if (r->end > end) {
            r->off = end;
            i++;
        } else {
            /* wholly covered: the last unscanned range takes its place (and is looked
             * at next), the piece a split appended moves down */
            s->r[i] = s->r[n - 1];
            memmove(&s->r[n - 1], &s->r[n], (s->n - n) * sizeof(*r));
            n--;
            s->n--;
        }
    }
}

int nfs4_lockset_add(struct nfs4_lockset *s, bool write, uint64_t off, uint64_t len)
{
    int st = reserve(s, 2);
    if (st)
        return st;
    uint64_t end = range_end(off, len);
    cut(s, off, end);
    s->r[s->n++] = (struct nfs4_lock_range){ off, end, write };
    return 0;
}

int nfs4_lockset_remove(struct nfs4_lockset *s, uint64_t off, uint64_t len)
{
    int st = reserve(s, 1);
    if (st)
        return st;
    cut(s, off, range_end(off, len));
    return 0;
}

int nfs4_lockset_copy(struct nfs4_lockset *dst, const struct nfs4_lockset *src)
{
    memset(dst, 0, sizeof(*dst));
    if (!src->n)
        return 0;
    dst->r = malloc(src->n * sizeof(*dst->r));
    if (!dst->r)
        return -ENOMEM;
    memcpy(dst->r, src->r, src->n * sizeof(*dst->r));
    dst->n = dst->cap = src->n;
    return 0;
}

void nfs4_lockset_clear(struct nfs4_lockset *s)
{
    free(s->r);
    memset(s, 0, sizeof(*s));
}
