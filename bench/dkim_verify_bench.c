/*
 * dkim_verify_bench.c - what one DKIM verification costs posta, beside a DNS round trip
 *
 *   dkim_verify_bench --dns-server IP:PORT [--count N] MESSAGE...
 *
 * Built and run by bench/run.sh (BENCH_MODE=verify), against build/libposta.a.
 *
 * For each MESSAGE (one DKIM signature, its key published as TXT on the
 * name server): one verification first, which looks the key up and fills
 * posta's caches (the DNS answer in util/dns.c, the decoded public key in
 * mail/dkim.c), and must pass; then N verifications the way smtpd's
 * mailauth does one: dkim_verify_new, the header block, dkim_verify_run
 * (answered from the DNS cache through the event loop), the body in
 * chunks, dkim_verify_body_end, the loop until the keys are in,
 * dkim_verify_results and dkim_verify_ar. Each is timed in CPU time of
 * the process (user + system: the loop's epoll_wait included) and in
 * wall time.
 *
 * Then, for the key name of each MESSAGE, N DNS round trips as posta
 * makes them: dns_cache_flush, dns_lookup_txt through c-ares to the name
 * server, the event loop until the answer is in (wall and CPU time).
 *
 * Output, one line per measurement, for the script to print as a table:
 *   verify ALG BITS STATUS cpu_med cpu_p90 wall_med wall_p90 first_wall
 *   dns QNAME cpu_med cpu_p90 wall_med wall_p90
 * (times in microseconds; first_wall: the first verification, uncached).
 *
 * DIAGNOSTICS: messages on stderr and exit 1 when a message does not
 * verify as "pass", a lookup fails, or a file cannot be read; usage 2.
 */
#include "util/sys.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mail/dkim.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/dns.h"
#include "util/event.h"
#include "util/log.h"

#define EXIT_BENCH_OK 0
#define EXIT_BENCH_FAIL 1
#define EXIT_BENCH_USAGE 2
#define COUNT_DEFAULT 2000
#define COUNT_MAX 1000000
#define MSG_MAX ((size_t)16 << 20) /* largest message file read */
#define BODY_CHUNK 4096            /* body bytes per dkim_verify_body call */
#define DNS_TIMEOUT_MS 5000        /* per lookup; the server is local */
#define NS_PER_US 1000.0
#define NS_PER_S 1000000000ULL
#define P90_PERMILLE 900
#define PERMILLE 1000

/* struct sample - CPU and wall time of N runs, in nanoseconds */
struct sample {
    uint64_t *cpu;
    uint64_t *wall;
    size_t n;
};

/* clock_ns - a clock in nanoseconds */
static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;

    if (clock_gettime(id, &ts) < 0)
        msg_fatal("clock_gettime: %m");
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* cmp_u64 - qsort order for uint64_t */
static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

/* quantile_us - the permille-th quantile (nearest rank) of v, in microseconds; sorts v */
static double quantile_us(uint64_t *v, size_t n, unsigned permille)
{
    size_t rank;

    qsort(v, n, sizeof(*v), cmp_u64);
    rank = (n * permille + PERMILLE - 1) / PERMILLE; /* ceil, 1-based */
    if (rank == 0)
        rank = 1;
    return (double)v[rank - 1] / NS_PER_US;
}

/* sample_print - "cpu_med cpu_p90 wall_med wall_p90" */
static void sample_print(struct sample *s)
{
    double cm = quantile_us(s->cpu, s->n, PERMILLE / 2);
    double c9 = quantile_us(s->cpu, s->n, P90_PERMILLE);
    double wm = quantile_us(s->wall, s->n, PERMILLE / 2);
    double w9 = quantile_us(s->wall, s->n, P90_PERMILLE);

    printf("%.1f %.1f %.1f %.1f", cm, c9, wm, w9);
}

/* verify_done - dkim_verify_run: every key answered */
static void verify_done(void *ctx, struct dkim_verify *v)
{
    (void)v;
    *(bool *)ctx = true;
}

