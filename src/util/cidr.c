/*
 * cidr.c - IPv4/IPv6 networks: parse "addr/len", match an address
 *
 * Parsing is strict: the address must be what inet_pton accepts for its
 * family (no zone ids, no abbreviated IPv4 forms such as "10.1"), the
 * length must be plain decimal digits within the family's range, and
 * nothing may follow. Addresses compare as 16-byte IPv6 values internally
 * only when both sides are IPv6; IPv4-mapped forms are converted so that
 * "::ffff:10.0.0.1" is inside 10.0.0.0/8.
 *
 * DIAGNOSTICS: none; callers report bad patterns with their own context.
 * SECURITY: parses configuration and client addresses; bounded length,
 * no allocation.
 */
#include "util/sys.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "util/cidr.h"

#define CIDR_V4_BITS 32u
#define CIDR_V6_BITS 128u
#define CIDR_V4_BYTES 4
#define CIDR_V6_BYTES 16
#define BITS_PER_BYTE 8u
#define CIDR_MAPPED_BITS 96u   /* ::ffff:0:0/96 holds the IPv4-mapped space */

static const uint8_t cidr_mapped_head[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* addr_bits - address width in bits for a family */
static unsigned addr_bits(int family)
{
    return family == AF_INET ? CIDR_V4_BITS : CIDR_V6_BITS;
}

/* is_v4_mapped - a 16-byte address of the form ::ffff:a.b.c.d */
static bool is_v4_mapped(const uint8_t *a16)
{
    return memcmp(a16, cidr_mapped_head, sizeof(cidr_mapped_head)) == 0;
}

/* prefix_equal - the first bits bits of a and b are equal */
static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / BITS_PER_BYTE;
    unsigned rest = bits % BITS_PER_BYTE;

    if (memcmp(a, b, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (BITS_PER_BYTE - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

/* clear_host_bits - zero bits past prefix; true if any were set */
static bool clear_host_bits(uint8_t *a, unsigned nbytes, unsigned prefix)
{
    bool had = false;

    for (unsigned i = 0; i < nbytes; i++) {
        unsigned first = i * BITS_PER_BYTE;
        uint8_t keep;
        if (first + BITS_PER_BYTE <= prefix)
            continue;
        if (first >= prefix)
            keep = 0;
        else
            keep = (uint8_t)(0xffu << (BITS_PER_BYTE - (prefix - first)));
        if (a[i] & (uint8_t)~keep)
            had = true;
        a[i] &= keep;
    }
    return had;
}

/* parse_prefix - plain decimal digits no larger than max */
static bool parse_prefix(const char *s, unsigned max, unsigned *out)
{
    unsigned v = 0;

    if (*s == 0)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (unsigned)(*s - '0');
        if (v > max)
            return false;
    }
    *out = v;
    return true;
}

/* parse_plain_addr - an address without brackets into family/addr */
static bool parse_plain_addr(const char *s, int *family, uint8_t addr[16])
{
    memset(addr, 0, CIDR_V6_BYTES);
    if (strchr(s, ':') == NULL) {
        if (inet_pton(AF_INET, s, addr) != 1)
            return false;
        *family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, s, addr) != 1)
        return false;
    *family = AF_INET6;
    return true;
}

/* cidr_addr_parse - one address, "[...]" allowed, no length */
bool cidr_addr_parse(const char *text, int *family, uint8_t addr[16])
{
    char tmp[CIDR_TEXT_MAX];
    size_t len = strlen(text);

    if (len == 0 || len >= sizeof(tmp))
        return false;
    if (text[0] == '[') {
        if (len < 3 || text[len - 1] != ']')
            return false;
        memcpy(tmp, text + 1, len - 2);
        tmp[len - 2] = 0;
        /* brackets are for IPv6 (Postfix also tolerates [1.2.3.4]) */
    } else {
        memcpy(tmp, text, len + 1);
    }
    return parse_plain_addr(tmp, family, addr);
}

/* cidr_parse_status - parse a network and say whether host bits were set */
enum cidr_status cidr_parse_status(const char *text, struct cidr *out)
{
    char tmp[CIDR_TEXT_MAX];
    size_t len = strlen(text);
    const char *addr_text;
    const char *len_text = NULL;

    if (len == 0 || len >= sizeof(tmp))
        return CIDR_BAD;
    memcpy(tmp, text, len + 1);

    if (tmp[0] == '[') {
        char *close = strchr(tmp, ']');
        if (close == NULL)
            return CIDR_BAD;
        *close = 0;
        addr_text = tmp + 1;
        if (close[1] == '/') {
            len_text = close + 2;          /* [addr]/len */
        } else if (close[1] != 0) {
            return CIDR_BAD;
        } else {
            char *slash = strchr(tmp + 1, '/');
            if (slash) {                   /* [addr/len] */
                *slash = 0;
                len_text = slash + 1;
            }
        }
    } else {
        char *slash = strchr(tmp, '/');
        addr_text = tmp;
        if (slash) {
            *slash = 0;
            len_text = slash + 1;
        }
    }

    memset(out, 0, sizeof(*out));
    if (!parse_plain_addr(addr_text, &out->family, out->addr))
        return CIDR_BAD;
    unsigned max = addr_bits(out->family);
    if (len_text == NULL) {
        out->prefix = max;
        return CIDR_OK;
    }
    if (!parse_prefix(len_text, max, &out->prefix))
        return CIDR_BAD;
    unsigned nbytes = out->family == AF_INET ? CIDR_V4_BYTES : CIDR_V6_BYTES;
    return clear_host_bits(out->addr, nbytes, out->prefix) ? CIDR_HOSTBITS : CIDR_OK;
}

/* cidr_parse - lenient parse: host bits are cleared silently */
bool cidr_parse(const char *text, struct cidr *out)
{
    return cidr_parse_status(text, out) != CIDR_BAD;
}

/* cidr_match - binary address against the network, mapped forms handled */
bool cidr_match(const struct cidr *c, int family, const void *addr)
{
    const uint8_t *a = addr;
    uint8_t mapped[CIDR_V6_BYTES];

    if (family == AF_INET6 && c->family == AF_INET && is_v4_mapped(a)) {
        family = AF_INET;
        a += sizeof(cidr_mapped_head);
    } else if (family == AF_INET && c->family == AF_INET6) {
        /* an IPv4 client matches ::ffff:a.b.c.d/N networks (N >= 96) only */
        if (c->prefix < CIDR_MAPPED_BITS || !is_v4_mapped(c->addr))
            return false;
        memcpy(mapped, cidr_mapped_head, sizeof(cidr_mapped_head));
        memcpy(mapped + sizeof(cidr_mapped_head), a, CIDR_V4_BYTES);
        family = AF_INET6;
        a = mapped;
    }
    if (family != c->family)
        return false;
    return prefix_equal(a, c->addr, c->prefix);
}

/* cidr_match_text - textual address against the network */
bool cidr_match_text(const struct cidr *c, const char *addr)
{
    int family;
    uint8_t a[CIDR_V6_BYTES];

    if (!cidr_addr_parse(addr, &family, a))
        return false;
    return cidr_match(c, family, a);
}

/* cidr_format - the network in the form main.cf uses */
const char *cidr_format(const struct cidr *c, char *out, size_t size)
{
    char text[INET6_ADDRSTRLEN];

    if (inet_ntop(c->family, c->addr, text, sizeof(text)) == NULL)
        text[0] = 0;
    if (c->family == AF_INET6)
        snprintf(out, size, "[%s]/%u", text, c->prefix);
    else
        snprintf(out, size, "%s/%u", text, c->prefix);
    return out;
}
