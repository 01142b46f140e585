/*
 * test_smtpenc.c - unit and golden tests for the SMTP DATA encoder
 *
 * Golden files in tests/golden/smtpenc/: NAME.in is stored message
 * content (raw bytes: bare CRs, bare LFs, dots, NULs), NAME.out the
 * exact wire bytes smtp_enc_feed + smtp_enc_finish(dot) produce for it.
 * For every golden input the test also checks that feeding it split at
 * every position (and at every pair of positions for short inputs, and
 * one byte at a time) gives the same bytes, and that finish without the
 * dot gives the same bytes minus the final ".\r\n".
 *
 * Random inputs over the troublesome bytes are compared with a
 * byte-at-a-time reference encoder written from RFC 5321 4.5.2.
 *
 * The golden directory is $POSTA_SRCDIR/tests/golden (default
 * "./tests/golden"); POSTA_GOLDEN_UPDATE=1 rewrites the .out files.
 */
#include "util/sys.h"

#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "mail/smtpenc.h"
#include "util/alloc.h"
#include "util/buf.h"

#include "golden.h"

#define GOLDEN_SUBDIR "smtpenc"
#define GOLDEN_MIN_CASES 10
#define PAIR_SPLIT_MAX 300        /* inputs up to this long: every pair of splits */
#define RANDOM_ROUNDS 20000
#define RANDOM_LEN_MAX 64
#define RANDOM_SEED 12345u
#define BIG_LINES 100000
#define DOT_END ".\r\n"
#define DOT_END_LEN 3

/* encode_split - encode in[0..n) fed as the pieces cut at the given positions */
static void encode_split(const char *in, size_t n, const size_t *cuts, size_t ncuts, bool dot,
                         struct buf *out)
{
    struct smtp_enc e;
    size_t prev = 0, i;

    smtp_enc_init(&e);
    for (i = 0; i < ncuts; i++) {
        smtp_enc_feed(&e, in + prev, cuts[i] - prev, out);
        prev = cuts[i];
    }
    smtp_enc_feed(&e, in + prev, n - prev, out);
    smtp_enc_finish(&e, dot, out);
}

/* reference - byte-at-a-time encoder, the specification the fast one must meet */
static void reference(const char *in, size_t n, struct buf *out)
{
    bool line_start = true;
    size_t i;

    for (i = 0; i < n; i++) {
        if (in[i] == '\r' || in[i] == '\n') {
            if (in[i] == '\r' && i + 1 < n && in[i + 1] == '\n')
                i++;
            buf_puts(out, "\r\n");
            line_start = true;
        } else {
            if (line_start && in[i] == '.')
                buf_putc(out, '.');
            buf_putc(out, in[i]);
            line_start = false;
        }
    }
    if (!line_start)
        buf_puts(out, "\r\n");
    buf_puts(out, DOT_END);
}

/* assert_same - two encodings are byte-identical (with a readable failure) */
static void assert_same(const struct buf *want, const struct buf *got, const char *what)
{
    if (want->len != got->len || memcmp(buf_str(want), buf_str(got), want->len) != 0)
        fail_msg("%s: output differs (%zu vs %zu bytes)", what, want->len, got->len);
}

