/*
 * RPCSEC_GSS pieces that need no Kerberos realm (tests/interop/test_krb5.py has one):
 * the sequence window (RFC 2203 5.3.3.1), parsing of the RPCSEC_GSS credential and
 * verifier, and what rpc_gss_accept answers without a context: an unknown handle is
 * CREDPROBLEM, a garbage INIT token gets a GSS failure reply (no handle), a creation
 * call to another procedure than NULL is BADCRED.
 */
#include <string.h>

#include "check.h"
#include "rpc/gss.h"
#include "rpc/msg.h"

static void test_window(void)
{
    struct rpc_gss_window w = {0};
    CHECK(rpc_gss_window_take(&w, 1));
    CHECK(!rpc_gss_window_take(&w, 1)); /* a replay */
    CHECK(rpc_gss_window_take(&w, 3));
    CHECK(rpc_gss_window_take(&w, 2)); /* overtaken, still in the window */
    CHECK(!rpc_gss_window_fresh(&w, 2));
    CHECK(rpc_gss_window_take(&w, 100));
    CHECK(!rpc_gss_window_fresh(&w, 3)); /* remembered across the shift */
    CHECK(rpc_gss_window_take(&w, 300));
    CHECK(rpc_gss_window_take(&w, 300 - RPC_GSS_WINDOW + 1)); /* the oldest in the window */
    CHECK(!rpc_gss_window_fresh(&w, 300 - RPC_GSS_WINDOW));    /* below it */
    /* shifts of 64 and more move the older half; bit positions must survive */
    CHECK(rpc_gss_window_take(&w, 370)); /* shift 70 */
    CHECK(!rpc_gss_window_fresh(&w, 300));
    CHECK(rpc_gss_window_fresh(&w, 299));
    CHECK(rpc_gss_window_take(&w, 299));
    CHECK(rpc_gss_window_take(&w, 1000)); /* shift past the window: all fresh again */
    CHECK(rpc_gss_window_fresh(&w, 999));
    CHECK(!rpc_gss_window_fresh(&w, 1000));
    CHECK(!rpc_gss_window_fresh(&w, 1000 - RPC_GSS_WINDOW));
    /* every number of a shuffled burst once, none twice */
    struct rpc_gss_window b = {0};
    unsigned taken = 0;
    for (uint32_t i = 0; i < 2 * RPC_GSS_WINDOW; i++) {
        uint32_t seq = 5000 + (i * 37) % (2 * RPC_GSS_WINDOW);
        taken += rpc_gss_window_take(&b, seq);
        CHECK(!rpc_gss_window_take(&b, seq));
    }
    CHECK(taken > RPC_GSS_WINDOW); /* the ones left below the window are refused */
}

/* A call with an RPCSEC_GSS credential and the given verifier and arguments. */
static size_t gss_call(uint8_t *buf, size_t cap, uint32_t proc, uint32_t gss_proc, uint32_t seq,
                       uint32_t service, const uint8_t *handle, uint32_t handle_len,
                       const uint8_t *args, uint32_t args_len)
{
    struct xdr_enc x;
    uint8_t body[128];
    struct xdr_enc b;
    xdr_enc_init(&b, body, sizeof(body));
    xdr_enc_u32(&b, 1);
    xdr_enc_u32(&b, gss_proc);
    xdr_enc_u32(&b, seq);
    xdr_enc_u32(&b, service);
    xdr_enc_opaque(&b, handle, handle_len, 0);
    xdr_enc_init(&x, buf, cap);
    xdr_enc_u32(&x, 0x1234);
    xdr_enc_u32(&x, RPC_CALL);
    xdr_enc_u32(&x, 2);
    xdr_enc_u32(&x, 100003);
    xdr_enc_u32(&x, 3);
    xdr_enc_u32(&x, proc);
    xdr_enc_u32(&x, RPC_AUTH_GSS);
    xdr_enc_opaque(&x, body, (uint32_t)xdr_enc_len(&b), 0);
    xdr_enc_u32(&x, gss_proc == RPC_GSS_PROC_DATA ? RPC_AUTH_GSS : RPC_AUTH_NONE);
    xdr_enc_opaque(&x, "0123456789abcdef", 16, 0);
    xdr_enc_fixed(&x, args, args_len);
    return xdr_enc_len(&x);
}

