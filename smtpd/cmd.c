/*
 * cmd.c - smtpd's envelope commands: HELO EHLO MAIL RCPT RSET NOOP VRFY HELP QUIT
 *
 * Each handler checks its argument, changes the session state, appends
 * its reply (code, enhanced status code, text) and returns the code.
 * Which states allow a command is in the verb table (session.c); the
 * finer sequence rules (HELO required, need MAIL, need RCPT) are here.
 *
 * DIAGNOSTICS: recipient rejections are logged as Postfix logs them:
 * "NOQUEUE: reject: RCPT from NAME[ADDR]: 554 5.7.1 <x@y>: Relay access
 * denied; from=<s> to=<x@y> proto=ESMTP helo=<h>".
 *
 * SECURITY: addresses and parameters are parsed by mail/addr.c and
 * mail/smtpcmd.c with their length limits; nothing from the client is
 * logged or echoed without the reply/log layers' control-character
 * replacement.
 */
#include "util/sys.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/statvfs.h>

#include "mail/addr.h"
#include "mail/qfile.h"
#include "mail/smtpcmd.h"
#include "util/alloc.h"
#include "util/log.h"

#include "mailauth.h"
#include "policy.h"
#include "smtpd.h"

#define EHLO_MAX_KEYWORDS 16
#define QUEUE_SPACE_RECHECK_MS 1000   /* queue_minfree: how often free space is looked at */

/* helo_common - HELO and EHLO: remember the name, reset the transaction */
static bool helo_common(struct session *s, const char *verb, const char *arg)
{
    if (*arg == 0) {
        reply(s, 501, "5.5.4", "Syntax: %s hostname", verb);
        return false;
    }
    session_reset_transaction(s);
    free(s->helo);
    s->helo = xstrdup(arg);
    /* it goes into headers and logs: one line of printable text */
    for (char *p = s->helo; *p; p++)
        if ((unsigned char)*p < ' ' || *p == 0x7f)
            *p = '?';
    s->state = SS_IDLE;
    return true;
}

/* cmd_helo - HELO name */
int cmd_helo(struct session *s, const char *arg)
{
    int code = policy_helo(s, "HELO", arg, cmd_helo);

    if (code != 0)
        return code == POLICY_LATER ? REPLY_LATER : code;
    if (!helo_common(s, "HELO", arg))
        return 501;
    s->esmtp = false;
    reply(s, 250, NULL, "%s", smtpd_conf.myhostname);
    return 250;
}

/* ehlo_discarded - is this EHLO keyword in smtpd_discard_ehlo_keywords? */
static bool ehlo_discarded(const char *kw)
{
    for (size_t i = 0; i < smtpd_conf.ndiscard_ehlo; i++)
        if (strcasecmp(smtpd_conf.discard_ehlo[i], kw) == 0)
            return true;
    return false;
}

