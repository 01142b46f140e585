/*
 * matchlist.c - Postfix-style pattern lists: domains, networks, local users
 *
 * A list is compiled once from a main.cf parameter into patterns (names,
 * networks, open tables); matching walks them in order and the first
 * match decides, "!" turning a match into a definite "no". "/file/name"
 * items are replaced by the patterns in the file (a leading "!" negates
 * them all). When the mynetworks parameter is not set, its value is
 * computed from mynetworks_style and the interfaces' addresses.
 *
 * local_rcpt_*() implement Postfix's local_recipient_maps check: the
 * recipient is known when any table has the address, its local part, or
 * the same with the recipient_delimiter extension removed.
 *
 * DIAGNOSTICS: a table that cannot be opened, a bad network pattern, a
 * missing /file and an unknown mynetworks_style are fatal (configuration
 * errors). Host bits set in a network ("1.2.3.4/24") get a warning and the
 * network is used masked (1.2.3.0/24). A table in local_recipient_maps
 * that cannot be opened gets a warning and makes every check a temporary
 * failure, so mail is deferred rather than bounced.
 * SECURITY: domains and addresses come from SMTP clients; they are only
 * compared and used as lookup keys.
 */
#include "util/sys.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mail/config.h"
#include "mail/matchlist.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/cidr.h"
#include "util/dict.h"
#include "util/log.h"

#define MATCH_INCLUDE_DEPTH 8      /* nested /file includes */
#define MATCH_FILE_LINE_MAX 4096   /* longest line in a /file include */
#define CLASS_A_LIMIT 128          /* first octet below: class A (/8) */
#define CLASS_B_LIMIT 192          /* class B (/16) */
#define CLASS_C_LIMIT 224          /* class C (/24); above: multicast */
#define CLASS_A_PREFIX 8u
#define CLASS_B_PREFIX 16u
#define CLASS_C_PREFIX 24u
#define V4_HOST_PREFIX 32u
#define V6_HOST_PREFIX 128u
#define LOOPBACK_V4_NET "127.0.0.0/8"
#define LOOPBACK_V6_NET "[::1]/128"

enum pat_kind { PAT_NAME, PAT_TABLE, PAT_NET };

struct pattern {
    enum pat_kind kind;
    bool negate;
    char *name;           /* PAT_NAME: lower-case domain or ".domain" */
    struct dict *dict;    /* PAT_TABLE */
    struct cidr net;      /* PAT_NET */
};

struct matchlist {
    char *param;
    bool networks;        /* a network list, else a domain list */
    bool parent;          /* parent_domain_matches_subdomains lists param */
    struct pattern *pat;
    size_t count, cap;
    struct buf text;      /* the patterns, for logging */
    struct buf key;       /* scratch for lookups */
};

/* ascii_lower - fold ASCII letters in place */
static void ascii_lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* list_push - a fresh pattern at the end of the list */
static struct pattern *list_push(struct matchlist *m, enum pat_kind kind, bool negate)
{
    if (m->count == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 8;
        m->pat = xreallocarray(m->pat, m->cap, sizeof(*m->pat));
    }
    struct pattern *p = &m->pat[m->count++];
    memset(p, 0, sizeof(*p));
    p->kind = kind;
    p->negate = negate;
    return p;
}

