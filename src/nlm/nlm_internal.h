/*
 * Internal interface of src/nlm/: owner keys, status mapping, client callbacks, NSM,
 * share reservations. Not for use outside src/nlm/.
 */
#ifndef PEERNFS_NLM_INTERNAL_H
#define PEERNFS_NLM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "fs/export.h"
#include "lock/lock.h"
#include "nlm/nlm.h"
#include "xdr/nlm4_xdr.h"
#include "xdr/nlm_xdr.h"

/* Not on the wire: answer nothing, the client retransmits (see nlm_deleg_busy). */
#define NLM_DROP_REPLY ((nlm4_stats)0x7fffffff)

/* ---- nlm_proc.c: the procedures' logic, in v4 terms, for every version ---- */

/* call->prog_ctx is the service; call->vers says in which version to call back (the
 * GRANTED of a blocked LOCK, the *_RES of a *_MSG). Statuses may be NLM_DROP_REPLY. */
nlm4_stats nlm_do_test(struct rpc_call *call, const nlm4_testargs *a, nlm4_holder *h);
nlm4_stats nlm_do_lock(struct rpc_call *call, const nlm4_lockargs *a, bool monitored);
nlm4_stats nlm_do_cancel(struct rpc_call *call, const nlm4_cancargs *a);
nlm4_stats nlm_do_unlock(struct rpc_call *call, const nlm4_unlockargs *a);
nlm4_stats nlm_do_share(struct rpc_call *call, const nlm4_shareargs *a, bool share); /* else UNSHARE */
void nlm_do_free_all(struct rpc_call *call, const struct xdr_string *name);
/* *_MSG: send the encoded result x to the client's *_RES procedure (call->proc + 5). */
enum rpc_accept_status nlm_send_res(struct rpc_call *call, struct xdr_enc *x);

/* ---- nlm_proc1.c: versions 1 and 3 (32-bit offsets, LCK_* statuses) ---- */

#define NLM1_NPROCS 16u /* 0..15 */
#define NLM3_NPROCS 24u /* and 20..23 */
extern const struct rpc_proc_desc nlm1_procs[NLM1_NPROCS];
extern const struct rpc_proc_desc nlm3_procs[NLM3_NPROCS];

/* The v1/v3 status nearest a v4 one (DEADLCK -> DENIED, the other v4-only errors ->
 * DENIED_NOLOCKS, as Linux's lockd answers); NLM_DROP_REPLY is kept. */
nlm1_stats nlm1_status(nlm4_stats st);
void nlm1_lock_widen(const nlm1_lock *in, nlm4_lock *out);
/* A holder in 32 bits: an offset or a length past 2^32 is clamped to UINT32_MAX,
 * length 0 (to the end of the file) stays 0. */
void nlm1_holder_narrow(const nlm4_holder *in, nlm1_holder *out);
/* The GRANTED callback's arguments of a lock a v1/v3 client asked for, in its version
 * (the lock came in 32 bits, so nothing is lost). */
bool nlm1_encode_testargs(struct xdr_enc *x, const nlm4_testargs *a);

/* ---- nlm_owner.c: keys and statuses (pure) ---- */

#define NLM_KEY_MAX (3 + 2 + LM_MAXSTRLEN + 4 + MAXNETOBJ_SZ)

/* Owner key: "nlm" | u16 name length | name | u32 svid | oh; host key: "nlm" | name.
 * Return the length written (out has NLM_KEY_MAX bytes). */
size_t nlm_owner_key(uint8_t *out, const char *name, size_t name_len, int32_t svid, const uint8_t *oh,
                     size_t oh_len);
size_t nlm_host_key(uint8_t *out, const char *name, size_t name_len);
/* Parse an owner key back (TEST's holder); false if it is not an NLM key. oh points
 * into key. */
bool nlm_owner_key_parse(const uint8_t *key, size_t len, int32_t *svid, const uint8_t **oh, size_t *oh_len);

nlm4_stats nlm_status(enum lock_status st);

/* ---- nlm_callback.c: calls to the client's lockd ---- */

/* Call NLM version `vers` (1, 3 or 4: the one the client spoke) procedure `proc` on
 * the lockd of the host at `peer` (port via its rpcbind, TCP), with the XDR-encoded
 * arguments args[0..len), in a thread of its own, retrying with backoff. done (may be
 * NULL) gets the decoded nlm4_res / nlm1_res status, or -1 when the client never
 * answered; it runs on that thread. Returns 0 or -errno. */
typedef void (*nlm_cb_done_fn)(struct nlm_service *s, void *arg, int status);
int nlm_callback(struct nlm_service *s, const struct sockaddr *peer, socklen_t peer_len, uint32_t vers,
                 uint32_t proc, const uint8_t *args, size_t len, unsigned attempts, nlm_cb_done_fn done,
                 void *arg);
/* Portmap GETPORT (v2, TCP) at host:111. Returns the port, or -errno. */
int nlm_getport(const struct sockaddr *host, socklen_t len, uint32_t prog, uint32_t vers, uint32_t prot,
                int timeout_ms);

/* ---- nlm_nsm.c: rpc.statd ---- */

int nlm_nsm_init(struct nlm_service *s);
void nlm_nsm_fini(struct nlm_service *s);
/* Monitor this client (first lock of a host): queued, never blocks. */
void nlm_nsm_monitor(struct nlm_service *s, const struct sockaddr *peer, const char *caller, size_t caller_len);
void nlm_nsm_simu_crash(struct nlm_service *s);
/* statd reports that mon_name rebooted: drop the locks of the hosts monitored under it. */
void nlm_nsm_rebooted(struct nlm_service *s, const char *mon_name, size_t len);

/* ---- nlm_share.c: share reservations (in memory) ---- */

int nlm_share_init(struct nlm_service *s);
void nlm_share_fini(struct nlm_service *s);
nlm4_stats nlm_share(struct nlm_service *s, const void *file_key, size_t file_key_len, const uint8_t *owner_key,
                     size_t owner_key_len, const uint8_t *host_key, size_t host_key_len, fsh4_mode mode,
                     fsh4_access access);
nlm4_stats nlm_unshare(struct nlm_service *s, const void *file_key, size_t file_key_len, const uint8_t *owner_key,
                       size_t owner_key_len);
/* Does the host hold a share reservation? */
bool nlm_share_host_active(struct nlm_service *s, const uint8_t *host_key, size_t host_key_len);
void nlm_share_release_host(struct nlm_service *s, const uint8_t *host_key, size_t host_key_len);

#endif
