/*
 * Wire filehandles (NFSv3 nfs_fh3, and NFSv4 later): export id + the backend's
 * persistent handle + a keyed MAC. The MAC (SipHash-2-4 with a 128-bit key kept in
 * the state directory) makes handles unforgeable: a client cannot construct a handle
 * of an object outside its export, which open_by_handle_at would otherwise open.
 *
 *   byte 0     format version (1)
 *   byte 1     backend handle length n
 *   bytes 2-3  export id (big endian)
 *   4..4+n     backend handle
 *   next 8     MAC over the bytes before it
 */
#ifndef PEERNFS_FS_FH_H
#define PEERNFS_FS_FH_H

#include <stdint.h>

#include "fs/export.h"
#include "fs/fs.h"

#define FH_WIRE_MAX 64

struct fh_key {
    uint8_t k[16];
};

/* Load the key from STATE_DIR/fh.key, creating it (random, mode 0600) on first start. */
int fh_key_load(struct fh_key *key, const char *state_dir);

/* Returns the wire length (<= FH_WIRE_MAX; 0 if bfh is empty or longer than FS_FH_MAX). */
uint32_t fh_wrap(const struct fh_key *key, uint16_t export_id, const struct fs_fh *bfh,
                 uint8_t out[FH_WIRE_MAX]);

/* -EBADMSG: malformed or forged (NFS3ERR_BADHANDLE); -ESTALE: unknown export. */
int fh_unwrap(const struct fh_key *key, const struct export_table *t, const uint8_t *wire,
              uint32_t len, struct export **ex, struct fs_fh *bfh);

#endif
