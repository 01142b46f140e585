/*
 * cidr.h - IPv4/IPv6 networks: parse "addr/len", match an address
 *
 * Accepted network forms: "1.2.3.0/24", "2001:db8::/32", "[2001:db8::]/32",
 * "[2001:db8::/32]", and host addresses without a length ("10.0.0.1",
 * "::1", "[::1]") which mean /32 or /128. An IPv4 address given as an
 * IPv4-mapped IPv6 address (::ffff:1.2.3.4) matches IPv4 networks, and an
 * IPv4 address matches IPv6 networks inside ::ffff:0:0/96.
 */
#ifndef POSTA_CIDR_H
#define POSTA_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CIDR_TEXT_MAX 128   /* longest network text cidr_parse accepts */

struct cidr {
    int family;          /* AF_INET or AF_INET6 */
    uint8_t addr[16];    /* network, host bits cleared */
    unsigned prefix;
};

enum cidr_status {
    CIDR_OK = 0,         /* a clean network or host address */
    CIDR_BAD = 1,        /* not a network: *out is unspecified */
    CIDR_HOSTBITS = 2,   /* "1.2.3.4/24": *out holds 1.2.3.0/24 */
};

/*
 * cidr_parse_status - parse a network; CIDR_HOSTBITS tells the caller that
 * the address had bits set past the prefix (Postfix warns about these;
 * whether to accept the masked network is the caller's choice).
 */
enum cidr_status cidr_parse_status(const char *text, struct cidr *out);
/* cidr_parse - "1.2.3.0/24", "[::1]/128", "::1", "10.0.0.1" (host); false if bad
 * (non-zero host bits are accepted and cleared: see cidr_parse_status) */
bool cidr_parse(const char *text, struct cidr *out);
/* cidr_match_text - does the textual address (brackets allowed) fall inside */
bool cidr_match_text(const struct cidr *c, const char *addr);
/* cidr_match - binary address (4 or 16 bytes, IPv4-mapped IPv6 handled) */
bool cidr_match(const struct cidr *c, int family, const void *addr);
/*
 * cidr_addr_parse - a single address (brackets allowed, no length) into
 * family and 16 bytes of addr (4 used for AF_INET); false if not an address
 */
bool cidr_addr_parse(const char *text, int *family, uint8_t addr[16]);
/* cidr_format - "1.2.3.0/24" or "[2001:db8::]/32" into out (size >= CIDR_TEXT_MAX) */
const char *cidr_format(const struct cidr *c, char *out, size_t size);

#endif
