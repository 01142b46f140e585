/*
 * cidr.h - IPv4/IPv6 networks: parse "addr/len", match an address
 */
#ifndef POSTA_CIDR_H
#define POSTA_CIDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct cidr {
    int family;          /* AF_INET or AF_INET6 */
    uint8_t addr[16];    /* network, host bits cleared */
    unsigned prefix;
};

/* cidr_parse - "1.2.3.0/24", "[::1]/128", "::1", "10.0.0.1" (host); false if bad */
bool cidr_parse(const char *text, struct cidr *out);
/* cidr_match_text - does the textual address fall inside the network */
bool cidr_match_text(const struct cidr *c, const char *addr);
/* cidr_match - binary address (4 or 16 bytes, IPv4-mapped IPv6 handled) */
bool cidr_match(const struct cidr *c, int family, const void *addr);

#endif
