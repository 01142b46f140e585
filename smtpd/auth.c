/*
 * auth.c - SMTP AUTH in smtpd (RFC 4954) over the SASL backends of mail/xsasl.h
 *
 * smtpd_sasl_auth_enable = yes opens the backend (smtpd_sasl_type cyrus
 * or dovecot, smtpd_sasl_path) before privileges are dropped. Each
 * session has a SASL session made with the security options that apply
 * to it: smtpd_sasl_security_options in plaintext (posta's default
 * "noanonymous, noplaintext": PLAIN and LOGIN are not offered before
 * TLS, unlike Postfix), smtpd_sasl_tls_security_options after STARTTLS
 * (default "noanonymous"). AUTH is not offered at all before TLS when
 * smtpd_tls_auth_only = yes or smtpd_tls_security_level = encrypt.
 *
 * The exchange: "AUTH MECH [initial-response]", then 334 challenges and
 * one response line each ("*" cancels: 501 5.0.0), ending in 235 2.7.0,
 * 535 5.7.8 (after smtpd_error_sleep_time, on a timer: other sessions go
 * on), or 454 4.7.0 when the backend is in trouble. Every backend step
 * is asynchronous (SW_AUTH): no command is read meanwhile.
 *
 * DIAGNOSTICS: a failure is logged exactly as Postfix logs it, so that
 * fail2ban's postfix filter (mode=auth) matches with syslog_name=postfix:
 * "warning: NAME[ADDR]: SASL PLAIN authentication failed: REASON".
 * A failed AUTH counts as an error for smtpd_soft_error_limit and
 * smtpd_hard_error_limit, so a client that keeps guessing is cut off.
 *
 * SECURITY: credentials are never logged; the reason logged is the
 * backend's and is reduced to the characters the log format expects.
 * A response line may be up to XSASL_DATA_MAX long, no more.
 */
#include "util/sys.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mail/config.h"
#include "mail/xsasl.h"
#include "util/alloc.h"
#include "util/log.h"

#include "smtpd.h"

#define AUTH_MECH_MAX 64    /* longest mechanism name we take */
#define AUTH_REASON_MAX 200 /* longest failure reason we log */

/* smtpd_sasl_pre_jail - open the backend while its files are readable */
void smtpd_sasl_pre_jail(struct cfg *cfg)
{
    char *err = NULL;

    if (!cfg_bool(cfg, "smtpd_sasl_auth_enable"))
        return;
    xsasl_configure(cfg_str(cfg, "cyrus_sasl_config_path"),
                    cfg_str(cfg, "smtpd_sasl_local_domain"));
    smtpd_conf.sasl_server = xsasl_server_open(
        cfg_str(cfg, "smtpd_sasl_type"), cfg_str(cfg, "smtpd_sasl_path"),
        cfg_str(cfg, "queue_directory"), cfg_str(cfg, "smtpd_sasl_service"), &err);
    if (smtpd_conf.sasl_server == NULL)
        msg_fatal("SASL per-process initialization failed: %s",
                  err ? err : "unknown error");
}

/* smtpd_sasl_post_jail - the settings of AUTH */
void smtpd_sasl_post_jail(struct cfg *cfg)
{
    static const char *const names[] = {"smtpd_sasl_security_options",
                                        "smtpd_sasl_tls_security_options"};
    char *err = NULL;

    for (size_t i = 0; smtpd_conf.sasl_server != NULL && i < POSTA_ARRAY_LEN(names); i++)
        if (!xsasl_check_options(cfg_str(cfg, names[i]), &err))
            msg_fatal("bad %s value: %s", names[i], err);
    smtpd_conf.sasl_opts = xstrdup(cfg_str(cfg, "smtpd_sasl_security_options"));
    smtpd_conf.sasl_tls_opts = xstrdup(cfg_str(cfg, "smtpd_sasl_tls_security_options"));
    smtpd_conf.sasl_auth_header = cfg_bool(cfg, "smtpd_sasl_authenticated_header");
    smtpd_conf.broken_sasl_clients = cfg_bool(cfg, "broken_sasl_auth_clients");
}

/* auth_session_new - (re)make the session's SASL session for its TLS state */
void auth_session_new(struct session *s)
{
    char remote[INET_ADDR_MAX + 8];

    if (smtpd_conf.sasl_server == NULL)
        return;
    auth_session_free(s);
    snprintf(remote, sizeof(remote), "%s;%s", s->addr, s->port);
    s->sasl = xsasl_sess_new(smtpd_conf.sasl_server,
                             s->tls_ready ? smtpd_conf.sasl_tls_opts : smtpd_conf.sasl_opts,
                             s->tls_ready, s->local, remote, s->addr);
}

/* auth_session_free - end the SASL session (a pending step is cancelled) */
void auth_session_free(struct session *s)
{
    if (s->sasl != NULL) {
        xsasl_sess_free(s->sasl);
        s->sasl = NULL;
    }
    s->auth_reading = false;
    s->wait &= ~SW_AUTH;
}

/* auth_mechs - the mechanisms EHLO offers now, NULL when AUTH is not offered */
const char *auth_mechs(struct session *s)
{
    const char *m;

    if (s->sasl == NULL || (smtpd_conf.tls_auth_only && !s->tls_ready))
        return NULL;
    m = xsasl_mechs(s->sasl);
    return m && *m ? m : NULL;
}

