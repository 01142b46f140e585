/*
 * smtpd.h - smtpd's internal interfaces: the session, its states, its parts
 *
 * One smtpd process serves many sessions from one epoll loop (util/event.h).
 * A session is an explicit state machine (enum smtpd_state); commands are
 * dispatched through a verb table (session.c) whose handlers (cmd.c,
 * data.c) answer with a code, an enhanced status code and text (reply.c).
 * Content reception (data.c) uses the stream decoders of data_decode.h;
 * recipients pass the restriction lists of policy.c.
 *
 * All socket I/O goes through s->io (struct session_io): plain sockets or
 * TLS (smtpd_tls.c: STARTTLS and smtpd_tls_wrappermode, handshakes inside
 * the event loop). AUTH (auth.c) talks to the SASL backend of
 * mail/xsasl.h; policy.c consults session_authenticated() for
 * permit_sasl_authenticated.
 */
#ifndef POSTA_SMTPD_H
#define POSTA_SMTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "mail/qid.h"
#include "util/buf.h"
#include "util/event.h"
#include "util/inet.h"

#include "data_decode.h"

struct cfg;
struct matchlist;
struct local_rcpt;
struct valias;
struct bcc;
struct qfile_writer;
struct dns_req;
struct msgcheck;
struct msgcheck_conf;

/* Session states: which commands are allowed is decided from these. */
enum smtpd_state {
    SS_LOOKUP = 0,   /* resolving the client name; nothing said yet */
    SS_CONNECT,      /* greeted, no HELO/EHLO yet */
    SS_IDLE,         /* HELO/EHLO done, no transaction */
    SS_MAIL,         /* MAIL FROM accepted, no recipient yet */
    SS_RCPT,         /* at least one recipient accepted */
    SS_BDAT,         /* between the chunks of a BDAT transaction */
    SS_DATA,         /* reading DATA content up to CR LF . CR LF */
    SS_CHUNK,        /* reading the bytes of a BDAT chunk */
    SS_QUEUE,        /* waiting for the group commit of a message */
    SS_COUNT
};

#define SS_BIT(s) (1u << (s))

/* Reasons a session waits instead of reading commands */
#define SW_LOOKUP 1u    /* client name lookup */
#define SW_COMMIT 2u    /* queue file commit */
#define SW_SLEEP 4u     /* error sleep (delays the reply) */
#define SW_OUTPUT 8u    /* too much unsent output */
#define SW_TLS 16u      /* STARTTLS answered or TLS handshake running */
#define SW_AUTH 32u     /* the SASL backend is working on an AUTH step */

/* Verb indexes (order of the verb table and of the disconnect counters) */
enum smtpd_verb {
    V_HELO, V_EHLO, V_STARTTLS, V_AUTH, V_MAIL, V_RCPT, V_DATA, V_BDAT, V_RSET, V_NOOP,
    V_VRFY, V_HELP, V_QUIT, V_UNKNOWN, V_COUNT
};

/* Per-client event rates (smtpd_client_*_rate_limit) */
enum client_rate { CR_CONN, CR_MAIL, CR_RCPT, CR_COUNT };

/* handler result: the reply code, or REPLY_LATER when it comes later */
#define REPLY_LATER 0

struct session;

/* smtpd_result - what a handler answers: code, enhanced status code, text */
struct smtpd_result {
    int code;
    const char *enh;
    const char *text;     /* static text */
};

/* session_io - the byte stream under the SMTP session (TLS plugs in here) */
struct session_io {
    ssize_t (*read)(struct session *s, void *p, size_t n);
    ssize_t (*write)(struct session *s, const void *p, size_t n);
};

struct tls_conn;
struct tls_ctx;
struct xsasl_server;
struct xsasl_sess;

/* smtpd_actions - HOLD, DISCARD, REDIRECT, BCC, FILTER, PREPEND (actions.c) */
struct smtpd_actions {
    char *hold;                    /* why (may be ""); NULL: not held */
    char *discard;                 /* why; NULL: kept */
    char *redirect;                /* the one recipient; NULL: as received */
    char *filter;                  /* transport:nexthop; NULL: content_filter */
    char **bcc;                    /* more recipients */
    size_t nbcc;
    struct buf prepend;            /* header fields, each ending "\n" */
};

