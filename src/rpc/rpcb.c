#include "rpc/rpcb.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "rpc/clnt.h"
#include "util/log.h"
#include "xdr/rpcb_prot_xdr.h"

#define RPCB_SOCKET "/run/rpcbind.sock"
#define RPCB_TIMEOUT_MS 5000

void rpcb_uaddr(char *buf, size_t len, bool ipv6, uint16_t port)
{
    snprintf(buf, len, "%s.%u.%u", ipv6 ? "::" : "0.0.0.0", port >> 8, port & 0xff);
}

static struct rpc_clnt *rpcb_connect(void)
{
    int err;
    struct rpc_clnt *c = rpc_clnt_connect_unix(RPCB_SOCKET, &err);
    if (c)
        return c;
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(111) };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c = rpc_clnt_connect((struct sockaddr *)&sin, sizeof(sin), RPCB_TIMEOUT_MS, &err);
    if (!c)
        log_warn("rpcbind: cannot reach %s or 127.0.0.1:111: %s", RPCB_SOCKET, strerror(-err));
    return c;
}

static bool enc_rpcb(struct xdr_enc *x, const void *v) { return xdr_encode_rpcb(x, v); }

/* One RPCBPROC_SET or UNSET; returns 0 when rpcbind said TRUE. */
static int rpcb_call(struct rpc_clnt *c, uint32_t proc, const rpcb *args)
{
    struct rpc_reply rep;
    bool ok = false;
    int err = rpc_clnt_call(c, RPCBPROG, RPCBVERS4, proc, NULL, enc_rpcb, args, RPCB_TIMEOUT_MS, &rep);
    if (err == 0 && !xdr_dec_bool(&rep.res, &ok))
        err = -EPROTO;
    rpc_reply_free(&rep);
    return err ? err : (ok ? 0 : -EACCES);
}

static void fill(rpcb *r, const struct rpcb_service *s, const char *netid, const char *uaddr)
{
    r->r_prog = s->prog;
    r->r_vers = s->vers;
    r->r_netid.val = netid;
    r->r_netid.len = (uint32_t)strlen(netid);
    r->r_addr.val = uaddr;
    r->r_addr.len = (uint32_t)strlen(uaddr);
    r->r_owner.val = "superuser";
    r->r_owner.len = 9;
}

static int for_each(const struct rpcb_service *svcs, unsigned n, uint16_t port, unsigned transports,
                    bool set)
{
    struct rpc_clnt *c = rpcb_connect();
    if (!c)
        return -ECONNREFUSED;
    int result = 0;
    const char *netids[] = { "tcp", "udp", "tcp6", "udp6" }; /* in RPCB_* bit order */
    for (unsigned i = 0; i < n; i++) {
        for (unsigned k = 0; k < 4; k++) {
            char uaddr[64];
            rpcb args;
            if (!(transports & (1u << k)))
                continue;
            rpcb_uaddr(uaddr, sizeof(uaddr), k >= 2, port);
            fill(&args, &svcs[i], netids[k], set ? uaddr : "");
            rpcb_call(c, RPCBPROC_UNSET, &args); /* a stale entry would make SET fail */
            if (!set)
                continue;
            int err = rpcb_call(c, RPCBPROC_SET, &args);
            if (err) {
                log_warn("rpcbind: SET %u/%u %s %s failed: %s", svcs[i].prog, svcs[i].vers,
                         netids[k], uaddr, strerror(-err));
                result = err;
            }
        }
    }
    rpc_clnt_destroy(c);
    return result;
}

int rpcb_register_all(const struct rpcb_service *svcs, unsigned n, uint16_t port, unsigned transports)
{
    return for_each(svcs, n, port, transports, true);
}

int rpcb_unregister_all(const struct rpcb_service *svcs, unsigned n, unsigned transports)
{
    return for_each(svcs, n, 0, transports, false);
}
