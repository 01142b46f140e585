/*
 * xsasl_impl.h - internals shared by xsasl.c and its backends
 *
 * xsasl.c owns what every backend needs: the session object with its
 * one pending callback (delivered from a zero timer, so a result never
 * reaches the caller inside xsasl_start/xsasl_step and can be cancelled
 * by xsasl_sess_free), the security options, the mechanism properties
 * and the base64 helpers. A backend fills in struct xsasl_ops.
 *
 * The Dovecot protocol pieces (line parser, escaping) are pure functions
 * declared here so that the unit test and the fuzz target reach them.
 */
#ifndef POSTA_XSASL_IMPL_H
#define POSTA_XSASL_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "mail/xsasl.h"
#include "util/buf.h"
#include "util/event.h"

/* Security properties of a mechanism, and options that refuse them. */
enum {
    XSASL_SEC_ANONYMOUS = 1u << 0,       /* mech: anonymous login */
    XSASL_SEC_PLAINTEXT = 1u << 1,       /* mech: password in the clear */
    XSASL_SEC_ACTIVE = 1u << 2,          /* mech: open to active attacks */
    XSASL_SEC_DICTIONARY = 1u << 3,      /* mech: open to dictionary attacks */
    XSASL_SEC_FORWARD_SECRECY = 1u << 4, /* mech: has forward secrecy */
    XSASL_SEC_MUTUAL_AUTH = 1u << 5,     /* mech: authenticates the server */
    XSASL_SEC_PRIVATE = 1u << 6,         /* mech: never advertised (Dovecot) */
};

/* struct xsasl_mech - one mechanism the backend offers */
struct xsasl_mech {
    char *name;
    unsigned props; /* XSASL_SEC_* that describe the mechanism */
};

/* Refusals parsed from smtpd_sasl_security_options (xsasl_parse_options). */
struct xsasl_opts {
    bool noanonymous, noplaintext, noactive, nodictionary;
    bool forward_secrecy, mutual_auth; /* required properties */
};

/* struct xsasl_ops - one backend */
struct xsasl_ops {
    const char *type;
    /* open - fill srv->impl; 0, or -1 with *err */
    int (*open)(struct xsasl_server *srv, char **err);
    void (*close)(struct xsasl_server *srv);
    /* sess_init - fill s->impl; mechanisms go to s->mechs through xsasl_mechs_set */
    void (*sess_init)(struct xsasl_sess *s);
    /* mechs - refresh the session's mechanism list (may use a cache) */
    void (*mechs)(struct xsasl_sess *s);
    /* start/step - the input is checked base64 (or NULL); end with xsasl_finish */
    void (*start)(struct xsasl_sess *s, const char *mech, const char *initial);
    void (*step)(struct xsasl_sess *s, const char *response);
    /* cancel - forget an outstanding request (session freed) */
    void (*sess_done)(struct xsasl_sess *s);
};

struct xsasl_server {
    const struct xsasl_ops *ops;
    char *path; /* smtpd_sasl_path */
    char *queue_dir;
    char *service;
    void *impl;
};

struct xsasl_sess {
    struct xsasl_server *srv;
    struct xsasl_opts opts;
    bool tls_active;
    char *local_ip, *local_port; /* from "ip;port" ("" when unknown) */
    char *remote_ip, *remote_port;
    char *local_ipport, *remote_ipport;
    char *client_addr;
    struct buf mechs; /* "PLAIN LOGIN", what xsasl_mechs returns */
    char *mech;       /* mechanism in progress (upper case) */
    /* the one callback of the current call */
    bool busy; /* a start/step awaits its result */
    bool result_ready;
    xsasl_fn fn;
    void *ctx;
    enum xsasl_status result;
    struct buf data;            /* the result text (wiped) */
    struct event_timer deliver; /* zero timer that runs fn */
    void *impl;
};

/* Process-wide settings from xsasl_configure(). */
extern char *xsasl_cyrus_config_path;
extern char *xsasl_local_domain;

