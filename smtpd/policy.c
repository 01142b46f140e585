/*
 * policy.c - smtpd's restriction engine: smtpd_client_restrictions,
 * smtpd_helo_restrictions, smtpd_sender_restrictions,
 * smtpd_relay_restrictions, smtpd_recipient_restrictions and
 * smtpd_data_restrictions, evaluated as Postfix does
 *
 * Within a list the first restriction that permits or rejects decides;
 * a permit ends that list only, and evaluation goes on with the next
 * list. With smtpd_delay_reject = yes (the default) the client, HELO and
 * sender lists are evaluated at each RCPT TO, before the relay and
 * recipient lists; with "no" the client list is evaluated when the client
 * connects (a refusal replaces the 220 greeting, and every later command
 * but QUIT is answered 503 5.7.0 "Error: access denied for NAME[ADDR]"),
 * the HELO list at HELO/EHLO, the sender list at MAIL. The data
 * list is evaluated at DATA and at the first BDAT. After the recipient
 * list comes the unlisted-recipient check (smtpd_reject_unlisted_recipient).
 * defer_if_permit, defer_if_reject and warn_if_reject carry over the
 * whole evaluation of one command, as in Postfix.
 *
 * DNS-based restrictions (reject_rbl_client and the rhsbl family,
 * reject_unknown_{sender,recipient}_domain, reject_unknown_helo_hostname)
 * never block the event loop: the evaluation suspends (the session waits
 * with SW_LOOKUP and holds a s->busy reference so that it is not freed),
 * and the DNS callback resumes it at the same restriction. When the
 * evaluation ends the command handler is called again (policy.h); a
 * session dropped meanwhile is released when its lookup ends.
 *
 * Every list is parsed when smtpd starts (policy_init); an unknown name,
 * a missing argument or a table that cannot be opened is fatal, naming
 * the parameter. Restriction logic lives here; the pure parsing in
 * restrict_parse.c.
 *
 * DIAGNOSTICS: each rejection is logged once, here, in Postfix's form:
 * "NOQUEUE: reject: RCPT from NAME[ADDR]: 554 5.7.1 <x@y>: Relay access
 * denied; from=<a@b> to=<x@y> proto=ESMTP helo=<h>" (reject_warning for
 * warn_if_reject, warn for an access table's WARN). A table that fails
 * answers 451 4.3.0 "Temporary lookup failure"; a bad access-table value
 * 451 4.3.5 "Server configuration error".
 *
 * SECURITY: this is what keeps port 25 from being an open relay: the
 * relay list defaults to permit_mynetworks, permit_sasl_authenticated,
 * reject_unauth_destination, and smtpd refuses to start when neither the
 * relay nor the recipient list can refuse a foreign destination.
 */
#include "util/sys.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mail/config.h"
#include "mail/matchlist.h"
#include "util/alloc.h"
#include "util/dict.h"
#include "util/dns.h"
#include "util/log.h"

#include "policy.h"
#include "policy_client.h"
#include "smtpd.h"

#define POLICY_DNS_TIMEOUT_MS 10000   /* one DNS restriction, all its queries */
#define CLASS_DEPTH_MAX 8             /* nested restriction classes / access results */
#define NLISTS_MAX 6
#define INTERN_MAX 256                /* distinct DATA/BDAT reject texts kept */
#define ENH_LEN 16
#define RBL_NAME_MAX 512
#define IPV6_NIBBLES 32

/* tempfail actions (unknown_address_tempfail_action, ...) */
enum tf_action { TF_DEFER_IF_PERMIT, TF_DEFER, TF_DUNNO };

static struct {
    struct restr_config rc;
    bool delay_reject;
    bool reject_unlisted_sender;
    bool access_parents;
    char *null_key;
    struct dict **login_maps;
    size_t nlogin_maps;
    int access_reject_code, access_defer_code, reject_code, defer_code, relay_code;
    int rbl_code, unknown_addr_code, unknown_client_code, unknown_helo_code;
    int non_fqdn_code, invalid_helo_code;
    enum tf_action addr_tf, helo_tf;
} pc;

/* What a generic restriction names in its reply: the subject of its list. */
enum subject { SUBJ_CLIENT, SUBJ_HELO, SUBJ_SENDER, SUBJ_RCPT, SUBJ_DATA };

enum stage { PS_CONNECT, PS_HELO, PS_MAIL, PS_RCPT, PS_DATA };

enum rv { RV_DUNNO, RV_PERMIT, RV_DECIDED, RV_SUSPEND };

struct frame {
    const struct restr_list *list;
    size_t i;
};

/* eval - one command's evaluation, kept while it waits for DNS */
struct eval {
    struct session *s;
    enum stage stage;
    enum smtpd_verb verb;
    const char *verb_name;
    char *arg;                 /* the command argument, for the handler's second call */
    policy_again_fn *again;
    char *helo, *sender, *rcpt, *domain, *local;   /* copies (NULL: none) */

    const struct restr_list *lists[NLISTS_MAX];
    enum subject subj[NLISTS_MAX];
    size_t nlists, li;
    struct frame stack[CLASS_DEPTH_MAX];
    size_t depth;
    int step;                  /* 0: lists; 1: unlisted checks; 2: done */

    bool warn_next, defer_if_reject;
    bool dip;                  /* defer_if_permit pending: its reply below */
    int dip_code;
    char dip_enh[ENH_LEN];
    struct buf dip_text;

    bool rejected;
    int code;
    char enh[ENH_LEN];
    struct buf text;
    int local_dom;
    struct smtpd_actions act;  /* HOLD, DISCARD, ...: kept if the command is accepted */

    /* DNS: the answer of the lookup the current restriction started */
    bool dns_busy, dns_have;
    int dns_phase;
    enum dns_status dns_st;
    bool dns_hit;
    struct buf dns_txt;

    /* check_policy_service: the action of the request the current restriction made */
    bool pol_have;
    struct buf pol_action;
};

static struct eval *reentry;      /* the decided evaluation, during the handler's second call */
static char *intern_texts[INTERN_MAX];
static size_t nintern;

static enum rv run_restriction(struct eval *e, const struct restr *r, enum subject subj);

/* ---------- names, replies and logging ---------- */

/* subj_class - "Client host", "Sender address", ... */
static const char *subj_class(enum subject subj)
{
    static const char *const names[] = {"Client host", "Helo command", "Sender address",
                                        "Recipient address", "Data command"};

    return names[subj];
}

/* subj_name - what the reply names in <>: client, HELO name, address, command */
static const char *subj_name(struct eval *e, enum subject subj, struct buf *tmp)
{
    switch (subj) {
    case SUBJ_CLIENT:
        buf_reset(tmp);
        (void)buf_printf(tmp, "%s[%s]", e->s->name, e->s->addr);
        return buf_str(tmp);
    case SUBJ_HELO:
        return e->helo ? e->helo : "";
    case SUBJ_SENDER:
        return e->sender ? e->sender : "";
    case SUBJ_RCPT:
        return e->rcpt ? e->rcpt : "";
    case SUBJ_DATA:
        return e->verb_name;
    }
    return "";
}

