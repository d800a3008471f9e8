/*
 * The NFSv4.x client's state manager: one thread per client that renews the lease,
 * returns recalled delegations, sends again the asynchronous requests queued for a
 * retry, and repairs what a dropped connection or a server restart broke (RFC 8881
 * 2.10.13, 8.4.2, 18.51), one recovery at a time while requests wait for it:
 *
 *  - connection lost: connect again to the same address, BIND_CONN_TO_SESSION (fore and
 *    back channel); the session survived, so requests go out again on their slots;
 *  - BADSESSION / DEADSESSION (or BIND_CONN_TO_SESSION saying so): CREATE_SESSION with
 *    our client id;
 *  - STALE_CLIENTID there (the server restarted): EXCHANGE_ID with the same owner and
 *    verifier, so the server finds our record and lets us reclaim, CREATE_SESSION, then
 *    for every open file OPEN with CLAIM_PREVIOUS (the current fh, no delegation) and
 *    LOCK with reclaim = true for every range its lock owner holds, and
 *    RECLAIM_COMPLETE. A reclaim the server refuses (NO_GRACE: it forgot us, or the
 *    grace period is over) marks the file's state lost: its later I/O fails with -EIO
 *    rather than going on without the locks it had.
 *
 * NFSv4.0 (RFC 7530 9.6.2) takes the same steps without a session: a lost connection
 * is only connected again (requests go out again with the same seqids, which the
 * server's reply caches recognise); STALE_CLIENTID (or a stale stateid, or RENEW
 * answering EXPIRED) means SETCLIENTID + SETCLIENTID_CONFIRM with the same id and
 * verifier, then the same reclaims (an OPEN_CONFIRM after an OPEN that asks for one)
 * and no RECLAIM_COMPLETE: the server's grace period ends on its own.
 *
 * A step that fails is tried again a second later (a restarting server refuses
 * connections for a while), for up to V4_RECOVERY_MS; then the waiting requests fail
 * with the last error, and the next request that meets the breakage starts a new
 * attempt. Recovery logs at info level.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/nfs4_state.h"
#include "util/log.h"

static struct xdr_opaque opq(const void *p, size_t n) { return (struct xdr_opaque){ (uint32_t)n, p }; }

static struct timespec abs_ms(int64_t at_ms)
{
    struct timespec t = { at_ms / 1000, (long)(at_ms % 1000) * 1000000L };
    return t;
}

/* ---- connections and sessions ---- */

struct v4_conn *nfs4c_conn_new(struct rpc_clnt *rpc)
{
    struct v4_conn *k = calloc(1, sizeof(*k));
    if (k) {
        k->rpc = rpc;
        k->refs = 1; /* the state's */
    }
    return k;
}

struct v4_conn *nfs4c_conn_get_locked(struct nfs4_state *v4)
{
    struct v4_conn *k = v4->conn;
    if (k)
        k->refs++;
    return k;
}

/* The last reference of a replaced connection: the state manager destroys it. */
void nfs4c_conn_put_locked(struct nfs4_state *v4, struct v4_conn *k)
{
    if (!k || --k->refs)
        return;
    k->next = v4->dead_conns;
    v4->dead_conns = k;
    pthread_cond_signal(&v4->cv);
}

void nfs4c_conn_put(struct nfs4_state *v4, struct v4_conn *k)
{
    pthread_mutex_lock(&v4->mu);
    nfs4c_conn_put_locked(v4, k);
    pthread_mutex_unlock(&v4->mu);
}

void nfs4c_destroy_dead_conns(struct nfs4_state *v4)
{
    pthread_mutex_lock(&v4->mu);
    struct v4_conn *k = v4->dead_conns;
    v4->dead_conns = NULL;
    pthread_mutex_unlock(&v4->mu);
    while (k) {
        struct v4_conn *next = k->next;
        rpc_clnt_destroy(k->rpc);
        free(k);
        k = next;
    }
}

struct v4_session *nfs4c_sess_get_locked(struct nfs4_state *v4)
{
    struct v4_session *s = v4->sess;
    if (s)
        s->refs++;
    return s;
}

void nfs4c_sess_put(struct nfs4_state *v4, struct v4_session *s)
{
    pthread_mutex_lock(&v4->mu);
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&v4->mu);
    if (last) {
        nfs4_slots_destroy(&s->slots);
        free(s);
    }
}

/* Make s the current session; requests waiting for a slot of the old one wake up
 * (-ECANCELED) and take one of s. */
