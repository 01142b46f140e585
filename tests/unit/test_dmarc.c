/*
 * test_dmarc.c - DMARC and the Public Suffix List against tests/golden/dmarc/
 *
 *   records.txt          record parser
 *   orgdomain.txt        organisational domains with psl_test.dat (normal,
 *                        wildcard and exception rules)
 *   orgdomain_system.txt the same with the installed publicsuffix list
 *                        (skipped with a message when it is not installed)
 *   align.txt            strict and relaxed alignment
 *   policy.txt           discovery over zone.txt and judgement: p, sp,
 *                        pct sampling, alignment, temperror
 * plus the From-field rules, dmarc_action's replies, and a discovery
 * answered from a later "event loop" turn.
 */
#include "util/sys.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <strings.h>
#include <unistd.h>
#include <cmocka.h>

#include "mail/dmarc.h"
#include "mail/psl.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "golden.h"

#define ZONE_MAX 64
#define FIELDS_MAX 8
#define DKIM_MAX 8
#define TXT_MAX 16
#define SYSTEM_PSL "/usr/share/publicsuffix/public_suffix_list.dat"

struct rr {
    char *name, *type, *data;
};
static struct rr zone[ZONE_MAX];
static size_t nzone;
static struct psl *test_psl;

/* split - TAB-separated fields in place; their number */
static size_t split(char *line, char **f, size_t max)
{
    size_t n = 0;

    f[n++] = line;
    while (n < max && (f[n] = strchr(f[n - 1], '\t')) != NULL)
        *f[n]++ = 0, n++;
    return n;
}

/* zone_add - golden_case_fn: one NAME<TAB>TYPE<TAB>DATA record of zone.txt */
static int zone_add(struct golden_lines *g, char *line, void *ctx)
{
    char *f[3] = {NULL, NULL, NULL};

    assert_int_equal(split(line, f, 3), 3);
    assert_true(nzone < ZONE_MAX);
    zone[nzone].name = xstrdup(f[0]);
    zone[nzone].type = xstrdup(f[1]);
    zone[nzone].data = xstrdup(f[2]);
    nzone++;
    return 0;
}

/* load - zone.txt and psl_test.dat */
static int setup(void **state)
{
    char *dir = golden_dir("dmarc");
    char *path = xasprintf("%s/psl_test.dat", dir);
    const char *err;

    test_psl = psl_load(path, &err);
    assert_non_null(test_psl);
    free(path);
    free(dir);
    golden_table_run("dmarc", "zone.txt", 0, zone_add, NULL);
    return 0;
}

static int teardown(void **state)
{
    size_t i;

    for (i = 0; i < nzone; i++) {
        free(zone[i].name);
        free(zone[i].type);
        free(zone[i].data);
    }
    psl_free(test_psl);
    return 0;
}

/* fake resolver: answers at once, or keeps one question for later */
static bool deferred;
static dns_txt_fn held_fn;
static void *held_ctx;
static char *held_name;
static unsigned queries;

/* answer_txt - the TXT answer for name from the zone */
static void answer_txt(const char *name, dns_txt_fn fn, void *ctx)
{
    char *v[TXT_MAX];
    size_t n = 0, i;
    bool exists = false;

    for (i = 0; i < nzone; i++) {
        if (strcasecmp(zone[i].name, name) != 0)
            continue;
        if (strcmp(zone[i].type, "SERVFAIL") == 0) {
            fn(ctx, DNS_TEMPFAIL, NULL, 0, "test");
            return;
        }
        exists = true;
        if (strcmp(zone[i].type, "TXT") == 0 && n < TXT_MAX)
            v[n++] = zone[i].data;
    }
    fn(ctx, n ? DNS_OK : exists ? DNS_NODATA : DNS_NOTFOUND, v, n, "test");
}

static void *fake_txt(void *d, const char *name, dns_txt_fn fn, void *ctx)
{
    queries++;
    if (!deferred) {
        answer_txt(name, fn, ctx);
        return NULL;
    }
    assert_null(held_fn);
    held_fn = fn;
    held_ctx = ctx;
    held_name = xstrdup(name);
    return &held_fn;
}

static void fake_cancel(void *d, void *req)
{
    assert_ptr_equal(req, &held_fn);
    held_fn = NULL;
    free(held_name);
    held_name = NULL;
}

