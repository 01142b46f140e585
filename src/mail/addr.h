/*
 * addr.h - RFC 5321 addresses: reverse-path and forward-path parsing
 *
 * Parses what follows "MAIL FROM:" / "RCPT TO:" up to (not including) the
 * ESMTP parameters: "<>" (null path, only where allowed), "<local@domain>",
 * an obsolete source route "<@a,@b:local@domain>" (the route is dropped),
 * and, when ADDR_LAX is given, a bare address without angle brackets (as
 * Postfix with strict_rfc821_envelopes = no). The local part is a
 * dot-string or a quoted string; the domain a dot-atom of LDH labels or an
 * address literal [1.2.3.4] / [IPv6:...]. With ADDR_UTF8 (SMTPUTF8 given),
 * UTF-8 is allowed in the local part and the domain (RFC 6531), and must
 * be valid UTF-8. Limits: local part 64 octets, domain 255, path 256.
 */
#ifndef POSTA_ADDR_H
#define POSTA_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#define ADDR_ALLOW_NULL 1u   /* "<>" allowed (MAIL FROM) */
#define ADDR_UTF8 2u         /* SMTPUTF8: UTF-8 in local part and domain */
#define ADDR_LAX 4u          /* brackets optional */
#define ADDR_ALLOW_POSTMASTER 8u  /* "<Postmaster>" without domain (RCPT) */

struct addr {
    char *addr;        /* "local@domain" as written (quotes kept), "" for <> */
    char *local;       /* local part, unquoted (internal form) */
    char *domain;      /* domain as written ("" if none); literals keep [] */
    bool has_8bit;     /* contains non-ASCII */
};

enum addr_status {
    ADDR_OK = 0,
    ADDR_ERR_SYNTAX,        /* 501 5.1.3 / 5.1.7 Bad address syntax */
    ADDR_ERR_TOO_LONG,      /* 501 5.1.3 path/local/domain too long */
    ADDR_ERR_UTF8,          /* 553 5.6.7 UTF-8 without SMTPUTF8 */
    ADDR_ERR_NULL,          /* null path where not allowed */
};

/*
 * addr_parse_path - parse a path at text[0..len); *end is set to the offset
 * just past the path (the parameters follow). Returns ADDR_OK and fills
 * *out (free with addr_free), or an error with *why set to static text.
 *
 * The path must be followed by the end of the text or a blank (SP or TAB):
 * "<a@b>SIZE=1" is a syntax error. With ADDR_LAX, blanks before the path
 * are skipped (and counted in *end). On error *out is all NULL (addr_free
 * is harmless) and *end is the offset where parsing stopped. end and why
 * may be NULL. The text may hold any byte (NUL is refused, not a
 * terminator). Hint for SMTPUTF8: parse with ADDR_UTF8, then refuse with
 * 553 5.6.7 when out->has_8bit and the SMTPUTF8 parameter is absent.
 */
enum addr_status addr_parse_path(const char *text, size_t len, unsigned flags,
                                 struct addr *out, size_t *end, const char **why);
void addr_free(struct addr *a);
/* addr_domain_valid - a syntactically valid domain or address literal */
bool addr_domain_valid(const char *domain, bool utf8);
/*
 * addr_quote_local - render an internal local part in SMTP form: as is
 * when it is a dot-string, else quoted with '"' and '\' escaped. The
 * result is valid SMTP only if local holds no control characters (true
 * of anything addr_parse_path produced). Free the result.
 */
char *addr_quote_local(const char *local);
/* utf8_valid - well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF) */
bool utf8_valid(const char *s, size_t len);

#endif
