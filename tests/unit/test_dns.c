/*
 * test_dns.c - unit, golden and live tests for the DNS record lookups (util/dns)
 *
 * Live tests start a real dnsmasq on 127.0.0.1 and a port picked free at
 * run time (--no-daemon --no-resolv --no-hosts --conf-file=/dev/null,
 * records from the command line, everything under .test answered
 * locally), point the c-ares channel at it with dns_set_servers and drive
 * the event loop until the callbacks arrive. Each test has its own
 * dnsmasq, killed by PID in the teardown (and at exit, should a test
 * crash). SERVFAIL comes from a forked responder that answers every
 * question with SERVFAIL; time-outs from a UDP socket nobody reads.
 *
 * Golden files: tests/golden/dns/NAME.hex ("type MX|A|AAAA|TXT" and an
 * answer packet in hex, built by mkpackets.py there), NAME.out what
 * dns_answer_parse makes of it. The golden directory is
 * $POSTA_SRCDIR/tests/golden (default "./tests/golden").
 */
#include "util/sys.h"

#include <setjmp.h>
#include <cmocka.h>

#include <ares.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/dns.h"
#include "util/dns_parse.h"
#include "util/event.h"
#include "util/log.h"

#include "golden.h"

#define DNSMASQ "/usr/sbin/dnsmasq"
#define WAIT_MS 8000 /* longest a live answer may take */
#define LOOP_SLICE_MS 50
#define LOOKUP_TIMEOUT_MS 6000
#define SHORT_TIMEOUT_MS 300
#define READY_TRIES 100
#define READY_WAIT_MS 100
#define PACKET_MAX 4096
#define TEXT_MAX 512
#define MS_PER_S 1000
#define NS_PER_MS 1000000
#define TTL1_SLEEP_MS 1300
#define QUIET_MS 400
#define SET_SERVERS_TRIES 200
#define TOO_MANY_SERVERS 17
#define CACHE_BATCH 64

static pid_t dnsmasq_pid = -1;   /* the dnsmasq of the current test */
static pid_t responder_pid = -1; /* the SERVFAIL responder */
static int dnsmasq_port;

/* struct result - what one callback reported */
struct result {
    int calls;
    enum dns_status st;
    size_t n;
    char why[TEXT_MAX];
    char text[PACKET_MAX]; /* the records, rendered and sorted */
};

/* ---- helpers -------------------------------------------------------------------- */

/* now_ms - monotonic milliseconds */
static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * MS_PER_S + (uint64_t)ts.tv_nsec / NS_PER_MS;
}

/* sleep_ms - sleep without running the loop */
static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / MS_PER_S, (long)(ms % MS_PER_S) * NS_PER_MS};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* stop_child - SIGTERM and reap one of our children */
static void stop_child(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGTERM);
        waitpid(*pid, NULL, 0);
    }
    *pid = -1;
}

/* stop_all - at exit: no dnsmasq survives a crashed test */
static void stop_all(void)
{
    stop_child(&dnsmasq_pid);
    stop_child(&responder_pid);
}

/* free_udp_port - a port free for both UDP and TCP on 127.0.0.1 */
static int free_udp_port(void)
{
    for (;;) {
        struct sockaddr_in sin = {.sin_family = AF_INET};
        socklen_t len = sizeof(sin);
        int u = socket(AF_INET, SOCK_DGRAM, 0), t = socket(AF_INET, SOCK_STREAM, 0), port;

        assert_true(u >= 0 && t >= 0);
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(bind(u, (struct sockaddr *)&sin, sizeof(sin)), 0);
        assert_int_equal(getsockname(u, (struct sockaddr *)&sin, &len), 0);
        port = ntohs(sin.sin_port);
        int ok = bind(t, (struct sockaddr *)&sin, sizeof(sin)) == 0;
        close(u);
        close(t);
        if (ok)
            return port;
    }
}