/* log_reject - the one place that logs a rejection (kind: reject, reject_warning, warn) */
static void log_reject(struct eval *e, const char *kind, int code, const char *enh,
                       const char *text)
{
    struct session *s = e->s;
    struct buf b = BUF_INIT;
    const char *to = e->rcpt;
    const char *sep = "; ";

    if (code > 0)
        (void)buf_printf(&b, "%d %s %s", code, enh, text);
    else
        (void)buf_puts(&b, text);
    if (e->stage >= PS_MAIL) {
        (void)buf_printf(&b, "%sfrom=<%s>", sep, e->sender ? e->sender : "");
        sep = " ";
    }
    if (e->stage == PS_DATA && to == NULL && s->nrcpt > 0)
        to = s->rcpts[0].addr;
    if (to != NULL) {
        (void)buf_printf(&b, "%sto=<%s>", sep, to);
        sep = " ";
    }
    (void)buf_printf(&b, "%sproto=%s", sep, session_protocol(s));
    if (e->helo != NULL)              /* none yet at CONNECT: Postfix leaves it out */
        (void)buf_printf(&b, " helo=<%s>", e->helo);
    msg_info("%s: %s: %s from %s[%s]: %s", s->qid_logged ? s->qid : "NOQUEUE", kind,
             e->verb_name, s->name, s->addr, buf_str(&b));
    buf_free(&b);
}

/* enh_for - the enhanced code enh with its class fitted to code (4xx/5xx) */
static void enh_for(char out[ENH_LEN], int code, const char *enh)
{
    snprintf(out, ENH_LEN, "%s", enh);
    out[0] = code >= 500 ? '5' : '4';
}

static enum rv decide(struct eval *e, int code, const char *enh, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static enum rv defer_if_permit(struct eval *e, int code, const char *enh, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* decide - a restriction rejects or defers (honouring warn_if_reject, defer_if_reject) */
static enum rv decide(struct eval *e, int code, const char *enh, const char *fmt, ...)
{
    struct buf t = BUF_INIT;
    char ebuf[ENH_LEN];
    va_list ap;

    va_start(ap, fmt);
    (void)buf_vprintf(&t, fmt, ap);
    va_end(ap);
    enh_for(ebuf, code, enh);
    if (e->warn_next) {
        log_reject(e, "reject_warning", code, ebuf, buf_str(&t));
        buf_free(&t);
        return RV_DUNNO;
    }
    if (e->defer_if_reject && code >= 500) {
        code = pc.defer_code;
        ebuf[0] = '4';
    }
    e->rejected = true;
    e->code = code;
    memcpy(e->enh, ebuf, ENH_LEN);
    buf_reset(&e->text);
    (void)buf_puts(&e->text, buf_str(&t));
    buf_free(&t);
    return RV_DECIDED;
}

/* defer_if_permit - remember a deferral that applies if the command would be accepted */
static enum rv defer_if_permit(struct eval *e, int code, const char *enh, const char *fmt, ...)
{
    va_list ap;

    if (e->warn_next || e->dip)
        return RV_DUNNO;
    e->dip = true;
    e->dip_code = code;
    enh_for(e->dip_enh, code, enh);
    buf_reset(&e->dip_text);
    va_start(ap, fmt);
    (void)buf_vprintf(&e->dip_text, fmt, ap);
    va_end(ap);
    return RV_DUNNO;
}

/* tempfail - a table failed: defer the command */
static enum rv tempfail(struct eval *e, enum subject subj)
{
    struct buf tmp = BUF_INIT;
    enum rv v = decide(e, 451, "4.3.0", "<%s>: Temporary lookup failure",
                       subj_name(e, subj, &tmp));

    buf_free(&tmp);
    return v;
}

/* generic_reject - "<name>: Class rejected: reason" */
static enum rv generic_reject(struct eval *e, enum subject subj, int code, const char *enh,
                              const char *reason)
{
    struct buf tmp = BUF_INIT;
    enum rv v = decide(e, code, enh, "<%s>: %s rejected: %s", subj_name(e, subj, &tmp),
                       subj_class(subj), reason);

    buf_free(&tmp);
    return v;
}

/* config_error - a broken restriction setting: 451 4.3.5 (logged) */
static enum rv config_error(struct eval *e, enum subject subj)
{
    return generic_reject(e, subj, 451, "4.3.5", "Server configuration error");
}

/* ---------- domains and recipients (relay control) ---------- */

/* domain_of - the domain of an address, "" if none */
static const char *domain_of(const char *addr)
{
    const char *at = addr ? strrchr(addr, '@') : NULL;

    return at ? at + 1 : "";
}

/* is_local_domain - in mydestination (no domain counts as local) */
static enum match_result is_local_domain(const char *domain)
{
    if (domain == NULL || *domain == 0)
        return MATCH_YES;
    return smtpd_conf.mydestination ? matchlist_match_domain(smtpd_conf.mydestination, domain)
                                    : MATCH_NO;
}

/* rcpt_local - cached is_local_domain of the recipient */
static enum match_result rcpt_local(struct eval *e)
{
    if (e->local_dom < 0)
        e->local_dom = (int)is_local_domain(e->domain);
    return (enum match_result)e->local_dom;
}

/* is_auth_destination - a domain we take mail for (local or relayed) */
static enum match_result is_auth_destination(struct eval *e)
{
    enum match_result m = rcpt_local(e);

    if (m != MATCH_NO)
        return m;
    if (smtpd_conf.relay_domains == NULL)
        return MATCH_NO;
    return matchlist_match_domain(smtpd_conf.relay_domains, e->domain);
}

/* check_unlisted - an address in a local/relay domain must be in its table */
static enum rv check_unlisted(struct eval *e, enum subject subj, const char *addr)
{
    const char *domain = domain_of(addr);
    const char *at = strrchr(addr, '@');
    char *local = at ? xstrndup(addr, (size_t)(at - addr)) : xstrdup(addr);
    enum match_result m = is_local_domain(domain);
    struct local_rcpt *maps = smtpd_conf.local_rcpt;
    const char *table = "local";
    bool rcpt = subj == SUBJ_RCPT;
    enum rv v = RV_DUNNO;
    int code;

    if (m == MATCH_NO) {
        maps = NULL;
        if (smtpd_conf.relay_rcpt != NULL && smtpd_conf.relay_domains != NULL) {
            m = matchlist_match_domain(smtpd_conf.relay_domains, domain);
            maps = smtpd_conf.relay_rcpt;
            table = "relay";
        }
    }
    if (m == MATCH_TEMPFAIL) {
        v = tempfail(e, subj);
    } else if (m == MATCH_YES && maps != NULL) {
        switch (local_rcpt_check(maps, local, addr)) {
        case MATCH_YES:
            break;
        case MATCH_TEMPFAIL:
            v = decide(e, 450, "4.3.0", "<%s>: %s rejected: temporary lookup failure", addr,
                       subj_class(subj));
            break;
        default:
            code = smtpd_conf.unknown_local_code;
            v = decide(e, code, rcpt ? "5.1.1" : "5.1.0",
                       "<%s>: %s rejected: User unknown in %s recipient table", addr,
                       subj_class(subj), table);
            break;
        }
    }
    free(local);
    return v;
}

/* ---------- DNS ---------- */

/* eval_resume - (below) a DNS answer arrived: go on with the evaluation */
static void eval_resume(struct eval *e);

/* dns_addr_cb - A/AAAA answer (RBL listing or a domain's addresses) */
static void dns_addr_cb(void *ctx, enum dns_status st, const struct dns_addr *a, size_t n,
                        const char *why)
{
    struct eval *e = ctx;

    (void)why;
    e->dns_busy = false;
    e->dns_have = true;
    e->dns_st = st;
    e->dns_hit = false;
    buf_reset(&e->dns_txt);
    for (size_t i = 0; st == DNS_OK && i < n; i++) {
        char text[INET6_ADDRSTRLEN];
        const struct sockaddr *sa = (const struct sockaddr *)&a[i].sa;

        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, text, sizeof(text));
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, text,
                      sizeof(text));
        else
            continue;
        /* the addresses go to dns_txt, one per line, for the RBL filter */
        (void)buf_printf(&e->dns_txt, "%s\n", text);
    }
    eval_resume(e);
}