struct smtpd_rcpt {
    char *addr;        /* as received, without <> */
    char *orcpt;       /* "type;decoded" or NULL */
    unsigned notify;   /* QNOTIFY_* or 0 */
};

struct session {
    struct session *prev, *next;
    int fd;
    const struct session_io *io;
    void *io_ctx;                  /* for a TLS layer */
    enum smtpd_state state;
    unsigned wait;                 /* SW_* */
    bool closing;                  /* say what is queued, then close */
    bool dead;                     /* freed when the current callback ends */
    int busy;                      /* callbacks in progress */
    bool write_blocked;
    bool authenticated;            /* AUTH succeeded (sasl_username is set) */
    bool line_too_long;
    bool counted;                  /* in the per-client connection count */
    bool access_denied;            /* refused at connect: 503 to all but QUIT */

    struct buf in;
    size_t in_pos;
    struct buf out;

    struct event_timer idle_timer;
    struct event_timer wait_timer;
    struct dns_req *dns;

    /* TLS (smtpd_tls.c) */
    struct tls_conn *tls;          /* NULL: plaintext */
    bool tls_ready;                /* handshake done: s->io is TLS */
    unsigned tls_rwant, tls_wwant; /* TLS_WANT_* of a blocked read/write */

    /* AUTH (auth.c) */
    struct xsasl_sess *sasl;       /* NULL when AUTH is off */
    char *sasl_method;             /* the mechanism in use or that succeeded */
    char *sasl_username;
    bool auth_reading;             /* the next line answers a 334 challenge */

    char addr[INET_ADDR_MAX];
    char port[8];
    char local[INET_ADDR_MAX + 8]; /* "ip;port" of our end (for Cyrus) */
    char *name;                    /* "unknown" until confirmed */
    char *helo;
    bool esmtp;
    bool bare_lf_exempt;           /* smtpd_forbid_bare_newline_exclusions */
    const char *last_cmd;          /* for "lost connection after X" */
    unsigned errors;
    unsigned junk_cmds;            /* NOOP, VRFY, RSET so far (smtpd_junk_command_limit) */
    unsigned counts[V_COUNT][2];   /* [verb][0]=ok [1]=total */

    /* the mail transaction */
    char qid[QID_MAX];
    bool qid_logged;               /* "QID: client=" said */
    char *sender;                  /* NULL: no MAIL yet */
    struct smtpd_rcpt *rcpts;
    size_t nrcpt, rcpt_cap;
    unsigned rcpt_tries;
    const char *body;              /* "7bit", "8bitmime" or NULL */
    bool smtputf8;
    char *envid;
    const char *ret;               /* "FULL", "HDRS" or NULL */
    long long decl_size;           /* SIZE=, -1 if none */

    /* content */
    struct qfile_writer *qf;
    struct data_decoder dd;
    bool too_big;
    uint64_t chunk_left;
    uint64_t chunk_size;           /* as declared, for the 250 reply */
    bool chunk_last;
    bool bdat_failed;              /* discard the rest of a BDAT transaction */
    struct smtpd_result bdat_result;   /* the reply each discarded chunk gets */
    int hdr_state;                 /* light header scan, data.c */
    unsigned hops;                 /* Received: fields in the header (hopcount_limit) */
    bool hdr_skip;                 /* current header line too long to scan */
    struct buf hdr;
    char *msgid;

    /* actions (actions.c): of this message, and from HELO for the session */
    struct smtpd_actions act, sess_act;
    bool held;                     /* the unfinished file is in hold/ */
    bool eod_done;                 /* smtpd_end_of_data_restrictions have answered */
    struct msgcheck *mc;           /* header/body checks of this message, or NULL */
    bool mc_trace;                 /* our Received: goes straight to the file */
};

