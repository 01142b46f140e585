/*
 * spf.c - RFC 7208 check_host() as a resumable state machine
 *
 * The evaluator holds a stack of frames (the top-level domain, then one
 * frame per include being evaluated; redirect replaces the top frame).
 * Each step either decides something locally (ip4, ip6, all, ptr after
 * validation, record selection) or asks one DNS question and waits. The
 * answer is stored and handled by the same loop, whether it arrives later
 * from the event loop or at once from a synchronous test resolver, so the
 * evaluator never re-enters itself.
 *
 * Choices where RFC 7208 leaves room, made as pyspf (the cross-check)
 * does: address lookups for mx hosts and ptr names count as void lookups
 * when empty; a temporary error on an mx host's address lookup is a
 * temperror. Following RFC 7208 5.5, a DNS error on the PTR lookup makes
 * ptr not match (it is not a temperror).
 *
 * DIAGNOSTICS
 *	None logged; the outcome carries a short problem text for
 *	permerror/temperror/none, for the caller's log line.
 *
 * SECURITY
 *	Every record and answer comes from DNS. The lookup and void limits
 *	bound the work per check; frames are bounded by SPF_MAX_FRAMES.
 */
#include "util/sys.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <strings.h>

#include "mail/spf.h"
#include "util/alloc.h"
#include "util/log.h"

#define SPF_MAX_FRAMES (SPF_MAX_DNS_MECH + 2)
#define SPF_LABEL_MAX 63
#define SPF_IPTEXT_MAX 128      /* nibble form of an IPv6 address is 63 bytes */
#define SPF_EXP_MAX 1024        /* bytes of an explanation we keep */
#define IP4_LEN 4
#define IP6_LEN 16
#define BITS_PER_BYTE 8

static const char *const spf_names[] = {
    "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror",
};

/* spf_result_name - "pass", "fail", ... */
const char *spf_result_name(enum spf_result r)
{
    if ((size_t)r >= sizeof(spf_names) / sizeof(spf_names[0]))
        return "permerror";
    return spf_names[r];
}

enum spf_query {
    Q_NONE,
    Q_RECORD,    /* TXT of the top frame's domain */
    Q_A,         /* addresses for "a" */
    Q_MX,        /* MX for "mx" */
    Q_MXADDR,    /* addresses of one MX host */
    Q_PTR,       /* PTR names of the client */
    Q_PTRADDR,   /* addresses of one PTR name */
    Q_EXISTS,    /* A for "exists" */
    Q_EXP,       /* TXT of the exp= domain */
};

enum spf_phase {
    PH_FETCH,    /* look up the top frame's record */
    PH_TERM,     /* evaluate the top frame's current term */
    PH_EXP,      /* look up the explanation */
};

struct spf_frame {
    char *domain;
    struct spf_record rec;
    size_t idx;
    bool redirected;
};

struct spf_eval {
    const struct spf_dns_ops *ops;
    spf_done_fn done;
    void *ctx;
    /* the question */
    int family;                  /* AF_INET or AF_INET6 */
    unsigned char ip[IP6_LEN];
    char i_text[SPF_IPTEXT_MAX]; /* %{i} */
    char c_text[SPF_IPTEXT_MAX]; /* %{c} */
    char *sender, *local, *sender_domain, *helo, *receiver;
    time_t now;
    /* state */
    struct spf_frame frames[SPF_MAX_FRAMES];
    size_t depth;
    enum spf_phase phase;
    unsigned lookups, voids;
    bool counted;                /* the current term's lookup is counted */
    struct buf target;           /* the current term's expanded domain */
    char **hosts;                /* mx hosts or ptr names being looked up */
    size_t nhosts, hosti;
    bool validated;              /* the ptr names have been checked */
    char **valid;                /* validated ptr names */
    size_t nvalid;
    bool exp_tried;
    char *exp_text;              /* the explanation, waiting for %{p} */
    /* the pending question and its answer */
    enum spf_query q;
    void *req;
    bool waiting, have_answer, running, finished;
    enum dns_status st;
    char **strs;                 /* TXT strings, MX hosts or PTR names */
    size_t nstrs;
    struct dns_addr *addrs;
    size_t naddrs;
    /* the outcome */
    enum spf_result result;
    struct buf mech, exp, problem;
};

