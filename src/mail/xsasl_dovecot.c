/*
 * xsasl_dovecot.c - the Dovecot backend of xsasl: a client of Dovecot's
 * authentication protocol 1.x over its Unix socket
 *
 * One connection per smtpd process, shared by all its sessions: each
 * AUTH gets a request ID, replies (OK, CONT, FAIL) are matched by ID.
 * The handshake (client VERSION and CPID; server VERSION, MECH lines,
 * SPID, CUID, COOKIE, DONE) runs in the event loop; the MECH list of the
 * last completed handshake is cached so that xsasl_mechs answers at
 * once. Only when no list was ever learned does xsasl_mechs (and
 * xsasl_server_open) wait for a handshake, bounded by a short timeout
 * and not retried more than once per retry interval.
 *
 * A broken connection fails every outstanding request with XSASL_TEMP
 * ("Connection lost to authentication server", the text log readers
 * know from Postfix); the next request reconnects. A relative
 * smtpd_sasl_path is looked up under queue_directory, and, after a
 * chroot into the queue directory, under "/".
 *
 * Protocol text: fields are separated by TAB; Dovecot escapes \001,
 * TAB, CR and LF in values as \001 followed by 1, t, r or n.
 *
 * DIAGNOSTICS
 *	A malformed or oversized server line, an unsupported protocol
 *	version, or a handshake that does not finish in time are warnings;
 *	the connection is closed and pending requests get XSASL_TEMP.
 * SECURITY
 *	Server lines are bounded (XSASL_DC_LINE_MAX); user names with
 *	control characters are refused (xsasl_finish). Client responses are
 *	passed on as checked base64 and never logged.
 */
#include "util/sys.h"

#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "mail/xsasl.h"
#include "mail/xsasl_impl.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/event.h"
#include "util/log.h"

#define DC_MAJOR 1
#define DC_MINOR 1
#define DC_ESC '\001'
#define DC_OUT_MAX ((size_t)1 << 20) /* unsent bytes before the link is declared stuck */
#define DC_READ_CHUNK 4096
#define DC_ID_MAX 0xffffffffUL
#define DC_DECIMAL 10
#define MS_PER_SEC 1000
#define NS_PER_MS 1000000

#define DC_LOST_TEXT "Connection lost to authentication server"

static unsigned dc_handshake_ms = 5000; /* connect to DONE */
static unsigned dc_request_ms = 30000;  /* AUTH/CONT to the reply */
static unsigned dc_retry_ms = 10000;    /* between waited-for handshakes */

enum dc_state { DC_DOWN, DC_HANDSHAKE, DC_READY };

struct dc_sess;

struct dc_server {
    struct xsasl_server *srv;
    char *paths[2]; /* tried in order */
    size_t npaths;
    int fd;
    enum dc_state state;
    bool got_version;
    struct buf in, out;
    struct xsasl_mech *mechs; /* from the last DONE */
    size_t nmechs;
    bool have_mechs;
    struct xsasl_mech *fresh; /* collected during a handshake */
    size_t nfresh;
    unsigned long next_id;
    struct dc_sess *sessions; /* all sessions (reply lookup by ID) */
    struct event_timer handshake_timer;
    uint64_t last_fail; /* monotonic ms of the last failed connect/handshake */
    bool failed;        /* last_fail is set */
    bool warned_down;   /* "cannot connect" logged since the last success */
};

struct dc_sess {
    struct dc_sess *prev, *next;
    struct xsasl_sess *s;
    unsigned long id;         /* exchange on the current connection; 0 none */
    struct buf queued;        /* request waiting for the handshake (wiped) */
    struct event_timer timer; /* waiting for the server */
    char *success_user;       /* OK with success data: awaiting the empty response */
};

/* xsasl_dovecot_set_timeouts - test hook */
void xsasl_dovecot_set_timeouts(unsigned handshake_ms, unsigned request_ms,
                                unsigned retry_ms)
{
    dc_handshake_ms = handshake_ms;
    dc_request_ms = request_ms;
    dc_retry_ms = retry_ms;
}

