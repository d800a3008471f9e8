/*
 * Grace period and reclaim records (RFC 7530 9.6.3, RFC 8881 8.4.2).
 *
 * state_dir/nfs4-clients.db (SQLite, WAL, synchronous=FULL: a record must survive a
 * crash) holds one row per client owner id that has confirmed state, with the epoch of
 * the boot that last recorded it, and the current boot epoch in `meta`. At start the
 * rows (all from earlier boots) become the "may reclaim" set and a grace period starts.
 * Rows are written only when a client first gets confirmed state and when it is
 * destroyed (deferred until the state lock is dropped, serialised by db_mu), and rows of
 * clients that did not come back are purged when grace ends: never per op. If the
 * database cannot be used, the server logs it and runs without reclaim; a corrupt file
 * is moved aside so the next boot starts clean.
 */
#include "state/state_internal.h"

#include "util/log.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct recovery {
    sqlite3 *db;
    sqlite3_stmt *add, *del, *purge, *set_epoch;
};

static bool is_corrupt(int rc)
{
    rc &= 0xff;
    return rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB;
}

static void recovery_free(struct recovery *r)
{
    sqlite3_finalize(r->add);
    sqlite3_finalize(r->del);
    sqlite3_finalize(r->purge);
    sqlite3_finalize(r->set_epoch);
    sqlite3_close(r->db);
    free(r);
}

static struct recovery *try_open(const char *path, uint32_t *prev_epoch, bool *corrupt)
{
    *corrupt = false;
    struct recovery *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    int rc = sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
    sqlite3_stmt *q = NULL;
    const char *what = "open";
    if (rc != SQLITE_OK)
        goto fail;
    sqlite3_busy_timeout(r->db, 2000);
    what = "journal mode";
    if ((rc = sqlite3_exec(r->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL)) != SQLITE_OK)
        goto fail;
    what = "integrity check";
    if ((rc = sqlite3_prepare_v2(r->db, "PRAGMA quick_check", -1, &q, NULL)) != SQLITE_OK)
        goto fail;
    rc = sqlite3_step(q);
    if (rc != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(q, 0), "ok") != 0) {
        rc = rc == SQLITE_ROW ? SQLITE_CORRUPT : rc;
        goto fail;
    }
    sqlite3_finalize(q);
    q = NULL;
    what = "schema";
    rc = sqlite3_exec(r->db,
                      "PRAGMA synchronous=FULL;"
                      "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
                      "CREATE TABLE IF NOT EXISTS clients(owner BLOB PRIMARY KEY, epoch INTEGER NOT NULL,"
                      " added INTEGER NOT NULL);",
                      NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    what = "epoch";
    if ((rc = sqlite3_prepare_v2(r->db, "SELECT v FROM meta WHERE k='epoch'", -1, &q, NULL)) != SQLITE_OK)
        goto fail;
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        *prev_epoch = (uint32_t)sqlite3_column_int64(q, 0);
    else if (rc != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(q);
    q = NULL;
    what = "statements";
    if ((rc = sqlite3_prepare_v2(r->db,
                                 "INSERT INTO clients(owner, epoch, added) VALUES(?1, ?2, ?3)"
                                 " ON CONFLICT(owner) DO UPDATE SET epoch=excluded.epoch, added=excluded.added",
                                 -1, &r->add, NULL)) != SQLITE_OK ||
        (rc = sqlite3_prepare_v2(r->db, "DELETE FROM clients WHERE owner=?1", -1, &r->del, NULL)) != SQLITE_OK ||
        (rc = sqlite3_prepare_v2(r->db, "DELETE FROM clients WHERE epoch<?1", -1, &r->purge, NULL)) != SQLITE_OK ||
        (rc = sqlite3_prepare_v2(r->db, "INSERT OR REPLACE INTO meta(k, v) VALUES('epoch', ?1)", -1,
                                 &r->set_epoch, NULL)) != SQLITE_OK)
        goto fail;
    return r;
fail:
    *corrupt = is_corrupt(rc);
    log_err("state: reclaim database %s: %s failed: %s", path, what,
            r->db ? sqlite3_errmsg(r->db) : sqlite3_errstr(rc));
    sqlite3_finalize(q);
    recovery_free(r);
    return NULL;
}

struct recovery *recovery_open(const char *dir, uint32_t *prev_epoch)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/nfs4-clients.db", dir) >= (int)sizeof(path))
        return NULL;
    bool corrupt;
    struct recovery *r = try_open(path, prev_epoch, &corrupt);
    if (!r && corrupt) {
        char aside[4200];
        snprintf(aside, sizeof(aside), "%s.corrupt.%lld", path, (long long)time(NULL));
        log_err("state: reclaim database corrupt: moved to %s; clients of the previous boot cannot reclaim",
                aside);
        if (rename(path, aside) == 0) {
            char side[4200];
            snprintf(side, sizeof(side), "%s-wal", path);
            unlink(side);
            snprintf(side, sizeof(side), "%s-shm", path);
            unlink(side);
            *prev_epoch = 0;
            r = try_open(path, prev_epoch, &corrupt);
        }
    }
    if (!r)
        log_err("state: continuing without reclaim records (no grace period)");
    return r;
}

