/*
 * resolve.c - recipient routing: transport_maps, then the address classes
 *
 * See resolve.h for the rules (Postfix's trivial-rewrite(8) resolve
 * service and transport(5)). The resolver keeps the compiled domain lists
 * and open tables for the life of the queue manager.
 *
 * DIAGNOSTICS: a transport_maps table that cannot be opened is fatal
 *   (bad configuration); a failing lookup is RESOLVE_TEMPFAIL.
 * SECURITY: addresses come from queue files; they are only used as
 *   lookup keys and copied into the result.
 */
#include "util/sys.h"

#include <string.h>
#include <strings.h>

#include "mail/config.h"
#include "mail/matchlist.h"
#include "mail/resolve.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/dict.h"
#include "util/log.h"

#define LOOPBACK_V4_PREFIX "[127."
#define LOOPBACK_V6 "[ipv6:::1]"
#define WILDCARD_KEY "*"
#define ERROR_TRANSPORT "error"
#define VALIAS_UNKNOWN "5.1.1 User unknown in virtual alias table"

struct resolver {
    struct cfg *cfg;
    struct matchlist *mydest;
    struct matchlist *relay;
    struct matchlist *valias;  /* virtual_alias_domains */
    bool both_warned;          /* a domain in mydestination and virtual_alias_domains */
    struct dict **maps;
    size_t nmaps;
    bool parent_bare;      /* transport_maps in parent_domain_matches_subdomains */
    struct buf key;
};

/* resolver_open - compile the lists and open transport_maps (fatal on error) */
struct resolver *resolver_open(struct cfg *cfg)
{
    struct resolver *r = xcalloc(1, sizeof(*r));
    char **list;
    size_t n;

    r->cfg = cfg;
    r->mydest = matchlist_domains(cfg, "mydestination");
    r->relay = matchlist_domains(cfg, "relay_domains");
    r->valias = matchlist_domains(cfg, "virtual_alias_domains");
    list = cfg_list(cfg, "transport_maps", &n);
    r->maps = xcalloc(n ? n : 1, sizeof(*r->maps));
    for (size_t i = 0; i < n; i++) {
        char *err = NULL;

        r->maps[i] = dict_open(list[i], 0, &err);
        if (r->maps[i] == NULL)
            msg_fatal("transport_maps: %s: %s", list[i], err ? err : "cannot open");
    }
    r->nmaps = n;
    cfg_list_free(list, n);
    list = cfg_list(cfg, "parent_domain_matches_subdomains", &n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], "transport_maps") == 0)
            r->parent_bare = true;
    cfg_list_free(list, n);
    return r;
}

/* resolver_close - close the tables */
void resolver_close(struct resolver *r)
{
    if (r == NULL)
        return;
    matchlist_free(r->mydest);
    matchlist_free(r->relay);
    matchlist_free(r->valias);
    for (size_t i = 0; i < r->nmaps; i++)
        dict_close(r->maps[i]);
    free(r->maps);
    buf_free(&r->key);
    free(r);
}

/* resolve_result_free - release one answer */
void resolve_result_free(struct resolve_result *res)
{
    free(res->address);
    free(res->transport);
    free(res->nexthop);
    memset(res, 0, sizeof(*res));
}

/* maps_lookup - one key through every table: found, not found or tempfail */
static enum dict_result maps_lookup(struct resolver *r, const char *key, const char **value)
{
    for (size_t i = 0; i < r->nmaps; i++) {
        enum dict_result dr = dict_lookup(r->maps[i], key, value);

        if (dr != DICT_NOTFOUND)
            return dr;
    }
    return DICT_NOTFOUND;
}

/* strip_extension - user+ext@domain -> user@domain into key; false if none */
static bool strip_extension(struct resolver *r, const char *addr, const char *at)
{
    const char *delims = cfg_str(r->cfg, "recipient_delimiter");
    size_t cut;

    if (delims == NULL || *delims == 0)
        return false;
    cut = strcspn(addr, delims);
    if (addr + cut >= at || cut == 0)
        return false;
    buf_reset(&r->key);
    buf_append(&r->key, addr, cut);
    buf_puts(&r->key, at);
    return true;
}

/*
 * transport_lookup - transport(5) search order; DICT_FOUND with *value,
 * DICT_NOTFOUND, or DICT_TEMPFAIL
 */
static enum dict_result transport_lookup(struct resolver *r, const char *addr,
                                         const char *domain, const char **value)
{
    enum dict_result dr;
    const char *at = domain - 1;

    if (r->nmaps == 0)
        return DICT_NOTFOUND;
    if ((dr = maps_lookup(r, addr, value)) != DICT_NOTFOUND)
        return dr;
    if (strip_extension(r, addr, at)
        && (dr = maps_lookup(r, buf_str(&r->key), value)) != DICT_NOTFOUND)
        return dr;
    if (*domain && (dr = maps_lookup(r, domain, value)) != DICT_NOTFOUND)
        return dr;
    for (const char *p = strchr(domain, '.'); p != NULL && p[1]; p = strchr(p + 1, '.')) {
        const char *key = r->parent_bare ? p + 1 : p;

        if ((dr = maps_lookup(r, key, value)) != DICT_NOTFOUND)
            return dr;
    }
    return maps_lookup(r, WILDCARD_KEY, value);
}

