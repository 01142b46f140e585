/*
 * sess_tls.c - TLS in the smtp/lmtp client: STARTTLS, TLS on connect, the
 * security levels, peer names, the log line, session resumption
 *
 * smtp_tls_security_level (or, when empty, the obsolete smtp_use_tls and
 * smtp_enforce_tls) decides what a session does after EHLO:
 *   none     never STARTTLS
 *   may      STARTTLS when offered, any certificate; a refused STARTTLS
 *            goes on in the clear; a failed handshake is retried once on
 *            a new connection without TLS (as Postfix does)
 *   encrypt  TLS required: no STARTTLS offered defers the mail with 4.7.4
 *            "TLS is required, but was not offered by host X[A]"; any
 *            certificate
 *   verify   as encrypt, and the certificate must chain to smtp_tls_CAfile
 *            / smtp_tls_CApath and name one of smtp_tls_verify_cert_match
 *            (default "hostname": the MX host name from DNS, or the
 *            [host] of the next hop)
 *   secure   as verify with smtp_tls_secure_cert_match (default "nexthop,
 *            dot-nexthop": the next-hop domain and its subdomains)
 * A certificate that fails defers with 4.7.5 "Server certificate not
 * verified"; another handshake failure with 4.7.5 "Cannot start TLS:
 * handshake failure". smtp_tls_wrappermode = yes starts TLS on connect
 * (port 465) at level encrypt or above, never falling back.
 * After the handshake the EHLO is sent again and only its answer counts.
 * SNI (smtp_tls_servername): empty sends the host name at verify and
 * secure and nothing below; "hostname", "nexthop" or a literal name;
 * never an address. Sessions are resumed from an in-process cache keyed
 * by host[addr]:port.
 *
 * DIAGNOSTICS: with smtp_tls_loglevel >= 1 each handshake logs
 * "Trusted|Untrusted|Verified|Anonymous TLS connection established to
 * host[addr]:port: TLSv1.3 with cipher ... (256/256 bits)"; a failed one
 * logs "SSL_connect error to host[addr]:port: reason".
 *
 * SECURITY: whatever the server sent after its reply to STARTTLS and
 * before the handshake (a reply injected into the clear-text stream) is
 * thrown away unread, and the features of the clear-text EHLO are
 * forgotten once TLS is up (RFC 3207 4.2).
 */
#include "util/sys.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mail/config.h"
#include "mail/params.h"
#include "util/alloc.h"
#include "util/log.h"

#include "sess_impl.h"

#define TLS_CACHE_MAX 64      /* resumable sessions kept (host[addr]:port) */
#define TLS_CACHE_KEY_MAX 320 /* "host[addr]:port" */
#define TLS_NAMES_MAX 16      /* peer names for verify/secure */
#define TLS_LOG_SUMMARY 1     /* smtp_tls_loglevel: one line per session */

/* One remembered session. */
struct tls_cached {
    char key[TLS_CACHE_KEY_MAX];
    struct buf der;
    unsigned long long used;
};

static struct tls_ctx *client_ctx; /* NULL: no TLS engine */
static char *ctx_error;            /* why client_ctx is NULL */
static int loglevel;               /* smtp_tls_loglevel */
static bool note_offer;            /* smtp_tls_note_starttls_offer */
static char *servername;           /* smtp_tls_servername */
static char **verify_match, **secure_match;
static size_t nverify_match, nsecure_match;
static struct tls_cached cache[TLS_CACHE_MAX];
static unsigned long long cache_clock;

/* tls_pname - PREFIX_suffix; NULL for lmtp when posta has no lmtp_ setting */
static char *tls_pname(const char *suffix)
{
    char *name = xasprintf("%s_%s", smtp_conf.prefix, suffix);

    if (param_find(name) == NULL) {
        free(name);
        return smtp_conf.lmtp ? NULL : xasprintf("smtp_%s", suffix);
    }
    return name;
}

/* conf_text - a text setting, or dflt when posta has no such setting */
static const char *conf_text(struct cfg *cfg, const char *suffix, const char *dflt)
{
    char *name = tls_pname(suffix);
    const char *v;

    if (name == NULL)
        return dflt;
    v = cfg_str(cfg, name);
    free(name);
    return v ? v : dflt;
}

/* conf_yes - a boolean setting, false when posta has no such setting */
static bool conf_yes(struct cfg *cfg, const char *suffix)
{
    char *name = tls_pname(suffix);
    bool v;

    if (name == NULL)
        return false;
    v = cfg_bool(cfg, name);
    free(name);
    return v;
}

