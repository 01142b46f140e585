/*
 * test_spf.c - SPF check_host() against the golden table tests/golden/spf/
 *
 * zone.txt is the DNS data, cases.txt the questions and expected results
 * (the same files check_pyspf.py runs pyspf over). The table runs twice:
 * with a resolver that answers synchronously, inside the ops call, and
 * with one that queues its answers for a later "event loop" turn, as
 * util/dns.h does. Also: the RFC 7208 section 7.4 macro examples, record
 * parser cases, the lookup count, and cancellation of a pending check.
 */
#include "util/sys.h"

#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <strings.h>
#include <cmocka.h>

#include "mail/spf.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "golden.h"

#define ZONE_MAX 512
#define PENDING_MAX 64
#define STR_MAX 64

struct rr {
    char *name, *type, *data;
};

static struct rr zone[ZONE_MAX];
static size_t nzone;
static unsigned queries;   /* questions asked of the fake resolver */

/* load_zone - read tests/golden/spf/zone.txt */
static void load_zone(void)
{
    struct golden_lines g;
    char *line, *t1, *t2;

    if (nzone > 0)
        return;
    golden_lines_open(&g, "spf", "zone.txt");
    while ((line = golden_lines_next(&g)) != NULL) {
        t1 = strchr(line, '\t');
        assert_non_null(t1);
        t2 = strchr(t1 + 1, '\t');
        assert_non_null(t2);
        assert_true(nzone < ZONE_MAX);
        zone[nzone].name = xstrndup(line, (size_t)(t1 - line));
        zone[nzone].type = xstrndup(t1 + 1, (size_t)(t2 - t1 - 1));
        zone[nzone].data = xstrdup(t2 + 1);
        nzone++;
    }
    fclose(g.fp);
    free(g.line);
    free(g.path);
}

/* zone_status - NOTFOUND / NODATA / TEMPFAIL / OK for (name, type) */
static enum dns_status zone_status(const char *name, const char *type)
{
    size_t i;
    bool exists = false, have = false;

    for (i = 0; i < nzone; i++) {
        if (strcasecmp(zone[i].name, name) != 0)
            continue;
        if (strcmp(zone[i].type, "SERVFAIL") == 0)
            return DNS_TEMPFAIL;
        exists = true;
        if (strcmp(zone[i].type, type) == 0)
            have = true;
    }
    return have ? DNS_OK : exists ? DNS_NODATA : DNS_NOTFOUND;
}

/* pending answers of the deferred resolver */
enum fake_kind { FK_TXT, FK_MX, FK_ADDR, FK_PTR };
struct pending {
    enum fake_kind kind;
    char *name;
    int family;
    void *fn;
    void *ctx;
    bool live;
};
static struct pending *pend[PENDING_MAX];
static size_t npend;
static bool deferred;

/* answer_txt - answer a TXT (or PTR) question now */
static void answer_txt(const char *name, const char *type, dns_txt_fn fn, void *ctx)
{
    char *v[STR_MAX];
    size_t n = 0, i;
    enum dns_status st = zone_status(name, type);

    for (i = 0; st == DNS_OK && i < nzone && n < STR_MAX; i++)
        if (strcasecmp(zone[i].name, name) == 0 && strcmp(zone[i].type, type) == 0)
            v[n++] = zone[i].data;
    fn(ctx, st, v, n, "test");
}

/* answer_mx - answer an MX question now */
static void answer_mx(const char *name, dns_mx_fn fn, void *ctx)
{
    struct dns_mx mx[STR_MAX];
    char host[STR_MAX][256];
    size_t n = 0, i;
    enum dns_status st = zone_status(name, "MX");

    for (i = 0; st == DNS_OK && i < nzone && n < STR_MAX; i++) {
        if (strcasecmp(zone[i].name, name) == 0 && strcmp(zone[i].type, "MX") == 0) {
            assert_int_equal(sscanf(zone[i].data, "%u %255s", &mx[n].pref, host[n]), 2);
            mx[n].host = host[n];
            n++;
        }
    }
    fn(ctx, st, mx, n, "test");
}

