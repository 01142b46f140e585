/*
 * test_cidr.c - unit and golden tests for IPv4/IPv6 network parsing
 *
 * Golden files (TAB-separated, '#' comment lines):
 *   tests/golden/cidr/parse.txt   INPUT  "ok CANON" | "hostbits CANON" | "bad"
 *   tests/golden/cidr/match.txt   NETWORK  ADDRESS  yes|no
 * The golden directory is $POSTA_SRCDIR/tests/golden (default
 * "./tests/golden").
 */
#include "util/sys.h"

#include <arpa/inet.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/cidr.h"

#define GOLDEN_LINE_MAX 1024

/* golden_open - open a file under the golden directory */
static FILE *golden_open(const char *name)
{
    const char *src = getenv("POSTA_SRCDIR");
    char *path = xasprintf("%s/tests/golden/%s", src ? src : ".", name);
    FILE *fp = fopen(path, "r");

    if (fp == NULL)
        fail_msg("open %s: %s", path, strerror(errno));
    free(path);
    return fp;
}

/* split_tabs - split line in place on TABs; returns the field count */
static int split_tabs(char *line, char **field, int max)
{
    int n = 0;

    line[strcspn(line, "\r\n")] = 0;
    field[n++] = line;
    for (char *p = line; *p && n < max; p++)
        if (*p == '\t') {
            *p = 0;
            field[n++] = p + 1;
        }
    return n;
}

/* parse_result - what the parser says about text, in golden form */
static void parse_result(const char *text, char *out, size_t size)
{
    struct cidr c;
    char canon[CIDR_TEXT_MAX];

    switch (cidr_parse_status(text, &c)) {
    case CIDR_OK:
        snprintf(out, size, "ok %s", cidr_format(&c, canon, sizeof(canon)));
        break;
    case CIDR_HOSTBITS:
        snprintf(out, size, "hostbits %s", cidr_format(&c, canon, sizeof(canon)));
        break;
    default:
        snprintf(out, size, "bad");
        break;
    }
}

/* test_golden_parse - parse.txt */
static void test_golden_parse(void **state)
{
    FILE *fp = golden_open("cidr/parse.txt");
    char line[GOLDEN_LINE_MAX], got[GOLDEN_LINE_MAX];
    char *f[3];
    int lineno = 0, cases = 0, bad = 0;

    while (fgets(line, sizeof(line), fp)) {
        lineno++;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        assert_int_equal(split_tabs(line, f, 3), 2);
        parse_result(f[0], got, sizeof(got));
        if (strcmp(got, f[1]) != 0) {
            print_error("parse.txt:%d: \"%s\": expected \"%s\", got \"%s\"\n", lineno, f[0],
                        f[1], got);
            bad++;
        }
        cases++;
    }
    fclose(fp);
    assert_true(cases > 20);
    assert_int_equal(bad, 0);
}

/* test_golden_match - match.txt */
static void test_golden_match(void **state)
{
    FILE *fp = golden_open("cidr/match.txt");
    char line[GOLDEN_LINE_MAX];
    char *f[4];
    int lineno = 0, cases = 0, bad = 0;

    while (fgets(line, sizeof(line), fp)) {
        struct cidr c;
        lineno++;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        assert_int_equal(split_tabs(line, f, 4), 3);
        assert_true(cidr_parse(f[0], &c));
        const char *got = cidr_match_text(&c, f[1]) ? "yes" : "no";
        if (strcmp(got, f[2]) != 0) {
            print_error("match.txt:%d: %s in %s: expected %s, got %s\n", lineno, f[1], f[0],
                        f[2], got);
            bad++;
        }
        cases++;
    }
    fclose(fp);
    assert_true(cases > 20);
    assert_int_equal(bad, 0);
}

/* test_binary - cidr_match on binary addresses, both families */
static void test_binary(void **state)
{
    struct cidr c;
    uint8_t v4[4], v6[16];

    assert_true(cidr_parse("192.0.2.0/24", &c));
    assert_int_equal(c.family, AF_INET);
    assert_int_equal(c.prefix, 24);
    assert_int_equal(inet_pton(AF_INET, "192.0.2.77", v4), 1);
    assert_true(cidr_match(&c, AF_INET, v4));
    assert_int_equal(inet_pton(AF_INET6, "::ffff:192.0.2.77", v6), 1);
    assert_true(cidr_match(&c, AF_INET6, v6));
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", v6), 1);
    assert_false(cidr_match(&c, AF_INET6, v6));

    /* cidr_parse is lenient about host bits and clears them */
    assert_true(cidr_parse("192.0.2.77/24", &c));
    assert_int_equal(c.addr[3], 0);
}

/* test_addr_parse - single addresses, lengths refused */
static void test_addr_parse(void **state)
{
    int family;
    uint8_t a[16];

    assert_true(cidr_addr_parse("10.1.2.3", &family, a));
    assert_int_equal(family, AF_INET);
    assert_int_equal(a[0], 10);
    assert_true(cidr_addr_parse("[2001:db8::5]", &family, a));
    assert_int_equal(family, AF_INET6);
    assert_int_equal(a[15], 5);
    assert_false(cidr_addr_parse("10.1.2.3/32", &family, a));
    assert_false(cidr_addr_parse("[]", &family, a));
    assert_false(cidr_addr_parse("", &family, a));

    /* longer than any address: refused without overflow */
    char big[CIDR_TEXT_MAX * 2];
    memset(big, '1', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    assert_false(cidr_addr_parse(big, &family, a));
    struct cidr c;
    assert_int_equal(cidr_parse_status(big, &c), CIDR_BAD);
}

/* main - run the tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_parse),
        cmocka_unit_test(test_golden_match),
        cmocka_unit_test(test_binary),
        cmocka_unit_test(test_addr_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
