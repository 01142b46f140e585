/*
 * session.c - one SMTP or LMTP client connection, an event-driven state machine
 *
 * A session connects (non-blocking, optionally bound to smtp_bind_address
 * or smtp_bind_address6; AF_UNIX for LMTP sockets), reads the greeting,
 * says EHLO (LHLO for LMTP; HELO when EHLO is refused with 5xx or when
 * smtp_never_send_ehlo is set) and is then ready. Each transaction
 * (sess_xact) sends MAIL, one RCPT per recipient and DATA, all in one write
 * when the server offers PIPELINING (RFC 2920) or one at a time when not,
 * and reads the replies in order; then the content is streamed from the
 * queue file through the DATA encoder (mail/smtpenc.h) with a bounded
 * output buffer, the writes driven by socket writability; then the final
 * reply (LMTP: one per accepted recipient, RFC 2033 4.2). A transaction
 * cut short after MAIL was accepted is cleared with RSET, so the session
 * can carry the next one.
 *
 * States: SS_CONNECT -> SS_GREET -> SS_EHLO/SS_HELO [-> SS_STARTTLS ->
 * SS_TLS -> SS_EHLO] [-> SS_AUTH] -> SS_IDLE <-> SS_XACT, SS_QUIT at the
 * end (with smtp_tls_wrappermode: SS_CONNECT -> SS_TLS -> SS_GREET). The
 * TLS steps live in sess_tls.c, AUTH in sess_sasl.c, the socket and its
 * reads and writes (clear or TLS) in sess_io.c. SS_REPORT holds a result
 * that is handed to the caller from the event loop (a failure found before
 * any I/O), so that a callback never runs inside sess_open or sess_xact. Every state that
 * waits for the server runs under the timer of its stage (the
 * smtp_*_timeout settings); the body timer is pushed back on every write
 * that makes progress.
 *
 * Callbacks: the caller's sess_fn is always the last thing a code path
 * does. Before it runs the session is either back in SS_IDLE (ok) or
 * already freed (!ok), and the status it gets lives on the stack, so the
 * callback may start the next transaction, quit, or close the session.
 * Functions that may end in a callback return false ("s is gone or handed
 * over"): their callers then return at once without touching s.
 *
 * DIAGNOSTICS: results go to the caller in struct sess_status and struct
 * smtp_rcpt, worded as Postfix words them ("host X[A] said: ... (in reply
 * to RCPT TO command)", "conversation with X[A] timed out while ...",
 * "lost connection with X[A] while ...", "connect to X[A]:25: ...").
 * This file logs only protocol problems (msg_warn: a malformed reply, an
 * unreadable queue file) and, with -v, the dialogue.
 *
 * SECURITY: everything read from the server is bounded: one read at a
 * time into a buffer that cannot grow past one maximal reply
 * (SMTP_REPLY_LINE_MAX x SMTP_REPLY_LINES_MAX) plus one read, and the
 * reply parser cleans the text before it is logged or passed on. Output
 * is bounded too: the body is read from the queue file only while less
 * than SESS_OUT_HIGH bytes wait to be written. The encoder makes every
 * line end CR LF and stuffs dots, so nothing in a stored message can end
 * DATA early at the next hop.
 */
#include "util/sys.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "mail/qfile.h"
#include "mail/smtpcmd.h"
#include "mail/smtpenc.h"
#include "mail/smtpreply.h"
#include "util/alloc.h"
#include "util/event.h"
#include "util/log.h"

#include "sess_impl.h"

/* the "(in reply to ...)" phrases */
#define CMD_EHLO "EHLO command"
#define CMD_HELO "HELO command"
#define CMD_LHLO "LHLO command"
#define CMD_MAIL "MAIL FROM command"
#define CMD_RCPT "RCPT TO command"
#define CMD_DATA "DATA command"
#define CMD_DOT "end of DATA command"
#define CMD_RSET "RSET command"


static char chunk_buf[SESS_CHUNK]; /* one piece of content at a time */

static void sess_timer(void *ctx);
static bool body_pump(struct smtp_sess *s);

/* smtp_target_relay - "host[addr]:port" ("host[path]" for AF_UNIX), appended */
void smtp_target_relay(const struct smtp_target *t, struct buf *out)
{
    if (t->sa.ss_family == AF_UNIX) {
        const struct sockaddr_un *sun = (const struct sockaddr_un *)&t->sa;

        (void)buf_printf(out, "%s[%.*s]", t->host,
                         (int)strnlen(sun->sun_path, sizeof(sun->sun_path)), sun->sun_path);
        return;
    }
    (void)buf_printf(out, "%s[%s]:%u", t->host, t->addr, t->port);
}

/* smtp_status_init - an empty status */
void smtp_status_init(struct sess_status *st)
{
    memset(st, 0, sizeof(*st));
    st->st = DELIVER_DEFERRED;
    buf_init(&st->text, 0);
    buf_init(&st->diag, 0);
}

/* smtp_status_free - release a status's text */
void smtp_status_free(struct sess_status *st)
{
    buf_free(&st->text);
    buf_free(&st->diag);
}

