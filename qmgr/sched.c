/*
 * sched.c - from recipients to delivery jobs, within the concurrency limits
 *
 * Each pending recipient is resolved (mail/resolve.h). Recipients of one
 * message with the same (transport, nexthop) form jobs of at most
 * TRANSPORT_destination_recipient_limit recipients (default_... when the
 * transport has no parameter of its own; 0 means no limit). A job waits
 * in its destination's queue; at most TRANSPORT_destination_concurrency_limit
 * jobs per destination and default_process_limit per transport run at
 * once. As in Postfix, a transport with a recipient limit of 1 (local)
 * counts its destinations per recipient: the concurrency limit then
 * bounds parallel deliveries to one mailbox.
 *
 * A message with the content_filter attribute (smtpd's or pickup's
 * content_filter setting, or an access table's FILTER action) sends
 * every recipient to that "transport:nexthop" instead, as Postfix does:
 * the nexthop defaults to $myhostname. The filter hands the message back
 * to a listener whose content_filter is empty.
 *
 * discard: and error: are done here, without a process: discard reports
 * every recipient sent, error bounces them (or defers them when the text
 * starts with a 4.X.X code) with the nexthop as the reason.
 *
 * DIAGNOSTICS: a resolver failure defers the recipient with 4.3.0
 *   "address resolver failure"; qmgr logs these lines itself.
 */
#include "util/sys.h"

#include <ctype.h>
#include <string.h>

#include "mail/config.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/resolve.h"
#include "qmgr.h"
#include "util/alloc.h"
#include "util/log.h"

#define DSN_TEMP_ERROR "4.3.0"
#define DSN_DISCARDED "2.0.0"
#define DSN_ERROR "5.0.0"
#define DISCARD_TEXT "discarded"
#define ERROR_TEXT "mail is undeliverable"
#define DSN_CODE_LEN 5            /* "X.Y.Z" at least */

static struct qtransport *transports;
static struct qdest *dests;

/* group - recipients of one message with one (transport, nexthop) */
struct group {
    char *transport;
    char *nexthop;
    size_t *idx;
    size_t n;
};

/* tp_param - TRANSPORT_suffix when the table has it, else default_suffix */
static long long tp_param(const char *tp, const char *suffix)
{
    char *name = xasprintf("%s_%s", tp, suffix);
    char *fallback = xasprintf("default_%s", suffix);
    long long v;

    v = cfg_int(qmgr_cfg, param_find(name) ? name : fallback);
    free(name);
    free(fallback);
    return v;
}

/* transport_get - the per-transport counters, created on first use */
static struct qtransport *transport_get(const char *name)
{
    struct qtransport *t;

    for (t = transports; t; t = t->next)
        if (strcmp(t->name, name) == 0)
            return t;
    t = xcalloc(1, sizeof(*t));
    t->name = xstrdup(name);
    t->conc_limit = tp_param(name, "destination_concurrency_limit");
    t->rcpt_limit = tp_param(name, "destination_recipient_limit");
    t->proc_limit = cfg_int(qmgr_cfg, "default_process_limit");
    t->next = transports;
    transports = t;
    return t;
}

