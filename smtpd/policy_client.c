/*
 * policy_client.c - check_policy_service: the client of Postfix's SMTPD
 * access policy delegation protocol
 *
 * A request is name=value lines ended by an empty line; the reply is
 * "action=..." (other attributes are ignored) ended by an empty line.
 * Each service (one per distinct check_policy_service argument) keeps a
 * small pool of connections, inet: or unix:, that are reused across
 * requests and sessions; one request is in flight per connection and
 * the others wait in the service's queue. A connection is closed after
 * max_idle without use, when max_ttl has passed since it was opened (at
 * the end of a request), after request_limit requests (0: no limit), and
 * whenever the server misbehaves.
 *
 * Every step is non-blocking and driven by the event loop: connect,
 * write, read, each request bounded by timeout. A failed attempt (refused,
 * reset, timeout, a malformed or too long reply, no action) is retried
 * after retry_delay on a fresh connection, up to try_limit attempts; then
 * the request is answered with default_action (Postfix: "451 4.3.5 Server
 * configuration problem"). Answers always come from the event loop, never
 * from inside pol_request, so that the caller can suspend first.
 *
 * inet: host names are resolved when the service is made (smtpd starts,
 * before the event loop runs), never during a session; a relative unix:
 * name is relative to queue_directory, read at each connect (inside a
 * chroot it is "/").
 *
 * DIAGNOSTICS: "warning: problem talking to server ENDPOINT: why" for
 * each failed attempt, as Postfix logs it; "warning: ENDPOINT: ..." when
 * a host cannot be resolved.
 *
 * SECURITY: the reply is bounded (POL_REPLY_MAX) and parsed without
 * copies beyond that bound; request values never carry a newline, so a
 * client cannot inject attributes into the request.
 */
#include "util/sys.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mail/config.h"
#include "mail/params.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/event.h"
#include "util/log.h"

#include "policy_client.h"

#define POL_POOL_MAX 4              /* connections per service */
#define POL_READ_CHUNK 1024
#define MS_PER_S 1000u
#define POL_TIME_MAX_S 86400LL      /* a day: longer settings are mistakes */
#define POL_COUNT_MAX 1000000LL
#define ASCII_DEL 0x7f

/* ---------- the pure parts: specification, request, reply ---------- */

/* set_str - replace *dst with a copy of src */
static void set_str(char **dst, const char *src)
{
    free(*dst);
    *dst = xstrdup(src);
}

/* parse_endpoint - "inet:host:port" or "unix:path" into out; false + *err */
static bool parse_endpoint(const char *ep, struct pol_spec *out, char **err)
{
    if (strncasecmp(ep, "unix:", 5) == 0) {
        if (ep[5] == 0) {
            *err = xasprintf("\"%s\": missing socket name", ep);
            return false;
        }
        out->is_unix = true;
        out->path = xstrdup(ep + 5);
    } else if (strncasecmp(ep, "inet:", 5) == 0) {
        const char *hp = ep + 5, *colon = strrchr(hp, ':');
        size_t hlen;

        if (colon == NULL || colon == hp || colon[1] == 0
            || strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
            *err = xasprintf("\"%s\": expected inet:host:port", ep);
            return false;
        }
        hlen = (size_t)(colon - hp);
        if (hp[0] == '[' && hlen >= 2 && hp[hlen - 1] == ']') {
            hp++;
            hlen -= 2;
        }
        if (hlen == 0 || memchr(hp, '[', hlen) || memchr(hp, ']', hlen)) {
            *err = xasprintf("\"%s\": bad host", ep);
            return false;
        }
        out->host = xstrndup(hp, hlen);
        out->port = xstrdup(colon + 1);
    } else {
        *err = xasprintf("\"%s\": expected inet:host:port or unix:pathname", ep);
        return false;
    }
    out->endpoint = xstrdup(ep);
    return true;
}

/* parse_ms - a time attribute ("10s", "1m", "100") into milliseconds */
static bool parse_ms(const char *name, const char *value, bool zero_ok, unsigned *ms, char **err)
{
    long long s;

    if (!param_parse_time(value, 's', &s) || s < (zero_ok ? 0 : 1) || s > POL_TIME_MAX_S) {
        *err = xasprintf("%s: bad time value \"%s\"", name, value);
        return false;
    }
    *ms = (unsigned)(s * MS_PER_S);
    return true;
}