/* smtp_rcpt_init - a recipient without a result */
void smtp_rcpt_init(struct smtp_rcpt *r, size_t idx)
{
    memset(r, 0, sizeof(*r));
    r->idx = idx;
    r->st = DELIVER_DEFERRED;
    buf_init(&r->text, 0);
    buf_init(&r->diag, 0);
}

/* smtp_rcpt_free - release a recipient's result text */
void smtp_rcpt_free(struct smtp_rcpt *r)
{
    buf_free(&r->text);
    buf_free(&r->diag);
}

/* sess_target - where s is connected */
const struct smtp_target *sess_target(const struct smtp_sess *s)
{
    return &s->t;
}

/* sess_features - the EHLO features of s */
const struct smtp_features *sess_features(const struct smtp_sess *s)
{
    return &s->feat;
}

/* sess_count - transactions started on s */
unsigned sess_count(const struct smtp_sess *s)
{
    return s->count;
}

/* sess_started_ms - event_now() when s was opened */
unsigned long long sess_started_ms(const struct smtp_sess *s)
{
    return s->started_ms;
}

/* sess_qid - the queue ID for log lines about the running transaction */
const char *sess_qid(const struct smtp_sess *s)
{
    return s->x && s->x->req && s->x->req->queue_id ? s->x->req->queue_id : "smtp";
}

/* xact_clear - forget the running transaction (the caller owns x) */
static void xact_clear(struct smtp_sess *s)
{
    free(s->rst);
    s->rst = NULL;
    s->x = NULL;
}

/* sess_free - close and release everything; no callback */
void sess_free(struct smtp_sess *s)
{
    sess_io_close(s);
    sasl_free(s);
    event_timer_disarm(&s->timer);
    xact_clear(s);
    buf_free(&s->in);
    buf_free(&s->out);
    smtp_reply_free(&s->reply);
    smtp_status_free(&s->status);
    free(s->t.host);
    free(s->namaddr);
    free(s->nexthop);
    free(s->nh_domain);
    free(s);
}

/* sess_close - close at once without QUIT; s is gone */
void sess_close(struct smtp_sess *s)
{
    sess_free(s);
}

/* sess_go_idle - back to the ready state after a result */
static void sess_go_idle(struct smtp_sess *s)
{
    s->state = SS_IDLE;
    event_timer_disarm(&s->timer);
    /* anything the server said beyond its replies makes it unusable */
    if (s->eof || s->in.len > 0)
        s->broken = true;
    set_interest(s);
}

/*
 * sess_finish - hand the result to the caller, last: keep = the session
 * stays (idle), else it is freed first. The status given to fn is a copy
 * on the stack, so fn may do anything with s.
 */
bool sess_finish(struct smtp_sess *s, bool keep)
{
    struct sess_status st = s->status;
    sess_fn fn = s->fn;
    void *ctx = s->ctx;

    smtp_status_init(&s->status);
    s->fn = NULL;
    s->ctx = NULL;
    st.ok = keep;
    xact_clear(s);
    if (keep)
        sess_go_idle(s);
    else
        sess_free(s);
    if (fn)
        fn(s, &st, ctx);
    smtp_status_free(&st);
    return false;
}

/* report_later - the result is ready before any I/O: give it from the loop */
static void report_later(struct smtp_sess *s, bool keep)
{
    s->state = SS_REPORT;
    s->report_keep = keep;
    set_interest(s);
    event_timer_arm(&s->timer, SESS_NOW_MS);
}

/* status_set - fill in the session's failure status */
void status_set(struct smtp_sess *s, enum deliver_status st, const char *dsn,
                const char *diag, const char *fmt, ...)
{
    va_list ap;

    s->status.ok = false;
    s->status.reached = s->reached;
    s->status.st = st;
    snprintf(s->status.dsn, sizeof(s->status.dsn), "%s", dsn);
    buf_reset(&s->status.text);
    va_start(ap, fmt);
    (void)buf_vprintf(&s->status.text, fmt, ap);
    va_end(ap);
    (void)buf_set(&s->status.diag, diag ? diag : "");
}

/* reply_dsn - the reply's enhanced code when its class fits, else class.0.0 */
void reply_dsn(const struct smtp_reply *r, enum deliver_status st, char *dsn, size_t len)
{
    char cls = st == DELIVER_SENT ? '2' : st == DELIVER_BOUNCED ? '5' : '4';

    if (r->dsn[0] == cls)
        snprintf(dsn, len, "%s", r->dsn);
    else
        snprintf(dsn, len, "%c.0.0", cls);
}

/*
 * fail_reply - the session ends on a reply: "host X[A] said: ... (in
 * reply to CMD)"; by_class: a 5xx gives BOUNCED (greeting, EHLO, HELO)
 */
