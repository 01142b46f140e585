/*
 * received.c - the Received: header smtpd puts first in every message
 *
 *   Received: from HELO (NAME [ADDR])
 *   	(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))
 *   	(No client certificate requested)
 *   	(Authenticated sender: LOGIN)
 *   	by MYHOSTNAME (posta) with ESMTPSA id QID
 *   	for <RCPT>; DATE
 *
 * The "for" clause only when the message has one recipient (as Postfix
 * does, so that a Bcc list is not revealed); the protocol is SMTP, ESMTP
 * or UTF8SMTP with RFC 3848's S (TLS) and A (AUTH) suffixes; the "using"
 * lines only with smtpd_tls_received_header = yes, the "Authenticated
 * sender" line only with smtpd_sasl_authenticated_header = yes; DATE is
 * RFC 5322 local time with a zone comment. Lines end in "\n" (the queue
 * file's form).
 */
#include "util/sys.h"

#include <string.h>
#include <time.h>

#include "mail/maildate.h"
#include "util/tls.h"

#include "smtpd.h"


/* received_header - the Received: header for the current transaction */
void received_header(struct session *s, struct buf *out, const char *rcpt)
{
    bool v6 = strchr(s->addr, ':') != NULL;

    (void)buf_printf(out, "Received: from %s (%s [%s%s])\n", s->helo ? s->helo : s->name,
                     s->name, v6 ? "IPv6:" : "", s->addr);
    if (s->tls_ready && smtpd_conf.tls_received_header)
        (void)buf_printf(out, "\t(using %s)\n\t(No client certificate requested)\n",
                         tls_summary(s->tls));
    if (s->authenticated && smtpd_conf.sasl_auth_header)
        (void)buf_printf(out, "\t(Authenticated sender: %s)\n", s->sasl_username);
    (void)buf_printf(out, "\tby %s (posta) with %s id %s", smtpd_conf.myhostname,
                     session_protocol(s), s->qid);
    if (rcpt != NULL)
        (void)buf_printf(out, "\n\tfor <%s>; ", rcpt);
    else
        (void)buf_puts(out, ";\n\t");
    mail_date(out, time(NULL));
    (void)buf_putc(out, '\n');
}
