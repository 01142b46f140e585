/*
 * matchlist.h - Postfix-style pattern lists: domains and networks
 *
 * A list is what main.cf gives for mydestination, relay_domains or
 * mynetworks: patterns separated by commas and/or white space. A pattern
 * is a name, "type:table" (looked up), "/file/name" (patterns read from
 * the file), or "!pattern" (negation: a match stops the search with "no").
 * The first matching pattern decides.
 *
 * Domain lists: a pattern matches the domain itself, and its subdomains
 * when the list's parameter name is in parent_domain_matches_subdomains
 * (then ".example.com" matches subdomains only). Case-insensitive.
 * Network lists: "1.2.3.0/24", "[::1]/128", "1.2.3.4", type:table (cidr:).
 */
#ifndef POSTA_MATCHLIST_H
#define POSTA_MATCHLIST_H

#include <stdbool.h>
#include <stddef.h>

struct cfg;
struct matchlist;

enum match_result { MATCH_NO = 0, MATCH_YES = 1, MATCH_TEMPFAIL = 2 };

/*
 * matchlist_domains - compile the domain list in parameter param of cfg
 * (parent-domain matching per parent_domain_matches_subdomains); fatal on
 * a table that cannot be opened.
 */
struct matchlist *matchlist_domains(struct cfg *cfg, const char *param);
/*
 * matchlist_networks - compile a network list from the value of param;
 * for "mynetworks" left at its default, computes it from mynetworks_style
 * (host: our addresses /32 and /128; subnet: our interfaces' subnets;
 * class: their class A/B/C networks) as Postfix does.
 */
struct matchlist *matchlist_networks(struct cfg *cfg, const char *param);
enum match_result matchlist_match_domain(struct matchlist *m, const char *domain);
enum match_result matchlist_match_addr(struct matchlist *m, const char *ipaddr);
/* matchlist_text - the patterns, for logging ("mynetworks = ...") */
const char *matchlist_text(const struct matchlist *m);
void matchlist_free(struct matchlist *m);

/*
 * local_recipient - is user@domain (domain already known to be local) a
 * local recipient according to local_recipient_maps? (passwd accounts,
 * aliases, after stripping recipient_delimiter extensions). An empty
 * local_recipient_maps accepts everyone. MATCH_TEMPFAIL when a table fails.
 */
struct local_rcpt;
struct local_rcpt *local_rcpt_open(struct cfg *cfg);
enum match_result local_rcpt_check(struct local_rcpt *lr, const char *local_part,
                                   const char *address);
void local_rcpt_close(struct local_rcpt *lr);
/*
 * rcpt_maps_open - the same check for another list of tables (e.g.
 * relay_recipient_maps: keys user+ext@domain, user@domain, @domain only).
 * An empty list accepts everyone (MATCH_YES).
 */
struct local_rcpt *rcpt_maps_open(struct cfg *cfg, const char *param);

/*
 * rcpt_local_base - length of local without its recipient_delimiter
 * extension (delim: the delimiter characters; "" none); with '-' as a
 * delimiter, owner-x and x-request are not split, as in Postfix
 */
size_t rcpt_local_base(const char *delim, const char *local);

#endif