/* dns_mx_cb - MX answer (dns_hit: the domain has the Null MX of RFC 7505) */
static void dns_mx_cb(void *ctx, enum dns_status st, const struct dns_mx *mx, size_t n,
                      const char *why)
{
    struct eval *e = ctx;

    (void)why;
    e->dns_busy = false;
    e->dns_have = true;
    e->dns_st = st == DNS_OK && n == 0 ? DNS_NODATA : st;
    e->dns_hit = st == DNS_OK && n == 1 && mx[0].host[0] == 0;
    eval_resume(e);
}

/* dns_txt_cb - TXT answer (the RBL's reason) */
static void dns_txt_cb(void *ctx, enum dns_status st, char *const *txt, size_t n,
                       const char *why)
{
    struct eval *e = ctx;

    (void)why;
    e->dns_busy = false;
    e->dns_have = true;
    e->dns_st = st;
    buf_reset(&e->dns_txt);
    if (st == DNS_OK && n > 0)
        (void)buf_puts(&e->dns_txt, txt[0]);
    eval_resume(e);
}

/* take_answer - the DNS answer for the current step, if there is one */
static bool take_answer(struct eval *e)
{
    if (!e->dns_have)
        return false;
    e->dns_have = false;
    return true;
}

/* unknown_domain - reject_unknown_{sender,recipient}_domain, reject_unknown_helo_hostname */
static enum rv unknown_domain(struct eval *e, enum subject subj, const char *name,
                              const char *domain)
{
    bool helo = subj == SUBJ_HELO;
    int code = helo ? pc.unknown_helo_code : pc.unknown_addr_code;
    const char *enh = helo ? "4.7.1" : subj == SUBJ_SENDER ? "4.1.8" : "4.1.2";
    const char *reason = helo ? "Host not found" : "Domain not found";
    enum tf_action tf = helo ? pc.helo_tf : pc.addr_tf;

    if (!take_answer(e)) {
        e->dns_phase = 0;
        e->dns_busy = true;
        if (dns_lookup_mx(domain, POLICY_DNS_TIMEOUT_MS, dns_mx_cb, e) == NULL) {
            e->dns_busy = false;
            return RV_DUNNO;
        }
        return RV_SUSPEND;
    }
    if (e->dns_st == DNS_OK && e->dns_phase == 0 && e->dns_hit && !helo) {
        /* "MX 0 ." - the domain says it takes no mail (Postfix's codes) */
        bool snd = subj == SUBJ_SENDER;

        return decide(e, snd ? 550 : 556, snd ? "5.7.27" : "5.1.10",
                      "<%s>: %s rejected: Domain %s does not accept mail (nullMX)", name,
                      subj_class(subj), domain);
    }
    if (e->dns_st == DNS_OK)
        return RV_DUNNO;
    if (e->dns_phase == 0 && e->dns_st == DNS_NODATA) {
        /* no MX: the domain's own addresses will do */
        e->dns_phase = 1;
        e->dns_busy = true;
        if (dns_lookup_addr(domain, AF_UNSPEC, false, POLICY_DNS_TIMEOUT_MS, dns_addr_cb, e)
            == NULL) {
            e->dns_busy = false;
            return RV_DUNNO;
        }
        return RV_SUSPEND;
    }
    if (e->dns_st == DNS_TEMPFAIL) {
        if (tf == TF_DUNNO)
            return RV_DUNNO;
        if (tf == TF_DEFER)
            return decide(e, 450, enh, "<%s>: %s rejected: %s", name, subj_class(subj), reason);
        return defer_if_permit(e, 450, enh, "<%s>: %s rejected: %s", name, subj_class(subj),
                               reason);
    }
    return decide(e, code, enh, "<%s>: %s rejected: %s", name, subj_class(subj), reason);
}

/* rbl_query_name - the DNSBL query for an address (reversed) or a name; false if none */
static bool rbl_query_name(const struct restr *r, const char *what, bool addr, char *out,
                           size_t size)
{
    struct in_addr a4;
    struct in6_addr a6;
    struct buf b = BUF_INIT;
    bool ok = true;

    if (!addr) {
        if (*what == 0)
            return false;
        (void)buf_printf(&b, "%s.%s", what, r->arg);
    } else if (inet_pton(AF_INET, what, &a4) == 1) {
        const unsigned char *p = (const unsigned char *)&a4;

        (void)buf_printf(&b, "%u.%u.%u.%u.%s", p[3], p[2], p[1], p[0], r->arg);
    } else if (inet_pton(AF_INET6, what, &a6) == 1) {
        for (int i = IPV6_NIBBLES - 1; i >= 0; i--) {
            unsigned byte = a6.s6_addr[i / 2];

            (void)buf_printf(&b, "%x.", i % 2 ? byte & 0xfu : byte >> 4);
        }
        (void)buf_puts(&b, r->arg);
    } else {
        ok = false;
    }
    ok = ok && b.len < size;
    if (ok)
        memcpy(out, buf_str(&b), b.len + 1);
    buf_free(&b);
    return ok;
}

/* rbl_listed - does the A answer (one address a line in dns_txt) count? */
static bool rbl_listed(const struct eval *e, const struct restr *r)
{
    const char *p = e->dns_txt.data ? e->dns_txt.data : "";

    if (e->dns_st != DNS_OK || *p == 0)
        return false;
    if (r->rbl_filter == NULL)
        return true;
    while (*p) {
        size_t n = strcspn(p, "\n");

        if (n == strlen(r->rbl_filter) && strncmp(p, r->rbl_filter, n) == 0)
            return true;
        p += n + (p[n] == '\n');
    }
    return false;
}

/* rbl - reject_rbl_client and reject_rhsbl_*: A lookup, then TXT for the reason */
static enum rv rbl(struct eval *e, const struct restr *r, enum subject subj, const char *what,
                   bool addr)
{
    char qname[RBL_NAME_MAX];

    if (!rbl_query_name(r, what, addr, qname, sizeof(qname)))
        return RV_DUNNO;
    if (!take_answer(e)) {
        e->dns_phase = 0;
        e->dns_busy = true;
        if (dns_lookup_addr(qname, AF_INET, false, POLICY_DNS_TIMEOUT_MS, dns_addr_cb, e)
            == NULL) {
            e->dns_busy = false;
            return RV_DUNNO;
        }
        return RV_SUSPEND;
    }
    if (e->dns_phase == 0) {
        if (!rbl_listed(e, r))
            return RV_DUNNO;     /* not listed, or the DNSBL failed: Postfix goes on */
        e->dns_phase = 1;
        e->dns_busy = true;
        if (dns_lookup_txt(qname, POLICY_DNS_TIMEOUT_MS, dns_txt_cb, e) == NULL) {
            e->dns_busy = false;
            e->dns_have = true;
            e->dns_st = DNS_TEMPFAIL;
            buf_reset(&e->dns_txt);
        } else {
            return RV_SUSPEND;
        }
        (void)take_answer(e);
    }
    if (e->dns_st == DNS_OK && e->dns_txt.len > 0)
        return decide(e, pc.rbl_code, "5.7.1", "Service unavailable; %s [%s] blocked using %s; %s",
                      subj_class(subj), what, r->arg, buf_str(&e->dns_txt));
    return decide(e, pc.rbl_code, "5.7.1", "Service unavailable; %s [%s] blocked using %s",
                  subj_class(subj), what, r->arg);
}

