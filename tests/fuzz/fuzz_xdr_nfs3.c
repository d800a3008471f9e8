/*
 * libFuzzer target for the generated XDR decoders (all types of the proto/ files
 * in peernfs_xdr_protos: nfs3, mount, rpc_prot, rpcb_prot).
 *
 * The first input byte (two bytes once there are more than 256 types) selects a type;
 * the rest is decoded with a fixed-size arena. A value that decodes must re-encode
 * into exactly the bytes it consumed (length), and that re-encoding must decode and
 * encode again to the same bytes (padding is the only thing allowed to differ from
 * the input). The input buffer is libFuzzer's exact-size heap copy, so any read past
 * its end is caught by ASan.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xdrtest.h"

#define MAX_TYPES 4096
#define ARENA_SIZE (256u << 10)

static const struct xdrtest_type *types[MAX_TYPES];
static size_t ntypes;
static void *value1, *value2;
static uint8_t *arena1, *arena2;

static void init(void)
{
    size_t maxsize = 0;
    for (const struct xdrtest_file *f = xdrtest_files; f->name; f++)
        for (const struct xdrtest_type *t = f->types; t->name && ntypes < MAX_TYPES; t++) {
            types[ntypes++] = t;
            if (t->size > maxsize)
                maxsize = t->size;
        }
    value1 = malloc(maxsize);
    value2 = malloc(maxsize);
    arena1 = malloc(ARENA_SIZE);
    arena2 = malloc(ARENA_SIZE);
}

static bool decode(const struct xdrtest_type *t, const uint8_t *p, size_t len, void *v, uint8_t *mem,
                   size_t *used)
{
    struct xdr_arena a;
    struct xdr_dec x;
    xdr_arena_init(&a, mem, ARENA_SIZE);
    xdr_dec_init(&x, p, len, &a);
    bool ok = t->decode(&x, v);
    *used = (size_t)(x.p - p);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ntypes)
        init();
    size_t sel = ntypes > 256 ? 2 : 1;
    if (size < sel)
        return 0;
    size_t idx = sel == 1 ? data[0] : ((size_t)data[0] << 8 | data[1]);
    const struct xdrtest_type *t = types[idx % ntypes];
    data += sel;
    size -= sel;

    size_t used;
    if (!decode(t, data, size, value1, arena1, &used))
        return 0;
    if (used > size || used % 4)
        abort();

    /* re-encode into a buffer of exactly the consumed size */
    uint8_t *enc1 = malloc(used ? used : 1);
    struct xdr_enc x;
    xdr_enc_init(&x, enc1, used);
    if (!t->encode(&x, value1) || xdr_enc_len(&x) != used)
        abort();

    size_t used2;
    if (!decode(t, enc1, used, value2, arena2, &used2) || used2 != used)
        abort();
    uint8_t *enc2 = malloc(used ? used : 1);
    xdr_enc_init(&x, enc2, used);
    if (!t->encode(&x, value2) || xdr_enc_len(&x) != used || memcmp(enc1, enc2, used) != 0)
        abort();
    free(enc1);
    free(enc2);
    return 0;
}