/* is_table_spec - "type:name" with a plausible type name before the colon */
static bool is_table_spec(const char *s)
{
    const char *colon = strchr(s, ':');

    if (colon == NULL || colon == s)
        return false;
    for (const char *p = s; p < colon; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return false;
    return true;
}

static void add_item(struct matchlist *m, const char *item, bool negate, int depth);

/* add_file - the patterns in an included /file/name */
static void add_file(struct matchlist *m, const char *path, bool negate, int depth)
{
    FILE *fp;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0;

    if (depth >= MATCH_INCLUDE_DEPTH)
        msg_fatal("%s: %s: too many nested /file includes", m->param, path);
    if ((fp = fopen(path, "re")) == NULL)
        msg_fatal("%s: open %s: %s", m->param, path, strerror(errno));
    while ((n = getline(&line, &cap, fp)) > 0) {
        lineno++;
        if ((size_t)n > MATCH_FILE_LINE_MAX)
            msg_fatal("%s: %s, line %d: line too long", m->param, path, lineno);
        char *p = line + strspn(line, " \t\r\n");
        if (*p == '#' || *p == 0)
            continue;
        size_t count;
        char **items = cfg_split_list(p, &count);
        for (size_t i = 0; i < count; i++)
            add_item(m, items[i], negate, depth + 1);
        cfg_list_free(items, count);
    }
    if (ferror(fp))
        msg_fatal("%s: read %s: %s", m->param, path, strerror(errno));
    free(line);
    fclose(fp);
}

/* add_table - open a type:table pattern (fatal if it cannot be opened) */
static void add_table(struct matchlist *m, const char *spec, bool negate)
{
    char *err = NULL;
    struct dict *d = dict_open(spec, 0, &err);

    if (d == NULL)
        msg_fatal("%s: %s", m->param, err);
    list_push(m, PAT_TABLE, negate)->dict = d;
}

/* add_network - a network pattern; host bits set are masked with a warning */
static void add_network(struct matchlist *m, const char *text, bool negate)
{
    struct cidr net;
    char fixed[CIDR_TEXT_MAX];

    switch (cidr_parse_status(text, &net)) {
    case CIDR_OK:
        break;
    case CIDR_HOSTBITS:
        msg_warn("%s: non-null host address bits in \"%s\", perhaps you should use \"%s\" instead",
                 m->param, text, cidr_format(&net, fixed, sizeof(fixed)));
        break;
    default:
        msg_fatal("%s: bad net/mask pattern: \"%s\"", m->param, text);
    }
    list_push(m, PAT_NET, negate)->net = net;
}

/* add_item - one list item: [!]name, [!]type:table, [!]/file, [!]network */
static void add_item(struct matchlist *m, const char *item, bool negate, int depth)
{
    for (; *item == '!'; item++)
        negate = !negate;
    if (*item == 0)
        msg_fatal("%s: empty pattern after \"!\"", m->param);
    if (*item == '/') {
        add_file(m, item, negate, depth);
        return;
    }
    if (m->networks) {
        struct cidr tmp;
        if (cidr_parse_status(item, &tmp) == CIDR_BAD && is_table_spec(item) && item[0] != '[')
            add_table(m, item, negate);
        else
            add_network(m, item, negate);
        return;
    }
    if (is_table_spec(item)) {
        add_table(m, item, negate);
        return;
    }
    struct pattern *p = list_push(m, PAT_NAME, negate);
    p->name = xstrdup(item);
    ascii_lower(p->name);
}

/* list_new - an empty list for param */
static struct matchlist *list_new(const char *param, bool networks)
{
    struct matchlist *m = xcalloc(1, sizeof(*m));

    m->param = xstrdup(param);
    m->networks = networks;
    buf_init(&m->text, 0);
    buf_init(&m->key, 0);
    return m;
}

/* add_items - compile each item of a split list, remembering the text */
static void add_items(struct matchlist *m, char **items, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (m->text.len)
            buf_putc(&m->text, ' ');
        buf_puts(&m->text, items[i]);
        add_item(m, items[i], false, 0);
    }
}

/* param_is_parent - param is listed in parent_domain_matches_subdomains */
static bool param_is_parent(struct cfg *cfg, const char *param)
{
    size_t n;
    char **list = cfg_list(cfg, "parent_domain_matches_subdomains", &n);
    bool found = false;

    for (size_t i = 0; i < n && !found; i++)
        found = strcasecmp(list[i], param) == 0;
    cfg_list_free(list, n);
    return found;
}

/* matchlist_domains - compile a domain list */
struct matchlist *matchlist_domains(struct cfg *cfg, const char *param)
{
    struct matchlist *m = list_new(param, false);
    size_t n;
    char **items = cfg_list(cfg, param, &n);

