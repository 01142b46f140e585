/*
 * smtp.c - posta's SMTP/LMTP delivery agent: settings, qmgr requests, results
 *
 * USAGE: started by master (master.cf: "smtp unix - - n - - smtp",
 * "relay unix - - n - - smtp", "lmtp unix - - n - - lmtp"); the name it
 * runs under (argv[0]: smtp or lmtp) decides the protocol and whether
 * settings are read as smtp_* or lmtp_*. One event-driven process serves
 * every qmgr connection at once. Each connection carries deliver/1
 * requests (mail/deliver.h), one at a time: the request is read without
 * blocking (bounded, within ipc_timeout), decoded strictly, its queue ID
 * and recipients re-checked against $queue_directory/active/QID, then
 * dest.c delivers it; when every recipient has a result the reply goes
 * back and the next request may follow on the same connection.
 *
 * Each recipient's result is logged in Postfix's form:
 *   QID: to=<rcpt>, orig_to=<orig>, relay=host[addr]:port, delay=D,
 *        delays=a/b/c/d, dsn=X.Y.Z, status=sent (250 2.0.0 Ok: queued as X)
 * (orig_to only when it differs; relay=none when no server was reached).
 *
 * Signals: SIGTERM closes everything at once (qmgr defers the unanswered
 * requests with "delivery agent failed"); SIGUSR1 (drain) finishes the
 * deliveries in progress, answers them, then exits.
 *
 * DIAGNOSTICS: a malformed request closes its connection with a warning;
 * bad settings are fatal (master restarts the daemon). See man/smtp.8.
 * SECURITY: runs as mail_owner; reads queue files, never writes them.
 * Requests come only from qmgr (private/ socket) and are checked anyway.
 */
#include "util/sys.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "mail/attr.h"
#include "mail/config.h"
#include "mail/deliver.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/qid.h"
#include "mail/server.h"
#include "mail/spool.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/dns.h"
#include "util/event.h"
#include "util/log.h"

#include "dest.h"
#include "smtp.h"

#define MS_PER_SEC 1000ULL
#define US_PER_SEC 1000000LL
#define REQUEST_MAX ((size_t)64 << 20)   /* one deliver/1 request, escaped */
#define READ_CHUNK 65536
#define DSN_LOCAL_TEMP "4.3.0"

struct smtp_conf smtp_conf;

struct job;

/* One qmgr connection. */
struct conn {
    int fd;
    struct buf in, out;
    size_t outpos;
    struct event_timer timer;     /* ipc_timeout while waiting or writing */
    struct job *job;              /* the request in progress, or NULL */
    struct conn *prev, *next;
};

/* One request being delivered. */
struct job {
    struct conn *c;
    struct deliver_request req;
    struct qfile *q;
    struct dest_rcpt *rc;
    struct dest *d;
};

static struct conn *conns;
static size_t nconns;
static int active_fd = -1;
static unsigned ipc_timeout_ms;

/* now_us - wall clock microseconds */
static long long now_us(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * US_PER_SEC + tv.tv_usec;
}

/* pname - the setting for suffix: PREFIX_suffix when posta has it, else smtp_suffix */
static char *pname(const char *suffix)
{
    static const struct {
        const char *smtp, *lmtp;
    } renamed[] = {{"helo_name", "lhlo_name"}, {"helo_timeout", "lhlo_timeout"}};
    char *name;

    if (smtp_conf.lmtp)
        for (size_t i = 0; i < sizeof(renamed) / sizeof(renamed[0]); i++)
            if (strcmp(suffix, renamed[i].smtp) == 0)
                suffix = renamed[i].lmtp;
    name = xasprintf("%s_%s", smtp_conf.prefix, suffix);
    if (param_find(name) == NULL) {
        free(name);
        name = xasprintf("smtp_%s", suffix);
    }
    return name;
}

