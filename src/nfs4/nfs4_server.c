/*
 * The NFSv4 server object: pseudo-filesystem, state, idmapping and the callback thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nfs4/nfs4_idmap.h"
#include "nfs4/nfs4_internal.h"
#include "rpc/backchannel.h"
#include "util/log.h"

static void nfs4_conn_hold(void *conn)
{
    rpc_conn_get(conn);
}

static void nfs4_conn_release(void *conn)
{
    rpc_conn_put(conn);
}

/* so_major_id: the host name plus the start time, so that two daemons on one host (a
 * restart, or an MDS and a DS) are different servers to trunking detection. */
static void nfs4_server_owner_init(struct nfs4_server *s)
{
    char host[64] = "peernfsd";
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    int n = snprintf((char *)s->server_owner, sizeof(s->server_owner), "%s", host);
    s->server_owner_len = n < 0 ? 0 : (size_t)n < sizeof(s->server_owner) ? (size_t)n : sizeof(s->server_owner) - 1;
}

int nfs4_server_create(struct nfs4_server **out, const struct export_table *exports, const struct fh_key *key,
                       const uint8_t write_verf[8], struct lock_space *locks, const struct nfs4_server_config *cfg)
{
    struct nfs4_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->exports = exports;
    s->fh_key = *key;
    memcpy(s->write_verf, write_verf, sizeof(s->write_verf));
    s->locks = locks;
    s->cfg = *cfg;
    s->max_minor = cfg->max_minor;
    if (s->max_minor > 2)
        s->max_minor = 2;
    nfs4_server_owner_init(s);
    int err = pseudo_fs_build(&s->pseudo, exports, key);
    if (err) {
        free(s);
        return err;
    }
    nfs4_idmap_configure(cfg->idmap_domain);
    struct state_params sp = {
        .state_dir = cfg->state_dir,
        .lease_time_s = cfg->lease_seconds,
        .grace_time_s = cfg->grace_seconds,
        .delegations = !cfg->no_delegations,
        .locks = locks,
        .work_ready = nfs4_cb_work_ready,
        .work_ctx = s,
        .conn_hold = nfs4_conn_hold,
        .conn_release = nfs4_conn_release,
    };
    s->state = state_server_create(&sp);
    if (!s->state) {
        pseudo_fs_free(&s->pseudo);
        free(s);
        return -ENOMEM;
    }
    s->deleg_watch = (struct fs_watch_cb){.held = nfs4_deleg_watch_held, .ctx = s};
    nfs4_lock_notify_init(s);
    err = nfs4_cb_start(s); /* initialises cb_lock and cb_cond */
    if (err) {
        nfs4_server_destroy(s);
        return err;
    }
    log_info("nfs4: minor versions 0..%u, lease %u s, %s", s->max_minor, state_lease_time(s->state),
             state_in_grace(s->state) ? "in grace period (clients reclaim)" : "no grace period");
    *out = s;
    return 0;
}

void nfs4_server_destroy(struct nfs4_server *s)
{
    if (!s)
        return;
    nfs4_cb_stop(s);
    /* the backends' open watchers must not ask this server any more */
    for (unsigned i = 0; s->exports && i < s->exports->nexports; i++) {
        const struct fs_ops *ops = s->exports->exports[i].ops;
        if (ops->watch_forget)
            ops->watch_forget(&s->deleg_watch);
    }
    if (s->state) /* else create failed before the notify list existed */
        nfs4_lock_notify_fini(s);
    state_server_destroy(s->state);
    pseudo_fs_free(&s->pseudo);
    free(s);
}

void nfs4_server_tick(struct nfs4_server *s)
{
    nfs4_cb_kick(s);
}
