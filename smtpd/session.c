/*
 * session.c - smtpd sessions: socket I/O, the state machine, the verb table
 *
 * A session reads in large pieces (SESSION_READ_SIZE), then handles every
 * complete command already in its input buffer, collecting the replies,
 * and writes them all at once when no complete input is left or before it
 * waits for something asynchronous (PIPELINING, RFC 2920). In DATA and
 * BDAT states the input goes to the content decoders (data.c) instead.
 *
 * Waiting (client name lookup, group commit, error sleep, too much unsent
 * output) stops command processing; the session is resumed by the event
 * that ends the wait. Nothing here blocks: the error sleep is a timer.
 *
 * A session is freed only when no callback of it is running (s->busy);
 * session_kill() marks it dead and releases everything else at once.
 *
 * TLS: after STARTTLS is answered (SW_TLS) nothing more is read in
 * plaintext; once the 220 is out, the socket is wrapped and the handshake
 * is driven by socket events (smtpd_tls.c). Decrypted bytes that OpenSSL
 * holds (tls_pending) are invisible to epoll, so they are read before the
 * session goes back to waiting for events.
 *
 * DIAGNOSTICS: Postfix-style lines: "connect from NAME[ADDR]", "lost
 * connection after CMD from ...", "timeout after CMD from ...", "too many
 * errors after CMD from ...", "disconnect from ... ehlo=1 ... commands=N".
 *
 * SECURITY: command lines are bounded by line_length_limit (a longer line
 * is discarded up to its end and answered 500); input is never buffered
 * beyond one line plus one read; output beyond SESSION_OUT_HIGH stops the
 * handling and the reading of more commands until the client reads its
 * replies, so a client that pipelines without reading costs bounded memory.
 */
#include "util/sys.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "mail/matchlist.h"
#include "mail/qcommit.h"
#include "mail/server.h"
#include "mail/smtpcmd.h"
#include "mail/xsasl.h"
#include "util/alloc.h"
#include "util/dns.h"
#include "util/log.h"
#include "util/tls.h"

#include "policy.h"
#include "smtpd.h"

#define SESSION_READ_SIZE 65536          /* one read() */
#define SESSION_OUT_HIGH (256 * 1024)     /* stop reading commands above this */
#define SESSION_IN_COMPACT 32768          /* move unread input down past this */
#define SESSION_LOOKUP_TIMEOUT_MS 5000    /* client name lookup, all steps */

/* Commands are accepted in these states (when not, seq_err is the 503 text). */
#define ST_CMD (SS_BIT(SS_CONNECT) | SS_BIT(SS_IDLE) | SS_BIT(SS_MAIL) | \
                SS_BIT(SS_RCPT) | SS_BIT(SS_BDAT))

struct verb {
    const char *name;
    int (*fn)(struct session *s, const char *arg);
    unsigned allowed;         /* SS_BIT() mask */
    const char *seq_err;      /* 503 5.5.1 text outside those states */
};

static const struct verb verbs[V_COUNT] = {
    [V_HELO] = {"HELO", cmd_helo, ST_CMD, NULL},
    [V_EHLO] = {"EHLO", cmd_ehlo, ST_CMD, NULL},
    [V_STARTTLS] = {"STARTTLS", cmd_starttls, SS_BIT(SS_CONNECT) | SS_BIT(SS_IDLE),
                    "Error: MAIL transaction in progress"},
    [V_AUTH] = {"AUTH", cmd_auth, SS_BIT(SS_CONNECT) | SS_BIT(SS_IDLE),
                "Error: MAIL transaction in progress"},
    [V_MAIL] = {"MAIL", cmd_mail, SS_BIT(SS_CONNECT) | SS_BIT(SS_IDLE),
                "Error: nested MAIL command"},
    [V_RCPT] = {"RCPT", cmd_rcpt, SS_BIT(SS_MAIL) | SS_BIT(SS_RCPT), "Error: need MAIL command"},
    [V_DATA] = {"DATA", cmd_data, ST_CMD, NULL},
    [V_BDAT] = {"BDAT", cmd_bdat, ST_CMD, NULL},
    [V_RSET] = {"RSET", cmd_rset, ST_CMD, NULL},
    [V_NOOP] = {"NOOP", cmd_noop, ST_CMD, NULL},
    [V_VRFY] = {"VRFY", cmd_vrfy, ST_CMD, NULL},
    [V_HELP] = {"HELP", cmd_help, ST_CMD, NULL},
    [V_QUIT] = {"QUIT", cmd_quit, ST_CMD, NULL},
    [V_UNKNOWN] = {"UNKNOWN", NULL, 0, NULL},
};