static const struct spf_dns_ops fake_ops = {NULL, NULL, NULL, NULL, fake_cancel, NULL, NULL};

/* ops - the fake ops with txt set */
static const struct spf_dns_ops *ops(void)
{
    static struct spf_dns_ops o;

    o = fake_ops;
    o.txt = fake_txt;
    return &o;
}

/* release - answer the held question */
static void release(void)
{
    dns_txt_fn fn = held_fn;
    char *name = held_name;

    held_fn = NULL;
    held_name = NULL;
    answer_txt(name, fn, held_ctx);
    free(name);
}

/* record_case - golden_case_fn: RECORD<TAB>EXPECTED of records.txt */
static int record_case(struct golden_lines *g, char *line, void *ctx)
{
    char *f[2];
    struct dmarc_record r;
    const char *why;
    struct buf got = BUF_INIT;
    int failed = 0;

    assert_int_equal(split(line, f, 2), 2);
    if (dmarc_record_parse(f[0], &r, &why) < 0)
        buf_puts(&got, "invalid");
    else
        buf_printf(&got, "p=%s sp=%s pct=%u adkim=%c aspf=%c ri=%lu rua=%s fo=%s rf=%s",
                   dmarc_policy_name(r.p), dmarc_policy_name(r.sp), r.pct,
                   r.adkim_strict ? 's' : 'r', r.aspf_strict ? 's' : 'r', r.ri,
                   r.rua ? r.rua : "", r.fo ? r.fo : "", r.rf ? r.rf : "");
    dmarc_record_free(&r);
    if (strcmp(buf_str(&got), f[1]) != 0) {
        print_error("records.txt:%zu: want %s\n  got %s\n", g->lineno, f[1], buf_str(&got));
        failed = 1;
    }
    buf_free(&got);
    return failed;
}

static void test_records(void **state)
{
    golden_table_run("dmarc", "records.txt", 20, record_case, NULL);
}

/* org_case - golden_case_fn: DOMAIN<TAB>ORG with the list ctx */
static int org_case(struct golden_lines *g, char *line, void *ctx)
{
    const struct psl *psl = ctx;
    char *f[2];
    struct buf got = BUF_INIT;
    int failed = 0;

    assert_int_equal(split(line, f, 2), 2);
    psl_org_domain(psl, f[0], &got);
    if (strcmp(buf_str(&got), f[1]) != 0) {
        print_error("%s:%zu: %s: want %s, got %s\n", g->name, g->lineno, f[0], f[1],
                    buf_str(&got));
        failed = 1;
    }
    buf_free(&got);
    return failed;
}

/* org_table - a DOMAIN<TAB>ORG table with psl */
static void org_table(const char *file, const struct psl *psl)
{
    golden_table_run("dmarc", file, 8, org_case, (void *)psl);
}

static void test_orgdomain(void **state)
{
    struct buf got = BUF_INIT;

    org_table("orgdomain.txt", test_psl);
    /* without a list: the last two labels */
    psl_org_domain(NULL, "a.b.example.co.uk", &got);
    assert_string_equal(buf_str(&got), "co.uk");
    buf_free(&got);
}

static void test_orgdomain_system(void **state)
{
    const char *err;
    struct psl *psl;

    if (access(SYSTEM_PSL, R_OK) != 0) {
        print_message("skipped: %s not installed (Debian package publicsuffix)\n", SYSTEM_PSL);
        skip();
    }
    psl = psl_load(SYSTEM_PSL, &err);
    assert_non_null(psl);
    assert_true(psl_rules(psl) > 5000);
    org_table("orgdomain_system.txt", psl);
    psl_free(psl);
    /* psl_get: loaded once, the same list again */
    assert_ptr_equal(psl_get(SYSTEM_PSL), psl_get(SYSTEM_PSL));
    /* a missing file: a warning and the two-label fallback */
    assert_int_equal(psl_rules(psl_get("/nonexistent/psl.dat")), 0);
}

/* align_case - golden_case_fn: DOMAIN<TAB>FROM<TAB>strict|relaxed<TAB>yes|no */
static int align_case(struct golden_lines *g, char *line, void *ctx)
{
    char *f[4];
    bool got;

    assert_int_equal(split(line, f, 4), 4);
    got = dmarc_aligned(test_psl, f[0], f[1], strcmp(f[2], "strict") == 0);
    if (got == (strcmp(f[3], "yes") == 0))
        return 0;
    print_error("align.txt:%zu: %s %s %s: want %s\n", g->lineno, f[0], f[1], f[2], f[3]);
    return 1;
}

