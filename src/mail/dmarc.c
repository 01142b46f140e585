/*
 * dmarc.c - DMARC record parsing, policy discovery and judgement
 *
 * Discovery is a two-step resolver conversation driven like the SPF
 * evaluator (answers may come synchronously or from the event loop):
 * TXT _dmarc.FROM; when that holds no DMARC record, TXT _dmarc.ORG
 * for the organisational domain of FROM from the Public Suffix List.
 *
 * DIAGNOSTICS
 *	Nothing is logged; outcomes carry a short problem text.
 *
 * SECURITY
 *	Records come from DNS and From fields from the sender: parsing is
 *	bounded by the input and copies nothing unbounded.
 */
#include "util/sys.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/random.h>

#include "mail/cleanup.h"
#include "mail/dmarc.h"
#include "util/alloc.h"

#define DMARC_PREFIX "_dmarc."
#define DMARC_PCT_RANGE 100
#define DMARC_TAG_MAX 32

static const char *const policy_names[] = {"", "none", "quarantine", "reject"};
static const char *const result_names[] = {"none", "pass", "fail", "temperror", "permerror"};

/* dmarc_policy_name - policy as published */
const char *dmarc_policy_name(enum dmarc_policy p)
{
    return (size_t)p < sizeof(policy_names) / sizeof(policy_names[0]) ? policy_names[p] : "";
}

/* dmarc_result_name - result as in RFC 8601 */
const char *dmarc_result_name(enum dmarc_result r)
{
    return (size_t)r < sizeof(result_names) / sizeof(result_names[0]) ? result_names[r]
                                                                       : "permerror";
}

/* skip_wsp - past blanks */
static const char *skip_wsp(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    return p;
}

