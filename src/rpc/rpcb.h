/*
 * Registration with the local rpcbind (RFC 1833): RPCBPROC_SET/UNSET version 4 over
 * rpcbind's AF_LOCAL socket (the way local services register; rpcbind trusts the
 * socket's peer credentials), falling back to TCP 127.0.0.1:111 (version 4, then
 * portmap version 2 PMAPPROC_SET) when the socket is missing.
 */
#ifndef PEERNFS_RPC_RPCB_H
#define PEERNFS_RPC_RPCB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rpcb_service {
    uint32_t prog, vers;
};

enum rpcb_transports { RPCB_TCP = 1, RPCB_UDP = 2, RPCB_TCP6 = 4, RPCB_UDP6 = 8 };

/* Register every (prog, vers) on the given transports (RPCB_* bits) at `port`, after
 * clearing stale registrations of a previous instance. Returns 0 or -errno. */
int rpcb_register_all(const struct rpcb_service *svcs, unsigned n, uint16_t port, unsigned transports);
/* Remove them again (on shutdown). */
int rpcb_unregister_all(const struct rpcb_service *svcs, unsigned n, unsigned transports);

/* The universal address "h1.h2.h3.h4.p1.p2" / "::.p1.p2" for a wildcard listener. */
void rpcb_uaddr(char *buf, size_t len, bool ipv6, uint16_t port);

#endif
