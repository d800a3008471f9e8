/*
 * libFuzzer target: NLM v4 procedures (and the statd callback, NLM procedure 16, whose
 * arguments are NSM's struct sm_status), and those of versions 1 and 3 (32-bit ranges,
 * translated to the v4 logic), end to end below the RPC layer: argument decoding, the
 * handler on a real lock space over a scratch export, result encoding. Callbacks to
 * clients and statd are off (no network). Byte 0 picks the procedure: its low 7 bits
 * modulo 64 are a v4 procedure (0-23), a v1 one (24-39) or a v3 one (40-63); with
 * bit 7 set, the export root's valid file handle is spliced in as the fh of an
 * nlm4_lock / nlm1_lock after a fixed prefix (cookie, block, exclusive, caller name)
 * so that the lock paths are reached. Versions share one lock space, so a v1 lock
 * meets v4 ones across inputs.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/fh.h"
#include "nlm/nlm.h"

static struct export_table table;
static struct nfs_service svc;
static struct nlm_service nlm;
static uint8_t root_fh[FH_WIRE_MAX];
static uint32_t root_fh_len;
static uint8_t res_buf[64 * 1024], arena_mem[64 * 1024], args_buf[4 * 1024 + 70000];

static int setup(void)
{
    char dir[] = "/tmp/peernfs-fuzz-nlm-XXXXXX", exp[300], state[300], err[256];
    if (!mkdtemp(dir))
        return -1;
    snprintf(exp, sizeof(exp), "%s/export", dir);
    snprintf(state, sizeof(state), "%s/state", dir);
    mkdir(exp, 0755);
    mkdir(state, 0700);
    if (export_table_single(&table, exp, err, sizeof(err)) < 0 || nfs_service_init(&svc, &table, state) < 0)
        return -1;
    struct nlm_config cfg = { .grace_secs = 0, .nsm = false, .callbacks = false };
    if (nlm_service_init(&nlm, &svc, &cfg) < 0)
        return -1;
    root_fh_len = fh_wrap(&svc.fh_key, table.exports[0].id, &table.exports[0].root, root_fh);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        if (setup() < 0)
            abort();
        ready = 1;
    }
    if (size < 1 || size > 65536)
        return 0;
    /* versions[]: 4, 1, 3 (nlm_proc.c) */
    uint32_t pick = (data[0] & 0x7fu) % 64u, v = 0;
    while (v + 1 < nlm_program.nvers && pick >= nlm_program.versions[v].nprocs)
        pick -= nlm_program.versions[v++].nprocs;
    const struct rpc_version_desc *vers = &nlm_program.versions[v];
    uint32_t proc = pick % vers->nprocs;
    if (!vers->procs[proc].fn)
        return 0;
    size_t len = 0;
    if (data[0] & 0x80) { /* cookie <0>, block, exclusive, caller_name "c", fh */
        static const uint8_t prefix[] = { 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 'c', 0, 0, 0 };
        memcpy(args_buf, prefix, sizeof(prefix));
        len = sizeof(prefix);
        xdr_put_be32(args_buf + len, root_fh_len);
        memcpy(args_buf + len + 4, root_fh, root_fh_len);
        len += 4 + XDR_ROUNDUP(root_fh_len);
    }
    memcpy(args_buf + len, data + 1, size - 1);
    len += size - 1;

    struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(700) };
    peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct xdr_arena arena;
    struct rpc_call call = {
        .peer = (const struct sockaddr *)&peer,
        .peer_len = sizeof(peer),
        .xid = 1,
        .prog = nlm_program.prog,
        .vers = vers->vers,
        .proc = proc,
        .cred = { .flavor = RPC_AUTH_SYS },
        .prog_ctx = &nlm,
    };
    xdr_arena_init(&arena, arena_mem, sizeof(arena_mem));
    xdr_dec_init(&call.args, args_buf, len, &arena);
    xdr_enc_init(&call.res, res_buf, sizeof(res_buf));
    enum rpc_accept_status st = vers->procs[proc].fn(&call);
    if (st != RPC_SUCCESS && st != RPC_GARBAGE_ARGS && st != RPC_SYSTEM_ERR)
        abort();
    return 0;
}
