/*
 * test_smtp_dest.c - the smtp agent's delivery plan (smtp/dest.c)
 *
 * dest.c is compiled into this test together with scripted stand-ins
 * for its neighbours: DNS answers come from a table (dns_lookup_mx,
 * dns_lookup_addr), and sessions (sess_open, sess_xact, ...) behave as
 * the table of peers says: refuse the connection, greet with 5xx, or
 * talk, and then accept, defer or reject each recipient by its local
 * part. The real event loop, next-hop parser and MX ordering run. Each
 * test checks the results and the order of what the plan did.
 */
#include "util/sys.h"

#include <setjmp.h>
#include <stdio.h>
#include <cmocka.h>

#include "../../smtp/dest.c"

#include "mail/config.h"

#define LOOP_ROUNDS 200
#define LOOP_SLICE_MS 5
#define MAX_RCPTS 4
#define TEST_CACHE_MS 2000
#define TEST_REUSE_MS 300000

struct smtp_conf smtp_conf;

/* ---- scripted DNS ------------------------------------------------------ */

struct fake_mx {
    const char *domain;
    enum dns_status st;
    struct dns_mx mx[3];
    size_t n;
};

struct fake_a {
    const char *host;
    enum dns_status st;
    const char *addr[2];
};

static const struct fake_mx *mx_table;
static size_t mx_count;
static const struct fake_a *a_table;
static size_t a_count;
static unsigned dns_queries;

struct dns_req {
    struct event_timer timer;
    bool is_mx;
    const char *name;
    dns_mx_fn mx_fn;
    dns_addr_fn addr_fn;
    void *ctx;
};

/* fake_dns_fire - answer a lookup from the tables */
static void fake_dns_fire(void *ctx)
{
    struct dns_req *r = ctx;

    if (r->is_mx) {
        for (size_t i = 0; i < mx_count; i++)
            if (strcasecmp(mx_table[i].domain, r->name) == 0) {
                r->mx_fn(r->ctx, mx_table[i].st, mx_table[i].mx, mx_table[i].n, "");
                free(r);
                return;
            }
        r->mx_fn(r->ctx, DNS_NOTFOUND, NULL, 0, "Host not found");
    } else {
        struct dns_addr lit;
        struct sockaddr_in *lsin = (struct sockaddr_in *)&lit.sa;

        /* A literal is its own answer, as in the real resolver. */
        memset(&lit, 0, sizeof(lit));
        if (inet_pton(AF_INET, r->name, &lsin->sin_addr) == 1) {
            lsin->sin_family = AF_INET;
            lit.len = sizeof(*lsin);
            r->addr_fn(r->ctx, DNS_OK, &lit, 1, "");
            free(r);
            return;
        }
        for (size_t i = 0; i < a_count; i++)
            if (strcasecmp(a_table[i].host, r->name) == 0 && a_table[i].st == DNS_OK) {
                struct dns_addr a[2];
                size_t n = 0;

                memset(a, 0, sizeof(a));
                for (; n < 2 && a_table[i].addr[n]; n++) {
                    struct sockaddr_in *sin = (struct sockaddr_in *)&a[n].sa;

                    sin->sin_family = AF_INET;
                    inet_pton(AF_INET, a_table[i].addr[n], &sin->sin_addr);
                    a[n].len = sizeof(*sin);
                }
                r->addr_fn(r->ctx, DNS_OK, a, n, "");
                free(r);
                return;
            } else if (strcasecmp(a_table[i].host, r->name) == 0) {
                r->addr_fn(r->ctx, a_table[i].st, NULL, 0, "");
                free(r);
                return;
            }
        r->addr_fn(r->ctx, DNS_NOTFOUND, NULL, 0, "Host not found");
    }
    free(r);
}

