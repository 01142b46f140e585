/*
 * pass.c - mailbox_transport and fallback_transport: hand one recipient
 * to another delivery transport
 *
 * As Postfix's local(8) does, after alias and .forward expansion a
 * mailbox delivery goes to mailbox_transport_maps (looked up by the bare
 * user name, lower case, without address extension) or mailbox_transport
 * when set, whether or not the user has a passwd entry; a user without
 * one goes to fallback_transport_maps or fallback_transport instead of
 * bouncing as unknown. The value is "transport:nexthop"; without a
 * nexthop the request's own nexthop is used.
 *
 * The hand-over is a deliver/1 request (mail/deliver.h), the one qmgr
 * sends, to $queue_directory/private/TRANSPORT: the same queue file
 * (active/QID), sender, envelope and times, one recipient: the address
 * being delivered (after expansion) with the request recipient's
 * original address, ORCPT, NOTIFY and queue file offset. The agent reads
 * the message from the queue file itself and logs its own line; its
 * result (status, dsn, relay, text, remote MTA, diagnostic) becomes
 * local's result for that address. The connection is made by local's
 * root process, which reaches private/; every wait is bounded by
 * ipc_timeout, as qmgr's own exchange with an agent.
 *
 * DIAGNOSTICS: a missing or refusing service defers with 4.3.0 "mail
 * transport unavailable"; a failed exchange or malformed reply defers
 * with 4.3.0 "unknown mail transport error" and a warning; a failed
 * table lookup defers with 4.3.0 "table lookup failure"; a malformed
 * table value, or a transport that is local's own (the mail would loop),
 * defers with 4.3.5 and a warning. local logs these deferrals; the
 * agent logs every delivery it attempted. A malformed mailbox_transport
 * or fallback_transport is fatal at start-up.
 * SECURITY: the transport must be a plain service name (no '/', not
 * starting with '.'), so the socket is always inside private/. The reply
 * is bounded (PASS_REPLY_MAX) and checked strictly (deliver_reply_decode).
 */
#include "util/sys.h"

#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>

#include "mail/attr.h"
#include "mail/config.h"
#include "mail/deliver.h"
#include "mail/resolve.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/dict.h"
#include "util/log.h"

#include "local.h"

#define PASS_REPLY_MAX ((size_t)1 << 20)   /* one reply for one recipient */
#define PASS_CONNECT_RETRY_MS 1000         /* listen queue full: agents busy */
#define MS_PER_SEC 1000LL
#define US_PER_SEC 1000000LL
#define US_PER_MS 1000LL
#define DSN_TEMP "4.3.0"
#define DSN_CONFIG "4.3.5"
#define TEXT_UNAVAILABLE "mail transport unavailable"
#define TEXT_FAILED "unknown mail transport error"

/* One kind: its setting, its tables and the duplicate filter's key. */
struct pass_conf {
    const char *param;          /* "mailbox_transport" */
    const char *maps_param;     /* "mailbox_transport_maps" */
    const char *seen_kind;      /* resolve_seen() class */
    char *value;                /* the setting ("" = none) */
    char **specs;               /* the tables' type:name */
    struct dict **maps;         /* NULL where a table failed to open */
    size_t nmaps;
};

static struct pass_conf pass_confs[] = {
    [PASS_MAILBOX] = {.param = "mailbox_transport", .maps_param = "mailbox_transport_maps",
                      .seen_kind = "mailbox"},
    [PASS_FALLBACK] = {.param = "fallback_transport", .maps_param = "fallback_transport_maps",
                       .seen_kind = "fallback"},
};

/* pass_split - "transport:nexthop", the transport a plain service name */
bool pass_split(const char *value, char **transport, char **nexthop, const char **err)
{
    resolve_split_transport(value, transport, nexthop);
    if (**transport == 0)
        *err = "missing transport name";
    else if (strchr(*transport, '/') != NULL || (*transport)[0] == '.')
        *err = "the transport must be a master.cf service name";
    else
        return true;
    free(*transport);
    free(*nexthop);
    *transport = *nexthop = NULL;
    return false;
}

/* open_maps - (re)open the tables that failed before */
static void open_maps(struct pass_conf *pc)
{
    for (size_t i = 0; i < pc->nmaps; i++) {
        char *err = NULL;

        if (pc->maps[i] != NULL)
            continue;
        pc->maps[i] = dict_open(pc->specs[i], 0, &err);
        if (pc->maps[i] == NULL) {
            msg_warn("%s: %s: %s", pc->maps_param, pc->specs[i], err ? err : "cannot open");
            free(err);
        }
    }
}

