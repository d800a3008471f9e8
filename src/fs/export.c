/*
 * The export table: parsing exports(5) text, opening each export's backend, finding
 * exports by id and by path, and squashing credentials. Client matching is in
 * export_client.c.
 *
 * Syntax (as exports(5)):
 *
 *   # comment
 *   /srv/a   10.0.0.0/8(rw,no_root_squash) host.example(ro) *(ro,all_squash)
 *   "/srv/with space"  -rw  192.168.1.0/255.255.255.0  2001:db8::/32(ro)
 *   /srv/b\040c  *.example.com(rw) \
 *                [::1](rw,insecure)
 *
 * A line is a path (absolute; may be double-quoted; \ooo octal escapes as in /proc/mounts)
 * followed by client specifications `CLIENT(opts)`, `CLIENT` (default options) or
 * `(opts)` (client `*`). `-opts` sets default options for the clients after it on the
 * same line. A backslash at the end of a line continues it; `#` starts a comment. A
 * path with no clients is exported to everyone with default options. The same path on
 * several lines gets the clients of all of them.
 *
 * Defaults are those of exports(5): ro, root_squash, sync, secure, anonuid and anongid
 * 65534, sec=sys. Options: rw ro root_squash no_root_squash all_squash no_all_squash
 * anonuid=N anongid=N fsid=N|root sync async secure insecure sec=LIST; accepted and
 * ignored (they describe knfsd internals with no meaning here): subtree_check
 * no_subtree_check wdelay no_wdelay hide nocrossmnt secure_locks insecure_locks auth_nlm
 * no_auth_nlm. Anything else is an error. Netgroups (@group) and gss/ clients are errors
 * (sec= names the Kerberos flavors instead).
 *
 * sec=LIST is a colon-separated list of security flavors in order of preference, from
 * sys, krb5, krb5i and krb5p (e.g. sec=krb5p:krb5i:sys): MOUNT and SECINFO offer them in
 * that order and calls with any other flavor are refused. An unknown or repeated flavor
 * is an error. exports(5) lets the options after a sec= apply to those flavors only; here
 * every option applies to all of a client's flavors, so a second sec= in one option list
 * is an error rather than silently meaning something else (a client's own sec= replaces
 * one from the line's -defaults).
 *
 * Rule order: exports(5) says a client matching several specifications gets the first in
 * this type order, regardless of the order on the line: single host (name or address),
 * IP network, wildcard name, anyone (`*`); among the same type, line order. The parser
 * sorts each export's rules that way, so export_client_rule takes the first match.
 *
 * Export ids (the 16 bits in every filehandle) must not change across restarts: fsid=N
 * when given, else a hash of the path. Two exports with the same id are a load error
 * that names both (set fsid= on one of them).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/export.h"

#define EXPORT_ANON_DEFAULT 65534u
#define EXPORTS_FILE_MAX (4u << 20)

/* Rule types in exports(5) precedence order. */
enum rule_class { CLASS_HOST, CLASS_NETWORK, CLASS_WILDCARD, CLASS_ANYONE };

struct prule {
    struct export_rule r;
    enum rule_class cls;
    unsigned seq;
};

struct pexport {
    char *path;
    long fsid; /* -1: none given */
    unsigned line;
    struct prule *rules;
    unsigned nrules, cap;
};

struct parser {
    const char *source;
    unsigned line; /* first physical line of the logical line being parsed */
    char *err;
    size_t errlen;
    struct pexport *ex;
    unsigned nex, cap;
    unsigned seq;
};

/* Options that are per export in effect although written per client. */
struct popts {
    unsigned opts;
    uint32_t anonuid, anongid;
    long fsid;
    uint32_t sec[EXPORT_SEC_MAX];
    unsigned nsec;
    bool sec_in_list; /* a sec= was seen in the option list being applied */
};

