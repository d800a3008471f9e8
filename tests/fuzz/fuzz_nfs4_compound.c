/*
 * libFuzzer target: the NFSv4 COMPOUND procedure end to end below the RPC layer —
 * op decoding, the engine, every op handler, state/, the lock space and the posix
 * backend — against a scratch export, with reply checks.
 *
 * One input is a short session: a list of chunks, each one COMPOUND call (or a server
 * restart), run against a fresh server (state, lock space and export tree are rebuilt
 * before every input, so a reproducer replays alone). Before the chunks run, the
 * harness registers a 4.0 client (SETCLIENTID + CONFIRM) and a 4.1 client with a
 * session (EXCHANGE_ID + CREATE_SESSION), so the fuzzer starts past client setup.
 *
 *   chunk := ctl:u8, then (ctl != 0xff) nraw:u8, len:u16be, payload[len]
 *   ctl 0xff           simulated reboot: the server is rebuilt keeping its state
 *                      directory (reclaim records: grace period) and the export tree
 *   ctl & 0x03         minor version 0, 1, 2; 3 = the payload is the whole COMPOUND4args
 *                      (tag, minorversion, numops, ops) and no prefix is added
 *   ctl >> 2 & 3       filehandle prefix op: none, PUTROOTFH, PUTFH of the export root,
 *                      PUTFH of the last GETFH result
 *   ctl & 0x10         (minor >= 1) SEQUENCE on the current session, slot 0, first
 *   ctl & 0x20         ... with sa_cachethis
 *   ctl & 0x40         call as uid/gid 1000 (else root, not squashed)
 *   ctl & 0x80         ... SEQUENCE repeats the slot's last sequenceid (a retransmission)
 *   payload            nraw raw nfs_argop4 after the prefix ops; numops = prefix + nraw
 *
 * The payload may name values the server made up at run time by 8- or 16-byte tokens,
 * replaced before the call (see struct token): the clientids, the setclientid_confirm
 * verifier, the session id, and the last open, lock and delegation stateids seen in a
 * reply. The harness follows every reply (EXCHANGE_ID, CREATE_SESSION, GETFH, OPEN, ...)
 * to keep them current.
 *
 * Checks beyond the sanitizers: the reply must decode as COMPOUND4res with nothing
 * after it and no more results than ops; its status must be the last result's; the
 * handler answers synchronously (RPC_REQUEUE_BLOCKING at most once, as rpc/ allows).
 * Every call runs first as on an event-loop thread and again on the blocking pool when
 * the engine asks, like rpc/ does.
 *
 * Environment:
 *   PEERNFS_FUZZ_WRITE_SEEDS=dir  write the seed corpus (the files in
 *                                 tests/fuzz/corpus/nfs4_compound) into dir and exit
 *   PEERNFS_FUZZ_RESET_EVERY=n    rebuild the server every n inputs instead of every
 *                                 input: state piles up across inputs (growth, caps)
 *   PEERNFS_FUZZ_TRACE=1          print each call's result statuses, phase timings and
 *                                 each input's malloc/free counts; with
 *   PEERNFS_FUZZ_LIVE=1           also where the allocations an input kept were made
 *   PEERNFS_FUZZ_NO_NAMESPACE=1   no private mount namespace (export under $TMPDIR)
 *   PEERNFS_FUZZ_NULL_CONN=1      call->conn NULL (as in a client's callback service)
 *   PEERNFS_FUZZ_LOG=1            server log at debug level (default: errors only)
 *
 * Containment: when it can (root), the process moves to its own mount namespace and
 * puts the export on a private tmpfs mounted nodev,nosuid, size-limited (the fuzzer
 * may CREATE device nodes: they must not open real devices); RLIMIT_FSIZE caps every
 * file (SIGXFSZ ignored: the server sees EFBIG). The callback thread is stopped: no
 * callback ever leaves the process (4.0 callback addresses come from the input); the
 * harness answers the state layer's callback work itself (probes succeed, recalls are
 * delivered).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "fs/fh.h"
#include "fs/fs.h"
#include "lock/lock.h"
#include "nfs4/nfs4.h"
#include "nfs4/nfs4_internal.h"
#include "rpc/backchannel.h"
#include "rpc/server.h"
#include "state/state.h"
#include "util/log.h"
#include "xdr/nfs4_xdr.h"

#define RES_SIZE ((1u << 20) + (4u << 10)) /* the smallest reply buffer rpc/ promises */
#define ARENA_SIZE (64u * 1024u)           /* what rpc/ gives a call */
#define REPLY_ARENA_SIZE (8u << 20)        /* decoding our own replies */
#define MAX_CHUNKS 16
#define FSIZE_LIMIT (128ull << 20) /* also caps this process's own logs */
#define TMPFS_OPTS "size=256m,nr_inodes=65536,mode=0755"
#define FIXED_MOUNT "/tmp/peernfs-fuzz-nfs4.mnt" /* the same pseudo-fs path every run */
#define USER_ID 1000u
#define CAPTURE_PROG 0x20000999u

/* ------------------------------------------------------------------ wire builder */

struct wbuf {
    uint8_t *p;
    size_t len, cap;
};

static void wb_room(struct wbuf *b, size_t n)
{
    if (b->len + n <= b->cap)
        return;
    size_t cap = b->cap ? b->cap * 2 : 1024;
    while (cap < b->len + n)
        cap *= 2;
    b->p = realloc(b->p, cap);
    if (!b->p)
        abort();
    b->cap = cap;
}
static void wb_bytes(struct wbuf *b, const void *v, size_t n)
{
    if (!n)
        return;
    wb_room(b, n);
    memcpy(b->p + b->len, v, n);
    b->len += n;
}
static void wb_u8(struct wbuf *b, uint8_t v) { wb_bytes(b, &v, 1); }
static void wb_u32(struct wbuf *b, uint32_t v)
{
    uint8_t x[4] = {v >> 24, v >> 16, v >> 8, v};
    wb_bytes(b, x, 4);
}
static void wb_u64(struct wbuf *b, uint64_t v)
{
    wb_u32(b, (uint32_t)(v >> 32));
    wb_u32(b, (uint32_t)v);
}
static void wb_opaque(struct wbuf *b, const void *v, uint32_t n)
{
    static const uint8_t zero[4];
    wb_u32(b, n);
    wb_bytes(b, v, n);
    wb_bytes(b, zero, (4 - (n & 3)) & 3);
}
static void wb_str(struct wbuf *b, const char *s) { wb_opaque(b, s, (uint32_t)strlen(s)); }

/* ------------------------------------------------------------------ tokens */

/* Run-time values the input names by placeholder (replaced in place: same size). */
struct tracked {
    uint64_t clid40, clid41;
    uint8_t confirm[8];
    uint8_t sessionid[16];
    bool have_session;
    uint32_t slot0_seq; /* last sequenceid used on slot 0 of the session */
    uint32_t seq41;     /* eir_sequenceid of the last EXCHANGE_ID */
    stateid4 open_sid, lock_sid, deleg_sid;
    uint8_t fh[NFS4_FHSIZE];
    uint32_t fh_len;
};
static struct tracked tr;

#define TOK_CLID40 "@CLID40@"
#define TOK_CLID41 "@CLID41@"
#define TOK_CONFIRM "@SCCONF@"
#define TOK_SESSION "@SESSIONID-LAST@"
#define TOK_OPEN "@STID-OPEN-LAST@"
#define TOK_LOCK "@STID-LOCK-LAST@"
#define TOK_DELEG "@STID-DELG-LAST@"

static void put_stateid(uint8_t *p, const stateid4 *s)
{
    xdr_put_be32(p, s->seqid);
    memcpy(p + 4, s->other, 12);
}

static void put_be64(uint8_t *p, uint64_t v)
{
    xdr_put_be32(p, (uint32_t)(v >> 32));
    xdr_put_be32(p + 4, (uint32_t)v);
}

static void substitute_tokens(uint8_t *p, size_t len)
{
    for (size_t i = 0; i + 8 <= len; i++) {
        if (p[i] != '@')
            continue;
        uint8_t *t = p + i;
        if (!memcmp(t, TOK_CLID40, 8))
            put_be64(t, tr.clid40);
        else if (!memcmp(t, TOK_CLID41, 8))
            put_be64(t, tr.clid41);
        else if (!memcmp(t, TOK_CONFIRM, 8))
            memcpy(t, tr.confirm, 8);
        else if (i + 16 <= len && !memcmp(t, TOK_SESSION, 16))
            memcpy(t, tr.sessionid, 16);
        else if (i + 16 <= len && !memcmp(t, TOK_OPEN, 16))
            put_stateid(t, &tr.open_sid);
        else if (i + 16 <= len && !memcmp(t, TOK_LOCK, 16))
            put_stateid(t, &tr.lock_sid);
        else if (i + 16 <= len && !memcmp(t, TOK_DELEG, 16))
            put_stateid(t, &tr.deleg_sid);
        else
            continue;
        i += 7;
    }
}

/* ------------------------------------------------------------------ the scratch export */

static char base_dir[256], export_dir[300], state_dir[300];
static struct export_table table;
static const struct fh_key fh_key = {{'p', 'e', 'e', 'r', 'n', 'f', 's', '-', 'f', 'u', 'z', 'z', '-', 'k', 'e', 'y'}};
static const uint8_t write_verf[8] = {'f', 'u', 'z', 'z', 'v', 'e', 'r', 'f'};
static uint8_t root_fh[FH_WIRE_MAX];
static uint32_t root_fh_len;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    if (ftw->level > 0)
        remove(path);
    return 0;
}