    m->parent = param_is_parent(cfg, param);
    add_items(m, items, n);
    cfg_list_free(items, n);
    return m;
}

/* prefix_of_mask - the number of leading one bits in a netmask */
static unsigned prefix_of_mask(const uint8_t *mask, size_t nbytes)
{
    unsigned bits = 0;

    for (size_t i = 0; i < nbytes; i++) {
        uint8_t b = mask[i];
        while (b & 0x80u) {
            bits++;
            b = (uint8_t)(b << 1);
        }
        if (mask[i] != 0xffu)
            break;
    }
    return bits;
}

/* net_add_unique - append "addr/prefix" to the computed list once */
static void net_add_unique(char ***items, size_t *count, int family, const void *addr,
                           unsigned prefix)
{
    struct cidr c;
    char text[CIDR_TEXT_MAX];

    memset(&c, 0, sizeof(c));
    c.family = family;
    memcpy(c.addr, addr, family == AF_INET ? 4 : 16);
    c.prefix = prefix;
    /* clear host bits through the parser so the text is canonical */
    cidr_format(&c, text, sizeof(text));
    if (cidr_parse(text, &c))
        cidr_format(&c, text, sizeof(text));
    for (size_t i = 0; i < *count; i++)
        if (strcmp((*items)[i], text) == 0)
            return;
    *items = xreallocarray(*items, *count + 1, sizeof(**items));
    (*items)[(*count)++] = xstrdup(text);
}

/* v4_class_prefix - class A/B/C prefix of an IPv4 address (0: use subnet) */
static unsigned v4_class_prefix(const uint8_t *a)
{
    if (a[0] < CLASS_A_LIMIT)
        return CLASS_A_PREFIX;
    if (a[0] < CLASS_B_LIMIT)
        return CLASS_B_PREFIX;
    if (a[0] < CLASS_C_LIMIT)
        return CLASS_C_PREFIX;
    return 0;
}

/* compute_mynetworks - mynetworks from mynetworks_style and getifaddrs */
static char **compute_mynetworks(struct cfg *cfg, size_t *count)
{
    const char *style = cfg_str(cfg, "mynetworks_style");
    enum { STYLE_HOST, STYLE_SUBNET, STYLE_CLASS } st;
    struct ifaddrs *ifa_list, *ifa;
    char **items = NULL;

    *count = 0;
    if (strcasecmp(style, "host") == 0)
        st = STYLE_HOST;
    else if (strcasecmp(style, "subnet") == 0)
        st = STYLE_SUBNET;
    else if (strcasecmp(style, "class") == 0)
        st = STYLE_CLASS;
    else
        msg_fatal("unknown mynetworks_style parameter value: %s", style);

    if (getifaddrs(&ifa_list) < 0) {
        msg_warn("mynetworks: getifaddrs: %s; using the loopback networks only",
                 strerror(errno));
        items = xreallocarray(NULL, 2, sizeof(*items));
        items[0] = xstrdup(LOOPBACK_V4_NET);
        items[1] = xstrdup(LOOPBACK_V6_NET);
        *count = 2;
        return items;
    }
    for (ifa = ifa_list; ifa; ifa = ifa->ifa_next) {
        if (ifa->ifa_addr == NULL || !(ifa->ifa_flags & IFF_UP))
            continue;
        int family = ifa->ifa_addr->sa_family;
        const uint8_t *addr, *mask = NULL;
        size_t nbytes;
        if (family == AF_INET) {
            addr = (const uint8_t *)&((const struct sockaddr_in *)(void *)ifa->ifa_addr)->sin_addr;
            if (ifa->ifa_netmask)
                mask = (const uint8_t *)&((const struct sockaddr_in *)(void *)ifa->ifa_netmask)
                           ->sin_addr;
            nbytes = 4;
        } else if (family == AF_INET6) {
            addr = ((const struct sockaddr_in6 *)(void *)ifa->ifa_addr)->sin6_addr.s6_addr;
            if (ifa->ifa_netmask)
                mask = ((const struct sockaddr_in6 *)(void *)ifa->ifa_netmask)->sin6_addr.s6_addr;
            nbytes = 16;
        } else {
            continue;
        }
        unsigned host = family == AF_INET ? V4_HOST_PREFIX : V6_HOST_PREFIX;
        unsigned subnet = mask ? prefix_of_mask(mask, nbytes) : host;
        unsigned prefix = host;
        if (st == STYLE_HOST && (ifa->ifa_flags & IFF_LOOPBACK)) {
            /* the whole loopback network, as Postfix's default shows it */
            net_add_unique(&items, count, family, addr,
                           family == AF_INET ? CLASS_A_PREFIX : V6_HOST_PREFIX);
            continue;
        }
        if (st == STYLE_SUBNET)
            prefix = subnet;
        else if (st == STYLE_CLASS)
            prefix = family == AF_INET && v4_class_prefix(addr) ? v4_class_prefix(addr) : subnet;
        net_add_unique(&items, count, family, addr, prefix);
    }
    freeifaddrs(ifa_list);
    return items;
}

