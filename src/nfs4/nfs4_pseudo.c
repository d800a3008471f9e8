/*
 * Building and walking the pseudo-filesystem (see nfs4_pseudo.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs/siphash.h"
#include "nfs4/nfs4_pseudo.h"

/* Node ids hash the path with a fixed key: they must be the same after a restart and
 * need no secrecy (the handle's MAC is what makes it unforgeable). */
static const uint8_t pseudo_id_key[16] = "peernfs-pseudo!";

static uint64_t pseudo_path_id(const char *path)
{
    return siphash24(pseudo_id_key, path, strlen(path));
}

static struct pseudo_node *pseudo_find_path(struct pseudo_fs *p, const char *path)
{
    for (unsigned i = 0; i < p->nnodes; i++)
        if (strcmp(p->nodes[i]->path, path) == 0)
            return p->nodes[i];
    return NULL;
}

static int pseudo_add_child(struct pseudo_node *parent, struct pseudo_node *child)
{
    struct pseudo_node **c = realloc(parent->children, (parent->nchildren + 1) * sizeof(*c));
    if (!c)
        return -ENOMEM;
    parent->children = c;
    unsigned i = parent->nchildren;
    while (i > 0 && strcmp(c[i - 1]->name, child->name) > 0) {
        c[i] = c[i - 1];
        i--;
    }
    c[i] = child;
    parent->nchildren++;
    child->parent = parent;
    return 0;
}

/* The node for `path` (created, with its parents, when missing). */
static struct pseudo_node *pseudo_get(struct pseudo_fs *p, const char *path)
{
    struct pseudo_node *n = pseudo_find_path(p, path);
    if (n)
        return n;
    struct pseudo_node *parent = NULL;
    if (strcmp(path, "/") != 0) {
        const char *slash = strrchr(path, '/');
        char *ppath = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
        if (!ppath)
            return NULL;
        parent = pseudo_get(p, ppath);
        free(ppath);
        if (!parent)
            return NULL;
    }
    struct pseudo_node **nodes = realloc(p->nodes, (p->nnodes + 1) * sizeof(*nodes));
    if (!nodes)
        return NULL;
    p->nodes = nodes;
    n = calloc(1, sizeof(*n));
    if (!n || !(n->path = strdup(path))) {
        free(n);
        return NULL;
    }
    n->id = pseudo_path_id(path);
    n->name = parent ? strrchr(n->path, '/') + 1 : "";
    if (parent && pseudo_add_child(parent, n) < 0) {
        free(n->path);
        free(n);
        return NULL;
    }
    p->nodes[p->nnodes++] = n;
    return n;
}

static int node_id_cmp(const void *a, const void *b)
{
    const struct pseudo_node *x = *(struct pseudo_node *const *)a, *y = *(struct pseudo_node *const *)b;
    return x->id < y->id ? -1 : x->id > y->id;
}

int pseudo_fs_build(struct pseudo_fs *p, const struct export_table *t, const struct fh_key *key)
{
    memset(p, 0, sizeof(*p));
    p->key = *key;
    clock_gettime(CLOCK_REALTIME, &p->created);
    p->root = pseudo_get(p, "/");
    if (!p->root)
        goto fail;
    for (unsigned i = 0; i < t->nexports; i++) {
        struct pseudo_node *n = pseudo_get(p, t->exports[i].path);
        if (!n)
            goto fail;
        n->export = &t->exports[i];
    }
    qsort(p->nodes, p->nnodes, sizeof(*p->nodes), node_id_cmp);
    for (unsigned i = 1; i < p->nnodes; i++)
        if (p->nodes[i]->id == p->nodes[i - 1]->id)
            goto fail; /* a 64-bit collision between two paths: refuse rather than confuse */
    return 0;
fail:
    pseudo_fs_free(p);
    return -ENOMEM;
}

void pseudo_fs_free(struct pseudo_fs *p)
{
    for (unsigned i = 0; i < p->nnodes; i++) {
        free(p->nodes[i]->children);
        free(p->nodes[i]->path);
        free(p->nodes[i]);
    }
    free(p->nodes);
    memset(p, 0, sizeof(*p));
}

