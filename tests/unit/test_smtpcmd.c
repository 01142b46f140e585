/*
 * test_smtpcmd.c - unit and golden tests for SMTP command-line parsing
 *
 * Golden files in tests/golden/smtpcmd/, one case per line, fields
 * separated by TAB (escapes \\ \t \{ \xHH and {TEXT*N} repeats as in
 * golden.h; "#" lines and blank lines are ignored):
 *
 *   split.txt     LINE  VERB|?  ARG
 *       smtpcmd_split against a fixed verb table.
 *   mailrcpt.txt  FLAGS  ARG  OK  ADDR  PARAMS
 *                 FLAGS  ARG  ERR_<ADDR STATUS>|ERR_PARAM|ERR_VERB  WHY
 *       The argument of MAIL ("FROM:...") or RCPT ("TO:..."), parsed the
 *       way smtpd does: addr_parse_path (MAIL allows <>, RCPT allows
 *       <Postmaster>), then smtpcmd_params on what follows. FLAGS: "-",
 *       U (SMTPUTF8: ADDR_UTF8 and UTF-8 values), L (ADDR_LAX). PARAMS
 *       is "-" or KEY[=VALUE] separated by one space.
 *   xtext.txt     dec|enc  INPUT  OK  OUTPUT
 *                 dec      INPUT  ERR
 *
 * The golden directory is $POSTA_SRCDIR/tests/golden (default
 * "./tests/golden"); POSTA_GOLDEN_PRINT=1 prints what was produced.
 */
#include "util/sys.h"

#include <setjmp.h>
#include <cmocka.h>
#include <strings.h>

#include "mail/addr.h"
#include "mail/smtpcmd.h"
#include "util/alloc.h"
#include "util/buf.h"

#include "golden.h"

#define GOLDEN_SUBDIR "smtpcmd"
#define GOLDEN_FIELDS_MIN 3
#define BYTE_VALUES 256

static const char *const verbs[] = {
    "HELO", "EHLO", "MAIL", "RCPT", "DATA", "RSET",
    "NOOP", "QUIT", "VRFY", "STARTTLS", "AUTH", "BDAT",
};

/* addr_status_name - golden name of an address status */
static const char *addr_status_name(enum addr_status st)
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

/* check_params - invariants of a successful smtpcmd_params result */
static void check_params(const struct smtp_params *p)
{
    size_t i, j;

    assert_true(p->n <= SMTP_PARAMS_MAX);
    for (i = 0; i < p->n; i++) {
        for (j = 0; p->p[i].key[j] != 0; j++)
            assert_false(p->p[i].key[j] >= 'a' && p->p[i].key[j] <= 'z');
        assert_ptr_equal(smtpcmd_param_get(p, p->p[i].key), &p->p[i]);
        for (j = 0; j < i; j++)
            assert_int_not_equal(strcmp(p->p[i].key, p->p[j].key), 0);
    }
}

/* case_mailrcpt - one MAIL/RCPT argument, result rendered into got */
static void case_mailrcpt(const char *flags, const char *arg, size_t len, struct buf *got)
{
    unsigned af = 0;
    bool utf8 = strchr(flags, 'U') != NULL;
    struct smtp_params params;
    struct addr a;
    const char *why = NULL;
    size_t end, skip, i;
    enum addr_status st;

    if (utf8)
        af |= ADDR_UTF8;
    if (strchr(flags, 'L') != NULL)
        af |= ADDR_LAX;
    if (len >= 5 && strncasecmp(arg, "FROM:", 5) == 0) {
        skip = 5;
        af |= ADDR_ALLOW_NULL;
    } else if (len >= 3 && strncasecmp(arg, "TO:", 3) == 0) {
        skip = 3;
        af |= ADDR_ALLOW_POSTMASTER;
    } else {
        buf_puts(got, "ERR_VERB\tsyntax: MAIL FROM:<address> or RCPT TO:<address>");
        return;
    }
    st = addr_parse_path(arg + skip, len - skip, af, &a, &end, &why);
    if (st != ADDR_OK) {
        buf_printf(got, "%s\t%s", addr_status_name(st), why);
        return;
    }
    assert_true(end <= len - skip);
    /* the parameters are a C string: the line reader refuses NUL */
    if (memchr(arg + skip + end, 0, len - skip - end) != NULL) {
        buf_puts(got, "ERR_PARAM\tNUL in line");
        addr_free(&a);
        return;
    }
    if (!smtpcmd_params(arg + skip + end, utf8, &params, &why)) {
        assert_int_equal(params.n, 0);
        buf_printf(got, "ERR_PARAM\t%s", why);
        addr_free(&a);
        return;
    }
    check_params(&params);
    buf_puts(got, "OK\t");
    golden_render(got, a.addr, strlen(a.addr));
    buf_putc(got, '\t');
    if (params.n == 0)
        buf_putc(got, '-');
    for (i = 0; i < params.n; i++) {
        if (i > 0)
            buf_putc(got, ' ');
        golden_render(got, params.p[i].key, strlen(params.p[i].key));
        if (params.p[i].value != NULL) {
            buf_putc(got, '=');
            golden_render(got, params.p[i].value, strlen(params.p[i].value));
        }
    }
    smtpcmd_params_free(&params);
    addr_free(&a);
}