/* the counter names of the disconnect line, in verb order */
static const char *const verb_log_names[V_COUNT] = {
    "helo", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "bdat", "rset", "noop",
    "vrfy", "help", "quit", "unknown",
};

static const char *verb_names[V_UNKNOWN];
static struct session *sessions;
static size_t nsessions;
static bool sessions_stopping;           /* SIGTERM: handle no more commands */

static void session_event(int fd, unsigned events, void *ctx);
static void session_after(struct session *s);

/* plain_read - read from the socket (the TLS layer will replace this) */
static ssize_t plain_read(struct session *s, void *p, size_t n)
{
    return read(s->fd, p, n);
}

/* plain_write - write to the socket without SIGPIPE */
static ssize_t plain_write(struct session *s, const void *p, size_t n)
{
    return send(s->fd, p, n, MSG_NOSIGNAL);
}

static const struct session_io plain_io = {plain_read, plain_write};

/* session_authenticated - AUTH seam: has the client authenticated? */
bool session_authenticated(const struct session *s)
{
    return s->authenticated;
}

/* session_protocol - SMTP, ESMTP, UTF8SMTP with RFC 3848's S and A suffixes */
const char *session_protocol(const struct session *s)
{
    static const char *const esmtp[] = {"ESMTP", "ESMTPS", "ESMTPA", "ESMTPSA"};
    static const char *const utf8[] = {"UTF8SMTP", "UTF8SMTPS", "UTF8SMTPA", "UTF8SMTPSA"};
    unsigned i = (s->tls_ready ? 1u : 0u) | (s->authenticated ? 2u : 0u);

    if (!s->esmtp)
        return "SMTP";
    return s->smtputf8 ? utf8[i] : esmtp[i];
}

/* session_line_limit - longest input line accepted now */
size_t session_line_limit(const struct session *s)
{
    /* an AUTH response may be longer than a command (RFC 4954: 12288) */
    if (s->auth_reading && smtpd_conf.line_limit < XSASL_DATA_MAX)
        return XSASL_DATA_MAX;
    return smtpd_conf.line_limit;
}

/* session_count - live sessions (for the drain check) */
size_t session_count(void)
{
    return nsessions;
}

/* session_count_verb - count a command for the disconnect line */
void session_count_verb(struct session *s, enum smtpd_verb v, int code)
{
    s->counts[v][1]++;
    if (code > 0 && !reply_is_error(code))
        s->counts[v][0]++;
}

/* session_log_reject - Postfix's "QID: reject: STAGE from NAME[ADDR]: CODE ENH TEXT; ..." */
void session_log_reject(struct session *s, const char *stage, const char *replytext)
{
    msg_info("%s: reject: %s from %s[%s]: %s; from=<%s> %s%s%sproto=%s helo=<%s>",
             s->qid_logged ? s->qid : "NOQUEUE", stage, s->name, s->addr, replytext,
             s->sender ? s->sender : "", s->nrcpt ? "to=<" : "",
             s->nrcpt ? s->rcpts[0].addr : "", s->nrcpt ? "> " : "", session_protocol(s),
             s->helo ? s->helo : "");
}

/* session_reset_transaction - forget the envelope and any content (RSET) */
void session_reset_transaction(struct session *s)
{
    data_abort(s);
    free(s->sender);
    s->sender = NULL;
    for (size_t i = 0; i < s->nrcpt; i++) {
        free(s->rcpts[i].addr);
        free(s->rcpts[i].orcpt);
    }
    s->nrcpt = 0;
    s->rcpt_tries = 0;
    s->body = NULL;
    s->smtputf8 = false;
    free(s->envid);
    s->envid = NULL;
    s->ret = NULL;
    s->decl_size = -1;
    s->qid[0] = 0;
    s->qid_logged = false;
    free(s->msgid);
    s->msgid = NULL;
    s->bdat_failed = false;
    actions_reset(&s->act);
    if (s->state != SS_LOOKUP)
        s->state = s->helo ? SS_IDLE : SS_CONNECT;
}

