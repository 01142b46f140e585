/*
 * test_smtpreply.c - unit and golden tests for SMTP reply and EHLO parsing
 *
 * Golden files in tests/golden/smtpreply/: NAME.in holds the raw bytes a
 * server sent (CR LF, bare LF, control bytes), NAME.out what the parse
 * loop makes of them: for each reply in turn
 *
 *   reply code=CODE dsn=DSN|- bytes=USED
 *     | each line of the cleaned text
 *   oneline: smtp_reply_oneline
 *   features: FLAG... size=N auth=MECHS      (only for NAME starting "ehlo")
 *
 * then "incomplete: N bytes left", "error: TEXT" or "end". For every
 * reply the test also checks that each shorter prefix of the input is
 * "incomplete" (or, for malformed input, that once a prefix is refused
 * every longer one is refused too).
 *
 * The golden directory is $POSTA_SRCDIR/tests/golden (default
 * "./tests/golden"); POSTA_GOLDEN_UPDATE=1 rewrites the .out files.
 */
#include "util/sys.h"

#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "mail/smtpreply.h"
#include "util/alloc.h"
#include "util/buf.h"

#include "golden.h"

#define GOLDEN_SUBDIR "smtpreply"
#define GOLDEN_MIN_CASES 15
#define EHLO_PREFIX "ehlo"
#define LINE_OVERHEAD 6           /* "250 " + CR LF */

/* check_prefixes - shorter prefixes of in are incomplete or (once) refused */
static void check_prefixes(const char *file, const char *in, size_t len, int rc_full,
                           size_t used_full)
{
    struct smtp_reply r;
    const char *err = NULL;
    size_t k, used, stop = rc_full == 1 ? used_full : len;
    bool refused = false;
    int rc;

    smtp_reply_init(&r);
    for (k = 0; k < stop; k++) {
        rc = smtp_reply_parse(in, k, &used, &r, &err);
        if (rc == 1)
            fail_msg("%s: a prefix of %zu bytes parsed as complete", file, k);
        if (rc == 0 && refused)
            fail_msg("%s: prefix of %zu bytes accepted after a shorter one was refused", file, k);
        if (rc == -1 && rc_full != -1)
            fail_msg("%s: prefix of %zu bytes refused: %s", file, k, err);
        refused = rc == -1;
    }
    if (rc_full == 1) {
        /* More bytes after a complete reply change nothing. */
        for (k = used_full; k <= len; k++) {
            assert_int_equal(smtp_reply_parse(in, k, &used, &r, &err), 1);
            assert_int_equal(used, used_full);
        }
    }
    smtp_reply_free(&r);
}

/* render_features - the EHLO keywords of r */
static void render_features(const struct smtp_reply *r, struct buf *out)
{
    static const struct {
        unsigned flag;
        const char *name;
    } names[] = {
        {SMTP_FEAT_PIPELINING, "PIPELINING"},
        {SMTP_FEAT_SIZE, "SIZE"},
        {SMTP_FEAT_8BITMIME, "8BITMIME"},
        {SMTP_FEAT_DSN, "DSN"},
        {SMTP_FEAT_SMTPUTF8, "SMTPUTF8"},
        {SMTP_FEAT_STARTTLS, "STARTTLS"},
        {SMTP_FEAT_AUTH, "AUTH"},
        {SMTP_FEAT_ENHANCEDSTATUSCODES, "ENHANCEDSTATUSCODES"},
        {SMTP_FEAT_CHUNKING, "CHUNKING"},
    };
    struct smtp_features f;
    size_t i;

    smtp_ehlo_features(r, &f);
    buf_puts(out, "features:");
    for (i = 0; i < POSTA_ARRAY_LEN(names); i++)
        if (f.flags & names[i].flag)
            buf_printf(out, " %s", names[i].name);
    buf_printf(out, " size=%llu auth=%s\n", (unsigned long long)f.size_limit, f.auth_mechs);
}

/* render_reply - the parse loop over one golden input */
static void render_reply(const char *file, char *text, size_t len, struct buf *out)
{
    struct smtp_reply r;
    const char *err = NULL, *p, *nl;
    size_t pos = 0, used = 0;
    int rc;

    smtp_reply_init(&r);
    for (;;) {
        if (pos == len) {
            buf_puts(out, "end\n");
            break;
        }
        rc = smtp_reply_parse(text + pos, len - pos, &used, &r, &err);
        check_prefixes(file, text + pos, len - pos, rc, used);
        if (rc == 0) {
            buf_printf(out, "incomplete: %zu bytes left\n", len - pos);
            break;
        }
        if (rc < 0) {
            buf_printf(out, "error: %s\n", err);
            break;
        }
        assert_true(used > 0 && used <= len - pos);
        buf_printf(out, "reply code=%d dsn=%s bytes=%zu\n", r.code, r.dsn[0] ? r.dsn : "-",
                   used);
        for (p = buf_str(&r.text);; p = nl + 1) {
            nl = strchr(p, '\n');
            buf_printf(out, "  | %.*s\n", (int)(nl ? (size_t)(nl - p) : strlen(p)), p);
            if (nl == NULL)
                break;
        }
        buf_puts(out, "oneline: ");
        smtp_reply_oneline(&r, out);
        buf_putc(out, '\n');
        if (strncmp(file, EHLO_PREFIX, strlen(EHLO_PREFIX)) == 0)
            render_features(&r, out);
        pos += used;
    }
    smtp_reply_free(&r);
}

/* test_golden - tests/golden/smtpreply/NAME.in against NAME.out */
static void test_golden(void **state)
{
    golden_run_dir(GOLDEN_SUBDIR, ".in", GOLDEN_MIN_CASES, render_reply);
}