static void sess_install(struct nfs4_state *v4, struct v4_session *s)
{
    pthread_mutex_lock(&v4->mu);
    struct v4_session *old = v4->sess;
    s->gen = ++v4->sess_gen;
    v4->sess = s;
    v4->sess_broken = false;
    pthread_mutex_unlock(&v4->mu);
    if (old) {
        nfs4_slots_close(&old->slots);
        nfs4c_sess_put(v4, old);
    }
}

/* ---- EXCHANGE_ID, CREATE_SESSION, BIND_CONN_TO_SESSION ---- */

int nfs4c_exchange_id(struct nfs_client *c, uint32_t *flags)
{
    struct nfs4_state *v4 = c->v4;
    nfs_argop4 op;
    memset(&op, 0, sizeof(op));
    op.argop = OP_EXCHANGE_ID;
    EXCHANGE_ID4args *e = &op.opexchange_id;
    memcpy(e->eia_clientowner.co_verifier, v4->verifier, sizeof(verifier4));
    e->eia_clientowner.co_ownerid = opq(v4->ownerid, strlen(v4->ownerid));
    e->eia_flags = EXCHGID4_FLAG_USE_NON_PNFS;
    e->eia_state_protect.spa_how = SP4_NONE;
    struct v4_reply r;
    int st = nfs4c_call_nosession(c, &op, 1, &r);
    const nfs_resop4 *o = st ? NULL : nfs4c_next(&r, OP_EXCHANGE_ID);
    if (!st && !o)
        st = -EBADMSG;
    if (!st) {
        const EXCHANGE_ID4resok *ok = &o->opexchange_id.eir_resok4;
        pthread_mutex_lock(&v4->mu);
        v4->clientid = ok->eir_clientid;
        v4->have_clientid = true;
        v4->cs_seq = ok->eir_sequenceid;
        pthread_mutex_unlock(&v4->mu);
        *flags = ok->eir_flags;
    }
    nfs4c_reply_free(&r);
    return st;
}

/* ---- SETCLIENTID (4.0) ---- */

/* Our address as the server sees it (the route's source address: a connected UDP socket
 * sends nothing), for a callback location in the server's address family. */
