/*
 * fuzz_cidr.c - libFuzzer target for network parsing and cidr: tables
 *
 * The input is used three ways: (1) its first line as a network for
 * cidr_parse_status, whose canonical form must parse back to the same
 * network with no host bits; (2) its second line as an address matched
 * against that network, which must agree with cidr_match on the parsed
 * address; (3) the whole input as the text of a cidr: table, looked up
 * with the second line as the key.
 */
#include "util/sys.h"

#include <string.h>

#include "util/alloc.h"
#include "util/cidr.h"
#include "util/dict.h"
#include "util/dict_impl.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check - abort with a message when an invariant fails */
static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant failed: %s\n", what);
        abort();
    }
}

/* line_copy - line number n (0-based) of the input, NUL-terminated, or NULL */
static char *line_copy(const uint8_t *data, size_t size, int n)
{
    size_t start = 0;

    for (; n > 0; n--) {
        const uint8_t *nl = memchr(data + start, '\n', size - start);
        if (nl == NULL)
            return NULL;
        start = (size_t)(nl - data) + 1;
    }
    const uint8_t *end = memchr(data + start, '\n', size - start);
    size_t len = end ? (size_t)(end - (data + start)) : size - start;
    return xstrndup((const char *)data + start, len);
}

/* LLVMFuzzerTestOneInput - one fuzz input, checked as the header says */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    char *net_text = line_copy(data, size, 0);
    char *addr_text = line_copy(data, size, 1);
    struct cidr c, again;
    char canon[CIDR_TEXT_MAX];

    if (!quiet) {
        log_open("fuzz_cidr", LOG_SINK_FILE, "/dev/null");
        quiet = true;
    }
    enum cidr_status st = cidr_parse_status(net_text, &c);
    if (st != CIDR_BAD) {
        check(c.family == AF_INET || c.family == AF_INET6, "family");
        check(c.prefix <= (c.family == AF_INET ? 32u : 128u), "prefix range");
        cidr_format(&c, canon, sizeof(canon));
        check(cidr_parse_status(canon, &again) == CIDR_OK, "canonical form re-parses cleanly");
        check(again.family == c.family && again.prefix == c.prefix &&
                  memcmp(again.addr, c.addr, sizeof(c.addr)) == 0,
              "canonical form is the same network");
        if (addr_text) {
            int family;
            uint8_t a[16];
            bool m = cidr_match_text(&c, addr_text);
            if (cidr_addr_parse(addr_text, &family, a))
                check(m == cidr_match(&c, family, a), "text and binary match agree");
            else
                check(!m, "a bad address never matches");
        }
        /* a network contains its own address */
        check(cidr_match(&c, c.family, c.addr), "network contains itself");
    }

    struct dict *d = dict_alloc("cidr:fuzz", "cidr", "fuzz", 0);
    char *err = NULL;
    if (dict_cidr_load(d, (const char *)data, size, &err)) {
        const char *value;
        if (addr_text)
            (void)dict_lookup(d, addr_text, &value);
        (void)dict_lookup(d, "10.0.0.1", &value);
        (void)dict_lookup(d, "2001:db8::1", &value);
    }
    free(err);
    dict_free(d);
    free(net_text);
    free(addr_text);
    return 0;
}
