/*
 * data.c - smtpd's DATA and BDAT: content reception into the queue file
 *
 * The queue file (mail/qfile.h) is created in incoming/ when the content
 * starts, named by the queue ID that MAIL FROM allocated. It holds the
 * envelope (time, attributes, sender, recipients with their DSN
 * parameters), then the Received: header this server adds, then the
 * content as the decoders of data_decode.h hand it over. At the end of
 * data the file is finished and given to the group commit
 * (mail/qcommit.h); "250 2.0.0 Ok: queued as QID" is said only in the
 * commit callback, when the file and its directory entry are on disk.
 *
 * Headers are scanned only lightly while streaming: the first Message-ID
 * is remembered for the log ("QID: message-id=<...>"), and Received:
 * fields are counted: more than hopcount_limit (a mail loop) is refused
 * at the end of data with 554 5.4.0 "Error: too many hops", as Postfix
 * does (fields longer than 998 bytes are not counted). With
 * header_checks or body_checks (mail/msgcheck.h) the content, our own
 * Received: field included, passes through the checks first; at the end
 * of data their REJECT is the reply (the file is removed), DISCARD and
 * HOLD go to txn_discard/txn_hold. When mail
 * authentication is on (mailauth.c) the content after Received: is held
 * back until the end of data, so that Authentication-Results or a
 * DKIM-Signature can go on top; the reply waits for its verdict.
 *
 * DIAGNOSTICS: a queue file that cannot be created or written gets 451
 * 4.3.0 (452 4.3.1 when the disk is full) and is removed; a message over
 * message_size_limit is read to its end, then refused 552 5.3.4 and
 * removed; a dropped client's unfinished file is removed.
 *
 * SECURITY: nothing is kept in memory but one header line (bounded) while
 * the headers are scanned; long lines stream straight to the file.
 */
#include "util/sys.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mail/msgcheck.h"
#include "mail/qcommit.h"
#include "mail/qfile.h"
#include "mail/trigger.h"
#include "util/alloc.h"
#include "util/event.h"
#include "util/log.h"

#include "mailauth.h"
#include "policy.h"
#include "smtpd.h"

#define HDR_LINE_MAX 998        /* RFC 5322 line limit: longer is not scanned */
#define MSGID_MAX 500

enum { HDR_BOL = 0, HDR_IN, HDR_DONE };

/* data_abort - drop unfinished content: remove the file, forget a pending commit */
void data_abort(struct session *s)
{
    if (s->wait & SW_COMMIT) {
        qcommit_cancel(s);
        s->wait &= ~SW_COMMIT;
    }
    if (s->qf != NULL) {
        qfw_abort(s->qf);
        s->qf = NULL;
    }
    mailauth_abort(s);
    msgcheck_free(s->mc);
    s->mc = NULL;
    buf_reset(&s->hdr);
    s->too_big = false;
    s->held = false;
}

/* hdr_line - one complete header line (without "\n") */
static void hdr_line(struct session *s, const char *p, size_t n)
{
    static const char name[] = "message-id:";
    static const char received[] = "received:";
    size_t k = sizeof(name) - 1;

    if (n == 0) {
        s->hdr_state = HDR_DONE;
        return;
    }
    if (n >= sizeof(received) - 1 && strncasecmp(p, received, sizeof(received) - 1) == 0)
        s->hops++;
    if (s->msgid != NULL || n < k || strncasecmp(p, name, k) != 0)
        return;
    p += k;
    n -= k;
    while (n > 0 && (*p == ' ' || *p == '\t')) {
        p++;
        n--;
    }
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
        n--;
    if (n > 0 && n <= MSGID_MAX)
        s->msgid = xstrndup(p, n);
}

/* hdr_scan - follow the header lines in the decoded content */
static void hdr_scan(struct session *s, const char *p, size_t n)
{
    while (n > 0 && s->hdr_state != HDR_DONE) {
        const char *nl = memchr(p, '\n', n);
        size_t seg = nl ? (size_t)(nl - p) : n;

        if (s->hdr.len + seg <= HDR_LINE_MAX)
            (void)buf_append(&s->hdr, p, seg);
        else
            s->hdr_skip = true;     /* too long to be a header we want */
        if (nl == NULL)
            return;
        if (!s->hdr_skip)
            hdr_line(s, buf_str(&s->hdr), s->hdr.len);
        s->hdr_skip = false;
        buf_reset(&s->hdr);
        p += seg + 1;
        n -= seg + 1;
    }
}

