/*
 * addrmap.h - tables indexed by mail address, looked up in Postfix's key
 * order (virtual(5), canonical(5), sender_bcc_maps, recipient_bcc_maps)
 *
 * For an address with a domain the keys are, in order, each through every
 * table of the list before the next key: user+ext@domain, user@domain,
 * user+ext, user, @domain. The extension forms exist only with
 * recipient_delimiter; the bare "user" forms only when the domain is
 * $myorigin, in $mydestination, or an address literal of ours
 * ($inet_interfaces, or loopback). When a key without the extension
 * matched, the extension is handed back so the caller can put it on the
 * result (propagate_unmatched_extensions).
 *
 * DIAGNOSTICS: a table that cannot be opened is fatal (configuration); a
 * lookup that fails is a warning naming the parameter, table and key.
 * SECURITY: the address (from SMTP clients and local users) is only a
 * lookup key.
 */
#ifndef POSTA_ADDRMAP_H
#define POSTA_ADDRMAP_H

#include "util/dict.h"

struct cfg;
struct addrmap;

/* addrmap_open - the tables of the list parameter param; NULL when it is empty */
struct addrmap *addrmap_open(struct cfg *cfg, const char *param);
void addrmap_close(struct addrmap *am);
/*
 * addrmap_find - look addr (with a domain) up in the key order above; on
 * DICT_FOUND *value is the table's value (valid until the next lookup)
 * and *ext the extension the matching key left out ("+ext", malloc'ed)
 * or NULL. A NULL map finds nothing.
 */
enum dict_result addrmap_find(struct addrmap *am, const char *addr, const char **value,
                              char **ext);
/* addrmap_origin - $myorigin, as the map read it (for qualifying bare names) */
const char *addrmap_origin(const struct addrmap *am);

#endif
