/*
 * Calls from the server to a client's lockd: the GRANTED callback of a blocked lock
 * and the *_RES answers of the asynchronous *_MSG procedures. Each runs in a thread of
 * its own (never on a request thread or the lock space's thread): find the client's
 * lockd through its rpcbind, call over TCP, retry with backoff (1, 2, 4 ... 8 s).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nlm/nlm_internal.h"
#include "rpc/clnt.h"
#include "util/log.h"

#define NLM_CB_TIMEOUT_MS 5000
#define PMAP_PROG 100000u
#define PMAP_VERS 2u
#define PMAPPROC_GETPORT 3u

struct nlm_cb_job {
    struct nlm_service *s;
    struct sockaddr_storage peer;
    socklen_t peer_len;
    uint32_t vers, proc;
    unsigned attempts;
    nlm_cb_done_fn done;
    void *arg;
    size_t len;
    uint8_t args[];
};

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)(void *)ss)->sin_port = htons(port);
    else if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)(void *)ss)->sin6_port = htons(port);
}

struct pmap_args {
    uint32_t prog, vers, prot;
};

static bool enc_pmap(struct xdr_enc *x, const void *a)
{
    const struct pmap_args *p = a;
    return xdr_enc_u32(x, p->prog) && xdr_enc_u32(x, p->vers) && xdr_enc_u32(x, p->prot) && xdr_enc_u32(x, 0);
}

int nlm_getport(const struct sockaddr *host, socklen_t len, uint32_t prog, uint32_t vers, uint32_t prot,
                int timeout_ms)
{
    struct sockaddr_storage ss;
    struct pmap_args pa = { prog, vers, prot };
    struct rpc_reply rep;
    int err = 0;

    if (len > sizeof(ss))
        return -EINVAL;
    memcpy(&ss, host, len);
    set_port(&ss, 111);
    struct rpc_clnt *c = rpc_clnt_connect((struct sockaddr *)&ss, len, timeout_ms, &err);
    if (!c)
        return err ? -abs(err) : -ECONNREFUSED;
    int rc = rpc_clnt_call(c, PMAP_PROG, PMAP_VERS, PMAPPROC_GETPORT, NULL, enc_pmap, &pa, timeout_ms, &rep);
    if (rc == 0) {
        uint32_t port = 0;
        rc = xdr_dec_u32(&rep.res, &port) && port > 0 && port < 65536 ? (int)port : -EPROTONOSUPPORT;
        rpc_reply_free(&rep);
    } else if (rc == -EPROTO) {
        rpc_reply_free(&rep);
    }
    rpc_clnt_destroy(c);
    return rc;
}

static bool enc_raw(struct xdr_enc *x, const void *a)
{
    const struct nlm_cb_job *j = a;
    return xdr_enc_fixed(x, j->args, (uint32_t)j->len);
}

/* One attempt: >= 0 the client's answer (nlm4_stats for procedures with an nlm4_res,
 * 0 for void ones), < 0 no answer. In the version the client locked with: a v1/v3
 * lockd may not serve v4 at all (rpcbind then has no port for it). */
static int nlm_cb_try(struct nlm_cb_job *j)
{
    struct sockaddr_storage ss = j->peer;
    struct rpc_reply rep;
    int err = 0;

    int port = nlm_getport((struct sockaddr *)&j->peer, j->peer_len, NLM_PROG, j->vers, IPPROTO_TCP,
                           NLM_CB_TIMEOUT_MS);
    if (port < 0)
        return port;
    set_port(&ss, (uint16_t)port);
    struct rpc_clnt *c = rpc_clnt_connect((struct sockaddr *)&ss, j->peer_len, NLM_CB_TIMEOUT_MS, &err);
    if (!c)
        return err ? -abs(err) : -ECONNREFUSED;
    int rc = rpc_clnt_call(c, NLM_PROG, j->vers, j->proc, NULL, enc_raw, j, NLM_CB_TIMEOUT_MS, &rep);
    if (rc == 0) {
        nlm4_res res; /* an nlm1_res is the same on the wire, with fewer statuses */
        if (j->proc == NLMPROC4_GRANTED)
            rc = xdr_decode_nlm4_res(&rep.res, &res) ? (int)res.stat.stat : -EBADMSG;
        rpc_reply_free(&rep);
    } else if (rc == -EPROTO) {
        rpc_reply_free(&rep);
    }
    rpc_clnt_destroy(c);
    return rc;
}

static void *nlm_cb_thread(void *a)
{
    struct nlm_cb_job *j = a;
    struct nlm_service *s = j->s;
    int status = -1;

    for (unsigned i = 0; i < j->attempts; i++) {
        status = nlm_cb_try(j);
        if (status >= 0)
            break;
        log_info("nlm: callback %u to the client failed (%s), attempt %u", j->proc, strerror(-status), i + 1);
        pthread_mutex_lock(&s->mu);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += i < 3 ? 1 << i : 8;
        while (!s->stopping && pthread_cond_timedwait(&s->cv, &s->mu, &until) == 0)
            ;
        bool stop = s->stopping;
        pthread_mutex_unlock(&s->mu);
        if (stop)
            break;
    }
    if (j->done)
        j->done(s, j->arg, status < 0 ? -1 : status);
    free(j);
    pthread_mutex_lock(&s->mu);
    s->jobs--;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int nlm_callback(struct nlm_service *s, const struct sockaddr *peer, socklen_t peer_len, uint32_t vers,
                 uint32_t proc, const uint8_t *args, size_t len, unsigned attempts, nlm_cb_done_fn done,
                 void *arg)
{
    if (peer_len > sizeof(struct sockaddr_storage) || (len & 3))
        return -EINVAL;
    struct nlm_cb_job *j = calloc(1, sizeof(*j) + len);
    if (!j)
        return -ENOMEM;
    j->s = s;
    memcpy(&j->peer, peer, peer_len);
    j->peer_len = peer_len;
    j->vers = vers;
    j->proc = proc;
    j->attempts = attempts ? attempts : 1;
    j->done = done;
    j->arg = arg;
    j->len = len;
    memcpy(j->args, args, len);

    pthread_mutex_lock(&s->mu);
    if (s->stopping || !s->cfg.callbacks) {
        pthread_mutex_unlock(&s->mu);
        free(j);
        return -ESHUTDOWN;
    }
    s->jobs++;
    pthread_mutex_unlock(&s->mu);

    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    int rc = pthread_create(&t, &attr, nlm_cb_thread, j);
    pthread_attr_destroy(&attr);
    if (rc) {
        free(j);
        pthread_mutex_lock(&s->mu);
        s->jobs--;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        return -rc;
    }
    return 0;
}