/* mono_ms - monotonic clock in ms (not the loop's cached time) */
static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * MS_PER_SEC + (uint64_t)ts.tv_nsec / NS_PER_MS;
}

/* ---- protocol text ------------------------------------------------------ */

/* xsasl_dc_escape - append s with Dovecot's tab escapes */
int xsasl_dc_escape(struct buf *out, const char *s)
{
    int rc = 0;

    for (; *s && rc == 0; s++) {
        switch (*s) {
        case DC_ESC:
            rc = buf_append(out, "\0011", 2);
            break;
        case '\t':
            rc = buf_append(out, "\001t", 2);
            break;
        case '\r':
            rc = buf_append(out, "\001r", 2);
            break;
        case '\n':
            rc = buf_append(out, "\001n", 2);
            break;
        default:
            rc = buf_putc(out, (unsigned char)*s);
            break;
        }
    }
    return rc;
}

/* xsasl_dc_unescape - decode s[len] into out */
int xsasl_dc_unescape(const char *s, size_t len, struct buf *out)
{
    char c;

    for (size_t i = 0; i < len; i++) {
        c = s[i];
        if (c == 0)
            return -1;
        if (c == DC_ESC) {
            if (++i == len)
                return -1;
            switch (s[i]) {
            case '1':
                c = DC_ESC;
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            case 'n':
                c = '\n';
                break;
            default:
                return -1;
            }
        }
        if (buf_putc(out, (unsigned char)c) < 0)
            return -1;
    }
    return 0;
}

/* parse_ulong - a decimal number without sign or leading junk, <= max */
static bool parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
    unsigned long v = 0;

    if (*s == 0)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        if (v > (max - (unsigned long)(*s - '0')) / DC_DECIMAL)
            return false;
        v = v * DC_DECIMAL + (unsigned long)(*s - '0');
    }
    *out = v;
    return true;
}

/* mech_flag - a MECH flag word as XSASL_SEC_*, 0 when unknown */
static unsigned mech_flag(const char *w)
{
    static const struct {
        const char *word;
        unsigned flag;
    } flags[] = {
        {"anonymous", XSASL_SEC_ANONYMOUS},
        {"plaintext", XSASL_SEC_PLAINTEXT},
        {"dictionary", XSASL_SEC_DICTIONARY},
        {"active", XSASL_SEC_ACTIVE},
        {"forward-secrecy", XSASL_SEC_FORWARD_SECRECY},
        {"mutual-auth", XSASL_SEC_MUTUAL_AUTH},
        {"private", XSASL_SEC_PRIVATE},
    };

    for (size_t i = 0; i < POSTA_ARRAY_LEN(flags); i++)
        if (strcmp(w, flags[i].word) == 0)
            return flags[i].flag;
    return 0;
}

/* split_fields - the unescaped TAB-separated fields of line[len] */
static int split_fields(const char *line, size_t len, char ***fields, size_t *nfields)
{
    const char *p = line, *end = line + len, *tab;
    struct buf b = BUF_INIT;
    char **f = NULL;
    size_t n = 0;

    for (;;) {
        tab = memchr(p, '\t', (size_t)(end - p));
        if (tab == NULL)
            tab = end;
        buf_init(&b, XSASL_DC_LINE_MAX);
        if (xsasl_dc_unescape(p, (size_t)(tab - p), &b) < 0) {
            buf_free(&b);
            for (size_t i = 0; i < n; i++)
                free(f[i]);
            free(f);
            return -1;
        }
        f = xreallocarray(f, n + 1, sizeof(*f));
        f[n++] = b.data ? buf_steal(&b) : xstrdup("");
        if (tab == end)
            break;
        p = tab + 1;
    }
    *fields = f;
    *nfields = n;
    return 0;
}

/* xsasl_dc_free - release the strings of a parsed reply */
void xsasl_dc_free(struct xsasl_dc_reply *r)
{
    free(r->mech);
    free(r->user);
    if (r->data)
        explicit_bzero(r->data, strlen(r->data));
    free(r->data);
    free(r->reason);
    memset(r, 0, sizeof(*r));
}

