/*
 * XDR (RFC 4506) primitives over a bounded buffer cursor.
 *
 * Decoding is zero-copy: opaque and string items point into the buffer being decoded,
 * so the buffer must outlive the decoded value. Every length read from the wire is
 * checked against the bytes left before it is used, and variable-size items that need
 * memory (arrays of structures, optional data) are carved from a caller-supplied arena
 * whose size is bounded, never from malloc.
 *
 * All functions return true on success. On failure a decoder leaves the cursor in an
 * unspecified position; callers give up on the whole message (GARBAGE_ARGS / BADXDR).
 */
#ifndef PEERNFS_XDR_H
#define PEERNFS_XDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define XDR_UNIT 4u
#define XDR_PAD(n) ((XDR_UNIT - ((n) & 3u)) & 3u)
#define XDR_ROUNDUP(n) (((size_t)(n) + 3u) & ~(size_t)3u)

/* Memory for decoded arrays and optional items, carved from one block. */
struct xdr_arena {
    uint8_t *base;
    size_t size;
    size_t used;
};

struct xdr_dec {
    const uint8_t *p;
    const uint8_t *end;
    struct xdr_arena *arena; /* may be NULL when the type needs none */
};

struct xdr_enc {
    uint8_t *p;
    uint8_t *end;
    uint8_t *start;
};

/* Variable-length opaque data / strings: pointer + length, not NUL-terminated. */
struct xdr_opaque {
    uint32_t len;
    const uint8_t *val;
};

struct xdr_string {
    uint32_t len;
    const char *val;
};

static inline void xdr_dec_init(struct xdr_dec *x, const void *buf, size_t len, struct xdr_arena *arena)
{
    x->p = buf;
    x->end = (const uint8_t *)buf + len;
    x->arena = arena;
}

static inline void xdr_enc_init(struct xdr_enc *x, void *buf, size_t len)
{
    x->p = x->start = buf;
    x->end = (uint8_t *)buf + len;
}

static inline size_t xdr_dec_left(const struct xdr_dec *x) { return (size_t)(x->end - x->p); }
static inline size_t xdr_enc_left(const struct xdr_enc *x) { return (size_t)(x->end - x->p); }
static inline size_t xdr_enc_len(const struct xdr_enc *x) { return (size_t)(x->p - x->start); }

static inline void xdr_arena_init(struct xdr_arena *a, void *base, size_t size)
{
    a->base = base;
    a->size = size;
    a->used = 0;
}

/* Allocate n * size bytes (8-byte aligned) from the arena; NULL when it does not fit. */
static inline void *xdr_arena_alloc(struct xdr_arena *a, size_t n, size_t size)
{
    if (!a || (size && n > (a->size - a->used) / size))
        return NULL;
    size_t bytes = (n * size + 7u) & ~(size_t)7u;
    if (bytes > a->size - a->used)
        return NULL;
    void *r = a->base + a->used;
    a->used += bytes;
    return r;
}

static inline uint32_t xdr_get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline void xdr_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* ---- decoding ---- */

static inline bool xdr_dec_u32(struct xdr_dec *x, uint32_t *v)
{
    if (xdr_dec_left(x) < 4)
        return false;
    *v = xdr_get_be32(x->p);
    x->p += 4;
    return true;
}

static inline bool xdr_dec_i32(struct xdr_dec *x, int32_t *v)
{
    uint32_t u;
    if (!xdr_dec_u32(x, &u))
        return false;
    *v = (int32_t)u;
    return true;
}

static inline bool xdr_dec_u64(struct xdr_dec *x, uint64_t *v)
{
    if (xdr_dec_left(x) < 8)
        return false;
    *v = ((uint64_t)xdr_get_be32(x->p) << 32) | xdr_get_be32(x->p + 4);
    x->p += 8;
    return true;
}

static inline bool xdr_dec_i64(struct xdr_dec *x, int64_t *v)
{
    uint64_t u;
    if (!xdr_dec_u64(x, &u))
        return false;
    *v = (int64_t)u;
    return true;
}

static inline bool xdr_dec_bool(struct xdr_dec *x, bool *v)
{
    uint32_t u;
    if (!xdr_dec_u32(x, &u) || u > 1)
        return false;
    *v = u;
    return true;
}