/* The configuration smtpd reads once (smtpd.c). */
struct smtpd_conf {
    struct cfg *cfg;
    const char *myhostname;
    char *banner;
    size_t line_limit;
    uint64_t timeout_ms;
    size_t rcpt_limit;
    unsigned hopcount_limit;
    unsigned soft_errors, hard_errors;
    unsigned junk_limit;           /* smtpd_junk_command_limit; 0: none */
    uint64_t error_sleep_ms;
    uint64_t size_limit;           /* 0: none */
    uint64_t queue_minfree;        /* bytes the queue file system keeps free */
    const char *reject_footer;     /* smtpd_reject_footer, unexpanded ("" none) */
    bool disable_vrfy;
    bool smtputf8;
    bool helo_required;
    bool strict_envelopes;
    bool peername_lookup;
    enum dd_bare_lf bare_lf;
    unsigned conn_limit;           /* 0: none */
    unsigned rate_limit[CR_COUNT]; /* smtpd_client_{connection,message,recipient}_rate_limit */
    uint64_t rate_unit_ms;         /* anvil_rate_time_unit */
    char **discard_ehlo;
    size_t ndiscard_ehlo;
    char **relay_restr, **rcpt_restr;
    size_t nrelay_restr, nrcpt_restr;
    bool reject_unlisted;
    int unknown_local_code;
    struct matchlist *mydestination, *relay_domains, *mynetworks;
    struct matchlist *bare_lf_excl, *event_excl;
    struct local_rcpt *local_rcpt;
    struct local_rcpt *relay_rcpt;   /* relay_recipient_maps, NULL when empty */
    struct valias *valias;         /* virtual_alias_maps and _domains (mail/valias.h) */
    int unknown_valias_code;       /* unknown_virtual_alias_reject_code */
    struct bcc *bcc;               /* always_bcc and the BCC maps (mail/bcc.h), NULL: none */
    unsigned overrides;            /* receive_override_options (RECEIVE_*, mail/cleanup.h) */
    int incoming_fd;
    int hold_fd;
    const char *content_filter;    /* content_filter: "transport:nexthop" or "" */
    struct msgcheck_conf *checks;  /* header/body checks; NULL: none */

    /* TLS */
    struct tls_ctx *tls_ctx;       /* NULL: no TLS (level none or no certificate) */
    int tls_level;                 /* SMTPD_TLS_* */
    bool tls_wrapper;              /* smtpd_tls_wrappermode */
    bool tls_auth_only;
    int tls_loglevel;
    bool tls_received_header;
    uint64_t starttls_timeout_ms;

    /* SASL */
    struct xsasl_server *sasl_server;   /* NULL: AUTH off */
    char *sasl_opts, *sasl_tls_opts;    /* security options without/with TLS */
    bool sasl_auth_header;
    bool broken_sasl_clients;
};

/* smtpd_tls_security_level values */
enum { SMTPD_TLS_NONE, SMTPD_TLS_MAY, SMTPD_TLS_ENCRYPT };

extern struct smtpd_conf smtpd_conf;

/* session.c */
void session_start(int fd, const struct sockaddr *peer, socklen_t peerlen,
                   const struct sockaddr *local, socklen_t locallen);
void session_stop_all(void);
size_t session_count(void);
void session_close(struct session *s);          /* flush, then close */
void session_kill(struct session *s, const char *why);
void session_resume(struct session *s);         /* after a wait ended */
void session_count_verb(struct session *s, enum smtpd_verb v, int code);
void session_reset_transaction(struct session *s);
/* session_log_reject - "QID: reject: STAGE from NAME[ADDR]: REPLY; from=<> to=<> proto= helo=<>" */
void session_log_reject(struct session *s, const char *stage, const char *replytext);
void session_bare_lf(struct session *s);
bool session_authenticated(const struct session *s);
const char *session_protocol(const struct session *s);
/* session_check_errors - apply the error limits after replies made since before */
void session_check_errors(struct session *s, unsigned before);
/* session_error_sleep - delay the replies now queued by smtpd_error_sleep_time */
void session_error_sleep(struct session *s);
/* session_line_limit - longest input line accepted now */
size_t session_line_limit(const struct session *s);