/* answer_addr - answer an A or AAAA question now */
static void answer_addr(const char *name, int family, dns_addr_fn fn, void *ctx)
{
    struct dns_addr a[STR_MAX];
    const char *type = family == AF_INET ? "A" : "AAAA";
    size_t n = 0, i;
    enum dns_status st = zone_status(name, type);

    memset(a, 0, sizeof(a));
    for (i = 0; st == DNS_OK && i < nzone && n < STR_MAX; i++) {
        if (strcasecmp(zone[i].name, name) != 0 || strcmp(zone[i].type, type) != 0)
            continue;
        if (family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&a[n].sa;
            sin->sin_family = AF_INET;
            assert_int_equal(inet_pton(AF_INET, zone[i].data, &sin->sin_addr), 1);
            a[n].len = sizeof(*sin);
        } else {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a[n].sa;
            sin6->sin6_family = AF_INET6;
            assert_int_equal(inet_pton(AF_INET6, zone[i].data, &sin6->sin6_addr), 1);
            a[n].len = sizeof(*sin6);
        }
        n++;
    }
    fn(ctx, st, a, n, "test");
}

/* answer - answer question p now */
static void answer(const struct pending *p)
{
    switch (p->kind) {
    case FK_TXT:
        answer_txt(p->name, "TXT", (dns_txt_fn)p->fn, p->ctx);
        break;
    case FK_PTR:
        answer_txt(p->name, "PTR", (dns_txt_fn)p->fn, p->ctx);
        break;
    case FK_MX:
        answer_mx(p->name, (dns_mx_fn)p->fn, p->ctx);
        break;
    case FK_ADDR:
        answer_addr(p->name, p->family, (dns_addr_fn)p->fn, p->ctx);
        break;
    }
}

/* fake_ask - answer now, or queue for pump() */
static void *fake_ask(enum fake_kind kind, const char *name, int family, void *fn, void *ctx)
{
    struct pending p = {kind, xstrdup(name), family, fn, ctx, true};

    queries++;
    if (!deferred) {
        answer(&p);
        free(p.name);
        return NULL;
    }
    assert_true(npend < PENDING_MAX);
    pend[npend] = xmemdup(&p, sizeof(p));
    return pend[npend++];
}

static void *fake_txt(void *d, const char *name, dns_txt_fn fn, void *ctx)
{
    return fake_ask(FK_TXT, name, 0, (void *)fn, ctx);
}

static void *fake_mx(void *d, const char *name, dns_mx_fn fn, void *ctx)
{
    return fake_ask(FK_MX, name, 0, (void *)fn, ctx);
}

static void *fake_addr(void *d, const char *name, int family, dns_addr_fn fn, void *ctx)
{
    assert_true(family == AF_INET || family == AF_INET6);
    return fake_ask(FK_ADDR, name, family, (void *)fn, ctx);
}

static void *fake_ptr(void *d, const struct sockaddr *sa, socklen_t len, spf_ptr_fn fn,
                      void *ctx)
{
    char text[INET6_ADDRSTRLEN];

    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, text, sizeof(text));
    else
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, text, sizeof(text));
    return fake_ask(FK_PTR, text, 0, (void *)fn, ctx);
}

/* fake_cancel - forget a queued question */
static void fake_cancel(void *d, void *req)
{
    struct pending *p = req;

    assert_true(p->live);
    p->live = false;
}

static const struct spf_dns_ops fake_ops = {
    fake_txt, fake_mx, fake_addr, fake_ptr, fake_cancel, fake_cancel, NULL,
};

/* pump - answer the questions queued so far (one event loop turn) */
static void pump(void)
{
    size_t i, n = npend;
    struct pending *p;

    for (i = 0; i < n; i++) {
        p = pend[i];
        if (p->live)
            answer(p);   /* may queue more, after n */
        free(p->name);
        free(p);
    }
    memmove(pend, pend + n, (npend - n) * sizeof(*pend));
    npend -= n;
}

