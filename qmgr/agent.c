/*
 * agent.c - the queue manager's side of the deliver/1 protocol
 *
 * One connection per job to $queue_directory/private/TRANSPORT: a
 * non-blocking connect (a full listen queue is retried every
 * CONNECT_RETRY_MS), the request written as the socket accepts it, the
 * reply read and parsed as it arrives; all within ipc_timeout. Every
 * recipient gets a result whatever happens: a missing service defers the
 * job with 4.3.0 "mail transport unavailable", a dead or confused agent
 * with 4.3.0 "delivery agent failed", a silent one with 4.3.0 "delivery
 * agent timed out" (qmgr logs those lines; the agent logs its own).
 *
 * DIAGNOSTICS: a malformed reply is logged as a warning naming the
 *   transport and the problem.
 * SECURITY: the transport name comes from main.cf or a transport table;
 *   it must be a plain name (no '/'), so the socket is always inside
 *   private/. Replies are bounded (REPLY_MAX) and checked strictly.
 */
#include "util/sys.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "mail/attr.h"
#include "mail/config.h"
#include "mail/deliver.h"
#include "mail/qfile.h"
#include "qmgr.h"
#include "util/alloc.h"
#include "util/event.h"
#include "util/log.h"

#define CONNECT_RETRY_MS 1000
#define REPLY_MAX (64u << 20)
#define READ_CHUNK 65536
#define MS_PER_SEC 1000
#define DSN_TEMP_ERROR "4.3.0"
#define TEXT_UNAVAILABLE "mail transport unavailable"
#define TEXT_FAILED "delivery agent failed"
#define TEXT_TIMEOUT "delivery agent timed out"

static struct qjob **live;
static size_t nlive, live_cap;

/* live_add - remember a running job (for shutdown) */
static void live_add(struct qjob *j)
{
    if (nlive == live_cap) {
        live_cap = live_cap ? live_cap * 2 : 16;
        live = xreallocarray(live, live_cap, sizeof(*live));
    }
    live[nlive++] = j;
}

/* live_del - forget a job */
static void live_del(struct qjob *j)
{
    for (size_t i = 0; i < nlive; i++)
        if (live[i] == j) {
            live[i] = live[--nlive];
            return;
        }
}

/* job_end - close the connection, release the job, finish the message */
static void job_end(struct qjob *j)
{
    struct qmsg *m = j->m;

    event_timer_disarm(&j->timer);
    if (j->fd >= 0) {
        if (j->watched)
            event_remove(j->fd);
        close(j->fd);
        j->fd = -1;
    }
    live_del(j);
    sched_job_finished(j);
    result_message_check(m);
}

/* job_fail - every recipient deferred with text; the job ends */
static void job_fail(struct qjob *j, const char *text)
{
    result_job_failed(j, DSN_TEMP_ERROR, text);
    job_end(j);
}

/* encode_request - the deliver/1 request for j */
static void encode_request(struct qjob *j)
{
    struct qmsg *m = j->m;
    struct qfile *q = m->q;
    struct deliver_request r;
    const char *v;

    memset(&r, 0, sizeof(r));
    r.queue_name = (char *)"active";
    r.queue_id = m->qid;
    r.transport = j->d->transport_name;
    r.nexthop = j->d->nexthop;
    r.sender = q->sender;
    r.arrival_us = q->arrival_sec * 1000000LL + q->arrival_usec;
    r.active_us = m->active_us;
    r.sent_us = qmgr_now_us();
    r.envid = (char *)((v = qfile_attr(q, "envid")) ? v : "");
    r.ret = (char *)((v = qfile_attr(q, "ret")) ? v : "");
    r.encoding = (char *)((v = qfile_attr(q, "encoding")) ? v : "");
    r.smtputf8 = (v = qfile_attr(q, "smtputf8")) != NULL && strcmp(v, "yes") == 0;
    r.client_name = (char *)((v = qfile_attr(q, "client_name")) ? v : "");
    r.client_address = (char *)((v = qfile_attr(q, "client_address")) ? v : "");
    r.helo_name = (char *)((v = qfile_attr(q, "helo_name")) ? v : "");
    r.protocol = (char *)((v = qfile_attr(q, "protocol")) ? v : "");
    r.rcpts = xcalloc(j->n, sizeof(*r.rcpts));
    r.nrcpts = j->n;
    for (size_t k = 0; k < j->n; k++) {
        const struct qrcpt *qr = &q->rcpts[j->idx[k]];

        r.rcpts[k].address = m->ri[j->idx[k]].address;
        r.rcpts[k].orig = qr->addr;
        r.rcpts[k].orcpt = (char *)(qr->orcpt ? qr->orcpt : "");
        r.rcpts[k].notify = qr->notify;
        r.rcpts[k].offset = (long long)qr->offset;
    }
    buf_init(&j->out, 0);
    deliver_request_encode(&r, &j->out);
    free(r.rcpts);
}