/* parse_count - a count attribute */
static bool parse_count(const char *name, const char *value, long long min, unsigned *out,
                        char **err)
{
    long long v;

    if (!param_parse_int(value, &v) || v < min || v > POL_COUNT_MAX) {
        *err = xasprintf("%s: bad number \"%s\"", name, value);
        return false;
    }
    *out = (unsigned)v;
    return true;
}

/* trim - white space off both ends of [s, s+n) as a new string */
static char *trim(const char *s, size_t n)
{
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return xstrndup(s, n);
}

/* spec_attr - one "name=value" of the braced form */
static bool spec_attr(const char *word, struct pol_spec *out, char **err)
{
    const char *eq = strchr(word, '=');
    char *name, *value;
    bool ok = true;

    if (eq == NULL) {
        *err = xasprintf("\"%s\": expected name=value", word);
        return false;
    }
    name = trim(word, (size_t)(eq - word));
    value = trim(eq + 1, strlen(eq + 1));
    if (strcmp(name, "timeout") == 0)
        ok = parse_ms(name, value, false, &out->timeout_ms, err);
    else if (strcmp(name, "max_idle") == 0)
        ok = parse_ms(name, value, false, &out->max_idle_ms, err);
    else if (strcmp(name, "max_ttl") == 0)
        ok = parse_ms(name, value, false, &out->max_ttl_ms, err);
    else if (strcmp(name, "retry_delay") == 0)
        ok = parse_ms(name, value, false, &out->retry_delay_ms, err);
    else if (strcmp(name, "try_limit") == 0)
        ok = parse_count(name, value, 1, &out->try_limit, err);
    else if (strcmp(name, "request_limit") == 0)
        ok = parse_count(name, value, 0, &out->request_limit, err);
    else if (strcmp(name, "default_action") == 0) {
        if (*value == 0) {
            *err = xasprintf("default_action: empty");
            ok = false;
        } else {
            set_str(&out->default_action, value);
        }
    } else if (strcmp(name, "policy_context") == 0)
        set_str(&out->policy_context, value);
    else {
        *err = xasprintf("unknown attribute \"%s\" (timeout, default_action, max_idle, max_ttl, "
                         "request_limit, retry_delay, try_limit, policy_context)", name);
        ok = false;
    }
    free(name);
    free(value);
    return ok;
}

/* pol_spec_parse - endpoint and optional attributes; false + *err */
bool pol_spec_parse(const char *arg, const struct pol_spec *defaults, struct pol_spec *out,
                    char **err)
{
    size_t n;
    char **words = cfg_split_list(arg, &n);
    bool ok = true;

    *err = NULL;
    memset(out, 0, sizeof(*out));
    out->timeout_ms = defaults->timeout_ms;
    out->max_idle_ms = defaults->max_idle_ms;
    out->max_ttl_ms = defaults->max_ttl_ms;
    out->retry_delay_ms = defaults->retry_delay_ms;
    out->try_limit = defaults->try_limit;
    out->request_limit = defaults->request_limit;
    out->default_action = xstrdup(defaults->default_action ? defaults->default_action : "");
    out->policy_context = xstrdup(defaults->policy_context ? defaults->policy_context : "");
    if (n == 0) {
        *err = xasprintf("missing inet:host:port or unix:pathname");
        ok = false;
    } else {
        ok = parse_endpoint(words[0], out, err);
    }
    for (size_t i = 1; ok && i < n; i++)
        ok = spec_attr(words[i], out, err);
    cfg_list_free(words, n);
    if (!ok)
        pol_spec_free(out);
    return ok;
}

/* pol_spec_free - release what pol_spec_parse made */
void pol_spec_free(struct pol_spec *spec)
{
    free(spec->endpoint);
    free(spec->host);
    free(spec->port);
    free(spec->path);
    free(spec->default_action);
    free(spec->policy_context);
    memset(spec, 0, sizeof(*spec));
}

