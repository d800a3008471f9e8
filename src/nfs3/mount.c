/*
 * MOUNT protocol, versions 3 (RFC 1813 appendix I) and 1 (RFC 1094 appendix A): hands
 * out the root filehandle of an export (or of a directory in one), and keeps the
 * advisory list of who mounted what for DUMP (`showmount -a`).
 *
 * Version 1 is served for `showmount`, which asks EXPORT and DUMP over it; a version 1
 * MNT would want an NFSv2 filehandle, and NFSv2 is not served, so it is refused.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nfs3/nfs3_proc.h"
#include "xdr/mount_xdr.h"

/* The one errno -> mountstat3 table. */
static mountstat3 mount_status(int err)
{
    switch (err < 0 ? -err : err) {
    case 0:
        return MNT3_OK;
    case EPERM:
        return MNT3ERR_PERM;
    case ENOENT:
    case ESTALE:
        return MNT3ERR_NOENT;
    case EIO:
        return MNT3ERR_IO;
    case EACCES:
        return MNT3ERR_ACCES;
    case ENOTDIR:
        return MNT3ERR_NOTDIR;
    case EINVAL:
        return MNT3ERR_INVAL;
    case ENAMETOOLONG:
        return MNT3ERR_NAMETOOLONG;
    default:
        return MNT3ERR_SERVERFAULT;
    }
}

/* ---- the mount list ---- */

int mount_list_init(struct mount_list *ml)
{
    memset(ml, 0, sizeof(*ml));
    return -pthread_mutex_init(&ml->lock, NULL);
}

void mount_list_fini(struct mount_list *ml)
{
    for (unsigned i = 0; i < ml->n; i++) {
        free(ml->entries[i].host);
        free(ml->entries[i].path);
    }
    free(ml->entries);
    pthread_mutex_destroy(&ml->lock);
}

static bool mount_entry_is(const struct mount_entry *e, const char *host, const char *path)
{
    return strcmp(e->host, host) == 0 && (!path || strcmp(e->path, path) == 0);
}

/* Record that host mounted path (once; nothing when the list is full or memory is short:
 * the list is advisory). */
static void mount_list_add(struct mount_list *ml, const char *host, const char *path)
{
    pthread_mutex_lock(&ml->lock);
    for (unsigned i = 0; i < ml->n; i++)
        if (mount_entry_is(&ml->entries[i], host, path))
            goto out;
    if (ml->n == ml->cap && ml->cap < MOUNT_LIST_MAX) {
        unsigned cap = ml->cap ? ml->cap * 2 : 16;
        struct mount_entry *e = realloc(ml->entries, cap * sizeof(*e));
        if (!e)
            goto out;
        ml->entries = e;
        ml->cap = cap;
    }
    if (ml->n == ml->cap)
        goto out;
    char *h = strdup(host), *p = strdup(path);
    if (!h || !p) {
        free(h);
        free(p);
        goto out;
    }
    ml->entries[ml->n++] = (struct mount_entry){.host = h, .path = p};
out:
    pthread_mutex_unlock(&ml->lock);
}

/* Forget host's mount of path, or (path NULL) all of host's mounts. */
static void mount_list_remove(struct mount_list *ml, const char *host, const char *path)
{
    pthread_mutex_lock(&ml->lock);
    for (unsigned i = 0; i < ml->n;) {
        if (!mount_entry_is(&ml->entries[i], host, path)) {
            i++;
            continue;
        }
        free(ml->entries[i].host);
        free(ml->entries[i].path);
        ml->entries[i] = ml->entries[--ml->n];
    }
    pthread_mutex_unlock(&ml->lock);
}

/* ---- MNT ---- */

/*
 * Split a MOUNT path into normalised components: repeated and trailing slashes go,
 * "." components go, ".." is refused (a mount path names a directory without detours,
 * and must not climb out of an export).
 */