static void make_file(const char *name, size_t len, off_t hole_at, mode_t mode, uid_t uid)
{
    char path[400], buf[4096];
    snprintf(path, sizeof(path), "%s/%s", export_dir, name);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0)
        return;
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (char)('a' + i % 26);
    if (len && write(fd, buf, len < sizeof(buf) ? len : sizeof(buf)) < 0)
        perror("write");
    if (hole_at && pwrite(fd, "z", 1, hole_at) < 0)
        perror("pwrite");
    if (fchown(fd, uid, uid) < 0 || fchmod(fd, mode) < 0)
        perror("fchown");
    close(fd);
}

static void make_dir(const char *name, mode_t mode, uid_t uid)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/%s", export_dir, name);
    if (mkdir(path, mode) == 0 && (chown(path, uid, uid) < 0 || chmod(path, mode) < 0))
        perror("chown");
}

static void make_link(const char *target, const char *name)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/%s", export_dir, name);
    if (symlink(target, path) < 0)
        perror("symlink");
}

/* The tree every input starts from: files (empty, small, sparse), directories,
 * symlinks (also absolute and dangling), a FIFO, a hard link, objects uid 1000 may
 * and may not touch. */
static void build_tree(void)
{
    nftw(export_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    chmod(export_dir, 0777);
    make_file("file", 4096, 0, 0644, 0);
    make_file("empty", 0, 0, 0666, USER_ID);
    make_file("big", 100, (1 << 20) - 1, 0644, USER_ID);
    make_file("secret", 10, 0, 0600, 0);
    make_dir("dir", 0755, 0);
    make_file("dir/a", 10, 0, 0644, USER_ID);
    make_dir("dir/sub", 0755, USER_ID);
    make_dir("private", 0700, 0);
    make_file("private/x", 10, 0, 0644, 0);
    make_link("file", "link");
    make_link("nowhere", "dangling");
    make_link("/etc/passwd", "abs");
    make_link("dir/sub", "dirlink");
    char path[400], path2[400];
    snprintf(path, sizeof(path), "%s/fifo", export_dir);
    mkfifo(path, 0666);
    snprintf(path, sizeof(path), "%s/file", export_dir);
    snprintf(path2, sizeof(path2), "%s/hard", export_dir);
    if (link(path, path2) < 0)
        perror("link");
}

static void remove_state_db(void)
{
    nftw(state_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A private mount namespace with a nodev tmpfs: false when not possible (not root). */
static bool private_tmpfs(void)
{
    if (getenv("PEERNFS_FUZZ_NO_NAMESPACE"))
        return false;
    if (mkdir(FIXED_MOUNT, 0755) < 0 && errno != EEXIST)
        return false;
    if (unshare(CLONE_NEWNS) < 0)
        return false;
    if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount("peernfs-fuzz", FIXED_MOUNT, "tmpfs", MS_NODEV | MS_NOSUID | MS_NOEXEC, TMPFS_OPTS) < 0) {
        fprintf(stderr, "fuzz_nfs4_compound: private tmpfs: %s\n", strerror(errno));
        exit(1); /* the namespace is half made: do not go on */
    }
    snprintf(base_dir, sizeof(base_dir), "%s", FIXED_MOUNT);
    return true;
}

static void setup_export(void)
{
    if (!private_tmpfs()) {
        const char *tmp = getenv("TMPDIR");
        snprintf(base_dir, sizeof(base_dir), "%s/peernfs-fuzz4-XXXXXX", tmp ? tmp : "/tmp");
        if (!mkdtemp(base_dir))
            abort();
        fprintf(stderr, "fuzz_nfs4_compound: no private tmpfs, export under %s\n", base_dir);
    }
    snprintf(export_dir, sizeof(export_dir), "%s/export", base_dir);
    snprintf(state_dir, sizeof(state_dir), "%s/state", base_dir);
    mkdir(export_dir, 0777);
    mkdir(state_dir, 0700);
    /* Small caches: they fill within a few inputs and then evict one entry for each
     * one added (eviction gets fuzzed too, and each input frees what it allocates, so
     * libFuzzer's leak check does not re-run every input). */
    fs_posix_set_cache_limit(16);
    fs_posix_set_dircache_limit(64 * 1024, 4);
    char err[256];
    if (export_table_single(&table, export_dir, err, sizeof(err)) < 0) {
        fprintf(stderr, "fuzz_nfs4_compound: export: %s\n", err);
        abort();
    }
    /* everything runs as root unless the chunk says uid 1000: no squashing */
    table.exports[0].rules[0].opts &= ~(unsigned)EXPORT_ROOT_SQUASH;
    table.exports[0].rules[0].opts |= EXPORT_INSECURE;
    root_fh_len = fh_wrap(&fh_key, table.exports[0].id, &table.exports[0].root, root_fh);

    struct rlimit rl = {FSIZE_LIMIT, FSIZE_LIMIT};
    setrlimit(RLIMIT_FSIZE, &rl);
    signal(SIGPIPE, SIG_IGN);
}

/* ------------------------------------------------------------------ a real connection */

/*
 * call->conn must be a real connection: state/ takes references to it (sessions'
 * bound connections) and nfs4/ registers close notifications on it. A tiny rpc server
 * on the loopback hands us the connection of a call to a dummy program; one connection
 * per server generation, closed before the nfs4 server goes (as the daemon does).
 */
static struct rpc_server *conn_srv;
static pthread_mutex_t cap_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cap_cv = PTHREAD_COND_INITIALIZER;
static struct rpc_conn *captured;
static bool conn_closed;

static enum rpc_accept_status capture_proc(struct rpc_call *call)
{
    pthread_mutex_lock(&cap_mu);
    captured = rpc_conn_get(call->conn);
    pthread_cond_broadcast(&cap_cv);
    pthread_mutex_unlock(&cap_mu);
    return RPC_SUCCESS;
}

static const struct rpc_proc_desc capture_procs[] = {{capture_proc, "CAPTURE", 0}};
static const struct rpc_version_desc capture_vers[] = {{1, 1, capture_procs}};
static const struct rpc_program_desc capture_program = {CAPTURE_PROG, "capture", 1, capture_vers};

static void conn_srv_start(void)
{
    struct rpc_server_config cfg = {.nloops = 1, .npool = 1};
    conn_srv = rpc_server_new(&cfg);
    if (!conn_srv || rpc_server_add_program(conn_srv, &capture_program, NULL) < 0 ||
        rpc_server_listen_str(conn_srv, "127.0.0.1", 0, SOCK_STREAM) < 0 || rpc_server_start(conn_srv) < 0) {
        fprintf(stderr, "fuzz_nfs4_compound: loopback rpc server failed\n");
        abort();
    }
}

static bool cap_wait(bool *flag_or_null)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 10;
    pthread_mutex_lock(&cap_mu);
    while (flag_or_null ? !*flag_or_null : !captured)
        if (pthread_cond_timedwait(&cap_cv, &cap_mu, &ts) == ETIMEDOUT)
            break;
    bool ok = flag_or_null ? *flag_or_null : captured != NULL;
    pthread_mutex_unlock(&cap_mu);
    return ok;
}

static struct rpc_conn *conn_open(int *client_fd)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(rpc_server_port(conn_srv))};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
        abort();
    struct wbuf b = {0};
    wb_u32(&b, 0x80000000u | 40);
    wb_u32(&b, 1);            /* xid */
    wb_u32(&b, 0);            /* CALL */
    wb_u32(&b, 2);            /* rpcvers */
    wb_u32(&b, CAPTURE_PROG); /* prog, vers, proc */
    wb_u32(&b, 1);
    wb_u32(&b, 0);
    wb_u64(&b, 0); /* cred AUTH_NONE */
    wb_u64(&b, 0); /* verf AUTH_NONE */
    pthread_mutex_lock(&cap_mu);
    captured = NULL;
    pthread_mutex_unlock(&cap_mu);
    if (write(fd, b.p, b.len) != (ssize_t)b.len || !cap_wait(NULL))
        abort();
    free(b.p);
    *client_fd = fd;
    return captured;
}

static void conn_closed_note(void *ctx, struct rpc_conn *c)
{
    (void)ctx;
    (void)c;
    pthread_mutex_lock(&cap_mu);
    conn_closed = true;
    pthread_cond_broadcast(&cap_cv);
    pthread_mutex_unlock(&cap_mu);
}

/* Close our end and wait until the server side ran its close notifications (ours is
 * registered last, so nfs4's ran before it). */
static void conn_close(struct rpc_conn *c, int client_fd)
{
    pthread_mutex_lock(&cap_mu);
    conn_closed = false;
    pthread_mutex_unlock(&cap_mu);
    if (rpc_conn_on_close(c, conn_closed_note, NULL) == 0) {
        shutdown(client_fd, SHUT_RDWR);
        if (!cap_wait(&conn_closed)) {
            fprintf(stderr, "fuzz_nfs4_compound: the connection did not close\n");
            abort();
        }
    }
    close(client_fd);
    rpc_conn_put(c);
}

/* ------------------------------------------------------------------ server generations */

static struct {
    struct lock_space *locks;
    struct nfs4_server *nfs4;
    struct rpc_conn *conn;
    int client_fd;
} gen;

static uint8_t *res_buf, *arena_mem, *reply_arena_mem;
static bool trace; /* PEERNFS_FUZZ_TRACE: print every reply's statuses */
static bool null_conn; /* PEERNFS_FUZZ_NULL_CONN: calls without a connection */
static uint32_t next_xid = 1;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
#define TIMED(what, stmt)                                                                     \
    do {                                                                                      \
        double t0_ = trace ? now_ms() : 0;                                                    \
        stmt;                                                                                 \
        if (trace)                                                                            \
            fprintf(stderr, "  [%s: %.2f ms]\n", what, now_ms() - t0_);                        \
    } while (0)

