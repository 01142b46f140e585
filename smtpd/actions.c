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
 * Every recipient written here (REDIRECT and BCC too) goes through
 * virtual_alias_maps first (mail/valias.h); a table that fails refuses
 * the message with 451 4.3.0 (an expansion over its limits with 451
 * 4.6.0) rather than queue it unexpanded.
 *
 * DIAGNOSTICS: policy.c logs each action when it is decided; here "QID:
 * discard: ..." when a message is dropped and a warning when the file
 * cannot be moved to hold/ (the message is then refused with 451).
 */
#include "util/sys.h"

#include <string.h>
#include <unistd.h>

#include "mail/bcc.h"
#include "mail/cleanup.h"
#include "mail/qfile.h"
#include "mail/valias.h"
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

    if (sa->hold == NULL && sa->discard == NULL && sa->redirect == NULL && sa->filter == NULL
        && sa->nbcc == 0 && sa->prepend.len == 0)
        return;     /* the common case: nothing decided at connect or HELO */
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

/* actions_envelope - the content_filter attribute: FILTER, else the setting */
void actions_envelope(struct session *s, struct qfile_writer *qf)
{
    const char *filter = s->act.filter ? s->act.filter : smtpd_conf.content_filter;

    if (filter != NULL && *filter)
        qfw_recordf(qf, QREC_ATTR, "%s=%s", QATTR_CONTENT_FILTER, filter);
}

/* expand_failed - the reply to a failed expansion (valias logged why) */
static int expand_failed(enum valias_status st, struct smtpd_result *r)
{
    if (st == VALIAS_LIMIT)
        *r = (struct smtpd_result){451, "4.6.0", "Error: Alias expansion error"};
    else
        *r = (struct smtpd_result){451, "4.3.0", "Error: Temporary lookup failure"};
    return r->code;
}

/*
 * actions_recipients - write the recipients: as received, or the REDIRECT;
 * then the copies (BCC actions, always_bcc and the BCC maps: mail/bcc.h). Each goes through virtual_alias_maps (mail/valias.h), as
 * Postfix's cleanup expands every envelope recipient, REDIRECT and BCC
 * addresses included; a failed expansion refuses the message.
 */
int actions_recipients(struct session *s, struct qfile_writer *qf, struct smtpd_result *r)
{
    /* no_address_mappings: neither virtual aliases nor BCC maps (a filter's way back) */
    struct valias *va = (smtpd_conf.overrides & RECEIVE_NO_ADDRESS_MAPPINGS) ? NULL
                                                                           : smtpd_conf.valias;
    struct valias_list copies = {0};
    enum valias_status st = VALIAS_OK;
    const char *why = NULL;
    bool ok;

    if (s->act.redirect != NULL) {
        st = valias_write_rcpt(va, qf, s->qid, s->act.redirect, NULL, 0, &why);
    } else {
        for (size_t i = 0; st == VALIAS_OK && i < s->nrcpt; i++) {
            const struct smtpd_rcpt *rc = &s->rcpts[i];

            st = valias_write_rcpt(va, qf, s->qid, rc->addr, rc->orcpt, rc->notify, &why);
        }
    }
    /* the copies: BCC actions, always_bcc, sender_bcc_maps, recipient_bcc_maps */
    for (size_t i = 0; i < s->act.nbcc; i++)
        valias_list_add_new(&copies, s->act.bcc[i]);
    ok = bcc_message(smtpd_conf.bcc, s->sender, &copies);
    for (size_t i = 0; ok && i < s->nrcpt; i++)
        ok = bcc_recipient(smtpd_conf.bcc, s->rcpts[i].addr, &copies);
    if (st == VALIAS_OK && !ok)
        st = VALIAS_TEMPFAIL;
    for (size_t i = 0; st == VALIAS_OK && i < copies.n; i++)
        st = valias_write_rcpt(va, qf, s->qid, copies.addr[i], NULL, QNOTIFY_NEVER, &why);
    valias_list_free(&copies);
    if (st != VALIAS_OK)
        return expand_failed(st, r);
    return 0;
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