/* next_tag - the next "name=value" of a tag list; false at the end */
static bool next_tag(const char **pp, char *name, size_t nmax, const char **val, size_t *vlen)
{
    const char *p = skip_wsp(*pp), *n0, *v0, *end;
    size_t nlen;

    while (*p == ';')
        p = skip_wsp(p + 1);
    if (*p == 0)
        return false;
    n0 = p;
    while (*p && *p != '=' && *p != ';' && *p != ' ' && *p != '\t')
        p++;
    nlen = (size_t)(p - n0);
    p = skip_wsp(p);
    if (*p != '=') {      /* a tag without '=': give it an empty name */
        nlen = 0;
        while (*p && *p != ';')
            p++;
        v0 = p;
        end = p;
    } else {
        v0 = skip_wsp(p + 1);
        end = v0;
        while (*end && *end != ';')
            end++;
        p = end;
    }
    while (end > v0 && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
        end--;
    if (nlen >= nmax)
        nlen = 0;
    memcpy(name, n0, nlen);
    name[nlen] = 0;
    *val = v0;
    *vlen = (size_t)(end - v0);
    *pp = p;
    return true;
}

/* value_is - the value equals word, ignoring case */
static bool value_is(const char *v, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(v, word, n) == 0;
}

/* dmarc_is_record - text starts with the tag v=DMARC1 */
bool dmarc_is_record(const char *text)
{
    const char *p = text, *v;
    char name[DMARC_TAG_MAX];
    size_t n;

    return next_tag(&p, name, sizeof(name), &v, &n) && strcmp(name, "v") == 0
           && value_is(v, n, "DMARC1");
}

/* parse_policy - none / quarantine / reject */
static enum dmarc_policy parse_policy(const char *v, size_t n)
{
    if (value_is(v, n, "none"))
        return DMARC_POLICY_NONE;
    if (value_is(v, n, "quarantine"))
        return DMARC_POLICY_QUARANTINE;
    if (value_is(v, n, "reject"))
        return DMARC_POLICY_REJECT;
    return DMARC_POLICY_UNSET;
}

/* parse_uint - a decimal number <= max, or false */
static bool parse_uint(const char *v, size_t n, unsigned long max, unsigned long *out)
{
    unsigned long x = 0;
    size_t i;

    if (n == 0)
        return false;
    for (i = 0; i < n; i++) {
        if (!isdigit((unsigned char)v[i]))
            return false;
        x = x * 10 + (unsigned long)(v[i] - '0');
        if (x > max)
            return false;
    }
    *out = x;
    return true;
}

/* rua_valid - at least one "mailto:" (or other scheme:) URI in a comma list */
static bool rua_valid(const char *rua)
{
    const char *p = rua, *colon;

    while (p != NULL && *p) {
        p = skip_wsp(p);
        colon = strchr(p, ':');
        if (colon != NULL && colon > p && isalpha((unsigned char)*p)
            && (strchr(p, ',') == NULL || colon < strchr(p, ',')) && colon[1] != 0
            && colon[1] != ',')
            return true;
        p = strchr(p, ',');
        if (p != NULL)
            p++;
    }
    return false;
}

/* dmarc_record_free - release a parsed record */
void dmarc_record_free(struct dmarc_record *rec)
{
    free(rec->rua);
    free(rec->ruf);
    free(rec->fo);
    free(rec->rf);
    memset(rec, 0, sizeof(*rec));
}

/* dmarc_record_parse - parse a DMARC record */
int dmarc_record_parse(const char *text, struct dmarc_record *rec, const char **why)
{
    const char *p = text, *v;
    char name[DMARC_TAG_MAX];
    size_t n;
    unsigned long x;
    bool first = true, have_p = false, bad_p = false, bad_sp = false;
    char **slot;

    memset(rec, 0, sizeof(*rec));
    rec->pct = DMARC_PCT_DEFAULT;
    rec->ri = DMARC_RI_DEFAULT;
    while (next_tag(&p, name, sizeof(name), &v, &n)) {
        if (first) {
            if (strcmp(name, "v") != 0 || !value_is(v, n, "DMARC1")) {
                *why = "not a DMARC record (v=DMARC1 must come first)";
                return -1;
            }
            first = false;
            continue;
        }
        slot = NULL;
        if (strcasecmp(name, "p") == 0) {
            if (have_p)
                continue;
            have_p = true;
            rec->p = parse_policy(v, n);
            bad_p = rec->p == DMARC_POLICY_UNSET;
        } else if (strcasecmp(name, "sp") == 0) {
            rec->sp = parse_policy(v, n);
            bad_sp = rec->sp == DMARC_POLICY_UNSET;
        } else if (strcasecmp(name, "pct") == 0) {
            if (parse_uint(v, n, DMARC_PCT_RANGE, &x))
                rec->pct = (unsigned)x;
        } else if (strcasecmp(name, "adkim") == 0 || strcasecmp(name, "aspf") == 0) {
            bool *strict = name[1] == 'd' || name[1] == 'D' ? &rec->adkim_strict
                                                            : &rec->aspf_strict;
            if (value_is(v, n, "s"))
                *strict = true;
            else if (value_is(v, n, "r"))
                *strict = false;
        } else if (strcasecmp(name, "ri") == 0) {
            if (parse_uint(v, n, (unsigned long)UINT32_MAX, &x))
                rec->ri = x;
        } else if (strcasecmp(name, "rua") == 0) {
            slot = &rec->rua;
        } else if (strcasecmp(name, "ruf") == 0) {
            slot = &rec->ruf;
        } else if (strcasecmp(name, "fo") == 0) {
            slot = &rec->fo;
        } else if (strcasecmp(name, "rf") == 0) {
            slot = &rec->rf;
        }
        if (slot != NULL && *slot == NULL)
            *slot = xstrndup(v, n);
    }
    if (first) {
        *why = "not a DMARC record (v=DMARC1 must come first)";
        return -1;
    }
    if (rec->fo == NULL)
        rec->fo = xstrdup("0");
    if (rec->rf == NULL)
        rec->rf = xstrdup("afrf");
    if (!have_p || bad_p || bad_sp) {
        if (rec->rua != NULL && rua_valid(rec->rua)) {   /* RFC 7489 6.6.3 step 6 */
            rec->p = DMARC_POLICY_NONE;
            rec->sp = DMARC_POLICY_UNSET;
            return 0;
        }
        *why = !have_p ? "DMARC record without p=" : "DMARC record with an invalid p= or sp=";
        return -1;
    }
    return 0;
}

struct from_scan {
    struct buf *domain;
    size_t addrs, domains;
    bool differ;
};

/* from_addr - one address of the From field */
static void from_addr(void *ctx, const char *addr)
{
    struct from_scan *fs = ctx;
    const char *at = strrchr(addr, '@');
    size_t i, len;
    char *d;

    fs->addrs++;
    if (at == NULL || at[1] == 0)
        return;
    d = xstrdup(at + 1);
    len = strlen(d);
    while (len > 0 && d[len - 1] == '.')
        d[--len] = 0;
    if (len == 0 || (d[0] == '[' && d[len - 1] == ']')) {   /* empty, or an address literal */
        free(d);
        return;
    }
    for (i = 0; i < len; i++)
        d[i] = (char)tolower((unsigned char)d[i]);
    if (fs->domains++ == 0)
        buf_set(fs->domain, d);
    else if (strcmp(buf_str(fs->domain), d) != 0)
        fs->differ = true;
    free(d);
}

/* dmarc_from_domain - the RFC5322.From domain */
enum dmarc_from_status dmarc_from_domain(const char *const *values, size_t n,
                                         struct buf *domain, const char **why)
{
    struct from_scan fs = {domain, 0, 0, false};

    buf_reset(domain);
    if (n == 0) {
        *why = "no From header field";
        return DMARC_FROM_BAD;
    }
    if (n > 1) {
        *why = "more than one From header field";
        return DMARC_FROM_BAD;
    }
    cleanup_addr_list(values[0], strlen(values[0]), "", NULL, from_addr, &fs);
    if (fs.differ) {
        buf_reset(domain);
        *why = "From addresses in different domains";
        return DMARC_FROM_BAD;
    }
    if (fs.domains == 0) {
        *why = "no domain in the From header field";
        return DMARC_FROM_NONE;
    }
    return DMARC_FROM_OK;
}

/* dmarc_aligned - identifier alignment of domain d with the From domain */
bool dmarc_aligned(const struct psl *psl, const char *d, const char *from, bool strict)
{
    struct buf a = BUF_INIT, b = BUF_INIT;
    size_t dl, fl;
    bool ok;

    if (d == NULL || from == NULL || *d == 0 || *from == 0)
        return false;
    dl = strlen(d);
    fl = strlen(from);
    while (dl > 0 && d[dl - 1] == '.')
        dl--;
    while (fl > 0 && from[fl - 1] == '.')
        fl--;
    if (dl == fl && strncasecmp(d, from, dl) == 0)
        return true;
    if (strict)
        return false;
    psl_org_domain(psl, d, &a);
    psl_org_domain(psl, from, &b);
    ok = strcmp(buf_str(&a), buf_str(&b)) == 0;
    buf_free(&a);
    buf_free(&b);
    return ok;
}

/* sample - a number in 0..99 for pct */
static unsigned sample(int fixed)
{
    unsigned r;

    if (fixed >= 0)
        return (unsigned)fixed % DMARC_PCT_RANGE;
    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
        r = (unsigned)random();
    return r % DMARC_PCT_RANGE;
}

/* dmarc_apply - judge in against rec */
void dmarc_apply(const struct dmarc_record *rec, bool at_org, const struct psl *psl,
                 const struct dmarc_input *in, struct dmarc_outcome *out)
{
    size_t i;

    out->spf_aligned = in->spf == SPF_PASS
                       && dmarc_aligned(psl, in->spf_domain, in->from_domain, rec->aspf_strict);
    out->dkim_aligned = false;
    for (i = 0; i < in->ndkim && !out->dkim_aligned; i++)
        out->dkim_aligned = in->dkim[i].pass
                            && dmarc_aligned(psl, in->dkim[i].domain, in->from_domain,
                                             rec->adkim_strict);
    out->policy = at_org && rec->sp != DMARC_POLICY_UNSET ? rec->sp : rec->p;
    out->problem = "";
    if (out->spf_aligned || out->dkim_aligned) {
        out->result = DMARC_RESULT_PASS;
        out->disposition = DMARC_POLICY_NONE;
        return;
    }
    out->result = DMARC_RESULT_FAIL;
    out->disposition = out->policy;
    if (out->policy != DMARC_POLICY_NONE && sample(in->sample) >= rec->pct) {
        /* not sampled: one step milder (RFC 7489 6.6.4) */
        out->disposition = out->policy == DMARC_POLICY_REJECT ? DMARC_POLICY_QUARANTINE
                                                              : DMARC_POLICY_NONE;
    }
}

/* ---- discovery ---- */

struct dmarc_eval {
    const struct spf_dns_ops *ops;
    const struct psl *psl;
    dmarc_done_fn done;
    void *ctx;
    struct dmarc_input in;
    char *from, *spf_domain;
    struct dmarc_dkim_sig *dkim;
    struct buf org, qname, policy_domain, problem;
    bool at_org;
    void *req;
    bool waiting, running, have_answer, finished;
    enum dns_status st;
    char **txt;
    size_t ntxt;
    struct dmarc_outcome out;
};

/* txt_clear - forget the stored answer */
static void txt_clear(struct dmarc_eval *ev)
{
    size_t i;

    for (i = 0; i < ev->ntxt; i++)
        free(ev->txt[i]);
    free(ev->txt);
    ev->txt = NULL;
    ev->ntxt = 0;
}

/* eval_free - release everything */
static void eval_free(struct dmarc_eval *ev)
{
    size_t i;

    txt_clear(ev);
    for (i = 0; i < ev->in.ndkim; i++)
        free((char *)ev->dkim[i].domain);
    free(ev->dkim);
    free(ev->from);
    free(ev->spf_domain);
    buf_free(&ev->org);
    buf_free(&ev->qname);
    buf_free(&ev->policy_domain);
    buf_free(&ev->problem);
    free(ev);
}

static bool run_loop(struct dmarc_eval *ev);

/* on_txt - the answer for _dmarc.X */
static void on_txt(void *ctx, enum dns_status st, char *const *txt, size_t n, const char *why)
{
    struct dmarc_eval *ev = ctx;
    size_t i;

    txt_clear(ev);
    ev->st = st;
    if (st == DNS_OK) {
        ev->txt = xcalloc(n ? n : 1, sizeof(*ev->txt));
        for (i = 0; i < n; i++)
            ev->txt[i] = xstrdup(txt[i]);
        ev->ntxt = n;
    }
    ev->req = NULL;
    ev->waiting = false;
    ev->have_answer = true;
    if (!ev->running)
        (void)run_loop(ev);
}

/* ask - TXT of _dmarc.domain */
static void ask(struct dmarc_eval *ev, const char *domain)
{
    void *req;

    buf_reset(&ev->qname);
    buf_printf(&ev->qname, "%s%s", DMARC_PREFIX, domain);
    ev->waiting = true;
    req = ev->ops->txt(ev->ops->dctx, buf_str(&ev->qname), on_txt, ev);
    if (ev->waiting)
        ev->req = req;
}

/* finish - the final outcome */
static void finish(struct dmarc_eval *ev, enum dmarc_result r, const char *problem)
{
    ev->out.result = r;
    ev->out.disposition = DMARC_POLICY_NONE;
    if (problem != NULL)
        buf_set(&ev->problem, problem);
    ev->finished = true;
}

/* got_answer - act on the TXT answer */
static void got_answer(struct dmarc_eval *ev)
{
    const char *rec = NULL, *why;
    size_t i, found = 0;
    struct dmarc_record r;

    if (ev->st == DNS_TEMPFAIL) {
        finish(ev, DMARC_RESULT_TEMPERROR, "DNS error looking up the DMARC record");
        return;
    }
    for (i = 0; ev->st == DNS_OK && i < ev->ntxt; i++) {
        if (dmarc_is_record(ev->txt[i])) {
            rec = ev->txt[i];
            found++;
        }
    }
    if (found == 0) {
        if (!ev->at_org && strcmp(buf_str(&ev->org), ev->from) != 0) {
            ev->at_org = true;
            ask(ev, buf_str(&ev->org));
            return;
        }
        finish(ev, DMARC_RESULT_NONE, "no DMARC record");
        return;
    }
    if (found > 1) {
        finish(ev, DMARC_RESULT_NONE, "more than one DMARC record");
        return;
    }
    if (dmarc_record_parse(rec, &r, &why) < 0) {
        dmarc_record_free(&r);
        finish(ev, DMARC_RESULT_NONE, why);
        return;
    }
    buf_set(&ev->policy_domain, ev->at_org ? buf_str(&ev->org) : ev->from);
    dmarc_apply(&r, ev->at_org, ev->psl, &ev->in, &ev->out);
    dmarc_record_free(&r);
    ev->finished = true;
}

/* run_loop - handle answers until waiting or finished; true when freed */
static bool run_loop(struct dmarc_eval *ev)
{
    ev->running = true;
    while (!ev->finished && !ev->waiting && ev->have_answer) {
        ev->have_answer = false;
        got_answer(ev);
    }
    ev->running = false;
    if (!ev->finished)
        return false;
    ev->out.from_domain = ev->from;
    ev->out.policy_domain = buf_str(&ev->policy_domain);
    ev->out.problem = buf_str(&ev->problem);
    ev->done(ev->ctx, &ev->out);
    eval_free(ev);
    return true;
}

/* dmarc_eval_start - discover the policy of in->from_domain and judge */
struct dmarc_eval *dmarc_eval_start(const struct spf_dns_ops *ops, const struct psl *psl,
                                    const struct dmarc_input *in, dmarc_done_fn done,
                                    void *ctx)
{
    struct dmarc_eval *ev = xcalloc(1, sizeof(*ev));
    size_t i, len;

    ev->ops = ops;
    ev->psl = psl;
    ev->done = done;
    ev->ctx = ctx;
    ev->in = *in;
    ev->from = xstrdup(in->from_domain ? in->from_domain : "");
    for (len = strlen(ev->from); len > 0 && ev->from[len - 1] == '.';)
        ev->from[--len] = 0;
    for (i = 0; i < len; i++)
        ev->from[i] = (char)tolower((unsigned char)ev->from[i]);
    ev->spf_domain = xstrdup(in->spf_domain ? in->spf_domain : "");
    ev->dkim = xcalloc(in->ndkim ? in->ndkim : 1, sizeof(*ev->dkim));
    for (i = 0; i < in->ndkim; i++) {
        ev->dkim[i].domain = xstrdup(in->dkim[i].domain ? in->dkim[i].domain : "");
        ev->dkim[i].pass = in->dkim[i].pass;
    }
    ev->in.from_domain = ev->from;
    ev->in.spf_domain = ev->spf_domain;
    ev->in.dkim = ev->dkim;
    if (len == 0 || strchr(ev->from, '.') == NULL) {
        finish(ev, DMARC_RESULT_NONE, "no usable From domain");
    } else {
        psl_org_domain(psl, ev->from, &ev->org);
        ev->running = true;   /* a synchronous answer waits for run_loop */
        ask(ev, ev->from);
        ev->running = false;
    }
    return run_loop(ev) ? NULL : ev;
}

/* dmarc_eval_cancel - stop; done never runs */
void dmarc_eval_cancel(struct dmarc_eval *ev)
{
    if (ev == NULL)
        return;
    if (ev->waiting && ev->req != NULL && ev->ops->cancel != NULL)
        ev->ops->cancel(ev->ops->dctx, ev->req);
    eval_free(ev);
}

/* dmarc_action - what to do with the message */
enum dmarc_action dmarc_action(const struct dmarc_outcome *out, const struct dmarc_settings *s,
                               struct buf *reply)
{
    buf_reset(reply);
    if (out->result == DMARC_RESULT_TEMPERROR) {
        if (!s->temperror_defer)
            return DMARC_ACTION_ACCEPT;
        buf_printf(reply, "451 4.7.1 Temporary DNS error while checking the DMARC policy for %s",
                   out->from_domain ? out->from_domain : "");
        return DMARC_ACTION_DEFER;
    }
    if (out->result != DMARC_RESULT_FAIL || !s->enforce)
        return DMARC_ACTION_ACCEPT;
    switch (out->disposition) {
    case DMARC_POLICY_REJECT:
        buf_printf(reply, "550 5.7.1 Rejected by DMARC policy for %s",
                   out->from_domain ? out->from_domain : "");
        return DMARC_ACTION_REJECT;
    case DMARC_POLICY_QUARANTINE:
        return s->quarantine_hold ? DMARC_ACTION_HOLD : DMARC_ACTION_ACCEPT;
    default:
        return DMARC_ACTION_ACCEPT;
    }
}
