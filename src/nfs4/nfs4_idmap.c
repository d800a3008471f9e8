/*
 * Owner strings <-> ids. See nfs4_idmap.h for the two modes.
 */
#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "nfs4/nfs4_idmap.h"

#define IDMAP_CACHE_SLOTS 1024 /* per direction and kind; a power of two */
/* Longer names are looked up every time rather than cached. */
#define IDMAP_CACHE_NAME_MAX 127
#define IDMAP_TTL_SECS 600
/* getpw*_r scratch: first try on the stack, then grow on the heap up to this. */
#define IDMAP_BUF_STACK 2048
#define IDMAP_BUF_MAX (1u << 20)

struct idmap_entry {
    bool used, found;
    uint32_t id;
    time_t stamp;
    uint16_t namelen;
    char name[IDMAP_CACHE_NAME_MAX + 1];
};

/* One per kind (users, groups): ids to rendered names, received names to ids. */
struct idmap_cache {
    struct idmap_entry by_id[IDMAP_CACHE_SLOTS];
    struct idmap_entry by_name[IDMAP_CACHE_SLOTS];
};

static pthread_mutex_t idmap_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool idmap_domain_mode; /* read without the lock on the numeric fast path */
static char idmap_domain[NFS4_IDMAP_DOMAIN_MAX + 1];
static struct idmap_cache idmap_users, idmap_groups;

enum idmap_kind { IDMAP_USER, IDMAP_GROUP };

static struct idmap_cache *idmap_cache_of(enum idmap_kind kind)
{
    return kind == IDMAP_USER ? &idmap_users : &idmap_groups;
}

int nfs4_idmap_configure(const char *domain)
{
    size_t len = domain ? strlen(domain) : 0;

    if (len > NFS4_IDMAP_DOMAIN_MAX || (len && memchr(domain, '@', len)) ||
        !nfs4_attr_utf8_valid((const uint8_t *)domain, len))
        return -1;
    pthread_mutex_lock(&idmap_lock);
    if (len)
        memcpy(idmap_domain, domain, len);
    idmap_domain[len] = '\0';
    memset(&idmap_users, 0, sizeof(idmap_users));
    memset(&idmap_groups, 0, sizeof(idmap_groups));
    atomic_store(&idmap_domain_mode, len != 0);
    pthread_mutex_unlock(&idmap_lock);
    return 0;
}

static time_t idmap_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return ts.tv_sec;
}

static bool idmap_fresh(const struct idmap_entry *e, time_t now)
{
    return e->used && now - e->stamp < IDMAP_TTL_SECS;
}

static unsigned idmap_hash_id(uint32_t id)
{
    return (unsigned)((id * 2654435761u) >> 16) & (IDMAP_CACHE_SLOTS - 1);
}

static unsigned idmap_hash_name(const char *s, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return (h ^ (h >> 15)) & (IDMAP_CACHE_SLOTS - 1);
}

/* Decimal rendering; returns the length, 0 when it does not fit (with the NUL). */
static size_t idmap_format_id(uint32_t id, char *buf, size_t size)
{
    char tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + id % 10);
        id /= 10;
    } while (id);
    if (n + 1 > size)
        return 0;
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    buf[n] = '\0';
    return n;
}

/* "1000" -> 1000: digits only, at most 10, below (uint32_t)-1 (the invalid id). */
static bool idmap_parse_id(const char *s, size_t len, uint32_t *id)
{
    uint64_t v = 0;
    if (len == 0 || len > 10)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v >= UINT32_MAX)
        return false;
    *id = (uint32_t)v;
    return true;
}

/*
 * One passwd/group lookup with a scratch buffer that grows on ERANGE. by_name: look
 * `name` up and set *id; else look *id up and copy the name into name_out.
 * Returns true when found.
 */
static bool idmap_nss_lookup(enum idmap_kind kind, const char *name, uint32_t *id, char *name_out,
                             size_t name_size)
{
    char stack_buf[IDMAP_BUF_STACK];
    char *buf = stack_buf;
    size_t size = sizeof(stack_buf);
    bool found = false;

    for (;;) {
        int rc;
        const char *got_name = NULL;
        uint32_t got_id = 0;
        if (kind == IDMAP_USER) {
            struct passwd pw, *res = NULL;
            rc = name ? getpwnam_r(name, &pw, buf, size, &res) : getpwuid_r(*id, &pw, buf, size, &res);
            if (rc == 0 && res) {
                got_name = res->pw_name;
                got_id = res->pw_uid;
            }
        } else {
            struct group gr, *res = NULL;
            rc = name ? getgrnam_r(name, &gr, buf, size, &res) : getgrgid_r(*id, &gr, buf, size, &res);
            if (rc == 0 && res) {
                got_name = res->gr_name;
                got_id = res->gr_gid;
            }
        }
        if (rc == ERANGE && size < IDMAP_BUF_MAX) {
            if (buf != stack_buf)
                free(buf);
            size *= 4;
            buf = malloc(size);
            if (!buf)
                return false;
            continue;
        }
        if (got_name) {
            found = true;
            if (name)
                *id = got_id;
            else if (snprintf(name_out, name_size, "%s", got_name) >= (int)name_size)
                found = false; /* too long to send: fall back to the number */
        }
        break;
    }
    if (buf != stack_buf)
        free(buf);
    return found;
}

static size_t idmap_copy_out(const char *s, size_t len, char *buf, size_t size)
{
    if (len + 1 > size)
        return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return len;
}

