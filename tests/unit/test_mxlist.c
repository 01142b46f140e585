/*
 * test_mxlist.c - unit tests for MX ordering, Null MX and loop avoidance
 *
 * Ordering is checked with a deterministic rnd (scripted choices) and
 * with the default random(): every order of a group of equal
 * preference must turn up, each about equally often, and never an
 * order that mixes preferences.
 */
#include "util/sys.h"

#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "mail/mxlist.h"
#include "util/alloc.h"
#include "util/buf.h"

#define SHUFFLE_ROUNDS 6000
#define PERMUTATIONS_OF_3 6
#define SHUFFLE_MIN_SHARE 700     /* of 1000 expected per order: far below chance */
#define HUGE_RND 0xfffffffu

static unsigned script[16];
static size_t script_len, script_pos;

/* scripted_rnd - the next scripted choice (modulo bound; 0 when the script runs out) */
static unsigned scripted_rnd(unsigned bound)
{
    unsigned v = script_pos < script_len ? script[script_pos] : 0;

    script_pos++;
    return v % bound;
}

/* huge_rnd - a broken generator that ignores its bound */
static unsigned huge_rnd(unsigned bound)
{
    return HUGE_RND;
}

/* hosts - the ordered list as "host/pref host/pref ..." */
static char *hosts(const struct mxhost *list, size_t n)
{
    struct buf b = BUF_INIT;
    size_t i;

    for (i = 0; i < n; i++)
        buf_printf(&b, "%s%s/%u", i ? " " : "", list[i].host, list[i].pref);
    buf_puts(&b, "");
    return buf_steal(&b);
}

/* order - run mxlist_order on records and return its rendering (or the status) */
static char *order(const struct dns_mx *mx, size_t n, const char *const *self, size_t nself,
                   unsigned (*rnd)(unsigned), enum mxlist_status *st)
{
    struct mxhost *list = NULL;
    size_t nlist = 99;
    char *s;

    *st = mxlist_order(mx, n, self, nself, rnd, &list, &nlist);
    if (*st != MXLIST_OK) {
        assert_null(list);
        assert_int_equal(nlist, 0);
        return xstrdup(*st == MXLIST_NULLMX ? "NULLMX" : "SELF");
    }
    s = hosts(list, nlist);
    mxlist_free(list, nlist);
    return s;
}

/* test_sorted - lowest preference first; scripted rnd decides ties */
static void test_sorted(void **state)
{
    struct dns_mx mx[] = {{20, "c"}, {10, "a"}, {30, "d"}, {10, "b"}, {20, "e"}};
    enum mxlist_status st;
    char *s;

    script_len = 0;
    script_pos = 0;
    s = order(mx, POSTA_ARRAY_LEN(mx), NULL, 0, scripted_rnd, &st);
    assert_int_equal(st, MXLIST_OK);
    /* rnd 0 for each step: Fisher-Yates swaps the last with the first */
    assert_string_equal(s, "b/10 a/10 e/20 c/20 d/30");
    free(s);

    script[0] = 1;                /* keep b last in the 10 group */
    script[1] = 1;                /* keep e last in the 20 group */
    script_len = 2;
    script_pos = 0;
    s = order(mx, POSTA_ARRAY_LEN(mx), NULL, 0, scripted_rnd, &st);
    assert_string_equal(s, "a/10 b/10 c/20 e/20 d/30");
    assert_int_equal(script_pos, 2);   /* one draw per group of two */
    free(s);
}

/* test_shuffle_uniform - every order of three equal records appears, evenly */
static void test_shuffle_uniform(void **state)
{
    static const char *const perms[PERMUTATIONS_OF_3] = {
        "x/5 a/10 b/10 c/10", "x/5 a/10 c/10 b/10", "x/5 b/10 a/10 c/10",
        "x/5 b/10 c/10 a/10", "x/5 c/10 a/10 b/10", "x/5 c/10 b/10 a/10",
    };
    struct dns_mx mx[] = {{10, "a"}, {10, "b"}, {5, "x"}, {10, "c"}};
    unsigned count[PERMUTATIONS_OF_3] = {0};
    enum mxlist_status st;
    size_t round, i;
    char *s;

    srandom(1);
    for (round = 0; round < SHUFFLE_ROUNDS; round++) {
        s = order(mx, POSTA_ARRAY_LEN(mx), NULL, 0, NULL, &st);
        for (i = 0; i < PERMUTATIONS_OF_3 && strcmp(s, perms[i]) != 0; i++)
            continue;
        if (i == PERMUTATIONS_OF_3)
            fail_msg("unexpected order %s", s);
        count[i]++;
        free(s);
    }
    for (i = 0; i < PERMUTATIONS_OF_3; i++)
        assert_true(count[i] >= SHUFFLE_MIN_SHARE);
}