static int local_addr(const struct nfs_client *c, struct sockaddr_storage *me)
{
    int fd = socket(c->addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    socklen_t len = sizeof(*me);
    int st = connect(fd, (const struct sockaddr *)&c->addr, c->addrlen) < 0 ||
                     getsockname(fd, (struct sockaddr *)me, &len) < 0
                 ? -errno
                 : 0;
    close(fd);
    return st;
}

/* SETCLIENTID (RFC 7530 16.33): our id string and instance verifier, and a callback
 * location nobody listens at, since the library serves no callbacks over 4.0. */
static int setclientid(struct nfs_client *c, clientid4 *id, verifier4 confirm)
{
    struct nfs4_state *v4 = c->v4;
    struct sockaddr_storage me;
    char netid[8], uaddr[INET6_ADDRSTRLEN + 16];
    int st = local_addr(c, &me);
    if (!st)
        st = nfs4_uaddr_port0((struct sockaddr *)&me, netid, sizeof(netid), uaddr, sizeof(uaddr));
    if (st)
        return st;
    nfs_argop4 op;
    memset(&op, 0, sizeof(op));
    op.argop = OP_SETCLIENTID;
    SETCLIENTID4args *sc = &op.opsetclientid;
    memcpy(sc->client.verifier, v4->verifier, sizeof(verifier4));
    sc->client.id = opq(v4->ownerid, strlen(v4->ownerid));
    sc->callback.cb_program = NFS4_CALLBACK;
    sc->callback.cb_location.na_r_netid = (struct xdr_string){ (uint32_t)strlen(netid), netid };
    sc->callback.cb_location.na_r_addr = (struct xdr_string){ (uint32_t)strlen(uaddr), uaddr };
    sc->callback_ident = 1;
    struct v4_reply r;
    st = nfs4c_call_nosession(c, &op, 1, &r);
    const nfs_resop4 *o = st ? NULL : nfs4c_next(&r, OP_SETCLIENTID);
    if (!st && !o)
        st = -EBADMSG;
    if (!st) {
        *id = o->opsetclientid.resok4.clientid;
        memcpy(confirm, o->opsetclientid.resok4.setclientid_confirm, sizeof(verifier4));
    }
    nfs4c_reply_free(&r);
    return st;
}

int nfs4c_setclientid(struct nfs_client *c)
{
    clientid4 id;
    verifier4 confirm;
    int st = setclientid(c, &id, confirm);
    if (st)
        return st;
    nfs_argop4 op;
    memset(&op, 0, sizeof(op));
    op.argop = OP_SETCLIENTID_CONFIRM;
    op.opsetclientid_confirm.clientid = id;
    memcpy(op.opsetclientid_confirm.setclientid_confirm, confirm, sizeof(verifier4));
    struct v4_reply r;
    st = nfs4c_call_nosession(c, &op, 1, &r);
    nfs4c_reply_free(&r);
    if (st)
        return st;
    pthread_mutex_lock(&c->v4->mu);
    c->v4->clientid = id;
    c->v4->have_clientid = true;
    pthread_mutex_unlock(&c->v4->mu);
    return 0;
}

/* ---- CREATE_SESSION (4.1+) ---- */

/* Fore channel sized for 1 MiB I/O, back channel for callbacks (AUTH_SYS). */
static void create_session_args(struct nfs_client *c, CREATE_SESSION4args *cs,
                                callback_sec_parms4 *sec)
{
    struct nfs4_state *v4 = c->v4;
    cs->csa_clientid = v4->clientid;
    cs->csa_sequence = v4->cs_seq;
    cs->csa_flags = CREATE_SESSION4_FLAG_CONN_BACK_CHAN;
    cs->csa_fore_chan_attrs = (channel_attrs4){ 0, NFS_CLIENT_IO_MAX + 64 * 1024,
                                                NFS_CLIENT_IO_MAX + 64 * 1024, 8192,
                                                V4_MAXOPS, V4_FORE_SLOTS, { 0, NULL } };
    cs->csa_back_chan_attrs = (channel_attrs4){ 0, 64 * 1024, 16 * 1024, 0, 8,
                                                V4_BACK_SLOTS, { 0, NULL } };
    cs->csa_cb_program = NFS4_CALLBACK;
    memset(sec, 0, sizeof(*sec));
    sec->cb_secflavor = RPC_AUTH_SYS;
    sec->cbsp_sys_cred.stamp = (uint32_t)time(NULL);
    sec->cbsp_sys_cred.machinename =
        (struct xdr_string){ c->cred.machinename_len, c->cred.machinename };
    sec->cbsp_sys_cred.uid = c->cred.uid;
    sec->cbsp_sys_cred.gid = c->cred.gid;
    cs->csa_sec_parms.len = 1;
    cs->csa_sec_parms.val = sec;
}

/* The first session sizes READ / WRITE; later ones (recoveries) keep the sizes that
 * transfers in progress were cut to. */
static int session_from_reply(struct nfs_client *c, const CREATE_SESSION4resok *ok)
{
    struct nfs4_state *v4 = c->v4;
    struct v4_session *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    memcpy(s->id, ok->csr_sessionid, sizeof(sessionid4));
    s->refs = 1;
    nfs4_slots_init(&s->slots, ok->csr_fore_chan_attrs.ca_maxrequests);
    nfs4_cb_set_session(&v4->cb, ok->csr_sessionid, ok->csr_back_chan_attrs.ca_maxrequests,
                        v4->minor);
    bool first = v4->sess == NULL;
    sess_install(v4, s);
    if (!first)
        return 0;
    v4->maxops = ok->csr_fore_chan_attrs.ca_maxoperations;
    if (v4->maxops > V4_MAXOPS)
        v4->maxops = V4_MAXOPS;
    uint32_t maxreq = ok->csr_fore_chan_attrs.ca_maxrequestsize;
    uint32_t maxresp = ok->csr_fore_chan_attrs.ca_maxresponsesize;
    /* room for the RPC and COMPOUND headers around the data */
    c->rsize = maxresp > 8192 ? maxresp - 4096 : 4096;
    c->wsize = maxreq > 8192 ? maxreq - 4096 : 4096;
    return 0;
}

int nfs4c_create_session(struct nfs_client *c)
{
    nfs_argop4 op;
    callback_sec_parms4 sec;
    memset(&op, 0, sizeof(op));
    op.argop = OP_CREATE_SESSION;
    pthread_mutex_lock(&c->v4->mu);
    create_session_args(c, &op.opcreate_session, &sec);
    pthread_mutex_unlock(&c->v4->mu);
    struct v4_reply r;
    int st = nfs4c_call_nosession(c, &op, 1, &r);
    const nfs_resop4 *o = st ? NULL : nfs4c_next(&r, OP_CREATE_SESSION);
    if (!st && !o)
        st = -EBADMSG;
    if (!st) {
        pthread_mutex_lock(&c->v4->mu);
        c->v4->cs_seq++; /* the next CREATE_SESSION of this client id is a new one */
        pthread_mutex_unlock(&c->v4->mu);
        st = session_from_reply(c, &o->opcreate_session.csr_resok4);
    }
    nfs4c_reply_free(&r);
    return st;
}

/* A new connection joins the session, fore and back channel (RFC 8881 18.34). */
static int bind_conn(struct nfs_client *c)
{
    nfs_argop4 op;
    memset(&op, 0, sizeof(op));
    op.argop = OP_BIND_CONN_TO_SESSION;
    BIND_CONN_TO_SESSION4args *b = &op.opbind_conn_to_session;
    pthread_mutex_lock(&c->v4->mu);
    memcpy(b->bctsa_sessid, c->v4->sess->id, sizeof(sessionid4));
    pthread_mutex_unlock(&c->v4->mu);
    b->bctsa_dir = CDFC4_FORE_OR_BOTH;
    b->bctsa_use_conn_in_rdma_mode = false;
    struct v4_reply r;
    int st = nfs4c_call_nosession(c, &op, 1, &r);
    nfs4c_reply_free(&r);
    return st;
}

/* Connect again to the server's address, with our back channel program. */
static int reconnect(struct nfs_client *c)
{
    struct nfs4_state *v4 = c->v4;
    int st;
    struct rpc_clnt *rpc = nfs_client_rpc_connect((struct sockaddr *)&c->addr, c->addrlen,
                                                  c->timeout_ms, &st);
    if (!rpc)
        return st;
    struct v4_conn *k = NULL;
    if ((st = rpc_clnt_set_callback_program(rpc, &nfs4c_cb_program, v4)) ||
        !(k = nfs4c_conn_new(rpc))) {
        rpc_clnt_destroy(rpc);
        return st ? st : -ENOMEM;
    }
    pthread_mutex_lock(&v4->mu);
    struct v4_conn *old = v4->conn;
    k->gen = ++v4->conn_gen;
    v4->conn = k;
    v4->conn_broken = false;
    v4->stats.reconnects++;
    nfs4c_conn_put_locked(v4, old);
    pthread_mutex_unlock(&v4->mu);
    return 0;
}

/* ---- reclaiming state after a server restart ---- */

struct reclaim_item {
    struct nfs_fh fh;
    uint32_t access;
    struct nfs4_lockset locks;
};

/* Errors that end this recovery step (the connection, session or client id is gone
 * again); any other refusal of a reclaim concerns that file only. */
static bool reclaim_fatal(int st)
{
    return st < 0 || st == NFS4ERR_BADSESSION || st == NFS4ERR_DEADSESSION ||
           st == NFS4ERR_STALE_CLIENTID;
}

static void file_set_sid(struct nfs4_state *v4, const struct nfs_fh *fh, bool lock,
                         const stateid4 *sid)
{
    pthread_mutex_lock(&v4->mu);
    struct v4_file *f = nfs4c_file_find(v4, fh);
    if (f && lock) {
        f->have_lock = true;
        f->lock_sid = *sid;
    } else if (f) {
        f->have_open = true;
        f->have_lock = false;
        f->open_sid = *sid;
    }
    pthread_mutex_unlock(&v4->mu);
}

static void file_lost(struct nfs4_state *v4, const struct nfs_fh *fh, int st)
{
    pthread_mutex_lock(&v4->mu);
    struct v4_file *f = nfs4c_file_find(v4, fh);
    if (f) {
        f->lost = true;
        f->have_open = f->have_lock = false;
        nfs4_lockset_clear(&f->locks);
    }
    v4->stats.lost++;
    pthread_mutex_unlock(&v4->mu);
    log_info("nfs4 client: the server refused to reclaim an open file's state (%s): its "
             "I/O and locks now fail", nfs_client_strerror(st));
}

/* OPEN CLAIM_PREVIOUS of the current filehandle (4.1's CLAIM_FH is no reclaim). */
static int reclaim_open(struct nfs_client *c, const struct reclaim_item *it, stateid4 *sid)
{
    struct nfs4_state *v4 = c->v4;
    struct v4_args a = { 0 };
    nfs4c_add_putfh(&a, &it->fh);
    OPEN4args *o = &nfs4c_add_op(&a, OP_OPEN)->opopen;
    o->seqid = 0;
    o->share_access = it->access;
    o->share_deny = OPEN4_SHARE_DENY_NONE;
    o->owner.clientid = v4->clientid;
    o->owner.owner = opq(v4->open_owner, strlen(v4->open_owner));
    o->openhow.opentype = OPEN4_NOCREATE;
    o->claim.claim = CLAIM_PREVIOUS;
    o->claim.delegate_type = OPEN_DELEGATE_NONE;
    struct v4_reply r;
    int st = nfs4c_call(c, &a, &r);
    const nfs_resop4 *ro = st ? NULL : nfs4c_next(&r, OP_PUTFH) ? nfs4c_next(&r, OP_OPEN) : NULL;
    if (!st && !ro)
        st = -EBADMSG;
    if (!st) {
        *sid = ro->opopen.resok4.stateid;
        st = nfs4c_open_confirm(c, &it->fh, ro->opopen.resok4.rflags, sid);
    }
    nfs4c_reply_free(&r);
    return st;
}

static int reclaim_lock(struct nfs_client *c, const struct reclaim_item *it,
                        const struct nfs4_lock_range *lr, bool have_lock,
                        const stateid4 *open_sid, stateid4 *lock_sid)
{
    struct v4_args a = { 0 };
    nfs4c_add_putfh(&a, &it->fh);
    nfs4c_lock_args(c->v4, &nfs4c_add_op(&a, OP_LOCK)->oplock, lr->write, lr->off,
                    nfs4_lock_range_len(lr), true, have_lock, open_sid, lock_sid);
    struct v4_reply r;
    int st = nfs4c_call(c, &a, &r);
    const nfs_resop4 *ro = st ? NULL : nfs4c_next(&r, OP_PUTFH) ? nfs4c_next(&r, OP_LOCK) : NULL;
    if (!st && !ro)
        st = -EBADMSG;
    if (!st)
        *lock_sid = ro->oplock.resok4.lock_stateid;
    nfs4c_reply_free(&r);
    return st;
}

static int reclaim_file(struct nfs_client *c, const struct reclaim_item *it)
{
    struct nfs4_state *v4 = c->v4;
    stateid4 open_sid, lock_sid;
    memset(&lock_sid, 0, sizeof(lock_sid));
    int st = reclaim_open(c, it, &open_sid);
    if (!st)
        file_set_sid(v4, &it->fh, false, &open_sid);
    for (uint32_t i = 0; !st && i < it->locks.n; i++) {
        st = reclaim_lock(c, it, &it->locks.r[i], i > 0, &open_sid, &lock_sid);
        if (!st)
            file_set_sid(v4, &it->fh, true, &lock_sid);
    }
    if (!st) {
        pthread_mutex_lock(&v4->mu);
        v4->stats.reclaims += 1 + it->locks.n;
        pthread_mutex_unlock(&v4->mu);
        return 0;
    }
    if (reclaim_fatal(st))
        return st;
    file_lost(v4, &it->fh, st);
    return 0;
}

/* What to reclaim: every open file (with its lock ranges). Delegations are not
 * reclaimed (we ask for none): their records go. */
static size_t reclaim_snapshot(struct nfs4_state *v4, struct reclaim_item **out)
{
    pthread_mutex_lock(&v4->mu);
    size_t n = 0, i = 0;
    for (struct v4_file *f = v4->files; f; f = f->next)
        n += f->have_open;
    struct reclaim_item *items = calloc(n ? n : 1, sizeof(*items));
    for (struct v4_file *f = v4->files, *next; f; f = next) {
        next = f->next;
        f->deleg_type = OPEN_DELEGATE_NONE;
        if (items && f->have_open) {
            items[i].fh = f->fh;
            items[i].access = f->share_access;
            if (nfs4_lockset_copy(&items[i].locks, &f->locks))
                log_warn("nfs4 client: no memory to reclaim a file's locks");
            i++;
        }
        nfs4c_file_drop_if_idle(v4, f);
    }
    pthread_mutex_unlock(&v4->mu);
    *out = items;
    return items ? n : 0;
}

static int reclaim_all(struct nfs_client *c)
{
    struct reclaim_item *items;
    size_t n = reclaim_snapshot(c->v4, &items);
    int st = 0;
    for (size_t i = 0; i < n && !st; i++)
        st = reclaim_file(c, &items[i]);
    for (size_t i = 0; i < n; i++)
        nfs4_lockset_clear(&items[i].locks);
    free(items);
    if (n)
        log_info("nfs4 client: reclaimed %zu open file(s): %s", n, nfs_client_strerror(st));
    return st;
}

static int reclaim_complete(struct nfs_client *c)
{
    if (c->v4->minor == 0)
        return 0; /* no such op in 4.0: the grace period ends on the server's clock */
    struct v4_args a = { 0 };
    nfs4c_add_op(&a, OP_RECLAIM_COMPLETE)->opreclaim_complete.rca_one_fs = false;
    int st = nfs4c_call_status(c, &a);
    return st == NFS4ERR_COMPLETE_ALREADY ? 0 : st;
}

/* ---- recovery steps: each clears its RECOV_ bit or says what to do first ---- */

/* 4.0: is our client id still good on the new connection? RENEW alone, outside the
 * request machinery (whose failure reports would start a second recovery), as
 * BIND_CONN_TO_SESSION tells a 4.1 client that its session survived. */
static int renew_now(struct nfs_client *c)
{
    nfs_argop4 op;
    memset(&op, 0, sizeof(op));
    op.argop = OP_RENEW;
    pthread_mutex_lock(&c->v4->mu);
    op.oprenew.clientid = c->v4->clientid;
    pthread_mutex_unlock(&c->v4->mu);
    struct v4_reply r;
    int st = nfs4c_call_nosession(c, &op, 1, &r);
    nfs4c_reply_free(&r);
    return st;
}

static int step_conn(struct nfs_client *c, unsigned *need)
{
    int st = reconnect(c);
    if (st)
        return st;
    *need &= ~RECOV_CONN;
    if (*need & (RECOV_SESSION | RECOV_CLIENT))
        return 0; /* a new session (4.0: client id) comes next anyway */
    bool v40 = c->v4->minor == 0;
    st = v40 ? renew_now(c) : bind_conn(c);
    log_info("nfs4 client: reconnected, %s: %s", v40 ? "RENEW" : "BIND_CONN_TO_SESSION",
             nfs_client_strerror(st));
    if (st < 0)
        *need |= RECOV_CONN;
    else if (v40 && (st == NFS4ERR_STALE_CLIENTID || st == NFS4ERR_EXPIRED))
        *need |= RECOV_CLIENT; /* the server restarted (or dropped us) */
    else if (st && !v40)
        *need |= RECOV_SESSION; /* BADSESSION / DEADSESSION: the server lost it */
    return st < 0 ? st : 0;
}

static int step_session(struct nfs_client *c, unsigned *need)
{
    int st = nfs4c_create_session(c);
    log_info("nfs4 client: new session, CREATE_SESSION: %s", nfs_client_strerror(st));
    if (st < 0) {
        *need |= RECOV_CONN;
        return st;
    }
    *need &= ~RECOV_SESSION;
    if (st)
        *need |= RECOV_CLIENT; /* STALE_CLIENTID: the server restarted */
    return 0;
}

/* A new client id (and session): 0, or the step's failure. *kept: the server still
 * had our state (4.1 CONFIRMED_R; a 4.0 server does not say, so 4.0 reclaims). */
static int new_client(struct nfs_client *c, bool *kept)
{
    uint32_t flags = 0;
    int st;
    if (c->v4->minor == 0) {
        st = nfs4c_setclientid(c);
        log_info("nfs4 client: new client state (the server restarted?): SETCLIENTID + "
                 "SETCLIENTID_CONFIRM: %s", nfs_client_strerror(st));
        *kept = false;
        return st;
    }
    st = nfs4c_exchange_id(c, &flags);
    if (!st)
        st = nfs4c_create_session(c);
    log_info("nfs4 client: new client state (the server restarted?): EXCHANGE_ID + "
             "CREATE_SESSION: %s", nfs_client_strerror(st));
    *kept = (flags & EXCHGID4_FLAG_CONFIRMED_R) != 0;
    return st;
}

static int step_client(struct nfs_client *c, unsigned *need)
{
    struct nfs4_state *v4 = c->v4;
    bool kept = false;
    int st = new_client(c, &kept);
    if (!st)
        *need &= ~RECOV_SESSION;
    /* a server that still knew us kept our state: nothing to reclaim */
    if (!st && !kept)
        st = reclaim_all(c);
    if (!st)
        st = reclaim_complete(c);
    if (st) {
        if (st < 0)
            *need |= RECOV_CONN;
        return st;
    }
    pthread_mutex_lock(&v4->mu);
    v4->state_epoch++;
    v4->client_broken = false;
    pthread_mutex_unlock(&v4->mu);
    *need &= ~RECOV_CLIENT;
    return 0;
}

/* Sleep on the state manager, unless stopping (true). */
static bool sm_sleep(struct nfs4_state *v4, unsigned ms)
{
    int64_t until = nfs4c_now_ms() + ms;
    struct timespec ts = abs_ms(until);
    pthread_mutex_lock(&v4->mu);
    while (!v4->stopping && nfs4c_now_ms() < until)
        pthread_cond_timedwait(&v4->cv, &v4->mu, &ts);
    bool stop = v4->stopping;
    pthread_mutex_unlock(&v4->mu);
    return stop;
}

static int recover(struct nfs_client *c, unsigned need)
{
    int64_t deadline = nfs4c_now_ms() + V4_RECOVERY_MS;
    int st = 0;
    while (need) {
        if (nfs4c_now_ms() > deadline)
            return st ? st : -ETIMEDOUT;
        st = (need & RECOV_CONN)     ? step_conn(c, &need)
             : (need & RECOV_CLIENT) ? step_client(c, &need)
                                     : step_session(c, &need);
        if (st) {
            log_info("nfs4 client: recovery step failed (%s), trying again",
                     nfs_client_strerror(st));
            if (sm_sleep(c->v4, V4_GRACE_RETRY_MS))
                return -ECANCELED;
        }
    }
    return 0;
}

static void run_recovery_locked(struct nfs_client *c)
{
    struct nfs4_state *v4 = c->v4;
    unsigned need = v4->recov_need;
    v4->recov_need = 0;
    v4->recovering = true;
    pthread_mutex_unlock(&v4->mu);
    int64_t t0 = nfs4c_now_ms();
    log_info("nfs4 client: recovering:%s%s%s", need & RECOV_CONN ? " connection" : "",
             need & RECOV_SESSION ? " session" : "", need & RECOV_CLIENT ? " client state" : "");
    int st = recover(c, need);
    log_info("nfs4 client: recovery %s after %lld ms", st ? nfs_client_strerror(st) : "done",
             (long long)(nfs4c_now_ms() - t0));
    pthread_mutex_lock(&v4->mu);
    v4->recovering = false;
    v4->recov_status = st;
    v4->recov_gen++;
    if (st) {
        /* the next request meeting the breakage starts a new attempt */
        v4->conn_broken = v4->sess_broken = v4->client_broken = false;
        nfs4c_retries_fail_locked(c, st, true);
    } else {
        v4->stats.recoveries++;
    }
    pthread_cond_broadcast(&v4->recov_cv);
}

void nfs4c_recovery_ask_locked(struct nfs4_state *v4, unsigned need, const struct v4_req *rq)
{
    unsigned add = 0;
    if ((need & RECOV_CONN) && rq->conn_gen == v4->conn_gen && !v4->conn_broken) {
        v4->conn_broken = true;
        add |= RECOV_CONN;
    }
    if ((need & RECOV_SESSION) && rq->sess_gen == v4->sess_gen && !v4->sess_broken) {
        v4->sess_broken = true;
        add |= RECOV_SESSION;
    }
    if ((need & RECOV_CLIENT) && rq->epoch == v4->state_epoch && !v4->client_broken) {
        v4->client_broken = true;
        add |= RECOV_CLIENT;
    }
    if (add) {
        v4->recov_need |= add;
        pthread_cond_signal(&v4->cv);
    }
}

int nfs4c_recovery_wait_locked(struct nfs4_state *v4, int64_t deadline_ms)
{
    uint64_t gen = v4->recov_gen;
    struct timespec ts = abs_ms(deadline_ms);
    while ((v4->recov_need || v4->recovering) && !v4->stopping)
        if (pthread_cond_timedwait(&v4->recov_cv, &v4->mu, &ts) == ETIMEDOUT)
            return -ETIMEDOUT;
    if (v4->stopping)
        return -ECANCELED;
    return v4->recov_gen != gen ? v4->recov_status : 0;
}

/* ---- delegation returns and lease renewal ---- */

void nfs4c_do_recall(struct nfs_client *c, const struct v4_recall *rc)
{
    struct nfs4_state *v4 = c->v4;
    /* our writes are never cached here, but UNSTABLE ones may wait for COMMIT: make
     * them stable before the server lets others at the file */
    struct v4_args a = { 0 };
    nfs4c_add_putfh(&a, &rc->fh);
    COMMIT4args *cm = &nfs4c_add_op(&a, OP_COMMIT)->opcommit;
    cm->offset = 0;
    cm->count = 0;
    nfs4c_call_status(c, &a);
    a.n = 0;
    nfs4c_add_putfh(&a, &rc->fh);
    nfs4c_add_op(&a, OP_DELEGRETURN)->opdelegreturn.deleg_stateid = rc->sid;
    int st = nfs4c_call_status(c, &a);
    pthread_mutex_lock(&v4->mu);
    if (st == 0 || st == NFS4ERR_BAD_STATEID || st == NFS4ERR_DELEG_REVOKED ||
        st == NFS4ERR_STALE_STATEID) {
        struct v4_file *f = nfs4c_file_find(v4, &rc->fh);
        if (f && !memcmp(f->deleg_sid.other, rc->sid.other, NFS4_OTHER_SIZE)) {
            f->deleg_type = OPEN_DELEGATE_NONE;
            nfs4c_file_drop_if_idle(v4, f);
        }
    }
    if (st == 0)
        v4->stats.delegreturns++;
    pthread_mutex_unlock(&v4->mu);
}

static bool recall_one_locked(struct nfs_client *c)
{
    struct nfs4_state *v4 = c->v4;
    struct v4_recall *rc = v4->recalls;
    if (!rc)
        return false;
    v4->recalls = rc->next;
    pthread_mutex_unlock(&v4->mu);
    nfs4c_do_recall(c, rc);
    free(rc);
    pthread_mutex_lock(&v4->mu);
    return true;
}

/* 4.0 RENEW answered EXPIRED: the server dropped our state after we were cut off for a
 * lease (RFC 7530 9.6.3): a new client id, and reclaims (which it may refuse). mu held. */
static void renew_expired_locked(struct nfs4_state *v4)
{
    struct v4_req rq;
    memset(&rq, 0, sizeof(rq));
    rq.epoch = v4->state_epoch;
    nfs4c_recovery_ask_locked(v4, RECOV_CLIENT, &rq);
}

/* SEQUENCE alone (4.0: RENEW) when nothing renewed the lease for lease/3 (RFC 8881 8.3,
 * RFC 7530 9.5); it also finds out that the server went away while we were idle.
 * *due_ms: the next renewal. */
static bool renew_if_due_locked(struct nfs_client *c, int64_t *due_ms)
{
    struct nfs4_state *v4 = c->v4;
    uint32_t interval = v4->lease_s / 3 ? v4->lease_s / 3 : 1;
    *due_ms = (int64_t)v4->last_send.tv_sec * 1000 + v4->last_send.tv_nsec / 1000000 +
              (int64_t)interval * 1000;
    if (nfs4c_now_ms() < *due_ms)
        return false;
    v4->stats.renewals++;
    struct v4_args a = { 0 };
    nfs4c_add_lease_renewal_locked(v4, &a);
    pthread_mutex_unlock(&v4->mu);
    int st = nfs4c_call_status(c, &a);
    pthread_mutex_lock(&v4->mu);
    if (st == NFS4ERR_EXPIRED && v4->minor == 0)
        renew_expired_locked(v4);
    return true;
}

/* One round of the state manager's work (mu held); false when there was none, with
 * *wake_ms the time something falls due. */
static bool sm_work_locked(struct nfs_client *c, int64_t *wake_ms)
{
    struct nfs4_state *v4 = c->v4;
    if (v4->recov_need) {
        run_recovery_locked(c);
        return true;
    }
    if (v4->dead_conns) {
        pthread_mutex_unlock(&v4->mu);
        nfs4c_destroy_dead_conns(v4);
        pthread_mutex_lock(&v4->mu);
        return true;
    }
    int64_t retry_ms, renew_ms;
    nfs4c_retries_run_locked(c, &retry_ms);
    if (v4->recov_need || v4->stopping || recall_one_locked(c) || renew_if_due_locked(c, &renew_ms))
        return true;
    *wake_ms = retry_ms < renew_ms ? retry_ms : renew_ms;
    return false;
}

void *nfs4c_state_manager(void *arg)
{
    struct nfs_client *c = arg;
    struct nfs4_state *v4 = c->v4;
    nfs4c_tls_state_manager = v4;
    pthread_mutex_lock(&v4->mu);
    while (!v4->stopping) {
        int64_t wake_ms;
        if (sm_work_locked(c, &wake_ms))
            continue;
        struct timespec ts = abs_ms(wake_ms);
        pthread_cond_timedwait(&v4->cv, &v4->mu, &ts);
    }
    pthread_mutex_unlock(&v4->mu);
    return NULL;
}
