/*
 * data_decode.c - smtpd's DATA and BDAT content decoders
 *
 * See data_decode.h for the rules. The DATA decoder is a small state
 * machine over line starts; within a line it jumps from LF to LF with
 * memchr, so the cost per byte is that of a memchr plus one copy (into
 * the queue file's write buffer, done by the sink).
 *
 * SECURITY: this is where SMTP smuggling is stopped: a "." line ends the
 * data only when the line before it and the "." line itself end in CR LF.
 * Any input split gives the same result (the tests and the fuzz target
 * check this).
 */
#include "util/sys.h"

#include <string.h>

#include "data_decode.h"

enum {
    DD_S_BOL,       /* at the start of a line */
    DD_S_DOT,       /* a '.' at the start of a line */
    DD_S_DOT_CR,    /* "." CR at the start of a line */
    DD_S_MID,       /* inside a line */
    DD_S_CR,        /* a CR held at the end of the previous input */
};

static const char dd_nl[] = "\n";
static const char dd_cr[] = "\r";

/* dd_emit - hand content to the sink */
static void dd_emit(struct data_decoder *d, const char *p, size_t n)
{
    if (n == 0)
        return;
    d->sink(d->ctx, p, n);
    d->out_bytes += n;
    d->last = p[n - 1];
}

/* dd_init - a decoder for one message */
void dd_init(struct data_decoder *d, enum dd_bare_lf mode, dd_sink_fn sink, void *ctx)
{
    memset(d, 0, sizeof(*d));
    d->state = DD_S_BOL;
    d->prev_crlf = true;
    d->mode = mode;
    d->sink = sink;
    d->ctx = ctx;
}

/*
 * dd_mid - decode inside a line from p[i]; returns the new index, or
 * SIZE_MAX on a rejected bare LF (its offset in *bad)
 */
static size_t dd_mid(struct data_decoder *d, const char *p, size_t i, size_t n, size_t *bad)
{
    const char *nl = memchr(p + i, '\n', n - i);
    size_t j;

    if (nl == NULL) {
        if (p[n - 1] == '\r') {
            dd_emit(d, p + i, n - 1 - i);
            d->state = DD_S_CR;
        } else {
            dd_emit(d, p + i, n - i);
        }
        return n;
    }
    j = (size_t)(nl - p);
    if (j > i && p[j - 1] == '\r') {
        dd_emit(d, p + i, j - 1 - i);
        dd_emit(d, dd_nl, 1);
        d->prev_crlf = true;
    } else {
        if (d->mode == DD_BARE_LF_REJECT) {
            dd_emit(d, p + i, j - i);   /* as a split input would have */
            *bad = j;
            return SIZE_MAX;
        }
        d->saw_bare_lf = true;
        dd_emit(d, p + i, j + 1 - i);
        d->prev_crlf = (d->mode == DD_BARE_LF_ALLOW);
    }
    d->state = DD_S_BOL;
    return j + 1;
}

/* dd_data_feed - decode DATA bytes */
enum dd_status dd_data_feed(struct data_decoder *d, const char *p, size_t n, size_t *used)
{
    size_t i = 0;

    while (i < n) {
        switch (d->state) {
        case DD_S_BOL:
            if (p[i] == '.') {
                d->state = DD_S_DOT;
                i++;
            } else {
                d->state = DD_S_MID;
            }
            break;
        case DD_S_DOT:
            if (p[i] == '\r') {
                d->state = DD_S_DOT_CR;
                i++;
            } else if (p[i] == '\n') {
                /* "." ending in a bare LF */
                if (d->mode == DD_BARE_LF_REJECT) {
                    *used = i;
                    return DD_ERR_BARE_LF;
                }
                d->saw_bare_lf = true;
                if (d->mode == DD_BARE_LF_ALLOW && d->prev_crlf) {
                    d->state = DD_S_BOL;
                    *used = i + 1;
                    return DD_END;
                }
                dd_emit(d, dd_nl, 1);
                d->prev_crlf = false;
                d->state = DD_S_BOL;
                i++;
            } else {
                d->state = DD_S_MID;   /* the stuffed dot is dropped */
            }
            break;
        case DD_S_DOT_CR:
            if (p[i] == '\n') {
                i++;
                if (d->prev_crlf) {
                    d->state = DD_S_BOL;
                    *used = i;
                    return DD_END;
                }
                /* "." CR LF after a bare-LF line: an empty content line */
                dd_emit(d, dd_nl, 1);
                d->prev_crlf = true;
                d->state = DD_S_BOL;
            } else {
                dd_emit(d, dd_cr, 1);
                d->state = DD_S_MID;
            }
            break;
        case DD_S_CR:
            if (p[i] == '\n') {
                dd_emit(d, dd_nl, 1);
                d->prev_crlf = true;
                d->state = DD_S_BOL;
                i++;
            } else {
                dd_emit(d, dd_cr, 1);
                d->state = DD_S_MID;
            }
            break;
        default: { /* DD_S_MID */
            size_t bad = 0;

            i = dd_mid(d, p, i, n, &bad);
            if (i == SIZE_MAX) {
                *used = bad;
                return DD_ERR_BARE_LF;
            }
            break;
        }
        }
    }
    *used = n;
    return DD_MORE;
}

/* dd_bdat_feed - decode a piece of a BDAT chunk */
void dd_bdat_feed(struct data_decoder *d, const char *p, size_t n)
{
    size_t i = 0;

    if (n == 0)
        return;
    if (d->state == DD_S_CR) {
        if (p[0] == '\n') {
            dd_emit(d, dd_nl, 1);
            i = 1;
        } else {
            dd_emit(d, dd_cr, 1);
        }
        d->state = DD_S_MID;
    }
    while (i < n) {
        const char *nl = memchr(p + i, '\n', n - i);
        size_t j;

        if (nl == NULL) {
            if (p[n - 1] == '\r') {
                dd_emit(d, p + i, n - 1 - i);
                d->state = DD_S_CR;
            } else {
                dd_emit(d, p + i, n - i);
            }
            return;
        }
        j = (size_t)(nl - p);
        if (j > i && p[j - 1] == '\r') {
            dd_emit(d, p + i, j - 1 - i);
            dd_emit(d, dd_nl, 1);
        } else {
            dd_emit(d, p + i, j + 1 - i);
        }
        i = j + 1;
    }
}

/* dd_bdat_finish - flush a held CR and end the content with a newline */
void dd_bdat_finish(struct data_decoder *d)
{
    if (d->state == DD_S_CR) {
        dd_emit(d, dd_cr, 1);
        d->state = DD_S_MID;
    }
    if (d->out_bytes > 0 && d->last != '\n')
        dd_emit(d, dd_nl, 1);
}
