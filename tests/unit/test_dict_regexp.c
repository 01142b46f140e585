/*
 * test_dict_regexp.c - unit and golden tests for regexp: and pcre: tables
 *
 * Golden files under $POSTA_SRCDIR/tests/golden/dict_regexp: NAME.regexp
 * and NAME.pcre hold a table, a line "%%", then one lookup key a line
 * (golden escapes: \x0a is a newline). NAME.out is what the test renders:
 * the warnings the table produced (its path shown as TABLE), then
 * "KEY<TAB>=VALUE", "KEY<TAB>notfound" or "KEY<TAB>tempfail" per key.
 * When Postfix's postmap supports the type, every key of the interop
 * files (basic.regexp, ifblocks.regexp, pcre-basic.pcre) is also looked up with "postmap -q" and
 * must give the same answer.
 */
#include "util/sys.h"

#include <fcntl.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/dict.h"
#include "util/log.h"
#include "golden.h"

#define KEYS_SEPARATOR "\n%%\n"

static char tmpdir[] = "/tmp/test_dict_regexp.XXXXXX";
static char *log_path;
static char *table_path;

/* type_of - "regexp" or "pcre" from the golden file's suffix */
static const char *type_of(const char *file)
{
    const char *dot = strrchr(file, '.');

    return dot && strcmp(dot, ".pcre") == 0 ? "pcre" : "regexp";
}

/* render - load the table part, look up every key */
static void render(const char *file, char *text, size_t len, struct buf *out)
{
    char *sep = strstr(text, KEYS_SEPARATOR);
    char *err = NULL;

    if (sep == NULL)
        fail_msg("%s: no \"%%%%\" line", file);
    golden_write_file(table_path, text, (size_t)(sep - text) + 1);
    char *spec = xasprintf("%s:%s", type_of(file), table_path);
    size_t offset = golden_file_size(log_path);
    struct dict *d = dict_open(spec, 0, &err);
    if (d == NULL)
        fail_msg("%s: %s", file, err);
    golden_log_warnings(log_path, offset, table_path, "TABLE", out);
    char *keys = sep + strlen(KEYS_SEPARATOR), *save = NULL;
    for (char *k = strtok_r(keys, "\n", &save); k; k = strtok_r(NULL, "\n", &save)) {
        struct buf key = BUF_INIT;
        const char *value;
        golden_expand(k, strlen(k), true, &key);
        enum dict_result r = dict_lookup(d, buf_str(&key), &value);
        buf_printf(out, "%s\t", k);
        if (r == DICT_FOUND)
            buf_printf(out, "=%s\n", value);
        else
            buf_puts(out, r == DICT_NOTFOUND ? "notfound\n" : "tempfail\n");
        buf_free(&key);
    }
    dict_close(d);
    free(spec);
}

/* test_golden_regexp - every NAME.regexp */
static void test_golden_regexp(void **state)
{
    golden_run_dir("dict_regexp", ".regexp", 3, render);
}

/* test_golden_pcre - every NAME.pcre */
static void test_golden_pcre(void **state)
{
    golden_run_dir("dict_regexp", ".pcre", 2, render);
}

/* interop_file - compare posta and postmap on every key of one golden file */
static void interop_file(const char *name)
{
    char *dir = golden_dir("dict_regexp");
    char *path = xasprintf("%s/%s", dir, name);
    const char *type = type_of(name);
    size_t len;
    char *text = golden_read_file(path, &len), *err = NULL, *save = NULL;
    struct buf value = BUF_INIT;
    int compared = 0;

    assert_non_null(text);
    char *sep = strstr(text, KEYS_SEPARATOR);
    assert_non_null(sep);
    golden_write_file(table_path, text, (size_t)(sep - text) + 1);
    char *spec = xasprintf("%s:%s", type, table_path);
    struct dict *d = dict_open(spec, 0, &err);
    assert_non_null(d);
    for (char *k = strtok_r(sep + strlen(KEYS_SEPARATOR), "\n", &save); k;
         k = strtok_r(NULL, "\n", &save)) {
        if (strstr(k, "\\x") != NULL)
            continue;              /* postmap -q cannot pass control characters */
        const char *ours;
        bool found;
        enum dict_result r = dict_lookup(d, k, &ours);
        found = golden_postmap_run("-q", k, spec, &value) == 0;
        if (found != (r == DICT_FOUND) || (found && strcmp(ours, buf_str(&value)) != 0))
            fail_msg("%s key \"%s\": posta %s \"%s\", postmap %s \"%s\"", name, k,
                     r == DICT_FOUND ? "found" : "not found", r == DICT_FOUND ? ours : "",
                     found ? "found" : "not found", buf_str(&value));
        compared++;
    }
    assert_true(compared > 0);
    dict_close(d);
    buf_free(&value);
    free(spec);
    free(text);
    free(path);
    free(dir);
}