/* test_bad_rnd - a generator that ignores its bound cannot index outside */
static void test_bad_rnd(void **state)
{
    struct dns_mx mx[] = {{10, "a"}, {10, "b"}, {10, "c"}};
    enum mxlist_status st;
    char *s = order(mx, POSTA_ARRAY_LEN(mx), NULL, 0, huge_rnd, &st);

    assert_int_equal(st, MXLIST_OK);
    assert_int_equal(strlen(s), strlen("a/10 b/10 c/10"));
    assert_non_null(strstr(s, "a/10"));
    assert_non_null(strstr(s, "b/10"));
    assert_non_null(strstr(s, "c/10"));
    free(s);
}

/* test_null_mx - RFC 7505: one "." record; mixed with others it is ignored */
static void test_null_mx(void **state)
{
    struct dns_mx one[] = {{0, ""}};
    struct dns_mx dot[] = {{10, "."}};
    struct dns_mx two[] = {{0, ""}, {0, ""}};
    struct dns_mx mixed[] = {{0, ""}, {10, "mx.example"}};
    enum mxlist_status st;
    char *s;

    s = order(one, 1, NULL, 0, NULL, &st);
    assert_int_equal(st, MXLIST_NULLMX);
    free(s);
    s = order(dot, 1, NULL, 0, NULL, &st);
    assert_int_equal(st, MXLIST_NULLMX);
    free(s);
    s = order(two, 2, NULL, 0, NULL, &st);
    assert_int_equal(st, MXLIST_NULLMX);
    free(s);
    s = order(mixed, 2, NULL, 0, NULL, &st);
    assert_int_equal(st, MXLIST_OK);
    assert_string_equal(s, "mx.example/10");
    free(s);
    /* an empty answer is not a Null MX */
    s = order(NULL, 0, NULL, 0, NULL, &st);
    assert_int_equal(st, MXLIST_OK);
    assert_string_equal(s, "");
    free(s);
}

/* test_self - loop avoidance by name */
static void test_self(void **state)
{
    static const char *const self[] = {"", "mx1.example.com.", "localhost"};
    struct dns_mx best[] = {{20, "backup.example"}, {10, "MX1.Example.COM"}};
    struct dns_mx backup[] = {
        {30, "c.example"}, {10, "a.example"}, {20, "mx1.example.com"}, {20, "b.example"}};
    struct dns_mx equal[] = {{10, "a.example"}, {10, "mx1.example.com."}};
    struct dns_mx other[] = {{10, "mx1.example.com.evil"}, {20, "xmx1.example.com"}};
    enum mxlist_status st;
    char *s;

    s = order(best, POSTA_ARRAY_LEN(best), self, POSTA_ARRAY_LEN(self), NULL, &st);
    assert_int_equal(st, MXLIST_SELF);
    free(s);
    s = order(backup, POSTA_ARRAY_LEN(backup), self, POSTA_ARRAY_LEN(self), NULL, &st);
    assert_int_equal(st, MXLIST_OK);
    assert_string_equal(s, "a.example/10");
    free(s);
    s = order(equal, POSTA_ARRAY_LEN(equal), self, POSTA_ARRAY_LEN(self), NULL, &st);
    assert_int_equal(st, MXLIST_SELF);
    free(s);
    s = order(other, POSTA_ARRAY_LEN(other), self, POSTA_ARRAY_LEN(self), NULL, &st);
    assert_int_equal(st, MXLIST_OK);
    assert_string_equal(s, "mx1.example.com.evil/10 xmx1.example.com/20");
    free(s);
}

/* make_list - a list as mxlist_order returns it */
static struct mxhost *make_list(size_t *n)
{
    struct dns_mx mx[] = {{10, "a"}, {20, "b"}, {20, "c"}, {30, "d"}};
    struct mxhost *list;

    script_len = 1;
    script[0] = 1;               /* b before c */
    script_pos = 0;
    assert_int_equal(mxlist_order(mx, POSTA_ARRAY_LEN(mx), NULL, 0, scripted_rnd, &list, n),
                     MXLIST_OK);
    return list;
}

/* test_cut_self - by address: drop that host and all not better */
static void test_cut_self(void **state)
{
    struct mxhost *list;
    size_t n;
    char *s;

    list = make_list(&n);
    n = mxlist_cut_self(list, n, 2);
    s = hosts(list, n);
    assert_string_equal(s, "a/10");
    free(s);
    mxlist_free(list, n);

    list = make_list(&n);
    n = mxlist_cut_self(list, n, 3);
    s = hosts(list, n);
    assert_string_equal(s, "a/10 b/20 c/20");
    free(s);
    mxlist_free(list, n);

    list = make_list(&n);
    assert_int_equal(mxlist_cut_self(list, n, 0), 0);
    mxlist_free(list, 0);

    /* freeing with the old length is harmless too */
    list = make_list(&n);
    mxlist_cut_self(list, n, 1);
    mxlist_free(list, n);
    mxlist_free(NULL, 0);
}

/* main - run the tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sorted),
        cmocka_unit_test(test_shuffle_uniform),
        cmocka_unit_test(test_bad_rnd),
        cmocka_unit_test(test_null_mx),
        cmocka_unit_test(test_self),
        cmocka_unit_test(test_cut_self),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
