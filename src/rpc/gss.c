/*
 * RPCSEC_GSS, server side (RFC 2203). See gss.h.
 *
 * Contexts live in a hash table keyed by the 8-byte handle the server hands out. Each
 * context has its own lock: GSS-API calls on one context are not thread-safe (the
 * Kerberos mechanism keeps sequence state in it), and the sequence window is updated
 * under it. A call holds a reference from its arrival to its reply, so DESTROY or an
 * eviction never frees a context in use.
 */
#include "rpc/gss.h"

#include <errno.h>
#include <grp.h>
#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "util/log.h"

#define HANDLE_LEN 8
#define NBUCKETS 256

struct rpc_gss_ctx {
    struct rpc_gss_ctx *next; /* hash chain */
    uint64_t id;              /* the handle on the wire */
    atomic_uint refs;         /* the table's one, plus one per call in progress */
    pthread_mutex_t mu;       /* GSS-API calls and the window */
    gss_ctx_id_t gss;
    atomic_bool established; /* set once, after the identity below */
    bool dead; /* removed from the table (DESTROY, expiry, eviction; table lock) */
    _Atomic int64_t expires;   /* monotonic seconds; INT64_MAX: no limit */
    _Atomic int64_t last_used; /* monotonic seconds, for eviction */
    struct rpc_gss_window window;
    struct rpc_cred cred; /* the caller's identity, from the principal */
};

struct rpc_gss {
    pthread_mutex_t mu; /* the table */
    struct rpc_gss_ctx *buckets[NBUCKETS];
    unsigned count;
    uint64_t next_id;
};

static int64_t now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

/* ---------- the context table ---------- */

struct rpc_gss *rpc_gss_new(void)
{
    struct rpc_gss *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    pthread_mutex_init(&g->mu, NULL);
    /* handles of an earlier incarnation must not name a new context by chance */
    if (getrandom(&g->next_id, sizeof(g->next_id), 0) != sizeof(g->next_id))
        g->next_id = (uint64_t)time(NULL) << 20;
    return g;
}

static void ctx_put(struct rpc_gss_ctx *c)
{
    if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    OM_uint32 minor;
    if (c->gss != GSS_C_NO_CONTEXT)
        gss_delete_sec_context(&minor, &c->gss, GSS_C_NO_BUFFER);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void rpc_gss_free(struct rpc_gss *g)
{
    if (!g)
        return;
    for (unsigned i = 0; i < NBUCKETS; i++) {
        while (g->buckets[i]) {
            struct rpc_gss_ctx *c = g->buckets[i];
            g->buckets[i] = c->next;
            ctx_put(c);
        }
    }
    pthread_mutex_destroy(&g->mu);
    free(g);
}

static void (*thread_reset)(void);

void rpc_gss_set_thread_reset(void (*reset)(void)) { thread_reset = reset; }

int rpc_gss_set_keytab(const char *path)
{
    return krb5_gss_register_acceptor_identity(path) == GSS_S_COMPLETE ? 0 : -EINVAL;
}

bool rpc_gss_acceptor_ready(char *why, size_t len)
{
    OM_uint32 major, minor, m2, ctx = 0;
    gss_cred_id_t cred = GSS_C_NO_CREDENTIAL;
    major = gss_acquire_cred(&minor, GSS_C_NO_NAME, GSS_C_INDEFINITE, GSS_C_NO_OID_SET, GSS_C_ACCEPT, &cred,
                             NULL, NULL);
    if (!GSS_ERROR(major)) {
        gss_release_cred(&m2, &cred);
        return true;
    }
    gss_buffer_desc text = GSS_C_EMPTY_BUFFER;
    gss_display_status(&m2, minor, GSS_C_MECH_CODE, GSS_C_NO_OID, &ctx, &text);
    snprintf(why, len, "%.*s", (int)text.length, text.length ? (const char *)text.value : "no keytab");
    gss_release_buffer(&m2, &text);
    return false;
}

static unsigned bucket_of(uint64_t id) { return (unsigned)(id ^ (id >> 17) ^ (id >> 41)) % NBUCKETS; }

/* Unlink c (table lock held) and drop the table's reference. */
static void table_remove_locked(struct rpc_gss *g, struct rpc_gss_ctx *c)
{
    for (struct rpc_gss_ctx **pp = &g->buckets[bucket_of(c->id)]; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            c->dead = true;
            g->count--;
            ctx_put(c);
            return;
        }
    }
}

