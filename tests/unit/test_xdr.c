/*
 * XDR codecs generated from the proto/ files (tools/xdrgen.py).
 *
 * Generic part, for every type of every .x file (xdrtest_files[]):
 *   random valid sample -> encode -> decode (consumes exactly the encoding) ->
 *   re-encode -> same bytes; every strict prefix of the encoding fails to decode and
 *   every too-small output buffer fails to encode; mutated encodings (bit flips,
 *   interesting 32-bit words, truncation) never crash or read outside the buffer (run
 *   under ASan: every decode reads a heap copy of exactly the input's size), and when
 *   they decode, the value re-encodes to a stable encoding of the same length.
 * Targeted part: oversize lengths and counts, bad discriminants and bools, enum values
 * outside the enum, arena exhaustion, and 100k-entry lists decoded and encoded on a
 * small stack (no recursion per entry). NFSv4: COMPOUND decoded whole and op by op
 * (as the COMPOUND engine does), op numbers, bounds of nfs4.x, callbacks.
 *
 * XDRTEST_ITERS (environment) scales the number of samples per type.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xdrtest.h"
#ifndef XDRTEST_GENERIC_ONLY /* test_xdr_features: tests/unit/xdrgen/features.x */
#include "xdr/mount_xdr.h"
#include "xdr/nfs3_xdr.h"
#include "xdr/nfs4_xdr.h"
#include "xdr/rpc_prot_xdr.h"
#include "xdr/rpcb_prot_xdr.h"
#define XDRTEST_MIN_TYPES 100
#else
#define XDRTEST_MIN_TYPES 10
#endif

static int failures;

#define CHECK(cond)                                                                \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                            \
        }                                                                          \
    } while (0)

#define ARENA_SIZE (8u << 20)
#define BUF_SIZE (1u << 20)

static uint8_t *arena_mem;  /* for decoding */
static uint8_t *sample_mem; /* for samples */
static uint8_t *enc_buf, *enc_buf2, *enc_buf3;

/* Decode from a heap copy of exactly len bytes, so ASan sees any over-read. Decoded
 * opaque data and strings point into the copy: it lives until the next call. */
static uint8_t *live_copy;

static bool decode_exact(const struct xdrtest_type *t, const uint8_t *p, size_t len, void *out,
                         size_t arena_size, size_t *consumed)
{
    free(live_copy);
    uint8_t *copy = live_copy = malloc(len ? len : 1);
    memcpy(copy, p, len);
    struct xdr_arena a;
    xdr_arena_init(&a, arena_mem, arena_size);
    struct xdr_dec x;
    xdr_dec_init(&x, copy, len, &a);
    memset(out, 0xA5, t->size);
    bool ok = t->decode(&x, out);
    if (consumed)
        *consumed = (size_t)(x.p - copy);
    return ok;
}

static bool encode_to(const struct xdrtest_type *t, const void *v, uint8_t *buf, size_t cap, size_t *len)
{
    struct xdr_enc x;
    xdr_enc_init(&x, buf, cap);
    bool ok = t->encode(&x, v);
    *len = xdr_enc_len(&x);
    return ok;
}

/* Prefix lengths to try: all of them for short encodings, else the ends and a sample. */
static bool prefix_selected(struct xdrtest_rng *r, size_t k, size_t len)
{
    return len <= 256 || k < 64 || len - k <= 64 || xdrtest_below(r, (uint32_t)(len / 64)) == 0;
}

static void test_type_roundtrip(const struct xdrtest_type *t, struct xdrtest_rng *r, unsigned iters)
{
    void *v = calloc(1, t->size), *w = calloc(1, t->size);
    unsigned bad = 0;
    for (unsigned it = 0; it < iters && bad < 3; it++) {
        struct xdr_arena sa;
        xdr_arena_init(&sa, sample_mem, ARENA_SIZE);
        r->depth = 0;
        t->sample(r, &sa, v);

        size_t len;
        if (!encode_to(t, v, enc_buf, BUF_SIZE, &len)) {
            fprintf(stderr, "%s: encoding a valid sample failed\n", t->name);
            failures++, bad++;
            continue;
        }
        if (len < t->min_wire || len % 4) {
            fprintf(stderr, "%s: encoding of %zu bytes (min %zu)\n", t->name, len, t->min_wire);
            failures++, bad++;
        }
        size_t used;
        if (!decode_exact(t, enc_buf, len, w, ARENA_SIZE, &used) || used != len) {
            fprintf(stderr, "%s: decoding its own encoding (%zu bytes) failed\n", t->name, len);
            failures++, bad++;
            continue;
        }
        size_t len2;
        if (!encode_to(t, w, enc_buf2, BUF_SIZE, &len2) || len2 != len || memcmp(enc_buf, enc_buf2, len)) {
            fprintf(stderr, "%s: decode + re-encode differs\n", t->name);
            failures++, bad++;
            continue;
        }
        for (size_t k = 0; k < len; k++) {
            if (!prefix_selected(r, k, len))
                continue;
            if (decode_exact(t, enc_buf, k, w, ARENA_SIZE, NULL)) {
                fprintf(stderr, "%s: a %zu-byte prefix of %zu decoded\n", t->name, k, len);
                failures++, bad++;
                break;
            }
            size_t l3;
            if (encode_to(t, v, enc_buf3, k, &l3)) {
                fprintf(stderr, "%s: encoding into %zu of %zu bytes succeeded\n", t->name, k, len);
                failures++, bad++;
                break;
            }
        }
    }
    free(v);
    free(w);
}

