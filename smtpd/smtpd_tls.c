/*
 * smtpd_tls.c - TLS in smtpd: STARTTLS (RFC 3207) and implicit TLS (port 465)
 *
 * smtpd_tls_security_level: none (no TLS), may (STARTTLS offered), encrypt
 * (MAIL and AUTH refused with 530 until STARTTLS; this also implies
 * smtpd_tls_auth_only). The obsolete smtpd_use_tls/smtpd_enforce_tls are
 * honoured when the level is empty. smtpd_tls_wrappermode = yes speaks
 * TLS from the first byte: the handshake runs before the greeting.
 *
 * The certificate is smtpd_tls_cert_file/smtpd_tls_key_file, or
 * smtpd_tls_chain_files; with neither, the instance's self-signed one in
 * $config_directory/tls (posta-snakeoil.crt/.key, made by master) when it
 * exists. Protocols and ciphers: smtpd_tls_mandatory_protocols/_ciphers
 * at level encrypt, smtpd_tls_protocols/_ciphers otherwise.
 *
 * The handshake is driven by socket events (util/tls.h), bounded by
 * smtpd_starttls_timeout; a stalled client holds nothing but its own
 * session. Session tickets are sealed with a key shared by every smtpd
 * process through $data_directory/smtpd_tls_ticket.key (util/tls.c), so
 * a client resumes whichever process takes its next connection.
 *
 * DIAGNOSTICS: smtpd_tls_loglevel >= 1: "Anonymous TLS connection
 * established from NAME[ADDR]: TLSv1.3 with cipher ... (256/256 bits)";
 * a failed handshake: "SSL_accept error from NAME[ADDR]: reason", then
 * "lost connection after STARTTLS". A certificate that does not load is
 * fatal (a configuration error).
 *
 * SECURITY: everything the client sent after STARTTLS in plaintext is
 * thrown away (CVE-2011-0411), and after the handshake the session
 * forgets HELO/EHLO, AUTH and the envelope: the client starts over with
 * EHLO (RFC 3207 section 4.2). Keys are read before privileges are dropped.
 */
#include "util/sys.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "mail/config.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/tls.h"

#include "smtpd.h"

#define MS_PER_SEC 1000
#define TICKET_KEY_FILE "smtpd_tls_ticket.key"
#define TICKET_KEY_LIFETIME (24L * 60 * 60) /* rotate daily */
#define SNAKEOIL_DIR "tls"
#define SNAKEOIL_CRT "posta-snakeoil.crt"
#define SNAKEOIL_KEY "posta-snakeoil.key"

static int data_dir_fd = -1;

/* tls_io_read - read decrypted bytes */
static ssize_t tls_io_read(struct session *s, void *p, size_t n)
{
    return tls_read(s->tls, p, n);
}

/* tls_io_write - write bytes through TLS */
static ssize_t tls_io_write(struct session *s, const void *p, size_t n)
{
    return tls_write(s->tls, p, n);
}

static const struct session_io tls_io = {tls_io_read, tls_io_write};

/* tls_level - smtpd_tls_security_level, or the obsolete booleans */
static int tls_level(struct cfg *cfg)
{
    const char *v = cfg_str(cfg, "smtpd_tls_security_level");

    if (*v == 0) {
        if (cfg_bool(cfg, "smtpd_enforce_tls"))
            return SMTPD_TLS_ENCRYPT;
        return cfg_bool(cfg, "smtpd_use_tls") ? SMTPD_TLS_MAY : SMTPD_TLS_NONE;
    }
    if (strcasecmp(v, "none") == 0)
        return SMTPD_TLS_NONE;
    if (strcasecmp(v, "may") == 0)
        return SMTPD_TLS_MAY;
    if (strcasecmp(v, "encrypt") == 0)
        return SMTPD_TLS_ENCRYPT;
    msg_fatal("bad smtpd_tls_security_level value: \"%s\" (none, may or encrypt)", v);
}

/* snakeoil - the instance's self-signed certificate, if master made one */
static bool snakeoil(struct cfg *cfg, char **crt, char **key)
{
    const char *dir = cfg_str(cfg, "config_directory");
    struct stat st;

    *crt = xasprintf("%s/%s/%s", dir, SNAKEOIL_DIR, SNAKEOIL_CRT);
    *key = xasprintf("%s/%s/%s", dir, SNAKEOIL_DIR, SNAKEOIL_KEY);
    if (stat(*crt, &st) == 0 && stat(*key, &st) == 0)
        return true;
    free(*crt);
    free(*key);
    *crt = *key = NULL;
    return false;
}

