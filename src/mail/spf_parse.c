/*
 * spf_parse.c - SPF record and macro-string parsing (RFC 7208 4.6, 7)
 *
 * spf_record_parse turns a "v=spf1" record into terms; any syntax error
 * anywhere makes the whole record invalid, as RFC 7208 4.6 requires, so
 * the evaluator never acts on half a record. spf_macro_expand expands the
 * macro language (letters s l o d i p h c r t v, the digit and "r"
 * transformers, delimiters, %% %_ %-, URL escaping for upper-case
 * letters).
 *
 * DIAGNOSTICS
 *	Errors are returned as static text in *why; nothing is logged.
 *
 * SECURITY
 *	Records come from DNS, i.e. from anyone. Parsing is linear, every
 *	copy is bounded by the input, and expansion output is limited by
 *	SPF_EXPAND_MAX.
 */
#include "util/sys.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <strings.h>

#include "mail/spf.h"
#include "util/alloc.h"

#define SPF_VERSION "v=spf1"
#define SPF_VERSION_LEN 6
#define SPF_CIDR4_MAX 32U
#define SPF_CIDR6_MAX 128U
#define SPF_DIGITS_MAX 1000U      /* digit transformers beyond this keep every part */
#define SPF_EXPAND_MAX 8192       /* bytes of one expansion */
#define SPF_IP4_TEXT_MAX 16
#define SPF_IP6_TEXT_MAX 46
#define SPF_DELIMS ".-+,/_="
#define SPF_MAX_PARTS 256         /* parts a value is split into for transformers */

/* spf_is_record - text starts with "v=spf1" followed by a space or its end */
bool spf_is_record(const char *text)
{
    return strncasecmp(text, SPF_VERSION, SPF_VERSION_LEN) == 0
           && (text[SPF_VERSION_LEN] == 0 || text[SPF_VERSION_LEN] == ' ');
}

/* spf_record_free - release a parsed record */
void spf_record_free(struct spf_record *rec)
{
    size_t i;

    for (i = 0; i < rec->n; i++) {
        free(rec->terms[i].domain);
        free(rec->terms[i].text);
    }
    free(rec->terms);
    free(rec->redirect);
    free(rec->exp);
    memset(rec, 0, sizeof(*rec));
}

/* macro_letter_ok - a macro letter valid here (c r t only in explanations) */
static bool macro_letter_ok(int c, bool exp)
{
    c = tolower(c);
    if (strchr("slodiphv", c) != NULL)
        return c != 0;
    return exp && (c == 'c' || c == 'r' || c == 't');
}

/*
 * macro_scan - check spec[0..len) as a macro-string; *ends_macro tells
 * whether it ends with a macro-expand (for the domain-end rule)
 */
static int macro_scan(const char *spec, size_t len, bool exp, bool *ends_macro,
                      const char **why)
{
    size_t i = 0;
    unsigned char c;

    *ends_macro = false;
    while (i < len) {
        c = (unsigned char)spec[i];
        if (c == '%') {
            if (i + 1 >= len) {
                *why = "'%' at the end of a macro string";
                return -1;
            }
            c = (unsigned char)spec[i + 1];
            if (c == '%' || c == '_' || c == '-') {
                i += 2;
                *ends_macro = true;
                continue;
            }
            if (c != '{') {
                *why = "invalid character after '%'";
                return -1;
            }
            i += 2;
            if (i >= len || !macro_letter_ok((unsigned char)spec[i], exp)) {
                *why = "invalid macro letter";
                return -1;
            }
            i++;
            if (i < len && spec[i] == '0') {
                *why = "macro digit transformer of zero";
                return -1;
            }
            while (i < len && isdigit((unsigned char)spec[i]))
                i++;
            if (i < len && (spec[i] == 'r' || spec[i] == 'R'))
                i++;
            while (i < len && spec[i] != 0 && strchr(SPF_DELIMS, spec[i]) != NULL)
                i++;
            if (i >= len || spec[i] != '}') {
                *why = "malformed macro";
                return -1;
            }
            i++;
            *ends_macro = true;
            continue;
        }
        if ((c < 0x21 || c > 0x7e) && !(exp && c == ' ')) {
            *why = "invalid character in macro string";
            return -1;
        }
        *ends_macro = false;
        i++;
    }
    return 0;
}

/* spf_macro_check - the syntax check of spf_macro_expand without values */
int spf_macro_check(const char *spec, bool exp, const char **why)
{
    bool ends;

    return macro_scan(spec, strlen(spec), exp, &ends, why);
}

