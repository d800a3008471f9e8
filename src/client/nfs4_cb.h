/*
 * The client's side of the NFSv4.1 back channel (RFC 8881 section 20): CB_COMPOUND
 * arriving on the session's own connection. CB_SEQUENCE must come first and is checked
 * against the back channel's slots (the server's sequence ids per slot); every other
 * op goes to the handler registered for it, and an op nobody registered is answered
 * NFS4ERR_NOTSUPP (an op number outside the callback set: OP_CB_ILLEGAL). Processing
 * stops at the first failing op, as in any COMPOUND.
 *
 * The dispatcher is pure (decoded args in, results out) so tests/unit/test_nfs4_cb.c
 * drives it without a server; nfs4_client.c wires it to rpc/'s callback service.
 */
#ifndef PEERNFS_CLIENT_NFS4_CB_H
#define PEERNFS_CLIENT_NFS4_CB_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "xdr/nfs4_xdr.h"

#define NFS4_CB_SLOTS_MAX 16
#define NFS4_CB_OP_MAX 16 /* callback op numbers are 3..15 (RFC 8881, RFC 7862) */

/* A handler fills the op's result arm (res->resop is set, status defaults to NFS4_OK)
 * and returns the op's status. Runs on an rpc/ callback worker thread: it may block
 * briefly, but must not wait for anything the server holds back until it is answered
 * (a recall's DELEGRETURN is queued to another thread for that reason). */
typedef nfsstat4 (*nfs4_cb_op_fn)(void *ctx, const nfs_cb_argop4 *arg, nfs_cb_resop4 *res);

struct nfs4_cb_service {
    pthread_mutex_t mu;
    bool have_session;
    sessionid4 sessionid;
    uint32_t nslots;                     /* back channel slots granted */
    uint32_t seqid[NFS4_CB_SLOTS_MAX];   /* last sequence id seen per slot */
    uint32_t minorversion;
    struct { nfs4_cb_op_fn fn; void *ctx; } handler[NFS4_CB_OP_MAX];
    uint64_t compounds, ops_notsupp;     /* counters */
};

void nfs4_cb_init(struct nfs4_cb_service *s);
void nfs4_cb_destroy(struct nfs4_cb_service *s);
/* The session is known once CREATE_SESSION answered (callbacks before it: BADSESSION). */
void nfs4_cb_set_session(struct nfs4_cb_service *s, const sessionid4 id, uint32_t nslots,
                         uint32_t minorversion);
/* op in 3..15 (not CB_SEQUENCE); fn NULL unregisters. 0 or -EINVAL. */
int nfs4_cb_register(struct nfs4_cb_service *s, uint32_t op, nfs4_cb_op_fn fn, void *ctx);
/* Serve one CB_COMPOUND: res->resarray.val must have room for args->argarray.len results
 * (at least 1). res->tag echoes args->tag. */
void nfs4_cb_dispatch(struct nfs4_cb_service *s, const CB_COMPOUND4args *args,
                      CB_COMPOUND4res *res);

#endif
