/*
 * sess_sasl.c - SASL AUTH in the smtp client (RFC 4954): the password
 * tables, the choice of mechanism, PLAIN, LOGIN and CRAM-MD5
 *
 * With smtp_sasl_auth_enable = yes a session that the server offers AUTH
 * looks up "user:password" in smtp_sasl_password_maps, as Postfix does:
 * first by the remote host name (the MX or [host] name), then by the next
 * hop as given ("example.com", "[mail.isp.example]:587"). No entry: the
 * mail goes without AUTH. The mechanism is the first of PLAIN, LOGIN,
 * CRAM-MD5 that the server offers, smtp_sasl_mechanism_filter (when set)
 * names, and the security options allow: smtp_sasl_security_options in
 * the clear, smtp_sasl_tls_security_options over TLS ("noplaintext"
 * rules out PLAIN and LOGIN; "nodictionary", "noactive", "mutual_auth"
 * and "forward_secrecy" rule out all three; "noanonymous" is always
 * met). The mechanisms are native (CRAM-MD5 with OpenSSL's HMAC-MD5);
 * smtp_sasl_type must be "cyrus", the only client type Postfix has.
 *
 * DIAGNOSTICS: a refused AUTH defers the mail (as Postfix's default
 * smtp_sasl_auth_soft_bounce): "SASL authentication failed; server X[A]
 * said: 535 5.7.8 ..."; no usable mechanism: "SASL authentication
 * failed: cannot authenticate to server X[A]: no mechanism available".
 *
 * SECURITY: credentials are never logged (the -v dialogue shows "AUTH
 * PLAIN (credentials)") and are wiped from memory when the exchange ends.
 * The password tables are opened before privileges are dropped.
 */
#include "util/sys.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mail/config.h"
#include "mail/params.h"
#include "util/alloc.h"
#include "util/dict.h"
#include "util/log.h"

#include "sess_impl.h"

#define SASL_CHALLENGE_MAX 4096 /* decoded bytes of one server challenge */
#define REPLY_CHALLENGE 334
#define MD5_HEX_LEN 32
#define MD5_LEN 16
#define CHALLENGE_OFFSET 4 /* "334 " */

/* security option bits */
#define SEC_NOPLAINTEXT 0x01u
#define SEC_NOANONYMOUS 0x02u
#define SEC_NODICTIONARY 0x04u
#define SEC_NOACTIVE 0x08u
#define SEC_MUTUAL 0x10u
#define SEC_FORWARD 0x20u

enum sasl_mech { MECH_PLAIN, MECH_LOGIN, MECH_CRAM_MD5, MECH_COUNT };

/* The mechanisms we speak, in order of preference, and what they lack. */
static const struct {
    const char *name;
    unsigned refused_by; /* option bits that rule the mechanism out */
} mechs[MECH_COUNT] = {
    [MECH_PLAIN] = {"PLAIN", SEC_NOPLAINTEXT | SEC_NODICTIONARY | SEC_NOACTIVE |
                                 SEC_MUTUAL | SEC_FORWARD},
    [MECH_LOGIN] = {"LOGIN", SEC_NOPLAINTEXT | SEC_NODICTIONARY | SEC_NOACTIVE |
                                 SEC_MUTUAL | SEC_FORWARD},
    [MECH_CRAM_MD5] = {"CRAM-MD5",
                       SEC_NODICTIONARY | SEC_NOACTIVE | SEC_MUTUAL | SEC_FORWARD},
};

/* A running AUTH exchange. */
struct sess_sasl {
    enum sasl_mech mech;
    unsigned step; /* challenges answered */
    char *user;
    char *pass;
};

static bool enabled;
static struct dict **maps;
static size_t nmaps;
static unsigned sec_plain, sec_tls; /* option bits without and with TLS */
static char **filter;               /* smtp_sasl_mechanism_filter */
static size_t nfilter;

/* sasl_pname - PREFIX_suffix; NULL for lmtp when posta has no lmtp_ setting */
static char *sasl_pname(const char *suffix)
{
    char *name = xasprintf("%s_%s", smtp_conf.prefix, suffix);

    if (param_find(name) == NULL) {
        free(name);
        return smtp_conf.lmtp ? NULL : xasprintf("smtp_%s", suffix);
    }
    return name;
}

