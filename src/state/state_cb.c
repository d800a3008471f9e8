/*
 * Lookups for the callback client (cb/): which session carries a 4.1 client's
 * callbacks, and with which RPC security flavor. Kept apart from session.c so the
 * callback side's needs stay in one small place.
 */
#include "state/state_internal.h"

#include <string.h>

static bool back_usable_locked(const struct state_session *s)
{
    if (s->dead || s->cb_path_down)
        return false;
    for (unsigned i = 0; i < s->nconns; i++)
        if (s->conns[i].dir & STATE_CONN_BACK)
            return true;
    return false;
}

struct state_session *state_client_back_session(struct state_client *c)
{
    st_lock(c->ss);
    struct state_session *best = NULL;
    if (!c->dead && c->minorversion > 0) {
        /* sessions are kept oldest first: the last usable one is the newest */
        for (struct dlist *p = c->sessions.next; p != &c->sessions; p = p->next) {
            struct state_session *s = container_of(p, struct state_session, link);
            if (back_usable_locked(s))
                best = s;
        }
        if (best)
            best->refs++;
    }
    st_unlock(c->ss);
    return best;
}

enum state_status state_session_set_cb_sec(struct state_server *ss, uint64_t clientid,
                                           const uint8_t sessionid[STATE_SESSIONID_SIZE],
                                           const uint32_t *program, const struct state_cb_sec *sec)
{
    st_lock(ss);
    enum state_status st = STATE_ERR_BADSESSION;
    struct state_client *c = client_find_locked(ss, clientid);
    if (c) {
        for (struct dlist *p = c->sessions.next; p != &c->sessions; p = p->next) {
            struct state_session *s = container_of(p, struct state_session, link);
            if (memcmp(s->id, sessionid, STATE_SESSIONID_SIZE) == 0) {
                s->cb_sec = *sec;
                if (s->cb_sec.machinename_len > STATE_CB_MACHINE_MAX)
                    s->cb_sec.machinename_len = STATE_CB_MACHINE_MAX;
                s->cb_sec.machinename[s->cb_sec.machinename_len] = '\0';
                if (program)
                    s->cb_program = *program;
                st = STATE_OK;
                break;
            }
        }
    }
    st_unlock(ss);
    return st;
}

void state_session_cb_sec(struct state_session *s, struct state_cb_sec *out)
{
    st_lock(s->ss);
    *out = s->cb_sec;
    st_unlock(s->ss);
}