static void table_remove(struct rpc_gss *g, struct rpc_gss_ctx *c)
{
    pthread_mutex_lock(&g->mu);
    if (!c->dead)
        table_remove_locked(g, c);
    pthread_mutex_unlock(&g->mu);
}

/* Make room for a new context: expired ones go first, then the least recently used. */
static void table_make_room_locked(struct rpc_gss *g)
{
    int64_t now = now_s();
    struct rpc_gss_ctx *lru = NULL;
    for (unsigned i = 0; i < NBUCKETS; i++) {
        for (struct rpc_gss_ctx *c = g->buckets[i], *next; c; c = next) {
            next = c->next;
            if (c->expires <= now)
                table_remove_locked(g, c);
            else if (!lru || c->last_used < lru->last_used)
                lru = c;
        }
    }
    if (g->count >= RPC_GSS_MAX_CONTEXTS && lru) {
        log_info("rpcsec_gss: %u contexts: dropping the least recently used (%s)", g->count,
                 lru->cred.machinename);
        table_remove_locked(g, lru);
    }
}

static struct rpc_gss_ctx *table_insert(struct rpc_gss *g, gss_ctx_id_t gctx)
{
    struct rpc_gss_ctx *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    pthread_mutex_init(&c->mu, NULL);
    atomic_init(&c->refs, 2); /* the table's and the caller's */
    c->gss = gctx;
    atomic_init(&c->expires, INT64_MAX);
    atomic_init(&c->last_used, now_s());
    pthread_mutex_lock(&g->mu);
    if (g->count >= RPC_GSS_MAX_CONTEXTS)
        table_make_room_locked(g);
    c->id = g->next_id++;
    unsigned b = bucket_of(c->id);
    c->next = g->buckets[b];
    g->buckets[b] = c;
    g->count++;
    pthread_mutex_unlock(&g->mu);
    return c;
}

/* The context a handle names, referenced; NULL when unknown. */
static struct rpc_gss_ctx *table_find(struct rpc_gss *g, const uint8_t *handle, uint32_t len)
{
    if (len != HANDLE_LEN)
        return NULL;
    uint64_t id = (uint64_t)xdr_get_be32(handle) << 32 | xdr_get_be32(handle + 4);
    pthread_mutex_lock(&g->mu);
    struct rpc_gss_ctx *c = g->buckets[bucket_of(id)];
    while (c && c->id != id)
        c = c->next;
    if (c)
        atomic_fetch_add(&c->refs, 1);
    pthread_mutex_unlock(&g->mu);
    return c;
}

/* ---------- GSS-API helpers ---------- */

static void log_gss_error(const char *what, OM_uint32 major, OM_uint32 minor)
{
    OM_uint32 m2, ctx = 0;
    gss_buffer_desc text = GSS_C_EMPTY_BUFFER;
    char buf[256] = "";
    gss_display_status(&m2, major, GSS_C_GSS_CODE, GSS_C_NO_OID, &ctx, &text);
    if (text.length)
        snprintf(buf, sizeof(buf), "%.*s", (int)text.length, (const char *)text.value);
    gss_release_buffer(&m2, &text);
    ctx = 0;
    gss_display_status(&m2, minor, GSS_C_MECH_CODE, GSS_C_NO_OID, &ctx, &text);
    log_info("rpcsec_gss: %s: %s%s%.*s", what, buf, text.length ? ": " : "", (int)text.length,
             text.length ? (const char *)text.value : "");
    gss_release_buffer(&m2, &text);
}