/* parse_options - a security options list as bits; fatal on unknown words */
static unsigned parse_options(struct cfg *cfg, const char *suffix)
{
    static const struct {
        const char *word;
        unsigned bit;
    } words[] = {
        {"noplaintext", SEC_NOPLAINTEXT},   {"noanonymous", SEC_NOANONYMOUS},
        {"nodictionary", SEC_NODICTIONARY}, {"noactive", SEC_NOACTIVE},
        {"mutual_auth", SEC_MUTUAL},        {"forward_secrecy", SEC_FORWARD},
    };
    char *name = sasl_pname(suffix);
    unsigned bits = 0;
    size_t n;
    char **list = cfg_list(cfg, name, &n);

    for (size_t i = 0; i < n; i++) {
        size_t k;

        for (k = 0; k < sizeof(words) / sizeof(words[0]); k++)
            if (strcasecmp(list[i], words[k].word) == 0)
                break;
        if (k == sizeof(words) / sizeof(words[0]))
            msg_fatal("%s: unknown SASL security option \"%s\"", name, list[i]);
        bits |= words[k].bit;
    }
    cfg_list_free(list, n);
    free(name);
    return bits;
}

/* smtp_sasl_init - read smtp_sasl_*, open the password tables (before the jail) */
void smtp_sasl_init(struct cfg *cfg)
{
    char *name = sasl_pname("sasl_auth_enable");
    char **list;
    size_t n;

    enabled = name && cfg_bool(cfg, name);
    free(name);
    if (!enabled)
        return;
    name = sasl_pname("sasl_type");
    if (strcasecmp(cfg_str(cfg, name), "cyrus") != 0)
        msg_fatal("%s: unsupported SASL client type \"%s\" (cyrus)", name,
                  cfg_str(cfg, name));
    free(name);
    name = sasl_pname("sasl_password_maps");
    list = cfg_list(cfg, name, &n);
    if (n == 0)
        msg_fatal("specify a password table via the `%s' configuration parameter", name);
    maps = xcalloc(n, sizeof(*maps));
    for (size_t i = 0; i < n; i++) {
        char *err = NULL;

        maps[i] = dict_open(list[i], 0, &err);
        if (maps[i] == NULL)
            msg_fatal("%s: %s", name, err ? err : list[i]);
    }
    nmaps = n;
    cfg_list_free(list, n);
    free(name);
    sec_plain = parse_options(cfg, "sasl_security_options");
    sec_tls = parse_options(cfg, "sasl_tls_security_options");
    name = sasl_pname("sasl_mechanism_filter");
    filter = cfg_list(cfg, name, &nfilter);
    free(name);
}

/* wipe_free - clear a secret, then free it */
static void wipe_free(char *p)
{
    if (p == NULL)
        return;
    OPENSSL_cleanse(p, strlen(p));
    free(p);
}

/* sasl_free - forget a running exchange */
void sasl_free(struct smtp_sess *s)
{
    if (s->sasl == NULL)
        return;
    wipe_free(s->sasl->user);
    wipe_free(s->sasl->pass);
    free(s->sasl);
    s->sasl = NULL;
}

/*
 * lookup - the "user:password" of this session: 1 found (*value), 0 none,
 * -1 a table failed (*table names it)
 */
static int lookup(const struct smtp_sess *s, const char **value, const char **table)
{
    const char *keys[2] = {s->t.host, s->nexthop};

    for (size_t k = 0; k < 2; k++) {
        if (keys[k] == NULL || *keys[k] == 0)
            continue;
        for (size_t i = 0; i < nmaps; i++) {
            switch (dict_lookup(maps[i], keys[k], value)) {
            case DICT_FOUND:
                return 1;
            case DICT_TEMPFAIL:
                *table = dict_spec(maps[i]);
                return -1;
            case DICT_NOTFOUND:
                break;
            }
        }
    }
    return 0;
}