static int perr(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int perr(struct parser *p, const char *fmt, ...)
{
    if (p->err && p->errlen) {
        int n = snprintf(p->err, p->errlen, "%s:%u: ", p->source, p->line);
        if (n >= 0 && (size_t)n < p->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return -EINVAL;
}

/* ---- paths ---- */

/* Collapse repeated slashes and drop "." components and a trailing slash. ".." is
 * refused: an export path names one directory, spelled without detours. */
static int normalise_path(const char *in, size_t len, char *out, size_t outlen)
{
    size_t o = 0, i = 0;
    if (len == 0 || in[0] != '/')
        return -EINVAL;
    while (i < len) {
        while (i < len && in[i] == '/')
            i++;
        size_t start = i;
        while (i < len && in[i] != '/')
            i++;
        size_t clen = i - start;
        if (clen == 0 || (clen == 1 && in[start] == '.'))
            continue;
        if (clen == 2 && in[start] == '.' && in[start + 1] == '.')
            return -EINVAL;
        if (o + 1 + clen + 1 > outlen)
            return -ENAMETOOLONG;
        out[o++] = '/';
        memcpy(out + o, in + start, clen);
        o += clen;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    return 0;
}

/* Undo quoting and \ooo escapes of a path token. */
static int unescape_path(struct parser *p, const char *tok, char *out, size_t outlen)
{
    size_t o = 0;
    bool quoted = false;
    for (const char *s = tok; *s; s++) {
        char c = *s;
        if (c == '"') {
            quoted = !quoted;
            continue;
        }
        if (c == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
            s[3] <= '7') {
            c = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 3;
            if (c == '\0')
                return perr(p, "NUL character in export path");
        } else if (c == '\\' && s[1] == '\\') {
            s++;
        }
        if (o + 1 >= outlen)
            return perr(p, "export path too long");
        out[o++] = c;
    }
    if (quoted)
        return perr(p, "unterminated quote in export path");
    out[o] = '\0';
    return 0;
}

/* ---- client specifications ---- */

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

static void mask_host_bits(uint8_t *addr, unsigned nbytes, unsigned prefix)
{
    for (unsigned i = 0; i < nbytes; i++) {
        unsigned bits = prefix > i * 8 ? prefix - i * 8 : 0;
        if (bits < 8)
            addr[i] &= (uint8_t)(0xff00u >> bits);
    }
}

/* Prefix length of a dotted IPv4 netmask, or -1 when it is not contiguous. */
static int mask4_prefix(const uint8_t m[4])
{
    uint32_t v = (uint32_t)m[0] << 24 | (uint32_t)m[1] << 16 | (uint32_t)m[2] << 8 | m[3];
    uint32_t inv = ~v;
    if (inv & (inv + 1))
        return -1;
    int n = 0;
    while (v & 0x80000000u) {
        n++;
        v <<= 1;
    }
    return n;
}

/* Strip one pair of [brackets] around an IPv6 address, in place. */
static char *unbracket(char *s)
{
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        s[n - 1] = '\0';
        return s + 1;
    }
    return s;
}

static int parse_network(struct parser *p, char *name, struct prule *pr)
{
    char *slash = strchr(name, '/');
    *slash = '\0';
    const char *mask = slash + 1;
    char *addr = unbracket(name);
    struct export_rule *r = &pr->r;
    unsigned max, nbytes;

    if (inet_pton(AF_INET, addr, r->addr) == 1) {
        r->kind = EXPORT_MATCH_NET4;
        max = 32;
        nbytes = 4;
    } else if (inet_pton(AF_INET6, addr, r->addr) == 1) {
        r->kind = EXPORT_MATCH_NET6;
        max = 128;
        nbytes = 16;
    } else {
        return perr(p, "bad network address '%s'", addr);
    }
    if (all_digits(mask) && strlen(mask) <= 3 && (unsigned)atoi(mask) <= max) {
        r->prefix_len = (uint8_t)atoi(mask);
    } else {
        uint8_t m[4];
        int len = -1;
        if (r->kind == EXPORT_MATCH_NET4 && inet_pton(AF_INET, mask, m) == 1)
            len = mask4_prefix(m);
        if (len < 0)
            return perr(p, "bad netmask '%s' for %s", mask, addr);
        r->prefix_len = (uint8_t)len;
    }
    mask_host_bits(r->addr, nbytes, r->prefix_len);
    pr->cls = CLASS_NETWORK;
    return 0;
}

static int parse_client_name(struct parser *p, char *name, struct prule *pr)
{
    struct export_rule *r = &pr->r;
    if (name[0] == '\0' || strcmp(name, "*") == 0) {
        r->kind = EXPORT_MATCH_ANY;
        pr->cls = CLASS_ANYONE;
        return 0;
    }
    if (name[0] == '@')
        return perr(p, "netgroups are not supported ('%s')", name);
    if (strncmp(name, "gss/", 4) == 0)
        return perr(p, "gss clients are not supported ('%s'); use sec=krb5 (or krb5i, krb5p)", name);
    if (strchr(name, '/'))
        return parse_network(p, name, pr);
    char *a = unbracket(name);
    if (inet_pton(AF_INET, a, r->addr) == 1) {
        r->kind = EXPORT_MATCH_NET4;
        r->prefix_len = 32;
        pr->cls = CLASS_HOST;
        return 0;
    }
    if (inet_pton(AF_INET6, a, r->addr) == 1) {
        r->kind = EXPORT_MATCH_NET6;
        r->prefix_len = 128;
        pr->cls = CLASS_HOST;
        return 0;
    }
    for (const char *s = name; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr(".-_*?[]", *s))
            return perr(p, "bad client name '%s'", name);
    r->kind = EXPORT_MATCH_HOST;
    r->host = strdup(name);
    if (!r->host)
        return -ENOMEM;
    for (char *s = r->host; *s; s++)
        *s = (char)tolower((unsigned char)*s);
    pr->cls = strpbrk(name, "*?[") ? CLASS_WILDCARD : CLASS_HOST;
    return 0;
}

/* ---- options ---- */

static int parse_u32(const char *s, uint32_t *out)
{
    if (!all_digits(s) || strlen(s) > 10)
        return -1;
    unsigned long long v = strtoull(s, NULL, 10);
    if (v >= 0xffffffffull) /* (uid_t)-1 means "no change" to the kernel */
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static const char *const ignored_opts[] = {
    "subtree_check", "no_subtree_check", "wdelay", "no_wdelay", "hide", "nocrossmnt",
    "secure_locks", "insecure_locks", "auth_nlm", "no_auth_nlm",
};

static const struct {
    const char *name;
    uint32_t flavor;
} sec_names[] = {
    {"sys", EXPORT_SEC_SYS},
    {"krb5", EXPORT_SEC_KRB5},
    {"krb5i", EXPORT_SEC_KRB5I},
    {"krb5p", EXPORT_SEC_KRB5P},
};

const char *export_sec_name(uint32_t pseudoflavor)
{
    for (size_t i = 0; i < sizeof(sec_names) / sizeof(sec_names[0]); i++)
        if (sec_names[i].flavor == pseudoflavor)
            return sec_names[i].name;
    return NULL;
}

/* sec=a:b:c (modifies nothing: `list` is the text after "sec="). */
static int parse_sec(struct parser *p, const char *list, struct popts *o)
{
    if (o->sec_in_list)
        return perr(p, "sec= given twice for one client (per-flavor options are not supported: "
                       "list every flavor in one sec=)");
    o->sec_in_list = true;
    o->nsec = 0;
    const char *s = list;
    for (;;) {
        size_t len = strcspn(s, ":");
        uint32_t flavor = 0;
        for (size_t i = 0; i < sizeof(sec_names) / sizeof(sec_names[0]); i++)
            if (strlen(sec_names[i].name) == len && strncmp(s, sec_names[i].name, len) == 0)
                flavor = sec_names[i].flavor;
        if (!flavor)
            return perr(p, "unknown security flavor '%.*s' in sec=%s (sys, krb5, krb5i, krb5p)", (int)len,
                        s, list);
        for (unsigned i = 0; i < o->nsec; i++)
            if (o->sec[i] == flavor)
                return perr(p, "security flavor '%.*s' listed twice in sec=%s", (int)len, s, list);
        o->sec[o->nsec++] = flavor; /* fits: each of the EXPORT_SEC_MAX names at most once */
        if (s[len] == '\0')
            return 0;
        s += len + 1;
    }
}

static const struct {
    const char *name;
    unsigned set, clear;
} flag_opts[] = {
    {"rw", EXPORT_RW, 0},
    {"ro", 0, EXPORT_RW},
    {"root_squash", EXPORT_ROOT_SQUASH, 0},
    {"no_root_squash", 0, EXPORT_ROOT_SQUASH},
    {"all_squash", EXPORT_ALL_SQUASH, 0},
    {"no_all_squash", 0, EXPORT_ALL_SQUASH},
    {"async", EXPORT_ASYNC, 0},
    {"sync", 0, EXPORT_ASYNC},
    {"insecure", EXPORT_INSECURE, 0},
    {"secure", 0, EXPORT_INSECURE},
};

static int apply_option(struct parser *p, const char *opt, struct popts *o)
{
    for (size_t i = 0; i < sizeof(flag_opts) / sizeof(flag_opts[0]); i++) {
        if (strcmp(opt, flag_opts[i].name) == 0) {
            o->opts = (o->opts | flag_opts[i].set) & ~flag_opts[i].clear;
            return 0;
        }
    }
    for (size_t i = 0; i < sizeof(ignored_opts) / sizeof(ignored_opts[0]); i++)
        if (strcmp(opt, ignored_opts[i]) == 0)
            return 0;
    if (strncmp(opt, "anonuid=", 8) == 0) {
        if (parse_u32(opt + 8, &o->anonuid) < 0)
            return perr(p, "bad anonuid '%s'", opt + 8);
        return 0;
    }
    if (strncmp(opt, "anongid=", 8) == 0) {
        if (parse_u32(opt + 8, &o->anongid) < 0)
            return perr(p, "bad anongid '%s'", opt + 8);
        return 0;
    }
    if (strncmp(opt, "fsid=", 5) == 0) {
        const char *v = opt + 5;
        if (strcmp(v, "root") == 0) {
            o->fsid = 0;
            return 0;
        }
        if (!all_digits(v) || strlen(v) > 5 || atol(v) > 0xffff)
            return perr(p, "bad fsid '%s' (a number 0..65535)", v);
        o->fsid = atol(v);
        return 0;
    }
    if (strncmp(opt, "sec=", 4) == 0)
        return parse_sec(p, opt + 4, o);
    return perr(p, "unknown export option '%s'", opt);
}

/* Apply a comma-separated option list (modifies `list`). */
static int apply_options(struct parser *p, char *list, struct popts *o)
{
    char *save = NULL;
    o->sec_in_list = false;
    for (char *opt = strtok_r(list, ",", &save); opt; opt = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*opt))
            opt++;
        char *end = opt + strlen(opt);
        while (end > opt && isspace((unsigned char)end[-1]))
            *--end = '\0';
        if (*opt == '\0')
            continue;
        int err = apply_option(p, opt, o);
        if (err)
            return err;
    }
    return 0;
}

/* ---- building the table ---- */

static struct pexport *find_or_add_export(struct parser *p, const char *path)
{
    for (unsigned i = 0; i < p->nex; i++)
        if (strcmp(p->ex[i].path, path) == 0)
            return &p->ex[i];
    if (p->nex == p->cap) {
        unsigned cap = p->cap ? p->cap * 2 : 8;
        struct pexport *n = realloc(p->ex, cap * sizeof(*n));
        if (!n)
            return NULL;
        p->ex = n;
        p->cap = cap;
    }
    struct pexport *e = &p->ex[p->nex];
    memset(e, 0, sizeof(*e));
    e->path = strdup(path);
    if (!e->path)
        return NULL;
    e->fsid = -1;
    e->line = p->line;
    p->nex++;
    return e;
}

static int set_fsid(struct parser *p, struct pexport *e, long fsid)
{
    if (fsid < 0)
        return 0;
    if (e->fsid >= 0 && e->fsid != fsid)
        return perr(p, "conflicting fsid for %s (%ld and %ld)", e->path, e->fsid, fsid);
    e->fsid = fsid;
    return 0;
}

static int add_rule(struct parser *p, struct pexport *e, struct prule *pr)
{
    if (e->nrules == e->cap) {
        unsigned cap = e->cap ? e->cap * 2 : 4;
        struct prule *n = realloc(e->rules, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        e->rules = n;
        e->cap = cap;
    }
    pr->seq = p->seq++;
    e->rules[e->nrules++] = *pr;
    return 0;
}

/* One client token: NAME, NAME(opts) or (opts). */
static int parse_client(struct parser *p, struct pexport *e, char *tok, const struct popts *defaults)
{
    struct popts o = *defaults;
    struct prule pr;
    memset(&pr, 0, sizeof(pr));

    char *paren = strchr(tok, '(');
    if (paren) {
        size_t n = strlen(paren);
        if (n < 2 || paren[n - 1] != ')')
            return perr(p, "missing ')' in '%s'", tok);
        paren[n - 1] = '\0';
        *paren = '\0';
        if (strpbrk(paren + 1, "()"))
            return perr(p, "unbalanced parentheses in '%s'", tok);
        int err = apply_options(p, paren + 1, &o);
        if (err)
            return err;
    } else if (strchr(tok, ')')) {
        return perr(p, "unbalanced parentheses in '%s'", tok);
    }
    int err = parse_client_name(p, tok, &pr);
    if (!err)
        err = set_fsid(p, e, o.fsid);
    if (!err) {
        pr.r.opts = o.opts;
        pr.r.anonuid = o.anonuid;
        pr.r.anongid = o.anongid;
        memcpy(pr.r.sec, o.sec, sizeof(pr.r.sec));
        pr.r.nsec = o.nsec;
        err = add_rule(p, e, &pr);
    }
    if (err)
        free(pr.r.host);
    return err;
}

/* Split a logical line into tokens at whitespace outside quotes and parentheses. */
static char *next_token(char **cursor)
{
    char *s = *cursor;
    while (isspace((unsigned char)*s))
        s++;
    if (*s == '\0') {
        *cursor = s;
        return NULL;
    }
    char *tok = s;
    bool quoted = false;
    int depth = 0;
    for (; *s; s++) {
        if (*s == '"')
            quoted = !quoted;
        else if (!quoted && *s == '(')
            depth++;
        else if (!quoted && *s == ')')
            depth--;
        else if (!quoted && depth <= 0 && isspace((unsigned char)*s))
            break;
    }
    if (*s)
        *s++ = '\0';
    *cursor = s;
    return tok;
}

static int parse_line(struct parser *p, char *line)
{
    char *cursor = line;
    char *tok = next_token(&cursor);
    if (!tok)
        return 0;
    char raw[PATH_MAX], path[PATH_MAX];
    int err = unescape_path(p, tok, raw, sizeof(raw));
    if (err)
        return err;
    if (raw[0] != '/')
        return perr(p, "export path '%s' is not absolute", raw);
    if (normalise_path(raw, strlen(raw), path, sizeof(path)) < 0)
        return perr(p, "bad export path '%s'", raw);
    struct pexport *e = find_or_add_export(p, path);
    if (!e)
        return -ENOMEM;

    struct popts defaults = {
        .opts = EXPORT_ROOT_SQUASH,
        .anonuid = EXPORT_ANON_DEFAULT,
        .anongid = EXPORT_ANON_DEFAULT,
        .fsid = -1,
        .sec = {EXPORT_SEC_SYS},
        .nsec = 1,
    };
    bool any_client = false;
    while ((tok = next_token(&cursor)) != NULL) {
        if (tok[0] == '-') {
            defaults.fsid = -1;
            err = apply_options(p, tok + 1, &defaults);
            if (!err)
                err = set_fsid(p, e, defaults.fsid);
        } else {
            err = parse_client(p, e, tok, &defaults);
            any_client = true;
        }
        if (err)
            return err;
    }
    if (!any_client) {
        char star[] = "*";
        return parse_client(p, e, star, &defaults);
    }
    return 0;
}

/*
 * Cut the text into logical lines: comments removed, backslash-newline joined. Calls
 * parse_line for each with p->line set to the line the logical line starts on.
 */
static int parse_text(struct parser *p, const char *text)
{
    size_t cap = 256, n = 0;
    char *buf = malloc(cap);
    unsigned physical = 1;
    int err = 0;
    if (!buf)
        return -ENOMEM;

    const char *s = text;
    while (*s && !err) {
        bool quoted = false, comment = false;
        n = 0;
        p->line = physical;
        for (; *s; s++) {
            if (*s == '\\' && s[1] == '\n' && !comment) {
                s++;
                physical++;
                continue;
            }
            if (*s == '\n') {
                s++;
                physical++;
                break;
            }
            if (*s == '"' && !comment)
                quoted = !quoted;
            if (*s == '#' && !quoted)
                comment = true;
            if (comment)
                continue;
            if (n + 2 > cap) {
                char *nb = realloc(buf, cap * 2);
                if (!nb) {
                    free(buf);
                    return -ENOMEM;
                }
                buf = nb;
                cap *= 2;
            }
            buf[n++] = *s == '\t' || *s == '\r' ? ' ' : *s;
        }
        buf[n] = '\0';
        err = parse_line(p, buf);
    }
    free(buf);
    return err;
}

static int cmp_prule(const void *a, const void *b)
{
    const struct prule *x = a, *y = b;
    if (x->cls != y->cls)
        return x->cls < y->cls ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* A stable 16-bit id from the path (FNV-1a, folded). */
static uint16_t path_id(const char *path)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *s = (const unsigned char *)path; *s; s++) {
        h ^= *s;
        h *= 16777619u;
    }
    return (uint16_t)(h ^ (h >> 16));
}

static void free_pexports(struct parser *p)
{
    for (unsigned i = 0; i < p->nex; i++) {
        for (unsigned j = 0; j < p->ex[i].nrules; j++)
            free(p->ex[i].rules[j].r.host);
        free(p->ex[i].rules);
        free(p->ex[i].path);
    }
    free(p->ex);
    p->ex = NULL;
    p->nex = 0;
}

static uint16_t pexport_id(const struct pexport *pe)
{
    return pe->fsid >= 0 ? (uint16_t)pe->fsid : path_id(pe->path);
}

static int check_ids(struct parser *p)
{
    for (unsigned i = 0; i < p->nex; i++) {
        uint16_t id = pexport_id(&p->ex[i]);
        for (unsigned j = 0; j < i; j++) {
            if (pexport_id(&p->ex[j]) == id) {
                p->line = p->ex[i].line;
                return perr(p, "export %s has the same id (%u) as %s (line %u); give one of them fsid=",
                            p->ex[i].path, id, p->ex[j].path, p->ex[j].line);
            }
        }
    }
    return 0;
}

/* Move the parsed exports into the table (the parser keeps nothing). */
static int build_table(struct parser *p, struct export_table *t, unsigned **lines)
{
    unsigned n = p->nex;
    t->exports = calloc(n ? n : 1, sizeof(*t->exports));
    unsigned *ln = calloc(n ? n : 1, sizeof(*ln));
    for (unsigned i = 0; t->exports && ln && i < n; i++) {
        struct pexport *pe = &p->ex[i];
        struct export *e = &t->exports[i];
        e->rules = calloc(pe->nrules ? pe->nrules : 1, sizeof(*e->rules));
        if (!e->rules)
            break;
        t->nexports = i + 1;
        e->id = pexport_id(pe);
        e->path = pe->path;
        pe->path = NULL;
        ln[i] = pe->line;
        qsort(pe->rules, pe->nrules, sizeof(*pe->rules), cmp_prule);
        for (unsigned j = 0; j < pe->nrules; j++) {
            e->rules[j] = pe->rules[j].r;
            pe->rules[j].r.host = NULL;
        }
        e->nrules = pe->nrules;
    }
    bool ok = t->exports && ln && t->nexports == n;
    free_pexports(p);
    if (!ok) {
        export_table_free(t);
        free(ln);
        perr(p, "out of memory");
        return -ENOMEM;
    }
    if (lines)
        *lines = ln;
    else
        free(ln);
    return 0;
}

static int parse_into(struct export_table *t, const char *text, const char *source, char *err,
                      size_t errlen, unsigned **lines)
{
    struct parser p = {.source = source ? source : "exports", .err = err, .errlen = errlen};
    memset(t, 0, sizeof(*t));
    if (err && errlen)
        err[0] = '\0';
    int rc = parse_text(&p, text);
    if (!rc)
        rc = check_ids(&p);
    if (rc) {
        if (rc == -ENOMEM)
            perr(&p, "out of memory");
        free_pexports(&p);
        return rc;
    }
    return build_table(&p, t, lines);
}

int export_table_parse(struct export_table *t, const char *text, const char *source_name, char *err,
                       size_t errlen)
{
    return parse_into(t, text, source_name, err, errlen, NULL);
}

/* ---- opening backends ---- */

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static const char *backend_strerror(int rc)
{
    switch (rc) {
    case -EOVERFLOW:
        return "the filesystem's file handles are larger than 36 bytes";
    case -EOPNOTSUPP:
        return "the filesystem cannot give persistent file handles (name_to_handle_at)";
    case -EPERM:
        return "cannot open by handle (needs root: CAP_DAC_READ_SEARCH)";
    default:
        return strerror(-rc);
    }
}

/* Open the export's backend; `where` prefixes messages ("file:line: " or ""). */
static int open_export(struct export *e, const char *where, char *err, size_t errlen)
{
    struct stat st;
    if (stat(e->path, &st) < 0) {
        int rc = -errno;
        set_err(err, errlen, "%s%s: %s", where, e->path, strerror(errno));
        return rc;
    }
    if (!S_ISDIR(st.st_mode)) {
        set_err(err, errlen, "%s%s: not a directory", where, e->path);
        return -ENOTDIR;
    }
    e->ops = &fs_posix_ops;
    int rc = e->ops->export_open(e->path, &e->fs);
    if (rc == 0)
        rc = e->ops->root(e->fs, &e->root);
    if (rc) {
        set_err(err, errlen, "%s%s: %s", where, e->path, backend_strerror(rc));
        return rc;
    }
    return 0;
}

static int read_file(const char *file, char **out)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    int rc = 0;
    while (buf) {
        if (n == cap) {
            if (cap >= EXPORTS_FILE_MAX) {
                rc = -EFBIG;
                break;
            }
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (!buf)
        return -ENOMEM;
    if (rc) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    if (memchr(buf, '\0', n)) {
        free(buf);
        return -EINVAL;
    }
    *out = buf;
    return 0;
}

int export_table_load(struct export_table *t, const char *file, char *err, size_t errlen)
{
    char *text = NULL;
    memset(t, 0, sizeof(*t));
    int rc = read_file(file, &text);
    if (rc) {
        set_err(err, errlen, "%s: %s", file, rc == -EINVAL ? "not a text file" : strerror(-rc));
        return rc;
    }
    unsigned *lines = NULL;
    rc = parse_into(t, text, file, err, errlen, &lines);
    free(text);
    if (rc)
        return rc;
    if (t->nexports == 0) {
        set_err(err, errlen, "%s: no exports", file);
        free(lines);
        export_table_free(t);
        return -ENOENT;
    }
    for (unsigned i = 0; i < t->nexports && rc == 0; i++) {
        char where[PATH_MAX + 32];
        snprintf(where, sizeof(where), "%s:%u: ", file, lines[i]);
        rc = open_export(&t->exports[i], where, err, errlen);
    }
    free(lines);
    if (rc)
        export_table_free(t);
    return rc;
}

int export_table_single(struct export_table *t, const char *dir, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    char *path = realpath(dir, NULL);
    if (!path) {
        int rc = -errno;
        set_err(err, errlen, "%s: %s", dir, strerror(errno));
        return rc;
    }
    t->exports = calloc(1, sizeof(*t->exports));
    struct export_rule *r = calloc(1, sizeof(*r));
    if (!t->exports || !r) {
        free(t->exports);
        free(r);
        free(path);
        t->exports = NULL;
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    r->kind = EXPORT_MATCH_ANY;
    r->opts = EXPORT_RW | EXPORT_ROOT_SQUASH;
    r->anonuid = r->anongid = EXPORT_ANON_DEFAULT;
    /* AUTH_SYS first, so that a client that does not ask for Kerberos settles on it
     * (Linux tries the flavors in the server's order); the Kerberos flavors after it,
     * as RFC 7530 3.2.1 makes RPCSEC_GSS with Kerberos mandatory to offer. They work
     * once the server has a keytab (peernfsd checks at start). */
    static const uint32_t default_sec[] = {EXPORT_SEC_SYS, EXPORT_SEC_KRB5, EXPORT_SEC_KRB5I, EXPORT_SEC_KRB5P};
    memcpy(r->sec, default_sec, sizeof(default_sec));
    r->nsec = sizeof(default_sec) / sizeof(default_sec[0]);
    struct export *e = &t->exports[0];
    e->path = path;
    e->id = path_id(path);
    e->rules = r;
    e->nrules = 1;
    t->nexports = 1;
    int rc = open_export(e, "", err, errlen);
    if (rc)
        export_table_free(t);
    return rc;
}

void export_table_free(struct export_table *t)
{
    for (unsigned i = 0; i < t->nexports; i++) {
        struct export *e = &t->exports[i];
        if (e->fs && e->ops)
            e->ops->export_close(e->fs);
        for (unsigned j = 0; j < e->nrules; j++)
            free(e->rules[j].host);
        free(e->rules);
        free(e->path);
    }
    free(t->exports);
    t->exports = NULL;
    t->nexports = 0;
}

/* ---- lookups ---- */

struct export *export_by_id(const struct export_table *t, uint16_t id)
{
    for (unsigned i = 0; i < t->nexports; i++)
        if (t->exports[i].id == id)
            return &t->exports[i];
    return NULL;
}

struct export *export_by_path(const struct export_table *t, const char *path, size_t len)
{
    char norm[PATH_MAX];
    size_t o = 0;
    if (len == 0 || path[0] != '/' || memchr(path, '\0', len))
        return NULL;
    /* collapse runs of '/' and drop a trailing one */
    for (size_t i = 0; i < len; i++) {
        if (path[i] == '/' && o > 0 && norm[o - 1] == '/')
            continue;
        if (o + 1 >= sizeof(norm))
            return NULL;
        norm[o++] = path[i];
    }
    if (o > 1 && norm[o - 1] == '/')
        o--;
    norm[o] = '\0';
    for (unsigned i = 0; i < t->nexports; i++)
        if (strcmp(t->exports[i].path, norm) == 0)
            return &t->exports[i];
    if (strcmp(norm, "/") == 0 && t->nexports == 1)
        return &t->exports[0];
    return NULL;
}

/* ---- security flavors ---- */

unsigned export_sec_list(const struct export_rule *rule, const uint32_t **list)
{
    static const uint32_t sys_only[] = {EXPORT_SEC_SYS};
    if (rule->nsec == 0) {
        *list = sys_only;
        return 1;
    }
    *list = rule->sec;
    return rule->nsec < EXPORT_SEC_MAX ? rule->nsec : EXPORT_SEC_MAX;
}

bool export_sec_allowed(const struct export_rule *rule, uint32_t pseudoflavor)
{
    const uint32_t *list;
    unsigned n = export_sec_list(rule, &list);
    if (pseudoflavor == 0) /* AUTH_NONE: the anonymous user, allowed where sys is */
        pseudoflavor = EXPORT_SEC_SYS;
    for (unsigned i = 0; i < n; i++)
        if (list[i] == pseudoflavor)
            return true;
    return false;
}

/* ---- credentials ---- */

void export_squash(const struct export_rule *rule, uint32_t uid, uint32_t gid, uint32_t ngids,
                   const uint32_t *gids, struct fs_cred *out)
{
    memset(out, 0, sizeof(*out));
    if (!rule || (rule->opts & EXPORT_ALL_SQUASH)) {
        out->uid = rule ? rule->anonuid : EXPORT_ANON_DEFAULT;
        out->gid = rule ? rule->anongid : EXPORT_ANON_DEFAULT;
        return;
    }
    bool squash = rule->opts & EXPORT_ROOT_SQUASH;
    out->uid = squash && uid == 0 ? rule->anonuid : uid;
    out->gid = squash && gid == 0 ? rule->anongid : gid;
    out->ngroups = ngids < FS_MAX_GROUPS ? ngids : FS_MAX_GROUPS;
    for (uint32_t i = 0; i < out->ngroups; i++)
        out->groups[i] = squash && gids[i] == 0 ? rule->anongid : gids[i];
}

void export_squash_caller(const struct export_rule *rule, bool auth_sys, uint32_t uid, uint32_t gid,
                          uint32_t ngids, const uint32_t *gids, struct fs_cred *out)
{
    if (auth_sys) {
        export_squash(rule, uid, gid, ngids, gids, out);
        return;
    }
    memset(out, 0, sizeof(*out));
    out->uid = rule ? rule->anonuid : EXPORT_ANON_DEFAULT;
    out->gid = rule ? rule->anongid : EXPORT_ANON_DEFAULT;
}