/* fake_dns_start - a lookup answered from the loop */
static struct dns_req *fake_dns_start(const char *name, bool is_mx, dns_mx_fn mfn,
                                      dns_addr_fn afn, void *ctx)
{
    struct dns_req *r = xcalloc(1, sizeof(*r));

    dns_queries++;
    r->is_mx = is_mx;
    r->name = name;
    r->mx_fn = mfn;
    r->addr_fn = afn;
    r->ctx = ctx;
    event_timer_setup(&r->timer, fake_dns_fire, r);
    event_timer_arm(&r->timer, 0);
    return r;
}

/* dns_lookup_mx - fake: MX records from the table */
struct dns_req *dns_lookup_mx(const char *domain, unsigned timeout_ms, dns_mx_fn fn, void *ctx)
{
    (void)timeout_ms;
    return fake_dns_start(domain, true, fn, NULL, ctx);
}

/* dns_lookup_addr - fake: addresses from the table */
struct dns_req *dns_lookup_addr(const char *host, int family, bool hosts_file,
                                unsigned timeout_ms, dns_addr_fn fn, void *ctx)
{
    (void)family;
    (void)hosts_file;
    (void)timeout_ms;
    return fake_dns_start(host, false, NULL, fn, ctx);
}

/* dns_cancel - fake: forget a lookup */
void dns_cancel(struct dns_req *req)
{
    event_timer_disarm(&req->timer);
    free(req);
}

/* ---- scripted sessions ------------------------------------------------- */

struct fake_peer {
    const char *addr;
    const char *mode;      /* "refuse", "greet5", "ok" */
};

static const struct fake_peer *peers;
static size_t npeers;
static struct buf trace;   /* "open A; xact A 2; quit A; ..." */

struct smtp_sess {
    struct smtp_target t;
    sess_fn fn;
    void *ctx;
    struct event_timer timer;
    struct smtp_xact *x;
    bool open_ok;
    unsigned count;
    unsigned long long started;
    void (*watch)(void *);
    void *wctx;
};

/* peer_mode - what the peer at addr does */
static const char *peer_mode(const char *addr)
{
    for (size_t i = 0; i < npeers; i++)
        if (strcmp(peers[i].addr, addr) == 0)
            return peers[i].mode;
    return "refuse";
}

/* smtp_target_relay - fake: "host[addr]:port" */
void smtp_target_relay(const struct smtp_target *t, struct buf *out)
{
    buf_printf(out, "%s[%s]:%u", t->host, t->addr, t->port);
}

/* smtp_status_init - fake: an empty status */
void smtp_status_init(struct sess_status *st)
{
    memset(st, 0, sizeof(*st));
}

/* smtp_status_free - fake: release a status */
void smtp_status_free(struct sess_status *st)
{
    buf_free(&st->text);
    buf_free(&st->diag);
}

/* smtp_rcpt_init - fake: an empty recipient result */
void smtp_rcpt_init(struct smtp_rcpt *r, size_t idx)
{
    memset(r, 0, sizeof(*r));
    r->idx = idx;
}

/* smtp_rcpt_free - fake: release a recipient result */
void smtp_rcpt_free(struct smtp_rcpt *r)
{
    buf_free(&r->text);
    buf_free(&r->diag);
}

/* fake_sess_free - release a fake session */
static void fake_sess_free(struct smtp_sess *s)
{
    event_timer_disarm(&s->timer);
    free(s->t.host);
    free(s);
}

/* fake_open_fire - the connection attempt's outcome */
static void fake_open_fire(void *ctx)
{
    struct smtp_sess *s = ctx;
    const char *mode = peer_mode(s->t.addr);
    struct sess_status st;
    sess_fn fn = s->fn;
    void *fctx = s->ctx;

    smtp_status_init(&st);
    if (strcmp(mode, "ok") == 0) {
        st.ok = st.reached = true;
        s->open_ok = true;
        fn(s, &st, fctx);
        return;
    }
    if (strcmp(mode, "greet5") == 0) {
        st.reached = true;
        st.st = DELIVER_BOUNCED;
        snprintf(st.dsn, sizeof(st.dsn), "5.7.1");
        buf_printf(&st.text, "host %s[%s] refused to talk to me: 554 5.7.1 no", s->t.host,
                   s->t.addr);
    } else {
        st.st = DELIVER_DEFERRED;
        snprintf(st.dsn, sizeof(st.dsn), "4.4.1");
        buf_printf(&st.text, "connect to %s[%s]:%u: Connection refused", s->t.host, s->t.addr,
                   s->t.port);
    }
    fake_sess_free(s);
    fn(NULL, &st, fctx);   /* s is gone, as in the real module */
    smtp_status_free(&st);
}