/* matchlist_networks - compile a network list (mynetworks computed if unset) */
struct matchlist *matchlist_networks(struct cfg *cfg, const char *param)
{
    struct matchlist *m = list_new(param, true);
    size_t n;
    char **items;

    if (strcmp(param, "mynetworks") == 0 && !cfg_is_set(cfg, param)) {
        items = compute_mynetworks(cfg, &n);
        add_items(m, items, n);
        for (size_t i = 0; i < n; i++)
            free(items[i]);
        free(items);
        return m;
    }
    items = cfg_list(cfg, param, &n);
    add_items(m, items, n);
    cfg_list_free(items, n);
    return m;
}

/* table_lookup - found, not found or tempfail as a match result */
static enum match_result table_lookup(struct matchlist *m, struct dict *d, const char *key)
{
    switch (dict_lookup(d, key, NULL)) {
    case DICT_FOUND:
        return MATCH_YES;
    case DICT_TEMPFAIL:
        msg_warn("%s: %s: table lookup problem for \"%s\"", m->param, dict_spec(d), key);
        return MATCH_TEMPFAIL;
    default:
        return MATCH_NO;
    }
}

/* match_domain_table - the domain, then its parents ("example.com" or ".example.com") */
static enum match_result match_domain_table(struct matchlist *m, struct dict *d,
                                            const char *domain)
{
    enum match_result r = table_lookup(m, d, domain);
    const char *dot;

    for (const char *p = domain; r == MATCH_NO && (dot = strchr(p, '.')) != NULL; p = dot + 1)
        r = table_lookup(m, d, m->parent ? dot + 1 : dot);
    return r;
}

/* match_domain_name - exact name, ".parent" form, or parent in parent mode */
static bool match_domain_name(const struct matchlist *m, const char *pattern, const char *domain)
{
    size_t dl = strlen(domain), pl = strlen(pattern);

    if (pattern[0] == '.')
        return dl > pl && strcmp(domain + dl - pl, pattern) == 0;
    if (strcmp(domain, pattern) == 0)
        return true;
    return m->parent && dl > pl + 1 && domain[dl - pl - 1] == '.' &&
           strcmp(domain + dl - pl, pattern) == 0;
}

/* matchlist_match_domain - first matching pattern decides */
enum match_result matchlist_match_domain(struct matchlist *m, const char *domain)
{
    if (buf_set(&m->key, domain) < 0 || m->key.len == 0)
        return MATCH_NO;
    if (m->key.data[m->key.len - 1] == '.')
        buf_truncate(&m->key, m->key.len - 1);
    if (m->key.len == 0)
        return MATCH_NO;
    ascii_lower(m->key.data);
    const char *name = m->key.data;
    enum match_result r = MATCH_NO;