/* udp_socket - a UDP socket bound to 127.0.0.1 on a free port (*port) */
static int udp_socket(int *port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

/* server_answers - does a DNS server answer on 127.0.0.1:port (within READY_WAIT_MS)? */
static bool server_answers(int port)
{
    static const unsigned char query[] = {
        0x12, 0x34, 0x01, 0x00, 0, 1,   0,   0,   0,   0, 0, 0, 5, 'r',
        'e',  'a',  'd',  'y',  4, 't', 'e', 's', 't', 0, 0, 1, 0, 1};
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {0, READY_WAIT_MS * MS_PER_S};
    unsigned char reply[PACKET_MAX];
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    ssize_t got;

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sendto(fd, query, sizeof(query), 0, (struct sockaddr *)&sin, sizeof(sin));
    got = recv(fd, reply, sizeof(reply), 0);
    close(fd);
    return got >= (ssize_t)sizeof(query) && reply[0] == query[0] && reply[1] == query[1];
}

/* use_servers - point the channel at servers (c-ares refuses while queries linger) */
static void use_servers(const char *servers)
{
    const char *err = NULL;

    for (int i = 0; i < SET_SERVERS_TRIES; i++) {
        if (dns_set_servers(servers, &err))
            return;
        event_run_once(LOOP_SLICE_MS);
    }
    fail_msg("dns_set_servers(%s): %s", servers, err);
}

/* start_dnsmasq - run dnsmasq with the test records; wait until it answers */
static void start_dnsmasq(void)
{
    char *port_opt, *servers;
    pid_t pid;

    dnsmasq_port = free_udp_port();
    port_opt = xasprintf("--port=%d", dnsmasq_port);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const char *argv[] = {DNSMASQ,
                              "--no-daemon",
                              "--no-resolv",
                              "--no-hosts",
                              "--conf-file=/dev/null",
                              "--listen-address=127.0.0.1",
                              "--bind-interfaces",
                              port_opt,
                              "--pid-file=",
                              "--local=/test/",
                              "--local-ttl=300",
                              "--mx-host=mx.test,mail1.mx.test,10",
                              "--mx-host=mx.test,mail2.mx.test,20",
                              "--mx-host=mx.test,mail3.mx.test,20",
                              "--mx-host=null.test,.,0",
                              "--host-record=both.test,192.0.2.10,2001:db8::10",
                              "--host-record=v4.test,192.0.2.11",
                              "--host-record=v6.test,2001:db8::11",
                              "--host-record=ttl1.test,192.0.2.12,1",
                              "--cname=alias.test,both.test",
                              "--txt-record=txt.test,v=spf1 ,ip4:192.0.2.0/24, -all",
                              "--txt-record=txt.test,second",
                              "--server=/refused.test/#",
                              NULL};
        int null = open("/dev/null", O_RDWR);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        execv(DNSMASQ, (char *const *)argv);
        _exit(127);
    }
    dnsmasq_pid = pid;
    free(port_opt);
    for (int i = 0; i < READY_TRIES && !server_answers(dnsmasq_port); i++)
        assert_int_equal(waitpid(pid, NULL, WNOHANG), 0);
    assert_true(server_answers(dnsmasq_port));
    servers = xasprintf("127.0.0.1:%d", dnsmasq_port);
    use_servers(servers);
    free(servers);
}

/* start_responder - a child answering every question with SERVFAIL; returns its port */
static int start_responder(void)
{
    int port, fd = udp_socket(&port);
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        unsigned char pkt[PACKET_MAX];
        struct sockaddr_storage from;
        for (;;) {
            socklen_t flen = sizeof(from);
            ssize_t n = recvfrom(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&from, &flen);
            if (n < 12)
                continue;
            pkt[2] = (unsigned char)(0x80 | (pkt[2] & 0x01)); /* QR, keep RD */
            pkt[3] = 0x80 | 2;                                /* RA, SERVFAIL */
            memset(pkt + 6, 0, 6);                            /* no AN, NS, AR */
            sendto(fd, pkt, (size_t)n, 0, (struct sockaddr *)&from, flen);
        }
    }
    close(fd);
    responder_pid = pid;
    return port;
}

/* wait_for - run the loop until res has its answer (fails after WAIT_MS) */
static void wait_for(struct result *res)
{
    uint64_t end = now_ms() + WAIT_MS;

    while (res->calls == 0 && now_ms() < end)
        event_run_once(LOOP_SLICE_MS);
    assert_int_equal(res->calls, 1);
}

/* run_quiet - run the loop for ms milliseconds */
static void run_quiet(unsigned ms)
{
    uint64_t end = now_ms() + ms;

    while (now_ms() < end)
        event_run_once(LOOP_SLICE_MS);
}

/* str_cmp - qsort of strings */
static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* record - store status, why and the sorted items joined with ',' */
static void record(struct result *res, enum dns_status st, char **items, size_t n,
                   const char *why, bool sort)
{
    struct buf b = BUF_INIT;

    assert_non_null(why);
    res->calls++;
    res->st = st;
    res->n = n;
    snprintf(res->why, sizeof(res->why), "%s", why);
    if (sort)
        qsort(items, n, sizeof(*items), str_cmp);
    for (size_t i = 0; i < n; i++) {
        buf_printf(&b, "%s%s", i ? "," : "", items[i]);
        free(items[i]);
    }
    snprintf(res->text, sizeof(res->text), "%s", buf_str(&b));
    buf_free(&b);
    free(items);
}

/* on_mx - an MX answer: "PREF HOST" items, sorted */
static void on_mx(void *ctx, enum dns_status st, const struct dns_mx *mx, size_t n,
                  const char *why)
{
    char **items = xcalloc(n + 1, sizeof(*items));

    assert_true(st == DNS_OK ? n > 0 && mx != NULL : n == 0);
    for (size_t i = 0; i < n; i++)
        items[i] = xasprintf("%u %s", mx[i].pref, mx[i].host);
    record(ctx, st, items, n, why, true);
}