/* smtpd_tls_pre_jail - build the server context while keys are readable */
void smtpd_tls_pre_jail(struct cfg *cfg)
{
    struct smtpd_conf *c = &smtpd_conf;
    struct tls_server_opts o;
    char *crt = NULL, *key = NULL, *err = NULL;
    const char *ddir;

    c->tls_level = tls_level(cfg);
    c->tls_wrapper = cfg_bool(cfg, "smtpd_tls_wrappermode");
    if (c->tls_wrapper)
        c->tls_level = SMTPD_TLS_ENCRYPT; /* port 465 is TLS or nothing */
    c->tls_auth_only =
        cfg_bool(cfg, "smtpd_tls_auth_only") || c->tls_level == SMTPD_TLS_ENCRYPT;
    c->tls_loglevel = (int)cfg_int(cfg, "smtpd_tls_loglevel");
    c->tls_received_header = cfg_bool(cfg, "smtpd_tls_received_header");
    c->starttls_timeout_ms = (uint64_t)cfg_time(cfg, "smtpd_starttls_timeout") * MS_PER_SEC;
    if (c->tls_level == SMTPD_TLS_NONE)
        return;

    memset(&o, 0, sizeof(o));
    o.cert_file = cfg_str(cfg, "smtpd_tls_cert_file");
    o.key_file = cfg_str(cfg, "smtpd_tls_key_file");
    o.chain_files = cfg_list(cfg, "smtpd_tls_chain_files", &o.nchain_files);
    if (o.nchain_files == 0 && *o.cert_file == 0) {
        if (!snakeoil(cfg, &crt, &key)) {
            if (c->tls_level == SMTPD_TLS_MAY) {
                msg_warn("smtpd_tls_security_level = may, but no smtpd_tls_cert_file or "
                         "smtpd_tls_chain_files: STARTTLS is not offered");
                c->tls_level = SMTPD_TLS_NONE;
                c->tls_auth_only = cfg_bool(cfg, "smtpd_tls_auth_only");
                cfg_list_free(o.chain_files, o.nchain_files);
                return;
            }
            msg_fatal("TLS is required (smtpd_tls_security_level = encrypt or "
                      "smtpd_tls_wrappermode = yes) but no certificate is configured "
                      "(smtpd_tls_cert_file, smtpd_tls_chain_files)");
        }
        o.cert_file = crt;
        o.key_file = key;
    }
    o.CAfile = cfg_str(cfg, "smtpd_tls_CAfile");
    o.CApath = cfg_str(cfg, "smtpd_tls_CApath");
    if (c->tls_level == SMTPD_TLS_ENCRYPT) {
        o.protocols = cfg_str(cfg, "smtpd_tls_mandatory_protocols");
        o.cipher_grade = cfg_str(cfg, "smtpd_tls_mandatory_ciphers");
    } else {
        o.protocols = cfg_str(cfg, "smtpd_tls_protocols");
        o.cipher_grade = cfg_str(cfg, "smtpd_tls_ciphers");
    }
    o.session_timeout = (long)cfg_time(cfg, "smtpd_tls_session_cache_timeout");
    c->tls_ctx = tls_server_ctx_new(&o, &err);
    if (c->tls_ctx == NULL)
        msg_fatal("TLS: %s", err);
    cfg_list_free(o.chain_files, o.nchain_files);
    free(crt);
    free(key);

    /* kept open: it is reachable after chroot too */
    ddir = cfg_str(cfg, "data_directory");
    data_dir_fd = open(ddir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (data_dir_fd < 0)
        msg_warn(
            "open data_directory %s: %m; TLS sessions resume only with the same process",
            ddir);
}

/* smtpd_tls_post_jail - the shared session ticket keys, as mail_owner */
void smtpd_tls_post_jail(struct cfg *cfg)
{
    char *err = NULL;

    (void)cfg;
    if (smtpd_conf.tls_ctx == NULL || data_dir_fd < 0)
        return;
    if (!tls_ctx_ticket_keys(smtpd_conf.tls_ctx, data_dir_fd, TICKET_KEY_FILE,
                             TICKET_KEY_LIFETIME, &err)) {
        msg_warn("TLS session ticket keys in data_directory: %s; "
                 "sessions resume only with the same process",
                 err);
        free(err);
    }
    (void)close(data_dir_fd);
    data_dir_fd = -1;
}

/* smtpd_tls_offered - say STARTTLS in EHLO? */
bool smtpd_tls_offered(const struct session *s)
{
    return smtpd_conf.tls_ctx != NULL && !smtpd_conf.tls_wrapper && s->tls == NULL;
}

/* smtpd_tls_required - level encrypt and the session is still plaintext */
bool smtpd_tls_required(const struct session *s)
{
    return smtpd_conf.tls_level == SMTPD_TLS_ENCRYPT && !s->tls_ready;
}

/* cmd_starttls - STARTTLS: 220, then the handshake; pipelined input is dropped */
int cmd_starttls(struct session *s, const char *arg)
{
    if (*arg) {
        reply(s, 501, "5.5.4", "Syntax: STARTTLS");
        return 501;
    }
    if (s->tls != NULL) {
        reply(s, 554, "5.5.1", "Error: TLS already active");
        return 554;
    }
    if (!smtpd_tls_offered(s)) {
        reply(s, 502, "5.5.1", "Error: command not implemented");
        return 502;
    }
    reply(s, 220, "2.0.0", "Ready to start TLS");
    /*
     * Whatever the client pipelined after STARTTLS was sent in plaintext
     * and must not be taken as sent over TLS (CVE-2011-0411): forget it.
     * Nothing more is read until the handshake (SW_TLS).
     */
    s->in_pos = s->in.len;
    s->wait |= SW_TLS;
    return 220;
}

/* smtpd_tls_begin - wrap the socket and start the handshake */
void smtpd_tls_begin(struct session *s)
{
    s->tls = tls_conn_server(smtpd_conf.tls_ctx, s->fd);
    if (s->tls == NULL) {
        msg_warn("cannot start TLS with %s[%s]: out of resources", s->name, s->addr);
        session_kill(s, "lost connection");
        return;
    }
    s->tls_ready = false;
    event_timer_arm(&s->idle_timer, smtpd_conf.starttls_timeout_ms);
    smtpd_tls_event(s);
}

/* tls_established - log, switch the I/O, forget the plaintext session state */
static void tls_established(struct session *s)
{
    s->tls_ready = true;
    s->io = &tls_io;
    s->wait &= ~SW_TLS;
    event_timer_arm(&s->idle_timer, smtpd_conf.timeout_ms);
    if (smtpd_conf.tls_loglevel >= 1)
        msg_info("%s TLS connection established from %s[%s]: %s",
                 tls_trust_name(tls_peer_trust(s->tls)), s->name, s->addr,
                 tls_summary(s->tls));
    if (smtpd_conf.tls_loglevel >= 2 && tls_reused(s->tls))
        msg_info("%s[%s]: Reusing old session", s->name, s->addr);
    /* RFC 3207 4.2: nothing learned in plaintext survives */
    session_reset_transaction(s);
    free(s->helo);
    s->helo = NULL;
    s->esmtp = false;
    s->authenticated = false;
    free(s->sasl_username);
    s->sasl_username = NULL;
    if (s->state != SS_LOOKUP) {
        s->state = SS_CONNECT;
        auth_session_new(s); /* the TLS security options apply now */
    }
}

/* smtpd_tls_event - the socket is ready during the handshake */
void smtpd_tls_event(struct session *s)
{
    int r = tls_handshake(s->tls);

    if (r == 0)
        return; /* session_update_events waits for what it wants */
    if (r < 0) {
        msg_info("SSL_accept error from %s[%s]: %s", s->name, s->addr,
                 tls_conn_error(s->tls));
        session_kill(s, "lost connection");
        return;
    }
    tls_established(s);
}

/* smtpd_tls_timeout - smtpd_starttls_timeout during the handshake */
void smtpd_tls_timeout(struct session *s)
{
    msg_info("SSL_accept error from %s[%s]: timeout", s->name, s->addr);
    session_kill(s, "timeout");
}

/* smtpd_tls_end - say close_notify when the session ends cleanly, free */
void smtpd_tls_end(struct session *s)
{
    if (s->tls == NULL)
        return;
    if (s->tls_ready && s->closing)
        tls_shutdown(s->tls);
    tls_conn_free(s->tls);
    s->tls = NULL;
    s->tls_ready = false;
}