    for (size_t i = 0; i < m->count; i++) {
        const struct pattern *p = &m->pat[i];
        enum match_result hit = MATCH_NO;
        if (p->kind == PAT_NAME)
            hit = match_domain_name(m, p->name, name) ? MATCH_YES : MATCH_NO;
        else if (p->kind == PAT_TABLE)
            hit = match_domain_table(m, p->dict, name);
        if (hit == MATCH_TEMPFAIL) {
            r = MATCH_TEMPFAIL;
            break;
        }
        if (hit == MATCH_YES) {
            r = p->negate ? MATCH_NO : MATCH_YES;
            break;
        }
    }
    return r;
}

/* matchlist_match_addr - first matching network or table decides */
enum match_result matchlist_match_addr(struct matchlist *m, const char *ipaddr)
{
    int family;
    uint8_t addr[16];
    char text[INET6_ADDRSTRLEN];
    static const uint8_t mapped_head[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    if (!cidr_addr_parse(ipaddr, &family, addr))
        return MATCH_NO;
    /* tables see an IPv4-mapped client as the IPv4 address it is */
    if (family == AF_INET6 && memcmp(addr, mapped_head, sizeof(mapped_head)) == 0)
        inet_ntop(AF_INET, addr + sizeof(mapped_head), text, sizeof(text));
    else
        inet_ntop(family, addr, text, sizeof(text));

    for (size_t i = 0; i < m->count; i++) {
        const struct pattern *p = &m->pat[i];
        enum match_result hit = MATCH_NO;
        if (p->kind == PAT_NET)
            hit = cidr_match(&p->net, family, addr) ? MATCH_YES : MATCH_NO;
        else if (p->kind == PAT_TABLE)
            hit = table_lookup(m, p->dict, text);
        if (hit == MATCH_TEMPFAIL)
            return MATCH_TEMPFAIL;
        if (hit == MATCH_YES)
            return p->negate ? MATCH_NO : MATCH_YES;
    }
    return MATCH_NO;
}

/* matchlist_text - the patterns as configured or computed */
const char *matchlist_text(const struct matchlist *m)
{
    return buf_str(&m->text);
}

/* matchlist_free - close tables and release the list */
void matchlist_free(struct matchlist *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->count; i++) {
        free(m->pat[i].name);
        if (m->pat[i].dict)
            dict_close(m->pat[i].dict);
    }
    free(m->pat);
    free(m->param);
    buf_free(&m->text);
    buf_free(&m->key);
    free(m);
}

/* ---- local_recipient_maps ------------------------------------------------- */

struct rcpt_map {
    char *spec;
    struct dict *dict;    /* NULL: could not be opened (every lookup fails) */
    bool no_at_keys;      /* unix: tables: only the bare local part */
};

struct local_rcpt {
    struct rcpt_map *map;
    size_t count;
    char *delim;          /* recipient_delimiter characters ("" none) */
    bool full_only;       /* only user@domain and @domain keys (relay maps) */
};

/* local_rcpt_open - open the tables of local_recipient_maps */
struct local_rcpt *local_rcpt_open(struct cfg *cfg)
{
    return rcpt_maps_open(cfg, "local_recipient_maps");
}

/* rcpt_maps_open - open the tables of param; relay maps use full keys only */
struct local_rcpt *rcpt_maps_open(struct cfg *cfg, const char *param)
{
    struct local_rcpt *lr = xcalloc(1, sizeof(*lr));
    size_t n;
    char **items = cfg_list(cfg, param, &n);

    lr->full_only = strcmp(param, "local_recipient_maps") != 0;

    lr->delim = xstrdup(cfg_str(cfg, "recipient_delimiter"));
    lr->map = xcalloc(n ? n : 1, sizeof(*lr->map));
    for (size_t i = 0; i < n; i++) {
        char *err = NULL;
        struct rcpt_map *rm = &lr->map[lr->count++];
        rm->spec = xstrdup(items[i]);
        rm->dict = dict_open(items[i], 0, &err);
        if (rm->dict == NULL) {
            msg_warn("%s: %s", param, err);
            free(err);
        } else {
            rm->no_at_keys = strcmp(dict_type(rm->dict), "unix") == 0;
        }
    }
    cfg_list_free(items, n);
    return lr;
}