struct result {
    bool done;
    enum spf_result r;
    char exp[1024];
    char mech[256];
};

/* on_done - the evaluator's callback */
static void on_done(void *ctx, const struct spf_outcome *out)
{
    struct result *res = ctx;

    assert_false(res->done);
    res->done = true;
    res->r = out->result;
    snprintf(res->exp, sizeof(res->exp), "%s", out->explanation);
    snprintf(res->mech, sizeof(res->mech), "%s", out->mechanism);
}

/* check - run one question to its end */
static void check(const char *ip, const char *sender, const char *helo, enum spf_scope scope,
                  struct result *res)
{
    struct spf_request req = {scope, ip, sender, helo, "mx.receiver.test", 1700000000};
    struct spf_eval *ev;

    memset(res, 0, sizeof(*res));
    ev = spf_eval_start(&fake_ops, &req, on_done, res);
    if (deferred) {
        while (!res->done && npend > 0)
            pump();
    } else {
        assert_null(ev);
    }
    assert_true(res->done);
}

/* run_table - every case of cases.txt */
static void run_table(bool defer)
{
    struct golden_lines g;
    char *line, *f[6];
    size_t nf;
    struct result res;

    load_zone();
    deferred = defer;
    golden_lines_open(&g, "spf", "cases.txt");
    while ((line = golden_lines_next(&g)) != NULL) {
        nf = 0;
        f[nf++] = line;
        while (nf < 6 && (f[nf] = strchr(f[nf - 1], '\t')) != NULL)
            *f[nf]++ = 0, nf++;
        assert_true(nf >= 5);
        check(f[0], strcmp(f[1], "-") == 0 ? "" : f[1], f[2],
              strcmp(f[3], "helo") == 0 ? SPF_SCOPE_HELO : SPF_SCOPE_MAILFROM, &res);
        if (g.print)
            printf("%s:%zu: %s (%s) %s\n", g.name, g.lineno, spf_result_name(res.r), res.mech,
                   res.exp);
        if (strcmp(spf_result_name(res.r), f[4]) != 0
            || (nf > 5 && strcmp(res.exp, f[5]) != 0)) {
            print_error("%s:%zu: %s %s: want %s%s%s, got %s %s\n", g.name, g.lineno, f[0], f[1],
                        f[4], nf > 5 ? " " : "", nf > 5 ? f[5] : "", spf_result_name(res.r),
                        res.exp);
            g.failures++;
        }
    }
    fclose(g.fp);
    free(g.line);
    free(g.path);
    assert_true(g.cases >= 80);
    assert_int_equal(g.failures, 0);
    deferred = false;
}

static void test_table_sync(void **state)
{
    run_table(false);
}

static void test_table_deferred(void **state)
{
    run_table(true);
}

