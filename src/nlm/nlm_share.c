/*
 * NLM share reservations (SHARE / UNSHARE, the DOS-style open modes of PC clients): a
 * small in-memory table, kept apart from the byte-range lock space (local processes
 * have no equivalent, so there is nothing to share with the kernel). Bounded.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nlm/nlm_internal.h"

#define NLM_SHARES_MAX 4096u

struct nlm_share_ent {
    struct nlm_share_ent *next;
    uint8_t *file, *owner, *host;
    size_t file_len, owner_len, host_len;
    fsh4_mode mode;
    fsh4_access access;
};

struct nlm_share_table {
    pthread_mutex_t mu;
    struct nlm_share_ent *head;
    unsigned n;
};

int nlm_share_init(struct nlm_service *s)
{
    s->shares = calloc(1, sizeof(*s->shares));
    if (!s->shares)
        return -ENOMEM;
    pthread_mutex_init(&s->shares->mu, NULL);
    return 0;
}

static void ent_free(struct nlm_share_ent *e)
{
    free(e->file);
    free(e->owner);
    free(e->host);
    free(e);
}

void nlm_share_fini(struct nlm_service *s)
{
    if (!s->shares)
        return;
    for (struct nlm_share_ent *e = s->shares->head, *n; e; e = n) {
        n = e->next;
        ent_free(e);
    }
    pthread_mutex_destroy(&s->shares->mu);
    free(s->shares);
    s->shares = NULL;
}

static bool eq(const uint8_t *a, size_t alen, const void *b, size_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

static uint8_t *dup_bytes(const void *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

nlm4_stats nlm_share(struct nlm_service *s, const void *file_key, size_t file_key_len, const uint8_t *owner_key,
                     size_t owner_key_len, const uint8_t *host_key, size_t host_key_len, fsh4_mode mode,
                     fsh4_access access)
{
    struct nlm_share_table *t = s->shares;
    nlm4_stats st = NLM4_GRANTED;
    unsigned m = (unsigned)mode & 3, acc = (unsigned)access & 3;

    pthread_mutex_lock(&t->mu);
    struct nlm_share_ent *mine = NULL;
    for (struct nlm_share_ent *e = t->head; e; e = e->next) {
        if (!eq(e->file, e->file_len, file_key, file_key_len))
            continue;
        if (eq(e->owner, e->owner_len, owner_key, owner_key_len)) {
            mine = e;
            continue;
        }
        if ((acc & (unsigned)e->mode) || (m & (unsigned)e->access))
            st = NLM4_DENIED;
    }
    if (st == NLM4_GRANTED && mine) {
        mine->mode = (fsh4_mode)m;
        mine->access = (fsh4_access)acc;
    } else if (st == NLM4_GRANTED) {
        struct nlm_share_ent *e = t->n < NLM_SHARES_MAX ? calloc(1, sizeof(*e)) : NULL;
        if (e && (e->file = dup_bytes(file_key, file_key_len)) && (e->owner = dup_bytes(owner_key, owner_key_len)) &&
            (e->host = dup_bytes(host_key, host_key_len))) {
            e->file_len = file_key_len;
            e->owner_len = owner_key_len;
            e->host_len = host_key_len;
            e->mode = (fsh4_mode)m;
            e->access = (fsh4_access)acc;
            e->next = t->head;
            t->head = e;
            t->n++;
        } else {
            if (e)
                ent_free(e);
            st = NLM4_DENIED_NOLOCKS;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return st;
}

nlm4_stats nlm_unshare(struct nlm_service *s, const void *file_key, size_t file_key_len, const uint8_t *owner_key,
                       size_t owner_key_len)
{
    struct nlm_share_table *t = s->shares;
    pthread_mutex_lock(&t->mu);
    for (struct nlm_share_ent **pp = &t->head; *pp;) {
        struct nlm_share_ent *e = *pp;
        if (eq(e->file, e->file_len, file_key, file_key_len) && eq(e->owner, e->owner_len, owner_key, owner_key_len)) {
            *pp = e->next;
            ent_free(e);
            t->n--;
        } else {
            pp = &e->next;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return NLM4_GRANTED;
}

bool nlm_share_host_active(struct nlm_service *s, const uint8_t *host_key, size_t host_key_len)
{
    struct nlm_share_table *t = s->shares;
    bool found = false;
    pthread_mutex_lock(&t->mu);
    for (struct nlm_share_ent *e = t->head; e && !found; e = e->next)
        found = eq(e->host, e->host_len, host_key, host_key_len);
    pthread_mutex_unlock(&t->mu);
    return found;
}

void nlm_share_release_host(struct nlm_service *s, const uint8_t *host_key, size_t host_key_len)
{
    struct nlm_share_table *t = s->shares;
    pthread_mutex_lock(&t->mu);
    for (struct nlm_share_ent **pp = &t->head; *pp;) {
        struct nlm_share_ent *e = *pp;
        if (eq(e->host, e->host_len, host_key, host_key_len)) {
            *pp = e->next;
            ent_free(e);
            t->n--;
        } else {
            pp = &e->next;
        }
    }
    pthread_mutex_unlock(&t->mu);
}
