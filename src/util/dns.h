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
#include <stddef.h>
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

/*
 * Record lookups (MX, addresses, TXT) for the smtp client, RBLs and mail
 * authentication. Every answer says what kind of failure it was, because
 * callers act differently on each: DNS_NOTFOUND (NXDOMAIN: the name does
 * not exist - a bounce), DNS_NODATA (the name exists, no record of this
 * type - for MX: use the domain's A/AAAA), DNS_TEMPFAIL (SERVFAIL,
 * REFUSED, time-out, no server reachable, a garbled answer - defer, since
 * a bounce cannot be undone), DNS_PERMFAIL (a malformed query name,
 * FORMERR, an MX set whose every host name is invalid). why is a short text for logs ("Host not
 * found", "Host not found, try again", ...), never NULL.
 * Answers are cached per (name, type) for their TTL (capped at
 * DNS_CACHE_TTL_MAX seconds; negative answers for DNS_NEG_TTL seconds),
 * so a queue of mail to one domain asks once. Callbacks never run inside
 * the call that started the request and never after dns_cancel().
 */
enum dns_status { DNS_OK = 0, DNS_NOTFOUND, DNS_NODATA, DNS_TEMPFAIL, DNS_PERMFAIL };

#define DNS_CACHE_TTL_MAX 3600
#define DNS_NEG_TTL 60

struct dns_mx {
    unsigned pref;
    char *host;         /* "" for the Null MX "." (RFC 7505) */
};

struct dns_addr {
    struct sockaddr_storage sa;   /* port 0 */
    socklen_t len;
};

typedef void (*dns_mx_fn)(void *ctx, enum dns_status st, const struct dns_mx *mx, size_t n,
                          const char *why);
typedef void (*dns_addr_fn)(void *ctx, enum dns_status st, const struct dns_addr *a, size_t n,
                            const char *why);
typedef void (*dns_txt_fn)(void *ctx, enum dns_status st, char *const *txt, size_t n,
                           const char *why);

/*
 * dns_set_servers - use these name servers instead of /etc/resolv.conf:
 * "ip[:port], ip, [ipv6]:port" (c-ares' server-list syntax); "" keeps
 * the system's. Call before dns_init. Returns false with *err (static
 * text) for a malformed list.
 */
bool dns_set_servers(const char *servers, const char **err);
/* dns_lookup_mx - the MX records of domain, unsorted, as the server sent them */
struct dns_req *dns_lookup_mx(const char *domain, unsigned timeout_ms, dns_mx_fn fn, void *ctx);
/*
 * dns_lookup_addr - the addresses of host: family AF_INET (A), AF_INET6
 * (AAAA) or AF_UNSPEC (both, A first). With hosts_file, /etc/hosts is
 * consulted before DNS (smtp_host_lookup = native,dns); otherwise DNS
 * only. A literal address is answered without a query. DNS_OK means at
 * least one address; both queries empty is DNS_NODATA; one failing
 * temporarily while the other is empty is DNS_TEMPFAIL.
 */
struct dns_req *dns_lookup_addr(const char *host, int family, bool hosts_file,
                                unsigned timeout_ms, dns_addr_fn fn, void *ctx);
/* dns_lookup_txt - TXT records of name, each record's strings concatenated */
struct dns_req *dns_lookup_txt(const char *name, unsigned timeout_ms, dns_txt_fn fn, void *ctx);
/* dns_cache_flush - forget every cached answer (tests, reload) */
void dns_cache_flush(void);

#endif