static void gen_stop(void)
{
    if (!gen.nfs4)
        return;
    TIMED("conn_close", conn_close(gen.conn, gen.client_fd));
    TIMED("nfs4_server_destroy", nfs4_server_destroy(gen.nfs4));
    TIMED("lock_space_destroy", lock_space_destroy(gen.locks));
    memset(&gen, 0, sizeof(gen));
}

static void canned_setup(void);

static void gen_start(bool keep_state)
{
    /* the backend left this thread with the last caller's fsuid and a umask of 0 */
    fs_posix_thread_reset();
    if (!keep_state) {
        TIMED("remove_state_db", remove_state_db());
        TIMED("build_tree", build_tree());
    }
    memset(&tr, 0, sizeof(tr));
    TIMED("lock_space_create", gen.locks = lock_space_create(NULL));
    struct nfs4_server_config cfg = {
        .state_dir = state_dir,
        .lease_seconds = 90,
        .max_minor = 2,
    };
    int rc;
    TIMED("nfs4_server_create", rc = nfs4_server_create(&gen.nfs4, &table, &fh_key, write_verf, gen.locks, &cfg));
    if (!gen.locks || rc < 0)
        abort();
    /* No callback leaves the process: see process_state_work(). */
    TIMED("nfs4_cb_stop", nfs4_cb_stop(gen.nfs4));
    TIMED("conn_open", gen.conn = conn_open(&gen.client_fd));
    TIMED("canned_setup", canned_setup());
}

/* The callback thread's job, done in line and deterministically: 4.0 callback paths
 * are up, recalls reach the client. */
static void process_state_work(void)
{
    struct state_work *w = NULL;
    size_t n = state_work_take(gen.nfs4->state, &w);
    for (size_t i = 0; i < n; i++) {
        if (w[i].kind == STATE_WORK_CB_PROBE)
            state_client_set_cb_up(w[i].client, true);
        else if (w[i].kind == STATE_WORK_CB_RECALL && w[i].deleg)
            state_deleg_recall_sent(gen.nfs4->state, w[i].deleg, true);
    }
    state_work_free(w, n);
}

/* ------------------------------------------------------------------ replies */

static void fail(const char *what, const uint8_t *args, size_t len)
{
    fprintf(stderr, "fuzz_nfs4_compound: %s (request of %zu bytes)\n", what, len);
    (void)args;
    abort();
}

/* Which result of a reply does not decode, for the report (quiet: no output). Returns
 * that result's op number and sets *left to the bytes from its start to the end. */
static uint32_t explain_reply(size_t reply_len, bool quiet, size_t *left_out)
{
    struct xdr_arena arena;
    struct xdr_dec x;
    xdr_arena_init(&arena, reply_arena_mem, REPLY_ARENA_SIZE);
    xdr_dec_init(&x, res_buf, reply_len, &arena);
    uint32_t status, n;
    utf8str_cs tag;
    *left_out = 0;
    if (!xdr_dec_u32(&x, &status) || !xdr_decode_utf8str_cs(&x, &tag) || !xdr_dec_u32(&x, &n)) {
        fprintf(stderr, "reply header does not decode (%zu bytes)\n", reply_len);
        return OP_ILLEGAL;
    }
    if (!quiet)
        fprintf(stderr, "reply: status %u, %u results, %zu bytes\n", status, n, reply_len);
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *at = x.p;
        nfs_resop4 r;
        if (!xdr_decode_nfs_resop4(&x, &r)) {
            size_t off = (size_t)(at - res_buf), left = reply_len - off;
            *left_out = left;
            if (quiet)
                return left >= 4 ? xdr_get_be32(at) : OP_ILLEGAL;
            fprintf(stderr, "result %u (op %s, status %u) at offset %zu does not decode; bytes:", i,
                    left >= 4 ? nfs4_op_name(xdr_get_be32(at)) : "?", left >= 8 ? xdr_get_be32(at + 4) : 0, off);
            for (size_t k = 0; k < left && k < 256; k++)
                fprintf(stderr, "%s%02x", k % 32 ? "" : "\n  ", at[k]);
            fprintf(stderr, "\n");
            return left >= 4 ? xdr_get_be32(at) : OP_ILLEGAL;
        }
        if (!quiet)
            fprintf(stderr, "result %u: %s status %u\n", i, nfs4_op_name(r.resop), r.opillegal.status);
    }
    return OP_ILLEGAL;
}

static void track_result(const nfs_resop4 *r);

/* Follow the results: remember what later chunks may name by token. */
static void track_result(const nfs_resop4 *r)
{
    switch (r->resop) {
    case OP_GETFH:
        if (r->opgetfh.status == NFS4_OK && r->opgetfh.resok4.object.len <= NFS4_FHSIZE) {
            tr.fh_len = r->opgetfh.resok4.object.len;
            memcpy(tr.fh, r->opgetfh.resok4.object.val, tr.fh_len);
        }
        break;
    case OP_SETCLIENTID:
        if (r->opsetclientid.status == NFS4_OK) {
            tr.clid40 = r->opsetclientid.resok4.clientid;
            memcpy(tr.confirm, r->opsetclientid.resok4.setclientid_confirm, 8);
        }
        break;
    case OP_EXCHANGE_ID:
        if (r->opexchange_id.eir_status == NFS4_OK) {
            tr.clid41 = r->opexchange_id.eir_resok4.eir_clientid;
            tr.seq41 = r->opexchange_id.eir_resok4.eir_sequenceid;
        }
        break;
    case OP_CREATE_SESSION:
        if (r->opcreate_session.csr_status == NFS4_OK) {
            memcpy(tr.sessionid, r->opcreate_session.csr_resok4.csr_sessionid, 16);
            tr.have_session = true;
            tr.slot0_seq = 0;
        }
        break;
    case OP_OPEN:
        if (r->opopen.status == NFS4_OK) {
            tr.open_sid = r->opopen.resok4.stateid;
            const open_delegation4 *d = &r->opopen.resok4.delegation;
            if (d->delegation_type == OPEN_DELEGATE_READ)
                tr.deleg_sid = d->read.stateid;
            else if (d->delegation_type == OPEN_DELEGATE_WRITE)
                tr.deleg_sid = d->write.stateid;
        }
        break;
    case OP_OPEN_CONFIRM:
        if (r->opopen_confirm.status == NFS4_OK)
            tr.open_sid = r->opopen_confirm.resok4.open_stateid;
        break;
    case OP_OPEN_DOWNGRADE:
        if (r->opopen_downgrade.status == NFS4_OK)
            tr.open_sid = r->opopen_downgrade.resok4.open_stateid;
        break;
    case OP_LOCK:
        if (r->oplock.status == NFS4_OK)
            tr.lock_sid = r->oplock.resok4.lock_stateid;
        break;
    case OP_LOCKU:
        if (r->oplocku.status == NFS4_OK)
            tr.lock_sid = r->oplocku.lock_stateid;
        break;
    default:
        break;
    }
}

/* The reply must be a COMPOUND4res whose status is its last result's. Returns the
 * first result's status (SEQUENCE's, when the prefix sent one), or -1. */
static int64_t check_reply(const uint8_t *args, size_t args_len, size_t reply_len, unsigned nops)
{
    struct xdr_arena arena;
    struct xdr_dec x;
    COMPOUND4res res;
    xdr_arena_init(&arena, reply_arena_mem, REPLY_ARENA_SIZE);
    xdr_dec_init(&x, res_buf, reply_len, &arena);
    if (!xdr_decode_COMPOUND4res(&x, &res)) {
        size_t left;
        explain_reply(reply_len, false, &left);
        fail("reply does not decode as COMPOUND4res", args, args_len);
    }
    if (xdr_dec_left(&x) != 0)
        fail("bytes after the COMPOUND4res", args, args_len);
    if (res.resarray.len > nops && res.resarray.len > 1)
        fail("more results than ops", args, args_len);
    if (res.resarray.len) {
        const nfs_resop4 *last = &res.resarray.val[res.resarray.len - 1];
        /* the status word of every result arm is its first field */
        uint32_t last_status = last->opillegal.status;
        if (last_status != res.status)
            fail("COMPOUND status is not the last result's", args, args_len);
    }
    if (trace) {
        fprintf(stderr, "  -> %u:", (unsigned)res.status);
        for (uint32_t i = 0; i < res.resarray.len; i++)
            fprintf(stderr, " %s=%u", nfs4_op_name(res.resarray.val[i].resop),
                    (unsigned)res.resarray.val[i].opillegal.status);
        fprintf(stderr, "\n");
    }
    for (uint32_t i = 0; i < res.resarray.len; i++)
        track_result(&res.resarray.val[i]);
    return res.resarray.len ? (int64_t)res.resarray.val[0].opillegal.status : -1;
}

/* One COMPOUND call as rpc/ makes it: first on a loop thread, again on the blocking
 * pool when the engine asks. The request is copied to a buffer of its exact size so
 * that ASan sees any read past its end. */
