/*
 * smtp.h - the smtp/lmtp delivery agent's shared state (internal to smtp/)
 *
 * One event-driven process serves many deliveries at once. The qmgr
 * connects to private/smtp (or private/lmtp, private/relay, ...) and
 * sends deliver/1 requests (mail/deliver.h); each request becomes a
 * delivery that finds the next hop's addresses (mail/nexthop.h,
 * mail/mxlist.h, util/dns.h), takes an idle cached session or opens new
 * ones, runs one transaction per session, and answers with one result
 * per recipient. The program runs as "smtp" or "lmtp" (argv[0] / the
 * name it was installed under decides the protocol and the parameter
 * prefix: smtp_* or lmtp_*).
 *
 * Files:
 *   smtp.c     main, hooks, settings, qmgr connections and requests,
 *              result lines in the log, the deliver/1 reply
 *   dest.c     a delivery's plan: DNS (MX, addresses), loop detection,
 *              address order and limits, the connection cache, retrying
 *              4xx recipients at the next address
 *   session.c  one client connection: connect, greeting, EHLO/LHLO (HELO
 *              fallback), PIPELINING, SIZE/8BITMIME/DSN/SMTPUTF8, the
 *              content (mail/smtpenc.h), per-recipient results, QUIT, all
 *              non-blocking with the smtp_*_timeout of each stage
 *   sess_io.c  the session's socket: connect, reads and writes in the
 *              clear or through TLS, event interest, stage timers
 *   sess_tls.c STARTTLS and TLS on connect (smtp_tls_*): levels, names,
 *              the handshake, the "TLS connection established" line,
 *              in-process session resumption
 *   sess_sasl.c AUTH (smtp_sasl_*): password tables, PLAIN, LOGIN,
 *              CRAM-MD5
 *   sess_impl.h the session structure shared by those four files
 *
 * SECURITY: runs as mail_owner (unpriv) and only reads queue files. All
 * remote text is bounded and cleaned (mail/smtpreply.h) before it is
 * logged or handed to qmgr.
 */
#ifndef POSTA_SMTP_H
#define POSTA_SMTP_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "mail/deliver.h"
#include "mail/smtpreply.h"
#include "util/buf.h"

struct cfg;
struct qfile;

/* Settings, read once at start (prefix "smtp_" or "lmtp_"). */
struct smtp_conf {
    bool lmtp;                   /* LMTP: LHLO, one reply per recipient after DATA */
    const char *prefix;          /* "smtp" or "lmtp" */
    char *helo_name;             /* smtp_helo_name / lmtp_lhlo_name */
    unsigned connect_ms, helo_ms, mail_ms, rcpt_ms, data_init_ms, data_xfer_ms,
        data_done_ms, quit_ms;   /* smtp_*_timeout in milliseconds (0 = none) */
    bool never_send_ehlo;        /* smtp_never_send_ehlo */
    unsigned line_limit;         /* smtp_line_length_limit (0 = none) */
    bool skip_5xx_greeting;      /* smtp_skip_5xx_greeting */
    char *bind_v4, *bind_v6;     /* smtp_bind_address / smtp_bind_address6, or NULL */
    int family;                  /* from inet_protocols: AF_INET, AF_INET6, AF_UNSPEC */
    int prefer;                  /* smtp_address_preference: AF_INET, AF_INET6, AF_UNSPEC */
    bool hosts_file;             /* smtp_host_lookup includes native */
    unsigned mx_address_limit;   /* smtp_mx_address_limit (0 = none) */
    unsigned mx_session_limit;   /* smtp_mx_session_limit (0 = none) */
    unsigned cache_time_ms;      /* smtp_connection_cache_time_limit */
    unsigned reuse_time_ms;      /* smtp_connection_reuse_time_limit */
    unsigned reuse_count;        /* smtp_connection_reuse_count_limit (0 = none) */
    bool cache_on_demand;        /* smtp_connection_cache_on_demand */
    char **self_names;           /* $myhostname (lower case), for MX loops */
    size_t nself;
    char *queue_dir;             /* for relative lmtp unix: paths */
    int tls_level;               /* enum tls_level: smtp_tls_security_level */
    bool tls_wrapper;            /* smtp_tls_wrappermode */
    unsigned starttls_ms;        /* smtp_starttls_timeout */
};

extern struct smtp_conf smtp_conf;

/* A place to connect to. */
struct smtp_target {
    char *host;                  /* for logs and DSNs: "mx.venus.test", the
                                  * literal "10.0.0.2", or the socket path */
    struct sockaddr_storage sa;  /* AF_INET/AF_INET6 with the port set, or AF_UNIX */
    socklen_t salen;
    char addr[INET6_ADDRSTRLEN]; /* "10.0.0.2"; the path for AF_UNIX */
    unsigned port;               /* 0 for AF_UNIX */
};

/* smtp_target_relay - "host[addr]:port" ("host[path]" for AF_UNIX), appended */
void smtp_target_relay(const struct smtp_target *t, struct buf *out);

/*
 * One recipient of a transaction. The session fills in the result
 * fields; done = false after the transaction means "no answer for this
 * recipient from this session" (the caller tries it elsewhere or defers
 * it with the session's reason).
 */