void recovery_close(struct recovery *r)
{
    if (r)
        recovery_free(r);
}

bool recovery_load(struct recovery *r, void (*fn)(void *ctx, const void *owner, size_t len), void *ctx)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(r->db, "SELECT owner FROM clients", -1, &q, NULL) != SQLITE_OK)
        return false;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const void *b = sqlite3_column_blob(q, 0);
        int n = sqlite3_column_bytes(q, 0);
        if (b && n > 0 && n <= STATE_OWNER_MAX)
            fn(ctx, b, (size_t)n);
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE)
        log_err("state: reading reclaim records: %s", sqlite3_errmsg(r->db));
    return rc == SQLITE_DONE;
}

static bool run(struct recovery *r, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_DONE) {
        log_err("state: reclaim database %s: %s", what, sqlite3_errmsg(r->db));
        return false;
    }
    return true;
}

bool recovery_set_epoch(struct recovery *r, uint32_t epoch)
{
    sqlite3_bind_int64(r->set_epoch, 1, epoch);
    return run(r, r->set_epoch, "set epoch");
}

bool recovery_add(struct recovery *r, const void *owner, size_t len, uint32_t epoch, int64_t wall)
{
    sqlite3_bind_blob(r->add, 1, owner, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(r->add, 2, epoch);
    sqlite3_bind_int64(r->add, 3, wall);
    return run(r, r->add, "add");
}

bool recovery_remove(struct recovery *r, const void *owner, size_t len)
{
    sqlite3_bind_blob(r->del, 1, owner, (int)len, SQLITE_STATIC);
    return run(r, r->del, "remove");
}

bool recovery_purge_before(struct recovery *r, uint32_t epoch)
{
    sqlite3_bind_int64(r->purge, 1, epoch);
    return run(r, r->purge, "purge");
}

/* ---- grace ---- */

static uint64_t reclaim_hash(struct state_server *ss, const void *owner, size_t len)
{
    return st_hash(owner, len, ss->seed ^ 0x7265636cull);
}

struct reclaim_entry *reclaim_find_locked(struct state_server *ss, const void *owner, size_t len)
{
    for (struct hnode *e = htab_bucket(&ss->reclaim, reclaim_hash(ss, owner, len)); e; e = e->next) {
        struct reclaim_entry *r = container_of(e, struct reclaim_entry, h);
        if (r->len == len && memcmp(r->owner, owner, len) == 0)
            return r;
    }
    return NULL;
}

static void reclaim_add(void *ctx, const void *owner, size_t len)
{
    struct state_server *ss = ctx;
    if (reclaim_find_locked(ss, owner, len))
        return;
    struct reclaim_entry *e = calloc(1, sizeof(*e) + len);
    if (!e)
        return;
    e->len = len;
    memcpy(e->owner, owner, len);
    if (!htab_insert(&ss->reclaim, &e->h, reclaim_hash(ss, owner, len))) {
        free(e);
        return;
    }
    ss->reclaim_total++;
    ss->reclaim_pending++;
}

/* At creation (no other thread yet): epoch, records, grace. */
void grace_start(struct state_server *ss)
{
    uint32_t prev = 0;
    if (ss->state_dir)
        ss->rec = recovery_open(ss->state_dir, &prev);
    uint32_t wall = (uint32_t)time(NULL);
    ss->epoch = prev + 1 > wall ? prev + 1 : wall;
    if (!ss->rec)
        return;
    if (!recovery_load(ss->rec, reclaim_add, ss))
        log_warn("state: some reclaim records could not be read");
    if (!recovery_set_epoch(ss->rec, ss->epoch))
        log_warn("state: could not store the boot epoch");
    if (ss->reclaim_total && ss->p.grace_time_s != UINT32_MAX) {
        ss->in_grace = true;
        ss->grace_end_ms = st_now(ss) + ss->grace_ms;
        log_notice("state: grace period of %u s for %u client(s)", ss->p.grace_time_s, ss->reclaim_total);
    }
}

void grace_end_locked(struct state_server *ss)
{
    if (!ss->in_grace)
        return;
    ss->in_grace = false;
    log_notice("state: grace period ended (%u of %u client(s) did not complete reclaim)",
               ss->reclaim_pending, ss->reclaim_total);
    /* rows of clients that did not come back: they cannot reclaim any more */
    st_defer(ss, DEF_REC_PURGE, 0, NULL, NULL, 0);
}

void grace_update_locked(struct state_server *ss, uint64_t now)
{
    if (ss->in_grace && now >= ss->grace_end_ms)
        grace_end_locked(ss);
}

enum state_status grace_check_locked(struct state_server *ss, struct state_client *c, bool reclaim)
{
    grace_update_locked(ss, st_now(ss));
    if (!reclaim)
        return ss->in_grace ? STATE_ERR_GRACE : STATE_OK;
    if (!ss->in_grace)
        return STATE_ERR_NO_GRACE;
    if (c->reclaim_complete)
        return STATE_ERR_RECLAIM_BAD;
    if (!reclaim_find_locked(ss, c->owner, c->owner_len))
        return STATE_ERR_NO_GRACE;
    return STATE_OK;
}

bool state_in_grace(struct state_server *ss)
{
    st_lock(ss);
    grace_update_locked(ss, st_now(ss));
    bool g = ss->in_grace;
    st_unlock(ss);
    return g;
}

enum state_status state_grace_check(struct state_server *ss, struct state_client *c, bool reclaim)
{
    st_lock(ss);
    enum state_status st = grace_check_locked(ss, c, reclaim);
    st_unlock(ss);
    return st;
}

enum state_status state_reclaim_complete(struct state_server *ss, struct state_client *c)
{
    st_lock(ss);
    enum state_status st = STATE_ERR_COMPLETE_ALREADY;
    if (!c->reclaim_complete) {
        c->reclaim_complete = true;
        client_record_locked(ss, c);
        struct reclaim_entry *e = reclaim_find_locked(ss, c->owner, c->owner_len);
        if (e && !e->completed) {
            e->completed = true;
            if (--ss->reclaim_pending == 0)
                grace_end_locked(ss); /* everyone who may reclaim has: no need to wait */
        }
        st = STATE_OK;
    }
    st_unlock(ss);
    return st;
}

void state_end_grace(struct state_server *ss)
{
    st_lock(ss);
    grace_end_locked(ss);
    st_unlock(ss);
}