static int64_t call_compound(const uint8_t *args, size_t len, uint32_t uid, unsigned nops)
{
    uint8_t *req = malloc(len ? len : 1);
    if (!req)
        abort();
    if (len)
        memcpy(req, args, len);
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(800)};
    peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct xdr_arena arena;
    struct rpc_call call;
    enum rpc_accept_status st = RPC_REQUEUE_BLOCKING;
    for (int pass = 0; pass < 2 && st == RPC_REQUEUE_BLOCKING; pass++) {
        call = (struct rpc_call){
            .conn = null_conn ? NULL : gen.conn,
            .peer = (const struct sockaddr *)&peer,
            .peer_len = sizeof(peer),
            .xid = next_xid++,
            .prog = NFS4_PROGRAM,
            .vers = 4,
            .proc = NFSPROC4_COMPOUND,
            .cred = {.flavor = RPC_AUTH_SYS, .uid = uid, .gid = uid, .ngids = 1, .gids = {uid}},
            .prog_ctx = gen.nfs4,
            .on_blocking_pool = pass == 1,
        };
        xdr_arena_init(&arena, arena_mem, ARENA_SIZE);
        xdr_dec_init(&call.args, req, len, &arena);
        xdr_enc_init(&call.res, res_buf, RES_SIZE);
        st = nfs4_proc_compound(&call);
    }
    int64_t first = -1;
    if (st == RPC_SUCCESS)
        first = check_reply(req, len, xdr_enc_len(&call.res), nops);
    else if (st != RPC_GARBAGE_ARGS && st != RPC_SYSTEM_ERR)
        fail("unexpected accept status", req, len); /* answered synchronously, once */
    free(req);
    process_state_work();
    return first;
}

/* ------------------------------------------------------------------ requests */

static void compound_head(struct wbuf *b, const char *tag, uint32_t minor, uint32_t nops)
{
    wb_str(b, tag);
    wb_u32(b, minor);
    wb_u32(b, nops);
}

static void op_sequence(struct wbuf *b, const uint8_t sid[16], uint32_t seq, uint32_t slot, bool cache)
{
    wb_u32(b, OP_SEQUENCE);
    wb_bytes(b, sid, 16);
    wb_u32(b, seq);
    wb_u32(b, slot);
    wb_u32(b, slot);
    wb_u32(b, cache);
}

static void op_setclientid(struct wbuf *b, const char *id, const char *verf8)
{
    wb_u32(b, OP_SETCLIENTID);
    wb_bytes(b, verf8, 8);
    wb_str(b, id);
    wb_u32(b, 0x40000000); /* cb_program */
    wb_str(b, "tcp");
    wb_str(b, "127.0.0.1.3.1");
    wb_u32(b, 1); /* callback_ident */
}

static void op_exchange_id(struct wbuf *b, const char *owner, const char *verf8)
{
    wb_u32(b, OP_EXCHANGE_ID);
    wb_bytes(b, verf8, 8);
    wb_str(b, owner);
    wb_u32(b, 0);       /* flags */
    wb_u32(b, SP4_NONE);
    wb_u32(b, 0);       /* no client impl id */
}

static void channel_attrs(struct wbuf *b, uint32_t size, uint32_t cached, uint32_t ops, uint32_t slots)
{
    wb_u32(b, 0);
    wb_u32(b, size);
    wb_u32(b, size);
    wb_u32(b, cached);
    wb_u32(b, ops);
    wb_u32(b, slots);
    wb_u32(b, 0); /* no rdma_ird */
}

static void op_create_session(struct wbuf *b, const uint8_t *clid8, uint32_t seq)
{
    wb_u32(b, OP_CREATE_SESSION);
    wb_bytes(b, clid8, 8);
    wb_u32(b, seq);
    wb_u32(b, CREATE_SESSION4_FLAG_CONN_BACK_CHAN);
    channel_attrs(b, (1u << 20) + 8192, 64 * 1024, 16, 8);
    channel_attrs(b, 64 * 1024, 0, 8, 2);
    wb_u32(b, 0x40000000); /* cb_program */
    wb_u32(b, 1);          /* one callback_sec_parms4: AUTH_NONE */
    wb_u32(b, 0);
}

/* The harness' own clients; a failure here is a server bug (nothing random yet). */
static void canned_setup(void)
{
    struct wbuf b = {0};
    compound_head(&b, "setup40", 0, 1);
    op_setclientid(&b, "peernfs-fuzz-client-40", "verf0040");
    if (call_compound(b.p, b.len, 0, 1) != NFS4_OK)
        fail("canned SETCLIENTID failed", b.p, b.len);
    b.len = 0;
    compound_head(&b, "confirm40", 0, 1);
    wb_u32(&b, OP_SETCLIENTID_CONFIRM);
    wb_u64(&b, tr.clid40);
    wb_bytes(&b, tr.confirm, 8);
    int64_t st = call_compound(b.p, b.len, 0, 1);
    if (st != NFS4_OK)
        fail("canned SETCLIENTID_CONFIRM failed", b.p, b.len);
    b.len = 0;
    compound_head(&b, "setup41", 1, 1);
    op_exchange_id(&b, "peernfs-fuzz-client-41", "verf0041");
    if (call_compound(b.p, b.len, 0, 1) != NFS4_OK)
        fail("canned EXCHANGE_ID failed", b.p, b.len);
    b.len = 0;
    compound_head(&b, "session41", 1, 1);
    uint8_t clid[8];
    put_be64(clid, tr.clid41);
    op_create_session(&b, clid, tr.seq41);
    if (call_compound(b.p, b.len, 0, 1) != NFS4_OK)
        fail("canned CREATE_SESSION failed", b.p, b.len);
    free(b.p);
}

/* Run one chunk: the prefix the ctl byte asks for, then the raw ops. */
static void run_chunk(uint8_t ctl, uint8_t nraw, const uint8_t *payload, size_t len, struct wbuf *b)
{
    uint32_t minor = ctl & 3, fhp = (ctl >> 2) & 3, uid = (ctl & 0x40) ? USER_ID : 0;
    bool seq = (ctl & 0x10) && minor >= 1 && minor <= 2 && tr.have_session;
    b->len = 0;
    if (minor == 3) {
        wb_bytes(b, payload, len);
        substitute_tokens(b->p, b->len);
        call_compound(b->p, b->len, uid, 1024);
        return;
    }
    uint32_t nops = nraw + (seq ? 1 : 0) + (fhp ? 1 : 0);
    compound_head(b, "fuzz", minor, nops);
    uint32_t seqid = 0;
    if (seq) {
        seqid = (ctl & 0x80) ? tr.slot0_seq : tr.slot0_seq + 1;
        op_sequence(b, tr.sessionid, seqid, 0, (ctl & 0x20) != 0);
    }
    switch (fhp) {
    case 1: wb_u32(b, OP_PUTROOTFH); break;
    case 2: wb_u32(b, OP_PUTFH); wb_opaque(b, root_fh, root_fh_len); break;
    case 3:
        wb_u32(b, OP_PUTFH);
        if (tr.fh_len)
            wb_opaque(b, tr.fh, tr.fh_len);
        else
            wb_opaque(b, root_fh, root_fh_len);
        break;
    }
    size_t raw_at = b->len;
    wb_bytes(b, payload, len);
    substitute_tokens(b->p + raw_at, len);
    int64_t first = call_compound(b->p, b->len, uid, nops);
    if (seq && first == NFS4_OK)
        tr.slot0_seq = seqid;
}

/* ------------------------------------------------------------------ seeds */

struct seed {
    struct wbuf in;  /* the input being written */
    struct wbuf ops; /* the current chunk's ops */
    unsigned nops;
};

static void seed_chunk_begin(struct seed *s)
{
    s->ops.len = 0;
    s->nops = 0;
}

static void seed_chunk_end(struct seed *s, uint8_t ctl)
{
    wb_u8(&s->in, ctl);
    wb_u8(&s->in, (uint8_t)s->nops);
    wb_u8(&s->in, (uint8_t)(s->ops.len >> 8));
    wb_u8(&s->in, (uint8_t)s->ops.len);
    wb_bytes(&s->in, s->ops.p, s->ops.len);
    seed_chunk_begin(s);
}

#define S_OP(s, n) (wb_u32(&(s)->ops, (n)), (s)->nops++)
#define CTL(minor, fhp, flags) ((uint8_t)((minor) | ((fhp) << 2) | (flags)))
enum { FH_NONE = 0, FH_ROOT = 1, FH_EXPORT = 2, FH_LAST = 3 };
enum { SEQ = 0x10, CACHE = 0x20, USER = 0x40, RESEND = 0x80 };

static const uint8_t zero_sid[16];
static const uint8_t cur_sid[16] = {0, 0, 0, 1}; /* 4.1 current stateid */

static void s_sid(struct seed *s, const void *sid16) { wb_bytes(&s->ops, sid16, 16); }
static void s_lookup(struct seed *s, const char *name) { S_OP(s, OP_LOOKUP); wb_str(&s->ops, name); }
static void s_getfh(struct seed *s) { S_OP(s, OP_GETFH); }

static void s_getattr(struct seed *s, uint32_t w0, uint32_t w1, uint32_t w2)
{
    S_OP(s, OP_GETATTR);
    wb_u32(&s->ops, w2 ? 3 : 2);
    wb_u32(&s->ops, w0);
    wb_u32(&s->ops, w1);
    if (w2)
        wb_u32(&s->ops, w2);
}

/* fattr4 with size and/or mode */
static void s_fattr(struct wbuf *b, bool size, uint64_t sz, bool mode, uint32_t m)
{
    wb_u32(b, 2);
    wb_u32(b, size ? 1u << FATTR4_SIZE : 0);
    wb_u32(b, mode ? 1u << (FATTR4_MODE - 32) : 0);
    wb_u32(b, (size ? 8 : 0) + (mode ? 4 : 0));
    if (size)
        wb_u64(b, sz);
    if (mode)
        wb_u32(b, m);
}