/* take - move a field's string into *dst (replacing an earlier one) */
static void take(char **dst, char **field)
{
    free(*dst);
    *dst = *field;
    *field = NULL;
}

/* parse_reply_args - the key=value arguments of OK and FAIL */
static void parse_reply_args(struct xsasl_dc_reply *r, char **f, size_t n)
{
    for (size_t i = 2; i < n; i++) {
        char *eq = strchr(f[i], '=');
        size_t klen = eq ? (size_t)(eq - f[i]) : strlen(f[i]);

        if (klen == 4 && strncmp(f[i], "user", klen) == 0 && eq) {
            char *v = xstrdup(eq + 1);
            take(&r->user, &v);
        } else if (klen == 6 && strncmp(f[i], "reason", klen) == 0 && eq) {
            char *v = xstrdup(eq + 1);
            take(&r->reason, &v);
        } else if (klen == 4 && strncmp(f[i], "resp", klen) == 0 && eq) {
            char *v = xstrdup(eq + 1);
            take(&r->data, &v);
        } else if (strcmp(f[i], "temp") == 0 || strcmp(f[i], "code=temp_fail") == 0) {
            r->temp = true;
        }
    }
}

/* xsasl_dc_parse - one server line */
int xsasl_dc_parse(const char *line, size_t len, struct xsasl_dc_reply *r, const char **err)
{
    char **f = NULL;
    size_t n = 0;
    int rc = -1;
    const char *cmd;

    memset(r, 0, sizeof(*r));
    *err = NULL;
    if (len > XSASL_DC_LINE_MAX) {
        *err = "line too long";
        return -1;
    }
    if (memchr(line, '\n', len) != NULL) {
        *err = "newline inside a line";
        return -1;
    }
    if (split_fields(line, len, &f, &n) < 0) {
        *err = "bad escape or NUL byte";
        return -1;
    }
    cmd = f[0];
    if (strcmp(cmd, "VERSION") == 0) {
        r->kind = XSASL_DC_VERSION;
        if (n < 3 || !parse_ulong(f[1], UINT_MAX, &r->major) ||
            !parse_ulong(f[2], UINT_MAX, &r->minor))
            *err = "malformed VERSION";
    } else if (strcmp(cmd, "MECH") == 0) {
        r->kind = XSASL_DC_MECH;
        if (n < 2 || *f[1] == 0) {
            *err = "MECH without a name";
        } else {
            take(&r->mech, &f[1]);
            for (size_t i = 2; i < n; i++)
                r->props |= mech_flag(f[i]);
        }
    } else if (strcmp(cmd, "SPID") == 0 || strcmp(cmd, "CUID") == 0 ||
               strcmp(cmd, "COOKIE") == 0) {
        r->kind = cmd[0] == 'S'   ? XSASL_DC_SPID
                  : cmd[1] == 'U' ? XSASL_DC_CUID
                                  : XSASL_DC_COOKIE;
        if (n < 2)
            *err = "handshake line without a value";
    } else if (strcmp(cmd, "DONE") == 0) {
        r->kind = XSASL_DC_DONE;
    } else if (strcmp(cmd, "OK") == 0 || strcmp(cmd, "CONT") == 0 ||
               strcmp(cmd, "FAIL") == 0) {
        r->kind = cmd[0] == 'O'   ? XSASL_DC_OK
                  : cmd[0] == 'C' ? XSASL_DC_CONT
                                  : XSASL_DC_FAIL;
        if (n < 2 || !parse_ulong(f[1], DC_ID_MAX, &r->id) || r->id == 0) {
            *err = "missing or bad request ID";
        } else if (r->kind == XSASL_DC_CONT) {
            if (n < 3)
                *err = "CONT without data";
            else if (!xsasl_base64_valid(f[2], strlen(f[2])))
                *err = "CONT data is not base64";
            else
                take(&r->data, &f[2]);
        } else {
            parse_reply_args(r, f, n);
            if (r->data && !xsasl_base64_valid(r->data, strlen(r->data)))
                *err = "OK resp= is not base64";
        }
    } else {
        r->kind = XSASL_DC_UNKNOWN;
    }
    rc = *err ? -1 : 0;
    for (size_t i = 0; i < n; i++) {
        if (f[i])
            explicit_bzero(f[i], strlen(f[i]));
        free(f[i]);
    }
    free(f);
    if (rc < 0)
        xsasl_dc_free(r);
    return rc;
}

