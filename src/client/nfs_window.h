/*
 * The pipelining window of a whole-range transfer: up to `nslots` chunks in flight,
 * issued in file order, released in file order (so a reader can hand data to a stream
 * such as stdout). Pure bookkeeping, no I/O, so it is unit-tested on its own.
 *
 * A chunk that completes short (a READ or WRITE of fewer bytes than asked, not at EOF)
 * stays in its slot and its remainder is issued again; a READ at EOF ends the range
 * there (later chunks then finish as empty and no new ones are issued).
 */
#ifndef PEERNFS_CLIENT_NFS_WINDOW_H
#define PEERNFS_CLIENT_NFS_WINDOW_H

#include <stdbool.h>
#include <stdint.h>

#define NFS_WINDOW_MAX 64

enum nfs_slot_state { SLOT_FREE, SLOT_READY, SLOT_INFLIGHT, SLOT_DONE };

struct nfs_slot {
    enum nfs_slot_state state;
    uint64_t off;  /* start of the chunk */
    uint32_t len;  /* chunk length */
    uint32_t done; /* bytes completed (from off) */
};

struct nfs_window {
    uint64_t next_off; /* start of the next chunk not yet assigned */
    uint64_t end;      /* end of the range (shrinks at EOF) */
    uint32_t chunk;
    unsigned nslots;
    unsigned head;     /* oldest slot in file order */
    unsigned used;     /* slots assigned (head .. head+used-1, ring) */
    unsigned inflight;
    struct nfs_slot slot[NFS_WINDOW_MAX];
};

void nfs_window_init(struct nfs_window *w, uint64_t off, uint64_t len, uint32_t chunk,
                     unsigned nslots);
/* The next request to send, or false when the window is full or nothing is left to ask
 * for. The request is [*off, *off + *len) into slot *slot, at byte *slot_pos of it. */
bool nfs_window_next(struct nfs_window *w, unsigned *slot, uint64_t *off, uint32_t *len,
                     uint32_t *slot_pos);
/* A request of slot `s` completed with `got` bytes; eof only for READ. Returns false
 * when got is more than asked (a broken server): the caller fails the transfer. */
bool nfs_window_complete(struct nfs_window *w, unsigned s, uint32_t asked, uint32_t got,
                         bool eof);
/* The oldest slot, when it is complete: release it after consuming its data. */
bool nfs_window_head_done(const struct nfs_window *w, unsigned *slot);
void nfs_window_release_head(struct nfs_window *w);
/* Every byte of the range has completed and been released. */
bool nfs_window_finished(const struct nfs_window *w);

#endif
