/*
 * client/: nfs_read_range against a scripted server (an ops vector whose READs are
 * answered by another thread, in a shuffled order, often short), no network:
 *  - an in-order sink gets every byte once, in file order, on the calling thread;
 *  - an any-order sink (nfs_xfer_opts.sink_any_order) gets every byte once too, whole
 *    chunks as their replies arrive (on the answering thread) and the pieces of short
 *    replies assembled; the range ends at EOF; *done_bytes is the file size;
 *  - a sink failure on either path stops the transfer with the sink's status;
 *  - a server error stops it with that error.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "client/nfs_client_impl.h"

#define CHUNK (64u << 10)
#define FILE_SIZE (5u * (1u << 20) + 123u)
#define MAX_QUEUED 64

static uint8_t file_data[FILE_SIZE];

/* ---- the scripted server ---- */

struct fake_req {
    uint64_t off;
    uint32_t count;
    struct nfs_read_ref *ref;
    nfs_io_done_fn done;
    void *arg;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct fake_req q[MAX_QUEUED];
    unsigned n;
    bool stop;
    uint32_t rng;
    int fail_at_call; /* answer this call (1-based) with an error; 0: never */
    unsigned calls, short_replies;
} srv = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static uint32_t next_rand(void)
{
    srv.rng = srv.rng * 1103515245u + 12345u;
    return srv.rng >> 8;
}

/* Answer one queued request, picked at random; about a third come back short. */
static void answer(struct fake_req r, uint32_t pick, bool fail)
{
    struct nfs_io_result res = { 0 };
    if (fail) {
        r.done(r.arg, 5 /* NFS3ERR_IO */, NULL);
        return;
    }
    uint64_t left = r.off >= FILE_SIZE ? 0 : FILE_SIZE - r.off;
    uint32_t n = r.count < left ? r.count : (uint32_t)left;
    if (n > 1 && pick % 3 == 0) {
        n = 1 + pick % (n - 1);
        srv.short_replies++;
    }
    res.count = n;
    res.eof = r.off + n >= FILE_SIZE;
    /* as a real reply: data points into a buffer the reference keeps (rpc_reply_free
     * frees a buffer without rb); the bytes themselves come from the model file */
    r.ref->data = file_data + (r.off < FILE_SIZE ? r.off : 0);
    r.ref->hold = (struct rpc_reply){ .buf = malloc(1), .len = 1 };
    r.done(r.arg, 0, &res);
}

static void *server_main(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&srv.mu);
    for (;;) {
        while (!srv.n && !srv.stop)
            pthread_cond_wait(&srv.cv, &srv.mu);
        if (!srv.n)
            break;
        uint32_t pick = next_rand();
        unsigned i = pick % srv.n;
        struct fake_req r = srv.q[i];
        srv.q[i] = srv.q[--srv.n];
        bool fail = (int)++srv.calls == srv.fail_at_call;
        pthread_mutex_unlock(&srv.mu);
        answer(r, next_rand(), fail);
        pthread_mutex_lock(&srv.mu);
    }
    pthread_mutex_unlock(&srv.mu);
    return NULL;
}

static int fake_read_ref(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off,
                         uint32_t count, struct nfs_read_ref *ref, nfs_io_done_fn done,
                         void *arg)
{
    (void)c;
    (void)fh;
    pthread_mutex_lock(&srv.mu);
    CHECK(srv.n < MAX_QUEUED);
    CHECK(count <= CHUNK);
    srv.q[srv.n++] = (struct fake_req){ off, count, ref, done, arg };
    pthread_cond_signal(&srv.cv);
    pthread_mutex_unlock(&srv.mu);
    return 0;
}

static const struct nfs_client_ops fake_ops = { .name = "fake", .read_async_ref = fake_read_ref };

/* ---- sinks ---- */

struct sink {
    pthread_mutex_t mu;
    uint8_t *out;
    uint8_t *times; /* how often each byte was delivered */
    uint64_t next;  /* in-order sink: the offset expected next */
    pthread_t caller;
    unsigned off_thread, calls;
    uint64_t fail_from; /* a call reaching past this fails with -ENOSPC */
};

static int sink_store(struct sink *k, uint64_t off, const void *data, size_t len)
{
    pthread_mutex_lock(&k->mu);
    k->calls++;
    if (!pthread_equal(pthread_self(), k->caller))
        k->off_thread++;
    int st = 0;
    if (off + len > k->fail_from) {
        st = -ENOSPC;
    } else {
        CHECK(off + len <= FILE_SIZE);
        if (off + len <= FILE_SIZE) {
            memcpy(k->out + off, data, len);
            for (size_t i = 0; i < len; i++)
                k->times[off + i]++;
        }
    }
    pthread_mutex_unlock(&k->mu);
    return st;
}