/* sess_authenticated - fake: the fake sessions never log in */
bool sess_authenticated(const struct smtp_sess *s)
{
    (void)s;
    return false;
}

/* sess_open - fake: connect as the peer table says */
struct smtp_sess *sess_open(const struct smtp_target *t, const char *nexthop, const char *domain,
                            sess_fn fn, void *ctx)
{
    (void)nexthop;
    (void)domain;
    struct smtp_sess *s = xcalloc(1, sizeof(*s));

    s->t = *t;
    s->t.host = xstrdup(t->host);
    s->fn = fn;
    s->ctx = ctx;
    s->started = event_now();
    buf_printf(&trace, "open %s; ", t->addr);
    event_timer_setup(&s->timer, fake_open_fire, s);
    event_timer_arm(&s->timer, 0);
    return s;
}

/* fake_xact_fire - each recipient's answer by its local part */
static void fake_xact_fire(void *ctx)
{
    struct smtp_sess *s = ctx;
    struct sess_status st;

    smtp_status_init(&st);
    for (size_t i = 0; i < s->x->n; i++) {
        struct smtp_rcpt *r = s->x->rcpts[i];
        const char *addr = s->x->req->rcpts[r->idx].address;

        r->done = true;
        buf_reset(&r->text);
        if (strncmp(addr, "defer", 5) == 0) {
            r->st = DELIVER_DEFERRED;
            r->try_next = true;
            snprintf(r->dsn, sizeof(r->dsn), "4.2.0");
            buf_printf(&r->text, "host %s said: 451 later", s->t.addr);
        } else if (strncmp(addr, "bounce", 6) == 0) {
            r->st = DELIVER_BOUNCED;
            snprintf(r->dsn, sizeof(r->dsn), "5.1.1");
            buf_printf(&r->text, "host %s said: 550 unknown", s->t.addr);
        } else {
            r->st = DELIVER_SENT;
            snprintf(r->dsn, sizeof(r->dsn), "2.0.0");
            buf_printf(&r->text, "250 ok at %s", s->t.addr);
        }
    }
    st.ok = st.reached = true;
    s->x = NULL;
    s->fn(s, &st, s->ctx);
}

/* sess_xact - fake: answer each recipient by its local part */
void sess_xact(struct smtp_sess *s, struct smtp_xact *x, sess_fn fn, void *ctx)
{
    s->fn = fn;
    s->ctx = ctx;
    s->x = x;
    s->count++;
    buf_printf(&trace, "xact %s %zu; ", s->t.addr, x->n);
    event_timer_setup(&s->timer, fake_xact_fire, s);
    event_timer_arm(&s->timer, 0);
}

/* sess_quit - fake: QUIT (traced) */
void sess_quit(struct smtp_sess *s)
{
    buf_printf(&trace, "quit %s; ", s->t.addr);
    fake_sess_free(s);
}

/* sess_close - fake: close (traced) */
void sess_close(struct smtp_sess *s)
{
    buf_printf(&trace, "close %s; ", s->t.addr);
    fake_sess_free(s);
}

/* sess_target - fake: the session target */
const struct smtp_target *sess_target(const struct smtp_sess *s)
{
    return &s->t;
}

/* sess_watch_close - fake: remember the watcher */
void sess_watch_close(struct smtp_sess *s, void (*fn)(void *ctx), void *ctx)
{
    s->watch = fn;
    s->wctx = ctx;
}

/* sess_count - fake: transactions done */
unsigned sess_count(const struct smtp_sess *s)
{
    return s->count;
}