/* pass_init - check the settings and open the tables */
void pass_init(struct cfg *cfg)
{
    for (size_t k = 0; k < POSTA_ARRAY_LEN(pass_confs); k++) {
        struct pass_conf *pc = &pass_confs[k];
        char *transport = NULL, *nexthop = NULL;
        const char *err = NULL;

        pc->value = xstrdup(cfg_str(cfg, pc->param));
        if (*pc->value && !pass_split(pc->value, &transport, &nexthop, &err))
            msg_fatal("%s = %s: %s", pc->param, pc->value, err);
        free(transport);
        free(nexthop);
        pc->specs = cfg_list(cfg, pc->maps_param, &pc->nmaps);
        pc->maps = xcalloc(pc->nmaps + 1, sizeof(*pc->maps));
        open_maps(pc);
    }
}

/*
 * pass_lookup - the kind's value for user: DICT_FOUND with *value
 * (malloc'ed; a table's, else the setting), DICT_NOTFOUND, or
 * DICT_TEMPFAIL with *table
 */
static enum dict_result pass_lookup(struct pass_conf *pc, const char *user, char **value,
                                    const char **table)
{
    open_maps(pc);
    for (size_t i = 0; i < pc->nmaps; i++) {
        const char *v = NULL;
        enum dict_result dr;

        if (pc->maps[i] == NULL) {
            *table = pc->specs[i];
            return DICT_TEMPFAIL;
        }
        dr = dict_lookup(pc->maps[i], user, &v);
        if (dr == DICT_TEMPFAIL) {
            *table = pc->specs[i];
            return DICT_TEMPFAIL;
        }
        if (dr == DICT_FOUND) {
            *value = xstrdup(v);
            *table = pc->specs[i];
            return DICT_FOUND;
        }
    }
    if (*pc->value == 0)
        return DICT_NOTFOUND;
    *value = xstrdup(pc->value);
    *table = pc->param;
    return DICT_FOUND;
}

/* now_us - wall clock microseconds */
static long long now_us(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * US_PER_SEC + tv.tv_usec;
}

/* pass_connect - a connected socket to private/transport, or -1 (logged when odd) */
static int pass_connect(const char *qid, const char *transport, long long deadline_us)
{
    struct sockaddr_un sun;
    const char *top = cfg_str(local_conf.cfg, "queue_directory");
    int n, fd;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/private/%s", top, transport);
    if (n < 0 || (size_t)n >= sizeof(sun.sun_path)) {
        msg_warn("%s: transport %s: socket path too long", qid, transport);
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        msg_warn("%s: socket: %m", qid);
        return -1;
    }
    while (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN && now_us() + PASS_CONNECT_RETRY_MS * US_PER_MS < deadline_us) {
            /* The listen queue is full: the agents are busy. */
            (void)poll(NULL, 0, PASS_CONNECT_RETRY_MS);
            continue;
        }
        if (errno != ENOENT && errno != ECONNREFUSED)
            msg_warn("%s: connect to %s: %m", qid, sun.sun_path);
        close(fd);
        return -1;
    }
    return fd;
}

/* encode_request - the deliver/1 request for the one recipient r */
static void encode_request(const struct lmsg *m, const struct lrcpt *r, const char *transport,
                           const char *nexthop, struct buf *out)
{
    struct deliver_request q = *m->req;
    struct deliver_rcpt rc;

    memset(&rc, 0, sizeof(rc));
    rc.address = (char *)r->address;
    rc.orig = (char *)(r->rc ? r->rc->orig : r->orig);
    rc.orcpt = r->rc ? r->rc->orcpt : (char *)"";
    rc.notify = r->rc ? r->rc->notify : 0;
    rc.offset = r->rc ? r->rc->offset : 0;
    q.transport = (char *)transport;
    q.nexthop = (char *)(*nexthop ? nexthop : m->req->nexthop);
    q.sent_us = now_us();
    q.rcpts = &rc;
    q.nrcpts = 1;
    deliver_request_encode(&q, out);
}

