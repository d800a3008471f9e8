/*
 * RPC message headers (RFC 5531): parsing a call header with its credential, and
 * writing reply headers. Hand-written rather than generated because every request
 * passes through here; the generated rpc_prot.x codecs are used by the unit tests to
 * cross-check this code.
 */
#ifndef PEERNFS_RPC_MSG_H
#define PEERNFS_RPC_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "rpc/svc.h"
#include "xdr/xdr.h"

#define RPC_VERSION 2
#define RPC_MAX_AUTH_BYTES 400

enum rpc_msg_type { RPC_CALL = 0, RPC_REPLY = 1 };
enum rpc_reply_stat { RPC_MSG_ACCEPTED = 0, RPC_MSG_DENIED = 1 };
enum rpc_reject_stat { RPC_MISMATCH = 0, RPC_AUTH_ERROR = 1 };
enum rpc_auth_stat {
    RPC_AUTH_OK = 0,
    RPC_AUTH_BADCRED = 1,
    RPC_AUTH_REJECTEDCRED = 2,
    RPC_AUTH_BADVERF = 3,
    RPC_AUTH_REJECTEDVERF = 4,
    RPC_AUTH_TOOWEAK_STAT = 5,
    RPC_AUTH_GSS_CREDPROBLEM = 13, /* RFC 2203 4: no such context, or a bad verifier */
    RPC_AUTH_GSS_CTXPROBLEM = 14,  /* RFC 2203 4: the context expired or is unusable */
};

/* What parsing a record found. */
enum rpc_parse_result {
    RPC_PARSE_CALL,         /* a well-formed call: hdr and cred are filled, args at args_off */
    RPC_PARSE_REPLY,        /* a reply (to one of our calls on this connection); xid is set */
    RPC_PARSE_DROP,         /* too short or not an RPC message: nothing sensible to answer */
    RPC_PARSE_RPC_MISMATCH, /* rpcvers != 2: answer MSG_DENIED / RPC_MISMATCH */
    RPC_PARSE_AUTH_ERROR,   /* bad credential or verifier: answer MSG_DENIED / AUTH_ERROR */
};

/* An RPCSEC_GSS credential (RFC 2203 5): rpc_gss_cred_vers_1_t. */
struct rpc_gss_cred {
    uint32_t version, proc, seq, service;
    const uint8_t *handle; /* into the record */
    uint32_t handle_len;
};

struct rpc_call_hdr {
    uint32_t xid, prog, vers, proc;
    enum rpc_auth_stat auth_stat; /* for RPC_PARSE_AUTH_ERROR */
    size_t args_off;              /* offset of the procedure arguments in the record */
    /* RPCSEC_GSS calls (cred flavor RPC_AUTH_GSS): the credential, the length of the
     * header its verifier checksums (xid through the credential) and the verifier */
    struct rpc_gss_cred gss;
    size_t cred_end;
    uint32_t verf_flavor;
    const uint8_t *verf;
    uint32_t verf_len;
};

enum rpc_parse_result rpc_parse_call(const uint8_t *rec, size_t len, struct rpc_call_hdr *hdr,
                                     struct rpc_cred *cred);

/* Decode an AUTH_SYS credential body (exactly `len` bytes). Returns false when malformed
 * or when it has more than RPC_AUTHSYS_MAXGIDS groups. */
bool rpc_parse_authsys(const uint8_t *body, size_t len, struct rpc_cred *cred);

/* Bytes an accepted-reply header takes (xid, REPLY, ACCEPTED, null verifier, stat). */
#define RPC_ACCEPTED_HDR_LEN 24

/* Write an accepted reply header with `stat` at x. */
bool rpc_enc_accepted(struct xdr_enc *x, uint32_t xid, uint32_t stat);
/* PROG_MISMATCH body: the supported version range. */
bool rpc_enc_prog_mismatch(struct xdr_enc *x, uint32_t xid, uint32_t low, uint32_t high);
bool rpc_enc_rpc_mismatch(struct xdr_enc *x, uint32_t xid);
bool rpc_enc_auth_error(struct xdr_enc *x, uint32_t xid, enum rpc_auth_stat why);

/* Client side: a call header with AUTH_NONE or AUTH_SYS (cred may be NULL). */
bool rpc_enc_call(struct xdr_enc *x, uint32_t xid, uint32_t prog, uint32_t vers, uint32_t proc,
                  const struct rpc_cred *cred);

/* Client side: parse a reply header. Returns 0 with *results_off set on an accepted
 * SUCCESS; otherwise a negative errno-like code and *accept_or_reject set. */
struct rpc_reply_info {
    uint32_t xid;
    uint32_t reply_stat;  /* RPC_MSG_ACCEPTED / RPC_MSG_DENIED */
    uint32_t accept_stat; /* when accepted */
    uint32_t reject_stat; /* when denied */
    uint32_t auth_stat;   /* when denied for AUTH_ERROR */
    uint32_t low, high;   /* mismatch ranges */
    size_t results_off;
};
bool rpc_parse_reply(const uint8_t *rec, size_t len, struct rpc_reply_info *info);

/* The short form for a caller that needs only "results or not" (the server's back
 * channel): 0 with *results_off at the results of an accepted SUCCESS; -EPROTO for a
 * denied, not-SUCCESS or malformed reply. *xid is set whenever the record holds one
 * (0 otherwise), so a malformed reply can still fail the call it answers. */
int rpc_reply_results(const uint8_t *rec, size_t len, uint32_t *xid, size_t *results_off);

#endif