/* pol_spec_defaults - main.cf's smtpd_policy_service_* settings */
void pol_spec_defaults(struct cfg *cfg, struct pol_spec *out)
{
    memset(out, 0, sizeof(*out));
    out->timeout_ms = (unsigned)cfg_time(cfg, "smtpd_policy_service_timeout") * MS_PER_S;
    out->max_idle_ms = (unsigned)cfg_time(cfg, "smtpd_policy_service_max_idle") * MS_PER_S;
    out->max_ttl_ms = (unsigned)cfg_time(cfg, "smtpd_policy_service_max_ttl") * MS_PER_S;
    out->retry_delay_ms = (unsigned)cfg_time(cfg, "smtpd_policy_service_retry_delay") * MS_PER_S;
    out->try_limit = (unsigned)cfg_int(cfg, "smtpd_policy_service_try_limit");
    out->request_limit = (unsigned)cfg_int(cfg, "smtpd_policy_service_request_limit");
    out->default_action = xstrdup(cfg_str(cfg, "smtpd_policy_service_default_action"));
    out->policy_context = xstrdup(cfg_str(cfg, "smtpd_policy_service_policy_context"));
}

/* pol_request_encode - name=value lines, sanitised, then an empty line */
void pol_request_encode(struct buf *out, const struct pol_attr *attrs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *v = attrs[i].value ? attrs[i].value : "";
        size_t len = strnlen(v, POL_VALUE_MAX);
        size_t start = out->len;

        (void)buf_printf(out, "%s=", attrs[i].name);
        (void)buf_append(out, v, len);
        for (size_t k = start; k < out->len; k++)
            if (out->data[k] == '\n' || out->data[k] == '\r')
                out->data[k] = '?';
        (void)buf_putc(out, '\n');
    }
    (void)buf_putc(out, '\n');
}

/* pol_reply_parse - an action once the empty line is there */
enum pol_reply_status pol_reply_parse(const char *data, size_t len, struct buf *action,
                                      size_t *used, const char **why)
{
    size_t pos = 0;
    bool have = false;

    *used = 0;
    *why = "";
    buf_reset(action);
    for (;;) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t end, eq;

        if (nl == NULL) {
            if (len > POL_REPLY_MAX) {
                *why = "reply too long";
                return POL_REPLY_ERROR;
            }
            return POL_REPLY_MORE;
        }
        end = (size_t)(nl - data);
        if (end + 1 > POL_REPLY_MAX) {
            *why = "reply too long";
            return POL_REPLY_ERROR;
        }
        {
            size_t llen = end - pos;
            const char *line = data + pos;

            if (llen > 0 && line[llen - 1] == '\r')
                llen--;
            if (llen == 0) {
                if (!have) {
                    *why = "reply without action";
                    return POL_REPLY_ERROR;
                }
                *used = end + 1;
                return POL_REPLY_DONE;
            }
            if (memchr(line, 0, llen) != NULL) {
                *why = "NUL in reply";
                return POL_REPLY_ERROR;
            }
            {
                const char *e = memchr(line, '=', llen);

                if (e == NULL || e == line) {
                    *why = "malformed reply attribute";
                    return POL_REPLY_ERROR;
                }
                eq = (size_t)(e - line);
            }
            if (eq == strlen("action") && memcmp(line, "action", eq) == 0) {
                if (have) {
                    *why = "more than one action in reply";
                    return POL_REPLY_ERROR;
                }
                if (llen == eq + 1) {
                    *why = "empty action in reply";
                    return POL_REPLY_ERROR;
                }
                for (size_t k = eq + 1; k < llen; k++) {
                    unsigned char c = (unsigned char)line[k];

                    if ((c < ' ' && c != '\t') || c == ASCII_DEL) {
                        /* it would end up in an SMTP reply */
                        *why = "control character in action";
                        return POL_REPLY_ERROR;
                    }
                }
                (void)buf_append(action, line + eq + 1, llen - eq - 1);
                have = true;
            }
        }
        pos = end + 1;
    }
}

/* ---------- the runtime: services, connections, requests ---------- */

enum conn_state { PC_CONNECTING, PC_SENDING, PC_READING, PC_IDLE };

struct pol_req;

/* pol_conn - one connection to a policy server */
struct pol_conn {
    struct pol_service *svc;
    int fd;
    enum conn_state state;
    uint64_t born;
    unsigned nreq;                  /* requests answered on it */
    struct buf in;
    size_t out_pos;
    struct pol_req *req;            /* in flight (PC_CONNECTING..PC_READING) */
    struct event_timer timer;       /* request timeout, or max_idle while idle */
};

