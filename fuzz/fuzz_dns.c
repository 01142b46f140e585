/*
 * fuzz_dns.c - libFuzzer target for DNS answer and hosts-file parsing
 *
 * The first input byte picks the parser: 0-3 dns_answer_parse as the
 * answer to an MX, A, AAAA or TXT question, 4 dns_hosts_parse (name
 * "host.test", family from the second byte); the rest is the packet or
 * the hosts text. Checked: a status always has its text; only DNS_OK
 * carries records, at least one and at most DNS_RECORDS_MAX; MX hosts
 * are "" (Null MX) or valid host names; addresses have the family asked
 * and port 0; a deep copy frees cleanly.
 */
#include "util/sys.h"

#include <netinet/in.h>
#include <string.h>

#include "util/alloc.h"
#include "util/dns.h"
#include "util/dns_parse.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { SEL_MX, SEL_A, SEL_AAAA, SEL_TXT, SEL_HOSTS, SEL_COUNT };

/* check - abort with a message when an invariant fails */
static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant failed: %s\n", what);
        abort();
    }
}

/* check_addrs - every address of family (AF_UNSPEC: either) with port 0 */
static void check_addrs(const struct dns_answer *a, int family)
{
    for (size_t i = 0; i < a->n; i++) {
        int f = a->addr[i].sa.ss_family;
        check(f == AF_INET || f == AF_INET6, "address family");
        check(family == AF_UNSPEC || f == family, "family asked for");
        check(a->addr[i].len ==
                  (f == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)),
              "address length");
        check(f == AF_INET ? ((const struct sockaddr_in *)&a->addr[i].sa)->sin_port == 0
                           : ((const struct sockaddr_in6 *)&a->addr[i].sa)->sin6_port == 0,
              "port 0");
    }
}

/* check_answer - the invariants every answer keeps */
static void check_answer(const struct dns_answer *a, int sel, int family)
{
    struct dns_answer copy;

    check(a->why != NULL && a->why[0] != 0, "why text");
    check(a->status >= DNS_OK && a->status <= DNS_PERMFAIL, "status range");
    if (a->status != DNS_OK) {
        check(a->n == 0, "records only with DNS_OK");
        return;
    }
    check(a->n > 0 && a->n <= DNS_RECORDS_MAX, "record count");
    switch (sel) {
    case SEL_MX:
        for (size_t i = 0; i < a->n; i++)
            check(a->mx[i].host[0] == 0 || dns_hostname_valid(a->mx[i].host),
                  "MX host name");
        break;
    case SEL_TXT:
        for (size_t i = 0; i < a->n; i++)
            check(a->txt[i] != NULL, "TXT record");
        break;
    default:
        check_addrs(a, family);
        break;
    }
    dns_answer_copy(&copy, a);
    check(copy.n == a->n, "copy");
    dns_answer_free(&copy);
}

/* LLVMFuzzerTestOneInput - one fuzz input, checked as the header says */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum dns_qtype qtypes[] = {DNS_QTYPE_MX, DNS_QTYPE_A, DNS_QTYPE_AAAA,
                                            DNS_QTYPE_TXT};
    static const int families[] = {AF_UNSPEC, AF_INET, AF_INET6};
    static bool quiet;
    struct dns_answer ans;
    int sel, family;

    if (!quiet) {
        log_open("fuzz_dns", LOG_SINK_FILE, "/dev/null");
        quiet = true;
    }
    if (size < 1)
        return 0;
    sel = data[0] % SEL_COUNT;
    if (sel == SEL_HOSTS) {
        if (size < 2)
            return 0;
        family = families[data[1] % POSTA_ARRAY_LEN(families)];
        dns_hosts_parse((const char *)data + 2, size - 2, "host.test", family, &ans);
        check(ans.status == DNS_OK || ans.status == DNS_NOTFOUND, "hosts status");
        check_answer(&ans, sel, family);
    } else {
        family = sel == SEL_A ? AF_INET : AF_INET6;
        dns_answer_parse(qtypes[sel], data + 1, size - 1, &ans);
        check_answer(&ans, sel, family);
    }
    dns_answer_free(&ans);
    return 0;
}
