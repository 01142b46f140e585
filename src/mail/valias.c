/*
 * valias.c - virtual_alias_maps expansion and the virtual alias domains
 *
 * See valias.h for the rules (Postfix's virtual(5) and the expansion its
 * cleanup(8) does before a message is queued). One struct valias holds
 * the open tables and compiled lists for the life of a daemon.
 *
 * DIAGNOSTICS: "QID: unreasonable virtual_alias_maps map expansion size
 *   for ADDR -- message not accepted, try again later" (and "map nesting"
 *   for the recursion limit), as Postfix logs them; a table lookup
 *   failure and a value that is not an address list are warnings too.
 * SECURITY: the address is only a lookup key; the list grows at most to
 *   virtual_alias_expansion_limit entries.
 */
#include "util/sys.h"

#include <string.h>
#include <strings.h>

#include "mail/addrmap.h"
#include "mail/aliasfile.h"
#include "mail/config.h"
#include "mail/qfile.h"
#include "mail/valias.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/dict.h"
#include "util/log.h"

#define VALIAS_MAPS "virtual_alias_maps"
#define ORCPT_RFC822 "rfc822;"
#define ASCII_MAX 0x7f

struct valias {
    struct cfg *cfg;
    struct addrmap *map;       /* virtual_alias_maps; NULL when empty */
    struct matchlist *domains; /* virtual_alias_domains */
    char *origin;              /* $myorigin */
    size_t exp_limit, rec_limit;
};

/* valias_open - open the tables and compile the domain list */
struct valias *valias_open(struct cfg *cfg)
{
    struct valias *va = xcalloc(1, sizeof(*va));
    long long v;

    va->cfg = cfg;
    va->map = addrmap_open(cfg, VALIAS_MAPS);
    va->domains = matchlist_domains(cfg, "virtual_alias_domains");
    va->origin = xstrdup(cfg_str(cfg, "myorigin"));
    v = cfg_int(cfg, "virtual_alias_expansion_limit");
    va->exp_limit = v > 0 ? (size_t)v : 1;
    v = cfg_int(cfg, "virtual_alias_recursion_limit");
    va->rec_limit = v > 0 ? (size_t)v : 1;
    return va;
}

/* valias_close - close the tables */
void valias_close(struct valias *va)
{
    if (va == NULL)
        return;
    addrmap_close(va->map);
    matchlist_free(va->domains);
    free(va->origin);
    free(va);
}

/* valias_active - any table to look in */
bool valias_active(const struct valias *va)
{
    return va != NULL && va->map != NULL;
}

/* list_add - append a copy of addr */
static void list_add(struct valias_list *l, const char *addr)
{
    l->addr = xreallocarray(l->addr, l->n + 1, sizeof(*l->addr));
    l->addr[l->n++] = xstrdup(addr);
}

/* list_has - addr is in l (fold: ignore case, as the table keys do) */
static bool list_has(const struct valias_list *l, const char *addr, bool fold)
{
    for (size_t i = 0; i < l->n; i++)
        if ((fold ? strcasecmp(l->addr[i], addr) : strcmp(l->addr[i], addr)) == 0)
            return true;
    return false;
}

/* valias_list_add_new - append a copy of addr unless l has it (same bytes) */
void valias_list_add_new(struct valias_list *l, const char *addr)
{
    if (!list_has(l, addr, false))
        list_add(l, addr);
}

/* is_ascii - no 8-bit byte (an rfc822 ORCPT cannot carry UTF-8) */
static bool is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s > ASCII_MAX)
            return false;
    return true;
}

/* valias_list_free - release the addresses */
void valias_list_free(struct valias_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->addr[i]);
    free(l->addr);
    l->addr = NULL;
    l->n = 0;
}

/* valias_parse_value - a table value into addresses (see valias.h) */
bool valias_parse_value(const char *value, const char *lhs, const char *origin,
                        struct valias_list *out, char **err)
{
    struct alias_list al = {0};
    const char *at = strrchr(lhs, '@');
    size_t llen = at ? (size_t)(at - lhs) : strlen(lhs);
    bool ok = aliasfile_parse(value, strlen(value), &al, err);

    if (ok && al.n == 0) {
        *err = xstrdup("empty value");
        ok = false;
    }
    for (size_t i = 0; ok && i < al.n; i++) {
        const char *a = al.items[i].value;
        char *q;

        if (al.items[i].type != ALIAS_ADDR && al.items[i].type != ALIAS_NOALIAS) {
            *err = xasprintf("%s destination \"%s\" is not an address",
                             alias_type_name(al.items[i].type), a);
            ok = false;
        } else if (*a == 0) {
            *err = xstrdup("empty address");
            ok = false;
        } else if (i == 0 && a[0] == '@' && strchr(a + 1, '@') == NULL && a[1]) {
            /* "@otherdomain": the same local part there (first result only) */
            q = xasprintf("%.*s%s", (int)llen, lhs, a);
            list_add(out, q);
            free(q);
        } else if (strchr(a, '@') == NULL) {
            q = xasprintf("%s@%s", a, origin);
            list_add(out, q);
            free(q);
        } else {
            list_add(out, a);
        }
    }
    alias_list_free(&al);
    return ok;
}

/* add_extension - user@domain -> user+ext@domain in place */
static void add_extension(char **addr, const char *ext)
{
    char *at = strrchr(*addr, '@');
    char *with = at ? xasprintf("%.*s%s%s", (int)(at - *addr), *addr, ext, at)
                    : xasprintf("%s%s", *addr, ext);

    free(*addr);
    *addr = with;
}

/*
 * lookup_one - expand addr one step into *res; DICT_FOUND, DICT_NOTFOUND
 * or DICT_TEMPFAIL (a table failed or its value is broken)
 */
