/*
 * addr.c - RFC 5321 reverse-path / forward-path parser
 *
 * Implements the Path grammar of RFC 5321 section 4.1.2:
 *
 *   Path          = "<" [ A-d-l ":" ] Mailbox ">"
 *   Mailbox       = Local-part "@" ( Domain / address-literal )
 *   Local-part    = Dot-string / Quoted-string
 *   Domain        = sub-domain *("." sub-domain)      (LDH labels)
 *   address-literal = "[" ( IPv4 / "IPv6:" IPv6 / tag ":" dcontent ) "]"
 *
 * plus "<>" (ADDR_ALLOW_NULL), "<Postmaster>" (ADDR_ALLOW_POSTMASTER), a
 * bare mailbox with optional surrounding blanks (ADDR_LAX), and the RFC
 * 6531 UTF-8 extensions of atext, qtextSMTP and sub-domain (ADDR_UTF8).
 * An obsolete source route is checked and dropped. Limits (RFC 5321
 * 4.5.3.1): local part 64 octets and domain 255 as written, path 256
 * including the angle brackets and any source route.
 *
 * The scanner validates the whole path before anything is allocated; a
 * success allocates exactly the three result strings.
 *
 * DIAGNOSTICS
 *  A status (enum addr_status) and a short static text for the end of an
 *  SMTP reply ("domain label too long"). On error *end is the offset where
 *  the scanner stopped.
 *
 * SECURITY
 *  The input is length-delimited and may hold any byte. NUL, C0 and C1
 *  control characters and DEL are never accepted; bytes >= 0x80 only
 *  with ADDR_UTF8 and only as well-formed UTF-8.
 */
#include "util/sys.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>

#include "mail/addr.h"
#include "util/alloc.h"

#define ADDR_LOCAL_MAX 64    /* RFC 5321 4.5.3.1.1 */
#define ADDR_DOMAIN_MAX 255  /* RFC 5321 4.5.3.1.2 */
#define ADDR_PATH_MAX 256    /* RFC 5321 4.5.3.1.3, brackets included */
#define ADDR_LABEL_MAX 63    /* RFC 1035 2.3.4 */
#define ADDR_BRACKETS 2      /* "<" and ">" counted in the path length */
#define ADDR_IPV6_TEXT_MAX 64  /* longer than any textual IPv6 address */
#define ADDR_SNUM_MAX 255
#define ADDR_SNUM_DIGITS 3
#define ADDR_IPV4_PARTS 4
#define ASCII_DEL 0x7f
#define ASCII_FIRST_PRINT 0x20
#define UTF8_FIRST_NONASCII 0x80

static const char postmaster[] = "postmaster";
static const char ipv6_tag[] = "IPv6:";

/* Scanner state over text[0..len). */
struct scan {
    const unsigned char *s;
    size_t len;
    size_t pos;
    unsigned flags;
    const char *why;
};

/* A piece of the input. */
struct span {
    size_t off;
    size_t len;
};

/* What scan_path found. */
struct path {
    struct span mbox;    /* the mailbox as written ("" for <>) */
    struct span local;   /* local part as written */
    struct span domain;  /* domain as written */
    bool quoted;         /* local part is a quoted string */
    bool null;           /* "<>" */
};

/* is_alpha - ASCII letter */
static inline bool is_alpha(unsigned c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* is_digit - ASCII digit */
static inline bool is_digit(unsigned c)
{
    return c >= '0' && c <= '9';
}

/* is_letdig - RFC 5321 Let-dig */
static inline bool is_letdig(unsigned c)
{
    return is_alpha(c) || is_digit(c);
}

/* is_atext - RFC 5322 atext (ASCII part) */
static bool is_atext(unsigned c)
{
    if (is_letdig(c))
        return true;
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*':
    case '+': case '-': case '/': case '=': case '?': case '^': case '_':
    case '`': case '{': case '|': case '}': case '~':
        return true;
    default:
        return false;
    }
}

/* is_qtext - RFC 5321 qtextSMTP (ASCII part) */
static inline bool is_qtext(unsigned c)
{
    return c >= ' ' && c <= '~' && c != '"' && c != '\\';
}

/* is_dcontent - RFC 5321 dcontent: printable except "[", "\", "]" */
static inline bool is_dcontent(unsigned c)
{
    return (c >= '!' && c <= 'Z') || (c >= '^' && c <= '~');
}

/* is_ctl - C0 control or DEL */
static inline bool is_ctl(unsigned c)
{
    return c < ASCII_FIRST_PRINT || c == ASCII_DEL;
}