/* toplabel_ok - RFC 7208 toplabel: alphanumerics and inner '-', not all digits */
static bool toplabel_ok(const char *s, size_t n)
{
    size_t i;
    bool alpha = false;

    if (n == 0 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
        return false;
    for (i = 0; i < n; i++) {
        if (isalpha((unsigned char)s[i]))
            alpha = true;
        else if (!isdigit((unsigned char)s[i]) && s[i] != '-')
            return false;
        if (s[i] == '-')
            alpha = true;   /* second form: 1*alnum "-" ... alnum */
    }
    return alpha;
}

/* domain_spec_ok - a macro-string whose end is a macro or "." toplabel ["."] */
static bool domain_spec_ok(const char *spec, size_t len, const char **why)
{
    bool ends_macro;
    size_t end = len, start;

    if (len == 0) {
        *why = "empty domain-spec";
        return false;
    }
    if (macro_scan(spec, len, false, &ends_macro, why) < 0)
        return false;
    if (ends_macro)
        return true;
    if (spec[end - 1] == '.')
        end--;
    start = end;
    while (start > 0 && spec[start - 1] != '.')
        start--;
    if (start == 0 || !toplabel_ok(spec + start, end - start)) {
        *why = "domain-spec is not a fully qualified domain";
        return false;
    }
    return true;
}

/* parse_cidr - a prefix length without leading zeros, <= max */
static bool parse_cidr(const char *s, size_t n, unsigned max, unsigned *out)
{
    unsigned v = 0;
    size_t i;

    if (n == 0 || (n > 1 && s[0] == '0') || n > 3)
        return false;
    for (i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

/*
 * split_dual_cidr - strip "/N", "//M" or "/N//M" from the end of arg;
 * returns the length that remains, or (size_t)-1 for a bad length
 */
static size_t split_dual_cidr(const char *arg, size_t len, struct spf_term *t)
{
    size_t i = len;

    while (i > 0 && isdigit((unsigned char)arg[i - 1]))
        i--;
    if (i < len && i >= 2 && arg[i - 1] == '/' && arg[i - 2] == '/') {
        if (!parse_cidr(arg + i, len - i, SPF_CIDR6_MAX, &t->cidr6))
            return (size_t)-1;
        len = i - 2;
        i = len;
        while (i > 0 && isdigit((unsigned char)arg[i - 1]))
            i--;
    }
    if (i < len && i >= 1 && arg[i - 1] == '/' && (i < 2 || arg[i - 2] != '/')) {
        if (!parse_cidr(arg + i, len - i, SPF_CIDR4_MAX, &t->cidr4))
            return (size_t)-1;
        len = i - 1;
    }
    if (len > 0 && arg[len - 1] == '/')
        return (size_t)-1;
    return len;
}

/* parse_ip - ip4:/ip6: argument with an optional prefix length */
static int parse_ip(const char *arg, size_t len, bool six, struct spf_term *t, const char **why)
{
    char text[SPF_IP6_TEXT_MAX];
    const char *slash = memchr(arg, '/', len);
    size_t alen = slash ? (size_t)(slash - arg) : len;
    size_t max = six ? sizeof(text) : SPF_IP4_TEXT_MAX;

    if (alen == 0 || alen >= max) {
        *why = "invalid IP address";
        return -1;
    }
    memcpy(text, arg, alen);
    text[alen] = 0;
    if (inet_pton(six ? AF_INET6 : AF_INET, text, t->ip) != 1) {
        *why = "invalid IP address";
        return -1;
    }
    if (slash != NULL
        && !parse_cidr(slash + 1, len - alen - 1, six ? SPF_CIDR6_MAX : SPF_CIDR4_MAX,
                       six ? &t->cidr6 : &t->cidr4)) {
        *why = "invalid CIDR length";
        return -1;
    }
    return 0;
}

static const struct {
    const char *name;
    enum spf_mech mech;
} spf_mechs[] = {
    {"all", SPF_MECH_ALL},     {"include", SPF_MECH_INCLUDE}, {"a", SPF_MECH_A},
    {"mx", SPF_MECH_MX},       {"ptr", SPF_MECH_PTR},         {"ip4", SPF_MECH_IP4},
    {"ip6", SPF_MECH_IP6},     {"exists", SPF_MECH_EXISTS},
};

/* opt_domain - an optional ":domain-spec" into t->domain; -1 + *why (bad: no ':') */
static int opt_domain(const char *arg, size_t alen, struct spf_term *t, const char *bad,
                      const char **why)
{
    if (alen == 0)
        return 0;
    if (arg[0] != ':') {
        *why = bad;
        return -1;
    }
    if (!domain_spec_ok(arg + 1, alen - 1, why))
        return -1;
    t->domain = xstrndup(arg + 1, alen - 1);
    return 0;
}

/* parse_mechanism - one directive: [qualifier] mechanism */
static int parse_mechanism(const char *s, size_t n, struct spf_term *t, const char **why)
{
    size_t i, nlen, alen;
    const char *arg;
    bool found = false;

    t->qual = '+';
    t->cidr4 = SPF_CIDR4_MAX;
    t->cidr6 = SPF_CIDR6_MAX;
    if (n > 0 && strchr("+-~?", s[0]) != NULL) {
        t->qual = s[0];
        s++;
        n--;
    }
    for (nlen = 0; nlen < n && s[nlen] != ':' && s[nlen] != '/'; nlen++)
        ;
    for (i = 0; i < sizeof(spf_mechs) / sizeof(spf_mechs[0]); i++) {
        if (strlen(spf_mechs[i].name) == nlen && strncasecmp(s, spf_mechs[i].name, nlen) == 0) {
            t->mech = spf_mechs[i].mech;
            found = true;
            break;
        }
    }
    if (!found) {
        *why = "unknown mechanism";
        return -1;
    }
    arg = s + nlen;
    alen = n - nlen;
    switch (t->mech) {
    case SPF_MECH_ALL:
        if (alen != 0) {
            *why = "\"all\" takes no argument";
            return -1;
        }
        return 0;
    case SPF_MECH_INCLUDE:
    case SPF_MECH_EXISTS:
        if (alen < 2 || arg[0] != ':') {
            *why = "mechanism requires a domain";
            return -1;
        }
        if (!domain_spec_ok(arg + 1, alen - 1, why))
            return -1;
        t->domain = xstrndup(arg + 1, alen - 1);
        return 0;
    case SPF_MECH_PTR:
        return opt_domain(arg, alen, t, "invalid ptr argument", why);
    case SPF_MECH_A:
    case SPF_MECH_MX:
        alen = split_dual_cidr(arg, alen, t);
        if (alen == (size_t)-1) {
            *why = "invalid CIDR length";
            return -1;
        }
        return opt_domain(arg, alen, t, "invalid mechanism argument", why);
    case SPF_MECH_IP4:
    case SPF_MECH_IP6:
        if (alen < 2 || arg[0] != ':') {
            *why = "mechanism requires an address";
            return -1;
        }
        return parse_ip(arg + 1, alen - 1, t->mech == SPF_MECH_IP6, t, why);
    }
    *why = "unknown mechanism";
    return -1;
}

/* modifier_name_len - length of "name=" prefix's name if s is a modifier, else 0 */
static size_t modifier_name_len(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || !isalpha((unsigned char)s[0]))
        return 0;
    for (i = 1; i < n; i++) {
        if (s[i] == '=')
            return i;
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return 0;
    }
    return 0;
}

/* parse_term - one space-separated term into rec */
static int parse_term(const char *s, size_t n, struct spf_record *rec, const char **why)
{
    size_t nlen = modifier_name_len(s, n);
    const char *val;
    size_t vlen;
    bool ends;
    char **slot = NULL;
    struct spf_term t;

    if (nlen > 0) {
        val = s + nlen + 1;
        vlen = n - nlen - 1;
        if (nlen == 8 && strncasecmp(s, "redirect", nlen) == 0)
            slot = &rec->redirect;
        else if (nlen == 3 && strncasecmp(s, "exp", nlen) == 0)
            slot = &rec->exp;
        if (slot == NULL)   /* unknown modifiers are ignored, but must parse */
            return macro_scan(val, vlen, false, &ends, why);
        if (*slot != NULL) {
            *why = "redirect or exp given twice";
            return -1;
        }
        if (!domain_spec_ok(val, vlen, why))
            return -1;
        *slot = xstrndup(val, vlen);
        return 0;
    }
    memset(&t, 0, sizeof(t));
    if (parse_mechanism(s, n, &t, why) < 0) {
        free(t.domain);
        return -1;
    }
    t.text = xstrndup(s, n);
    rec->terms = xreallocarray(rec->terms, rec->n + 1, sizeof(*rec->terms));
    rec->terms[rec->n++] = t;
    return 0;
}

/* spf_record_parse - parse a whole "v=spf1" record */
int spf_record_parse(const char *text, struct spf_record *rec, const char **why)
{
    const char *p, *end;

    memset(rec, 0, sizeof(*rec));
    if (!spf_is_record(text)) {
        *why = "not an SPF record";
        return -1;
    }
    p = text + SPF_VERSION_LEN;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == 0)
            break;
        for (end = p; *end && *end != ' ' && *end != '\t'; end++)
            ;
        if (parse_term(p, (size_t)(end - p), rec, why) < 0)
            return -1;
        p = end;
    }
    return 0;
}