static const uint32_t interesting[] = { 0, 1, 2, 3, 4, 7, 16, 17, 64, 65, 255, 256, 400, 401, 1024,
                                        1025, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff };

static void mutate(struct xdrtest_rng *r, uint8_t *p, size_t *len, size_t cap)
{
    unsigned n = 1 + xdrtest_below(r, 4);
    for (unsigned i = 0; i < n; i++) {
        switch (xdrtest_below(r, 5)) {
        case 0: /* flip a bit */
            if (*len)
                p[xdrtest_below(r, (uint32_t)*len)] ^= (uint8_t)(1u << xdrtest_below(r, 8));
            break;
        case 1: /* an interesting word at an XDR unit boundary */
            if (*len >= 4) {
                size_t at = xdrtest_below(r, (uint32_t)(*len / 4)) * 4;
                xdr_put_be32(p + at, interesting[xdrtest_below(r, sizeof(interesting) / 4)]);
            }
            break;
        case 2: /* truncate */
            if (*len)
                *len = xdrtest_below(r, (uint32_t)*len);
            break;
        case 3: /* append random bytes */
        {
            size_t add = xdrtest_below(r, 16);
            if (*len + add <= cap) {
                xdrtest_fill(r, p + *len, add);
                *len += add;
            }
            break;
        }
        default: /* random byte */
            if (*len)
                p[xdrtest_below(r, (uint32_t)*len)] = (uint8_t)xdrtest_u32(r);
            break;
        }
    }
}

static void test_type_fuzz(const struct xdrtest_type *t, struct xdrtest_rng *r, unsigned iters)
{
    void *v = calloc(1, t->size), *w = calloc(1, t->size);
    for (unsigned it = 0; it < iters; it++) {
        struct xdr_arena sa;
        xdr_arena_init(&sa, sample_mem, ARENA_SIZE);
        r->depth = 0;
        t->sample(r, &sa, v);
        size_t len;
        if (!encode_to(t, v, enc_buf, BUF_SIZE / 2, &len))
            continue;
        mutate(r, enc_buf, &len, BUF_SIZE);
        /* a small arena too, so that running out of it is exercised */
        size_t arena = xdrtest_below(r, 2) ? 4096 : ARENA_SIZE;
        size_t used;
        if (!decode_exact(t, enc_buf, len, w, arena, &used))
            continue;
        size_t len2, len3;
        if (!encode_to(t, w, enc_buf2, BUF_SIZE, &len2) || len2 != used) {
            fprintf(stderr, "%s: a decoded mutant does not re-encode to %zu bytes\n", t->name, used);
            failures++;
            break;
        }
        if (!decode_exact(t, enc_buf2, len2, v, ARENA_SIZE, NULL) ||
            !encode_to(t, v, enc_buf3, BUF_SIZE, &len3) || len3 != len2 || memcmp(enc_buf2, enc_buf3, len2)) {
            fprintf(stderr, "%s: re-encoding of a decoded mutant is not stable\n", t->name);
            failures++;
            break;
        }
    }
    free(v);
    free(w);
}

static void test_generic(unsigned iters)
{
    struct xdrtest_rng r;
    unsigned ntypes = 0;
    for (const struct xdrtest_file *f = xdrtest_files; f->name; f++) {
        for (const struct xdrtest_type *t = f->types; t->name; t++) {
            xdrtest_seed(&r, 0x5eed0000u + ntypes);
            test_type_roundtrip(t, &r, iters);
            test_type_fuzz(t, &r, iters * 4);
            ntypes++;
        }
    }
    printf("generic: %u types, %u samples each\n", ntypes, iters);
    CHECK(ntypes >= XDRTEST_MIN_TYPES);
}

#ifndef XDRTEST_GENERIC_ONLY

/* ---- targeted tests ---- */

struct wire {
    uint8_t b[4096];
    size_t n;
};

static void put32(struct wire *w, uint32_t v)
{
    xdr_put_be32(w->b + w->n, v);
    w->n += 4;
}

static void put_bytes(struct wire *w, const char *s, uint32_t len)
{
    put32(w, len);
    memcpy(w->b + w->n, s, len);
    w->n += XDR_ROUNDUP(len);
}

#define DECODE(type, w, out)                                                    \
    ({                                                                          \
        struct xdr_arena a_;                                                    \
        xdr_arena_init(&a_, arena_mem, ARENA_SIZE);                             \
        struct xdr_dec x_;                                                      \
        xdr_dec_init(&x_, (w)->b, (w)->n, &a_);                                 \
        xdr_decode_##type(&x_, (out)) && x_.p == x_.end;                        \
    })

#define ENCODE(type, v)                                                         \
    ({                                                                          \
        struct xdr_enc x_;                                                      \
        xdr_enc_init(&x_, enc_buf, BUF_SIZE);                                   \
        xdr_encode_##type(&x_, (v));                                            \
    })