/* add_kv - "\tkey=value" with value escaped (skipped when value is empty) */
static int add_kv(struct buf *out, const char *key, const char *value)
{
    if (value == NULL || *value == 0)
        return 0;
    if (buf_printf(out, "\t%s=", key) < 0)
        return -1;
    return xsasl_dc_escape(out, value);
}

/* xsasl_dc_auth_line - the AUTH request line */
int xsasl_dc_auth_line(struct buf *out, unsigned long id, const char *mech,
                       const char *service, const char *local_ip, const char *local_port,
                       const char *remote_ip, const char *remote_port, bool secured,
                       const char *initial)
{
    if (buf_printf(out, "AUTH\t%lu\t", id) < 0 || xsasl_dc_escape(out, mech) < 0 ||
        add_kv(out, "service", service) < 0 || buf_puts(out, "\tnologin") < 0 ||
        add_kv(out, "lip", local_ip) < 0 || add_kv(out, "rip", remote_ip) < 0 ||
        add_kv(out, "lport", local_port) < 0 || add_kv(out, "rport", remote_port) < 0)
        return -1;
    if (secured && buf_puts(out, "\tsecured") < 0)
        return -1;
    if (initial != NULL) {
        if (strcmp(initial, "=") == 0)
            initial = "";
        if (buf_puts(out, "\tresp=") < 0 || xsasl_dc_escape(out, initial) < 0)
            return -1;
    }
    return buf_putc(out, '\n');
}

/* ---- the connection ------------------------------------------------------ */

static void dc_fd_event(int fd, unsigned events, void *ctx);
static void dc_input(struct dc_server *dc);

/* sess_fail - end the session's exchange with st (if a call waits for it) */
static void sess_fail(struct dc_sess *ds, enum xsasl_status st, const char *why)
{
    ds->id = 0;
    event_timer_disarm(&ds->timer);
    xsasl_wipe(&ds->queued);
    free(ds->success_user);
    ds->success_user = NULL;
    if (ds->s->busy && !ds->s->result_ready)
        xsasl_finish(ds->s, st, why);
}

/* dc_disconnect - close the link; every exchange on it fails temporarily */
static void dc_disconnect(struct dc_server *dc, const char *why)
{
    if (dc->fd >= 0) {
        event_remove(dc->fd);
        close(dc->fd);
        dc->fd = -1;
    }
    if (why)
        msg_warn("SASL: %s: %s", dc->paths[0], why);
    if (dc->state == DC_HANDSHAKE) {
        dc->failed = true;
        dc->last_fail = mono_ms();
    }
    dc->state = DC_DOWN;
    dc->got_version = false;
    buf_reset(&dc->in);
    xsasl_wipe(&dc->out);
    buf_init(&dc->out, DC_OUT_MAX);
    event_timer_disarm(&dc->handshake_timer);
    xsasl_mechs_free(dc->fresh, dc->nfresh);
    dc->fresh = NULL;
    dc->nfresh = 0;
    for (struct dc_sess *ds = dc->sessions; ds; ds = ds->next)
        if (ds->id != 0 || ds->queued.len > 0)
            sess_fail(ds, XSASL_TEMP, DC_LOST_TEXT);
}

/* dc_flush - write what is buffered; false when the link broke */
static bool dc_flush(struct dc_server *dc)
{
    ssize_t n;

    while (dc->out.len > 0) {
        n = send(dc->fd, dc->out.data, dc->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0) {
            dc_disconnect(dc, "write to authentication server failed");
            return false;
        }
        explicit_bzero(dc->out.data, (size_t)n);
        buf_consume(&dc->out, (size_t)n);
    }
    event_modify(dc->fd, EVENT_READ | (dc->out.len ? EVENT_WRITE : 0u));
    return true;
}

