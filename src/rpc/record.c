#include "rpc/record.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "xdr/xdr.h"

/*
 * Buffers for big records (a 1 MiB WRITE) come in one size class and are recycled, so
 * receiving into them touches pages that are already mapped instead of faulting in 256
 * fresh pages per request. Smaller buffers come from malloc, which reuses warm memory
 * by itself at these sizes.
 */
#define RBUF_BIG_CAP ((1u << 20) + (128u << 10))
#define RBUF_BIG_SPARES 16

static struct {
    pthread_mutex_t mu;
    struct rbuf *free[RBUF_BIG_SPARES];
    unsigned n;
} big_spares = { .mu = PTHREAD_MUTEX_INITIALIZER };

struct rbuf *rbuf_new(size_t cap)
{
    struct rbuf *b = NULL;
    if (cap > REC_DEFAULT_BUF && cap <= RBUF_BIG_CAP) {
        cap = RBUF_BIG_CAP;
        pthread_mutex_lock(&big_spares.mu);
        if (big_spares.n)
            b = big_spares.free[--big_spares.n];
        pthread_mutex_unlock(&big_spares.mu);
    }
    if (!b && !(b = malloc(sizeof(*b) + cap)))
        return NULL;
    atomic_init(&b->refs, 1);
    b->cap = cap;
    return b;
}

void rbuf_put(struct rbuf *b)
{
    if (!b || atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (b->cap == RBUF_BIG_CAP) {
        pthread_mutex_lock(&big_spares.mu);
        if (big_spares.n < RBUF_BIG_SPARES) {
            big_spares.free[big_spares.n++] = b;
            b = NULL;
        }
        pthread_mutex_unlock(&big_spares.mu);
    }
    free(b);
}

void rec_reader_init(struct rec_reader *r, size_t max_record)
{
    memset(r, 0, sizeof(*r));
    r->max_record = max_record;
}

void rec_reader_free(struct rec_reader *r)
{
    rbuf_put(r->buf);
    r->buf = NULL;
}

/* Bytes the current record still needs beyond what is buffered, when known. */
static size_t bytes_wanted(const struct rec_reader *r)
{
    size_t have = r->len - r->rec_start;
    size_t need = r->in_record ? r->rec_len + r->frag_left + 4 : 4;
    return need > have ? need - have : 0;
}

uint8_t *rec_reader_space(struct rec_reader *r, size_t *avail)
{
    if (r->buf && r->len < r->buf->cap) {
        *avail = r->buf->cap - r->len;
        return r->buf->data + r->len;
    }
    /* Full (or none yet): start a new buffer holding the unfinished record, big enough
     * for the rest of it when its size is known, so a 1 MiB WRITE is read in place. */
    size_t keep = r->buf ? r->len - r->rec_start : 0;
    size_t cap = keep + bytes_wanted(r) + 4;
    if (cap < REC_DEFAULT_BUF)
        cap = REC_DEFAULT_BUF;
    struct rbuf *nb = rbuf_new(cap);
    if (!nb)
        return NULL;
    if (keep)
        memcpy(nb->data, r->buf->data + r->rec_start, keep);
    rbuf_put(r->buf);
    r->buf = nb;
    r->scan -= r->rec_start;
    r->rec_start = 0;
    r->len = keep;
    *avail = nb->cap - keep;
    return nb->data + keep;
}

enum rec_status rec_reader_next(struct rec_reader *r, struct rec_slice *out)
{
    for (;;) {
        if (r->in_record && r->frag_left == 0 && r->last_frag) {
            out->buf = r->buf;
            out->data = r->buf->data + r->rec_start;
            out->len = r->rec_len;
            rbuf_get(r->buf);
            r->rec_start = r->scan;
            r->rec_len = 0;
            r->in_record = false;
            return REC_OK;
        }
        if (r->frag_left == 0) {
            if (r->len - r->scan < 4)
                return REC_NEED_MORE;
            uint32_t mark = xdr_get_be32(r->buf->data + r->scan);
            uint32_t flen = mark & ~REC_LAST_FRAG;
            if ((size_t)flen > r->max_record || r->rec_len + flen > r->max_record)
                return REC_TOO_BIG;
            if (!r->in_record) {
                r->rec_start = r->scan + 4; /* first fragment: skip the mark, no copy */
                r->scan += 4;
                r->in_record = true;
            } else {
                /* later fragment: close the 4-byte gap so the record stays contiguous */
                memmove(r->buf->data + r->scan, r->buf->data + r->scan + 4, r->len - r->scan - 4);
                r->len -= 4;
            }
            r->frag_left = flen;
            r->last_frag = (mark & REC_LAST_FRAG) != 0;
            continue;
        }
        size_t take = r->len - r->scan;
        if (take == 0)
            return REC_NEED_MORE;
        if (take > r->frag_left)
            take = r->frag_left;
        r->scan += take;
        r->rec_len += take;
        r->frag_left -= (uint32_t)take;
    }
}
