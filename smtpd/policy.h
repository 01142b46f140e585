/*
 * policy.h - smtpd's restriction engine: Postfix's smtpd_*_restrictions
 *
 * Two parts. restrict_parse.c is pure (no session, no I/O beyond opening
 * tables through a callback): the restriction names, the parsing of a
 * list into struct restr_list, the parsing of an access-table result and
 * the lookup keys Postfix derives from a client, an address or a HELO
 * name. Unit tests and the fuzz target include it directly. policy.c is
 * the engine (the table and server restrictions in policy_access.c): it evaluates the lists for HELO/EHLO, MAIL, RCPT and
 * DATA/BDAT, suspends on DNS lookups and resumes the command later.
 *
 * The command handlers call policy_helo/policy_mail/policy_rcpt_check/
 * policy_data near their end. Each answers 0 (go on: accept), a reply
 * code (rejected: the reply is sent and logged, the handler cleans up
 * and returns that code), or POLICY_LATER (a DNS lookup runs: the handler
 * cleans up and returns REPLY_LATER). When the evaluation ends, the
 * engine calls the handler again with the same argument; this time the
 * policy call answers the decision at once (0 or a reply code).
 */
#ifndef POSTA_SMTPD_POLICY_H
#define POSTA_SMTPD_POLICY_H

#include <stdbool.h>
#include <stddef.h>

struct cfg;
struct dict;
struct pol_service;
struct session;
struct smtpd_result;

/* Restrictions (the order of restr_names in restrict_parse.c). */
enum restr_op {
    R_PERMIT, R_REJECT, R_DEFER, R_DEFER_IF_PERMIT, R_DEFER_IF_REJECT, R_WARN_IF_REJECT,
    R_DUNNO, R_PERMIT_MYNETWORKS, R_PERMIT_SASL, R_PERMIT_AUTH_DEST, R_REJECT_UNAUTH_DEST,
    R_DEFER_UNAUTH_DEST, R_REJECT_UNKNOWN_RCPT_DOMAIN, R_REJECT_UNKNOWN_SENDER_DOMAIN,
    R_REJECT_NON_FQDN_SENDER, R_REJECT_NON_FQDN_RCPT, R_REJECT_NON_FQDN_HELO,
    R_REJECT_INVALID_HELO, R_REJECT_UNKNOWN_HELO, R_REJECT_UNKNOWN_CLIENT,
    R_REJECT_UNLISTED_RCPT, R_REJECT_UNLISTED_SENDER, R_REJECT_UNAUTH_PIPELINING,
    R_REJECT_RBL_CLIENT, R_REJECT_RHSBL_CLIENT, R_REJECT_RHSBL_HELO, R_REJECT_RHSBL_SENDER,
    R_REJECT_RHSBL_RCPT, R_CHECK_CLIENT_ACCESS, R_CHECK_HELO_ACCESS, R_CHECK_SENDER_ACCESS,
    R_CHECK_RCPT_ACCESS, R_REJECT_SENDER_LOGIN_MISMATCH, R_CHECK_POLICY, R_CLASS,
    R_COUNT
};

/* What a restriction needs after its name. */
enum restr_argkind { RA_NONE, RA_TABLE, RA_DOMAIN, RA_POLICY };

/* restr - one parsed restriction */
struct restr {
    enum restr_op op;
    char *arg;                 /* table spec, DNSBL domain, or class name */
    char *rbl_filter;          /* reject_rbl_client DOMAIN=d.d.d.d: the address that counts */
    struct dict *table;        /* RA_TABLE, opened at start */
    struct pol_service *service;   /* RA_POLICY: check_policy_service (policy_client.h) */
    size_t class_idx;          /* R_CLASS: index into the class lists */
};

/* restr_list - the restrictions of one parameter */
struct restr_list {
    char *param;               /* "smtpd_recipient_restrictions" */
    struct restr *v;
    size_t n;
};

/* restr_classes - smtpd_restriction_classes: names and their lists */
struct restr_classes {
    char **names;
    struct restr_list *lists;
    size_t n;
};

/* restr_config - every restriction list of a configuration */
struct restr_config {
    struct restr_list client, helo, sender, relay, rcpt, data, eod;
    struct restr_classes classes;
};

/* restr_open_fn - open a table for a restriction; NULL + *err (malloc'ed) */
typedef struct dict *restr_open_fn(void *ctx, const char *spec, char **err);

/* restr_lookup_name - the restriction of this name, or -1 */
int restr_lookup_name(const char *name);
/* restr_name - the name of a restriction */
const char *restr_name(enum restr_op op);
/* restr_argkind - what the restriction takes after its name */
enum restr_argkind restr_argkind(enum restr_op op);
/*
 * restr_parse_list - parse words (a parameter's list) into out. Class
 * names (classes may be NULL) are restrictions too. Tables are opened
 * with open_fn unless it is NULL. false with *err (malloc'ed)
 * "unknown restriction: \"x\"", "missing table after check_client_access", ...
 */
bool restr_parse_list(char **words, size_t n, const char *param,
                      const struct restr_classes *classes, restr_open_fn *open_fn,
                      void *open_ctx, struct restr_list *out, char **err);
void restr_list_free(struct restr_list *l);
/*
 * restr_config_load - parse smtpd_restriction_classes and the six
 * smtpd_*_restrictions lists of cfg (opening their tables when
 * open_tables); also refuses a configuration whose relay and recipient
 * lists cannot refuse a foreign destination. false with *err (malloc'ed)
 * "PARAM: why" - smtpd makes it fatal; "posta check" can report it.
 */
