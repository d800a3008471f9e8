/*
 * Which export rule applies to a client address.
 *
 * Addresses are compared as bytes: an IPv4 client (or an IPv4-mapped IPv6 one,
 * ::ffff:a.b.c.d, as a dual-stack socket reports IPv4 peers) matches IPv4 rules with
 * its 4 bytes and IPv6 rules in its mapped form.
 *
 * Host names: a plain name matches the addresses it resolves to (forward lookup, as
 * knfsd does); a wildcard pattern (`*.example.com`) matches the client's reverse name,
 * which counts only if it resolves back to the client's address (so a PTR record alone
 * cannot claim a name). Both answers are cached for a minute, failures for ten seconds,
 * so a request thread reaches the resolver at most once per client and name per minute.
 * Rules of address types are checked without any lookup.
 */
#include <arpa/inet.h>
#include <fnmatch.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs/export.h"

#define DNS_TTL_OK 60
#define DNS_TTL_FAIL 10
#define DNS_CACHE_SIZE 64
#define DNS_MAX_ADDRS 16

struct client_addr {
    bool has4;
    uint8_t a4[4];
    uint8_t a6[16]; /* IPv4 clients in mapped form */
};

static bool client_addr_of(const struct sockaddr *sa, struct client_addr *ca)
{
    static const uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memset(ca, 0, sizeof(*ca));
    if (!sa)
        return false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        memcpy(ca->a4, &s4->sin_addr, 4);
        memcpy(ca->a6, mapped_prefix, 12);
        memcpy(ca->a6 + 12, ca->a4, 4);
        ca->has4 = true;
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        memcpy(ca->a6, &s6->sin6_addr, 16);
        if (memcmp(ca->a6, mapped_prefix, 12) == 0) {
            memcpy(ca->a4, ca->a6 + 12, 4);
            ca->has4 = true;
        }
        return true;
    }
    return false;
}

static bool prefix_match(const uint8_t *a, const uint8_t *net, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;
    if (memcmp(a, net, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff00u >> rest);
    return (a[full] & mask) == (net[full] & mask);
}

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- the resolver cache ---- */

struct fwd_entry { /* name -> addresses */
    double expires;
    char name[NI_MAXHOST];
    unsigned naddrs;
    uint8_t addrs[DNS_MAX_ADDRS][16];
};

struct rev_entry { /* address -> verified name ("" when none) */
    double expires;
    uint8_t addr[16];
    char name[NI_MAXHOST];
};

static pthread_mutex_t dns_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fwd_entry fwd_cache[DNS_CACHE_SIZE];
static struct rev_entry rev_cache[DNS_CACHE_SIZE];

/* Resolve `name` (uncached); addresses in mapped IPv6 form. */
static unsigned resolve_name(const char *name, uint8_t addrs[DNS_MAX_ADDRS][16])
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    unsigned n = 0;
    if (getaddrinfo(name, NULL, &hints, &res) != 0)
        return 0;
    for (struct addrinfo *ai = res; ai && n < DNS_MAX_ADDRS; ai = ai->ai_next) {
        struct client_addr ca;
        if (client_addr_of(ai->ai_addr, &ca))
            memcpy(addrs[n++], ca.a6, 16);
    }
    freeaddrinfo(res);
    return n;
}

static unsigned lookup_fwd(const char *name, uint8_t addrs[DNS_MAX_ADDRS][16])
{
    double now = now_mono();
    pthread_mutex_lock(&dns_lock);
    for (unsigned i = 0; i < DNS_CACHE_SIZE; i++) {
        struct fwd_entry *e = &fwd_cache[i];
        if (e->expires > now && strcmp(e->name, name) == 0) {
            unsigned n = e->naddrs;
            memcpy(addrs, e->addrs, sizeof(e->addrs));
            pthread_mutex_unlock(&dns_lock);
            return n;
        }
    }
    pthread_mutex_unlock(&dns_lock);

    unsigned n = resolve_name(name, addrs); /* without the lock: it may block */

    pthread_mutex_lock(&dns_lock);
    struct fwd_entry *victim = &fwd_cache[0];
    for (unsigned i = 1; i < DNS_CACHE_SIZE; i++)
        if (fwd_cache[i].expires < victim->expires)
            victim = &fwd_cache[i];
    victim->expires = now + (n ? DNS_TTL_OK : DNS_TTL_FAIL);
    snprintf(victim->name, sizeof(victim->name), "%s", name);
    victim->naddrs = n;
    memcpy(victim->addrs, addrs, sizeof(victim->addrs));
    pthread_mutex_unlock(&dns_lock);
    return n;
}

