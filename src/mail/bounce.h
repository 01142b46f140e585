/*
 * bounce.h - delivery status notifications (RFC 3464) as new queue files
 *
 * qmgr calls bounce_notify() once a message has finished (or, for delay
 * warnings, when delay_warning_time has passed) with the recipients the
 * notice is about. The notice is written as a complete, durable queue file
 * in incoming/ (fdatasync + directory fsync before returning), so qmgr may
 * then mark those recipients done: no notice is lost in a crash.
 *
 * Rules (Postfix and RFC 3461/3464):
 *  - never a notice to the null sender: for a message whose sender is <>
 *    (a bounce) a failure notice goes to 2bounce_notice_recipient
 *    (postmaster) with the sender double_bounce_sender, as Postfix does
 *    only when notify_classes includes 2bounce or bounce (Postfix's default
 *    "resource, software" drops undeliverable bounces, logged here); that
 *    postmaster copy covers every recipient whatever its NOTIFY and
 *    returns the full message; a message from double_bounce_sender itself
 *    is never bounced (logged and dropped);
 *  - failure notices unless the recipient said NOTIFY=NEVER or gave
 *    NOTIFY without FAILURE; success notices only for NOTIFY=SUCCESS;
 *    delay notices only for NOTIFY=DELAY or no NOTIFY (and only when
 *    delay_warning_time > 0, which qmgr decides);
 *  - the report: multipart/report; report-type=delivery-status with a
 *    human-readable part, a message/delivery-status part (Reporting-MTA:
 *    dns; $myhostname, X-Posta-Queue-ID, Original-Envelope-Id from ENVID,
 *    Arrival-Date, then per recipient Final-Recipient, Original-Recipient
 *    from ORCPT, Action, Status, Diagnostic-Code / Remote-MTA when known),
 *    and the original as message/rfc822 (RET=FULL or none given) or
 *    text/rfc822-headers (RET=HDRS, delay and success notices, and
 *    messages over bounce_size_limit, default 50000); From:
 *    MAILER-DAEMON@$myhostname ("Mail Delivery System"), Subject as Postfix ("Undelivered Mail
 *    Returned to Sender", "Delayed Mail (still being retried)",
 *    "Successful Mail Delivery Report"; "Postmaster Copy: Undelivered
 *    Mail" for the postmaster copy), Auto-Submitted: auto-replied.
 * bounce.c's header comment describes the notice in detail; the golden
 * files in tests/golden/bounce/ show one of each kind.
 */
#ifndef POSTA_BOUNCE_H
#define POSTA_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>

struct cfg;
struct qfile;

enum bounce_kind {
    BOUNCE_FAILED,     /* Action: failed */
    BOUNCE_DELAYED,    /* Action: delayed */
    BOUNCE_DELIVERED,  /* Action: delivered (NOTIFY=SUCCESS) */
    BOUNCE_RELAYED,    /* Action: relayed (NOTIFY=SUCCESS, next hop without DSN) */
};

struct bounce_rcpt {
    const char *address;      /* final recipient */
    const char *orig;         /* original recipient (for the human part) */
    const char *orcpt;        /* ORCPT "rfc822;addr" or NULL */
    unsigned notify;          /* QNOTIFY_* bits, 0 = not given */
    const char *dsn;          /* "5.1.1" */
    const char *text;         /* diagnostic text */
    const char *remote_mta;   /* NULL for local delivery */
    const char *diag;         /* the remote MTA's reply ("smtp;" Diagnostic-
                               * Code), NULL: text is posta's own diagnostic */
    long long last_attempt;   /* seconds; 0 = now */
};

/*
 * bounce_notify - write one notice about recipients r[0..n) of message q
 * (open, parsed queue file) into $queue_directory/incoming. Recipients
 * whose NOTIFY excludes this kind are skipped; when none remain, or the
 * rules say no notice, nothing is written and 0 is returned with
 * new_qid[0] = 0. Returns 0 on success (new_qid holds the new queue ID,
 * QID_MAX bytes) or -1 with errno on a write error (nothing left behind).
 */
int bounce_notify(struct cfg *cfg, struct qfile *q, enum bounce_kind kind,
                  const struct bounce_rcpt *r, size_t n, char *new_qid);

#endif