/* sess_started_ms - fake: when it was opened */
unsigned long long sess_started_ms(const struct smtp_sess *s)
{
    return s->started;
}

/* ---- running one request ----------------------------------------------- */

struct run {
    struct deliver_request req;
    struct dest_rcpt rc[MAX_RCPTS];
    bool done;
    size_t logged;
};

/* run_rcpt - a final result (counted) */
static void run_rcpt(void *ctx, struct dest_rcpt *r)
{
    struct run *run = ctx;

    (void)r;
    run->logged++;
}

/* run_done - the request is finished */
static void run_done(void *ctx)
{
    struct run *run = ctx;

    run->done = true;
}

/* run_request - deliver to rcpts via nexthop; the results are in run */
static void run_request(struct run *run, const char *nexthop, const char *const *rcpts)
{
    memset(run, 0, sizeof(*run));
    run->req.queue_id = (char *)"TESTQID";
    run->req.nexthop = (char *)nexthop;
    run->req.sender = (char *)"s@example.org";
    run->req.rcpts = xcalloc(MAX_RCPTS, sizeof(*run->req.rcpts));
    for (size_t i = 0; rcpts[i] && i < MAX_RCPTS; i++) {
        run->req.rcpts[i].address = (char *)rcpts[i];
        run->req.rcpts[i].orig = (char *)rcpts[i];
        run->req.nrcpts = i + 1;
        smtp_rcpt_init(&run->rc[i].r, i);
    }
    (void)dest_start(&run->req, NULL, run->rc, run_rcpt, run_done, run);
    for (int i = 0; i < LOOP_ROUNDS && !run->done; i++)
        event_run_once(LOOP_SLICE_MS);
    assert_true(run->done);
    assert_int_equal(run->logged, run->req.nrcpts);
}

/* run_free - release the results */
static void run_free(struct run *run)
{
    for (size_t i = 0; i < run->req.nrcpts; i++) {
        smtp_rcpt_free(&run->rc[i].r);
        buf_free(&run->rc[i].relay);
        buf_free(&run->rc[i].remote_mta);
    }
    free(run->req.rcpts);
}

/* expect - recipient i has this status, dsn and text (substring) */
static void expect(const struct run *run, size_t i, enum deliver_status st, const char *dsn,
                   const char *text)
{
    const struct dest_rcpt *r = &run->rc[i];

    if (r->r.st != st || strcmp(r->r.dsn, dsn) != 0 || !strstr(buf_str(&r->r.text), text))
        fail_msg("recipient %zu: got %s %s (%s); want %s %s (%s)", i,
                 deliver_status_name(r->r.st), r->r.dsn, buf_str(&r->r.text),
                 deliver_status_name(st), dsn, text);
}

/* expect_trace - what the plan did, in order */
static void expect_trace(const char *want)
{
    if (strcmp(buf_str(&trace), want) != 0)
        fail_msg("trace:\n  got  %s\n  want %s", buf_str(&trace), want);
    buf_reset(&trace);
}

/* The DNS of the tests. */
static const struct fake_mx test_mx[] = {
    {"venus.test", DNS_OK, {{20, (char *)"mx2.venus.test"}, {10, (char *)"mx1.venus.test"}}, 2},
    {"null.test", DNS_OK, {{0, (char *)""}}, 1},
    {"loop.test", DNS_OK, {{10, (char *)"self.loop.test"}, {20, (char *)"mx2.venus.test"}}, 2},
    {"backup.test", DNS_OK, {{5, (char *)"mx1.venus.test"}, {10, (char *)"self.loop.test"},
                             {20, (char *)"mx2.venus.test"}}, 3},
    {"plain.test", DNS_NODATA, {{0, NULL}}, 0},
    {"temp.test", DNS_TEMPFAIL, {{0, NULL}}, 0},
    {"many.test", DNS_OK, {{10, (char *)"a.many.test"}, {20, (char *)"b.many.test"},
                           {30, (char *)"c.many.test"}}, 3},
};

