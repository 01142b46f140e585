/*
 * sess_io.c - a client session's socket: connect, reads and writes in the
 * clear or through TLS, the event-loop interest, the stage timers
 *
 * Everything here is non-blocking. A session's bytes go through one of
 * two paths: read(2)/send(2) on the socket, or, from the TLS handshake
 * on, tls_read/tls_write (util/tls.h). TLS may need the other direction
 * than the caller asked for (a read that must write, a write that must
 * read): rd_want_write and wr_want_read record that, set_interest asks
 * the loop for it, and sess_event (session.c) maps the event back.
 *
 * DIAGNOSTICS: a read failure is recorded (eof, read_errno) for the
 * caller to word; a write failure returns FLUSH_ERROR with errno set.
 * SECURITY: reads are bounded by the input buffer's hard maximum
 * (SESS_IN_MAX); AUTH lines are never logged (out_secret).
 */
#include "util/sys.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "util/alloc.h"
#include "util/event.h"
#include "util/log.h"

#include "sess_impl.h"

const char *const stage_words[STG_COUNT] = {
    [STG_CONNECT] = "connecting",
    [STG_GREET] = "receiving the initial server greeting",
    [STG_EHLO] = "performing the EHLO handshake",
    [STG_HELO] = "performing the HELO handshake",
    [STG_LHLO] = "performing the LHLO handshake",
    [STG_STARTTLS] = "sending STARTTLS",
    [STG_TLS] = "performing the TLS handshake",
    [STG_AUTH] = "authenticating",
    [STG_MAIL] = "sending MAIL FROM",
    [STG_RCPT] = "sending RCPT TO",
    [STG_DATA] = "sending DATA command",
    [STG_BODY] = "sending message body",
    [STG_DOT] = "sending end of data -- message may be sent more than once",
    [STG_RSET] = "sending RSET",
    [STG_QUIT] = "sending QUIT",
};

/* stage_ms - the timeout of a stage (0 = none) */
static unsigned stage_ms(enum sess_stage stage)
{
    switch (stage) {
    case STG_CONNECT:
        return smtp_conf.connect_ms;
    case STG_GREET:
    case STG_EHLO:
    case STG_HELO:
    case STG_LHLO:
    case STG_AUTH:
        return smtp_conf.helo_ms;
    case STG_STARTTLS:
    case STG_TLS:
        return smtp_conf.starttls_ms;
    case STG_MAIL:
    case STG_RSET: /* no smtp_rset_timeout here: as short as MAIL */
        return smtp_conf.mail_ms;
    case STG_RCPT:
        return smtp_conf.rcpt_ms;
    case STG_DATA:
        return smtp_conf.data_init_ms;
    case STG_BODY:
        return smtp_conf.data_xfer_ms;
    case STG_DOT:
        return smtp_conf.data_done_ms;
    case STG_QUIT:
        return smtp_conf.quit_ms ? smtp_conf.quit_ms : SESS_QUIT_WRITE_MS;
    case STG_COUNT:
        break;
    }
    msg_panic("stage_ms: bad stage %d", (int)stage);
}

/* sess_stage - enter a stage: its name for errors, its timer */
void sess_stage(struct smtp_sess *s, enum sess_stage stage)
{
    unsigned ms = stage_ms(stage);

    s->stage = stage;
    if (ms)
        event_timer_arm(&s->timer, ms);
    else
        event_timer_disarm(&s->timer);
}