/* conf_names - a list setting (cert match names) */
static char **conf_names(struct cfg *cfg, const char *suffix, const char *dflt, size_t *n)
{
    char *name = tls_pname(suffix);
    char **list;

    if (name == NULL)
        return cfg_split_list(dflt, n);
    list = cfg_list(cfg, name, n);
    free(name);
    return list;
}

/* level_from_conf - smtp_tls_security_level, or the obsolete booleans */
static int level_from_conf(struct cfg *cfg)
{
    const char *text = conf_text(cfg, "tls_security_level", "");
    int level;

    if (*text == 0) {
        if (conf_yes(cfg, "enforce_tls"))
            return TLS_LEVEL_ENCRYPT;
        return conf_yes(cfg, "use_tls") ? TLS_LEVEL_MAY : TLS_LEVEL_NONE;
    }
    if (strcasecmp(text, "dane") == 0) {
        msg_warn("%s_tls_security_level = dane: DANE is not supported, using \"may\"",
                 smtp_conf.prefix);
        return TLS_LEVEL_MAY;
    }
    level = tls_level_parse(text);
    if (level < 0)
        msg_fatal("%s_tls_security_level: unknown level \"%s\" (none, may, encrypt, "
                  "verify, secure)",
                  smtp_conf.prefix, text);
    return level;
}

/* smtp_tls_init - read smtp_tls_*, make the client context (before the jail) */
void smtp_tls_init(struct cfg *cfg)
{
    struct tls_client_opts o;
    bool mandatory;
    int level = level_from_conf(cfg);

    smtp_conf.tls_level = level;
    smtp_conf.tls_wrapper = conf_yes(cfg, "tls_wrappermode");
    {
        char *name = tls_pname("tls_loglevel");

        loglevel = name ? (int)cfg_int(cfg, name) : 0;
        free(name);
    }
    note_offer = conf_yes(cfg, "tls_note_starttls_offer");
    servername = xstrdup(conf_text(cfg, "tls_servername", ""));
    verify_match = conf_names(cfg, "tls_verify_cert_match", "hostname", &nverify_match);
    secure_match =
        conf_names(cfg, "tls_secure_cert_match", "nexthop, dot-nexthop", &nsecure_match);
    if (smtp_conf.tls_wrapper && level > TLS_LEVEL_NONE && level < TLS_LEVEL_ENCRYPT)
        smtp_conf.tls_level = level = TLS_LEVEL_ENCRYPT; /* no clear text to fall back to */
    if (level == TLS_LEVEL_NONE)
        return;
    mandatory = level >= TLS_LEVEL_ENCRYPT;
    memset(&o, 0, sizeof(o));
    o.cert_file = conf_text(cfg, "tls_cert_file", "");
    o.key_file = conf_text(cfg, "tls_key_file", "");
    o.CAfile = conf_text(cfg, "tls_CAfile", "");
    o.CApath = conf_text(cfg, "tls_CApath", "");
    o.protocols =
        conf_text(cfg, mandatory ? "tls_mandatory_protocols" : "tls_protocols", "");
    o.cipher_grade =
        conf_text(cfg, mandatory ? "tls_mandatory_ciphers" : "tls_ciphers", "medium");
    client_ctx = tls_client_ctx_new(&o, &ctx_error);
    if (client_ctx != NULL)
        return;
    /* Postfix: opportunistic TLS goes on without; mandatory TLS defers */
    msg_warn("cannot enable TLS in the %s client: %s", smtp_conf.prefix,
             ctx_error ? ctx_error : "unknown error");
    if (level == TLS_LEVEL_MAY)
        smtp_conf.tls_level = TLS_LEVEL_NONE;
}

/* is_address - text is an IPv4 or IPv6 literal (never an SNI or a name) */
static bool is_address(const char *text)
{
    unsigned char a[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, text, a) == 1 || inet_pton(AF_INET6, text, a) == 1;
}

/* match_name - one cert_match word for this session ("" when none) */
static char *match_name(const struct smtp_sess *s, const char *word)
{
    if (strcasecmp(word, "hostname") == 0)
        return xstrdup(s->t.host);
    if (strcasecmp(word, "nexthop") == 0)
        return xstrdup(s->nh_domain);
    if (strcasecmp(word, "dot-nexthop") == 0)
        return *s->nh_domain ? xasprintf(".%s", s->nh_domain) : xstrdup("");
    return xstrdup(word);
}

/* sni_name - the server name to send, or NULL */
static const char *sni_name(const struct smtp_sess *s)
{
    const char *name;

    if (*servername == 0)
        name = s->level >= TLS_LEVEL_VERIFY ? s->t.host : NULL;
    else if (strcasecmp(servername, "hostname") == 0)
        name = s->t.host;
    else if (strcasecmp(servername, "nexthop") == 0)
        name = s->nh_domain;
    else
        name = servername;
    if (name == NULL || *name == 0 || is_address(name))
        return NULL;
    return name;
}