static size_t idmap_id_to_name(enum idmap_kind kind, uint32_t id, char *buf, size_t size)
{
    if (!atomic_load_explicit(&idmap_domain_mode, memory_order_acquire))
        return idmap_format_id(id, buf, size);

    struct idmap_cache *c = idmap_cache_of(kind);
    struct idmap_entry *e = &c->by_id[idmap_hash_id(id)];
    char domain[NFS4_IDMAP_DOMAIN_MAX + 1];
    time_t now = idmap_now();

    pthread_mutex_lock(&idmap_lock);
    if (idmap_fresh(e, now) && e->id == id) {
        size_t n = idmap_copy_out(e->name, e->namelen, buf, size);
        pthread_mutex_unlock(&idmap_lock);
        return n;
    }
    memcpy(domain, idmap_domain, sizeof(domain));
    pthread_mutex_unlock(&idmap_lock);
    if (!domain[0]) /* reconfigured to numeric meanwhile */
        return idmap_format_id(id, buf, size);

    char user[NFS4_IDMAP_NAME_MAX + 1], full[NFS4_IDMAP_NAME_MAX + 1];
    size_t n = 0;
    uint32_t lookup_id = id;
    if (idmap_nss_lookup(kind, NULL, &lookup_id, user, sizeof(user))) {
        int w = snprintf(full, sizeof(full), "%s@%s", user, domain);
        if (w > 0 && (size_t)w < sizeof(full))
            n = (size_t)w;
    }
    if (n == 0)
        n = idmap_format_id(id, full, sizeof(full));

    pthread_mutex_lock(&idmap_lock);
    if (n <= IDMAP_CACHE_NAME_MAX && strcmp(domain, idmap_domain) == 0) { /* not reconfigured */
        e->used = e->found = true;
        e->id = id;
        e->stamp = now;
        e->namelen = (uint16_t)n;
        memcpy(e->name, full, n + 1);
    }
    pthread_mutex_unlock(&idmap_lock);
    return idmap_copy_out(full, n, buf, size);
}

size_t nfs4_idmap_uid_to_name(uid_t uid, char *buf, size_t size)
{
    return idmap_id_to_name(IDMAP_USER, (uint32_t)uid, buf, size);
}

size_t nfs4_idmap_gid_to_name(gid_t gid, char *buf, size_t size)
{
    return idmap_id_to_name(IDMAP_GROUP, (uint32_t)gid, buf, size);
}

/* Domain mode: "name@domain" (our domain) or a bare "name" -> the name part, or NULL. */
static const char *idmap_strip_domain(const char *s, size_t len, const char *domain, size_t *name_len)
{
    const char *at = memrchr(s, '@', len);
    if (!at) {
        *name_len = len;
        return s;
    }
    size_t dlen = len - (size_t)(at - s) - 1;
    if (at == s || dlen != strlen(domain) || strncasecmp(at + 1, domain, dlen) != 0)
        return NULL;
    *name_len = (size_t)(at - s);
    return s;
}

static int idmap_name_to_id(enum idmap_kind kind, const char *s, size_t len, uint32_t *out)
{
    if (idmap_parse_id(s, len, out))
        return 0;
    if (!atomic_load_explicit(&idmap_domain_mode, memory_order_acquire) || len == 0 ||
        len > NFS4_IDMAP_NAME_MAX || memchr(s, '\0', len))
        return NFS4ATTR_ERR_BADOWNER;

    struct idmap_cache *c = idmap_cache_of(kind);
    struct idmap_entry *e = &c->by_name[idmap_hash_name(s, len)];
    char domain[NFS4_IDMAP_DOMAIN_MAX + 1];
    time_t now = idmap_now();

    pthread_mutex_lock(&idmap_lock);
    if (idmap_fresh(e, now) && e->namelen == len && memcmp(e->name, s, len) == 0) {
        bool found = e->found;
        uint32_t id = e->id;
        pthread_mutex_unlock(&idmap_lock);
        if (!found)
            return NFS4ATTR_ERR_BADOWNER;
        *out = id;
        return 0;
    }
    memcpy(domain, idmap_domain, sizeof(domain));
    pthread_mutex_unlock(&idmap_lock);
    if (!domain[0])
        return NFS4ATTR_ERR_BADOWNER;

    size_t name_len;
    const char *name = idmap_strip_domain(s, len, domain, &name_len);
    uint32_t id = 0;
    bool found = false;
    if (name && name_len) {
        char cname[NFS4_IDMAP_NAME_MAX + 1];
        memcpy(cname, name, name_len);
        cname[name_len] = '\0';
        found = idmap_nss_lookup(kind, cname, &id, NULL, 0) && id != UINT32_MAX;
    }

    pthread_mutex_lock(&idmap_lock);
    if (len <= IDMAP_CACHE_NAME_MAX && strcmp(domain, idmap_domain) == 0) {
        e->used = true;
        e->found = found;
        e->id = id;
        e->stamp = now;
        e->namelen = (uint16_t)len;
        memcpy(e->name, s, len);
        e->name[len] = '\0';
    }
    pthread_mutex_unlock(&idmap_lock);
    if (!found)
        return NFS4ATTR_ERR_BADOWNER;
    *out = id;
    return 0;
}

int nfs4_idmap_name_to_uid(const char *s, size_t len, uid_t *out)
{
    uint32_t id;
    int rc = idmap_name_to_id(IDMAP_USER, s, len, &id);
    if (rc == 0)
        *out = (uid_t)id;
    return rc;
}

int nfs4_idmap_name_to_gid(const char *s, size_t len, gid_t *out)
{
    uint32_t id;
    int rc = idmap_name_to_id(IDMAP_GROUP, s, len, &id);
    if (rc == 0)
        *out = (gid_t)id;
    return rc;
}