/* xsasl_finish - the result of the current call; fn runs from the event loop */
void xsasl_finish(struct xsasl_sess *s, enum xsasl_status st, const char *data);
/* xsasl_mech_props - properties of a well-known mechanism; false if unknown */
bool xsasl_mech_props(const char *name, unsigned *props);
/* xsasl_mech_allowed - props acceptable under opts */
bool xsasl_mech_allowed(unsigned props, const struct xsasl_opts *opts);
/* xsasl_mechs_filter - the allowed names of list[n], space separated, into out */
void xsasl_mechs_filter(const struct xsasl_mech *list, size_t n,
                        const struct xsasl_opts *opts, struct buf *out);
/* xsasl_mechs_add - append {name (taken over), props} to the array *list of *n */
void xsasl_mechs_add(struct xsasl_mech **list, size_t *n, char *name, unsigned props);
/* xsasl_mechs_free - release an array of n mechanisms and their names */
void xsasl_mechs_free(struct xsasl_mech *list, size_t n);
/* xsasl_mech_in_list - name (any case) is a word of the space-separated list */
bool xsasl_mech_in_list(const char *list, const char *name);

/* base64 as RFC 4648 with padding; "" is valid (empty) */
bool xsasl_base64_valid(const char *s, size_t len);
/* xsasl_base64_decode - append the bytes of s to out; -1 if invalid or too long */
int xsasl_base64_decode(const char *s, size_t len, struct buf *out);
int xsasl_base64_encode(const void *p, size_t n, struct buf *out);
/* xsasl_wipe - clear and free a buffer that may hold a credential */
void xsasl_wipe(struct buf *b);

/* ---- Dovecot auth protocol 1.x: pure pieces (xsasl_dovecot.c) ---- */

#define XSASL_DC_LINE_MAX 65536 /* longest line accepted from the server */

enum xsasl_dc_kind {
    XSASL_DC_UNKNOWN, /* a command this client does not know: ignored */
    XSASL_DC_VERSION,
    XSASL_DC_MECH,
    XSASL_DC_SPID,
    XSASL_DC_CUID,
    XSASL_DC_COOKIE,
    XSASL_DC_DONE,
    XSASL_DC_OK,
    XSASL_DC_CONT,
    XSASL_DC_FAIL,
};

/* struct xsasl_dc_reply - one parsed server line (strings owned) */
struct xsasl_dc_reply {
    enum xsasl_dc_kind kind;
    unsigned long major, minor; /* VERSION */
    unsigned long id;           /* OK, CONT, FAIL */
    char *mech;                 /* MECH name */
    unsigned props;             /* MECH flags as XSASL_SEC_* */
    char *user;                 /* OK, FAIL: user= */
    char *data;                 /* CONT: base64; OK: resp= (success data) */
    char *reason;               /* FAIL: reason= */
    bool temp;                  /* FAIL: temp or code=temp_fail */
};

/*
 * xsasl_dc_parse - one line (without its LF) into r; 0, or -1 with *err
 * (static text) when the line is malformed. Free r with xsasl_dc_free.
 */
int xsasl_dc_parse(const char *line, size_t len, struct xsasl_dc_reply *r,
                   const char **err);
void xsasl_dc_free(struct xsasl_dc_reply *r);
/* xsasl_dc_escape - append s with Dovecot's tab escapes (\001 1, \001 t, \001 r, \001 n) */
int xsasl_dc_escape(struct buf *out, const char *s);
/* xsasl_dc_unescape - decode the escapes of s[len] into out; -1 if malformed */
int xsasl_dc_unescape(const char *s, size_t len, struct buf *out);

/*
 * xsasl_dc_auth_line - the AUTH request line (with LF) for a session;
 * initial as from smtpd ("=" is empty, NULL none).
 */
int xsasl_dc_auth_line(struct buf *out, unsigned long id, const char *mech,
                       const char *service, const char *local_ip, const char *local_port,
                       const char *remote_ip, const char *remote_port, bool secured,
                       const char *initial);

/* Test hooks: shorter timeouts (ms) for the unit test. */
void xsasl_dovecot_set_timeouts(unsigned handshake_ms, unsigned request_ms,
                                unsigned retry_ms);

extern const struct xsasl_ops xsasl_cyrus_ops;
extern const struct xsasl_ops xsasl_dovecot_ops;

#endif