/* test_macro_rfc - the examples of RFC 7208 section 7.4 */
static void test_macro_rfc(void **state)
{
    static const struct {
        const char *spec, *want;
    } cases[] = {
        {"%{s}", "strong-bad@email.example.com"},
        {"%{o}", "email.example.com"},
        {"%{d}", "email.example.com"},
        {"%{d4}", "email.example.com"},
        {"%{d3}", "email.example.com"},
        {"%{d2}", "example.com"},
        {"%{d1}", "com"},
        {"%{dr}", "com.example.email"},
        {"%{d2r}", "example.email"},
        {"%{l}", "strong-bad"},
        {"%{l-}", "strong.bad"},
        {"%{lr}", "strong-bad"},
        {"%{lr-}", "bad.strong"},
        {"%{l1r-}", "strong"},
        {"%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"},
        {"%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"},
        {"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
         "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
        {"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
         "3.2.0.192.in-addr.strong.lp._spf.example.com"},
        {"%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"},
        {"%%%_%-", "% %20"},
        {"%{S}", "strong-bad%40email.example.com"},
        {"%{L+}", "strong-bad"},
        {"%{d999}", "email.example.com"},
    };
    struct spf_macro_vars v = {
        .s = "strong-bad@email.example.com", .l = "strong-bad", .o = "email.example.com",
        .d = "email.example.com", .i = "192.0.2.3", .h = "mx.example.org",
        .v = "in-addr", .c = "192.0.2.3", .r = "rcv.example", .t = 12345,
    };
    struct buf out = BUF_INIT;
    const char *why;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf_reset(&out);
        assert_int_equal(spf_macro_expand(cases[i].spec, &v, false, &out, &why), 0);
        assert_string_equal(buf_str(&out), cases[i].want);
    }
    v.i = "2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.c.b.0.1";
    v.v = "ip6";
    buf_reset(&out);
    assert_int_equal(spf_macro_expand("%{ir}.%{v}._spf.%{d2}", &v, false, &out, &why), 0);
    assert_string_equal(buf_str(&out), "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d."
                                       "0.1.0.0.2.ip6._spf.example.com");
    buf_reset(&out);
    assert_int_equal(spf_macro_expand("%{c} %{r} %{t}", &v, true, &out, &why), 0);
    assert_string_equal(buf_str(&out), "192.0.2.3 rcv.example 12345");
    /* c, r, t are for explanations only; bad syntax */
    assert_int_equal(spf_macro_expand("%{c}", &v, false, &out, &why), -1);
    assert_int_equal(spf_macro_expand("%{d0}", &v, false, &out, &why), -1);
    assert_int_equal(spf_macro_expand("%{x}", &v, false, &out, &why), -1);
    assert_int_equal(spf_macro_expand("%{d", &v, false, &out, &why), -1);
    assert_int_equal(spf_macro_expand("a%b", &v, false, &out, &why), -1);
    assert_int_equal(spf_macro_expand("50%", &v, false, &out, &why), -1);
    assert_int_equal(spf_macro_expand("a b", &v, false, &out, &why), -1);
    buf_free(&out);
}

/* test_record_parse - accepted and refused records */
static void test_record_parse(void **state)
{
    static const char *const good[] = {
        "v=spf1", "v=spf1 ", "v=spf1 -all", "V=SPF1 A MX -ALL",
        "v=spf1 a/24 mx//64 a:x.example/24//48 mx:%{d}/0",
        "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ip6:::1 -all",
        "v=spf1 include:_spf.example.com ~all", "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d}",
        "v=spf1 redirect=_spf.example.com", "v=spf1 -all exp=explain.%{d}",
        "v=spf1 ptr ptr:example.com ?all", "v=spf1 foo=bar moo=%{d} -all",
        "v=spf1 a:example.com. -all", "v=spf1 a:1-2.example.1-2 -all",
    };
    static const char *const bad[] = {
        "v=spf10", "spf1 -all", "v=spf1 all:x", "v=spf1 a:foo", "v=spf1 a:example.123",
        "v=spf1 ip4:1.2.3", "v=spf1 ip4:1.2.3.4/33", "v=spf1 ip6:::1/129",
        "v=spf1 ip4:1.2.3.4/08", "v=spf1 a/", "v=spf1 a:", "v=spf1 include",
        "v=spf1 include:", "v=spf1 exists", "v=spf1 redirect=a.example redirect=b.example",
        "v=spf1 exp=a.example exp=b.example", "v=spf1 *all", "v=spf1 frobnicate",
        "v=spf1 a:%{q}.example", "v=spf1 =x", "v=spf1 ip6:2001:db8::/33x",
        "v=spf1 mx//129", "v=spf1 redirect=", "v=spf1 +-all",
    };
    struct spf_record rec;
    const char *why;
    size_t i;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (spf_record_parse(good[i], &rec, &why) != 0)
            fail_msg("refused \"%s\": %s", good[i], why);
        spf_record_free(&rec);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (spf_record_parse(bad[i], &rec, &why) == 0)
            fail_msg("accepted \"%s\"", bad[i]);
        spf_record_free(&rec);
    }
    assert_int_equal(spf_record_parse("v=spf1 a:x.example/24//48 -mx ~all", &rec, &why), 0);
    assert_int_equal(rec.n, 3);
    assert_int_equal(rec.terms[0].mech, SPF_MECH_A);
    assert_string_equal(rec.terms[0].domain, "x.example");
    assert_int_equal(rec.terms[0].cidr4, 24);
    assert_int_equal(rec.terms[0].cidr6, 48);
    assert_int_equal(rec.terms[1].qual, '-');
    assert_null(rec.terms[1].domain);
    assert_int_equal(rec.terms[2].qual, '~');
    spf_record_free(&rec);
}

