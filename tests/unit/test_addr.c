/*
 * test_addr.c - unit and golden tests for the RFC 5321 path parser
 *
 * Golden files tests/golden/addr/valid.txt and invalid.txt hold one case
 * per line, fields separated by TAB:
 *
 *   FLAGS  INPUT  OK  ADDR  LOCAL  DOMAIN  END  7bit|8bit
 *   FLAGS  INPUT  ERR_<STATUS>  WHY
 *
 * FLAGS is "-" or letters: N (ADDR_ALLOW_NULL), U (ADDR_UTF8), L
 * (ADDR_LAX), P (ADDR_ALLOW_POSTMASTER). Fields use escapes \\ \t \{ and
 * \xHH, and {TEXT*N} for TEXT repeated N times. Lines starting with "#"
 * and blank lines are ignored. Every valid.txt case must succeed and
 * every invalid.txt case must fail. The golden directory is
 * $POSTA_SRCDIR/tests/golden (default "./tests/golden");
 * POSTA_GOLDEN_PRINT=1 prints what the parser produced, for review.
 */
#include "util/sys.h"

#include <setjmp.h>
#include <cmocka.h>

#include "mail/addr.h"
#include "util/alloc.h"
#include "util/buf.h"

#include "golden.h"

#define GOLDEN_SUBDIR "addr"
#define GOLDEN_FIELDS_MIN 3

/* parse_flags - golden FLAGS field -> ADDR_* bits */
static unsigned parse_flags(const char *s, size_t n)
{
    unsigned f = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        switch (s[i]) {
        case 'N': f |= ADDR_ALLOW_NULL; break;
        case 'U': f |= ADDR_UTF8; break;
        case 'L': f |= ADDR_LAX; break;
        case 'P': f |= ADDR_ALLOW_POSTMASTER; break;
        case '-': break;
        default: fail_msg("bad flag '%c'", s[i]);
        }
    }
    return f;
}

/* status_name - golden name of a status */
static const char *status_name(enum addr_status st)
{
    switch (st) {
    case ADDR_OK: return "OK";
    case ADDR_ERR_SYNTAX: return "ERR_SYNTAX";
    case ADDR_ERR_TOO_LONG: return "ERR_TOO_LONG";
    case ADDR_ERR_UTF8: return "ERR_UTF8";
    case ADDR_ERR_NULL: return "ERR_NULL";
    }
    return "ERR_?";
}

/* check_reparse - "<" addr ">" parses strictly to the same result */
static void check_reparse(const struct addr *a, unsigned flags)
{
    struct buf b = BUF_INIT;
    struct addr again;
    size_t end;
    const char *why;

    buf_printf(&b, "<%s>", a->addr);
    flags = (flags & ~ADDR_LAX) | ADDR_ALLOW_NULL;
    assert_int_equal(addr_parse_path(b.data, b.len, flags, &again, &end, &why), ADDR_OK);
    assert_int_equal(end, b.len);
    assert_string_equal(again.addr, a->addr);
    assert_string_equal(again.local, a->local);
    assert_string_equal(again.domain, a->domain);
    addr_free(&again);
    buf_free(&b);
}

/* run_case - parse one input, render the result as a golden line tail */
static enum addr_status run_case(const struct buf *in, unsigned flags, struct buf *got)
{
    struct addr a;
    size_t end = 0;
    const char *why = NULL;
    enum addr_status st;

    st = addr_parse_path(in->data ? in->data : "", in->len, flags, &a, &end, &why);
    buf_puts(got, status_name(st));
    if (st == ADDR_OK) {
        assert_true(end <= in->len);
        buf_putc(got, '\t');
        golden_render(got, a.addr, strlen(a.addr));
        buf_putc(got, '\t');
        golden_render(got, a.local, strlen(a.local));
        buf_putc(got, '\t');
        golden_render(got, a.domain, strlen(a.domain));
        buf_printf(got, "\t%zu\t%s", end, a.has_8bit ? "8bit" : "7bit");
        check_reparse(&a, flags);
        addr_free(&a);
    } else {
        assert_non_null(why);
        assert_true(why[0] != 0);
        assert_null(a.addr);
        buf_printf(got, "\t%s", why);
    }
    return st;
}

