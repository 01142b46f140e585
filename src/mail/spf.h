/*
 * spf.h - Sender Policy Framework (RFC 7208) check_host() as a resumable,
 * event-driven evaluator
 *
 * spf_eval_start() checks one identity (MAIL FROM, or HELO) for one client
 * address. Every DNS question goes through a struct spf_dns_ops, so the
 * same evaluator runs on the c-ares resolver of util/dns.h (spf_dns_real())
 * in smtpd and on canned answers in the unit tests. The evaluator keeps its
 * own state between answers (a stack of include/redirect frames, the
 * current term, the mx/ptr sub-lookups); it never blocks and it never
 * recurses into itself through the resolver: an answer that arrives
 * synchronously, inside the ops call, is queued and handled by the running
 * loop.
 *
 * Limits (RFC 7208 4.6.4): at most SPF_MAX_DNS_MECH terms that cause DNS
 * queries (include, a, mx, ptr, exists, redirect), at most SPF_MAX_VOID
 * lookups that return no answer, at most SPF_MAX_MX MX records per mx
 * term and SPF_MAX_PTR PTR names; exceeding one is "permerror".
 *
 * The record and macro parsers are exported for the fuzz targets and the
 * unit tests (spf_record_parse, spf_macro_expand).
 */
#ifndef POSTA_SPF_H
#define POSTA_SPF_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <sys/socket.h>

#include "util/buf.h"
#include "util/dns.h"

#define SPF_MAX_DNS_MECH 10
#define SPF_MAX_VOID 2
#define SPF_MAX_MX 10
#define SPF_MAX_PTR 10
#define SPF_DOMAIN_MAX 253

enum spf_result {
    SPF_NONE = 0,
    SPF_NEUTRAL,
    SPF_PASS,
    SPF_FAIL,
    SPF_SOFTFAIL,
    SPF_TEMPERROR,
    SPF_PERMERROR,
};

/* spf_result_name - "pass", "fail", ... as in RFC 7208 and RFC 8601 */
const char *spf_result_name(enum spf_result r);

/* spf_ptr_fn - answer to a PTR question: host names (without trailing dot) */
typedef void (*spf_ptr_fn)(void *ctx, enum dns_status st, char *const *names, size_t n,
                           const char *why);

/*
 * struct spf_dns_ops - the resolver the evaluator asks. Each start
 * function returns an opaque handle for cancel (may be NULL), and calls
 * fn exactly once unless cancelled; fn may run before the start function
 * returns (synchronous test resolvers do so). The address lookup is
 * asked for AF_INET or AF_INET6 only. ptr returns the PTR names of an
 * address; the evaluator itself confirms each name forward.
 */
struct spf_dns_ops {
    void *(*txt)(void *dctx, const char *name, dns_txt_fn fn, void *ctx);
    void *(*mx)(void *dctx, const char *name, dns_mx_fn fn, void *ctx);
    void *(*addr)(void *dctx, const char *name, int family, dns_addr_fn fn, void *ctx);
    void *(*ptr)(void *dctx, const struct sockaddr *sa, socklen_t len, spf_ptr_fn fn,
                 void *ctx);
    void (*cancel)(void *dctx, void *req);       /* a txt, mx or addr request */
    void (*cancel_ptr)(void *dctx, void *req);   /* a ptr request */
    void *dctx;
};

/*
 * spf_dns_real - ops backed by util/dns.h (dns_init must have run), each
 * query capped at timeout_ms. util/dns.h has no plain PTR lookup: ptr is
 * served by dns_client_name(), which returns at most one name, already
 * forward-confirmed (so a client with several PTR names is matched on
 * the first confirmed one only). The returned struct is static.
 */
const struct spf_dns_ops *spf_dns_real(unsigned timeout_ms);

enum spf_scope {
    SPF_SCOPE_MAILFROM,   /* the MAIL FROM identity (postmaster@HELO when null) */
    SPF_SCOPE_HELO,       /* the HELO/EHLO identity */
};

