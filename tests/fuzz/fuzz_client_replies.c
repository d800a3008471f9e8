/* client/: the NFSv3 / MOUNT / portmap reply decoders (nfs3_reply.c) on hostile bytes.
 * The first byte picks the decoder, the rest is the procedure results as rpc/ would hand
 * them over. A decoder must return a status (0, positive NFS status or -errno), never
 * read outside the input or write outside what it was given. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/nfs3_reply.h"
#include "xdr/nfs3_xdr.h"

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
    unsigned sel = data[0] % 17;
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