static void test_parse(void)
{
    uint8_t buf[512];
    struct rpc_call_hdr h;
    struct rpc_cred cr;
    const uint8_t handle[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    size_t len = gss_call(buf, sizeof(buf), 1, RPC_GSS_PROC_DATA, 77, RPC_GSS_SERVICE_INTEGRITY, handle, 8, NULL, 0);
    CHECK_EQ(rpc_parse_call(buf, len, &h, &cr), RPC_PARSE_CALL);
    CHECK_EQ(cr.flavor, RPC_AUTH_GSS);
    CHECK_EQ(cr.gss_service, RPC_GSS_SERVICE_INTEGRITY);
    CHECK(!cr.has_ids);
    CHECK_EQ(rpc_cred_pseudoflavor(&cr), RPC_PSEUDO_KRB5I);
    CHECK_EQ(h.gss.seq, 77);
    CHECK_EQ(h.gss.handle_len, 8);
    CHECK(memcmp(h.gss.handle, handle, 8) == 0);
    CHECK_EQ(h.verf_flavor, RPC_AUTH_GSS);
    CHECK_EQ(h.verf_len, 16);
    /* the checksummed header ends where the verifier starts */
    CHECK_EQ(h.cred_end, (size_t)(h.verf - buf) - 8);
    /* service 4 and gss_proc 4 do not exist; version 2 is REJECTEDCRED */
    len = gss_call(buf, sizeof(buf), 1, RPC_GSS_PROC_DATA, 1, 4, handle, 8, NULL, 0);
    CHECK_EQ(rpc_parse_call(buf, len, &h, &cr), RPC_PARSE_AUTH_ERROR);
    CHECK_EQ(h.auth_stat, RPC_AUTH_BADCRED);
    len = gss_call(buf, sizeof(buf), 1, 4, 1, 1, handle, 8, NULL, 0);
    CHECK_EQ(rpc_parse_call(buf, len, &h, &cr), RPC_PARSE_AUTH_ERROR);
    len = gss_call(buf, sizeof(buf), 1, RPC_GSS_PROC_DATA, 1, 1, handle, 8, NULL, 0);
    xdr_put_be32(buf + 32, 2); /* the credential's version */
    CHECK_EQ(rpc_parse_call(buf, len, &h, &cr), RPC_PARSE_AUTH_ERROR);
    CHECK_EQ(h.auth_stat, RPC_AUTH_REJECTEDCRED);
    /* every truncation is refused, never read past */
    len = gss_call(buf, sizeof(buf), 1, RPC_GSS_PROC_DATA, 1, 1, handle, 8, NULL, 0);
    for (size_t cut = 0; cut < len; cut++) {
        enum rpc_parse_result pr = rpc_parse_call(buf, cut, &h, &cr);
        CHECK(pr != RPC_PARSE_CALL);
    }
}

static void test_accept_without_context(void)
{
    struct rpc_gss *g = rpc_gss_new();
    CHECK(g != NULL);
    uint8_t buf[512], out_buf[1024];
    struct rpc_call_hdr h;
    struct rpc_cred cr;
    struct rpc_gss_call gc;
    struct xdr_enc out;
    enum rpc_auth_stat why;
    const uint8_t handle[8] = {9, 9, 9, 9, 9, 9, 9, 9};

    /* DATA on a handle the server never gave out */
    size_t len = gss_call(buf, sizeof(buf), 1, RPC_GSS_PROC_DATA, 5, 1, handle, 8, NULL, 0);
    CHECK_EQ(rpc_parse_call(buf, len, &h, &cr), RPC_PARSE_CALL);
    xdr_enc_init(&out, out_buf, sizeof(out_buf));
    CHECK_EQ(rpc_gss_accept(g, buf, len, &h, &cr, &gc, &out, &why), RPC_GSS_DENIED);
    CHECK_EQ(why, RPC_AUTH_GSS_CREDPROBLEM);
    CHECK(gc.ctx == NULL);
    /* DESTROY too */
    len = gss_call(buf, sizeof(buf), 0, RPC_GSS_PROC_DESTROY, 6, 1, handle, 8, NULL, 0);
    CHECK_EQ(rpc_parse_call(buf, len, &h, &cr), RPC_PARSE_CALL);
    CHECK_EQ(rpc_gss_accept(g, buf, len, &h, &cr, &gc, &out, &why), RPC_GSS_DENIED);
    CHECK_EQ(why, RPC_AUTH_GSS_CREDPROBLEM);
    /* INIT with a token that is not one: a reply with the GSS failure and no handle */
    const uint8_t args[] = {0, 0, 0, 8, 'n', 'o', 't', ' ', 'g', 's', 's', '!'};
    len = gss_call(buf, sizeof(buf), 0, RPC_GSS_PROC_INIT, 0, 1, NULL, 0, args, sizeof(args));
    CHECK_EQ(rpc_parse_call(buf, len, &h, &cr), RPC_PARSE_CALL);
    xdr_enc_init(&out, out_buf, sizeof(out_buf));
    CHECK_EQ(rpc_gss_accept(g, buf, len, &h, &cr, &gc, &out, &why), RPC_GSS_REPLIED);
    struct xdr_dec d;
    uint32_t v[6] = {0}, handle_len = 0, major = 0;
    xdr_dec_init(&d, out_buf, xdr_enc_len(&out), NULL);
    for (int i = 0; i < 6; i++) /* xid REPLY ACCEPTED verf-flavor verf-len SUCCESS */
        CHECK(xdr_dec_u32(&d, &v[i]));
    CHECK_EQ(v[0], 0x1234);
    CHECK_EQ(v[2], RPC_MSG_ACCEPTED);
    CHECK_EQ(v[3], RPC_AUTH_NONE); /* no context: no checksum */
    CHECK_EQ(v[5], RPC_SUCCESS);
    CHECK(xdr_dec_u32(&d, &handle_len) && xdr_dec_u32(&d, &major));
    CHECK_EQ(handle_len, 0);
    CHECK(major != 0 && major != 1); /* neither COMPLETE nor CONTINUE_NEEDED */
    /* INIT to a procedure other than NULL */
    len = gss_call(buf, sizeof(buf), 1, RPC_GSS_PROC_INIT, 0, 1, NULL, 0, args, sizeof(args));
    CHECK_EQ(rpc_parse_call(buf, len, &h, &cr), RPC_PARSE_CALL);
    CHECK_EQ(rpc_gss_accept(g, buf, len, &h, &cr, &gc, &out, &why), RPC_GSS_DENIED);
    CHECK_EQ(why, RPC_AUTH_BADCRED);
    /* INIT whose token length runs past the record */
    const uint8_t bad_args[] = {0, 0, 1, 0, 'x', 'y', 'z', 'w'};
    len = gss_call(buf, sizeof(buf), 0, RPC_GSS_PROC_INIT, 0, 1, NULL, 0, bad_args, sizeof(bad_args));
    CHECK_EQ(rpc_parse_call(buf, len, &h, &cr), RPC_PARSE_CALL);
    CHECK_EQ(rpc_gss_accept(g, buf, len, &h, &cr, &gc, &out, &why), RPC_GSS_GARBAGE);
    rpc_gss_free(g);
}

int main(void)
{
    test_window();
    test_parse();
    test_accept_without_context();
    return check_report("test_rpc_gss");
}
