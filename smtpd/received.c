/*
 * received.c - the Received: header smtpd puts first in every message
 *
 *   Received: from HELO (NAME [ADDR])
 *   	by MYHOSTNAME (posta) with ESMTP id QID
 *   	for <RCPT>; DATE
 *
 * The "for" clause only when the message has one recipient (as Postfix
 * does, so that a Bcc list is not revealed); the protocol is SMTP, ESMTP
 * or UTF8SMTP; DATE is RFC 5322 local time with a zone comment. Lines end
 * in "\n" (the queue file's form).
 */
#include "util/sys.h"

#include <string.h>
#include <time.h>

#include "smtpd.h"

#define DATE_MAX 64

/* rfc5322_date - "Sat, 22 Nov 2025 18:30:01 +0000 (UTC)" */
void rfc5322_date(struct buf *out, time_t when)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    char zone[DATE_MAX];
    long off;

    localtime_r(&when, &tm);
    off = tm.tm_gmtoff / 60;
    if (strftime(zone, sizeof(zone), "%Z", &tm) == 0)
        zone[0] = 0;
    (void)buf_printf(out, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld", days[tm.tm_wday % 7],
                     tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+', (off < 0 ? -off : off) / 60,
                     (off < 0 ? -off : off) % 60);
    if (zone[0])
        (void)buf_printf(out, " (%s)", zone);
}

/* received_header - the Received: header for the current transaction */
void received_header(struct session *s, struct buf *out, const char *rcpt)
{
    bool v6 = strchr(s->addr, ':') != NULL;

    (void)buf_printf(out, "Received: from %s (%s [%s%s])\n\tby %s (posta) with %s id %s",
                     s->helo ? s->helo : s->name, s->name, v6 ? "IPv6:" : "", s->addr,
                     smtpd_conf.myhostname, session_protocol(s), s->qid);
    if (rcpt != NULL)
        (void)buf_printf(out, "\n\tfor <%s>; ", rcpt);
    else
        (void)buf_puts(out, ";\n\t");
    rfc5322_date(out, time(NULL));
    (void)buf_putc(out, '\n');
}