/* pol_req - one request until its callback has run */
struct pol_req {
    struct pol_service *svc;
    struct buf text;
    pol_done_fn *fn;
    void *ctx;
    unsigned tries;                 /* attempts that failed */
    struct buf action;              /* the answer, once known */
    bool answered;                  /* timer: deliver; else: retry */
    struct event_timer timer;
    struct pol_req *next;           /* the service's queue */
};

/* pol_service - one endpoint with its settings, pool and queue */
struct pol_service {
    char *key;                      /* the argument text */
    struct pol_spec spec;
    struct sockaddr_storage sa;
    socklen_t salen;
    char *resolve_err;              /* inet: the name did not resolve */
    struct pol_conn *conns[POL_POOL_MAX];
    size_t nconns;
    struct pol_req *qhead, *qtail;
    unsigned long opened;
    struct pol_service *next;
};

static struct pol_service *services;
static struct cfg *client_cfg;

static void dispatch(struct pol_service *svc);
static void conn_event(int fd, unsigned events, void *ctx);

/* pol_client_init - remember cfg for queue_directory */
void pol_client_init(struct cfg *cfg)
{
    client_cfg = cfg;
}

/* resolve - an inet: endpoint's address, once (at startup) */
static void resolve(struct pol_service *svc)
{
    struct addrinfo hints, *res = NULL;
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(svc->spec.host, svc->spec.port, &hints, &res);
    if (rc != 0 || res == NULL || res->ai_addrlen > sizeof(svc->sa)) {
        svc->resolve_err = xasprintf("cannot resolve %s: %s", svc->spec.host,
                                     rc ? gai_strerror(rc) : "no address");
        msg_warn("%s: %s", svc->spec.endpoint, svc->resolve_err);
    } else {
        memcpy(&svc->sa, res->ai_addr, res->ai_addrlen);
        svc->salen = (socklen_t)res->ai_addrlen;
    }
    if (res != NULL)
        freeaddrinfo(res);
}

/* pol_service_get - the service for an argument text (made once) */
struct pol_service *pol_service_get(const char *arg, struct pol_spec *spec)
{
    struct pol_service *svc;

    for (svc = services; svc != NULL; svc = svc->next) {
        if (strcmp(svc->key, arg) == 0) {
            pol_spec_free(spec);
            return svc;
        }
    }
    svc = xcalloc(1, sizeof(*svc));
    svc->key = xstrdup(arg);
    svc->spec = *spec;
    memset(spec, 0, sizeof(*spec));
    if (!svc->spec.is_unix)
        resolve(svc);
    svc->next = services;
    services = svc;
    return svc;
}

/* pol_service_spec - a service's settings */
const struct pol_spec *pol_service_spec(const struct pol_service *svc)
{
    return &svc->spec;
}

/* pol_client_stats - connections opened so far and open now */
void pol_client_stats(const struct pol_service *svc, unsigned long *opened, size_t *open_now)
{
    *opened = svc->opened;
    *open_now = svc->nconns;
}

/* req_free - release a request */
static void req_free(struct pol_req *r)
{
    event_timer_disarm(&r->timer);
    buf_free(&r->text);
    buf_free(&r->action);
    free(r);
}

/* req_timer - deliver the answer, or retry after retry_delay */
static void req_timer(void *ctx)
{
    struct pol_req *r = ctx;
    struct pol_service *svc = r->svc;

    if (r->answered) {
        r->fn(r->ctx, buf_str(&r->action));
        req_free(r);
        return;
    }
    /* a retry goes first: it has waited longest */
    r->next = svc->qhead;
    svc->qhead = r;
    if (svc->qtail == NULL)
        svc->qtail = r;
    dispatch(svc);
}

/* req_answer - the request is answered (from the event loop, below a timer) */
static void req_answer_later(struct pol_req *r, const char *action)
{
    r->answered = true;
    buf_reset(&r->action);
    (void)buf_puts(&r->action, action);
    event_timer_arm(&r->timer, 0);
}

/* req_failed - an attempt failed: retry, or the default action */
static void req_failed(struct pol_req *r)
{
    r->tries++;
    if (r->tries < r->svc->spec.try_limit) {
        r->answered = false;
        event_timer_arm(&r->timer, r->svc->spec.retry_delay_ms);
        return;
    }
    req_answer_later(r, r->svc->spec.default_action);
}