static void test_lengths(void)
{
    struct wire w = { .n = 0 };
    filename3 name;
    put32(&w, 0xffffffff); /* filename3 of 4 GiB in 4 bytes */
    CHECK(!DECODE(filename3, &w, &name));

    w.n = 0;
    put_bytes(&w, "\1\2\3\4\5\6\7\10", 8); /* nfs_fh3 */
    put32(&w, 0xffffffff);               /* name */
    diropargs3 d;
    CHECK(!DECODE(diropargs3, &w, &d));
    w.n = 0;
    put_bytes(&w, "\1\2\3\4\5\6\7\10", 8);
    put_bytes(&w, "hello", 5);
    CHECK(DECODE(diropargs3, &w, &d));
    CHECK(d.dir.data.len == 8 && d.name.len == 5 && memcmp(d.name.val, "hello", 5) == 0);
    w.n -= 4; /* truncated: the name's padding is missing */
    CHECK(!DECODE(diropargs3, &w, &d));

    /* nfs_fh3 longer than NFS3_FHSIZE, on decode and on encode */
    uint8_t fh[NFS3_FHSIZE + 1] = { 0 };
    w.n = 0;
    put_bytes(&w, (const char *)fh, NFS3_FHSIZE + 1);
    nfs_fh3 h;
    CHECK(!DECODE(nfs_fh3, &w, &h));
    h.data.len = NFS3_FHSIZE + 1;
    h.data.val = fh;
    CHECK(!ENCODE(nfs_fh3, &h));
    h.data.len = NFS3_FHSIZE;
    CHECK(ENCODE(nfs_fh3, &h));
}

static void put_authsys(struct wire *w, uint32_t namelen, uint32_t ngids)
{
    char name[300];
    memset(name, 'h', sizeof(name));
    w->n = 0;
    put32(w, 12345);
    put_bytes(w, name, namelen);
    put32(w, 1000);
    put32(w, 100);
    put32(w, ngids);
    for (uint32_t i = 0; i < ngids; i++)
        put32(w, 200 + i);
}

static void test_authsys(void)
{
    struct wire w;
    authsys_parms p;
    put_authsys(&w, 255, 16);
    CHECK(DECODE(authsys_parms, &w, &p));
    CHECK(p.gids.len == 16 && p.gids.val[15] == 215 && p.machinename.len == 255);
    CHECK(ENCODE(authsys_parms, &p));
    put_authsys(&w, 255, 17); /* gids<16> */
    CHECK(!DECODE(authsys_parms, &w, &p));
    put_authsys(&w, 256, 0); /* machinename<255> */
    CHECK(!DECODE(authsys_parms, &w, &p));

    /* maxima are enforced on encode too */
    uint32_t gids[17] = { 0 };
    p.gids.len = 17;
    p.gids.val = gids;
    p.machinename.len = 0;
    CHECK(!ENCODE(authsys_parms, &p));

    /* opaque_auth body<400> */
    char body[404] = { 0 };
    w.n = 0;
    put32(&w, AUTH_SYS);
    put_bytes(&w, body, 401);
    opaque_auth oa;
    CHECK(!DECODE(opaque_auth, &w, &oa));
    w.n = 0;
    put32(&w, 99); /* an unknown flavor still decodes: the RPC layer answers AUTH_ERROR */
    put_bytes(&w, body, 400);
    CHECK(DECODE(opaque_auth, &w, &oa) && oa.flavor == 99 && oa.body.len == 400);
}

static void test_counts(void)
{
    /* a huge array count with few bytes behind it fails before allocating anything */
    struct wire w = { .n = 0 };
    put_bytes(&w, "fh", 2);
    put32(&w, 0x40000000);
    put32(&w, 1);
    struct xdr_arena a;
    xdr_arena_init(&a, arena_mem, ARENA_SIZE);
    struct xdr_dec x;
    xdr_dec_init(&x, w.b, w.n, &a);
    mountres3_ok ok;
    CHECK(!xdr_decode_mountres3_ok(&x, &ok));
    CHECK(a.used == 0);

    /* a count that fits the bytes but not the arena fails */
    w.n = 0;
    put_bytes(&w, "fh", 2);
    put32(&w, 100);
    for (int i = 0; i < 100; i++)
        put32(&w, 1);
    uint8_t small[64];
    xdr_arena_init(&a, small, sizeof(small));
    xdr_dec_init(&x, w.b, w.n, &a);
    CHECK(!xdr_decode_mountres3_ok(&x, &ok));
    xdr_arena_init(&a, arena_mem, ARENA_SIZE);
    xdr_dec_init(&x, w.b, w.n, &a);
    CHECK(xdr_decode_mountres3_ok(&x, &ok) && ok.auth_flavors.len == 100);

    /* no arena at all: types that need one fail cleanly */
    xdr_dec_init(&x, w.b, w.n, NULL);
    CHECK(!xdr_decode_mountres3_ok(&x, &ok));
}