/* addr_text - an address as text */
static char *addr_text(const struct dns_addr *a)
{
    char text[INET6_ADDRSTRLEN];
    const void *p;

    if (a->sa.ss_family == AF_INET) {
        assert_int_equal(a->len, sizeof(struct sockaddr_in));
        assert_int_equal(((const struct sockaddr_in *)&a->sa)->sin_port, 0);
        p = &((const struct sockaddr_in *)&a->sa)->sin_addr;
    } else {
        assert_int_equal(a->sa.ss_family, AF_INET6);
        assert_int_equal(a->len, sizeof(struct sockaddr_in6));
        p = &((const struct sockaddr_in6 *)&a->sa)->sin6_addr;
    }
    assert_non_null(inet_ntop(a->sa.ss_family, p, text, sizeof(text)));
    return xstrdup(text);
}

/* on_addr - an address answer, in the order given (A first must hold) */
static void on_addr(void *ctx, enum dns_status st, const struct dns_addr *a, size_t n,
                    const char *why)
{
    char **items = xcalloc(n + 1, sizeof(*items));

    assert_true(st == DNS_OK ? n > 0 && a != NULL : n == 0);
    for (size_t i = 0; i < n; i++)
        items[i] = addr_text(&a[i]);
    record(ctx, st, items, n, why, false);
}

/* on_txt - a TXT answer, records sorted */
static void on_txt(void *ctx, enum dns_status st, char *const *txt, size_t n,
                   const char *why)
{
    char **items = xcalloc(n + 1, sizeof(*items));

    assert_true(st == DNS_OK ? n > 0 && txt != NULL : n == 0);
    for (size_t i = 0; i < n; i++)
        items[i] = xasprintf("[%s]", txt[i]);
    record(ctx, st, items, n, why, true);
}

/* mx_now - look up domain's MX records and wait for the answer */
static void mx_now(const char *domain, struct result *res)
{
    memset(res, 0, sizeof(*res));
    assert_non_null(dns_lookup_mx(domain, LOOKUP_TIMEOUT_MS, on_mx, res));
    assert_int_equal(res->calls, 0); /* never from inside the call */
    wait_for(res);
}

/* addr_now - look up host's addresses and wait for the answer */
static void addr_now(const char *host, int family, bool hosts, struct result *res)
{
    memset(res, 0, sizeof(*res));
    assert_non_null(dns_lookup_addr(host, family, hosts, LOOKUP_TIMEOUT_MS, on_addr, res));
    assert_int_equal(res->calls, 0);
    wait_for(res);
}

/* txt_now - look up name's TXT records and wait for the answer */
static void txt_now(const char *name, struct result *res)
{
    memset(res, 0, sizeof(*res));
    assert_non_null(dns_lookup_txt(name, LOOKUP_TIMEOUT_MS, on_txt, res));
    assert_int_equal(res->calls, 0);
    wait_for(res);
}

/* ---- fixtures --------------------------------------------------------------------- */

/* group_setup - the loop and the channel (servers given before dns_init) */
static int group_setup(void **state)
{
    const char *err = NULL;

    (void)state;
    log_open("test_dns", LOG_SINK_STDERR, NULL);
    atexit(stop_all);
    event_init();
    if (!dns_set_servers("127.0.0.1:53", &err))
        return -1;
    dns_init();
    return 0;
}

/* live_setup - a fresh dnsmasq and an empty cache */
static int live_setup(void **state)
{
    (void)state;
    start_dnsmasq();
    dns_cache_flush();
    return 0;
}

/* live_teardown - stop the servers this test started */
static int live_teardown(void **state)
{
    (void)state;
    stop_all();
    dns_cache_flush();
    dns_set_hosts_file(NULL);
    return 0;
}

/* ---- live tests ---------------------------------------------------------------------- */

/* test_mx - three MX records with their preferences */
static void test_mx(void **state)
{
    struct result r;

    (void)state;
    mx_now("mx.test", &r);
    assert_int_equal(r.st, DNS_OK);
    assert_string_equal(r.text, "10 mail1.mx.test,20 mail2.mx.test,20 mail3.mx.test");
    mx_now("MX.Test.", &r); /* case and the trailing dot do not matter */
    assert_int_equal(r.st, DNS_OK);
    assert_int_equal(r.n, 3);
}

/* test_null_mx - "." comes back as host "" */
static void test_null_mx(void **state)
{
    struct result r;

    (void)state;
    mx_now("null.test", &r);
    assert_int_equal(r.st, DNS_OK);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.text, "0 ");
}

/* test_nxdomain - a name that does not exist, for every type */
static void test_nxdomain(void **state)
{
    struct result r;

    (void)state;
    mx_now("nosuch.test", &r);
    assert_int_equal(r.st, DNS_NOTFOUND);
    assert_string_equal(r.why, "Host not found");
    addr_now("nosuch.test", AF_UNSPEC, false, &r);
    assert_int_equal(r.st, DNS_NOTFOUND);
    txt_now("nosuch.test", &r);
    assert_int_equal(r.st, DNS_NOTFOUND);
}