/* MIC of `len` bytes, written as an opaque<> at x (ctx->mu held). */
static bool enc_mic(struct rpc_gss_ctx *c, struct xdr_enc *x, const void *data, size_t len)
{
    OM_uint32 major, minor;
    gss_buffer_desc in = {.length = len, .value = (void *)data}, mic = GSS_C_EMPTY_BUFFER;
    major = gss_get_mic(&minor, c->gss, GSS_C_QOP_DEFAULT, &in, &mic);
    if (GSS_ERROR(major)) {
        log_gss_error("get_mic", major, minor);
        return false;
    }
    bool ok = xdr_enc_opaque(x, mic.value, (uint32_t)mic.length, 0);
    gss_release_buffer(&minor, &mic);
    return ok;
}

/* Append n bytes that may overlap the encoder's free space (results moved down to
 * follow a header longer than the room left for it). */
static bool enc_move(struct xdr_enc *x, const uint8_t *src, size_t n)
{
    size_t need = (n + 3) & ~(size_t)3;
    if (xdr_enc_left(x) < need)
        return false;
    memmove(x->p, src, n);
    memset(x->p + n, 0, need - n);
    x->p += need;
    return true;
}

/* Verifier of a reply: RPCSEC_GSS with the MIC of a 4-byte XDR number (ctx->mu held). */
static bool enc_verf_of(struct rpc_gss_ctx *c, struct xdr_enc *x, uint32_t number)
{
    uint8_t be[4];
    xdr_put_be32(be, number);
    return xdr_enc_u32(x, RPC_AUTH_GSS) && enc_mic(c, x, be, sizeof(be));
}

static bool verify_mic(struct rpc_gss_ctx *c, const void *data, size_t len, const void *tok, size_t toklen)
{
    OM_uint32 minor, major;
    gss_buffer_desc msg = {.length = len, .value = (void *)data};
    gss_buffer_desc token = {.length = toklen, .value = (void *)tok};
    /* supplementary bits (out-of-order, duplicate token) are normal here: RPC calls
     * overtake each other, and the sequence window is RPCSEC_GSS's own replay check */
    major = gss_verify_mic(&minor, c->gss, &msg, &token, NULL);
    if (GSS_ERROR(major)) {
        log_gss_error("verify_mic", major, minor);
        return false;
    }
    return true;
}

/* ---------- identity ---------- */

/* The local user a principal maps to: ids filled and true, or false (anonymous). */
static bool map_principal(gss_name_t name, struct rpc_cred *cred)
{
    OM_uint32 minor;
    gss_buffer_desc local = GSS_C_EMPTY_BUFFER;
    if (GSS_ERROR(gss_localname(&minor, name, GSS_C_NO_OID, &local)) || local.length == 0 ||
        local.length > 255) {
        gss_release_buffer(&minor, &local);
        return false;
    }
    char user[256];
    memcpy(user, local.value, local.length);
    user[local.length] = '\0';
    gss_release_buffer(&minor, &local);

    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) != 0 || !res)
        return false;
    cred->uid = pw.pw_uid;
    cred->gid = pw.pw_gid;
    gid_t groups[RPC_AUTHSYS_MAXGIDS];
    int n = RPC_AUTHSYS_MAXGIDS;
    if (getgrouplist(user, pw.pw_gid, groups, &n) < 0)
        n = RPC_AUTHSYS_MAXGIDS; /* more than fit: the first ones, as AUTH_SYS would carry */
    cred->ngids = (uint32_t)(n < 0 ? 0 : n);
    for (uint32_t i = 0; i < cred->ngids; i++)
        cred->gids[i] = groups[i];
    return true;
}

static void set_identity(struct rpc_gss_ctx *c, gss_name_t name)
{
    OM_uint32 minor;
    gss_buffer_desc text = GSS_C_EMPTY_BUFFER;
    struct rpc_cred *cr = &c->cred;
    cr->flavor = RPC_AUTH_GSS;
    if (!GSS_ERROR(gss_display_name(&minor, name, &text, NULL))) {
        size_t n = text.length < RPC_AUTHSYS_MAXNAME ? text.length : RPC_AUTHSYS_MAXNAME;
        memcpy(cr->machinename, text.value, n);
        cr->machinename[n] = '\0';
        cr->machinename_len = (uint32_t)n;
    }
    gss_release_buffer(&minor, &text);
    cr->has_ids = map_principal(name, cr);
    if (cr->has_ids)
        log_info("rpcsec_gss: context for %s (uid %u gid %u)", cr->machinename, cr->uid, cr->gid);
    else
        log_info("rpcsec_gss: context for %s (no local user: anonymous)", cr->machinename);
}

