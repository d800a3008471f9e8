/*
 * NLM v4 (X/Open XNFS; the lock protocol of NFSv3 clients) and its NSM side: the server
 * half of byte-range locking for NFSv3, on the one lock space (src/lock/). Versions 1
 * and 3 (NFSv2-era clients: 32-bit ranges) are served too, by the same logic.
 *
 *   struct nlm_service nlm;
 *   nlm_service_init(&nlm, &nfs_svc, &cfg);          after nfs_service_init
 *   rpc_server_add_program(srv, &nlm_program, &nlm);
 *   ... rpc_server_start, then nlm_service_start(&nlm) (statd: SM_SIMU_CRASH, SM_MON)
 *   rpc_server_stop(srv); rpc_server_destroy(srv);   no request runs any more
 *   nlm_service_fini(&nlm);                          after everything else that
 *                                                    uses the lock space (NFSv4)
 *
 * File handles are NFSv3 handles (same key, same exports). Lock owners are
 * "nlm" + caller_name + svid + oh; the host key is "nlm" + caller_name.
 *
 * Grace period: for `grace_secs` after nlm_service_init only reclaims (LOCK, NM_LOCK
 * and SHARE with reclaim=true) are granted; other LOCKs and every TEST get
 * NLM4_DENIED_GRACE_PERIOD. UNLOCK, CANCEL and FREE_ALL work at any time.
 *
 * Read-only exports: locks are granted (as knfsd does): a lock changes no data, and
 * readers of a read-only export need locks to coordinate among themselves.
 */
#ifndef PEERNFS_NLM_H
#define PEERNFS_NLM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "lock/lock.h"
#include "nfs3/nfs3.h"
#include "rpc/svc.h"
#include "xdr/nlm4_xdr.h"


/* NLM v4 procedure on which we receive statd's reboot callback (struct sm_status), the
 * number Linux's lockd uses (NLMPROC_NSM_NOTIFY); only accepted from loopback. */
#define NLM_PROC_SM_NOTIFY 16u

struct nlm_config {
    unsigned grace_secs;  /* grace period after start (0: none) */
    bool nsm;             /* monitor clients through the local rpc.statd */
    unsigned nsm_idle_secs; /* a client with no locks or shares left is unmonitored
                               (SM_UNMON) after this long (0: 300 s) */
    bool callbacks;       /* call clients back (GRANTED, *_RES); off only in tests */
    struct lock_space_params lock_params;
};

struct nlm_block;
struct nlm_nsm;
struct nlm_share_table;

struct nlm_service {
    struct nfs_service *nfs;
    struct lock_space *locks;
    struct nlm_config cfg;
    struct timespec grace_end; /* CLOCK_MONOTONIC */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    unsigned jobs;             /* callback threads running */
    struct nlm_block *blocks;  /* queued waiters (their granted callback pending) */
    struct nlm_nsm *nsm;
    struct nlm_share_table *shares;
};

int nlm_service_init(struct nlm_service *s, struct nfs_service *nfs, const struct nlm_config *cfg);
/* Background work that needs the RPC server running: tell statd we restarted. */
void nlm_service_start(struct nlm_service *s);
void nlm_service_fini(struct nlm_service *s);
bool nlm_in_grace(const struct nlm_service *s);

extern const struct rpc_program_desc nlm_program; /* 100021, versions 4, 1 and 3 */

#endif
