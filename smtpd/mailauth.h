/*
 * mailauth.h - smtpd's mail authentication: SPF, DKIM, DMARC,
 * Authentication-Results and DKIM signing, per transaction
 *
 * The libraries (mail/spf.h, mail/dkim.h, mail/dmarc.h, mail/authres.h)
 * do the judging; this module runs them inside a session:
 *   MAIL FROM    SPF for MAIL FROM and HELO starts (mailauth_mail); with
 *                spf_fail_action = reject the 250 waits for the result.
 *   DATA/BDAT    the header block is collected (bounded by
 *                header_size_limit); the body streams into the DKIM
 *                verifier and is held back (memory, then an unlinked
 *                temporary file) so that the trace fields that depend
 *                on the whole message can go on top.
 *   end of data  the reply waits for the DKIM keys, SPF and DMARC; then
 *                550 5.7.1 (DMARC reject), 451 4.7.1 (temperror with
 *                dmarc_temperror_action = defer), hold (quarantine), or
 *                the queue file gets Received, Authentication-Results,
 *                the header and the body, and the group commit goes on.
 * "Our" mail (an AUTH client, a mynetworks client) is signed instead of
 * verified, and never held back: the header block is read, the pending
 * signature field (placeholders for bh= and b=) is written above it, and
 * the body streams to the queue file; the queue manager computes the
 * signature before any delivery. See man/posta-auth.5.
 */
#ifndef POSTA_SMTPD_MAILAUTH_H
#define POSTA_SMTPD_MAILAUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "smtpd.h"

struct cfg;

/* mailauth_pre_jail - DNS servers, resolver, signing keys, public suffix list (as root) */
void mailauth_pre_jail(struct cfg *cfg);
/* mailauth_post_jail - the settings */
void mailauth_post_jail(struct cfg *cfg);

/*
 * mailauth_mail - MAIL FROM was accepted (s->sender set): start SPF.
 * Returns 0 (say 250 now), the code of a refusal it sent (550 5.7.23),
 * or MAILAUTH_LATER (it replies 250 or 550 itself when SPF has answered).
 */
#define MAILAUTH_LATER (-1)
int mailauth_mail(struct session *s);
/*
 * mailauth_signs - the transaction is ours and signing is on: the queue
 * file gets the dkim_sign attribute (before its content starts), and the
 * signature field with placeholders right after Received when the From
 * domain has a key; the queue manager completes it (mail/dkim.h)
 */
bool mailauth_signs(struct session *s);
/* mailauth_data_start - content starts (after Received was written) */
void mailauth_data_start(struct session *s);
/* mailauth_content - decoded content; true when mailauth took the bytes */
bool mailauth_content(struct session *s, const char *p, size_t n);
/*
 * mailauth_end - end of data: true when mailauth has taken over (the
 * reply comes later: the session waits with SW_COMMIT); it calls
 * data_finish() again once the content is in the queue file.
 */
bool mailauth_end(struct session *s, enum smtpd_verb v);
/* mailauth_abort - the transaction ends: cancel lookups, free */
void mailauth_abort(struct session *s);

/* data.c: finish the queue file and commit (after mailauth_end) */
void data_finish(struct session *s, enum smtpd_verb v);

#endif
