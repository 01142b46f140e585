/*
 * result.c - delivery results of the local agent: set and combine
 *
 * One request recipient may expand to several deliveries (an alias
 * list). qmgr gets one result per request recipient: the worst one
 * (deferred over bounced over sent), with the text of the first result
 * of that class.
 */
#include "util/sys.h"

#include <stdio.h>
#include <string.h>

#include "local.h"

/* status_rank - how bad a status is */
static int status_rank(enum deliver_status s)
{
    switch (s) {
    case DELIVER_SENT:
        return 0;
    case DELIVER_BOUNCED:
        return 1;
    case DELIVER_DEFERRED:
        return 2;
    }
    return 2;
}

/* dres_set - fill in a result */
void dres_set(struct dres *r, enum deliver_status st, const char *dsn, const char *fmt, ...)
{
    va_list ap;

    r->status = st;
    r->relay[0] = r->remote_mta[0] = r->diag[0] = 0;
    r->relayed = false;
    snprintf(r->dsn, sizeof(r->dsn), "%s", dsn);
    va_start(ap, fmt);
    vsnprintf(r->text, sizeof(r->text), fmt, ap);
    va_end(ap);
    /* Keep the text on one line: it goes into logs and DSNs. */
    for (char *p = r->text; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    r->set = true;
}

/* dres_merge - combine a sub-delivery's result into the overall result */
void dres_merge(struct dres *into, const struct dres *from)
{
    if (!from->set)
        return;
    if (!into->set || status_rank(from->status) > status_rank(into->status))
        *into = *from;
}
