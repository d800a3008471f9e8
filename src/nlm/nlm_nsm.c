/*
 * NSM: the local rpc.statd watches our locking clients (SM_MON) and calls us back
 * (NLM v4 procedure 16, struct sm_status) when one rebooted; at start we tell statd we
 * restarted (SM_SIMU_CRASH). What statd does with it varies: Linux's (nfs-utils) drops
 * its in-memory monitor list and runs sm-notify again, which fails for want of
 * capabilities (seen with nfs-utils 2.6.2); the notifications that make clients reclaim
 * their locks in our grace period come from sm-notify as the host runs it at boot (or
 * as tests/kclient/lib/peernfsd-netns.sh does after restarting us).
 *
 * All statd traffic runs on one background thread: a lock request only queues the
 * host (never waits on statd), so a slow or absent statd never turns into ENOLCK;
 * failed calls are retried with backoff (1 s doubling to 30 s). Like Linux's lockd,
 * the monitored name is the client's address (statd must be able to resolve it);
 * the caller names seen from that address are the hosts whose locks go when it reboots.
 * We call statd from a reserved source port when we can: Linux's rpc.statd ignores an
 * SM_SIMU_CRASH from an unreserved one (it logs "call from unprivileged port").
 * A client left with no locks, waiters or shares is unmonitored (SM_UNMON) once it has
 * been idle for nsm_idle_secs, so statd's list does not grow with every client that ever
 * locked; its next lock monitors it again. Nothing is unmonitored at shutdown: after a
 * restart, statd's list is what lets the clients reclaim.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nlm/nlm_internal.h"
#include "rpc/clnt.h"
#include "util/log.h"
#include "xdr/sm_inter_xdr.h"

#define NSM_PROG 100024u
#define NSM_VERS 1u
#define NSM_PROC_MON 2u
#define NSM_PROC_UNMON 3u
#define NSM_PROC_SIMU_CRASH 5u
#define NSM_TIMEOUT_MS 2000
#define NSM_HOSTS_MAX 4096u
#define NSM_BACKOFF_MAX 30
#define NSM_RESVPORT_LO 600
#define NSM_RESVPORT_HI 1023

struct nsm_host {
    struct nsm_host *next;
    char mon_name[INET6_ADDRSTRLEN];
    char *caller;
    size_t caller_len;
    bool monitored;
    unsigned backoff;
    time_t next_try;
    time_t idle_since; /* monitored and found without state since then; 0: busy */
};

struct nlm_nsm {
    struct nlm_service *svc;
    unsigned idle_secs;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, crash_pending;
    unsigned crash_backoff;
    time_t crash_next;
    struct nsm_host *hosts;
    unsigned nhosts;
};

static time_t mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

/* A TCP connection to statd at `to` (loopback) from a free reserved port of 127.0.0.1.
 * Returns the connected socket, -EADDRINUSE when every reserved port is taken, -EACCES or
 * -EPERM without the privilege to bind one, or another -errno. */