/* conn_close - close a connection and drop it from its pool */
static void conn_close(struct pol_conn *c)
{
    struct pol_service *svc = c->svc;

    for (size_t i = 0; i < svc->nconns; i++) {
        if (svc->conns[i] == c) {
            svc->conns[i] = svc->conns[--svc->nconns];
            break;
        }
    }
    event_timer_disarm(&c->timer);
    if (c->fd >= 0) {
        event_remove(c->fd);
        close(c->fd);
    }
    buf_free(&c->in);
    free(c);
}

/* conn_fail - the server misbehaved or went away: log, close, retry the request */
static void conn_fail(struct pol_conn *c, const char *why)
{
    struct pol_req *r = c->req;
    struct pol_service *svc = c->svc;

    msg_warn("problem talking to server %s: %s", svc->spec.endpoint, why);
    c->req = NULL;
    conn_close(c);
    if (r != NULL)
        req_failed(r);
    dispatch(svc);
}

/* conn_timer - a request took too long, or an idle connection reached max_idle */
static void conn_timer(void *ctx)
{
    struct pol_conn *c = ctx;

    if (c->state == PC_IDLE) {
        struct pol_service *svc = c->svc;

        conn_close(c);
        dispatch(svc);
        return;
    }
    conn_fail(c, c->state == PC_CONNECTING ? "Connection timed out" : "timeout");
}

/* conn_start - begin sending the current request (the connection is up) */
static void conn_send(struct pol_conn *c)
{
    c->state = PC_SENDING;
    c->out_pos = 0;
    buf_reset(&c->in);
    event_modify(c->fd, EVENT_WRITE);
}

/* conn_open - a new connection, connecting; NULL + *why when that fails at once */
static struct pol_conn *conn_open(struct pol_service *svc, const char **why)
{
    static char whybuf[256];
    struct pol_conn *c;
    int fd, rc;

    if (svc->spec.is_unix) {
        struct sockaddr_un sun;
        struct buf path = BUF_INIT;
        const char *qdir = client_cfg ? cfg_str(client_cfg, "queue_directory") : ".";

        if (svc->spec.path[0] == '/')
            (void)buf_puts(&path, svc->spec.path);
        else
            (void)buf_printf(&path, "%s/%s", qdir, svc->spec.path);
        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        if (path.len >= sizeof(sun.sun_path)) {
            buf_free(&path);
            *why = "socket path too long";
            return NULL;
        }
        memcpy(sun.sun_path, buf_str(&path), path.len + 1);
        buf_free(&path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(whybuf, sizeof(whybuf), "socket: %s", strerror(errno));
            *why = whybuf;
            return NULL;
        }
        rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
    } else {
        if (svc->resolve_err != NULL) {
            *why = svc->resolve_err;
            return NULL;
        }
        fd = socket(svc->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(whybuf, sizeof(whybuf), "socket: %s", strerror(errno));
            *why = whybuf;
            return NULL;
        }
        rc = connect(fd, (struct sockaddr *)&svc->sa, svc->salen);
    }
    if (rc < 0 && errno != EINPROGRESS && errno != EAGAIN) {
        snprintf(whybuf, sizeof(whybuf), "%s", strerror(errno));
        *why = whybuf;
        close(fd);
        return NULL;
    }
    c = xcalloc(1, sizeof(*c));
    c->svc = svc;
    c->fd = fd;
    c->born = event_now();
    c->state = PC_CONNECTING;
    event_timer_setup(&c->timer, conn_timer, c);
    event_add(fd, EVENT_WRITE, conn_event, c, false);
    svc->conns[svc->nconns++] = c;
    svc->opened++;
    return c;
}

/* conn_assign - start request r on connection c */
static void conn_assign(struct pol_conn *c, struct pol_req *r)
{
    c->req = r;
    event_timer_arm(&c->timer, c->svc->spec.timeout_ms);
    if (c->state == PC_IDLE)
        conn_send(c);
    /* PC_CONNECTING: sent once the connection is up */
}

