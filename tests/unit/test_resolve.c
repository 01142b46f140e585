/*
 * test_resolve.c - golden tests for recipient routing (mail/resolve.h)
 *
 * tests/golden/resolve/NAME.cf is a main.cf, NAME.in one recipient address
 * per line (blank lines and '#' comments skipped), NAME.out the expected
 * answers, one line per address:
 *     ADDRESS<TAB>TRANSPORT<TAB>NEXTHOP<TAB>RESOLVED-ADDRESS
 * The golden directory is $POSTA_SRCDIR/tests/golden (default
 * "./tests/golden"); POSTA_GOLDEN_PRINT=1 prints what the resolver
 * produced, for review. A unit test also checks that a different answer
 * makes the comparison fail.
 */
#include "util/sys.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "mail/config.h"
#include "mail/resolve.h"
#include "util/alloc.h"
#include "util/buf.h"

#define SUFFIX_CF ".cf"
#define MAX_CASES 100

/* golden_dir - where the golden files are */
static char *golden_dir(void)
{
    const char *src = getenv("POSTA_SRCDIR");

    return xasprintf("%s/tests/golden/resolve", src && *src ? src : ".");
}

/* slurp - a whole file into b; false if unreadable */
static bool slurp(const char *path, struct buf *b)
{
    FILE *f = fopen(path, "r");
    char chunk[4096];
    size_t n;

    buf_reset(b);
    if (f == NULL)
        return false;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_append(b, chunk, n);
    fclose(f);
    return true;
}

/* run_case - resolve every address of NAME.in under NAME.cf into out */
static void run_case(const char *dir, const char *name, struct buf *out)
{
    struct buf text = BUF_INIT, in = BUF_INIT;
    char *path = xasprintf("%s/%s.cf", dir, name);
    char *err = NULL;
    struct cfg *cfg;
    struct resolver *r;

    assert_true(slurp(path, &text));
    cfg = cfg_load_string(text.data, text.len, path, &err);
    if (cfg == NULL)
        fail_msg("%s: %s", path, err);
    free(path);
    path = xasprintf("%s/%s.in", dir, name);
    assert_true(slurp(path, &in));
    r = resolver_open(cfg);
    for (char *line = in.data, *next; line && *line; line = next) {
        struct resolve_result res;
        const char *why = NULL;

        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        if (*line == 0 || *line == '#')
            continue;
        if (resolve_rcpt(r, line, &res, &why) != RESOLVE_OK) {
            buf_printf(out, "%s\ttempfail\t%s\n", line, why);
            continue;
        }
        buf_printf(out, "%s\t%s\t%s\t%s\n", line, res.transport, res.nexthop, res.address);
        resolve_result_free(&res);
    }
    resolver_close(r);
    cfg_free(cfg);
    free(path);
    buf_free(&text);
    buf_free(&in);
}

/* test_golden - every NAME.cf in the golden directory */
static void test_golden(void **state)
{
    char *dir = golden_dir();
    DIR *d = opendir(dir);
    struct dirent *e;
    int cases = 0;

    (void)state;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        struct buf got = BUF_INIT, want = BUF_INIT;
        char *name, *path;

        if (len <= strlen(SUFFIX_CF) || strcmp(e->d_name + len - strlen(SUFFIX_CF), SUFFIX_CF))
            continue;
        name = xstrndup(e->d_name, len - strlen(SUFFIX_CF));
        run_case(dir, name, &got);
        if (getenv("POSTA_GOLDEN_PRINT"))
            printf("== %s\n%s", name, buf_str(&got));
        path = xasprintf("%s/%s.out", dir, name);
        assert_true(slurp(path, &want));
        if (strcmp(buf_str(&got), buf_str(&want)) != 0)
            fail_msg("%s: resolver output differs from %s:\n%s", name, path, buf_str(&got));
        cases++;
        free(path);
        free(name);
        buf_free(&got);
        buf_free(&want);
    }
    closedir(d);
    free(dir);
    assert_true(cases > 0 && cases < MAX_CASES);
}

/* test_detects_change - a changed main.cf gives a different answer */
static void test_detects_change(void **state)
{
    static const char text[] = "myhostname = mx.example.org\n"
                               "mydestination = $myhostname\n"
                               "transport_maps = inline:{ a.example=discard }\n";
    char *err = NULL;
    struct cfg *cfg = cfg_load_string(text, strlen(text), "t", &err);
    struct resolver *r;
    struct resolve_result res;
    const char *why;

    (void)state;
    assert_non_null(cfg);
    r = resolver_open(cfg);
    assert_int_equal(resolve_rcpt(r, "u@a.example", &res, &why), RESOLVE_OK);
    assert_string_equal(res.transport, "discard");
    assert_string_equal(res.nexthop, "");
    resolve_result_free(&res);
    assert_int_equal(resolve_rcpt(r, "u@sub.a.example", &res, &why), RESOLVE_OK);
    assert_string_equal(res.transport, "smtp");
    assert_string_equal(res.nexthop, "sub.a.example");
    resolve_result_free(&res);
    assert_int_equal(resolve_rcpt(r, "U", &res, &why), RESOLVE_OK);
    assert_string_equal(res.address, "U@mx.example.org");
    assert_string_equal(res.transport, "local");
    assert_string_equal(res.nexthop, "mx.example.org");
    resolve_result_free(&res);
    resolver_close(r);
    cfg_free(cfg);
}

/* main - run the tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_detects_change),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