/* parse_all - parse in (a C string) as one reply; the result code */
static int parse_all(const char *in, struct smtp_reply *r, const char **err, size_t *used)
{
    return smtp_reply_parse(in, strlen(in), used, r, err);
}

/* test_line_length_limit - SMTP_REPLY_LINE_MAX bytes with CR LF pass, one more does not */
static void test_line_length_limit(void **state)
{
    struct buf in = BUF_INIT;
    struct smtp_reply r;
    const char *err = NULL;
    size_t used = 0, i;

    smtp_reply_init(&r);
    buf_puts(&in, "250 ");
    for (i = 0; i < SMTP_REPLY_LINE_MAX - LINE_OVERHEAD; i++)
        buf_putc(&in, 'a');
    buf_puts(&in, "\r\n");
    assert_int_equal(in.len, SMTP_REPLY_LINE_MAX);
    assert_int_equal(parse_all(in.data, &r, &err, &used), 1);
    assert_int_equal(used, SMTP_REPLY_LINE_MAX);

    /* one byte more: refused, also while the line end has not come yet */
    buf_truncate(&in, in.len - 2);
    buf_puts(&in, "a\r\n");
    assert_int_equal(parse_all(in.data, &r, &err, &used), -1);
    assert_string_equal(err, "reply line too long");
    buf_truncate(&in, in.len - 1);
    assert_int_equal(parse_all(in.data, &r, &err, &used), -1);
    /* 4095 bytes may still end in a bare LF */
    buf_truncate(&in, SMTP_REPLY_LINE_MAX - 1);
    assert_int_equal(parse_all(in.data, &r, &err, &used), 0);
    buf_free(&in);
    smtp_reply_free(&r);
}

/* test_line_count_limit - SMTP_REPLY_LINES_MAX lines pass, one more does not */
static void test_line_count_limit(void **state)
{
    struct buf in = BUF_INIT;
    struct smtp_reply r;
    const char *err = NULL;
    size_t used = 0, i;

    smtp_reply_init(&r);
    for (i = 0; i < SMTP_REPLY_LINES_MAX - 1; i++)
        buf_puts(&in, "250-x\r\n");
    buf_puts(&in, "250 end\r\n");
    assert_int_equal(parse_all(in.data, &r, &err, &used), 1);
    assert_int_equal(used, in.len);
    assert_int_equal(r.code, 250);

    buf_truncate(&in, in.len - strlen("250 end\r\n"));
    buf_puts(&in, "250-x\r\n250 end\r\n");
    assert_int_equal(parse_all(in.data, &r, &err, &used), -1);
    assert_string_equal(err, "too many reply lines");
    buf_free(&in);
    smtp_reply_free(&r);
}

/* test_reuse - a reply object is overwritten by the next parse */
static void test_reuse(void **state)
{
    struct smtp_reply r;
    const char *err = NULL;
    size_t used = 0;

    smtp_reply_init(&r);
    assert_int_equal(parse_all("550 5.1.1 no\r\n", &r, &err, &used), 1);
    assert_string_equal(r.dsn, "5.1.1");
    assert_int_equal(parse_all("250 ok\r\n", &r, &err, &used), 1);
    assert_int_equal(r.code, 250);
    assert_string_equal(r.dsn, "");
    assert_string_equal(buf_str(&r.text), "250 ok");
    /* an incomplete or malformed parse leaves the previous reply alone */
    assert_int_equal(parse_all("451 4.3.0 x", &r, &err, &used), 0);
    assert_int_equal(parse_all("hello\r\n", &r, &err, &used), -1);
    assert_string_equal(buf_str(&r.text), "250 ok");
    smtp_reply_free(&r);
}

/* test_auth_mechs_bounded - many AUTH mechanisms fill auth_mechs, never overflow it */
static void test_auth_mechs_bounded(void **state)
{
    struct buf in = BUF_INIT;
    struct smtp_reply r;
    struct smtp_features f;
    const char *err = NULL;
    size_t used = 0, i;

    smtp_reply_init(&r);
    buf_puts(&in, "250-mx\r\n250 AUTH");
    for (i = 0; i < SMTP_REPLY_LINE_MAX / 16; i++)
        buf_printf(&in, " MECH-%zu", i);
    buf_puts(&in, "\r\n");
    assert_int_equal(parse_all(in.data, &r, &err, &used), 1);
    smtp_ehlo_features(&r, &f);
    assert_true(f.flags & SMTP_FEAT_AUTH);
    assert_true(strlen(f.auth_mechs) < sizeof(f.auth_mechs));
    assert_true(strlen(f.auth_mechs) > sizeof(f.auth_mechs) - 16);
    assert_memory_equal(f.auth_mechs, "MECH-0 MECH-1 ", 14);
    buf_free(&in);
    smtp_reply_free(&r);
}

/* test_features_not_2xx - a refused EHLO offers nothing */
static void test_features_not_2xx(void **state)
{
    struct smtp_reply r;
    struct smtp_features f;
    const char *err = NULL;
    size_t used = 0;

    smtp_reply_init(&r);
    assert_int_equal(parse_all("502-no\r\n502 PIPELINING\r\n", &r, &err, &used), 1);
    smtp_ehlo_features(&r, &f);
    assert_int_equal(f.flags, 0);
    smtp_reply_free(&r);
}

/* main - run the tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_line_length_limit),
        cmocka_unit_test(test_line_count_limit),
        cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_auth_mechs_bounded),
        cmocka_unit_test(test_features_not_2xx),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