/* ---------- access tables ---------- */

/* header_name_ok - text starts with a header field name and ':' (PREPEND) */
static bool header_name_ok(const char *text)
{
    size_t n = 0;

    while (text[n] > ' ' && text[n] < 0x7f && text[n] != ':')
        n++;
    return n > 0 && text[n] == ':';
}

/* one_word - a non-empty argument without white space or control characters */
static bool one_word(const char *text)
{
    if (*text == 0)
        return false;
    for (; *text; text++)
        if ((unsigned char)*text <= ' ' || *text == 0x7f)
            return false;
    return true;
}

/* set_action - *slot = "<name>: Class text" (or "triggers WHAT"), logged as kind */
static void set_action(struct eval *e, enum subject subj, char **slot, const char *kind,
                       const char *what, const char *text)
{
    struct buf tmp = BUF_INIT, why = BUF_INIT;

    (void)buf_printf(&why, "<%s>: %s ", subj_name(e, subj, &tmp), subj_class(subj));
    if (*text && slot != NULL)
        (void)buf_puts(&why, text);
    else
        (void)buf_printf(&why, "triggers %s", what);
    log_reject(e, kind, 0, "", buf_str(&why));
    if (slot != NULL) {
        free(*slot);
        *slot = xstrdup(buf_str(&why));
    }
    buf_free(&tmp);
    buf_free(&why);
}

/*
 * other_action - HOLD, DISCARD, PREPEND, REDIRECT, BCC, FILTER: remember
 * it for the message (actions.c) and go on; DISCARD also permits
 */
static enum rv other_action(struct eval *e, const struct restr *r, enum subject subj,
                            const struct access_result *ar, const char *value)
{
    struct smtpd_actions *a = &e->act;
    struct buf what = BUF_INIT;
    enum rv v = RV_DUNNO;

    switch (ar->kind) {
    case AK_HOLD:
        set_action(e, subj, &a->hold, "hold", "HOLD action", ar->text);
        break;
    case AK_DISCARD:
        set_action(e, subj, &a->discard, "discard", "DISCARD action", ar->text);
        v = RV_PERMIT;
        break;
    case AK_PREPEND:
        if (!header_name_ok(ar->text))
            goto bad;
        (void)buf_printf(&a->prepend, "%s\n", ar->text);
        break;
    case AK_REDIRECT:
    case AK_BCC:
    case AK_FILTER:
        if (!one_word(ar->text) || (ar->kind == AK_FILTER && ar->text[0] == ':')
            || (ar->kind == AK_FILTER && strchr(ar->text, ':') == NULL))
            goto bad;
        (void)buf_printf(&what, "%s %s", ar->kind == AK_REDIRECT ? "REDIRECT"
                                         : ar->kind == AK_BCC    ? "BCC"
                                                                 : "FILTER", ar->text);
        if (ar->kind == AK_BCC) {
            set_action(e, subj, NULL, "bcc", buf_str(&what), "");
            a->bcc = xreallocarray(a->bcc, a->nbcc + 1, sizeof(*a->bcc));
            a->bcc[a->nbcc++] = xstrdup(ar->text);
        } else {
            char **slot = ar->kind == AK_REDIRECT ? &a->redirect : &a->filter;

            set_action(e, subj, NULL, ar->kind == AK_REDIRECT ? "redirect" : "filter",
                       buf_str(&what), "");
            free(*slot);
            *slot = xstrdup(ar->text);
        }
        break;
    default:
        break;
    }
    buf_free(&what);
    return v;
bad:
    buf_free(&what);
    msg_warn("access table %s: bad action argument: \"%s\"", r->arg, value);
    return config_error(e, subj);
}

/* access_action - act on a table's value for subject subj */
static enum rv access_action(struct eval *e, const struct restr *r, enum subject subj,
                             const char *value)
{
    struct access_result ar;
    struct buf tmp = BUF_INIT;
    const char *name;
    enum rv v = RV_DUNNO;

    access_parse(value, &pc.rc.classes, &ar);
    name = subj_name(e, subj, &tmp);
    switch (ar.kind) {
    case AK_OK:
        v = RV_PERMIT;
        break;
    case AK_DUNNO:
        break;
    case AK_REJECT:
    case AK_DEFER:
        if (ar.numeric)
            v = decide(e, ar.code, ar.enh[0] ? ar.enh : "5.7.1", "%s",
                       *ar.text ? ar.text : "Error");
        else if (ar.kind == AK_REJECT)
            v = decide(e, pc.access_reject_code, "5.7.1", "<%s>: %s rejected: %s", name,
                       subj_class(subj), *ar.text ? ar.text : "Access denied");
        else
            v = decide(e, pc.access_defer_code, "4.7.1", "<%s>: %s rejected: %s", name,
                       subj_class(subj), *ar.text ? ar.text : "Access denied");
        break;
    case AK_DEFER_IF_PERMIT:
        v = defer_if_permit(e, pc.defer_code, "4.7.1", "<%s>: %s rejected: %s", name,
                            subj_class(subj), *ar.text ? ar.text : "Service unavailable");
        break;
    case AK_DEFER_IF_REJECT:
        e->defer_if_reject = true;
        break;
    case AK_WARN:
        log_reject(e, "warn", 0, "", ar.text);
        break;
    case AK_INFO:
        log_reject(e, "info", 0, "", ar.text);
        break;
    case AK_HOLD:
    case AK_DISCARD:
    case AK_PREPEND:
    case AK_REDIRECT:
    case AK_BCC:
    case AK_FILTER:
        v = other_action(e, r, subj, &ar, value);
        break;
    case AK_RESTRICTION:
        if (ar.op == R_CLASS) {
            if (e->depth >= CLASS_DEPTH_MAX) {
                msg_warn("restriction class %s: nested too deeply", pc.rc.classes.names[ar.class_idx]);
                v = config_error(e, subj);
            } else {
                struct restr cls = {.op = R_CLASS, .class_idx = ar.class_idx};

                v = run_restriction(e, &cls, subj);
            }
        } else {
            struct restr sub = {.op = (enum restr_op)ar.op};

            v = run_restriction(e, &sub, subj);
        }
        break;
    case AK_BAD:
        msg_warn("access table %s: unknown action: \"%s\"", r->arg, value);
        v = config_error(e, subj);
        break;
    }
    buf_free(&tmp);
    return v;
}

/* check_access - look the keys up in order; the first found decides */
static enum rv check_access(struct eval *e, const struct restr *r, enum subject subj,
                            enum subject keys_of)
{
    const char *keys[RESTR_KEYS_MAX];
    char *store = NULL;
    size_t n = 0;
    enum rv v = RV_DUNNO;