static void test_discriminants(void)
{
    struct wire w = { .n = 0 };
    createmode3 m;
    put32(&w, 7);
    CHECK(!DECODE(createmode3, &w, &m));

    createhow3 how;
    w.n = 0;
    put32(&w, 7);
    for (int i = 0; i < 16; i++)
        put32(&w, 0);
    CHECK(!DECODE(createhow3, &w, &how));
    w.n = 0;
    put32(&w, EXCLUSIVE);
    put32(&w, 0x01020304);
    put32(&w, 0x05060708);
    CHECK(DECODE(createhow3, &w, &how) && how.mode == EXCLUSIVE && how.verf[7] == 8);

    /* bool accepts only 0 and 1 */
    post_op_attr pa;
    w.n = 0;
    put32(&w, 2);
    CHECK(!DECODE(post_op_attr, &w, &pa));
    w.n = 0;
    put32(&w, 0);
    CHECK(DECODE(post_op_attr, &w, &pa) && !pa.attributes_follow);
    pa.attributes_follow = false;
    CHECK(ENCODE(post_op_attr, &pa));

    /* a status outside nfsstat3 */
    GETATTR3res res;
    w.n = 0;
    put32(&w, 3);
    CHECK(!DECODE(GETATTR3res, &w, &res));
    w.n = 0;
    put32(&w, NFS3ERR_STALE); /* default arm: void */
    CHECK(DECODE(GETATTR3res, &w, &res) && res.status == NFS3ERR_STALE);

    /* an enum value outside the enum is refused on encode as well */
    res.status = (nfsstat3)3;
    CHECK(!ENCODE(GETATTR3res, &res));

    /* mknoddata3: default arm is void */
    mknoddata3 md;
    w.n = 0;
    put32(&w, NF3REG);
    CHECK(DECODE(mknoddata3, &w, &md) && md.type == NF3REG);
    w.n = 0;
    put32(&w, 8); /* not an ftype3 */
    CHECK(!DECODE(mknoddata3, &w, &md));

    /* RFC 1094 fhstatus: unsigned discriminant, 0 or default */
    fhstatus fs;
    w.n = 0;
    put32(&w, 13);
    CHECK(DECODE(fhstatus, &w, &fs) && fs.status == 13);
}

static void test_rpc_msg(void)
{
    struct wire w = { .n = 0 };
    put32(&w, 0xabcdef01); /* xid */
    put32(&w, CALL);
    put32(&w, 2);
    put32(&w, NFS_PROGRAM);
    put32(&w, NFS_V3);
    put32(&w, NFSPROC3_GETATTR);
    put32(&w, AUTH_NONE);
    put32(&w, 0);
    put32(&w, AUTH_NONE);
    put32(&w, 0);
    rpc_msg m;
    CHECK(DECODE(rpc_msg, &w, &m));
    CHECK(m.xid == 0xabcdef01 && m.body.mtype == CALL && m.body.cbody.prog == NFS_PROGRAM &&
          m.body.cbody.proc == NFSPROC3_GETATTR);
    w.n -= 4;
    CHECK(!DECODE(rpc_msg, &w, &m));

    /* accepted SUCCESS reply: results[0] encodes to nothing */
    rpc_msg r = { .xid = 7 };
    r.body.mtype = REPLY;
    r.body.rbody.stat = MSG_ACCEPTED;
    r.body.rbody.areply.verf.flavor = AUTH_NONE;
    r.body.rbody.areply.reply_data.stat = SUCCESS;
    struct xdr_enc x;
    xdr_enc_init(&x, enc_buf, BUF_SIZE);
    CHECK(xdr_encode_rpc_msg(&x, &r) && xdr_enc_len(&x) == 24);

    /* denied: AUTH_ERROR carries an auth_stat */
    r.body.rbody.stat = MSG_DENIED;
    r.body.rbody.rreply.stat = AUTH_ERROR;
    r.body.rbody.rreply.astat = AUTH_TOOWEAK;
    xdr_enc_init(&x, enc_buf, BUF_SIZE);
    CHECK(xdr_encode_rpc_msg(&x, &r) && xdr_enc_len(&x) == 20 && xdr_get_be32(enc_buf + 16) == AUTH_TOOWEAK);
}

/* ---- long lists on a small stack ---- */

#define LIST_LEN 100000u

struct list_job {
    bool ok;
    size_t len, len2;
    uint32_t count;
};

/* ---- NFSv4 (proto/nfs4.x) ---- */

static void put_compound_header(struct wire *w, const char *tag, uint32_t minorversion, uint32_t nops)
{
    w->n = 0;
    put_bytes(w, tag, (uint32_t)strlen(tag));
    put32(w, minorversion);
    put32(w, nops);
}

static void put_stateid(struct wire *w, uint32_t seqid, uint8_t fill)
{
    put32(w, seqid);
    for (int i = 0; i < 3; i++)
        put32(w, fill * 0x01010101u);
}

/* SEQUENCE, PUTROOTFH, LOOKUP "export", GETFH, GETATTR {type, size}, READ */
static void put_v41_compound(struct wire *w)
{
    put_compound_header(w, "tag", 1, 6);
    put32(w, OP_SEQUENCE);
    for (int i = 0; i < 4; i++)
        put32(w, 0x11111111u * (uint32_t)(i + 1)); /* sa_sessionid */
    put32(w, 7);  /* sa_sequenceid */
    put32(w, 0);  /* sa_slotid */
    put32(w, 15); /* sa_highest_slotid */
    put32(w, 1);  /* sa_cachethis */
    put32(w, OP_PUTROOTFH);
    put32(w, OP_LOOKUP);
    put_bytes(w, "export", 6);
    put32(w, OP_GETFH);
    put32(w, OP_GETATTR);
    put32(w, 1);
    put32(w, (1u << FATTR4_TYPE) | (1u << FATTR4_SIZE));
    put32(w, OP_READ);
    put_stateid(w, 1, 0xab);
    put32(w, 0); /* offset */
    put32(w, 4096);
    put32(w, 65536); /* count */
}