/* run_golden - every case of one file; want_ok says which outcome is required */
static void run_golden(const char *name, bool want_ok)
{
    struct golden_lines g;
    char *line, *t1, *t2;

    golden_lines_open(&g, GOLDEN_SUBDIR, name);
    while ((line = golden_lines_next(&g)) != NULL) {
        struct buf in = BUF_INIT, want = BUF_INIT, got = BUF_INIT;
        enum addr_status st;

        golden_lines_fields(&g, &t1, &t2, GOLDEN_FIELDS_MIN);
        golden_expand(t1 + 1, (size_t)(t2 - t1 - 1), true, &in);
        golden_expand(t2 + 1, strlen(t2 + 1), false, &want);
        st = run_case(&in, parse_flags(line, (size_t)(t1 - line)), &got);
        if (g.print)
            printf("%.*s\t%s\n", (int)(t2 - line), line, buf_str(&got));
        if (golden_lines_check(&g, t1 + 1, (int)(t2 - t1 - 1), buf_str(&want), buf_str(&got))
            == 0 && (st == ADDR_OK) != want_ok) {
            print_message("%s:%zu: case belongs in the other file\n", g.path, g.lineno);
            g.failures++;
        }
        buf_free(&in);
        buf_free(&want);
        buf_free(&got);
    }
    golden_lines_close(&g);
}

/* test_golden_valid - valid.txt */
static void test_golden_valid(void **state)
{
    run_golden("valid.txt", true);
}

/* test_golden_invalid - invalid.txt */
static void test_golden_invalid(void **state)
{
    run_golden("invalid.txt", false);
}

/* test_utf8_valid - well-formed and ill-formed UTF-8 */
static void test_utf8_valid(void **state)
{
    static const struct {
        const char *s;
        size_t len;
        bool ok;
    } cases[] = {
        {"", 0, true},
        {"plain ascii", 11, true},
        {"\0", 1, true},
        {"\xc3\xa9", 2, true},                 /* U+00E9 */
        {"\xc2\x80", 2, true},                 /* U+0080 */
        {"\xdf\xbf", 2, true},                 /* U+07FF */
        {"\xe0\xa0\x80", 3, true},             /* U+0800 */
        {"\xed\x9f\xbf", 3, true},             /* U+D7FF */
        {"\xee\x80\x80", 3, true},             /* U+E000 */
        {"\xef\xbf\xbf", 3, true},             /* U+FFFF */
        {"\xf0\x90\x80\x80", 4, true},         /* U+10000 */
        {"\xf4\x8f\xbf\xbf", 4, true},         /* U+10FFFF */
        {"\xc0\x80", 2, false},                /* overlong NUL */
        {"\xc1\xbf", 2, false},                /* overlong */
        {"\xe0\x9f\xbf", 3, false},            /* overlong */
        {"\xf0\x8f\xbf\xbf", 4, false},        /* overlong */
        {"\xed\xa0\x80", 3, false},            /* U+D800 surrogate */
        {"\xed\xbf\xbf", 3, false},            /* U+DFFF surrogate */
        {"\xf4\x90\x80\x80", 4, false},        /* U+110000 */
        {"\xf5\x80\x80\x80", 4, false},
        {"\xff", 1, false},
        {"\x80", 1, false},                    /* lone continuation */
        {"\xc3", 1, false},                    /* truncated */
        {"\xe2\x82", 2, false},                /* truncated */
        {"\xc3\x28", 2, false},                /* bad continuation */
        {"a\xc3\xa9z\xe2\x82\xac", 7, true},
    };
    size_t i;

    for (i = 0; i < POSTA_ARRAY_LEN(cases); i++) {
        if (utf8_valid(cases[i].s, cases[i].len) != cases[i].ok)
            fail_msg("utf8_valid case %zu", i);
    }
}

/* test_quote_local - quoting only when the local part is no dot-string */
static void test_quote_local(void **state)
{
    static const char *const cases[][2] = {
        {"user", "user"},
        {"first.last", "first.last"},
        {"a+b=c", "a+b=c"},
        {"", "\"\""},
        {"a b", "\"a b\""},
        {".a", "\".a\""},
        {"a.", "\"a.\""},
        {"a..b", "\"a..b\""},
        {"a\"b", "\"a\\\"b\""},
        {"a\\b", "\"a\\\\b\""},
        {"a@b", "\"a@b\""},
        {"j\xc3\xbcrgen", "j\xc3\xbcrgen"},
    };
    size_t i;
    char *q, *text;
    struct addr a;
    const char *why;

    for (i = 0; i < POSTA_ARRAY_LEN(cases); i++) {
        q = addr_quote_local(cases[i][0]);
        assert_string_equal(q, cases[i][1]);
        /* the quoted form parses back to the same internal local part */
        text = xasprintf("<%s@example.com>", q);
        assert_int_equal(addr_parse_path(text, strlen(text), ADDR_UTF8, &a, NULL, &why),
                         ADDR_OK);
        assert_string_equal(a.local, cases[i][0]);
        addr_free(&a);
        free(text);
        free(q);
    }
}

