/*
 * dmarc.h - DMARC (RFC 7489): record parsing, policy discovery,
 * identifier alignment, policy selection and the disposition
 *
 * The caller has the SPF result (mail/spf.h) and the DKIM results, and
 * the From header. dmarc_from_domain() finds the one RFC5322.From domain;
 * dmarc_eval_start() discovers the policy record (at _dmarc.FROM, else at
 * _dmarc.ORGDOMAIN, through the same resolver interface as SPF) and
 * judges alignment; dmarc_action() turns the outcome and the main.cf
 * settings into what to do with the message.
 *
 * From fields (documented choice, RFC 7489 6.6.1 leaves room): no From
 * field, more than one From field, or one From field whose addresses are
 * in different domains make the message "permerror"; a From field with no
 * address domain at all (a group with no members) gives "none".
 *
 * Invalid records follow RFC 7489 6.6.3: a record without a valid p= (or
 * with an invalid sp=) counts as p=none when it has a valid rua= URI,
 * and as no record otherwise. Other invalid tag values fall back to their
 * defaults.
 */
#ifndef POSTA_DMARC_H
#define POSTA_DMARC_H

#include <stdbool.h>
#include <stddef.h>

#include "mail/psl.h"
#include "mail/spf.h"
#include "util/buf.h"

#define DMARC_PCT_DEFAULT 100
#define DMARC_RI_DEFAULT 86400

enum dmarc_policy {
    DMARC_POLICY_UNSET = 0,   /* sp= absent: p applies */
    DMARC_POLICY_NONE,
    DMARC_POLICY_QUARANTINE,
    DMARC_POLICY_REJECT,
};

enum dmarc_result {
    DMARC_RESULT_NONE = 0,    /* no policy record (or no From domain) */
    DMARC_RESULT_PASS,
    DMARC_RESULT_FAIL,
    DMARC_RESULT_TEMPERROR,
    DMARC_RESULT_PERMERROR,
};

struct dmarc_record {
    enum dmarc_policy p, sp;
    unsigned pct;             /* 0..100 */
    bool adkim_strict, aspf_strict;
    char *rua, *ruf, *fo, *rf;   /* parsed, unused */
    unsigned long ri;
};

/* dmarc_policy_name - "none", "quarantine", "reject" ("" for unset) */
const char *dmarc_policy_name(enum dmarc_policy p);
/* dmarc_result_name - "none", "pass", "fail", "temperror", "permerror" */
const char *dmarc_result_name(enum dmarc_result r);

/* dmarc_is_record - text starts with the tag v=DMARC1 */
bool dmarc_is_record(const char *text);
/*
 * dmarc_record_parse - parse a DMARC record. Returns 0, or -1 with *why
 * when it is not a usable record (see above). Free with
 * dmarc_record_free, also after an error.
 */
int dmarc_record_parse(const char *text, struct dmarc_record *rec, const char **why);
void dmarc_record_free(struct dmarc_record *rec);

enum dmarc_from_status {
    DMARC_FROM_OK,      /* *domain holds the From domain */
    DMARC_FROM_NONE,    /* no domain to judge: result none */
    DMARC_FROM_BAD,     /* no/several From fields or domains: result permerror */
};
/*
 * dmarc_from_domain - the RFC5322.From domain from the values of every
 * From field of the message (n of them), lower-cased, into domain.
 */
enum dmarc_from_status dmarc_from_domain(const char *const *values, size_t n,
                                         struct buf *domain, const char **why);

/* dmarc_aligned - identifier alignment of domain d with the From domain */
bool dmarc_aligned(const struct psl *psl, const char *d, const char *from, bool strict);

struct dmarc_dkim_sig {
    const char *domain;       /* d= */
    bool pass;
};

struct dmarc_input {
    const char *from_domain;
    const char *spf_domain;   /* the domain SPF checked (MAIL FROM, or HELO for <>) */
    enum spf_result spf;
    const struct dmarc_dkim_sig *dkim;
    size_t ndkim;
    int sample;               /* pct sampling: 0..99, or -1 for a random number */
};

struct dmarc_outcome {
    enum dmarc_result result;
    enum dmarc_policy policy;       /* the published policy that applies (p, or sp) */
    enum dmarc_policy disposition;  /* what to apply after pct: none unless fail */
    bool spf_aligned, dkim_aligned;
    const char *from_domain;
    const char *policy_domain;      /* where the record was found, or "" */
    const char *problem;            /* for temperror/permerror/none, else "" */
};

/*
 * dmarc_apply - judge in against rec (found at the From domain, or at
 * its organisational domain when at_org). Pure: no DNS. out->from_domain
 * and policy_domain are left to the caller.
 */
void dmarc_apply(const struct dmarc_record *rec, bool at_org, const struct psl *psl,
                 const struct dmarc_input *in, struct dmarc_outcome *out);

typedef void (*dmarc_done_fn)(void *ctx, const struct dmarc_outcome *out);
struct dmarc_eval;

/*
 * dmarc_eval_start - discover the policy of in->from_domain and judge.
 * Same contract as spf_eval_start: done runs exactly once unless
 * cancelled; NULL is returned when it already ran. Only ops->txt and
 * ops->cancel are used.
 */
struct dmarc_eval *dmarc_eval_start(const struct spf_dns_ops *ops, const struct psl *psl,
                                    const struct dmarc_input *in, dmarc_done_fn done,
                                    void *ctx);
void dmarc_eval_cancel(struct dmarc_eval *ev);

/* Settings: dmarc_enforce, dmarc_quarantine_action, dmarc_temperror_action. */
struct dmarc_settings {
    bool enforce;             /* act on p=reject / p=quarantine */
    bool quarantine_hold;     /* quarantine: hold the message (else header only) */
    bool temperror_defer;     /* temperror: 451 4.7.1 (else header only) */
};

enum dmarc_action {
    DMARC_ACTION_ACCEPT,      /* deliver; the Authentication-Results header says it all */
    DMARC_ACTION_HOLD,        /* accept into the hold queue */
    DMARC_ACTION_REJECT,      /* 550 5.7.1, text in reply */
    DMARC_ACTION_DEFER,       /* 451 4.7.1, text in reply */
};

/*
 * dmarc_action - what to do: reject ("550 5.7.1 Rejected by DMARC policy
 * for DOMAIN") for a failing p=reject, hold for quarantine when so set,
 * defer ("451 4.7.1 ...") on temperror when so set; accept otherwise.
 * reply gets the SMTP reply for REJECT and DEFER (replaced).
 */
enum dmarc_action dmarc_action(const struct dmarc_outcome *out, const struct dmarc_settings *s,
                               struct buf *reply);

#endif