/* data_sink - decoded content: to the queue file unless over the limit */
static void data_sink(void *ctx, const char *p, size_t n)
{
    struct session *s = ctx;

    if (s->too_big || s->qf == NULL)
        return;
    if (smtpd_conf.size_limit > 0 && s->dd.out_bytes + n > smtpd_conf.size_limit) {
        s->too_big = true;
        return;
    }
    if (s->hdr_state != HDR_DONE)
        hdr_scan(s, p, n);
    if (s->mc != NULL)
        msgcheck_feed(s->mc, p, n);
    else if (!mailauth_content(s, p, n))
        qfw_content(s->qf, p, n);
}

/* mc_out - checked content: to mailauth or the file (our Received: straight to the file) */
static void mc_out(void *ctx, const char *p, size_t n)
{
    struct session *s = ctx;

    if (s->qf != NULL && (s->mc_trace || !mailauth_content(s, p, n)))
        qfw_content(s->qf, p, n);
}

/* mc_log - "QID: reject: header TEXT from NAME[ADDR]; from=<> to=<> proto=P helo=<H>: ..." */
static void mc_log(void *ctx, const struct msgcheck_event *ev)
{
    struct session *s = ctx;
    struct buf origin = BUF_INIT, line = BUF_INIT;

    (void)buf_printf(&origin, "from %s[%s]; from=<%s>", s->name, s->addr,
                     s->sender ? s->sender : "");
    if (s->nrcpt > 0)
        (void)buf_printf(&origin, " to=<%s>", s->rcpts[0].addr);
    (void)buf_printf(&origin, " proto=%s helo=<%s>", session_protocol(s),
                     s->helo ? s->helo : "");
    msgcheck_log_line(&line, s->qid, ev, buf_str(&origin));
    msg_info("%s", buf_str(&line));
    buf_free(&origin);
    buf_free(&line);
}

/* checks_start - header/body checks for this message; our Received: goes first */
static void checks_start(struct session *s, const struct buf *rcv)
{
    if (!msgcheck_active(smtpd_conf.checks)) {
        qfw_content(s->qf, rcv->data, rcv->len);
        return;
    }
    s->mc = msgcheck_new(smtpd_conf.checks, s->qid, mc_out, mc_log, s);
    s->mc_trace = true;
    msgcheck_feed(s->mc, rcv->data, rcv->len);
    msgcheck_field_end(s->mc);
    s->mc_trace = false;
}

/* write_error - the answer to a queue file that cannot be written */
static struct smtpd_result write_error(int e)
{
    if (e == ENOSPC || e == EDQUOT)
        return (struct smtpd_result){452, "4.3.1", "Insufficient system storage"};
    return (struct smtpd_result){451, "4.3.0", "Error: queue file write error"};
}