static const struct fake_a test_a[] = {
    {"mx1.venus.test", DNS_OK, {"192.0.2.1", NULL}},
    {"mx2.venus.test", DNS_OK, {"192.0.2.2", NULL}},
    {"self.loop.test", DNS_OK, {"127.0.0.1", NULL}},
    {"plain.test", DNS_OK, {"192.0.2.3", NULL}},
    {"relay.test", DNS_OK, {"192.0.2.4", "192.0.2.5"}},
    {"a.many.test", DNS_OK, {"192.0.2.11", "192.0.2.12"}},
    {"b.many.test", DNS_OK, {"192.0.2.13", "192.0.2.14"}},
    {"c.many.test", DNS_OK, {"192.0.2.15", "192.0.2.16"}},
};

/* use_peers - set the peer table (and forget idle sessions of earlier tests) */
static void use_peers(const struct fake_peer *p, size_t n)
{
    peers = p;
    npeers = n;
    while (cache_head)
        cache_retire(cache_head);
    buf_reset(&trace);
    dns_queries = 0;
}

/* setup - the event loop, settings and tables, once */
static int setup(void **state)
{
    static bool done;
    char *err = NULL;
    static const char conf[] = "inet_interfaces = 127.0.0.1\nmyhostname = me.example\n";
    struct cfg *cfg;

    (void)state;
    if (done)
        return 0;
    done = true;
    event_init();
    cfg = cfg_load_string(conf, sizeof(conf) - 1, "test", &err);
    assert_non_null(cfg);
    smtp_conf.prefix = "smtp";
    smtp_conf.family = AF_INET;
    smtp_conf.prefer = AF_UNSPEC;
    smtp_conf.mx_address_limit = 5;
    smtp_conf.mx_session_limit = 2;
    smtp_conf.cache_time_ms = TEST_CACHE_MS;
    smtp_conf.reuse_time_ms = TEST_REUSE_MS;
    smtp_conf.cache_on_demand = true;
    smtp_conf.skip_5xx_greeting = true;
    smtp_conf.self_names = xcalloc(1, sizeof(char *));
    smtp_conf.self_names[0] = xstrdup("me.example");
    smtp_conf.nself = 1;
    smtp_conf.queue_dir = xstrdup("/var/spool/posta");
    mx_table = test_mx;
    mx_count = sizeof(test_mx) / sizeof(test_mx[0]);
    a_table = test_a;
    a_count = sizeof(test_a) / sizeof(test_a[0]);
    dest_init(cfg);
    cfg_free(cfg);
    return 0;
}

/* MX order: the preferred MX refuses, the second one takes the mail. */
static void test_mx_order_and_fallback(void **state)
{
    static const struct fake_peer p[] = {{"192.0.2.2", "ok"}};
    static const char *const rc[] = {"bob@venus.test", "bounce@venus.test", NULL};
    struct run run;

    (void)state;
    use_peers(p, 1);
    run_request(&run, "venus.test", rc);
    expect(&run, 0, DELIVER_SENT, "2.0.0", "250 ok at 192.0.2.2");
    expect(&run, 1, DELIVER_BOUNCED, "5.1.1", "550 unknown");
    assert_string_equal(buf_str(&run.rc[0].relay), "mx2.venus.test[192.0.2.2]:25");
    assert_string_equal(buf_str(&run.rc[0].remote_mta), "mx2.venus.test");
    expect_trace("open 192.0.2.1; open 192.0.2.2; xact 192.0.2.2 2; ");
    run_free(&run);
}

