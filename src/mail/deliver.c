/*
 * deliver.c - qmgr <-> delivery agent protocol: encode and strictly decode
 *
 * DIAGNOSTICS: decode errors are static text; the caller treats a
 * malformed message as fatal for the connection (habit 9).
 */
#include "util/sys.h"

#include <stdio.h>
#include <string.h>

#include "mail/deliver.h"
#include "mail/qid.h"
#include "util/alloc.h"

#define US_PER_SEC 1000000.0
#define DELAY_ONE_DIGIT 10.0                /* from here on, whole seconds */
#define DELAY_TEXT_MAX 32
#define TIME_US_MAX 32503680000000000LL   /* year 3000, in microseconds */

/* deliver_request_encode - serialise a request */
void deliver_request_encode(const struct deliver_request *r, struct buf *out)
{
    attr_put(out, "v", DELIVER_PROTO);
    attr_put(out, "queue_name", r->queue_name);
    attr_put(out, "queue_id", r->queue_id);
    attr_put(out, "transport", r->transport);
    attr_put(out, "nexthop", r->nexthop);
    attr_put(out, "sender", r->sender);
    attr_putf(out, "arrival_us", "%lld", r->arrival_us);
    attr_putf(out, "active_us", "%lld", r->active_us);
    attr_putf(out, "sent_us", "%lld", r->sent_us);
    attr_put(out, "envid", r->envid);
    attr_put(out, "ret", r->ret);
    attr_put(out, "encoding", r->encoding);
    attr_put(out, "smtputf8", r->smtputf8 ? "1" : "0");
    attr_put(out, "client_name", r->client_name);
    attr_put(out, "client_address", r->client_address);
    attr_put(out, "helo_name", r->helo_name);
    attr_put(out, "protocol", r->protocol);
    attr_putf(out, "rcpt_count", "%zu", r->nrcpts);
    for (size_t i = 0; i < r->nrcpts; i++) {
        const struct deliver_rcpt *rc = &r->rcpts[i];

        attr_put(out, "address", rc->address);
        attr_put(out, "orig", rc->orig ? rc->orig : rc->address);
        attr_put(out, "orcpt", rc->orcpt);
        attr_putf(out, "notify", "%u", rc->notify);
        attr_putf(out, "offset", "%lld", rc->offset);
    }
    attr_end(out);
}

/* take - the next attribute, named name, copied; false if absent */
static bool take(struct attr_msg *m, const char *name, char **out)
{
    const char *v = attr_next_named(m, name);

    if (v == NULL)
        return false;
    *out = xstrdup(v);
    return true;
}

/* deliver_request_decode - strict decode of a request */
bool deliver_request_decode(struct attr_msg *m, struct deliver_request *r, const char **err)
{
    const char *v;
    long long n;
    char *flag = NULL;

    memset(r, 0, sizeof(*r));
    m->pos = 0;
    v = attr_next_named(m, "v");
    if (v == NULL || strcmp(v, DELIVER_PROTO) != 0) {
        *err = "not a deliver/1 request";
        return false;
    }
    if (!take(m, "queue_name", &r->queue_name) || !take(m, "queue_id", &r->queue_id)
        || !take(m, "transport", &r->transport) || !take(m, "nexthop", &r->nexthop)
        || !take(m, "sender", &r->sender)
        || !attr_next_long(m, "arrival_us", 0, TIME_US_MAX, &r->arrival_us)
        || !attr_next_long(m, "active_us", 0, TIME_US_MAX, &r->active_us)
        || !attr_next_long(m, "sent_us", 0, TIME_US_MAX, &r->sent_us)
        || !take(m, "envid", &r->envid) || !take(m, "ret", &r->ret)
        || !take(m, "encoding", &r->encoding) || !take(m, "smtputf8", &flag)
        || !take(m, "client_name", &r->client_name)
        || !take(m, "client_address", &r->client_address)
        || !take(m, "helo_name", &r->helo_name) || !take(m, "protocol", &r->protocol)
        || !attr_next_long(m, "rcpt_count", 1, DELIVER_MAX_RCPTS, &n)) {
        free(flag);
        *err = "missing or malformed request attribute";
        goto bad;
    }
    r->smtputf8 = strcmp(flag, "1") == 0;
    if (!r->smtputf8 && strcmp(flag, "0") != 0) {
        free(flag);
        *err = "bad smtputf8 flag";
        goto bad;
    }
    free(flag);
    if (strcmp(r->queue_name, "active") != 0 || !qid_valid(r->queue_id)) {
        *err = "bad queue name or queue ID";
        goto bad;
    }
    r->rcpts = xcalloc((size_t)n, sizeof(*r->rcpts));
    for (size_t i = 0; i < (size_t)n; i++) {
        struct deliver_rcpt *rc = &r->rcpts[i];
        long long notify;

        r->nrcpts = i + 1;
        if (!take(m, "address", &rc->address) || !take(m, "orig", &rc->orig)
            || !take(m, "orcpt", &rc->orcpt)
            || !attr_next_long(m, "notify", 0, 15, &notify)
            || !attr_next_long(m, "offset", 1, (1LL << 62), &rc->offset)) {
            *err = "missing or malformed recipient attribute";
            goto bad;
        }
        rc->notify = (unsigned)notify;
    }
    if (attr_next(m) != NULL) {
        *err = "unexpected attribute after the recipients";
        goto bad;
    }
    return true;
bad:
    deliver_request_free(r);
    return false;
}