static void s_open(struct seed *s, uint32_t seqid, uint32_t access, uint32_t deny, const char *clid_tok,
                   const char *owner, bool create, const char *name)
{
    S_OP(s, OP_OPEN);
    wb_u32(&s->ops, seqid);
    wb_u32(&s->ops, access);
    wb_u32(&s->ops, deny);
    wb_bytes(&s->ops, clid_tok, 8);
    wb_str(&s->ops, owner);
    wb_u32(&s->ops, create ? OPEN4_CREATE : OPEN4_NOCREATE);
    if (create) {
        wb_u32(&s->ops, UNCHECKED4);
        s_fattr(&s->ops, false, 0, true, 0644);
    }
    wb_u32(&s->ops, CLAIM_NULL);
    wb_str(&s->ops, name);
}

/* OPEN with a create mode (UNCHECKED4..EXCLUSIVE4_1, or -1: no create) and a claim
 * (CLAIM_NULL / CLAIM_FH / CLAIM_DELEGATE_CUR ...; name unused for the _FH claims). */
static void s_open_how(struct seed *s, uint32_t seqid, uint32_t access, const char *clid_tok, const char *owner,
                       int createmode, uint32_t claim, const char *name)
{
    S_OP(s, OP_OPEN);
    wb_u32(&s->ops, seqid);
    wb_u32(&s->ops, access);
    wb_u32(&s->ops, 0);
    wb_bytes(&s->ops, clid_tok, 8);
    wb_str(&s->ops, owner);
    wb_u32(&s->ops, createmode < 0 ? OPEN4_NOCREATE : OPEN4_CREATE);
    if (createmode >= 0) {
        wb_u32(&s->ops, (uint32_t)createmode);
        if (createmode == EXCLUSIVE4 || createmode == EXCLUSIVE4_1)
            wb_bytes(&s->ops, "exclverf", 8);
        if (createmode != EXCLUSIVE4)
            s_fattr(&s->ops, false, 0, true, 0640);
    }
    wb_u32(&s->ops, claim);
    if (claim == CLAIM_NULL || claim == CLAIM_DELEGATE_PREV)
        wb_str(&s->ops, name);
    else if (claim == CLAIM_DELEGATE_CUR) {
        s_sid(s, TOK_DELEG);
        wb_str(&s->ops, name);
    } else if (claim == CLAIM_DELEG_CUR_FH)
        s_sid(s, TOK_DELEG);
    else if (claim == CLAIM_PREVIOUS)
        wb_u32(&s->ops, OPEN_DELEGATE_NONE);
}

static void s_read(struct seed *s, const void *sid, uint64_t off, uint32_t count)
{
    S_OP(s, OP_READ);
    s_sid(s, sid);
    wb_u64(&s->ops, off);
    wb_u32(&s->ops, count);
}

static void s_write(struct seed *s, const void *sid, uint64_t off, uint32_t stable, const char *data)
{
    S_OP(s, OP_WRITE);
    s_sid(s, sid);
    wb_u64(&s->ops, off);
    wb_u32(&s->ops, stable);
    wb_str(&s->ops, data);
}

static void s_lock_new(struct seed *s, uint32_t type, uint64_t off, uint64_t len, uint32_t open_seqid,
                       const void *open_sid, const char *clid_tok, const char *owner)
{
    S_OP(s, OP_LOCK);
    wb_u32(&s->ops, type);
    wb_u32(&s->ops, 0); /* reclaim */
    wb_u64(&s->ops, off);
    wb_u64(&s->ops, len);
    wb_u32(&s->ops, 1); /* new lock owner */
    wb_u32(&s->ops, open_seqid);
    s_sid(s, open_sid);
    wb_u32(&s->ops, 0); /* lock_seqid */
    wb_bytes(&s->ops, clid_tok, 8);
    wb_str(&s->ops, owner);
}

static void s_lock_exist(struct seed *s, uint32_t type, uint64_t off, uint64_t len, const void *lock_sid,
                         uint32_t lock_seqid)
{
    S_OP(s, OP_LOCK);
    wb_u32(&s->ops, type);
    wb_u32(&s->ops, 0);
    wb_u64(&s->ops, off);
    wb_u64(&s->ops, len);
    wb_u32(&s->ops, 0);
    s_sid(s, lock_sid);
    wb_u32(&s->ops, lock_seqid);
}

static void s_lockt(struct seed *s, uint32_t type, uint64_t off, uint64_t len, const char *clid_tok,
                    const char *owner)
{
    S_OP(s, OP_LOCKT);
    wb_u32(&s->ops, type);
    wb_u64(&s->ops, off);
    wb_u64(&s->ops, len);
    wb_bytes(&s->ops, clid_tok, 8);
    wb_str(&s->ops, owner);
}

static void s_locku(struct seed *s, uint32_t seqid, const void *sid, uint64_t off, uint64_t len)
{
    S_OP(s, OP_LOCKU);
    wb_u32(&s->ops, WRITE_LT);
    wb_u32(&s->ops, seqid);
    s_sid(s, sid);
    wb_u64(&s->ops, off);
    wb_u64(&s->ops, len);
}

static void s_close(struct seed *s, uint32_t seqid, const void *sid)
{
    S_OP(s, OP_CLOSE);
    wb_u32(&s->ops, seqid);
    s_sid(s, sid);
}

static void s_readdir(struct seed *s, uint32_t w0, uint32_t w1)
{
    S_OP(s, OP_READDIR);
    wb_u64(&s->ops, 0);
    wb_u64(&s->ops, 0);
    wb_u32(&s->ops, 4096);
    wb_u32(&s->ops, 32768);
    wb_u32(&s->ops, 2);
    wb_u32(&s->ops, w0);
    wb_u32(&s->ops, w1);
}

static void s_create(struct seed *s, uint32_t type, const char *name, const char *linkdata)
{
    S_OP(s, OP_CREATE);
    wb_u32(&s->ops, type);
    if (type == NF4LNK)
        wb_str(&s->ops, linkdata);
    else if (type == NF4BLK || type == NF4CHR) {
        wb_u32(&s->ops, 1);
        wb_u32(&s->ops, 3);
    }
    wb_str(&s->ops, name);
    s_fattr(&s->ops, false, 0, true, 0755);
}

static void s_setattr(struct seed *s, const void *sid, bool size, uint64_t sz, bool mode, uint32_t m)
{
    S_OP(s, OP_SETATTR);
    s_sid(s, sid);
    s_fattr(&s->ops, size, sz, mode, m);
}

static void s_name_op(struct seed *s, uint32_t op, const char *name)
{
    S_OP(s, op);
    wb_str(&s->ops, name);
}

static void s_offset_op(struct seed *s, uint32_t op, const void *sid, uint64_t off, uint64_t len)
{
    S_OP(s, op);
    s_sid(s, sid);
    wb_u64(&s->ops, off);
    wb_u64(&s->ops, len);
}

static void s_setxattr(struct seed *s, uint32_t how, const char *name, const char *value)
{
    S_OP(s, OP_SETXATTR);
    wb_u32(&s->ops, how);
    wb_str(&s->ops, name);
    wb_str(&s->ops, value);
}

static void s_listxattrs(struct seed *s, uint64_t cookie, uint32_t maxcount)
{
    S_OP(s, OP_LISTXATTRS);
    wb_u64(&s->ops, cookie);
    wb_u32(&s->ops, maxcount);
}

#define W0_COMMON ((1u << FATTR4_TYPE) | (1u << FATTR4_CHANGE) | (1u << FATTR4_SIZE) | (1u << FATTR4_FSID) | \
                   (1u << FATTR4_FILEID))
#define W1_COMMON ((1u << (FATTR4_MODE - 32)) | (1u << (FATTR4_NUMLINKS - 32)) | (1u << (FATTR4_OWNER - 32)) | \
                   (1u << (FATTR4_OWNER_GROUP - 32)) | (1u << (FATTR4_TIME_MODIFY - 32)))

/* ... of word 2 but mode_set_masked and mode_umask */
#define W2_READABLE (~((1u << (FATTR4_MODE_SET_MASKED - 64)) | (1u << (FATTR4_MODE_UMASK - 64))))
/* every attribute of word 1 but the write-only time_access_set and time_modify_set */
#define W1_READABLE (~((1u << (FATTR4_TIME_ACCESS_SET - 32)) | (1u << (FATTR4_TIME_MODIFY_SET - 32))))

static void seed_write(const char *dir, const char *name, struct seed *s)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(s->in.p, 1, s->in.len, f) != s->in.len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    free(s->in.p);
    free(s->ops.p);
    memset(s, 0, sizeof(*s));
}

