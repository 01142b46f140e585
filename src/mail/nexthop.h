/*
 * nexthop.h - where an smtp/lmtp delivery goes, from the next-hop text
 *
 * The qmgr hands the agent a next hop (mail/resolve.h): the recipient
 * domain, $relayhost, or a transport table's ":nexthop". Forms, as
 * Postfix reads them:
 *   smtp:  domain            MX lookup of domain, port 25
 *          domain:port       MX lookup, that port
 *          [host]            no MX lookup: host's own A/AAAA, port 25
 *          [host]:port       no MX lookup, that port
 *          [1.2.3.4]  [ipv6:2001:db8::1]  [2001:db8::1]   literal address
 *   lmtp:  unix:/path or unix:path   (relative to the queue directory)
 *          inet:host:port, inet:[host]:port, host:port, [host]:port, host
 *          (LMTP never looks up MX records; default port 24)
 * The port may be a number or a service name from /etc/services.
 * A leading "smtp:"/"inet:" type is accepted for smtp too.
 */
#ifndef POSTA_NEXTHOP_H
#define POSTA_NEXTHOP_H

#include <stdbool.h>

#define NEXTHOP_SMTP_PORT 25
#define NEXTHOP_LMTP_PORT 24

enum nexthop_kind {
    NEXTHOP_MX,      /* look up MX records of host */
    NEXTHOP_HOST,    /* connect to host's addresses (or a literal) */
    NEXTHOP_UNIX,    /* a Unix-domain socket (LMTP) */
};

struct nexthop {
    enum nexthop_kind kind;
    char *host;          /* domain or host name, or the literal address
                          * without brackets or "ipv6:"; NULL for UNIX */
    bool literal;        /* host is an IPv4/IPv6 address */
    unsigned port;       /* for MX and HOST */
    char *path;          /* for UNIX, as given */
};

/*
 * nexthop_parse - parse text for an smtp (lmtp = false) or lmtp agent;
 * false with *err (static text) for a malformed next hop. Free with
 * nexthop_free.
 */
bool nexthop_parse(const char *text, bool lmtp, struct nexthop *out, const char **err);
void nexthop_free(struct nexthop *nh);

#endif