/* test_lookup_count - no DNS question after the limit; exactly one record fetched for ip4 */
static void test_lookup_count(void **state)
{
    struct result res;

    load_zone();
    queries = 0;
    check("192.0.2.10", "user@pass.test", "h.example", SPF_SCOPE_MAILFROM, &res);
    assert_int_equal(res.r, SPF_PASS);
    assert_int_equal(queries, 1);
    assert_string_equal(res.mech, "ip4:192.0.2.0/24");
    queries = 0;
    check("192.0.2.10", "user@lookups11.test", "h.example", SPF_SCOPE_MAILFROM, &res);
    assert_int_equal(res.r, SPF_PERMERROR);
    assert_int_equal(queries, 11);   /* the record and ten a: terms */
    check("192.0.2.10", "user@include.test", "h.example", SPF_SCOPE_MAILFROM, &res);
    assert_string_equal(res.mech, "include:pass.test");
    check("198.51.100.1", "user@include.test", "h.example", SPF_SCOPE_MAILFROM, &res);
    assert_string_equal(res.mech, "-all");
    check("192.0.2.10", "user@includemissing.test", "h.example", SPF_SCOPE_MAILFROM, &res);
    assert_string_equal(res.mech, "");
    check("192.0.2.10", "user@neutral.test", "h.example", SPF_SCOPE_MAILFROM, &res);
    assert_string_equal(res.mech, "?all");
    check("192.0.2.10", "user@lookups10.test", "h.example", SPF_SCOPE_MAILFROM, &res);
    assert_int_equal(res.r, SPF_FAIL);
    assert_string_equal(res.mech, "-all");
}

/* test_cancel - a pending check is cancelled: no callback, no leak */
static void test_cancel(void **state)
{
    struct spf_request req = {SPF_SCOPE_MAILFROM, "192.0.2.10", "u@mx.test", "h.example",
                              NULL, 0};
    struct result res;
    struct spf_eval *ev;

    load_zone();
    deferred = true;
    memset(&res, 0, sizeof(res));
    ev = spf_eval_start(&fake_ops, &req, on_done, &res);
    assert_non_null(ev);
    pump();                /* the record; now the MX question is queued */
    assert_int_equal(npend, 1);
    assert_int_equal(pend[0]->kind, FK_MX);
    spf_eval_cancel(ev);
    assert_false(pend[0]->live);
    pump();
    assert_int_equal(npend, 0);
    assert_false(res.done);
    deferred = false;
}

/* test_reject_reply - the 550 text, from exp= or the default */
static void test_reject_reply(void **state)
{
    struct spf_outcome out = {SPF_FAIL, "example.com", "a@example.com", "-all",
                              "Not \x01 here\r\n550 fake", ""};
    struct buf r = BUF_INIT;

    spf_reject_reply(&out, &r);
    assert_string_equal(buf_str(&r), "550 5.7.23 Not ? here??550 fake");
    out.explanation = "";
    spf_reject_reply(&out, &r);
    assert_string_equal(buf_str(&r),
                        "550 5.7.23 SPF: a@example.com is not allowed to send mail for example.com");
    buf_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_sync),
        cmocka_unit_test(test_table_deferred),
        cmocka_unit_test(test_macro_rfc),
        cmocka_unit_test(test_record_parse),
        cmocka_unit_test(test_lookup_count),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_reject_reply),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