/* cmd_ehlo - EHLO name: the extensions we offer */
int cmd_ehlo(struct session *s, const char *arg)
{
    char size_kw[32];
    const char *kw[EHLO_MAX_KEYWORDS];
    struct buf auth_kw = BUF_INIT, auth_old = BUF_INIT;
    const char *mechs;
    size_t n = 0;

    int code = policy_helo(s, "EHLO", arg, cmd_ehlo);

    if (code != 0)
        return code == POLICY_LATER ? REPLY_LATER : code;
    if (!helo_common(s, "EHLO", arg))
        return 501;
    s->esmtp = true;
    if (!ehlo_discarded("PIPELINING"))
        kw[n++] = "PIPELINING";
    if (!ehlo_discarded("SIZE")) {
        if (smtpd_conf.size_limit > 0)
            snprintf(size_kw, sizeof(size_kw), "SIZE %llu",
                     (unsigned long long)smtpd_conf.size_limit);
        else
            snprintf(size_kw, sizeof(size_kw), "SIZE");
        kw[n++] = size_kw;
    }
    if (!smtpd_conf.disable_vrfy && !ehlo_discarded("VRFY"))
        kw[n++] = "VRFY";
    if (smtpd_tls_offered(s) && !ehlo_discarded("STARTTLS"))
        kw[n++] = "STARTTLS";
    if ((mechs = auth_mechs(s)) != NULL && !ehlo_discarded("AUTH")) {
        (void)buf_printf(&auth_kw, "AUTH %s", mechs);
        kw[n++] = buf_str(&auth_kw);
        if (smtpd_conf.broken_sasl_clients) {
            (void)buf_printf(&auth_old, "AUTH=%s", mechs);
            kw[n++] = buf_str(&auth_old);
        }
    }
    if (!ehlo_discarded("ENHANCEDSTATUSCODES"))
        kw[n++] = "ENHANCEDSTATUSCODES";
    if (!ehlo_discarded("8BITMIME"))
        kw[n++] = "8BITMIME";
    if (!ehlo_discarded("DSN"))
        kw[n++] = "DSN";
    if (smtpd_conf.smtputf8 && !ehlo_discarded("SMTPUTF8"))
        kw[n++] = "SMTPUTF8";
    if (!ehlo_discarded("CHUNKING"))
        kw[n++] = "CHUNKING";
    (void)buf_printf(&s->out, "250%c%s\r\n", n ? '-' : ' ', smtpd_conf.myhostname);
    for (size_t i = 0; i < n; i++)
        (void)buf_printf(&s->out, "250%c%s\r\n", i + 1 < n ? '-' : ' ', kw[i]);
    buf_free(&auth_kw);
    buf_free(&auth_old);
    return 250;
}

/* path_arg - "FROM:" / "TO:" prefix check; returns the path text or NULL */
static const char *path_arg(const char *arg, const char *prefix)
{
    size_t n = strlen(prefix);

    if (strncasecmp(arg, prefix, n) != 0)
        return NULL;
    arg += n;
    while (*arg == ' ')
        arg++;
    return arg;
}

/* addr_flags - addr_parse_path flags from the settings */
static unsigned addr_flags(void)
{
    return (smtpd_conf.strict_envelopes ? 0 : ADDR_LAX) | (smtpd_conf.smtputf8 ? ADDR_UTF8 : 0);
}

/* mail_param - one MAIL FROM parameter; 0 or the code of the reply sent */
static int mail_param(struct session *s, const struct smtp_param *p, bool *utf8)
{
    const char *v = p->value;

    if (strcmp(p->key, "SIZE") == 0) {
        char *end;
        unsigned long long n;

        if (v == NULL || *v < '0' || *v > '9')
            goto bad_size;
        errno = 0;
        n = strtoull(v, &end, 10);
        if (*end || errno == ERANGE)
            goto bad_size;
        if (smtpd_conf.size_limit > 0 && n > smtpd_conf.size_limit) {
            reply(s, 552, "5.3.4", "Message size exceeds fixed limit");
            return 552;
        }
        s->decl_size = n > (unsigned long long)INT64_MAX ? INT64_MAX : (long long)n;
        return 0;
bad_size:
        reply(s, 501, "5.5.4", "Bad message size syntax");
        return 501;
    }
    if (strcmp(p->key, "BODY") == 0) {
        if (v && strcasecmp(v, "7BIT") == 0) {
            s->body = "7bit";
        } else if (v && strcasecmp(v, "8BITMIME") == 0) {
            s->body = "8bitmime";
        } else if (v && strcasecmp(v, "BINARYMIME") == 0) {
            reply(s, 555, "5.5.4", "Unsupported option: BODY=BINARYMIME");
            return 555;
        } else {
            reply(s, 501, "5.5.4", "Bad BODY keyword syntax");
            return 501;
        }
        return 0;
    }
    if (strcmp(p->key, "SMTPUTF8") == 0 && smtpd_conf.smtputf8) {
        if (v != NULL) {
            reply(s, 501, "5.5.4", "Bad SMTPUTF8 parameter syntax");
            return 501;
        }
        *utf8 = true;
        return 0;
    }
    if (strcmp(p->key, "RET") == 0) {
        if (v && strcasecmp(v, "FULL") == 0) {
            s->ret = "FULL";
        } else if (v && strcasecmp(v, "HDRS") == 0) {
            s->ret = "HDRS";
        } else {
            reply(s, 501, "5.5.4", "Bad RET parameter syntax");
            return 501;
        }
        return 0;
    }
    if (strcmp(p->key, "AUTH") == 0 && smtpd_conf.sasl_server != NULL) {
        /* RFC 4954 5: AUTH=<> or an xtext mailbox; posta keeps no use for it */
        char *d = v ? xtext_decode(v) : NULL;

        if (d == NULL || *d == 0) {
            free(d);
            reply(s, 501, "5.5.4", "Bad AUTH parameter syntax");
            return 501;
        }
        free(d);
        return 0;
    }
    if (strcmp(p->key, "ENVID") == 0) {
        char *d = v ? xtext_decode(v) : NULL;

        if (d == NULL || *d == 0) {
            free(d);
            reply(s, 501, "5.5.4", "Bad ENVID parameter syntax");
            return 501;
        }
        free(s->envid);
        s->envid = d;
        return 0;
    }
    reply(s, 555, "5.5.4", "Unsupported option: %s", p->key);
    return 555;
}