/* test_nodata - the name exists without records of the type */
static void test_nodata(void **state)
{
    struct result r;

    (void)state;
    mx_now("both.test", &r);
    assert_int_equal(r.st, DNS_NODATA);
    addr_now("v4.test", AF_INET6, false, &r);
    assert_int_equal(r.st, DNS_NODATA);
    txt_now("v4.test", &r);
    assert_int_equal(r.st, DNS_NODATA);
}

/* test_refused - REFUSED (dnsmasq has no server for refused.test) is temporary */
static void test_refused(void **state)
{
    struct result r;

    (void)state;
    mx_now("refused.test", &r);
    assert_int_equal(r.st, DNS_TEMPFAIL);
    assert_string_equal(r.why, "Host not found, try again");
    /* and a temporary failure is not cached: once it works, it works */
    mx_now("mx.test", &r);
    assert_int_equal(r.st, DNS_OK);
}

/* test_servfail - SERVFAIL is temporary, for MX and for addresses */
static void test_servfail(void **state)
{
    struct result r;
    char *servers = xasprintf("127.0.0.1:%d", start_responder());

    (void)state;
    use_servers(servers);
    free(servers);
    mx_now("mx.test", &r);
    assert_int_equal(r.st, DNS_TEMPFAIL);
    addr_now("both.test", AF_UNSPEC, false, &r);
    assert_int_equal(r.st, DNS_TEMPFAIL);
}

/* test_addr - A and AAAA, A first; one family; a CNAME; an IPv6-only name */
static void test_addr(void **state)
{
    struct result r;

    (void)state;
    addr_now("both.test", AF_UNSPEC, false, &r);
    assert_int_equal(r.st, DNS_OK);
    assert_string_equal(r.text, "192.0.2.10,2001:db8::10");
    addr_now("both.test", AF_INET, false, &r);
    assert_string_equal(r.text, "192.0.2.10");
    addr_now("both.test", AF_INET6, false, &r);
    assert_string_equal(r.text, "2001:db8::10");
    addr_now("alias.test", AF_INET, false, &r);
    assert_int_equal(r.st, DNS_OK);
    assert_string_equal(r.text, "192.0.2.10");
    addr_now("v4.test", AF_UNSPEC, false, &r);
    assert_int_equal(r.st, DNS_OK);
    assert_string_equal(r.text, "192.0.2.11");
    addr_now("v6.test", AF_UNSPEC, false, &r);
    assert_int_equal(r.st, DNS_OK);
    assert_string_equal(r.text, "2001:db8::11");
}

/* test_literal - literal addresses need no server (asked with the server gone) */
static void test_literal(void **state)
{
    struct result r;

    (void)state;
    stop_child(&dnsmasq_pid);
    addr_now("192.0.2.99", AF_UNSPEC, false, &r);
    assert_int_equal(r.st, DNS_OK);
    assert_string_equal(r.text, "192.0.2.99");
    addr_now("2001:db8::99", AF_UNSPEC, true, &r);
    assert_int_equal(r.st, DNS_OK);
    assert_string_equal(r.text, "2001:db8::99");
    addr_now("2001:db8::99", AF_INET, false, &r);
    assert_int_equal(r.st, DNS_NODATA);
    addr_now("bad..name", AF_UNSPEC, false, &r);
    assert_int_equal(r.st, DNS_PERMFAIL);
    mx_now("192.0.2.1", &r);
    assert_int_equal(r.st, DNS_PERMFAIL);
    mx_now("", &r);
    assert_int_equal(r.st, DNS_PERMFAIL);
    mx_now("a234567890123456789012345678901234567890123456789012345678901234.test", &r);
    assert_int_equal(r.st, DNS_PERMFAIL); /* a label of 64 characters */
    txt_now("white space.test", &r);
    assert_int_equal(r.st, DNS_PERMFAIL);
    memset(&r, 0, sizeof(r));
    dns_lookup_addr("host.test", AF_UNIX, false, LOOKUP_TIMEOUT_MS, on_addr, &r);
    wait_for(&r);
    assert_int_equal(r.st, DNS_PERMFAIL);
}

/* test_txt - each record's strings concatenated */
static void test_txt(void **state)
{
    struct result r;

    (void)state;
    txt_now("txt.test", &r);
    assert_int_equal(r.st, DNS_OK);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.text, "[second],[v=spf1 ip4:192.0.2.0/24 -all]");
}

