/*
 * libFuzzer target for the NFSv4 codecs generated from proto/nfs4.x.
 *
 * The first input byte picks what the rest is:
 *   modes 0-3  the wire form of COMPOUND4args, COMPOUND4res, CB_COMPOUND4args or
 *              CB_COMPOUND4res, decoded whole (server requests, client replies,
 *              server-side callback replies, client-side callback requests);
 *   modes 4-5  a COMPOUND request / reply taken apart the way the COMPOUND engine does
 *              it: the header by hand, then one nfs_argop4 (nfs_resop4) at a time with a
 *              fresh arena per operation;
 *   modes 6-9  8 bytes of seed for a random valid value of one of the four compound
 *              types (the samplers of the generated test tables), encoded, then
 *              overwritten at the (offset, byte) pairs that follow: deep, nearly valid
 *              messages that random bytes rarely reach.
 * Whatever decodes must re-encode into exactly the bytes it consumed, and that
 * encoding must decode and encode again to the same bytes. The input is libFuzzer's
 * exact-size heap copy, so a read past its end is caught by ASan.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xdr/nfs4_xdr.h"
#include "xdrtest.h"

#define ARENA_SIZE (256u << 10)
#define OP_ARENA_SIZE (64u << 10)
#define SAMPLE_ARENA_SIZE (1u << 20)
#define SAMPLE_BUF_SIZE (1u << 20)

static const char *const compound_names[4] = {
    "COMPOUND4args", "COMPOUND4res", "CB_COMPOUND4args", "CB_COMPOUND4res",
};
static const struct xdrtest_type *compound_types[4];
static void *value1, *value2;
static uint8_t *arena1, *arena2, *sample_arena, *sample_buf;

static const struct xdrtest_type *find_type(const char *name)
{
    for (const struct xdrtest_file *f = xdrtest_files; f->name; f++)
        for (const struct xdrtest_type *t = f->types; t->name; t++)
            if (strcmp(t->name, name) == 0)
                return t;
    abort(); /* the nfs4 test table is missing a compound type */
}

static void init(void)
{
    size_t maxsize = sizeof(nfs_argop4) > sizeof(nfs_resop4) ? sizeof(nfs_argop4) : sizeof(nfs_resop4);
    for (int i = 0; i < 4; i++) {
        compound_types[i] = find_type(compound_names[i]);
        if (compound_types[i]->size > maxsize)
            maxsize = compound_types[i]->size;
    }
    value1 = malloc(maxsize);
    value2 = malloc(maxsize);
    arena1 = malloc(ARENA_SIZE);
    arena2 = malloc(ARENA_SIZE);
    sample_arena = malloc(SAMPLE_ARENA_SIZE);
    sample_buf = malloc(SAMPLE_BUF_SIZE);
    if (!value1 || !value2 || !arena1 || !arena2 || !sample_arena || !sample_buf)
        abort();
}

typedef bool (*decode_fn)(struct xdr_dec *x, void *v);
typedef bool (*encode_fn)(struct xdr_enc *x, const void *v);

/* Decode one value from p[0..len) and check the re-encoding rules; returns the number
 * of bytes consumed, or 0 when the input does not decode. */
static size_t check_one(decode_fn dec, encode_fn enc, const uint8_t *p, size_t len, size_t arena_size)
{
    struct xdr_arena a;
    struct xdr_dec x;
    xdr_arena_init(&a, arena1, arena_size);
    xdr_dec_init(&x, p, len, &a);
    if (!dec(&x, value1))
        return 0;
    size_t used = (size_t)(x.p - p);
    if (used > len || used % 4 || used == 0)
        abort();

    uint8_t *enc1 = malloc(used), *enc2 = malloc(used);
    if (!enc1 || !enc2)
        abort();
    struct xdr_enc e;
    xdr_enc_init(&e, enc1, used);
    if (!enc(&e, value1) || xdr_enc_len(&e) != used)
        abort();

    xdr_arena_init(&a, arena2, arena_size);
    xdr_dec_init(&x, enc1, used, &a);
    if (!dec(&x, value2) || (size_t)(x.p - enc1) != used)
        abort();
    xdr_enc_init(&e, enc2, used);
    if (!enc(&e, value2) || xdr_enc_len(&e) != used || memcmp(enc1, enc2, used) != 0)
        abort();
    free(enc1);
    free(enc2);
    return used;
}

static bool dec_argop(struct xdr_dec *x, void *v) { return xdr_decode_nfs_argop4(x, v); }
static bool enc_argop(struct xdr_enc *x, const void *v) { return xdr_encode_nfs_argop4(x, v); }
static bool dec_resop(struct xdr_dec *x, void *v) { return xdr_decode_nfs_resop4(x, v); }
static bool enc_resop(struct xdr_enc *x, const void *v) { return xdr_encode_nfs_resop4(x, v); }

/* The COMPOUND engine's way: header by hand, then operation after operation, each
 * with its own small arena, stopping at the first one that does not decode. */
static void engine_style(bool reply, const uint8_t *p, size_t len)
{
    struct xdr_dec x;
    xdr_dec_init(&x, p, len, NULL);
    struct xdr_string tag;
    uint32_t word, count;
    if (reply && !xdr_dec_u32(&x, &word)) /* status */
        return;
    if (!xdr_dec_string(&x, &tag, PEERNFS4_MAX_UTF8))
        return;
    if (!reply && !xdr_dec_u32(&x, &word)) /* minorversion */
        return;
    if (!xdr_dec_u32(&x, &count))
        return;
    for (uint32_t i = 0; i < count; i++) {
        size_t used = reply ? check_one(dec_resop, enc_resop, x.p, xdr_dec_left(&x), OP_ARENA_SIZE)
                            : check_one(dec_argop, enc_argop, x.p, xdr_dec_left(&x), OP_ARENA_SIZE);
        if (!used)
            return;
        x.p += used;
    }
}

/* A random valid compound from the seed, then the input's (offset, byte) overwrites. */
static void mutated_sample(const struct xdrtest_type *t, const uint8_t *p, size_t len)
{
    if (len < 8)
        return;
    uint64_t seed;
    memcpy(&seed, p, 8);
    p += 8;
    len -= 8;
    struct xdrtest_rng r;
    xdrtest_seed(&r, seed);
    struct xdr_arena a;
    xdr_arena_init(&a, sample_arena, SAMPLE_ARENA_SIZE);
    t->sample(&r, &a, value1);
    struct xdr_enc e;
    xdr_enc_init(&e, sample_buf, SAMPLE_BUF_SIZE);
    if (!t->encode(&e, value1))
        abort(); /* a valid sample must encode */
    size_t n = xdr_enc_len(&e);
    for (size_t i = 0; i + 3 <= len && n; i += 3) {
        size_t off = ((size_t)p[i] << 8 | p[i + 1]) % n;
        sample_buf[off] = p[i + 2];
    }
    /* an exact-size copy, so ASan sees any read past the end */
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy)
        abort();
    memcpy(copy, sample_buf, n);
    check_one(t->decode, t->encode, copy, n, ARENA_SIZE);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!value1)
        init();
    if (size < 1)
        return 0;
    unsigned mode = data[0] % 10;
    data++;
    size--;
    if (mode < 4)
        check_one(compound_types[mode]->decode, compound_types[mode]->encode, data, size, ARENA_SIZE);
    else if (mode < 6)
        engine_style(mode == 5, data, size);
    else
        mutated_sample(compound_types[mode - 6], data, size);
    return 0;
}