/* split_transport - "transport:nexthop" into fresh strings ("" when absent) */
static void split_transport(const char *spec, char **transport, char **nexthop)
{
    const char *colon = strchr(spec, ':');

    if (colon == NULL) {
        *transport = xstrdup(spec);
        *nexthop = xstrdup("");
    } else {
        *transport = xstrndup(spec, (size_t)(colon - spec));
        *nexthop = xstrdup(colon + 1);
    }
}

/* is_loopback_literal - [127.x.x.x] or [IPv6:::1]: our own address */
static bool is_loopback_literal(const char *domain)
{
    return strncmp(domain, LOOPBACK_V4_PREFIX, strlen(LOOPBACK_V4_PREFIX)) == 0
           || strcasecmp(domain, LOOPBACK_V6) == 0;
}

/*
 * default_route - the address class decides; RESOLVE_TEMPFAIL when a
 * domain list failed
 */
static enum resolve_status default_route(struct resolver *r, const char *domain,
                                         char **transport, char **nexthop, bool *valias_class,
                                         const char **why)
{
    enum match_result m;
    const char *spec, *relayhost;

    m = is_loopback_literal(domain) ? MATCH_YES : matchlist_match_domain(r->mydest, domain);
    if (m == MATCH_TEMPFAIL) {
        *why = "mydestination lookup failed";
        return RESOLVE_TEMPFAIL;
    }
    if (m == MATCH_YES && !r->both_warned
        && matchlist_match_domain(r->valias, domain) == MATCH_YES) {
        /* Postfix's warning; local delivery wins (once per process) */
        r->both_warned = true;
        msg_warn("do not list domain %s in BOTH mydestination and virtual_alias_domains",
                 domain);
    }
    if (m == MATCH_YES) {
        split_transport(cfg_str(r->cfg, "local_transport"), transport, nexthop);
        if (**nexthop == 0) {
            free(*nexthop);
            *nexthop = xstrdup(cfg_str(r->cfg, "myhostname"));
        }
        return RESOLVE_OK;
    }
    m = matchlist_match_domain(r->valias, domain);
    if (m == MATCH_TEMPFAIL) {
        *why = "virtual_alias_domains lookup failed";
        return RESOLVE_TEMPFAIL;
    }
    if (m == MATCH_YES) {
        /* its addresses were expanded when queued: this one has no entry */
        *transport = xstrdup(ERROR_TRANSPORT);
        *nexthop = xstrdup(VALIAS_UNKNOWN);
        *valias_class = true;
        return RESOLVE_OK;
    }
    m = matchlist_match_domain(r->relay, domain);
    if (m == MATCH_TEMPFAIL) {
        *why = "relay_domains lookup failed";
        return RESOLVE_TEMPFAIL;
    }
    spec = cfg_str(r->cfg, m == MATCH_YES ? "relay_transport" : "default_transport");
    split_transport(spec, transport, nexthop);
    if (**nexthop == 0) {
        relayhost = cfg_str(r->cfg, "relayhost");
        free(*nexthop);
        *nexthop = xstrdup(relayhost && *relayhost ? relayhost : domain);
    }
    return RESOLVE_OK;
}

/* resolve_rcpt - (transport, nexthop) for one recipient */
enum resolve_status resolve_rcpt(struct resolver *r, const char *addr,
                                 struct resolve_result *out, const char **why)
{
    const char *at = strrchr(addr, '@');
    const char *domain, *value = NULL;
    char *transport = NULL, *nexthop = NULL, *t2, *n2;
    bool valias_class = false;
    enum dict_result dr;

    memset(out, 0, sizeof(*out));
    if (at == NULL || at[1] == 0)
        out->address = xasprintf("%.*s@%s", (int)(at ? (size_t)(at - addr) : strlen(addr)),
                                 addr, cfg_str(r->cfg, "myorigin"));
    else
        out->address = xstrdup(addr);
    domain = strrchr(out->address, '@') + 1;
    if (default_route(r, domain, &transport, &nexthop, &valias_class, why) != RESOLVE_OK) {
        resolve_result_free(out);
        return RESOLVE_TEMPFAIL;
    }
    if (valias_class) {
        out->transport = transport;
        out->nexthop = nexthop;
        return RESOLVE_OK;
    }
    dr = transport_lookup(r, out->address, domain, &value);
    if (dr == DICT_TEMPFAIL) {
        *why = "transport_maps lookup failed";
        free(transport);
        free(nexthop);
        resolve_result_free(out);
        return RESOLVE_TEMPFAIL;
    }
    if (dr == DICT_FOUND) {
        split_transport(value, &t2, &n2);
        if (*t2) {
            /* A new transport: its nexthop, else the recipient domain. */
            free(transport);
            transport = t2;
            free(nexthop);
            if (*n2 == 0 && strcmp(transport, "discard") != 0
                && strcmp(transport, "error") != 0) {
                free(n2);
                n2 = xstrdup(domain);
            }
            nexthop = n2;
        } else {
            free(t2);
            if (*n2) {
                free(nexthop);
                nexthop = n2;
            } else {
                free(n2);
            }
        }
    }
    out->transport = transport;
    out->nexthop = nexthop;
    return RESOLVE_OK;
}

/* resolve_split_transport - split_transport for other modules (local's mailbox_transport) */
void resolve_split_transport(const char *spec, char **transport, char **nexthop)
{
    split_transport(spec, transport, nexthop);
}