/* session_log_disconnect - Postfix's "disconnect from" line with counters */
static void session_log_disconnect(struct session *s)
{
    struct buf b = BUF_INIT;
    unsigned ok = 0, total = 0;

    for (int v = 0; v < V_COUNT; v++) {
        unsigned o = s->counts[v][0], t = s->counts[v][1];

        if (t == 0)
            continue;
        ok += o;
        total += t;
        if (o == t)
            (void)buf_printf(&b, " %s=%u", verb_log_names[v], t);
        else
            (void)buf_printf(&b, " %s=%u/%u", verb_log_names[v], o, t);
    }
    if (ok == total)
        (void)buf_printf(&b, " commands=%u", total);
    else
        (void)buf_printf(&b, " commands=%u/%u", ok, total);
    msg_info("disconnect from %s[%s]%s", s->name, s->addr, buf_str(&b));
    buf_free(&b);
}

/* session_free - release the memory of a dead session */
static void session_free(struct session *s)
{
    buf_free(&s->in);
    buf_free(&s->out);
    buf_free(&s->hdr);
    free(s->rcpts);
    free(s->name);
    free(s->helo);
    free(s->sasl_method);
    free(s->sasl_username);
    free(s);
}

/* session_kill - end the session now (why: "lost connection", "timeout", or NULL) */
void session_kill(struct session *s, const char *why)
{
    if (s->dead)
        return;
    s->dead = true;
    if (why != NULL)
        msg_info("%s after %s from %s[%s]", why, s->last_cmd, s->name, s->addr);
    /* content that never got its final reply counts as a failed command */
    if (s->state == SS_DATA || s->state == SS_QUEUE)
        session_count_verb(s, s->state == SS_QUEUE && s->chunk_last ? V_BDAT : V_DATA, 0);
    else if (s->state == SS_CHUNK)
        session_count_verb(s, V_BDAT, 0);
    session_reset_transaction(s);
    actions_reset(&s->sess_act);
    if (s->dns != NULL) {
        dns_cancel(s->dns);
        s->dns = NULL;
    }
    event_timer_disarm(&s->idle_timer);
    event_timer_disarm(&s->wait_timer);
    auth_session_free(s);
    smtpd_tls_end(s);
    event_remove(s->fd);
    (void)close(s->fd);
    s->fd = -1;
    if (s->state != SS_LOOKUP)
        session_log_disconnect(s);
    if (s->counted)
        smtpd_client_conn_del(s->addr);
    if (s->prev)
        s->prev->next = s->next;
    else
        sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    nsessions--;
    server_session_ended();
    if (s->busy == 0)
        session_free(s);
}

/* session_flush - write queued replies; false when the session died */
static bool session_flush(struct session *s)
{
    size_t done = 0;

    while (done < s->out.len) {
        ssize_t n = s->io->write(s, s->out.data + done, s->out.len - done);

        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            s->write_blocked = true;
            s->tls_wwant = s->tls != NULL ? tls_conn_want(s->tls) : 0;
            break;
        }
        buf_consume(&s->out, done);
        session_kill(s, "lost connection");
        return false;
    }
    if (done > 0)
        event_timer_arm(&s->idle_timer, smtpd_conf.timeout_ms);   /* the client's turn now */
    if (done == s->out.len) {
        buf_reset(&s->out);
        s->write_blocked = false;
    } else {
        buf_consume(&s->out, done);
    }
    return true;
}

/* session_may_flush - not while sleeping on an error or before the handshake ends */
static bool session_may_flush(const struct session *s)
{
    return !(s->wait & SW_SLEEP) && (s->tls == NULL || s->tls_ready);
}

