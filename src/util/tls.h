/*
 * tls.h - TLS on OpenSSL 3 for event-driven servers and clients
 *
 * A struct tls_ctx holds the settings of one role (server or client);
 * a struct tls_conn wraps one non-blocking socket. Nothing here blocks
 * or waits: every call that would need the socket to be readable or
 * writable returns at once and says which (TLS_WANT_READ/TLS_WANT_WRITE),
 * so the caller puts the fd in its epoll set and calls again.
 *
 * SERVER: certificate and key files (or chain files: keys followed by
 * their certificate chains, several algorithms at once), protocols in
 * Postfix's syntax ("!SSLv2, !SSLv3, !TLSv1" or ">=TLSv1.2"), a cipher
 * grade ("medium" or "high"; aNULL, eNULL, EXPORT, RC4, 3DES, MD5 and
 * CBC suites are never offered), ECDHE and FFDHE key exchange only for
 * forward secrecy ("high") or preferred ("medium"), server cipher
 * preference. Session
 * resumption works across processes: RFC 5077 tickets (also TLS 1.3
 * tickets) are sealed with a key kept in a file that every process of
 * the service shares (tls_ctx_ticket_keys): created when missing, rotated
 * when older than its lifetime, the previous key still accepted.
 *
 * CLIENT: CAfile/CApath, SNI, levels may/encrypt/verify/secure, peer
 * name checks (X509_VERIFY_PARAM_set1_host) for verify/secure, and a
 * trust result Anonymous/Untrusted/Trusted/Verified as Postfix logs it.
 *
 * DIAGNOSTICS: errors come back as text (allocated *err, or
 * tls_conn_error()); OpenSSL's error queue is drained into that text so
 * it never leaks into a later, unrelated call.
 *
 * SECURITY: SSLv2/SSLv3 can never be enabled; renegotiation is refused
 * (TLS 1.2 client-initiated renegotiation is a denial-of-service vector);
 * compression is off (CRIME). The ticket key file is created mode 0600
 * with O_EXCL and renamed into place, never followed through a symlink.
 */
#ifndef POSTA_TLS_H
#define POSTA_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* what a non-blocking call needs before it can go on */
#define TLS_WANT_READ 1u
#define TLS_WANT_WRITE 2u

/* protocol bits for tls_parse_protocols */
#define TLS_PROTO_SSLv2 0x01u
#define TLS_PROTO_SSLv3 0x02u
#define TLS_PROTO_TLSv1 0x04u
#define TLS_PROTO_TLSv1_1 0x08u
#define TLS_PROTO_TLSv1_2 0x10u
#define TLS_PROTO_TLSv1_3 0x20u
#define TLS_PROTO_ALL 0x3fu

/* client security levels (smtp_tls_security_level) */
enum tls_level {
    TLS_LEVEL_NONE,
    TLS_LEVEL_MAY,     /* opportunistic: any certificate, fall back to plain */
    TLS_LEVEL_ENCRYPT, /* TLS required, any certificate */
    TLS_LEVEL_VERIFY,  /* trusted chain and matching name (MX names from DNS) */
    TLS_LEVEL_SECURE,  /* trusted chain and matching name (configured names) */
};

/* what is known about the peer, as Postfix's log words */
enum tls_trust {
    TLS_TRUST_ANONYMOUS, /* no certificate */
    TLS_TRUST_UNTRUSTED, /* a certificate that does not chain to a CA */
    TLS_TRUST_TRUSTED,   /* chains to a CA, name not checked or not matching */
    TLS_TRUST_VERIFIED,  /* chains to a CA and the name matches */
};

struct tls_ctx;
struct tls_conn;

struct tls_server_opts {
    const char *cert_file; /* PEM certificate (chain), or "" */
    const char *key_file;  /* PEM key, or "" for cert_file */
    char **chain_files;    /* key+chain files, instead of cert/key */
    size_t nchain_files;
    const char *CAfile, *CApath; /* for client certificates (may be "") */
    const char *protocols;       /* Postfix syntax, "" for all but SSL */
    const char *cipher_grade;    /* "medium" or "high" */
    long session_timeout;        /* seconds a ticket stays valid */
};

struct tls_client_opts {
    const char *cert_file, *key_file; /* optional client certificate */
    const char *CAfile, *CApath;      /* trust anchors; "" for none */
    const char *protocols;
    const char *cipher_grade;
};

/* tls_parse_protocols - Postfix protocol syntax to a TLS_PROTO_* mask; 0 with *why */
unsigned tls_parse_protocols(const char *spec, const char **why);
/* tls_cipher_list - the OpenSSL cipher string of a grade; NULL if unknown */
const char *tls_cipher_list(const char *grade);
/* tls_level_parse - "none", "may", "encrypt", "verify", "secure"; -1 if unknown */
int tls_level_parse(const char *text);
/* tls_trust_name - "Anonymous", "Untrusted", "Trusted", "Verified" */
const char *tls_trust_name(enum tls_trust t);