static void put_le64(uint8_t *b, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

uint32_t pseudo_fh_wrap(const struct pseudo_fs *p, const struct pseudo_node *n, uint8_t out[PSEUDO_FH_LEN])
{
    out[0] = PSEUDO_FH_VERSION;
    put_le64(out + 1, n->id);
    put_le64(out + 9, siphash24(p->key.k, out, 9));
    return PSEUDO_FH_LEN;
}

bool pseudo_fh_is_pseudo(const uint8_t *wire, uint32_t len)
{
    return len > 0 && wire[0] == PSEUDO_FH_VERSION;
}

int pseudo_fh_unwrap(const struct pseudo_fs *p, const uint8_t *wire, uint32_t len, struct pseudo_node **out)
{
    if (len != PSEUDO_FH_LEN || wire[0] != PSEUDO_FH_VERSION)
        return -EBADMSG;
    uint8_t diff = 0;
    uint8_t mac[8];
    put_le64(mac, siphash24(p->key.k, wire, 9));
    for (int i = 0; i < 8; i++)
        diff |= mac[i] ^ wire[9 + i];
    if (diff)
        return -EBADMSG;
    struct pseudo_node key = {.id = get_le64(wire + 1)};
    struct pseudo_node *kp = &key;
    struct pseudo_node **n = bsearch(&kp, p->nodes, p->nnodes, sizeof(*p->nodes), node_id_cmp);
    if (!n)
        return -ESTALE;
    *out = *n;
    return 0;
}

bool pseudo_node_visible(const struct pseudo_node *n, const struct sockaddr *sa)
{
    if (n->export && export_client_rule(n->export, sa))
        return true;
    for (unsigned i = 0; i < n->nchildren; i++)
        if (pseudo_node_visible(n->children[i], sa))
            return true;
    return false;
}

/* Add the flavors of the client's rules at and below n to out[0..*n_out), once each. */
static void pseudo_node_sec_collect(const struct pseudo_node *n, const struct sockaddr *sa, uint32_t *out,
                                    unsigned *n_out)
{
    const struct export_rule *rule = n->export ? export_client_rule(n->export, sa) : NULL;
    if (rule) {
        const uint32_t *list;
        unsigned nlist = export_sec_list(rule, &list);
        for (unsigned i = 0; i < nlist; i++) {
            unsigned j = 0;
            while (j < *n_out && out[j] != list[i])
                j++;
            if (j == *n_out && *n_out < EXPORT_SEC_MAX)
                out[(*n_out)++] = list[i];
        }
    }
    for (unsigned i = 0; i < n->nchildren; i++)
        pseudo_node_sec_collect(n->children[i], sa, out, n_out);
}

unsigned pseudo_node_sec(const struct pseudo_node *n, const struct sockaddr *sa, uint32_t out[EXPORT_SEC_MAX])
{
    unsigned count = 0;
    pseudo_node_sec_collect(n, sa, out, &count);
    if (count == 0)
        out[count++] = EXPORT_SEC_SYS;
    return count;
}

struct pseudo_node *pseudo_node_child(const struct pseudo_node *n, const char *name, size_t len)
{
    unsigned lo = 0, hi = n->nchildren;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        const char *cn = n->children[mid]->name;
        int c = strncmp(cn, name, len);
        if (c == 0)
            c = cn[len] != '\0'; /* cn is longer than name */
        if (c == 0)
            return n->children[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

uint64_t pseudo_node_fileid(const struct pseudo_node *n)
{
    /* The top bit keeps it clear of 0 and of the small fileids of real roots (2 on
     * ext4/xfs) that a client sees next to it. */
    return n->id | (1ull << 63);
}

void pseudo_node_stat(const struct pseudo_fs *p, const struct pseudo_node *n, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_mode = S_IFDIR | 0555;
    st->st_nlink = 2 + n->nchildren;
    st->st_ino = pseudo_node_fileid(n);
    st->st_size = 4096;
    st->st_blksize = 4096;
    st->st_blocks = 8;
    st->st_atim = st->st_mtim = st->st_ctim = p->created;
}

struct pseudo_node *pseudo_node_of_export(const struct pseudo_fs *p, const struct export *ex)
{
    for (unsigned i = 0; i < p->nnodes; i++)
        if (p->nodes[i]->export == ex)
            return p->nodes[i];
    return NULL;
}
