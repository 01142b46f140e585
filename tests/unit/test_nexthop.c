/*
 * test_nexthop.c - golden and unit tests for next-hop parsing
 *
 * Golden file tests/golden/nexthop/nexthop.txt, one case a line, TAB
 * separated (escapes \\ \t \{ \xHH and {TEXT*N} repeats as in golden.h;
 * "#" lines and blank lines are ignored):
 *
 *   smtp|lmtp  TEXT  RESULT
 *
 * RESULT is "MX HOST:PORT", "HOST HOST:PORT", "LITERAL ADDR:PORT",
 * "UNIX PATH" or "ERR why" (escapes and repeats expanded before the
 * comparison). POSTA_GOLDEN_PRINT=1 prints what was
 * produced. The golden directory is $POSTA_SRCDIR/tests/golden.
 */
#include "util/sys.h"

#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "mail/nexthop.h"
#include "util/alloc.h"
#include "util/buf.h"

#include "golden.h"

#define GOLDEN_SUBDIR "nexthop"
#define GOLDEN_FIELDS_MIN 3

/* render - one parse result as golden text */
static void render(const char *text, bool lmtp, struct buf *got)
{
    struct nexthop nh;
    const char *err = NULL;

    if (!nexthop_parse(text, lmtp, &nh, &err)) {
        assert_non_null(err);
        assert_null(nh.host);
        assert_null(nh.path);
        buf_printf(got, "ERR %s", err);
        return;
    }
    switch (nh.kind) {
    case NEXTHOP_MX:
        assert_false(nh.literal);
        buf_printf(got, "MX %s:%u", nh.host, nh.port);
        break;
    case NEXTHOP_HOST:
        buf_printf(got, "%s %s:%u", nh.literal ? "LITERAL" : "HOST", nh.host, nh.port);
        break;
    case NEXTHOP_UNIX:
        assert_null(nh.host);
        buf_printf(got, "UNIX %s", nh.path);
        break;
    }
    nexthop_free(&nh);
    assert_null(nh.host);
}

/* test_golden - tests/golden/nexthop/nexthop.txt */
static void test_golden(void **state)
{
    struct golden_lines g;
    struct buf text = BUF_INIT, got = BUF_INIT, want = BUF_INIT;
    char *line, *t1, *t2;
    bool lmtp;

    golden_lines_open(&g, GOLDEN_SUBDIR, "nexthop.txt");
    while ((line = golden_lines_next(&g)) != NULL) {
        golden_lines_fields(&g, &t1, &t2, GOLDEN_FIELDS_MIN);
        *t1 = 0;
        if (strcmp(line, "smtp") != 0 && strcmp(line, "lmtp") != 0)
            fail_msg("%s:%zu: mode must be smtp or lmtp", g.path, g.lineno);
        lmtp = strcmp(line, "lmtp") == 0;
        buf_reset(&text);
        buf_reset(&got);
        buf_reset(&want);
        golden_expand(t2 + 1, strlen(t2 + 1), true, &want);
        golden_expand(t1 + 1, (size_t)(t2 - t1 - 1), true, &text);
        render(buf_str(&text), lmtp, &got);
        if (g.print)
            print_message("%s\t%.*s\t%s\n", line, (int)(t2 - t1 - 1), t1 + 1, buf_str(&got));
        golden_lines_check(&g, t1 + 1, (int)(t2 - t1 - 1), buf_str(&want), buf_str(&got));
    }
    golden_lines_close(&g);
    buf_free(&text);
    buf_free(&got);
    buf_free(&want);
}

/* test_null - a NULL text is refused like an empty one */
static void test_null(void **state)
{
    struct nexthop nh;
    const char *err = NULL;

    assert_false(nexthop_parse(NULL, false, &nh, &err));
    assert_string_equal(err, "empty next hop");
    nexthop_free(&nh);
}

/* test_every_port - every number 1-65535 is a port; 0 and 65536 are not */
static void test_every_port(void **state)
{
    struct nexthop nh;
    const char *err = NULL;
    char text[64];
    unsigned p;

    for (p = 0; p <= 65536; p++) {
        snprintf(text, sizeof(text), "[mx.example]:%u", p);
        if (p == 0 || p == 65536) {
            assert_false(nexthop_parse(text, false, &nh, &err));
        } else {
            assert_true(nexthop_parse(text, false, &nh, &err));
            assert_int_equal(nh.port, p);
            nexthop_free(&nh);
        }
    }
}

/* main - run the tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_null),
        cmocka_unit_test(test_every_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