/* dispatch - start waiting requests on idle or new connections */
static void dispatch(struct pol_service *svc)
{
    while (svc->qhead != NULL) {
        struct pol_req *r = svc->qhead;
        struct pol_conn *c = NULL;

        for (size_t i = 0; i < svc->nconns; i++) {
            if (svc->conns[i]->state == PC_IDLE) {
                c = svc->conns[i];
                break;
            }
        }
        if (c == NULL && svc->nconns >= POL_POOL_MAX)
            return;             /* all busy: the next answer dispatches again */
        svc->qhead = r->next;
        if (svc->qhead == NULL)
            svc->qtail = NULL;
        r->next = NULL;
        if (c == NULL) {
            const char *why = NULL;

            c = conn_open(svc, &why);
            if (c == NULL) {
                msg_warn("problem talking to server %s: %s", svc->spec.endpoint, why);
                req_failed(r);
                continue;
            }
        }
        conn_assign(c, r);
    }
}

/* conn_done - the reply came: answer the request, keep or close the connection */
static void conn_done(struct pol_conn *c, const char *action, bool extra)
{
    struct pol_req *r = c->req;
    struct pol_service *svc = c->svc;
    const struct pol_spec *sp = &svc->spec;

    c->req = NULL;
    c->nreq++;
    if (extra || (sp->request_limit > 0 && c->nreq >= sp->request_limit)
        || event_now() - c->born >= sp->max_ttl_ms) {
        conn_close(c);
    } else {
        c->state = PC_IDLE;
        buf_reset(&c->in);
        event_modify(c->fd, EVENT_READ);     /* notices the server closing it */
        event_timer_arm(&c->timer, sp->max_idle_ms);
    }
    req_answer_later(r, action);
    dispatch(svc);
}

/* conn_write - send more of the request */
static void conn_write(struct pol_conn *c)
{
    const struct buf *t = &c->req->text;

    while (c->out_pos < t->len) {
        ssize_t n = send(c->fd, t->data + c->out_pos, t->len - c->out_pos, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return;
            conn_fail(c, strerror(errno));
            return;
        }
        c->out_pos += (size_t)n;
    }
    c->state = PC_READING;
    event_modify(c->fd, EVENT_READ);
}

/* conn_read - read what the server sent; parse once an empty line may be there */
static void conn_read(struct pol_conn *c)
{
    char chunk[POL_READ_CHUNK];
    struct buf action = BUF_INIT;
    const char *why;
    size_t used;
    ssize_t n = recv(c->fd, chunk, sizeof(chunk), 0);

    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            conn_fail(c, strerror(errno));
        return;
    }
    if (n == 0) {
        conn_fail(c, "lost connection");
        return;
    }
    if (buf_append(&c->in, chunk, (size_t)n) < 0) {
        conn_fail(c, "reply too long");
        return;
    }
    switch (pol_reply_parse(c->in.data, c->in.len, &action, &used, &why)) {
    case POL_REPLY_MORE:
        break;
    case POL_REPLY_ERROR:
        conn_fail(c, why);
        break;
    case POL_REPLY_DONE:
        conn_done(c, buf_str(&action), used < c->in.len);
        break;
    }
    buf_free(&action);
}

/* conn_event - the socket is ready */
static void conn_event(int fd, unsigned events, void *ctx)
{
    struct pol_conn *c = ctx;

    (void)fd;
    switch (c->state) {
    case PC_CONNECTING: {
        int err = 0;
        socklen_t len = sizeof(err);

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err != 0) {
            conn_fail(c, strerror(err));
            return;
        }
        if (c->req == NULL) {
            /* cannot happen: a connection is opened for a request */
            conn_fail(c, "connected without a request");
            return;
        }
        conn_send(c);
        conn_write(c);
        return;
    }
    case PC_SENDING:
        conn_write(c);
        return;
    case PC_READING:
        conn_read(c);
        return;
    case PC_IDLE: {
        /* the server closed an idle connection (or talks out of turn): drop it */
        struct pol_service *svc = c->svc;

        (void)events;
        conn_close(c);
        dispatch(svc);
        return;
    }
    }
}

/* pol_request - queue a request; the answer comes through fn from the event loop */
void pol_request(struct pol_service *svc, const struct buf *request, pol_done_fn *fn, void *ctx)
{
    struct pol_req *r = xcalloc(1, sizeof(*r));

    r->svc = svc;
    r->fn = fn;
    r->ctx = ctx;
    (void)buf_append(&r->text, request->data ? request->data : "", request->len);
    event_timer_setup(&r->timer, req_timer, r);
    if (svc->qtail != NULL)
        svc->qtail->next = r;
    else
        svc->qhead = r;
    svc->qtail = r;
    dispatch(svc);
}