/* test_cache - answers (negative ones too) outlive the server; flush forgets them */
static void test_cache(void **state)
{
    struct result r;

    (void)state;
    mx_now("mx.test", &r);
    addr_now("both.test", AF_UNSPEC, false, &r);
    mx_now("nosuch.test", &r);
    mx_now("both.test", &r);
    txt_now("txt.test", &r);
    stop_child(&dnsmasq_pid);

    mx_now("Mx.Test", &r);
    assert_int_equal(r.st, DNS_OK);
    assert_string_equal(r.text, "10 mail1.mx.test,20 mail2.mx.test,20 mail3.mx.test");
    addr_now("both.test", AF_UNSPEC, false, &r);
    assert_string_equal(r.text, "192.0.2.10,2001:db8::10");
    addr_now("both.test", AF_INET6, false, &r);
    assert_string_equal(r.text, "2001:db8::10");
    mx_now("nosuch.test", &r);
    assert_int_equal(r.st, DNS_NOTFOUND);
    mx_now("both.test", &r);
    assert_int_equal(r.st, DNS_NODATA);
    txt_now("txt.test", &r);
    assert_int_equal(r.st, DNS_OK);
    assert_int_equal(r.n, 2);

    /* never asked: the server is gone, so a temporary failure */
    mx_now("v4.test", &r);
    assert_int_equal(r.st, DNS_TEMPFAIL);
    dns_cache_flush();
    mx_now("mx.test", &r);
    assert_int_equal(r.st, DNS_TEMPFAIL);
}

/* test_cache_ttl - an answer is reused for its TTL only */
static void test_cache_ttl(void **state)
{
    struct result r;

    (void)state;
    addr_now("ttl1.test", AF_INET, false, &r);
    assert_int_equal(r.st, DNS_OK);
    addr_now("both.test", AF_INET, false, &r);
    stop_child(&dnsmasq_pid);
    sleep_ms(TTL1_SLEEP_MS);
    addr_now("ttl1.test", AF_INET, false, &r);
    assert_int_equal(r.st, DNS_TEMPFAIL);
    addr_now("both.test", AF_INET, false, &r); /* TTL 300: still there */
    assert_int_equal(r.st, DNS_OK);
}

/* test_cache_bound - the cache keeps DNS_CACHE_MAX answers and drops the oldest */
static void test_cache_bound(void **state)
{
    struct result *rs = xcalloc(CACHE_BATCH, sizeof(*rs)), r;
    char name[TEXT_MAX];

    (void)state;
    for (int base = 0; base <= DNS_CACHE_MAX; base += CACHE_BATCH) {
        int n =
            DNS_CACHE_MAX + 1 - base < CACHE_BATCH ? DNS_CACHE_MAX + 1 - base : CACHE_BATCH;
        memset(rs, 0, CACHE_BATCH * sizeof(*rs));
        for (int i = 0; i < n; i++) {
            snprintf(name, sizeof(name), "n%d.test", base + i);
            dns_lookup_mx(name, LOOKUP_TIMEOUT_MS, on_mx, &rs[i]);
        }
        for (int i = 0; i < n; i++) {
            wait_for(&rs[i]);
            assert_int_equal(rs[i].st, DNS_NOTFOUND);
        }
    }
    free(rs);
    stop_child(&dnsmasq_pid);
    snprintf(name, sizeof(name), "n%d.test", DNS_CACHE_MAX);
    mx_now(name, &r);
    assert_int_equal(r.st, DNS_NOTFOUND); /* the newest is there */
    mx_now("n1.test", &r);
    assert_int_equal(r.st, DNS_NOTFOUND);
    mx_now("n0.test", &r);
    assert_int_equal(r.st, DNS_TEMPFAIL); /* the oldest went */
}

/* test_cancel - no callback after dns_cancel, for a query and for a cached answer */
static void test_cancel(void **state)
{
    struct result r, c;
    struct dns_req *req;

    (void)state;
    memset(&c, 0, sizeof(c));
    req = dns_lookup_mx("mx.test", LOOKUP_TIMEOUT_MS, on_mx, &c);
    dns_cancel(req);
    run_quiet(QUIET_MS);
    assert_int_equal(c.calls, 0);
    /* the lingering query still filled the cache */
    stop_child(&dnsmasq_pid);
    mx_now("mx.test", &r);
    assert_int_equal(r.st, DNS_OK);
    req = dns_lookup_mx("mx.test", LOOKUP_TIMEOUT_MS, on_mx, &c);
    dns_cancel(req);
    req = dns_lookup_addr("192.0.2.1", AF_UNSPEC, false, LOOKUP_TIMEOUT_MS, on_addr, &c);
    dns_cancel(req);
    dns_cancel(NULL);
    run_quiet(QUIET_MS);
    assert_int_equal(c.calls, 0);
}

/* cancel_other - a callback that cancels another request */
static void cancel_other(void *ctx, enum dns_status st, const struct dns_mx *mx, size_t n,
                         const char *why)
{
    struct dns_req **other = ctx;

    (void)st, (void)mx, (void)n, (void)why;
    dns_cancel(*other);
}