/* dc_send - queue a line and write it; false when the link broke */
static bool dc_send(struct dc_server *dc, const struct buf *line)
{
    if (buf_append(&dc->out, buf_str(line), line->len) < 0) {
        dc_disconnect(dc, "authentication server does not read its input");
        return false;
    }
    return dc_flush(dc);
}

/* dc_handshake_timeout - the server did not finish its handshake in time */
static void dc_handshake_timeout(void *ctx)
{
    dc_disconnect(ctx, "timeout during the handshake with the authentication server");
}

/* dc_connect - open the socket and send the client handshake; 0 or -1 */
static int dc_connect(struct dc_server *dc)
{
    struct sockaddr_un sun;
    struct buf hello = BUF_INIT;
    int fd = -1, saved = 0;
    size_t i;

    for (i = 0; i < dc->npaths; i++) {
        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        if (strlen(dc->paths[i]) >= sizeof(sun.sun_path)) {
            saved = ENAMETOOLONG;
            continue;
        }
        memcpy(sun.sun_path, dc->paths[i], strlen(dc->paths[i]) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            saved = errno;
            break;
        }
        if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        dc->failed = true;
        dc->last_fail = mono_ms();
        if (!dc->warned_down)
            msg_warn("SASL: cannot connect to Dovecot auth socket %s: %s", dc->paths[0],
                     strerror(saved));
        dc->warned_down = true;
        return -1;
    }
    dc->fd = fd;
    dc->state = DC_HANDSHAKE;
    dc->got_version = false;
    event_init();
    event_add(fd, EVENT_READ, dc_fd_event, dc, false);
    event_timer_arm(&dc->handshake_timer, dc_handshake_ms);
    buf_printf(&hello, "VERSION\t%d\t%d\nCPID\t%ld\n", DC_MAJOR, DC_MINOR, (long)getpid());
    i = dc_send(dc, &hello) ? 0 : 1;
    buf_free(&hello);
    return i == 0 && dc->state != DC_DOWN ? 0 : -1;
}

/* dc_sess_of - the session whose exchange has this ID */
static struct dc_sess *dc_sess_of(struct dc_server *dc, unsigned long id)
{
    for (struct dc_sess *ds = dc->sessions; ds; ds = ds->next)
        if (ds->id == id)
            return ds;
    return NULL;
}

/* dc_handshake_line - VERSION, MECH ... DONE */
static bool dc_handshake_line(struct dc_server *dc, struct xsasl_dc_reply *r)
{
    switch (r->kind) {
    case XSASL_DC_VERSION:
        if (r->major != DC_MAJOR) {
            dc_disconnect(dc,
                          "authentication server speaks an unsupported protocol version");
            return false;
        }
        dc->got_version = true;
        return true;
    case XSASL_DC_MECH:
        for (char *p = r->mech; *p; p++)
            if (*p >= 'a' && *p <= 'z')
                *p = (char)(*p - 'a' + 'A');
        xsasl_mechs_add(&dc->fresh, &dc->nfresh, r->mech, r->props);
        r->mech = NULL;
        return true;
    case XSASL_DC_DONE:
        if (!dc->got_version) {
            dc_disconnect(dc, "authentication server sent DONE without VERSION");
            return false;
        }
        xsasl_mechs_free(dc->mechs, dc->nmechs);
        dc->mechs = dc->fresh;
        dc->nmechs = dc->nfresh;
        dc->fresh = NULL;
        dc->nfresh = 0;
        dc->have_mechs = true;
        dc->warned_down = false;
        dc->failed = false;
        dc->state = DC_READY;
        event_timer_disarm(&dc->handshake_timer);
        /* Requests that waited for the handshake go out now. */
        for (struct dc_sess *ds = dc->sessions; ds && dc->state == DC_READY;
             ds = ds->next) {
            if (ds->queued.len == 0)
                continue;
            struct buf line = ds->queued;
            ds->queued = (struct buf)BUF_INIT;
            bool ok = dc_send(dc, &line);
            xsasl_wipe(&line);
            if (!ok)
                return false;
        }
        return dc->state == DC_READY;
    case XSASL_DC_OK:
    case XSASL_DC_CONT:
    case XSASL_DC_FAIL:
        dc_disconnect(dc, "authentication server answered before its handshake");
        return false;
    default:
        return true; /* SPID, CUID, COOKIE, unknown */
    }
}

