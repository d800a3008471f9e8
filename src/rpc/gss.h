/*
 * RPCSEC_GSS on the server (RFC 2203): context creation and destruction through the
 * NULL procedure, and for every DATA call the header checksum, the sequence window,
 * the integrity or privacy wrapping of arguments and results, and the reply verifier.
 * Mechanism-neutral GSS-API (MIT's libgssapi_krb5); in practice Kerberos 5 with the
 * keys of the default keytab (KRB5_KTNAME, or rpc_gss_set_keytab()).
 *
 * A principal becomes a local user through the Kerberos auth_to_local rules
 * (gss_localname) and the passwd database; one that maps to nobody has no ids (the
 * export's anonymous user). Nothing outside rpc/ includes this.
 */
#ifndef PEERNFS_RPC_GSS_H
#define PEERNFS_RPC_GSS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc/msg.h"
#include "rpc/svc.h"
#include "xdr/xdr.h"

#define RPC_GSS_VERSION 1
#define RPC_GSS_MAXSEQ 0x80000000u /* RFC 2203 5.3.3.1: higher is a context problem */
#define RPC_GSS_WINDOW 128u        /* sequence numbers accepted out of order */
#define RPC_GSS_MAX_CONTEXTS 4096u
/* Room a GSS reply needs beyond the plain one: a verifier, the integrity checksum or
 * the privacy token's overhead (Kerberos MICs and wrap overheads are under 100 bytes). */
#define RPC_GSS_REPLY_SLACK 512u

enum rpc_gss_proc {
    RPC_GSS_PROC_DATA = 0,
    RPC_GSS_PROC_INIT = 1,
    RPC_GSS_PROC_CONTINUE_INIT = 2,
    RPC_GSS_PROC_DESTROY = 3,
};

struct rpc_gss;
struct rpc_gss_ctx;

/* A context's sequence window (RFC 2203 5.3.3.1): the highest number seen and which of
 * the RPC_GSS_WINDOW numbers up to it were (bit i of seen: max - i). Calls overtake
 * each other, so any number in the window not seen yet is accepted, once. */
struct rpc_gss_window {
    uint32_t max;
    uint64_t seen[RPC_GSS_WINDOW / 64];
};
/* Not seen and not below the window? */
bool rpc_gss_window_fresh(const struct rpc_gss_window *w, uint32_t seq);
/* The same, and remember it (the window slides up to a higher number). */
bool rpc_gss_window_take(struct rpc_gss_window *w, uint32_t seq);

/* What a DATA call carries from its arrival to its reply. */
struct rpc_gss_call {
    struct rpc_gss_ctx *ctx; /* referenced; NULL: not an RPCSEC_GSS call */
    uint32_t seq, service;
    const uint8_t *args; /* the plain procedure arguments */
    size_t args_len;
    void *unwrapped; /* privacy: the buffer args points into (freed by release) */
};

/* What the server does with a call that came with an RPCSEC_GSS credential. */
enum rpc_gss_verdict {
    RPC_GSS_PROCEED, /* a DATA call: run the procedure on gc->args */
    RPC_GSS_REPLIED, /* a control call (INIT, CONTINUE_INIT, DESTROY): its reply is in out */
    RPC_GSS_DROP,    /* send nothing (a replayed or too old sequence number) */
    RPC_GSS_DENIED,  /* MSG_DENIED, AUTH_ERROR with *why */
    RPC_GSS_GARBAGE, /* MSG_ACCEPTED, GARBAGE_ARGS (a bad checksum or token on the body) */
};

struct rpc_gss *rpc_gss_new(void);
void rpc_gss_free(struct rpc_gss *g);

/* Use this keytab for accepting contexts instead of the default one. */
int rpc_gss_set_keytab(const char *path);

/*
 * Handle a call parsed by rpc_parse_call with cred->flavor RPC_AUTH_GSS (rec, len: the
 * whole record). PROCEED fills gc and completes cred (ids, principal); REPLIED has
 * written a whole reply message (without record mark) at out. The caller answers the
 * others as the verdict says; GARBAGE needs the reply verifier, so gc is filled then too
 * and rpc_gss_enc_reply writes it.
 */
enum rpc_gss_verdict rpc_gss_accept(struct rpc_gss *g, const uint8_t *rec, size_t len,
                                    const struct rpc_call_hdr *hdr, struct rpc_cred *cred,
                                    struct rpc_gss_call *gc, struct xdr_enc *out,
                                    enum rpc_auth_stat *why);

/*
 * The accepted reply to a DATA call: header with the RPCSEC_GSS verifier (the MIC of
 * the sequence number) and, for SUCCESS, the results protected as the call's service
 * asks. The plain results are the res_len bytes at buf + res_off; the reply message is
 * written at buf + out_off (below res_off by at least RPC_GSS_REPLY_SLACK) within
 * buf_cap. Returns the message length, or 0 when it cannot be made (GSS failure, no
 * room): RFC 2203 5.3.3.4 says to send nothing then.
 */
size_t rpc_gss_enc_reply(struct rpc_gss_call *gc, uint32_t xid, uint32_t accept_stat, uint8_t *buf,
                         size_t buf_cap, size_t out_off, size_t res_off, size_t res_len);

void rpc_gss_call_release(struct rpc_gss_call *gc);

/* What a deferred reply needs of a call (its context, referenced, and numbers; not its
 * arguments). */
void rpc_gss_call_keep(struct rpc_gss_call *dst, const struct rpc_gss_call *src);

#endif