/* deliver_request_free - release a decoded request */
void deliver_request_free(struct deliver_request *r)
{
    free(r->queue_name);
    free(r->queue_id);
    free(r->transport);
    free(r->nexthop);
    free(r->sender);
    free(r->envid);
    free(r->ret);
    free(r->encoding);
    free(r->client_name);
    free(r->client_address);
    free(r->helo_name);
    free(r->protocol);
    for (size_t i = 0; i < r->nrcpts; i++) {
        free(r->rcpts[i].address);
        free(r->rcpts[i].orig);
        free(r->rcpts[i].orcpt);
    }
    free(r->rcpts);
    memset(r, 0, sizeof(*r));
}

/* deliver_status_name - the word used on the wire and in logs */
const char *deliver_status_name(enum deliver_status s)
{
    switch (s) {
    case DELIVER_SENT:
        return "sent";
    case DELIVER_DEFERRED:
        return "deferred";
    case DELIVER_BOUNCED:
        return "bounced";
    }
    return "?";
}

/* deliver_dsn_valid - an enhanced status code whose class fits the status */
bool deliver_dsn_valid(const char *dsn, enum deliver_status status)
{
    static const char cls[] = {'2', '4', '5'};
    const char *p = dsn;
    int parts = 0;

    if (dsn[0] != cls[status] || dsn[1] != '.')
        return false;
    p = dsn + 2;
    for (parts = 0; parts < 2; parts++) {
        int digits = 0;

        while (*p >= '0' && *p <= '9' && digits < 3) {
            p++;
            digits++;
        }
        if (digits == 0)
            return false;
        if (parts == 0 && *p++ != '.')
            return false;
    }
    return *p == 0;
}

/* deliver_reply_encode - serialise per-recipient results */
void deliver_reply_encode(const struct deliver_result *res, size_t n, struct buf *out)
{
    attr_put(out, "v", DELIVER_PROTO);
    attr_putf(out, "rcpt_count", "%zu", n);
    for (size_t i = 0; i < n; i++) {
        attr_put(out, "status", deliver_status_name(res[i].status));
        attr_put(out, "dsn", res[i].dsn);
        attr_put(out, "relay", res[i].relay);
        attr_put(out, "text", res[i].text);
        attr_put(out, "final", res[i].final);
        attr_put(out, "action", res[i].relayed ? "relayed" : "");
        attr_put(out, "remote_mta", res[i].remote_mta ? res[i].remote_mta : "");
        attr_put(out, "diag", res[i].diag ? res[i].diag : "");
    }
    attr_end(out);
}