/* dc_reply - OK, CONT or FAIL for one session */
static void dc_reply(struct dc_server *dc, struct xsasl_dc_reply *r)
{
    struct dc_sess *ds = dc_sess_of(dc, r->id);

    if (ds == NULL || !ds->s->busy || ds->s->result_ready) {
        msg_verbose("SASL: reply for unknown or finished request %lu ignored", r->id);
        return;
    }
    event_timer_disarm(&ds->timer);
    switch (r->kind) {
    case XSASL_DC_CONT:
        xsasl_finish(ds->s, XSASL_CONTINUE, r->data);
        break;
    case XSASL_DC_OK:
        ds->id = 0;
        if (r->user == NULL || *r->user == 0) {
            xsasl_finish(ds->s, XSASL_TEMP, "authentication server sent no user name");
        } else if (r->data && *r->data) {
            /* Success data: a last challenge; the client answers empty. */
            ds->success_user = r->user;
            r->user = NULL;
            xsasl_finish(ds->s, XSASL_CONTINUE, r->data);
        } else {
            xsasl_finish(ds->s, XSASL_OK, r->user);
        }
        break;
    default:
        ds->id = 0;
        if (r->temp)
            xsasl_finish(ds->s, XSASL_TEMP, r->reason ? r->reason : "temporary failure");
        else
            xsasl_finish(ds->s, XSASL_FAIL,
                         r->reason ? r->reason : "authentication failure");
        break;
    }
}

/* dc_line - one complete server line; false when the link was closed */
static bool dc_line(struct dc_server *dc, const char *line, size_t len)
{
    struct xsasl_dc_reply r;
    const char *err;
    bool ok = true;

    if (xsasl_dc_parse(line, len, &r, &err) < 0) {
        char *why = xasprintf("malformed reply from authentication server: %s", err);
        dc_disconnect(dc, why);
        free(why);
        return false;
    }
    if (dc->state == DC_HANDSHAKE)
        ok = dc_handshake_line(dc, &r);
    else if (r.kind == XSASL_DC_OK || r.kind == XSASL_DC_CONT || r.kind == XSASL_DC_FAIL)
        dc_reply(dc, &r);
    xsasl_dc_free(&r);
    return ok;
}

/* dc_input - read what is there and act on each complete line */
static void dc_input(struct dc_server *dc)
{
    char chunk[DC_READ_CHUNK];
    ssize_t n;
    char *nl;
    size_t used;

    for (;;) {
        n = recv(dc->fd, chunk, sizeof(chunk), MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            dc_disconnect(dc, n == 0 ? "authentication server closed the connection"
                                     : "read from authentication server failed");
            return;
        }
        if (buf_append(&dc->in, chunk, (size_t)n) < 0) {
            dc_disconnect(dc, "reply line from authentication server too long");
            return;
        }
        while ((nl = memchr(buf_str(&dc->in), '\n', dc->in.len)) != NULL) {
            used = (size_t)(nl - dc->in.data);
            if (!dc_line(dc, dc->in.data, used))
                return;
            buf_consume(&dc->in, used + 1);
        }
        if (dc->in.len > XSASL_DC_LINE_MAX) {
            dc_disconnect(dc, "reply line from authentication server too long");
            return;
        }
    }
}

/* dc_fd_event - the event loop's callback for the socket */
static void dc_fd_event(int fd, unsigned events, void *ctx)
{
    struct dc_server *dc = ctx;

    if ((events & EVENT_WRITE) && !dc_flush(dc))
        return;
    if (events & (EVENT_READ | EVENT_ERROR))
        dc_input(dc);
}