/* tls_server_ctx_new - a server context; NULL with *err (allocated) */
struct tls_ctx *tls_server_ctx_new(const struct tls_server_opts *o, char **err);
/* tls_client_ctx_new - a client context; NULL with *err (allocated) */
struct tls_ctx *tls_client_ctx_new(const struct tls_client_opts *o, char **err);
void tls_ctx_free(struct tls_ctx *c);

/*
 * tls_ctx_ticket_keys - share session ticket keys through the file name
 * in dir_fd (an open directory, so this works after chroot): read it,
 * create it when missing, rotate it when older than lifetime seconds.
 * Call once at start (as the user that owns the file) and then now and
 * then (tls_ctx_ticket_refresh). false with *err when the file cannot
 * be used: tickets then use a key of this process only.
 */
bool tls_ctx_ticket_keys(struct tls_ctx *c, int dir_fd, const char *name, long lifetime,
                         char **err);
/* tls_ctx_ticket_refresh - re-read or rotate the key file when due (cheap) */
void tls_ctx_ticket_refresh(struct tls_ctx *c);

/* tls_conn_server - wrap an accepted non-blocking socket */
struct tls_conn *tls_conn_server(struct tls_ctx *c, int fd);
/*
 * tls_conn_client - wrap a connected non-blocking socket; sni (or NULL)
 * is sent as server name; names (n of them) are the acceptable peer
 * names for verify/secure (a leading "." matches any subdomain; none:
 * sni must match).
 */
struct tls_conn *tls_conn_client(struct tls_ctx *c, int fd, const char *sni,
                                 enum tls_level level, const char *const *names, size_t n);
void tls_conn_free(struct tls_conn *t);

/*
 * tls_handshake - drive the handshake: 1 done, 0 call again when
 * tls_conn_want() allows, -1 failed (tls_conn_error() says why)
 */
int tls_handshake(struct tls_conn *t);
/*
 * tls_read/tls_write - like read(2)/write(2) on a non-blocking socket:
 * >0 bytes, 0 end of stream (read), -1 with errno EAGAIN (see
 * tls_conn_want: a read may need writability and the reverse) or
 * ECONNRESET/EPROTO (tls_conn_error). tls_write may write part of p.
 */
ssize_t tls_read(struct tls_conn *t, void *p, size_t n);
ssize_t tls_write(struct tls_conn *t, const void *p, size_t n);
/* tls_pending - bytes decrypted but not yet read (epoll cannot see them) */
size_t tls_pending(const struct tls_conn *t);
/* tls_conn_want - TLS_WANT_* of the last call that returned EAGAIN or 0 */
unsigned tls_conn_want(const struct tls_conn *t);
/* tls_shutdown - send close_notify, once, without waiting for the peer's */
void tls_shutdown(struct tls_conn *t);
/* tls_conn_error - why the last call failed ("" if it did not) */
const char *tls_conn_error(const struct tls_conn *t);

/* tls_summary - "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)" */
const char *tls_summary(const struct tls_conn *t);
/* tls_protocol/tls_cipher_name/tls_cipher_bits - the parts of the summary */
const char *tls_protocol(const struct tls_conn *t);
const char *tls_cipher_name(const struct tls_conn *t);
int tls_cipher_bits(const struct tls_conn *t, int *alg_bits);
/* tls_reused - was the session resumed? */
bool tls_reused(const struct tls_conn *t);
/* tls_peer_trust - what the peer's certificate (if any) proved */
enum tls_trust tls_peer_trust(const struct tls_conn *t);
/* tls_peer_cn - the peer certificate's subject CN ("" if none) */
const char *tls_peer_cn(const struct tls_conn *t);

/*
 * tls_session_save - (client) the session to resume later, serialised
 * into out (DER, e.g. for a session cache table); false if none yet.
 * tls_session_load - (client) offer a saved session; call before the
 * handshake; false if the bytes are not a session (ignored then).
 */
struct buf;
bool tls_session_save(const struct tls_conn *t, struct buf *out);
bool tls_session_load(struct tls_conn *t, const void *p, size_t n);

/*
 * tls_make_selfsigned - write a new EC P-256 key (mode 0600) and a
 * self-signed certificate for cn (valid days days, subjectAltName
 * DNS:cn) to key_path and crt_path; false with *err
 */
bool tls_make_selfsigned(const char *cn, const char *crt_path, const char *key_path,
                         int days, char **err);

#endif