/* test_postfix_interop - postmap -q agrees on the interop files */
static void test_postfix_interop(void **state)
{
    if (!golden_postfix_has("regexp"))
        skip();
    interop_file("basic.regexp");
    interop_file("ifblocks.regexp");
    if (golden_postfix_has("pcre"))
        interop_file("pcre-basic.pcre");
}

/* test_inline - regexp:{...} and pcre:{...} specs */
static void test_inline(void **state)
{
    char *err = NULL;
    const char *v;
    struct dict *d = dict_open("regexp:{{/^foo([0-9])$/ n=$1}, {/./ other}}", 0, &err);

    assert_non_null(d);
    assert_int_equal(dict_lookup(d, "Foo7", &v), DICT_FOUND);
    assert_string_equal(v, "n=7");
    assert_int_equal(dict_lookup(d, "x", &v), DICT_FOUND);
    assert_string_equal(v, "other");
    assert_int_equal(dict_lookup(d, "", &v), DICT_NOTFOUND);
    dict_close(d);
    d = dict_open("pcre:{{/^(\\w+)@(\\w+)$/ $2!$1}}", 0, &err);
    assert_non_null(d);
    assert_int_equal(dict_lookup(d, "Joe@Host", &v), DICT_FOUND);
    assert_string_equal(v, "Host!Joe");
    dict_close(d);
    assert_null(dict_open("pcre:{{/a/ b}", 0, &err));
    assert_non_null(strstr(err, "unbalanced"));
    free(err);
    assert_null(dict_open("regexp:{}", 0, &err));
    free(err);
}

/* test_missing_file - an open error that names the file */
static void test_missing_file(void **state)
{
    char *err = NULL;
    char *spec = xasprintf("pcre:%s/nonexistent", tmpdir);

    assert_null(dict_open(spec, 0, &err));
    assert_non_null(strstr(err, "nonexistent"));
    assert_non_null(strstr(err, "No such file"));
    free(err);
    free(spec);
}

/* test_match_limit - a catastrophic pattern is bounded: "no match", not a hang */
static void test_match_limit(void **state)
{
    char *err = NULL;
    const char *v;
    struct dict *d = dict_open("pcre:{{/^(a+)+$/ evil}}", 0, &err);
    char key[64];

    assert_non_null(d);
    memset(key, 'a', sizeof(key) - 2);
    key[sizeof(key) - 2] = 'b';
    key[sizeof(key) - 1] = 0;
    time_t start = time(NULL);
    assert_int_equal(dict_lookup(d, key, &v), DICT_NOTFOUND);
    assert_true(time(NULL) - start < 10);
    dict_close(d);
}

/* test_reopen - a rewritten regexp file is picked up at the next lookup */
static void test_reopen(void **state)
{
    char *err = NULL;
    const char *v;
    char *path = xasprintf("%s/reopen.regexp", tmpdir);
    char *tmp = xasprintf("%s/reopen.regexp.new", tmpdir);
    char *spec = xasprintf("regexp:%s", path);

    golden_write_file(path, "/x/ old\n", strlen("/x/ old\n"));
    struct dict *d = dict_open(spec, 0, &err);
    assert_non_null(d);
    assert_int_equal(dict_lookup(d, "x", &v), DICT_FOUND);
    assert_string_equal(v, "old");
    dict_set_recheck_interval(0);
    golden_write_file(tmp, "/x/ new\n", strlen("/x/ new\n"));
    assert_int_equal(rename(tmp, path), 0);
    assert_true(dict_changed(d));
    assert_int_equal(dict_lookup(d, "x", &v), DICT_FOUND);
    assert_string_equal(v, "new");
    assert_false(dict_changed(d));
    /* Removed: the old rules stay in use. */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(dict_lookup(d, "x", &v), DICT_FOUND);
    assert_string_equal(v, "new");
    dict_set_recheck_interval(DICT_RECHECK_MS_DEFAULT);
    dict_close(d);
    free(spec);
    free(tmp);
    free(path);
}

/* setup - temporary directory and a log file for the warnings */
static int setup(void **state)
{
    log_path = golden_tmp_setup(tmpdir);
    if (log_path == NULL)
        return -1;
    table_path = xasprintf("%s/table", tmpdir);
    return 0;
}

/* teardown - remove the temporary directory */
static int teardown(void **state)
{
    free(log_path);
    free(table_path);
    return golden_tmp_remove(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_regexp), cmocka_unit_test(test_golden_pcre),
        cmocka_unit_test(test_postfix_interop), cmocka_unit_test(test_inline),
        cmocka_unit_test(test_missing_file),  cmocka_unit_test(test_match_limit),
        cmocka_unit_test(test_reopen),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
