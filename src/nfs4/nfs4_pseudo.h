/*
 * The NFSv4 pseudo-filesystem (RFC 7530 section 7, RFC 8881 section 7.3): a read-only
 * tree of directories that joins the exports at their paths, so that a client mounting
 * "server:/" (or any prefix of an export path) can walk to every export it may use.
 *
 * The tree is built once from the export table (exports do not change while the server
 * runs). Each node is named by a hash of its path, so its filehandle stays valid across
 * restarts as long as the path is still a prefix of an export. A node that is itself an
 * export is not a pseudo node: LOOKUP returns the export's root instead. When an export
 * sits at "/", there is no pseudo tree at all: the root filehandle is that export's root.
 */
#ifndef PEERNFS_NFS4_PSEUDO_H
#define PEERNFS_NFS4_PSEUDO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "fs/export.h"
#include "fs/fh.h"

struct pseudo_node {
    uint64_t id;   /* hash of the path: names the node in filehandles */
    char *path;    /* "/" or "/a/b", normalised */
    const char *name; /* last component (points into path); "" for the root */
    struct pseudo_node *parent;
    struct pseudo_node **children; /* sorted by name */
    unsigned nchildren;
    struct export *export; /* non-NULL: this path is an export's root */
};

struct pseudo_fs {
    struct pseudo_node **nodes; /* every node, sorted by id (bsearch) */
    unsigned nnodes;
    struct pseudo_node *root;
    struct fh_key key;
    struct timespec created; /* times of every pseudo directory */
};

/* Pseudo filehandles: byte 0 = 2, bytes 1-8 the node id (little endian), then an 8-byte
 * MAC like export handles (see fs/fh.h; version 1 bytes are export handles). */
#define PSEUDO_FH_VERSION 2
#define PSEUDO_FH_LEN 17

int pseudo_fs_build(struct pseudo_fs *p, const struct export_table *t, const struct fh_key *key);
void pseudo_fs_free(struct pseudo_fs *p);

uint32_t pseudo_fh_wrap(const struct pseudo_fs *p, const struct pseudo_node *n, uint8_t out[PSEUDO_FH_LEN]);
/* True when `wire` is a pseudo handle (version byte 2), whatever its validity. */
bool pseudo_fh_is_pseudo(const uint8_t *wire, uint32_t len);
/* -EBADMSG: malformed or forged; -ESTALE: no such node (exports changed). */
int pseudo_fh_unwrap(const struct pseudo_fs *p, const uint8_t *wire, uint32_t len, struct pseudo_node **out);

/* May a client at `sa` see this node? Yes when some export below it (or it) has a rule
 * for the client: others are hidden, as knfsd hides them. */
bool pseudo_node_visible(const struct pseudo_node *n, const struct sockaddr *sa);
/* Pseudo directories hold nothing but the way to the exports, so any flavor may use them.
 * What SECINFO offers for one is the union of the sec= lists of the client's rules of
 * the exports at and below it, in the order first met (depth first, by name): a client
 * choosing from that list gets a flavor that also carries it into an export below,
 * where a fixed list (sys + krb5*) could send it a flavor no export takes. At most
 * EXPORT_SEC_MAX entries; sys alone when no export below has a rule for the client. */
unsigned pseudo_node_sec(const struct pseudo_node *n, const struct sockaddr *sa,
                         uint32_t out[EXPORT_SEC_MAX]);
/* The child named name[0..len), or NULL. */
struct pseudo_node *pseudo_node_child(const struct pseudo_node *n, const char *name, size_t len);

/* The node where an export is mounted in the tree. */
struct pseudo_node *pseudo_node_of_export(const struct pseudo_fs *p, const struct export *ex);

/* Attributes of a pseudo directory: mode 0555, owned by root, nlink = 2 + children,
 * fileid derived from the node id (never 0 or 1), times = when the tree was built. */
void pseudo_node_stat(const struct pseudo_fs *p, const struct pseudo_node *n, struct stat *st);
/* The fileid of a node (also the mounted_on_fileid of an export root below it). */
uint64_t pseudo_node_fileid(const struct pseudo_node *n);

#endif
