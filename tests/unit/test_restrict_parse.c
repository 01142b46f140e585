/*
 * test_restrict_parse.c - unit tests for smtpd/restrict_parse.c: restriction
 * names, list parsing (the fatal-error texts), access-table results, the
 * lookup keys of clients, addresses and HELO names, host name syntax
 *
 * Most cases are in the golden table tests/golden/restrict_parse/cases.txt:
 * KIND<TAB>INPUT<TAB>EXPECTED, one a line (see render_case for the KINDs
 * and how each result is written). The classes "strict" and "relaxed"
 * exist for the list and access cases.
 */
#include "util/sys.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "mail/config.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/dict.h"

#include "../../smtpd/restrict_parse.c"
#include "../../smtpd/policy_client.c"   /* check_policy_service arguments */

#include "golden.h"

#define GOLDEN_SUBDIR "restrict_parse"
#define GOLDEN_FIELDS_MIN 3

static char *class_names[] = {"strict", "relaxed"};
static const struct restr_classes test_classes = {class_names, NULL, 2};

/* access_kind_name - the name a golden line uses for a kind */
static const char *access_kind_name(enum access_kind k)
{
    static const char *const names[] = {"OK", "DUNNO", "REJECT", "DEFER", "DEFER_IF_PERMIT",
                                        "DEFER_IF_REJECT", "WARN", "INFO", "HOLD", "DISCARD",
                                        "PREPEND", "REDIRECT", "BCC", "FILTER",
                                        "RESTRICTION", "BAD"};

    return names[k];
}

/* render_access - "KIND code enh |text|" or "RESTRICTION name" */
static void render_access(const char *value, struct buf *out)
{
    struct access_result r;

    access_parse(value, &test_classes, &r);
    if (r.kind == AK_RESTRICTION) {
        (void)buf_printf(out, "RESTRICTION %s",
                         r.op == R_CLASS ? class_names[r.class_idx]
                                         : restr_name((enum restr_op)r.op));
        return;
    }
    (void)buf_printf(out, "%s %d %s |%s|%s", access_kind_name(r.kind), r.code,
                     r.enh[0] ? r.enh : "-", r.text, r.numeric ? " numeric" : "");
}

/* render_list - "ok name name(arg) ..." or "error: why" (words split on spaces) */
static void render_list(const char *text, struct buf *out)
{
    size_t n;
    char **words = cfg_split_list(text, &n);
    struct restr_list l;
    char *err = NULL;

    if (!restr_parse_list(words, n, "test_restrictions", &test_classes, NULL, NULL, &l, &err)) {
        (void)buf_printf(out, "error: %s", err);
        free(err);
        cfg_list_free(words, n);
        return;
    }
    (void)buf_puts(out, "ok");
    for (size_t i = 0; i < l.n; i++) {
        const struct restr *r = &l.v[i];

        (void)buf_printf(out, " %s", r->op == R_CLASS ? r->arg : restr_name(r->op));
        if (r->op != R_CLASS && r->arg)
            (void)buf_printf(out, "(%s%s%s)", r->arg, r->rbl_filter ? "=" : "",
                             r->rbl_filter ? r->rbl_filter : "");
    }
    restr_list_free(&l);
    cfg_list_free(words, n);
}

/* render_keys - the keys, space-separated */
static void render_keys(const char *kind, const char *input, struct buf *out)
{
    const char *keys[RESTR_KEYS_MAX];
    char *store = NULL;
    size_t n = 0;

    if (strcmp(kind, "client") == 0) {
        char *copy = xstrdup(input);
        char *sp = strchr(copy, ' ');

        assert_non_null(sp);
        *sp = 0;
        n = restr_client_keys(copy, sp + 1, true, &store, keys);
        free(copy);
    } else if (strcmp(kind, "addr") == 0) {
        n = restr_addr_keys(input, true, &store, keys);
    } else if (strcmp(kind, "addr-dot") == 0) {
        n = restr_addr_keys(input, false, &store, keys);
    } else {
        n = restr_domain_keys(input, true, &store, keys);
    }
    for (size_t i = 0; i < n; i++)
        (void)buf_printf(out, "%s%s", i ? " " : "", keys[i]);
    free(store);
}

/* render_case - one golden case */
static void render_case(const char *kind, const char *input, struct buf *out)
{
    if (strcmp(kind, "access") == 0)
        render_access(input, out);
    else if (strcmp(kind, "list") == 0)
        render_list(input, out);
    else if (strcmp(kind, "fqdn") == 0)
        (void)buf_puts(out, restr_fqdn(input) ? "yes" : "no");
    else if (strcmp(kind, "valid") == 0)
        (void)buf_puts(out, restr_valid_hostname(input) ? "yes" : "no");
    else if (strcmp(kind, "name") == 0)
        (void)buf_printf(out, "%d", restr_lookup_name(input));
    else
        render_keys(kind, input, out);
}

