#include "rpc/clnt.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "rpc/record.h"
#include "util/log.h"

#define CLNT_BUF_SMALL (64 * 1024)
#define CLNT_BUF_LARGE ((1u << 20) + (64u << 10))
#define CLNT_MAX_REPLY ((4u << 20) + (64u << 10))
#define CLNT_TICK_MS 100 /* how often the reader looks for expired calls */
#define CLNT_CB_WORKERS 2    /* threads running callback handlers (per client) */
#define CB_MAX_QUEUED 256    /* callback calls waiting for a worker; beyond: dropped */
#define CB_ARENA_SIZE (64 * 1024)

struct pending {
    struct pending *next;
    uint32_t xid;
    int64_t deadline_ms;
    rpc_clnt_done_fn done;
    void *arg;
};

/* A CALL from the server (back channel) waiting for a callback worker. */
struct cb_job {
    struct cb_job *next;
    struct rec_slice rec; /* holds a buffer reference */
};

struct rpc_clnt {
    int fd;
    pthread_t reader;
    pthread_mutex_t mu; /* pending list, xid, dead */
    pthread_mutex_t send_mu;
    struct pending *pending;
    uint32_t next_xid;
    bool dead;   /* the connection failed: new calls fail at once */
    int wake[2]; /* pipe: tells the reader to exit */
    struct rec_reader rr;
    struct sockaddr_storage peer; /* the server: call->peer of callback handlers */
    socklen_t peer_len;
    /* Callback service. Handlers run on cb workers, never on the reader, so one may make
     * a blocking forward call on this client: the reader keeps delivering replies. */
    pthread_mutex_t cb_mu; /* guards the fields below */
    pthread_cond_t cb_cv;
    const struct rpc_program_desc *cb_prog; /* NULL: every call gets PROG_UNAVAIL */
    void *cb_ctx;
    struct cb_job *cb_head, *cb_tail;
    unsigned cb_queued;
    unsigned cb_nthreads; /* workers started (lazily) */
    bool cb_stop;
    pthread_t cb_threads[CLNT_CB_WORKERS];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rpc_reply_free(struct rpc_reply *rep)
{
    if (!rep)
        return;
    if (rep->rb)
        rbuf_put(rep->rb);
    else
        free(rep->buf);
    rep->rb = NULL;
    rep->buf = NULL;
}

/* Unlink the call with this xid (caller holds mu). */
static struct pending *take_pending(struct rpc_clnt *c, uint32_t xid)
{
    for (struct pending **pp = &c->pending; *pp; pp = &(*pp)->next) {
        if ((*pp)->xid == xid) {
            struct pending *p = *pp;
            *pp = p->next;
            return p;
        }
    }
    return NULL;
}

/* Complete every pending call matching `pred` with `status`. */
static void fail_pending(struct rpc_clnt *c, int status, bool only_expired)
{
    int64_t now = now_ms();
    struct pending *done = NULL;
    pthread_mutex_lock(&c->mu);
    for (struct pending **pp = &c->pending; *pp;) {
        struct pending *p = *pp;
        if (only_expired && p->deadline_ms > now) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        p->next = done;
        done = p;
    }
    pthread_mutex_unlock(&c->mu);
    for (struct pending *p = done, *next; p; p = next) {
        next = p->next;
        p->done(p->arg, status, NULL);
        free(p);
    }
}

/* Complete the call a reply record answers; takes the record's buffer reference. The
 * reply is not copied: it keeps the (shared, refcounted) receive buffer alive until
 * rpc_reply_free, so a 1 MiB READ is decoded where the socket read put it. */
static void deliver(struct rpc_clnt *c, struct rec_slice *rec)
{
    struct rpc_reply rep = { 0 };
    if (!rpc_parse_reply(rec->data, rec->len, &rep.info)) {
        log_debug("rpc client: malformed reply dropped");
        rbuf_put(rec->buf);
        return;
    }
    pthread_mutex_lock(&c->mu);
    struct pending *p = take_pending(c, rep.info.xid);
    pthread_mutex_unlock(&c->mu);
    if (!p) {
        log_debug("rpc client: reply with unknown xid %#x dropped", rep.info.xid);
        rbuf_put(rec->buf);
        return;
    }
    rep.buf = rec->data;
    rep.rb = rec->buf;
    rep.len = rec->len;
    xdr_dec_init(&rep.res, rep.buf + rep.info.results_off, rep.len - rep.info.results_off,
                 NULL);
    bool ok = rep.info.reply_stat == RPC_MSG_ACCEPTED && rep.info.accept_stat == RPC_SUCCESS;
    p->done(p->arg, ok ? 0 : -EPROTO, &rep);
    free(p);
}

/* ---------- callback service: calls from the server on this connection ---------- */

/* Per worker: where arguments are decoded and results encoded. */
struct cb_worker {
    struct rpc_clnt *c;
    int index;
    uint8_t *reply; /* CLNT_BUF_LARGE: untouched pages cost nothing */
    uint8_t *arena;
};

static int send_all(int fd, const uint8_t *p, size_t len);

/* Version lookup and the reply for a call that reaches no handler; 0 when it does. */
static uint32_t cb_check(const struct rpc_program_desc *prog, const struct rpc_call_hdr *h,
                         const struct rpc_cred *cred, const struct rpc_proc_desc **proc,
                         enum rpc_parse_result *pr)
{
    if (!prog || prog->prog != h->prog)
        return RPC_PROG_UNAVAIL;
    const struct rpc_version_desc *v = NULL;
    for (uint32_t i = 0; i < prog->nvers && !v; i++)
        if (prog->versions[i].vers == h->vers)
            v = &prog->versions[i];
    if (!v)
        return RPC_PROG_MISMATCH;
    if (h->proc >= v->nprocs || !v->procs[h->proc].fn)
        return RPC_PROC_UNAVAIL;
    *proc = &v->procs[h->proc];
    if (((*proc)->flags & RPC_PROC_NEED_AUTH_SYS) && cred->flavor != RPC_AUTH_SYS)
        *pr = RPC_PARSE_AUTH_ERROR;
    return RPC_SUCCESS;
}

static void prog_range(const struct rpc_program_desc *prog, uint32_t *low, uint32_t *high)
{
    *low = UINT32_MAX;
    *high = 0;
    for (uint32_t i = 0; i < prog->nvers; i++) {
        uint32_t v = prog->versions[i].vers;
        *low = v < *low ? v : *low;
        *high = v > *high ? v : *high;
    }
}

/* Encode the answer to one CALL into w->reply after its record mark, running the
 * handler when the call reaches one. Returns the record length, 0 for no reply. */
static size_t cb_answer(struct cb_worker *w, const struct rec_slice *rec, uint32_t *xid)
{
    struct rpc_clnt *c = w->c;
    struct rpc_call_hdr h;
    struct rpc_call call = { .peer = (const struct sockaddr *)&c->peer,
                             .peer_len = c->peer_len, .worker = w->index };
    enum rpc_parse_result pr = rpc_parse_call(rec->data, rec->len, &h, &call.cred);
    if (pr == RPC_PARSE_DROP || pr == RPC_PARSE_REPLY)
        return 0;
    *xid = h.xid;
    pthread_mutex_lock(&c->cb_mu); /* set once, but maybe after this call arrived */
    const struct rpc_program_desc *prog = c->cb_prog;
    call.prog_ctx = c->cb_ctx;
    pthread_mutex_unlock(&c->cb_mu);

    const struct rpc_proc_desc *proc = NULL;
    uint32_t stat = pr == RPC_PARSE_CALL ? cb_check(prog, &h, &call.cred, &proc, &pr) : 0;
    struct xdr_enc out;
    xdr_enc_init(&out, w->reply + 4, CLNT_BUF_LARGE - 4);
    if (pr == RPC_PARSE_RPC_MISMATCH) {
        rpc_enc_rpc_mismatch(&out, h.xid);
    } else if (pr == RPC_PARSE_AUTH_ERROR) {
        rpc_enc_auth_error(&out, h.xid, proc ? RPC_AUTH_TOOWEAK_STAT : h.auth_stat);
    } else if (stat == RPC_PROG_MISMATCH) {
        uint32_t low, high;
        prog_range(prog, &low, &high);
        rpc_enc_prog_mismatch(&out, h.xid, low, high);
    } else if (stat != RPC_SUCCESS) {
        rpc_enc_accepted(&out, h.xid, stat);
    } else {
        const size_t hdr = 4 + RPC_ACCEPTED_HDR_LEN;
        struct xdr_arena arena;
        xdr_arena_init(&arena, w->arena, CB_ARENA_SIZE);
        call.xid = h.xid;
        call.prog = h.prog;
        call.vers = h.vers;
        call.proc = h.proc;
        xdr_dec_init(&call.args, rec->data + h.args_off, rec->len - h.args_off, &arena);
        xdr_enc_init(&call.res, w->reply + hdr, CLNT_BUF_LARGE - hdr);
        enum rpc_accept_status st = proc->fn(&call);
        if (st == RPC_NO_REPLY || st == RPC_DEFERRED) /* nothing to defer to: no reply */
            return 0;
        if (st == RPC_AUTH_TOOWEAK) {
            rpc_enc_auth_error(&out, h.xid, RPC_AUTH_TOOWEAK_STAT);
        } else {
            rpc_enc_accepted(&out, h.xid, st);
            if (st == RPC_SUCCESS)
                return hdr + xdr_enc_len(&call.res);
        }
    }
    return 4 + xdr_enc_len(&out);
}

static void cb_execute(struct cb_worker *w, const struct rec_slice *rec)
{
    struct rpc_clnt *c = w->c;
    uint32_t xid = 0;
    size_t len = cb_answer(w, rec, &xid);
    if (!len)
        return;
    xdr_put_be32(w->reply, REC_LAST_FRAG | (uint32_t)(len - 4));
    pthread_mutex_lock(&c->send_mu); /* whole records: forward calls take it too */
    int err = send_all(c->fd, w->reply, len);
    pthread_mutex_unlock(&c->send_mu);
    if (err)
        log_debug("rpc client: callback reply xid %#x not sent: %s", xid, strerror(-err));
}

static void *cb_worker_main(void *arg)
{
    struct cb_worker *w = arg;
    struct rpc_clnt *c = w->c;
    for (;;) {
        pthread_mutex_lock(&c->cb_mu);
        while (!c->cb_head && !c->cb_stop)
            pthread_cond_wait(&c->cb_cv, &c->cb_mu);
        struct cb_job *j = c->cb_stop ? NULL : c->cb_head;
        if (j) {
            c->cb_head = j->next;
            if (!c->cb_head)
                c->cb_tail = NULL;
            c->cb_queued--;
        }
        pthread_mutex_unlock(&c->cb_mu);
        if (!j)
            break;
        cb_execute(w, &j->rec);
        rbuf_put(j->rec.buf);
        free(j);
    }
    free(w->reply);
    free(w->arena);
    free(w);
    return NULL;
}

/* Start the workers once (caller holds cb_mu); 0 or -errno. */
static int cb_start_locked(struct rpc_clnt *c)
{
    while (c->cb_nthreads < CLNT_CB_WORKERS) {
        struct cb_worker *w = calloc(1, sizeof(*w));
        if (w) {
            w->c = c;
            w->index = (int)c->cb_nthreads;
            w->reply = malloc(CLNT_BUF_LARGE);
            w->arena = malloc(CB_ARENA_SIZE);
        }
        int e = (w && w->reply && w->arena) ? 0 : ENOMEM;
        if (!e)
            e = pthread_create(&c->cb_threads[c->cb_nthreads], NULL, cb_worker_main, w);
        if (e) {
            if (w) {
                free(w->reply);
                free(w->arena);
                free(w);
            }
            return c->cb_nthreads ? 0 : -e; /* fewer workers still serve */
        }
        c->cb_nthreads++;
    }
    return 0;
}

/* On the reader thread: queue a CALL for the workers (takes the record's reference). */
static void cb_enqueue(struct rpc_clnt *c, struct rec_slice *rec)
{
    struct cb_job *j = malloc(sizeof(*j));
    pthread_mutex_lock(&c->cb_mu);
    bool ok = j && cb_start_locked(c) == 0 && c->cb_queued < CB_MAX_QUEUED;
    if (ok) {
        j->next = NULL;
        j->rec = *rec;
        if (c->cb_tail)
            c->cb_tail->next = j;
        else
            c->cb_head = j;
        c->cb_tail = j;
        c->cb_queued++;
        pthread_cond_signal(&c->cb_cv);
    }
    pthread_mutex_unlock(&c->cb_mu);
    if (!ok) { /* the server times the call out or retries */
        log_debug("rpc client: callback call dropped (no memory or too many queued)");
        rbuf_put(rec->buf);
        free(j);
    }
}

int rpc_clnt_set_callback_program(struct rpc_clnt *c, const struct rpc_program_desc *prog,
                                  void *ctx)
{
    if (!prog)
        return -EINVAL;
    pthread_mutex_lock(&c->cb_mu);
    int err = c->cb_prog ? -EBUSY : cb_start_locked(c);
    if (!err) {
        c->cb_prog = prog;
        c->cb_ctx = ctx;
    }
    pthread_mutex_unlock(&c->cb_mu);
    return err;
}

/* After the reader exited (nothing is queued any more): stop the workers. A handler
 * blocked in a forward call was released when the reader failed the pending calls. */
static void cb_stop(struct rpc_clnt *c)
{
    pthread_mutex_lock(&c->cb_mu);
    c->cb_stop = true;
    pthread_cond_broadcast(&c->cb_cv);
    pthread_mutex_unlock(&c->cb_mu);
    for (unsigned i = 0; i < c->cb_nthreads; i++)
        pthread_join(c->cb_threads[i], NULL);
    for (struct cb_job *j = c->cb_head, *next; j; j = next) {
        next = j->next;
        rbuf_put(j->rec.buf);
        free(j);
    }
    c->cb_head = c->cb_tail = NULL;
}

/* Read what is available; false when the connection is finished. */
static bool read_replies(struct rpc_clnt *c)
{
    size_t avail;
    uint8_t *space = rec_reader_space(&c->rr, &avail);
    if (!space)
        return false;
    ssize_t n = read(c->fd, space, avail);
    if (n <= 0)
        return n < 0 && (errno == EINTR || errno == EAGAIN);
    rec_reader_filled(&c->rr, (size_t)n);
    struct rec_slice rec;
    enum rec_status st;
    while ((st = rec_reader_next(&c->rr, &rec)) == REC_OK) {
        /* RFC 5531 mtype: the server may call us on this connection (back channel) */
        if (rec.len >= 8 && xdr_get_be32(rec.data + 4) == RPC_CALL) {
            cb_enqueue(c, &rec);
            continue;
        }
        deliver(c, &rec);
    }
    return st != REC_TOO_BIG;
}

static void *reader_main(void *arg)
{
    struct rpc_clnt *c = arg;
    struct pollfd pfd[2] = { { .fd = c->fd, .events = POLLIN }, { .fd = c->wake[0], .events = POLLIN } };
    for (;;) {
        int n = poll(pfd, 2, CLNT_TICK_MS);
        if (n < 0 && errno != EINTR)
            break;
        if (pfd[1].revents)
            break;
        if ((pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) && !read_replies(c))
            break;
        fail_pending(c, -ETIMEDOUT, true);
    }
    pthread_mutex_lock(&c->mu);
    c->dead = true;
    pthread_mutex_unlock(&c->mu);
    fail_pending(c, -ECONNRESET, false);
    return NULL;
}

static struct rpc_clnt *clnt_start(int fd, int *err)
{
    struct rpc_clnt *c = calloc(1, sizeof(*c));
    if (!c || pipe2(c->wake, O_CLOEXEC) < 0) {
        *err = -ENOMEM;
        free(c);
        close(fd);
        return NULL;
    }
    c->fd = fd;
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->send_mu, NULL);
    pthread_mutex_init(&c->cb_mu, NULL);
    pthread_cond_init(&c->cb_cv, NULL);
    c->peer_len = sizeof(c->peer);
    if (getpeername(fd, (struct sockaddr *)&c->peer, &c->peer_len) < 0)
        c->peer_len = 0;
    if (c->peer_len && c->peer.ss_family != AF_UNIX) {
        /* each call goes out in one send: Nagle would only hold back the tail of one
         * behind the ACK of the previous (a small READ call behind a big WRITE) */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    rec_reader_init(&c->rr, CLNT_MAX_REPLY);
    if (getrandom(&c->next_xid, sizeof(c->next_xid), 0) != sizeof(c->next_xid))
        c->next_xid = (uint32_t)now_ms();
    int e = pthread_create(&c->reader, NULL, reader_main, c);
    if (e) {
        *err = -e;
        close(c->wake[0]);
        close(c->wake[1]);
        close(fd);
        free(c);
        return NULL;
    }
    return c;
}

struct rpc_clnt *rpc_clnt_connect(const struct sockaddr *sa, socklen_t len, int timeout_ms, int *err)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        *err = -errno;
        return NULL;
    }
    if (connect(fd, sa, len) < 0) {
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (errno != EINPROGRESS || poll(&p, 1, timeout_ms) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
            *err = soerr ? -soerr : -ETIMEDOUT;
            close(fd);
            return NULL;
        }
    }
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK); /* the reader polls; sends may block briefly */
    return clnt_start(fd, err);
}