/* A 4xx recipient moves on to the next MX; the others stay where they were. */
static void test_defer_tries_next(void **state)
{
    static const struct fake_peer p[] = {{"192.0.2.1", "ok"}, {"192.0.2.2", "ok"}};
    static const char *const rc[] = {"defer1@venus.test", "ok@venus.test", NULL};
    struct run run;

    (void)state;
    use_peers(p, 2);
    run_request(&run, "venus.test", rc);
    /* the fake defers every "defer" recipient, at the last MX too: it keeps that */
    expect(&run, 0, DELIVER_DEFERRED, "4.2.0", "host 192.0.2.2 said: 451");
    expect(&run, 1, DELIVER_SENT, "2.0.0", "ok at 192.0.2.1");
    expect_trace("open 192.0.2.1; xact 192.0.2.1 2; open 192.0.2.2; xact 192.0.2.2 1; ");
    run_free(&run);
}

/* Null MX, NXDOMAIN, SERVFAIL, and a relay host whose name does not exist. */
static void test_dns_failures(void **state)
{
    static const char *const null_rc[] = {"a@null.test", NULL};
    static const char *const nx_rc[] = {"a@nowhere.test", NULL};
    static const char *const temp_rc[] = {"a@temp.test", NULL};
    struct run run;

    (void)state;
    use_peers(NULL, 0);
    run_request(&run, "null.test", null_rc);
    expect(&run, 0, DELIVER_BOUNCED, "5.1.10", "Domain null.test does not accept mail (nullMX)");
    run_free(&run);
    run_request(&run, "nowhere.test", nx_rc);
    expect(&run, 0, DELIVER_BOUNCED, "5.1.2",
           "Host or domain name not found. Name service error for name=nowhere.test type=MX: "
           "Host not found");
    run_free(&run);
    run_request(&run, "temp.test", temp_rc);
    expect(&run, 0, DELIVER_DEFERRED, "4.4.3", "type=MX: Host not found, try again");
    run_free(&run);
    /* not the recipient's own domain: a configuration problem here, deferred */
    run_request(&run, "nowhere.test", temp_rc);
    expect(&run, 0, DELIVER_DEFERRED, "4.1.2", "name=nowhere.test type=MX: Host not found");
    run_free(&run);
    run_request(&run, "[gone.test]:2525", nx_rc);
    expect(&run, 0, DELIVER_DEFERRED, "4.4.4", "name=gone.test type=A: Host not found");
    run_free(&run);
    expect_trace("");
}

/* No MX records: the domain's own address (RFC 5321 5.1). */
static void test_implicit_mx(void **state)
{
    static const struct fake_peer p[] = {{"192.0.2.3", "ok"}};
    static const char *const rc[] = {"a@plain.test", NULL};
    struct run run;

    (void)state;
    use_peers(p, 1);
    run_request(&run, "plain.test", rc);
    expect(&run, 0, DELIVER_SENT, "2.0.0", "250 ok at 192.0.2.3");
    assert_string_equal(buf_str(&run.rc[0].relay), "plain.test[192.0.2.3]:25");
    run_free(&run);
}

/* Loops: the best MX is us; a backup MX never tries MX hosts worse than itself. */
static void test_loops(void **state)
{
    static const struct fake_peer p[] = {{"192.0.2.2", "ok"}};
    static const char *const rc[] = {"a@loop.test", NULL};
    static const char *const brc[] = {"a@backup.test", NULL};
    struct run run;

    (void)state;
    use_peers(p, 1);
    run_request(&run, "loop.test", rc);
    expect(&run, 0, DELIVER_BOUNCED, "5.4.6", "mail for loop.test loops back to myself");
    run_free(&run);
    expect_trace("");
    /* backup.test: mx1 (pref 5) is down, we are pref 10, mx2 (pref 20) is not tried */
    run_request(&run, "backup.test", brc);
    expect(&run, 0, DELIVER_DEFERRED, "4.4.1", "connect to mx1.venus.test[192.0.2.1]:25");
    run_free(&run);
    expect_trace("open 192.0.2.1; ");
    /* a literal next hop is never loop-checked */
    run_request(&run, "[127.0.0.1]", rc);
    expect(&run, 0, DELIVER_DEFERRED, "4.4.1", "connect to 127.0.0.1[127.0.0.1]:25");
    run_free(&run);
    expect_trace("open 127.0.0.1; ");
}