static int ordered_sink(void *arg, uint64_t off, const void *data, size_t len)
{
    struct sink *k = arg;
    CHECK_EQ(off, k->next);
    k->next = off + len;
    return sink_store(k, off, data, len);
}

static int any_order_sink(void *arg, uint64_t off, const void *data, size_t len)
{
    return sink_store(arg, off, data, len);
}

static void sink_init(struct sink *k)
{
    memset(k, 0, sizeof(*k));
    pthread_mutex_init(&k->mu, NULL);
    k->out = calloc(1, FILE_SIZE);
    k->times = calloc(1, FILE_SIZE);
    k->caller = pthread_self();
    k->fail_from = UINT64_MAX;
}

static void sink_free(struct sink *k)
{
    free(k->out);
    free(k->times);
    pthread_mutex_destroy(&k->mu);
}

/* Every byte delivered exactly once, with the file's contents. */
static void check_whole_file(const struct sink *k)
{
    unsigned bad = 0;
    for (size_t i = 0; i < FILE_SIZE; i++)
        bad += k->times[i] != 1;
    CHECK_EQ(bad, 0);
    CHECK(memcmp(k->out, file_data, FILE_SIZE) == 0);
}

/* ---- tests ---- */

/* nfs_read_range of [0, len) through a fake client into k. */
static int read_into(struct sink *k, bool any_order, int window, uint64_t len, uint64_t *done)
{
    struct nfs_client c = { .ops = &fake_ops, .rsize = CHUNK, .window = 8 };
    struct nfs_fh fh = { 0 };
    struct nfs_xfer_opts o = { .window = window, .sink_any_order = any_order };
    *done = 0;
    return nfs_read_range(&c, &fh, 0, len, any_order ? any_order_sink : ordered_sink, k, &o,
                          done);
}

static void test_read_range(bool any_order, uint32_t seed)
{
    struct sink k;
    sink_init(&k);
    srv.rng = seed;
    srv.short_replies = 0;
    uint64_t done;
    /* ask past the end: the range stops at EOF */
    CHECK_EQ(read_into(&k, any_order, 8, FILE_SIZE + 3 * CHUNK, &done), 0);
    CHECK_EQ(done, FILE_SIZE);
    check_whole_file(&k);
    CHECK(srv.short_replies > 0); /* the reassembly path ran too */
    if (any_order)
        CHECK(k.off_thread > 0); /* whole chunks went out from the answering thread */
    else
        CHECK_EQ(k.off_thread, 0);
    sink_free(&k);
}

static void test_sink_failure(bool any_order)
{
    struct sink k;
    sink_init(&k);
    srv.rng = 7;
    k.fail_from = 2u << 20;
    uint64_t done;
    CHECK_EQ(read_into(&k, any_order, 4, FILE_SIZE, &done), -ENOSPC);
    CHECK(done <= k.fail_from);
    sink_free(&k);
}

static void test_server_error(bool any_order)
{
    struct sink k;
    sink_init(&k);
    srv.rng = 11;
    pthread_mutex_lock(&srv.mu);
    srv.calls = 0;
    srv.fail_at_call = 20;
    pthread_mutex_unlock(&srv.mu);
    uint64_t done;
    CHECK_EQ(read_into(&k, any_order, 8, FILE_SIZE, &done), 5);
    CHECK(done < FILE_SIZE);
    pthread_mutex_lock(&srv.mu);
    srv.fail_at_call = 0;
    pthread_mutex_unlock(&srv.mu);
    sink_free(&k);
}

int main(void)
{
    for (size_t i = 0; i < FILE_SIZE; i++)
        file_data[i] = (uint8_t)(i * 2654435761u >> 13);
    pthread_t server;
    if (pthread_create(&server, NULL, server_main, NULL))
        return 1;
    for (uint32_t seed = 1; seed <= 4; seed++) {
        test_read_range(false, seed);
        test_read_range(true, seed);
    }
    test_sink_failure(false);
    test_sink_failure(true);
    test_server_error(false);
    test_server_error(true);
    pthread_mutex_lock(&srv.mu);
    srv.stop = true;
    pthread_cond_signal(&srv.cv);
    pthread_mutex_unlock(&srv.mu);
    pthread_join(server, NULL);
    return check_report("test_client_xfer");
}