struct rpc_clnt *rpc_clnt_connect_fd(int fd, int *err)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) {
        *err = -errno;
        close(fd);
        return NULL;
    }
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK); /* the reader polls; sends may block briefly */
    return clnt_start(fd, err);
}

struct rpc_clnt *rpc_clnt_connect_unix(const char *path, int *err)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sun.sun_path)) {
        *err = -ENAMETOOLONG;
        return NULL;
    }
    strcpy(sun.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        *err = -errno;
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    return clnt_start(fd, err);
}

void rpc_clnt_destroy(struct rpc_clnt *c)
{
    if (!c)
        return;
    char b = 1;
    ssize_t n = write(c->wake[1], &b, 1);
    (void)n;
    pthread_join(c->reader, NULL); /* fails what is still pending */
    shutdown(c->fd, SHUT_RDWR);    /* a callback worker blocked sending gives up */
    cb_stop(c);
    close(c->fd);
    close(c->wake[0]);
    close(c->wake[1]);
    rec_reader_free(&c->rr);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->send_mu);
    pthread_mutex_destroy(&c->cb_mu);
    pthread_cond_destroy(&c->cb_cv);
    free(c);
}

static int send_all(int fd, const uint8_t *p, size_t len)
{
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Encode header + args into a fresh buffer (small first, large if needed). */
static uint8_t *encode_call(uint32_t xid, uint32_t prog, uint32_t vers, uint32_t proc,
                            const struct rpc_cred *cred, rpc_xdr_enc_fn enc, const void *args,
                            size_t *len)
{
    size_t sizes[2] = { CLNT_BUF_SMALL, CLNT_BUF_LARGE };
    for (int i = 0; i < 2; i++) {
        uint8_t *buf = malloc(sizes[i]);
        if (!buf)
            return NULL;
        struct xdr_enc x;
        xdr_enc_init(&x, buf + 4, sizes[i] - 4);
        if (rpc_enc_call(&x, xid, prog, vers, proc, cred) && (!enc || enc(&x, args))) {
            *len = 4 + xdr_enc_len(&x);
            xdr_put_be32(buf, REC_LAST_FRAG | (uint32_t)(*len - 4));
            return buf;
        }
        free(buf);
    }
    *len = 0;
    return NULL;
}

/* Register a call before it is sent (its reply may come back at once). 0 and *xid, or
 * -ENOMEM / -ECONNRESET. From then on the pending entry is the reader's: a dying
 * connection completes and frees it. */
static int pending_add(struct rpc_clnt *c, int timeout_ms, rpc_clnt_done_fn done, void *arg,
                       uint32_t *xid)
{
    struct pending *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    pthread_mutex_lock(&c->mu);
    if (c->dead) {
        pthread_mutex_unlock(&c->mu);
        free(p);
        return -ECONNRESET;
    }
    *xid = p->xid = c->next_xid++;
    p->deadline_ms = now_ms() + timeout_ms;
    p->done = done;
    p->arg = arg;
    p->next = c->pending;
    c->pending = p;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

/* The call could not be sent: withdraw it, unless the reader already completed it
 * (connection failure), in which case its completion has run and 0 is returned. */
static int pending_withdraw(struct rpc_clnt *c, uint32_t xid, int err)
{
    pthread_mutex_lock(&c->mu);
    struct pending *mine = take_pending(c, xid);
    pthread_mutex_unlock(&c->mu);
    if (!mine)
        return 0;
    free(mine);
    return err;
}

int rpc_clnt_call_async(struct rpc_clnt *c, uint32_t prog, uint32_t vers, uint32_t proc,
                        const struct rpc_cred *cred, rpc_xdr_enc_fn enc, const void *args,
                        int timeout_ms, rpc_clnt_done_fn done, void *arg)
{
    uint32_t xid;
    int err = pending_add(c, timeout_ms, done, arg, &xid);
    if (err)
        return err;
    size_t len;
    uint8_t *buf = encode_call(xid, prog, vers, proc, cred, enc, args, &len);
    err = buf ? 0 : (len ? -ENOMEM : -EMSGSIZE);
    if (buf) {
        pthread_mutex_lock(&c->send_mu);
        err = send_all(c->fd, buf, len);
        pthread_mutex_unlock(&c->send_mu);
        free(buf);
    }
    return err ? pending_withdraw(c, xid, err) : 0;
}

/* sendmsg until every byte of iov[0..n) is out (iov is consumed). */
static int send_iov(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)n };
        ssize_t sent = sendmsg(fd, &m, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        while (n > 0 && (size_t)sent >= iov->iov_len) {
            sent -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + sent;
            iov->iov_len -= (size_t)sent;
        }
    }
    return 0;
}