/* 5xx greeting: try the next address; it bounces only at the last one. */
static void test_5xx_greeting(void **state)
{
    static const struct fake_peer p1[] = {{"192.0.2.1", "greet5"}};
    static const struct fake_peer p2[] = {{"192.0.2.2", "greet5"}};
    static const char *const rc[] = {"a@venus.test", NULL};
    struct run run;

    (void)state;
    use_peers(p1, 1);
    run_request(&run, "venus.test", rc);
    expect(&run, 0, DELIVER_DEFERRED, "4.4.1", "connect to mx2.venus.test[192.0.2.2]:25");
    run_free(&run);
    use_peers(p2, 1);
    run_request(&run, "venus.test", rc);
    expect(&run, 0, DELIVER_BOUNCED, "5.7.1", "refused to talk to me: 554 5.7.1 no");
    assert_string_equal(buf_str(&run.rc[0].relay), "mx2.venus.test[192.0.2.2]:25");
    run_free(&run);
}

/* Connection cache: the next request to the same next hop reuses the session, no DNS. */
static void test_connection_cache(void **state)
{
    static const struct fake_peer p[] = {{"192.0.2.4", "ok"}, {"192.0.2.5", "ok"}};
    static const char *const rc[] = {"a@x.test", NULL};
    struct run run;

    (void)state;
    use_peers(p, 2);
    run_request(&run, "[relay.test]", rc);
    expect(&run, 0, DELIVER_SENT, "2.0.0", "ok at 192.0.2.4");
    run_free(&run);
    assert_int_equal(dns_queries, 1);
    assert_int_equal(dest_cache_count(), 1);
    run_request(&run, "[RELAY.test]", rc);
    expect(&run, 0, DELIVER_SENT, "2.0.0", "ok at 192.0.2.4");
    run_free(&run);
    assert_int_equal(dns_queries, 1);
    expect_trace("open 192.0.2.4; xact 192.0.2.4 1; xact 192.0.2.4 1; ");
    /* the reuse count limit retires it */
    smtp_conf.reuse_count = 3;
    run_request(&run, "[relay.test]", rc);
    run_free(&run);
    assert_int_equal(dest_cache_count(), 0);
    expect_trace("xact 192.0.2.4 1; quit 192.0.2.4; ");
    smtp_conf.reuse_count = 0;
    dest_cache_flush();
}

/* smtp_mx_address_limit and smtp_mx_session_limit. */
static void test_limits(void **state)
{
    static const struct fake_peer p[] = {{"192.0.2.11", "greet5"}, {"192.0.2.12", "greet5"},
                                         {"192.0.2.13", "ok"}};
    static const char *const rc[] = {"a@many.test", NULL};
    struct run run;

    (void)state;
    use_peers(p, 0);
    smtp_conf.mx_address_limit = 3;
    run_request(&run, "many.test", rc);
    expect(&run, 0, DELIVER_DEFERRED, "4.4.1", "192.0.2.13");
    expect_trace("open 192.0.2.11; open 192.0.2.12; open 192.0.2.13; ");
    run_free(&run);
    /* two sessions that reached a server (5xx greetings) end the walk: deferred */
    use_peers(p, 3);
    run_request(&run, "many.test", rc);
    expect(&run, 0, DELIVER_DEFERRED, "4.7.1", "refused to talk to me");
    expect_trace("open 192.0.2.11; open 192.0.2.12; ");
    run_free(&run);
    smtp_conf.mx_address_limit = 5;
}

/* main - run the tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_mx_order_and_fallback, setup),
        cmocka_unit_test_setup(test_defer_tries_next, setup),
        cmocka_unit_test_setup(test_dns_failures, setup),
        cmocka_unit_test_setup(test_implicit_mx, setup),
        cmocka_unit_test_setup(test_loops, setup),
        cmocka_unit_test_setup(test_5xx_greeting, setup),
        cmocka_unit_test_setup(test_connection_cache, setup),
        cmocka_unit_test_setup(test_limits, setup),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