struct smtp_rcpt {
    size_t idx;                  /* index in the request's rcpts */
    bool done;
    enum deliver_status st;
    char dsn[16];
    struct buf text;             /* log text: "250 2.0.0 Ok: queued as X",
                                  * "host mx[1.2.3.4] said: 550 5.1.1 ...
                                  * (in reply to RCPT TO command)" */
    struct buf diag;             /* the server's reply on one line (DSN
                                  * Diagnostic-Code), "" when none */
    bool relayed;                /* sent, with NOTIFY=SUCCESS asked, to a
                                  * server without DSN: "relayed" notice */
    bool try_next;               /* deferred by a 4xx or a failure: may be
                                  * tried at the next address */
};

struct smtp_xact {
    const struct deliver_request *req;
    const struct qfile *q;       /* open queue file (content) */
    struct smtp_rcpt **rcpts;    /* the recipients for this session */
    size_t n;
    long long conn_us;           /* when the session became ready (logs) */
};

struct smtp_sess;

/*
 * The state of a session after sess_open or sess_xact. On failure, dsn,
 * st and text say why (for every recipient not yet done):
 *   "connect to mx.venus.test[10.0.0.2]:25: Connection refused"
 *   "host mx[1.2.3.4] said: 421 4.3.2 Try later (in reply to EHLO command)"
 *   "conversation with mx[1.2.3.4] timed out while receiving the initial
 *    server greeting"
 *   "lost connection with mx[1.2.3.4] while sending message body"
 * reached: the server greeted us (counts against smtp_mx_session_limit).
 * stale: a reused session turned out to be closed before it said
 * anything: retry on a new connection, nothing was decided.
 */
struct sess_status {
    bool ok;
    bool reached;
    bool stale;
    enum deliver_status st;      /* DELIVER_DEFERRED or DELIVER_BOUNCED when !ok */
    char dsn[16];
    struct buf text;
    struct buf diag;             /* the server's reply when it gave one */
};

typedef void (*sess_fn)(struct smtp_sess *s, const struct sess_status *status, void *ctx);

/*
 * sess_open - connect to t (non-blocking), read the greeting, send
 * EHLO/LHLO (HELO when EHLO is refused with 5xx), STARTTLS and EHLO again
 * as smtp_tls_security_level says, AUTH when smtp_sasl_auth_enable; fn
 * runs once, from the event loop, with status->ok and the session ready
 * for sess_xact, or with !ok after the session was closed (do not use s
 * then). nexthop is the request's next hop as given ("[relay]:587"), and
 * domain its host or domain part: the SASL password keys and the names
 * that smtp_tls_secure_cert_match's "nexthop" means.
 */
struct smtp_sess *sess_open(const struct smtp_target *t, const char *nexthop,
                            const char *domain, sess_fn fn, void *ctx);
/* sess_authenticated - the session logged in with AUTH: reuse it only for
 * the same next hop */
bool sess_authenticated(const struct smtp_sess *s);
/*
 * sess_xact - one mail transaction: MAIL, RCPT for each recipient, DATA
 * (pipelined when offered), the content, the final reply (LMTP: one per
 * accepted recipient), and RSET when the transaction was cut short with
 * the session still sound. Every recipient gets done = true with a
 * result, except when the session failed before answering for it. fn
 * runs once; status->ok means the session is still usable (idle, back in
 * the ready state), otherwise it is closed.
 */
void sess_xact(struct smtp_sess *s, struct smtp_xact *x, sess_fn fn, void *ctx);
/* sess_quit - send QUIT (bounded by quit_ms), close, free; s is gone */
void sess_quit(struct smtp_sess *s);
/* sess_close - close at once without QUIT (errors, shutdown); s is gone */
void sess_close(struct smtp_sess *s);
/* sess_target - where s is connected */
const struct smtp_target *sess_target(const struct smtp_sess *s);
/* sess_features - the EHLO features of s */
const struct smtp_features *sess_features(const struct smtp_sess *s);
/* sess_watch_close - while idle in the cache: fn(ctx) when the server
 * closes or says something (the session is then closed and freed by the
 * session module before fn runs); NULL stops watching */
void sess_watch_close(struct smtp_sess *s, void (*fn)(void *ctx), void *ctx);
/* sess_count - transactions done on s (reuse limit) */
unsigned sess_count(const struct smtp_sess *s);
/* sess_started_ms - event_now() when s was opened (reuse time limit) */
unsigned long long sess_started_ms(const struct smtp_sess *s);

/*
 * smtp_tls_init - read smtp_tls_* and make the client TLS context;
 * smtp_sasl_init - read smtp_sasl_* and open the password tables. Both
 * run before privileges are dropped (CA files and password tables may be
 * readable by root only); bad settings are fatal.
 */
void smtp_tls_init(struct cfg *cfg);
void smtp_sasl_init(struct cfg *cfg);

/* smtp_status_init / smtp_status_free, smtp_rcpt_init / smtp_rcpt_free */
void smtp_status_init(struct sess_status *st);
void smtp_status_free(struct sess_status *st);
void smtp_rcpt_init(struct smtp_rcpt *r, size_t idx);
void smtp_rcpt_free(struct smtp_rcpt *r);

#endif
