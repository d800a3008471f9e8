/* client/: the pipelining window of whole-range transfers (nfs_window.c). */
#include <string.h>

#include "check.h"
#include "client/nfs_window.h"

struct req {
    unsigned slot;
    uint64_t off;
    uint32_t len, pos;
};

/* Issue everything the window allows; returns how many. */
static unsigned fill(struct nfs_window *w, struct req *r, unsigned max)
{
    unsigned n = 0;
    while (n < max && nfs_window_next(w, &r[n].slot, &r[n].off, &r[n].len, &r[n].pos))
        n++;
    return n;
}

static uint64_t release_all(struct nfs_window *w, uint64_t *expect_off)
{
    uint64_t bytes = 0;
    unsigned s;
    while (nfs_window_head_done(w, &s)) {
        if (w->slot[s].len) /* in file order, no gaps (empty slots past EOF aside) */
            CHECK_EQ(w->slot[s].off, *expect_off);
        *expect_off += w->slot[s].len;
        bytes += w->slot[s].len;
        nfs_window_release_head(w);
    }
    return bytes;
}

int main(void)
{
    struct nfs_window w;
    struct req r[NFS_WINDOW_MAX + 4];

    /* 10 chunks of 100 over a window of 4: 4 in flight at once, never more */
    nfs_window_init(&w, 1000, 1000, 100, 4);
    CHECK_EQ(fill(&w, r, 10), 4);
    CHECK_EQ(w.inflight, 4);
    CHECK_EQ(r[0].off, 1000);
    CHECK_EQ(r[3].off, 1300);
    CHECK_EQ(r[3].len, 100);
    /* completion out of order: nothing is released until the head is done */
    CHECK(nfs_window_complete(&w, r[2].slot, 100, 100, false));
    unsigned s;
    CHECK(!nfs_window_head_done(&w, &s));
    CHECK_EQ(fill(&w, r + 4, 10), 0); /* slots are held: window still full */
    CHECK(nfs_window_complete(&w, r[0].slot, 100, 100, false));
    uint64_t at = 1000;
    CHECK_EQ(release_all(&w, &at), 100); /* slot 2 waits for slot 1 */
    CHECK_EQ(fill(&w, r + 4, 10), 1);
    CHECK_EQ(r[4].off, 1400);
    CHECK(nfs_window_complete(&w, r[1].slot, 100, 100, false));
    CHECK_EQ(release_all(&w, &at), 200);
    /* a short reply: its remainder is issued again, from the same slot */
    CHECK(nfs_window_complete(&w, r[3].slot, 100, 30, false));
    unsigned n = fill(&w, r + 5, 10);
    CHECK_EQ(n, 3); /* the remainder first, then two new chunks */
    CHECK_EQ(r[5].slot, r[3].slot);
    CHECK_EQ(r[5].off, 1330);
    CHECK_EQ(r[5].len, 70);
    CHECK_EQ(r[5].pos, 30);
    CHECK_EQ(r[6].off, 1500);
    /* more than asked is a broken server */
    CHECK(!nfs_window_complete(&w, r[5].slot, 70, 71, false));
    CHECK(nfs_window_complete(&w, r[5].slot, 70, 70, false));
    CHECK(nfs_window_complete(&w, r[4].slot, 100, 100, false));
    CHECK(nfs_window_complete(&w, r[6].slot, 100, 100, false));
    CHECK(nfs_window_complete(&w, r[7].slot, 100, 100, false));
    CHECK_EQ(release_all(&w, &at), 400);
    /* drain the rest */
    uint64_t total = 700;
    while (!nfs_window_finished(&w)) {
        unsigned k = fill(&w, r, 10);
        CHECK(k <= 4);
        if (!k)
            break;
        for (unsigned i = 0; i < k; i++)
            CHECK(nfs_window_complete(&w, r[i].slot, r[i].len, r[i].len, false));
        total += release_all(&w, &at);
    }
    CHECK_EQ(total, 1000);
    CHECK_EQ(at, 2000);
    CHECK(nfs_window_finished(&w));

    /* EOF before the end: later chunks end empty, nothing new is issued, no gap */
    nfs_window_init(&w, 0, 1000, 100, 8);
    CHECK_EQ(fill(&w, r, 20), 8);
    CHECK(nfs_window_complete(&w, r[5].slot, 100, 100, false)); /* data past EOF: dropped */
    CHECK(nfs_window_complete(&w, r[2].slot, 100, 50, true));  /* EOF at 250 */
    CHECK_EQ(w.end, 250);
    for (unsigned i = 0; i < 8; i++)
        if (i != 2 && i != 5)
            CHECK(nfs_window_complete(&w, r[i].slot, 100, i < 2 ? 100 : 0, i > 2));
    at = 0;
    CHECK_EQ(release_all(&w, &at), 250);
    CHECK_EQ(fill(&w, r, 20), 0);
    CHECK(nfs_window_finished(&w));

    /* no progress and no EOF would loop forever: refused */
    nfs_window_init(&w, 0, 100, 100, 2);
    CHECK_EQ(fill(&w, r, 4), 1);
    CHECK(!nfs_window_complete(&w, r[0].slot, 100, 0, false));

    /* window sizes are clamped; empty ranges finish at once; last chunk is short */
    nfs_window_init(&w, 0, 1u << 30, 1u << 20, 1000);
    CHECK_EQ(w.nslots, NFS_WINDOW_MAX);
    CHECK_EQ(fill(&w, r, NFS_WINDOW_MAX + 4), NFS_WINDOW_MAX);
    nfs_window_init(&w, 0, 0, 100, 4);
    CHECK(nfs_window_finished(&w));
    CHECK_EQ(fill(&w, r, 4), 0);
    nfs_window_init(&w, 0, 250, 100, 0);
    CHECK_EQ(w.nslots, 1);
    CHECK_EQ(fill(&w, r, 4), 1);
    CHECK(nfs_window_complete(&w, r[0].slot, 100, 100, false));
    at = 0;
    release_all(&w, &at);
    CHECK(nfs_window_complete(&w, r[0].slot, 100, 100, false) == false); /* not in flight */
    CHECK_EQ(fill(&w, r, 4), 1);
    CHECK(nfs_window_complete(&w, r[0].slot, 100, 100, false));
    release_all(&w, &at);
    CHECK_EQ(fill(&w, r, 4), 1);
    CHECK_EQ(r[0].len, 50);
    CHECK(nfs_window_complete(&w, r[0].slot, 50, 50, false));
    release_all(&w, &at);
    CHECK_EQ(at, 250);
    CHECK(nfs_window_finished(&w));
    return check_report("test_client_window");
}