/* session_update_events - read when able to process, write when blocked */
static void session_update_events(struct session *s)
{
    unsigned ev = 0;

    if (s->out.len > SESSION_OUT_HIGH)
        s->wait |= SW_OUTPUT;
    else
        s->wait &= ~SW_OUTPUT;
    if (s->tls != NULL && !s->tls_ready) {
        /* the handshake decides */
        unsigned w = tls_conn_want(s->tls);

        ev = (w & TLS_WANT_WRITE ? EVENT_WRITE : 0) | (w & TLS_WANT_READ ? EVENT_READ : 0);
        event_modify(s->fd, ev ? ev : EVENT_READ);
        return;
    }
    if (s->wait == 0 && !s->closing) {
        ev |= EVENT_READ;
        if (s->tls_rwant & TLS_WANT_WRITE)
            ev |= EVENT_WRITE;
    }
    if (s->write_blocked && s->out.len > 0) {
        if (s->tls == NULL || (s->tls_wwant & TLS_WANT_WRITE) || s->tls_wwant == 0)
            ev |= EVENT_WRITE;
        if (s->tls != NULL && (s->tls_wwant & TLS_WANT_READ))
            ev |= EVENT_READ;
    }
    event_modify(s->fd, ev);
}

/* session_close - say what is queued, then close */
void session_close(struct session *s)
{
    s->closing = true;
}

/* session_error_sleep - delay the replies now queued by smtpd_error_sleep_time */
void session_error_sleep(struct session *s)
{
    if (smtpd_conf.error_sleep_ms == 0 || s->closing || (s->wait & SW_SLEEP))
        return;
    s->wait |= SW_SLEEP;
    event_timer_arm(&s->wait_timer, smtpd_conf.error_sleep_ms);
}

/* session_check_errors - hard limit: 421 and close; soft limit: delay replies */
void session_check_errors(struct session *s, unsigned before)
{
    if (s->errors == before || s->closing || s->dead)
        return;
    if (s->errors >= smtpd_conf.hard_errors) {
        msg_info("too many errors after %s from %s[%s]", s->last_cmd, s->name, s->addr);
        reply(s, 421, "4.7.0", "%s Error: too many errors", smtpd_conf.myhostname);
        session_close(s);
    } else if (s->errors >= smtpd_conf.soft_errors && smtpd_conf.error_sleep_ms > 0) {
        s->wait |= SW_SLEEP;
        event_timer_arm(&s->wait_timer, smtpd_conf.error_sleep_ms);
    }
}

/* session_command - dispatch one command line through the verb table */
static void session_command(struct session *s, char *line)
{
    const char *arg = "";
    int v = smtpcmd_split(line, verb_names, V_UNKNOWN, &arg);
    const struct verb *vb;
    const char *why;
    int code;

    if (line[strspn(line, " \t")] == 0) {
        /* a blank line is no command at all (Postfix answers the same) */
        reply(s, 500, "5.5.2", "Error: bad syntax");
        return;
    }
    if (v < 0) {
        s->last_cmd = "UNKNOWN";
        reply(s, 502, "5.5.2", "Error: command not recognized");
        session_count_verb(s, V_UNKNOWN, 502);
        return;
    }
    vb = &verbs[v];
    s->last_cmd = vb->name;
    if (s->access_denied && v != V_QUIT) {
        /* smtpd_delay_reject = no: the client was refused at connect */
        reply(s, 503, "5.7.0", "Error: access denied for %s[%s]", s->name, s->addr);
        code = 503;
    } else if (!(vb->allowed & SS_BIT(s->state))) {
        why = vb->seq_err ? vb->seq_err : "Error: bad sequence of commands";
        if (s->state == SS_BDAT && v == V_MAIL)
            why = "Error: MAIL after BDAT";
        else if (s->state == SS_BDAT && v == V_RCPT)
            why = "Error: RCPT after BDAT";
        reply(s, 503, "5.5.1", "%s", why);
        code = 503;
    } else {
        code = vb->fn(s, arg);
    }
    if (code != REPLY_LATER)
        session_count_verb(s, (enum smtpd_verb)v, code);
}