struct spf_request {
    enum spf_scope scope;
    const char *client_ip;   /* text form, IPv4 or IPv6 */
    const char *sender;      /* MAIL FROM address without <> ("" = null sender) */
    const char *helo;        /* HELO/EHLO argument */
    const char *receiver;    /* %{r}: our host name (NULL = "unknown") */
    time_t now;              /* %{t}; 0 = time(NULL) */
};

struct spf_outcome {
    enum spf_result result;
    const char *domain;        /* the domain checked (MAIL FROM or HELO domain) */
    const char *sender;        /* the identity checked (postmaster@HELO for null) */
    const char *mechanism;     /* the term that matched ("-all", "include:x"), or "" */
    const char *explanation;   /* for fail: the exp= text expanded, else "" */
    const char *problem;       /* why for temperror/permerror/none, else "" */
};

/* spf_done_fn - the result; everything in *out is valid during the call only */
typedef void (*spf_done_fn)(void *ctx, const struct spf_outcome *out);

/*
 * spf_reject_reply - the SMTP reply for a rejected SPF fail (replaces
 * out): "550 5.7.23 " and the domain's explanation (exp=), made printable
 * ASCII and cut at SPF_REPLY_TEXT_MAX, or a default text naming the
 * domain when it gave none.
 */
#define SPF_REPLY_TEXT_MAX 400
void spf_reject_reply(const struct spf_outcome *out, struct buf *reply);

struct spf_eval;

/*
 * spf_eval_start - start check_host() for req. done runs exactly once
 * (unless spf_eval_cancel is called first); the evaluator frees itself
 * after done returns. When done runs before spf_eval_start returns (an
 * immediate result, or a synchronous resolver) the return value is NULL;
 * otherwise it is a handle for spf_eval_cancel.
 */
struct spf_eval *spf_eval_start(const struct spf_dns_ops *ops, const struct spf_request *req,
                                spf_done_fn done, void *ctx);
/* spf_eval_cancel - stop: pending DNS is cancelled, done never runs */
void spf_eval_cancel(struct spf_eval *ev);

/* The parsed form of a record, for tests and the fuzz target. */
enum spf_mech {
    SPF_MECH_ALL,
    SPF_MECH_INCLUDE,
    SPF_MECH_A,
    SPF_MECH_MX,
    SPF_MECH_PTR,
    SPF_MECH_IP4,
    SPF_MECH_IP6,
    SPF_MECH_EXISTS,
};

struct spf_term {
    enum spf_mech mech;
    char qual;               /* '+', '-', '~', '?' */
    char *domain;            /* domain-spec (macro string) or NULL */
    unsigned cidr4, cidr6;   /* prefix lengths (32 / 128 when absent) */
    unsigned char ip[16];    /* ip4 (first 4 bytes) / ip6 */
    char *text;              /* the term as written, for logs */
};

struct spf_record {
    struct spf_term *terms;
    size_t n;
    char *redirect;          /* domain-spec or NULL */
    char *exp;               /* domain-spec or NULL */
};

/*
 * spf_record_parse - parse a whole record ("v=spf1 ..."). Returns 0, or
 * -1 with *why (static text) for any syntax error (RFC 7208 4.6: the
 * whole record is then a permerror). Free with spf_record_free (also after
 * an error).
 */
int spf_record_parse(const char *text, struct spf_record *rec, const char **why);
void spf_record_free(struct spf_record *rec);
/* spf_is_record - text starts with "v=spf1" followed by a space or its end */
bool spf_is_record(const char *text);

/* struct spf_macro_vars - the values macros expand to */
struct spf_macro_vars {
    const char *s, *l, *o, *d, *i, *p, *h, *c, *r, *v;
    time_t t;
};

/*
 * spf_macro_expand - expand macro-string spec into out (appended). exp
 * allows the c, r and t letters (only valid in explanations). Returns 0,
 * or -1 with *why for a syntax error.
 */
int spf_macro_expand(const char *spec, const struct spf_macro_vars *v, bool exp,
                     struct buf *out, const char **why);
/* spf_macro_check - the syntax check of spf_macro_expand without values */
int spf_macro_check(const char *spec, bool exp, const char **why);

#endif