static int nsm_connect_resvport(const struct sockaddr_in *to)
{
    for (int port = NSM_RESVPORT_HI; port >= NSM_RESVPORT_LO; port--) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            return -errno;
        struct sockaddr_in me = { .sin_family = AF_INET,
                                  .sin_port = htons((uint16_t)port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        if (bind(fd, (struct sockaddr *)&me, sizeof(me)) < 0) {
            int e = errno;
            close(fd);
            if (e == EADDRINUSE)
                continue;
            return -e;
        }
        if (connect(fd, (const struct sockaddr *)to, sizeof(*to)) < 0 && errno != EINPROGRESS) {
            int e = errno;
            close(fd);
            if (e == EADDRNOTAVAIL || e == EADDRINUSE)
                continue; /* that port still has a connection to statd in TIME_WAIT */
            return -e;
        }
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (poll(&p, 1, NSM_TIMEOUT_MS) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
            close(fd);
            return soerr ? -soerr : -ETIMEDOUT;
        }
        return fd;
    }
    return -EADDRINUSE;
}

/* Connect to statd: from a reserved port, else (not privileged, or none free) from any
 * port, which statd still accepts for SM_MON. */
static struct rpc_clnt *nsm_connect(const struct sockaddr_in *to, int *err)
{
    int fd = nsm_connect_resvport(to);
    if (fd >= 0)
        return rpc_clnt_connect_fd(fd, err); /* it clears O_NONBLOCK */
    if (fd != -EADDRINUSE && fd != -EACCES && fd != -EPERM) {
        *err = fd;
        return NULL;
    }
    return rpc_clnt_connect((const struct sockaddr *)to, sizeof(*to), NSM_TIMEOUT_MS, err);
}

static int nsm_call(uint32_t proc, rpc_xdr_enc_fn enc, const void *args, bool want_res)
{
    struct sockaddr_in lo = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int err = 0;
    int port = nlm_getport((struct sockaddr *)&lo, sizeof(lo), NSM_PROG, NSM_VERS, IPPROTO_TCP, NSM_TIMEOUT_MS);
    if (port < 0)
        return port;
    lo.sin_port = htons((uint16_t)port);
    struct rpc_clnt *c = nsm_connect(&lo, &err);
    if (!c)
        return err ? -abs(err) : -ECONNREFUSED;
    struct rpc_reply rep;
    int rc = rpc_clnt_call(c, NSM_PROG, NSM_VERS, proc, NULL, enc, args, NSM_TIMEOUT_MS, &rep);
    if (rc == 0) {
        sm_stat_res res;
        if (want_res)
            rc = !xdr_decode_sm_stat_res(&rep.res, &res) ? -EBADMSG : res.res_stat == stat_succ ? 0 : -EREMOTEIO;
        rpc_reply_free(&rep);
    } else if (rc == -EPROTO) {
        rpc_reply_free(&rep);
    }
    rpc_clnt_destroy(c);
    return rc;
}

static bool enc_mon(struct xdr_enc *x, const void *a)
{
    return xdr_encode_sm_mon(x, a);
}

static bool enc_void(struct xdr_enc *x, const void *a)
{
    (void)x;
    (void)a;
    return true;
}

static const char nsm_my_name[] = "127.0.0.1"; /* statd calls back on loopback */

static void nsm_mon_id(mon_id *id, const char *mon_name)
{
    memset(id, 0, sizeof(*id));
    id->mon_name = (struct xdr_string){ (uint32_t)strlen(mon_name), mon_name };
    id->my_id.my_name = (struct xdr_string){ sizeof(nsm_my_name) - 1, nsm_my_name };
    id->my_id.my_prog = (int32_t)NLM_PROG;
    id->my_id.my_vers = 4;
    id->my_id.my_proc = (int32_t)NLM_PROC_SM_NOTIFY;
}

static int nsm_mon(const char *mon_name)
{
    sm_mon m;
    memset(&m, 0, sizeof(m));
    nsm_mon_id(&m.mon_id, mon_name);
    return nsm_call(NSM_PROC_MON, enc_mon, &m, true);
}

static bool enc_unmon(struct xdr_enc *x, const void *a)
{
    return xdr_encode_mon_id(x, a);
}

static int nsm_unmon(const char *mon_name)
{
    mon_id id;
    nsm_mon_id(&id, mon_name);
    return nsm_call(NSM_PROC_UNMON, enc_unmon, &id, false); /* the reply: sm_stat, statd's state */
}

/* Under n->mu: does the host still have locks, waiters or shares? */
static bool nsm_host_busy(struct nlm_nsm *n, const struct nsm_host *h)
{
    uint8_t key[NLM_KEY_MAX];
    size_t klen = nlm_host_key(key, h->caller, h->caller_len);
    return lock_host_active(n->svc->locks, key, klen) || nlm_share_host_active(n->svc, key, klen);
}

/* Under n->mu: the first monitored host idle for idle_secs, taken off the list (its
 * name in name) when no other entry still monitors the same name; true if one was. */
static bool nsm_take_idle(struct nlm_nsm *n, time_t now, time_t *wake, char name[INET6_ADDRSTRLEN])
{
    for (struct nsm_host **pp = &n->hosts; *pp; pp = &(*pp)->next) {
        struct nsm_host *h = *pp;
        if (!h->monitored)
            continue;
        if (nsm_host_busy(n, h)) {
            h->idle_since = 0;
        } else if (!h->idle_since) {
            h->idle_since = now;
        } else if (now - h->idle_since >= (time_t)n->idle_secs) {
            memcpy(name, h->mon_name, INET6_ADDRSTRLEN);
            *pp = h->next;
            free(h->caller);
            free(h);
            n->nhosts--;
            for (struct nsm_host *o = n->hosts; o; o = o->next)
                if (o->monitored && strcmp(o->mon_name, name) == 0)
                    return false; /* another caller name from there still counts */
            return true;
        }
        if (h->idle_since && h->idle_since + (time_t)n->idle_secs < *wake)
            *wake = h->idle_since + (time_t)n->idle_secs;
    }
    return false;
}

static unsigned next_backoff(unsigned b)
{
    return b == 0 ? 1 : b * 2 > NSM_BACKOFF_MAX ? NSM_BACKOFF_MAX : b * 2;
}

static void *nsm_thread(void *arg)
{
    struct nlm_nsm *n = arg;
    pthread_mutex_lock(&n->mu);
    while (!n->stop) {
        time_t now = mono_now(), wake = now + 3600;
        if (n->crash_pending && n->crash_next <= now) {
            pthread_mutex_unlock(&n->mu);
            int rc = nsm_call(NSM_PROC_SIMU_CRASH, enc_void, NULL, false);
            pthread_mutex_lock(&n->mu);
            if (rc == 0) {
                n->crash_pending = false;
                log_notice("nsm: told rpc.statd we restarted (SM_SIMU_CRASH)");
            } else {
                n->crash_backoff = next_backoff(n->crash_backoff);
                n->crash_next = mono_now() + n->crash_backoff;
                log_info("nsm: SM_SIMU_CRASH: %s; retrying in %u s", strerror(-rc), n->crash_backoff);
            }
            continue;
        }
        if (n->crash_pending && n->crash_next < wake)
            wake = n->crash_next;
        struct nsm_host *todo = NULL;
        for (struct nsm_host *h = n->hosts; h; h = h->next) {
            if (h->monitored)
                continue;
            if (h->next_try <= now) {
                todo = h;
                break;
            }
            if (h->next_try < wake)
                wake = h->next_try;
        }
        char idle[INET6_ADDRSTRLEN];
        if (!todo && nsm_take_idle(n, now, &wake, idle)) {
            pthread_mutex_unlock(&n->mu);
            int rc = nsm_unmon(idle);
            pthread_mutex_lock(&n->mu);
            if (rc == 0)
                log_info("nsm: %s holds no locks any more: unmonitored", idle);
            else
                log_info("nsm: SM_UNMON %s: %s", idle, strerror(-rc));
            continue;
        }
        /* look at busy monitored hosts again within a while, to see them go idle */
        time_t sweep = n->idle_secs / 2 + 1 < 30 ? n->idle_secs / 2 + 1 : 30;
        for (struct nsm_host *h = n->hosts; h; h = h->next)
            if (h->monitored && !h->idle_since && now + sweep < wake)
                wake = now + sweep;
        if (todo) {
            char name[INET6_ADDRSTRLEN];
            memcpy(name, todo->mon_name, sizeof(name));
            pthread_mutex_unlock(&n->mu);
            int rc = nsm_mon(name);
            pthread_mutex_lock(&n->mu);
            /* todo may be gone (rebooted): find it again by name */
            for (struct nsm_host *h = n->hosts; h; h = h->next) {
                if (strcmp(h->mon_name, name) != 0 || h->monitored)
                    continue;
                if (rc == 0) {
                    h->monitored = true;
                    log_info("nsm: monitoring %s", name);
                } else {
                    h->backoff = next_backoff(h->backoff);
                    h->next_try = mono_now() + h->backoff;
                    log_info("nsm: SM_MON %s: %s; retrying in %u s", name, strerror(-rc), h->backoff);
                }
            }
            continue;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += wake - now;
        pthread_cond_timedwait(&n->cv, &n->mu, &until);
    }
    pthread_mutex_unlock(&n->mu);
    return NULL;
}

int nlm_nsm_init(struct nlm_service *s)
{
    struct nlm_nsm *n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    n->svc = s;
    n->idle_secs = s->cfg.nsm_idle_secs ? s->cfg.nsm_idle_secs : 300;
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->cv, NULL);
    if (pthread_create(&n->thread, NULL, nsm_thread, n) != 0) {
        pthread_cond_destroy(&n->cv);
        pthread_mutex_destroy(&n->mu);
        free(n);
        return -EAGAIN;
    }
    s->nsm = n;
    return 0;
}

void nlm_nsm_fini(struct nlm_service *s)
{
    struct nlm_nsm *n = s->nsm;
    if (!n)
        return;
    pthread_mutex_lock(&n->mu);
    n->stop = true;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
    pthread_join(n->thread, NULL);
    for (struct nsm_host *h = n->hosts, *next; h; h = next) {
        next = h->next;
        free(h->caller);
        free(h);
    }
    pthread_cond_destroy(&n->cv);
    pthread_mutex_destroy(&n->mu);
    free(n);
    s->nsm = NULL;
}

void nlm_nsm_simu_crash(struct nlm_service *s)
{
    struct nlm_nsm *n = s->nsm;
    if (!n)
        return;
    pthread_mutex_lock(&n->mu);
    n->crash_pending = true;
    n->crash_next = 0;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

static void peer_name(const struct sockaddr *sa, char *buf, size_t len)
{
    buf[0] = '\0';
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf, (socklen_t)len);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a))
            inet_ntop(AF_INET, &a->s6_addr[12], buf, (socklen_t)len);
        else
            inet_ntop(AF_INET6, a, buf, (socklen_t)len);
    }
}