/* session_bare_lf - smtpd_forbid_bare_newline=reject: 521 and close */
void session_bare_lf(struct session *s)
{
    msg_info("disconnect: bare <LF> received from %s[%s] after %s", s->name, s->addr, s->last_cmd);
    data_abort(s);
    reply(s, 521, "5.5.2", "%s Error: bare <LF> received", smtpd_conf.myhostname);
    session_close(s);
}

/* session_bare_lf_rejected - is a bare LF from this client refused? */
static bool session_bare_lf_rejected(const struct session *s)
{
    return smtpd_conf.bare_lf == DD_BARE_LF_REJECT && !s->bare_lf_exempt;
}

/* session_process - handle all complete input that can be handled now */
static void session_process(struct session *s)
{
    if (sessions_stopping)
        return;
    while (!s->dead && !s->closing && s->wait == 0) {
        size_t avail = s->in.len - s->in_pos;
        char *p = s->in.data + s->in_pos;
        char *nl;
        size_t len;
        unsigned before;

        if (s->out.len > SESSION_OUT_HIGH) {
            /* a client that pipelines without reading: wait until it reads */
            s->wait |= SW_OUTPUT;
            break;
        }

        if (s->state == SS_DATA || s->state == SS_CHUNK) {
            size_t used;

            if (avail == 0 && !(s->state == SS_CHUNK && s->chunk_left == 0))
                break;
            /* data_input consumes input or changes state, wait or closing */
            before = s->errors;
            used = data_input(s, p, avail);
            s->in_pos += used;
            /* BDAT and end-of-data replies count toward the error limits too */
            session_check_errors(s, before);
            continue;
        }
        if (avail == 0)
            break;
        nl = memchr(p, '\n', avail);
        if (nl == NULL) {
            if (avail > session_line_limit(s)) {
                s->line_too_long = true;
                s->in_pos += avail;
            }
            break;
        }
        len = (size_t)(nl - p);
        s->in_pos += len + 1;
        if (len > 0 && p[len - 1] == '\r') {
            len--;
        } else if (session_bare_lf_rejected(s)) {
            session_bare_lf(s);
            break;
        }
        p[len] = 0;
        before = s->errors;
        if (s->auth_reading) {
            bool too_long = s->line_too_long || len > session_line_limit(s);

            s->line_too_long = false;
            auth_input(s, p, too_long);
        } else if (s->line_too_long || len > smtpd_conf.line_limit) {
            s->line_too_long = false;
            reply(s, 500, "5.5.0", "Error: line too long");
        } else {
            session_command(s, p);
        }
        session_check_errors(s, before);
    }
    if (s->dead)
        return;
    if (s->in_pos == s->in.len) {
        buf_reset(&s->in);
        s->in_pos = 0;
    } else if (s->in_pos > SESSION_IN_COMPACT || s->in.cap - s->in.len < SESSION_READ_SIZE / 2) {
        buf_consume(&s->in, s->in_pos);
        s->in_pos = 0;
    }
}

/* session_read - one large read, then process */
static void session_read(struct session *s)
{
    ssize_t n;

    if (buf_reserve(&s->in, SESSION_READ_SIZE) < 0)
        msg_panic("session_read: input buffer limit");
    n = s->io->read(s, s->in.data + s->in.len, SESSION_READ_SIZE);
    s->tls_rwant = s->tls != NULL && n < 0 ? tls_conn_want(s->tls) : 0;
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        session_kill(s, "lost connection");
        return;
    }
    if (n == 0) {
        session_kill(s, "lost connection");
        return;
    }
    s->in.len += (size_t)n;
    s->in.data[s->in.len] = 0;
    event_timer_arm(&s->idle_timer, smtpd_conf.timeout_ms);
    session_process(s);
}

/*
 * session_after - flush unless sleeping; once the client has read enough
 * of its replies, handle the rest of its pipelined input; close when
 * asked; pick the events to wait for
 */
