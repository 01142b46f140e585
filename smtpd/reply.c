/*
 * reply.c - smtpd replies: code, enhanced status code, text
 *
 * Replies are appended to the session's output buffer and sent in one
 * write when the session runs out of complete input (PIPELINING). Every
 * reply except the greeting and the HELO/EHLO answer (which RFC 2034
 * exempts) carries an enhanced status code. A 4xx/5xx reply counts as a
 * client error for smtpd_soft_error_limit/smtpd_hard_error_limit.
 *
 * SECURITY: text that comes from the client (addresses, HELO names) is
 * quoted by the callers into a single line; CR and LF never reach here
 * because command lines are split on LF first. Any control character
 * left is replaced, so a reply is always exactly one line per entry.
 */
#include "util/sys.h"

#include <stdio.h>
#include <string.h>

#include "smtpd.h"

/* reply_is_error - a 4xx or 5xx code */
bool reply_is_error(int code)
{
    return code >= 400;
}

/* reply_sanitize - replace control characters appended since offset from */
static void reply_sanitize(struct buf *b, size_t from)
{
    for (size_t i = from; i < b->len; i++)
        if ((unsigned char)b->data[i] < ' ' || b->data[i] == 0x7f)
            b->data[i] = '?';
}

/* reply - append "CODE ENH TEXT\r\n" (enh may be NULL) */
void reply(struct session *s, int code, const char *enh, const char *fmt, ...)
{
    va_list ap;
    size_t start = s->out.len;

    if (enh != NULL)
        (void)buf_printf(&s->out, "%03d %s ", code, enh);
    else
        (void)buf_printf(&s->out, "%03d ", code);
    va_start(ap, fmt);
    (void)buf_vprintf(&s->out, fmt, ap);
    va_end(ap);
    reply_sanitize(&s->out, start);
    (void)buf_append(&s->out, "\r\n", 2);
    if (reply_is_error(code))
        s->errors++;
}

/* reply_raw - append preformatted reply lines (they end in CRLF) */
void reply_raw(struct session *s, const char *text)
{
    (void)buf_puts(&s->out, text);
}
