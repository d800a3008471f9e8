/*
 * NFSv3 (RFC 1813) and MOUNT v3/v1 (RFC 1813 appendix I) services.
 *
 * One struct nfs_service holds what both programs share: the export table, the
 * filehandle key and the write verifier. The daemon registers both programs with the
 * same service as context:
 *
 *     rpc_server_add_program(srv, &nfs3_program, svc);
 *     rpc_server_add_program(srv, &mount_program, svc);
 */
#ifndef PEERNFS_NFS3_H
#define PEERNFS_NFS3_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "fs/export.h"
#include "fs/fh.h"
#include "rpc/svc.h"

/* One MNT a client made and has not UMNTed (for MOUNT DUMP, i.e. `showmount -a`). */
struct mount_entry {
    char *host; /* the client's address as text */
    char *path; /* the path it mounted, as it sent it */
};

/* The mount list is advisory (RFC 1813 says DUMP may be inaccurate) and kept in memory
 * only; it is capped so that a client looping on MNT cannot grow it without bound. */
#define MOUNT_LIST_MAX 4096

struct mount_list {
    pthread_mutex_t lock;
    struct mount_entry *entries;
    unsigned n, cap;
};

struct nfs_service {
    struct export_table *exports;
    struct fh_key fh_key;
    /* WRITE/COMMIT verifier: new on every start so clients resend unstable data that a
     * crash may have lost (RFC 1813 section 3.3.7). */
    uint8_t write_verf[8];
    struct mount_list mounts;
    /* NFSv4 delegations, which NFSv3 and NLM access must recall (set by the daemon
     * when it serves NFSv4, else NULL; nfs3/ and nlm/ know nothing of NFSv4).
     * deleg_active: does any delegation exist at all (one atomic load)? Procedures
     * that would have to look an object up just for deleg_break ask it first.
     * deleg_break: recall the delegations of the file (ex, fh) that conflict with
     * reading (write false) or changing it; true while they are out, and the caller
     * answers "try again later" (NFS3ERR_JUKEBOX, NLM4_DENIED_GRACE_PERIOD). */
    bool (*deleg_active)(void *ctx);
    bool (*deleg_break)(void *ctx, const struct export *ex, const struct fs_fh *fh, bool write);
    void *deleg_ctx;
};

static inline bool nfs_deleg_active(const struct nfs_service *svc)
{
    return svc->deleg_active && svc->deleg_active(svc->deleg_ctx);
}

static inline bool nfs_deleg_break(const struct nfs_service *svc, const struct export *ex, const struct fs_fh *fh,
                                   bool write)
{
    /* deleg_active first: on every READ and WRITE, a call that saves no registers */
    return nfs_deleg_active(svc) && svc->deleg_break && svc->deleg_break(svc->deleg_ctx, ex, fh, write);
}

/* Returns 0 or -errno (the filehandle key could not be loaded or created). */
int nfs_service_init(struct nfs_service *svc, struct export_table *exports, const char *state_dir);
void nfs_service_fini(struct nfs_service *svc);

extern const struct rpc_program_desc nfs3_program;  /* 100003, version 3 */
extern const struct rpc_program_desc mount_program; /* 100005, versions 1 and 3 */

#endif
