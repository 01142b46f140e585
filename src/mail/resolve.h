/*
 * resolve.h - where a recipient goes: (transport, nexthop), as Postfix's
 * trivial-rewrite resolves it
 *
 * An address without a domain gets "@$myorigin". Then, in order:
 *   - transport_maps (each table in turn; keys as transport(5): the full
 *     address, the address without its recipient_delimiter extension, the
 *     domain, the parent domains as ".parent" (or "parent" when
 *     transport_maps is in parent_domain_matches_subdomains), then "*");
 *     the value is "transport:nexthop" where an empty transport keeps the
 *     default routing's transport and an empty nexthop means the
 *     recipient domain (for discard: and error:, the empty text);
 *   - otherwise the default routing: a domain in mydestination (or an
 *     address literal of the loopback network) -> local_transport
 *     ("local:$myhostname"); relay_domains -> relay_transport; anything
 *     else -> default_transport.
 * Before both: a domain in virtual_alias_domains (and not in
 * mydestination, which wins, with a warning as Postfix gives) ->
 * error:"5.1.1 User unknown in virtual alias table", whatever
 * transport_maps says: its addresses are all expanded when mail is queued
 * (mail/valias.h), so one that reaches the resolver has no entry. For relay and default routing the
 *     nexthop is the transport's own ":nexthop" when given, else
 *     $relayhost when set, else the recipient domain.
 * A table that fails (DICT_TEMPFAIL, MATCH_TEMPFAIL) makes the answer
 * RESOLVE_TEMPFAIL: the recipient is deferred, never misrouted.
 */
#ifndef POSTA_RESOLVE_H
#define POSTA_RESOLVE_H

struct cfg;
struct resolver;

enum resolve_status { RESOLVE_OK = 0, RESOLVE_TEMPFAIL = 1 };

struct resolve_result {
    char *address;     /* the address with a domain ("@$myorigin" added) */
    char *transport;   /* master.cf service name: "local", "smtp", "discard" */
    char *nexthop;     /* "localhost", "example.com", error text, ... */
};

/* resolver_open - compile the lists and open transport_maps (fatal on error) */
struct resolver *resolver_open(struct cfg *cfg);
/*
 * resolve_rcpt - resolve addr into *out (free with resolve_result_free);
 * RESOLVE_TEMPFAIL with *why (static text) when a table failed, and *out
 * then holds nothing to free.
 */
enum resolve_status resolve_rcpt(struct resolver *r, const char *addr,
                                 struct resolve_result *out, const char **why);
void resolve_result_free(struct resolve_result *res);
/*
 * resolve_split_transport - "transport:nexthop" into fresh strings (""
 * when absent), as transport_maps values are read
 */
void resolve_split_transport(const char *spec, char **transport, char **nexthop);
void resolver_close(struct resolver *r);

#endif
