#include "client/nfs_window.h"

#include <string.h>

void nfs_window_init(struct nfs_window *w, uint64_t off, uint64_t len, uint32_t chunk,
                     unsigned nslots)
{
    memset(w, 0, sizeof(*w));
    w->next_off = off;
    w->end = len > UINT64_MAX - off ? UINT64_MAX : off + len;
    w->chunk = chunk ? chunk : 1;
    w->nslots = nslots < 1 ? 1 : nslots > NFS_WINDOW_MAX ? NFS_WINDOW_MAX : nslots;
}

/* A slot whose range now lies (partly) past the end shrinks; true if nothing is left. */
static bool clamp_to_end(struct nfs_window *w, struct nfs_slot *sl)
{
    uint64_t room = sl->off >= w->end ? 0 : w->end - sl->off;
    if (sl->len > room)
        sl->len = (uint32_t)room;
    if (sl->done > sl->len)
        sl->done = sl->len;
    return sl->done >= sl->len;
}

bool nfs_window_next(struct nfs_window *w, unsigned *slot, uint64_t *off, uint32_t *len,
                     uint32_t *slot_pos)
{
    /* remainders of short replies first: they hold back the release of later slots */
    for (unsigned i = 0; i < w->used; i++) {
        unsigned s = (w->head + i) % w->nslots;
        struct nfs_slot *sl = &w->slot[s];
        if (sl->state != SLOT_READY)
            continue;
        if (clamp_to_end(w, sl)) {
            sl->state = SLOT_DONE;
            continue;
        }
        sl->state = SLOT_INFLIGHT;
        w->inflight++;
        *slot = s;
        *off = sl->off + sl->done;
        *len = sl->len - sl->done;
        *slot_pos = sl->done;
        return true;
    }
    if (w->used >= w->nslots || w->next_off >= w->end)
        return false;
    unsigned s = (w->head + w->used) % w->nslots;
    struct nfs_slot *sl = &w->slot[s];
    uint64_t left = w->end - w->next_off;
    sl->off = w->next_off;
    sl->len = left < w->chunk ? (uint32_t)left : w->chunk;
    sl->done = 0;
    sl->state = SLOT_INFLIGHT;
    w->next_off += sl->len;
    w->used++;
    w->inflight++;
    *slot = s;
    *off = sl->off;
    *len = sl->len;
    *slot_pos = 0;
    return true;
}

bool nfs_window_complete(struct nfs_window *w, unsigned s, uint32_t asked, uint32_t got,
                         bool eof)
{
    struct nfs_slot *sl = &w->slot[s];
    if (s >= w->nslots || sl->state != SLOT_INFLIGHT || got > asked ||
        got > sl->len - sl->done)
        return false;
    w->inflight--;
    sl->done += got;
    if (eof) {
        uint64_t at = sl->off + sl->done;
        if (at < w->end)
            w->end = at;
        if (w->next_off > w->end)
            w->next_off = w->end;
        /* data past the new end (the file grew meanwhile) would leave a gap: drop it */
        for (unsigned i = 0; i < w->used; i++) {
            struct nfs_slot *o = &w->slot[(w->head + i) % w->nslots];
            if (o->state == SLOT_DONE)
                clamp_to_end(w, o);
        }
    } else if (got == 0 && sl->done < sl->len && sl->off + sl->done < w->end) {
        /* no progress and no EOF: a retry would loop forever */
        sl->state = SLOT_READY;
        return false;
    }
    sl->state = clamp_to_end(w, sl) ? SLOT_DONE : SLOT_READY;
    return true;
}

bool nfs_window_head_done(const struct nfs_window *w, unsigned *slot)
{
    if (!w->used || w->slot[w->head].state != SLOT_DONE)
        return false;
    *slot = w->head;
    return true;
}

void nfs_window_release_head(struct nfs_window *w)
{
    if (!w->used)
        return;
    w->slot[w->head].state = SLOT_FREE;
    w->head = (w->head + 1) % w->nslots;
    w->used--;
}

bool nfs_window_finished(const struct nfs_window *w)
{
    return w->used == 0 && w->next_off >= w->end;
}