bool fail_reply(struct smtp_sess *s, const struct smtp_reply *r, const char *cmd,
                bool by_class)
{
    struct buf line = BUF_INIT;
    enum deliver_status st = by_class && r->code / REPLY_CLASS_DIV == REPLY_PERM
                                 ? DELIVER_BOUNCED
                                 : DELIVER_DEFERRED;
    char dsn[sizeof(s->status.dsn)];

    smtp_reply_oneline(r, &line);
    reply_dsn(r, st, dsn, sizeof(dsn));
    if (cmd)
        status_set(s, st, dsn, buf_str(&line), "host %s said: %s (in reply to %s)",
                   s->namaddr, buf_str(&line), cmd);
    else
        status_set(s, st, dsn, buf_str(&line), "host %s refused to talk to me: %s",
                   s->namaddr, buf_str(&line));
    buf_free(&line);
    return sess_finish(s, false);
}

/* in_stale_window - a reused session that has not answered our MAIL yet */
static bool in_stale_window(const struct smtp_sess *s)
{
    return s->state == SS_XACT && s->reused && s->phase == XP_STEPS && s->step_recv == 0;
}

/* fail_stale - a reused session was closed by the server: nothing decided */
static bool fail_stale(struct smtp_sess *s)
{
    if (log_verbose_level())
        msg_verbose("%s: cached session with %s was closed by the server", sess_qid(s),
                    s->namaddr);
    status_set(s, DELIVER_DEFERRED, DSN_CONVERSATION, NULL,
               "lost connection with %s while %s", s->namaddr, stage_words[STG_MAIL]);
    s->status.stale = true;
    return sess_finish(s, false);
}

/* fail_lost - the connection broke (EOF, reset, write error) */
bool fail_lost(struct smtp_sess *s)
{
    if (in_stale_window(s))
        return fail_stale(s);
    status_set(s, DELIVER_DEFERRED, DSN_CONVERSATION, NULL,
               "lost connection with %s while %s", s->namaddr, stage_words[s->stage]);
    return sess_finish(s, false);
}

/* fail_timeout - the stage's timer ran out */
static bool fail_timeout(struct smtp_sess *s)
{
    status_set(s, DELIVER_DEFERRED, DSN_CONVERSATION, NULL,
               "conversation with %s timed out while %s", s->namaddr,
               stage_words[s->stage]);
    return sess_finish(s, false);
}

/* fail_protocol - the server's bytes are not a valid reply */
bool fail_protocol(struct smtp_sess *s, const char *why)
{
    if (s->x)
        msg_warn("%s: malformed reply from %s while %s: %s", sess_qid(s), s->namaddr,
                 stage_words[s->stage], why);
    else
        msg_warn("malformed reply from %s while %s: %s", s->namaddr, stage_words[s->stage],
                 why);
    status_set(s, DELIVER_DEFERRED, DSN_PROTOCOL, NULL,
               "conversation with %s failed while %s: %s", s->namaddr,
               stage_words[s->stage], why);
    return sess_finish(s, false);
}

/* has_non_ascii - a byte above 0x7f */
static bool has_non_ascii(const char *p)
{
    for (; p && *p; p++)
        if ((unsigned char)*p > ASCII_MAX)
            return true;
    return false;
}

/* rcpt_of - the request's recipient of the transaction's i-th one */
static const struct deliver_rcpt *rcpt_of(const struct smtp_sess *s, size_t i)
{
    return &s->x->req->rcpts[s->x->rcpts[i]->idx];
}

/* rcpt_local - a result decided here (size, SMTPUTF8) */
static void rcpt_local(struct smtp_sess *s, size_t i, enum deliver_status st,
                       const char *dsn, const char *text)
{
    struct smtp_rcpt *r = s->x->rcpts[i];

    r->done = true;
    r->st = st;
    r->try_next = false;
    r->relayed = false;
    snprintf(r->dsn, sizeof(r->dsn), "%s", dsn);
    (void)buf_set(&r->text, text);
    buf_reset(&r->diag);
    s->rst[i] = RS_DONE;
}

/*
 * rcpt_reply - a recipient's result from a reply to cmd; positive: a 2xx
 * means sent (false for DATA, where only 354 is right)
 */
static void rcpt_reply(struct smtp_sess *s, size_t i, const struct smtp_reply *rep,
                       const char *cmd, bool positive)
{
    struct smtp_rcpt *r = s->x->rcpts[i];
    int cls = rep->code / REPLY_CLASS_DIV;

    r->done = true;
    r->relayed = false;
    r->try_next = false;
    buf_reset(&r->diag);
    smtp_reply_oneline(rep, &r->diag);
    buf_reset(&r->text);
    if (cls == REPLY_OK && positive) {
        r->st = DELIVER_SENT;
        (void)buf_puts(&r->text, buf_str(&r->diag));
        r->relayed =
            (rcpt_of(s, i)->notify & QNOTIFY_SUCCESS) && !(s->feat.flags & SMTP_FEAT_DSN);
    } else {
        r->st = cls == REPLY_PERM ? DELIVER_BOUNCED : DELIVER_DEFERRED;
        r->try_next = r->st == DELIVER_DEFERRED;
        (void)buf_printf(&r->text, "host %s said: %s (in reply to %s)", s->namaddr,
                         buf_str(&r->diag), cmd);
    }
    reply_dsn(rep, r->st, r->dsn, sizeof(r->dsn));
    s->rst[i] = RS_DONE;
}

/* put_xtext - " KEY=xtext(value)" */
static void put_xtext(struct buf *b, const char *key, const char *value)
{
    char *x = xtext_encode(value);

    (void)buf_printf(b, " %s=%s", key, x);
    free(x);
}

