/*
 * actions.c - what the restrictions decided for a message beyond accept
 * or reject: HOLD, DISCARD, PREPEND, REDIRECT, BCC and FILTER
 *
 * Access tables and policy services (policy.c) and the content checks
 * may answer with these actions. The restriction engine collects them
 * while one command is evaluated and keeps them only when the command is
 * accepted (a rejected recipient's actions are forgotten); they then
 * apply to the whole message, as in Postfix:
 *   - PREPEND fields are the first lines of the content (data.c), in the
 *     order they were decided: below the Received: field this server
 *     adds (and a pending DKIM field, which the queue manager expects
 *     as the second field), on top of the client's header;
 *   - REDIRECT replaces every recipient by one address (the last REDIRECT
 *     wins); BCC adds recipients (DSN NOTIFY=NEVER: their failures do not
 *     go back to the sender);
 *   - FILTER (the last one wins) and else the content_filter setting of
 *     this smtpd are written as the queue file attribute content_filter,
 *     which makes the queue manager send every recipient to that
 *     transport:nexthop;
 *   - HOLD moves the queue file to hold/ before it is finished; DISCARD
 *     answers the end of data with the usual 250 and removes the file.
 * Actions decided at HELO (smtpd_delay_reject = no) belong to the session
 * and apply to each of its messages.
 *
 * DIAGNOSTICS: policy.c logs each action when it is decided; here "QID:
 * discard: ..." when a message is dropped and a warning when the file
 * cannot be moved to hold/ (the message is then refused with 451).
 */
#include "util/sys.h"

#include <string.h>
#include <unistd.h>

#include "mail/qfile.h"
#include "util/alloc.h"
#include "util/log.h"

#include "smtpd.h"

/* actions_reset - forget every action */
void actions_reset(struct smtpd_actions *a)
{
    free(a->hold);
    free(a->discard);
    free(a->redirect);
    free(a->filter);
    for (size_t i = 0; i < a->nbcc; i++)
        free(a->bcc[i]);
    free(a->bcc);
    buf_free(&a->prepend);
    *a = (struct smtpd_actions){.prepend = BUF_INIT};
}

/* take - replace *into by *from when from is set (the later decision wins) */
static void take(char **into, char **from)
{
    if (*from == NULL)
        return;
    free(*into);
    *into = *from;
    *from = NULL;
}

/* actions_merge - add the actions of from to into; from is left empty */
void actions_merge(struct smtpd_actions *into, struct smtpd_actions *from)
{
    take(&into->hold, &from->hold);
    take(&into->discard, &from->discard);
    take(&into->redirect, &from->redirect);
    take(&into->filter, &from->filter);
    if (from->nbcc > 0) {
        into->bcc = xreallocarray(into->bcc, into->nbcc + from->nbcc, sizeof(*into->bcc));
        memcpy(into->bcc + into->nbcc, from->bcc, from->nbcc * sizeof(*from->bcc));
        into->nbcc += from->nbcc;
        free(from->bcc);
        from->bcc = NULL;
        from->nbcc = 0;
    }
    if (from->prepend.len > 0)
        (void)buf_append(&into->prepend, from->prepend.data, from->prepend.len);
    actions_reset(from);
}

/* set_text - *slot = why (a copy; "" when none) */
static void set_text(char **slot, const char *why)
{
    free(*slot);
    *slot = xstrdup(why ? why : "");
}

/* txn_hold - the current message goes to hold/ when its data ends */
void txn_hold(struct session *s, const char *why)
{
    set_text(&s->act.hold, why);
}

/* txn_discard - the current message is answered 250 and dropped */
void txn_discard(struct session *s, const char *why)
{
    set_text(&s->act.discard, why);
}

/* dup_or_null - a copy of p, or NULL */
static char *dup_or_null(const char *p)
{
    return p ? xstrdup(p) : NULL;
}

/* actions_start - a message's content starts: the session's actions join its own */
void actions_start(struct session *s)
{
    const struct smtpd_actions *sa = &s->sess_act;
    struct smtpd_actions all = {
        .hold = dup_or_null(sa->hold), .discard = dup_or_null(sa->discard),
        .redirect = dup_or_null(sa->redirect), .filter = dup_or_null(sa->filter),
        .prepend = BUF_INIT};

    if (sa->nbcc > 0) {
        all.bcc = xcalloc(sa->nbcc, sizeof(*all.bcc));
        for (size_t i = 0; i < sa->nbcc; i++)
            all.bcc[i] = xstrdup(sa->bcc[i]);
        all.nbcc = sa->nbcc;
    }
    (void)buf_append(&all.prepend, sa->prepend.data, sa->prepend.len);
    /* the session's come first: the transaction's, decided later, win */
    actions_merge(&all, &s->act);
    s->act = all;
}

/* actions_envelope - content_filter and the recipients of the queue file */
void actions_envelope(struct session *s, struct qfile_writer *qf)
{
    const char *filter = s->act.filter ? s->act.filter : smtpd_conf.content_filter;

    if (filter != NULL && *filter)
        qfw_recordf(qf, QREC_ATTR, "%s=%s", QATTR_CONTENT_FILTER, filter);
}

/* actions_recipients - write the recipients: as received, or the REDIRECT; then BCCs */
void actions_recipients(struct session *s, struct qfile_writer *qf)
{
    if (s->act.redirect != NULL) {
        qfw_record(qf, QREC_RCPT, s->act.redirect, strlen(s->act.redirect));
    } else {
        for (size_t i = 0; i < s->nrcpt; i++) {
            const struct smtpd_rcpt *rc = &s->rcpts[i];

            if (rc->orcpt)
                qfw_record(qf, QREC_ORCPT, rc->orcpt, strlen(rc->orcpt));
            if (rc->notify)
                qfw_recordf(qf, QREC_NOTIFY, "%u", rc->notify);
            qfw_record(qf, QREC_RCPT, rc->addr, strlen(rc->addr));
        }
    }
    for (size_t i = 0; i < s->act.nbcc; i++) {
        qfw_recordf(qf, QREC_NOTIFY, "%u", QNOTIFY_NEVER);
        qfw_record(qf, QREC_RCPT, s->act.bcc[i], strlen(s->act.bcc[i]));
    }
}

/* data_hold - move the unfinished queue file to hold/ (once); false on error */
bool data_hold(struct session *s, const char *why)
{
    if (s->held)
        return true;
    if (s->qf == NULL || smtpd_conf.hold_fd < 0 || qfw_move(s->qf, smtpd_conf.hold_fd) < 0) {
        msg_warn("%s: move to hold: %m", s->qid);
        return false;
    }
    s->held = true;
    msg_info("%s: hold: %s", s->qid, why);
    return true;
}
