/*
 * sess_impl.h - the inside of one client session (internal to smtp/)
 *
 * struct smtp_sess and the helpers that session.c (the SMTP dialogue),
 * sess_io.c (connect, socket and TLS reads and writes, the event
 * interest), sess_tls.c (STARTTLS, TLS on connect, the TLS policy) and
 * sess_sasl.c (AUTH) share. Nothing outside these files includes it.
 *
 * Conventions: a function that returns bool "alive" returns false when
 * the session is gone (freed, or its callback ran): the caller returns
 * at once without touching it.
 */
#ifndef POSTA_SMTP_SESS_IMPL_H
#define POSTA_SMTP_SESS_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "mail/qfile.h"
#include "mail/smtpenc.h"
#include "mail/smtpreply.h"
#include "util/buf.h"
#include "util/event.h"
#include "util/log.h"
#include "util/tls.h"

#include "smtp.h"

#define SESS_READ_SIZE 65536 /* one read() from the server */
#define SESS_IN_MAX ((size_t)SMTP_REPLY_LINE_MAX * SMTP_REPLY_LINES_MAX + SESS_READ_SIZE)
#define SESS_OUT_HIGH (256 * 1024) /* body: encode no more above this unsent */
#define SESS_OUT_COMPACT 65536     /* move unsent output down past this */
#define SESS_CHUNK 65536           /* queue file bytes per read */
#define SESS_PUMP_ROUNDS 8         /* body fill+write rounds per event */
#define SESS_NOW_MS 0              /* "from the event loop, at once" */
#define SESS_QUIT_WRITE_MS 1000    /* bound on writing QUIT when quit_ms = 0 */
#define REPLY_CLASS_DIV 100        /* 250 -> 2 */
#define REPLY_OK 2
#define REPLY_INTERMEDIATE 3
#define REPLY_PERM 5
#define REPLY_START_DATA 354
#define REPLY_CLOSING 421 /* the server is closing the connection */
#define ASCII_MAX 0x7f

/* Where a session is. */
enum sess_state {
    SS_CONNECT,  /* waiting for the non-blocking connect */
    SS_GREET,    /* waiting for the 220 greeting */
    SS_EHLO,     /* EHLO or LHLO sent */
    SS_HELO,     /* HELO sent */
    SS_STARTTLS, /* STARTTLS sent */
    SS_TLS,      /* TLS handshake running (after STARTTLS, or on connect) */
    SS_AUTH,     /* an AUTH exchange runs (sess_sasl.c) */
    SS_IDLE,     /* ready for sess_xact (or cached) */
    SS_XACT,     /* a transaction runs (see enum xact_phase) */
    SS_REPORT,   /* a result waits for the 0 ms timer */
    SS_QUIT,     /* QUIT sent, the caller let go */
};

/* Where a transaction is. */
enum xact_phase {
    XP_STEPS,     /* replies to MAIL, RCPT..., DATA */
    XP_BODY,      /* writing the content */
    XP_DOT,       /* waiting for the final reply (LMTP: replies) */
    XP_DOT_ABORT, /* an unwanted 354 answered with an empty message */
    XP_RSET,      /* RSET sent */
};

/* What one recipient of the running transaction got so far. */
enum rcpt_state { RS_WAIT, RS_ACCEPTED, RS_DONE };

/* The stage names in timeout and lost-connection texts, and their timers. */
enum sess_stage {
    STG_CONNECT,
    STG_GREET,
    STG_EHLO,
    STG_HELO,
    STG_LHLO,
    STG_STARTTLS,
    STG_TLS,
    STG_AUTH,
    STG_MAIL,
    STG_RCPT,
    STG_DATA,
    STG_BODY,
    STG_DOT,
    STG_RSET,
    STG_QUIT,
    STG_COUNT
};

/* stage_words - "receiving the initial server greeting", ... */
extern const char *const stage_words[STG_COUNT];

/* status codes of the failures the session words itself */
#define DSN_CONNECT "4.4.1"
#define DSN_CONVERSATION "4.4.2"
#define DSN_PROTOCOL "4.5.0"
#define DSN_LOCAL "4.3.0"
#define DSN_SIZE "5.3.4"
#define DSN_UTF8 "5.6.7"
#define DSN_TLS_MISSING "4.7.4"
#define DSN_TLS_FAILED "4.7.5"
#define DSN_AUTH "4.7.0"

struct sess_sasl;