    switch (keys_of) {
    case SUBJ_CLIENT:
        n = restr_client_keys(e->s->name, e->s->addr, pc.access_parents, &store, keys);
        break;
    case SUBJ_HELO:
        if (e->helo == NULL)
            return RV_DUNNO;
        n = restr_domain_keys(e->helo, pc.access_parents, &store, keys);
        break;
    case SUBJ_SENDER:
    case SUBJ_RCPT: {
        const char *a = keys_of == SUBJ_SENDER ? e->sender : e->rcpt;

        if (a == NULL)
            return RV_DUNNO;
        if (*a == 0) {
            keys[0] = pc.null_key;
            n = 1;
        } else {
            n = restr_addr_keys(a, pc.access_parents, &store, keys);
        }
        break;
    }
    case SUBJ_DATA:
        return RV_DUNNO;
    }
    for (size_t i = 0; i < n; i++) {
        const char *value;
        enum dict_result dr = dict_lookup(r->table, keys[i], &value);

        if (dr == DICT_NOTFOUND)
            continue;
        if (dr == DICT_TEMPFAIL) {
            msg_warn("%s: table lookup problem for \"%s\"", r->arg, keys[i]);
            v = tempfail(e, subj);
            break;
        }
        {
            char *copy = xstrdup(value);   /* valid until the next lookup only */

            v = access_action(e, r, keys_of, copy);
            free(copy);
        }
        break;
    }
    free(store);
    return v;
}

/* ---------- check_policy_service ---------- */

/* policy_cb - the policy server's action (or the default action) arrived */
static void policy_cb(void *ctx, const char *action)
{
    struct eval *e = ctx;

    e->pol_have = true;
    buf_reset(&e->pol_action);
    (void)buf_puts(&e->pol_action, action);
    eval_resume(e);
}

/* check_policy - ask the policy server, suspend; then act on its action as an access value */
static enum rv check_policy(struct eval *e, const struct restr *r, enum subject subj)
{
    enum rv v;

    if (!e->pol_have) {
        struct buf req = BUF_INIT;

        /* protocol_state is the command judged (RCPT for every list with delay_reject) */
        policy_request_build(&req, e->s, e->verb_name, e->helo, e->sender, e->rcpt,
                             pol_service_spec(r->service)->policy_context);
        pol_request(r->service, &req, policy_cb, e);
        buf_free(&req);
        return RV_SUSPEND;
    }
    /* kept while a restriction named by the action waits for DNS */
    v = access_action(e, r, subj, buf_str(&e->pol_action));
    if (v != RV_SUSPEND)
        e->pol_have = false;
    return v;
}

/* ---------- sender login maps ---------- */

/* login_owners - the SASL logins that own addr (malloc'ed, NULL: none); *fail on tempfail */
static char *login_owners(const char *addr, bool *fail)
{
    const char *at = strrchr(addr, '@');
    char *keys[3] = {xstrdup(addr), NULL, NULL};
    char *owners = NULL;

    *fail = false;
    if (at != NULL) {
        keys[1] = xasprintf("%s", at);                                 /* @domain */
        if (is_local_domain(at + 1) == MATCH_YES)
            keys[2] = xstrndup(addr, (size_t)(at - addr));             /* user */
    }
    for (size_t k = 0; k < 3 && owners == NULL && !*fail; k++) {
        if (keys[k] == NULL)
            continue;
        for (size_t i = 0; i < pc.nlogin_maps; i++) {
            const char *value;
            enum dict_result dr = dict_lookup(pc.login_maps[i], keys[k], &value);

            if (dr == DICT_TEMPFAIL) {
                *fail = true;
                break;
            }
            if (dr == DICT_FOUND) {
                owners = xstrdup(value);
                break;
            }
        }
    }
    for (size_t k = 0; k < 3; k++)
        free(keys[k]);
    return owners;
}

/* owner_listed - is user in the comma/space separated owners? */
static bool owner_listed(const char *owners, const char *user)
{
    const char *p = owners;

    while (*p) {
        size_t n;

        p += strspn(p, ", \t");
        n = strcspn(p, ", \t");
        if (n > 0 && n == strlen(user) && strncasecmp(p, user, n) == 0)
            return true;
        p += n;
    }
    return false;
}

/* sender_login_mismatch - reject_sender_login_mismatch */
static enum rv sender_login_mismatch(struct eval *e)
{
    struct session *s = e->s;
    const char *user = session_authenticated(s) ? s->sasl_username : NULL;
    bool fail;
    char *owners;
    enum rv v = RV_DUNNO;

    if (e->sender == NULL || *e->sender == 0 || pc.nlogin_maps == 0)
        return RV_DUNNO;
    owners = login_owners(e->sender, &fail);
    if (fail)
        v = tempfail(e, SUBJ_SENDER);
    else if (user == NULL && owners != NULL)
        v = decide(e, 553, "5.7.1", "<%s>: Sender address rejected: not logged in", e->sender);
    else if (user != NULL && (owners == NULL || !owner_listed(owners, user)))
        v = decide(e, 553, "5.7.1", "<%s>: Sender address rejected: not owned by user %s",
                   e->sender, user);
    free(owners);
    return v;
}

/* ---------- the restrictions ---------- */

/* pipelined - the client sent more after this command without being allowed to */
static bool pipelined(const struct eval *e)
{
    const struct session *s = e->s;

    if (s->in.len <= s->in_pos)
        return false;
    if (e->stage == PS_DATA)
        return e->verb == V_DATA;
    return !s->esmtp;
}

/* run_restriction - evaluate one restriction in a list whose subject is subj */
static enum rv run_restriction(struct eval *e, const struct restr *r, enum subject subj)
{
    struct session *s = e->s;
    enum match_result m;