/* strv_free - free a vector of strings */
static void strv_free(char **v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* answer_clear - forget the stored answer */
static void answer_clear(struct spf_eval *ev)
{
    strv_free(ev->strs, ev->nstrs);
    ev->strs = NULL;
    ev->nstrs = 0;
    free(ev->addrs);
    ev->addrs = NULL;
    ev->naddrs = 0;
}

/* finish - the final result */
static void finish(struct spf_eval *ev, enum spf_result r, const char *problem)
{
    ev->result = r;
    ev->finished = true;
    if (r == SPF_TEMPERROR || r == SPF_PERMERROR || r == SPF_NONE)
        buf_reset(&ev->mech);   /* no term decided this */
    if (problem != NULL && ev->problem.len == 0)
        buf_puts(&ev->problem, problem);
}

/* void_lookup - count an empty answer; true when that exceeded the limit */
static bool void_lookup(struct spf_eval *ev)
{
    if (++ev->voids > SPF_MAX_VOID) {
        finish(ev, SPF_PERMERROR, "void lookup limit exceeded");
        return true;
    }
    return false;
}

/* ---- answers from the resolver ---- */

static void run(struct spf_eval *ev);

/* answered - an answer was stored: run the loop unless it is running */
static void answered(struct spf_eval *ev, enum dns_status st)
{
    ev->req = NULL;
    ev->waiting = false;
    ev->have_answer = true;
    ev->st = st;
    if (!ev->running)
        run(ev);
}

/* strv_store - keep copies of n strings as the answer */
static void strv_store(struct spf_eval *ev, char *const *s, size_t n)
{
    size_t i;

    ev->strs = xcalloc(n ? n : 1, sizeof(*ev->strs));
    for (i = 0; i < n; i++)
        ev->strs[i] = xstrdup(s[i]);
    ev->nstrs = n;
}

/* on_txt - TXT answer */
static void on_txt(void *ctx, enum dns_status st, char *const *txt, size_t n, const char *why)
{
    struct spf_eval *ev = ctx;

    answer_clear(ev);
    if (st == DNS_OK)
        strv_store(ev, txt, n);
    answered(ev, st);
}

/* on_ptr - PTR answer */
static void on_ptr(void *ctx, enum dns_status st, char *const *names, size_t n,
                   const char *why)
{
    on_txt(ctx, st, names, n, why);
}

/* on_mx - MX answer (host names only; order does not matter for SPF) */
static void on_mx(void *ctx, enum dns_status st, const struct dns_mx *mx, size_t n,
                  const char *why)
{
    struct spf_eval *ev = ctx;
    size_t i;

    answer_clear(ev);
    if (st == DNS_OK) {
        ev->strs = xcalloc(n ? n : 1, sizeof(*ev->strs));
        for (i = 0; i < n; i++)
            ev->strs[i] = xstrdup(mx[i].host);
        ev->nstrs = n;
    }
    answered(ev, st);
}

/* on_addr - address answer */
static void on_addr(void *ctx, enum dns_status st, const struct dns_addr *a, size_t n,
                    const char *why)
{
    struct spf_eval *ev = ctx;

    answer_clear(ev);
    if (st == DNS_OK && n > 0) {
        ev->addrs = xmemdup(a, n * sizeof(*a));
        ev->naddrs = n;
    }
    answered(ev, st);
}

/* ask - start one question; the answer arrives through answered() */
static void ask(struct spf_eval *ev, enum spf_query q, const char *name, int family)
{
    void *req = NULL;
    struct sockaddr_storage ss;
    socklen_t len;

    ev->q = q;
    ev->waiting = true;
    switch (q) {
    case Q_RECORD:
    case Q_EXP:
        req = ev->ops->txt(ev->ops->dctx, name, on_txt, ev);
        break;
    case Q_MX:
        req = ev->ops->mx(ev->ops->dctx, name, on_mx, ev);
        break;
    case Q_A:
    case Q_MXADDR:
    case Q_PTRADDR:
    case Q_EXISTS:
        req = ev->ops->addr(ev->ops->dctx, name, family, on_addr, ev);
        break;
    case Q_PTR:
        if (ev->ops->ptr == NULL) {   /* a resolver without PTR: no names */
            on_ptr(ev, DNS_NOTFOUND, NULL, 0, "no PTR lookups");
            return;
        }
        memset(&ss, 0, sizeof(ss));
        if (ev->family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
            sin->sin_family = AF_INET;
            memcpy(&sin->sin_addr, ev->ip, IP4_LEN);
            len = sizeof(*sin);
        } else {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
            sin6->sin6_family = AF_INET6;
            memcpy(&sin6->sin6_addr, ev->ip, IP6_LEN);
            len = sizeof(*sin6);
        }
        req = ev->ops->ptr(ev->ops->dctx, (struct sockaddr *)&ss, len, on_ptr, ev);
        break;
    case Q_NONE:
        msg_panic("spf: ask without a question");
    }
    if (ev->waiting)
        ev->req = req;
}

/* ---- helpers ---- */

/* domain_ok - a multi-label domain name with sane labels */
static bool domain_ok(const char *d)
{
    size_t len = strlen(d), label = 0, i;
    bool dot = false;

    if (len == 0 || len > SPF_DOMAIN_MAX || d[0] == '.')
        return false;
    for (i = 0; i < len; i++) {
        if (d[i] == '.') {
            if (label == 0 && i + 1 < len)
                return false;
            label = 0;
            if (i + 1 < len)
                dot = true;
        } else if ((unsigned char)d[i] <= ' ' || d[i] == '[' || ++label > SPF_LABEL_MAX) {
            return false;
        }
    }
    return dot;
}

/* addr_match - does address a equal the client within the prefix length? */
static bool addr_match(const struct spf_eval *ev, const unsigned char *a, int family,
                       unsigned bits)
{
    size_t full = bits / BITS_PER_BYTE;
    unsigned rest = bits % BITS_PER_BYTE;
    unsigned char mask;

    if (family != ev->family)
        return false;
    if (memcmp(a, ev->ip, full) != 0)
        return false;
    if (rest == 0)
        return true;
    mask = (unsigned char)(0xff << (BITS_PER_BYTE - rest));
    return (a[full] & mask) == (ev->ip[full] & mask);
}

/* sa_match - does a resolved address equal the client within bits? */
static bool sa_match(const struct spf_eval *ev, const struct dns_addr *a, unsigned cidr4,
                     unsigned cidr6)
{
    if (a->sa.ss_family == AF_INET)
        return addr_match(ev, (const unsigned char *)&((const struct sockaddr_in *)&a->sa)->sin_addr,
                          AF_INET, cidr4);
    if (a->sa.ss_family == AF_INET6)
        return addr_match(ev,
                          (const unsigned char *)&((const struct sockaddr_in6 *)&a->sa)->sin6_addr,
                          AF_INET6, cidr6);
    return false;
}

/* name_in_domain - name equals domain or is a subdomain of it */
static bool name_in_domain(const char *name, const char *domain)
{
    size_t n = strlen(name), d = strlen(domain);

    if (d > 0 && domain[d - 1] == '.')
        d--;
    if (n > 0 && name[n - 1] == '.')
        n--;
    if (n == d)
        return strncasecmp(name, domain, n) == 0;
    return n > d && name[n - d - 1] == '.' && strncasecmp(name + n - d, domain, d) == 0;
}

/* p_value - %{p}: a validated name in domain d, else any, else "unknown" */
static const char *p_value(const struct spf_eval *ev, const char *d)
{
    size_t i;

    for (i = 0; i < ev->nvalid; i++)
        if (strcasecmp(ev->valid[i], d) == 0)
            return ev->valid[i];
    for (i = 0; i < ev->nvalid; i++)
        if (name_in_domain(ev->valid[i], d))
            return ev->valid[i];
    return ev->nvalid > 0 ? ev->valid[0] : "unknown";
}

/* needs_p - spec uses the %{p} macro */
static bool needs_p(const char *spec)
{
    const char *p;

    for (p = spec; spec != NULL && (p = strchr(p, '%')) != NULL; p += 2) {
        if (p[1] == '{' && (p[2] == 'p' || p[2] == 'P'))
            return true;
        if (p[1] == 0)
            break;
    }
    return false;
}

/* expand - expand spec with the current frame's domain; exp text or a domain */
static int expand(struct spf_eval *ev, const char *spec, bool exp, struct buf *out,
                  const char **why)
{
    const char *d = ev->frames[ev->depth - 1].domain;
    struct spf_macro_vars v = {
        .s = ev->sender, .l = ev->local, .o = ev->sender_domain, .d = d,
        .i = ev->i_text, .p = p_value(ev, d), .h = ev->helo, .c = ev->c_text,
        .r = ev->receiver, .v = ev->family == AF_INET ? "in-addr" : "ip6",
        .t = ev->now,
    };
    const char *p;

    buf_reset(out);
    if (spf_macro_expand(spec, &v, exp, out, why) < 0)
        return -1;
    if (exp)
        return 0;
    /* a domain: no trailing dot, and too long names lose labels on the left */
    if (out->len > 0 && out->data[out->len - 1] == '.')
        buf_truncate(out, out->len - 1);
    p = buf_str(out);
    while (strlen(p) > SPF_DOMAIN_MAX && strchr(p, '.') != NULL)
        p = strchr(p, '.') + 1;
    if (p != buf_str(out))
        buf_consume(out, (size_t)(p - buf_str(out)));
    return 0;
}

/* ---- frames ---- */

/* frame_pop - drop the top frame */
static void frame_pop(struct spf_eval *ev)
{
    struct spf_frame *fr = &ev->frames[--ev->depth];

    free(fr->domain);
    spf_record_free(&fr->rec);
    memset(fr, 0, sizeof(*fr));
}

/* frame_push - evaluate domain next (include, or the start) */
static void frame_push(struct spf_eval *ev, const char *domain)
{
    struct spf_frame *fr;

    if (ev->depth == SPF_MAX_FRAMES) {
        finish(ev, SPF_PERMERROR, "include nesting too deep");
        return;
    }
    fr = &ev->frames[ev->depth++];
    memset(fr, 0, sizeof(*fr));
    fr->domain = xstrdup(domain);
    ev->phase = PH_FETCH;
    ev->counted = false;
}

/* next_term - the current term did not match */
static void next_term(struct spf_eval *ev)
{
    ev->frames[ev->depth - 1].idx++;
    ev->counted = false;
    ev->phase = PH_TERM;
}

/* start_validation - look up the client's PTR names (for ptr and %{p}) */
static void start_validation(struct spf_eval *ev)
{
    ask(ev, Q_PTR, NULL, 0);
}

static void matched(struct spf_eval *ev);

/* frame_result - the top frame's check_host() returned r */
static void frame_result(struct spf_eval *ev, enum spf_result r)
{
    struct spf_frame *top;

    if (r == SPF_TEMPERROR || r == SPF_PERMERROR) {
        finish(ev, r, NULL);
        return;
    }
    if (ev->depth == 1) {
        top = &ev->frames[0];
        if (r == SPF_NEUTRAL && top->idx >= top->rec.n)
            buf_reset(&ev->mech);   /* no term matched: the default result */
        if (r == SPF_FAIL && top->rec.exp != NULL && !ev->exp_tried) {
            ev->result = r;
            ev->phase = PH_EXP;
            return;
        }
        finish(ev, r, r == SPF_NONE ? "no SPF record" : NULL);
        return;
    }
    frame_pop(ev);
    if (r != SPF_PASS)
        buf_reset(&ev->mech);   /* the included record's match does not count */
    switch (r) {
    case SPF_PASS:
        matched(ev);
        return;
    case SPF_NONE:
        finish(ev, SPF_PERMERROR, "include of a domain without an SPF record");
        return;
    default:
        next_term(ev);
        return;
    }
}

/* matched - the top frame's current term matched */
static void matched(struct spf_eval *ev)
{
    struct spf_frame *fr = &ev->frames[ev->depth - 1];
    const struct spf_term *t = &fr->rec.terms[fr->idx];
    enum spf_result r;

    switch (t->qual) {
    case '-': r = SPF_FAIL; break;
    case '~': r = SPF_SOFTFAIL; break;
    case '?': r = SPF_NEUTRAL; break;
    default: r = SPF_PASS; break;
    }
    buf_set(&ev->mech, t->text);
    frame_result(ev, r);
}

/* ---- steps ---- */

/* step_end_of_record - no term matched: follow redirect= or return neutral */
static void step_end_of_record(struct spf_eval *ev)
{
    struct spf_frame *fr = &ev->frames[ev->depth - 1];
    const char *why;
    char *spec;

    if (fr->rec.redirect == NULL) {
        frame_result(ev, SPF_NEUTRAL);
        return;
    }
    if (needs_p(fr->rec.redirect) && !ev->validated) {
        start_validation(ev);
        return;
    }
    if (++ev->lookups > SPF_MAX_DNS_MECH) {
        finish(ev, SPF_PERMERROR, "too many DNS lookups");
        return;
    }
    if (expand(ev, fr->rec.redirect, false, &ev->target, &why) < 0) {
        finish(ev, SPF_PERMERROR, why);
        return;
    }
    spec = xstrdup(buf_str(&ev->target));
    free(fr->domain);
    spf_record_free(&fr->rec);
    memset(fr, 0, sizeof(*fr));
    fr->domain = spec;
    fr->redirected = true;
    ev->phase = PH_FETCH;
    ev->counted = false;
}

/* step_term - evaluate the top frame's current term */
static void step_term(struct spf_eval *ev)
{
    struct spf_frame *fr = &ev->frames[ev->depth - 1];
    const struct spf_term *t;
    const char *why;
    size_t i;

    if (fr->idx >= fr->rec.n) {
        step_end_of_record(ev);
        return;
    }
    t = &fr->rec.terms[fr->idx];
    if ((t->mech == SPF_MECH_PTR || needs_p(t->domain)) && !ev->validated) {
        if (!ev->counted && t->mech == SPF_MECH_PTR) {
            ev->counted = true;
            if (++ev->lookups > SPF_MAX_DNS_MECH) {
                finish(ev, SPF_PERMERROR, "too many DNS lookups");
                return;
            }
        }
        start_validation(ev);
        return;
    }
    switch (t->mech) {
    case SPF_MECH_ALL:
        matched(ev);
        return;
    case SPF_MECH_IP4:
        if (addr_match(ev, t->ip, AF_INET, t->cidr4))
            matched(ev);
        else
            next_term(ev);
        return;
    case SPF_MECH_IP6:
        if (addr_match(ev, t->ip, AF_INET6, t->cidr6))
            matched(ev);
        else
            next_term(ev);
        return;
    default:
        break;
    }
    if (!ev->counted) {
        ev->counted = true;
        if (++ev->lookups > SPF_MAX_DNS_MECH) {
            finish(ev, SPF_PERMERROR, "too many DNS lookups");
            return;
        }
    }
    if (t->domain == NULL)
        buf_set(&ev->target, fr->domain);
    else if (expand(ev, t->domain, false, &ev->target, &why) < 0) {
        finish(ev, SPF_PERMERROR, why);
        return;
    }
    switch (t->mech) {
    case SPF_MECH_A:
        ask(ev, Q_A, buf_str(&ev->target), ev->family);
        return;
    case SPF_MECH_MX:
        ask(ev, Q_MX, buf_str(&ev->target), 0);
        return;
    case SPF_MECH_EXISTS:
        ask(ev, Q_EXISTS, buf_str(&ev->target), AF_INET);
        return;
    case SPF_MECH_INCLUDE:
        frame_push(ev, buf_str(&ev->target));
        return;
    case SPF_MECH_PTR:
        for (i = 0; i < ev->nvalid; i++) {
            if (name_in_domain(ev->valid[i], buf_str(&ev->target))) {
                matched(ev);
                return;
            }
        }
        next_term(ev);
        return;
    default:
        msg_panic("spf: unexpected mechanism %d", (int)t->mech);
    }
}

/* step_exp - look up the explanation of a fail */
static void step_exp(struct spf_eval *ev)
{
    const char *spec = ev->frames[0].rec.exp, *why;

    if (ev->exp_text != NULL) {   /* back from validating the client for %{p} */
        if (expand(ev, ev->exp_text, true, &ev->exp, &why) < 0)
            buf_reset(&ev->exp);
        if (ev->exp.len > SPF_EXP_MAX)
            buf_truncate(&ev->exp, SPF_EXP_MAX);
        finish(ev, SPF_FAIL, NULL);
        return;
    }
    if (needs_p(spec) && !ev->validated) {
        start_validation(ev);
        return;
    }
    ev->exp_tried = true;
    if (expand(ev, spec, false, &ev->target, &why) < 0 || ev->target.len == 0) {
        finish(ev, SPF_FAIL, NULL);
        return;
    }
    ask(ev, Q_EXP, buf_str(&ev->target), 0);
}

/* got_record - the TXT answer for the top frame's domain */
static void got_record(struct spf_eval *ev)
{
    struct spf_frame *fr = &ev->frames[ev->depth - 1];
    const char *rec = NULL, *why = NULL;
    size_t i, found = 0;

    if (ev->st == DNS_TEMPFAIL) {
        finish(ev, SPF_TEMPERROR, "DNS error looking up the SPF record");
        return;
    }
    for (i = 0; ev->st == DNS_OK && i < ev->nstrs; i++) {
        if (spf_is_record(ev->strs[i])) {
            rec = ev->strs[i];
            found++;
        }
    }
    if (found == 0) {
        if (ev->depth > 1 || fr->redirected)
            finish(ev, SPF_PERMERROR, fr->redirected ? "redirect to a domain without an SPF record"
                                                     : "include of a domain without an SPF record");
        else
            frame_result(ev, SPF_NONE);
        return;
    }
    if (found > 1) {
        finish(ev, SPF_PERMERROR, "more than one SPF record");
        return;
    }
    if (spf_record_parse(rec, &fr->rec, &why) < 0) {
        spf_record_free(&fr->rec);
        buf_printf(&ev->problem, "SPF record of %s: %s", fr->domain, why);
        finish(ev, SPF_PERMERROR, NULL);
        return;
    }
    fr->idx = 0;
    ev->counted = false;
    ev->phase = PH_TERM;
}

/* next_host - look up the next mx host / ptr name, or finish that list */
static void next_host(struct spf_eval *ev, enum spf_query q)
{
    while (ev->hosti < ev->nhosts && ev->hosts[ev->hosti][0] == 0)
        ev->hosti++;   /* the Null MX "." */
    if (ev->hosti < ev->nhosts) {
        ask(ev, q, ev->hosts[ev->hosti++], ev->family);
        return;
    }
    strv_free(ev->hosts, ev->nhosts);
    ev->hosts = NULL;
    ev->nhosts = ev->hosti = 0;
    if (q == Q_MXADDR) {
        next_term(ev);
    } else {
        ev->validated = true;   /* back to the term or exp that needed it */
    }
}

/* take_strs - move the stored answer's strings into the host list */
static void take_strs(struct spf_eval *ev, size_t max)
{
    size_t i;

    ev->hosts = ev->strs;
    ev->nhosts = ev->nstrs;
    ev->strs = NULL;
    ev->nstrs = 0;
    ev->hosti = 0;
    for (i = max; i < ev->nhosts; i++)
        free(ev->hosts[i]);
    if (ev->nhosts > max)
        ev->nhosts = max;
    for (i = 0; i < ev->nhosts; i++) {   /* names without the trailing dot */
        size_t n = strlen(ev->hosts[i]);
        if (n > 0 && ev->hosts[i][n - 1] == '.')
            ev->hosts[i][n - 1] = 0;
    }
}

/* any_match - an address of the stored answer matches the current term */
static bool any_match(const struct spf_eval *ev, unsigned cidr4, unsigned cidr6)
{
    size_t i;

    for (i = 0; i < ev->naddrs; i++)
        if (sa_match(ev, &ev->addrs[i], cidr4, cidr6))
            return true;
    return false;
}

/* handle_answer - act on the stored answer to question ev->q */
static void handle_answer(struct spf_eval *ev)
{
    struct spf_frame *fr = &ev->frames[ev->depth - 1];
    const struct spf_term *t = fr->idx < fr->rec.n ? &fr->rec.terms[fr->idx] : NULL;
    bool empty = ev->st == DNS_NOTFOUND || ev->st == DNS_NODATA || ev->st == DNS_PERMFAIL
                 || (ev->st == DNS_OK && ev->naddrs == 0 && ev->nstrs == 0);
    const char *why;

    switch (ev->q) {
    case Q_RECORD:
        got_record(ev);
        break;
    case Q_A:
    case Q_EXISTS:
        if (ev->st == DNS_TEMPFAIL)
            finish(ev, SPF_TEMPERROR, "DNS error in a/exists");
        else if (empty) {
            if (!void_lookup(ev))
                next_term(ev);
        } else if (ev->q == Q_EXISTS || any_match(ev, t->cidr4, t->cidr6))
            matched(ev);
        else
            next_term(ev);
        break;
    case Q_MX:
        if (ev->st == DNS_TEMPFAIL) {
            finish(ev, SPF_TEMPERROR, "DNS error in mx");
        } else if (empty) {
            if (!void_lookup(ev))
                next_term(ev);
        } else if (ev->nstrs > SPF_MAX_MX) {
            finish(ev, SPF_PERMERROR, "more than 10 MX records");
        } else {
            take_strs(ev, SPF_MAX_MX);
            next_host(ev, Q_MXADDR);
        }
        break;
    case Q_MXADDR:
        if (ev->st == DNS_TEMPFAIL) {
            finish(ev, SPF_TEMPERROR, "DNS error looking up an MX host");
        } else if (empty) {
            if (!void_lookup(ev))
                next_host(ev, Q_MXADDR);
        } else if (any_match(ev, t->cidr4, t->cidr6)) {
            strv_free(ev->hosts, ev->nhosts);
            ev->hosts = NULL;
            ev->nhosts = ev->hosti = 0;
            matched(ev);
        } else {
            next_host(ev, Q_MXADDR);
        }
        break;
    case Q_PTR:
        if (ev->st == DNS_OK && ev->nstrs > 0) {
            take_strs(ev, SPF_MAX_PTR);
            next_host(ev, Q_PTRADDR);
        } else if (ev->st == DNS_TEMPFAIL || !void_lookup(ev)) {
            ev->validated = true;
        }
        break;
    case Q_PTRADDR:
        if (ev->st == DNS_OK && any_match(ev, IP4_LEN * BITS_PER_BYTE, IP6_LEN * BITS_PER_BYTE)) {
            ev->valid = xreallocarray(ev->valid, ev->nvalid + 1, sizeof(*ev->valid));
            ev->valid[ev->nvalid++] = xstrdup(ev->hosts[ev->hosti - 1]);
        } else if (empty && ev->st != DNS_TEMPFAIL && void_lookup(ev)) {
            break;
        }
        next_host(ev, Q_PTRADDR);
        break;
    case Q_EXP:
        if (ev->st == DNS_OK && ev->nstrs == 1 && needs_p(ev->strs[0]) && !ev->validated) {
            ev->exp_text = xstrdup(ev->strs[0]);
            start_validation(ev);
            break;
        }
        if (ev->st == DNS_OK && ev->nstrs == 1
            && expand(ev, ev->strs[0], true, &ev->exp, &why) < 0)
            buf_reset(&ev->exp);
        if (ev->exp.len > SPF_EXP_MAX)
            buf_truncate(&ev->exp, SPF_EXP_MAX);
        finish(ev, SPF_FAIL, NULL);
        break;
    case Q_NONE:
        msg_panic("spf: answer without a question");
    }
}

/* step - one move of the state machine */
static void step(struct spf_eval *ev)
{
    switch (ev->phase) {
    case PH_FETCH:
        ask(ev, Q_RECORD, ev->frames[ev->depth - 1].domain, 0);
        return;
    case PH_TERM:
        step_term(ev);
        return;
    case PH_EXP:
        step_exp(ev);
        return;
    }
}

/* eval_free - release everything */
static void eval_free(struct spf_eval *ev)
{
    while (ev->depth > 0)
        frame_pop(ev);
    answer_clear(ev);
    strv_free(ev->hosts, ev->nhosts);
    strv_free(ev->valid, ev->nvalid);
    free(ev->sender);
    free(ev->local);
    free(ev->sender_domain);
    free(ev->helo);
    free(ev->receiver);
    free(ev->exp_text);
    buf_free(&ev->target);
    buf_free(&ev->mech);
    buf_free(&ev->exp);
    buf_free(&ev->problem);
    free(ev);
}

/* deliver - report the outcome and free the evaluator */
static void deliver(struct spf_eval *ev)
{
    struct spf_outcome out = {
        .result = ev->result,
        .domain = ev->sender_domain,
        .sender = ev->sender,
        .mechanism = buf_str(&ev->mech),
        .explanation = ev->result == SPF_FAIL ? buf_str(&ev->exp) : "",
        .problem = buf_str(&ev->problem),
    };

    ev->done(ev->ctx, &out);
    eval_free(ev);
}

/* run_loop - step until waiting or finished; true when ev was freed */
static bool run_loop(struct spf_eval *ev)
{
    ev->running = true;
    while (!ev->finished && !ev->waiting) {
        if (ev->have_answer) {
            ev->have_answer = false;
            handle_answer(ev);
        } else {
            step(ev);
        }
    }
    ev->running = false;
    if (ev->finished) {
        deliver(ev);
        return true;
    }
    return false;
}

/* run - resume after an answer that came from the event loop */
static void run(struct spf_eval *ev)
{
    (void)run_loop(ev);
}

/* set_client - parse the client address and prepare %{i} and %{c} */
static bool set_client(struct spf_eval *ev, const char *ip)
{
    static const unsigned char mapped[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    struct buf b = BUF_INIT;
    size_t i;

    if (ip == NULL)
        return false;
    if (inet_pton(AF_INET, ip, ev->ip) == 1) {
        ev->family = AF_INET;
    } else if (inet_pton(AF_INET6, ip, ev->ip) == 1) {
        ev->family = AF_INET6;
        if (memcmp(ev->ip, mapped, sizeof(mapped)) == 0) {   /* ::ffff:a.b.c.d is IPv4 */
            memmove(ev->ip, ev->ip + sizeof(mapped), IP4_LEN);
            ev->family = AF_INET;
        }
    } else {
        return false;
    }
    inet_ntop(ev->family, ev->ip, ev->c_text, sizeof(ev->c_text));
    if (ev->family == AF_INET) {
        memcpy(ev->i_text, ev->c_text, sizeof(ev->i_text));
        return true;
    }
    for (i = 0; i < IP6_LEN; i++)
        buf_printf(&b, "%s%x.%x", i ? "." : "", ev->ip[i] >> 4, ev->ip[i] & 0xf);
    snprintf(ev->i_text, sizeof(ev->i_text), "%s", buf_str(&b));
    buf_free(&b);
    return true;
}

/* spf_eval_start - start check_host() for req */
struct spf_eval *spf_eval_start(const struct spf_dns_ops *ops, const struct spf_request *req,
                                spf_done_fn done, void *ctx)
{
    struct spf_eval *ev = xcalloc(1, sizeof(*ev));
    const char *helo = req->helo ? req->helo : "";
    const char *sender = req->sender ? req->sender : "";
    const char *at;
    size_t n;

    ev->ops = ops;
    ev->done = done;
    ev->ctx = ctx;
    ev->now = req->now ? req->now : time(NULL);
    ev->helo = xstrdup(helo);
    n = strlen(ev->helo);
    if (n > 0 && ev->helo[n - 1] == '.')
        ev->helo[n - 1] = 0;
    ev->receiver = xstrdup(req->receiver && *req->receiver ? req->receiver : "unknown");
    if (req->scope == SPF_SCOPE_HELO || *sender == 0) {
        ev->sender = xasprintf("postmaster@%s", ev->helo);
        ev->local = xstrdup("postmaster");
        ev->sender_domain = xstrdup(ev->helo);
    } else if ((at = strrchr(sender, '@')) != NULL) {
        ev->sender = xstrdup(sender);
        ev->local = at == sender ? xstrdup("postmaster") : xstrndup(sender, (size_t)(at - sender));
        ev->sender_domain = xstrdup(at + 1);
    } else {
        ev->sender = xasprintf("postmaster@%s", sender);
        ev->local = xstrdup("postmaster");
        ev->sender_domain = xstrdup(sender);
    }
    n = strlen(ev->sender_domain);
    if (n > 0 && ev->sender_domain[n - 1] == '.')
        ev->sender_domain[n - 1] = 0;
    if (!set_client(ev, req->client_ip)) {
        finish(ev, SPF_NONE, "invalid client address");
    } else if (!domain_ok(ev->sender_domain)) {
        finish(ev, SPF_NONE, "not a valid domain name");
    } else {
        frame_push(ev, ev->sender_domain);
    }
    return run_loop(ev) ? NULL : ev;
}

/* spf_eval_cancel - stop: pending DNS is cancelled, done never runs */
void spf_eval_cancel(struct spf_eval *ev)
{
    if (ev == NULL)
        return;
    if (ev->waiting && ev->req != NULL) {
        if (ev->q == Q_PTR && ev->ops->cancel_ptr != NULL)
            ev->ops->cancel_ptr(ev->ops->dctx, ev->req);
        else if (ev->q != Q_PTR && ev->ops->cancel != NULL)
            ev->ops->cancel(ev->ops->dctx, ev->req);
    }
    eval_free(ev);
}

/* spf_reject_reply - the SMTP reply for a rejected SPF fail */
void spf_reject_reply(const struct spf_outcome *out, struct buf *reply)
{
    const char *p;
    size_t n = 0;

    buf_set(reply, "550 5.7.23 ");
    if (out->explanation == NULL || *out->explanation == 0) {
        buf_printf(reply, "SPF: %.*s is not allowed to send mail for %.*s",
                   SPF_REPLY_TEXT_MAX / 4, out->sender ? out->sender : "",
                   SPF_REPLY_TEXT_MAX / 4, out->domain ? out->domain : "");
        return;
    }
    for (p = out->explanation; *p && n < SPF_REPLY_TEXT_MAX; p++, n++)
        buf_putc(reply, (unsigned char)*p >= ' ' && (unsigned char)*p < 0x7f ? *p : '?');
}

/* ---- the resolver of util/dns.h ---- */

struct real_req {
    struct dns_req *req;
    spf_ptr_fn pfn;
    void *ctx;
};

static unsigned real_timeout_ms;

/* real_txt - TXT through c-ares */
static void *real_txt(void *dctx, const char *name, dns_txt_fn fn, void *ctx)
{
    return dns_lookup_txt(name, real_timeout_ms, fn, ctx);
}

/* real_mx - MX through c-ares */
static void *real_mx(void *dctx, const char *name, dns_mx_fn fn, void *ctx)
{
    return dns_lookup_mx(name, real_timeout_ms, fn, ctx);
}

/* real_addr - A or AAAA through c-ares (DNS only, not /etc/hosts) */
static void *real_addr(void *dctx, const char *name, int family, dns_addr_fn fn, void *ctx)
{
    return dns_lookup_addr(name, family, false, real_timeout_ms, fn, ctx);
}

/* real_name_done - dns_client_name answered: one confirmed name or none */
static void real_name_done(void *ctx, const char *name)
{
    struct real_req *rr = ctx;
    char *names[1];
    spf_ptr_fn fn = rr->pfn;
    void *fctx = rr->ctx;

    free(rr);
    if (name == NULL) {
        fn(fctx, DNS_NOTFOUND, NULL, 0, "no confirmed PTR name");
        return;
    }
    names[0] = (char *)name;
    fn(fctx, DNS_OK, names, 1, "");
}

/* real_ptr - PTR with forward confirmation through dns_client_name */
static void *real_ptr(void *dctx, const struct sockaddr *sa, socklen_t len, spf_ptr_fn fn,
                      void *ctx)
{
    struct real_req *rr = xcalloc(1, sizeof(*rr));

    rr->pfn = fn;
    rr->ctx = ctx;
    rr->req = dns_client_name(sa, len, real_timeout_ms, real_name_done, rr);
    return rr;
}

/* real_cancel - cancel a TXT, MX or address request */
static void real_cancel(void *dctx, void *req)
{
    dns_cancel(req);
}

/* real_cancel_ptr - cancel a PTR request started by real_ptr */
static void real_cancel_ptr(void *dctx, void *req)
{
    struct real_req *rr = req;

    dns_cancel(rr->req);
    free(rr);
}

static const struct spf_dns_ops real_ops = {
    real_txt, real_mx, real_addr, real_ptr, real_cancel, real_cancel_ptr, NULL,
};

/* spf_dns_real - ops backed by util/dns.h */
const struct spf_dns_ops *spf_dns_real(unsigned timeout_ms)
{
    real_timeout_ms = timeout_ms;
    return &real_ops;
}