/* cache_key - "host[addr]:port" */
static void cache_key(const struct smtp_sess *s, char *out, size_t size)
{
    snprintf(out, size, "%s[%s]:%u", s->t.host, s->t.addr, s->t.port);
}

/* cache_find - the cache slot of key, or NULL */
static struct tls_cached *cache_find(const char *key)
{
    for (size_t i = 0; i < TLS_CACHE_MAX; i++)
        if (cache[i].der.len > 0 && strcmp(cache[i].key, key) == 0)
            return &cache[i];
    return NULL;
}

/* cache_slot - the slot for key: its own, a free one, or the least used */
static struct tls_cached *cache_slot(const char *key)
{
    struct tls_cached *e = cache_find(key), *old = &cache[0];

    if (e != NULL)
        return e;
    for (size_t i = 0; i < TLS_CACHE_MAX; i++) {
        if (cache[i].der.len == 0)
            return &cache[i];
        if (cache[i].used < old->used)
            old = &cache[i];
    }
    return old;
}

/* tls_end - before close: remember the session, send close_notify */
void tls_end(struct smtp_sess *s)
{
    char key[TLS_CACHE_KEY_MAX];
    struct tls_cached *e;

    if (s->tls == NULL || !s->tls_active)
        return;
    cache_key(s, key, sizeof(key));
    e = cache_slot(key);
    buf_free(&e->der);
    buf_init(&e->der, 0);
    if (tls_session_save(s->tls, &e->der)) {
        snprintf(e->key, sizeof(e->key), "%s", key);
        e->used = ++cache_clock;
    } else {
        buf_free(&e->der);
        e->key[0] = 0;
    }
    tls_shutdown(s->tls);
}

/* tls_fail_text - defer the session with a TLS reason */
static bool tls_fail_text(struct smtp_sess *s, const char *dsn, const char *text)
{
    status_set(s, DELIVER_DEFERRED, dsn, NULL, "%s", text);
    return sess_finish(s, false);
}

/* reconnect_plain - level may: the same address again, without TLS */
static bool reconnect_plain(struct smtp_sess *s)
{
    int err;

    sess_io_close(s);
    buf_reset(&s->in);
    buf_reset(&s->out);
    s->out_off = 0;
    s->eof = false;
    s->read_errno = 0;
    memset(&s->feat, 0, sizeof(s->feat));
    s->tls_off = true;
    if ((err = sess_connect(s)) != 0) {
        connect_status(s, err);
        return sess_finish(s, false);
    }
    return true;
}

/* tls_failed - the handshake failed: fall back (may) or defer */
static bool tls_failed(struct smtp_sess *s)
{
    const char *why = s->tls ? tls_conn_error(s->tls) : "cannot create the TLS connection";
    bool cert = s->level >= TLS_LEVEL_VERIFY && strstr(why, "certificate verif") != NULL;
    struct buf relay = BUF_INIT;

    smtp_target_relay(&s->t, &relay);
    if (cert)
        msg_info("server certificate verification failed for %s: %s", buf_str(&relay), why);
    else
        msg_info("SSL_connect error to %s: %s", buf_str(&relay),
                 *why ? why : "lost connection");
    buf_free(&relay);
    if (!cert && s->level == TLS_LEVEL_MAY && !s->tls_wrapper && !s->tls_off) {
        msg_info("%s: Cannot start TLS: handshake failure; trying again without TLS",
                 s->namaddr);
        return reconnect_plain(s);
    }
    return tls_fail_text(s, DSN_TLS_FAILED,
                         cert ? "Server certificate not verified"
                              : "Cannot start TLS: handshake failure");
}

/* tls_done - the handshake finished: log, check, then greeting or EHLO */
static bool tls_done(struct smtp_sess *s)
{
    enum tls_trust trust = tls_peer_trust(s->tls);

    s->tls_active = true;
    if (loglevel >= TLS_LOG_SUMMARY) {
        struct buf relay = BUF_INIT;

        smtp_target_relay(&s->t, &relay);
        msg_info("%s TLS connection %s to %s: %s", tls_trust_name(trust),
                 tls_reused(s->tls) ? "reused" : "established", buf_str(&relay),
                 tls_summary(s->tls));
        buf_free(&relay);
    }
    if (s->level >= TLS_LEVEL_VERIFY && trust != TLS_TRUST_VERIFIED)
        return tls_fail_text(s, DSN_TLS_FAILED, "Server certificate not verified");
    /* RFC 3207 4.2: forget everything learned before TLS */
    memset(&s->feat, 0, sizeof(s->feat));
    buf_reset(&s->in);
    if (s->tls_wrapper) {
        s->state = SS_GREET;
        sess_stage(s, STG_GREET);
        set_interest(s);
        return true;
    }
    return send_hello(s, smtp_conf.lmtp ? "LHLO" : "EHLO");
}