/* mail_cmd - the MAIL FROM line with the parameters the server takes */
static void mail_cmd(struct smtp_sess *s)
{
    const struct deliver_request *req = s->x->req;
    struct buf params = BUF_INIT;
    unsigned f = s->feat.flags;

    if (f & SMTP_FEAT_SIZE)
        (void)buf_printf(&params, " SIZE=%llu",
                         (unsigned long long)s->x->q->content_length);
    if ((f & SMTP_FEAT_8BITMIME) && req->encoding && strcmp(req->encoding, "8bitmime") == 0)
        (void)buf_puts(&params, " BODY=8BITMIME");
    if ((f & SMTP_FEAT_SMTPUTF8) && req->smtputf8)
        (void)buf_puts(&params, " SMTPUTF8");
    if (f & SMTP_FEAT_DSN) {
        if (req->ret && *req->ret)
            (void)buf_printf(&params, " RET=%s", req->ret);
        if (req->envid && *req->envid)
            put_xtext(&params, "ENVID", req->envid);
    }
    out_cmd(s, "MAIL FROM:<%s>%s", req->sender ? req->sender : "", buf_str(&params));
    buf_free(&params);
}

/* rcpt_cmd - the RCPT TO line of recipient i, DSN parameters when offered */
static void rcpt_cmd(struct smtp_sess *s, size_t i)
{
    const struct deliver_rcpt *dr = rcpt_of(s, i);
    struct buf params = BUF_INIT;

    if (s->feat.flags & SMTP_FEAT_DSN) {
        unsigned n = dr->notify;

        if (n & QNOTIFY_NEVER) {
            (void)buf_puts(&params, " NOTIFY=NEVER");
        } else if (n) {
            const char *sep = " NOTIFY=";

            if (n & QNOTIFY_SUCCESS) {
                (void)buf_printf(&params, "%sSUCCESS", sep);
                sep = ",";
            }
            if (n & QNOTIFY_FAILURE) {
                (void)buf_printf(&params, "%sFAILURE", sep);
                sep = ",";
            }
            if (n & QNOTIFY_DELAY)
                (void)buf_printf(&params, "%sDELAY", sep);
        }
        /* ORCPT is kept decoded as "type;address": xtext for the wire */
        if (dr->orcpt && *dr->orcpt) {
            const char *semi = strchr(dr->orcpt, ';');

            if (semi && semi > dr->orcpt && semi[1]) {
                char *x = xtext_encode(semi + 1);

                (void)buf_printf(&params, " ORCPT=%.*s;%s", (int)(semi - dr->orcpt),
                                 dr->orcpt, x);
                free(x);
            }
        } else if (dr->orig && *dr->orig) {
            char *x = xtext_encode(dr->orig);

            (void)buf_printf(&params, " ORCPT=rfc822;%s", x);
            free(x);
        }
    }
    out_cmd(s, "RCPT TO:<%s>%s", dr->address, buf_str(&params));
    buf_free(&params);
}

/* step_stage - the stage of the reply awaited at step (MAIL, RCPT..., DATA) */
static enum sess_stage step_stage(const struct smtp_sess *s, size_t step)
{
    if (step == 0)
        return STG_MAIL;
    return step <= s->x->n ? STG_RCPT : STG_DATA;
}

/* send_step - queue the command of step (MAIL, RCPT i, DATA) */
static void send_step(struct smtp_sess *s, size_t step)
{
    if (step == 0)
        mail_cmd(s);
    else if (step <= s->x->n)
        rcpt_cmd(s, step - 1);
    else
        out_cmd(s, "DATA");
    s->step_sent = step + 1;
}

/* xact_ok - the transaction is over and the session sound */
static bool xact_ok(struct smtp_sess *s)
{
    s->status.reached = true;
    return sess_finish(s, true);
}

/* xact_end - all results are in: RSET if a transaction is still open */
static bool xact_end(struct smtp_sess *s)
{
    if (!s->mail_ok)
        return xact_ok(s);
    s->phase = XP_RSET;
    out_cmd(s, "RSET");
    sess_stage(s, STG_RSET);
    return sess_push(s);
}

/* body_start - 354: stream the content */
static bool body_start(struct smtp_sess *s)
{
    s->phase = XP_BODY;
    s->body_done = false;
    smtp_enc_init(&s->enc);
    smtp_enc_set_limit(&s->enc, smtp_conf.line_limit);
    qfile_content_begin(s->x->q, &s->cur);
    sess_stage(s, STG_BODY);
    if (log_verbose_level())
        msg_verbose("> %s: (message content, %llu bytes)", s->namaddr,
                    (unsigned long long)s->x->q->content_length);
    return body_pump(s);
}

