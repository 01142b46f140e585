/*
 * authres.c - building and recognising Authentication-Results fields,
 * and building Received-SPF
 *
 * Values that are not plain tokens (or local-part@domain with a dot-atom
 * local part) are written as quoted strings; comment text is stripped of
 * parentheses, backslashes and control characters, so nothing a sender
 * controls can break out of the field or forge another result.
 *
 * DIAGNOSTICS
 *	None.
 *
 * SECURITY
 *	authres_is_ours parses a sender-supplied header; it reads within
 *	the given length only and handles nested comments iteratively.
 */
#include "util/sys.h"

#include <ctype.h>
#include <strings.h>

#include "mail/authres.h"
#include "util/alloc.h"

#define FOLD "\n\t"
#define COMMENT_MAX 200   /* bytes of free text put into a comment */

/* is_atext - RFC 5322 atext */
static bool is_atext(int c)
{
    return isalnum(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* is_tspecial - RFC 2045 tspecials */
static bool is_tspecial(int c)
{
    return c != 0 && strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

/* plain_value - v can be written bare: a token, or dot-atom@domain */
static bool plain_value(const char *v)
{
    const char *at = strrchr(v, '@');
    const char *p;

    if (*v == 0)
        return false;
    if (at == NULL) {
        for (p = v; *p; p++)
            if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f || is_tspecial(*p))
                return false;
        return true;
    }
    if (at == v || at[1] == 0 || v[0] == '.' || at[-1] == '.')
        return false;
    for (p = v; p < at; p++)
        if (!is_atext((unsigned char)*p) && !(*p == '.' && p[1] != '.'))
            return false;
    for (p = at + 1; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
            return false;
    return true;
}

/* put_quoted - v as a quoted string, control characters dropped */
static void put_quoted(struct buf *out, const char *v)
{
    const char *p;

    buf_putc(out, '"');
    for (p = v; *p; p++) {
        if ((unsigned char)*p < ' ' || *p == 0x7f)
            continue;
        if (*p == '"' || *p == '\\')
            buf_putc(out, '\\');
        buf_putc(out, (unsigned char)*p);
    }
    buf_putc(out, '"');
}

/* put_value - v bare or as a quoted string */
static void put_value(struct buf *out, const char *v)
{
    if (plain_value(v))
        buf_puts(out, v);
    else
        put_quoted(out, v);
}

/* put_kv_value - RFC 7208 key-value-pair value: dot-atom or quoted string */
static void put_kv_value(struct buf *out, const char *v)
{
    const char *p;
    bool atom = *v != 0 && *v != '.';

    for (p = v; *p && atom; p++)
        if (!is_atext((unsigned char)*p) && !(*p == '.' && p[1] != '.' && p[1] != 0))
            atom = false;
    if (atom)
        buf_puts(out, v);
    else
        put_quoted(out, v);
}

/* put_kv - " key=value;" (Received-SPF) when value is set */
static void put_kv(struct buf *out, const char *key, const char *value)
{
    if (value == NULL || *value == 0)
        return;
    buf_printf(out, " %s=", key);
    put_kv_value(out, value);
    buf_putc(out, ';');
}

/* put_comment_text - free text made safe inside a comment */
static void put_comment_text(struct buf *out, const char *s)
{
    size_t n = 0;

    for (; s && *s && n < COMMENT_MAX; s++, n++) {
        unsigned char c = (unsigned char)*s;
        if (c < ' ' || c == 0x7f || c == '(' || c == ')' || c == '\\')
            buf_putc(out, ' ');
        else
            buf_putc(out, c);
    }
}

/* put_prop - " ptype.property=value" when value is set */
static void put_prop(struct buf *out, const char *prop, const char *value, size_t max)
{
    char *v;

    if (value == NULL || *value == 0)
        return;
    v = xstrndup(value, max ? max : strlen(value));
    buf_printf(out, " %s=", prop);
    put_value(out, v);
    free(v);
}

/*
 * put_clause - ";method=result (comment) prop=value": one resinfo; the
 * comment and the property only when set. Returns 1 (a clause written).
 */
static size_t put_clause(struct buf *out, const char *method, const char *result,
                         const char *comment, const char *prop, const char *value)
{
    buf_printf(out, ";" FOLD "%s=%s", method, result);
    if (comment != NULL && *comment) {
        buf_puts(out, " (");
        put_comment_text(out, comment);
        buf_putc(out, ')');
    }
    put_prop(out, prop, value, 0);
    return 1;
}

/* dkim_result_ok - a result word RFC 8601 defines for dkim */
static const char *dkim_result_word(const char *r)
{
    static const char *const ok[] = {"none", "pass", "fail", "policy", "neutral",
                                     "temperror", "permerror"};
    size_t i;

    for (i = 0; r != NULL && i < sizeof(ok) / sizeof(ok[0]); i++)
        if (strcasecmp(r, ok[i]) == 0)
            return ok[i];
    return "permerror";
}

/* authres_build - the Authentication-Results field */
void authres_build(const struct authres *ar, struct buf *out)
{
    size_t i, n = 0;
    const struct authres_dkim *d;
    char *comment = NULL;

    buf_reset(out);
    buf_printf(out, "%s: ", AUTHRES_HEADER);
    put_value(out, ar->authserv_id && *ar->authserv_id ? ar->authserv_id : "localhost");
    if (ar->spf_checked)
        n += put_clause(out, "spf", spf_result_name(ar->spf), NULL, "smtp.mailfrom",
                        ar->mailfrom);
    if (ar->helo_checked)
        n += put_clause(out, "spf", spf_result_name(ar->spf_helo), NULL, "smtp.helo",
                        ar->helo);
    if (ar->dkim_checked && ar->ndkim == 0)
        n += put_clause(out, "dkim", "none", NULL, NULL, NULL);
    for (i = 0; i < ar->ndkim; i++) {
        d = &ar->dkim[i];
        n += put_clause(out, "dkim", dkim_result_word(d->result), d->reason, "header.d",
                        d->domain);
        put_prop(out, "header.s", d->selector, 0);
        put_prop(out, "header.b", d->b, AUTHRES_B_PREFIX);
    }
    if (ar->dmarc_checked) {
        if ((ar->dmarc == DMARC_RESULT_PASS || ar->dmarc == DMARC_RESULT_FAIL)
            && ar->policy != DMARC_POLICY_UNSET)
            comment = xasprintf("p=%s dis=%s", dmarc_policy_name(ar->policy),
                                dmarc_policy_name(ar->disposition == DMARC_POLICY_UNSET
                                                      ? DMARC_POLICY_NONE : ar->disposition));
        n += put_clause(out, "dmarc", dmarc_result_name(ar->dmarc), comment, "header.from",
                        ar->from_domain);
        free(comment);
    }
    if (n == 0)
        buf_puts(out, "; none");
    buf_putc(out, '\n');
}

/* skip_cfws - past white space and (nested) comments within [p, end) */
static const char *skip_cfws(const char *p, const char *end)
{
    int depth;

    for (;;) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
            p++;
        if (p >= end || *p != '(')
            return p;
        depth = 0;
        while (p < end) {
            if (*p == '\\' && p + 1 < end) {
                p += 2;
                continue;
            }
            if (*p == '(')
                depth++;
            else if (*p == ')' && --depth == 0) {
                p++;
                break;
            }
            p++;
        }
    }
}

/* authres_is_ours - the field body names authserv_id */
bool authres_is_ours(const char *value, size_t len, const char *authserv_id)
{
    const char *end = value + len, *p = skip_cfws(value, end), *s;
    struct buf id = BUF_INIT;
    bool ours;

    if (p < end && *p == '"') {
        for (p++; p < end && *p != '"'; p++) {
            if (*p == '\\' && p + 1 < end)
                p++;
            buf_putc(&id, (unsigned char)*p);
        }
        if (p >= end) {   /* unterminated: not a valid field, not ours */
            buf_free(&id);
            return false;
        }
        p++;
    } else {
        for (s = p; p < end && (unsigned char)*p > ' ' && (unsigned char)*p < 0x7f
                    && !is_tspecial(*p); p++)
            ;
        buf_append(&id, s, (size_t)(p - s));
    }
    ours = id.len > 0 && strcasecmp(buf_str(&id), authserv_id) == 0;
    buf_free(&id);
    if (!ours)
        return false;
    /* what follows must be CFWS, an optional version number, then ';' or the end */
    p = skip_cfws(p, end);
    while (p < end && isdigit((unsigned char)*p))
        p++;
    p = skip_cfws(p, end);
    return p >= end || *p == ';';
}

/* authres_field_is_ours - a whole header field claiming authserv_id */
bool authres_field_is_ours(const char *field, size_t len, const char *authserv_id)
{
    size_t nlen = strlen(AUTHRES_HEADER), i = nlen;

    if (len < nlen || strncasecmp(field, AUTHRES_HEADER, nlen) != 0)
        return false;
    while (i < len && (field[i] == ' ' || field[i] == '\t'))
        i++;
    if (i >= len || field[i] != ':')
        return false;
    return authres_is_ours(field + i + 1, len - i - 1, authserv_id);
}

/* authres_received_spf - a Received-SPF field */
void authres_received_spf(enum spf_result r, const char *receiver, const char *client_ip,
                          const char *envelope_from, const char *helo, const char *identity,
                          const char *problem, struct buf *out)
{
    const char *who = envelope_from && *envelope_from ? envelope_from : helo;

    buf_reset(out);
    buf_printf(out, "Received-SPF: %s (", spf_result_name(r));
    put_comment_text(out, receiver);
    buf_puts(out, ": ");
    switch (r) {
    case SPF_PASS:
        buf_puts(out, "domain of ");
        put_comment_text(out, who);
        buf_puts(out, " designates ");
        put_comment_text(out, client_ip);
        buf_puts(out, " as permitted sender");
        break;
    case SPF_FAIL:
    case SPF_SOFTFAIL:
        buf_puts(out, r == SPF_SOFTFAIL ? "transitioning domain of " : "domain of ");
        put_comment_text(out, who);
        buf_puts(out, " does not designate ");
        put_comment_text(out, client_ip);
        buf_puts(out, " as permitted sender");
        break;
    case SPF_NEUTRAL:
        put_comment_text(out, client_ip);
        buf_puts(out, " is neither permitted nor denied by domain of ");
        put_comment_text(out, who);
        break;
    case SPF_NONE:
        buf_puts(out, "domain of ");
        put_comment_text(out, who);
        buf_puts(out, " does not provide an SPF record");
        break;
    default:
        buf_puts(out, "error in processing during lookup of ");
        put_comment_text(out, who);
        if (problem != NULL && *problem) {
            buf_puts(out, ": ");
            put_comment_text(out, problem);
        }
        break;
    }
    buf_puts(out, ")" FOLD "client-ip=");
    put_kv_value(out, client_ip ? client_ip : "");
    buf_puts(out, ";");
    put_kv(out, "envelope-from", envelope_from);
    put_kv(out, "helo", helo);
    buf_puts(out, FOLD "receiver=");
    put_kv_value(out, receiver && *receiver ? receiver : "unknown");
    buf_puts(out, "; identity=");
    put_kv_value(out, identity ? identity : "mailfrom");
    buf_puts(out, ";\n");
}