/* split_extension - length of the local part without its extension */
static size_t split_extension(const char *delim, const char *local)
{
    size_t len = strlen(local);

    if (*delim == 0)
        return len;
    if (strchr(delim, '-') != NULL) {
        /* owner-foo and foo-request are list addresses, not extensions */
        static const char owner[] = "owner-", request[] = "-request";
        if (strncmp(local, owner, sizeof(owner) - 1) == 0)
            return len;
        if (len > sizeof(request) - 1 &&
            strcmp(local + len - (sizeof(request) - 1), request) == 0)
            return len;
    }
    size_t base = strcspn(local, delim);
    return base == 0 ? len : base;
}

/* rcpt_local_base - split_extension for other modules (matchlist.h) */
size_t rcpt_local_base(const char *delim, const char *local)
{
    return split_extension(delim, local);
}

/* rcpt_try - look key up in every table; YES, NO or TEMPFAIL */
static enum match_result rcpt_try(struct local_rcpt *lr, const char *key, bool *tempfail)
{
    bool has_at = strchr(key, '@') != NULL;

    for (size_t i = 0; i < lr->count; i++) {
        struct rcpt_map *rm = &lr->map[i];
        if (rm->dict == NULL) {
            *tempfail = true;
            continue;
        }
        if (has_at && rm->no_at_keys)
            continue;
        switch (dict_lookup(rm->dict, key, NULL)) {
        case DICT_FOUND:
            return MATCH_YES;
        case DICT_TEMPFAIL:
            msg_warn("local_recipient_maps: %s: table lookup problem for \"%s\"", rm->spec, key);
            *tempfail = true;
            break;
        default:
            break;
        }
    }
    return MATCH_NO;
}

/*
 * local_rcpt_check - the Postfix lookup order: user+ext@domain,
 * user@domain, user+ext, user, @domain; found in any table is enough.
 */
enum match_result local_rcpt_check(struct local_rcpt *lr, const char *local_part,
                                   const char *address)
{
    if (lr->count == 0)
        return MATCH_YES;

    char *local = xstrdup(local_part);
    ascii_lower(local);
    size_t base = split_extension(lr->delim, local);
    bool has_ext = base < strlen(local);
    const char *domain = address ? strrchr(address, '@') : NULL;
    char *dom = domain && domain[1] ? xstrdup(domain + 1) : NULL;
    if (dom)
        ascii_lower(dom);

    char *keys[5];
    size_t nkeys = 0;
    if (dom) {
        keys[nkeys++] = xasprintf("%s@%s", local, dom);
        if (has_ext)
            keys[nkeys++] = xasprintf("%.*s@%s", (int)base, local, dom);
    }
    if (!lr->full_only || dom == NULL) {
        keys[nkeys++] = xstrdup(local);
        if (has_ext)
            keys[nkeys++] = xstrndup(local, base);
    }
    if (dom)
        keys[nkeys++] = xasprintf("@%s", dom);

    bool tempfail = false;
    enum match_result r = MATCH_NO;
    for (size_t i = 0; i < nkeys && r == MATCH_NO; i++)
        if (keys[i][0] != 0)
            r = rcpt_try(lr, keys[i], &tempfail);
    for (size_t i = 0; i < nkeys; i++)
        free(keys[i]);
    free(local);
    free(dom);
    if (r == MATCH_NO && tempfail)
        return MATCH_TEMPFAIL;
    return r;
}

/* local_rcpt_close - close the tables */
void local_rcpt_close(struct local_rcpt *lr)
{
    if (lr == NULL)
        return;
    for (size_t i = 0; i < lr->count; i++) {
        free(lr->map[i].spec);
        if (lr->map[i].dict)
            dict_close(lr->map[i].dict);
    }
    free(lr->map);
    free(lr->delim);
    free(lr);
}
