/*
 * The NFSv3 program: its dispatch table, and the service state it shares with MOUNT.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "nfs3/nfs3_proc.h"

/*
 * A verifier that differs on every start, so that clients notice a restart between
 * an UNSTABLE WRITE and its COMMIT and send the data again. Random bytes; if the
 * kernel has none to give, the start time in nanoseconds and the pid.
 */
static void nfs3_make_write_verf(uint8_t verf[8])
{
    if (getrandom(verf, 8, GRND_NONBLOCK) == 8)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t v = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^ ((uint64_t)getpid() << 40);
    for (int i = 0; i < 8; i++)
        verf[i] = (uint8_t)(v >> (8 * i));
}

int nfs_service_init(struct nfs_service *svc, struct export_table *exports, const char *state_dir)
{
    memset(svc, 0, sizeof(*svc));
    svc->exports = exports;
    int err = fh_key_load(&svc->fh_key, state_dir);
    if (err)
        return err;
    nfs3_make_write_verf(svc->write_verf);
    return mount_list_init(&svc->mounts);
}

void nfs_service_fini(struct nfs_service *svc)
{
    mount_list_fini(&svc->mounts);
    memset(svc, 0, sizeof(*svc));
}

/* The handlers, by procedure number; every one but NULL is reached through
 * nfs3_dispatch, which first applies the export's sec= list. */
static const rpc_proc_fn nfs3_handlers[] = {
    [NFSPROC3_GETATTR] = nfs3_proc_getattr,
    [NFSPROC3_SETATTR] = nfs3_proc_setattr,
    [NFSPROC3_LOOKUP] = nfs3_proc_lookup,
    [NFSPROC3_ACCESS] = nfs3_proc_access,
    [NFSPROC3_READLINK] = nfs3_proc_readlink,
    [NFSPROC3_READ] = nfs3_proc_read,
    [NFSPROC3_WRITE] = nfs3_proc_write,
    [NFSPROC3_CREATE] = nfs3_proc_create,
    [NFSPROC3_MKDIR] = nfs3_proc_mkdir,
    [NFSPROC3_SYMLINK] = nfs3_proc_symlink,
    [NFSPROC3_MKNOD] = nfs3_proc_mknod,
    [NFSPROC3_REMOVE] = nfs3_proc_remove,
    [NFSPROC3_RMDIR] = nfs3_proc_rmdir,
    [NFSPROC3_RENAME] = nfs3_proc_rename,
    [NFSPROC3_LINK] = nfs3_proc_link,
    [NFSPROC3_READDIR] = nfs3_proc_readdir,
    [NFSPROC3_READDIRPLUS] = nfs3_proc_readdirplus,
    [NFSPROC3_FSSTAT] = nfs3_proc_fsstat,
    [NFSPROC3_FSINFO] = nfs3_proc_fsinfo,
    [NFSPROC3_PATHCONF] = nfs3_proc_pathconf,
    [NFSPROC3_COMMIT] = nfs3_proc_commit,
};

/* A flavor the export does not take is refused before the procedure decodes anything,
 * in one place rather than in every handler (RFC 2623 2.3.2, nfs3_call.c). */
static enum rpc_accept_status nfs3_dispatch(struct rpc_call *call)
{
    if (call->proc >= sizeof(nfs3_handlers) / sizeof(nfs3_handlers[0]) || !nfs3_handlers[call->proc])
        return RPC_PROC_UNAVAIL;
    enum rpc_accept_status st = nfs3_sec_gate(call);
    return st == RPC_SUCCESS ? nfs3_handlers[call->proc](call) : st;
}

/* All but NULL need AUTH_SYS (or RPCSEC_GSS): an NFS server acts as a user. WRITE and
 * COMMIT may fsync, so they run on the blocking pool. The procedures that are not
 * idempotent keep their replies in the duplicate request cache (DRC), so that a
 * retransmitted CREATE does not answer EXIST nor a retransmitted REMOVE NOENT (COMMIT
 * may simply run again). */
#define NFS3_PROC(name, flags) {nfs3_dispatch, name, RPC_PROC_NEED_AUTH_SYS | (flags)}
#define DRC RPC_PROC_DRC

static const struct rpc_proc_desc nfs3_procs[] = {
    [NFSPROC3_NULL] = {nfs3_proc_null, "NULL", 0},
    [NFSPROC3_GETATTR] = NFS3_PROC("GETATTR", 0),
    [NFSPROC3_SETATTR] = NFS3_PROC("SETATTR", DRC),
    [NFSPROC3_LOOKUP] = NFS3_PROC("LOOKUP", 0),
    [NFSPROC3_ACCESS] = NFS3_PROC("ACCESS", 0),
    [NFSPROC3_READLINK] = NFS3_PROC("READLINK", 0),
    [NFSPROC3_READ] = NFS3_PROC("READ", 0),
    [NFSPROC3_WRITE] = NFS3_PROC("WRITE", RPC_PROC_BLOCKING | DRC),
    [NFSPROC3_CREATE] = NFS3_PROC("CREATE", DRC),
    [NFSPROC3_MKDIR] = NFS3_PROC("MKDIR", DRC),
    [NFSPROC3_SYMLINK] = NFS3_PROC("SYMLINK", DRC),
    [NFSPROC3_MKNOD] = NFS3_PROC("MKNOD", DRC),
    [NFSPROC3_REMOVE] = NFS3_PROC("REMOVE", DRC),
    [NFSPROC3_RMDIR] = NFS3_PROC("RMDIR", DRC),
    [NFSPROC3_RENAME] = NFS3_PROC("RENAME", DRC),
    [NFSPROC3_LINK] = NFS3_PROC("LINK", DRC),
    [NFSPROC3_READDIR] = NFS3_PROC("READDIR", 0),
    [NFSPROC3_READDIRPLUS] = NFS3_PROC("READDIRPLUS", 0),
    [NFSPROC3_FSSTAT] = NFS3_PROC("FSSTAT", 0),
    [NFSPROC3_FSINFO] = NFS3_PROC("FSINFO", 0),
    [NFSPROC3_PATHCONF] = NFS3_PROC("PATHCONF", 0),
    [NFSPROC3_COMMIT] = NFS3_PROC("COMMIT", RPC_PROC_BLOCKING),
};

static const struct rpc_version_desc nfs3_versions[] = {
    {NFS_V3, sizeof(nfs3_procs) / sizeof(nfs3_procs[0]), nfs3_procs},
};

const struct rpc_program_desc nfs3_program = {
    .prog = NFS_PROGRAM,
    .name = "nfs",
    .nvers = sizeof(nfs3_versions) / sizeof(nfs3_versions[0]),
    .versions = nfs3_versions,
};