    switch (r->op) {
    case R_PERMIT:
        return RV_PERMIT;
    case R_REJECT:
        return generic_reject(e, subj, pc.reject_code, "5.7.1", "Access denied");
    case R_DEFER:
        return generic_reject(e, subj, pc.defer_code, "4.7.1", "Access denied");
    case R_DEFER_IF_PERMIT: {
        struct buf tmp = BUF_INIT;

        defer_if_permit(e, pc.defer_code, "4.7.1", "<%s>: %s rejected: defer_if_permit requested",
                        subj_name(e, subj, &tmp), subj_class(subj));
        buf_free(&tmp);
        return RV_DUNNO;
    }
    case R_DEFER_IF_REJECT:
        e->defer_if_reject = true;
        return RV_DUNNO;
    case R_WARN_IF_REJECT:
        e->warn_next = true;
        return RV_DUNNO;
    case R_DUNNO:
        return RV_DUNNO;
    case R_PERMIT_MYNETWORKS:
        m = smtpd_conf.mynetworks ? matchlist_match_addr(smtpd_conf.mynetworks, s->addr)
                                  : MATCH_NO;
        if (m == MATCH_TEMPFAIL)
            return tempfail(e, SUBJ_CLIENT);
        return m == MATCH_YES ? RV_PERMIT : RV_DUNNO;
    case R_PERMIT_SASL:
        return session_authenticated(s) ? RV_PERMIT : RV_DUNNO;
    case R_PERMIT_AUTH_DEST:
    case R_REJECT_UNAUTH_DEST:
    case R_DEFER_UNAUTH_DEST:
        if (e->rcpt == NULL)
            return RV_DUNNO;
        m = is_auth_destination(e);
        if (m == MATCH_TEMPFAIL)
            return tempfail(e, SUBJ_RCPT);
        if (r->op == R_PERMIT_AUTH_DEST)
            return m == MATCH_YES ? RV_PERMIT : RV_DUNNO;
        if (m == MATCH_YES)
            return RV_DUNNO;
        if (r->op == R_DEFER_UNAUTH_DEST)
            return decide(e, pc.relay_code - 100, "4.7.1", "<%s>: Relay access denied", e->rcpt);
        return decide(e, pc.relay_code, "5.7.1", "<%s>: Relay access denied", e->rcpt);
    case R_REJECT_UNKNOWN_RCPT_DOMAIN:
    case R_REJECT_UNKNOWN_SENDER_DOMAIN: {
        bool snd = r->op == R_REJECT_UNKNOWN_SENDER_DOMAIN;
        const char *a = snd ? e->sender : e->rcpt;
        const char *d = domain_of(a);

        if (a == NULL || *d == 0 || *d == '[' || is_local_domain(d) != MATCH_NO)
            return RV_DUNNO;
        return unknown_domain(e, snd ? SUBJ_SENDER : SUBJ_RCPT, a, d);
    }
    case R_REJECT_NON_FQDN_SENDER:
    case R_REJECT_NON_FQDN_RCPT: {
        bool snd = r->op == R_REJECT_NON_FQDN_SENDER;
        const char *a = snd ? e->sender : e->rcpt;

        if (a == NULL || *a == 0 || strcasecmp(a, "postmaster") == 0)
            return RV_DUNNO;
        if (strchr(a, '@') != NULL && restr_fqdn(domain_of(a)))
            return RV_DUNNO;
        return decide(e, pc.non_fqdn_code, "5.5.2", "<%s>: %s rejected: need fully-qualified address",
                      a, subj_class(snd ? SUBJ_SENDER : SUBJ_RCPT));
    }
    case R_REJECT_NON_FQDN_HELO:
        if (e->helo == NULL || restr_fqdn(e->helo))
            return RV_DUNNO;
        return decide(e, pc.non_fqdn_code, "5.5.2",
                      "<%s>: Helo command rejected: need fully-qualified hostname", e->helo);
    case R_REJECT_INVALID_HELO:
        if (e->helo == NULL || restr_valid_hostname(e->helo))
            return RV_DUNNO;
        return decide(e, pc.invalid_helo_code, "5.5.2", "<%s>: Helo command rejected: Invalid name",
                      e->helo);
    case R_REJECT_UNKNOWN_HELO:
        if (e->helo == NULL || e->helo[0] == '[' || !restr_valid_hostname(e->helo))
            return RV_DUNNO;
        return unknown_domain(e, SUBJ_HELO, e->helo, e->helo);
    case R_REJECT_UNKNOWN_CLIENT:
        if (strcmp(s->name, "unknown") != 0)
            return RV_DUNNO;
        /* RFC 7372's code for a client without a name, as Postfix 3 answers */
        return decide(e, pc.unknown_client_code, "4.7.25",
                      "Client host rejected: cannot find your hostname, [%s]", s->addr);
    case R_REJECT_UNLISTED_RCPT:
        return e->rcpt ? check_unlisted(e, SUBJ_RCPT, e->rcpt) : RV_DUNNO;
    case R_REJECT_UNLISTED_SENDER:
        return e->sender && *e->sender ? check_unlisted(e, SUBJ_SENDER, e->sender) : RV_DUNNO;
    case R_REJECT_UNAUTH_PIPELINING:
        if (!pipelined(e))
            return RV_DUNNO;
        return generic_reject(e, subj, 503, "5.5.0", "Improper use of SMTP command pipelining");
    case R_REJECT_RBL_CLIENT:
        return rbl(e, r, SUBJ_CLIENT, s->addr, true);
    case R_REJECT_RHSBL_CLIENT:
        return strcmp(s->name, "unknown") ? rbl(e, r, SUBJ_CLIENT, s->name, false) : RV_DUNNO;
    case R_REJECT_RHSBL_HELO:
        return e->helo ? rbl(e, r, SUBJ_HELO, e->helo, false) : RV_DUNNO;
    case R_REJECT_RHSBL_SENDER:
        return e->sender ? rbl(e, r, SUBJ_SENDER, domain_of(e->sender), false) : RV_DUNNO;
    case R_REJECT_RHSBL_RCPT:
        return e->rcpt ? rbl(e, r, SUBJ_RCPT, domain_of(e->rcpt), false) : RV_DUNNO;
    case R_CHECK_CLIENT_ACCESS:
        return check_access(e, r, subj, SUBJ_CLIENT);
    case R_CHECK_HELO_ACCESS:
        return check_access(e, r, subj, SUBJ_HELO);
    case R_CHECK_SENDER_ACCESS:
        return check_access(e, r, subj, SUBJ_SENDER);
    case R_CHECK_RCPT_ACCESS:
        return check_access(e, r, subj, SUBJ_RCPT);
    case R_REJECT_SENDER_LOGIN_MISMATCH:
        return sender_login_mismatch(e);
    case R_CHECK_POLICY:
        return check_policy(e, r, subj);
    case R_CLASS: {
        /* a class is a list of its own: evaluated in place, its permit ends it */
        const struct restr_list *l = &pc.rc.classes.lists[r->class_idx];

        if (e->depth >= CLASS_DEPTH_MAX) {
            msg_warn("restriction class %s: nested too deeply", pc.rc.classes.names[r->class_idx]);
            return config_error(e, subj);
        }
        e->stack[e->depth++] = (struct frame){l, 0};
        return RV_DUNNO;      /* eval_list runs the frame */
    }
    case R_COUNT:
        break;
    }
    msg_panic("run_restriction: bad restriction %d", (int)r->op);
}

/* ---------- the evaluation ---------- */

/* eval_list - run the current list from where it stopped */
static enum rv eval_list(struct eval *e)
{
    enum subject subj = e->subj[e->li];

    for (;;) {
        struct frame *f = &e->stack[e->depth - 1];
        size_t depth;
        enum rv v;

        if (f->i >= f->list->n) {
            if (e->depth == 1)
                return RV_DUNNO;
            e->depth--;          /* a class that decided nothing: back to its caller */
            e->stack[e->depth - 1].i++;
            continue;
        }
        depth = e->depth;
        v = run_restriction(e, &f->list->v[f->i], subj);
        if (v == RV_SUSPEND)
            return v;
        if (e->depth > depth)
            continue;            /* a class frame was pushed: run it */
        if (f->list->v[f->i].op != R_WARN_IF_REJECT)
            e->warn_next = false;
        if (v == RV_PERMIT && e->depth > 1) {
            /* a class that permits ends the class and the list that used it */
            e->depth = 1;
            return RV_PERMIT;
        }
        if (v != RV_DUNNO)
            return v;
        f->i++;
    }
}

