/*
 * fuzz_smtpd_data.c - libFuzzer target for smtpd's DATA/BDAT decoders
 *
 * Input: byte 0 picks the bare-LF mode, byte 1 a split point; the rest is
 * what a client sends after DATA. The decoder must not crash, must
 * consume within bounds, and must give the same content, status and end
 * offset whether the input arrives whole or split in two. The same bytes
 * also go through the BDAT decoder, whose output must end in a newline.
 */
#include "util/sys.h"

#include <string.h>

#include "util/buf.h"

#include "../smtpd/data_decode.c"

/* fz_sink - collect content */
static void fz_sink(void *ctx, const char *p, size_t n)
{
    (void)buf_append(ctx, p, n);
}

/* fz_decode - decode in two pieces cut at cut; returns status and end offset */
static enum dd_status fz_decode(enum dd_bare_lf mode, const char *p, size_t n, size_t cut,
                                struct buf *out, size_t *end)
{
    struct data_decoder d;
    size_t pos = 0;

    dd_init(&d, mode, fz_sink, out);
    while (pos < n) {
        size_t stop = pos < cut ? cut : n;
        size_t used = 0;
        enum dd_status st = dd_data_feed(&d, p + pos, stop - pos, &used);

        if (used > stop - pos)
            __builtin_trap();
        pos += used;
        if (st != DD_MORE) {
            *end = pos;
            return st;
        }
    }
    *end = pos;
    return DD_MORE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* LLVMFuzzerTestOneInput - one input */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf a = BUF_INIT, b = BUF_INIT, c = BUF_INIT;
    struct data_decoder d;
    enum dd_bare_lf mode;
    enum dd_status sa, sb;
    size_t ea = 0, eb = 0, cut;
    const char *p;
    size_t n;

    if (size < 2)
        return 0;
    mode = (enum dd_bare_lf)(data[0] % 3);
    p = (const char *)data + 2;
    n = size - 2;
    cut = n ? data[1] % (n + 1) : 0;
    sa = fz_decode(mode, p, n, n, &a, &ea);
    sb = fz_decode(mode, p, n, cut, &b, &eb);
    if (sa != sb || ea != eb || a.len != b.len || memcmp(buf_str(&a), buf_str(&b), a.len) != 0)
        __builtin_trap();

    dd_init(&d, mode, fz_sink, &c);
    dd_bdat_feed(&d, p, cut);
    dd_bdat_feed(&d, p + cut, n - cut);
    dd_bdat_finish(&d);
    if (c.len != d.out_bytes || (c.len > 0 && c.data[c.len - 1] != '\n'))
        __builtin_trap();
    buf_free(&a);
    buf_free(&b);
    buf_free(&c);
    return 0;
}
