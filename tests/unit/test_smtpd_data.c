/*
 * test_smtpd_data.c - unit tests for smtpd's DATA/BDAT stream decoders
 *
 * Golden files in tests/golden/smtpd_data/: NAME.in is what a client sends
 * after DATA's 354 (the content, the end of data, and pipelined commands
 * after it), NAME.out the content the queue file must get, NAME.rest the
 * input left for the command reader after the end of data. Each case is
 * fed whole, one byte at a time, and split in two at every position: the
 * result must never depend on how the input arrives.
 *
 * The smuggle_* cases are the SMTP smuggling endings (bare LF / bare CR /
 * NUL variants of CR LF . CR LF) followed by a pipelined MAIL, RCPT, DATA
 * and a real end of data: the smuggled commands must stay content, so
 * exactly one message ends, at the real CR LF . CR LF.
 */
#include "util/sys.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "util/buf.h"

/* the decoder is part of the smtpd program, not of libposta */
#include "../../smtpd/data_decode.c"

#define GOLDEN_DIR "tests/golden/smtpd_data"
#define SPLIT_ALL_MAX 4096     /* inputs up to this size get every 2-way split */

static const char *const golden_cases[] = {
    "basic", "dotstuff", "empty", "bare_lf_normalize", "bare_cr", "long_line",
    "smuggle_lf_dot_lf", "smuggle_cr_dot_cr", "smuggle_lf_dot_crlf", "smuggle_crlf_dot_lf",
    "smuggle_cr_dot_crlf", "smuggle_crlf_dot_cr", "smuggle_crlf_nul_dot_crlf",
    "smuggle_crlf_dot_nul_crlf", "smuggle_lf_dot_nul_lf",
};

/* sink - collect decoded content */
static void sink(void *ctx, const char *p, size_t n)
{
    assert_int_equal(buf_append(ctx, p, n), 0);
}

/* read_golden - a whole golden file */
static void read_golden(const char *name, const char *ext, struct buf *out)
{
    const char *dir = getenv("POSTA_GOLDEN_SMTPD_DATA");
    char path[512];
    char tmp[8192];
    FILE *fp;
    size_t n;

    snprintf(path, sizeof(path), "%s/%s.%s", dir ? dir : GOLDEN_DIR, name, ext);
    fp = fopen(path, "rb");
    if (fp == NULL)
        fail_msg("cannot open %s", path);
    buf_reset(out);
    while ((n = fread(tmp, 1, sizeof(tmp), fp)) > 0)
        assert_int_equal(buf_append(out, tmp, n), 0);
    fclose(fp);
}

/*
 * decode_pieces - feed in[0..len) cut at the given points; returns the
 * status, the content in *out and the offset just past the end of data
 */
static enum dd_status decode_pieces(enum dd_bare_lf mode, const char *in, size_t len,
                                    const size_t *cuts, size_t ncuts, struct buf *out,
                                    size_t *end)
{
    struct data_decoder d;
    size_t pos = 0;

    buf_reset(out);
    dd_init(&d, mode, sink, out);
    for (size_t c = 0; c <= ncuts; c++) {
        size_t stop = c < ncuts ? cuts[c] : len;

        while (pos < stop) {
            size_t used = 0;
            enum dd_status st = dd_data_feed(&d, in + pos, stop - pos, &used);

            assert_true(used <= stop - pos);
            pos += used;
            if (st != DD_MORE) {
                *end = pos;
                return st;
            }
        }
    }
    *end = pos;
    return DD_MORE;
}

/* check_case - one golden case, in every split */
static void check_case(const char *name)
{
    struct buf in = BUF_INIT, want = BUF_INIT, rest = BUF_INIT, got = BUF_INIT;
    size_t end = 0;
    size_t cut;

    read_golden(name, "in", &in);
    read_golden(name, "out", &want);
    read_golden(name, "rest", &rest);

    /* whole */
    assert_int_equal(decode_pieces(DD_BARE_LF_NORMALIZE, in.data, in.len, NULL, 0, &got, &end),
                     DD_END);
    if (got.len != want.len || memcmp(got.data ? got.data : "", buf_str(&want), got.len) != 0)
        fail_msg("%s: content differs (got %zu bytes, want %zu)", name, got.len, want.len);
    assert_int_equal(in.len - end, rest.len);
    assert_memory_equal(in.data + end, buf_str(&rest), rest.len);

    /* one byte at a time */
    {
        size_t *cuts = calloc(in.len, sizeof(*cuts));

        for (size_t i = 0; i < in.len; i++)
            cuts[i] = i + 1;
        assert_int_equal(decode_pieces(DD_BARE_LF_NORMALIZE, in.data, in.len, cuts, in.len,
                                       &got, &cut),
                         DD_END);
        free(cuts);
        assert_int_equal(cut, end);
        assert_int_equal(got.len, want.len);
        assert_memory_equal(buf_str(&got), buf_str(&want), want.len);
    }

    /* every two-way split */
    if (in.len <= SPLIT_ALL_MAX) {
        for (size_t i = 1; i < in.len; i++) {
            size_t e2 = 0;

            assert_int_equal(
                decode_pieces(DD_BARE_LF_NORMALIZE, in.data, in.len, &i, 1, &got, &e2), DD_END);
            assert_int_equal(e2, end);
            assert_int_equal(got.len, want.len);
            assert_memory_equal(buf_str(&got), buf_str(&want), want.len);
        }
    }
    buf_free(&in);
    buf_free(&want);
    buf_free(&rest);
    buf_free(&got);
}