/* eval_run - the lists, then the unlisted checks; RV_SUSPEND while DNS works */
static enum rv eval_run(struct eval *e)
{
    while (e->step == 0 && e->li < e->nlists) {
        enum rv v;

        if (e->depth == 0)
            e->stack[e->depth++] = (struct frame){e->lists[e->li], 0};
        v = eval_list(e);
        if (v == RV_SUSPEND)
            return v;
        if (v == RV_DECIDED)
            return v;
        e->depth = 0;            /* permit or end: the next list */
        e->li++;
    }
    if (e->step == 0) {
        e->step = 1;
        if (e->sender && *e->sender && pc.reject_unlisted_sender
            && (e->stage == PS_MAIL || (e->stage == PS_RCPT && pc.delay_reject))
            && check_unlisted(e, SUBJ_SENDER, e->sender) == RV_DECIDED)
            return RV_DECIDED;
        if (e->stage == PS_RCPT && smtpd_conf.reject_unlisted
            && check_unlisted(e, SUBJ_RCPT, e->rcpt) == RV_DECIDED)
            return RV_DECIDED;
    }
    e->step = 2;
    if (e->dip) {
        e->rejected = true;
        e->code = e->dip_code;
        memcpy(e->enh, e->dip_enh, ENH_LEN);
        buf_reset(&e->text);
        (void)buf_puts(&e->text, buf_str(&e->dip_text));
        return RV_DECIDED;
    }
    return RV_PERMIT;
}

/* eval_free - release an evaluation */
static void eval_free(struct eval *e)
{
    free(e->arg);
    free(e->helo);
    free(e->sender);
    free(e->rcpt);
    free(e->domain);
    free(e->local);
    buf_free(&e->dip_text);
    buf_free(&e->text);
    buf_free(&e->dns_txt);
    buf_free(&e->pol_action);
    actions_reset(&e->act);
    free(e);
}

/* eval_new - an evaluation of the given lists for a command */
static struct eval *eval_new(struct session *s, enum stage stage, enum smtpd_verb verb,
                             const char *verb_name, const char *arg, policy_again_fn *again)
{
    struct eval *e = xcalloc(1, sizeof(*e));

    e->s = s;
    e->stage = stage;
    e->verb = verb;
    e->verb_name = verb_name;
    e->arg = xstrdup(arg);
    e->again = again;
    e->local_dom = -1;
    e->helo = s->helo ? xstrdup(s->helo) : NULL;
    return e;
}

/* eval_add - one more list to evaluate (empty ones are skipped) */
static void eval_add(struct eval *e, const struct restr_list *l, enum subject subj)
{
    if (l->n == 0 || e->nlists >= NLISTS_MAX)
        return;
    e->lists[e->nlists] = l;
    e->subj[e->nlists++] = subj;
}

/* intern - a text that lives as long as the process (bounded) */
static const char *intern(const char *text)
{
    for (size_t i = 0; i < nintern; i++)
        if (strcmp(intern_texts[i], text) == 0)
            return intern_texts[i];
    if (nintern >= INTERN_MAX)
        return "Data command rejected";
    intern_texts[nintern] = xstrdup(text);
    return intern_texts[nintern++];
}

/* eval_apply - the decision: reply (or fill *r for DATA/BDAT) and log; 0 to accept */
static int eval_apply(struct eval *e, struct smtpd_result *r)
{
    if (!e->rejected) {
        if (e->stage <= PS_HELO) {
            actions_merge(&e->s->sess_act, &e->act);    /* for every message */
        } else {
            actions_merge(&e->s->act, &e->act);
        }
        return 0;
    }
    log_reject(e, "reject", e->code, e->enh, buf_str(&e->text));
    if (r != NULL) {
        r->code = e->code;
        r->enh = intern(e->enh);
        r->text = intern(buf_str(&e->text));
    } else {
        reply(e->s, e->code, e->enh, "%s", buf_str(&e->text));
    }
    return e->code;
}

/* eval_finish - after the handler's second call: count, limits, resume the session */
static void eval_finish(struct eval *e)
{
    struct session *s = e->s;

    s->wait &= ~SW_LOOKUP;
    if (!s->dead) {
        unsigned before = s->errors;
        int code;

        reentry = e;
        code = e->again(s, e->arg);
        reentry = NULL;
        if (code != REPLY_LATER)
            session_count_verb(s, e->verb, code);
        session_check_errors(s, before);
    }
    eval_free(e);
    s->busy--;                 /* the reference taken when the evaluation suspended */
    /* flushes the reply and goes on with pipelined input; frees a dead session */
    session_resume(s);
}

/* eval_resume - a DNS answer arrived: go on from the restriction that waited */
static void eval_resume(struct eval *e)
{
    if (!e->s->dead && eval_run(e) == RV_SUSPEND)
        return;
    eval_finish(e);
}

/* eval_start - run an evaluation; 0 (accept), the reply code, or POLICY_LATER */
static int eval_start(struct eval *e, struct smtpd_result *r)
{
    int code;

    if (eval_run(e) == RV_SUSPEND) {
        e->s->wait |= SW_LOOKUP;
        e->s->busy++;         /* not freed while the lookup runs (see eval_finish) */
        return POLICY_LATER;
    }
    code = eval_apply(e, r);
    eval_free(e);
    return code;
}

/* take_reentry - the decided evaluation of this session, if the handler runs again */
static struct eval *take_reentry(struct session *s)
{
    struct eval *e = reentry;

    if (e == NULL || e->s != s)
        return NULL;
    reentry = NULL;
    return e;
}

/* policy_connect - the greeting (smtpd_delay_reject = no): client list */
int policy_connect(struct session *s, policy_again_fn *again)
{
    struct eval *e = take_reentry(s);

    if (e != NULL)
        return eval_apply(e, NULL);
    if (pc.delay_reject || pc.rc.client.n == 0)
        return 0;
    e = eval_new(s, PS_CONNECT, V_UNKNOWN, "CONNECT", "", again);
    eval_add(e, &pc.rc.client, SUBJ_CLIENT);
    return eval_start(e, NULL);
}

/* policy_helo - HELO/EHLO (smtpd_delay_reject = no): helo list */
int policy_helo(struct session *s, const char *verb, const char *arg, policy_again_fn *again)
{
    struct eval *e = take_reentry(s);

    if (e != NULL)
        return eval_apply(e, NULL);
    if (pc.delay_reject || *arg == 0 || pc.rc.helo.n == 0)
        return 0;
    e = eval_new(s, PS_HELO, strcmp(verb, "EHLO") == 0 ? V_EHLO : V_HELO,
                 strcmp(verb, "EHLO") == 0 ? "EHLO" : "HELO", arg, again);
    free(e->helo);
    e->helo = xstrdup(arg);
    for (char *p = e->helo; *p; p++)
        if ((unsigned char)*p < ' ' || *p == 0x7f)
            *p = '?';
    eval_add(e, &pc.rc.helo, SUBJ_HELO);
    return eval_start(e, NULL);
}

/* policy_mail - MAIL FROM (smtpd_delay_reject = no): sender list */
int policy_mail(struct session *s, const char *sender, const char *arg, policy_again_fn *again)
{
    struct eval *e = take_reentry(s);

    if (e != NULL)
        return eval_apply(e, NULL);
    if (pc.delay_reject)
        return 0;
    e = eval_new(s, PS_MAIL, V_MAIL, "MAIL", arg, again);
    e->sender = xstrdup(sender);
    eval_add(e, &pc.rc.sender, SUBJ_SENDER);
    return eval_start(e, NULL);
}

