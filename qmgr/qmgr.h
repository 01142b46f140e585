/*
 * qmgr.h - the queue manager's shared state (internal to qmgr/)
 *
 * One qmgr process owns active/: it moves complete messages from
 * incoming/ (and due ones from deferred/) into active/, resolves each
 * pending recipient to (transport, nexthop), groups them into delivery
 * jobs, hands the jobs to the delivery agents within the concurrency
 * limits, records every result, and finally removes the message, defers
 * it (deferred/ with the retry time as mtime) or bounces it.
 *
 * Files: qmgr.c (main, hooks, triggers, timers), scan.c (directories and
 * moves), signer.c (DKIM signatures smtpd left pending, completed before
 * scheduling), sched.c (resolution, jobs, concurrency), agent.c (the
 * deliver/1 client), results.c (results, defer/bounce logs, expiry,
 * finishing).
 */
#ifndef POSTA_QMGR_H
#define POSTA_QMGR_H

#include <stdbool.h>
#include <stddef.h>

#include "mail/deliver.h"
#include "mail/qid.h"
#include "util/buf.h"
#include "util/event.h"

struct cfg;
struct qfile;
struct resolver;

/* What happened to one recipient during this pass through active/. */
enum rcpt_state {
    RS_DONE,      /* done before this pass (QREC_DONE) */
    RS_TODO,      /* waiting for a job */
    RS_BUSY,      /* in a job */
    RS_SENT,      /* delivered (marked done) */
    RS_DEFER,     /* try again later */
    RS_BOUNCE,    /* failed: to be reported, then marked done */
};

struct rcpt_info {
    enum rcpt_state st;
    char *address;     /* resolved address (with @$myorigin) */
    char dsn[16];
    char *text;        /* last reason */
    char *relay;
    char *remote_mta;  /* the remote MTA that answered, NULL = none */
    char *diag;        /* its reply (DSN Diagnostic-Code), NULL = none */
    bool relayed;      /* sent to a next hop without DSN support */
};

struct qmsg {
    char qid[QID_MAX];
    struct qfile *q;
    long long active_us;
    struct rcpt_info *ri;      /* one per q->rcpts entry */
    size_t unfinished;         /* RS_TODO + RS_BUSY */
    size_t jobs;               /* jobs not yet finished */
};

struct qtransport {
    char *name;
    int active;                /* jobs running */
    long long proc_limit;
    long long conc_limit;
    long long rcpt_limit;
    struct qtransport *next;
};

struct qjob;

struct qdest {
    char *transport_name;
    char *nexthop;
    char *key;                 /* nexthop, or the recipient when rcpt_limit is 1 */
    struct qtransport *tp;
    int active;
    struct qjob *head, *tail;  /* waiting jobs */
    struct qdest *next;
};

struct qjob {
    struct qmsg *m;
    struct qdest *d;
    size_t *idx;               /* recipient indexes into m->q->rcpts */
    size_t n;
    struct qjob *next;
    /* agent connection */
    int fd;
    struct buf out;
    size_t outpos;
    struct buf in;
    bool connecting;           /* waiting to retry a connect */
    bool watched;              /* fd is in the event loop */
    struct event_timer timer;
};

/* qmgr.c */
extern struct cfg *qmgr_cfg;
extern struct resolver *qmgr_resolver;
extern int qmgr_dir_incoming, qmgr_dir_active, qmgr_dir_deferred, qmgr_dir_corrupt,
    qmgr_dir_defer, qmgr_dir_bounce;
/* qmgr_now_us - wall clock in microseconds */
long long qmgr_now_us(void);

/* scan.c */
void scan_active(void);
void scan_incoming(void);
/* scan_incoming_soon - scan incoming/ at the end of this loop iteration */
void scan_incoming_soon(void);
/* scan_deferred - move due messages (all of them when flush) to active */
void scan_deferred(bool flush);
/* scan_room - a message left active/: continue a scan stopped at the limit */
void scan_room(void);
size_t scan_active_count(void);

/* signer.c */
/* signer_pre_jail - the DKIM signing keys (as root) */
void signer_pre_jail(struct cfg *cfg);
/* signer_post_jail - start the signing thread when there are keys */
void signer_post_jail(struct cfg *cfg);
/* signer_wanted - m's queue file says a signature is pending */
bool signer_wanted(const struct qmsg *m);
/* signer_submit - complete m's signature in the thread, then sched_message(m) */
void signer_submit(struct qmsg *m);

/* sched.c */
/* sched_message - resolve the pending recipients of m and queue its jobs */
void sched_message(struct qmsg *m);
/* sched_run - start waiting jobs while the limits allow */
void sched_run(void);
/* sched_job_finished - release the job's slots and free it */
void sched_job_finished(struct qjob *j);

/* agent.c */
/* agent_start - connect to private/TRANSPORT and run the job */
void agent_start(struct qjob *j);
/* agent_stop_all - close every agent connection (shutdown) */
void agent_stop_all(void);

/* results.c */
/* result_record - apply the result of recipient i; log it when log_it */
void result_record(struct qmsg *m, size_t i, enum deliver_status st, const char *dsn,
                   const char *relay, const char *text, bool log_it);
/* result_job_failed - every recipient of j deferred with dsn/text (logged) */
void result_job_failed(struct qjob *j, const char *dsn, const char *text);
/* result_message_check - finish m once every recipient has a result */
void result_message_check(struct qmsg *m);
/* result_load_bounce_log - recipients already bounced in an earlier pass */
void result_load_bounce_log(struct qmsg *m);
/* result_format_delays - "delay=D, delays=a/b/0/0" for lines qmgr logs itself */
void result_format_delays(const struct qmsg *m, struct buf *out);
void qmsg_free(struct qmsg *m);

#endif