static void test_nfs4_compound(void)
{
    struct wire w;
    put_v41_compound(&w);
    COMPOUND4args args;
    CHECK(DECODE(COMPOUND4args, &w, &args));
    CHECK(args.tag.len == 3 && args.minorversion == 1 && args.argarray.len == 6);
    const nfs_argop4 *op = args.argarray.val;
    CHECK(op[0].argop == OP_SEQUENCE && op[0].opsequence.sa_sequenceid == 7 &&
          op[0].opsequence.sa_sessionid[4] == 0x22 && op[0].opsequence.sa_cachethis);
    CHECK(op[1].argop == OP_PUTROOTFH);
    CHECK(op[2].argop == OP_LOOKUP && op[2].oplookup.objname.len == 6 &&
          memcmp(op[2].oplookup.objname.val, "export", 6) == 0);
    CHECK(op[4].argop == OP_GETATTR && op[4].opgetattr.attr_request.len == 1 &&
          op[4].opgetattr.attr_request.val[0] == ((1u << FATTR4_TYPE) | (1u << FATTR4_SIZE)));
    CHECK(op[5].argop == OP_READ && op[5].opread.stateid.seqid == 1 &&
          op[5].opread.stateid.other[11] == 0xab && op[5].opread.offset == 4096 &&
          op[5].opread.count == 65536);
    struct xdr_enc e;
    xdr_enc_init(&e, enc_buf, BUF_SIZE);
    CHECK(xdr_encode_COMPOUND4args(&e, &args) && xdr_enc_len(&e) == w.n && memcmp(enc_buf, w.b, w.n) == 0);

    /* the COMPOUND engine's way: header by hand, then one nfs_argop4 at a time, each
     * from its own small arena */
    struct xdr_dec x;
    xdr_dec_init(&x, w.b, w.n, NULL);
    struct xdr_string tag = {0, NULL};
    uint32_t minor = 0, nops = 0;
    CHECK(xdr_dec_string(&x, &tag, PEERNFS4_MAX_UTF8) && xdr_dec_u32(&x, &minor) && xdr_dec_u32(&x, &nops));
    CHECK(nops == 6);
    static const nfs_opnum4 want[6] = { OP_SEQUENCE, OP_PUTROOTFH, OP_LOOKUP, OP_GETFH, OP_GETATTR, OP_READ };
    for (uint32_t i = 0; i < nops; i++) {
        uint8_t small[256];
        struct xdr_arena a;
        xdr_arena_init(&a, small, sizeof(small));
        x.arena = &a;
        nfs_argop4 one;
        CHECK(xdr_decode_nfs_argop4(&x, &one) && one.argop == want[i]);
    }
    CHECK(x.p == x.end);

    /* one reply operation at a time, then COMPOUND4res decoded whole (client side) */
    xdr_enc_init(&e, enc_buf, BUF_SIZE);
    CHECK(xdr_enc_u32(&e, NFS4_OK) && xdr_enc_string(&e, &tag, PEERNFS4_MAX_UTF8) && xdr_enc_u32(&e, 2));
    nfs_resop4 r1 = { .resop = OP_PUTROOTFH };
    r1.opputrootfh.status = NFS4_OK;
    nfs_resop4 r2 = { .resop = OP_GETFH };
    r2.opgetfh.status = NFS4_OK;
    r2.opgetfh.resok4.object.len = 8;
    r2.opgetfh.resok4.object.val = (const uint8_t *)"fhandle!";
    CHECK(xdr_encode_nfs_resop4(&e, &r1) && xdr_encode_nfs_resop4(&e, &r2));
    w.n = xdr_enc_len(&e);
    memcpy(w.b, enc_buf, w.n);
    COMPOUND4res res;
    CHECK(DECODE(COMPOUND4res, &w, &res));
    CHECK(res.status == NFS4_OK && res.resarray.len == 2 && res.resarray.val[1].resop == OP_GETFH &&
          res.resarray.val[1].opgetfh.resok4.object.len == 8);
}