/* check_splits - every way of splitting in gives the one-shot output */
static void check_splits(const char *in, size_t n, const struct buf *whole)
{
    struct buf got = BUF_INIT, nodot = BUF_INIT;
    size_t cuts[2], i, j, *each;

    for (i = 0; i <= n; i++) {
        cuts[0] = i;
        buf_reset(&got);
        encode_split(in, n, cuts, 1, true, &got);
        assert_same(whole, &got, "one split");
    }
    if (n <= PAIR_SPLIT_MAX) {
        for (i = 0; i <= n; i++) {
            for (j = i; j <= n; j++) {
                cuts[0] = i;
                cuts[1] = j;
                buf_reset(&got);
                encode_split(in, n, cuts, 2, true, &got);
                assert_same(whole, &got, "two splits");
            }
        }
    }
    each = xreallocarray(NULL, n + 1, sizeof(*each));
    for (i = 0; i < n; i++)
        each[i] = i + 1;
    buf_reset(&got);
    encode_split(in, n, each, n, true, &got);
    assert_same(whole, &got, "byte at a time");
    free(each);

    encode_split(in, n, NULL, 0, false, &nodot);
    assert_int_equal(nodot.len + DOT_END_LEN, whole->len);
    assert_memory_equal(buf_str(&nodot), buf_str(whole), nodot.len);
    assert_memory_equal(buf_str(whole) + nodot.len, DOT_END, DOT_END_LEN);
    buf_free(&got);
    buf_free(&nodot);
}

/* render_golden - one golden input to wire bytes, with the split checks */
static void render_golden(const char *file, char *text, size_t len, struct buf *out)
{
    struct buf ref = BUF_INIT;

    encode_split(text, len, NULL, 0, true, out);
    check_splits(text, len, out);
    reference(text, len, &ref);
    assert_same(&ref, out, file);
    buf_free(&ref);
}

/* test_golden - tests/golden/smtpenc/NAME.in against NAME.out */
static void test_golden(void **state)
{
    golden_run_dir(GOLDEN_SUBDIR, ".in", GOLDEN_MIN_CASES, render_golden);
}

/* test_cr_lf_across_calls - "\r" ending one feed and "\n" starting the next: one line end */
static void test_cr_lf_across_calls(void **state)
{
    struct smtp_enc e;
    struct buf out = BUF_INIT;

    smtp_enc_init(&e);
    smtp_enc_feed(&e, "a\r", 2, &out);
    assert_true(e.pending_cr);
    smtp_enc_feed(&e, "\n.b\r", 4, &out);
    smtp_enc_feed(&e, "", 0, &out);      /* an empty feed decides nothing */
    assert_true(e.pending_cr);
    smtp_enc_feed(&e, "c", 1, &out);
    smtp_enc_finish(&e, true, &out);
    assert_string_equal(buf_str(&out), "a\r\n..b\r\nc\r\n.\r\n");
    /* finish resets: the encoder can be used for the next message */
    buf_reset(&out);
    smtp_enc_feed(&e, ".x", 2, &out);
    smtp_enc_finish(&e, true, &out);
    assert_string_equal(buf_str(&out), "..x\r\n.\r\n");
    buf_free(&out);
}

/* test_lone_cr_at_end - a message ending in CR: that CR is its last line end */
static void test_lone_cr_at_end(void **state)
{
    struct smtp_enc e;
    struct buf out = BUF_INIT;

    smtp_enc_init(&e);
    smtp_enc_feed(&e, "x\r", 2, &out);
    smtp_enc_finish(&e, true, &out);
    assert_string_equal(buf_str(&out), "x\r\n.\r\n");
    buf_reset(&out);
    smtp_enc_feed(&e, "x\r", 2, &out);
    smtp_enc_finish(&e, false, &out);
    assert_string_equal(buf_str(&out), "x\r\n");
    buf_free(&out);
}

/* test_empty_message - no content at all is just the terminator */
static void test_empty_message(void **state)
{
    struct smtp_enc e;
    struct buf out = BUF_INIT;

    smtp_enc_init(&e);
    smtp_enc_finish(&e, true, &out);
    assert_string_equal(buf_str(&out), DOT_END);
    buf_free(&out);
}

