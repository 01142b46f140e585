/*
 * policy_impl.h - the insides of smtpd's restriction engine, shared by
 * policy.c (evaluation, replies, relay control, DNS restrictions,
 * configuration) and policy_access.c (access tables and their actions,
 * check_policy_service, sender login maps); not for other files
 */
#ifndef POSTA_SMTPD_POLICY_IMPL_H
#define POSTA_SMTPD_POLICY_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "mail/matchlist.h"
#include "util/buf.h"
#include "util/dns.h"

#include "policy.h"
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

/* policy_conf - the settings the engine reads once (policy_init) */
struct policy_conf {
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
};

extern struct policy_conf pc;

/* What a generic restriction names in its reply: the subject of its list. */
enum subject { SUBJ_CLIENT, SUBJ_HELO, SUBJ_SENDER, SUBJ_RCPT, SUBJ_DATA, SUBJ_EOD };

enum stage { PS_CONNECT, PS_HELO, PS_MAIL, PS_RCPT, PS_DATA, PS_EOD };

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

/* config_error - a broken restriction setting: 451 4.3.5 (logged) */
enum rv config_error(struct eval *e, enum subject subj);
/* log_reject - the one place that logs a rejection (kind: reject, reject_warning, warn) */
void log_reject(struct eval *e, const char *kind, int code, const char *enh,
                const char *text);
/* tempfail - a table failed: defer the command */
enum rv tempfail(struct eval *e, enum subject subj);
/* eval_resume - a DNS answer arrived: go on with the evaluation */
void eval_resume(struct eval *e);
enum rv decide(struct eval *e, int code, const char *enh, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* subj_name - what the reply names in <>: client, HELO name, address, command */
const char *subj_name(struct eval *e, enum subject subj, struct buf *tmp);
enum rv defer_if_permit(struct eval *e, int code, const char *enh, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
enum rv run_restriction(struct eval *e, const struct restr *r, enum subject subj);
/* is_local_domain - in mydestination (no domain counts as local) */
enum match_result is_local_domain(const char *domain);
/* subj_class - "Client host", "Sender address", ... */
const char *subj_class(enum subject subj);
/* check_access - look the keys up in order; the first found decides */
enum rv check_access(struct eval *e, const struct restr *r, enum subject subj,
                     enum subject keys_of);
/* check_policy - ask the policy server, suspend; then act on its action as an access value */
enum rv check_policy(struct eval *e, const struct restr *r, enum subject subj);
/* sender_login_mismatch - reject_sender_login_mismatch */
enum rv sender_login_mismatch(struct eval *e);

#endif