static void test_nfs4_ops(void)
{
    struct wire w;
    nfs_argop4 op;
    /* op numbers: the gaps and the ends of nfs_opnum4 */
    static const uint32_t bad[] = { 0, 1, 2, 76, 10043, 10045, 0xffffffffu };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        w.n = 0;
        put32(&w, bad[i]);
        put32(&w, 0);
        w.n = 4;
        CHECK(!DECODE(nfs_argop4, &w, &op));
    }
    w.n = 0;
    put32(&w, OP_ILLEGAL);
    CHECK(DECODE(nfs_argop4, &w, &op) && op.argop == OP_ILLEGAL);
    nfs_resop4 ill = { .resop = OP_ILLEGAL };
    ill.opillegal.status = NFS4ERR_OP_ILLEGAL;
    CHECK(ENCODE(nfs_resop4, &ill));

    /* 4.2 and RFC 8276 operations */
    w.n = 0;
    put32(&w, OP_SETXATTR);
    put32(&w, SETXATTR4_CREATE);
    put_bytes(&w, "user.k", 6);
    put_bytes(&w, "value", 5);
    CHECK(DECODE(nfs_argop4, &w, &op) && op.opsetxattr.sxa_option == SETXATTR4_CREATE &&
          op.opsetxattr.sxa_value.len == 5);
    w.n = 0;
    put32(&w, OP_SEEK);
    put_stateid(&w, 0, 0);
    put32(&w, 0);
    put32(&w, 100);
    put32(&w, NFS4_CONTENT_HOLE);
    CHECK(DECODE(nfs_argop4, &w, &op) && op.opseek.sa_what == NFS4_CONTENT_HOLE && op.opseek.sa_offset == 100);
    w.n -= 4;
    put32(&w, 2); /* not a data_content4 */
    CHECK(!DECODE(nfs_argop4, &w, &op));

    /* OPEN: createhow4's shared arm for UNCHECKED4 and GUARDED4; locker4's bool */
    w.n = 0;
    put32(&w, OP_OPEN);
    put32(&w, 0);                       /* seqid */
    put32(&w, OPEN4_SHARE_ACCESS_BOTH); /* share_access */
    put32(&w, OPEN4_SHARE_DENY_NONE);
    put32(&w, 0);
    put32(&w, 42); /* owner.clientid */
    put_bytes(&w, "owner", 5);
    put32(&w, OPEN4_CREATE);
    put32(&w, GUARDED4);
    put32(&w, 2); /* createattrs: a bitmap of two words, FATTR4_MODE (33) in word 1 */
    put32(&w, 0);
    put32(&w, 1u << (FATTR4_MODE - 32));
    put_bytes(&w, "\0\0\1\244", 4); /* attr_vals: mode 0644 */
    put32(&w, CLAIM_NULL);
    put_bytes(&w, "file", 4);
    CHECK(DECODE(nfs_argop4, &w, &op));
    CHECK(op.argop == OP_OPEN && op.opopen.owner.clientid == 42 && op.opopen.openhow.opentype == OPEN4_CREATE &&
          op.opopen.openhow.how.mode == GUARDED4 && op.opopen.openhow.how.createattrs.attrmask.len == 2 &&
          op.opopen.openhow.how.createattrs.attr_vals.len == 4 && op.opopen.claim.claim == CLAIM_NULL &&
          op.opopen.claim.file.len == 4);

    w.n = 0;
    put32(&w, OP_LOCK);
    put32(&w, WRITE_LT);
    put32(&w, 0);
    put32(&w, 0), put32(&w, 0);
    put32(&w, 0xffffffff), put32(&w, 0xffffffff);
    put32(&w, 2); /* new_lock_owner: not a bool */
    put_stateid(&w, 1, 1);
    put32(&w, 1);
    CHECK(!DECODE(nfs_argop4, &w, &op));
    w.n -= 24;
    put32(&w, 0); /* exist_lock_owner4 */
    put_stateid(&w, 1, 1);
    put32(&w, 1);
    CHECK(DECODE(nfs_argop4, &w, &op) && !op.oplock.locker.new_lock_owner &&
          op.oplock.locker.lock_owner.lock_seqid == 1 && op.oplock.length == UINT64_MAX);

    /* bounds nfs4.x adds: bitmap words, file handle size, compound length */
    bitmap4 bm;
    w.n = 0;
    put32(&w, PEERNFS4_MAX_BITMAP + 1);
    for (int i = 0; i <= PEERNFS4_MAX_BITMAP; i++)
        put32(&w, 0);
    CHECK(!DECODE(bitmap4, &w, &bm));
    uint8_t fh[NFS4_FHSIZE + 1] = { 0 };
    nfs_fh4 h;
    w.n = 0;
    put_bytes(&w, (const char *)fh, NFS4_FHSIZE + 1);
    CHECK(!DECODE(nfs_fh4, &w, &h));
    w.n = 0;
    put_bytes(&w, (const char *)fh, NFS4_FHSIZE);
    CHECK(DECODE(nfs_fh4, &w, &h) && h.len == NFS4_FHSIZE);

    /* a hostile operation count fails before anything is allocated */
    COMPOUND4args args;
    struct xdr_arena a;
    struct xdr_dec x;
    put_compound_header(&w, "", 0, 0xffffffffu);
    put32(&w, OP_GETFH);
    xdr_arena_init(&a, arena_mem, ARENA_SIZE);
    xdr_dec_init(&x, w.b, w.n, &a);
    CHECK(!xdr_decode_COMPOUND4args(&x, &args) && a.used == 0);
    /* more operations than PEERNFS4_MAX_OPS, each one word: refused by the bound */
    static uint8_t big[4 * (PEERNFS4_MAX_OPS + 4)];
    size_t n = 0;
    xdr_put_be32(big + n, 0), n += 4;
    xdr_put_be32(big + n, 0), n += 4;
    xdr_put_be32(big + n, PEERNFS4_MAX_OPS + 1), n += 4;
    for (uint32_t i = 0; i <= PEERNFS4_MAX_OPS; i++)
        xdr_put_be32(big + n, OP_GETFH), n += 4;
    xdr_arena_init(&a, arena_mem, ARENA_SIZE);
    xdr_dec_init(&x, big, n, &a);
    CHECK(!xdr_decode_COMPOUND4args(&x, &args) && a.used == 0);
    xdr_put_be32(big + 8, PEERNFS4_MAX_OPS);
    xdr_arena_init(&a, arena_mem, ARENA_SIZE);
    xdr_dec_init(&x, big, n - 4, &a);
    CHECK(xdr_decode_COMPOUND4args(&x, &args) && args.argarray.len == PEERNFS4_MAX_OPS && x.p == x.end);
}

