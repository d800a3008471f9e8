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
#include "lock/lock.h"
#include "nfs4/nfs4.h"
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
    unsigned nsm_idle;
    unsigned grace;
    bool nfs4;
    unsigned lease;
    unsigned max_minor;
    bool delegations;
    const char *idmap_domain;
    const char *keytab;
    bool use_syslog;
    int log_level;
};

/* The rpcbind registrations of the services this run offers. */
static unsigned registrations(const struct options *o, struct rpcb_service out[7])
{
    unsigned n = 0;
    out[n++] = (struct rpcb_service){ 100003, 3 }; /* NFS v3 */
    out[n++] = (struct rpcb_service){ 100005, 1 }; /* MOUNT v1 */
    out[n++] = (struct rpcb_service){ 100005, 3 }; /* MOUNT v3 */
    if (o->nfs4)
        out[n++] = (struct rpcb_service){ 100003, 4 };
    if (o->nlm) {
        out[n++] = (struct rpcb_service){ 100021, 4 };
        out[n++] = (struct rpcb_service){ 100021, 1 }; /* NLM v1/v3: NFSv2-era clients */
        out[n++] = (struct rpcb_service){ 100021, 3 };
    }
    return n;
}

static void usage(FILE *f)
{
    fputs("usage: peernfsd [OPTIONS] [DIR]\n"
          "Export DIR (or the exports in --exports FILE) over NFSv3, MOUNT, NLM and NFSv4.0-4.2.\n\n"
          "  -e, --exports FILE     read exports from FILE (exports(5) syntax)\n"
          "  -p, --port N           port (TCP and UDP) for NFS, MOUNT and NLM (default 2049)\n"
          "  -l, --listen ADDR      listen on ADDR (repeatable; default 0.0.0.0 and ::)\n"
          "  -s, --state-dir DIR    state directory (default /var/lib/peernfsd)\n"
          "  -t, --threads N        request threads (default: number of CPUs)\n"
          "  -R, --no-rpcbind       do not register with rpcbind\n"
          "      --grace SECS       grace period after start: only reclaims of locks (NLM) and\n"
          "                         of NFSv4 state by clients that held some (default 90)\n"
          "      --lease SECS       NFSv4 lease time (default 90)\n"
          "      --no-nfs4          no NFSv4 service\n"
          "      --max-minor N      highest NFSv4 minor version served: 0, 1 or 2 (default 2)\n"
          "      --no-delegations   never hand out NFSv4 delegations\n"
          "      --idmap-domain D   NFSv4 owners as user@D through NSS (default: numeric ids)\n"
          "      --keytab FILE      Kerberos keys for exports with sec=krb5* (default: KRB5_KTNAME,\n"
          "                         else /etc/krb5.keytab); clients name the service nfs@HOST\n"
          "      --no-nlm           no NLM (lock) service: clients must mount with nolock\n"
          "      --no-statd         do not monitor lock clients through rpc.statd\n"
          "      --statd-idle SECS  unmonitor a lock client this long after its last lock\n"
          "                         (default 300)\n"
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
    enum { OPT_PIDFILE = 256, OPT_SYSLOG, OPT_MAXREC, OPT_GRACE, OPT_NONLM, OPT_NOSTATD, OPT_NONFS4, OPT_LEASE,
           OPT_MAXMINOR, OPT_NODELEG, OPT_IDMAP, OPT_STATDIDLE, OPT_KEYTAB };
    static const struct option longopts[] = {
        { "exports", required_argument, NULL, 'e' },   { "port", required_argument, NULL, 'p' },
        { "listen", required_argument, NULL, 'l' },    { "state-dir", required_argument, NULL, 's' },
        { "threads", required_argument, NULL, 't' },   { "no-rpcbind", no_argument, NULL, 'R' },
        { "max-record", required_argument, NULL, OPT_MAXREC },
        { "grace", required_argument, NULL, OPT_GRACE },  { "no-nlm", no_argument, NULL, OPT_NONLM },
        { "no-statd", no_argument, NULL, OPT_NOSTATD },  { "no-nfs4", no_argument, NULL, OPT_NONFS4 },
        { "statd-idle", required_argument, NULL, OPT_STATDIDLE },
        { "lease", required_argument, NULL, OPT_LEASE }, { "max-minor", required_argument, NULL, OPT_MAXMINOR },
        { "no-delegations", no_argument, NULL, OPT_NODELEG },
        { "idmap-domain", required_argument, NULL, OPT_IDMAP },
        { "keytab", required_argument, NULL, OPT_KEYTAB },
        { "pidfile", required_argument, NULL, OPT_PIDFILE },
        { "log-level", required_argument, NULL, 'd' }, { "syslog", no_argument, NULL, OPT_SYSLOG },
        { "help", no_argument, NULL, 'h' },            { NULL, 0, NULL, 0 },
    };
    unsigned long v;
    int c;

    *o = (struct options){ .state_dir = "/var/lib/peernfsd", .port = 2049, .rpcbind = true,
                           .nlm = true, .nsm = true, .grace = 90, .nfs4 = true, .lease = 90, .max_minor = 2,
                           .delegations = true, .log_level = LOG_LVL_NOTICE };
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
        case OPT_STATDIDLE:
            if (parse_uint(optarg, 86400, &v) < 0 || v == 0)
                return fprintf(stderr, "peernfsd: bad --statd-idle '%s'\n", optarg), -1;
            o->nsm_idle = (unsigned)v;
            break;
        case OPT_NONFS4: o->nfs4 = false; break;
        case OPT_LEASE:
            if (parse_uint(optarg, 3600, &v) < 0 || v < 10)
                return fprintf(stderr, "peernfsd: bad --lease '%s' (10..3600)\n", optarg), -1;
            o->lease = (unsigned)v;
            break;
        case OPT_MAXMINOR:
            if (parse_uint(optarg, 2, &v) < 0)
                return fprintf(stderr, "peernfsd: bad --max-minor '%s' (0..2)\n", optarg), -1;
            o->max_minor = (unsigned)v;
            break;
        case OPT_NODELEG: o->delegations = false; break;
        case OPT_IDMAP: o->idmap_domain = optarg; break;
        case OPT_KEYTAB:
            if (access(optarg, R_OK) != 0)
                return fprintf(stderr, "peernfsd: keytab '%s': %s\n", optarg, strerror(errno)), -1;
            o->keytab = optarg;
            break;
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

static bool lists_kerberos(const struct export_table *t)
{
    for (unsigned i = 0; i < t->nexports; i++) {
        for (unsigned r = 0; r < t->exports[i].nrules; r++) {
            const uint32_t *list;
            unsigned n = export_sec_list(&t->exports[i].rules[r], &list);
            for (unsigned k = 0; k < n; k++)
                if (list[k] != EXPORT_SEC_SYS)
                    return true;
        }
    }
    return false;
}

/* Exports that offer Kerberos with no key to accept it: say so at start rather than
 * at each client's failed context. */
static void check_keytab(const struct export_table *t)
{
    char why[256];
    if (!lists_kerberos(t))
        return;
    if (rpc_gss_acceptor_ready(why, sizeof(why)))
        log_info("RPCSEC_GSS: Kerberos keys found; sec=krb5/krb5i/krb5p can be used");
    else
        log_notice("RPCSEC_GSS: exports list Kerberos flavors but no key can accept a context "
                   "(%s): krb5 mounts fail until a keytab is given (--keytab, KRB5_KTNAME)", why);
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
    check_keytab(t);
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

/* nfs_service delegation hooks (nfs3/ and nlm/ do not know NFSv4). */
static bool deleg_active_hook(void *nfs4)
{
    return nfs4_deleg_active(nfs4);
}

static bool deleg_break_hook(void *nfs4, const struct export *ex, const struct fs_fh *fh, bool write)
{
    return nfs4_deleg_break(nfs4, ex, fh, write);
}

/* NFSv4 shares the lock space with NLM (one lock space: design.md); without NLM it
 * gets one of its own. */
static int start_nfs4(const struct options *o, struct nfs_service *svc, struct lock_space *locks,
                      struct nfs4_server **out, struct lock_space **own_locks)
{
    if (!locks) {
        struct lock_space_params lp = { 0 };
        locks = *own_locks = lock_space_create(&lp);
        if (!locks)
            return -1;
    }
    struct nfs4_server_config cfg = {
        .state_dir = o->state_dir,
        .lease_seconds = o->lease,
        .grace_seconds = o->grace ? o->grace : UINT32_MAX,
        .idmap_domain = o->idmap_domain,
        .no_delegations = !o->delegations,
        .max_minor = o->max_minor,
    };
    int rc = nfs4_server_create(out, svc->exports, &svc->fh_key, svc->write_verf, locks, &cfg);
    if (rc < 0) {
        log_err("NFSv4 service init: %s", strerror(-rc));
        return rc;
    }
    /* NFSv3 and NLM access recalls NFSv4 delegations (set before any request is served) */
    svc->deleg_active = deleg_active_hook;
    svc->deleg_break = deleg_break_hook;
    svc->deleg_ctx = *out;
    return 0;
}

static int run(const struct options *o)
{
    struct export_table exports = { 0 };
    struct nfs_service svc;
    struct nlm_service nlm;
    bool nlm_ok = false;
    struct rpcb_service registered[7];
    unsigned nregistered = registrations(o, registered);
    struct nfs4_server *nfs4 = NULL;
    struct lock_space *own_locks = NULL;
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
        struct nlm_config ncfg = { .grace_secs = o->grace, .nsm = o->nsm, .nsm_idle_secs = o->nsm_idle,
                                   .callbacks = true };
        if ((rc = nlm_service_init(&nlm, &svc, &ncfg)) < 0) {
            log_err("NLM service init: %s", strerror(-rc));
            nfs_service_fini(&svc);
            export_table_free(&exports);
            return 1;
        }
        nlm_ok = true;
    }
    if (o->nfs4 && start_nfs4(o, &svc, nlm_ok ? nlm.locks : NULL, &nfs4, &own_locks) < 0) {
        rc = 1;
        goto out;
    }
    struct rpc_server_config cfg = { .nloops = o->threads, .max_record = o->max_record };
    srv = rpc_server_new(&cfg);
    if (!srv || rpc_server_add_program(srv, &nfs3_program, &svc) < 0 ||
        rpc_server_add_program(srv, &mount_program, &svc) < 0 ||
        (nfs4 && rpc_server_add_program(srv, &nfs4_program, nfs4) < 0) ||
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
    log_notice("serving NFSv3, MOUNT%s%s on port %u", nlm_ok ? ", NLM v1/v3/v4" : "", nfs4 ? ", NFSv4" : "",
               rpc_server_port(srv));

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
        rpc_server_get_stats(srv, &st);
        log_info("calls %llu, replies %llu, handed off %llu, pooled %llu, garbage %llu, rejected %llu",
                 (unsigned long long)st.calls, (unsigned long long)st.replies,
                 (unsigned long long)st.handoffs, (unsigned long long)st.pooled,
                 (unsigned long long)st.garbage, (unsigned long long)st.rejected);
        rpc_server_destroy(srv);
    }
    svc.deleg_active = NULL; /* no request runs any more; the hooks' server goes */
    svc.deleg_break = NULL;
    nfs4_server_destroy(nfs4);
    /* NLM last: its lock space is NFSv4's too, and NFSv4 clients' state releases
     * their lock-space hosts as it goes (and no request runs any more) */
    if (nlm_ok)
        nlm_service_fini(&nlm);
    if (own_locks)
        lock_space_destroy(own_locks);
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
    rpc_gss_set_thread_reset(fs_posix_thread_reset);
    if (o.keytab && rpc_gss_set_keytab(o.keytab) < 0) {
        log_err("cannot use keytab %s for RPCSEC_GSS", o.keytab);
        return 1;
    }
    return run(&o);
}