/* Fixed-length opaque: n bytes plus padding, returned by pointer. */
static inline bool xdr_dec_fixed(struct xdr_dec *x, const uint8_t **val, uint32_t n)
{
    size_t need = XDR_ROUNDUP(n);
    if (xdr_dec_left(x) < need)
        return false;
    *val = x->p;
    x->p += need;
    return true;
}

/* Fixed-length opaque copied into caller storage (for small items such as verifiers). */
static inline bool xdr_dec_fixed_copy(struct xdr_dec *x, void *dst, uint32_t n)
{
    const uint8_t *p;
    if (!xdr_dec_fixed(x, &p, n))
        return false;
    memcpy(dst, p, n);
    return true;
}

/* Variable-length opaque with a maximum (0 = no declared maximum). */
static inline bool xdr_dec_opaque(struct xdr_dec *x, struct xdr_opaque *o, uint32_t max)
{
    uint32_t len;
    if (!xdr_dec_u32(x, &len) || (max && len > max))
        return false;
    o->len = len;
    return xdr_dec_fixed(x, &o->val, len);
}

static inline bool xdr_dec_string(struct xdr_dec *x, struct xdr_string *s, uint32_t max)
{
    struct xdr_opaque o;
    if (!xdr_dec_opaque(x, &o, max))
        return false;
    s->len = o.len;
    s->val = (const char *)o.val;
    return true;
}

/* Array count, checked against a declared maximum and against the bytes left
 * (every element takes at least min_elem_size bytes on the wire). */
static inline bool xdr_dec_count(struct xdr_dec *x, uint32_t *n, uint32_t max, size_t min_elem_size)
{
    if (!xdr_dec_u32(x, n) || (max && *n > max))
        return false;
    if (min_elem_size && *n > xdr_dec_left(x) / min_elem_size)
        return false;
    return true;
}

/* ---- encoding ---- */

static inline bool xdr_enc_u32(struct xdr_enc *x, uint32_t v)
{
    if (xdr_enc_left(x) < 4)
        return false;
    xdr_put_be32(x->p, v);
    x->p += 4;
    return true;
}

static inline bool xdr_enc_i32(struct xdr_enc *x, int32_t v) { return xdr_enc_u32(x, (uint32_t)v); }

static inline bool xdr_enc_u64(struct xdr_enc *x, uint64_t v)
{
    if (xdr_enc_left(x) < 8)
        return false;
    xdr_put_be32(x->p, (uint32_t)(v >> 32));
    xdr_put_be32(x->p + 4, (uint32_t)v);
    x->p += 8;
    return true;
}

static inline bool xdr_enc_i64(struct xdr_enc *x, int64_t v) { return xdr_enc_u64(x, (uint64_t)v); }

static inline bool xdr_enc_bool(struct xdr_enc *x, bool v) { return xdr_enc_u32(x, v ? 1 : 0); }

static inline bool xdr_enc_fixed(struct xdr_enc *x, const void *val, uint32_t n)
{
    size_t need = XDR_ROUNDUP(n);
    if (xdr_enc_left(x) < need)
        return false;
    if (n)
        memcpy(x->p, val, n);
    memset(x->p + n, 0, need - n);
    x->p += need;
    return true;
}

static inline bool xdr_enc_opaque(struct xdr_enc *x, const void *val, uint32_t len, uint32_t max)
{
    if (max && len > max)
        return false;
    return xdr_enc_u32(x, len) && xdr_enc_fixed(x, val, len);
}

static inline bool xdr_enc_string(struct xdr_enc *x, const struct xdr_string *s, uint32_t max)
{
    return xdr_enc_opaque(x, s->val, s->len, max);
}

/* Reserve n bytes (plus padding) to be filled in place, e.g. by pread() for READ data.
 * Returns the start of the reserved area or NULL. The padding is zeroed. */
static inline uint8_t *xdr_enc_reserve(struct xdr_enc *x, uint32_t n)
{
    size_t need = XDR_ROUNDUP(n);
    if (xdr_enc_left(x) < need)
        return NULL;
    uint8_t *r = x->p;
    memset(r + n, 0, need - n);
    x->p += need;
    return r;
}

/* Give back the unused tail of a reservation: the area [start, start+reserved) keeps
 * only `used` bytes (re-padded). Only valid for the most recent reservation. */
static inline void xdr_enc_shrink(struct xdr_enc *x, uint8_t *start, uint32_t used)
{
    size_t need = XDR_ROUNDUP(used);
    memset(start + used, 0, need - used);
    x->p = start + need;
}

#endif
