#include "rpc/clnt.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "rpc/record.h"
#include "util/log.h"

#define CLNT_BUF_SMALL (64 * 1024)
#define CLNT_BUF_LARGE ((1u << 20) + (64u << 10))
#define CLNT_MAX_REPLY ((4u << 20) + (64u << 10))
#define CLNT_TICK_MS 100 /* how often the reader looks for expired calls */

struct pending {
    struct pending *next;
    uint32_t xid;
    int64_t deadline_ms;
    rpc_clnt_done_fn done;
    void *arg;
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
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rpc_reply_free(struct rpc_reply *rep)
{
    if (rep && rep->buf) {
        free(rep->buf);
        rep->buf = NULL;
    }
}

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

static void deliver(struct rpc_clnt *c, const uint8_t *data, size_t len)
{
    struct rpc_reply rep = { 0 };
    if (!rpc_parse_reply(data, len, &rep.info)) {
        log_debug("rpc client: malformed reply dropped");
        return;
    }
    pthread_mutex_lock(&c->mu);
    struct pending *p = take_pending(c, rep.info.xid);
    pthread_mutex_unlock(&c->mu);
    if (!p) {
        log_debug("rpc client: reply with unknown xid %#x dropped", rep.info.xid);
        return;
    }
    /* the record buffer is shared by several replies: give each its own copy */
    rep.buf = malloc(len ? len : 1);
    if (!rep.buf) {
        p->done(p->arg, -ENOMEM, NULL);
        free(p);
        return;
    }
    memcpy(rep.buf, data, len);
    rep.len = len;
    xdr_dec_init(&rep.res, rep.buf + rep.info.results_off, len - rep.info.results_off, NULL);
    bool ok = rep.info.reply_stat == RPC_MSG_ACCEPTED && rep.info.accept_stat == RPC_SUCCESS;
    p->done(p->arg, ok ? 0 : -EPROTO, &rep);
    free(p);
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
        deliver(c, rec.data, rec.len);
        rbuf_put(rec.buf);
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
    close(c->fd);
    close(c->wake[0]);
    close(c->wake[1]);
    rec_reader_free(&c->rr);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->send_mu);
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

int rpc_clnt_call_async(struct rpc_clnt *c, uint32_t prog, uint32_t vers, uint32_t proc,
                        const struct rpc_cred *cred, rpc_xdr_enc_fn enc, const void *args,
                        int timeout_ms, rpc_clnt_done_fn done, void *arg)
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
    p->xid = c->next_xid++;
    p->deadline_ms = now_ms() + timeout_ms;
    p->done = done;
    p->arg = arg;
    p->next = c->pending;
    c->pending = p; /* registered before sending: the reply may come back at once */
    pthread_mutex_unlock(&c->mu);

    size_t len;
    uint8_t *buf = encode_call(p->xid, prog, vers, proc, cred, enc, args, &len);
    int err = buf ? 0 : (len ? -ENOMEM : -EMSGSIZE);
    if (buf) {
        pthread_mutex_lock(&c->send_mu);
        err = send_all(c->fd, buf, len);
        pthread_mutex_unlock(&c->send_mu);
        free(buf);
    }
    if (err) {
        pthread_mutex_lock(&c->mu);
        struct pending *mine = take_pending(c, p->xid);
        pthread_mutex_unlock(&c->mu);
        if (!mine)
            return 0; /* the reader already completed it (connection failure) */
        free(mine);
    }
    return err;
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