/* url_escaped - append s with characters outside RFC 3986 "unreserved" as %XX */
static int url_escaped(struct buf *out, const char *s, size_t n)
{
    size_t i;
    unsigned char c;

    for (i = 0; i < n; i++) {
        c = (unsigned char)s[i];
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            if (buf_putc(out, c) < 0)
                return -1;
        } else if (buf_printf(out, "%%%02X", c) < 0) {
            return -1;
        }
    }
    return 0;
}

/* macro_value - the value of one macro letter */
static const char *macro_value(int letter, const struct spf_macro_vars *v, char *tbuf,
                               size_t tlen)
{
    const char *s = NULL;

    switch (tolower(letter)) {
    case 's': s = v->s; break;
    case 'l': s = v->l; break;
    case 'o': s = v->o; break;
    case 'd': s = v->d; break;
    case 'i': s = v->i; break;
    case 'p': s = v->p; break;
    case 'h': s = v->h; break;
    case 'c': s = v->c; break;
    case 'r': s = v->r; break;
    case 'v': s = v->v; break;
    case 't':
        snprintf(tbuf, tlen, "%lld", (long long)v->t);
        return tbuf;
    default: break;
    }
    if (s == NULL)
        s = tolower(letter) == 'p' || tolower(letter) == 'r' ? "unknown" : "";
    return s;
}

