/*
 * addrmap.c - tables indexed by mail address, in Postfix's key order
 *
 * See addrmap.h. One struct addrmap holds a parameter's open tables and
 * what the key order needs (mydestination, myorigin, the recipient
 * delimiter, inet_interfaces) for the life of a process.
 */
#include "util/sys.h"

#include <string.h>
#include <strings.h>

#include "mail/addrmap.h"
#include "mail/config.h"
#include "mail/matchlist.h"
#include "util/alloc.h"
#include "util/log.h"

#define LOOPBACK_V4_PREFIX "[127."
#define LOOPBACK_V6 "[ipv6:::1]"

struct addrmap {
    char *param;               /* "virtual_alias_maps", for warnings */
    struct dict **maps;
    size_t nmaps;
    struct matchlist *mydest;  /* for the bare "user" key */
    char *origin;              /* $myorigin */
    char *delim;               /* recipient_delimiter characters */
    char **ifaces;             /* inet_interfaces */
    size_t nifaces;
};

/* addrmap_open - open the tables of param; NULL when there are none */
struct addrmap *addrmap_open(struct cfg *cfg, const char *param)
{
    struct addrmap *am;
    size_t n;
    char **list = cfg_list(cfg, param, &n);

    if (n == 0) {
        cfg_list_free(list, n);
        return NULL;
    }
    am = xcalloc(1, sizeof(*am));
    am->param = xstrdup(param);
    am->maps = xcalloc(n, sizeof(*am->maps));
    for (size_t i = 0; i < n; i++) {
        char *err = NULL;

        am->maps[i] = dict_open(list[i], 0, &err);
        if (am->maps[i] == NULL)
            msg_fatal("%s: %s: %s", param, list[i], err ? err : "cannot open");
    }
    am->nmaps = n;
    cfg_list_free(list, n);
    am->mydest = matchlist_domains(cfg, "mydestination");
    am->origin = xstrdup(cfg_str(cfg, "myorigin"));
    am->delim = xstrdup(cfg_str(cfg, "recipient_delimiter"));
    am->ifaces = cfg_list(cfg, "inet_interfaces", &am->nifaces);
    return am;
}

/* addrmap_close - close the tables */
void addrmap_close(struct addrmap *am)
{
    if (am == NULL)
        return;
    for (size_t i = 0; i < am->nmaps; i++)
        dict_close(am->maps[i]);
    free(am->maps);
    matchlist_free(am->mydest);
    free(am->origin);
    free(am->delim);
    cfg_list_free(am->ifaces, am->nifaces);
    free(am->param);
    free(am);
}

/* addrmap_origin - $myorigin */
const char *addrmap_origin(const struct addrmap *am)
{
    return am->origin;
}

/* maps_find - one key through every table */
static enum dict_result maps_find(struct addrmap *am, const char *key, const char **value)
{
    for (size_t i = 0; i < am->nmaps; i++) {
        enum dict_result dr = dict_lookup(am->maps[i], key, value);

        if (dr == DICT_TEMPFAIL) {
            msg_warn("%s: %s: table lookup problem for \"%s\"", am->param,
                     dict_spec(am->maps[i]), key);
            return dr;
        }
        if (dr == DICT_FOUND)
            return dr;
    }
    return DICT_NOTFOUND;
}

/* is_our_literal - [addr] of one of our interfaces (or loopback) */
static bool is_our_literal(struct addrmap *am, const char *domain)
{
    size_t len = strlen(domain);

    if (len < 2 || domain[0] != '[' || domain[len - 1] != ']')
        return false;
    if (strncmp(domain, LOOPBACK_V4_PREFIX, strlen(LOOPBACK_V4_PREFIX)) == 0 ||
        strcasecmp(domain, LOOPBACK_V6) == 0)
        return true;
    for (size_t i = 0; i < am->nifaces; i++)
        if (strlen(am->ifaces[i]) == len - 2 &&
            strncasecmp(am->ifaces[i], domain + 1, len - 2) == 0)
            return true;
    return false;
}

/* bare_user_domain - the "user" key applies: $myorigin, $mydestination, ours */
static enum match_result bare_user_domain(struct addrmap *am, const char *domain)
{
    if (strcasecmp(domain, am->origin) == 0 || is_our_literal(am, domain))
        return MATCH_YES;
    return matchlist_match_domain(am->mydest, domain);
}

/* find_keys - the key order of addrmap.h for addr (with a domain) */
static enum dict_result find_keys(struct addrmap *am, const char *addr, const char **value,
                                  char **ext)
{
    const char *at = strrchr(addr, '@');
    const char *domain = at ? at + 1 : "";
    char *local = at ? xstrndup(addr, (size_t)(at - addr)) : xstrdup(addr);
    size_t base = rcpt_local_base(am->delim, local);
    bool has_ext = base < strlen(local);
    enum dict_result dr;
    enum match_result m;
    char *key = NULL;

    *ext = NULL;
    /* user+ext@domain */
    if ((dr = maps_find(am, addr, value)) != DICT_NOTFOUND)
        goto done;
    /* user@domain */
    if (has_ext) {
        key = xasprintf("%.*s@%s", (int)base, local, domain);
        dr = maps_find(am, key, value);
        free(key);
        if (dr == DICT_FOUND)
            *ext = xstrdup(local + base);
        if (dr != DICT_NOTFOUND)
            goto done;
    }
    /* user+ext, user: only in our own domains */
    m = bare_user_domain(am, domain);
    if (m == MATCH_TEMPFAIL) {
        dr = DICT_TEMPFAIL;
        goto done;
    }
    if (m == MATCH_YES && *local) {
        if ((dr = maps_find(am, local, value)) != DICT_NOTFOUND)
            goto done;
        if (has_ext) {
            key = xstrndup(local, base);
            dr = maps_find(am, key, value);
            free(key);
            if (dr == DICT_FOUND)
                *ext = xstrdup(local + base);
            if (dr != DICT_NOTFOUND)
                goto done;
        }
    }
    /* @domain */
    dr = DICT_NOTFOUND;
    if (*domain)
        dr = maps_find(am, domain - 1, value);
done:
    free(local);
    return dr;
}


/* addrmap_find - look addr up in the key order; a NULL map finds nothing */
enum dict_result addrmap_find(struct addrmap *am, const char *addr, const char **value,
                              char **ext)
{
    *ext = NULL;
    if (am == NULL)
        return DICT_NOTFOUND;
    return find_keys(am, addr, value, ext);
}
