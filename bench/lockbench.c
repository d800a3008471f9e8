/*
 * peernfs-lockbench: NLM v4 lock throughput of an NFSv3 server (nfsbench has no lock
 * workload). CONNS threads, each with its own peernfs client (own TCP connections, own
 * NLM owner handle and svid), loop LOCK (exclusive, non-blocking) + UNLOCK of a 4 KiB
 * range [i * 4096, 4096) that no other thread uses, so no request ever conflicts: the
 * rate measures the server's lock bookkeeping, not contention.
 *
 *   peernfs-lockbench [-c CONNS] [-d SECS] [-r BYTES] [-P PID] nfs://host/export/file?vers=3
 *
 * The file must exist. One line of key=value goes to stdout, shaped like nfsbench's
 * (bench/run.py parses both the same way): "op" = one LOCK + UNLOCK pair, latency = the
 * pair's, from issuing LOCK to UNLOCK's reply. Non-blocking locks only: the library runs
 * no lockd, so the server never has to call back (NLM_GRANTED).
 *
 * -a (anchor): each connection also holds one lock, far from the timed ranges, from before
 * the timed phase to its end. Then the client never drops to zero locks, and a server that
 * stops monitoring a host (NSM SM_UNMON) when its last lock goes, and monitors it again
 * (SM_MON, a synchronous call to rpc.statd, which writes a file) on the next lock, as
 * NFS-Ganesha does, pays that once instead of on every pair.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "client/nfs_client.h"

#define LAT_CHUNK 65536u
#define ANCHOR_BASE (1ull << 40) /* anchor locks start here, beyond any timed range */

struct lb_config {
    int conns;
    double secs;
    uint64_t range; /* bytes per thread's lock */
    int server_pid; /* 0: no server_cpu_s */
    bool anchor;    /* -a: hold one lock per connection through the run */
    const char *url;
};

/* One worker: its client, its latencies (ns, grown in chunks), its counts. */
struct lb_worker {
    pthread_t thread;
    int index;
    const struct lb_config *cfg;
    struct nfs_client *client;
    struct nfs_file file;
    uint64_t *lat;
    size_t nlat, cap;
    uint64_t pairs, errors;
    int last_error;
};

/* Workers connect first, then wait here, so connection set-up is not timed. */
static pthread_barrier_t start_barrier;
static atomic_bool stop_issue;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double self_cpu_secs(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* CPU seconds of a process (all threads) or, pid 0, busy CPU seconds of the whole host,
 * as nfsbench counts them (so host - server - client = everyone else); -1 if unknown. */
static double proc_cpu_secs(int pid)
{
    char path[64], line[1024];
    unsigned long long v[8] = { 0 };
    double tck = (double)sysconf(_SC_CLK_TCK);
    snprintf(path, sizeof(path), pid ? "/proc/%d/stat" : "/proc/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char *p = fgets(line, sizeof(line), f);
    fclose(f);
    if (!p)
        return -1;
    if (!pid) {
        if (sscanf(line, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]) != 8)
            return -1;
        return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / tck;
    }
    if (!(p = strrchr(line, ')')) ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &v[0], &v[1]) != 2)
        return -1;
    return (double)(v[0] + v[1]) / tck;
}

static bool lat_push(struct lb_worker *w, uint64_t ns)
{
    if (w->nlat == w->cap) {
        size_t cap = w->cap + LAT_CHUNK;
        uint64_t *lat = realloc(w->lat, cap * sizeof(*lat));
        if (!lat)
            return false;
        w->lat = lat;
        w->cap = cap;
    }
    w->lat[w->nlat++] = ns;
    return true;
}

/* One LOCK + UNLOCK of the worker's own range. 0, or the failing call's status. */
static int lock_pair(struct lb_worker *w)
{
    uint64_t off = (uint64_t)w->index * w->cfg->range;
    int st = nfs_lock(w->client, &w->file, NFS_LOCK_WRITE, off, w->cfg->range, false);
    if (st)
        return st;
    return nfs_unlock(w->client, &w->file, off, w->cfg->range);
}

static void *worker_main(void *arg)
{
    struct lb_worker *w = arg;
    pthread_barrier_wait(&start_barrier);
    while (!atomic_load_explicit(&stop_issue, memory_order_relaxed)) {
        uint64_t t0 = now_ns();
        int st = lock_pair(w);
        if (st) {
            w->errors++;
            w->last_error = st;
            /* a transport failure repeats at once: do not spin on it */
            if (st < 0 && st != -EAGAIN)
                break;
            continue;
        }
        if (!lat_push(w, now_ns() - t0)) {
            w->last_error = -ENOMEM;
            w->errors++;
            break;
        }
        w->pairs++;
    }
    return NULL;
}

