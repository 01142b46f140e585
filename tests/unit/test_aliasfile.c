/*
 * test_aliasfile.c - unit and golden tests for aliases(5) right-hand sides
 *
 * Golden files in tests/golden/aliasfile/, one case per line, INPUT TAB
 * EXPECTED ("#" lines and blank lines are ignored; in both fields "\n",
 * "\t" and "\\" stand for newline, tab and backslash):
 *   parse.txt  TEXT  ITEMS    aliasfile_parse; ITEMS is "type:value"
 *                             joined by " | ", empty for no items, or ERR
 *   argv.txt   CMD   ARGS     aliasfile_argv; ARGS joined by "|", or ERR
 * The golden directory is $POSTA_SRCDIR/tests/golden (default
 * "./tests/golden"); POSTA_GOLDEN_PRINT=1 prints what was produced.
 */
#include "util/sys.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "mail/aliasfile.h"
#include "util/alloc.h"
#include "util/buf.h"

#include "golden.h"

#define GOLDEN_SUBDIR "aliasfile"
#define MIN_CASES 10

/* unescape - golden field escapes \n \t \\ (others kept) */
static void unescape(const char *s, size_t n, struct buf *out)
{
    buf_reset(out);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n) {
            char c = s[i + 1];

            if (c == 'n' || c == 't' || c == '\\') {
                buf_putc(out, c == 'n' ? '\n' : c == 't' ? '\t' : '\\');
                i++;
                continue;
            }
        }
        buf_putc(out, s[i]);
    }
}

/* render_parse - what aliasfile_parse produced, in the golden form */
static void render_parse(const char *text, size_t len, struct buf *out)
{
    struct alias_list l = {0};
    char *err = NULL;

    buf_reset(out);
    if (!aliasfile_parse(text, len, &l, &err)) {
        buf_puts(out, "ERR");
        free(err);
        alias_list_free(&l);
        return;
    }
    for (size_t i = 0; i < l.n; i++)
        buf_printf(out, "%s%s:%s", i ? " | " : "", alias_type_name(l.items[i].type),
                   l.items[i].value);
    alias_list_free(&l);
}

/* render_argv - what aliasfile_argv produced, in the golden form */
static void render_argv(const char *cmd, struct buf *out)
{
    char *err = NULL;
    size_t argc = 0;
    char **argv = aliasfile_argv(cmd, &argc, &err);

    buf_reset(out);
    if (argv == NULL) {
        assert_non_null(err);
        buf_puts(out, "ERR");
        free(err);
        return;
    }
    assert_null(argv[argc]);
    for (size_t i = 0; i < argc; i++)
        buf_printf(out, "%s%s", i ? "|" : "", argv[i]);
    aliasfile_argv_free(argv);
}

/* run_golden - every case of one file; returns the number of cases */
static int run_golden(const char *name, bool is_argv)
{
    struct golden_lines g;
    struct buf in = BUF_INIT, want = BUF_INIT, got = BUF_INIT;
    char *line, *tab;
    int cases;

    golden_lines_open(&g, GOLDEN_SUBDIR, name);
    while ((line = golden_lines_next(&g)) != NULL) {
        tab = strrchr(line, '\t');
        if (tab == NULL)
            fail_msg("%s:%zu: no TAB", g.path, g.lineno);
        unescape(line, (size_t)(tab - line), &in);
        unescape(tab + 1, strlen(tab + 1), &want);
        if (is_argv)
            render_argv(buf_str(&in), &got);
        else
            render_parse(buf_str(&in), in.len, &got);
        if (g.print)
            printf("%s:%zu: %s\n", name, g.lineno, buf_str(&got));
        golden_lines_check(&g, line, (int)(tab - line), buf_str(&want), buf_str(&got));
    }
    cases = (int)g.cases;
    buf_free(&in);
    buf_free(&want);
    buf_free(&got);
    golden_lines_close(&g);
    return cases;
}

/* test_golden_parse - parse.txt */
static void test_golden_parse(void **state)
{
    (void)state;
    assert_true(run_golden("parse.txt", false) >= MIN_CASES);
}

/* test_golden_argv - argv.txt */
static void test_golden_argv(void **state)
{
    (void)state;
    assert_true(run_golden("argv.txt", true) >= MIN_CASES);
}

/* test_limits - too many items and too much text are refused */
static void test_limits(void **state)
{
    struct buf b = BUF_INIT;
    struct alias_list l = {0};
    char *err = NULL;
    size_t argc;
    char **argv;

    (void)state;
    for (int i = 0; i <= ALIASFILE_ITEMS_MAX; i++)
        buf_puts(&b, "a,");
    assert_false(aliasfile_parse(b.data, b.len, &l, &err));
    assert_non_null(err);
    free(err);
    alias_list_free(&l);
    buf_reset(&b);
    for (int i = 0; i <= ALIASFILE_ARGS_MAX; i++)
        buf_puts(&b, "a ");
    argv = aliasfile_argv(b.data, &argc, &err);
    assert_null(argv);
    free(err);
    buf_free(&b);
}

/* test_binary - NUL bytes inside the text are refused, not truncated */
static void test_binary(void **state)
{
    static const char text[] = "bob\0evil";
    struct alias_list l = {0};
    char *err = NULL;

    (void)state;
    assert_false(aliasfile_parse(text, sizeof(text) - 1, &l, &err));
    free(err);
    alias_list_free(&l);
}

/* main - run the tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_parse),
        cmocka_unit_test(test_golden_argv),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_binary),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
