/*
 * Duplicate request cache (DRC): the replies of non-idempotent calls, kept so that a
 * retransmission (same client address and port, same xid and arguments) gets the reply
 * the original got instead of a second execution. A retransmitted CREATE must not answer
 * EXIST, a retransmitted REMOVE must not answer NOENT.
 *
 * Internal to rpc/ (server.c uses it; tests/unit/test_drc.c tests it alone). Protocols
 * choose what is cached through the procedure flags and rpc_call_cache_reply (svc.h).
 *
 * An entry is IN PROGRESS from drc_begin until drc_finish, then DONE holding a copy of the
 * reply (RPC message without the TCP record mark, so TCP and UDP share it). A second
 * drc_begin for an IN PROGRESS key answers DRC_IN_PROGRESS: the caller drops that
 * retransmission, the original's reply is on its way.
 *
 * Bounded: at most max_entries entries and max_bytes bytes (replies plus per-entry
 * overhead), the least recently used DONE entry evicted first; DONE entries older than
 * ttl_ms are dropped; replies over max_reply are not kept. IN PROGRESS entries are never
 * evicted (there are at most as many as calls in progress); when every entry is IN
 * PROGRESS and the table is full, a new call is simply not tracked.
 *
 * Thread-safe: the table is split in shards by key hash, one mutex each, held only for
 * the table work and the copy of one reply.
 */
#ifndef PEERNFS_RPC_DRC_H
#define PEERNFS_RPC_DRC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Argument bytes covered by the key's checksum: enough to tell apart two different calls
 * that reuse an xid (a client restart), cheap for a 1 MiB WRITE. */
#define DRC_SUM_BYTES 256

/* What identifies a call. Built by drc_key_init only (padding-free, compared bytewise). */
struct drc_key {
    uint32_t xid, prog, vers, proc;
    uint32_t args_len; /* bytes of the call's arguments */
    uint32_t args_sum; /* checksum of the first DRC_SUM_BYTES of them */
    uint16_t family;   /* AF_INET / AF_INET6; 0 for anything else */
    uint16_t port;     /* the client's source port: a reconnect keeps it (Linux) */
    uint8_t addr[16];  /* IPv4 in the first 4 bytes */
};

void drc_key_init(struct drc_key *k, const struct sockaddr *peer, socklen_t peer_len, uint32_t xid,
                  uint32_t prog, uint32_t vers, uint32_t proc, const uint8_t *args, size_t args_len);

struct drc_config {
    size_t max_bytes;     /* default 16 MiB */
    unsigned max_entries; /* default 8192 */
    size_t max_reply;     /* largest reply kept; default 64 KiB */
    unsigned ttl_ms;      /* default 120 s */
    unsigned nshards;     /* default 16; the caps are split evenly between shards */
};

struct drc_stats {
    uint64_t hits;              /* retransmissions answered from the cache */
    uint64_t in_progress_drops; /* retransmissions of a call still running, dropped */
    uint64_t inserts;           /* replies stored */
    uint64_t evictions;         /* DONE entries dropped for room or age */
    uint64_t entries, bytes;    /* now */
};

enum drc_verdict {
    DRC_MISS,        /* not a retransmission: execute; *ticket != 0 when now tracked */
    DRC_HIT,         /* the cached reply was copied out: send it, do not execute */
    DRC_IN_PROGRESS, /* the original is still running: send nothing */
};

struct drc;

struct drc *drc_new(const struct drc_config *cfg); /* NULL cfg: defaults */
void drc_free(struct drc *d);                      /* frees every entry, IN PROGRESS too */

/*
 * Look the call up at time now_ms (a monotonic clock). DRC_HIT: the reply (*out_len
 * bytes) is in out, which must hold max_reply bytes (out_cap). DRC_MISS: an IN PROGRESS
 * entry was inserted and *ticket names it (0: none, the table being full of calls in
 * progress or out of memory; the call runs untracked).
 */
enum drc_verdict drc_begin(struct drc *d, const struct drc_key *k, int64_t now_ms, uint8_t *out,
                           size_t out_cap, size_t *out_len, uint64_t *ticket);
/* The call named by ticket replied `reply`: keep a copy (DONE). A reply NULL or larger
 * than max_reply removes the entry instead (the next retransmission executes again). A
 * ticket of 0 or no longer in the table is ignored. */
void drc_finish(struct drc *d, const struct drc_key *k, uint64_t ticket, const void *reply, size_t len,
                int64_t now_ms);
/* The call ended without a reply to keep: forget its entry. */
void drc_abort(struct drc *d, const struct drc_key *k, uint64_t ticket);

void drc_get_stats(struct drc *d, struct drc_stats *st);

#endif
