/*
 * reply.c - smtpd replies: code, enhanced status code, text
 *
 * Replies are appended to the session's output buffer and sent in one
 * write when the session runs out of complete input (PIPELINING). Every
 * reply except the greeting and the HELO/EHLO answer (which RFC 2034
 * exempts) carries an enhanced status code. A 4xx/5xx reply counts as a
 * client error for smtpd_soft_error_limit/smtpd_hard_error_limit, and
 * gets smtpd_reject_footer, when set, as more lines of the same reply.
 *
 * SECURITY: text that comes from the client (addresses, HELO names) is
 * quoted by the callers into a single line; CR and LF never reach here
 * because command lines are split on LF first. Any control character
 * left is replaced, so a reply is always exactly one line per entry.
 */
#include "util/sys.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/macro.h"

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

#define FOOTER_NEWLINE "\\n"    /* in smtpd_reject_footer: a new reply line */
#define FOOTER_SAME_LINE "\\c"  /* at its start: the footer goes on the last line */
#define LOCALTIME_MAX 64

/* footer_var - a macro of smtpd_reject_footer (macro_lookup_fn) */
static const char *footer_var(void *ctx, const char *name, size_t len)
{
    static char now[LOCALTIME_MAX];
    const struct session *s = ctx;
    const char *names[] = {"client_address", "client_port", "client_name", "helo_name",
                           "server_name", "localtime"};
    const char *vals[] = {s->addr, s->port, s->name, s->helo, smtpd_conf.myhostname, now};
    time_t t = time(NULL);
    struct tm tm;

    if (len == strlen("localtime") && strncmp(name, "localtime", len) == 0)
        strftime(now, sizeof(now), "%b %e %H:%M:%S", localtime_r(&t, &tm));
    for (size_t i = 0; i < POSTA_ARRAY_LEN(names); i++)
        if (strlen(names[i]) == len && strncmp(names[i], name, len) == 0)
            return vals[i];
    return NULL;
}

/* reply_begin - "CODE-ENH " (more lines follow) or "CODE ENH " (enh may be NULL) */
static void reply_begin(struct session *s, int code, const char *enh, bool more)
{
    (void)buf_printf(&s->out, "%03d%c", code, more ? '-' : ' ');
    if (enh != NULL)
        (void)buf_printf(&s->out, "%s ", enh);
}

/* reply_line - one line of a reply with its text */
static void reply_line(struct session *s, int code, const char *enh, bool more,
                       const char *text, size_t len)
{
    size_t start = s->out.len;

    reply_begin(s, code, enh, more);
    (void)buf_append(&s->out, text, len);
    reply_sanitize(&s->out, start);
    (void)buf_append(&s->out, "\r\n", 2);
}

/*
 * reply - append "CODE ENH TEXT\r\n" (enh may be NULL); a 4xx or 5xx
 * reply gets smtpd_reject_footer after it: its "\n" start new lines of
 * the same reply, a leading "\c" continues the last line, and $macros
 * ($client_address, $client_port, $client_name, $helo_name,
 * $server_name, $localtime) are expanded
 */
void reply(struct session *s, int code, const char *enh, const char *fmt, ...)
{
    struct buf text = BUF_INIT, foot = BUF_INIT;
    const char *f, *nl;
    va_list ap;

    if (!reply_is_error(code) || *smtpd_conf.reject_footer == 0) {
        /* the common case: one line, formatted in place */
        size_t start = s->out.len;

        reply_begin(s, code, enh, false);
        va_start(ap, fmt);
        (void)buf_vprintf(&s->out, fmt, ap);
        va_end(ap);
        reply_sanitize(&s->out, start);
        (void)buf_append(&s->out, "\r\n", 2);
        if (reply_is_error(code))
            s->errors++;
        return;
    }
    va_start(ap, fmt);
    (void)buf_vprintf(&text, fmt, ap);
    va_end(ap);
    macro_expand(smtpd_conf.reject_footer, footer_var, s, &foot);
    f = buf_str(&foot);
    if (strncmp(f, FOOTER_SAME_LINE, strlen(FOOTER_SAME_LINE)) == 0) {
        f += strlen(FOOTER_SAME_LINE);
        nl = strstr(f, FOOTER_NEWLINE);
        (void)buf_append(&text, f, nl ? (size_t)(nl - f) : strlen(f));
        f = nl ? nl + strlen(FOOTER_NEWLINE) : "";
    }
    reply_line(s, code, enh, *f != 0, buf_str(&text), text.len);
    while (f != NULL && *f) {
        nl = strstr(f, FOOTER_NEWLINE);
        reply_line(s, code, enh, nl != NULL && nl[strlen(FOOTER_NEWLINE)] != 0, f,
                   nl ? (size_t)(nl - f) : strlen(f));
        f = nl ? nl + strlen(FOOTER_NEWLINE) : NULL;
    }
    buf_free(&text);
    buf_free(&foot);
    s->errors++;
}

/* reply_raw - append preformatted reply lines (they end in CRLF) */
void reply_raw(struct session *s, const char *text)
{
    (void)buf_puts(&s->out, text);
}