/* data_reply - the reply to DATA */
static bool data_reply(struct smtp_sess *s, const struct smtp_reply *rep)
{
    if (rep->code == REPLY_START_DATA) {
        if (s->mail_ok && s->naccepted > 0)
            return body_start(s);
        /* a server that wants content with no valid recipient: end it empty */
        s->phase = XP_DOT_ABORT;
        s->mail_ok = true; /* then RSET */
        out_cmd(s, ".");
        sess_stage(s, STG_DOT);
        return sess_push(s);
    }
    if (s->mail_ok)
        for (size_t i = 0; i < s->x->n; i++)
            if (s->rst[i] == RS_ACCEPTED)
                rcpt_reply(s, i, rep, CMD_DATA, false);
    if (rep->code == REPLY_CLOSING)
        return fail_reply(s, rep, CMD_DATA, false);
    return xact_end(s);
}

/* step_reply - a reply to MAIL, a RCPT or DATA, in the order sent */
static bool step_reply(struct smtp_sess *s, const struct smtp_reply *rep)
{
    size_t step = s->step_recv++;
    size_t n = s->x->n;
    bool ok = rep->code / REPLY_CLASS_DIV == REPLY_OK;

    if (step == 0) {
        if (ok) {
            s->mail_ok = true;
        } else {
            /* an idle timeout's 421 waiting in a cached session */
            if (rep->code == REPLY_CLOSING && s->reused)
                return fail_stale(s);
            for (size_t i = 0; i < n; i++)
                rcpt_reply(s, i, rep, CMD_MAIL, false);
            if (rep->code == REPLY_CLOSING)
                return fail_reply(s, rep, CMD_MAIL, false);
        }
    } else if (step <= n) {
        size_t i = step - 1;

        /* after a refused MAIL the recipients have their result already */
        if (s->mail_ok) {
            if (ok) {
                s->rst[i] = RS_ACCEPTED;
                s->naccepted++;
            } else {
                rcpt_reply(s, i, rep, CMD_RCPT, false);
            }
        }
        if (rep->code == REPLY_CLOSING)
            return fail_reply(s, rep, CMD_RCPT, false);
    } else {
        return data_reply(s, rep);
    }
    if (s->pipelining) {
        sess_stage(s, step_stage(s, s->step_recv));
        return true;
    }
    /* one command at a time */
    if (step == 0 && !s->mail_ok)
        return xact_end(s);
    if (step < n) {
        send_step(s, step + 1);
    } else if (s->naccepted > 0) {
        send_step(s, n + 1);
    } else {
        return xact_end(s);
    }
    sess_stage(s, step_stage(s, s->step_sent - 1));
    return sess_push(s);
}

/* dot_reply - the reply to the final "." (LMTP: one per accepted recipient) */
static bool dot_reply(struct smtp_sess *s, const struct smtp_reply *rep)
{
    size_t n = s->x->n;

    if (!smtp_conf.lmtp) {
        for (size_t i = 0; i < n; i++)
            if (s->rst[i] == RS_ACCEPTED)
                rcpt_reply(s, i, rep, CMD_DOT, true);
    } else {
        while (s->dot_next < n && s->rst[s->dot_next] != RS_ACCEPTED)
            s->dot_next++;
        if (s->dot_next < n)
            rcpt_reply(s, s->dot_next++, rep, CMD_DOT, true);
        while (s->dot_next < n && s->rst[s->dot_next] != RS_ACCEPTED)
            s->dot_next++;
        if (s->dot_next < n) {
            if (rep->code == REPLY_CLOSING)
                return fail_reply(s, rep, CMD_DOT, false);
            sess_stage(s, STG_DOT); /* the next recipient's reply */
            return true;
        }
    }
    s->mail_ok = false; /* the transaction is over */
    if (rep->code == REPLY_CLOSING)
        return fail_reply(s, rep, CMD_DOT, false);
    return xact_end(s);
}

/* xact_reply - a reply during a transaction */
static bool xact_reply(struct smtp_sess *s)
{
    const struct smtp_reply *rep = &s->reply;

    switch (s->phase) {
    case XP_STEPS:
        return step_reply(s, rep);
    case XP_DOT:
        return dot_reply(s, rep);
    case XP_DOT_ABORT:
        if (rep->code == REPLY_CLOSING)
            return fail_reply(s, rep, CMD_DOT, false);
        return xact_end(s);
    case XP_RSET:
        s->mail_ok = false;
        if (rep->code / REPLY_CLASS_DIV != REPLY_OK)
            return fail_reply(s, rep, CMD_RSET, false);
        return xact_ok(s);
    case XP_BODY:
        break;
    }
    msg_panic("xact_reply: reply in phase %d", (int)s->phase);
}

/* send_hello - EHLO, LHLO or HELO */
bool send_hello(struct smtp_sess *s, const char *verb)
{
    out_cmd(s, "%s %s", verb, smtp_conf.helo_name ? smtp_conf.helo_name : "localhost");
    if (strcmp(verb, "HELO") == 0) {
        s->state = SS_HELO;
        sess_stage(s, STG_HELO);
    } else {
        s->state = SS_EHLO;
        sess_stage(s, smtp_conf.lmtp ? STG_LHLO : STG_EHLO);
    }
    return sess_push(s);
}