static void test_nfs4_callback(void)
{
    /* CB_COMPOUND4res as the server decodes it: CB_SEQUENCE ok, CB_RECALL failed */
    struct wire w = { .n = 0 };
    put32(&w, NFS4ERR_BADHANDLE);
    put_bytes(&w, "cb", 2);
    put32(&w, 2);
    put32(&w, OP_CB_SEQUENCE);
    put32(&w, NFS4_OK);
    for (int i = 0; i < 4; i++)
        put32(&w, 0x01020304);
    put32(&w, 3), put32(&w, 0), put32(&w, 0), put32(&w, 0);
    put32(&w, OP_CB_RECALL);
    put32(&w, NFS4ERR_BADHANDLE);
    CB_COMPOUND4res res;
    CHECK(DECODE(CB_COMPOUND4res, &w, &res));
    CHECK(res.status == NFS4ERR_BADHANDLE && res.resarray.len == 2 &&
          res.resarray.val[0].resop == OP_CB_SEQUENCE &&
          res.resarray.val[0].opcbsequence.csr_resok4.csr_sequenceid == 3 &&
          res.resarray.val[1].opcbrecall.status == NFS4ERR_BADHANDLE);

    /* CB_COMPOUND4args as the server encodes it */
    nfs_cb_argop4 ops[2];
    memset(ops, 0, sizeof(ops));
    ops[0].argop = OP_CB_SEQUENCE;
    ops[0].opcbsequence.csa_sequenceid = 9;
    ops[1].argop = OP_CB_RECALL;
    ops[1].opcbrecall.truncate = true;
    ops[1].opcbrecall.fh.len = 4;
    ops[1].opcbrecall.fh.val = (const uint8_t *)"fh!!";
    CB_COMPOUND4args args = { .minorversion = 1, .callback_ident = 0 };
    args.argarray.len = 2;
    args.argarray.val = ops;
    struct xdr_enc e;
    xdr_enc_init(&e, enc_buf, BUF_SIZE);
    CHECK(xdr_encode_CB_COMPOUND4args(&e, &args));
    /* tag, minorversion, ident, count; CB_SEQUENCE: op, sessionid, 3 words, bool, no
     * referring calls; CB_RECALL: op, stateid, bool, fh */
    CHECK(xdr_enc_len(&e) == 4 + 4 + 4 + 4 + (4 + 16 + 12 + 4 + 4) + (4 + 16 + 4 + 8));
    /* an unknown callback operation does not encode */
    ops[1].argop = 16;
    xdr_enc_init(&e, enc_buf, BUF_SIZE);
    CHECK(!xdr_encode_CB_COMPOUND4args(&e, &args));

    /* secinfo4: RPCSEC_GSS (6) has a body, other flavors none */
    secinfo4 si;
    w.n = 0;
    put32(&w, 1);
    CHECK(DECODE(secinfo4, &w, &si) && si.flavor == 1);
    w.n = 0;
    put32(&w, 6);
    put_bytes(&w, "\x2a\x86\x48\x86\xf7\x12\x01\x02\x02", 9);
    put32(&w, 0);
    put32(&w, RPC_GSS_SVC_PRIVACY);
    CHECK(DECODE(secinfo4, &w, &si) && si.flavor_info.oid.len == 9 && si.flavor_info.service == RPC_GSS_SVC_PRIVACY);
}

static void *readdir4_job(void *arg)
{
    struct list_job *j = arg;
    entry4 *e = calloc(LIST_LEN, sizeof(*e));
    uint32_t mask = 1u << FATTR4_FILEID;
    for (uint32_t i = 0; i < LIST_LEN; i++) {
        e[i].cookie = i + 3;
        e[i].name.val = (const uint8_t *)"entry";
        e[i].name.len = 5;
        e[i].attrs.attrmask.len = 1;
        e[i].attrs.attrmask.val = &mask;
        e[i].nextentry = i + 1 < LIST_LEN ? &e[i + 1] : NULL;
    }
    READDIR4res res;
    memset(&res, 0, sizeof(res));
    res.status = NFS4_OK;
    res.resok4.reply.entries = e;
    res.resok4.reply.eof = true;
    struct xdr_enc x;
    xdr_enc_init(&x, enc_buf, 8u << 20);
    j->ok = xdr_encode_READDIR4res(&x, &res);
    j->len = xdr_enc_len(&x);
    free(e);
    if (!j->ok)
        return NULL;
    struct xdr_arena a;
    xdr_arena_init(&a, arena_mem, ARENA_SIZE);
    struct xdr_dec d;
    xdr_dec_init(&d, enc_buf, j->len, &a);
    READDIR4res out;
    j->ok = xdr_decode_READDIR4res(&d, &out) && d.p == d.end && out.resok4.reply.eof;
    j->count = 0;
    for (const entry4 *p = out.resok4.reply.entries; p; p = p->nextentry) {
        if (p->cookie != j->count + 3u || p->attrs.attrmask.val[0] != mask)
            j->ok = false;
        j->count++;
    }
    xdr_enc_init(&x, enc_buf3, 8u << 20);
    j->ok = j->ok && xdr_encode_READDIR4res(&x, &out);
    j->len2 = xdr_enc_len(&x);
    j->ok = j->ok && j->len2 == j->len && memcmp(enc_buf, enc_buf3, j->len) == 0;
    return NULL;
}

