/*
 * NFSv4.0, 4.1 and 4.2 server (RFC 7530, RFC 8881, RFC 7862): the COMPOUND procedure of
 * program 100003 version 4.
 *
 * The daemon creates one nfs4_server over the same export table, filehandle key, write
 * verifier and lock space as NFSv3/NLM, and registers nfs4_program with it as context:
 *
 *     rpc_server_add_program(srv, &nfs4_program, nfs4);
 *
 * and calls nfs4_server_tick() about once a second (lease expiry, delegation recalls that
 * ran out of time, the end of the grace period).
 */
#ifndef PEERNFS_NFS4_H
#define PEERNFS_NFS4_H

#include <stdbool.h>
#include <stdint.h>

#include "fs/export.h"
#include "fs/fh.h"
#include "rpc/svc.h"

struct lock_space;
struct nfs4_server;

struct nfs4_server_config {
    const char *state_dir;     /* client records (SQLite) for reclaim after a restart */
    unsigned lease_seconds;    /* 0 = 90 */
    unsigned grace_seconds;    /* 0 = the lease time */
    const char *idmap_domain;  /* NULL: owners are numeric ids ("1000") */
    bool no_delegations;       /* never hand out delegations */
    unsigned max_minor;        /* highest minor version served: 0, 1 or 2 */
};

int nfs4_server_create(struct nfs4_server **out, const struct export_table *exports,
                       const struct fh_key *key, const uint8_t write_verf[8], struct lock_space *locks,
                       const struct nfs4_server_config *cfg);
void nfs4_server_destroy(struct nfs4_server *s);
void nfs4_server_tick(struct nfs4_server *s);

/*
 * Delegations against access from outside NFSv4 (NFSv3, NLM): the daemon hands these
 * to nfs3/ as its struct nfs_service deleg_active / deleg_break hooks.
 * nfs4_deleg_active: does any delegation exist (one relaxed atomic load, no lock)?
 * nfs4_deleg_break: recall the delegations of the file (ex, fh) that conflict with
 * reading it (write false: write delegations) or changing it (write: all); true
 * while a recall is pending (the caller tells its client to retry). Returns false at
 * once, without the state lock, while no delegation exists anywhere.
 */
bool nfs4_deleg_active(struct nfs4_server *s);
bool nfs4_deleg_break(struct nfs4_server *s, const struct export *ex, const struct fs_fh *fh, bool write);

extern const struct rpc_program_desc nfs4_program; /* 100003, version 4 */

#endif
