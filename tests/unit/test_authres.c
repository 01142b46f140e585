/*
 * test_authres.c - Authentication-Results and Received-SPF against
 * tests/golden/authres/
 *
 * Each built header is compared with tests/golden/authres/NAME.out
 * (POSTA_GOLDEN_UPDATE=1 rewrites them); ours.txt lists incoming field
 * values and whether they claim our authserv-id.
 */
#include "util/sys.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <cmocka.h>

#include "mail/authres.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "golden.h"

#define OUR_ID "mx.example.org"

/* compare - got against tests/golden/authres/NAME.out */
static void compare(const char *name, const struct buf *got)
{
    char *dir = golden_dir("authres");
    char *path = xasprintf("%s/%s.out", dir, name);

    assert_int_equal(golden_compare(name, path, got), 0);
    free(path);
    free(dir);
}

static void test_full(void **state)
{
    const struct authres_dkim sigs[] = {
        {"pass", "example.com", "sel1", "abcdefghijklmnopqrstuvwxyz0123", NULL},
        {"fail", "other.example", "s2", "ZZZZ+/==", "body hash did not verify"},
    };
    struct authres ar = {
        .authserv_id = OUR_ID,
        .spf_checked = true, .spf = SPF_PASS, .mailfrom = "user@example.com",
        .dkim_checked = true, .dkim = sigs, .ndkim = 2,
        .dmarc_checked = true, .dmarc = DMARC_RESULT_PASS, .policy = DMARC_POLICY_REJECT,
        .disposition = DMARC_POLICY_NONE, .from_domain = "example.com",
    };
    struct buf out = BUF_INIT;

    authres_build(&ar, &out);
    compare("full", &out);
    /* what we add is recognised as ours */
    assert_true(authres_field_is_ours(buf_str(&out), out.len, OUR_ID));
    assert_false(authres_field_is_ours(buf_str(&out), out.len, "other.example"));
    buf_free(&out);
}

static void test_fail(void **state)
{
    const struct authres_dkim sig = {"bogus-word", "evil.example", NULL, NULL,
                                     "a (tricky) comment\\ with\ncontrols"};
    struct authres ar = {
        .authserv_id = OUR_ID,
        .spf_checked = true, .spf = SPF_FAIL, .mailfrom = "\"odd user\"@example.com",
        .helo_checked = true, .spf_helo = SPF_NONE, .helo = "helo.example.net",
        .dkim_checked = true, .dkim = &sig, .ndkim = 1,
        .dmarc_checked = true, .dmarc = DMARC_RESULT_FAIL, .policy = DMARC_POLICY_REJECT,
        .disposition = DMARC_POLICY_REJECT, .from_domain = "example.com",
    };
    struct buf out = BUF_INIT;

    authres_build(&ar, &out);
    compare("fail", &out);
    buf_free(&out);
}

static void test_errors(void **state)
{
    struct authres ar = {
        .authserv_id = OUR_ID,
        .spf_checked = true, .spf = SPF_TEMPERROR, .mailfrom = "postmaster@helo.example",
        .dkim_checked = true, .ndkim = 0,
        .dmarc_checked = true, .dmarc = DMARC_RESULT_TEMPERROR, .from_domain = "example.com",
    };
    struct buf out = BUF_INIT;

    authres_build(&ar, &out);
    compare("errors", &out);
    buf_free(&out);
}

static void test_none(void **state)
{
    struct authres ar = {.authserv_id = OUR_ID};
    struct buf out = BUF_INIT;

    authres_build(&ar, &out);
    compare("none", &out);
    buf_free(&out);
}

static void test_received_spf(void **state)
{
    struct buf out = BUF_INIT, all = BUF_INIT;

    authres_received_spf(SPF_PASS, OUR_ID, "192.0.2.1", "user@example.com", "mail.example.com",
                         "mailfrom", NULL, &out);
    buf_puts(&all, buf_str(&out));
    authres_received_spf(SPF_SOFTFAIL, OUR_ID, "2001:db8::1", "user@example.com",
                         "mail.example.com", "mailfrom", NULL, &out);
    buf_puts(&all, buf_str(&out));
    authres_received_spf(SPF_NEUTRAL, OUR_ID, "192.0.2.1", "", "helo.example", "helo", NULL,
                         &out);
    buf_puts(&all, buf_str(&out));
    authres_received_spf(SPF_PERMERROR, OUR_ID, "192.0.2.1", "a@b.example", "x",
                         "mailfrom", "SPF record of b.example: (bad) syntax", &out);
    buf_puts(&all, buf_str(&out));
    authres_received_spf(SPF_NONE, OUR_ID, "192.0.2.1", "a@b.example", "x", "mailfrom", NULL,
                         &out);
    buf_puts(&all, buf_str(&out));
    compare("received_spf", &all);
    buf_free(&out);
    buf_free(&all);
}

/* ours_case - golden_case_fn: VALUE<TAB>yes|no, as a value and as a whole field */
static int ours_case(struct golden_lines *g, char *line, void *ctx)
{
    struct buf v = BUF_INIT;
    char *tab = strrchr(line, '\t');
    bool got;
    int failed = 0;

    assert_non_null(tab);
    golden_expand(line, (size_t)(tab - line), true, &v);
    got = authres_is_ours(buf_str(&v), v.len, OUR_ID);
    if (got != (strcmp(tab + 1, "yes") == 0)) {
        print_error("ours.txt:%zu: \"%s\": want %s\n", g->lineno, line, tab + 1);
        failed = 1;
    }
    /* the same as a whole field */
    buf_reset(&v);
    buf_puts(&v, "authentication-results :");
    golden_expand(line, (size_t)(tab - line), true, &v);
    if (authres_field_is_ours(buf_str(&v), v.len, OUR_ID) != got) {
        print_error("ours.txt:%zu: as a field: differs\n", g->lineno);
        failed = 1;
    }
    buf_free(&v);
    return failed;
}

static void test_ours(void **state)
{
    golden_table_run("authres", "ours.txt", 20, ours_case, NULL);
    assert_false(authres_field_is_ours("Received: mx.example.org", 24, OUR_ID));
    assert_false(authres_field_is_ours("Authentication-Results-X: mx.example.org", 40, OUR_ID));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_fail),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_none),
        cmocka_unit_test(test_received_spf),
        cmocka_unit_test(test_ours),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