/* lower_dup - a lower-cased copy (destination keys are case-insensitive) */
static char *lower_dup(const char *s)
{
    char *c = xstrdup(s);

    for (char *p = c; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return c;
}

/* dest_get - the queue of one (transport, key), created on first use */
static struct qdest *dest_get(struct qtransport *tp, const char *nexthop, const char *key)
{
    struct qdest *d;
    char *lkey = lower_dup(key);

    for (d = dests; d; d = d->next)
        if (d->tp == tp && strcmp(d->key, lkey) == 0 && strcmp(d->nexthop, nexthop) == 0) {
            free(lkey);
            return d;
        }
    d = xcalloc(1, sizeof(*d));
    d->tp = tp;
    d->transport_name = tp->name;
    d->nexthop = xstrdup(nexthop);
    d->key = lkey;
    d->next = dests;
    dests = d;
    return d;
}

/* job_queue - append a job of idx[0..n) to destination d */
static void job_queue(struct qmsg *m, struct qdest *d, const size_t *idx, size_t n)
{
    struct qjob *j = xcalloc(1, sizeof(*j));

    j->m = m;
    j->d = d;
    j->idx = xmemdup(idx, n * sizeof(*idx));
    j->n = n;
    j->fd = -1;
    for (size_t k = 0; k < n; k++)
        m->ri[idx[k]].st = RS_BUSY;
    m->jobs++;
    if (d->tail)
        d->tail->next = j;
    else
        d->head = j;
    d->tail = j;
}

/* dsn_prefix - "X.Y.Z " at the start of text: its length, else 0 */
static size_t dsn_prefix(const char *text)
{
    size_t n = 0;

    if ((text[0] != '4' && text[0] != '5') || text[1] != '.')
        return 0;
    n = 2;
    while (isdigit((unsigned char)text[n]))
        n++;
    if (n == 2 || text[n] != '.')
        return 0;
    n++;
    if (!isdigit((unsigned char)text[n]))
        return 0;
    while (isdigit((unsigned char)text[n]))
        n++;
    if (n < DSN_CODE_LEN || n >= sizeof(((struct rcpt_info *)0)->dsn)
        || (text[n] != ' ' && text[n] != 0))
        return 0;
    return n;
}

/* internal_transport - discard: and error: inside qmgr; false if not one */
static bool internal_transport(struct qmsg *m, const struct group *g)
{
    bool discard = strcmp(g->transport, "discard") == 0;
    char dsn[16];
    const char *text;
    size_t len;

    if (!discard && strcmp(g->transport, "error") != 0)
        return false;
    for (size_t k = 0; k < g->n; k++) {
        if (discard) {
            result_record(m, g->idx[k], DELIVER_SENT, DSN_DISCARDED, "none",
                          *g->nexthop ? g->nexthop : DISCARD_TEXT, true);
            continue;
        }
        len = dsn_prefix(g->nexthop);
        if (len) {
            memcpy(dsn, g->nexthop, len);
            dsn[len] = 0;
            text = g->nexthop + len + (g->nexthop[len] == ' ');
        } else {
            snprintf(dsn, sizeof(dsn), "%s", DSN_ERROR);
            text = g->nexthop;
        }
        if (*text == 0)
            text = ERROR_TEXT;
        result_record(m, g->idx[k], dsn[0] == '4' ? DELIVER_DEFERRED : DELIVER_BOUNCED, dsn,
                      "none", text, true);
    }
    return true;
}

/* queue_group - split a group into jobs for its destination(s) */
static void queue_group(struct qmsg *m, const struct group *g)
{
    struct qtransport *tp;
    size_t chunk;

    if (internal_transport(m, g))
        return;
    tp = transport_get(g->transport);
    if (tp->rcpt_limit == 1) {
        for (size_t k = 0; k < g->n; k++) {
            struct qdest *d = dest_get(tp, g->nexthop, m->ri[g->idx[k]].address);

            job_queue(m, d, &g->idx[k], 1);
        }
        return;
    }
    chunk = tp->rcpt_limit > 0 ? (size_t)tp->rcpt_limit : g->n;
    for (size_t k = 0; k < g->n; k += chunk) {
        struct qdest *d = dest_get(tp, g->nexthop, g->nexthop);

        job_queue(m, d, &g->idx[k], g->n - k < chunk ? g->n - k : chunk);
    }
}

/* sched_run_deferred - deferred call wrapper */
static void sched_run_deferred(void *ctx)
{
    (void)ctx;
    sched_run();
}

/* filter_override - a content filter "transport:nexthop" replaces the resolved route */
static void filter_override(const char *filter, struct resolve_result *res)
{
    const char *colon = strchr(filter, ':');
    size_t tlen = colon ? (size_t)(colon - filter) : strlen(filter);

    free(res->transport);
    free(res->nexthop);
    res->transport = xstrndup(filter, tlen);
    res->nexthop = xstrdup(colon && colon[1] ? colon + 1 : cfg_str(qmgr_cfg, "myhostname"));
}

/* sched_message - resolve the pending recipients of m and queue its jobs */
void sched_message(struct qmsg *m)
{
    struct group *groups = NULL;
    size_t ngroups = 0;
    struct qfile *q = m->q;
    const char *filter = qfile_attr(q, QATTR_CONTENT_FILTER);

    if (filter != NULL && (*filter == 0 || *filter == ':'))
        filter = NULL;

    for (size_t i = 0; i < q->nrcpts; i++) {
        struct resolve_result res;
        const char *why = NULL;
        size_t g;

        if (m->ri[i].st != RS_TODO)
            continue;
        if (resolve_rcpt(qmgr_resolver, q->rcpts[i].addr, &res, &why) != RESOLVE_OK) {
            m->ri[i].address = xstrdup(q->rcpts[i].addr);
            result_record(m, i, DELIVER_DEFERRED, DSN_TEMP_ERROR, "none",
                          "address resolver failure", true);
            msg_warn("%s: resolve <%s>: %s", m->qid, q->rcpts[i].addr, why);
            continue;
        }
        if (filter != NULL)
            filter_override(filter, &res);
        m->ri[i].address = res.address;
        res.address = NULL;
        for (g = 0; g < ngroups; g++)
            if (strcmp(groups[g].transport, res.transport) == 0
                && strcmp(groups[g].nexthop, res.nexthop) == 0)
                break;
        if (g == ngroups) {
            groups = xreallocarray(groups, ngroups + 1, sizeof(*groups));
            groups[g] = (struct group){res.transport, res.nexthop,
                                       xcalloc(q->nrcpts, sizeof(size_t)), 0};
            res.transport = res.nexthop = NULL;
            ngroups++;
        }
        groups[g].idx[groups[g].n++] = i;
        resolve_result_free(&res);
    }
    for (size_t g = 0; g < ngroups; g++) {
        queue_group(m, &groups[g]);
        free(groups[g].transport);
        free(groups[g].nexthop);
        free(groups[g].idx);
    }
    free(groups);
    if (m->jobs)
        event_defer(sched_run_deferred, NULL);
    result_message_check(m);
}

/* dest_unlink - forget an idle, empty destination */
static void dest_free(struct qdest *d)
{
    free(d->nexthop);
    free(d->key);
    free(d);
}

/* sched_run - start waiting jobs while the limits allow */
void sched_run(void)
{
    struct qdest **pp = &dests;

    while (*pp) {
        struct qdest *d = *pp;
        struct qtransport *tp = d->tp;

        while (d->head && (tp->conc_limit <= 0 || d->active < tp->conc_limit)
               && tp->active < tp->proc_limit) {
            struct qjob *j = d->head;

            d->head = j->next;
            if (d->head == NULL)
                d->tail = NULL;
            j->next = NULL;
            d->active++;
            tp->active++;
            agent_start(j);
        }
        if (d->head == NULL && d->active == 0) {
            *pp = d->next;
            dest_free(d);
        } else {
            pp = &d->next;
        }
    }
}

/* sched_job_finished - release the job's slots and free it */
void sched_job_finished(struct qjob *j)
{
    j->d->active--;
    j->d->tp->active--;
    j->m->jobs--;
    buf_free(&j->out);
    buf_free(&j->in);
    free(j->idx);
    free(j);
    event_defer(sched_run_deferred, NULL);
}
