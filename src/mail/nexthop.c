/*
 * nexthop.c - where an smtp/lmtp delivery goes, from the next-hop text
 *
 * The forms are listed in nexthop.h. Choices made here:
 *  - A type prefix ("smtp:" or "inet:" for smtp, "lmtp:" or "inet:" for
 *    lmtp) is dropped, except when all that follows it is digits: then
 *    the text is read as "host:port" (a host called "smtp" on port 25),
 *    which is the only reading that makes sense.
 *  - "unix:" is a Unix-domain socket for LMTP and an error for SMTP
 *    (but "unix:25" there is again a host and a port).
 *  - An unbracketed IPv4 address is a literal (no MX lookup of a
 *    number); an unbracketed IPv6 address is refused because its colons
 *    cannot be told from the port's.
 *  - A port is 1-65535 or a service name: getservbyname(3) first, then a
 *    built-in table of the mail services, because /etc/services may lack
 *    "lmtp" (Debian's does) or be missing in a chroot.
 *
 * DIAGNOSTICS
 *  nexthop_parse returns false with a short static text.
 *
 * SECURITY
 *  The text comes from configuration and lookup tables. Whitespace,
 *  control characters and anything that is not a plausible host name
 *  or address is refused, so the result is safe to log and to look up.
 */
#include "util/sys.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "mail/nexthop.h"
#include "util/alloc.h"

#define PREFIX_LEN 5              /* "smtp:", "lmtp:", "inet:", "unix:", "ipv6:" */
#define PORT_MAX 65535
#define PORT_DIGITS_MAX 5
#define SERVICE_NAME_MAX 32
#define HOST_NAME_MAX_LEN 255     /* RFC 1035 2.3.4 */
#define LABEL_MAX 63
#define DECIMAL_RADIX 10
#define ASCII_FIRST_PRINT 0x20
#define ASCII_DEL 0x7f
#define FIRST_NON_ASCII 0x80

/* Mail services, when /etc/services does not know them. */
static const struct {
    const char *name;
    unsigned port;
} mail_services[] = {
    {"smtp", NEXTHOP_SMTP_PORT},
    {"lmtp", NEXTHOP_LMTP_PORT},
    {"submission", 587},
    {"submissions", 465},
    {"smtps", 465},
};

/* has_prefix - s starts with the 5-character type p, ignoring case */
static bool has_prefix(const char *s, const char *p)
{
    return strncasecmp(s, p, PREFIX_LEN) == 0;
}

/* all_digits - s is one or more ASCII digits */
static bool all_digits(const char *s)
{
    if (*s == 0)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* parse_port - a port number or service name into *port */
static bool parse_port(const char *s, unsigned *port, const char **err)
{
    struct servent *se;
    unsigned long v = 0;
    size_t i, n = strlen(s);

    if (n == 0) {
        *err = "empty port";
        return false;
    }
    if (all_digits(s)) {
        if (n > PORT_DIGITS_MAX) {
            *err = "bad port number";
            return false;
        }
        for (i = 0; i < n; i++)
            v = v * DECIMAL_RADIX + (unsigned long)(s[i] - '0');
        if (v == 0 || v > PORT_MAX) {
            *err = "bad port number";
            return false;
        }
        *port = (unsigned)v;
        return true;
    }
    if (n > SERVICE_NAME_MAX) {
        *err = "bad service name";
        return false;
    }
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '-' || c == '_')) {
            *err = "bad service name";
            return false;
        }
    }
    if ((se = getservbyname(s, "tcp")) != NULL && ntohs((uint16_t)se->s_port) != 0) {
        *port = ntohs((uint16_t)se->s_port);
        return true;
    }
    for (i = 0; i < POSTA_ARRAY_LEN(mail_services); i++) {
        if (strcasecmp(s, mail_services[i].name) == 0) {
            *port = mail_services[i].port;
            return true;
        }
    }
    *err = "unknown service name";
    return false;
}

/* host_name_ok - a plausible host or domain name (UTF-8 labels allowed) */
static bool host_name_ok(const char *s)
{
    size_t n = strlen(s), label = 0, i;
    unsigned char c;

    if (n == 0 || n > HOST_NAME_MAX_LEN || s[0] == '.')
        return false;
    for (i = 0; i < n; i++) {
        c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0)
                return false;            /* ".." */
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '-' || c == '_' || c >= FIRST_NON_ASCII))
            return false;
        if (++label > LABEL_MAX)
            return false;
    }
    return true;                          /* a trailing dot is fine */
}

/* is_ipv4 - an IPv4 address literal */
static bool is_ipv4(const char *s)
{
    struct in_addr a;

    return inet_pton(AF_INET, s, &a) == 1;
}

/* is_ipv6 - an IPv6 address literal (without brackets or "ipv6:") */
static bool is_ipv6(const char *s)
{
    struct in6_addr a;

    return inet_pton(AF_INET6, s, &a) == 1;
}