/* job_reply - a complete reply: record each result */
static void job_reply(struct qjob *j, struct attr_msg *msg)
{
    struct deliver_result *res = xcalloc(j->n, sizeof(*res));
    const char *err = NULL;

    if (!deliver_reply_decode(msg, res, j->n, &err)) {
        msg_warn("%s: transport %s: malformed reply: %s", j->m->qid, j->d->transport_name,
                 err);
        free(res);
        job_fail(j, TEXT_FAILED);
        return;
    }
    for (size_t k = 0; k < j->n; k++) {
        struct rcpt_info *ri = &j->m->ri[j->idx[k]];

        /* An alias expanded to the recipient a notice must name. */
        if (res[k].final && *res[k].final) {
            free(ri->address);
            ri->address = xstrdup(res[k].final);
        }
        free(ri->remote_mta);
        free(ri->diag);
        ri->remote_mta = res[k].remote_mta && *res[k].remote_mta ? xstrdup(res[k].remote_mta) : NULL;
        ri->diag = res[k].diag && *res[k].diag ? xstrdup(res[k].diag) : NULL;
        ri->relayed = res[k].relayed;
        result_record(j->m, j->idx[k], res[k].status, res[k].dsn, res[k].relay, res[k].text,
                      false);
        deliver_result_free(&res[k]);
    }
    free(res);
    job_end(j);
}

/* job_read - reply bytes: parse once complete */
static void job_read(struct qjob *j)
{
    struct attr_msg msg = {0};
    const char *err = NULL;
    size_t used = 0;
    ssize_t n;
    int rc;

    if (buf_reserve(&j->in, READ_CHUNK) < 0) {
        msg_warn("%s: transport %s: reply too large", j->m->qid, j->d->transport_name);
        job_fail(j, TEXT_FAILED);
        return;
    }
    n = read(j->fd, j->in.data + j->in.len, READ_CHUNK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        if (n < 0)
            msg_warn("%s: transport %s: read reply: %m", j->m->qid, j->d->transport_name);
        else
            msg_warn("%s: transport %s: connection closed before the reply", j->m->qid,
                     j->d->transport_name);
        job_fail(j, TEXT_FAILED);
        return;
    }
    j->in.len += (size_t)n;
    j->in.data[j->in.len] = 0;
    rc = attr_parse(j->in.data, j->in.len, &msg, &used, &err);
    if (rc == 0) {
        attr_msg_free(&msg);
        return;
    }
    if (rc < 0) {
        msg_warn("%s: transport %s: malformed reply: %s", j->m->qid, j->d->transport_name,
                 err);
        attr_msg_free(&msg);
        job_fail(j, TEXT_FAILED);
        return;
    }
    job_reply(j, &msg);
    attr_msg_free(&msg);
}

/* job_write - send more of the request */
static void job_write(struct qjob *j)
{
    ssize_t n = send(j->fd, j->out.data + j->outpos, j->out.len - j->outpos, MSG_NOSIGNAL);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n < 0) {
        msg_warn("%s: transport %s: send request: %m", j->m->qid, j->d->transport_name);
        job_fail(j, TEXT_FAILED);
        return;
    }
    j->outpos += (size_t)n;
    if (j->outpos == j->out.len)
        event_modify(j->fd, EVENT_READ);
}

/* job_io - the agent socket is ready */
static void job_io(int fd, unsigned events, void *ctx)
{
    struct qjob *j = ctx;

    (void)fd;
    if (j->outpos < j->out.len) {
        if (events & (EVENT_WRITE | EVENT_ERROR))
            job_write(j);
        return;
    }
    job_read(j);
}

/* job_connect - try to connect; false when the job has ended */
static bool job_connect(struct qjob *j)
{
    struct sockaddr_un sun;
    const char *top = cfg_str(qmgr_cfg, "queue_directory");
    int n;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/private/%s", top,
                 j->d->transport_name);
    if (n < 0 || (size_t)n >= sizeof(sun.sun_path) || *j->d->transport_name == 0
        || strchr(j->d->transport_name, '/') != NULL || j->d->transport_name[0] == '.') {
        msg_warn("%s: bad transport name \"%s\"", j->m->qid, j->d->transport_name);
        job_fail(j, TEXT_UNAVAILABLE);
        return false;
    }
    if (j->fd < 0) {
        j->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (j->fd < 0) {
            msg_warn("%s: socket: %m", j->m->qid);
            job_fail(j, TEXT_UNAVAILABLE);
            return false;
        }
    }
    if (connect(j->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 && errno != EINPROGRESS) {
        if (errno == EAGAIN) {
            /* listen queue full: the agents are busy; try again soon */
            j->connecting = true;
            event_timer_arm(&j->timer, CONNECT_RETRY_MS);
            return true;
        }
        if (errno != ENOENT && errno != ECONNREFUSED)
            msg_warn("%s: connect to %s: %m", j->m->qid, sun.sun_path);
        job_fail(j, TEXT_UNAVAILABLE);
        return false;
    }
    j->connecting = false;
    event_add(j->fd, EVENT_READ | EVENT_WRITE, job_io, j, false);
    j->watched = true;
    event_timer_arm(&j->timer, (uint64_t)cfg_time(qmgr_cfg, "ipc_timeout") * MS_PER_SEC);
    return true;
}

/* job_timer - connect retry, or the delivery deadline */
static void job_timer(void *ctx)
{
    struct qjob *j = ctx;

    if (j->connecting) {
        close(j->fd);
        j->fd = -1;
        job_connect(j);
        return;
    }
    msg_warn("%s: transport %s: no reply within ipc_timeout", j->m->qid,
             j->d->transport_name);
    job_fail(j, TEXT_TIMEOUT);
}

/* agent_start - connect to private/TRANSPORT and run the job */
void agent_start(struct qjob *j)
{
    event_timer_setup(&j->timer, job_timer, j);
    buf_init(&j->in, REPLY_MAX);
    live_add(j);
    encode_request(j);
    job_connect(j);
}

/* agent_stop_all - close every agent connection (shutdown) */
void agent_stop_all(void)
{
    for (size_t i = 0; i < nlive; i++)
        if (live[i]->fd >= 0)
            close(live[i]->fd);
    nlive = 0;
}
