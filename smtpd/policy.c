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
 * list is evaluated at DATA and at the first BDAT, the end-of-data list
 * once the content has arrived (before the commit). After the recipient
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
 * The restrictions that consult tables and servers (check_*_access with
 * the access actions, check_policy_service, reject_sender_login_mismatch)
 * are in policy_access.c; what both files share, in policy_impl.h.
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
#include "mail/valias.h"
#include "util/alloc.h"
#include "util/dict.h"
#include "util/dns.h"
#include "util/log.h"

#include "policy.h"
#include "policy_client.h"
#include "policy_impl.h"
#include "smtpd.h"

struct policy_conf pc;
static struct eval *reentry;      /* the decided evaluation, during the handler's second call */
static char *intern_texts[INTERN_MAX];
static size_t nintern;


/* ---------- names, replies and logging ---------- */

/* subj_class - "Client host", "Sender address", ... */
const char *subj_class(enum subject subj)
{
    static const char *const names[] = {"Client host", "Helo command", "Sender address",
                                        "Recipient address", "Data command", "End-of-data"};

    return names[subj];
}

/* subj_name - what the reply names in <>: client, HELO name, address, command */
const char *subj_name(struct eval *e, enum subject subj, struct buf *tmp)
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
    case SUBJ_EOD:
        return e->verb_name;
    }
    return "";
}

/* log_reject - the one place that logs a rejection (kind: reject, reject_warning, warn) */
void log_reject(struct eval *e, const char *kind, int code, const char *enh,
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
    if (e->stage >= PS_DATA && to == NULL && s->nrcpt > 0)
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


/* decide - a restriction rejects or defers (honouring warn_if_reject, defer_if_reject) */
enum rv decide(struct eval *e, int code, const char *enh, const char *fmt, ...)
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
enum rv defer_if_permit(struct eval *e, int code, const char *enh, const char *fmt, ...)
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
enum rv tempfail(struct eval *e, enum subject subj)
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
enum rv config_error(struct eval *e, enum subject subj)
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
enum match_result is_local_domain(const char *domain)
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

/* is_auth_destination - a domain we take mail for (local, virtual alias or relayed) */
static enum match_result is_auth_destination(struct eval *e)
{
    enum match_result m = rcpt_local(e);

    if (m != MATCH_NO)
        return m;
    if ((m = valias_domain(smtpd_conf.valias, e->domain)) != MATCH_NO)
        return m;
    if (smtpd_conf.relay_domains == NULL)
        return MATCH_NO;
    return matchlist_match_domain(smtpd_conf.relay_domains, e->domain);
}

/*
 * check_valias - Postfix's order before the class tables: an address with
 * an entry in virtual_alias_maps is known (RV_PERMIT); one in a virtual
 * alias domain (not local) without one is unknown; RV_DUNNO: go on
 */
static enum rv check_valias(struct eval *e, enum subject subj, const char *addr,
                            enum match_result local)
{
    enum match_result m = valias_listed(smtpd_conf.valias, addr);

    if (m == MATCH_YES)
        return RV_PERMIT;
    if (m == MATCH_NO && local != MATCH_NO)
        return RV_DUNNO;
    if (m == MATCH_NO)
        m = valias_domain(smtpd_conf.valias, domain_of(addr));
    if (m == MATCH_TEMPFAIL)
        return decide(e, 450, "4.3.0", "<%s>: %s rejected: temporary lookup failure", addr,
                      subj_class(subj));
    if (m == MATCH_NO)
        return RV_DUNNO;
    return decide(e, smtpd_conf.unknown_valias_code, subj == SUBJ_RCPT ? "5.1.1" : "5.1.0",
                  "<%s>: %s rejected: User unknown in virtual alias table", addr,
                  subj_class(subj));
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

    if (m != MATCH_TEMPFAIL && (v = check_valias(e, subj, addr, m)) != RV_DUNNO) {
        free(local);
        return v == RV_PERMIT ? RV_DUNNO : v;
    }
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

/* ---------- the restrictions ---------- */

/* pipelined - the client sent more after this command without being allowed to */
static bool pipelined(const struct eval *e)
{
    const struct session *s = e->s;

    if (s->in.len <= s->in_pos)
        return false;
    if (e->stage == PS_EOD)
        return false;       /* after the content, the next command may follow */
    if (e->stage == PS_DATA)
        return e->verb == V_DATA;
    return !s->esmtp;
}

/* run_restriction - evaluate one restriction in a list whose subject is subj */
enum rv run_restriction(struct eval *e, const struct restr *r, enum subject subj)
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
void eval_resume(struct eval *e)
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

/* policy_resuming - is the decided evaluation of s waiting for its handler? */
bool policy_resuming(const struct session *s)
{
    return reentry != NULL && reentry->s == s;
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

/* policy_eod - the end of the content: the end-of-data list */
int policy_eod(struct session *s, policy_again_fn *again, struct smtpd_result *r)
{
    struct eval *e = take_reentry(s);

    if (e != NULL)
        return eval_apply(e, r);
    if (pc.rc.eod.n == 0)
        return 0;
    e = eval_new(s, PS_EOD, s->chunk_last ? V_BDAT : V_DATA, "END-OF-MESSAGE", "", again);
    e->sender = xstrdup(s->sender ? s->sender : "");
    eval_add(e, &pc.rc.eod, SUBJ_EOD);
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
    struct restr_list *lists[RESTR_LISTS];
    size_t n, nlists;
    char **maps;
    const char *err = NULL;
    char *why = NULL;
    bool dns = false;

    if (!restr_config_load(cfg, true, &pc.rc, &why))
        msg_fatal("%s", why);
    nlists = restr_config_lists(&pc.rc, lists);
    {
        struct pol_spec defaults;

        pol_client_init(cfg);
        pol_spec_defaults(cfg, &defaults);
        for (size_t i = 0; i < nlists; i++)
            open_services(lists[i], &defaults);
        for (size_t i = 0; i < pc.rc.classes.n; i++)
            open_services(&pc.rc.classes.lists[i], &defaults);
        pol_spec_free(&defaults);
    }
    for (size_t i = 0; i < nlists; i++)
        dns = dns || uses_dns(lists[i]);
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