static void write_seeds(const char *dir)
{
    struct seed s = {0};
    const char *ow = "owner-1";

    /* 4.0 browsing: the pseudo root, the export, attributes, a directory listing */
    s_getattr(&s, W0_COMMON, W1_COMMON, 0);
    s_readdir(&s, W0_COMMON, W1_COMMON);
    s_lookup(&s, "tmp");
    s_lookup(&s, "peernfs-fuzz-nfs4.mnt");
    s_lookup(&s, "export");
    s_getfh(&s);
    s_readdir(&s, W0_COMMON, W1_COMMON);
    seed_chunk_end(&s, CTL(0, FH_ROOT, 0));
    s_lookup(&s, "dir");
    S_OP(&s, OP_LOOKUPP);
    s_lookup(&s, "link");
    S_OP(&s, OP_READLINK);
    s_getattr(&s, 0xffffffff, W1_READABLE, 0);
    seed_chunk_end(&s, CTL(0, FH_LAST, 0));
    seed_write(dir, "v40-browse", &s);

    /* 4.0 file life: OPEN (create), OPEN_CONFIRM, WRITE, READ, LOCK, LOCKT, LOCKU, CLOSE */
    s_open(&s, 0, OPEN4_SHARE_ACCESS_BOTH, OPEN4_SHARE_DENY_NONE, TOK_CLID40, ow, true, "new40");
    s_getfh(&s);
    seed_chunk_end(&s, CTL(0, FH_EXPORT, 0));
    S_OP(&s, OP_OPEN_CONFIRM);
    s_sid(&s, TOK_OPEN);
    wb_u32(&s.ops, 1);
    seed_chunk_end(&s, CTL(0, FH_LAST, 0));
    s_write(&s, TOK_OPEN, 0, FILE_SYNC4, "hello, world");
    s_write(&s, TOK_OPEN, 1 << 16, UNSTABLE4, "more");
    S_OP(&s, OP_COMMIT);
    wb_u64(&s.ops, 0);
    wb_u32(&s.ops, 0);
    s_read(&s, TOK_OPEN, 0, 100);
    s_lock_new(&s, WRITE_LT, 0, 10, 2, TOK_OPEN, TOK_CLID40, "lockowner-1");
    seed_chunk_end(&s, CTL(0, FH_LAST, 0));
    s_lockt(&s, READ_LT, 50, 100, TOK_CLID40, "lockowner-2");
    s_lockt(&s, WRITE_LT, 0, UINT64_MAX, TOK_CLID40, "lockowner-2"); /* DENIED, with data */
    seed_chunk_end(&s, CTL(0, FH_LAST, 0));
    s_lock_exist(&s, READ_LT, 20, 10, TOK_LOCK, 1);
    seed_chunk_end(&s, CTL(0, FH_LAST, 0));
    s_locku(&s, 2, TOK_LOCK, 0, UINT64_MAX);
    S_OP(&s, OP_OPEN_DOWNGRADE);
    s_sid(&s, TOK_OPEN);
    wb_u32(&s.ops, 3);
    wb_u32(&s.ops, OPEN4_SHARE_ACCESS_READ);
    wb_u32(&s.ops, OPEN4_SHARE_DENY_NONE);
    seed_chunk_end(&s, CTL(0, FH_LAST, 0));
    s_close(&s, 4, TOK_OPEN);
    S_OP(&s, OP_RELEASE_LOCKOWNER);
    wb_bytes(&s.ops, TOK_CLID40, 8);
    wb_str(&s.ops, "lockowner-1");
    seed_chunk_end(&s, CTL(0, FH_LAST, 0));
    S_OP(&s, OP_RENEW);
    wb_bytes(&s.ops, TOK_CLID40, 8);
    seed_chunk_end(&s, CTL(0, FH_NONE, 0));
    seed_write(dir, "v40-open-lock", &s);

    /* 4.0: special stateids, share denial between two owners, a second client */
    s_lookup(&s, "file");
    s_read(&s, zero_sid, 0, 4096);
    static const uint8_t ones[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    s_read(&s, ones, 4000, 200);
    s_write(&s, zero_sid, 4096, FILE_SYNC4, "appended");
    s_setattr(&s, zero_sid, true, 100, false, 0);
    seed_chunk_end(&s, CTL(0, FH_EXPORT, 0));
    s_open(&s, 7, OPEN4_SHARE_ACCESS_READ, OPEN4_SHARE_DENY_WRITE, TOK_CLID40, "owner-a", false, "file");
    seed_chunk_end(&s, CTL(0, FH_EXPORT, 0));
    s_open(&s, 9, OPEN4_SHARE_ACCESS_WRITE, OPEN4_SHARE_DENY_NONE, TOK_CLID40, "owner-b", false, "file");
    seed_chunk_end(&s, CTL(0, FH_EXPORT, 0));
    op_setclientid(&s.ops, "second-client", "verf2222");
    s.nops++;
    seed_chunk_end(&s, CTL(0, FH_NONE, 0));
    S_OP(&s, OP_SETCLIENTID_CONFIRM);
    wb_bytes(&s.ops, TOK_CLID40, 8);
    wb_bytes(&s.ops, TOK_CONFIRM, 8);
    seed_chunk_end(&s, CTL(0, FH_NONE, 0));
    seed_write(dir, "v40-share-clients", &s);

    /* 4.1 file life on the session: current stateid throughout */
    s_open(&s, 0, OPEN4_SHARE_ACCESS_BOTH | OPEN4_SHARE_ACCESS_WANT_NO_DELEG, 0, TOK_CLID41, ow, true, "new41");
    s_write(&s, cur_sid, 0, UNSTABLE4, "four-one data");
    s_read(&s, cur_sid, 0, 64);
    s_lock_new(&s, WRITE_LT, 0, 100, 0, cur_sid, TOK_CLID41, "lo41");
    s_locku(&s, 0, cur_sid, 0, 100);
    s_getfh(&s);
    seed_chunk_end(&s, CTL(1, FH_EXPORT, SEQ));
    s_setattr(&s, TOK_OPEN, true, 3, true, 0600);
    S_OP(&s, OP_FREE_STATEID);
    s_sid(&s, TOK_LOCK);
    s_close(&s, 0, TOK_OPEN);
    seed_chunk_end(&s, CTL(1, FH_LAST, SEQ | CACHE));
    for (int i = 0; i < 3; i++) { /* the same request, its retransmission, a false retry */
        S_OP(&s, OP_TEST_STATEID);
        wb_u32(&s.ops, 3);
        s_sid(&s, TOK_OPEN);
        s_sid(&s, TOK_LOCK);
        s_sid(&s, i < 2 ? zero_sid : cur_sid);
        seed_chunk_end(&s, CTL(1, FH_NONE, SEQ | CACHE | (i ? RESEND : 0)));
    }
    seed_write(dir, "v41-open-io", &s);

    /* 4.1 namespace: CREATE dir/symlink/fifo, RENAME, LINK, REMOVE, READDIR */
    s_create(&s, NF4DIR, "newdir", NULL);
    s_getfh(&s);
    S_OP(&s, OP_SAVEFH);
    s_create(&s, NF4LNK, "sym", "../file");
    S_OP(&s, OP_READLINK);
    S_OP(&s, OP_RESTOREFH);
    s_create(&s, NF4FIFO, "pipe", NULL);
    S_OP(&s, OP_RESTOREFH);
    S_OP(&s, OP_LOOKUPP);
    s_readdir(&s, W0_COMMON, W1_COMMON);
    seed_chunk_end(&s, CTL(1, FH_EXPORT, SEQ));
    s_lookup(&s, "dir");
    S_OP(&s, OP_SAVEFH);
    S_OP(&s, OP_LOOKUPP);
    s_lookup(&s, "newdir");
    S_OP(&s, OP_RENAME);
    wb_str(&s.ops, "a");
    wb_str(&s.ops, "moved");
    s_lookup(&s, "moved");
    S_OP(&s, OP_SAVEFH);
    S_OP(&s, OP_PUTROOTFH); /* the export again, through the pseudo fs */
    s_lookup(&s, "tmp");
    s_lookup(&s, "peernfs-fuzz-nfs4.mnt");
    s_lookup(&s, "export");
    s_name_op(&s, OP_LINK, "hardlink");
    s_name_op(&s, OP_REMOVE, "hardlink");
    seed_chunk_end(&s, CTL(1, FH_EXPORT, SEQ));
    s_lookup(&s, "newdir");
    s_name_op(&s, OP_REMOVE, "sym");
    s_name_op(&s, OP_REMOVE, "pipe");
    s_name_op(&s, OP_REMOVE, "moved");
    S_OP(&s, OP_LOOKUPP);
    s_name_op(&s, OP_REMOVE, "newdir");
    s_name_op(&s, OP_SECINFO, "dir");
    seed_chunk_end(&s, CTL(1, FH_EXPORT, SEQ));
    s_lookup(&s, "dir");
    S_OP(&s, OP_SECINFO_NO_NAME);
    wb_u32(&s.ops, SECINFO_STYLE4_PARENT);
    seed_chunk_end(&s, CTL(1, FH_EXPORT, SEQ));
    seed_write(dir, "v41-namespace", &s);

    /* 4.1 attributes and access, as uid 1000 too */
    s_getattr(&s, 0xffffffff, W1_READABLE, W2_READABLE);
    S_OP(&s, OP_ACCESS);
    wb_u32(&s.ops, 0x3f);
    S_OP(&s, OP_VERIFY);
    s_fattr(&s.ops, false, 0, true, 0777);
    seed_chunk_end(&s, CTL(1, FH_EXPORT, SEQ));
    s_lookup(&s, "secret");
    S_OP(&s, OP_ACCESS);
    wb_u32(&s.ops, 0x3f);
    S_OP(&s, OP_NVERIFY);
    s_fattr(&s.ops, true, 11, false, 0);
    s_setattr(&s, zero_sid, false, 0, true, 0666);
    seed_chunk_end(&s, CTL(1, FH_EXPORT, SEQ | USER));
    s_lookup(&s, "private");
    s_lookup(&s, "x");
    seed_chunk_end(&s, CTL(1, FH_EXPORT, SEQ | USER));
    seed_write(dir, "v41-attrs", &s);

    /* 4.2: ALLOCATE, DEALLOCATE, SEEK, READ_PLUS on the sparse file */
    s_lookup(&s, "big");
    s_open(&s, 0, OPEN4_SHARE_ACCESS_BOTH, 0, TOK_CLID41, "o42", false, "big");
    seed_chunk_end(&s, CTL(2, FH_EXPORT, SEQ)); /* OPEN on a file fh: NOTDIR */
    s_open(&s, 0, OPEN4_SHARE_ACCESS_BOTH, 0, TOK_CLID41, "o42", false, "big");
    s_offset_op(&s, OP_ALLOCATE, cur_sid, 8192, 8192);
    s_offset_op(&s, OP_DEALLOCATE, cur_sid, 0, 4096);
    S_OP(&s, OP_SEEK);
    s_sid(&s, cur_sid);
    wb_u64(&s.ops, 0);
    wb_u32(&s.ops, NFS4_CONTENT_DATA);
    S_OP(&s, OP_SEEK);
    s_sid(&s, cur_sid);
    wb_u64(&s.ops, 100);
    wb_u32(&s.ops, NFS4_CONTENT_HOLE);
    S_OP(&s, OP_READ_PLUS);
    s_sid(&s, cur_sid);
    wb_u64(&s.ops, 0);
    wb_u32(&s.ops, 1 << 20);
    s_close(&s, 0, cur_sid);
    seed_chunk_end(&s, CTL(2, FH_EXPORT, SEQ));
    seed_write(dir, "v42-sparse", &s);

    /* 4.2 extended attributes (RFC 8276): set, get, list, remove on a file and a
     * directory, the error cases, and as uid 1000 (no write permission) */
    s_lookup(&s, "file");
    s_setxattr(&s, SETXATTR4_CREATE, "color", "blue");
    s_setxattr(&s, SETXATTR4_EITHER, "shape", "");
    s_name_op(&s, OP_GETXATTR, "color");
    s_listxattrs(&s, 0, 4096);
    s_listxattrs(&s, 1, 28);
    s_setxattr(&s, SETXATTR4_REPLACE, "color", "red");
    s_name_op(&s, OP_REMOVEXATTR, "shape");
    seed_chunk_end(&s, CTL(2, FH_EXPORT, SEQ));
    s_lookup(&s, "file");
    s_setxattr(&s, SETXATTR4_CREATE, "color", "again"); /* EXIST */
    seed_chunk_end(&s, CTL(2, FH_EXPORT, SEQ));
    s_lookup(&s, "file");
    s_name_op(&s, OP_GETXATTR, "missing"); /* NOXATTR */
    seed_chunk_end(&s, CTL(2, FH_EXPORT, SEQ));
    s_lookup(&s, "file");
    s_listxattrs(&s, 0, 16); /* TOOSMALL */
    seed_chunk_end(&s, CTL(2, FH_EXPORT, SEQ));
    s_lookup(&s, "dir");
    s_setxattr(&s, SETXATTR4_EITHER, "d", "1");
    s_listxattrs(&s, 0, 4096);
    S_OP(&s, OP_ACCESS);
    wb_u32(&s.ops, 0x1ff);
    s_getattr(&s, 0, 0, 1u << (FATTR4_XATTR_SUPPORT - 64));
    seed_chunk_end(&s, CTL(2, FH_EXPORT, SEQ));
    s_lookup(&s, "file");
    s_setxattr(&s, SETXATTR4_EITHER, "u", "1000"); /* ACCESS */
    s_name_op(&s, OP_GETXATTR, "color");
    seed_chunk_end(&s, CTL(2, FH_EXPORT, SEQ | USER));
    s_lookup(&s, "link");
    s_name_op(&s, OP_GETXATTR, "color"); /* NOTSUPP: symlink */
    seed_chunk_end(&s, CTL(2, FH_EXPORT, SEQ));
    s_name_op(&s, OP_GETXATTR, "color"); /* NOTSUPP: pseudo-fs */
    seed_chunk_end(&s, CTL(2, FH_ROOT, SEQ));
    seed_write(dir, "v42-xattr", &s);

    /* 4.1 client and session ops: a second client with its own session, BIND_CONN,
     * RECLAIM_COMPLETE, DESTROY_SESSION, DESTROY_CLIENTID */
    op_exchange_id(&s.ops, "second-41", "verf4141");
    s.nops++;
    seed_chunk_end(&s, CTL(1, FH_NONE, 0));
    op_create_session(&s.ops, (const uint8_t *)TOK_CLID41, 1);
    s.nops++;
    seed_chunk_end(&s, CTL(1, FH_NONE, 0));
    S_OP(&s, OP_RECLAIM_COMPLETE);
    wb_u32(&s.ops, 0);
    seed_chunk_end(&s, CTL(1, FH_NONE, SEQ));
    S_OP(&s, OP_BIND_CONN_TO_SESSION);
    wb_bytes(&s.ops, TOK_SESSION, 16);
    wb_u32(&s.ops, CDFC4_BACK_OR_BOTH);
    wb_u32(&s.ops, 0);
    seed_chunk_end(&s, CTL(1, FH_NONE, 0));
    S_OP(&s, OP_DESTROY_SESSION);
    wb_bytes(&s.ops, TOK_SESSION, 16);
    seed_chunk_end(&s, CTL(1, FH_NONE, 0));
    S_OP(&s, OP_DESTROY_CLIENTID);
    wb_bytes(&s.ops, TOK_CLID41, 8);
    seed_chunk_end(&s, CTL(1, FH_NONE, 0));
    seed_write(dir, "v41-sessions", &s);

    /* delegations: a 4.1 read delegation, a conflicting 4.0 open for write (recall),
     * DELEGRETURN */
    s_open(&s, 0, OPEN4_SHARE_ACCESS_READ | OPEN4_SHARE_ACCESS_WANT_READ_DELEG, 0, TOK_CLID41, "dlg", false,
           "file");
    seed_chunk_end(&s, CTL(1, FH_EXPORT, SEQ));
    s_open(&s, 0, OPEN4_SHARE_ACCESS_WRITE, 0, TOK_CLID40, "writer", false, "file");
    seed_chunk_end(&s, CTL(0, FH_EXPORT, 0));
    s_lookup(&s, "file");
    S_OP(&s, OP_DELEGRETURN);
    s_sid(&s, TOK_DELEG);
    seed_chunk_end(&s, CTL(1, FH_EXPORT, SEQ));
    s_open(&s, 1, OPEN4_SHARE_ACCESS_WRITE, 0, TOK_CLID40, "writer", false, "file");
    seed_chunk_end(&s, CTL(0, FH_EXPORT, 0));
    seed_write(dir, "deleg-recall", &s);

    /* a restart: grace period, 4.0 and 4.1 reclaims, RECLAIM_COMPLETE */
    s_open(&s, 0, OPEN4_SHARE_ACCESS_BOTH, 0, TOK_CLID41, "reboot-owner", false, "file");
    seed_chunk_end(&s, CTL(1, FH_EXPORT, SEQ));
    s_open(&s, 0, OPEN4_SHARE_ACCESS_READ, 0, TOK_CLID40, "reboot40", false, "empty");
    seed_chunk_end(&s, CTL(0, FH_EXPORT, 0));
    S_OP(&s, OP_OPEN_CONFIRM);
    s_sid(&s, TOK_OPEN);
    wb_u32(&s.ops, 1);
    seed_chunk_end(&s, CTL(0, FH_NONE, 0)); /* NOFILEHANDLE: the owner stays unconfirmed */
    wb_u8(&s.in, 0xff);
    s_lookup(&s, "file");
    S_OP(&s, OP_OPEN);
    wb_u32(&s.ops, 0);
    wb_u32(&s.ops, OPEN4_SHARE_ACCESS_BOTH);
    wb_u32(&s.ops, 0);
    wb_bytes(&s.ops, TOK_CLID41, 8);
    wb_str(&s.ops, "reboot-owner");
    wb_u32(&s.ops, OPEN4_NOCREATE);
    wb_u32(&s.ops, CLAIM_PREVIOUS);
    wb_u32(&s.ops, OPEN_DELEGATE_NONE);
    seed_chunk_end(&s, CTL(1, FH_EXPORT, SEQ));
    S_OP(&s, OP_RECLAIM_COMPLETE);
    wb_u32(&s.ops, 0);
    seed_chunk_end(&s, CTL(1, FH_NONE, SEQ));
    s_open(&s, 0, OPEN4_SHARE_ACCESS_READ, 0, TOK_CLID41, "after-grace", false, "file");
    seed_chunk_end(&s, CTL(1, FH_EXPORT, SEQ));
    seed_write(dir, "restart-reclaim", &s);

    /* OPEN's create modes and claims, wrong types, offsets at the limits */
    s_open_how(&s, 0, OPEN4_SHARE_ACCESS_BOTH, TOK_CLID41, "edge", EXCLUSIVE4_1, CLAIM_NULL, "excl");
    s_getfh(&s);
    s_write(&s, cur_sid, 1ull << 40, FILE_SYNC4, "far away");
    seed_chunk_end(&s, CTL(1, FH_EXPORT, SEQ));
    s_open_how(&s, 0, OPEN4_SHARE_ACCESS_BOTH, TOK_CLID41, "edge", EXCLUSIVE4_1, CLAIM_NULL, "excl");
    s_write(&s, cur_sid, (1ull << 63) - 4, UNSTABLE4, "wrap");
    seed_chunk_end(&s, CTL(1, FH_EXPORT, SEQ)); /* the retry of an exclusive create */
    s_open_how(&s, 0, OPEN4_SHARE_ACCESS_READ, TOK_CLID41, "edge", GUARDED4, CLAIM_NULL, "file");
    seed_chunk_end(&s, CTL(1, FH_EXPORT, SEQ));
    s_lookup(&s, "fifo");
    s_open_how(&s, 0, OPEN4_SHARE_ACCESS_READ, TOK_CLID41, "edge", -1, CLAIM_FH, NULL);
    seed_chunk_end(&s, CTL(1, FH_EXPORT, SEQ));
    s_open_how(&s, 0, OPEN4_SHARE_ACCESS_READ, TOK_CLID41, "edge", -1, CLAIM_NULL, "dir");
    seed_chunk_end(&s, CTL(1, FH_EXPORT, SEQ));
    s_open_how(&s, 0, OPEN4_SHARE_ACCESS_READ, TOK_CLID41, "edge", UNCHECKED4, CLAIM_NULL, "link");
    seed_chunk_end(&s, CTL(1, FH_EXPORT, SEQ));
    s_lookup(&s, "file");
    s_open_how(&s, 0, OPEN4_SHARE_ACCESS_READ, TOK_CLID41, "edge", -1, CLAIM_DELEG_CUR_FH, NULL);
    seed_chunk_end(&s, CTL(1, FH_EXPORT, SEQ));
    s_read(&s, zero_sid, 0, 100); /* a directory */
    seed_chunk_end(&s, CTL(1, FH_EXPORT, SEQ));
    s_lookup(&s, "big");
    s_read(&s, zero_sid, (1 << 20) - 10, 1 << 20);
    s_read(&s, zero_sid, 0, 1 << 20); /* a reply near the buffer's size */
    s_read(&s, zero_sid, (1ull << 63) + 5, 1 << 20);
    seed_chunk_end(&s, CTL(1, FH_EXPORT, SEQ | CACHE));
    S_OP(&s, OP_READDIR);
    wb_u64(&s.ops, 12345);
    wb_bytes(&s.ops, "cookieve", 8);
    wb_u32(&s.ops, 10);
    wb_u32(&s.ops, 10);
    wb_u32(&s.ops, 1);
    wb_u32(&s.ops, W0_COMMON);
    seed_chunk_end(&s, CTL(1, FH_EXPORT, SEQ));
    s_lookup(&s, "empty");
    s_setattr(&s, zero_sid, true, 1ull << 62, false, 0);
    seed_chunk_end(&s, CTL(1, FH_EXPORT, SEQ));
    s_open_how(&s, 5, OPEN4_SHARE_ACCESS_WRITE, TOK_CLID40, "excl40", EXCLUSIVE4, CLAIM_NULL, "excl40");
    seed_chunk_end(&s, CTL(0, FH_EXPORT, 0));
    {
        static char big[60001];
        memset(big, 'w', sizeof(big) - 1);
        s_lookup(&s, "file");
        s_write(&s, zero_sid, 100, DATA_SYNC4, big);
        s_getattr(&s, W0_COMMON, W1_COMMON, 0);
        seed_chunk_end(&s, CTL(0, FH_EXPORT, 0));
    }
    seed_write(dir, "edge-io", &s);

    /* odd headers: a minor version we do not serve, too many ops, an empty COMPOUND,
     * an op number past the table, a truncated op */
    wb_str(&s.ops, "raw");
    wb_u32(&s.ops, 7);
    wb_u32(&s.ops, 1);
    wb_u32(&s.ops, OP_PUTROOTFH);
    seed_chunk_end(&s, CTL(3, 0, 0));
    wb_str(&s.ops, "many");
    wb_u32(&s.ops, 1);
    wb_u32(&s.ops, 100);
    wb_u32(&s.ops, OP_SEQUENCE);
    seed_chunk_end(&s, CTL(3, 0, 0));
    wb_str(&s.ops, "");
    wb_u32(&s.ops, 2);
    wb_u32(&s.ops, 0);
    seed_chunk_end(&s, CTL(3, 0, 0));
    S_OP(&s, 99);
    seed_chunk_end(&s, CTL(1, FH_ROOT, SEQ));
    S_OP(&s, OP_WRITE);
    wb_u32(&s.ops, 1);
    seed_chunk_end(&s, CTL(2, FH_EXPORT, SEQ));
    S_OP(&s, OP_PUTPUBFH);
    S_OP(&s, OP_OPENATTR);
    wb_u32(&s.ops, 0);
    seed_chunk_end(&s, CTL(0, FH_NONE, 0));
    seed_write(dir, "odd-headers", &s);
}

/* ------------------------------------------------------------------ libFuzzer */

/* PEERNFS_FUZZ_TRACE also counts each input's mallocs and frees (libFuzzer re-runs an
 * input under LeakSanitizer when they differ: an imbalance costs a run). */
static _Atomic long n_mallocs, n_frees;
#define LIVE_SLOTS (1u << 20)
static const volatile void **live_tab;
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static bool live_on;
static size_t live_slot(const volatile void *p) { return ((uintptr_t)p >> 4) * 2654435761u % LIVE_SLOTS; }
static void count_malloc(const volatile void *p, size_t n)
{
    (void)n;
    n_mallocs++;
    if (!live_on)
        return;
    pthread_mutex_lock(&live_mu);
    size_t i = live_slot(p);
    while (live_tab[i])
        i = (i + 1) % LIVE_SLOTS;
    live_tab[i] = p;
    pthread_mutex_unlock(&live_mu);
}
static void count_free(const volatile void *p)
{
    n_frees++;
    if (!live_on || !p)
        return;
    pthread_mutex_lock(&live_mu);
    size_t i = live_slot(p);
    for (size_t k = 0; k < LIVE_SLOTS && live_tab[i]; k++, i = (i + 1) % LIVE_SLOTS)
        if (live_tab[i] == p) {
            /* re-insert the rest of the run (linear probing delete) */
            live_tab[i] = NULL;
            for (size_t j = (i + 1) % LIVE_SLOTS; live_tab[j]; j = (j + 1) % LIVE_SLOTS) {
                const volatile void *q = live_tab[j];
                live_tab[j] = NULL;
                size_t h = live_slot(q);
                while (live_tab[h])
                    h = (h + 1) % LIVE_SLOTS;
                live_tab[h] = q;
            }
            break;
        }
    pthread_mutex_unlock(&live_mu);
}
size_t __asan_get_alloc_stack(void *addr, void **trace, size_t size, int *thread_id);
void __sanitizer_symbolize_pc(void *pc, const char *fmt, char *out_buf, size_t out_buf_size);
static void live_report(void)
{
    pthread_mutex_lock(&live_mu);
    live_on = false;
    for (size_t i = 0; i < LIVE_SLOTS; i++) {
        if (!live_tab[i])
            continue;
        void *tr_[16];
        int tid;
        size_t n = __asan_get_alloc_stack((void *)live_tab[i], tr_, 16, &tid);
        fprintf(stderr, "  still allocated %p:", (void *)live_tab[i]);
        for (size_t k = 0; k < n && k < 8; k++) {
            char buf[256];
            __sanitizer_symbolize_pc(tr_[k], "%f %L", buf, sizeof(buf));
            if (strstr(buf, "/work/main/"))
                fprintf(stderr, " <- %s", buf);
        }
        fprintf(stderr, "\n");
        live_tab[i] = NULL;
    }
    pthread_mutex_unlock(&live_mu);
}
int __sanitizer_install_malloc_and_free_hooks(void (*m)(const volatile void *, size_t),
                                              void (*f)(const volatile void *));

static unsigned reset_every = 1, runs_in_gen;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *seeds = getenv("PEERNFS_FUZZ_WRITE_SEEDS");
    if (seeds) {
        write_seeds(seeds);
        exit(0);
    }
    log_init("fuzz_nfs4_compound", getenv("PEERNFS_FUZZ_LOG") ? LOG_LVL_DEBUG : LOG_LVL_ERR, false);
    /* Inputs normally run against a fresh server (reproducible alone); a larger value
     * keeps state across inputs, to look for growth and for cross-input interactions. */
    trace = getenv("PEERNFS_FUZZ_TRACE") != NULL;
    null_conn = getenv("PEERNFS_FUZZ_NULL_CONN") != NULL;
    if (trace) {
        live_tab = calloc(LIVE_SLOTS, sizeof(*live_tab));
        __sanitizer_install_malloc_and_free_hooks(count_malloc, count_free);
    }
    const char *every = getenv("PEERNFS_FUZZ_RESET_EVERY");
    if (every && atoi(every) > 0)
        reset_every = (unsigned)atoi(every);
    res_buf = malloc(RES_SIZE);
    arena_mem = malloc(ARENA_SIZE);
    reply_arena_mem = malloc(REPLY_ARENA_SIZE);
    if (!res_buf || !arena_mem || !reply_arena_mem)
        abort();
    setup_export();
    conn_srv_start();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    long m0 = n_mallocs, f0 = n_frees;
    if (trace && getenv("PEERNFS_FUZZ_LIVE")) {
        pthread_mutex_lock(&live_mu);
        live_on = true;
        pthread_mutex_unlock(&live_mu);
    }
    if (!gen.nfs4) {
        /* here, not in LLVMFuzzerInitialize: libFuzzer installs its SIGXFSZ handler
         * after that (-handle_xfsz); the server must see EFBIG instead */
        signal(SIGXFSZ, SIG_IGN);
        gen_start(false);
    }
    struct wbuf b = {0};
    size_t at = 0;
    for (unsigned n = 0; n < MAX_CHUNKS && at < size; n++) {
        uint8_t ctl = data[at++];
        if (trace)
            fprintf(stderr, "chunk %u: ctl %#x\n", n, ctl);
        if (ctl == 0xff) { /* reboot, keeping the reclaim records and the files */
            gen_stop();
            gen_start(true);
            continue;
        }
        if (size - at < 3)
            break;
        uint8_t nraw = data[at];
        size_t len = (size_t)data[at + 1] << 8 | data[at + 2];
        at += 3;
        if (len > size - at)
            len = size - at;
        TIMED("chunk", run_chunk(ctl, nraw, data + at, len, &b));
        at += len;
    }
    free(b.p);
    /* Torn down at the end, not at the next start: what an input allocated is freed
     * within it, so libFuzzer's malloc/free balance flags real leaks only. */
    if (++runs_in_gen >= reset_every) {
        gen_stop();
        runs_in_gen = 0;
    }
    if (trace) {
        fprintf(stderr, "input: %ld mallocs, %ld frees\n", n_mallocs - m0, n_frees - f0);
        if (live_on)
            live_report();
    }
    return 0;
}