static void test_align(void **state)
{
    golden_table_run("dmarc", "align.txt", 10, align_case, NULL);
}

struct judged {
    bool done;
    struct buf text;
};

/* on_done - render the outcome as policy.txt writes it */
static void on_done(void *ctx, const struct dmarc_outcome *o)
{
    struct judged *j = ctx;

    assert_false(j->done);
    j->done = true;
    buf_reset(&j->text);
    buf_printf(&j->text, "%s %s %s %s %s %s", dmarc_result_name(o->result),
               o->policy == DMARC_POLICY_UNSET ? "unset" : dmarc_policy_name(o->policy),
               dmarc_policy_name(o->disposition == DMARC_POLICY_UNSET ? DMARC_POLICY_NONE
                                                                       : o->disposition),
               o->spf_aligned ? "yes" : "no", o->dkim_aligned ? "yes" : "no",
               *o->policy_domain ? o->policy_domain : "-");
}

/* spf_from_name - an SPF result from its name */
static enum spf_result spf_from_name(const char *s)
{
    int r;

    for (r = SPF_NONE; r <= SPF_PERMERROR; r++)
        if (strcmp(spf_result_name((enum spf_result)r), s) == 0)
            return (enum spf_result)r;
    fail_msg("bad SPF result %s", s);
    return SPF_NONE;
}

/* judge - run one policy.txt case */
static void judge(char **f, struct judged *j)
{
    struct dmarc_dkim_sig sigs[DKIM_MAX];
    char *dk = xstrdup(f[3]), *p, *colon, *save = NULL;
    size_t n = 0;
    struct dmarc_input in;
    struct dmarc_eval *ev;

    for (p = strtok_r(dk, ",", &save); p && strcmp(p, "-") != 0 && n < DKIM_MAX;
         p = strtok_r(NULL, ",", &save)) {
        colon = strchr(p, ':');
        assert_non_null(colon);
        *colon = 0;
        sigs[n].domain = p;
        sigs[n].pass = strcmp(colon + 1, "pass") == 0;
        n++;
    }
    in.from_domain = f[0];
    in.spf = spf_from_name(f[1]);
    in.spf_domain = strcmp(f[2], "-") == 0 ? "" : f[2];
    in.dkim = sigs;
    in.ndkim = n;
    in.sample = atoi(f[4]);
    j->done = false;
    ev = dmarc_eval_start(ops(), test_psl, &in, on_done, j);
    while (deferred && !j->done && held_fn != NULL)
        release();
    if (!deferred)
        assert_null(ev);
    assert_true(j->done);
    free(dk);
}

/* policy_case - golden_case_fn: one case of policy.txt, judged into ctx */
static int policy_case(struct golden_lines *g, char *line, void *ctx)
{
    struct judged *j = ctx;
    char *f[6];

    assert_int_equal(split(line, f, 6), 6);
    judge(f, j);
    if (strcmp(buf_str(&j->text), f[5]) == 0)
        return 0;
    print_error("policy.txt:%zu: %s: want %s\n  got %s\n", g->lineno, f[0], f[5],
                buf_str(&j->text));
    return 1;
}

/* policy_table - every case of policy.txt */
static void policy_table(bool defer)
{
    struct judged j = {false, BUF_INIT};

    deferred = defer;
    golden_table_run("dmarc", "policy.txt", 20, policy_case, &j);
    buf_free(&j.text);
    deferred = false;
}

static void test_policy(void **state)
{
    policy_table(false);
}

static void test_policy_deferred(void **state)
{
    policy_table(true);
}

static void test_cancel(void **state)
{
    struct dmarc_input in = {"mail.sp.test", "x.example", SPF_FAIL, NULL, 0, 0};
    struct judged j = {false, BUF_INIT};
    struct dmarc_eval *ev;

    deferred = true;
    ev = dmarc_eval_start(ops(), test_psl, &in, on_done, &j);
    assert_non_null(ev);
    release();               /* _dmarc.mail.sp.test: nothing; now _dmarc.sp.test is asked */
    assert_non_null(held_fn);
    assert_string_equal(held_name, "_dmarc.sp.test");
    dmarc_eval_cancel(ev);
    assert_null(held_fn);
    assert_false(j.done);
    deferred = false;
}