/* test_random_vs_reference - random inputs in random pieces equal the reference */
static void test_random_vs_reference(void **state)
{
    static const char alphabet[] = "\r\n.a\0";
    char in[RANDOM_LEN_MAX];
    size_t cuts[RANDOM_LEN_MAX], ncuts, n, i, round;
    struct buf want = BUF_INIT, got = BUF_INIT;
    unsigned seed = RANDOM_SEED;

    for (round = 0; round < RANDOM_ROUNDS; round++) {
        n = (size_t)rand_r(&seed) % RANDOM_LEN_MAX;
        for (i = 0; i < n; i++)
            in[i] = alphabet[(size_t)rand_r(&seed) % (sizeof(alphabet) - 1)];
        ncuts = 0;
        for (i = 1; i < n; i++)
            if (rand_r(&seed) % 4 == 0)
                cuts[ncuts++] = i;
        buf_reset(&want);
        buf_reset(&got);
        reference(in, n, &want);
        encode_split(in, n, cuts, ncuts, true, &got);
        assert_same(&want, &got, "random input");
    }
    buf_free(&want);
    buf_free(&got);
}

/* test_big_message - many lines through large feeds (the slice boundaries inside) */
static void test_big_message(void **state)
{
    struct buf in = BUF_INIT, want = BUF_INIT, got = BUF_INIT;
    size_t i;

    for (i = 0; i < BIG_LINES; i++)
        buf_puts(&in, i % 3 == 0 ? ".dot line\n" : i % 3 == 1 ? "crlf line\r\n" : "cr line\r");
    reference(in.data, in.len, &want);
    encode_split(in.data, in.len, NULL, 0, true, &got);
    assert_same(&want, &got, "big message");
    buf_free(&in);
    buf_free(&want);
    buf_free(&got);
}

/* main - run the tests */
/* test_line_limit - lines over the limit are broken with CR LF SPACE, at any split */
static void test_line_limit(void **state)
{
    (void)state;
    /* 100 'a', then ".x" + 45 'b' (stuffed dot counts), then a short line */
    struct buf in = BUF_INIT, want = BUF_INIT, got;
    struct smtp_enc e;

    for (int i = 0; i < 100; i++)
        buf_putc(&in, 'a');
    buf_puts(&in, "\n.x");
    for (int i = 0; i < 45; i++)
        buf_putc(&in, 'b');
    buf_puts(&in, "\nend\n");
    for (int i = 0; i < 40; i++)
        buf_putc(&want, 'a');
    buf_puts(&want, "\r\n ");
    for (int i = 0; i < 39; i++)
        buf_putc(&want, 'a');
    buf_puts(&want, "\r\n ");
    for (int i = 0; i < 21; i++)
        buf_putc(&want, 'a');
    buf_puts(&want, "\r\n..x");
    for (int i = 0; i < 37; i++)
        buf_putc(&want, 'b');
    buf_puts(&want, "\r\n ");
    for (int i = 0; i < 8; i++)
        buf_putc(&want, 'b');
    buf_puts(&want, "\r\nend\r\n.\r\n");
    for (size_t cut = 0; cut <= in.len; cut++) {
        buf_init(&got, 0);
        smtp_enc_init(&e);
        smtp_enc_set_limit(&e, 40);
        smtp_enc_feed(&e, in.data, cut, &got);
        smtp_enc_feed(&e, in.data + cut, in.len - cut, &got);
        smtp_enc_finish(&e, true, &got);
        assert_int_equal(got.len, want.len);
        assert_memory_equal(got.data, want.data, want.len);
        buf_free(&got);
    }
    /* A limit below the minimum is raised to it; 0 means none. */
    smtp_enc_init(&e);
    smtp_enc_set_limit(&e, 3);
    assert_int_equal(e.limit, SMTP_ENC_LIMIT_MIN);
    smtp_enc_set_limit(&e, 0);
    assert_int_equal(e.limit, 0);
    buf_free(&in);
    buf_free(&want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_cr_lf_across_calls),
        cmocka_unit_test(test_lone_cr_at_end),
        cmocka_unit_test(test_empty_message),
        cmocka_unit_test(test_random_vs_reference),
        cmocka_unit_test(test_big_message),
        cmocka_unit_test(test_line_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