/* deliver_reply_decode - strict decode of exactly n results */
bool deliver_reply_decode(struct attr_msg *m, struct deliver_result *res, size_t n,
                          const char **err)
{
    const char *v;
    long long count;

    memset(res, 0, n * sizeof(*res));
    m->pos = 0;
    v = attr_next_named(m, "v");
    if (v == NULL || strcmp(v, DELIVER_PROTO) != 0) {
        *err = "not a deliver/1 reply";
        return false;
    }
    if (!attr_next_long(m, "rcpt_count", 0, DELIVER_MAX_RCPTS, &count)
        || (size_t)count != n) {
        *err = "reply recipient count does not match the request";
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const char *st = attr_next_named(m, "status");
        const char *dsn;

        if (st == NULL)
            goto bad_attr;
        if (strcmp(st, "sent") == 0)
            res[i].status = DELIVER_SENT;
        else if (strcmp(st, "deferred") == 0)
            res[i].status = DELIVER_DEFERRED;
        else if (strcmp(st, "bounced") == 0)
            res[i].status = DELIVER_BOUNCED;
        else
            goto bad_attr;
        dsn = attr_next_named(m, "dsn");
        if (dsn == NULL || strlen(dsn) >= sizeof(res[i].dsn)
            || !deliver_dsn_valid(dsn, res[i].status))
            goto bad_attr;
        memcpy(res[i].dsn, dsn, strlen(dsn) + 1);
        if (!take(m, "relay", &res[i].relay) || !take(m, "text", &res[i].text)
            || !take(m, "final", &res[i].final))
            goto bad_attr;
        v = attr_next_named(m, "action");
        if (v == NULL || (*v && strcmp(v, "relayed") != 0)
            || (*v && res[i].status != DELIVER_SENT))
            goto bad_attr;
        res[i].relayed = *v != 0;
        if (!take(m, "remote_mta", &res[i].remote_mta) || !take(m, "diag", &res[i].diag))
            goto bad_attr;
    }
    if (attr_next(m) != NULL) {
        *err = "unexpected attribute after the results";
        goto bad;
    }
    return true;
bad_attr:
    *err = "missing or malformed result attribute";
bad:
    for (size_t i = 0; i < n; i++)
        deliver_result_free(&res[i]);
    return false;
}

/* deliver_result_free - release one result */
void deliver_result_free(struct deliver_result *res)
{
    free(res->relay);
    free(res->text);
    free(res->final);
    free(res->remote_mta);
    free(res->diag);
    res->relay = res->text = res->final = res->remote_mta = res->diag = NULL;
}

/* fmt_delay - seconds as Postfix prints them (two significant digits) */
static void fmt_delay(long long us, struct buf *out)
{
    char tmp[DELAY_TEXT_MAX];
    double s = us < 0 ? 0 : (double)us / US_PER_SEC;
    char *p;

    if (s >= DELAY_ONE_DIGIT)
        snprintf(tmp, sizeof(tmp), "%.0f", s);
    else
        snprintf(tmp, sizeof(tmp), s < 1 ? "%.2f" : "%.1f", s);
    if (strchr(tmp, '.')) {
        p = tmp + strlen(tmp) - 1;
        while (*p == '0')
            *p-- = 0;
        if (*p == '.')
            *p = 0;
    }
    buf_puts(out, tmp);
}

/* deliver_format_delays - "delay=D, delays=a/b/c/d" */
void deliver_format_delays(const struct deliver_request *r, long long conn_us, long long now_us,
                           struct buf *out)
{
    long long start = r->sent_us;

    buf_puts(out, "delay=");
    fmt_delay(now_us - r->arrival_us, out);
    buf_puts(out, ", delays=");
    fmt_delay(r->active_us - r->arrival_us, out);
    buf_putc(out, '/');
    fmt_delay(r->sent_us - r->active_us, out);
    buf_putc(out, '/');
    if (conn_us > 0) {
        fmt_delay(conn_us - r->sent_us, out);
        start = conn_us;
    } else {
        buf_putc(out, '0');
    }
    buf_putc(out, '/');
    fmt_delay(now_us - start, out);
}