/* secs_to_ms - seconds as milliseconds, capped at UINT_MAX */
static unsigned secs_to_ms(long long secs)
{
    if (secs < 0)
        secs = 0;
    if ((unsigned long long)secs > UINT_MAX / MS_PER_SEC)
        return UINT_MAX;
    return (unsigned)((unsigned long long)secs * MS_PER_SEC);
}

/* conf_ms - a time setting in milliseconds (0 = none) */
static unsigned conf_ms(struct cfg *cfg, const char *suffix)
{
    char *name = pname(suffix);
    unsigned ms = secs_to_ms(cfg_time(cfg, name));

    free(name);
    return ms;
}

/* conf_uint - a non-negative integer setting */
static unsigned conf_uint(struct cfg *cfg, const char *suffix)
{
    char *name = pname(suffix);
    long long v = cfg_int(cfg, name);

    if (v < 0 || v > (long long)UINT_MAX)
        msg_fatal("%s: value %lld out of range", name, v);
    free(name);
    return (unsigned)v;
}

/* conf_bool - a yes/no setting */
static bool conf_bool(struct cfg *cfg, const char *suffix)
{
    char *name = pname(suffix);
    bool v = cfg_bool(cfg, name);

    free(name);
    return v;
}

/* conf_str - a text setting, copied; NULL when empty and empty_null */
static char *conf_str(struct cfg *cfg, const char *suffix, bool empty_null)
{
    char *name = pname(suffix);
    const char *v = cfg_str(cfg, name);

    free(name);
    if (empty_null && (v == NULL || *v == 0))
        return NULL;
    return xstrdup(v ? v : "");
}

/* conf_family - inet_protocols: AF_INET, AF_INET6 or AF_UNSPEC (both) */
static int conf_family(struct cfg *cfg)
{
    size_t n;
    char **list = cfg_list(cfg, "inet_protocols", &n);
    bool v4 = false, v6 = false;

    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(list[i], "all") == 0)
            v4 = v6 = true;
        else if (strcasecmp(list[i], "ipv4") == 0)
            v4 = true;
        else if (strcasecmp(list[i], "ipv6") == 0)
            v6 = true;
        else
            msg_fatal("inet_protocols: unknown protocol \"%s\" (all, ipv4, ipv6)", list[i]);
    }
    cfg_list_free(list, n);
    if (!v4 && !v6)
        msg_fatal("inet_protocols: no protocol enabled");
    return v4 && v6 ? AF_UNSPEC : v4 ? AF_INET : AF_INET6;
}

/* conf_prefer - smtp_address_preference */
static int conf_prefer(struct cfg *cfg)
{
    char *name = pname("address_preference");
    const char *v = cfg_str(cfg, name);
    int fam = AF_UNSPEC;

    if (strcasecmp(v, "ipv4") == 0)
        fam = AF_INET;
    else if (strcasecmp(v, "ipv6") == 0)
        fam = AF_INET6;
    else if (strcasecmp(v, "any") != 0)
        msg_fatal("%s: bad value \"%s\" (ipv4, ipv6 or any)", name, v);
    free(name);
    return fam;
}

/* conf_hosts_file - smtp_host_lookup names "native" (/etc/hosts first) */
static bool conf_hosts_file(struct cfg *cfg)
{
    char *name = pname("host_lookup");
    size_t n;
    char **list = cfg_list(cfg, name, &n);
    bool native = false, dns = false;

    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(list[i], "native") == 0)
            native = true;
        else if (strcasecmp(list[i], "dns") == 0)
            dns = true;
        else
            msg_fatal("%s: unknown method \"%s\" (dns, native)", name, list[i]);
    }
    if (!native && !dns)
        msg_fatal("%s: no lookup method", name);
    cfg_list_free(list, n);
    free(name);
    return native;
}