/* ---------- context creation ---------- */

/* rpc_gss_init_res with an accepted SUCCESS header: handle, statuses, window, token. */
static bool enc_init_reply(struct xdr_enc *out, uint32_t xid, struct rpc_gss_ctx *c, OM_uint32 major,
                           OM_uint32 minor, const gss_buffer_desc *token)
{
    uint8_t handle[HANDLE_LEN];
    uint32_t window = major == GSS_S_COMPLETE ? RPC_GSS_WINDOW : 0;
    bool ok = xdr_enc_u32(out, xid) && xdr_enc_u32(out, RPC_REPLY) && xdr_enc_u32(out, RPC_MSG_ACCEPTED);
    /* RFC 2203 5.2.3.1: a complete context's reply proves the server has it: the
     * verifier is the MIC of the window; otherwise a null verifier */
    if (ok && major == GSS_S_COMPLETE)
        ok = enc_verf_of(c, out, window);
    else if (ok)
        ok = xdr_enc_u32(out, RPC_AUTH_NONE) && xdr_enc_u32(out, 0);
    ok = ok && xdr_enc_u32(out, RPC_SUCCESS);
    if (c && !GSS_ERROR(major)) {
        xdr_put_be32(handle, (uint32_t)(c->id >> 32));
        xdr_put_be32(handle + 4, (uint32_t)c->id);
        ok = ok && xdr_enc_opaque(out, handle, HANDLE_LEN, 0);
    } else {
        ok = ok && xdr_enc_opaque(out, NULL, 0, 0);
    }
    return ok && xdr_enc_u32(out, major) && xdr_enc_u32(out, minor) && xdr_enc_u32(out, window) &&
           xdr_enc_opaque(out, token->value, (uint32_t)token->length, 0);
}

static enum rpc_gss_verdict gss_init(struct rpc_gss *g, const uint8_t *rec, size_t len,
                                     const struct rpc_call_hdr *hdr, struct xdr_enc *out,
                                     enum rpc_auth_stat *why)
{
    struct xdr_dec x;
    struct xdr_opaque token;
    struct rpc_gss_ctx *c = NULL;

    *why = RPC_AUTH_BADCRED;
    if (hdr->proc != 0) /* context creation goes through the NULL procedure only */
        return RPC_GSS_DENIED;
    if (hdr->gss.proc == RPC_GSS_PROC_CONTINUE_INIT) {
        c = table_find(g, hdr->gss.handle, hdr->gss.handle_len);
        if (!c || c->established) {
            ctx_put(c);
            *why = RPC_AUTH_GSS_CREDPROBLEM;
            return RPC_GSS_DENIED;
        }
    }
    xdr_dec_init(&x, rec + hdr->args_off, len - hdr->args_off, NULL);
    if (!xdr_dec_opaque(&x, &token, (uint32_t)(len - hdr->args_off))) {
        ctx_put(c);
        return RPC_GSS_GARBAGE;
    }