/* tls_drive - one step of the handshake; false: s is gone */
static bool tls_drive(struct smtp_sess *s)
{
    int rc = tls_handshake(s->tls);

    if (rc < 0)
        return tls_failed(s);
    if (rc == 0) {
        set_interest(s);
        return true;
    }
    return tls_done(s);
}

/* tls_step - the socket is ready during the handshake */
void tls_step(struct smtp_sess *s)
{
    (void)tls_drive(s);
}

/* tls_begin - wrap the socket and start the handshake */
bool tls_begin(struct smtp_sess *s)
{
    const char *names[TLS_NAMES_MAX] = {0};
    char *owned[TLS_NAMES_MAX] = {0};
    size_t n = 0;
    char key[TLS_CACHE_KEY_MAX];
    struct tls_cached *e;

    if (s->level >= TLS_LEVEL_VERIFY) {
        char **words = s->level == TLS_LEVEL_SECURE ? secure_match : verify_match;
        size_t nwords = s->level == TLS_LEVEL_SECURE ? nsecure_match : nverify_match;

        for (size_t i = 0; i < nwords && n < TLS_NAMES_MAX; i++) {
            char *name = match_name(s, words[i]);

            if (*name == 0) {
                free(name);
                continue;
            }
            owned[n] = name;
            names[n] = name;
            n++;
        }
    }
    s->tls =
        tls_conn_client(client_ctx, s->fd, sni_name(s), (enum tls_level)s->level, names, n);
    for (size_t i = 0; i < n; i++)
        free(owned[i]);
    s->state = SS_TLS;
    sess_stage(s, STG_TLS);
    if (s->tls == NULL)
        return tls_failed(s);
    cache_key(s, key, sizeof(key));
    if ((e = cache_find(key)) != NULL) {
        e->used = ++cache_clock;
        (void)tls_session_load(s->tls, e->der.data, e->der.len);
    }
    return tls_drive(s);
}

/* tls_starttls_reply - the reply to STARTTLS */
bool tls_starttls_reply(struct smtp_sess *s)
{
    const struct smtp_reply *rep = &s->reply;

    if (rep->code / REPLY_CLASS_DIV == REPLY_OK) {
        /* Response injection: nothing sent before the handshake counts. */
        if (s->in.len > 0) {
            msg_warn("%s: discarding %zu bytes that %s sent after its reply to STARTTLS",
                     sess_qid(s), s->in.len, s->namaddr);
            buf_reset(&s->in);
        }
        return tls_begin(s);
    }
    if (s->level == TLS_LEVEL_MAY) {
        struct buf line = BUF_INIT;

        smtp_reply_oneline(rep, &line);
        msg_info("%s: STARTTLS refused (%s); continuing without TLS", s->namaddr,
                 buf_str(&line));
        buf_free(&line);
        s->tls_off = true;
        return sasl_after_ehlo(s);
    }
    return fail_reply(s, rep, "STARTTLS command", false);
}

/* tls_after_ehlo - EHLO (or HELO) answered: STARTTLS, refuse, or go on */
bool tls_after_ehlo(struct smtp_sess *s, bool ehlo)
{
    bool offered = ehlo && (s->feat.flags & SMTP_FEAT_STARTTLS);

    if (s->tls_active || s->tls_off || s->level == TLS_LEVEL_NONE) {
        if (note_offer && offered && !s->tls_active)
            msg_info("Host offered STARTTLS: [%s]", s->t.host);
        return sasl_after_ehlo(s);
    }
    if (client_ctx == NULL)
        return tls_fail_text(s, DSN_TLS_FAILED,
                             "TLS is required, but our TLS engine is unavailable");
    if (!offered) {
        struct buf text = BUF_INIT;
        bool alive;

        if (s->level == TLS_LEVEL_MAY)
            return sasl_after_ehlo(s);
        (void)buf_printf(&text, "TLS is required, but was not offered by host %s",
                         s->namaddr);
        alive = tls_fail_text(s, DSN_TLS_MISSING, buf_str(&text));
        buf_free(&text);
        return alive;
    }
    out_cmd(s, "STARTTLS");
    s->state = SS_STARTTLS;
    sess_stage(s, STG_STARTTLS);
    return sess_push(s);
}
