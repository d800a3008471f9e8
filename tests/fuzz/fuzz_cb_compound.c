/*
 * libFuzzer target for what a client controls in cb/: the CB_COMPOUND4res it answers
 * with (cb_reply_decode, as the callback service decodes it) and the 4.0 callback address
 * it gives in SETCLIENTID (cb_uaddr_parse); plus CB_COMPOUND4args decoded the way a
 * client's callback service would (the generated decoder, bounded by an arena).
 *
 * The first input byte picks the mode:
 *   0  CB_COMPOUND4res answering the op list named by the second byte (4.1 style with
 *      CB_SEQUENCE first, or 4.0 style): decoded, and the decoded summary must be sane;
 *   1  CB_COMPOUND4args: decoded; what decodes is re-encoded and must decode again;
 *   2  "netid\0uaddr": parsed; what parses must be a TCP address with a port.
 * The input is libFuzzer's exact-size heap copy, so a read past its end is caught by ASan.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cb/cb.h"

#define ARENA_SIZE (64u << 10)
#define BUF_SIZE (256u << 10)

static const uint32_t op_lists[4][3] = {
    {OP_CB_SEQUENCE, OP_CB_RECALL, 0},
    {OP_CB_RECALL, 0, 0},
    {OP_CB_SEQUENCE, OP_CB_NOTIFY_LOCK, 0},
    {OP_CB_SEQUENCE, OP_CB_RECALL_ANY, OP_CB_RECALL},
};
static const unsigned op_counts[4] = {2, 1, 2, 3};

static void fuzz_reply(const uint8_t *p, size_t n)
{
    if (n < 1)
        return;
    unsigned which = p[0] & 3u;
    struct xdr_dec d;
    xdr_dec_init(&d, p + 1, n - 1, NULL);
    struct cb_reply r;
    if (!cb_reply_decode(&d, op_lists[which], op_counts[which], &r))
        return;
    if (r.nres > op_counts[which])
        abort();
    if (r.has_seq && op_lists[which][0] != OP_CB_SEQUENCE)
        abort();
    if (r.status == NFS4_OK && r.nres && r.last_status != NFS4_OK)
        abort();
    if (d.p > p + n)
        abort();
}

static void fuzz_args(const uint8_t *p, size_t n)
{
    static uint8_t *arena_mem, *arena_mem2, *buf;
    if (!arena_mem) {
        arena_mem = malloc(ARENA_SIZE);
        arena_mem2 = malloc(ARENA_SIZE);
        buf = malloc(BUF_SIZE);
        if (!arena_mem || !arena_mem2 || !buf)
            abort();
    }
    struct xdr_arena arena, arena2;
    xdr_arena_init(&arena, arena_mem, ARENA_SIZE);
    xdr_arena_init(&arena2, arena_mem2, ARENA_SIZE);
    struct xdr_dec d;
    xdr_dec_init(&d, p, n, &arena);
    CB_COMPOUND4args a;
    if (!xdr_decode_CB_COMPOUND4args(&d, &a))
        return;
    struct xdr_enc e;
    xdr_enc_init(&e, buf, BUF_SIZE);
    if (!xdr_encode_CB_COMPOUND4args(&e, &a))
        return; /* larger than our buffer: fine */
    struct xdr_dec d2;
    xdr_dec_init(&d2, buf, xdr_enc_len(&e), &arena2);
    CB_COMPOUND4args b;
    if (!xdr_decode_CB_COMPOUND4args(&d2, &b) || xdr_dec_left(&d2) != 0)
        abort();
    if (b.argarray.len != a.argarray.len || b.minorversion != a.minorversion)
        abort();
}

static void fuzz_uaddr(const uint8_t *p, size_t n)
{
    char text[256];
    if (n >= sizeof(text))
        n = sizeof(text) - 1;
    memcpy(text, p, n);
    text[n] = '\0';
    const char *netid = text;
    const char *uaddr = memchr(text, '\0', n) ? text + strlen(text) + 1 : "";
    struct sockaddr_storage ss;
    socklen_t len = 0;
    if (!cb_uaddr_parse(netid, uaddr, &ss, &len))
        return;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)&ss;
        if (len != sizeof(*sin) || sin->sin_port == 0)
            abort();
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)&ss;
        if (len != sizeof(*sin6) || sin6->sin6_port == 0)
            abort();
    } else {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] % 3u) {
    case 0: fuzz_reply(data + 1, size - 1); break;
    case 1: fuzz_args(data + 1, size - 1); break;
    default: fuzz_uaddr(data + 1, size - 1); break;
    }
    return 0;
}
