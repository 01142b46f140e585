/*
 * smtpenc.c - message content to SMTP DATA wire form, streaming
 *
 * Every byte of outgoing mail passes through smtp_enc_feed, so it works
 * on runs: it finds the next CR and the next LF with memchr (each
 * position is searched for once per call, however the two interleave)
 * and copies the text between them in one piece. Output goes straight
 * into space reserved in the caller's buffer, one slice of input at a
 * time (ENC_SLICE bytes need at most twice as much room: every byte
 * becomes at most two).
 *
 * A CR is written as CR LF at once; pending_cr then means "swallow the
 * next byte if it is LF", so "\r\n" split across two calls is one line
 * end and nothing is held back between calls.
 *
 * DIAGNOSTICS
 *  Growing the output buffer past its maximum is a panic: the caller
 *  chooses the buffer and the amount it feeds, and should leave room for
 *  twice the input (near the maximum the slices shrink, so only the last
 *  one or two bytes can fail to fit).
 *
 * SECURITY
 *  No stored byte sequence can end the DATA phase early or smuggle a
 *  second transaction: every CR and LF in any combination becomes
 *  exactly one CR LF and every line starting with "." is stuffed.
 */
#include "util/sys.h"

#include <string.h>

#include "mail/smtpenc.h"
#include "util/buf.h"
#include "util/log.h"

#define ENC_SLICE ((size_t)1 << 16)  /* input bytes encoded per reservation */
#define ENC_GROWTH 2                 /* output bytes per input byte, at most... */
#define ENC_SLACK 8                  /* ...plus a line break carried into a slice */

static const char crlf[] = "\r\n";
#define CRLF_LEN 2

/* smtp_enc_init - a fresh stream: the first byte starts a line */
void smtp_enc_init(struct smtp_enc *e)
{
    e->line_start = true;
    e->pending_cr = false;
    e->limit = 0;
    e->col = 0;
}

/* smtp_enc_set_limit - break lines longer than limit (0 = never) */
void smtp_enc_set_limit(struct smtp_enc *e, size_t limit)
{
    e->limit = limit > 0 && limit < SMTP_ENC_LIMIT_MIN ? SMTP_ENC_LIMIT_MIN : limit;
}

/* copy_run - copy a run without line ends, breaking it at the line limit */
static char *copy_run(struct smtp_enc *e, const char *p, size_t len, char *w)
{
    static const char fold[] = "\r\n ";

    while (e->limit > 0 && e->col + len > e->limit) {
        size_t room = e->limit - e->col;

        memcpy(w, p, room);
        w += room;
        p += room;
        len -= room;
        memcpy(w, fold, sizeof(fold) - 1);
        w += sizeof(fold) - 1;
        e->col = 1;
    }
    memcpy(w, p, len);
    e->col += len;
    return w + len;
}

/* find_next - the first c in [p, end), or end */
static inline const char *find_next(const char *p, const char *end, int c)
{
    const char *q = memchr(p, c, (size_t)(end - p));

    return q ? q : end;
}

/* enc_slice - encode in[0..n) into w (room for ENC_GROWTH * n + ENC_SLACK); returns the end */
static char *enc_slice(struct smtp_enc *e, const char *in, size_t n, char *w)
{
    const char *p = in, *end = in + n, *next_cr, *next_lf, *q;

    if (n == 0)
        return w;
    if (e->pending_cr) {
        e->pending_cr = false;
        if (*p == '\n')
            p++;
    }
    next_cr = find_next(p, end, '\r');
    next_lf = find_next(p, end, '\n');
    while (p < end) {
        if (e->line_start) {
            e->line_start = false;
            e->col = 0;
            if (*p == '.') {
                *w++ = '.';
                e->col++;
            }
        }
        /* Recompute a cached position only once p has passed it. */
        if (next_cr < p)
            next_cr = find_next(p, end, '\r');
        if (next_lf < p)
            next_lf = find_next(p, end, '\n');
        q = next_cr < next_lf ? next_cr : next_lf;
        w = copy_run(e, p, (size_t)(q - p), w);
        if (q == end)
            break;
        memcpy(w, crlf, CRLF_LEN);
        w += CRLF_LEN;
        e->line_start = true;
        p = q + 1;
        if (*q == '\r') {
            if (p == end)
                e->pending_cr = true;
            else if (*p == '\n')
                p++;
        }
    }
    return w;
}

/* smtp_enc_feed - encode in[0..n) and append the wire bytes to out */
void smtp_enc_feed(struct smtp_enc *e, const char *in, size_t n, struct buf *out)
{
    size_t k;
    char *w;

    while (n > 0) {
        k = n < ENC_SLICE ? n : ENC_SLICE;
        /* Near the buffer's maximum, smaller slices need less headroom. */
        while (buf_reserve(out, ENC_GROWTH * k + ENC_SLACK) < 0) {
            if (k == 1)
                msg_panic("smtp_enc_feed: output buffer would pass its maximum");
            k /= 2;
        }
        w = enc_slice(e, in, k, out->data + out->len);
        out->len = (size_t)(w - out->data);
        out->data[out->len] = 0;
        in += k;
        n -= k;
    }
}

/* smtp_enc_finish - end the last line and append ".\r\n" when dot */
void smtp_enc_finish(struct smtp_enc *e, bool dot, struct buf *out)
{
    if ((!e->line_start && buf_append(out, crlf, CRLF_LEN) < 0)
        || (dot && buf_append(out, ".\r\n", sizeof(".\r\n") - 1) < 0))
        msg_panic("smtp_enc_finish: output buffer would pass its maximum");
    e->line_start = true;
    e->pending_cr = false;
    e->col = 0;
}