/* offered - the server lists mechanism name in its AUTH line */
static bool offered(const struct smtp_sess *s, const char *name)
{
    const char *p = s->feat.auth_mechs;
    size_t len = strlen(name);

    while (*p) {
        size_t n = strcspn(p, " ");

        if (n == len && strncasecmp(p, name, len) == 0)
            return true;
        p += n;
        p += strspn(p, " ");
    }
    return false;
}

/* filtered_in - smtp_sasl_mechanism_filter lets name through */
static bool filtered_in(const char *name)
{
    if (nfilter == 0)
        return true;
    for (size_t i = 0; i < nfilter; i++)
        if (strcasecmp(filter[i], name) == 0)
            return true;
    return false;
}

/* choose - the mechanism to use, or MECH_COUNT */
static enum sasl_mech choose(const struct smtp_sess *s)
{
    unsigned opts = s->tls_active ? sec_tls : sec_plain;

    for (int m = 0; m < MECH_COUNT; m++)
        if (!(mechs[m].refused_by & opts) && offered(s, mechs[m].name) &&
            filtered_in(mechs[m].name))
            return (enum sasl_mech)m;
    return MECH_COUNT;
}

/* b64 - base64 of p[0..n) into a new string */
static char *b64(const void *p, size_t n)
{
    char *out = xmalloc(4 * ((n + 2) / 3) + 1);

    (void)EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    return out;
}

/* unb64 - decode base64 text; NULL when malformed or too long */
static unsigned char *unb64(const char *text, size_t *outlen)
{
    size_t len = strcspn(text, " \r\n");
    size_t pad = 0;
    unsigned char *out;
    int n;

    if (len % 4 != 0 || len / 4 * 3 > SASL_CHALLENGE_MAX)
        return NULL;
    out = xmalloc(len / 4 * 3 + 1);
    n = EVP_DecodeBlock(out, (const unsigned char *)text, (int)len);
    if (n < 0) {
        free(out);
        return NULL;
    }
    while (pad < 2 && len > pad && text[len - 1 - pad] == '=')
        pad++;
    *outlen = (size_t)n - pad;
    out[*outlen] = 0;
    return out;
}

/* send_secret - base64 of a response on its own line */
static void send_secret(struct smtp_sess *s, const char *prefix, const void *p, size_t n)
{
    char *enc = b64(p, n);
    char *line = xasprintf("%s%s", prefix, enc);

    out_secret(s, *prefix ? "AUTH ... (credentials)" : "(credentials)", line);
    OPENSSL_cleanse(line, strlen(line));
    OPENSSL_cleanse(enc, strlen(enc));
    free(line);
    free(enc);
}

/* cram_response - "user hex(HMAC-MD5(password, challenge))"; NULL on error */
static char *cram_response(const struct sess_sasl *a, const unsigned char *ch, size_t n)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    char hex[MD5_HEX_LEN + 1];

    if (HMAC(EVP_md5(), a->pass, (int)strlen(a->pass), ch, n, mac, &maclen) == NULL ||
        maclen != MD5_LEN)
        return NULL;
    for (unsigned i = 0; i < maclen; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    OPENSSL_cleanse(mac, sizeof(mac));
    return xasprintf("%s %s", a->user, hex);
}

/* fail_none - no mechanism fits: defer */
static bool fail_none(struct smtp_sess *s)
{
    status_set(s, DELIVER_DEFERRED, DSN_AUTH, NULL,
               "SASL authentication failed: cannot authenticate to server %s: "
               "no mechanism available",
               s->namaddr);
    return sess_finish(s, false);
}