static void test_from(void **state)
{
    static const struct {
        const char *v1, *v2;
        enum dmarc_from_status st;
        const char *domain;
    } cases[] = {
        {"Alice <alice@Example.COM>", NULL, DMARC_FROM_OK, "example.com"},
        {"alice@example.com (Alice)", NULL, DMARC_FROM_OK, "example.com"},
        {"\"Bob, Jr.\" <bob@example.org>", NULL, DMARC_FROM_OK, "example.org"},
        {"a@example.com, b@EXAMPLE.com", NULL, DMARC_FROM_OK, "example.com"},
        {"a@example.com, b@example.net", NULL, DMARC_FROM_BAD, ""},
        {"a@example.com", "b@example.com", DMARC_FROM_BAD, ""},
        {"undisclosed-recipients:;", NULL, DMARC_FROM_NONE, ""},
        {"alice", NULL, DMARC_FROM_NONE, ""},
    };
    struct buf d = BUF_INIT;
    const char *v[2], *why;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        v[0] = cases[i].v1;
        v[1] = cases[i].v2;
        assert_int_equal(dmarc_from_domain(v, v[1] ? 2 : 1, &d, &why), cases[i].st);
        assert_string_equal(buf_str(&d), cases[i].domain);
    }
    assert_int_equal(dmarc_from_domain(v, 0, &d, &why), DMARC_FROM_BAD);
    buf_free(&d);
}

/* test_action - what dmarc_action does with each outcome under each setting */
static void test_action(void **state)
{
    static const struct {
        enum dmarc_result result;
        enum dmarc_policy disposition;
        struct dmarc_settings s; /* enforce, quarantine_hold, temperror_defer */
        enum dmarc_action want;
        const char *reply;       /* expected reply text, or NULL: not checked */
    } cases[] = {
        {DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, {true, true, true}, DMARC_ACTION_REJECT,
         "550 5.7.1 Rejected by DMARC policy for example.com"},
        {DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, {false, true, true}, DMARC_ACTION_ACCEPT, NULL},
        {DMARC_RESULT_FAIL, DMARC_POLICY_QUARANTINE, {true, true, true}, DMARC_ACTION_HOLD, NULL},
        {DMARC_RESULT_FAIL, DMARC_POLICY_QUARANTINE, {true, false, true}, DMARC_ACTION_ACCEPT,
         NULL},
        {DMARC_RESULT_FAIL, DMARC_POLICY_NONE, {true, false, true}, DMARC_ACTION_ACCEPT, NULL},
        {DMARC_RESULT_PASS, DMARC_POLICY_REJECT, {true, false, true}, DMARC_ACTION_ACCEPT, NULL},
        {DMARC_RESULT_TEMPERROR, DMARC_POLICY_REJECT, {true, false, true}, DMARC_ACTION_DEFER,
         "451 4.7.1 Temporary DNS error while checking the DMARC policy for example.com"},
        {DMARC_RESULT_TEMPERROR, DMARC_POLICY_REJECT, {true, false, false}, DMARC_ACTION_ACCEPT,
         NULL},
        {DMARC_RESULT_PERMERROR, DMARC_POLICY_REJECT, {true, false, false}, DMARC_ACTION_ACCEPT,
         NULL},
    };
    struct dmarc_outcome o = {DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, DMARC_POLICY_REJECT,
                              false, false, "example.com", "example.com", ""};
    struct buf reply = BUF_INIT;
    size_t i;

    for (i = 0; i < POSTA_ARRAY_LEN(cases); i++) {
        o.result = cases[i].result;
        o.disposition = cases[i].disposition;
        assert_int_equal(dmarc_action(&o, &cases[i].s, &reply), cases[i].want);
        if (cases[i].reply != NULL)
            assert_string_equal(buf_str(&reply), cases[i].reply);
    }
    buf_free(&reply);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records),
        cmocka_unit_test(test_orgdomain),
        cmocka_unit_test(test_orgdomain_system),
        cmocka_unit_test(test_align),
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_policy_deferred),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_from),
        cmocka_unit_test(test_action),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
