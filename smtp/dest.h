/*
 * dest.h - one delivery request's plan (internal to smtp/, see dest.c)
 *
 * smtp.c hands dest_start() a decoded request, its open queue file and
 * one struct dest_rcpt per request recipient. dest.c finds the next
 * hop's addresses, runs sessions (or takes cached ones) until every
 * recipient has a final result, and reports each recipient once through
 * rcpt_fn (for the log line; it may run inside dest_start) and the end
 * once through done_fn (never inside dest_start).
 */
#ifndef POSTA_SMTP_DEST_H
#define POSTA_SMTP_DEST_H

#include <stdbool.h>
#include <stddef.h>

#include "smtp.h"

struct cfg;
struct qfile;

/* The result of one recipient, beyond what the session fills in. */
struct dest_rcpt {
    struct smtp_rcpt r;      /* idx, st, dsn, text, diag, relayed */
    struct buf relay;        /* "host[addr]:port"; "" = no connection */
    struct buf remote_mta;   /* the host that answered (DSN Remote-MTA), or "" */
    long long conn_us;       /* when the session became ready, 0 = none */
};

struct dest;

typedef void (*dest_rcpt_fn)(void *ctx, struct dest_rcpt *r);
typedef void (*dest_done_fn)(void *ctx);

/* dest_init - read the plan's settings (after smtp_conf is filled in) */
void dest_init(struct cfg *cfg);
/*
 * dest_start - deliver req (q open, rc[0..req->nrcpts) initialised);
 * recipients with rc[i].r.done already set are left alone. rcpt_fn runs
 * for every other recipient as its result becomes final, done_fn once
 * when all have one (dest is then freed).
 */
struct dest *dest_start(const struct deliver_request *req, const struct qfile *q,
                        struct dest_rcpt *rc, dest_rcpt_fn rcpt_fn, dest_done_fn done_fn,
                        void *ctx);
/* dest_cancel - stop now: sessions closed, no callback runs; dest is freed */
void dest_cancel(struct dest *d);
/* dest_live - deliveries in progress */
size_t dest_live(void);
/* dest_cache_flush - QUIT every idle cached session (drain, shutdown) */
void dest_cache_flush(void);
/* dest_cache_count - idle cached sessions */
size_t dest_cache_count(void);

#endif