/* sasl_after_ehlo - AUTH when enabled, offered, and a password is known */
bool sasl_after_ehlo(struct smtp_sess *s)
{
    const char *value = NULL, *table = "";
    const char *colon;
    struct sess_sasl *a;
    enum sasl_mech m;
    int found;

    if (!enabled || s->authed || !(s->feat.flags & SMTP_FEAT_AUTH) ||
        s->feat.auth_mechs[0] == 0)
        return sess_ready(s);
    found = lookup(s, &value, &table);
    if (found < 0) {
        msg_warn("%s: table %s: lookup error for SASL password", s->namaddr, table);
        status_set(s, DELIVER_DEFERRED, DSN_LOCAL, NULL,
                   "unable to look up the SASL password for %s: table lookup error",
                   s->namaddr);
        return sess_finish(s, false);
    }
    if (found == 0)
        return sess_ready(s);
    if ((m = choose(s)) == MECH_COUNT)
        return fail_none(s);
    a = xcalloc(1, sizeof(*a));
    colon = strchr(value, ':');
    a->user = colon ? xstrndup(value, (size_t)(colon - value)) : xstrdup(value);
    a->pass = xstrdup(colon ? colon + 1 : "");
    a->mech = m;
    s->sasl = a;
    if (log_verbose_level())
        msg_verbose("%s: SASL mechanism %s, user %s", s->namaddr, mechs[m].name, a->user);
    if (m == MECH_PLAIN) {
        /* RFC 4616: authzid NUL authcid NUL passwd, as an initial response */
        size_t ulen = strlen(a->user), plen = strlen(a->pass);
        size_t n = ulen + plen + 2;
        char *msg = xmalloc(n);

        msg[0] = 0;
        memcpy(msg + 1, a->user, ulen);
        msg[1 + ulen] = 0;
        memcpy(msg + 2 + ulen, a->pass, plen);
        send_secret(s, "AUTH PLAIN ", msg, n);
        OPENSSL_cleanse(msg, n);
        free(msg);
    } else {
        out_cmd(s, "AUTH %s", mechs[m].name);
    }
    s->state = SS_AUTH;
    sess_stage(s, STG_AUTH);
    return sess_push(s);
}

/* sasl_challenge - answer a 334 */
static bool sasl_challenge(struct smtp_sess *s)
{
    struct sess_sasl *a = s->sasl;
    const char *text = buf_str(&s->reply.text);
    unsigned char *ch;
    size_t n = 0;
    char *resp;

    ch = strlen(text) >= CHALLENGE_OFFSET ? unb64(text + CHALLENGE_OFFSET, &n) : NULL;
    if (ch == NULL)
        return fail_protocol(s, "malformed SASL challenge");
    switch (a->mech) {
    case MECH_LOGIN:
        if (a->step > 1) {
            free(ch);
            return fail_protocol(s, "unexpected SASL challenge");
        }
        resp = a->step == 0 ? a->user : a->pass;
        send_secret(s, "", resp, strlen(resp));
        break;
    case MECH_CRAM_MD5:
        if (a->step > 0 || (resp = cram_response(a, ch, n)) == NULL) {
            free(ch);
            return fail_protocol(s, "unexpected SASL challenge");
        }
        send_secret(s, "", resp, strlen(resp));
        wipe_free(resp);
        break;
    case MECH_PLAIN:
    case MECH_COUNT:
    default:
        free(ch);
        return fail_protocol(s, "unexpected SASL challenge");
    }
    free(ch);
    a->step++;
    return sess_push(s);
}

/* sasl_reply - a reply during AUTH: 334 challenge, 235 done, else failure */
bool sasl_reply(struct smtp_sess *s)
{
    const struct smtp_reply *rep = &s->reply;
    struct buf line = BUF_INIT;
    char dsn[sizeof(s->status.dsn)];

    if (rep->code == REPLY_CHALLENGE)
        return sasl_challenge(s);
    if (rep->code / REPLY_CLASS_DIV == REPLY_OK) {
        s->authed = true;
        sasl_free(s);
        return sess_ready(s);
    }
    sasl_free(s);
    if (rep->code == REPLY_CLOSING)
        return fail_reply(s, rep, "AUTH command", false);
    /* as Postfix's smtp_sasl_auth_soft_bounce: a refusal defers */
    if (rep->dsn[0])
        snprintf(dsn, sizeof(dsn), "4%s", rep->dsn + 1);
    else
        snprintf(dsn, sizeof(dsn), "%s", DSN_AUTH);
    smtp_reply_oneline(rep, &line);
    status_set(s, DELIVER_DEFERRED, dsn, buf_str(&line),
               "SASL authentication failed; server %s said: %s", s->namaddr,
               buf_str(&line));
    buf_free(&line);
    return sess_finish(s, false);
}