/* reply.c */
void reply(struct session *s, int code, const char *enh, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void reply_raw(struct session *s, const char *text);
bool reply_is_error(int code);

/* cmd.c: the command handlers; each returns its reply code */
int cmd_helo(struct session *s, const char *arg);
int cmd_ehlo(struct session *s, const char *arg);
int cmd_mail(struct session *s, const char *arg);
int cmd_rcpt(struct session *s, const char *arg);
int cmd_rset(struct session *s, const char *arg);
int cmd_noop(struct session *s, const char *arg);
int cmd_vrfy(struct session *s, const char *arg);
int cmd_help(struct session *s, const char *arg);
int cmd_quit(struct session *s, const char *arg);

/* data.c */
int cmd_data(struct session *s, const char *arg);
int cmd_bdat(struct session *s, const char *arg);
/* data_input - consume content input at p[0..n); returns bytes used */
size_t data_input(struct session *s, const char *p, size_t n);
void data_abort(struct session *s);


/* smtpd_tls.c */
void smtpd_tls_pre_jail(struct cfg *cfg);       /* certificates, as root */
void smtpd_tls_post_jail(struct cfg *cfg);      /* ticket keys, as mail_owner */
bool smtpd_tls_offered(const struct session *s);    /* say STARTTLS in EHLO? */
bool smtpd_tls_required(const struct session *s);   /* encrypt and not yet */
int cmd_starttls(struct session *s, const char *arg);
void smtpd_tls_begin(struct session *s);        /* wrap the socket, start handshaking */
void smtpd_tls_event(struct session *s);        /* socket ready during the handshake */
void smtpd_tls_timeout(struct session *s);      /* smtpd_starttls_timeout */
void smtpd_tls_end(struct session *s);          /* close_notify (when clean) and free */

/* auth.c */
void smtpd_sasl_pre_jail(struct cfg *cfg);
void smtpd_sasl_post_jail(struct cfg *cfg);
void auth_session_new(struct session *s);      /* (re)make the SASL session */
void auth_session_free(struct session *s);
/* auth_mechs - the mechanisms EHLO offers now, NULL when AUTH is not offered */
const char *auth_mechs(struct session *s);
int cmd_auth(struct session *s, const char *arg);
/* auth_input - a line that answers a 334 challenge */
void auth_input(struct session *s, const char *line, bool too_long);

/* actions.c */
void actions_reset(struct smtpd_actions *a);
/* actions_merge - add the actions of from to into (later ones win); from is emptied */
void actions_merge(struct smtpd_actions *into, struct smtpd_actions *from);
/* txn_hold - the current message goes to hold/ when its data ends (why: logged) */
void txn_hold(struct session *s, const char *why);
/* txn_discard - the current message is answered 250 and dropped when its data ends */
void txn_discard(struct session *s, const char *why);
/* actions_start - at data_open: the session's HELO-time actions join the message's */
void actions_start(struct session *s);
/* actions_envelope - the content_filter attribute (FILTER or the setting) */
void actions_envelope(struct session *s, struct qfile_writer *qf);
/*
 * actions_recipients - the recipient records: as received or the REDIRECT,
 * then BCCs, each through virtual_alias_maps; 0, or the reply code with
 * *r set when the expansion failed (nothing usable was written)
 */
int actions_recipients(struct session *s, struct qfile_writer *qf, struct smtpd_result *r);
/* data_hold - move the unfinished queue file to hold/ (once); false on error */
bool data_hold(struct session *s, const char *why);

/* received.c */
void received_header(struct session *s, struct buf *out, const char *rcpt);

/* smtpd.c: per-client connection counts and event rates (in this process) */
unsigned smtpd_client_conn_add(const char *addr);
void smtpd_client_conn_del(const char *addr);
/* smtpd_client_rate - one more event from addr; the count in the anvil_rate_time_unit window */
unsigned smtpd_client_rate(const char *addr, enum client_rate what);
/*
 * smtpd_rate_exceeded - count a connection, MAIL or RCPT of s against its
 * smtpd_client_*_rate_limit (clients in smtpd_client_event_limit_exceptions
 * are not counted); true when over the limit (logged, not replied)
 */
bool smtpd_rate_exceeded(struct session *s, enum client_rate what);

#endif
