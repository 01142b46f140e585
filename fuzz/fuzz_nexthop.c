/*
 * fuzz_nexthop.c - libFuzzer target for next-hop parsing
 *
 * The first input byte selects LMTP (bit 0); the rest, up to the first
 * NUL, is the next-hop text. Checked on success: the kind fits the
 * agent (UNIX only for LMTP, MX only for SMTP), host and path are set
 * as the kind says, hold no whitespace or control characters, the port
 * is 1-65535, a literal is a valid address, and printing the result in
 * canonical form and parsing that again gives the same next hop. On
 * failure: an error text, nothing allocated.
 */
#include "util/sys.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "mail/nexthop.h"
#include "util/alloc.h"

#define LMTP_FLAG 0x01u
#define PORT_MAX 65535u
#define ASCII_DEL 0x7f

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check - abort with a message when an invariant fails */
static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant failed: %s\n", what);
        abort();
    }
}

/* clean - no whitespace or control characters */
static bool clean(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == ASCII_DEL)
            return false;
    return true;
}

/* canonical - the next hop written so that it parses back to itself */
static char *canonical(const struct nexthop *nh)
{
    switch (nh->kind) {
    case NEXTHOP_UNIX:
        return xasprintf("unix:%s", nh->path);
    case NEXTHOP_MX:
        return xasprintf("%s:%u", nh->host, nh->port);
    case NEXTHOP_HOST:
        break;
    }
    if (nh->literal && strchr(nh->host, ':') != NULL)
        return xasprintf("[ipv6:%s]:%u", nh->host, nh->port);
    return xasprintf("[%s]:%u", nh->host, nh->port);
}

/* LLVMFuzzerTestOneInput - parse one next hop and check the result */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct nexthop nh, again;
    const char *err = NULL;
    unsigned char addr[sizeof(struct in6_addr)];
    char *text, *canon;
    bool lmtp;

    if (size == 0)
        return 0;
    lmtp = (data[0] & LMTP_FLAG) != 0;
    text = xstrndup((const char *)data + 1, size - 1);
    if (!nexthop_parse(text, lmtp, &nh, &err)) {
        check(err != NULL && err[0] != 0, "error has a reason");
        check(nh.host == NULL && nh.path == NULL, "nothing allocated on error");
        free(text);
        return 0;
    }
    if (nh.kind == NEXTHOP_UNIX) {
        check(lmtp, "unix only for lmtp");
        check(nh.host == NULL && nh.path != NULL && nh.path[0] != 0, "unix has a path");
        check(clean(nh.path), "clean path");
    } else {
        check(nh.kind == NEXTHOP_HOST || !lmtp, "no MX lookups for lmtp");
        check(nh.path == NULL && nh.host != NULL && nh.host[0] != 0, "host set");
        check(clean(nh.host), "clean host");
        check(strchr(nh.host, '[') == NULL && strchr(nh.host, ']') == NULL, "no brackets");
        check(nh.port >= 1 && nh.port <= PORT_MAX, "port range");
        check(!nh.literal || inet_pton(AF_INET, nh.host, addr) == 1
                  || inet_pton(AF_INET6, nh.host, addr) == 1,
              "literal is an address");
        check(!nh.literal || nh.kind == NEXTHOP_HOST, "literal is not looked up");
    }
    canon = canonical(&nh);
    check(nexthop_parse(canon, lmtp, &again, &err), "canonical form parses");
    check(again.kind == nh.kind && again.literal == nh.literal && again.port == nh.port
              && (nh.host == NULL ? again.host == NULL : strcmp(again.host, nh.host) == 0)
              && (nh.path == NULL ? again.path == NULL : strcmp(again.path, nh.path) == 0),
          "canonical form parses to the same next hop");
    nexthop_free(&again);
    nexthop_free(&nh);
    free(canon);
    free(text);
    return 0;
}
