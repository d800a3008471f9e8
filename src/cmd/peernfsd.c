/*
 * peernfsd: the NFS server daemon (standalone role: exports local directories over
 * NFSv3 + MOUNT). See docs/peernfsd.8.md.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/export.h"
#include "nfs3/nfs3.h"
#include "nlm/nlm.h"
#include "rpc/rpcb.h"
#include "rpc/server.h"
#include "util/log.h"

#define MAX_LISTEN 8

struct options {
    const char *export_dir;
    const char *exports_file;
    const char *state_dir;
    const char *pidfile;
    const char *listen[MAX_LISTEN];
    unsigned nlisten;
    uint16_t port;
    unsigned threads;
    size_t max_record;
    bool rpcbind;
    bool nlm;
    bool nsm;
    unsigned grace;
    bool use_syslog;
    int log_level;
};

static const struct rpcb_service registered[] = {
    { 100003, 3 }, /* NFS v3 */
    { 100005, 1 }, /* MOUNT v1 */
    { 100005, 3 }, /* MOUNT v3 */
    { 100021, 4 }, /* NLM v4 (last: left out with --no-nlm) */
};

static void usage(FILE *f)
{
    fputs("usage: peernfsd [OPTIONS] [DIR]\n"
          "Export DIR (or the exports in --exports FILE) over NFSv3, MOUNT and NLM.\n\n"
          "  -e, --exports FILE     read exports from FILE (exports(5) syntax)\n"
          "  -p, --port N           port (TCP and UDP) for NFS, MOUNT and NLM (default 2049)\n"
          "  -l, --listen ADDR      listen on ADDR (repeatable; default 0.0.0.0 and ::)\n"
          "  -s, --state-dir DIR    state directory (default /var/lib/peernfsd)\n"
          "  -t, --threads N        request threads (default: number of CPUs)\n"
          "  -R, --no-rpcbind       do not register with rpcbind\n"
          "      --grace SECS       NLM grace period after start: only lock reclaims (default 90)\n"
          "      --no-nlm           no NLM (lock) service: clients must mount with nolock\n"
          "      --no-statd         do not monitor lock clients through rpc.statd\n"
          "      --max-record BYTES largest RPC record accepted (default 4 MiB + 64 KiB)\n"
          "      --pidfile FILE     write the process id to FILE\n"
          "  -d, --log-level LEVEL  debug|info|notice|warning|error (default notice)\n"
          "      --syslog           log to syslog instead of stderr\n"
          "  -h, --help             show this help\n",
          f);
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, struct options *o)
{
    enum { OPT_PIDFILE = 256, OPT_SYSLOG, OPT_MAXREC, OPT_GRACE, OPT_NONLM, OPT_NOSTATD };
    static const struct option longopts[] = {
        { "exports", required_argument, NULL, 'e' },   { "port", required_argument, NULL, 'p' },
        { "listen", required_argument, NULL, 'l' },    { "state-dir", required_argument, NULL, 's' },
        { "threads", required_argument, NULL, 't' },   { "no-rpcbind", no_argument, NULL, 'R' },
        { "max-record", required_argument, NULL, OPT_MAXREC },
        { "grace", required_argument, NULL, OPT_GRACE },  { "no-nlm", no_argument, NULL, OPT_NONLM },
        { "no-statd", no_argument, NULL, OPT_NOSTATD },
        { "pidfile", required_argument, NULL, OPT_PIDFILE },
        { "log-level", required_argument, NULL, 'd' }, { "syslog", no_argument, NULL, OPT_SYSLOG },
        { "help", no_argument, NULL, 'h' },            { NULL, 0, NULL, 0 },
    };
    unsigned long v;
    int c;

    *o = (struct options){ .state_dir = "/var/lib/peernfsd", .port = 2049, .rpcbind = true,
                           .nlm = true, .nsm = true, .grace = 90, .log_level = LOG_LVL_NOTICE };
    while ((c = getopt_long(argc, argv, "e:p:l:s:t:Rd:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'e': o->exports_file = optarg; break;
        case 'p':
            if (parse_uint(optarg, 65535, &v) < 0)
                return fprintf(stderr, "peernfsd: bad port '%s'\n", optarg), -1;
            o->port = (uint16_t)v;
            break;
        case 'l':
            if (o->nlisten == MAX_LISTEN)
                return fprintf(stderr, "peernfsd: too many --listen\n"), -1;
            o->listen[o->nlisten++] = optarg;
            break;
        case 's': o->state_dir = optarg; break;
        case 't':
            if (parse_uint(optarg, 256, &v) < 0 || v == 0)
                return fprintf(stderr, "peernfsd: bad thread count '%s'\n", optarg), -1;
            o->threads = (unsigned)v;
            break;
        case 'R': o->rpcbind = false; break;
        case OPT_MAXREC:
            if (parse_uint(optarg, 64ul << 20, &v) < 0 || v < 4096)
                return fprintf(stderr, "peernfsd: bad --max-record '%s'\n", optarg), -1;
            o->max_record = v;
            break;
        case OPT_PIDFILE: o->pidfile = optarg; break;
        case OPT_GRACE:
            if (parse_uint(optarg, 3600, &v) < 0)
                return fprintf(stderr, "peernfsd: bad --grace '%s'\n", optarg), -1;
            o->grace = (unsigned)v;
            break;
        case OPT_NONLM: o->nlm = false; break;
        case OPT_NOSTATD: o->nsm = false; break;
        case 'd':
            if ((o->log_level = log_level_parse(optarg)) < 0)
                return fprintf(stderr, "peernfsd: bad log level '%s'\n", optarg), -1;
            break;
        case OPT_SYSLOG: o->use_syslog = true; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc)
        o->export_dir = argv[optind++];
    if (optind < argc || (!o->export_dir == !o->exports_file)) {
        fprintf(stderr, "peernfsd: give either DIR or --exports FILE\n");
        usage(stderr);
        return -1;
    }
    return 0;
}

/* TCP and UDP on every address; returns the RPCB_* transports to register. */
static int listen_all(struct rpc_server *srv, const struct options *o, unsigned *transports)
{
    static const char *const defaults[] = { "0.0.0.0", "::" };
    const char *const *addrs = o->nlisten ? o->listen : defaults;
    unsigned n = o->nlisten ? o->nlisten : 2;
    unsigned ok = 0;

    *transports = 0;
    for (unsigned i = 0; i < n; i++) {
        bool v6 = strchr(addrs[i], ':') != NULL;
        int err = rpc_server_listen_str(srv, addrs[i], o->port, SOCK_STREAM);
        if (err == 0)
            err = rpc_server_listen_str(srv, addrs[i], o->port, SOCK_DGRAM);
        if (err < 0) {
            /* no IPv6 on this host is not fatal for the default pair */
            bool optional = !o->nlisten && v6 && (err == -EAFNOSUPPORT || err == -EADDRNOTAVAIL);
            log_msg(optional ? LOG_LVL_NOTICE : LOG_LVL_ERR, "listen on [%s]:%u: %s", addrs[i],
                    o->port, strerror(-err));
            if (!optional)
                return err;
            continue;
        }
        ok++;
        *transports |= v6 ? (RPCB_TCP6 | RPCB_UDP6) : (RPCB_TCP | RPCB_UDP);
    }
    return ok ? 0 : -EADDRNOTAVAIL;
}

static int write_pidfile(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    fprintf(f, "%ld\n", (long)getpid());
    return fclose(f) == 0 ? 0 : -errno;
}

static int load_exports(const struct options *o, struct export_table *t)
{
    char err[512] = "";
    int rc = o->exports_file ? export_table_load(t, o->exports_file, err, sizeof(err))
                             : export_table_single(t, o->export_dir, err, sizeof(err));
    if (rc < 0) {
        log_err("exports: %s", err[0] ? err : strerror(-rc));
        return rc;
    }
    for (unsigned i = 0; i < t->nexports; i++)
        log_notice("exporting %s (id %u, %u client rule%s)", t->exports[i].path, t->exports[i].id,
                   t->exports[i].nrules, t->exports[i].nrules == 1 ? "" : "s");
    return 0;
}

/* Block the stop signals in every thread; the main thread waits for them. */
static void block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static int run(const struct options *o)
{
    struct export_table exports = { 0 };
    struct nfs_service svc;
    struct nlm_service nlm;
    bool nlm_ok = false;
    unsigned nregistered = o->nlm ? 4 : 3;
    struct rpc_server *srv = NULL;
    unsigned transports = 0;
    bool registered_ok = false;
    sigset_t stopset;
    int rc;

    block_signals(&stopset);
    if (mkdir(o->state_dir, 0700) < 0 && errno != EEXIST) {
        log_err("state directory %s: %s", o->state_dir, strerror(errno));
        return 1;
    }
    if (load_exports(o, &exports) < 0)
        return 1;
    if ((rc = nfs_service_init(&svc, &exports, o->state_dir)) < 0) {
        log_err("service init: %s", strerror(-rc));
        export_table_free(&exports);
        return 1;
    }
    if (o->nlm) {
        struct nlm_config ncfg = { .grace_secs = o->grace, .nsm = o->nsm, .callbacks = true };
        if ((rc = nlm_service_init(&nlm, &svc, &ncfg)) < 0) {
            log_err("NLM service init: %s", strerror(-rc));
            nfs_service_fini(&svc);
            export_table_free(&exports);
            return 1;
        }
        nlm_ok = true;
    }
    struct rpc_server_config cfg = { .nloops = o->threads, .max_record = o->max_record };
    srv = rpc_server_new(&cfg);
    if (!srv || rpc_server_add_program(srv, &nfs3_program, &svc) < 0 ||
        rpc_server_add_program(srv, &mount_program, &svc) < 0 ||
        (nlm_ok && rpc_server_add_program(srv, &nlm_program, &nlm) < 0) || listen_all(srv, o, &transports) < 0 ||
        (rc = rpc_server_start(srv)) < 0) {
        log_err("cannot start the RPC server");
        rc = 1;
        goto out;
    }
    if (o->rpcbind) {
        registered_ok = rpcb_register_all(registered, nregistered, rpc_server_port(srv), transports) == 0;
        if (!registered_ok)
            log_warn("rpcbind registration failed: clients must be told the port (port=, mountport=)");
    }
    if (nlm_ok) {
        nlm_service_start(&nlm);
        if (o->grace)
            log_notice("NLM grace period: %u s (only lock reclaims until then)", o->grace);
    }
    if (o->pidfile && write_pidfile(o->pidfile) < 0)
        log_warn("pidfile %s: %s", o->pidfile, strerror(errno));
    log_notice("serving NFSv3, MOUNT%s on port %u", nlm_ok ? " and NLM v4" : "", rpc_server_port(srv));

    int sig;
    while (sigwait(&stopset, &sig) == 0 && sig == SIGHUP)
        log_notice("SIGHUP: reloading exports is not supported yet; restart to apply changes");
    log_notice("signal %d: shutting down", sig);
    rc = 0;
out:
    if (registered_ok)
        rpcb_unregister_all(registered, nregistered, transports);
    if (srv) {
        struct rpc_server_stats st;
        rpc_server_stop(srv);
        if (nlm_ok)
            nlm_service_fini(&nlm);
        nlm_ok = false;
        rpc_server_get_stats(srv, &st);
        log_info("calls %llu, replies %llu, handed off %llu, pooled %llu, garbage %llu, rejected %llu",
                 (unsigned long long)st.calls, (unsigned long long)st.replies,
                 (unsigned long long)st.handoffs, (unsigned long long)st.pooled,
                 (unsigned long long)st.garbage, (unsigned long long)st.rejected);
        rpc_server_destroy(srv);
    }
    if (nlm_ok)
        nlm_service_fini(&nlm);
    nfs_service_fini(&svc);
    export_table_free(&exports);
    if (o->pidfile)
        unlink(o->pidfile);
    return rc;
}

int main(int argc, char **argv)
{
    struct options o;
    if (parse_args(argc, argv, &o) < 0)
        return 1;
    log_init("peernfsd", (enum log_level)o.log_level, o.use_syslog);
    return run(&o);
}
