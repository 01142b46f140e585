/*
 * psl.h - the Public Suffix List, for DMARC's organisational domain
 *
 * The list (https://publicsuffix.org, Debian package publicsuffix) holds
 * normal rules ("co.uk"), wildcard rules ("*.ck") and exception rules
 * ("!www.ck"). psl_org_domain() applies them as the list's algorithm says:
 * an exception rule wins, else the longest matching rule, else "*"; the
 * organisational domain (RFC 7489 3.2) is the public suffix plus one
 * label. Names are compared case-insensitively; rules in Unicode are kept
 * as written (mail domains in A-label form match their ASCII rules only).
 */
#ifndef POSTA_PSL_H
#define POSTA_PSL_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

struct psl;

/* psl_parse - rules from the text of a list (tests; never fails) */
struct psl *psl_parse(const char *text, size_t len);
/* psl_load - read a list file; NULL with *err (static text) when unreadable */
struct psl *psl_load(const char *path, const char **err);
/*
 * psl_get - the process-wide list from path, loaded on first use. A file
 * that cannot be read gives one warning and an empty list, with which
 * the organisational domain is the last two labels.
 */
const struct psl *psl_get(const char *path);
void psl_free(struct psl *psl);
/* psl_rules - number of rules loaded */
size_t psl_rules(const struct psl *psl);
/*
 * psl_org_domain - the organisational domain of domain into out (lower
 * case, no trailing dot). When domain is itself a public suffix, it is
 * its own organisational domain. psl NULL or empty: the last two labels.
 */
void psl_org_domain(const struct psl *psl, const char *domain, struct buf *out);

#endif