/* open_reply - greeting, EHLO/LHLO and HELO replies */
static bool open_reply(struct smtp_sess *s)
{
    const struct smtp_reply *rep = &s->reply;
    int cls = rep->code / REPLY_CLASS_DIV;

    switch (s->state) {
    case SS_GREET:
        s->reached = true;
        if (cls != REPLY_OK)
            return fail_reply(s, rep, NULL, true);
        if (smtp_conf.lmtp)
            return send_hello(s, "LHLO");
        return send_hello(s, smtp_conf.never_send_ehlo ? "HELO" : "EHLO");
    case SS_EHLO:
        if (cls == REPLY_OK) {
            memset(&s->feat, 0, sizeof(s->feat));
            smtp_ehlo_features(rep, &s->feat);
            return tls_after_ehlo(s, true);
        }
        if (cls == REPLY_PERM && !smtp_conf.lmtp && !s->tls_active)
            return send_hello(s, "HELO");
        return fail_reply(s, rep, smtp_conf.lmtp ? CMD_LHLO : CMD_EHLO, true);
    case SS_HELO:
        if (cls != REPLY_OK)
            return fail_reply(s, rep, CMD_HELO, true);
        memset(&s->feat, 0, sizeof(s->feat));
        return tls_after_ehlo(s, false);
    case SS_STARTTLS:
        return tls_starttls_reply(s);
    case SS_AUTH:
        return sasl_reply(s);
    default:
        msg_panic("open_reply: state %d", (int)s->state);
    }
}

/* sess_ready - greeting, EHLO, TLS and AUTH done: hand the session over */
bool sess_ready(struct smtp_sess *s)
{
    s->status.reached = true;
    return sess_finish(s, true);
}

/* expecting - a reply is due in this state */
static bool expecting(const struct smtp_sess *s)
{
    switch (s->state) {
    case SS_GREET:
    case SS_EHLO:
    case SS_HELO:
    case SS_STARTTLS:
    case SS_AUTH:
        return true;
    case SS_XACT:
        if (s->phase == XP_STEPS)
            return s->step_recv < s->step_sent;
        return s->phase != XP_BODY;
    default:
        return false;
    }
}

/* log_reply - the reply on one line, with -v */
static void log_reply(const struct smtp_sess *s)
{
    struct buf line = BUF_INIT;

    smtp_reply_oneline(&s->reply, &line);
    msg_verbose("< %s: %s", s->namaddr, buf_str(&line));
    buf_free(&line);
}

/* sess_replies - handle every complete reply received; false: s is gone */
static bool sess_replies(struct smtp_sess *s)
{
    while (expecting(s) && s->in.len > 0) {
        const char *why = NULL;
        size_t used = 0;
        int rc;

        smtp_reply_free(&s->reply);
        smtp_reply_init(&s->reply);
        rc = smtp_reply_parse(s->in.data, s->in.len, &used, &s->reply, &why);
        if (rc < 0)
            return fail_protocol(s, why ? why : "malformed reply");
        if (rc == 0) {
            if (s->in.len >= SESS_IN_MAX)
                return fail_protocol(s, "reply too long");
            break;
        }
        buf_consume(&s->in, used);
        if (log_verbose_level())
            log_reply(s);
        if (!(s->state == SS_XACT ? xact_reply(s) : open_reply(s)))
            return false;
    }
    if (s->eof) {
        if (log_verbose_level() && s->read_errno)
            msg_verbose("%s: read from %s: %s", sess_qid(s), s->namaddr,
                        strerror(s->read_errno));
        return fail_lost(s);
    }
    return true;
}

/* body_fail_local - the queue file cannot be read: stop without the "." */
static bool body_fail_local(struct smtp_sess *s, int err)
{
    msg_warn("%s: error reading queue file: %s", sess_qid(s), strerror(err));
    status_set(s, DELIVER_DEFERRED, DSN_LOCAL, NULL, "error reading queue file: %s",
               strerror(err));
    return sess_finish(s, false);
}

/*
 * body_pump - fill the output from the queue file while little is
 * unsent, write what the socket takes; a few rounds per event so one
 * fast peer cannot hold the loop. false: s is gone.
 */
static bool body_pump(struct smtp_sess *s)
{
    for (int round = 0; round < SESS_PUMP_ROUNDS; round++) {
        size_t before;
        int rc;

        while (!s->body_done && s->out.len - s->out_off < SESS_OUT_HIGH) {
            ssize_t n = qfile_content_read(s->x->q, &s->cur, chunk_buf, sizeof(chunk_buf));

            if (n < 0)
                return body_fail_local(s, errno);
            if (n == 0) {
                smtp_enc_finish(&s->enc, true, &s->out);
                s->body_done = true;
                if (log_verbose_level())
                    msg_verbose("> %s: .", s->namaddr);
            } else {
                smtp_enc_feed(&s->enc, chunk_buf, (size_t)n, &s->out);
            }
        }
        before = s->out.len - s->out_off;
        rc = sess_flush(s);
        if (rc == FLUSH_ERROR)
            return fail_lost(s);
        if (s->out.len - s->out_off < before)
            sess_stage(s, STG_BODY); /* progress: the timer starts again */
        if (rc == FLUSH_PARTIAL)
            break;
        if (s->body_done) {
            s->phase = XP_DOT;
            sess_stage(s, STG_DOT);
            break;
        }
    }
    set_interest(s);
    return true;
}