/* case_split - one command line through smtpcmd_split */
static void case_split(const char *line, struct buf *got)
{
    const char *arg = NULL;
    int i = smtpcmd_split(line, verbs, POSTA_ARRAY_LEN(verbs), &arg);

    assert_non_null(arg);
    assert_true(arg >= line && arg <= line + strlen(line));
    buf_puts(got, i < 0 ? "?" : verbs[i]);
    buf_putc(got, '\t');
    golden_render(got, arg, strlen(arg));
}

/* case_xtext - one xtext decode or encode */
static void case_xtext(const char *mode, const char *in, struct buf *got)
{
    char *out = NULL, *back, *again;

    if (strcmp(mode, "dec") == 0) {
        out = xtext_decode(in);
        if (out == NULL) {
            buf_puts(got, "ERR");
            return;
        }
        /* decoding what was encoded gives the text back */
        back = xtext_encode(out);
        again = xtext_decode(back);
        assert_non_null(again);
        assert_string_equal(again, out);
        free(again);
        free(back);
    } else if (strcmp(mode, "enc") == 0) {
        out = xtext_encode(in);
        back = xtext_decode(out);
        assert_non_null(back);
        assert_string_equal(back, in);
        free(back);
    } else {
        fail_msg("bad xtext mode %s", mode);
    }
    buf_puts(got, "OK\t");
    golden_render(got, out, strlen(out));
    free(out);
}

/* run_golden - every case of one golden file */
static void run_golden(const char *name)
{
    struct golden_lines g;
    char *line, *t1, *t2;
    bool split = strcmp(name, "split.txt") == 0;

    golden_lines_open(&g, GOLDEN_SUBDIR, name);
    while ((line = golden_lines_next(&g)) != NULL) {
        struct buf f0 = BUF_INIT, f1 = BUF_INIT, want = BUF_INIT, got = BUF_INIT;

        golden_lines_fields(&g, &t1, &t2, GOLDEN_FIELDS_MIN);
        golden_expand(line, (size_t)(t1 - line), true, &f0);
        golden_expand(t1 + 1, (size_t)(t2 - t1 - 1), true, &f1);
        if (split) {
            /* LINE VERB ARG: the expectation is the second and third fields */
            golden_expand(t1 + 1, strlen(t1 + 1), false, &want);
            case_split(buf_str(&f0), &got);
        } else if (strcmp(name, "mailrcpt.txt") == 0) {
            golden_expand(t2 + 1, strlen(t2 + 1), false, &want);
            case_mailrcpt(buf_str(&f0), buf_str(&f1), f1.len, &got);
        } else {
            golden_expand(t2 + 1, strlen(t2 + 1), false, &want);
            case_xtext(buf_str(&f0), buf_str(&f1), &got);
        }
        if (g.print)
            printf("%.*s\t%s\n", (int)((split ? t1 : t2) - line), line, buf_str(&got));
        golden_lines_check(&g, line, (int)strlen(line), buf_str(&want), buf_str(&got));
        buf_free(&f0);
        buf_free(&f1);
        buf_free(&want);
        buf_free(&got);
    }
    golden_lines_close(&g);
}

/* test_golden_split - split.txt */
static void test_golden_split(void **state)
{
    run_golden("split.txt");
}

/* test_golden_mailrcpt - mailrcpt.txt */
static void test_golden_mailrcpt(void **state)
{
    run_golden("mailrcpt.txt");
}

/* test_golden_xtext - xtext.txt */
static void test_golden_xtext(void **state)
{
    run_golden("xtext.txt");
}

/* test_params_max - exactly SMTP_PARAMS_MAX parameters, then one more */
static void test_params_max(void **state)
{
    struct buf b = BUF_INIT;
    struct smtp_params p;
    const char *why;
    size_t i;

    for (i = 0; i < SMTP_PARAMS_MAX; i++)
        buf_printf(&b, " X-%zu=%zu", i, i);
    assert_true(smtpcmd_params(b.data, false, &p, &why));
    assert_int_equal(p.n, SMTP_PARAMS_MAX);
    assert_string_equal(smtpcmd_param_get(&p, "x-3")->value, "3");
    assert_null(smtpcmd_param_get(&p, "X-99"));
    smtpcmd_params_free(&p);
    assert_int_equal(p.n, 0);
    smtpcmd_params_free(&p);           /* twice is harmless */
    buf_puts(&b, " LAST");
    assert_false(smtpcmd_params(b.data, false, &p, &why));
    assert_string_equal(why, "too many parameters");
    assert_int_equal(p.n, 0);
    smtpcmd_params_free(&p);           /* harmless after a failure */
    buf_free(&b);
}

/* test_xtext_all_bytes - every byte value survives encode + decode */
static void test_xtext_all_bytes(void **state)
{
    char text[BYTE_VALUES], *enc, *dec;
    size_t i;

    for (i = 1; i < BYTE_VALUES; i++)
        text[i - 1] = (char)i;
    text[BYTE_VALUES - 1] = 0;
    enc = xtext_encode(text);
    for (i = 0; enc[i] != 0; i++) {
        assert_true(enc[i] > ' ' && enc[i] < 0x7f);
        assert_true(enc[i] != '=');
    }
    dec = xtext_decode(enc);
    assert_non_null(dec);
    assert_memory_equal(dec, text, BYTE_VALUES);
    free(enc);
    free(dec);
}

/* main - run the tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_split),
        cmocka_unit_test(test_golden_mailrcpt),
        cmocka_unit_test(test_golden_xtext),
        cmocka_unit_test(test_params_max),
        cmocka_unit_test(test_xtext_all_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
