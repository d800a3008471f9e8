/*
 * NFSv4 owner and owner_group strings <-> uid / gid (RFC 8881 5.9, RFC 7530 5.9).
 *
 * Two modes, process-wide:
 *  - numeric (the default, no domain configured): ids travel as decimal strings
 *    ("1000"), both ways, like Linux nfsd with nfs4_disable_idmapping and the Linux
 *    client's default for AUTH_SYS. No name service is consulted.
 *  - domain: ids are rendered "name@domain" from the passwd/group databases; an id with
 *    no name is sent as its decimal string. Incoming "name@domain" must carry our domain
 *    (compared case-insensitively). Incoming decimal strings are accepted in both modes,
 *    and so is a bare "name" in domain mode (some clients send it for local users).
 *
 * Lookups in domain mode go through a cache (direct-mapped, 1024 entries per kind and
 * direction, negative answers included; entries expire after 10 minutes so that changes
 * to passwd/group are seen) guarded by one mutex: the getpw*_r calls happen outside it.
 */
#ifndef PEERNFS_NFS4_IDMAP_H
#define PEERNFS_NFS4_IDMAP_H

#include <stddef.h>
#include <sys/types.h>

#include "nfs4/nfs4_attr.h"

/* Longest string the to_name functions produce (without the NUL). */
#define NFS4_IDMAP_NAME_MAX 255
/* Longest domain accepted by nfs4_idmap_configure. */
#define NFS4_IDMAP_DOMAIN_MAX 128

/* Domain mode with `domain`, or numeric mode with NULL or "". Clears the cache. Returns
 * 0, or -1 (mode unchanged) for a domain that is too long or holds '@' or non-UTF-8. */
int nfs4_idmap_configure(const char *domain_or_null);

/* Writes the owner string (NUL-terminated when it fits) and returns its length;
 * 0 when buf is too small. A buffer of NFS4_IDMAP_NAME_MAX + 1 bytes always fits. */
size_t nfs4_idmap_uid_to_name(uid_t uid, char *buf, size_t size);
size_t nfs4_idmap_gid_to_name(gid_t gid, char *buf, size_t size);

/* `s` is not NUL-terminated. 0, or NFS4ATTR_ERR_BADOWNER when it names nobody we know
 * (including "4294967295", which is (uid_t)-1, and a foreign domain). */
int nfs4_idmap_name_to_uid(const char *s, size_t len, uid_t *out);
int nfs4_idmap_name_to_gid(const char *s, size_t len, gid_t *out);

#endif
