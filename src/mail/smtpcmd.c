/*
 * smtpcmd.c - SMTP command lines: verb, argument, ESMTP parameters, xtext
 *
 * smtpcmd_split cuts a command line into its verb (looked up without
 * regard to case in the caller's table) and its argument. SP separates
 * them per RFC 5321; a TAB is tolerated as Postfix does. Verbs written
 * with a colon ("MAIL FROM:") are the caller's business: it passes
 * "MAIL" and parses "FROM:" from the argument.
 *
 * smtpcmd_params parses RFC 5321 Mail-parameters / Rcpt-parameters:
 *
 *   esmtp-param   = esmtp-keyword ["=" esmtp-value]
 *   esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
 *   esmtp-value   = 1*(%d33-60 / %d62-126)   ; RFC 6531 adds UTF-8
 *
 * Keywords are stored upper-cased; a repeated keyword or more than
 * SMTP_PARAMS_MAX parameters is an error.
 *
 * xtext_decode / xtext_encode implement RFC 3461 section 4 (ENVID,
 * ORCPT): "+" and two upper-case hex digits stand for one octet.
 *
 * DIAGNOSTICS
 *  smtpcmd_params returns false with a short static text for the SMTP
 *  reply; xtext_decode returns NULL for malformed input.
 *
 * SECURITY
 *  Nothing is allocated but the result strings. Control characters never
 *  pass; non-ASCII only in values, only with SMTPUTF8 and only as
 *  well-formed UTF-8. xtext "+00" is refused: it would truncate the text.
 */
#include "util/sys.h"

#include <limits.h>
#include <strings.h>

#include "mail/addr.h"
#include "mail/smtpcmd.h"
#include "util/alloc.h"

#define XTEXT_HEX_WIDTH 2        /* "+HH" */
#define XTEXT_ENCODED_MAX 3      /* bytes of xtext per input byte */
#define HEX_RADIX 16
#define HEX_LOW_NIBBLE 0x0f
#define ASCII_FIRST_GRAPH 0x21   /* "!" */
#define ASCII_LAST_GRAPH 0x7e    /* "~" */
#define UTF8_FIRST_NONASCII 0x80

static const char hex_upper[] = "0123456789ABCDEF";

/* is_blank - the separators of a command line: SP, and TAB as Postfix */
static inline bool is_blank(unsigned c)
{
    return c == ' ' || c == '\t';
}