    OM_uint32 major, minor, time_rec = 0;
    gss_ctx_id_t gctx = c ? c->gss : GSS_C_NO_CONTEXT;
    gss_buffer_desc in = {.length = token.len, .value = (void *)token.val};
    gss_buffer_desc reply_token = GSS_C_EMPTY_BUFFER;
    gss_name_t name = GSS_C_NO_NAME;
    if (thread_reset) /* the thread may still have the last caller's file-system ids */
        thread_reset();
    if (c)
        pthread_mutex_lock(&c->mu);
    major = gss_accept_sec_context(&minor, &gctx, GSS_C_NO_CREDENTIAL, &in, GSS_C_NO_CHANNEL_BINDINGS,
                                   &name, NULL, &reply_token, NULL, &time_rec, NULL);
    if (c) {
        c->gss = gctx;
        pthread_mutex_unlock(&c->mu);
    }
    if (GSS_ERROR(major)) {
        log_gss_error("accept_sec_context", major, minor);
        if (c) {
            table_remove(g, c);
            ctx_put(c);
            c = NULL;
        } else if (gctx != GSS_C_NO_CONTEXT) {
            OM_uint32 m2;
            gss_delete_sec_context(&m2, &gctx, GSS_C_NO_BUFFER);
        }
    } else if (!c) {
        if (!(c = table_insert(g, gctx))) {
            OM_uint32 m2;
            gss_delete_sec_context(&m2, &gctx, GSS_C_NO_BUFFER);
            major = GSS_S_FAILURE;
        }
    }
    if (c && major == GSS_S_COMPLETE) {
        /* a call on the handle can arrive as soon as the reply is out: the identity
         * is complete before established says so */
        pthread_mutex_lock(&c->mu);
        set_identity(c, name);
        pthread_mutex_unlock(&c->mu);
        if (time_rec != GSS_C_INDEFINITE)
            c->expires = now_s() + time_rec;
        c->established = true;
    }
    bool ok;
    if (c)
        pthread_mutex_lock(&c->mu);
    ok = enc_init_reply(out, hdr->xid, c, major, minor, &reply_token);
    if (c)
        pthread_mutex_unlock(&c->mu);
    OM_uint32 m3;
    gss_release_buffer(&m3, &reply_token);
    gss_release_name(&m3, &name);
    if (!ok && c) /* the client cannot use a context it was not told about */
        table_remove(g, c);
    ctx_put(c);
    return ok ? RPC_GSS_REPLIED : RPC_GSS_DROP;
}

/* ---------- data and destroy ---------- */

bool rpc_gss_window_fresh(const struct rpc_gss_window *w, uint32_t seq)
{
    if (seq > w->max)
        return true;
    uint32_t age = w->max - seq;
    return age < RPC_GSS_WINDOW && !(w->seen[age / 64] & (1ull << (age % 64)));
}

bool rpc_gss_window_take(struct rpc_gss_window *w, uint32_t seq)
{
    if (!rpc_gss_window_fresh(w, seq))
        return false;
    if (seq > w->max) {
        uint32_t shift = seq - w->max;
        if (shift >= RPC_GSS_WINDOW) {
            memset(w->seen, 0, sizeof(w->seen));
        } else if (shift >= 64) { /* bit i moves to bit i + shift */
            w->seen[1] = w->seen[0] << (shift - 64);
            w->seen[0] = 0;
        } else {
            w->seen[1] = (w->seen[1] << shift) | (w->seen[0] >> (64 - shift));
            w->seen[0] <<= shift;
        }
        w->max = seq;
    }
    uint32_t age = w->max - seq;
    w->seen[age / 64] |= 1ull << (age % 64);
    return true;
}

/* The header checksum and the window; DENIED/DROP/PROCEED (ctx->mu held). */
static enum rpc_gss_verdict check_call(struct rpc_gss_ctx *c, const uint8_t *rec,
                                       const struct rpc_call_hdr *hdr, enum rpc_auth_stat *why)
{
    uint32_t seq = hdr->gss.seq;
    if (seq >= RPC_GSS_MAXSEQ) {
        *why = RPC_AUTH_GSS_CTXPROBLEM;
        return RPC_GSS_DENIED;
    }
    /* an old or repeated number is dropped before spending a checksum on it, but
     * marked only after the checksum: a forged call must not use up a number */
    if (!rpc_gss_window_fresh(&c->window, seq))
        return RPC_GSS_DROP;
    if (hdr->verf_flavor != RPC_AUTH_GSS || !verify_mic(c, rec, hdr->cred_end, hdr->verf, hdr->verf_len)) {
        *why = RPC_AUTH_GSS_CREDPROBLEM;
        return RPC_GSS_DENIED;
    }
    if (!rpc_gss_window_take(&c->window, seq))
        return RPC_GSS_DROP;
    return RPC_GSS_PROCEED;
}

