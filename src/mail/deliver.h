/*
 * deliver.h - qmgr <-> delivery agent protocol (local, discard, error, smtp)
 *
 * qmgr connects to the agent's Unix socket ($queue_directory/private/NAME,
 * NAME = the master.cf service of the transport), sends one request, and
 * reads one reply; the connection may then carry the next request. Both
 * are attribute messages (mail/attr.h), protocol "v=deliver/1".
 *
 * Request, in this order:
 *   v=deliver/1
 *   queue_name=active          queue_id=ID (re-checked by the agent)
 *   transport=local            nexthop=DOMAIN-OR-TEXT
 *   sender=ADDR
 *   arrival_us= active_us= sent_us=   microseconds since the epoch: when
 *       the message arrived, entered the active queue, and this request
 *       was sent (the agent logs delays=a/b/c/d from them)
 *   envid=TEXT                 ret=FULL|HDRS|""
 *   encoding=7bit|8bitmime|""  smtputf8=0|1
 *   client_name= client_address= helo_name= protocol=   (for logging)
 *   rcpt_count=N
 *   then N times:
 *     address=ADDR  orig=ADDR (original recipient)  orcpt=TYPE;ADDR|""
 *     notify=BITS  offset=FILE-OFFSET-OF-RCPT-RECORD
 * Reply:
 *   v=deliver/1
 *   rcpt_count=N (same N, same order), then N times:
 *     status=sent|deferred|bounced   dsn=X.Y.Z   relay=TEXT
 *     text=DIAGNOSTIC ("delivered to mailbox", "delivered to maildir",
 *          "Permission denied", "mailbox full", ...)
 *     final=ADDR  the final recipient when it differs from the request's
 *          address (an alias expanded to an unknown user), else ""; a DSN
 *          names it in Final-Recipient
 *     action=relayed|""  "relayed": sent to a next hop that does not
 *          speak DSN, so a NOTIFY=SUCCESS sender gets a "relayed" notice
 *     remote_mta=HOST  the remote MTA that answered (DSN Remote-MTA), or ""
 *     diag=TEXT  that MTA's reply on one line (DSN Diagnostic-Code
 *          "smtp; ..."), or ""
 * The agent never writes the queue file: qmgr records each result.
 */
#ifndef POSTA_DELIVER_H
#define POSTA_DELIVER_H

#include <stdbool.h>
#include <stddef.h>

#include "mail/attr.h"
#include "util/buf.h"

#define DELIVER_PROTO "deliver/1"
#define DELIVER_MAX_RCPTS 100000

struct deliver_rcpt {
    char *address;
    char *orig;
    char *orcpt;
    unsigned notify;
    long long offset;
};

struct deliver_request {
    char *queue_name;
    char *queue_id;
    char *transport;
    char *nexthop;
    char *sender;
    long long arrival_us;
    long long active_us;
    long long sent_us;
    char *envid;
    char *ret;
    char *encoding;
    bool smtputf8;
    char *client_name;
    char *client_address;
    char *helo_name;
    char *protocol;
    struct deliver_rcpt *rcpts;
    size_t nrcpts;
};

enum deliver_status { DELIVER_SENT, DELIVER_DEFERRED, DELIVER_BOUNCED };

struct deliver_result {
    enum deliver_status status;
    char dsn[16];       /* "2.0.0" */
    char *relay;        /* "local", "none", "host[addr]:port" */
    char *text;
    char *final;        /* final recipient, NULL or "" = the request's address */
    bool relayed;       /* action=relayed */
    char *remote_mta;   /* NULL or "" = none */
    char *diag;         /* NULL or "" = none */
};

void deliver_request_encode(const struct deliver_request *r, struct buf *out);
/* deliver_request_decode - strict; false + *err (static text) when malformed */
bool deliver_request_decode(struct attr_msg *m, struct deliver_request *r, const char **err);
void deliver_request_free(struct deliver_request *r);

void deliver_reply_encode(const struct deliver_result *res, size_t n, struct buf *out);
/* deliver_reply_decode - exactly n results expected; false + *err when malformed */
bool deliver_reply_decode(struct attr_msg *m, struct deliver_result *res, size_t n,
                          const char **err);
void deliver_result_free(struct deliver_result *res);
/* deliver_dsn_valid - "2.0.0"-style code whose class matches status */
bool deliver_dsn_valid(const char *dsn, enum deliver_status status);
/*
 * deliver_format_delays - "delay=D, delays=a/b/c/d" for a result line, as
 * Postfix prints it: a = before the active queue, b = in qmgr, c =
 * connection set-up (conn_us; 0 = none, c is then 0), d = transmission;
 * seconds with two significant digits. Appended to out.
 */
void deliver_format_delays(const struct deliver_request *r, long long conn_us, long long now_us,
                           struct buf *out);
/* deliver_status_name - "sent", "deferred", "bounced" */
const char *deliver_status_name(enum deliver_status s);

#endif
