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

/* Call NLM v4 procedure `proc` on the lockd of the host at `peer` (port via its
 * rpcbind, TCP), with the XDR-encoded arguments args[0..len), in a thread of its own,
 * retrying with backoff. done (may be NULL) gets the decoded nlm4_res status, or -1
 * when the client never answered; it runs on that thread. Returns 0 or -errno. */
typedef void (*nlm_cb_done_fn)(struct nlm_service *s, void *arg, int status);
int nlm_callback(struct nlm_service *s, const struct sockaddr *peer, socklen_t peer_len, uint32_t proc,
                 const uint8_t *args, size_t len, unsigned attempts, nlm_cb_done_fn done, void *arg);
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
void nlm_share_release_host(struct nlm_service *s, const uint8_t *host_key, size_t host_key_len);

#endif
/* Does the host hold a share reservation? */
bool nlm_share_host_active(struct nlm_service *s, const uint8_t *host_key, size_t host_key_len);