struct smtp_sess {
    struct smtp_target t; /* own copy; t.host is ours */
    char *namaddr;        /* "host[addr]" */
    char *nexthop;        /* the request's next hop as given ("" if none) */
    char *nh_domain;      /* its domain or host name ("" if none) */
    int fd;
    bool in_loop; /* fd is watched by the event loop */
    enum sess_state state;
    enum sess_stage stage;
    struct event_timer timer;
    struct buf in;  /* received, not yet parsed */
    struct buf out; /* to send, from out_off on */
    size_t out_off;
    struct smtp_reply reply; /* the reply being handled */
    struct smtp_features feat;
    bool reached;   /* the server greeted us */
    bool eof;       /* the server closed (or reset) */
    int read_errno; /* why, when a read failed */
    bool broken;    /* idle but unusable: closed or talked */
    unsigned count; /* transactions started */
    unsigned long long started_ms;
    sess_fn fn; /* the pending sess_open/sess_xact callback */
    void *ctx;
    struct sess_status status;   /* the result being built for fn */
    bool report_keep;            /* SS_REPORT: keep the session after fn */
    void (*watch_fn)(void *ctx); /* sess_watch_close */
    void *watch_ctx;
    /* TLS (sess_tls.c) */
    struct tls_conn *tls; /* set from the handshake on */
    bool tls_active;      /* the handshake finished */
    bool tls_off;         /* this connection does not try TLS (may: retry) */
    bool tls_wrapper;     /* TLS from the first byte (smtp_tls_wrappermode) */
    bool rd_want_write;   /* a TLS read waits for writability */
    bool wr_want_read;    /* a TLS write waits for readability */
    int level;            /* enum tls_level of this session */
    /* SASL (sess_sasl.c) */
    struct sess_sasl *sasl; /* a running AUTH exchange */
    bool authed;            /* AUTH succeeded */
    /* the running transaction */
    struct smtp_xact *x;
    unsigned char *rst; /* enum rcpt_state per recipient */
    enum xact_phase phase;
    size_t step_sent; /* of MAIL, RCPT x n, DATA: commands sent */
    size_t step_recv; /* ... and replies handled */
    size_t naccepted; /* recipients with 2xx to RCPT */
    size_t dot_next;  /* LMTP: next recipient index for a final reply */
    bool mail_ok;     /* MAIL accepted, transaction still open */
    bool reused;      /* the session carried one before */
    bool pipelining;
    bool body_done; /* the final "." is in the output */
    struct smtp_enc enc;
    struct qfile_cursor cur;
};

/* flush results */
enum { FLUSH_DONE, FLUSH_PARTIAL, FLUSH_ERROR };

/* session.c */
const char *sess_qid(const struct smtp_sess *s);
bool sess_finish(struct smtp_sess *s, bool keep);
void sess_free(struct smtp_sess *s);
void status_set(struct smtp_sess *s, enum deliver_status st, const char *dsn,
                const char *diag, const char *fmt, ...) POSTA_PRINTF(5, 6);
void reply_dsn(const struct smtp_reply *r, enum deliver_status st, char *dsn, size_t len);
bool fail_reply(struct smtp_sess *s, const struct smtp_reply *r, const char *cmd,
                bool by_class);
bool fail_lost(struct smtp_sess *s);
bool fail_protocol(struct smtp_sess *s, const char *why);
bool send_hello(struct smtp_sess *s, const char *verb);
bool sess_ready(struct smtp_sess *s);
void sess_event(int fd, unsigned events, void *ctx);

/* sess_io.c */
void sess_stage(struct smtp_sess *s, enum sess_stage stage);
void set_interest(struct smtp_sess *s);
void out_cmd(struct smtp_sess *s, const char *fmt, ...) POSTA_PRINTF(2, 3);
void out_secret(struct smtp_sess *s, const char *shown, const char *line);
int sess_flush(struct smtp_sess *s);
bool sess_push(struct smtp_sess *s);
bool sess_read(struct smtp_sess *s);
int sess_connect(struct smtp_sess *s);
void connect_status(struct smtp_sess *s, int err);
void sess_io_close(struct smtp_sess *s);

/* sess_tls.c */
/* tls_after_ehlo - EHLO done: STARTTLS, refuse for lack of it, or go on */
bool tls_after_ehlo(struct smtp_sess *s, bool ehlo);
/* tls_starttls_reply - the reply to STARTTLS */
bool tls_starttls_reply(struct smtp_sess *s);
/* tls_begin - start the handshake on the connected socket */
bool tls_begin(struct smtp_sess *s);
/* tls_step - drive the handshake on a socket event */
void tls_step(struct smtp_sess *s);
/* tls_end - before close: remember the session for resumption, close_notify */
void tls_end(struct smtp_sess *s);

/* sess_sasl.c */
/* sasl_after_ehlo - the final EHLO: AUTH when enabled, offered and a password exists */
bool sasl_after_ehlo(struct smtp_sess *s);
/* sasl_reply - a reply during AUTH */
bool sasl_reply(struct smtp_sess *s);
/* sasl_free - forget a running exchange (wiping secrets) */
void sasl_free(struct smtp_sess *s);

#endif