/* addr_error - reply to an address that did not parse */
static int addr_error(struct session *s, enum addr_status st, bool sender)
{
    if (st == ADDR_ERR_UTF8) {
        reply(s, 553, "5.6.7", "Must declare SMTPUTF8 to send unicode address");
        return 553;
    }
    if (sender)
        reply(s, 501, "5.1.7", "Bad sender address syntax");
    else
        reply(s, 501, "5.1.3", "Bad recipient address syntax");
    return 501;
}

/*
 * queue_space_ok - room in the queue file system for this message: at
 * least max(queue_minfree, 1.5 x message_size_limit) free beyond the
 * declared SIZE, as Postfix's smtpd asks (else 452 4.3.1)
 */
static bool queue_space_ok(const struct session *s)
{
    static uint64_t checked_at;         /* event_now() of the last statvfs */
    static unsigned long long avail;    /* free bytes it found */
    static bool known;
    unsigned long long need = smtpd_conf.queue_minfree;
    unsigned long long by_limit = smtpd_conf.size_limit + smtpd_conf.size_limit / 2;
    struct statvfs fs;

    if (by_limit > need)
        need = by_limit;
    /* free space moves slowly: one statvfs per QUEUE_SPACE_RECHECK_MS, not per MAIL */
    if (!known || event_now() - checked_at >= QUEUE_SPACE_RECHECK_MS) {
        if (fstatvfs(smtpd_conf.incoming_fd, &fs) < 0) {
            msg_warn("statvfs of the queue: %m");
            return true;    /* the write path still catches a full disk (452) */
        }
        avail = (unsigned long long)fs.f_bavail * fs.f_frsize;
        checked_at = event_now();
        known = true;
    }
    if (s->decl_size > 0)
        need += (unsigned long long)s->decl_size;
    if (avail >= need)
        return true;
    msg_warn("not enough free space in mail queue: %llu bytes < %llu (queue_minfree, 1.5 x "
             "message_size_limit and the declared size)", avail, need);
    return false;
}