/* test_golden_cases - tests/golden/restrict_parse/cases.txt */
static void test_golden_cases(void **state)
{
    struct golden_lines g;
    char *line, *t1, *t2;

    (void)state;
    golden_lines_open(&g, GOLDEN_SUBDIR, "cases.txt");
    while ((line = golden_lines_next(&g)) != NULL) {
        struct buf kind = BUF_INIT, in = BUF_INIT, want = BUF_INIT, got = BUF_INIT;

        golden_lines_fields(&g, &t1, &t2, GOLDEN_FIELDS_MIN);
        golden_expand(line, (size_t)(t1 - line), false, &kind);
        golden_expand(t1 + 1, (size_t)(t2 - t1 - 1), false, &in);
        golden_expand(t2 + 1, strlen(t2 + 1), false, &want);
        render_case(buf_str(&kind), buf_str(&in), &got);
        if (g.print)
            printf("%.*s\t%s\n", (int)(t2 - line), line, buf_str(&got));
        golden_lines_check(&g, line, (int)(t2 - line), buf_str(&want), buf_str(&got));
        buf_free(&kind);
        buf_free(&in);
        buf_free(&want);
        buf_free(&got);
    }
    golden_lines_close(&g);
}

/* test_names_roundtrip - every name maps to a restriction whose name maps back to it */
static void test_names_roundtrip(void **state)
{
    (void)state;
    for (int op = 0; op < R_CLASS; op++) {
        const char *name = restr_name((enum restr_op)op);

        assert_int_equal(restr_lookup_name(name), op);
    }
    assert_int_equal(restr_lookup_name("REJECT_UNAUTH_DESTINATION"), R_REJECT_UNAUTH_DEST);
    assert_int_equal(restr_lookup_name("reject_unauth_destinaton"), -1);
}

/* fake_table - restr_open_fn that fails for names with "missing" */
static struct dict *fake_table(void *ctx, const char *spec, char **err)
{
    int *opened = ctx;

    if (strstr(spec, "missing") != NULL) {
        *err = xstrdup("no such file");
        return NULL;
    }
    (*opened)++;
    return dict_open("static:OK", 0, err);
}

/* test_tables_opened - tables are opened once at parse time; a failure names the word */
static void test_tables_opened(void **state)
{
    char *ok_words[] = {"check_client_access", "hash:/a", "check_sender_access", "hash:/b",
                        "permit"};
    char *bad_words[] = {"check_client_access", "hash:/missing"};
    struct restr_list l;
    char *err = NULL;
    int opened = 0;

    (void)state;
    assert_true(restr_parse_list(ok_words, 5, "p", NULL, fake_table, &opened, &l, &err));
    assert_int_equal(opened, 2);
    assert_int_equal(l.n, 3);
    assert_non_null(l.v[0].table);
    assert_non_null(l.v[1].table);
    restr_list_free(&l);
    assert_false(restr_parse_list(bad_words, 2, "p", NULL, fake_table, &opened, &l, &err));
    assert_string_equal(err, "check_client_access hash:/missing: no such file");
    free(err);
}

/* test_config_load - the six lists from a configuration text, and its errors */
static void test_config_load(void **state)
{
    static const char good[] = "smtpd_restriction_classes = strict\n"
                               "strict = reject_non_fqdn_sender, reject\n"
                               "smtpd_client_restrictions = permit_mynetworks, strict\n";
    static const char typo[] = "smtpd_recipient_restrictions = permit_mynetworks, "
                               "reject_unauth_destinaton\n";
    static const char open_relay[] = "smtpd_relay_restrictions = permit\n";
    struct restr_config rc;
    char *err = NULL;
    struct cfg *cfg;

    (void)state;
    cfg = cfg_load_string(good, sizeof(good) - 1, "good", &err);
    assert_non_null(cfg);
    assert_true(restr_config_load(cfg, false, &rc, &err));
    assert_int_equal(rc.client.n, 2);
    assert_int_equal(rc.client.v[1].op, R_CLASS);
    assert_int_equal(rc.classes.n, 1);
    assert_int_equal(rc.classes.lists[0].n, 2);
    assert_int_equal(rc.relay.n, 3);      /* the default */
    restr_config_free(&rc);
    cfg_free(cfg);

    cfg = cfg_load_string(typo, sizeof(typo) - 1, "typo", &err);
    assert_non_null(cfg);
    assert_false(restr_config_load(cfg, false, &rc, &err));
    assert_string_equal(err, "smtpd_recipient_restrictions: unknown restriction: "
                             "\"reject_unauth_destinaton\"");
    free(err);
    cfg_free(cfg);

    cfg = cfg_load_string(open_relay, sizeof(open_relay) - 1, "relay", &err);
    assert_non_null(cfg);
    assert_false(restr_config_load(cfg, false, &rc, &err));
    assert_non_null(strstr(err, "reject_unauth_destination"));
    free(err);
    cfg_free(cfg);
}

/* main - run the tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_cases),
        cmocka_unit_test(test_names_roundtrip),
        cmocka_unit_test(test_tables_opened),
        cmocka_unit_test(test_config_load),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
