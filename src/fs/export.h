/*
 * The export table: which local trees are exported, to whom, and how (exports(5)
 * syntax: `/srv/a 10.0.0.0/8(rw,no_root_squash) host.example(ro) *(ro,all_squash)`).
 * Shared by MOUNT, NFSv3 and (later) the NFSv4 pseudo-filesystem.
 */
#ifndef PEERNFS_FS_EXPORT_H
#define PEERNFS_FS_EXPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "fs/fs.h"

enum export_opt {
    EXPORT_RW = 1u << 0,          /* else read-only */
    EXPORT_ROOT_SQUASH = 1u << 1, /* default on */
    EXPORT_ALL_SQUASH = 1u << 2,
    /* `async`: the server may reply to stable writes before they are durable (default:
     * sync, stable writes are stable). */
    EXPORT_ASYNC = 1u << 3,
    /* `insecure`: requests may come from any source port (default: secure, the
     * protocol layer should refuse ports >= 1024). */
    EXPORT_INSECURE = 1u << 4,
};

enum export_match_kind { EXPORT_MATCH_ANY, EXPORT_MATCH_NET4, EXPORT_MATCH_NET6, EXPORT_MATCH_HOST };

/* Security flavors of `sec=` as RPC pseudo-flavors (RFC 2623 2.2): the numbers MOUNT
 * and SECINFO use and rpc/ computes for a call (rpc_cred_pseudoflavor), repeated here
 * because fs/ sits below rpc/. */
enum export_sec {
    EXPORT_SEC_SYS = 1,          /* AUTH_SYS */
    EXPORT_SEC_KRB5 = 390003,    /* RPCSEC_GSS, Kerberos 5, authentication only */
    EXPORT_SEC_KRB5I = 390004,   /* ... with integrity */
    EXPORT_SEC_KRB5P = 390005,   /* ... with privacy */
};
#define EXPORT_SEC_MAX 4 /* each flavor at most once */

/* One client specification with its options. */
struct export_rule {
    enum export_match_kind kind;
    uint8_t addr[16];   /* NET4: first 4 bytes; NET6: 16 */
    uint8_t prefix_len; /* bits */
    char *host;         /* HOST: a name or a wildcard pattern, lower case (resolved when matched) */
    unsigned opts;
    uint32_t anonuid, anongid; /* default 65534 */
    /* sec=: the allowed flavors in the admin's order of preference (default: sys). A
     * zeroed rule (nsec 0, built without the parser) allows sys, as the default. */
    uint32_t sec[EXPORT_SEC_MAX];
    unsigned nsec;
};

struct export {
    uint16_t id;                 /* stable across restarts: fsid= option or a hash of the path */
    char *path;                  /* absolute, normalised; also the MOUNT path */
    const struct fs_ops *ops;
    struct fs_export *fs;
    struct fs_fh root;
    struct export_rule *rules;
    unsigned nrules;
};

struct export_table {
    struct export *exports;
    unsigned nexports;
};

/* Parse an exports file and open every export's backend. On error returns -errno and,
 * when err is non-NULL, writes a "file:line: reason" message into err. */
int export_table_load(struct export_table *t, const char *file, char *err, size_t errlen);
/* The simple case: one directory exported read-write to everyone, root squashed, with
 * sec=sys:krb5:krb5i:krb5p (AUTH_SYS preferred). */
int export_table_single(struct export_table *t, const char *dir, char *err, size_t errlen);
/* Parse exports text (used by the loader and by unit tests; does not open backends). */
int export_table_parse(struct export_table *t, const char *text, const char *source_name,
                       char *err, size_t errlen);
void export_table_free(struct export_table *t);

struct export *export_by_id(const struct export_table *t, uint16_t id);
/* The export whose path is `path` (exactly, after normalising slashes); "/" names the
 * only export when there is exactly one. */
struct export *export_by_path(const struct export_table *t, const char *path, size_t len);

/* The first rule of `ex` that matches the client address, or NULL (no access). The
 * parser orders each export's rules as exports(5) specifies precedence: single hosts
 * (address or name), then IP networks, then wildcard names, then `*`; rules of one type
 * in the order written. IPv4-mapped IPv6 addresses match IPv4 rules. Names: a plain name
 * matches the addresses it resolves to, a wildcard the client's verified reverse name
 * (both cached for a minute). */
const struct export_rule *export_client_rule(const struct export *ex, const struct sockaddr *sa);

/* `secure` (the default): only callers on a reserved port (< 1024), which only root can
 * bind, are served; `insecure` lifts that. Local sockets have no ports: allowed. */
bool export_port_allowed(const struct export_rule *rule, const struct sockaddr *sa);

/* The rule's flavors in order of preference (what MNT's auth_flavors and SECINFO
 * list); returns how many, *list pointing at them. */
unsigned export_sec_list(const struct export_rule *rule, const uint32_t **list);
/* May a call with this pseudo-flavor use the rule? AUTH_NONE (pseudo-flavor 0) counts
 * as sys: such callers are the anonymous user (rpc/ refuses AUTH_NONE for NFS
 * procedures anyway). */
bool export_sec_allowed(const struct export_rule *rule, uint32_t pseudoflavor);
/* "sys", "krb5", "krb5i", "krb5p", or NULL for another number. */
const char *export_sec_name(uint32_t pseudoflavor);

/* Map the caller's identity through the rule's squash options. */
void export_squash(const struct export_rule *rule, uint32_t uid, uint32_t gid, uint32_t ngids,
                   const uint32_t *gids, struct fs_cred *out);
/* The same for a request: AUTH_SYS ids (auth_sys) go through the rule's squash
 * options; any other caller (AUTH_NONE) is the rule's anonymous user. */
void export_squash_caller(const struct export_rule *rule, bool auth_sys, uint32_t uid, uint32_t gid,
                          uint32_t ngids, const uint32_t *gids, struct fs_cred *out);

#endif