/* transform - split value on delims, reverse, keep the rightmost digits parts, join with '.' */
static int transform(const char *value, const char *delims, unsigned digits, bool rev,
                     bool upper, struct buf *out)
{
    const char *start[SPF_MAX_PARTS];
    size_t len[SPF_MAX_PARTS];
    size_t n = 0, i, first, k;
    const char *p = value, *q;
    struct buf tmp = BUF_INIT;
    int rc = 0;

    for (;;) {
        q = p;
        while (*q && strchr(delims, *q) == NULL)
            q++;
        if (n == SPF_MAX_PARTS) {   /* absurd: merge the rest into the last part */
            len[n - 1] = strlen(start[n - 1]);
            break;
        }
        start[n] = p;
        len[n] = (size_t)(q - p);
        n++;
        if (*q == 0)
            break;
        p = q + 1;
    }
    if (rev) {
        for (i = 0; i < n / 2; i++) {
            const char *ts = start[i];
            size_t tl = len[i];
            start[i] = start[n - 1 - i];
            len[i] = len[n - 1 - i];
            start[n - 1 - i] = ts;
            len[n - 1 - i] = tl;
        }
    }
    first = digits > 0 && digits < n ? n - digits : 0;
    buf_init(&tmp, SPF_EXPAND_MAX);
    for (k = first; k < n && rc == 0; k++) {
        if (k > first)
            rc = buf_putc(&tmp, '.');
        if (rc == 0)
            rc = buf_append(&tmp, start[k], len[k]);
    }
    if (rc == 0)
        rc = upper ? url_escaped(out, tmp.data ? tmp.data : "", tmp.len)
                   : buf_append(out, buf_str(&tmp), tmp.len);
    buf_free(&tmp);
    return rc;
}

/* spf_macro_expand - expand macro-string spec into out (appended) */
int spf_macro_expand(const char *spec, const struct spf_macro_vars *v, bool exp,
                     struct buf *out, const char **why)
{
    const char *p = spec;
    char delims[sizeof(SPF_DELIMS)];
    char tbuf[32];
    unsigned digits;
    size_t nd;
    bool rev;
    int letter, rc = 0;

    if (spf_macro_check(spec, exp, why) < 0)
        return -1;
    while (*p && rc == 0) {
        if (*p != '%') {
            rc = buf_putc(out, (unsigned char)*p++);
            continue;
        }
        p++;
        if (*p == '%' || *p == '_' || *p == '-') {
            rc = *p == '%' ? buf_putc(out, '%') : *p == '_' ? buf_putc(out, ' ')
                                                            : buf_puts(out, "%20");
            p++;
            continue;
        }
        p++;                 /* '{' */
        letter = (unsigned char)*p++;
        digits = 0;
        while (isdigit((unsigned char)*p)) {
            if (digits < SPF_DIGITS_MAX)
                digits = digits * 10 + (unsigned)(*p - '0');
            p++;
        }
        rev = false;
        if (*p == 'r' || *p == 'R') {
            rev = true;
            p++;
        }
        nd = 0;
        while (*p && *p != '}') {
            if (nd < sizeof(delims) - 1 && memchr(delims, *p, nd) == NULL)
                delims[nd++] = *p;
            p++;
        }
        delims[nd] = 0;
        if (nd == 0)
            memcpy(delims, ".", 2);
        p++;                 /* '}' */
        rc = transform(macro_value(letter, v, tbuf, sizeof(tbuf)), delims, digits, rev,
                       isupper(letter) != 0, out);
        if (rc == 0 && out->len > SPF_EXPAND_MAX)
            rc = -1;
    }
    if (rc < 0) {
        *why = "macro expansion too long";
        return -1;
    }
    return 0;
}