/* connect_done - the non-blocking connect finished */
static void connect_done(struct smtp_sess *s)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err) {
        connect_status(s, err);
        (void)sess_finish(s, false);
        return;
    }
    if (s->tls_wrapper) {
        (void)tls_begin(s); /* TLS from the first byte, then the greeting */
        return;
    }
    s->state = SS_GREET;
    sess_stage(s, STG_GREET);
    set_interest(s);
}

/* idle_event - the server closed or spoke while the session was idle */
static void idle_event(struct smtp_sess *s)
{
    void (*fn)(void *) = s->watch_fn;
    void *ctx = s->watch_ctx;

    if (!sess_read(s)) {
        s->broken = true;
    } else if (s->in.len == 0 && !s->eof) {
        return; /* a spurious wake-up */
    }
    s->broken = true;
    if (log_verbose_level())
        msg_verbose("idle session with %s: %s", s->namaddr,
                    s->eof ? "closed by the server" : "unexpected data");
    if (fn) {
        sess_free(s);
        fn(ctx);
        return;
    }
    set_interest(s);
}

/* quit_event - after QUIT: any answer or a close ends it */
static void quit_event(struct smtp_sess *s, unsigned events)
{
    if (events & EVENT_WRITE) {
        int rc = sess_flush(s);

        if (rc == FLUSH_ERROR || (rc == FLUSH_DONE && smtp_conf.quit_ms == 0)) {
            sess_free(s);
            return;
        }
    }
    if (events & (EVENT_READ | EVENT_ERROR)) {
        if (!sess_read(s) || s->eof || s->in.len > 0) {
            sess_free(s);
            return;
        }
    }
    set_interest(s);
}

/* sess_event - the socket is ready */
void sess_event(int fd, unsigned events, void *ctx)
{
    struct smtp_sess *s = ctx;

    (void)fd;
    switch (s->state) {
    case SS_CONNECT:
        connect_done(s);
        return;
    case SS_IDLE:
        idle_event(s);
        return;
    case SS_QUIT:
        quit_event(s, events);
        return;
    case SS_REPORT:
        return;
    case SS_TLS:
        tls_step(s);
        return;
    default:
        break;
    }
    /* TLS: a read that waits to write, a write that waits to read */
    if (s->rd_want_write && (events & EVENT_WRITE))
        events |= EVENT_READ;
    if (s->wr_want_read && (events & EVENT_READ))
        events |= EVENT_WRITE;
    if (events & EVENT_WRITE) {
        bool alive =
            s->state == SS_XACT && s->phase == XP_BODY ? body_pump(s) : sess_push(s);

        if (!alive)
            return;
    }
    if ((events & (EVENT_READ | EVENT_ERROR)) &&
        !(s->state == SS_XACT && s->phase == XP_BODY)) {
        if (!sess_read(s)) {
            (void)fail_protocol(s, "reply too long");
            return;
        }
        (void)sess_replies(s);
    }
}

/* sess_timer - a stage timed out, or a result is due */
static void sess_timer(void *ctx)
{
    struct smtp_sess *s = ctx;

    switch (s->state) {
    case SS_REPORT:
        (void)sess_finish(s, s->report_keep);
        return;
    case SS_IDLE:
        if (s->broken && s->watch_fn) {
            void (*fn)(void *) = s->watch_fn;
            void *wctx = s->watch_ctx;

            sess_free(s);
            fn(wctx);
        }
        return;
    case SS_QUIT:
        sess_free(s);
        return;
    case SS_CONNECT:
        connect_status(s, ETIMEDOUT);
        (void)sess_finish(s, false);
        return;
    default:
        (void)fail_timeout(s);
        return;
    }
}

/* sess_open - connect to t; fn runs once from the event loop */
struct smtp_sess *sess_open(const struct smtp_target *t, const char *nexthop,
                            const char *domain, sess_fn fn, void *ctx)
{
    struct smtp_sess *s = xcalloc(1, sizeof(*s));
    struct buf b = BUF_INIT;
    int family = t->sa.ss_family;
    int err;

    s->t = *t;
    s->t.host = xstrdup(t->host ? t->host : "");
    s->nexthop = xstrdup(nexthop ? nexthop : "");
    s->nh_domain = xstrdup(domain ? domain : "");
    s->level = family == AF_UNIX ? TLS_LEVEL_NONE : smtp_conf.tls_level;
    s->tls_wrapper =
        family != AF_UNIX && smtp_conf.tls_wrapper && s->level > TLS_LEVEL_NONE;
    s->fd = -1;
    s->fn = fn;
    s->ctx = ctx;
    s->state = SS_CONNECT;
    s->stage = STG_CONNECT;
    s->started_ms = event_now();
    buf_init(&s->in, SESS_IN_MAX);
    buf_init(&s->out, 0);
    smtp_reply_init(&s->reply);
    smtp_status_init(&s->status);
    event_timer_setup(&s->timer, sess_timer, s);
    /* "host[addr]": the relay text without its port */
    smtp_target_relay(&s->t, &b);
    if (family != AF_UNIX)
        buf_truncate(&b, strlen(s->t.host) + strlen(s->t.addr) + 2);
    s->namaddr = b.data ? buf_steal(&b) : xstrdup("");

    if ((err = sess_connect(s)) == 0)
        return s;
    connect_status(s, err);
    report_later(s, false);
    return s;
}