/* set_interest - watch the socket for what the state needs */
void set_interest(struct smtp_sess *s)
{
    unsigned ev;

    if (s->fd < 0)
        return;
    switch (s->state) {
    case SS_CONNECT:
        ev = EVENT_WRITE;
        break;
    case SS_REPORT:
        ev = 0;
        break;
    case SS_TLS:
        ev = s->tls && (tls_conn_want(s->tls) & TLS_WANT_WRITE) ? EVENT_WRITE : EVENT_READ;
        break;
    case SS_IDLE:
        ev = s->broken ? 0 : EVENT_READ;
        break;
    case SS_XACT:
        if (s->phase == XP_BODY) {
            ev = EVENT_WRITE; /* a body write failure tells of a close */
            if (s->wr_want_read)
                ev |= EVENT_READ;
            break;
        }
        /* FALLTHROUGH */
    default:
        ev = EVENT_READ | (s->out.len > s->out_off ? EVENT_WRITE : 0);
        break;
    }
    if (ev & EVENT_READ && s->rd_want_write)
        ev |= EVENT_WRITE;
    /* no interest: leave the loop, or a hang-up would be reported forever */
    if (ev == 0) {
        if (s->in_loop) {
            event_remove(s->fd);
            s->in_loop = false;
        }
    } else if (!s->in_loop) {
        event_add(s->fd, ev, sess_event, s, false);
        s->in_loop = true;
    } else {
        event_modify(s->fd, ev);
    }
}

/* out_cmd - queue one command line (CRLF added), logged with -v */
void out_cmd(struct smtp_sess *s, const char *fmt, ...)
{
    size_t start = s->out.len;
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = buf_vprintf(&s->out, fmt, ap);
    va_end(ap);
    if (rc < 0 || buf_puts(&s->out, "\r\n") < 0)
        msg_panic("out_cmd: output buffer full");
    if (log_verbose_level())
        msg_verbose("> %s: %.*s", s->namaddr, (int)(s->out.len - start - 2),
                    s->out.data + start);
}

/* out_secret - queue a line that carries credentials; -v shows only "shown" */
void out_secret(struct smtp_sess *s, const char *shown, const char *line)
{
    if (buf_puts(&s->out, line) < 0 || buf_puts(&s->out, "\r\n") < 0)
        msg_panic("out_secret: output buffer full");
    if (log_verbose_level())
        msg_verbose("> %s: %s", s->namaddr, shown);
}

/* io_send - one write in the clear or through TLS */
static ssize_t io_send(struct smtp_sess *s, const void *p, size_t n)
{
    ssize_t w;

    if (s->tls == NULL || !s->tls_active)
        return send(s->fd, p, n, MSG_NOSIGNAL);
    s->wr_want_read = false;
    w = tls_write(s->tls, p, n);
    if (w < 0 && errno == EAGAIN && (tls_conn_want(s->tls) & TLS_WANT_READ))
        s->wr_want_read = true;
    if (w < 0 && errno != EAGAIN && log_verbose_level())
        msg_verbose("TLS write to %s: %s", s->namaddr, tls_conn_error(s->tls));
    return w;
}

/* sess_flush - write what the socket takes; FLUSH_ERROR leaves errno */
int sess_flush(struct smtp_sess *s)
{
    while (s->out_off < s->out.len) {
        ssize_t n = io_send(s, s->out.data + s->out_off, s->out.len - s->out_off);

        if (n > 0) {
            s->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (s->out_off >= SESS_OUT_COMPACT) {
                buf_consume(&s->out, s->out_off);
                s->out_off = 0;
            }
            return FLUSH_PARTIAL;
        }
        if (n == 0)
            errno = EPIPE;
        return FLUSH_ERROR;
    }
    buf_reset(&s->out);
    s->out_off = 0;
    return FLUSH_DONE;
}

/* sess_push - write pending output, update the interest; false: s is gone */
bool sess_push(struct smtp_sess *s)
{
    if (sess_flush(s) == FLUSH_ERROR) {
        if (log_verbose_level())
            msg_verbose("%s: write to %s: %m", sess_qid(s), s->namaddr);
        return fail_lost(s);
    }
    set_interest(s);
    return true;
}

/* tls_read_some - one TLS read into s->in (and what OpenSSL already decrypted) */
static void tls_read_some(struct smtp_sess *s)
{
    s->rd_want_write = false;
    do {
        ssize_t n;

        if (buf_reserve(&s->in, SESS_READ_SIZE) < 0)
            return;
        n = tls_read(s->tls, s->in.data + s->in.len, SESS_READ_SIZE);
        if (n > 0) {
            s->in.len += (size_t)n;
            s->in.data[s->in.len] = 0;
            continue;
        }
        if (n == 0) {
            s->eof = true;
        } else if (errno == EAGAIN) {
            if (tls_conn_want(s->tls) & TLS_WANT_WRITE)
                s->rd_want_write = true;
        } else {
            s->eof = true;
            s->read_errno = errno;
            if (log_verbose_level())
                msg_verbose("TLS read from %s: %s", s->namaddr, tls_conn_error(s->tls));
        }
        return;
    } while (tls_pending(s->tls) > 0);
}