int rpc_clnt_call_async_payload(struct rpc_clnt *c, uint32_t prog, uint32_t vers,
                                uint32_t proc, const struct rpc_cred *cred, rpc_xdr_enc_fn enc,
                                const void *args, const void *payload, uint32_t payload_len,
                                int timeout_ms, rpc_clnt_done_fn done, void *arg)
{
    static const uint8_t zeros[4];
    uint32_t pad = (4 - (payload_len & 3)) & 3;
    if (payload_len > CLNT_MAX_REPLY) /* the server takes no bigger record either */
        return -EMSGSIZE;
    uint32_t xid;
    int err = pending_add(c, timeout_ms, done, arg, &xid);
    if (err)
        return err;
    size_t len;
    uint8_t *buf = encode_call(xid, prog, vers, proc, cred, enc, args, &len);
    err = buf ? 0 : (len ? -ENOMEM : -EMSGSIZE);
    /* the last word encoded is the empty opaque's length: it becomes payload_len */
    if (buf && (len < 8 || xdr_get_be32(buf + len - 4) != 0))
        err = -EINVAL;
    if (!err) {
        size_t total = len + payload_len + pad;
        xdr_put_be32(buf, REC_LAST_FRAG | (uint32_t)(total - 4));
        xdr_put_be32(buf + len - 4, payload_len);
        struct iovec iov[3] = { { buf, len }, { (void *)payload, payload_len },
                                { (void *)zeros, pad } };
        pthread_mutex_lock(&c->send_mu);
        err = send_iov(c->fd, iov, pad ? 3 : 2);
        pthread_mutex_unlock(&c->send_mu);
    }
    free(buf);
    return err ? pending_withdraw(c, xid, err) : 0;
}

struct sync_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool finished;
    int status;
    struct rpc_reply *rep;
};

static void sync_done(void *arg, int status, struct rpc_reply *rep)
{
    struct sync_wait *w = arg;
    pthread_mutex_lock(&w->mu);
    w->status = status;
    if (rep)
        *w->rep = *rep;
    w->finished = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int rpc_clnt_call(struct rpc_clnt *c, uint32_t prog, uint32_t vers, uint32_t proc,
                  const struct rpc_cred *cred, rpc_xdr_enc_fn enc, const void *args,
                  int timeout_ms, struct rpc_reply *rep)
{
    struct sync_wait w = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .rep = rep };
    memset(rep, 0, sizeof(*rep));
    int err = rpc_clnt_call_async(c, prog, vers, proc, cred, enc, args, timeout_ms, sync_done, &w);
    if (err)
        return err;
    pthread_mutex_lock(&w.mu);
    while (!w.finished)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    return w.status;
}