/* mech_offered - is mech (case-insensitive) in the list? */
static bool mech_offered(const char *list, const char *mech)
{
    size_t n = strlen(mech);

    for (const char *p = list; *p;) {
        size_t len = strcspn(p, " ");

        if (len == n && strncasecmp(p, mech, n) == 0)
            return true;
        p += len;
        p += strspn(p, " ");
    }
    return false;
}

/* log_reason - the backend's reason in the characters Postfix's log readers expect */
static void log_reason(const char *in, char *out, size_t size)
{
    size_t j = 0;

    if (in == NULL || *in == 0)
        in = "authentication failure";
    for (size_t i = 0; in[i] && j + 1 < size; i++) {
        unsigned char ch = (unsigned char)in[i];

        out[j++] =
            isalnum(ch) || ch == ' ' || ch == '+' || ch == '/' || ch == ':' || ch == '='
                ? (char)ch
                : ' ';
    }
    out[j] = 0;
}

/* auth_finish - the exchange ended with code: count it */
static void auth_finish(struct session *s, int code)
{
    s->auth_reading = false;
    session_count_verb(s, V_AUTH, code);
}

/* auth_done - the backend's answer to a start or a step */
static void auth_done(void *ctx, enum xsasl_status st, const char *data)
{
    struct session *s = ctx;
    char reason[AUTH_REASON_MAX];
    unsigned before = s->errors;

    s->wait &= ~SW_AUTH;
    switch (st) {
    case XSASL_CONTINUE:
        reply(s, 334, NULL, "%s", data ? data : "");
        s->auth_reading = true;
        break;
    case XSASL_OK:
        s->authenticated = true;
        free(s->sasl_username);
        s->sasl_username = xstrdup(data ? data : "");
        for (char *p = s->sasl_username; *p; p++)
            if ((unsigned char)*p < ' ' || *p == 0x7f)
                *p = '?';
        reply(s, 235, "2.7.0", "Authentication successful");
        auth_finish(s, 235);
        break;
    case XSASL_FAIL:
        log_reason(data, reason, sizeof(reason));
        msg_warn("%s[%s]: SASL %s authentication failed: %s", s->name, s->addr,
                 s->sasl_method, reason);
        reply(s, 535, "5.7.8", "Error: authentication failed: %s", reason);
        auth_finish(s, 535);
        session_check_errors(s, before);
        session_error_sleep(s); /* a timer: the other sessions go on */
        break;
    default:
        log_reason(data, reason, sizeof(reason));
        msg_warn("%s[%s]: SASL %s authentication aborted: %s", s->name, s->addr,
                 s->sasl_method, reason);
        reply(s, 454, "4.7.0", "Temporary authentication failure: %s", reason);
        auth_finish(s, 454);
        session_check_errors(s, before);
        break;
    }
    session_resume(s);
}

/* cmd_auth - AUTH mechanism [initial-response] */
int cmd_auth(struct session *s, const char *arg)
{
    char mech[AUTH_MECH_MAX + 1];
    const char *mechs, *initial;
    size_t n;

    if (s->sasl == NULL) {
        reply(s, 503, "5.5.1", "Error: authentication not enabled");
        return 503;
    }
    if (smtpd_tls_required(s)) {
        reply(s, 530, "5.7.0", "Must issue a STARTTLS command first");
        return 530;
    }
    mechs = auth_mechs(s);
    if (mechs == NULL) {
        reply(s, 503, "5.5.1", "Error: authentication not enabled");
        return 503;
    }
    if (s->helo == NULL) {
        reply(s, 503, "5.5.1", "Error: send HELO/EHLO first");
        return 503;
    }
    if (s->authenticated) {
        reply(s, 503, "5.5.1", "Error: already authenticated");
        return 503;
    }
    n = strcspn(arg, " ");
    if (n == 0) {
        reply(s, 501, "5.5.4", "Syntax: AUTH mechanism");
        return 501;
    }
    if (n > AUTH_MECH_MAX) {
        reply(s, 504, "5.5.4", "Unsupported authentication mechanism");
        return 504;
    }
    memcpy(mech, arg, n);
    mech[n] = 0;
    for (char *p = mech; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    if (!mech_offered(mechs, mech)) {
        reply(s, 504, "5.5.4", "Unsupported authentication mechanism");
        return 504;
    }
    initial = arg + n;
    initial += strspn(initial, " ");
    if (*initial == 0)
        initial = NULL;
    else if (strlen(initial) > XSASL_DATA_MAX) {
        reply(s, 500, "5.5.6", "Authentication exchange line is too long");
        return 500;
    }
    free(s->sasl_method);
    s->sasl_method = xstrdup(mech);
    s->wait |= SW_AUTH;
    xsasl_start(s->sasl, mech, initial, auth_done, s);
    return REPLY_LATER; /* auth_done counts the command */
}

/* auth_input - a line that answers a 334 challenge */
void auth_input(struct session *s, const char *line, bool too_long)
{
    s->auth_reading = false;
    if (too_long) {
        reply(s, 500, "5.5.6", "Authentication exchange line is too long");
        auth_finish(s, 500);
        auth_session_new(s); /* abandons the exchange */
        return;
    }
    if (strcmp(line, "*") == 0) {
        reply(s, 501, "5.0.0", "Authentication aborted");
        auth_finish(s, 501);
        auth_session_new(s);
        return;
    }
    s->wait |= SW_AUTH;
    xsasl_step(s->sasl, line, auth_done, s);
}