/* dc_may_retry - no connect or handshake failed within the retry interval */
static bool dc_may_retry(const struct dc_server *dc)
{
    return !dc->failed || mono_ms() - dc->last_fail >= dc_retry_ms;
}

/* dc_wait_handshake - connect if needed and wait (bounded) for DONE */
static void dc_wait_handshake(struct dc_server *dc)
{
    uint64_t deadline = mono_ms() + dc_handshake_ms, now;
    struct pollfd pfd;

    if (dc->state == DC_DOWN && dc_connect(dc) < 0)
        return;
    while (dc->state == DC_HANDSHAKE) {
        now = mono_ms();
        if (now >= deadline) {
            dc_disconnect(dc,
                          "timeout during the handshake with the authentication server");
            return;
        }
        pfd.fd = dc->fd;
        pfd.events = (short)(POLLIN | (dc->out.len ? POLLOUT : 0));
        pfd.revents = 0;
        if (poll(&pfd, 1, (int)(deadline - now)) < 0) {
            if (errno == EINTR)
                continue;
            dc_disconnect(dc, "poll failed");
            return;
        }
        if ((pfd.revents & POLLOUT) && !dc_flush(dc))
            return;
        if (pfd.revents & (POLLIN | POLLERR | POLLHUP))
            dc_input(dc);
    }
}

/* ---- backend operations --------------------------------------------------- */

/* dc_open - set up the client; a first handshake learns the mechanisms */
static int dc_open(struct xsasl_server *srv, char **err)
{
    struct dc_server *dc = xcalloc(1, sizeof(*dc));

    dc->srv = srv;
    dc->fd = -1;
    dc->next_id = 1;
    buf_init(&dc->in, XSASL_DC_LINE_MAX + DC_READ_CHUNK);
    buf_init(&dc->out, DC_OUT_MAX);
    if (srv->path[0] == '/' || srv->queue_dir[0] == 0) {
        dc->paths[dc->npaths++] = xstrdup(srv->path);
    } else {
        /* queue_directory/PATH, or /PATH once chrooted into the queue directory */
        dc->paths[dc->npaths++] = xasprintf("%s/%s", srv->queue_dir, srv->path);
        dc->paths[dc->npaths++] = xasprintf("/%s", srv->path);
    }
    event_init();
    event_timer_setup(&dc->handshake_timer, dc_handshake_timeout, dc);
    srv->impl = dc;
    dc_wait_handshake(dc);
    return 0;
}

/* dc_close - drop the connection and the cache */
static void dc_close(struct xsasl_server *srv)
{
    struct dc_server *dc = srv->impl;

    if (dc->sessions)
        msg_panic("xsasl_server_close: sessions still open");
    dc_disconnect(dc, NULL);
    xsasl_mechs_free(dc->mechs, dc->nmechs);
    buf_free(&dc->in);
    xsasl_wipe(&dc->out);
    for (size_t i = 0; i < dc->npaths; i++)
        free(dc->paths[i]);
    free(dc);
}

/* dc_request_timeout - the server did not answer one exchange */
static void dc_request_timeout(void *ctx)
{
    struct dc_sess *ds = ctx;

    msg_warn("SASL: timeout waiting for the authentication server");
    sess_fail(ds, XSASL_TEMP, "timeout waiting for authentication server");
}

/* dc_sess_init - join the server's session list */
static void dc_sess_init(struct xsasl_sess *s)
{
    struct dc_server *dc = s->srv->impl;
    struct dc_sess *ds = xcalloc(1, sizeof(*ds));

    ds->s = s;
    buf_init(&ds->queued, XSASL_DC_LINE_MAX);
    event_timer_setup(&ds->timer, dc_request_timeout, ds);
    ds->next = dc->sessions;
    if (dc->sessions)
        dc->sessions->prev = ds;
    dc->sessions = ds;
    s->impl = ds;
    if (dc->state == DC_DOWN && dc_may_retry(dc))
        (void)dc_connect(dc); /* refresh the link (and the list) in the background */
}