/* sess_authenticated - the session logged in with AUTH (never share it) */
bool sess_authenticated(const struct smtp_sess *s)
{
    return s->authed;
}

/* smtputf8_needed - the envelope needs SMTPUTF8 (non-ASCII addresses) */
static bool smtputf8_needed(const struct smtp_sess *s)
{
    if (!s->x->req->smtputf8)
        return false;
    if (has_non_ascii(s->x->req->sender))
        return true;
    for (size_t i = 0; i < s->x->n; i++)
        if (has_non_ascii(rcpt_of(s, i)->address))
            return true;
    return false;
}

/* xact_refuse_all - every recipient gets a result decided here */
static void xact_refuse_all(struct smtp_sess *s, const char *dsn, const char *text)
{
    for (size_t i = 0; i < s->x->n; i++)
        rcpt_local(s, i, DELIVER_BOUNCED, dsn, text);
    s->status.reached = true;
    report_later(s, true);
}

/* sess_xact - one mail transaction on an idle session */
void sess_xact(struct smtp_sess *s, struct smtp_xact *x, sess_fn fn, void *ctx)
{
    uint64_t limit = s->feat.size_limit;

    if (s->state != SS_IDLE)
        msg_panic("sess_xact: session with %s is not idle (state %d)", s->namaddr,
                  (int)s->state);
    s->fn = fn;
    s->ctx = ctx;
    s->x = x;
    s->rst = xcalloc(x->n ? x->n : 1, 1);
    s->watch_fn = NULL;
    s->watch_ctx = NULL;
    s->reused = s->count > 0;
    s->count++;
    s->phase = XP_STEPS;
    s->step_sent = s->step_recv = 0;
    s->naccepted = 0;
    s->dot_next = 0;
    s->mail_ok = false;
    s->body_done = false;
    smtp_status_free(&s->status);
    smtp_status_init(&s->status);
    event_timer_disarm(&s->timer);

    /* the cached connection went away or said something while idle */
    if (s->broken) {
        status_set(s, DELIVER_DEFERRED, DSN_CONVERSATION, NULL,
                   "lost connection with %s while %s", s->namaddr, stage_words[STG_MAIL]);
        s->status.stale = true;
        report_later(s, false);
        return;
    }
    if (x->n == 0) {
        s->status.reached = true;
        report_later(s, true);
        return;
    }
    if (smtputf8_needed(s) && !(s->feat.flags & SMTP_FEAT_SMTPUTF8)) {
        struct buf text = BUF_INIT;

        (void)buf_printf(&text, "SMTPUTF8 is required, but was not offered by host %s",
                         s->namaddr);
        xact_refuse_all(s, DSN_UTF8, buf_str(&text));
        buf_free(&text);
        return;
    }
    if ((s->feat.flags & SMTP_FEAT_SIZE) && limit > 0 && x->q->content_length > limit) {
        struct buf text = BUF_INIT;

        (void)buf_printf(&text, "message size %llu exceeds size limit %llu of server %s",
                         (unsigned long long)x->q->content_length,
                         (unsigned long long)limit, s->namaddr);
        xact_refuse_all(s, DSN_SIZE, buf_str(&text));
        buf_free(&text);
        return;
    }

    s->state = SS_XACT;
    s->pipelining = (s->feat.flags & SMTP_FEAT_PIPELINING) != 0;
    if (s->pipelining) {
        for (size_t step = 0; step <= x->n + 1; step++)
            send_step(s, step);
    } else {
        send_step(s, 0);
    }
    sess_stage(s, STG_MAIL);
    /* written from the loop: a write error must not call fn from here */
    set_interest(s);
}

/* sess_watch_close - while idle: fn(ctx) after the server closes or speaks */
void sess_watch_close(struct smtp_sess *s, void (*fn)(void *ctx), void *ctx)
{
    if (s->state != SS_IDLE) {
        if (fn)
            msg_panic("sess_watch_close: session with %s is not idle", s->namaddr);
        s->watch_fn = NULL;
        return;
    }
    s->watch_fn = fn;
    s->watch_ctx = ctx;
    if (fn && s->broken)
        event_timer_arm(&s->timer, SESS_NOW_MS);
    else
        event_timer_disarm(&s->timer);
}

/* sess_quit - QUIT, wait at most quit_ms for the answer, close; s is gone */
void sess_quit(struct smtp_sess *s)
{
    int rc;

    if (s->state != SS_IDLE || s->broken || s->fd < 0) {
        sess_free(s);
        return;
    }
    s->watch_fn = NULL;
    s->state = SS_QUIT;
    out_cmd(s, "QUIT");
    rc = sess_flush(s);
    if (rc == FLUSH_ERROR || (rc == FLUSH_DONE && smtp_conf.quit_ms == 0)) {
        sess_free(s);
        return;
    }
    sess_stage(s, STG_QUIT);
    set_interest(s);
}
