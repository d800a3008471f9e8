/*
 * libFuzzer target: NFSv3 and MOUNT procedures end to end below the RPC layer —
 * argument decoding, the handler and result encoding — against a scratch export.
 *
 * Input: byte 0 picks the program (bit 7: MOUNT) and procedure (low bits); when bit 6
 * is set, the export root's valid filehandle is put in front of the remaining bytes, so
 * the fuzzer gets past handle authentication and reaches the procedures' own argument
 * checks (names, attributes, offsets, counts).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <arpa/inet.h>

#include "fs/fh.h"
#include "nfs3/nfs3.h"

#define RES_SIZE ((1u << 20) + (64u << 10))

static struct export_table table;
static struct nfs_service svc;
static uint8_t root_fh[FH_WIRE_MAX];
static uint32_t root_fh_len;
static uint8_t *res_buf, *arena_mem, *args_buf;

static int setup(void)
{
    char dir[] = "/tmp/peernfs-fuzz-XXXXXX", exp[300], state[300], err[256];
    if (!mkdtemp(dir))
        return -1;
    snprintf(exp, sizeof(exp), "%s/export", dir);
    snprintf(state, sizeof(state), "%s/state", dir);
    mkdir(exp, 0755);
    mkdir(state, 0700);
    if (export_table_single(&table, exp, err, sizeof(err)) < 0 || nfs_service_init(&svc, &table, state) < 0)
        return -1;
    /* the fuzzer must not be throttled by squashing: everything runs as root */
    table.exports[0].rules[0].opts &= ~(unsigned)EXPORT_ROOT_SQUASH;
    table.exports[0].rules[0].opts |= EXPORT_INSECURE;
    root_fh_len = fh_wrap(&svc.fh_key, table.exports[0].id, &table.exports[0].root, root_fh);
    res_buf = malloc(RES_SIZE);
    arena_mem = malloc(64 * 1024);
    args_buf = malloc(4 + FH_WIRE_MAX + 70000);
    return res_buf && arena_mem && args_buf ? 0 : -1;
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
    const struct rpc_program_desc *prog = (data[0] & 0x80) ? &mount_program : &nfs3_program;
    const struct rpc_version_desc *vers = &prog->versions[prog->nvers - 1]; /* v3 */
    uint32_t proc = (data[0] & 0x3f) % vers->nprocs;
    if (!vers->procs[proc].fn)
        return 0;

    size_t len = 0;
    if (data[0] & 0x40) { /* a valid nfs_fh3 first */
        xdr_put_be32(args_buf, root_fh_len);
        memcpy(args_buf + 4, root_fh, root_fh_len);
        len = 4 + XDR_ROUNDUP(root_fh_len);
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
        .prog = prog->prog,
        .vers = vers->vers,
        .proc = proc,
        .cred = { .flavor = RPC_AUTH_SYS, .uid = 0, .gid = 0 },
        .prog_ctx = &svc,
    };
    xdr_arena_init(&arena, arena_mem, 64 * 1024);
    xdr_dec_init(&call.args, args_buf, len, &arena);
    xdr_enc_init(&call.res, res_buf, RES_SIZE);
    enum rpc_accept_status st = vers->procs[proc].fn(&call);
    if (st != RPC_SUCCESS && st != RPC_GARBAGE_ARGS && st != RPC_SYSTEM_ERR)
        abort(); /* handlers answer synchronously */
    return 0;
}