/* dc_mechs - the cached list, filtered by the session's options */
static void dc_mechs(struct xsasl_sess *s)
{
    struct dc_server *dc = s->srv->impl;

    /* Wait only when no list was ever learned: for a link that is up, or a retry. */
    if (!dc->have_mechs &&
        (dc->state == DC_HANDSHAKE || (dc->state == DC_DOWN && dc_may_retry(dc))))
        dc_wait_handshake(dc);
    xsasl_mechs_filter(dc->mechs, dc->nmechs, &s->opts, &s->mechs);
}

/* dc_transmit - send (or queue until DONE) one line of ds's exchange */
static void dc_transmit(struct dc_server *dc, struct dc_sess *ds, struct buf *line)
{
    event_timer_arm(&ds->timer, dc_request_ms);
    if (dc->state == DC_READY) {
        (void)dc_send(dc, line); /* a broken link fails ds itself */
    } else {
        buf_reset(&ds->queued);
        if (buf_append(&ds->queued, buf_str(line), line->len) < 0)
            sess_fail(ds, XSASL_FAIL, "request too long");
    }
}

/* dc_start - AUTH */
static void dc_start(struct xsasl_sess *s, const char *mech, const char *initial)
{
    struct dc_server *dc = s->srv->impl;
    struct dc_sess *ds = s->impl;
    struct buf line = BUF_INIT;

    free(ds->success_user);
    ds->success_user = NULL;
    if (dc->state == DC_DOWN && dc_connect(dc) < 0) {
        sess_fail(ds, XSASL_TEMP, "cannot connect to authentication server");
        return;
    }
    if (dc->next_id == 0 || dc->next_id > DC_ID_MAX)
        dc->next_id = 1;
    ds->id = dc->next_id++;
    buf_init(&line, XSASL_DC_LINE_MAX);
    if (xsasl_dc_auth_line(&line, ds->id, mech, s->srv->service, s->local_ip, s->local_port,
                           s->client_addr, s->remote_port, s->tls_active, initial) < 0)
        sess_fail(ds, XSASL_FAIL, "request too long");
    else
        dc_transmit(dc, ds, &line);
    xsasl_wipe(&line);
}

/* dc_step - CONT, or the empty answer to success data */
static void dc_step(struct xsasl_sess *s, const char *response)
{
    struct dc_server *dc = s->srv->impl;
    struct dc_sess *ds = s->impl;
    struct buf line = BUF_INIT;

    if (ds->success_user) {
        char *user = ds->success_user;

        ds->success_user = NULL;
        if (*response == 0)
            xsasl_finish(s, XSASL_OK, user);
        else
            xsasl_finish(s, XSASL_FAIL, "unexpected data after the final challenge");
        free(user);
        return;
    }
    if (ds->id == 0) {
        sess_fail(ds, XSASL_TEMP, DC_LOST_TEXT);
        return;
    }
    buf_init(&line, XSASL_DC_LINE_MAX);
    if (buf_printf(&line, "CONT\t%lu\t", ds->id) < 0 ||
        xsasl_dc_escape(&line, response) < 0 || buf_putc(&line, '\n') < 0)
        sess_fail(ds, XSASL_FAIL, "response too long");
    else
        dc_transmit(dc, ds, &line);
    xsasl_wipe(&line);
}

/* dc_sess_done - leave the server's session list */
static void dc_sess_done(struct xsasl_sess *s)
{
    struct dc_server *dc = s->srv->impl;
    struct dc_sess *ds = s->impl;

    if (ds == NULL)
        return;
    event_timer_disarm(&ds->timer);
    if (ds->prev)
        ds->prev->next = ds->next;
    else
        dc->sessions = ds->next;
    if (ds->next)
        ds->next->prev = ds->prev;
    xsasl_wipe(&ds->queued);
    free(ds->success_user);
    free(ds);
    s->impl = NULL;
}

const struct xsasl_ops xsasl_dovecot_ops = {
    .type = "dovecot",
    .open = dc_open,
    .close = dc_close,
    .sess_init = dc_sess_init,
    .mechs = dc_mechs,
    .start = dc_start,
    .step = dc_step,
    .sess_done = dc_sess_done,
};
