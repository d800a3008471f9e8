/*
 * CB_COMPOUND on the wire: the arguments we send, the reply we accept, and the 4.0
 * callback address. Pure functions (no threads, no sockets), so the fuzz target and the
 * tests reach every byte the client controls.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "cb/cb.h"

bool cb_encode_compound(struct xdr_enc *x, uint32_t minorversion, uint32_t callback_ident,
                        const CB_SEQUENCE4args *seq, const uint8_t *ops, size_t ops_len, uint32_t nops)
{
    /* tag: empty (the client echoes it; nothing of ours depends on it) */
    if (!xdr_enc_opaque(x, NULL, 0, 0) || !xdr_enc_u32(x, minorversion) || !xdr_enc_u32(x, callback_ident))
        return false;
    if (!xdr_enc_u32(x, nops + (seq ? 1u : 0u)))
        return false;
    if (seq) {
        nfs_cb_argop4 op = {.argop = OP_CB_SEQUENCE, .opcbsequence = *seq};
        if (!xdr_encode_nfs_cb_argop4(x, &op))
            return false;
    }
    /* the ops were encoded whole by xdr_encode_nfs_cb_argop4: a multiple of 4 bytes */
    return ops_len % 4 == 0 && ops_len <= UINT32_MAX && xdr_enc_fixed(x, ops, (uint32_t)ops_len);
}

/* A result for the op we sent at this position: the same op, or CB_ILLEGAL (the client
 * does not know it, RFC 8881 20.13 / 7530 16.2.4). */
static bool result_matches(uint32_t resop, uint32_t sent)
{
    return resop == sent || resop == OP_CB_ILLEGAL;
}

static nfsstat4 result_status(const nfs_cb_resop4 *r)
{
    switch (r->resop) {
    case OP_CB_SEQUENCE: return r->opcbsequence.csr_status;
    case OP_CB_GETATTR: return r->opcbgetattr.status;
    case OP_CB_RECALL: return r->opcbrecall.status;
    case OP_CB_RECALL_ANY: return r->opcbrecall_any.crar_status;
    case OP_CB_NOTIFY_LOCK: return r->opcbnotify_lock.cnlr_status;
    case OP_CB_ILLEGAL: return r->opcbillegal.status;
    /* Each *4res of the other ops starts with its nfsstat4 as well; we never send them,
     * so result_matches() has refused them already. */
    default: return NFS4ERR_SERVERFAULT;
    }
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* change (attribute 3) and size (4) from a CB_GETATTR result, which must carry both and
 * nothing numbered below them (attributes come in number order). Anything after them
 * is ignored. */
static void getattr_result(const fattr4 *a, struct cb_reply *out)
{
    const uint32_t want = 1u << 3 | 1u << 4;
    if (a->attrmask.len == 0 || (a->attrmask.val[0] & 0x1fu) != want || a->attr_vals.len < 16)
        return;
    out->has_attrs = true;
    out->change = get_be64(a->attr_vals.val);
    out->size = get_be64(a->attr_vals.val + 8);
}

bool cb_reply_decode(struct xdr_dec *x, const uint32_t *ops, unsigned nops, struct cb_reply *out)
{
    memset(out, 0, sizeof(*out));
    uint32_t status, n;
    struct xdr_opaque tag;
    if (!xdr_dec_u32(x, &status) || !xdr_dec_opaque(x, &tag, PEERNFS4_MAX_UTF8))
        return false;
    /* no more results than ops sent: bounds the work before anything is decoded */
    if (!xdr_dec_count(x, &n, nops, 8))
        return false;
    out->status = (nfsstat4)status;
    out->nres = n;
    /* The ops we send have no arrays in their results; a small arena suffices for a
     * CB_ILLEGAL or anything the generated decoder might want. */
    uint64_t arena_mem[64];
    struct xdr_arena arena;
    xdr_arena_init(&arena, arena_mem, sizeof(arena_mem));
    struct xdr_dec d = *x;
    d.arena = &arena;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t resop;
        struct xdr_dec peek = d;
        if (!xdr_dec_u32(&peek, &resop) || !result_matches(resop, ops[i]))
            return false;
        nfs_cb_resop4 r;
        if (!xdr_decode_nfs_cb_resop4(&d, &r))
            return false;
        nfsstat4 st = result_status(&r);
        if (i == 0 && r.resop == OP_CB_SEQUENCE) {
            out->has_seq = true;
            out->seq_status = st;
            if (st == NFS4_OK)
                out->seq = r.opcbsequence.csr_resok4;
        }
        if (r.resop == OP_CB_GETATTR && st == NFS4_OK)
            getattr_result(&r.opcbgetattr.resok4.obj_attributes, out);
        out->last_op = r.resop;
        out->last_status = st;
        if (st != NFS4_OK && i + 1 < n)
            return false; /* a COMPOUND stops at its first failure */
    }
    if (out->status == NFS4_OK && n && out->last_status != NFS4_OK)
        out->status = out->last_status;
    *x = d;
    x->arena = NULL;
    return true;
}

/* ---- universal addresses ---- */

/* Splits "<host>.p1.p2" into host text and port. */
static bool split_port(const char *uaddr, char *host, size_t host_cap, uint16_t *port)
{
    size_t len = strnlen(uaddr, 128);
    if (len == 0 || len >= 128)
        return false;
    const char *p2 = memrchr(uaddr, '.', len);
    if (!p2 || p2 == uaddr)
        return false;
    const char *p1 = memrchr(uaddr, '.', (size_t)(p2 - uaddr));
    if (!p1 || p1 == uaddr || (size_t)(p1 - uaddr) >= host_cap)
        return false;
    unsigned v[2];
    const char *parts[2] = {p1 + 1, p2 + 1};
    const char *ends[2] = {p2, uaddr + len};
    for (int i = 0; i < 2; i++) {
        size_t digits = (size_t)(ends[i] - parts[i]);
        if (digits == 0 || digits > 3)
            return false;
        v[i] = 0;
        for (const char *c = parts[i]; c < ends[i]; c++) {
            if (*c < '0' || *c > '9')
                return false;
            v[i] = v[i] * 10 + (unsigned)(*c - '0');
        }
        if (v[i] > 255)
            return false;
    }
    *port = (uint16_t)(v[0] << 8 | v[1]);
    memcpy(host, uaddr, (size_t)(p1 - uaddr));
    host[p1 - uaddr] = '\0';
    return *port != 0;
}

bool cb_uaddr_parse(const char *netid, const char *uaddr, struct sockaddr_storage *out,
                    socklen_t *out_len)
{
    char host[INET6_ADDRSTRLEN + 1];
    uint16_t port;
    if (!netid || !uaddr || !split_port(uaddr, host, sizeof(host), &port))
        return false;
    memset(out, 0, sizeof(*out));
    if (strcmp(netid, "tcp") == 0) {
        struct sockaddr_in *sin = (struct sockaddr_in *)(void *)out;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
            return false;
        *out_len = sizeof(*sin);
        return true;
    }
    if (strcmp(netid, "tcp6") == 0) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)out;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
            return false;
        *out_len = sizeof(*sin6);
        return true;
    }
    return false; /* udp, rdma, ...: we call back over TCP only */
}
