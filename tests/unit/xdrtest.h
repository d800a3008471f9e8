/*
 * Support for the generated XDR test tables (tools/xdrgen.py --test-table).
 *
 * For every type of a proto/NAME.x file the generator emits a sampler that builds a random
 * valid value (lengths within the declared maxima, valid discriminants and enum values,
 * short lists), and a table xdrtest_types_<file>[] of {name, size, sampler, encoder,
 * decoder} taking void pointers, ended by a NULL name. cmake/xdr.cmake collects all
 * tables of a peernfs_xdr() library in xdrtest_files[], so one generic test (and one
 * fuzzer) covers every type, including types added later.
 */
#ifndef PEERNFS_TESTS_XDRTEST_H
#define PEERNFS_TESTS_XDRTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xdr/xdr.h"

/* Optional data and arrays are sampled empty below this nesting depth. */
#define XDRTEST_MAX_DEPTH 6

struct xdrtest_rng {
    uint64_t s;
    unsigned depth; /* current nesting of optional data / arrays while sampling */
};

struct xdrtest_type {
    const char *name;
    size_t size;     /* sizeof the C type */
    size_t min_wire; /* smallest encoding in bytes */
    void (*sample)(struct xdrtest_rng *r, struct xdr_arena *a, void *v);
    bool (*encode)(struct xdr_enc *x, const void *v);
    bool (*decode)(struct xdr_dec *x, void *v);
};

struct xdrtest_file {
    const char *name; /* the .x file's base name */
    const struct xdrtest_type *types;
};

/* Defined by the generated registry of a peernfs_xdr() library, ended by a NULL name. */
extern const struct xdrtest_file xdrtest_files[];

static inline void xdrtest_seed(struct xdrtest_rng *r, uint64_t seed)
{
    r->s = seed;
    r->depth = 0;
}

/* splitmix64: small, fast, good enough for test data */
static inline uint64_t xdrtest_u64(struct xdrtest_rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint32_t xdrtest_u32(struct xdrtest_rng *r) { return (uint32_t)(xdrtest_u64(r) >> 32); }

/* Uniform in [0, n); n > 0. */
static inline uint32_t xdrtest_below(struct xdrtest_rng *r, uint32_t n)
{
    return (uint32_t)(((xdrtest_u64(r) >> 32) * (uint64_t)n) >> 32);
}

static inline void *xdrtest_alloc(struct xdr_arena *a, size_t n, size_t size)
{
    return xdr_arena_alloc(a, n, size);
}

/* Length of variable opaque data / a string: usually short, now and then exactly the
 * declared maximum (max 0 = none declared). */
static inline uint32_t xdrtest_len(struct xdrtest_rng *r, uint32_t max)
{
    uint32_t cap = max && max < 64 ? max : 64;
    if (max && max <= 4096 && xdrtest_below(r, 8) == 0)
        return max;
    if (!max && xdrtest_below(r, 16) == 0)
        return xdrtest_below(r, 2048);
    return xdrtest_below(r, cap + 1);
}

/* Element count of a variable array or extra nodes of a list: small, now and then the
 * declared maximum when that is small. */
static inline uint32_t xdrtest_count(struct xdrtest_rng *r, uint32_t max)
{
    if (r->depth >= XDRTEST_MAX_DEPTH)
        return 0;
    if (max && max <= 32 && xdrtest_below(r, 8) == 0)
        return max;
    uint32_t cap = max && max < 4 ? max : 4;
    return xdrtest_below(r, cap + 1);
}

static inline bool xdrtest_present(struct xdrtest_rng *r)
{
    return r->depth < XDRTEST_MAX_DEPTH && xdrtest_below(r, 2);
}

static inline void xdrtest_fill(struct xdrtest_rng *r, void *p, size_t n)
{
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)xdrtest_u32(r);
}

static inline const uint8_t *xdrtest_opaque(struct xdrtest_rng *r, struct xdr_arena *a, uint32_t max,
                                            uint32_t *len)
{
    uint32_t n = xdrtest_len(r, max);
    uint8_t *p = xdrtest_alloc(a, n, 1);
    if (!p)
        n = 0;
    xdrtest_fill(r, p, n);
    *len = n;
    return p;
}

static inline const char *xdrtest_string(struct xdrtest_rng *r, struct xdr_arena *a, uint32_t max,
                                         uint32_t *len)
{
    uint32_t n = xdrtest_len(r, max);
    char *p = xdrtest_alloc(a, n, 1);
    if (!p)
        n = 0;
    for (uint32_t i = 0; i < n; i++)
        p[i] = (char)(' ' + xdrtest_below(r, 95));
    *len = n;
    return p;
}

/* A value that is none of the n case labels (for a union's default arm). */
static inline uint32_t xdrtest_u32_except(struct xdrtest_rng *r, const uint32_t *labels, size_t n)
{
    for (;;) {
        uint32_t v = xdrtest_below(r, 4) ? xdrtest_below(r, 64) : xdrtest_u32(r);
        size_t i = 0;
        while (i < n && labels[i] != v)
            i++;
        if (i == n)
            return v;
    }
}

#endif
