/* client/: the NFSv3 / MOUNT / portmap reply decoders (nfs3_reply.c) and the NFSv4.x
 * ones (nfs4_reply.c: COMPOUND4res, fattr4 of every result, READDIR entries, handles;
 * 4.0 results: SETCLIENTID with its CLID_INUSE address, SETCLIENTID_CONFIRM, RENEW,
 * OPEN_CONFIRM, RELEASE_LOCKOWNER, and the owner seqid bookkeeping of nfs4_v40.c on
 * every result), plus the back channel dispatcher (nfs4_cb.c) on a decoded
 * CB_COMPOUND, on hostile bytes. The first byte picks the decoder, the rest is the procedure results (or
 * arguments) as rpc/ would hand them over. A decoder must return a status (0, positive
 * NFS status or -errno), never read outside the input or write outside what it was
 * given. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/nfs3_reply.h"
#include "client/nfs4_cb.h"
#include "client/nfs4_reply.h"
#include "client/nfs4_v40.h"
#include "xdr/nfs3_xdr.h"
#include "xdr/nfs4_xdr.h"

#define V4_WANT                                                                            \
    (NFS4_ATTRS_STAT | NFS4_ATTRS_FSSTAT | NFS4_ATTRS_FSINFO |                             \
     NFS4_ATTR_BIT(FATTR4_FILEHANDLE) | NFS4_ATTR_BIT(FATTR4_RDATTR_ERROR))

static nfsstat4 cb_ok(void *ctx, const nfs_cb_argop4 *arg, nfs_cb_resop4 *res)
{
    (void)ctx, (void)arg, (void)res;
    return NFS4_OK;
}

static int count_entries(void *arg, const struct nfs_dirent *e);

/* What the 4.0 client reads of its own results: the ids and verifiers, and the server's
 * CLID_INUSE address (copied as the client's error path would print it). */
static void touch_v40_result(const nfs_resop4 *o)
{
    char addr[2 * 1024 + 2];
    volatile uint64_t sink = 0;
    if (o->resop == OP_SETCLIENTID && o->opsetclientid.status == NFS4_OK) {
        sink += o->opsetclientid.resok4.clientid + o->opsetclientid.resok4.setclientid_confirm[7];
    } else if (o->resop == OP_SETCLIENTID && o->opsetclientid.status == NFS4ERR_CLID_INUSE) {
        const netaddr4 *na = &o->opsetclientid.client_using;
        if (na->na_r_netid.len + na->na_r_addr.len + 2 > sizeof(addr))
            abort(); /* bounded by the decoder */
        memcpy(addr, na->na_r_netid.val, na->na_r_netid.len);
        memcpy(addr + na->na_r_netid.len, na->na_r_addr.val, na->na_r_addr.len);
        sink += (uint8_t)addr[0];
    } else if (o->resop == OP_OPEN_CONFIRM && o->opopen_confirm.status == NFS4_OK) {
        sink += o->opopen_confirm.resok4.open_stateid.seqid;
    } else if (o->resop == OP_OPEN && o->opopen.status == NFS4_OK) {
        sink += o->opopen.resok4.rflags & OPEN4_RESULT_CONFIRM;
    }
    (void)sink;
}

/* The seqid bookkeeping over results as if the client had sent ops of the same kinds. */
static void fuzz_v40_seqids(const COMPOUND4res *res)
{
    static nfs_argop4 ops[64];
    uint32_t n = res->resarray.len < 64 ? res->resarray.len : 64;
    memset(ops, 0, n * sizeof(ops[0]));
    for (uint32_t i = 0; i < n; i++) {
        ops[i].argop = res->resarray.val[i].resop;
        ops[i].oplock.locker.new_lock_owner = i & 1; /* only read for OP_LOCK */
    }
    uint32_t next[NFS4_OWNERS] = { 0, UINT32_MAX };
    unsigned used = nfs4_seqid_update(ops, n, res, next);
    if (used > 2 * n)
        abort();
    nfs4_seqid_fill(ops, n, next);
}

/* A whole COMPOUND reply, then every result the client library would look into. */
static void fuzz_v4_compound(struct xdr_dec *x, unsigned *n)
{
    static uint8_t arena_mem[256 * 1024];
    struct xdr_arena arena;
    xdr_arena_init(&arena, arena_mem, sizeof(arena_mem));
    x->arena = &arena;
    COMPOUND4res res;
    if (nfs4_reply_compound(x, &res))
        return;
    for (uint32_t i = 0; i < res.resarray.len; i++) {
        const nfs_resop4 *o = &res.resarray.val[i];
        struct nfs4_fattr fa;
        struct nfs_fh fh;
        struct nfs4_dircursor cur = { 0 };
        if (o->resop == OP_GETATTR && o->opgetattr.status == NFS4_OK)
            nfs4_reply_fattr(&o->opgetattr.resok4.obj_attributes, V4_WANT, &fa);
        else if (o->resop == OP_GETFH && o->opgetfh.status == NFS4_OK &&
                 nfs4_fh_from_wire(&fh, &o->opgetfh.resok4.object) == 0 && fh.len > NFS_CLIENT_FH_MAX)
            abort();
        else if (o->resop == OP_READDIR && o->opreaddir.status == NFS4_OK)
            nfs4_reply_readdir(&o->opreaddir.resok4, V4_WANT, &cur, count_entries, n);
        touch_v40_result(o);
    }
    fuzz_v40_seqids(&res);
}

