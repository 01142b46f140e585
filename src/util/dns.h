/*
 * dns.h - asynchronous DNS through c-ares, driven by the util/event.h loop
 *
 * One c-ares channel per process. Its sockets are watched by the event
 * loop and its retransmissions run from one event timer, so lookups never
 * block the process. The channel reads /etc/resolv.conf when it is
 * created (dns_init: call it before any chroot) and answers from
 * /etc/hosts first, then DNS ("fb"), as c-ares does.
 *
 * A request's callback is never run from inside the call that started it
 * (it comes from the event loop), and never after dns_cancel().
 */
#ifndef POSTA_DNS_H
#define POSTA_DNS_H

#include <stdbool.h>
#include <sys/socket.h>

struct dns_req;

/* dns_name_fn - the confirmed name, or NULL (none, not confirmed, failure, timeout) */
typedef void (*dns_name_fn)(void *ctx, const char *name);

/* dns_init - create the channel (idempotent; fatal if c-ares cannot start) */
void dns_init(void);
/*
 * dns_client_name - reverse lookup of sa with forward confirmation (the
 * name must resolve back to the same address), capped at timeout_ms in
 * all. Returns a handle for dns_cancel; fn runs exactly once unless the
 * request is cancelled first.
 */
struct dns_req *dns_client_name(const struct sockaddr *sa, socklen_t len, unsigned timeout_ms,
                                dns_name_fn fn, void *ctx);
/* dns_cancel - the caller is no longer interested (safe until fn has run) */
void dns_cancel(struct dns_req *req);
/* dns_hostname_valid - a plausible host name (letters, digits, '-', '.', '_'), not an address */
bool dns_hostname_valid(const char *name);

#endif