static void session_after(struct session *s)
{
    while (!s->dead) {
        if (session_may_flush(s) && s->out.len > 0 && !s->write_blocked) {
            if (!session_flush(s))
                return;
        }
        if (s->tls_ready && s->wait == 0 && !s->closing && tls_pending(s->tls) > 0) {
            session_read(s);    /* decrypted input that epoll cannot see */
            continue;
        }
        if (!(s->wait & SW_OUTPUT) || s->out.len > SESSION_OUT_HIGH)
            break;
        s->wait &= ~SW_OUTPUT;
        session_process(s);     /* ends with the input, or above the mark again */
    }
    if (s->dead)
        return;
    if ((s->wait & SW_TLS) && s->tls == NULL && s->out.len == 0 && !s->closing) {
        smtpd_tls_begin(s);     /* the 220 to STARTTLS is out: handshake */
        if (s->dead)
            return;
    }
    if (s->closing && s->out.len == 0) {
        session_kill(s, NULL);
        return;
    }
    session_update_events(s);
}

/* session_enter - a callback starts using s */
static void session_enter(struct session *s)
{
    s->busy++;
}

/* session_leave - a callback is done with s; free it if it died */
static void session_leave(struct session *s)
{
    if (--s->busy == 0 && s->dead)
        session_free(s);
}

/* session_event - socket readiness */
static void session_event(int fd, unsigned events, void *ctx)
{
    struct session *s = ctx;

    (void)fd;
    session_enter(s);
    if ((events & EVENT_ERROR) && !(events & (EVENT_READ | EVENT_WRITE)))
        session_kill(s, "lost connection");
    if (!s->dead && s->tls != NULL && !s->tls_ready) {
        smtpd_tls_event(s);         /* the handshake */
        session_after(s);
        session_leave(s);
        return;
    }
    if (!s->dead && s->write_blocked && session_may_flush(s)
        && (events & (s->tls_wwant & TLS_WANT_READ ? EVENT_READ | EVENT_WRITE : EVENT_WRITE)))
        (void)session_flush(s);     /* session_after goes on with held input */
    if (!s->dead && (events & (EVENT_READ | (s->tls_rwant ? EVENT_WRITE : 0))) && s->wait == 0
        && !s->closing)
        session_read(s);
    session_after(s);
    session_leave(s);
}

/* session_resume - continue after a wait ended (commit, lookup, sleep) */
void session_resume(struct session *s)
{
    session_enter(s);
    if (!s->dead) {
        /* replies held back by an error sleep go out first */
        if (session_may_flush(s) && s->out.len > 0 && !s->write_blocked)
            (void)session_flush(s);
        if (!s->dead)
            session_process(s);
    }
    session_after(s);
    session_leave(s);
}

/* session_idle_timeout - smtpd_timeout without input */
static void session_idle_timeout(void *ctx)
{
    struct session *s = ctx;

    if (s->tls != NULL && !s->tls_ready) {
        session_enter(s);
        smtpd_tls_timeout(s);
        session_leave(s);
        return;
    }
    if (s->wait & (SW_COMMIT | SW_LOOKUP | SW_AUTH)) {
        event_timer_arm(&s->idle_timer, smtpd_conf.timeout_ms);
        return;
    }
    session_enter(s);
    msg_info("timeout after %s from %s[%s]", s->last_cmd, s->name, s->addr);
    data_abort(s);
    reply(s, 421, "4.4.2", "%s Error: timeout exceeded", smtpd_conf.myhostname);
    s->wait &= ~SW_SLEEP;
    session_close(s);
    session_after(s);
    if (!s->dead)
        session_kill(s, NULL);
    session_leave(s);
}

/* session_sleep_done - the error sleep is over: send the held replies */
static void session_sleep_done(void *ctx)
{
    struct session *s = ctx;

    s->wait &= ~SW_SLEEP;
    session_resume(s);
}

/*
 * session_welcome - the greeting, or (smtpd_delay_reject = no) the client
 * restrictions' refusal instead of it; called again by the restriction
 * engine when a lookup made it wait
 */
static int session_welcome(struct session *s, const char *arg)
{
    int code = policy_connect(s, session_welcome);

    (void)arg;
    if (code == POLICY_LATER)
        return REPLY_LATER;
    if (code != 0)
        s->access_denied = true;     /* replied; every command but QUIT gets 503 */
    else
        reply(s, 220, NULL, "%s", smtpd_conf.banner);
    return REPLY_LATER;
}