static void *readdir_job(void *arg)
{
    struct list_job *j = arg;
    /* encode 100k entries */
    entry3 *e = calloc(LIST_LEN, sizeof(*e));
    for (uint32_t i = 0; i < LIST_LEN; i++) {
        e[i].fileid = i;
        e[i].name.val = "entry";
        e[i].name.len = 5;
        e[i].cookie = i + 1;
        e[i].nextentry = i + 1 < LIST_LEN ? &e[i + 1] : NULL;
    }
    READDIR3res res;
    memset(&res, 0, sizeof(res));
    res.status = NFS3_OK;
    res.resok.reply.entries = e;
    res.resok.reply.eof = true;
    struct xdr_enc x;
    xdr_enc_init(&x, enc_buf, 8u << 20);
    j->ok = xdr_encode_READDIR3res(&x, &res);
    j->len = xdr_enc_len(&x);
    free(e);
    if (!j->ok)
        return NULL;

    /* decode them again */
    struct xdr_arena a;
    xdr_arena_init(&a, arena_mem, ARENA_SIZE);
    struct xdr_dec d;
    xdr_dec_init(&d, enc_buf, j->len, &a);
    READDIR3res out;
    j->ok = xdr_decode_READDIR3res(&d, &out) && d.p == d.end;
    j->count = 0;
    for (const entry3 *p = out.resok.reply.entries; p; p = p->nextentry) {
        if (p->fileid != j->count || p->cookie != j->count + 1u)
            j->ok = false;
        j->count++;
    }
    /* and re-encode the decoded list */
    xdr_enc_init(&x, enc_buf3, 8u << 20);
    j->ok = j->ok && xdr_encode_READDIR3res(&x, &out);
    j->len2 = xdr_enc_len(&x);
    j->ok = j->ok && j->len2 == j->len && memcmp(enc_buf, enc_buf3, j->len) == 0;
    return NULL;
}

static void *exports_job(void *arg)
{
    struct list_job *j = arg;
    size_t cap = (size_t)LIST_LEN * 28 + 16;
    uint8_t *b = malloc(cap);
    size_t n = 0;
#define PUT(v) (xdr_put_be32(b + n, (v)), n += 4)
    PUT(1); /* mntexports: a first node follows */
    for (uint32_t i = 0; i < LIST_LEN; i++) {
        PUT(4); /* ex_dir "/srv" */
        memcpy(b + n, "/srv", 4), n += 4;
        PUT(1); /* ex_groups: one group "*" */
        PUT(1);
        memcpy(b + n, "*\0\0\0", 4), n += 4;
        PUT(0);                     /* gr_next */
        PUT(i + 1 < LIST_LEN);      /* ex_next */
    }
#undef PUT
    struct xdr_arena a;
    xdr_arena_init(&a, arena_mem, ARENA_SIZE);
    struct xdr_dec d;
    xdr_dec_init(&d, b, n, &a);
    mntexports ex;
    j->ok = xdr_decode_mntexports(&d, &ex) && d.p == d.end;
    j->count = 0;
    for (const exportnode *p = ex; p; p = p->ex_next) {
        if (p->ex_dir.len != 4 || !p->ex_groups || p->ex_groups->gr_next)
            j->ok = false;
        j->count++;
    }
    struct xdr_enc x;
    xdr_enc_init(&x, enc_buf3, 8u << 20);
    j->ok = j->ok && xdr_encode_mntexports(&x, &ex) && xdr_enc_len(&x) == n && memcmp(b, enc_buf3, n) == 0;
    free(b);
    return NULL;
}

static void run_small_stack(void *(*fn)(void *), struct list_job *j)
{
    pthread_attr_t attr;
    pthread_t th;
    pthread_attr_init(&attr);
    /* far less than 100k nested frames would need, even without sanitizers */
    pthread_attr_setstacksize(&attr, 256 * 1024);
    CHECK(pthread_create(&th, &attr, fn, j) == 0);
    pthread_join(th, NULL);
    pthread_attr_destroy(&attr);
}

static void test_long_lists(void)
{
    struct list_job j = { 0 };
    run_small_stack(readdir_job, &j);
    CHECK(j.ok && j.count == LIST_LEN);
    struct list_job k = { 0 };
    run_small_stack(exports_job, &k);
    CHECK(k.ok && k.count == LIST_LEN);
    struct list_job l = { 0 };
    run_small_stack(readdir4_job, &l);
    CHECK(l.ok && l.count == LIST_LEN);
}

#endif /* XDRTEST_GENERIC_ONLY */

int main(void)
{
    const char *s = getenv("XDRTEST_ITERS");
    unsigned iters = s ? (unsigned)strtoul(s, NULL, 10) : 100;
    arena_mem = malloc(ARENA_SIZE);
    sample_mem = malloc(ARENA_SIZE);
    enc_buf = malloc(8u << 20);
    enc_buf2 = malloc(8u << 20);
    enc_buf3 = malloc(8u << 20);

#ifndef XDRTEST_GENERIC_ONLY
    test_lengths();
    test_authsys();
    test_counts();
    test_discriminants();
    test_rpc_msg();
    test_nfs4_compound();
    test_nfs4_ops();
    test_nfs4_callback();
    test_long_lists();
#endif
    test_generic(iters);

    free(live_copy);
    free(arena_mem);
    free(sample_mem);
    free(enc_buf);
    free(enc_buf2);
    free(enc_buf3);
    if (failures) {
        printf("test_xdr: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_xdr: ok\n");
    return 0;
}
