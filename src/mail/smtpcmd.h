/*
 * smtpcmd.h - SMTP command lines: verb, argument, ESMTP parameters
 *
 * smtpcmd_split finds the verb (case-insensitive, looked up in the
 * caller's table) and the argument text. smtpcmd_params parses
 * "KEY=VALUE KEY ..." ESMTP parameters (RFC 5321 4.1.2): keywords are
 * alphanumerics and '-', values printable US-ASCII except '=' and SP (or
 * UTF-8 when SMTPUTF8 allows). xtext (RFC 3461 4) decoding and encoding
 * for ORCPT and ENVID.
 */
#ifndef POSTA_SMTPCMD_H
#define POSTA_SMTPCMD_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP_LINE_MAX 512        /* RFC 5321 4.5.3.1.4 command line incl. CRLF */
#define SMTP_PARAMS_MAX 16

struct smtp_param {
    char *key;     /* upper-cased keyword */
    char *value;   /* NULL when the parameter has no value */
};

struct smtp_params {
    struct smtp_param p[SMTP_PARAMS_MAX];
    size_t n;
};

/*
 * smtpcmd_split - line (without CRLF) -> verb index in names[] (or -1 if
 * unknown) and *arg pointing at the argument (after one or more spaces),
 * "" if none. Multi-word verbs ("MAIL FROM:") are not special here.
 */
int smtpcmd_split(const char *line, const char *const *names, size_t nnames,
                  const char **arg);
/*
 * smtpcmd_params - parse parameters; false + *why on bad syntax, too many,
 * or a repeated keyword. Free with smtpcmd_params_free. Blanks (SP, TAB)
 * before, between and after parameters are skipped; "" gives none. On
 * failure out->n is 0 (nothing to free). utf8 allows UTF-8 in values.
 */
bool smtpcmd_params(const char *text, bool utf8, struct smtp_params *out,
                    const char **why);
void smtpcmd_params_free(struct smtp_params *p);
/* smtpcmd_param_get - find key (upper-case), NULL if absent */
const struct smtp_param *smtpcmd_param_get(const struct smtp_params *p, const char *key);
/* xtext_decode - RFC 3461 xtext to text; NULL if malformed (incl. "+00") */
char *xtext_decode(const char *s);
/* xtext_encode - text to xtext */
char *xtext_encode(const char *s);

#endif
