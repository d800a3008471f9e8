/*
 * libFuzzer target: the RPC receive path before any handler — record-marking
 * reassembly (fed in chunks whose sizes come from the input) and call-header +
 * credential parsing of every record that comes out, then a reply header for it.
 * REPLY records take the server's back-channel path (rpc_reply_results: the xid to
 * match and where the results start), as they do on a server connection.
 * RPCSEC_GSS calls go on through rpc_gss_accept (no keytab: context creation fails,
 * data calls name no context), as the server does before any handler.
 */
#include <stdint.h>
#include <string.h>

#include "rpc/gss.h"
#include "rpc/msg.h"
#include "rpc/record.h"

static struct rpc_gss *gss;

static void accept_gss(const struct rec_slice *rec, const struct rpc_call_hdr *h, struct rpc_cred *cred)
{
    static uint8_t out_buf[64 * 1024];
    struct xdr_enc out;
    struct rpc_gss_call gc;
    enum rpc_auth_stat why;
    if (!gss && !(gss = rpc_gss_new()))
        return;
    if (h->cred_end > h->args_off || (h->gss.handle_len && !h->gss.handle))
        __builtin_trap();
    xdr_enc_init(&out, out_buf, sizeof(out_buf));
    enum rpc_gss_verdict v = rpc_gss_accept(gss, rec->data, rec->len, h, cred, &gc, &out, &why);
    if (v == RPC_GSS_PROCEED && (gc.args < rec->data || gc.args + gc.args_len > rec->data + rec->len) &&
        !gc.unwrapped)
        __builtin_trap();
    rpc_gss_call_release(&gc);
}

static void parse_record(const struct rec_slice *rec)
{
    struct rpc_call_hdr h;
    struct rpc_cred cred;
    uint8_t out[64];
    struct xdr_enc x;

    enum rpc_parse_result pr = rpc_parse_call(rec->data, rec->len, &h, &cred);
    xdr_enc_init(&x, out, sizeof(out));
    if (pr == RPC_PARSE_CALL) {
        if (h.args_off > rec->len)
            __builtin_trap();
        if (cred.flavor == RPC_AUTH_SYS &&
            (cred.ngids > RPC_AUTHSYS_MAXGIDS || cred.machinename_len > RPC_AUTHSYS_MAXNAME))
            __builtin_trap();
        rpc_enc_accepted(&x, h.xid, RPC_SUCCESS);
        if (cred.flavor == RPC_AUTH_GSS)
            accept_gss(rec, &h, &cred);
    } else if (pr == RPC_PARSE_AUTH_ERROR) {
        rpc_enc_auth_error(&x, h.xid, h.auth_stat);
    } else if (pr == RPC_PARSE_REPLY) {
        uint32_t xid;
        size_t off;
        int err = rpc_reply_results(rec->data, rec->len, &xid, &off);
        if (xid != h.xid || off > rec->len || (err == 0 && off < RPC_ACCEPTED_HDR_LEN))
            __builtin_trap();
        if (err == 0) { /* what a done function gets: a cursor over the results */
            struct xdr_dec res;
            uint32_t v;
            xdr_dec_init(&res, rec->data + off, rec->len - off, NULL);
            while (xdr_dec_u32(&res, &v))
                ;
        }
    }
    struct rpc_reply_info info;
    rpc_parse_reply(rec->data, rec->len, &info); /* the client-side parser too */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = (size_t)data[0] * 7 + 1; /* vary how the stream is split */
    data++;
    size--;

    struct rec_reader r;
    rec_reader_init(&r, 256 * 1024);
    size_t off = 0;
    while (off < size) {
        size_t avail;
        uint8_t *space = rec_reader_space(&r, &avail);
        if (!space)
            break;
        size_t n = size - off < chunk ? size - off : chunk;
        if (n > avail)
            n = avail;
        memcpy(space, data + off, n);
        rec_reader_filled(&r, n);
        off += n;
        struct rec_slice rec;
        enum rec_status st;
        while ((st = rec_reader_next(&r, &rec)) == REC_OK) {
            parse_record(&rec);
            rbuf_put(rec.buf);
        }
        if (st == REC_TOO_BIG)
            break;
    }
    rec_reader_free(&r);
    return 0;
}
