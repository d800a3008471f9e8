#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lock/lock_range.h"

void lock_range_clamp(uint64_t start, uint64_t len, off_t *s, off_t *e)
{
    uint64_t max = (uint64_t)OFF_MAX;
    if (start > max)
        start = max;
    *s = (off_t)start;
    /* last byte = start + len - 1; beyond OFF_MAX (or wrapping) means to end of file */
    if (len == 0 || len - 1 > max - start)
        *e = OFF_MAX;
    else
        *e = (off_t)(start + len - 1);
}

int lock_rngset_reserve(struct lock_rngset *rs)
{
    /* one apply adds at most two ranges (split of one range + the new one) */
    if (rs->n + 2 <= rs->cap)
        return 0;
    size_t cap = rs->cap ? rs->cap * 2 : 4;
    while (cap < rs->n + 2)
        cap *= 2;
    struct lock_rng *v = realloc(rs->v, cap * sizeof(*v));
    if (!v)
        return -ENOMEM;
    rs->v = v;
    rs->cap = cap;
    return 0;
}

void lock_rngset_apply(struct lock_rngset *rs, off_t start, off_t end, short type)
{
    /* Rebuild in place: ranges before, the cut-off heads/tails of overlapping ones, the
     * new range, ranges after -- all in order since the input is sorted and disjoint. */
    size_t n = rs->n, i = 0, o;
    struct lock_rng tail = {0, 0, 0};
    int have_tail = 0;

    while (i < n && rs->v[i].end < start)
        i++;
    o = i;
    size_t j = i;
    for (; j < n && rs->v[j].start <= end; j++) {
        struct lock_rng r = rs->v[j];
        if (r.start < start)
            rs->v[o++] = (struct lock_rng){r.start, start - 1, r.type};
        if (r.end > end) {
            tail = (struct lock_rng){end + 1, r.end, r.type};
            have_tail = 1;
        }
    }
    /* ranges [j, n) follow; o <= j, and we insert up to 2 more: shift them */
    size_t rest = n - j;
    size_t ins = (type != F_UNLCK) + have_tail;
    memmove(&rs->v[o + ins], &rs->v[j], rest * sizeof(rs->v[0]));
    if (type != F_UNLCK)
        rs->v[o++] = (struct lock_rng){start, end, type};
    if (have_tail)
        rs->v[o++] = tail;
    rs->n = o + rest;

    /* merge adjacent same-type neighbours (the kernel does the same per owner) */
    size_t w = 0;
    for (size_t r = 0; r < rs->n; r++) {
        if (w > 0 && rs->v[w - 1].type == rs->v[r].type && rs->v[w - 1].end != OFF_MAX &&
            rs->v[w - 1].end + 1 == rs->v[r].start)
            rs->v[w - 1].end = rs->v[r].end;
        else
            rs->v[w++] = rs->v[r];
    }
    rs->n = w;
}

void lock_rngset_free(struct lock_rngset *rs)
{
    free(rs->v);
    rs->v = NULL;
    rs->n = rs->cap = 0;
}
