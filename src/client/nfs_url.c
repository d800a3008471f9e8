/* nfs:// URLs (the libnfs / RFC 2224 form, with the arguments this library needs). */
#include "client/nfs_client.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int url_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

bool nfs_url_is_nfs(const char *s) { return s && strncasecmp(s, "nfs://", 6) == 0; }

/* Decimal in [lo, hi], the whole string. */
static bool parse_num(const char *s, size_t n, long lo, long hi, long *out)
{
    long v = 0;
    if (n == 0 || n > 10)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = (char)tolower((unsigned char)ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Percent-decode [s, s+n) into a fresh string with "//" folded and no trailing '/'. */
static char *decode_path(const char *s, size_t n)
{
    char *out = malloc(n + 2), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            if (i + 2 >= n) {
                free(out);
                return NULL;
            }
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0 || (h == 0 && l == 0)) {
                free(out);
                return NULL;
            }
            ch = (char)(h * 16 + l);
            i += 2;
        }
        if (ch == '/' && o > out && o[-1] == '/')
            continue;
        *o++ = ch;
    }
    while (o > out + 1 && o[-1] == '/')
        o--;
    *o = 0;
    return out;
}

static int parse_vers(struct nfs_url *u, const char *v, size_t n)
{
    static const struct { const char *s; int major, minor; } vers[] = {
        { "3", 3, 0 }, { "4", 4, 0 }, { "4.0", 4, 0 }, { "4.1", 4, 1 }, { "4.2", 4, 2 },
    };
    for (size_t i = 0; i < sizeof(vers) / sizeof(vers[0]); i++) {
        if (strlen(vers[i].s) == n && memcmp(vers[i].s, v, n) == 0) {
            u->vers_major = vers[i].major;
            u->vers_minor = vers[i].minor;
            return 0;
        }
    }
    return -EINVAL;
}

static int parse_arg(struct nfs_url *u, const char *k, size_t kn, const char *v, size_t vn,
                     char *err, size_t errlen)
{
    long num;
#define KEY(name) (kn == strlen(name) && memcmp(k, name, kn) == 0)
    if (KEY("vers") || KEY("version")) {
        if (parse_vers(u, v, vn))
            return url_fail(err, errlen, "bad vers=%.*s (3, 4, 4.0, 4.1 or 4.2)", (int)vn, v);
    } else if (KEY("port") || KEY("nfsport")) {
        if (!parse_num(v, vn, 1, 65535, &num))
            return url_fail(err, errlen, "bad port=%.*s", (int)vn, v);
        u->port = (uint16_t)num;
    } else if (KEY("mountport")) {
        if (!parse_num(v, vn, 1, 65535, &num))
            return url_fail(err, errlen, "bad mountport=%.*s", (int)vn, v);
        u->mountport = (uint16_t)num;
    } else if (KEY("nlmport")) {
        if (!parse_num(v, vn, 1, 65535, &num))
            return url_fail(err, errlen, "bad nlmport=%.*s", (int)vn, v);
        u->nlmport = (uint16_t)num;
    } else if (KEY("timeo")) {
        if (!parse_num(v, vn, 1, 3600, &num))
            return url_fail(err, errlen, "bad timeo=%.*s (seconds, 1..3600)", (int)vn, v);
        u->timeo_s = (int)num;
    } else if (KEY("window")) {
        if (!parse_num(v, vn, 1, 64, &num))
            return url_fail(err, errlen, "bad window=%.*s (1..64)", (int)vn, v);
        u->window = (int)num;
    } else if (KEY("uid") || KEY("gid")) {
        if (!parse_num(v, vn, 0, 4294967295L, &num))
            return url_fail(err, errlen, "bad %.*s=%.*s", (int)kn, k, (int)vn, v);
        *(KEY("uid") ? &u->uid : &u->gid) = num;
    } else if (KEY("export")) {
        free(u->export_path);
        u->export_path = decode_path(v, vn);
        if (!u->export_path || u->export_path[0] != '/')
            return url_fail(err, errlen, "bad export=%.*s (an absolute path)", (int)vn, v);
    } else {
        return url_fail(err, errlen, "unknown URL argument '%.*s'", (int)kn, k);
    }
#undef KEY
    return 0;
}