/* cmd_mail - MAIL FROM:<path> [params] */
int cmd_mail(struct session *s, const char *arg)
{
    const char *path = path_arg(arg, "FROM:");
    struct smtp_params prm;
    struct addr a;
    const char *why = NULL;
    size_t end = 0;
    bool utf8 = false;
    enum addr_status st;
    int code = 0;

    if (smtpd_tls_required(s)) {
        reply(s, 530, "5.7.0", "Must issue a STARTTLS command first");
        return 530;
    }
    if (smtpd_conf.helo_required && s->helo == NULL) {
        reply(s, 503, "5.5.1", "Error: send HELO/EHLO first");
        return 503;
    }
    if (path == NULL || *path == 0) {
        reply(s, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
        return 501;
    }
    if (!policy_resuming(s) && smtpd_rate_exceeded(s, CR_MAIL)) {
        reply(s, 450, "4.7.1", "Error: too much mail from %s", s->addr);
        return 450;
    }
    st = addr_parse_path(path, strlen(path), ADDR_ALLOW_NULL | addr_flags(), &a, &end, &why);
    if (st != ADDR_OK)
        return addr_error(s, st, true);
    if (!smtpcmd_params(path + end, smtpd_conf.smtputf8, &prm, &why)) {
        addr_free(&a);
        reply(s, 501, "5.5.4", "Bad parameter syntax: %s", why ? why : "error");
        return 501;
    }
    for (size_t i = 0; i < prm.n && code == 0; i++)
        code = mail_param(s, &prm.p[i], &utf8);
    smtpcmd_params_free(&prm);
    if (code == 0 && a.has_8bit && !utf8)
        code = addr_error(s, ADDR_ERR_UTF8, true);
    if (code == 0 && !queue_space_ok(s)) {
        reply(s, 452, "4.3.1", "Insufficient system storage");
        code = 452;
    }
    if (code == 0)
        code = policy_mail(s, a.addr, arg, cmd_mail);
    if (code != 0) {
        addr_free(&a);
        s->body = NULL;
        s->ret = NULL;
        free(s->envid);
        s->envid = NULL;
        s->decl_size = -1;
        return code == POLICY_LATER ? REPLY_LATER : code;
    }
    s->smtputf8 = utf8;
    s->sender = xstrdup(a.addr);
    addr_free(&a);
    qid_new(s->qid);
    s->state = SS_MAIL;
    if ((code = mailauth_mail(s)) != 0)     /* SPF decides (spf_fail_action = reject) */
        return code == MAILAUTH_LATER ? REPLY_LATER : code;
    reply(s, 250, "2.1.0", "Ok");
    return 250;
}

/* parse_notify - NOTIFY=NEVER | SUCCESS,FAILURE,DELAY; 0 if malformed */
static unsigned parse_notify(const char *v)
{
    unsigned bits = 0;

    if (v == NULL || *v == 0)
        return 0;
    while (*v) {
        size_t n = strcspn(v, ",");
        unsigned bit;

        if (n == 5 && strncasecmp(v, "NEVER", n) == 0)
            bit = QNOTIFY_NEVER;
        else if (n == 7 && strncasecmp(v, "SUCCESS", n) == 0)
            bit = QNOTIFY_SUCCESS;
        else if (n == 7 && strncasecmp(v, "FAILURE", n) == 0)
            bit = QNOTIFY_FAILURE;
        else if (n == 5 && strncasecmp(v, "DELAY", n) == 0)
            bit = QNOTIFY_DELAY;
        else
            return 0;
        if (bits & bit)
            return 0;
        bits |= bit;
        v += n;
        if (*v == ',' && *++v == 0)
            return 0;
    }
    if ((bits & QNOTIFY_NEVER) && bits != QNOTIFY_NEVER)
        return 0;
    return bits;
}

/* parse_orcpt - ORCPT=addr-type;xtext -> "addr-type;decoded", NULL if malformed */
static char *parse_orcpt(const char *v)
{
    const char *semi = v ? strchr(v, ';') : NULL;
    char *dec, *out;

    if (semi == NULL || semi == v)
        return NULL;
    for (const char *t = v; t < semi; t++)
        if (!((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') || (*t >= '0' && *t <= '9')
              || *t == '-'))
            return NULL;
    dec = xtext_decode(semi + 1);
    if (dec == NULL || *dec == 0) {
        free(dec);
        return NULL;
    }
    out = xasprintf("%.*s;%s", (int)(semi - v), v, dec);
    free(dec);
    return out;
}

/* cmd_rcpt - RCPT TO:<path> [params] */
int cmd_rcpt(struct session *s, const char *arg)
{
    const char *path = path_arg(arg, "TO:");
    struct smtp_params prm;
    struct addr a;
    const char *why = NULL;
    size_t end = 0;
    unsigned notify = 0;
    char *orcpt = NULL;
    enum addr_status st;
    int code = 0;

    if (path == NULL || *path == 0) {
        reply(s, 501, "5.5.4", "Syntax: RCPT TO:<address>");
        return 501;
    }
    s->rcpt_tries++;
    if (s->nrcpt >= smtpd_conf.rcpt_limit) {
        reply(s, 452, "4.5.3", "Error: too many recipients");
        return 452;
    }
    if (!policy_resuming(s) && smtpd_rate_exceeded(s, CR_RCPT)) {
        reply(s, 450, "4.7.1", "Error: too many recipients from %s", s->addr);
        return 450;
    }
    st = addr_parse_path(path, strlen(path),
                         ADDR_ALLOW_POSTMASTER | (smtpd_conf.strict_envelopes ? 0 : ADDR_LAX)
                             | (s->smtputf8 ? ADDR_UTF8 : 0),
                         &a, &end, &why);
    if (st != ADDR_OK)
        return addr_error(s, st, false);
    if (!smtpcmd_params(path + end, s->smtputf8, &prm, &why)) {
        addr_free(&a);
        reply(s, 501, "5.5.4", "Bad parameter syntax: %s", why ? why : "error");
        return 501;
    }
    for (size_t i = 0; i < prm.n && code == 0; i++) {
        const struct smtp_param *p = &prm.p[i];

        if (strcmp(p->key, "NOTIFY") == 0) {
            notify = parse_notify(p->value);
            if (notify == 0) {
                reply(s, 501, "5.5.4", "Error: Bad NOTIFY parameter syntax");
                code = 501;
            }
        } else if (strcmp(p->key, "ORCPT") == 0) {
            free(orcpt);
            orcpt = parse_orcpt(p->value);
            if (orcpt == NULL) {
                reply(s, 501, "5.5.4", "Error: Bad ORCPT parameter syntax");
                code = 501;
            }
        } else {
            reply(s, 555, "5.5.4", "Unsupported option: %s", p->key);
            code = 555;
        }
    }
    smtpcmd_params_free(&prm);
    if (code == 0)
        code = policy_rcpt_check(s, a.addr, a.domain, a.local, arg, cmd_rcpt);
    if (code != 0) {
        addr_free(&a);
        free(orcpt);
        return code == POLICY_LATER ? REPLY_LATER : code;
    }
    if (s->nrcpt == s->rcpt_cap) {
        s->rcpt_cap = s->rcpt_cap ? 2 * s->rcpt_cap : 4;
        s->rcpts = xreallocarray(s->rcpts, s->rcpt_cap, sizeof(*s->rcpts));
    }
    s->rcpts[s->nrcpt++] = (struct smtpd_rcpt){xstrdup(a.addr), orcpt, notify};
    addr_free(&a);
    if (!s->qid_logged) {
        if (s->authenticated)
            msg_info("%s: client=%s[%s], sasl_method=%s, sasl_username=%s", s->qid, s->name,
                     s->addr, s->sasl_method, s->sasl_username);
        else
            msg_info("%s: client=%s[%s]", s->qid, s->name, s->addr);
        s->qid_logged = true;
    }
    s->state = SS_RCPT;
    reply(s, 250, "2.1.5", "Ok");
    return 250;
}

/* cmd_rset - RSET: abort the transaction */
int cmd_rset(struct session *s, const char *arg)
{
    session_reset_transaction(s);
    reply(s, 250, "2.0.0", "Ok");
    return 250;
}

/* cmd_noop - NOOP */
int cmd_noop(struct session *s, const char *arg)
{
    reply(s, 250, "2.0.0", "Ok");
    return 250;
}

/* cmd_vrfy - VRFY: never verifies (252), or disabled (502) */
int cmd_vrfy(struct session *s, const char *arg)
{
    if (smtpd_conf.disable_vrfy) {
        reply(s, 502, "5.5.1", "VRFY command is disabled");
        return 502;
    }
    if (*arg == 0) {
        reply(s, 501, "5.5.4", "Syntax: VRFY address");
        return 501;
    }
    reply(s, 252, "2.0.0", "%s", arg);
    return 252;
}

/* cmd_help - HELP: list the commands */
int cmd_help(struct session *s, const char *arg)
{
    reply(s, 214, "2.0.0",
          "Commands: HELO EHLO STARTTLS AUTH MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT");
    return 214;
}

/* cmd_quit - QUIT: say goodbye, close after the reply */
int cmd_quit(struct session *s, const char *arg)
{
    reply(s, 221, "2.0.0", "Bye");
    session_close(s);
    return 221;
}
