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

#include "mail/maildate.h"
#include "smtpd.h"


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
    mail_date(out, time(NULL));
    (void)buf_putc(out, '\n');
}
