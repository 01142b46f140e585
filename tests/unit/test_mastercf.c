/*
 * test_mastercf.c - unit and golden tests for the master.cf parser
 *
 * Golden files: tests/golden/mastercf/NAME.cf is a master.cf; NAME.out is
 * the dump of what master_cf_parse made of it (one "service" line per
 * service with every column resolved, then its arguments and -o
 * overrides), or "error: TEXT". The golden directory is
 * $POSTA_SRCDIR/tests/golden (default ./tests/golden).
 * POSTA_GOLDEN_UPDATE=1 rewrites the .out files (review the diff!).
 */
#include "util/sys.h"

#include <setjmp.h>
#include <stdio.h>
#include <cmocka.h>

#include "mail/mastercf.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"

#include "golden.h"

#define GOLDEN_SUBDIR "mastercf"
#define GOLDEN_MIN_FILES 10

/* parse - master_cf_parse on a C string */
static bool parse(const char *text, struct master_cf *m, char **err)
{
    *err = NULL;
    return master_cf_parse(text, strlen(text), "master.cf", m, err);
}

/* expect_error - text must fail with an error containing want */
static void expect_error(const char *text, const char *want)
{
    struct master_cf m;
    char *err;

    if (parse(text, &m, &err)) {
        master_cf_free(&m);
        fail_msg("\"%s\" should not parse", text);
    }
    if (strstr(err, want) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
    assert_null(m.svc);
    assert_int_equal(m.n, 0);
    free(err);
}

static void test_basic(void **state)
{
    struct master_cf m;
    char *err;
    struct master_service *s;

    assert_true(parse("# c\nsmtp inet n - y - - smtpd\n"
                      "sub inet n - - 10 3 smtpd -v\n"
                      "  -o a=b\n"
                      "# inner comment\n"
                      "  -o { c = d e }\n"
                      "q unix - n - 300? 1 qmgr\n", &m, &err));
    assert_int_equal(m.n, 3);
    s = &m.svc[0];
    assert_string_equal(s->name, "smtp");
    assert_string_equal(s->type, "inet");
    assert_false(s->private_);
    assert_true(s->unpriv);
    assert_true(s->chroot);
    assert_int_equal(s->wakeup, 0);
    assert_int_equal(s->maxproc, -1);
    assert_string_equal(s->command, "smtpd");
    assert_int_equal(s->nargs, 0);
    assert_int_equal(s->line, 2);
    assert_string_equal(s->file, "master.cf");
    assert_string_equal(s->fields[MASTER_F_UNPRIV], "-");
    s = &m.svc[1];
    assert_false(s->chroot);
    assert_int_equal(s->wakeup, 10);
    assert_int_equal(s->maxproc, 3);
    assert_int_equal(s->nargs, 1);
    assert_string_equal(s->args[0], "-v");
    assert_null(s->args[1]);
    assert_int_equal(s->nopts, 2);
    assert_string_equal(s->opts[0].name, "a");
    assert_string_equal(s->opts[0].value, "b");
    assert_string_equal(s->opts[1].name, "c");
    assert_string_equal(s->opts[1].value, "d e");
    s = &m.svc[2];
    assert_true(s->private_);
    assert_false(s->unpriv);
    assert_int_equal(s->wakeup, 300);
    assert_true(s->wakeup_if_used);
    assert_int_equal(s->line, 7);
    master_cf_free(&m);
    assert_null(m.svc);
}

static void test_empty(void **state)
{
    struct master_cf m;
    char *err;

    assert_true(parse("", &m, &err));
    assert_int_equal(m.n, 0);
    master_cf_free(&m);
    assert_true(parse("# only comments\n\n   \n", &m, &err));
    assert_int_equal(m.n, 0);
    master_cf_free(&m);
}

static void test_errors(void **state)
{
    expect_error("smtp inet n - y - -\n", "master.cf, line 1: expected at least 8 fields");
    expect_error("\nsmtp tcp n - y - - smtpd\n", "master.cf, line 2: bad type");
    expect_error("x unix q - n - - x\n", "bad private field");
    expect_error("x unix - q n - - x\n", "bad unpriv field");
    expect_error("x unix - - q - - x\n", "bad chroot field");
    expect_error("x unix - - n x - x\n", "bad wakeup field");
    expect_error("x unix - - n ? - x\n", "bad wakeup field");
    expect_error("x unix - - n - -1 x\n", "bad maxproc field");
    expect_error("x unix - - n - - x -o\n", "-o without name=value");
    expect_error("x unix - - n - - x -o y\n", "expected name=value");
    expect_error("x unix - - n - - x { y\n", "missing '}'");
    expect_error("x inet y - n - - x\n", "cannot be private");
    expect_error("x unix - - n - - x\nx unix - - n - - y\n", "line 2: duplicate service x/unix");
}

static void test_nul(void **state)
{
    static const char text[] = "x unix - - n - - x\0\n";
    struct master_cf m;
    char *err = NULL;

    assert_false(master_cf_parse(text, sizeof(text) - 1, "m", &m, &err));
    free(err);
}

static void test_load_file(void **state)
{
    struct master_cf m;
    char *err = NULL;

    assert_false(master_cf_load("/nonexistent/master.cf", &m, &err));
    assert_non_null(strstr(err, "/nonexistent/master.cf"));
    free(err);
}

/* ---- golden files -------------------------------------------------------- */

/* dump - the parse result as text */
static void dump(const struct master_cf *m, struct buf *out)
{
    const struct master_service *s;
    size_t i, j;

    for (i = 0; i < m->n; i++) {
        s = &m->svc[i];
        buf_printf(out, "service %s type=%s private=%c unpriv=%c chroot=%c wakeup=%d%s "
                        "maxproc=%d command=%s line=%d\n",
                   s->name, s->type, s->private_ ? 'y' : 'n', s->unpriv ? 'y' : 'n',
                   s->chroot ? 'y' : 'n', s->wakeup, s->wakeup_if_used ? "?" : "",
                   s->maxproc, s->command, s->line);
        for (j = 0; j < s->nargs; j++)
            buf_printf(out, "  arg [%s]\n", s->args[j]);
        for (j = 0; j < s->nopts; j++)
            buf_printf(out, "  -o [%s] = [%s]\n", s->opts[j].name, s->opts[j].value);
    }
}

/* render_cf - parse one master.cf and dump it */
static void render_cf(const char *file, char *text, size_t len, struct buf *out)
{
    struct master_cf m;
    char *err = NULL;

    if (master_cf_parse(text, len, file, &m, &err)) {
        dump(&m, out);
        master_cf_free(&m);
    } else {
        buf_printf(out, "error: %s\n", err);
        free(err);
    }
}

/* test_golden - every tests/golden/mastercf/NAME.cf against NAME.out */
static void test_golden(void **state)
{
    golden_run_dir(GOLDEN_SUBDIR, ".cf", GOLDEN_MIN_FILES, render_cf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_nul),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_golden),
    };

    log_open("test_mastercf", LOG_SINK_STDERR, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