void nlm_nsm_monitor(struct nlm_service *s, const struct sockaddr *peer, const char *caller, size_t caller_len)
{
    struct nlm_nsm *n = s->nsm;
    char name[INET6_ADDRSTRLEN];

    if (!n)
        return;
    peer_name(peer, name, sizeof(name));
    if (!name[0])
        return;
    pthread_mutex_lock(&n->mu);
    for (struct nsm_host *h = n->hosts; h; h = h->next) {
        if (strcmp(h->mon_name, name) == 0 && h->caller_len == caller_len && memcmp(h->caller, caller, caller_len) == 0) {
            pthread_mutex_unlock(&n->mu);
            return;
        }
    }
    struct nsm_host *h = n->nhosts < NSM_HOSTS_MAX ? calloc(1, sizeof(*h)) : NULL;
    if (h && (h->caller = malloc(caller_len ? caller_len : 1))) {
        memcpy(h->mon_name, name, sizeof(name));
        memcpy(h->caller, caller, caller_len);
        h->caller_len = caller_len;
        h->next = n->hosts;
        n->hosts = h;
        n->nhosts++;
        pthread_cond_broadcast(&n->cv);
    } else {
        free(h);
        log_warn("nsm: too many monitored hosts; %s not monitored", name);
    }
    pthread_mutex_unlock(&n->mu);
}

void nlm_nsm_rebooted(struct nlm_service *s, const char *mon_name, size_t len)
{
    struct nlm_nsm *n = s->nsm;
    uint8_t key[NLM_KEY_MAX];

    log_notice("nsm: %.*s rebooted: releasing its locks", (int)len, mon_name);
    if (!n)
        return;
    pthread_mutex_lock(&n->mu);
    for (struct nsm_host **pp = &n->hosts; *pp;) {
        struct nsm_host *h = *pp;
        if (strlen(h->mon_name) == len && memcmp(h->mon_name, mon_name, len) == 0) {
            size_t klen = nlm_host_key(key, h->caller, h->caller_len);
            lock_release_host(s->locks, key, klen);
            nlm_share_release_host(s, key, klen);
            *pp = h->next;
            free(h->caller);
            free(h);
            n->nhosts--;
        } else {
            pp = &h->next;
        }
    }
    pthread_mutex_unlock(&n->mu);
}