/* is_alnum - ASCII letter or digit */
static inline bool is_alnum(unsigned c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* is_graph - printable US-ASCII other than SP */
static inline bool is_graph(unsigned c)
{
    return c >= ASCII_FIRST_GRAPH && c <= ASCII_LAST_GRAPH;
}

/* to_upper - ASCII upper case, locale-independent */
static inline char to_upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* smtpcmd_split - verb index (or -1) and the argument after the blanks */
int smtpcmd_split(const char *line, const char *const *names, size_t nnames,
                  const char **arg)
{
    size_t vlen = strcspn(line, " \t"), i;

    *arg = line + vlen + strspn(line + vlen, " \t");
    if (vlen == 0)
        return -1;
    for (i = 0; i < nnames && i <= INT_MAX; i++)
        if (strlen(names[i]) == vlen && strncasecmp(names[i], line, vlen) == 0)
            return (int)i;
    return -1;
}

/* params_fail - free what was parsed so far and report why */
static bool params_fail(struct smtp_params *out, const char **why, const char *text)
{
    smtpcmd_params_free(out);
    if (why != NULL)
        *why = text;
    return false;
}

/* smtpcmd_params - parse ESMTP parameters */
bool smtpcmd_params(const char *text, bool utf8, struct smtp_params *out,
                    const char **why)
{
    const unsigned char *p = (const unsigned char *)text, *key, *val, *run;
    size_t klen, vlen, i;
    char *k;

    memset(out, 0, sizeof(*out));
    for (;;) {
        while (is_blank(*p))
            p++;
        if (*p == 0)
            break;
        key = p;
        if (!is_alnum(*p))
            return params_fail(out, why, "invalid parameter keyword");
        while (is_alnum(*p) || *p == '-')
            p++;
        klen = (size_t)(p - key);
        val = NULL;
        vlen = 0;
        if (*p == '=') {
            val = ++p;
            while (*p != 0 && !is_blank(*p)) {
                if (is_graph(*p) && *p != '=') {
                    p++;
                } else if (*p >= UTF8_FIRST_NONASCII) {
                    if (!utf8)
                        return params_fail(out, why,
                                           "non-ASCII parameter value requires SMTPUTF8");
                    for (run = p; *p >= UTF8_FIRST_NONASCII; p++)
                        ;
                    if (!utf8_valid((const char *)run, (size_t)(p - run)))
                        return params_fail(out, why, "invalid UTF-8 in parameter value");
                } else {
                    return params_fail(out, why, "invalid character in parameter value");
                }
            }
            vlen = (size_t)(p - val);
            if (vlen == 0)
                return params_fail(out, why, "empty parameter value");
        } else if (*p != 0 && !is_blank(*p)) {
            return params_fail(out, why, "invalid parameter keyword");
        }
        for (i = 0; i < out->n; i++)
            if (strlen(out->p[i].key) == klen
                && strncasecmp(out->p[i].key, (const char *)key, klen) == 0)
                return params_fail(out, why, "duplicate parameter");
        if (out->n == SMTP_PARAMS_MAX)
            return params_fail(out, why, "too many parameters");
        k = xstrndup((const char *)key, klen);
        for (i = 0; i < klen; i++)
            k[i] = to_upper(k[i]);
        out->p[out->n].key = k;
        out->p[out->n].value = val ? xstrndup((const char *)val, vlen) : NULL;
        out->n++;
    }
    if (why != NULL)
        *why = "";
    return true;
}

/* smtpcmd_params_free - release the parameter strings */
void smtpcmd_params_free(struct smtp_params *p)
{
    size_t i;

    for (i = 0; i < p->n; i++) {
        free(p->p[i].key);
        free(p->p[i].value);
        p->p[i].key = p->p[i].value = NULL;
    }
    p->n = 0;
}

/* smtpcmd_param_get - find a keyword (any case), NULL if absent */
const struct smtp_param *smtpcmd_param_get(const struct smtp_params *p, const char *key)
{
    size_t i;

    for (i = 0; i < p->n; i++)
        if (strcasecmp(p->p[i].key, key) == 0)
            return &p->p[i];
    return NULL;
}

/* hex_value - value of an upper-case hex digit, -1 otherwise */
static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* is_xchar - RFC 3461 xchar: "!" to "~" except "+" and "=" */
static inline bool is_xchar(unsigned c)
{
    return is_graph(c) && c != '+' && c != '=';
}

/* xtext_decode - RFC 3461 xtext to text; NULL if malformed */
char *xtext_decode(const char *s)
{
    size_t len = strlen(s);
    char *out = xmalloc(len + 1), *q = out;
    int hi, lo;

    while (*s != 0) {
        if (*s == '+') {
            if ((hi = hex_value(s[1])) < 0 || (lo = hex_value(s[2])) < 0
                || (hi == 0 && lo == 0))
                goto bad;
            *q++ = (char)(hi * HEX_RADIX + lo);
            s += 1 + XTEXT_HEX_WIDTH;
        } else if (is_xchar((unsigned char)*s)) {
            *q++ = *s++;
        } else {
            goto bad;
        }
    }
    *q = 0;
    return out;
bad:
    free(out);
    return NULL;
}

/* xtext_encode - text to xtext: xchars as they are, the rest as "+HH" */
char *xtext_encode(const char *s)
{
    size_t len = strlen(s);
    char *out = xreallocarray(NULL, len + 1, XTEXT_ENCODED_MAX), *q = out;
    unsigned char c;

    for (; *s != 0; s++) {
        c = (unsigned char)*s;
        if (is_xchar(c)) {
            *q++ = (char)c;
        } else {
            *q++ = '+';
            *q++ = hex_upper[c / HEX_RADIX];
            *q++ = hex_upper[c & HEX_LOW_NIBBLE];
        }
    }
    *q = 0;
    return out;
}