bool restr_config_load(struct cfg *cfg, bool open_tables, struct restr_config *out, char **err);
void restr_config_free(struct restr_config *rc);
/* restr_config_lists - the seven smtpd_*_restrictions lists of rc into out; their count */
#define RESTR_LISTS 7
size_t restr_config_lists(struct restr_config *rc, struct restr_list *out[RESTR_LISTS]);

/* What an access table's value says. */
enum access_kind {
    AK_OK,          /* OK, PERMIT, or a 2xx-less "permit" */
    AK_DUNNO,       /* DUNNO: look no further in this table */
    AK_REJECT,      /* REJECT [text], 5xx text */
    AK_DEFER,       /* DEFER [text], 4xx text */
    AK_DEFER_IF_PERMIT, AK_DEFER_IF_REJECT,
    AK_WARN,        /* WARN text: log and go on */
    AK_INFO,        /* INFO text: log and go on */
    AK_HOLD,        /* HOLD [text]: the message goes to hold/; go on */
    AK_DISCARD,     /* DISCARD [text]: accept (like OK), then drop the message */
    AK_PREPEND,     /* PREPEND name: value: a header field on top; go on */
    AK_REDIRECT,    /* REDIRECT addr: the one recipient of the message; go on */
    AK_BCC,         /* BCC addr: one more recipient; go on */
    AK_FILTER,      /* FILTER transport:nexthop: the content filter; go on */
    AK_RESTRICTION, /* the name of a restriction (op) or of a class */
    AK_BAD          /* none of these: server configuration error */
};

/* access_result - a parsed access-table value */
struct access_result {
    enum access_kind kind;
    int code;             /* AK_REJECT/AK_DEFER from "NNN text", else 0 (use the default) */
    char enh[16];         /* from "NNN x.y.z text", else "" */
    const char *text;     /* points into the value: "" when none */
    bool numeric;         /* "NNN text": the text is the whole reply */
    int op;               /* AK_RESTRICTION: enum restr_op (R_CLASS: class_idx) */
    size_t class_idx;
};

/* access_parse - parse an access-table value (classes may be NULL) */
void access_parse(const char *value, const struct restr_classes *classes,
                  struct access_result *r);

/*
 * Lookup keys as Postfix forms them; each call fills keys[] (pointers
 * into the malloc'ed block *store, free it) and returns their count.
 *   client: the name (unless "unknown") and its parent domains, then the
 *           address and its parent networks ("1.2.3.4", "1.2.3", "1.2", "1";
 *           IPv6: the address, then shorter ':'-separated prefixes)
 *   address: user@domain, domain and (when parents) its parent domains
 *           ".parent" or "parent" per parent_domain_matches_subdomains, user@
 *   helo: the name, then its parent domains
 */
#define RESTR_KEYS_MAX 64
size_t restr_client_keys(const char *name, const char *addr, bool parents, char **store,
                         const char *keys[RESTR_KEYS_MAX]);
size_t restr_addr_keys(const char *addr, bool parents, char **store,
                       const char *keys[RESTR_KEYS_MAX]);
size_t restr_domain_keys(const char *domain, bool parents, char **store,
                         const char *keys[RESTR_KEYS_MAX]);

/* restr_fqdn - a fully-qualified domain name (has a dot, not a literal) */
bool restr_fqdn(const char *name);
/* restr_valid_hostname - a syntactically valid host name or [address] literal */
bool restr_valid_hostname(const char *name);

/* policy.c: the engine */

/* what a policy_* call answers while a DNS lookup runs (the handler returns REPLY_LATER) */
#define POLICY_LATER (-1)

typedef int policy_again_fn(struct session *s, const char *arg);

/* policy_init - parse every list, open its tables, set up DNS; fatal on any error */
void policy_init(struct cfg *cfg);
/*
 * policy_connect - the greeting with smtpd_delay_reject = no: the client
 * list (a refusal is replied here and replaces the 220 greeting)
 */
int policy_connect(struct session *s, policy_again_fn *again);
/*
 * policy_resuming - the command handler of s runs again with the engine's
 * decision (a lookup made it wait): what it counted the first time it
 * must not count again
 */
bool policy_resuming(const struct session *s);
/* policy_helo - HELO/EHLO with smtpd_delay_reject = no: the helo list */
int policy_helo(struct session *s, const char *verb, const char *arg, policy_again_fn *again);
/* policy_mail - MAIL FROM with smtpd_delay_reject = no: the sender list */
int policy_mail(struct session *s, const char *sender, const char *arg, policy_again_fn *again);
/* policy_rcpt_check - RCPT TO: (delayed lists,) relay, recipient, unlisted recipient */
int policy_rcpt_check(struct session *s, const char *rcpt, const char *domain,
                      const char *local, const char *arg, policy_again_fn *again);
/*
 * policy_data - DATA (verb "DATA") or the first BDAT ("BDAT"): data
 * restrictions. A rejection is logged but not replied to: *r says it
 * (r->text stays valid for the life of the process).
 */
int policy_data(struct session *s, const char *verb, const char *arg, policy_again_fn *again,
                struct smtpd_result *r);
/*
 * policy_eod - the end of the content (smtpd_end_of_data_restrictions),
 * before the message is committed; like policy_data, a rejection is
 * logged and described in *r, not replied to
 */
int policy_eod(struct session *s, policy_again_fn *again, struct smtpd_result *r);

#endif