/* test_cancel_from_callback - one answer's callback cancels a request not yet answered */
static void test_cancel_from_callback(void **state)
{
    struct result c;
    struct dns_req *other = NULL;

    (void)state;
    memset(&c, 0, sizeof(c));
    dns_lookup_mx("mx.test", LOOKUP_TIMEOUT_MS, cancel_other, &other);
    other = dns_lookup_txt("txt.test", LOOKUP_TIMEOUT_MS, on_txt, &c);
    run_quiet(QUIET_MS);
    assert_int_equal(c.calls, 0);
}

/* test_deadline - a server that never answers: TEMPFAIL when timeout_ms passes */
static void test_deadline(void **state)
{
    struct result r;
    int port, fd = udp_socket(&port);
    char *servers = xasprintf("127.0.0.1:%d", port);
    uint64_t start;

    (void)state;
    use_servers(servers);
    free(servers);
    memset(&r, 0, sizeof(r));
    event_run_once(0); /* the loop's clock is cached: refresh it */
    start = now_ms();
    dns_lookup_addr("both.test", AF_UNSPEC, false, SHORT_TIMEOUT_MS, on_addr, &r);
    wait_for(&r);
    assert_int_equal(r.st, DNS_TEMPFAIL);
    assert_string_equal(r.why, "Host not found, try again");
    assert_true(now_ms() - start >= SHORT_TIMEOUT_MS - LOOP_SLICE_MS);
    assert_true(now_ms() - start < SHORT_TIMEOUT_MS * 4);
    memset(&r, 0, sizeof(r));
    dns_lookup_mx("mx.test", SHORT_TIMEOUT_MS, on_mx, &r);
    wait_for(&r);
    assert_int_equal(r.st, DNS_TEMPFAIL);
    close(fd);
}

/* datagrams - how many queries wait unread on fd */
static int datagrams(int fd)
{
    unsigned char pkt[PACKET_MAX];
    int n = 0;

    while (recv(fd, pkt, sizeof(pkt), MSG_DONTWAIT) > 0)
        n++;
    return n;
}

/* test_coalesce - lookups of one (name, type) while a query is in flight share it */
static void test_coalesce(void **state)
{
    struct result r[3], a;
    int port, fd = udp_socket(&port);
    char *servers = xasprintf("127.0.0.1:%d", port);

    (void)state;
    use_servers(servers);
    free(servers);
    datagrams(fd);
    memset(r, 0, sizeof(r));
    memset(&a, 0, sizeof(a));
    for (size_t i = 0; i < POSTA_ARRAY_LEN(r); i++)
        dns_lookup_mx("Coalesce.test", SHORT_TIMEOUT_MS, on_mx, &r[i]);
    dns_lookup_addr("coalesce.test.", AF_UNSPEC, false, SHORT_TIMEOUT_MS, on_addr, &a);
    for (size_t i = 0; i < POSTA_ARRAY_LEN(r); i++) {
        wait_for(&r[i]);
        assert_int_equal(r[i].st, DNS_TEMPFAIL);
    }
    wait_for(&a);
    assert_int_equal(datagrams(fd), 3); /* one MX, one A, one AAAA */
    close(fd);
}

/* test_hosts_file - hosts_file answers from the file first; without it DNS only */
static void test_hosts_file(void **state)
{
    char path[] = "/tmp/test_dns_hosts.XXXXXX";
    int fd = mkstemp(path);
    static const char hosts[] = "# test hosts\n"
                                "192.0.2.50\thosted.test alias.hosted.test # comment\n"
                                "2001:db8::50 HOSTED.test.\n"
                                "192.0.2.51 hosted.test\n"
                                "192.0.2.52 hosted.test.other\n"
                                "bogus hosted.test\n"
                                "192.0.2.53 both.test\n";
    struct result r;

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, hosts, sizeof(hosts) - 1), (ssize_t)sizeof(hosts) - 1);
    close(fd);
    dns_set_hosts_file(path);
    addr_now("hosted.test", AF_UNSPEC, true, &r);
    assert_int_equal(r.st, DNS_OK);
    assert_string_equal(r.text, "192.0.2.50,192.0.2.51,2001:db8::50");
    addr_now("Alias.Hosted.Test", AF_INET6, true, &r);
    assert_int_equal(r.st, DNS_NOTFOUND); /* not in the file for IPv6: DNS, NXDOMAIN */
    addr_now("hosted.test", AF_UNSPEC, false, &r);
    assert_int_equal(r.st, DNS_NOTFOUND);
    addr_now("both.test", AF_UNSPEC, true, &r);
    assert_string_equal(r.text, "192.0.2.53");
    addr_now("v4.test", AF_UNSPEC, true, &r); /* not in the file: DNS */
    assert_string_equal(r.text, "192.0.2.11");
    unlink(path);
}

/* ---- offline tests
 * ------------------------------------------------------------------------ */