/* The plain arguments of an integrity or privacy call (ctx->mu held). */
static bool unwrap_args(struct rpc_gss_ctx *c, struct rpc_gss_call *gc, const uint8_t *body, size_t len)
{
    struct xdr_dec x;
    struct xdr_opaque data, checksum;
    xdr_dec_init(&x, body, len, NULL);
    if (gc->service == RPC_GSS_SERVICE_NONE) {
        gc->args = body;
        gc->args_len = len;
        return true;
    }
    if (!xdr_dec_opaque(&x, &data, (uint32_t)len))
        return false;
    if (gc->service == RPC_GSS_SERVICE_INTEGRITY) {
        if (!xdr_dec_opaque(&x, &checksum, (uint32_t)len) ||
            !verify_mic(c, data.val, data.len, checksum.val, checksum.len))
            return false;
        gc->args = data.val;
        gc->args_len = data.len;
    } else {
        OM_uint32 major, minor;
        int conf = 0;
        gss_buffer_desc in = {.length = data.len, .value = (void *)data.val}, plain = GSS_C_EMPTY_BUFFER;
        major = gss_unwrap(&minor, c->gss, &in, &plain, &conf, NULL);
        if (GSS_ERROR(major) || !conf) {
            if (GSS_ERROR(major))
                log_gss_error("unwrap", major, minor);
            gss_release_buffer(&minor, &plain);
            return false;
        }
        gc->unwrapped = malloc(plain.length ? plain.length : 1);
        if (!gc->unwrapped) {
            gss_release_buffer(&minor, &plain);
            return false;
        }
        memcpy(gc->unwrapped, plain.value, plain.length);
        gc->args = gc->unwrapped;
        gc->args_len = plain.length;
        gss_release_buffer(&minor, &plain);
    }
    /* the body starts with the call's sequence number: a body moved from another call
     * of the same context does not pass */
    if (gc->args_len < 4 || xdr_get_be32(gc->args) != gc->seq)
        return false;
    gc->args += 4;
    gc->args_len -= 4;
    return true;
}

/* DESTROY: a verified call; the reply carries the verifier and no results. */
static enum rpc_gss_verdict gss_destroy(struct rpc_gss *g, struct rpc_gss_ctx *c, const struct rpc_call_hdr *hdr,
                                        struct xdr_enc *out)
{
    bool ok = xdr_enc_u32(out, hdr->xid) && xdr_enc_u32(out, RPC_REPLY) &&
              xdr_enc_u32(out, RPC_MSG_ACCEPTED) && enc_verf_of(c, out, hdr->gss.seq) &&
              xdr_enc_u32(out, RPC_SUCCESS);
    pthread_mutex_unlock(&c->mu);
    log_debug("rpcsec_gss: context of %s destroyed", c->cred.machinename);
    table_remove(g, c);
    ctx_put(c);
    return ok ? RPC_GSS_REPLIED : RPC_GSS_DROP;
}

enum rpc_gss_verdict rpc_gss_accept(struct rpc_gss *g, const uint8_t *rec, size_t len,
                                    const struct rpc_call_hdr *hdr, struct rpc_cred *cred,
                                    struct rpc_gss_call *gc, struct xdr_enc *out,
                                    enum rpc_auth_stat *why)
{
    memset(gc, 0, sizeof(*gc));
    if (hdr->gss.proc == RPC_GSS_PROC_INIT || hdr->gss.proc == RPC_GSS_PROC_CONTINUE_INIT)
        return gss_init(g, rec, len, hdr, out, why);

    struct rpc_gss_ctx *c = table_find(g, hdr->gss.handle, hdr->gss.handle_len);
    if (!c || !c->established) {
        ctx_put(c);
        *why = RPC_AUTH_GSS_CREDPROBLEM;
        return RPC_GSS_DENIED;
    }
    int64_t now = now_s();
    if (c->expires <= now) { /* the client gets a new ticket and context */
        table_remove(g, c);
        ctx_put(c);
        *why = RPC_AUTH_GSS_CTXPROBLEM;
        return RPC_GSS_DENIED;
    }
    c->last_used = now;
    pthread_mutex_lock(&c->mu);
    enum rpc_gss_verdict v = check_call(c, rec, hdr, why);
    if (v != RPC_GSS_PROCEED) {
        pthread_mutex_unlock(&c->mu);
        ctx_put(c);
        return v;
    }
    if (hdr->gss.proc == RPC_GSS_PROC_DESTROY) {
        if (hdr->proc != 0) {
            pthread_mutex_unlock(&c->mu);
            ctx_put(c);
            *why = RPC_AUTH_BADCRED;
            return RPC_GSS_DENIED;
        }
        return gss_destroy(g, c, hdr, out);
    }
    gc->ctx = c;
    gc->seq = hdr->gss.seq;
    gc->service = hdr->gss.service;
    bool ok = unwrap_args(c, gc, rec + hdr->args_off, len - hdr->args_off);
    pthread_mutex_unlock(&c->mu);
    uint32_t service = cred->gss_service;
    *cred = c->cred;
    cred->gss_service = service;
    return ok ? RPC_GSS_PROCEED : RPC_GSS_GARBAGE;
}

