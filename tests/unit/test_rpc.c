/* Unit tests for rpc/: record marking reassembly and call/reply header parsing. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "rpc/msg.h"
#include "rpc/record.h"

/* Feed `len` stream bytes to a reader in chunks of `chunk`, collecting records. */
static int feed(struct rec_reader *r, const uint8_t *stream, size_t len, size_t chunk,
                struct rec_slice *out, int max_out, enum rec_status *last)
{
    int n = 0;
    size_t off = 0;
    *last = REC_NEED_MORE;
    while (off < len) {
        size_t avail;
        uint8_t *space = rec_reader_space(r, &avail);
        size_t take = len - off < chunk ? len - off : chunk;
        if (take > avail)
            take = avail;
        memcpy(space, stream + off, take);
        rec_reader_filled(r, take);
        off += take;
        while ((*last = rec_reader_next(r, &out[n])) == REC_OK && n < max_out - 1)
            n++;
        if (*last == REC_TOO_BIG)
            return n;
    }
    return n;
}

static size_t put_frag(uint8_t *p, const void *data, uint32_t len, bool last)
{
    xdr_put_be32(p, (last ? REC_LAST_FRAG : 0) | len);
    memcpy(p + 4, data, len);
    return 4 + len;
}

static void test_records_single_and_multi_fragment(void)
{
    static uint8_t stream[400000];
    uint8_t payload[100000];
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 7);
    size_t len = 0;
    len += put_frag(stream + len, "abcd", 4, true);                /* record 1: one fragment */
    len += put_frag(stream + len, payload, 30000, false);          /* record 2: three fragments */
    len += put_frag(stream + len, payload + 30000, 50000, false);
    len += put_frag(stream + len, payload + 80000, 20000, true);
    len += put_frag(stream + len, "", 0, true);                    /* record 3: empty */
    len += put_frag(stream + len, payload, 100000, true);          /* record 4: larger than a buffer */

    size_t chunks[] = { 1, 3, 4096, 65536, 400000 };
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        struct rec_reader r;
        struct rec_slice recs[8];
        enum rec_status last;
        rec_reader_init(&r, 1 << 20);
        int n = feed(&r, stream, len, chunks[c], recs, 8, &last);
        CHECK_EQ(n, 4);
        CHECK_EQ(last, REC_NEED_MORE);
        if (n == 4) {
            CHECK(recs[0].len == 4 && memcmp(recs[0].data, "abcd", 4) == 0);
            CHECK(recs[1].len == 100000 && memcmp(recs[1].data, payload, 100000) == 0);
            CHECK_EQ(recs[2].len, 0);
            CHECK(recs[3].len == 100000 && memcmp(recs[3].data, payload, 100000) == 0);
        }
        for (int i = 0; i < n; i++)
            rbuf_put(recs[i].buf);
        rec_reader_free(&r);
    }
}

static void test_record_too_big(void)
{
    uint8_t stream[16];
    struct rec_reader r;
    struct rec_slice recs[2];
    enum rec_status last;

    /* a 4 GiB - 1 fragment length must be refused without buffering */
    xdr_put_be32(stream, 0xffffffffu);
    rec_reader_init(&r, 1 << 20);
    CHECK_EQ(feed(&r, stream, 4, 4, recs, 2, &last), 0);
    CHECK_EQ(last, REC_TOO_BIG);
    rec_reader_free(&r);

    /* fragments that are small one by one but too big together */
    static uint8_t s2[3 * (4 + 600)];
    uint8_t data[600] = { 0 };
    size_t len = 0;
    for (int i = 0; i < 3; i++)
        len += put_frag(s2 + len, data, 600, false);
    rec_reader_init(&r, 1000);
    feed(&r, s2, len, 64, recs, 2, &last);
    CHECK_EQ(last, REC_TOO_BIG);
    rec_reader_free(&r);
}

static size_t make_call(uint8_t *buf, size_t cap, uint32_t rpcvers, const struct rpc_cred *cred)
{
    struct xdr_enc x;
    xdr_enc_init(&x, buf, cap);
    rpc_enc_call(&x, 0x1234, 100003, 3, 1, cred);
    if (rpcvers != 2)
        xdr_put_be32(buf + 8, rpcvers);
    xdr_enc_u32(&x, 0xabcdef01); /* "arguments" */
    return xdr_enc_len(&x);
}

