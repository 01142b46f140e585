/*
 * xsasl.h - SASL authentication for smtpd's AUTH command: Cyrus libsasl2
 * or Dovecot's authentication protocol, behind one interface
 *
 * smtpd_sasl_type = cyrus: libsasl2 server with smtpd_sasl_path as the
 * application name (it reads /etc/sasl2/NAME.conf or
 * /usr/lib/sasl2/NAME.conf: pwcheck_method sasldb/saslauthd,
 * mech_list, sasldb_path). libsasl2 is synchronous: a step runs inside
 * the call (sasldb is a local file; saslauthd a local socket).
 * smtpd_sasl_type = dovecot: the Unix socket at smtpd_sasl_path
 * (relative to queue_directory unless absolute, as Postfix), Dovecot's
 * auth protocol version 1 (VERSION, CPID, MECH lines, AUTH/CONT/OK/FAIL),
 * asynchronous through the event loop; one connection per smtpd process,
 * reconnected when it breaks, many sessions multiplexed by request ID.
 *
 * Mechanisms offered follow the security options (smtpd_sasl_security_
 * options without TLS, smtpd_sasl_tls_security_options with TLS):
 * noanonymous, noplaintext, noactive, nodictionary, mutual_auth,
 * forward_secrecy. PLAIN and LOGIN are plaintext.
 *
 * Data passed in and out is base64 as on the SMTP wire (RFC 4954):
 * challenges are base64, responses are base64 ("=" is an empty initial
 * response; "*" from the client cancels - smtpd handles "*" itself).
 *
 * DIAGNOSTICS: a backend that cannot be reached gives XSASL_TEMP (smtpd
 * answers 454 4.7.0 Temporary authentication failure); wrong credentials
 * XSASL_FAIL with the backend's reason for the log ("authentication
 * failure"); smtpd answers 535 5.7.8.
 * SECURITY: credentials are never logged; buffers holding them are
 * cleared before they are freed. Input from the client is bounded
 * (XSASL_DATA_MAX) and checked as base64 before it reaches a backend.
 */
#ifndef POSTA_XSASL_H
#define POSTA_XSASL_H

#include <stdbool.h>

#define XSASL_DATA_MAX 12288    /* base64 bytes of one client response */

struct xsasl_server;            /* one per smtpd process (the backend) */
struct xsasl_sess;              /* one per SMTP session */

enum xsasl_status {
    XSASL_CONTINUE,   /* data = base64 challenge to send as "334 data" */
    XSASL_OK,         /* data = authenticated user name */
    XSASL_FAIL,       /* data = reason for the log */
    XSASL_TEMP,       /* data = reason for the log */
};

typedef void (*xsasl_fn)(void *ctx, enum xsasl_status st, const char *data);

/*
 * xsasl_server_open - the backend: type "cyrus" or "dovecot", path
 * (smtpd_sasl_path), queue_dir (for relative Dovecot paths), service
 * ("smtp"). Call before privileges are dropped (Cyrus reads its config
 * and sasldb then; keep them readable to mail_owner or run smtpd
 * unprivileged with the right group). NULL with *err (allocated) when
 * the type is unknown or the backend cannot start.
 */
struct xsasl_server *xsasl_server_open(const char *type, const char *path, const char *queue_dir,
                                       const char *service, char **err);
/* xsasl_server_close - once every session of srv is freed */
void xsasl_server_close(struct xsasl_server *srv);

/*
 * xsasl_sess_new - a session for one client; security options as the
 * main.cf value for the current TLS state; local/remote "ip;port" for
 * Cyrus; client_addr for Dovecot's rip=. Call again (free + new) after
 * STARTTLS, as the options change.
 */
struct xsasl_sess *xsasl_sess_new(struct xsasl_server *srv, const char *security_options,
                                  bool tls_active, const char *local_ipport,
                                  const char *remote_ipport, const char *client_addr);
/* xsasl_mechs - "PLAIN LOGIN ..." allowed now; "" when none (do not offer AUTH) */
const char *xsasl_mechs(struct xsasl_sess *s);
/*
 * xsasl_start - begin mech with the optional initial response (base64,
 * "=" for empty, NULL for none); xsasl_step - the client's next
 * response. fn runs exactly once per call, never inside the call itself
 * (always from the event loop), and never after xsasl_sess_free.
 */
void xsasl_start(struct xsasl_sess *s, const char *mech, const char *initial, xsasl_fn fn,
                 void *ctx);
void xsasl_step(struct xsasl_sess *s, const char *response, xsasl_fn fn, void *ctx);
/* xsasl_sess_free - end (cancels a pending callback) */
void xsasl_sess_free(struct xsasl_sess *s);

/*
 * xsasl_configure - process-wide settings; call before xsasl_server_open:
 * cyrus_sasl_config_path (where libsasl2 looks for NAME.conf) and
 * smtpd_sasl_local_domain (the Cyrus user realm). NULL or "" for none.
 */
void xsasl_configure(const char *cyrus_config_path, const char *local_domain);
/*
 * xsasl_check_options - a smtpd_sasl_security_options value is valid;
 * false with *err (allocated) naming the unknown word. Check both option
 * settings at start: xsasl_sess_new ignores unknown words (with a warning).
 */
bool xsasl_check_options(const char *options, char **err);

#endif