static enum dict_result lookup_one(struct valias *va, const char *addr, const char *log_id,
                                   struct valias_list *res)
{
    const char *value = NULL;
    char *ext = NULL, *err = NULL;
    enum dict_result dr = addrmap_find(va->map, addr, &value, &ext);

    if (dr != DICT_FOUND) {
        free(ext);
        return dr;
    }
    if (!valias_parse_value(value, addr, va->origin, res, &err)) {
        msg_warn("%s: %s: bad value for %s: %s", log_id ? log_id : "NOQUEUE", VALIAS_MAPS,
                 addr, err);
        free(err);
        free(ext);
        valias_list_free(res);
        return DICT_TEMPFAIL;
    }
    for (size_t i = 0; ext != NULL && i < res->n; i++)
        add_extension(&res->addr[i], ext);
    free(ext);
    return DICT_FOUND;
}

/* limit_exceeded - log Postfix's warning and fail */
static enum valias_status limit_exceeded(const char *log_id, const char *what,
                                         const char *addr, const char **why)
{
    msg_warn("%s: unreasonable %s map %s for %s -- message not accepted, try again later",
             log_id ? log_id : "NOQUEUE", VALIAS_MAPS, what, addr);
    *why = "Alias expansion error";
    return VALIAS_LIMIT;
}

/* valias_expand - the final recipients of addr (see valias.h) */
enum valias_status valias_expand(struct valias *va, const char *addr, const char *log_id,
                                 struct valias_list *out, const char **why)
{
    struct valias_list list = {0}, seen = {0};
    enum valias_status st = VALIAS_OK;
    bool changed = false;
    char *q;

    valias_list_free(out);
    if (!valias_active(va) || *addr == 0) {
        list_add(out, addr);
        return VALIAS_OK;
    }
    q = strchr(addr, '@') ? xstrdup(addr) : xasprintf("%s@%s", addr, va->origin);
    list_add(&list, q);
    free(q);
    for (size_t i = 0; st == VALIAS_OK && i < list.n; i++) {
        for (size_t count = 0;; count++) {
            struct valias_list res = {0};
            enum dict_result dr;

            /* an address expanded once already: a loop, or it lists itself */
            if (list_has(&seen, list.addr[i], true))
                break;
            if (count >= va->rec_limit) {
                st = limit_exceeded(log_id, "nesting", addr, why);
                break;
            }
            dr = lookup_one(va, list.addr[i], log_id, &res);
            if (dr == DICT_NOTFOUND)
                break;
            if (dr == DICT_TEMPFAIL) {
                *why = "virtual_alias_maps lookup failure";
                st = VALIAS_TEMPFAIL;
                break;
            }
            changed = true;
            list_add(&seen, list.addr[i]);
            free(list.addr[i]);
            list.addr[i] = res.addr[0];
            for (size_t k = 1; k < res.n; k++) {
                list.addr = xreallocarray(list.addr, list.n + 1, sizeof(*list.addr));
                list.addr[list.n++] = res.addr[k];
            }
            free(res.addr);
            if (list.n > va->exp_limit) {
                st = limit_exceeded(log_id, "expansion size", addr, why);
                break;
            }
        }
    }
    if (st == VALIAS_OK && !changed) {
        list_add(out, addr);
    } else if (st == VALIAS_OK) {
        for (size_t i = 0; i < list.n; i++)
            if (!list_has(out, list.addr[i], false))
                list_add(out, list.addr[i]);
    }
    valias_list_free(&list);
    valias_list_free(&seen);
    return st;
}

/* valias_write_rcpt - expand addr and write its recipient records */
enum valias_status valias_write_rcpt(struct valias *va, struct qfile_writer *qf,
                                     const char *log_id, const char *addr,
                                     const char *orcpt, unsigned notify, const char **why)
{
    struct valias_list l = {0};
    enum valias_status st = valias_expand(va, addr, log_id, &l, why);

    if (st != VALIAS_OK)
        return st;
    for (size_t i = 0; i < l.n; i++) {
        bool same = strcmp(l.addr[i], addr) == 0;

        if (orcpt != NULL)
            qfw_record(qf, QREC_ORCPT, orcpt, strlen(orcpt));
        else if (!same && is_ascii(addr))
            qfw_recordf(qf, QREC_ORCPT, "%s%s", ORCPT_RFC822, addr);
        if (notify)
            qfw_recordf(qf, QREC_NOTIFY, "%u", notify);
        qfw_record(qf, QREC_RCPT, l.addr[i], strlen(l.addr[i]));
        if (!same && log_id != NULL)
            msg_info("%s: virtual alias: <%s> -> <%s>", log_id, addr, l.addr[i]);
    }
    valias_list_free(&l);
    return VALIAS_OK;
}

/* valias_domain - domain in virtual_alias_domains */
enum match_result valias_domain(struct valias *va, const char *domain)
{
    if (va == NULL || domain == NULL || *domain == 0)
        return MATCH_NO;
    return matchlist_match_domain(va->domains, domain);
}

/* valias_listed - addr has an entry of its own in virtual_alias_maps */
enum match_result valias_listed(struct valias *va, const char *addr)
{
    const char *value;
    char *ext = NULL, *q;
    enum dict_result dr;

    if (!valias_active(va) || *addr == 0)
        return MATCH_NO;
    q = strchr(addr, '@') ? xstrdup(addr) : xasprintf("%s@%s", addr, va->origin);
    dr = addrmap_find(va->map, q, &value, &ext);
    free(ext);
    free(q);
    return dr == DICT_FOUND ? MATCH_YES : dr == DICT_TEMPFAIL ? MATCH_TEMPFAIL : MATCH_NO;
}
