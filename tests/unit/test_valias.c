/*
 * test_valias.c - golden tests for virtual alias expansion (mail/valias.h)
 *
 * tests/golden/valias/NAME.cf is a main.cf, NAME.in one address per line
 * (blank lines and '#' comments skipped), NAME.out the expected answers,
 * one line per address:
 *     ADDRESS<TAB>ok<TAB>RESULT,RESULT,...<TAB>listed=L<TAB>domain=D
 *     ADDRESS<TAB>tempfail|limit<TAB>WHY<TAB>listed=L<TAB>domain=D
 * where L is valias_listed and D valias_domain of the address's domain
 * (yes, no, tempfail). The golden directory is $POSTA_SRCDIR/tests/golden
 * (default "./tests/golden"); POSTA_GOLDEN_PRINT=1 prints what was
 * produced, for review. Other tests: the comparison fails on a changed
 * answer, the value parser, and the records valias_write_rcpt writes.
 */
#include "util/sys.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "mail/config.h"
#include "mail/qfile.h"
#include "mail/valias.h"
#include "util/alloc.h"
#include "util/buf.h"

#include "golden.h"

#define SUFFIX_CF ".cf"
#define GOLDEN_SUB "valias"
#define MIN_CASES 3
#define TEST_QID "4ABCDEF0123"

/* match_name - yes/no/tempfail */
static const char *match_name(enum match_result m)
{
    return m == MATCH_YES ? "yes" : m == MATCH_NO ? "no" : "tempfail";
}

/* load_cfg - main.cf text into a cfg (fails the test on error) */
static struct cfg *load_cfg(const char *text, size_t len, const char *origin)
{
    char *err = NULL;
    struct cfg *cfg = cfg_load_string(text, len, origin, &err);

    if (cfg == NULL)
        fail_msg("%s: %s", origin, err);
    return cfg;
}

/* expand_line - one address's answer line into out */
static void expand_line(struct valias *va, const char *addr, struct buf *out)
{
    struct valias_list l = {0};
    const char *why = NULL, *at = strrchr(addr, '@');
    enum valias_status st = valias_expand(va, addr, TEST_QID, &l, &why);

    buf_printf(out, "%s\t", addr);
    if (st == VALIAS_OK) {
        buf_puts(out, "ok\t");
        for (size_t i = 0; i < l.n; i++)
            buf_printf(out, "%s%s", i ? "," : "", l.addr[i]);
    } else {
        assert_int_equal(l.n, 0);
        buf_printf(out, "%s\t%s", st == VALIAS_LIMIT ? "limit" : "tempfail", why);
    }
    buf_printf(out, "\tlisted=%s\tdomain=%s\n", match_name(valias_listed(va, addr)),
               match_name(valias_domain(va, at ? at + 1 : "")));
    valias_list_free(&l);
}

/* render_case - expand every address of NAME.in under the main.cf text of NAME.cf */
static void render_case(const char *file, char *text, size_t len, struct buf *out)
{
    char *dir = golden_dir(GOLDEN_SUB);
    char *path = xasprintf("%s/%.*s.in", dir, (int)(strlen(file) - strlen(SUFFIX_CF)), file);
    size_t inlen;
    char *in = golden_read_file(path, &inlen);
    struct cfg *cfg = load_cfg(text, len, file);
    struct valias *va = valias_open(cfg);

    assert_non_null(in);
    for (char *line = in, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        if (*line == 0 || *line == '#')
            continue;
        expand_line(va, line, out);
    }
    valias_close(va);
    cfg_free(cfg);
    free(in);
    free(path);
    free(dir);
}

/* same_output - the comparison the golden test makes */
static bool same_output(const struct buf *got, const struct buf *want)
{
    return strcmp(buf_str(got), buf_str(want)) == 0;
}

/* test_golden - every NAME.cf in the golden directory */
static void test_golden(void **state)
{
    (void)state;
    golden_run_dir(GOLDEN_SUB, SUFFIX_CF, MIN_CASES, render_case);
}

/* test_detects_change - another table gives another answer, and the comparison sees it */
static void test_detects_change(void **state)
{
    static const char one[] = "myhostname = h.example\nmydestination = $myhostname\n"
                              "virtual_alias_maps = inline:{ a@v.example=b@h.example }\n";
    static const char two[] = "myhostname = h.example\nmydestination = $myhostname\n"
                              "virtual_alias_maps = inline:{ a@v.example=c@h.example }\n";
    struct buf got1 = BUF_INIT, got2 = BUF_INIT;
    struct cfg *cfg1 = load_cfg(one, strlen(one), "one");
    struct cfg *cfg2 = load_cfg(two, strlen(two), "two");
    struct valias *va1 = valias_open(cfg1), *va2 = valias_open(cfg2);

    (void)state;
    expand_line(va1, "a@v.example", &got1);
    expand_line(va2, "a@v.example", &got2);
    assert_string_equal(buf_str(&got1),
                        "a@v.example\tok\tb@h.example\tlisted=yes\tdomain=no\n");
    assert_false(same_output(&got1, &got2));
    valias_close(va1);
    valias_close(va2);
    cfg_free(cfg1);
    cfg_free(cfg2);
    buf_free(&got1);
    buf_free(&got2);
}

