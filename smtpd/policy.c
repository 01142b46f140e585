/*
 * policy.c - RCPT TO restrictions: smtpd_relay_restrictions, then
 * smtpd_recipient_restrictions, then the unlisted-recipient check
 *
 * A restriction list is evaluated left to right: the first restriction
 * that permits ends the list (the next list is evaluated), the first that
 * rejects or defers answers the client; a list that runs out decides
 * nothing. Known restrictions: permit_mynetworks,
 * permit_sasl_authenticated (consults session_authenticated(), the AUTH
 * seam), permit_auth_destination, reject_unauth_destination,
 * defer_unauth_destination, reject_unlisted_recipient, permit, reject,
 * defer, dunno. "Auth destination": the recipient domain matches
 * mydestination or relay_domains.
 *
 * With smtpd_reject_unlisted_recipient = yes a recipient in a
 * mydestination domain must also be known to local_recipient_maps, and
 * one in a relay_domains domain to relay_recipient_maps when that is set.
 *
 * DIAGNOSTICS: an unknown restriction name is logged as a warning and
 * answered 451 4.3.5 Server configuration error (as Postfix does); a
 * table that fails answers 4xx "temporary lookup failure".
 */
#include "util/sys.h"

#include <string.h>

#include "mail/matchlist.h"
#include "util/log.h"

#include "smtpd.h"

enum verdict { V_DUNNO, V_PERMIT, V_DECIDED };

struct rcpt_ctx {
    struct session *s;
    const char *rcpt, *domain, *local;
    int local_dom;        /* -1 unknown, else enum match_result for mydestination */
    int code;             /* the reply sent, when V_DECIDED */
};

/* is_local_domain - domain in mydestination (Postmaster without a domain too) */
static enum match_result is_local_domain(struct rcpt_ctx *c)
{
    if (c->local_dom < 0) {
        if (c->domain == NULL || *c->domain == 0)
            c->local_dom = MATCH_YES;
        else
            c->local_dom = smtpd_conf.mydestination
                ? (int)matchlist_match_domain(smtpd_conf.mydestination, c->domain)
                : MATCH_NO;
    }
    return (enum match_result)c->local_dom;
}

/* is_auth_destination - a domain we take mail for (local or relayed) */
static enum match_result is_auth_destination(struct rcpt_ctx *c)
{
    enum match_result m = is_local_domain(c);

    if (m != MATCH_NO)
        return m;
    if (smtpd_conf.relay_domains == NULL)
        return MATCH_NO;
    return matchlist_match_domain(smtpd_conf.relay_domains, c->domain);
}

/* tempfail - a table failed: defer this recipient */
static enum verdict tempfail(struct rcpt_ctx *c)
{
    c->code = reject_rcpt(c->s, c->rcpt, 451, "4.3.0", "<%s>: Temporary lookup failure", c->rcpt);
    return V_DECIDED;
}

/* check_unlisted - local recipients must be in local_recipient_maps */
static enum verdict check_unlisted(struct rcpt_ctx *c)
{
    enum match_result m = is_local_domain(c);
    int code;

    struct local_rcpt *maps = smtpd_conf.local_rcpt;
    const char *table = "local";

    if (m == MATCH_TEMPFAIL)
        return tempfail(c);
    if (m == MATCH_NO) {
        if (smtpd_conf.relay_rcpt == NULL || smtpd_conf.relay_domains == NULL)
            return V_DUNNO;
        m = matchlist_match_domain(smtpd_conf.relay_domains, c->domain);
        if (m == MATCH_TEMPFAIL)
            return tempfail(c);
        if (m == MATCH_NO)
            return V_DUNNO;
        maps = smtpd_conf.relay_rcpt;
        table = "relay";
    }
    if (maps == NULL)
        return V_DUNNO;
    switch (local_rcpt_check(maps, c->local ? c->local : "", c->rcpt)) {
    case MATCH_YES:
        return V_DUNNO;
    case MATCH_TEMPFAIL:
        c->code = reject_rcpt(c->s, c->rcpt, 450, "4.3.0",
                              "<%s>: Recipient address rejected: temporary lookup failure",
                              c->rcpt);
        return V_DECIDED;
    default:
        code = smtpd_conf.unknown_local_code;
        c->code = reject_rcpt(c->s, c->rcpt, code, code >= 500 ? "5.1.1" : "4.1.1",
                              "<%s>: Recipient address rejected: User unknown in %s "
                              "recipient table", c->rcpt, table);
        return V_DECIDED;
    }
}