/* session_greet - the client name is known: log, limit, greet */
static void session_greet(struct session *s)
{
    unsigned n;

    s->wait &= ~SW_LOOKUP;
    s->state = SS_CONNECT;
    msg_info("connect from %s[%s]", s->name, s->addr);
    n = smtpd_client_conn_add(s->addr);
    s->counted = true;
    if (smtpd_conf.conn_limit > 0 && n > smtpd_conf.conn_limit
        && (smtpd_conf.event_excl == NULL
            || matchlist_match_addr(smtpd_conf.event_excl, s->addr) != MATCH_YES)) {
        msg_warn("Connection concurrency limit exceeded: %u from %s[%s] for service smtp",
                 n, s->name, s->addr);
        reply(s, 421, "4.7.0", "%s Error: too many connections from %s",
              smtpd_conf.myhostname, s->addr);
        session_close(s);
        return;
    }
    auth_session_new(s);
    (void)session_welcome(s, "");
}

/* session_named - the client name lookup finished */
static void session_named(void *ctx, const char *name)
{
    struct session *s = ctx;

    s->dns = NULL;
    if (name != NULL && *name) {
        free(s->name);
        s->name = xstrdup(name);
    }
    session_greet(s);
    session_resume(s);
}

/* session_start - a new connection from the skeleton */
void session_start(int fd, const struct sockaddr *peer, socklen_t peerlen,
                   const struct sockaddr *local, socklen_t locallen)
{
    char laddr[INET_ADDR_MAX];

    struct session *s = xcalloc(1, sizeof(*s));

    if (verb_names[0] == NULL)
        for (size_t i = 0; i < V_UNKNOWN; i++)
            verb_names[i] = verbs[i].name;
    s->fd = fd;
    s->io = &plain_io;
    s->state = SS_LOOKUP;
    s->name = xstrdup("unknown");
    s->last_cmd = "CONNECT";
    s->decl_size = -1;
    if (sockaddr_text(peer, peerlen, s->addr) == NULL)
        snprintf(s->addr, sizeof(s->addr), "unknown");
    snprintf(s->port, sizeof(s->port), "%d", sockaddr_port(peer));
    if (local != NULL && sockaddr_text(local, locallen, laddr) != NULL)
        snprintf(s->local, sizeof(s->local), "%s;%d", laddr, sockaddr_port(local));
    s->bare_lf_exempt = smtpd_conf.bare_lf_excl != NULL
        && matchlist_match_addr(smtpd_conf.bare_lf_excl, s->addr) == MATCH_YES;
    event_timer_setup(&s->idle_timer, session_idle_timeout, s);
    event_timer_setup(&s->wait_timer, session_sleep_done, s);
    s->next = sessions;
    if (sessions)
        sessions->prev = s;
    sessions = s;
    nsessions++;
    event_add(fd, 0, session_event, s, false);
    event_timer_arm(&s->idle_timer, smtpd_conf.timeout_ms);
    session_enter(s);
    if (smtpd_conf.tls_wrapper) {
        /* port 465: the handshake comes before the greeting */
        s->wait |= SW_TLS;
        smtpd_tls_begin(s);
        if (s->dead) {
            session_leave(s);
            return;
        }
    }
    if (smtpd_conf.peername_lookup) {
        s->wait |= SW_LOOKUP;
        s->dns = dns_client_name(peer, peerlen, SESSION_LOOKUP_TIMEOUT_MS, session_named, s);
    }
    if (s->dns == NULL)
        session_greet(s);
    session_after(s);
    session_leave(s);
}

/* session_stop_all - SIGTERM: 421 to every session, drop unfinished mail */
void session_stop_all(void)
{
    /*
     * Messages already handed to the group commit are made durable and
     * answered 250 first (session_process is off, so no pipelined command
     * starts a new one); what is left unfinished is then removed.
     */
    sessions_stopping = true;
    qcommit_flush();
    while (sessions != NULL) {
        struct session *s = sessions;

        session_enter(s);
        data_abort(s);
        if (s->state != SS_LOOKUP) {
            reply(s, 421, "4.3.2", "Service shutting down");
            (void)session_flush(s);
        }
        session_kill(s, NULL);
        session_leave(s);
    }
}