/* ---------- replies ---------- */

/* Protect the results at res (4 bytes before them are free for the sequence number)
 * and append them to x (ctx->mu held). */
static bool enc_results(struct rpc_gss_call *gc, struct xdr_enc *x, uint8_t *res, size_t res_len)
{
    struct rpc_gss_ctx *c = gc->ctx;
    if (gc->service == RPC_GSS_SERVICE_NONE)
        return enc_move(x, res, res_len);
    uint8_t *body = res - 4; /* databody: seq_num, then the results */
    xdr_put_be32(body, gc->seq);
    if (gc->service == RPC_GSS_SERVICE_INTEGRITY) {
        /* rpc_gss_integ_data: the body, moved to follow the header, then its MIC */
        if (!xdr_enc_u32(x, (uint32_t)(res_len + 4)))
            return false;
        uint8_t *moved = x->p;
        return enc_move(x, body, res_len + 4) && enc_mic(c, x, moved, res_len + 4);
    }
    OM_uint32 major, minor;
    int conf = 0;
    gss_buffer_desc in = {.length = res_len + 4, .value = body}, token = GSS_C_EMPTY_BUFFER;
    major = gss_wrap(&minor, c->gss, 1, GSS_C_QOP_DEFAULT, &in, &conf, &token);
    if (GSS_ERROR(major) || !conf) {
        log_gss_error("wrap", major, minor);
        gss_release_buffer(&minor, &token);
        return false;
    }
    bool ok = xdr_enc_opaque(x, token.value, (uint32_t)token.length, 0);
    gss_release_buffer(&minor, &token);
    return ok;
}

size_t rpc_gss_enc_reply(struct rpc_gss_call *gc, uint32_t xid, uint32_t accept_stat, uint8_t *buf,
                         size_t buf_cap, size_t out_off, size_t res_off, size_t res_len)
{
    struct rpc_gss_ctx *c = gc->ctx;
    struct xdr_enc x;
    if (out_off + RPC_GSS_REPLY_SLACK > res_off || res_off + res_len > buf_cap)
        return 0;
    xdr_enc_init(&x, buf + out_off, buf_cap - out_off);
    pthread_mutex_lock(&c->mu);
    bool ok = xdr_enc_u32(&x, xid) && xdr_enc_u32(&x, RPC_REPLY) && xdr_enc_u32(&x, RPC_MSG_ACCEPTED) &&
              enc_verf_of(c, &x, gc->seq) && xdr_enc_u32(&x, accept_stat);
    if (ok && accept_stat == RPC_SUCCESS)
        ok = enc_results(gc, &x, buf + res_off, res_len);
    pthread_mutex_unlock(&c->mu);
    return ok ? xdr_enc_len(&x) : 0;
}

void rpc_gss_call_release(struct rpc_gss_call *gc)
{
    ctx_put(gc->ctx);
    free(gc->unwrapped);
    memset(gc, 0, sizeof(*gc));
}

void rpc_gss_call_keep(struct rpc_gss_call *dst, const struct rpc_gss_call *src)
{
    memset(dst, 0, sizeof(*dst));
    if (!src->ctx)
        return;
    atomic_fetch_add(&src->ctx->refs, 1);
    dst->ctx = src->ctx;
    dst->seq = src->seq;
    dst->service = src->service;
}