static uint64_t anchor_offset(const struct lb_worker *w)
{
    return ANCHOR_BASE + (uint64_t)w->index * w->cfg->range;
}

/* Connect, open the file, take the anchor lock: the untimed set-up of one worker. */
static int worker_connect(struct lb_worker *w)
{
    char err[256] = "";
    int st = 0;
    w->client = nfs_client_connect(w->cfg->url, &st, err, sizeof(err));
    if (!w->client) {
        fprintf(stderr, "peernfs-lockbench: connection %d: %s\n", w->index,
                err[0] ? err : nfs_client_strerror(st));
        return -1;
    }
    if (nfs_client_version(w->client) != 3)
        fprintf(stderr, "peernfs-lockbench: warning: not NFSv3, this measures NFSv4 LOCK/LOCKU\n");
    st = nfs_open(w->client, nfs_client_url_rest(w->client), 0, 0, &w->file);
    if (st) {
        fprintf(stderr, "peernfs-lockbench: open %s: %s\n", w->cfg->url, nfs_client_strerror(st));
        return -1;
    }
    if (w->cfg->anchor) {
        st = nfs_lock(w->client, &w->file, NFS_LOCK_WRITE, anchor_offset(w), w->cfg->range, false);
        if (st) {
            fprintf(stderr, "peernfs-lockbench: anchor lock: %s\n", nfs_client_strerror(st));
            return -1;
        }
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double percentile_us(const uint64_t *sorted, size_t n, double p)
{
    if (!n)
        return 0;
    size_t i = (size_t)ceil(p * (double)n);
    return (double)sorted[i ? i - 1 : 0] / 1e3;
}

/* All workers' latencies in one sorted array; NULL (n 0) when there are none. */
static uint64_t *merged_latencies(struct lb_worker *w, int conns, size_t *n)
{
    size_t total = 0;
    for (int i = 0; i < conns; i++)
        total += w[i].nlat;
    *n = 0;
    uint64_t *all = total ? malloc(total * sizeof(*all)) : NULL;
    if (!all)
        return NULL;
    for (int i = 0; i < conns; i++) {
        memcpy(all + *n, w[i].lat, w[i].nlat * sizeof(*all));
        *n += w[i].nlat;
    }
    qsort(all, *n, sizeof(*all), cmp_u64);
    return all;
}

static void report(const struct lb_config *cfg, struct lb_worker *w, double secs, const double cpu0[3],
                   const double cpu1[3])
{
    uint64_t pairs = 0, errors = 0;
    for (int i = 0; i < cfg->conns; i++) {
        pairs += w[i].pairs;
        errors += w[i].errors;
    }
    size_t n;
    uint64_t *lat = merged_latencies(w, cfg->conns, &n);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)lat[i];
    char srv[64] = "";
    if (cfg->server_pid)
        snprintf(srv, sizeof(srv), " server_cpu_s=%.2f", cpu1[1] - cpu0[1]);
    printf("lockbench wl=%s vers=3 conns=%d qd=1 ops=%" PRIu64 " errors=%" PRIu64
           " secs=%.3f ops_s=%.1f mb_s=0.00 lat_mean_us=%.1f lat_p50_us=%.1f lat_p99_us=%.1f"
           " lat_max_us=%.1f client_cpu_s=%.2f%s host_cpu_s=%.2f\n",
           cfg->anchor ? "lockheld" : "lock", cfg->conns, pairs, errors, secs, (double)pairs / secs, n ? sum / (double)n / 1e3 : 0.0,
           percentile_us(lat, n, 0.50), percentile_us(lat, n, 0.99), percentile_us(lat, n, 1.0),
           cpu1[0] - cpu0[0], srv, cpu1[2] - cpu0[2]);
    fflush(stdout);
    free(lat);
}

static void cpu_sample(const struct lb_config *cfg, double c[3])
{
    c[0] = self_cpu_secs();
    c[1] = cfg->server_pid ? proc_cpu_secs(cfg->server_pid) : 0;
    c[2] = proc_cpu_secs(0);
}

static void usage(void)
{
    fputs("usage: peernfs-lockbench [-a] [-c CONNS] [-d SECS] [-r BYTES] [-P PID] "
          "nfs://host/export/file?vers=3\n"
          "  CONNS threads (default 1), each with its own client connection and NLM owner,\n"
          "  loop LOCK (exclusive, non-blocking) + UNLOCK of the range [i*BYTES, BYTES)\n"
          "  (default 4096) for SECS seconds (default 5). The file must exist.\n"
          "  -P PID: report that local server process's CPU time (server_cpu_s).\n"
          "  -a: each connection also holds one lock (at 2^40 + i*BYTES) through the run,\n"
          "      so the server never sees its last lock go (no NSM unmonitor/monitor churn)\n"
          "output: one line of key=value (nfsbench's keys; op = one LOCK+UNLOCK pair)\n",
          stderr);
    exit(2);
}

static void parse_args(int argc, char **argv, struct lb_config *cfg)
{
    *cfg = (struct lb_config){ .conns = 1, .secs = 5, .range = 4096 };
    int ch;
    char *end;
    while ((ch = getopt(argc, argv, "ac:d:t:r:P:h")) != -1) {
        errno = 0;
        end = NULL;
        switch (ch) {
        case 'a': cfg->anchor = true; continue;
        case 'c': cfg->conns = (int)strtol(optarg, &end, 10); break;
        case 'd':
        case 't': cfg->secs = strtod(optarg, &end); break; /* -t: nfsbench's spelling */
        case 'r': cfg->range = strtoull(optarg, &end, 0); break;
        case 'P': cfg->server_pid = (int)strtol(optarg, &end, 10); break;
        default: usage();
        }
        if (errno || !end || end == optarg || *end)
            usage();
    }
    if (optind != argc - 1 || cfg->conns < 1 || cfg->conns > 1024 || !(cfg->secs > 0) || !cfg->range)
        usage();
    cfg->url = argv[optind];
}

int main(int argc, char **argv)
{
    struct lb_config cfg;
    parse_args(argc, argv, &cfg);
    struct lb_worker *w = calloc((size_t)cfg.conns, sizeof(*w));
    if (!w)
        return 1;
    int rc = 0;
    for (int i = 0; i < cfg.conns && !rc; i++) {
        w[i] = (struct lb_worker){ .index = i, .cfg = &cfg };
        rc = worker_connect(&w[i]);
    }
    if (!rc) {
        pthread_barrier_init(&start_barrier, NULL, (unsigned)cfg.conns + 1);
        int started = 0;
        for (; started < cfg.conns; started++)
            if (pthread_create(&w[started].thread, NULL, worker_main, &w[started]))
                break;
        if (started < cfg.conns) { /* cannot release the barrier: give up loudly */
            fprintf(stderr, "peernfs-lockbench: pthread_create failed\n");
            exit(1);
        }
        double cpu0[3], cpu1[3];
        cpu_sample(&cfg, cpu0);
        uint64_t t0 = now_ns();
        pthread_barrier_wait(&start_barrier);
        struct timespec nap = { (time_t)cfg.secs, (long)((cfg.secs - (double)(time_t)cfg.secs) * 1e9) };
        while (nanosleep(&nap, &nap) && errno == EINTR)
            ;
        atomic_store(&stop_issue, true);
        for (int i = 0; i < cfg.conns; i++)
            pthread_join(w[i].thread, NULL);
        double secs = (double)(now_ns() - t0) / 1e9;
        cpu_sample(&cfg, cpu1);
        report(&cfg, w, secs, cpu0, cpu1);
        pthread_barrier_destroy(&start_barrier);
        for (int i = 0; i < cfg.conns; i++)
            if (w[i].errors)
                fprintf(stderr, "peernfs-lockbench: connection %d: %" PRIu64 " errors, last: %s\n", i,
                        w[i].errors, nfs_client_strerror(w[i].last_error));
        uint64_t pairs = 0;
        for (int i = 0; i < cfg.conns; i++)
            pairs += w[i].pairs;
        rc = pairs ? 0 : -1; /* nothing succeeded: a failed run, not a slow one */
    }
    for (int i = 0; i < cfg.conns; i++) {
        if (w[i].client) {
            if (cfg.anchor && w[i].file.fh.len)
                nfs_unlock(w[i].client, &w[i].file, anchor_offset(&w[i]), cfg.range);
            if (w[i].file.fh.len)
                nfs_close(w[i].client, &w[i].file);
            nfs_client_destroy(w[i].client);
        }
        free(w[i].lat);
    }
    free(w);
    return rc ? 1 : 0;
}
