/*
 * valias.h - virtual aliasing (virtual_alias_maps, virtual(5)) at queue time
 *
 * Every envelope recipient is rewritten through virtual_alias_maps before
 * the queue file is written (smtpd, pickup), as Postfix's cleanup does:
 *   - keys (mail/addrmap.h), in order (each key through every table
 *     before the next key):
 *     user+ext@domain, user@domain, user+ext, user, @domain. The extension
 *     forms exist only with recipient_delimiter; the bare "user" forms only
 *     when the domain is $myorigin, in $mydestination, or an address
 *     literal of ours ($inet_interfaces, or loopback). When a key without
 *     the extension matched (user@domain, user), "+ext" is put back on the
 *     local part of every result (Postfix's default
 *     propagate_unmatched_extensions includes "virtual").
 *   - a value is a list of addresses separated by commas and/or white
 *     space ("Name <addr>" and quoted forms as aliases(5); see
 *     valias_parse_value). A result without a domain gets "@$myorigin"; a
 *     first result "@otherdomain" means the same local part in otherdomain.
 *   - every result is expanded again; an address already expanded once
 *     (a loop, or an address that lists itself) is final and kept as is.
 *     Unlike Postfix, which stops expanding the whole list once an address
 *     maps to itself, the other addresses of that list are expanded too.
 *   - more than virtual_alias_expansion_limit addresses, or a chain longer
 *     than virtual_alias_recursion_limit, is VALIAS_LIMIT: the message is
 *     not accepted (try again later), as Postfix does.
 *   - a table that fails is VALIAS_TEMPFAIL: never deliver unexpanded.
 *   - duplicates (the same bytes) are removed, the first one kept.
 * valias_domain and valias_listed serve address classes: the domains of
 * virtual_alias_domains (default: $virtual_alias_maps, so a table key
 * "example.com" with any value makes example.com one), and whether an
 * address has an entry of its own (smtpd's unlisted-recipient check).
 *
 * DIAGNOSTICS: a table that cannot be opened is fatal (configuration); a
 * failing lookup or a limit is logged as a warning naming the address.
 * SECURITY: addresses come from SMTP clients and local users; they are
 * used only as lookup keys. Table values are admin input, parsed with
 * aliasfile_parse's limits.
 */
#ifndef POSTA_VALIAS_H
#define POSTA_VALIAS_H

#include <stdbool.h>
#include <stddef.h>

#include "mail/matchlist.h"

struct cfg;
struct valias;
struct qfile_writer;

enum valias_status {
    VALIAS_OK = 0,
    VALIAS_TEMPFAIL = 1, /* a table failed: 451 4.3.0, try again */
    VALIAS_LIMIT = 2,    /* expansion or recursion limit: 451 4.6.0 */
};

/* An expansion result: addresses, each malloc'ed. */
struct valias_list {
    char **addr;
    size_t n;
};

/* valias_open - open virtual_alias_maps and virtual_alias_domains (fatal on error) */
struct valias *valias_open(struct cfg *cfg);
void valias_close(struct valias *va);
/* valias_active - virtual_alias_maps is not empty */
bool valias_active(const struct valias *va);

/*
 * valias_expand - the final recipients of addr into *out (emptied first;
 * free with valias_list_free): addr itself when no table lists it.
 * VALIAS_TEMPFAIL or VALIAS_LIMIT with *why (static text) and *out empty.
 * log_id (a queue ID, or NULL) starts the warnings.
 */
enum valias_status valias_expand(struct valias *va, const char *addr, const char *log_id,
                                 struct valias_list *out, const char **why);
void valias_list_free(struct valias_list *l);
/* valias_list_add_new - append a copy of addr unless the list has it (same bytes) */
void valias_list_add_new(struct valias_list *l, const char *addr);

/*
 * valias_write_rcpt - expand addr and write ORCPT/NOTIFY/RCPT records for
 * each result: NOTIFY as given (0: none); ORCPT as given, else
 * "rfc822;ADDR" when the result differs from addr (and addr is ASCII:
 * an rfc822 ORCPT cannot carry UTF-8). Nothing is written
 * when the expansion fails (status and *why as valias_expand).
 */
enum valias_status valias_write_rcpt(struct valias *va, struct qfile_writer *qf,
                                     const char *log_id, const char *addr,
                                     const char *orcpt, unsigned notify, const char **why);

/*
 * valias_parse_value - the addresses of one table value (appended to
 * *out); lhs is the address looked up, for the "@otherdomain" form;
 * origin qualifies bare names. false + *err (malloc'ed) when the value is
 * not an address list (a syntax error, |command, /file or :include:).
 */
bool valias_parse_value(const char *value, const char *lhs, const char *origin,
                        struct valias_list *out, char **err);

/* valias_domain - domain in virtual_alias_domains */
enum match_result valias_domain(struct valias *va, const char *domain);
/* valias_listed - addr has an entry in virtual_alias_maps (any key form) */
enum match_result valias_listed(struct valias *va, const char *addr);

#endif