/* policy_rcpt_check - RCPT TO: delayed lists, relay, recipient, unlisted recipient */
int policy_rcpt_check(struct session *s, const char *rcpt, const char *domain,
                      const char *local, const char *arg, policy_again_fn *again)
{
    struct eval *e = take_reentry(s);

    if (e != NULL)
        return eval_apply(e, NULL);
    e = eval_new(s, PS_RCPT, V_RCPT, "RCPT", arg, again);
    e->sender = xstrdup(s->sender ? s->sender : "");
    e->rcpt = xstrdup(rcpt);
    e->domain = xstrdup(domain ? domain : "");
    e->local = xstrdup(local ? local : "");
    if (pc.delay_reject) {
        eval_add(e, &pc.rc.client, SUBJ_CLIENT);
        eval_add(e, &pc.rc.helo, SUBJ_HELO);
        eval_add(e, &pc.rc.sender, SUBJ_SENDER);
    }
    eval_add(e, &pc.rc.relay, SUBJ_RCPT);
    eval_add(e, &pc.rc.rcpt, SUBJ_RCPT);
    return eval_start(e, NULL);
}

/* policy_data - DATA or the first BDAT: the data list */
int policy_data(struct session *s, const char *verb, const char *arg, policy_again_fn *again,
                struct smtpd_result *r)
{
    struct eval *e = take_reentry(s);
    bool bdat = strcmp(verb, "BDAT") == 0;

    if (e != NULL)
        return eval_apply(e, r);
    if (pc.rc.data.n == 0)
        return 0;
    e = eval_new(s, PS_DATA, bdat ? V_BDAT : V_DATA, bdat ? "BDAT" : "DATA", arg, again);
    e->sender = xstrdup(s->sender ? s->sender : "");
    eval_add(e, &pc.rc.data, SUBJ_DATA);
    return eval_start(e, r);
}

/* ---------- configuration ---------- */

/* tf_action - unknown_address_tempfail_action and friends */
static enum tf_action tf_action(struct cfg *cfg, const char *param)
{
    const char *v = cfg_str(cfg, param);

    if (strcasecmp(v, "defer_if_permit") == 0)
        return TF_DEFER_IF_PERMIT;
    if (strcasecmp(v, "defer") == 0)
        return TF_DEFER;
    if (strcasecmp(v, "dunno") == 0)
        return TF_DUNNO;
    msg_fatal("%s: unsupported value \"%s\" (defer_if_permit, defer or dunno)", param, v);
}

/* uses_dns - does a list hold a restriction that asks DNS? */
static bool uses_dns(const struct restr_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        switch (l->v[i].op) {
        case R_REJECT_UNKNOWN_RCPT_DOMAIN:
        case R_REJECT_UNKNOWN_SENDER_DOMAIN:
        case R_REJECT_UNKNOWN_HELO:
        case R_REJECT_RBL_CLIENT:
        case R_REJECT_RHSBL_CLIENT:
        case R_REJECT_RHSBL_HELO:
        case R_REJECT_RHSBL_SENDER:
        case R_REJECT_RHSBL_RCPT:
        case R_CHECK_CLIENT_ACCESS:     /* a result may name a DNS restriction */
        case R_CHECK_HELO_ACCESS:
        case R_CHECK_SENDER_ACCESS:
        case R_CHECK_RCPT_ACCESS:
        case R_CHECK_POLICY:
            return true;
        default:
            break;
        }
    }
    return false;
}

/* open_services - the check_policy_service servers of a list (fatal on a bad argument) */
static void open_services(struct restr_list *l, const struct pol_spec *defaults)
{
    for (size_t i = 0; i < l->n; i++) {
        struct pol_spec spec;
        char *why = NULL;

        if (l->v[i].op != R_CHECK_POLICY)
            continue;
        if (!pol_spec_parse(l->v[i].arg, defaults, &spec, &why))   /* (checked by now) */
            msg_fatal("%s: check_policy_service: %s", l->param, why);
        l->v[i].service = pol_service_get(l->v[i].arg, &spec);
    }
}

/* policy_init - parse every list, open its tables, set up DNS; fatal on any error */
void policy_init(struct cfg *cfg)
{
    const struct restr_list *all[] = {&pc.rc.client, &pc.rc.helo, &pc.rc.sender,
                                      &pc.rc.relay, &pc.rc.rcpt, &pc.rc.data};
    size_t n;
    char **maps;
    const char *err = NULL;
    char *why = NULL;
    bool dns = false;

    if (!restr_config_load(cfg, true, &pc.rc, &why))
        msg_fatal("%s", why);
    {
        struct restr_list *lists[] = {&pc.rc.client, &pc.rc.helo, &pc.rc.sender,
                                      &pc.rc.relay, &pc.rc.rcpt, &pc.rc.data};
        struct pol_spec defaults;

        pol_client_init(cfg);
        pol_spec_defaults(cfg, &defaults);
        for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
            open_services(lists[i], &defaults);
        for (size_t i = 0; i < pc.rc.classes.n; i++)
            open_services(&pc.rc.classes.lists[i], &defaults);
        pol_spec_free(&defaults);
    }
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        dns = dns || uses_dns(all[i]);
    for (size_t i = 0; i < pc.rc.classes.n; i++)
        dns = dns || uses_dns(&pc.rc.classes.lists[i]);
    pc.delay_reject = cfg_bool(cfg, "smtpd_delay_reject");
    pc.reject_unlisted_sender = cfg_bool(cfg, "smtpd_reject_unlisted_sender");
    pc.null_key = xstrdup(cfg_str(cfg, "smtpd_null_access_lookup_key"));
    pc.access_reject_code = (int)cfg_int(cfg, "access_map_reject_code");
    pc.access_defer_code = (int)cfg_int(cfg, "access_map_defer_code");
    pc.reject_code = (int)cfg_int(cfg, "reject_code");
    pc.defer_code = (int)cfg_int(cfg, "defer_code");
    pc.relay_code = (int)cfg_int(cfg, "relay_domains_reject_code");
    pc.rbl_code = (int)cfg_int(cfg, "maps_rbl_reject_code");
    pc.unknown_addr_code = (int)cfg_int(cfg, "unknown_address_reject_code");
    pc.unknown_client_code = (int)cfg_int(cfg, "unknown_client_reject_code");
    pc.unknown_helo_code = (int)cfg_int(cfg, "unknown_hostname_reject_code");
    pc.non_fqdn_code = (int)cfg_int(cfg, "non_fqdn_reject_code");
    pc.invalid_helo_code = (int)cfg_int(cfg, "invalid_hostname_reject_code");
    pc.addr_tf = tf_action(cfg, "unknown_address_tempfail_action");
    pc.helo_tf = tf_action(cfg, "unknown_helo_hostname_tempfail_action");
    if (pc.relay_code < 500)
        msg_fatal("relay_domains_reject_code must be 5xx");
    {
        size_t np;
        char **parents = cfg_list(cfg, "parent_domain_matches_subdomains", &np);

        for (size_t i = 0; i < np; i++)
            if (strcmp(parents[i], "smtpd_access_maps") == 0)
                pc.access_parents = true;
        cfg_list_free(parents, np);
    }
    maps = cfg_list(cfg, "smtpd_sender_login_maps", &n);
    pc.login_maps = xcalloc(n ? n : 1, sizeof(*pc.login_maps));
    for (size_t i = 0; i < n; i++) {
        why = NULL;
        pc.login_maps[i] = dict_open(maps[i], 0, &why);
        if (pc.login_maps[i] == NULL)
            msg_fatal("smtpd_sender_login_maps: %s: %s", maps[i], why ? why : "cannot open");
    }
    pc.nlogin_maps = n;
    cfg_list_free(maps, n);
    if (!dns_set_servers(cfg_str(cfg, "dns_servers"), &err))
        msg_fatal("dns_servers: %s", err);
    if (dns)
        dns_init();
}