/* test_set_servers - the list syntax */
static void test_set_servers(void **state)
{
    static const char *const good[] = {
        "127.0.0.1", "127.0.0.1:53",   " 127.0.0.1:5353 , 10.0.0.1",      "::1", "[::1]:53",
        "[::1]",     "[127.0.0.1]:53", "127.0.0.1,[2001:db8::1]:5353,::1"};
    static const char *const bad[] = {
        "1.2.3",       "127.0.0.1:0",     "127.0.0.1:65536", "[::1",
        "[::1]53",     "host.test",       "127.0.0.1,",      ",",
        "127.0.0.1:x", "127.0.0.1:53:53", "[::1]:",          "::1:99999x"};
    struct buf many = BUF_INIT;
    const char *err;

    (void)state;
    for (size_t i = 0; i < POSTA_ARRAY_LEN(good); i++) {
        err = NULL;
        if (!dns_set_servers(good[i], &err))
            fail_msg("\"%s\" refused: %s", good[i], err);
    }
    for (size_t i = 0; i < POSTA_ARRAY_LEN(bad); i++) {
        err = NULL;
        if (dns_set_servers(bad[i], &err))
            fail_msg("\"%s\" accepted", bad[i]);
        assert_non_null(err);
    }
    for (int i = 0; i < TOO_MANY_SERVERS; i++)
        buf_puts(&many, i ? ",127.0.0.1" : "127.0.0.1");
    assert_false(dns_set_servers(buf_str(&many), &err));
    assert_string_equal(err, "too many name servers");
    buf_free(&many);
    err = NULL;
    assert_false(dns_set_servers("", &err)); /* after dns_init: cannot go back */
    assert_non_null(err);
}

/* test_hosts_parse - the hosts-file parser alone */
static void test_hosts_parse(void **state)
{
    static const char text[] = "127.0.0.1 localhost\n::1 localhost ip6-localhost\n"
                               "  10.1.1.1   a.test  b.test\r\n#10.9.9.9 a.test\n"
                               "fe80::1%eth0 a.test\n10.1.1.2 a.test";
    struct dns_answer ans;

    (void)state;
    dns_hosts_parse(text, sizeof(text) - 1, "localhost", AF_UNSPEC, &ans);
    assert_int_equal(ans.status, DNS_OK);
    assert_int_equal(ans.n, 2);
    assert_int_equal(ans.addr[0].sa.ss_family, AF_INET);
    assert_int_equal(ans.addr[1].sa.ss_family, AF_INET6);
    dns_answer_free(&ans);
    dns_hosts_parse(text, sizeof(text) - 1, "B.TEST.", AF_INET, &ans);
    assert_int_equal(ans.status, DNS_OK);
    assert_int_equal(ans.n, 1);
    dns_answer_free(&ans);
    dns_hosts_parse(text, sizeof(text) - 1, "a.test", AF_UNSPEC, &ans);
    assert_int_equal(ans.n, 2); /* the comment and the scoped address do not count */
    dns_answer_free(&ans);
    dns_hosts_parse(text, sizeof(text) - 1, "c.test", AF_UNSPEC, &ans);
    assert_int_equal(ans.status, DNS_NOTFOUND);
    assert_int_equal(ans.n, 0);
    dns_hosts_parse(text, sizeof(text) - 1, "localhost", AF_INET6, &ans);
    assert_int_equal(ans.n, 1);
    dns_answer_free(&ans);
}

/* test_answer_copy - a deep copy survives the original */
static void test_answer_copy(void **state)
{
    static const char text[] = "192.0.2.1 h.test\n192.0.2.2 h.test\n";
    struct dns_answer a, b;

    (void)state;
    dns_hosts_parse(text, sizeof(text) - 1, "h.test", AF_INET, &a);
    dns_answer_copy(&b, &a);
    dns_answer_free(&a);
    assert_int_equal(b.n, 2);
    assert_int_equal(b.addr[1].sa.ss_family, AF_INET);
    dns_answer_free(&b);
}

/* ---- golden answers
 * ---------------------------------------------------------------------- */

/* golden_hex_render - NAME.hex: "type T" and a packet in hex, rendered as dns_answer_parse
 * sees it */