/* read_conf - every setting into smtp_conf */
static void read_conf(struct cfg *cfg)
{
    struct smtp_conf *c = &smtp_conf;
    char *host;

    c->helo_name = conf_str(cfg, "helo_name", false);
    c->connect_ms = conf_ms(cfg, "connect_timeout");
    c->helo_ms = conf_ms(cfg, "helo_timeout");
    c->mail_ms = conf_ms(cfg, "mail_timeout");
    c->rcpt_ms = conf_ms(cfg, "rcpt_timeout");
    c->data_init_ms = conf_ms(cfg, "data_init_timeout");
    c->data_xfer_ms = conf_ms(cfg, "data_xfer_timeout");
    c->data_done_ms = conf_ms(cfg, "data_done_timeout");
    c->quit_ms = conf_ms(cfg, "quit_timeout");
    c->never_send_ehlo = conf_bool(cfg, "never_send_ehlo");
    c->line_limit = conf_uint(cfg, "line_length_limit");
    c->skip_5xx_greeting = conf_bool(cfg, "skip_5xx_greeting");
    c->bind_v4 = conf_str(cfg, "bind_address", true);
    c->bind_v6 = conf_str(cfg, "bind_address6", true);
    c->family = conf_family(cfg);
    c->prefer = conf_prefer(cfg);
    c->hosts_file = conf_hosts_file(cfg);
    c->mx_address_limit = conf_uint(cfg, "mx_address_limit");
    c->mx_session_limit = conf_uint(cfg, "mx_session_limit");
    c->cache_time_ms = conf_ms(cfg, "connection_cache_time_limit");
    c->reuse_time_ms = conf_ms(cfg, "connection_reuse_time_limit");
    c->reuse_count = conf_uint(cfg, "connection_reuse_count_limit");
    c->cache_on_demand = conf_bool(cfg, "connection_cache_on_demand");
    host = xstrdup(cfg_str(cfg, "myhostname"));
    for (char *p = host; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    c->self_names = xcalloc(1, sizeof(char *));
    c->self_names[0] = host;
    c->nself = 1;
    c->queue_dir = xstrdup(cfg_str(cfg, "queue_directory"));
    c->starttls_ms = conf_ms(cfg, "starttls_timeout");
    ipc_timeout_ms = secs_to_ms(cfg_time(cfg, "ipc_timeout"));
}

/*
 * smtp_pre_jail - as started: the resolver (reads /etc/resolv.conf), the
 * active queue directory and this host's addresses, before any chroot
 */
static void smtp_pre_jail(struct server_ctx *ctx)
{
    struct cfg *cfg = ctx->cfg;
    const char *err = NULL;

    read_conf(cfg);
    if (!dns_set_servers(cfg_str(cfg, "dns_servers"), &err))
        msg_fatal("dns_servers: %s", err ? err : "malformed server list");
    dns_init();
    active_fd = spool_dir_fd(cfg, "active");
    dest_init(cfg);
    smtp_tls_init(cfg);
    smtp_sasl_init(cfg);
}

/* log_rcpt - one result line in Postfix's format */
static void log_rcpt(const struct deliver_request *req, const struct dest_rcpt *r)
{
    const struct deliver_rcpt *rc = &req->rcpts[r->r.idx];
    bool show_orig = rc->orig && *rc->orig && strcasecmp(rc->orig, rc->address) != 0;
    struct buf delays = BUF_INIT;

    deliver_format_delays(req, r->r.done && r->relay.len ? r->conn_us : 0, now_us(), &delays);
    msg_info("%s: to=<%s>%s%s%s, relay=%s, %s, dsn=%s, status=%s (%s)", req->queue_id,
             rc->address, show_orig ? ", orig_to=<" : "", show_orig ? rc->orig : "",
             show_orig ? ">" : "", r->relay.len ? buf_str(&r->relay) : "none", buf_str(&delays),
             r->r.dsn, deliver_status_name(r->r.st), buf_str(&r->r.text));
    buf_free(&delays);
}

/* job_rcpt - dest.c: a recipient's result is final */
static void job_rcpt(void *ctx, struct dest_rcpt *r)
{
    struct job *j = ctx;

    log_rcpt(&j->req, r);
}

/* job_free - release a request and its results */
static void job_free(struct job *j)
{
    for (size_t i = 0; i < j->req.nrcpts; i++) {
        smtp_rcpt_free(&j->rc[i].r);
        buf_free(&j->rc[i].relay);
        buf_free(&j->rc[i].remote_mta);
    }
    free(j->rc);
    if (j->q)
        qfile_close(j->q);
    deliver_request_free(&j->req);
    free(j);
}

static void conn_close(struct conn *c);
static void conn_try_request(struct conn *c);

/* conn_write - send more of the reply */
static void conn_write(struct conn *c)
{
    while (c->outpos < c->out.len) {
        ssize_t n = send(c->fd, c->out.data + c->outpos, c->out.len - c->outpos, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n < 0) {
            msg_warn("write reply to qmgr: %m");
            conn_close(c);
            return;
        }
        c->outpos += (size_t)n;
    }
    buf_reset(&c->out);
    c->outpos = 0;
    event_modify(c->fd, EVENT_READ);
    if (server_draining()) {
        conn_close(c);
        return;
    }
    event_timer_arm(&c->timer, ipc_timeout_ms);
    conn_try_request(c);
}

/* job_done - dest.c: every recipient has a result: reply to qmgr */
static void job_done(void *ctx)
{
    struct job *j = ctx;
    struct conn *c = j->c;
    size_t n = j->req.nrcpts;
    struct deliver_result *res = xcalloc(n, sizeof(*res));

    j->d = NULL;
    for (size_t i = 0; i < n; i++) {
        struct dest_rcpt *r = &j->rc[i];

        res[i].status = r->r.st;
        snprintf(res[i].dsn, sizeof(res[i].dsn), "%s", r->r.dsn);
        res[i].relay = (char *)(r->relay.len ? buf_str(&r->relay) : "none");
        res[i].text = (char *)buf_str(&r->r.text);
        res[i].final = (char *)"";
        res[i].relayed = r->r.relayed;
        res[i].remote_mta = (char *)buf_str(&r->remote_mta);
        res[i].diag = (char *)buf_str(&r->r.diag);
    }
    buf_reset(&c->out);
    deliver_reply_encode(res, n, &c->out);
    free(res);
    c->job = NULL;
    job_free(j);
    c->outpos = 0;
    event_modify(c->fd, EVENT_READ | EVENT_WRITE);
    event_timer_arm(&c->timer, ipc_timeout_ms);
    conn_write(c);
}

/* find_rcpt - the queue file recipient a request recipient names, or NULL */
static const struct qrcpt *find_rcpt(const struct qfile *q, const struct deliver_rcpt *rc)
{
    for (size_t i = 0; i < q->nrcpts; i++)
        if (q->rcpts[i].offset == (off_t)rc->offset
            && (strcmp(q->rcpts[i].addr, rc->orig) == 0
                || strcmp(q->rcpts[i].addr, rc->address) == 0))
            return &q->rcpts[i];
    return NULL;
}

/* preset - a result decided here, before any delivery */
static void preset(struct dest_rcpt *r, enum deliver_status st, const char *dsn, const char *text)
{
    r->r.done = true;
    r->r.st = st;
    snprintf(r->r.dsn, sizeof(r->r.dsn), "%s", dsn);
    buf_set(&r->r.text, text);
}

/* job_check - re-check the request against its queue file; false: all preset */
static bool job_check(struct job *j)
{
    const struct deliver_request *req = &j->req;
    char *err = NULL;

    j->q = qfile_open(active_fd, req->queue_id, &err);
    if (j->q == NULL) {
        struct buf text = BUF_INIT;

        msg_warn("%s: %s", req->queue_id, err ? err : "cannot open queue file");
        buf_printf(&text, "cannot open queue file: %s", err ? err : strerror(errno));
        for (size_t i = 0; i < req->nrcpts; i++) {
            preset(&j->rc[i], DELIVER_DEFERRED, DSN_LOCAL_TEMP, buf_str(&text));
            log_rcpt(req, &j->rc[i]);
        }
        buf_free(&text);
        free(err);
        return false;
    }
    if (strcmp(j->q->sender, req->sender) != 0) {
        msg_warn("%s: request sender <%s> differs from queue file sender <%s>", req->queue_id,
                 req->sender, j->q->sender);
        for (size_t i = 0; i < req->nrcpts; i++) {
            preset(&j->rc[i], DELIVER_DEFERRED, DSN_LOCAL_TEMP, "queue file and request disagree");
            log_rcpt(req, &j->rc[i]);
        }
        return false;
    }
    for (size_t i = 0; i < req->nrcpts; i++) {
        const struct qrcpt *qr = find_rcpt(j->q, &req->rcpts[i]);

        if (qr == NULL) {
            msg_warn("%s: recipient <%s> at offset %lld is not in the queue file",
                     req->queue_id, req->rcpts[i].address, req->rcpts[i].offset);
            preset(&j->rc[i], DELIVER_DEFERRED, DSN_LOCAL_TEMP, "recipient not in queue file");
            log_rcpt(req, &j->rc[i]);
        } else if (qr->done) {
            preset(&j->rc[i], DELIVER_SENT, "2.0.0", "already delivered");
        }
    }
    return true;
}

/* job_start - a decoded request: check it and deliver it */
static void job_start(struct conn *c, struct deliver_request *req)
{
    struct job *j = xcalloc(1, sizeof(*j));

    j->c = c;
    j->req = *req;
    j->rc = xcalloc(j->req.nrcpts, sizeof(*j->rc));
    for (size_t i = 0; i < j->req.nrcpts; i++)
        smtp_rcpt_init(&j->rc[i].r, i);
    c->job = j;
    event_timer_disarm(&c->timer);
    job_check(j);
    j->d = dest_start(&j->req, j->q, j->rc, job_rcpt, job_done, j);
}

/* conn_try_request - parse a complete request from the input, if there is one */
static void conn_try_request(struct conn *c)
{
    struct attr_msg msg = {0};
    struct deliver_request req;
    const char *err = NULL;
    size_t used = 0;
    int rc;

    if (c->job != NULL || c->out.len > 0 || c->in.len == 0)
        return;
    rc = attr_parse(c->in.data, c->in.len, &msg, &used, &err);
    if (rc == 0) {
        attr_msg_free(&msg);
        return;
    }
    if (rc < 0) {
        msg_warn("malformed request from qmgr: %s", err ? err : "?");
        attr_msg_free(&msg);
        conn_close(c);
        return;
    }
    buf_consume(&c->in, used);
    if (!deliver_request_decode(&msg, &req, &err)) {
        msg_warn("malformed delivery request: %s", err ? err : "?");
        attr_msg_free(&msg);
        conn_close(c);
        return;
    }
    attr_msg_free(&msg);
    /* Re-checked here too: the queue ID becomes a file name. */
    if (strcmp(req.queue_name, "active") != 0 || !qid_valid(req.queue_id)) {
        msg_warn("delivery request with bad queue name or queue ID");
        deliver_request_free(&req);
        conn_close(c);
        return;
    }
    job_start(c, &req);
}

/* conn_read - bytes from qmgr: a request, or the end of the connection */
static void conn_read(struct conn *c)
{
    ssize_t n;

    if (buf_reserve(&c->in, READ_CHUNK) < 0) {
        msg_warn("request from qmgr too large");
        conn_close(c);
        return;
    }
    n = read(c->fd, c->in.data + c->in.len, READ_CHUNK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        if (n < 0)
            msg_warn("read request from qmgr: %m");
        else if (c->job != NULL)
            msg_warn("%s: qmgr closed the connection before the reply: delivery abandoned",
                     c->job->req.queue_id);
        else if (c->in.len > 0)
            msg_warn("qmgr closed the connection in the middle of a request");
        conn_close(c);
        return;
    }
    c->in.len += (size_t)n;
    c->in.data[c->in.len] = 0;
    if (c->job == NULL)
        event_timer_arm(&c->timer, ipc_timeout_ms);
    conn_try_request(c);
}

/* conn_io - the qmgr socket is ready */
static void conn_io(int fd, unsigned events, void *ctx)
{
    struct conn *c = ctx;

    (void)fd;
    if (c->out.len > 0 && (events & (EVENT_WRITE | EVENT_ERROR)))
        conn_write(c);
    else
        conn_read(c);
}

/* conn_timeout - qmgr said nothing (or took nothing) within ipc_timeout */
static void conn_timeout(void *ctx)
{
    struct conn *c = ctx;

    if (c->in.len > 0 || c->out.len > 0)
        msg_warn("qmgr connection timed out %s",
                 c->out.len > 0 ? "while sending the reply" : "while reading a request");
    conn_close(c);
}

/* conn_close - end a qmgr connection; a delivery in progress is abandoned */
static void conn_close(struct conn *c)
{
    if (c->job) {
        if (c->job->d)
            dest_cancel(c->job->d);
        job_free(c->job);
        c->job = NULL;
    }
    event_timer_disarm(&c->timer);
    event_remove(c->fd);
    close(c->fd);
    buf_free(&c->in);
    buf_free(&c->out);
    if (c->prev)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    nconns--;
    free(c);
    if (server_draining() && nconns == 0)
        dest_cache_flush();
    server_session_ended();
}

/* smtp_accept - a new connection from qmgr */
static void smtp_accept(struct server_ctx *ctx, int fd, const struct sockaddr *peer,
                        socklen_t peerlen, const struct sockaddr *local, socklen_t locallen)
{
    struct conn *c = xcalloc(1, sizeof(*c));

    (void)ctx;
    (void)peer;
    (void)peerlen;
    (void)local;
    (void)locallen;
    c->fd = fd;
    buf_init(&c->in, REQUEST_MAX);
    buf_init(&c->out, 0);
    event_timer_setup(&c->timer, conn_timeout, c);
    event_timer_arm(&c->timer, ipc_timeout_ms);
    c->next = conns;
    if (conns)
        conns->prev = c;
    conns = c;
    nconns++;
    event_add(fd, EVENT_READ, conn_io, c, false);
}

/*
 * smtp_sessions - live qmgr connections, for the drain. While draining,
 * connections that wait for a next request will get none worth
 * starting: they are closed here, and once none is left the idle cached
 * sessions are ended with QUIT.
 */
static size_t smtp_sessions(void)
{
    if (server_draining()) {
        struct conn *c = conns;

        while (c) {
            struct conn *next = c->next;

            if (c->job == NULL && c->out.len == 0)
                conn_close(c);
            c = next;
        }
        if (nconns == 0)
            dest_cache_flush();
    }
    return nconns;
}

/* smtp_stop - SIGTERM: drop every connection and delivery, QUIT idle sessions */
static void smtp_stop(void)
{
    while (conns)
        conn_close(conns);
    dest_cache_flush();
}

/* main - the program's name picks SMTP or LMTP; the skeleton does the rest */
int main(int argc, char **argv)
{
    const char *base = argc > 0 && argv[0] ? strrchr(argv[0], '/') : NULL;
    struct event_server_hooks hooks = {
        .pre_jail = smtp_pre_jail,
        .accept = smtp_accept,
        .sessions = smtp_sessions,
        .stop = smtp_stop,
    };

    base = base ? base + 1 : (argc > 0 && argv[0] ? argv[0] : "smtp");
    smtp_conf.lmtp = strcmp(base, "lmtp") == 0;
    smtp_conf.prefix = smtp_conf.lmtp ? "lmtp" : "smtp";
    hooks.program = smtp_conf.prefix;
    return event_server_main(argc, argv, &hooks);
}