/* data_open - create the queue file, write the envelope and Received:; 0 or the error */
static int data_open(struct session *s, struct smtpd_result *r)
{
    struct timespec ts;
    struct buf rcv = BUF_INIT;

    s->qf = qfw_create(smtpd_conf.incoming_fd, s->qid);
    if (s->qf == NULL) {
        int e = errno;

        msg_warn("%s: create queue file: %m", s->qid);
        *r = write_error(e);
        return r->code;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    qfw_recordf(s->qf, QREC_TIME, "%lld.%06ld", (long long)ts.tv_sec, ts.tv_nsec / 1000);
    qfw_recordf(s->qf, QREC_ATTR, "client_name=%s", s->name);
    qfw_recordf(s->qf, QREC_ATTR, "client_address=%s", s->addr);
    qfw_recordf(s->qf, QREC_ATTR, "client_port=%s", s->port);
    if (s->helo)
        qfw_recordf(s->qf, QREC_ATTR, "helo_name=%s", s->helo);
    qfw_recordf(s->qf, QREC_ATTR, "protocol=%s", session_protocol(s));
    if (s->body)
        qfw_recordf(s->qf, QREC_ATTR, "encoding=%s", s->body);
    if (s->smtputf8)
        qfw_recordf(s->qf, QREC_ATTR, "smtputf8=yes");
    if (s->envid)
        qfw_recordf(s->qf, QREC_ATTR, "envid=%s", s->envid);
    if (s->ret)
        qfw_recordf(s->qf, QREC_ATTR, "ret=%s", s->ret);
    if (s->decl_size >= 0)
        qfw_recordf(s->qf, QREC_ATTR, "size=%lld", s->decl_size);
    qfw_recordf(s->qf, QREC_ATTR, "log_ident=%s", s->qid);
    qfw_recordf(s->qf, QREC_ATTR, "rewrite_context=remote");
    actions_start(s);
    actions_envelope(s, s->qf);
    if (mailauth_signs(s))
        qfw_recordf(s->qf, QREC_ATTR, "%s=%s", QATTR_DKIM_SIGN, QATTR_DKIM_SIGN_PENDING);
    qfw_record(s->qf, QREC_SENDER, s->sender, strlen(s->sender));
    if (actions_recipients(s, s->qf, r) != 0) {
        qfw_abort(s->qf);
        s->qf = NULL;
        return r->code;
    }
    qfw_record(s->qf, QREC_MESSAGE, "", 0);
    received_header(s, &rcv, s->nrcpt == 1 ? s->rcpts[0].addr : NULL);
    checks_start(s, &rcv);
    buf_free(&rcv);
    mailauth_data_start(s);
    dd_init(&s->dd, s->bare_lf_exempt ? DD_BARE_LF_NORMALIZE : smtpd_conf.bare_lf,
            data_sink, s);
    s->dd.out_bytes = 0;
    s->hdr_state = HDR_BOL;
    s->hops = 0;
    s->eod_done = false;
    buf_reset(&s->hdr);
    s->too_big = false;
    free(s->msgid);
    s->msgid = NULL;
    /*
     * PREPEND fields enter as the first lines of the content: on top of
     * the client's header, below Received: and a pending DKIM field
     */
    if (s->act.prepend.len > 0)
        data_sink(s, s->act.prepend.data, s->act.prepend.len);
    return 0;
}

/* data_no_rcpt - DATA/BDAT without a recipient: the right 503/554 */
static struct smtpd_result data_no_rcpt(const struct session *s)
{
    if (s->state == SS_CONNECT || s->state == SS_IDLE)
        return (struct smtpd_result){503, "5.5.1", "Error: need MAIL command"};
    if (s->rcpt_tries > 0)
        return (struct smtpd_result){554, "5.5.1", "Error: no valid recipients"};
    return (struct smtpd_result){503, "5.5.1", "Error: need RCPT command"};
}

/* cmd_data - DATA: open the queue file and switch to content */
int cmd_data(struct session *s, const char *arg)
{
    struct smtpd_result r;
    int pcode = 0;

    if (*arg) {
        reply(s, 501, "5.5.4", "Syntax: DATA");
        return 501;
    }
    if (s->state == SS_BDAT) {
        reply(s, 503, "5.5.1", "Error: DATA after BDAT");
        return 503;
    }
    s->chunk_last = false;
    if (s->state != SS_RCPT)
        r = data_no_rcpt(s);
    else if ((pcode = policy_data(s, "DATA", arg, cmd_data, &r)) == POLICY_LATER)
        return REPLY_LATER;
    else if (pcode == 0 && data_open(s, &r) == 0)
        r = (struct smtpd_result){0, NULL, NULL};
    if (r.code != 0) {
        reply(s, r.code, r.enh, "%s", r.text);
        return r.code;
    }
    s->state = SS_DATA;
    reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
    return REPLY_LATER;
}

/*
 * data_trigger_qmgr - wake the queue manager once per group commit batch
 * (deferred: every callback of the batch has run; event_defer dedups)
 */
static void data_trigger_qmgr(void *ctx)
{
    (void)ctx;
    trigger_send(smtpd_conf.cfg, TRIGGER_QMGR, TRIGGER_SCAN);
}

/* data_committed - group commit callback: now the message exists, or not */
static void data_committed(void *ctx, int err)
{
    struct session *s = ctx;
    enum smtpd_verb v = s->chunk_last ? V_BDAT : V_DATA;

    s->wait &= ~SW_COMMIT;
    if (err == 0) {
        reply(s, 250, "2.0.0", "Ok: queued as %s", s->qid);
        /* the error and junk command limits count what a client did without delivering mail */
        s->junk_cmds = 0;
        s->errors = 0;
        event_defer(data_trigger_qmgr, NULL);
        if (s->msgid)
            msg_info("%s: message-id=%s", s->qid, s->msgid);
        session_count_verb(s, v, 250);
    } else {
        /* qcommit has removed the file; the disk may be full or failing */
        struct smtpd_result r = write_error(err);

        msg_warn("%s: queue file commit: %s", s->qid, strerror(err));
        reply(s, r.code, r.enh, "%s", r.text);
        session_count_verb(s, v, r.code);
    }
    session_reset_transaction(s);
    session_resume(s);
}

/* data_end_reply - the message ends without a commit: remove it, reply, forget */
static void data_end_reply(struct session *s, enum smtpd_verb v, struct smtpd_result r)
{
    data_abort(s);
    if (r.code == 250)
        reply(s, r.code, r.enh, "Ok: queued as %s", s->qid);
    else
        reply(s, r.code, r.enh, "%s", r.text);
    session_count_verb(s, v, r.code);
    session_reset_transaction(s);
}

/*
 * checks_end - the verdict of header/body checks; true when the message
 * was refused (replied and dropped)
 */
static bool checks_end(struct session *s, enum smtpd_verb v)
{
    const struct msgcheck_verdict *mv = msgcheck_end(s->mc);
    char enh[MSGCHECK_ENH_MAX];
    char *text;
    int code;

    if (mv->unsupported)
        msg_warn("%s: header/body checks action %s is not supported: ignored", s->qid,
                 mv->unsupported);
    if (mv->kind == MSGCHECK_DISCARD)
        txn_discard(s, mv->text);
    else if (mv->hold)
        txn_hold(s, mv->hold_text);
    if (mv->kind != MSGCHECK_REJECT && mv->kind != MSGCHECK_DEFER) {
        msgcheck_free(s->mc);
        s->mc = NULL;
        return false;
    }
    code = mv->code;
    snprintf(enh, sizeof(enh), "%s", mv->enh);
    text = xstrdup(mv->text);
    data_end_reply(s, v, (struct smtpd_result){code, enh, text});  /* frees s->mc */
    free(text);
    return true;
}

/* data_eod_again - the end-of-data restrictions answered after a wait: finish */
static int data_eod_again(struct session *s, const char *arg)
{
    (void)arg;
    data_finish(s, s->chunk_last ? V_BDAT : V_DATA);
    return REPLY_LATER;     /* data_finish replied and counted */
}

/* data_finish - end of the content: refuse, drop, or finish (hold) and commit */
void data_finish(struct session *s, enum smtpd_verb v)
{
    s->last_cmd = "END-OF-MESSAGE";
    if (s->too_big) {
        data_end_reply(s, v,
                       (struct smtpd_result){552, "5.3.4", "Message size exceeds fixed limit"});
        return;
    }
    if (s->hops > smtpd_conf.hopcount_limit) {
        session_log_reject(s, "END-OF-MESSAGE", "554 5.4.0 Error: too many hops");
        data_end_reply(s, v, (struct smtpd_result){554, "5.4.0", "Error: too many hops"});
        return;
    }
    if (s->mc != NULL && checks_end(s, v))
        return;
    if (!s->eod_done) {
        struct smtpd_result r;
        int pcode = policy_eod(s, data_eod_again, &r);

        if (pcode == POLICY_LATER)
            return;     /* a lookup or a policy server: data_eod_again comes back here */
        s->eod_done = true;
        if (pcode != 0) {
            data_end_reply(s, v, r);
            return;
        }
    }
    if (s->act.discard != NULL) {
        msg_info("%s: discard: %s", s->qid, *s->act.discard ? s->act.discard : "DISCARD action");
        data_end_reply(s, v, (struct smtpd_result){250, "2.0.0", NULL});
        return;
    }
    if (mailauth_end(s, v))
        return;     /* it calls data_finish again when the verdict is in */
    if (s->act.hold != NULL && !data_hold(s, *s->act.hold ? s->act.hold : "HOLD action")) {
        data_end_reply(s, v, write_error(errno));
        return;
    }
    if (qfw_finish(s->qf) < 0) {
        int e = qfw_error(s->qf);

        msg_warn("%s: write queue file: %s", s->qid, strerror(e ? e : EIO));
        data_end_reply(s, v, write_error(e));
        return;
    }
    s->state = SS_QUEUE;
    s->wait |= SW_COMMIT;
    qcommit_add(s->qf, data_committed, s);
    s->qf = NULL;
}

/* bdat_fail - remember the error every chunk of this transaction gets */
static void bdat_fail(struct session *s, struct smtpd_result r)
{
    data_abort(s);
    s->bdat_failed = true;
    s->bdat_result = r;
}

/* chunk_done - all bytes of a BDAT chunk read: reply, finish, or go on */
static void chunk_done(struct session *s)
{
    if (!s->bdat_failed && s->too_big)
        bdat_fail(s, (struct smtpd_result){552, "5.3.4", "Message size exceeds fixed limit"});
    if (!s->bdat_failed && s->qf != NULL && qfw_error(s->qf) != 0) {
        int e = qfw_error(s->qf);

        msg_warn("%s: write queue file: %s", s->qid, strerror(e));
        bdat_fail(s, write_error(e));
    }
    if (s->bdat_failed) {
        int code = s->bdat_result.code;

        reply(s, code, s->bdat_result.enh, "%s", s->bdat_result.text);
        session_count_verb(s, V_BDAT, code);
        if (s->chunk_last || s->sender == NULL)
            session_reset_transaction(s);
        else
            s->state = SS_BDAT;
        return;
    }
    if (s->chunk_last) {
        dd_bdat_finish(&s->dd);
        data_finish(s, V_BDAT);
        return;
    }
    reply(s, 250, "2.0.0", "Ok: %llu bytes", (unsigned long long)s->chunk_size);
    session_count_verb(s, V_BDAT, 250);
    s->state = SS_BDAT;
}

/* cmd_bdat - BDAT size [LAST] (RFC 3030) */
int cmd_bdat(struct session *s, const char *arg)
{
    unsigned long long n;
    char *end;
    bool last = false;

    if (*arg < '0' || *arg > '9')
        goto syntax;
    errno = 0;
    n = strtoull(arg, &end, 10);
    if (errno == ERANGE)
        goto syntax;
    while (*end == ' ')
        end++;
    if (strcasecmp(end, "LAST") == 0)
        last = true;
    else if (*end != 0)
        goto syntax;
    s->chunk_left = n;
    s->chunk_size = n;
    s->chunk_last = last;
    s->last_cmd = "BDAT";
    /* an error is answered once the chunk has been read (and discarded) */
    if (!s->bdat_failed) {
        struct smtpd_result r;
        int pcode = 0;

        if (s->state != SS_RCPT && s->state != SS_BDAT)
            bdat_fail(s, data_no_rcpt(s));
        else if (s->state == SS_RCPT
                 && (pcode = policy_data(s, "BDAT", arg, cmd_bdat, &r)) == POLICY_LATER)
            return REPLY_LATER;
        else if (s->state == SS_RCPT && (pcode != 0 || data_open(s, &r) != 0))
            bdat_fail(s, r);
    }
    s->state = SS_CHUNK;
    return REPLY_LATER;
syntax:
    /*
     * Without a valid count the chunk cannot be skipped: its bytes would
     * be read as commands. Say so and hang up, as Postfix does.
     */
    reply(s, 521, "5.5.4", "Syntax: BDAT count [LAST]");
    session_close(s);
    return 521;
}

/* data_input - content bytes for DATA or the current BDAT chunk */
size_t data_input(struct session *s, const char *p, size_t n)
{
    if (s->state == SS_DATA) {
        size_t used = 0;
        enum dd_status st = dd_data_feed(&s->dd, p, n, &used);

        if (st == DD_END)
            data_finish(s, V_DATA);
        else if (st == DD_ERR_BARE_LF)
            session_bare_lf(s);
        return used;
    }
    if (s->chunk_left > 0) {
        size_t m = n < s->chunk_left ? n : (size_t)s->chunk_left;

        if (!s->bdat_failed && s->qf != NULL)
            dd_bdat_feed(&s->dd, p, m);
        s->chunk_left -= m;
        if (s->chunk_left == 0)
            chunk_done(s);
        return m;
    }
    chunk_done(s);
    return 0;
}