/* is_blank - the separators tolerated around and after a path */
static inline bool is_blank(unsigned c)
{
    return c == ' ' || c == '\t';
}

/*
 * utf8_seq - length of the well-formed UTF-8 sequence at s[0..len), 0 if
 * there is none. Follows the table of RFC 3629 section 4: no overlong
 * forms, no surrogates (ED A0..BF), nothing above U+10FFFF.
 */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
    unsigned c = s[0];
    unsigned lo = 0x80, hi = 0xbf;
    size_t n, i;

    if (c < UTF8_FIRST_NONASCII)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;           /* overlong */
        else if (c == 0xed)
            hi = 0x9f;           /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;           /* overlong */
        else if (c == 0xf4)
            hi = 0x8f;           /* above U+10FFFF */
    } else {
        return 0;
    }
    if (len < n || s[1] < lo || s[1] > hi)
        return 0;
    for (i = 2; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* utf8_valid - well-formed UTF-8 (no overlongs, no surrogates) */
bool utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, n;

    while (i < len) {
        if (p[i] < UTF8_FIRST_NONASCII) {
            i++;
            continue;
        }
        n = utf8_seq(p + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

/* is_c1 - a UTF-8 sequence encoding a C1 control (U+0080..U+009F) */
static inline bool is_c1(const unsigned char *s)
{
    return s[0] == 0xc2 && s[1] < 0xa0;
}

/* fail - report an unexpected byte (or end of input) at the scan position */
static enum addr_status fail(struct scan *sc, const char *why)
{
    unsigned c;

    if (sc->pos < sc->len) {
        c = sc->s[sc->pos];
        if (c == 0) {
            sc->why = "NUL character in address";
            return ADDR_ERR_SYNTAX;
        }
        if (is_ctl(c)) {
            sc->why = "control character in address";
            return ADDR_ERR_SYNTAX;
        }
        if (c >= UTF8_FIRST_NONASCII) {
            if (!(sc->flags & ADDR_UTF8)) {
                sc->why = "non-ASCII address requires SMTPUTF8";
                return ADDR_ERR_UTF8;
            }
            if (utf8_seq(sc->s + sc->pos, sc->len - sc->pos) == 0) {
                sc->why = "invalid UTF-8 in address";
                return ADDR_ERR_SYNTAX;
            }
        }
    }
    sc->why = why;
    return ADDR_ERR_SYNTAX;
}

/* scan_utf8 - consume one non-ASCII character where RFC 6531 allows one */
static enum addr_status scan_utf8(struct scan *sc)
{
    size_t n;

    if (!(sc->flags & ADDR_UTF8))
        return fail(sc, "invalid UTF-8 in address");
    n = utf8_seq(sc->s + sc->pos, sc->len - sc->pos);
    if (n == 0)
        return fail(sc, "invalid UTF-8 in address");
    if (is_c1(sc->s + sc->pos)) {
        sc->why = "control character in address";
        return ADDR_ERR_SYNTAX;
    }
    sc->pos += n;
    return ADDR_OK;
}

/* peek - the byte at the scan position, or -1 at the end */
static inline int peek(const struct scan *sc)
{
    return sc->pos < sc->len ? sc->s[sc->pos] : -1;
}

/* scan_dot_string - Dot-string: atoms of atext separated by single dots */
static enum addr_status scan_dot_string(struct scan *sc)
{
    size_t start = sc->pos, atom;
    enum addr_status st;
    int c;

    for (;;) {
        atom = sc->pos;
        while ((c = peek(sc)) >= 0) {
            if (is_atext((unsigned)c)) {
                sc->pos++;
            } else if (c >= UTF8_FIRST_NONASCII) {
                if ((st = scan_utf8(sc)) != ADDR_OK)
                    return st;
            } else {
                break;
            }
        }
        if (sc->pos == atom) {
            if (c == '.')
                return fail(sc, atom == start ? "local part starts with a dot"
                                              : "consecutive dots in local part");
            if (atom != start && (c == '@' || c == '>' || c < 0))
                return fail(sc, "local part ends with a dot");
            if (c == '@' || c == '>')
                return fail(sc, "empty local part");
            return fail(sc, c < 0 ? "missing address" : "invalid character in local part");
        }
        if (c != '.')
            return ADDR_OK;
        sc->pos++;
    }
}

/* scan_quoted - Quoted-string: qtextSMTP and quoted-pairSMTP in quotes */
static enum addr_status scan_quoted(struct scan *sc)
{
    enum addr_status st;
    int c;

    sc->pos++;                        /* opening quote */
    for (;;) {
        c = peek(sc);
        if (c < 0)
            return fail(sc, "unterminated quoted string");
        if (c == '"') {
            sc->pos++;
            return ADDR_OK;
        }
        if (c == '\\') {
            sc->pos++;
            c = peek(sc);
            if (c < 0)
                return fail(sc, "unterminated quoted string");
            if (c < ' ' || c > '~')
                return fail(sc, "invalid quoted pair in local part");
            sc->pos++;
        } else if (is_qtext((unsigned)c)) {
            sc->pos++;
        } else if (c >= UTF8_FIRST_NONASCII) {
            if ((st = scan_utf8(sc)) != ADDR_OK)
                return st;
        } else {
            return fail(sc, "invalid character in quoted string");
        }
    }
}

/*
 * scan_domain - Domain: sub-domains (Let-dig [Ldh-str], or U-labels with
 * ADDR_UTF8) separated by dots; labels of ASCII at most 63 octets.
 */
static enum addr_status scan_domain(struct scan *sc)
{
    size_t start = sc->pos, label;
    enum addr_status st;
    bool ascii, hyphen;
    int c;

    for (;;) {
        label = sc->pos;
        ascii = true;
        hyphen = false;
        while ((c = peek(sc)) >= 0) {
            if (is_letdig((unsigned)c)) {
                sc->pos++;
                hyphen = false;
            } else if (c == '-') {
                if (sc->pos == label)
                    return fail(sc, "domain label starts with hyphen");
                sc->pos++;
                hyphen = true;
            } else if (c >= UTF8_FIRST_NONASCII) {
                if ((st = scan_utf8(sc)) != ADDR_OK)
                    return st;
                ascii = false;
                hyphen = false;
            } else {
                break;
            }
        }
        if (sc->pos == label) {
            if (c == '.')
                return fail(sc, "empty domain label");
            if (label == start)
                return fail(sc, c < 0 || c == '>' || is_blank((unsigned)c)
                                    ? "missing domain" : "invalid character in domain");
            return fail(sc, c < 0 || c == '>' || is_blank((unsigned)c)
                                ? "domain ends with a dot" : "invalid character in domain");
        }
        if (hyphen) {
            sc->why = "domain label ends with hyphen";
            return ADDR_ERR_SYNTAX;
        }
        if (ascii && sc->pos - label > ADDR_LABEL_MAX) {
            sc->why = "domain label too long";
            return ADDR_ERR_SYNTAX;
        }
        if (c != '.')
            break;
        sc->pos++;
    }
    if (sc->pos - start > ADDR_DOMAIN_MAX) {
        sc->why = "domain too long";
        return ADDR_ERR_TOO_LONG;
    }
    return ADDR_OK;
}

/* ipv4_literal - Snum 3("." Snum) with Snum = 1*3DIGIT, at most 255 */
static bool ipv4_literal(const unsigned char *s, size_t len)
{
    size_t i = 0, digits;
    unsigned part, value;

    for (part = 0; part < ADDR_IPV4_PARTS; part++) {
        if (part > 0) {
            if (i >= len || s[i] != '.')
                return false;
            i++;
        }
        value = 0;
        for (digits = 0; i < len && is_digit(s[i]); digits++, i++) {
            if (digits == ADDR_SNUM_DIGITS)
                return false;
            value = value * 10 + (unsigned)(s[i] - '0');
        }
        if (digits == 0 || value > ADDR_SNUM_MAX)
            return false;
    }
    return i == len;
}

/* ipv6_literal - the text after "IPv6:", checked with inet_pton */
static bool ipv6_literal(const unsigned char *s, size_t len)
{
    char text[ADDR_IPV6_TEXT_MAX];
    struct in6_addr in6;

    if (len >= sizeof(text))
        return false;
    memcpy(text, s, len);
    text[len] = 0;
    return inet_pton(AF_INET6, text, &in6) == 1;
}

/* general_literal - Standardized-tag ":" 1*dcontent (dcontent already checked) */
static bool general_literal(const unsigned char *s, size_t len)
{
    const unsigned char *colon = memchr(s, ':', len);
    size_t i, tag;

    if (colon == NULL)
        return false;
    tag = (size_t)(colon - s);
    /* Ldh-str = *( ALPHA / DIGIT / "-" ) Let-dig */
    if (tag == 0 || !is_letdig(s[tag - 1]))
        return false;
    for (i = 0; i < tag; i++)
        if (!is_letdig(s[i]) && s[i] != '-')
            return false;
    return tag + 1 < len;
}

/* scan_literal - address-literal in brackets: IPv4, IPv6 or general */
static enum addr_status scan_literal(struct scan *sc)
{
    size_t start = sc->pos, body, blen;
    const size_t tag_len = sizeof(ipv6_tag) - 1;
    const unsigned char *b;
    bool ok;
    int c;

    body = ++sc->pos;                 /* past "[" */
    while ((c = peek(sc)) >= 0 && is_dcontent((unsigned)c))
        sc->pos++;
    if (c != ']')
        return fail(sc, c < 0 || c == '>' ? "unterminated address literal"
                                          : "invalid character in address literal");
    b = sc->s + body;
    blen = sc->pos - body;
    sc->pos++;                        /* past "]" */
    if (sc->pos - start > ADDR_DOMAIN_MAX) {
        sc->why = "domain too long";
        return ADDR_ERR_TOO_LONG;
    }
    if (blen >= tag_len && strncasecmp((const char *)b, ipv6_tag, tag_len) == 0) {
        ok = ipv6_literal(b + tag_len, blen - tag_len);
        sc->why = "invalid IPv6 address literal";
    } else if (memchr(b, ':', blen) != NULL) {
        ok = general_literal(b, blen);
        sc->why = "invalid address literal";
    } else {
        ok = ipv4_literal(b, blen);
        sc->why = "invalid IPv4 address literal";
    }
    return ok ? ADDR_OK : ADDR_ERR_SYNTAX;
}

/* scan_route - A-d-l ":" (an obsolete source route), checked and skipped */
static enum addr_status scan_route(struct scan *sc)
{
    enum addr_status st;
    int c;

    for (;;) {
        sc->pos++;                    /* "@" */
        if ((st = scan_domain(sc)) != ADDR_OK)
            return st;
        c = peek(sc);
        if (c == ':') {
            sc->pos++;
            return ADDR_OK;
        }
        if (c != ',')
            return fail(sc, "invalid source route");
        sc->pos++;
        if (peek(sc) != '@')
            return fail(sc, "invalid source route");
    }
}

/*
 * scan_mailbox - Local-part "@" ( Domain / address-literal ), or a bare
 * "Postmaster" when allowed; bare is true without angle brackets.
 */
static enum addr_status scan_mailbox(struct scan *sc, struct path *pa, bool bare)
{
    enum addr_status st;
    int c;

    pa->local.off = sc->pos;
    pa->quoted = peek(sc) == '"';
    st = pa->quoted ? scan_quoted(sc) : scan_dot_string(sc);
    if (st != ADDR_OK)
        return st;
    pa->local.len = sc->pos - pa->local.off;
    if (pa->local.len > ADDR_LOCAL_MAX) {
        sc->why = "local part too long";
        return ADDR_ERR_TOO_LONG;
    }
    c = peek(sc);
    if (c == '@') {
        sc->pos++;
        pa->domain.off = sc->pos;
        st = peek(sc) == '[' ? scan_literal(sc) : scan_domain(sc);
        pa->domain.len = sc->pos - pa->domain.off;
    } else if (c < 0 || c == '>' || (bare && is_blank((unsigned)c))) {
        pa->domain.off = sc->pos;
        pa->domain.len = 0;
        if ((sc->flags & ADDR_ALLOW_POSTMASTER) && !pa->quoted
            && pa->local.len == sizeof(postmaster) - 1
            && strncasecmp((const char *)sc->s + pa->local.off, postmaster,
                           pa->local.len) == 0)
            st = ADDR_OK;
        else
            st = fail(sc, "address has no domain");
    } else {
        st = fail(sc, pa->quoted ? "invalid character after quoted string"
                                 : "invalid character in local part");
    }
    pa->mbox.off = pa->local.off;
    pa->mbox.len = sc->pos - pa->mbox.off;
    return st;
}

/* scan_path - the whole path, up to and including its terminator check */
static enum addr_status scan_path(struct scan *sc, struct path *pa)
{
    size_t start;
    enum addr_status st;
    bool bare;
    int c;

    if (sc->flags & ADDR_LAX)
        while ((c = peek(sc)) >= 0 && is_blank((unsigned)c))
            sc->pos++;
    start = sc->pos;
    c = peek(sc);
    if (c < 0)
        return fail(sc, "missing address");
    bare = c != '<';
    if (!bare) {
        sc->pos++;
        c = peek(sc);
        if (c == '>') {
            sc->pos++;
            pa->null = true;
            pa->mbox.off = pa->local.off = pa->domain.off = sc->pos;
        } else {
            if (c == '@' && (st = scan_route(sc)) != ADDR_OK)
                return st;
            if ((st = scan_mailbox(sc, pa, false)) != ADDR_OK)
                return st;
            c = peek(sc);
            if (c != '>')
                return fail(sc, c < 0 || is_blank((unsigned)c) ? "missing closing '>'"
                                : pa->domain.len > 0 && sc->s[pa->domain.off] != '['
                                    ? "invalid character in domain"
                                    : "invalid character in address");
            sc->pos++;
        }
        if (sc->pos - start > ADDR_PATH_MAX) {
            sc->why = "address too long";
            return ADDR_ERR_TOO_LONG;
        }
    } else if (sc->flags & ADDR_LAX) {
        if ((st = scan_mailbox(sc, pa, true)) != ADDR_OK)
            return st;
        if (pa->mbox.len + ADDR_BRACKETS > ADDR_PATH_MAX) {
            sc->why = "address too long";
            return ADDR_ERR_TOO_LONG;
        }
    } else {
        return fail(sc, "address must be enclosed in <>");
    }
    c = peek(sc);
    if (c >= 0 && !is_blank((unsigned)c))
        return fail(sc, bare && pa->domain.len > 0 && sc->s[pa->domain.off] != '['
                            ? "invalid character in domain"
                            : "unexpected text after address");
    if (pa->null && !(sc->flags & ADDR_ALLOW_NULL)) {
        sc->why = "null address not allowed";
        return ADDR_ERR_NULL;
    }
    return ADDR_OK;
}

/* unquote - the internal form of a quoted local part (quotes, escapes removed) */
static char *unquote(const unsigned char *s, size_t len)
{
    char *out = xmalloc(len + 1), *q = out;
    size_t i;

    for (i = 1; i + 1 < len; i++) {
        if (s[i] == '\\')
            i++;
        *q++ = (char)s[i];
    }
    *q = 0;
    return out;
}

/* addr_parse_path - parse a path at text[0..len) */
enum addr_status addr_parse_path(const char *text, size_t len, unsigned flags,
                                 struct addr *out, size_t *end, const char **why)
{
    struct scan sc = {(const unsigned char *)text, len, 0, flags, ""};
    struct path pa;
    enum addr_status st;
    size_t i;

    memset(&pa, 0, sizeof(pa));
    memset(out, 0, sizeof(*out));
    st = scan_path(&sc, &pa);
    if (end != NULL)
        *end = sc.pos;
    if (st != ADDR_OK) {
        if (why != NULL)
            *why = sc.why;
        return st;
    }
    if (why != NULL)
        *why = "";
    out->addr = xstrndup(text + pa.mbox.off, pa.mbox.len);
    out->local = pa.quoted ? unquote(sc.s + pa.local.off, pa.local.len)
                           : xstrndup(text + pa.local.off, pa.local.len);
    out->domain = xstrndup(text + pa.domain.off, pa.domain.len);
    for (i = 0; i < pa.mbox.len; i++)
        if (sc.s[pa.mbox.off + i] >= UTF8_FIRST_NONASCII)
            out->has_8bit = true;
    return ADDR_OK;
}

/* addr_free - release the strings of a parsed address */
void addr_free(struct addr *a)
{
    free(a->addr);
    free(a->local);
    free(a->domain);
    a->addr = a->local = a->domain = NULL;
    a->has_8bit = false;
}

/* addr_domain_valid - a syntactically valid domain or address literal */
bool addr_domain_valid(const char *domain, bool utf8)
{
    struct scan sc = {(const unsigned char *)domain, strlen(domain), 0,
                      utf8 ? ADDR_UTF8 : 0u, ""};
    enum addr_status st;

    if (sc.len == 0)
        return false;
    st = domain[0] == '[' ? scan_literal(&sc) : scan_domain(&sc);
    return st == ADDR_OK && sc.pos == sc.len;
}

/* addr_quote_local - render an internal local part in SMTP form */
char *addr_quote_local(const char *local)
{
    struct scan sc = {(const unsigned char *)local, strlen(local), 0, ADDR_UTF8, ""};
    size_t i, extra = 0;
    char *out, *q;

    if (sc.len > 0 && scan_dot_string(&sc) == ADDR_OK && sc.pos == sc.len)
        return xstrdup(local);
    for (i = 0; i < sc.len; i++)
        if (local[i] == '"' || local[i] == '\\')
            extra++;
    /* len + extra <= 2 * len: no overflow for a string that exists */
    out = q = xmalloc(sc.len + extra + sizeof("\"\""));
    *q++ = '"';
    for (i = 0; i < sc.len; i++) {
        if (local[i] == '"' || local[i] == '\\')
            *q++ = '\\';
        *q++ = local[i];
    }
    *q++ = '"';
    *q = 0;
    return out;
}