/* test_golden - all golden cases */
static void test_golden(void **state)
{
    (void)state;
    for (size_t i = 0; i < POSTA_ARRAY_LEN(golden_cases); i++)
        check_case(golden_cases[i]);
}

/* test_smuggle_one_message - each smuggling ending ends no message early */
static void test_smuggle_one_message(void **state)
{
    static const char *const endings[] = {
        "\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n", "\r.\r\n", "\r\n.\r",
    };
    struct buf in = BUF_INIT, got = BUF_INIT;

    (void)state;
    for (size_t i = 0; i < POSTA_ARRAY_LEN(endings); i++) {
        size_t end = 0, ends = 0, pos = 0;

        buf_reset(&in);
        buf_printf(&in, "Subject: t\r\n\r\nbody%sMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"
                   "second\r\n.\r\n", endings[i]);
        /* count how many messages the stream holds */
        while (pos < in.len) {
            enum dd_status st =
                decode_pieces(DD_BARE_LF_NORMALIZE, in.data + pos, in.len - pos, NULL, 0, &got, &end);

            if (st != DD_END)
                break;
            ends++;
            pos += end;
        }
        assert_int_equal(ends, 1);
        assert_int_equal(pos, in.len);
        assert_non_null(strstr(buf_str(&got), "MAIL FROM:<a@b>\n"));
    }
    buf_free(&in);
    buf_free(&got);
}

/* test_reject_mode - smtpd_forbid_bare_newline=reject stops at the bare LF */
static void test_reject_mode(void **state)
{
    static const char in[] = "ok\r\nbad\nmore\r\n.\r\n";
    struct buf got = BUF_INIT;
    size_t end = 0;

    (void)state;
    assert_int_equal(decode_pieces(DD_BARE_LF_REJECT, in, sizeof(in) - 1, NULL, 0, &got, &end),
                     DD_ERR_BARE_LF);
    assert_int_equal(end, 7);   /* the offending LF */
    assert_int_equal(decode_pieces(DD_BARE_LF_REJECT, ".\n", 2, NULL, 0, &got, &end),
                     DD_ERR_BARE_LF);
    /* CR LF only: no error */
    assert_int_equal(decode_pieces(DD_BARE_LF_REJECT, "a\r\n.\r\n", 6, NULL, 0, &got, &end),
                     DD_END);
    assert_string_equal(buf_str(&got), "a\n");
    buf_free(&got);
}

/* test_allow_mode - the legacy "no": a bare LF is a full line end */
static void test_allow_mode(void **state)
{
    static const char in[] = "a\n.\nNOOP\r\n";
    struct buf got = BUF_INIT;
    size_t end = 0;

    (void)state;
    assert_int_equal(decode_pieces(DD_BARE_LF_ALLOW, in, sizeof(in) - 1, NULL, 0, &got, &end),
                     DD_END);
    assert_string_equal(buf_str(&got), "a\n");
    assert_string_equal(in + end, "NOOP\r\n");
    buf_free(&got);
}

/* test_bdat - CR LF across chunk boundaries, bare CR kept, newline at the end */
static void test_bdat(void **state)
{
    struct data_decoder d;
    struct buf got = BUF_INIT;

    (void)state;
    dd_init(&d, DD_BARE_LF_NORMALIZE, sink, &got);
    dd_bdat_feed(&d, "ab\r", 3);
    dd_bdat_feed(&d, "\ncd\r", 4);
    dd_bdat_feed(&d, "x\n.\r\n", 5);
    dd_bdat_feed(&d, "tail\r", 5);
    dd_bdat_finish(&d);
    assert_string_equal(buf_str(&got), "ab\ncd\rx\n.\ntail\r\n");
    assert_int_equal(d.out_bytes, got.len);

    buf_reset(&got);
    dd_init(&d, DD_BARE_LF_NORMALIZE, sink, &got);
    dd_bdat_finish(&d);
    assert_int_equal(got.len, 0);
    buf_free(&got);
}

/* test_out_bytes - the size count is the content handed to the sink */
static void test_out_bytes(void **state)
{
    struct data_decoder d;
    struct buf got = BUF_INIT;
    size_t used = 0;

    (void)state;
    dd_init(&d, DD_BARE_LF_NORMALIZE, sink, &got);
    assert_int_equal(dd_data_feed(&d, "12345\r\n..6\r\n.\r\n", 15, &used), DD_END);
    assert_int_equal(d.out_bytes, 9);
    assert_int_equal(got.len, 9);
    buf_free(&got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_smuggle_one_message),
        cmocka_unit_test(test_reject_mode),
        cmocka_unit_test(test_allow_mode),
        cmocka_unit_test(test_bdat),
        cmocka_unit_test(test_out_bytes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
