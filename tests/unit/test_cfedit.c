/*
 * test_cfedit.c - unit and golden tests for main.cf/master.cf editing
 *
 * Golden files: tests/golden/cfedit/NAME.cf is the text before the edit,
 * NAME.ops the edit: a first line "main" or "master", then one operation
 * a line, TAB-separated: "set KEY VALUE", "remove KEY" or "comment KEY".
 * NAME.out is the text after the edit, then a line "=== found" and, per
 * operation, "KEY yes|no" (did the key occur in the text).
 * POSTA_GOLDEN_UPDATE=1 rewrites the .out files (review the diff!).
 */
#include "util/sys.h"

#include <setjmp.h>
#include <stdio.h>
#include <cmocka.h>

#include "mail/cfedit.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"

#include "golden.h"

#define GOLDEN_SUBDIR "cfedit"
#define GOLDEN_MIN_FILES 6
#define OPS_MAX 16

/* edit - apply ops to a C string; the result (static buffer per call) */
static char *edit(enum cfedit_syntax syn, const char *text, struct cfedit_op *ops, size_t n)
{
    struct buf out = BUF_INIT;

    assert_true(cfedit_apply(syn, text, strlen(text), ops, n, &out));
    if (out.data == NULL)
        buf_puts(&out, "");
    return buf_steal(&out);
}

static void test_set_replace_keeps_rest(void **state)
{
    struct cfedit_op op = {CFEDIT_SET, "b", "new", false};
    char *got = edit(CFEDIT_MAIN, "# c\na = 1\nb = old\n  cont\n\n# d\nc = 3\n", &op, 1);

    (void)state;
    assert_string_equal(got, "# c\na = 1\nb = new\n\n# d\nc = 3\n");
    assert_true(op.found);
    free(got);
}

static void test_set_append(void **state)
{
    struct cfedit_op op = {CFEDIT_SET, "z", "", false};
    char *got = edit(CFEDIT_MAIN, "a = 1", &op, 1);

    (void)state;
    assert_string_equal(got, "a = 1\nz =\n");
    assert_false(op.found);
    free(got);
    got = edit(CFEDIT_MAIN, "", &op, 1);
    assert_string_equal(got, "z =\n");
    free(got);
}

static void test_last_op_wins(void **state)
{
    struct cfedit_op ops[] = {
        {CFEDIT_SET, "a", "1", false},
        {CFEDIT_REMOVE, "a", NULL, false},
        {CFEDIT_SET, "b", "x", false},
        {CFEDIT_SET, "b", "y", false},
    };
    char *got = edit(CFEDIT_MAIN, "a = 0\n", ops, 4);

    (void)state;
    assert_string_equal(got, "b = y\n");
    assert_true(ops[0].found && ops[1].found);
    assert_false(ops[2].found || ops[3].found);
    free(got);
}

static void test_name_prefix_not_matched(void **state)
{
    struct cfedit_op op = {CFEDIT_REMOVE, "smtpd", NULL, false};
    char *got = edit(CFEDIT_MAIN, "smtpd_banner = x\nsmtpd = y\n", &op, 1);

    (void)state;
    assert_string_equal(got, "smtpd_banner = x\n");
    free(got);
}

static void test_master_key(void **state)
{
    struct cfedit_op op = {CFEDIT_COMMENT, "smtp/inet", NULL, false};
    char *got = edit(CFEDIT_MASTER, "smtp inet n - - - - smtpd\n  -o a=b\nsmtp unix - - - - - smtp\n",
                     &op, 1);

    (void)state;
    assert_string_equal(got, "#smtp inet n - - - - smtpd\n#  -o a=b\nsmtp unix - - - - - smtp\n");
    free(got);
}

static void test_value_ok(void **state)
{
    (void)state;
    assert_true(cfedit_value_ok("a b $c"));
    assert_false(cfedit_value_ok("a\nb"));
    assert_false(cfedit_value_ok("a\r"));
    assert_false(cfedit_value_ok(NULL));
}

/* render - apply NAME.ops to NAME.cf */
static void render(const char *file, char *text, size_t len, struct buf *out)
{
    char *dir = golden_dir(GOLDEN_SUBDIR);
    char *opspath = xasprintf("%s/%.*s.ops", dir, (int)(strlen(file) - strlen(".cf")), file);
    size_t olen = 0, n = 0;
    char *ops_text = golden_read_file(opspath, &olen);
    struct cfedit_op ops[OPS_MAX];
    enum cfedit_syntax syn;
    char *line, *next;

    assert_non_null(ops_text);
    line = ops_text;
    next = strchr(line, '\n');
    assert_non_null(next);
    *next = 0;
    assert_true(strcmp(line, "main") == 0 || strcmp(line, "master") == 0);
    syn = strcmp(line, "main") == 0 ? CFEDIT_MAIN : CFEDIT_MASTER;
    for (line = next + 1; *line; line = next) {
        char *verb, *key, *value;

        next = strchr(line, '\n');
        assert_non_null(next);
        *next++ = 0;
        assert_true(n < OPS_MAX);
        verb = line;
        key = strchr(verb, '\t');
        assert_non_null(key);
        *key++ = 0;
        value = strchr(key, '\t');
        if (value)
            *value++ = 0;
        ops[n].key = key;
        ops[n].value = value;
        if (strcmp(verb, "set") == 0)
            ops[n].type = CFEDIT_SET;
        else if (strcmp(verb, "remove") == 0)
            ops[n].type = CFEDIT_REMOVE;
        else if (strcmp(verb, "comment") == 0)
            ops[n].type = CFEDIT_COMMENT;
        else
            fail_msg("%s: unknown operation %s", opspath, verb);
        n++;
    }
    assert_true(cfedit_apply(syn, text, len, ops, n, out));
    buf_puts(out, "=== found\n");
    for (size_t i = 0; i < n; i++)
        buf_printf(out, "%s %s\n", ops[i].key, ops[i].found ? "yes" : "no");
    free(ops_text);
    free(opspath);
    free(dir);
}

static void test_golden(void **state)
{
    (void)state;
    golden_run_dir(GOLDEN_SUBDIR, ".cf", GOLDEN_MIN_FILES, render);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_replace_keeps_rest),
        cmocka_unit_test(test_set_append),
        cmocka_unit_test(test_last_op_wins),
        cmocka_unit_test(test_name_prefix_not_matched),
        cmocka_unit_test(test_master_key),
        cmocka_unit_test(test_value_ok),
        cmocka_unit_test(test_golden),
    };

    log_open("test_cfedit", LOG_SINK_STDERR, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