/* sess_read - one read; eof/read_errno record a close; false on a full buffer */
bool sess_read(struct smtp_sess *s)
{
    ssize_t n;

    if (s->eof)
        return true;
    if (buf_reserve(&s->in, SESS_READ_SIZE) < 0)
        return false;
    if (s->tls != NULL && s->tls_active) {
        tls_read_some(s);
        return true;
    }
    n = read(s->fd, s->in.data + s->in.len, SESS_READ_SIZE);
    if (n > 0) {
        s->in.len += (size_t)n;
        s->in.data[s->in.len] = 0;
    } else if (n == 0) {
        s->eof = true;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        s->eof = true;
        s->read_errno = errno;
    }
    return true;
}

/* connect_status - connect failed: "connect to X[A]:P: reason" */
void connect_status(struct smtp_sess *s, int err)
{
    struct buf where = BUF_INIT;

    smtp_target_relay(&s->t, &where);
    status_set(s, DELIVER_DEFERRED, DSN_CONNECT, NULL, "connect to %s: %s", buf_str(&where),
               strerror(err));
    buf_free(&where);
}

/* bind_source - bind to smtp_bind_address(6) when set; 0 or errno */
static int bind_source(int fd, int family)
{
    const char *addr = family == AF_INET    ? smtp_conf.bind_v4
                       : family == AF_INET6 ? smtp_conf.bind_v6
                                            : NULL;
    struct sockaddr_storage ss;
    socklen_t len;

    if (addr == NULL || *addr == 0)
        return 0;
    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

        sin->sin_family = AF_INET;
        len = sizeof(*sin);
        if (inet_pton(AF_INET, addr, &sin->sin_addr) != 1) {
            msg_warn("bad IPv4 bind address: %s", addr);
            return EINVAL;
        }
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

        sin6->sin6_family = AF_INET6;
        len = sizeof(*sin6);
        if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) != 1) {
            msg_warn("bad IPv6 bind address: %s", addr);
            return EINVAL;
        }
    }
    if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
        int err = errno;

        msg_warn("bind %s: %s", addr, strerror(err));
        return err;
    }
    return 0;
}

/*
 * sess_connect - a new socket and a non-blocking connect to s->t: 0 with
 * the session in SS_CONNECT (or SS_GREET / SS_TLS when it connected at
 * once), or an errno (s->fd closed)
 */
int sess_connect(struct smtp_sess *s)
{
    int family = s->t.sa.ss_family;
    int err;

    s->fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0)
        return errno;
    if (family != AF_UNIX && (err = bind_source(s->fd, family)) != 0)
        goto failed;
    if (log_verbose_level())
        msg_verbose("connecting to %s port %u", s->namaddr, s->t.port);
    s->state = SS_CONNECT;
    if (connect(s->fd, (const struct sockaddr *)&s->t.sa, s->t.salen) == 0 ||
        errno == EINPROGRESS || errno == EINTR) {
        /* connect_done (session.c) goes on from the loop either way */
        sess_stage(s, STG_CONNECT);
        set_interest(s);
        return 0;
    }
    err = errno;
failed:
    (void)close(s->fd);
    s->fd = -1;
    return err;
}

/* sess_io_close - end the connection (TLS first), keep the session object */
void sess_io_close(struct smtp_sess *s)
{
    if (s->tls) {
        tls_end(s);
        tls_conn_free(s->tls);
        s->tls = NULL;
    }
    s->tls_active = false;
    s->rd_want_write = s->wr_want_read = false;
    if (s->fd >= 0) {
        if (s->in_loop)
            event_remove(s->fd);
        s->in_loop = false;
        (void)close(s->fd);
        s->fd = -1;
    }
}