/* test_parse_value - the value syntax */
static void test_parse_value(void **state)
{
    struct valias_list l = {0};
    char *err = NULL;

    (void)state;
    assert_true(valias_parse_value("a@x.example b,Name <c@y.example>,\n\"q r\"@z.example",
                                   "u@v", "o.example", &l, &err));
    assert_int_equal(l.n, 4);
    assert_string_equal(l.addr[0], "a@x.example");
    assert_string_equal(l.addr[1], "b@o.example");
    assert_string_equal(l.addr[2], "c@y.example");
    assert_string_equal(l.addr[3], "\"q r\"@z.example");
    valias_list_free(&l);
    assert_true(valias_parse_value("@other.example, @third.example", "u+x@v.example",
                                   "o.example", &l, &err));
    assert_int_equal(l.n, 2);
    assert_string_equal(l.addr[0], "u+x@other.example"); /* first result only */
    assert_string_equal(l.addr[1], "@third.example");
    valias_list_free(&l);
    assert_false(valias_parse_value("", "u@v", "o", &l, &err));
    free(err);
    err = NULL;
    assert_false(valias_parse_value("a@b, |cmd", "u@v", "o", &l, &err));
    assert_non_null(err);
    free(err);
    valias_list_free(&l);
}

/* test_write_rcpt - ORCPT and NOTIFY on the records of each result */
static void test_write_rcpt(void **state)
{
    static const char text[] = "myhostname = h.example\nmydestination = $myhostname\n"
                               "virtual_alias_maps = inline:{ { l@v.example = a@h.example, "
                               "b@h.example }, s@v.example=s@v.example }\n";
    char dir[] = "/tmp/test_valias.XXXXXX";
    struct cfg *cfg = load_cfg(text, strlen(text), "t");
    struct valias *va = valias_open(cfg);
    struct qfile_writer *w;
    struct qfile *q;
    const char *why = NULL;
    char *err = NULL;
    int dfd, fd;

    (void)state;
    assert_non_null(mkdtemp(dir));
    dfd = open(dir, O_RDONLY | O_DIRECTORY);
    assert_true(dfd >= 0);
    w = qfw_create(dfd, TEST_QID);
    assert_non_null(w);
    qfw_record(w, QREC_TIME, "1.000000", strlen("1.000000"));
    qfw_record(w, QREC_SENDER, "s@h.example", strlen("s@h.example"));
    assert_int_equal(
        valias_write_rcpt(va, w, TEST_QID, "l@v.example", NULL, QNOTIFY_FAILURE, &why),
        VALIAS_OK);
    assert_int_equal(
        valias_write_rcpt(va, w, TEST_QID, "x@v.example", "rfc822;orig@o.example", 0, &why),
        VALIAS_OK);
    assert_int_equal(valias_write_rcpt(va, w, TEST_QID, "s@v.example", NULL, 0, &why),
                     VALIAS_OK);
    qfw_record(w, QREC_MESSAGE, "", 0);
    qfw_content(w, "\n", 1);
    assert_int_equal(qfw_finish(w), 0);
    qfw_close(w);
    fd = openat(dfd, TEST_QID, O_RDONLY);
    assert_true(fd >= 0);
    q = qfile_parse_fd(fd, TEST_QID, &err);
    if (q == NULL)
        fail_msg("%s", err);
    assert_int_equal(q->nrcpts, 4);
    assert_string_equal(q->rcpts[0].addr, "a@h.example");
    assert_string_equal(q->rcpts[0].orcpt, "rfc822;l@v.example");
    assert_int_equal(q->rcpts[0].notify, QNOTIFY_FAILURE);
    assert_string_equal(q->rcpts[1].addr, "b@h.example");
    assert_string_equal(q->rcpts[1].orcpt, "rfc822;l@v.example");
    assert_string_equal(q->rcpts[2].addr, "x@v.example"); /* not listed: as is */
    assert_string_equal(q->rcpts[2].orcpt, "rfc822;orig@o.example");
    assert_string_equal(q->rcpts[3].addr, "s@v.example"); /* maps to itself */
    assert_null(q->rcpts[3].orcpt);
    qfile_close(q);
    unlinkat(dfd, TEST_QID, 0);
    close(dfd);
    rmdir(dir);
    valias_close(va);
    cfg_free(cfg);
}

/* main - run the tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_detects_change),
        cmocka_unit_test(test_parse_value),
        cmocka_unit_test(test_write_rcpt),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