static int parse_query(struct nfs_url *u, const char *q, char *err, size_t errlen)
{
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t n = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', n);
        if (n && !eq)
            return url_fail(err, errlen, "URL argument '%.*s' has no value", (int)n, q);
        if (n) {
            int e = parse_arg(u, q, (size_t)(eq - q), eq + 1, n - (size_t)(eq - q) - 1, err,
                              errlen);
            if (e)
                return e;
        }
        q += n + (amp ? 1 : 0);
    }
    return 0;
}

/* host or [v6], then optional :port; returns the position after it or NULL. */
static const char *parse_authority(struct nfs_url *u, const char *p, char *err, size_t errlen)
{
    const char *h, *hend, *after;
    if (*p == '[') {
        h = p + 1;
        hend = strchr(h, ']');
        if (!hend || hend == h || memchr(h, '/', (size_t)(hend - h))) {
            url_fail(err, errlen, "unterminated or empty [IPv6] host");
            return NULL;
        }
        const char *zone = memchr(h, '%', (size_t)(hend - h)); /* fe80::1%25eth0 */
        for (const char *c = h; c < hend; c++) {
            bool ok = zone && c > zone ? isalnum((unsigned char)*c) || *c == '.' || *c == '-'
                                       : isxdigit((unsigned char)*c) || *c == ':' || *c == '.';
            if (!ok && c != zone) {
                url_fail(err, errlen, "bad character in [IPv6] host");
                return NULL;
            }
        }
        if (zone && (hend - zone < 4 || strncmp(zone, "%25", 3))) {
            url_fail(err, errlen, "bad [IPv6] zone (write %%25 for '%%')");
            return NULL;
        }
        after = hend + 1;
    } else {
        h = p;
        hend = p + strcspn(p, ":/?");
        after = hend;
        if (hend == h) {
            url_fail(err, errlen, "missing host");
            return NULL;
        }
        for (const char *c = h; c < hend; c++) {
            if (!isalnum((unsigned char)*c) && *c != '-' && *c != '.' && *c != '_') {
                url_fail(err, errlen, "bad character '%c' in host", *c);
                return NULL;
            }
        }
    }
    u->host = strndup(h, (size_t)(hend - h));
    if (!u->host) {
        url_fail(err, errlen, "out of memory");
        return NULL;
    }
    char *pct = strstr(u->host, "%25");
    if (pct && *p == '[')
        memmove(pct + 1, pct + 3, strlen(pct + 3) + 1);
    if (*after == ':') {
        const char *ps = after + 1;
        size_t n = strcspn(ps, "/?");
        long num;
        if (!parse_num(ps, n, 1, 65535, &num)) {
            url_fail(err, errlen, "bad port '%.*s'", (int)n, ps);
            return NULL;
        }
        u->port = (uint16_t)num;
        after = ps + n;
    } else if (*after && *after != '/' && *after != '?') {
        url_fail(err, errlen, "junk after host");
        return NULL;
    }
    return after;
}

int nfs_url_parse(const char *url, struct nfs_url *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof(*u));
    u->vers_major = 3;
    u->timeo_s = 30;
    /* 4 MiB in flight at 1 MiB per request covers 10 Gb/s at a 3 ms round trip; more
     * only adds buffers in flight and server threads competing for the same cores (on
     * loopback, against both Ganesha and peernfsd, 8 was slower: bench/RESULTS.md) */
    u->window = 4;
    u->uid = u->gid = -1;
    if (!url || !nfs_url_is_nfs(url))
        return url_fail(err, errlen, "not an nfs:// URL");
    const char *p = parse_authority(u, url + 6, err, errlen);
    if (!p) {
        nfs_url_free(u);
        return -EINVAL;
    }
    if (*p != '/') {
        nfs_url_free(u);
        return url_fail(err, errlen, "missing export path (nfs://host/export/path)");
    }
    size_t plen = strcspn(p, "?");
    u->path = decode_path(p, plen);
    if (!u->path) {
        nfs_url_free(u);
        return url_fail(err, errlen, "bad %%-escape in path");
    }
    int e = p[plen] == '?' ? parse_query(u, p + plen + 1, err, errlen) : 0;
    if (e) {
        nfs_url_free(u);
        return e;
    }
    return 0;
}

void nfs_url_free(struct nfs_url *u)
{
    free(u->host);
    free(u->path);
    free(u->export_path);
    u->host = u->path = u->export_path = NULL;
}