/* header_len - the header block without the empty line that ends it */
static size_t header_len(const struct buf *msg, size_t *body_off)
{
    const char *s = buf_str(msg);

    for (size_t i = 0; i < msg->len; i++) {
        if (s[i] != '\n')
            continue;
        if (i + 1 < msg->len && s[i + 1] == '\n') {
            *body_off = i + 2;
            return i + 1;
        }
        if (i + 2 < msg->len && s[i + 1] == '\r' && s[i + 2] == '\n') {
            *body_off = i + 3;
            return i + 1;
        }
    }
    *body_off = msg->len;
    return msg->len;
}

/*
 * verify_once - one verification as smtpd does it: the verdict of the
 * single signature, its algorithm and key size; its key name into qname
 * (unless NULL)
 */
static enum dkim_status verify_once(const struct buf *msg, enum dkim_alg *alg,
                                    unsigned *bits, struct buf *qname)
{
    size_t body_off, hl = header_len(msg, &body_off);
    const char *s = buf_str(msg);
    struct buf ar = BUF_INIT;
    const struct dkim_result *res;
    struct dkim_verify *v;
    enum dkim_status st = DKIM_NONE;
    bool done = false;
    size_t n;

    v = dkim_verify_new(0, time(NULL));
    dkim_verify_header(v, s, hl);
    if (qname != NULL && dkim_verify_nsigs(v) > 0 && dkim_verify_query(v, 0) != NULL)
        (void)buf_set(qname, dkim_verify_query(v, 0));
    dkim_verify_run(v, DNS_TIMEOUT_MS, verify_done, &done);
    for (size_t off = body_off; off < msg->len; off += BODY_CHUNK) {
        size_t len = msg->len - off < BODY_CHUNK ? msg->len - off : BODY_CHUNK;
        dkim_verify_body(v, s + off, len);
    }
    dkim_verify_body_end(v);
    while (!done)
        event_run_once(-1);
    res = dkim_verify_results(v, &n);
    dkim_verify_ar(v, "\n", &ar);
    if (n == 1) {
        st = res[0].status;
        *alg = res[0].alg;
        *bits = res[0].bits;
        if (st != DKIM_PASS)
            fprintf(stderr, "dkim_verify_bench: %s: %s\n", dkim_status_name(st),
                    res[0].reason ? res[0].reason : "");
    } else {
        fprintf(stderr, "dkim_verify_bench: %zu signatures, expected 1\n", n);
    }
    dkim_verify_free(v);
    buf_free(&ar);
    return n == 1 ? st : DKIM_NONE;
}

/* bench_verify - the first (uncached) and count cached verifications of path */
static bool bench_verify(const char *path, size_t count, struct buf *qname)
{
    struct buf msg = BUF_INIT;
    struct sample s = {xcalloc(count, sizeof(uint64_t)), xcalloc(count, sizeof(uint64_t)),
                       count};
    enum dkim_alg alg = DKIM_ALG_RSA_SHA256;
    unsigned bits = 0;
    uint64_t w0, first;
    bool ok = false;

    if (buf_read_file(&msg, path, MSG_MAX) < 0) {
        fprintf(stderr, "dkim_verify_bench: cannot read %s: %s\n", path, strerror(errno));
        goto out;
    }
    w0 = clock_ns(CLOCK_MONOTONIC);
    if (verify_once(&msg, &alg, &bits, qname) != DKIM_PASS) {
        fprintf(stderr, "dkim_verify_bench: %s does not verify\n", path);
        goto out;
    }
    first = clock_ns(CLOCK_MONOTONIC) - w0;
    for (size_t i = 0; i < count; i++) {
        uint64_t c0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
        uint64_t t0 = clock_ns(CLOCK_MONOTONIC);
        enum dkim_status st = verify_once(&msg, &alg, &bits, NULL);

        s.wall[i] = clock_ns(CLOCK_MONOTONIC) - t0;
        s.cpu[i] = clock_ns(CLOCK_PROCESS_CPUTIME_ID) - c0;
        if (st != DKIM_PASS) {
            fprintf(stderr, "dkim_verify_bench: %s: run %zu did not pass\n", path, i);
            goto out;
        }
    }
    printf("verify %s %u pass ",
           alg == DKIM_ALG_ED25519_SHA256 ? "ed25519-sha256" : "rsa-sha256", bits);
    sample_print(&s);
    printf(" %.1f\n", (double)first / NS_PER_US);
    ok = true;
out:
    buf_free(&msg);
    free(s.cpu);
    free(s.wall);
    return ok;
}