/* copy_field - a reply field into a result field (truncated, one line) */
static void copy_field(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
    for (char *p = dst; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
}

/* exchange - send the request, read the result into *res; false on failure (warned) */
static bool exchange(const struct lmsg *m, const struct lrcpt *r, int fd, const char *transport,
                     const char *nexthop, int timeout_ms, struct dres *res)
{
    const char *qid = m->req->queue_id;
    struct buf out = BUF_INIT, in = BUF_INIT;
    struct attr_msg msg = {0};
    struct deliver_result got;
    const char *err = NULL;
    bool ok = false;
    int rc;

    memset(&got, 0, sizeof(got));
    encode_request(m, r, transport, nexthop, &out);
    buf_init(&in, PASS_REPLY_MAX);
    if (attr_write_fd(fd, &out, timeout_ms) < 0) {
        msg_warn("%s: transport %s: send request: %m", qid, transport);
        goto out;
    }
    rc = attr_read_fd(fd, &in, &msg, timeout_ms, &err);
    if (rc == 0) {
        msg_warn("%s: transport %s: connection closed before the reply", qid, transport);
        goto out;
    }
    if (rc < 0) {
        if (errno == EPROTO)
            msg_warn("%s: transport %s: malformed reply: %s", qid, transport, err ? err : "?");
        else
            msg_warn("%s: transport %s: read reply: %m", qid, transport);
        goto out;
    }
    if (!deliver_reply_decode(&msg, &got, 1, &err)) {
        msg_warn("%s: transport %s: malformed reply: %s", qid, transport, err);
        goto out;
    }
    dres_set(res, got.status, got.dsn, "%s", got.text ? got.text : "");
    copy_field(res->relay, sizeof(res->relay), got.relay);
    copy_field(res->remote_mta, sizeof(res->remote_mta), got.remote_mta);
    copy_field(res->diag, sizeof(res->diag), got.diag);
    res->relayed = got.relayed;
    copy_field(res->final, sizeof(res->final),
               got.final && *got.final ? got.final : r->address);
    deliver_result_free(&got);
    ok = true;
out:
    attr_msg_free(&msg);
    buf_free(&in);
    buf_free(&out);
    return ok;
}

/* pass_to - deliver r through transport:nexthop (from table) */
static void pass_to(struct lmsg *m, const struct lrcpt *r, const struct pass_conf *pc,
                    const char *value, const char *table, struct dres *res)
{
    const char *qid = m->req->queue_id, *err = NULL;
    char *transport = NULL, *nexthop = NULL;
    long long timeout_s = cfg_time(local_conf.cfg, "ipc_timeout");
    int timeout_ms, fd;

    if (timeout_s > INT_MAX / MS_PER_SEC)
        timeout_s = INT_MAX / MS_PER_SEC;
    timeout_ms = (int)(timeout_s * MS_PER_SEC);

    if (!pass_split(value, &transport, &nexthop, &err)) {
        msg_warn("%s: %s: bad value \"%s\": %s", qid, table, value, err);
        dres_set(res, DELIVER_DEFERRED, DSN_CONFIG, "bad %s value \"%s\"", pc->param, value);
        local_log(m, r, res);
        return;
    }
    if (strcmp(transport, m->req->transport) == 0) {
        msg_warn("%s: %s: transport %s is this local transport: the mail would loop", qid,
                 table, transport);
        dres_set(res, DELIVER_DEFERRED, DSN_CONFIG, "mail for %s loops back to myself",
                 r->address);
        local_log(m, r, res);
        goto out;
    }
    fd = pass_connect(qid, transport, now_us() + timeout_s * US_PER_SEC);
    if (fd < 0) {
        dres_set(res, DELIVER_DEFERRED, DSN_TEMP, TEXT_UNAVAILABLE);
        local_log(m, r, res);
        goto out;
    }
    if (!exchange(m, r, fd, transport, nexthop, timeout_ms, res)) {
        dres_set(res, DELIVER_DEFERRED, DSN_TEMP, TEXT_FAILED);
        local_log(m, r, res);
    }
    close(fd);
out:
    free(transport);
    free(nexthop);
}

/* pass_deliver - the kind's transport for user, if one is set */
bool pass_deliver(struct lmsg *m, const struct lrcpt *r, enum pass_kind kind, const char *user,
                  struct dres *res)
{
    struct pass_conf *pc = &pass_confs[kind];
    char *value = NULL;
    const char *table = NULL;
    enum dict_result dr = pass_lookup(pc, user, &value, &table);

    if (dr == DICT_NOTFOUND)
        return false;
    memset(res, 0, sizeof(*res));
    if (dr == DICT_TEMPFAIL) {
        msg_warn("%s: %s: %s: lookup of \"%s\" failed", m->req->queue_id, pc->maps_param,
                 table, user);
        dres_set(res, DELIVER_DEFERRED, DSN_TEMP, "table lookup failure");
        local_log(m, r, res);
        return true;
    }
    if (resolve_seen(m, pc->seen_kind, user)) {
        dres_set(res, DELIVER_SENT, "2.0.0", "duplicate delivery to %s suppressed", user);
        free(value);
        return true;
    }
    pass_to(m, r, pc, value, table, res);
    free(value);
    return true;
}