static void test_parse_call(void)
{
    uint8_t buf[1024];
    struct rpc_call_hdr h;
    struct rpc_cred in = { .flavor = RPC_AUTH_SYS, .uid = 1000, .gid = 100, .ngids = 3,
                           .gids = { 1, 2, 3 }, .machinename_len = 4 };
    struct rpc_cred out;
    memcpy(in.machinename, "host", 5);

    size_t len = make_call(buf, sizeof(buf), 2, &in);
    CHECK_EQ(rpc_parse_call(buf, len, &h, &out), RPC_PARSE_CALL);
    CHECK(h.xid == 0x1234 && h.prog == 100003 && h.vers == 3 && h.proc == 1);
    CHECK(out.flavor == RPC_AUTH_SYS && out.uid == 1000 && out.gid == 100 && out.ngids == 3);
    CHECK(out.gids[2] == 3 && strcmp(out.machinename, "host") == 0);
    CHECK_EQ(xdr_get_be32(buf + h.args_off), 0xabcdef01);

    /* every truncation before the arguments is refused, never read past the end */
    for (size_t cut = 0; cut < h.args_off; cut++) {
        enum rpc_parse_result pr = rpc_parse_call(buf, cut, &h, &out);
        CHECK(pr != RPC_PARSE_CALL);
    }

    len = make_call(buf, sizeof(buf), 3, NULL);
    CHECK_EQ(rpc_parse_call(buf, len, &h, &out), RPC_PARSE_RPC_MISMATCH);

    /* AUTH_SYS with 17 groups: AUTH_BADCRED */
    in.ngids = 16;
    len = make_call(buf, sizeof(buf), 2, &in);
    CHECK_EQ(rpc_parse_call(buf, len, &h, &out), RPC_PARSE_CALL);
    xdr_put_be32(buf + 24 + 4 + 4 + 4 + 8 + 4 + 4, 17); /* gids count, after hdr+flavor+len+stamp+name+uid+gid */
    CHECK_EQ(rpc_parse_call(buf, len, &h, &out), RPC_PARSE_AUTH_ERROR);
    CHECK_EQ(h.auth_stat, RPC_AUTH_BADCRED);

    /* credential body longer than 400 bytes: AUTH_BADCRED */
    len = make_call(buf, sizeof(buf), 2, &in);
    xdr_put_be32(buf + 28, 10000 * 4 + 20);
    CHECK_EQ(rpc_parse_call(buf, len, &h, &out), RPC_PARSE_AUTH_ERROR);

    /* a flavor not served (AUTH_DH = 3): refused as too weak */
    len = make_call(buf, sizeof(buf), 2, NULL);
    xdr_put_be32(buf + 24, 3);
    CHECK_EQ(rpc_parse_call(buf, len, &h, &out), RPC_PARSE_AUTH_ERROR);
    CHECK_EQ(h.auth_stat, RPC_AUTH_TOOWEAK_STAT);

    /* a reply is recognised as such; msg_type 7 is dropped */
    len = make_call(buf, sizeof(buf), 2, NULL);
    xdr_put_be32(buf + 4, 1);
    CHECK_EQ(rpc_parse_call(buf, len, &h, &out), RPC_PARSE_REPLY);
    xdr_put_be32(buf + 4, 7);
    CHECK_EQ(rpc_parse_call(buf, len, &h, &out), RPC_PARSE_DROP);
}

static void test_replies(void)
{
    uint8_t buf[256];
    struct xdr_enc x;
    struct rpc_reply_info info;

    xdr_enc_init(&x, buf, sizeof(buf));
    CHECK(rpc_enc_prog_mismatch(&x, 77, 2, 4));
    CHECK(rpc_parse_reply(buf, xdr_enc_len(&x), &info));
    CHECK(info.xid == 77 && info.reply_stat == RPC_MSG_ACCEPTED &&
          info.accept_stat == RPC_PROG_MISMATCH && info.low == 2 && info.high == 4);

    xdr_enc_init(&x, buf, sizeof(buf));
    CHECK(rpc_enc_auth_error(&x, 78, RPC_AUTH_TOOWEAK_STAT));
    CHECK(rpc_parse_reply(buf, xdr_enc_len(&x), &info));
    CHECK(info.reply_stat == RPC_MSG_DENIED && info.reject_stat == RPC_AUTH_ERROR &&
          info.auth_stat == RPC_AUTH_TOOWEAK_STAT);

    xdr_enc_init(&x, buf, sizeof(buf));
    CHECK(rpc_enc_rpc_mismatch(&x, 79));
    CHECK(rpc_parse_reply(buf, xdr_enc_len(&x), &info));
    CHECK(info.reject_stat == RPC_MISMATCH && info.low == 2 && info.high == 2);

    xdr_enc_init(&x, buf, sizeof(buf));
    CHECK(rpc_enc_accepted(&x, 80, RPC_SUCCESS));
    CHECK(xdr_enc_len(&x) == RPC_ACCEPTED_HDR_LEN);
    CHECK(rpc_parse_reply(buf, xdr_enc_len(&x), &info) && info.results_off == RPC_ACCEPTED_HDR_LEN);
}

int main(void)
{
    test_records_single_and_multi_fragment();
    test_record_too_big();
    test_parse_call();
    test_replies();
    return check_report("test_rpc");
}