/* restriction - evaluate one restriction by name */
static enum verdict restriction(struct rcpt_ctx *c, const char *name)
{
    struct session *s = c->s;
    enum match_result m;

    if (strcmp(name, "permit_mynetworks") == 0) {
        m = smtpd_conf.mynetworks ? matchlist_match_addr(smtpd_conf.mynetworks, s->addr) : MATCH_NO;
        if (m == MATCH_TEMPFAIL)
            return tempfail(c);
        return m == MATCH_YES ? V_PERMIT : V_DUNNO;
    }
    if (strcmp(name, "permit_sasl_authenticated") == 0)
        return session_authenticated(s) ? V_PERMIT : V_DUNNO;
    if (strcmp(name, "permit_auth_destination") == 0) {
        m = is_auth_destination(c);
        if (m == MATCH_TEMPFAIL)
            return tempfail(c);
        return m == MATCH_YES ? V_PERMIT : V_DUNNO;
    }
    if (strcmp(name, "reject_unauth_destination") == 0
        || strcmp(name, "defer_unauth_destination") == 0) {
        bool defer = name[0] == 'd';

        m = is_auth_destination(c);
        if (m == MATCH_TEMPFAIL)
            return tempfail(c);
        if (m == MATCH_YES)
            return V_DUNNO;
        c->code = reject_rcpt(s, c->rcpt, defer ? 454 : 554, defer ? "4.7.1" : "5.7.1",
                              "<%s>: Relay access denied", c->rcpt);
        return V_DECIDED;
    }
    if (strcmp(name, "reject_unlisted_recipient") == 0)
        return check_unlisted(c);
    if (strcmp(name, "permit") == 0)
        return V_PERMIT;
    if (strcmp(name, "dunno") == 0)
        return V_DUNNO;
    if (strcmp(name, "reject") == 0) {
        c->code = reject_rcpt(s, c->rcpt, 554, "5.7.1",
                              "<%s>: Recipient address rejected: Access denied", c->rcpt);
        return V_DECIDED;
    }
    if (strcmp(name, "defer") == 0) {
        c->code = reject_rcpt(s, c->rcpt, 450, "4.7.1",
                              "<%s>: Recipient address rejected: Access denied", c->rcpt);
        return V_DECIDED;
    }
    msg_warn("unknown smtpd restriction: \"%s\"", name);
    reply(s, 451, "4.3.5", "Server configuration error");
    c->code = 451;
    return V_DECIDED;
}

/* restriction_list - first permit or reject decides; V_DUNNO if none does */
static enum verdict restriction_list(struct rcpt_ctx *c, char **list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        enum verdict v = restriction(c, list[i]);

        if (v != V_DUNNO)
            return v;
    }
    return V_DUNNO;
}

/* policy_rcpt - 0 to accept the recipient, else the code of the reply sent */
int policy_rcpt(struct session *s, const char *rcpt, const char *domain, const char *local)
{
    struct rcpt_ctx c = {s, rcpt, domain, local, -1, 0};

    if (restriction_list(&c, smtpd_conf.relay_restr, smtpd_conf.nrelay_restr) == V_DECIDED)
        return c.code;
    if (restriction_list(&c, smtpd_conf.rcpt_restr, smtpd_conf.nrcpt_restr) == V_DECIDED)
        return c.code;
    if (smtpd_conf.reject_unlisted && check_unlisted(&c) == V_DECIDED)
        return c.code;
    return 0;
}
