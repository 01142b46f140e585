/*
 * test_macro.c - golden tests for util/macro.c ($name expansion)
 *
 * tests/golden/macro/cases.txt: TEMPLATE<TAB>EXPANSION per line, with
 * the variables a=alpha, n=42, e (empty) and u=/home/u.
 */
#include "util/sys.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/macro.h"

#include "golden.h"

#define MIN_CASES 20

/* var - the test's variables (macro_lookup_fn) */
static const char *var(void *ctx, const char *name, size_t len)
{
    static const char *const vars[][2] = {{"a", "alpha"}, {"n", "42"}, {"e", ""},
                                          {"u", "/home/u"}};

    (void)ctx;
    for (size_t i = 0; i < POSTA_ARRAY_LEN(vars); i++)
        if (strlen(vars[i][0]) == len && strncmp(vars[i][0], name, len) == 0)
            return vars[i][1];
    return NULL;
}

/* check_case - one TEMPLATE<TAB>EXPANSION line */
static int check_case(struct golden_lines *g, char *line, void *ctx)
{
    char *tab = strchr(line, '\t');
    struct buf out = BUF_INIT;
    int failed;

    (void)ctx;
    if (tab == NULL)
        fail_msg("%s:%zu: no TAB", g->path, g->lineno);
    *tab = 0;
    macro_expand(line, var, NULL, &out);
    failed = golden_lines_check(g, line, (int)strlen(line), tab + 1, buf_str(&out));
    buf_free(&out);
    return failed;
}

/* test_golden - every case of cases.txt */
static void test_golden(void **state)
{
    (void)state;
    golden_table_run("macro", "cases.txt", MIN_CASES, check_case, NULL);
}

/* test_appends - the expansion is appended to what out holds */
static void test_appends(void **state)
{
    struct buf out = BUF_INIT;

    (void)state;
    buf_puts(&out, "x=");
    macro_expand("$a", var, NULL, &out);
    assert_string_equal(buf_str(&out), "x=alpha");
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_appends),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