/* test_domain_valid - addr_domain_valid on domains and literals */
static void test_domain_valid(void **state)
{
    struct buf b = BUF_INIT;
    size_t i;

    assert_true(addr_domain_valid("example.com", false));
    assert_true(addr_domain_valid("localhost", false));
    assert_true(addr_domain_valid("xn--bcher-kva.example", false));
    assert_true(addr_domain_valid("[192.0.2.1]", false));
    assert_true(addr_domain_valid("[IPv6:2001:db8::1]", false));
    assert_true(addr_domain_valid("b\xc3\xbc" "cher.example", true));
    assert_false(addr_domain_valid("b\xc3\xbc" "cher.example", false));
    assert_false(addr_domain_valid("", false));
    assert_false(addr_domain_valid("example.com.", false));
    assert_false(addr_domain_valid(".example.com", false));
    assert_false(addr_domain_valid("-a.example", false));
    assert_false(addr_domain_valid("a-.example", false));
    assert_false(addr_domain_valid("a_b.example", false));
    assert_false(addr_domain_valid("[192.0.2.256]", false));
    assert_false(addr_domain_valid("[IPv6:2001:db8::1::2]", false));
    assert_false(addr_domain_valid("example.com ", false));
    /* 255 octets is the limit (four labels: 63+1+63+1+63+1+63) */
    for (i = 0; i < 4; i++) {
        if (i > 0)
            buf_putc(&b, '.');
        buf_printf(&b, "%.63s", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    }
    assert_int_equal(b.len, 255);
    assert_true(addr_domain_valid(b.data, false));
    buf_putc(&b, 'a');                 /* last label 64 octets */
    assert_false(addr_domain_valid(b.data, false));
    buf_truncate(&b, 254);
    buf_puts(&b, ".a");                /* 256 octets, labels fine */
    assert_int_equal(b.len, 256);
    assert_false(addr_domain_valid(b.data, false));
    buf_free(&b);
}

/* test_lengths - the 64/255/256 limits and where they bite */
static void test_lengths(void **state)
{
    static const char dlabel[] = "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";
    struct buf b = BUF_INIT;
    struct addr a;
    const char *why;
    size_t i;

    /* 64-octet local part + "@" + 189-octet domain = 254: path of 256 */
    buf_putc(&b, '<');
    for (i = 0; i < 64; i++)
        buf_putc(&b, 'l');
    buf_putc(&b, '@');
    for (i = 0; i < 2; i++)
        buf_printf(&b, "%.62s.", dlabel);
    buf_printf(&b, "%.60s.co>", dlabel);
    assert_int_equal(b.len, 256);
    assert_int_equal(addr_parse_path(b.data, b.len, 0, &a, NULL, &why), ADDR_OK);
    assert_int_equal(strlen(a.addr), 254);
    assert_int_equal(strlen(a.domain), 189);
    addr_free(&a);
    /* one more octet in the domain: 257 */
    buf_truncate(&b, b.len - 1);
    buf_puts(&b, "m>");
    assert_int_equal(b.len, 257);
    assert_int_equal(addr_parse_path(b.data, b.len, 0, &a, NULL, &why), ADDR_ERR_TOO_LONG);
    assert_string_equal(why, "address too long");
    /* the same without brackets in lax mode */
    assert_int_equal(addr_parse_path(b.data + 1, b.len - 2, ADDR_LAX, &a, NULL, &why),
                     ADDR_ERR_TOO_LONG);
    buf_free(&b);
}

/* test_embedded_nul - input is length-delimited; NUL inside is refused */
static void test_embedded_nul(void **state)
{
    static const char text[] = "<a\0b@example.com>";
    struct addr a;
    const char *why;
    size_t end;

    assert_int_equal(addr_parse_path(text, sizeof(text) - 1, 0, &a, &end, &why),
                     ADDR_ERR_SYNTAX);
    assert_string_equal(why, "NUL character in address");
    assert_int_equal(end, 2);
    assert_null(a.addr);
    addr_free(&a);                     /* safe on a failed result */
    /* a parse stops at len even when the text goes on */
    assert_int_equal(addr_parse_path("<a@b>junk", 5, 0, &a, &end, &why), ADDR_OK);
    assert_int_equal(end, 5);
    addr_free(&a);
}

/* main - run the tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_valid),
        cmocka_unit_test(test_golden_invalid),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_quote_local),
        cmocka_unit_test(test_domain_valid),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_embedded_nul),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