/* parse_bracketed - "[host]" or "[host]:port" (s at "["); fills host, literal, port */
static bool parse_bracketed(const char *s, struct nexthop *out, const char **err)
{
    const char *close = strchr(s, ']'), *inner = s + 1;
    char *host;

    if (close == NULL) {
        *err = "missing \"]\" in next hop";
        return false;
    }
    if (close == inner) {
        *err = "empty host name in next hop";
        return false;
    }
    if (memchr(inner, '[', (size_t)(close - inner)) != NULL || strchr(close + 1, '[') != NULL
        || strchr(close + 1, ']') != NULL) {
        *err = "misplaced brackets in next hop";
        return false;
    }
    if (close[1] != 0 && close[1] != ':') {
        *err = "text after \"]\" in next hop";
        return false;
    }
    if (close[1] == ':' && !parse_port(close + 2, &out->port, err))
        return false;
    if ((size_t)(close - inner) >= PREFIX_LEN && has_prefix(inner, "ipv6:")) {
        host = xstrndup(inner + PREFIX_LEN, (size_t)(close - inner) - PREFIX_LEN);
        if (!is_ipv6(host)) {
            free(host);
            *err = "bad IPv6 address in next hop";
            return false;
        }
        out->literal = true;
    } else {
        host = xstrndup(inner, (size_t)(close - inner));
        if (is_ipv4(host) || is_ipv6(host)) {
            out->literal = true;
        } else if (!host_name_ok(host)) {
            free(host);
            *err = "bad host name in next hop";
            return false;
        }
    }
    out->host = host;
    out->kind = NEXTHOP_HOST;
    return true;
}

/* parse_plain - "host" or "host:port" without brackets */
static bool parse_plain(const char *s, bool lmtp, struct nexthop *out, const char **err)
{
    const char *colon = strchr(s, ':');
    char *host;

    if (strchr(s, '[') != NULL || strchr(s, ']') != NULL) {
        *err = "misplaced brackets in next hop";
        return false;
    }
    if (colon != NULL && strchr(colon + 1, ':') != NULL) {
        *err = is_ipv6(s) ? "IPv6 address in next hop needs brackets" : "bad next hop syntax";
        return false;
    }
    if (colon == s) {
        *err = "empty host name in next hop";
        return false;
    }
    if (colon != NULL && !parse_port(colon + 1, &out->port, err))
        return false;
    host = colon ? xstrndup(s, (size_t)(colon - s)) : xstrdup(s);
    if (is_ipv4(host)) {
        out->literal = true;
        out->kind = NEXTHOP_HOST;
    } else if (host_name_ok(host)) {
        out->kind = lmtp ? NEXTHOP_HOST : NEXTHOP_MX;
    } else {
        free(host);
        *err = "bad host name in next hop";
        return false;
    }
    out->host = host;
    return true;
}

/* strip_type - drop a type prefix unless only a port number follows it */
static const char *strip_type(const char *s, const char *type)
{
    if (has_prefix(s, type) && s[PREFIX_LEN] != 0 && !all_digits(s + PREFIX_LEN))
        return s + PREFIX_LEN;
    return s;
}

/* nexthop_parse - parse the next hop of an smtp or lmtp agent */
bool nexthop_parse(const char *text, bool lmtp, struct nexthop *out, const char **err)
{
    const char *s = text;
    size_t sun_max = sizeof(((struct sockaddr_un *)0)->sun_path);
    bool ok;

    memset(out, 0, sizeof(*out));
    out->kind = NEXTHOP_HOST;
    out->port = lmtp ? NEXTHOP_LMTP_PORT : NEXTHOP_SMTP_PORT;
    if (s == NULL || *s == 0) {
        *err = "empty next hop";
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= ' ' || *p == ASCII_DEL) {
            *err = "whitespace or control character in next hop";
            return false;
        }
    }
    s = strip_type(s, lmtp ? "lmtp:" : "smtp:");
    /* For SMTP, "unix:25" is a host called "unix" (as with "smtp:25"). */
    if (has_prefix(s, "unix:") && (lmtp || !all_digits(s + PREFIX_LEN))) {
        if (!lmtp) {
            *err = "a unix: next hop is for LMTP only";
            return false;
        }
        if (s[PREFIX_LEN] == 0) {
            *err = "empty socket path in next hop";
            return false;
        }
        if (strlen(s + PREFIX_LEN) >= sun_max) {
            *err = "socket path too long in next hop";
            return false;
        }
        out->kind = NEXTHOP_UNIX;
        out->port = 0;
        out->path = xstrdup(s + PREFIX_LEN);
        return true;
    }
    s = strip_type(s, "inet:");
    ok = *s == '[' ? parse_bracketed(s, out, err) : parse_plain(s, lmtp, out, err);
    if (!ok) {
        nexthop_free(out);
        out->port = 0;
    }
    return ok;
}

/* nexthop_free - release the strings of a parsed next hop */
void nexthop_free(struct nexthop *nh)
{
    free(nh->host);
    free(nh->path);
    nh->host = NULL;
    nh->path = NULL;
}