/* The client's reverse name if it resolves back to the client, else "". */
static void resolve_addr(const struct client_addr *ca, char name[NI_MAXHOST])
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof(ss));
    if (ca->has4) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, ca->a4, 4);
        len = sizeof(*s4);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, ca->a6, 16);
        len = sizeof(*s6);
    }
    name[0] = '\0';
    if (getnameinfo((struct sockaddr *)&ss, len, name, NI_MAXHOST, NULL, 0, NI_NAMEREQD) != 0) {
        name[0] = '\0';
        return;
    }
    uint8_t addrs[DNS_MAX_ADDRS][16];
    unsigned n = resolve_name(name, addrs);
    for (unsigned i = 0; i < n; i++)
        if (memcmp(addrs[i], ca->a6, 16) == 0)
            return;
    name[0] = '\0';
}

static void lookup_rev(const struct client_addr *ca, char name[NI_MAXHOST])
{
    double now = now_mono();
    pthread_mutex_lock(&dns_lock);
    for (unsigned i = 0; i < DNS_CACHE_SIZE; i++) {
        struct rev_entry *e = &rev_cache[i];
        if (e->expires > now && memcmp(e->addr, ca->a6, 16) == 0) {
            memcpy(name, e->name, NI_MAXHOST);
            pthread_mutex_unlock(&dns_lock);
            return;
        }
    }
    pthread_mutex_unlock(&dns_lock);

    resolve_addr(ca, name);

    pthread_mutex_lock(&dns_lock);
    struct rev_entry *victim = &rev_cache[0];
    for (unsigned i = 1; i < DNS_CACHE_SIZE; i++)
        if (rev_cache[i].expires < victim->expires)
            victim = &rev_cache[i];
    victim->expires = now + (name[0] ? DNS_TTL_OK : DNS_TTL_FAIL);
    memcpy(victim->addr, ca->a6, 16);
    memcpy(victim->name, name, NI_MAXHOST);
    pthread_mutex_unlock(&dns_lock);
}

/* ---- matching ---- */

static bool host_matches(const struct export_rule *r, const struct client_addr *ca, char *revname,
                         bool *have_rev)
{
    if (!r->host)
        return false;
    if (strpbrk(r->host, "*?[")) {
        if (!*have_rev) {
            lookup_rev(ca, revname);
            *have_rev = true;
        }
        return revname[0] && fnmatch(r->host, revname, FNM_CASEFOLD) == 0;
    }
    uint8_t addrs[DNS_MAX_ADDRS][16];
    unsigned n = lookup_fwd(r->host, addrs);
    for (unsigned i = 0; i < n; i++)
        if (memcmp(addrs[i], ca->a6, 16) == 0)
            return true;
    return false;
}

const struct export_rule *export_client_rule(const struct export *ex, const struct sockaddr *sa)
{
    struct client_addr ca;
    char revname[NI_MAXHOST];
    bool have_rev = false;

    if (!client_addr_of(sa, &ca))
        return NULL;
    for (unsigned i = 0; i < ex->nrules; i++) {
        const struct export_rule *r = &ex->rules[i];
        switch (r->kind) {
        case EXPORT_MATCH_ANY:
            return r;
        case EXPORT_MATCH_NET4:
            if (ca.has4 && prefix_match(ca.a4, r->addr, r->prefix_len))
                return r;
            break;
        case EXPORT_MATCH_NET6:
            if (prefix_match(ca.a6, r->addr, r->prefix_len))
                return r;
            break;
        case EXPORT_MATCH_HOST:
            if (host_matches(r, &ca, revname, &have_rev))
                return r;
            break;
        }
    }
    return NULL;
}

bool export_port_allowed(const struct export_rule *rule, const struct sockaddr *sa)
{
    in_port_t port;

    if (rule->opts & EXPORT_INSECURE)
        return true;
    if (sa->sa_family == AF_INET)
        port = ((const struct sockaddr_in *)(const void *)sa)->sin_port;
    else if (sa->sa_family == AF_INET6)
        port = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_port;
    else
        return true;
    return ntohs(port) < IPPORT_RESERVED;
}