static void golden_hex_render(const char *file, char *text, size_t len, struct buf *out)
{
    static const char *const status_names[] = {"OK", "NOTFOUND", "NODATA", "TEMPFAIL",
                                               "PERMFAIL"};
    struct buf pkt = BUF_INIT;
    enum dns_qtype qtype = 0;
    struct dns_answer ans;
    char *save = NULL, *line;

    (void)len;
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        if (strncmp(line, "type ", 5) == 0) {
            const char *t = line + 5;
            qtype = strcmp(t, "MX") == 0     ? DNS_QTYPE_MX
                    : strcmp(t, "A") == 0    ? DNS_QTYPE_A
                    : strcmp(t, "AAAA") == 0 ? DNS_QTYPE_AAAA
                    : strcmp(t, "TXT") == 0  ? DNS_QTYPE_TXT
                                             : 0;
            continue;
        }
        for (char *p = line; p[0] && p[1]; p += 2) {
            while (*p == ' ' || *p == '\t' || *p == '\r')
                p++;
            if (!p[0] || !p[1])
                break;
            assert_true(golden_hexval(p[0]) >= 0 && golden_hexval(p[1]) >= 0);
            buf_putc(&pkt, golden_hexval(p[0]) * GOLDEN_HEX_RADIX + golden_hexval(p[1]));
        }
    }
    if (qtype == 0)
        fail_msg("%s: no \"type\" line", file);
    dns_answer_parse(qtype, (const unsigned char *)buf_str(&pkt), pkt.len, &ans);
    buf_printf(out, "status %s\nwhy %s\n", status_names[ans.status], ans.why);
    if (ans.status == DNS_OK)
        buf_printf(out, "ttl %u\n", ans.ttl);
    for (size_t i = 0; i < ans.n; i++) {
        if (ans.mx) {
            buf_printf(out, "mx %u \"", ans.mx[i].pref);
            golden_render(out, ans.mx[i].host, strlen(ans.mx[i].host));
            buf_puts(out, "\"\n");
        } else if (ans.addr) {
            char *a = addr_text(&ans.addr[i]);
            buf_printf(out, "addr %s\n", a);
            free(a);
        } else if (ans.txt) {
            buf_puts(out, "txt \"");
            golden_render(out, ans.txt[i], strlen(ans.txt[i]));
            buf_puts(out, "\"\n");
        }
    }
    if (ans.status != DNS_OK)
        assert_int_equal(ans.n, 0);
    dns_answer_free(&ans);
    buf_free(&pkt);
}

/* test_golden_answers - every tests/golden/dns/NAME.hex */
static void test_golden_answers(void **state)
{
    (void)state;
    golden_run_dir("dns", ".hex", 20, golden_hex_render);
}

/* test_ares_status - c-ares codes as ours */
static void test_ares_status(void **state)
{
    const char *why = NULL;

    (void)state;
    assert_int_equal(dns_ares_status(ARES_ENOTFOUND, &why), DNS_NOTFOUND);
    assert_string_equal(why, "Host not found");
    assert_int_equal(dns_ares_status(ARES_ENODATA, &why), DNS_NODATA);
    assert_int_equal(dns_ares_status(ARES_ESERVFAIL, &why), DNS_TEMPFAIL);
    assert_string_equal(why, "Host not found, try again");
    assert_int_equal(dns_ares_status(ARES_EREFUSED, &why), DNS_TEMPFAIL);
    assert_int_equal(dns_ares_status(ARES_ETIMEOUT, &why), DNS_TEMPFAIL);
    assert_int_equal(dns_ares_status(ARES_ECONNREFUSED, &why), DNS_TEMPFAIL);
    assert_int_equal(dns_ares_status(ARES_EBADNAME, &why), DNS_PERMFAIL);
    assert_int_equal(dns_ares_status(ARES_EFORMERR, &why), DNS_PERMFAIL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_servers),
        cmocka_unit_test(test_hosts_parse),
        cmocka_unit_test(test_answer_copy),
        cmocka_unit_test(test_golden_answers),
        cmocka_unit_test(test_ares_status),
        cmocka_unit_test_setup_teardown(test_mx, live_setup, live_teardown),
        cmocka_unit_test_setup_teardown(test_null_mx, live_setup, live_teardown),
        cmocka_unit_test_setup_teardown(test_nxdomain, live_setup, live_teardown),
        cmocka_unit_test_setup_teardown(test_nodata, live_setup, live_teardown),
        cmocka_unit_test_setup_teardown(test_refused, live_setup, live_teardown),
        cmocka_unit_test_setup_teardown(test_servfail, live_setup, live_teardown),
        cmocka_unit_test_setup_teardown(test_addr, live_setup, live_teardown),
        cmocka_unit_test_setup_teardown(test_literal, live_setup, live_teardown),
        cmocka_unit_test_setup_teardown(test_txt, live_setup, live_teardown),
        cmocka_unit_test_setup_teardown(test_cache, live_setup, live_teardown),
        cmocka_unit_test_setup_teardown(test_cache_ttl, live_setup, live_teardown),
        cmocka_unit_test_setup_teardown(test_cache_bound, live_setup, live_teardown),
        cmocka_unit_test_setup_teardown(test_cancel, live_setup, live_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_from_callback, live_setup,
                                        live_teardown),
        cmocka_unit_test_setup_teardown(test_deadline, live_setup, live_teardown),
        cmocka_unit_test_setup_teardown(test_coalesce, live_setup, live_teardown),
        cmocka_unit_test_setup_teardown(test_hosts_file, live_setup, live_teardown),
    };

    return cmocka_run_group_tests(tests, group_setup, NULL);
}