/* A CB_COMPOUND from the server through the dispatcher (one session, CB_RECALL served). */
static void fuzz_v4_callback(struct xdr_dec *x)
{
    static uint8_t arena_mem[64 * 1024];
    struct xdr_arena arena;
    xdr_arena_init(&arena, arena_mem, sizeof(arena_mem));
    x->arena = &arena;
    CB_COMPOUND4args a;
    if (!xdr_decode_CB_COMPOUND4args(x, &a))
        return;
    struct nfs4_cb_service s;
    nfs4_cb_init(&s);
    static const sessionid4 sid = { 1, 2, 3 };
    nfs4_cb_set_session(&s, sid, 4, 1);
    nfs4_cb_register(&s, OP_CB_RECALL, cb_ok, NULL);
    nfs_cb_resop4 *resv = calloc(a.argarray.len ? a.argarray.len : 1, sizeof(*resv));
    CB_COMPOUND4res r;
    memset(&r, 0, sizeof(r));
    r.resarray.val = resv;
    nfs4_cb_dispatch(&s, &a, &r);
    if (r.resarray.len > a.argarray.len)
        abort();
    uint8_t out[64 * 1024];
    struct xdr_enc e;
    xdr_enc_init(&e, out, sizeof(out));
    xdr_encode_CB_COMPOUND4res(&e, &r);
    free(resv);
    nfs4_cb_destroy(&s);
}

static int count_entries(void *arg, const struct nfs_dirent *e)
{
    (*(unsigned *)arg)++;
    /* touch what the decoder handed out */
    volatile size_t n = strlen(e->name);
    (void)n;
    if (e->fh && e->fh->len > NFS_CLIENT_FH_MAX)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned sel = data[0] % 19;
    /* a private copy with exactly `size - 1` bytes, so ASan sees any overread */
    size_t len = size - 1;
    uint8_t *buf = malloc(len ? len : 1);
    memcpy(buf, data + 1, len);
    struct xdr_dec x;
    xdr_dec_init(&x, buf, len, NULL);
    struct nfs_fh fh;
    struct nfs_attr attr;
    struct nfs_io_result r;
    struct nfs_fsstat fs;
    uint8_t rbuf[4096];
    char link[256];
    uint16_t port;
    uint32_t a, b, c;
    bool have;
    unsigned n = 0;
    struct nfs3_dircursor cur = { 0 };
    int st = 0;
    switch (sel) {
    case 0: st = nfs3_reply_getport(&x, &port); break;
    case 1: st = nfs3_reply_getaddr(&x, &port); break;
    case 2: st = nfs3_reply_mnt(&x, &fh); break;
    case 3: st = nfs3_reply_fsinfo(&x, &a, &b, &c); break;
    case 4: st = nfs3_reply_getattr(&x, &attr); break;
    case 5: st = nfs3_reply_setattr(&x); break;
    case 6: st = nfs3_reply_lookup(&x, &fh, &attr); break;
    case 7: st = nfs3_reply_read(&x, rbuf, sizeof(rbuf), &r); break;
    case 8: st = nfs3_reply_write(&x, 4096, &r); break;
    case 9: st = nfs3_reply_commit(&x, &r); break;
    case 10: st = nfs3_reply_create(&x, NFSPROC3_CREATE, &fh, &have, &attr); break;
    case 11: st = nfs3_reply_create(&x, NFSPROC3_MKDIR, &fh, &have, NULL); break;
    case 12: st = nfs3_reply_create(&x, NFSPROC3_SYMLINK, &fh, &have, &attr); break;
    case 13: st = nfs3_reply_status(&x, NFSPROC3_REMOVE + (data[0] / 17) % 4); break;
    case 14: st = nfs3_reply_readlink(&x, link, sizeof(link)); break;
    case 15: st = nfs3_reply_fsstat(&x, &fs); break;
    case 16: st = nfs3_reply_readdir(&x, data[0] & 0x80, &cur, count_entries, &n); break;
    case 17: fuzz_v4_compound(&x, &n); break;
    case 18: fuzz_v4_callback(&x); break;
    }
    if (st == 0 && sel == 7 && r.count > sizeof(rbuf))
        abort();
    if (st == 0 && (sel == 2 || sel == 6) && (fh.len == 0 || fh.len > 64))
        abort();
    if (st == 0 && sel == 14 && strlen(link) >= sizeof(link))
        abort();
    free(buf);
    return 0;
}