/* struct txt_wait - one TXT lookup's answer */
struct txt_wait {
    bool done;
    enum dns_status st;
    bool is_key;
};

/* txt_done - dns_lookup_txt callback */
static void txt_done(void *ctx, enum dns_status st, char *const *txt, size_t n,
                     const char *why)
{
    struct txt_wait *w = ctx;

    w->done = true;
    w->st = st;
    w->is_key = st == DNS_OK && n > 0 && strncmp(txt[0], "v=DKIM1", strlen("v=DKIM1")) == 0;
    if (st != DNS_OK)
        fprintf(stderr, "dkim_verify_bench: TXT lookup: %s\n", why);
}

/* bench_dns - count uncached TXT lookups of qname */
static bool bench_dns(const char *qname, size_t count)
{
    struct sample s = {xcalloc(count, sizeof(uint64_t)), xcalloc(count, sizeof(uint64_t)),
                       count};
    bool ok = false;

    for (size_t i = 0; i < count; i++) {
        struct txt_wait w = {false, DNS_TEMPFAIL, false};

        dns_cache_flush(); /* a fresh query every time (not timed) */
        uint64_t c0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
        uint64_t t0 = clock_ns(CLOCK_MONOTONIC);
        (void)dns_lookup_txt(qname, DNS_TIMEOUT_MS, txt_done, &w);
        while (!w.done)
            event_run_once(-1);
        s.wall[i] = clock_ns(CLOCK_MONOTONIC) - t0;
        s.cpu[i] = clock_ns(CLOCK_PROCESS_CPUTIME_ID) - c0;
        if (w.st != DNS_OK || !w.is_key) {
            fprintf(stderr, "dkim_verify_bench: %s: lookup %zu gave no key record\n", qname,
                    i);
            goto out;
        }
    }
    printf("dns %s ", qname);
    sample_print(&s);
    printf("\n");
    ok = true;
out:
    free(s.cpu);
    free(s.wall);
    return ok;
}

/* usage - the summary on stderr */
static int usage(void)
{
    fprintf(stderr,
            "usage: dkim_verify_bench --dns-server IP:PORT [--count N] MESSAGE...\n");
    return EXIT_BENCH_USAGE;
}

/* main - verify each message count times, then count DNS round trips per key name */
int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dns-server", required_argument, NULL, 's'},
        {"count", required_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    const char *server = NULL, *why;
    long count = COUNT_DEFAULT;
    struct buf *qnames;
    int c, nmsg, rc = EXIT_BENCH_OK;
    char *end;

    log_open("dkim_verify_bench", LOG_SINK_STDERR, NULL);
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            server = optarg;
            break;
        case 'n':
            errno = 0;
            count = strtol(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || count < 1 || count > COUNT_MAX)
                return usage();
            break;
        default:
            return usage();
        }
    }
    if (server == NULL || optind >= argc)
        return usage();
    if (!dns_set_servers(server, &why)) {
        fprintf(stderr, "dkim_verify_bench: bad --dns-server: %s\n", why);
        return EXIT_BENCH_USAGE;
    }
    event_init();
    dns_init();
    nmsg = argc - optind;
    qnames = xcalloc((size_t)nmsg, sizeof(*qnames));
    for (int i = 0; i < nmsg && rc == EXIT_BENCH_OK; i++)
        if (!bench_verify(argv[optind + i], (size_t)count, &qnames[i]))
            rc = EXIT_BENCH_FAIL;
    for (int i = 0; i < nmsg && rc == EXIT_BENCH_OK; i++)
        if (!bench_dns(buf_str(&qnames[i]), (size_t)count))
            rc = EXIT_BENCH_FAIL;
    for (int i = 0; i < nmsg; i++)
        buf_free(&qnames[i]);
    free(qnames);
    return rc;
}