static mountstat3 mount_normalise(const dirpath *path, char *out, size_t outlen)
{
    size_t o = 0, i = 0;

    if (path->len == 0 || path->val[0] != '/' || memchr(path->val, '\0', path->len))
        return MNT3ERR_INVAL;
    while (i < path->len) {
        while (i < path->len && path->val[i] == '/')
            i++;
        size_t start = i;
        while (i < path->len && path->val[i] != '/')
            i++;
        size_t clen = i - start;
        if (clen == 0 || (clen == 1 && path->val[start] == '.'))
            continue;
        if (clen == 2 && path->val[start] == '.' && path->val[start + 1] == '.')
            return MNT3ERR_ACCES;
        if (clen > NFS3_NAME_MAX)
            return MNT3ERR_NAMETOOLONG;
        if (o + 1 + clen + 1 > outlen)
            return MNT3ERR_NAMETOOLONG;
        out[o++] = '/';
        memcpy(out + o, path->val + start, clen);
        o += clen;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    return MNT3_OK;
}

/* The export with the longest path that is `path` or a directory above it; *rest is
 * what is left of path below it (without a leading slash). */
static struct export *mount_find_export(const struct export_table *t, const char *path, const char **rest)
{
    struct export *best = NULL;
    size_t best_len = 0;

    for (unsigned i = 0; i < t->nexports; i++) {
        const char *ep = t->exports[i].path;
        size_t n = strlen(ep);
        if (n == 1) /* the export "/" holds every path */
            n = 0;
        bool under = strncmp(path, ep, n) == 0 && (path[n] == '\0' || path[n] == '/');
        if (under && (!best || n > best_len)) {
            best = &t->exports[i];
            best_len = n;
        }
    }
    if (best) {
        *rest = path + best_len;
        while (**rest == '/')
            (*rest)++;
    }
    return best;
}

/* Walk `rest` down from the export root, one directory at a time: lookups never follow
 * symlinks, and a symlink (or anything but a directory) on the way is refused. */
static mountstat3 mount_walk(const struct export *ex, const struct fs_cred *cred, const char *rest,
                             struct fs_fh *fh)
{
    *fh = ex->root;
    while (*rest) {
        const char *slash = strchr(rest, '/');
        size_t len = slash ? (size_t)(slash - rest) : strlen(rest);
        struct fs_fh next;
        struct stat st;
        int err = ex->ops->lookup(ex->fs, cred, fh, rest, len, &next, &st);
        if (err)
            return mount_status(err);
        if (!S_ISDIR(st.st_mode))
            return MNT3ERR_NOTDIR;
        *fh = next;
        rest += len;
        while (*rest == '/')
            rest++;
    }
    return MNT3_OK;
}

/* Resolve a MNT path for this caller: the export, the caller's rule and the directory's
 * backend handle. The call's own flavor is not checked against the rule's sec= list:
 * MOUNT runs with AUTH_SYS or AUTH_NONE and its reply tells the client which flavors to
 * use for NFS (RFC 2623 2.3.1, 2.3.2); NFS enforces them. */
static mountstat3 mount_resolve(struct rpc_call *call, const dirpath *path, struct export **ex,
                                const struct export_rule **rulep, struct fs_fh *fh)
{
    struct nfs_service *svc = call->prog_ctx;
    char norm[MNTPATHLEN + 2];
    const char *rest = "";

    mountstat3 status = mount_normalise(path, norm, sizeof(norm));
    if (status != MNT3_OK)
        return status;
    /* exactly an export (or "/" for the only one), else a directory inside one */
    *ex = export_by_path(svc->exports, norm, strlen(norm));
    if (!*ex)
        *ex = mount_find_export(svc->exports, norm, &rest);
    if (!*ex)
        return MNT3ERR_NOENT;
    const struct export_rule *rule = export_client_rule(*ex, call->peer);
    if (!rule || !nfs3_port_allowed(call, rule))
        return MNT3ERR_ACCES;
    *rulep = rule;
    struct fs_cred cred;
    nfs3_squash_cred(call, rule, &cred);
    return mount_walk(*ex, &cred, rest, fh);
}

/* Remember the mount for DUMP, by the path as the client sent it. */
static void mount_record(struct rpc_call *call, const dirpath *path)
{
    struct nfs_service *svc = call->prog_ctx;
    char host[INET6_ADDRSTRLEN + 1];
    char p[MNTPATHLEN + 1];

    memcpy(p, path->val, path->len);
    p[path->len] = '\0';
    mount_list_add(&svc->mounts, rpc_call_peer_str(call, host, sizeof(host)), p);
}

static enum rpc_accept_status mount3_proc_mnt(struct rpc_call *call)
{
    struct nfs_service *svc = call->prog_ctx;
    dirpath path;
    mountres3 res;
    struct export *ex = NULL;
    const struct export_rule *rule = NULL;
    struct fs_fh fh;
    uint8_t fhbuf[FH_WIRE_MAX];
    int32_t flavors[EXPORT_SEC_MAX];

    if (!xdr_decode_dirpath(&call->args, &path))
        return RPC_GARBAGE_ARGS;
    memset(&res, 0, sizeof(res));
    res.fhs_status = mount_resolve(call, &path, &ex, &rule, &fh);
    if (res.fhs_status == MNT3_OK) {
        res.mountinfo.fhandle.len = fh_wrap(&svc->fh_key, ex->id, &fh, fhbuf);
        res.mountinfo.fhandle.val = fhbuf;
        /* the rule's sec= flavors in the admin's order: the client takes the first it
         * supports (RFC 2623 2.3.2); pseudo-flavors are what MOUNT lists (RFC 2623 2.2) */
        const uint32_t *sec;
        unsigned nsec = export_sec_list(rule, &sec);
        for (unsigned i = 0; i < nsec; i++)
            flavors[i] = (int32_t)sec[i];
        res.mountinfo.auth_flavors.len = nsec;
        res.mountinfo.auth_flavors.val = flavors;
        mount_record(call, &path);
    }
    return nfs3_reply(xdr_encode_mountres3(&call->res, &res));
}

/* Version 1 MNT: refused with EACCES (see the top of the file). */
static enum rpc_accept_status mount1_proc_mnt(struct rpc_call *call)
{
    dirpath path;
    fhstatus res;

    if (!xdr_decode_dirpath(&call->args, &path))
        return RPC_GARBAGE_ARGS;
    memset(&res, 0, sizeof(res));
    res.status = EACCES;
    return nfs3_reply(xdr_encode_fhstatus(&call->res, &res));
}

/* ---- NULL, DUMP, UMNT, UMNTALL, EXPORT ---- */

static enum rpc_accept_status mount_proc_null(struct rpc_call *call)
{
    return RPC_SUCCESS;
}

/*
 * XDR linked lists built one node at a time, so that a reply holds as many nodes as
 * fit: the list always ends in a "no more" word, which a new node overwrites with "one
 * more" before its own encoding (which ends in a new "no more", its next being NULL).
 */
static uint8_t *mount_list_start(struct xdr_enc *x)
{
    return xdr_enc_bool(x, false) ? x->p - 4 : NULL;
}

static enum rpc_accept_status mount_proc_dump(struct rpc_call *call)
{
    struct nfs_service *svc = call->prog_ctx;
    struct mount_list *ml = &svc->mounts;
    uint8_t *tail = mount_list_start(&call->res);

    if (!tail)
        return RPC_SYSTEM_ERR;
    pthread_mutex_lock(&ml->lock);
    for (unsigned i = 0; i < ml->n; i++) {
        const struct mount_entry *e = &ml->entries[i];
        mountbody b = {
            .ml_hostname = {.len = (uint32_t)strlen(e->host), .val = e->host},
            .ml_directory = {.len = (uint32_t)strlen(e->path), .val = e->path},
            .ml_next = NULL,
        };
        struct xdr_enc x = call->res;
        if (!xdr_encode_mountbody(&x, &b))
            break; /* the rest does not fit; DUMP is advisory */
        xdr_put_be32(tail, 1);
        call->res.p = x.p;
        tail = x.p - 4;
    }
    pthread_mutex_unlock(&ml->lock);
    return RPC_SUCCESS;
}

static enum rpc_accept_status mount_proc_umnt(struct rpc_call *call)
{
    struct nfs_service *svc = call->prog_ctx;
    dirpath path;
    char host[INET6_ADDRSTRLEN + 1];
    char p[MNTPATHLEN + 1];

    if (!xdr_decode_dirpath(&call->args, &path))
        return RPC_GARBAGE_ARGS;
    memcpy(p, path.val, path.len);
    p[path.len] = '\0';
    mount_list_remove(&svc->mounts, rpc_call_peer_str(call, host, sizeof(host)), p);
    return RPC_SUCCESS;
}

static enum rpc_accept_status mount_proc_umntall(struct rpc_call *call)
{
    struct nfs_service *svc = call->prog_ctx;
    char host[INET6_ADDRSTRLEN + 1];

    mount_list_remove(&svc->mounts, rpc_call_peer_str(call, host, sizeof(host)), NULL);
    return RPC_SUCCESS;
}

/* A client specification as exports(5) writes it: "*", "10.0.0.0/8", "host.example". */
#define MOUNT_GROUP_NAME_MAX (INET6_ADDRSTRLEN + 8)

static void mount_rule_name(const struct export_rule *r, char buf[MOUNT_GROUP_NAME_MAX], mntname *out)
{
    const char *name = buf;
    char addr[INET6_ADDRSTRLEN];
    int family = r->kind == EXPORT_MATCH_NET4 ? AF_INET : AF_INET6;

    switch (r->kind) {
    case EXPORT_MATCH_ANY:
        name = "*";
        break;
    case EXPORT_MATCH_HOST:
        name = r->host ? r->host : "";
        break;
    case EXPORT_MATCH_NET4:
    case EXPORT_MATCH_NET6:
        if (!inet_ntop(family, r->addr, addr, sizeof(addr)))
            snprintf(addr, sizeof(addr), "?");
        if (r->prefix_len == (family == AF_INET ? 32 : 128))
            snprintf(buf, MOUNT_GROUP_NAME_MAX, "%s", addr);
        else
            snprintf(buf, MOUNT_GROUP_NAME_MAX, "%s/%u", addr, r->prefix_len);
        break;
    }
    size_t len = strlen(name);
    out->len = (uint32_t)(len > MNTNAMLEN ? MNTNAMLEN : len);
    out->val = name;
}

/* The EXPORT list, built in one allocation: every export with its client names. */
struct mount_export_list {
    exportnode *nodes;
    groupnode *groups;
    char (*names)[MOUNT_GROUP_NAME_MAX];
};

static int mount_export_list_build(const struct export_table *t, struct mount_export_list *l)
{
    unsigned ngroups = 0;
    for (unsigned i = 0; i < t->nexports; i++)
        ngroups += t->exports[i].nrules;
    l->nodes = calloc(t->nexports ? t->nexports : 1, sizeof(*l->nodes));
    l->groups = calloc(ngroups ? ngroups : 1, sizeof(*l->groups));
    l->names = calloc(ngroups ? ngroups : 1, sizeof(*l->names));
    if (!l->nodes || !l->groups || !l->names)
        return -ENOMEM;
    unsigned g = 0;
    for (unsigned i = 0; i < t->nexports; i++) {
        const struct export *ex = &t->exports[i];
        exportnode *n = &l->nodes[i];
        n->ex_dir.len = (uint32_t)strlen(ex->path);
        n->ex_dir.val = ex->path;
        n->ex_next = i + 1 < t->nexports ? &l->nodes[i + 1] : NULL;
        n->ex_groups = ex->nrules ? &l->groups[g] : NULL;
        for (unsigned j = 0; j < ex->nrules; j++, g++) {
            mount_rule_name(&ex->rules[j], l->names[g], &l->groups[g].gr_name);
            l->groups[g].gr_next = j + 1 < ex->nrules ? &l->groups[g + 1] : NULL;
        }
    }
    return 0;
}

static void mount_export_list_free(struct mount_export_list *l)
{
    free(l->nodes);
    free(l->groups);
    free(l->names);
}

static enum rpc_accept_status mount_proc_export(struct rpc_call *call)
{
    struct nfs_service *svc = call->prog_ctx;
    struct mount_export_list l = {0};

    if (mount_export_list_build(svc->exports, &l) != 0) {
        mount_export_list_free(&l);
        return RPC_SYSTEM_ERR;
    }
    mntexports head = svc->exports->nexports ? &l.nodes[0] : NULL;
    bool ok = xdr_encode_mntexports(&call->res, &head);
    mount_export_list_free(&l);
    return nfs3_reply(ok);
}

/* ---- dispatch ---- */

/* MOUNT takes AUTH_NONE too: showmount uses it, and MNT checks the client's address. */
static const struct rpc_proc_desc mount1_procs[] = {
    [MOUNTPROC_NULL] = {mount_proc_null, "NULL", 0},
    [MOUNTPROC_MNT] = {mount1_proc_mnt, "MNT", 0},
    [MOUNTPROC_DUMP] = {mount_proc_dump, "DUMP", 0},
    [MOUNTPROC_UMNT] = {mount_proc_umnt, "UMNT", 0},
    [MOUNTPROC_UMNTALL] = {mount_proc_umntall, "UMNTALL", 0},
    [MOUNTPROC_EXPORT] = {mount_proc_export, "EXPORT", 0},
};

static const struct rpc_proc_desc mount3_procs[] = {
    [MOUNTPROC3_NULL] = {mount_proc_null, "NULL", 0},
    [MOUNTPROC3_MNT] = {mount3_proc_mnt, "MNT", 0},
    [MOUNTPROC3_DUMP] = {mount_proc_dump, "DUMP", 0},
    [MOUNTPROC3_UMNT] = {mount_proc_umnt, "UMNT", 0},
    [MOUNTPROC3_UMNTALL] = {mount_proc_umntall, "UMNTALL", 0},
    [MOUNTPROC3_EXPORT] = {mount_proc_export, "EXPORT", 0},
};

static const struct rpc_version_desc mount_versions[] = {
    {MOUNTVERS, sizeof(mount1_procs) / sizeof(mount1_procs[0]), mount1_procs},
    {MOUNT_V3, sizeof(mount3_procs) / sizeof(mount3_procs[0]), mount3_procs},
};

const struct rpc_program_desc mount_program = {
    .prog = MOUNT_PROGRAM,
    .name = "mount",
    .nvers = sizeof(mount_versions) / sizeof(mount_versions[0]),
    .versions = mount_versions,
};
