/*
 * RPC record marking over a byte stream (RFC 5531 section 11).
 *
 * The reader owns a refcounted receive buffer. Bytes are read into its free tail;
 * rec_reader_next() hands out complete records as (buffer, offset, length) slices, each
 * holding a reference, so a record stays valid while a handler on any thread decodes it
 * zero-copy, even after the reader moved on to a new buffer. A record that arrives in
 * several fragments is made contiguous in place. A record longer than the configured
 * maximum is refused (the caller closes the connection) instead of being buffered.
 */
#ifndef PEERNFS_RPC_RECORD_H
#define PEERNFS_RPC_RECORD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REC_LAST_FRAG 0x80000000u
#define REC_DEFAULT_BUF (64 * 1024)

struct rbuf {
    atomic_uint refs;
    size_t cap;
    uint8_t data[];
};

struct rbuf *rbuf_new(size_t cap);
static inline void rbuf_get(struct rbuf *b) { atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed); }
void rbuf_put(struct rbuf *b);

/* One complete record: valid while `buf` is referenced. */
struct rec_slice {
    struct rbuf *buf; /* holds a reference; release with rbuf_put */
    uint8_t *data;
    size_t len;
};

struct rec_reader {
    struct rbuf *buf;
    size_t len;       /* bytes of buf->data in use */
    size_t rec_start; /* where the record being assembled begins */
    size_t rec_len;   /* contiguous bytes of it assembled so far */
    size_t scan;      /* next unparsed byte */
    uint32_t frag_left;
    bool in_record;   /* a fragment header of the current record has been seen */
    bool last_frag;
    size_t max_record;
};

enum rec_status { REC_OK, REC_NEED_MORE, REC_TOO_BIG, REC_NOMEM };

void rec_reader_init(struct rec_reader *r, size_t max_record);
void rec_reader_free(struct rec_reader *r);

/* Where to read next: guarantees at least some free space (may switch to a bigger or
 * fresh buffer, moving the unfinished record). Returns NULL on allocation failure. */
uint8_t *rec_reader_space(struct rec_reader *r, size_t *avail);
/* Account for n bytes just read into the space. */
static inline void rec_reader_filled(struct rec_reader *r, size_t n) { r->len += n; }

/* Next complete record: REC_OK fills *out (with a buffer reference); REC_NEED_MORE when
 * the buffered bytes end inside a record; REC_TOO_BIG when a record exceeds max_record. */
enum rec_status rec_reader_next(struct rec_reader *r, struct rec_slice *out);

#endif
