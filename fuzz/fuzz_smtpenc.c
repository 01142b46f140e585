/*
 * fuzz_smtpenc.c - libFuzzer target for the SMTP DATA encoder
 *
 * The first input byte seeds the chunk sizes; the rest is message
 * content, encoded once in one piece and once in pseudo-random chunks.
 * Checked: both encodings are identical; the output ends in ".\r\n";
 * every CR is followed by LF and every LF preceded by CR; no line but
 * the last is "." alone; and removing the final ".", un-stuffing one
 * leading dot per line and turning CR LF into LF gives the input with
 * its line ends normalised ("\r\n", "\r", "\n" each become "\n", and a
 * missing last line end is added).
 */
#include "util/sys.h"

#include <stdio.h>
#include <string.h>

#include "mail/smtpenc.h"
#include "util/buf.h"

#define CHUNK_MAX 64u
#define LCG_MUL 1103515245u
#define LCG_ADD 12345u
#define LCG_SHIFT 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check - abort with a message when an invariant fails */
static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant failed: %s\n", what);
        abort();
    }
}

/* normalise - the content with every line end as "\n", the last one added */
static void normalise(const char *in, size_t n, struct buf *out)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (in[i] == '\r') {
            if (i + 1 < n && in[i + 1] == '\n')
                i++;
            buf_putc(out, '\n');
        } else {
            buf_putc(out, in[i]);
        }
    }
    if (out->len > 0 && out->data[out->len - 1] != '\n')
        buf_putc(out, '\n');
}

/* unstuff - wire bytes (checked) back to "\n"-terminated content */
static void unstuff(const char *w, size_t n, struct buf *out)
{
    size_t pos = 0, end, len;
    const char *cr;

    check(n >= 3 && memcmp(w + n - 3, ".\r\n", 3) == 0, "ends in .CRLF");
    n -= 3;
    check(n == 0 || (n >= 2 && w[n - 2] == '\r' && w[n - 1] == '\n'), "last line ended");
    while (pos < n) {
        cr = memchr(w + pos, '\r', n - pos);
        check(cr != NULL && cr + 1 < w + n + 1 && cr[1] == '\n', "CR followed by LF");
        end = (size_t)(cr - w);
        len = end - pos;
        check(memchr(w + pos, '\n', len) == NULL, "no bare LF");
        check(!(len == 1 && w[pos] == '.'), "no lone dot line");
        if (len > 0 && w[pos] == '.') {
            check(len >= 2 && w[pos + 1] == '.', "leading dot stuffed");
            buf_append(out, w + pos + 1, len - 1);
        } else {
            buf_append(out, w + pos, len);
        }
        buf_putc(out, '\n');
        pos = end + 2;
    }
}

/* LLVMFuzzerTestOneInput - encode twice, check the wire form */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf whole = BUF_INIT, chunked = BUF_INIT, norm = BUF_INIT, back = BUF_INIT;
    struct smtp_enc e;
    const char *in;
    unsigned seed;
    size_t n, pos = 0, k;

    if (size == 0)
        return 0;
    seed = data[0];
    in = (const char *)data + 1;
    n = size - 1;

    smtp_enc_init(&e);
    smtp_enc_feed(&e, in, n, &whole);
    smtp_enc_finish(&e, true, &whole);

    smtp_enc_init(&e);
    while (pos < n) {
        seed = seed * LCG_MUL + LCG_ADD;
        k = (seed >> LCG_SHIFT) % CHUNK_MAX;
        if (k > n - pos)
            k = n - pos;
        smtp_enc_feed(&e, in + pos, k, &chunked);
        pos += k;
    }
    smtp_enc_finish(&e, true, &chunked);
    check(whole.len == chunked.len && memcmp(buf_str(&whole), buf_str(&chunked), whole.len) == 0,
          "chunked equals whole");

    normalise(in, n, &norm);
    unstuff(buf_str(&whole), whole.len, &back);
    check(norm.len == back.len && memcmp(buf_str(&norm), buf_str(&back), norm.len) == 0,
          "un-stuffed output equals normalised input");
    buf_free(&whole);
    buf_free(&chunked);
    buf_free(&norm);
    buf_free(&back);
    return 0;
}
