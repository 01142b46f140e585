/*
 * dict_cidr.c - cidr: tables (Postfix cidr_table format)
 *
 * A file of rules, first match wins; the lookup key is an IP address:
 *
 *   192.168.1.0/24     value           network/prefix
 *   10.0.0.1           value           a host (/32 or /128)
 *   2001:db8::/32      value           IPv6 (brackets optional)
 *   !10.0.0.0/8        value           matches addresses NOT in the network
 *   if 10.0.0.0/8                      the rules up to the matching endif
 *   ...                                apply only inside the network
 *   endif
 *
 * Lines follow postmap's input format ('#' comments, continuation lines).
 * Keys are fixed-case (they are addresses).
 *
 * DIAGNOSTICS: as Postfix, a bad rule is skipped with a warning naming the
 * file and line; a network with host bits set past the prefix is skipped
 * ("non-null host address bits"); an unmatched endif is ignored and a
 * missing endif is closed at the end of the file, both with a warning.
 * SECURITY: the key is parsed as an address; anything else is not found.
 */
#include "util/sys.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/cidr.h"
#include "util/dict.h"
#include "util/dict_impl.h"
#include "util/log.h"

enum rule_kind { RULE_MATCH, RULE_IF, RULE_ENDIF };

struct cidr_rule {
    enum rule_kind kind;
    bool negate;          /* "!pattern" */
    bool never;           /* an "if" whose pattern was bad: skip its block */
    struct cidr net;
    char *value;          /* RULE_MATCH */
    size_t endif;         /* RULE_IF: index of its endif */
};

struct cidr_table {
    struct cidr_rule *rule;
    size_t count, cap;
    size_t *open_if;      /* stack of unclosed "if" rules while loading */
    size_t depth, depth_cap;
    const char *origin;
};

/* table_push - append a rule, growing the array */
static struct cidr_rule *table_push(struct cidr_table *t, enum rule_kind kind)
{
    if (t->count == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->rule = xreallocarray(t->rule, t->cap, sizeof(*t->rule));
    }
    struct cidr_rule *r = &t->rule[t->count++];
    memset(r, 0, sizeof(*r));
    r->kind = kind;
    return r;
}

/* parse_pattern - "[!...]network" into r; false (with a warning) if bad */
static bool parse_pattern(struct cidr_table *t, int lineno, char *pat, struct cidr_rule *r)
{
    char fixed[CIDR_TEXT_MAX];

    for (; *pat == '!'; pat++)
        r->negate = !r->negate;
    switch (cidr_parse_status(pat, &r->net)) {
    case CIDR_OK:
        return true;
    case CIDR_HOSTBITS:
        msg_warn("cidr map %s, line %d: non-null host address bits in \"%s\", "
                 "perhaps you should use \"%s\" instead",
                 t->origin, lineno, pat, cidr_format(&r->net, fixed, sizeof(fixed)));
        return false;
    default:
        msg_warn("cidr map %s, line %d: bad net/mask pattern: \"%s\"", t->origin, lineno, pat);
        return false;
    }
}

/* cidr_line - one logical line of the table */
static void cidr_line(void *ctx, char *line, int lineno)
{
    struct cidr_table *t = ctx;
    char *pat = line;
    char *rest = pat + strcspn(pat, " \t");

    if (*rest)
        *rest++ = 0;
    rest += strspn(rest, " \t");

    if (strcasecmp(pat, "endif") == 0) {
        if (*rest)
            msg_warn("cidr map %s, line %d: ignoring text after \"endif\"", t->origin, lineno);
        if (t->depth == 0) {
            msg_warn("cidr map %s, line %d: ignoring \"endif\" without matching \"if\"",
                     t->origin, lineno);
            return;
        }
        t->rule[t->open_if[--t->depth]].endif = t->count;
        table_push(t, RULE_ENDIF);
        return;
    }
    if (strcasecmp(pat, "if") == 0) {
        char *arg = rest;
        char *after = arg + strcspn(arg, " \t");
        if (*after) {
            *after++ = 0;
            after += strspn(after, " \t");
            if (*after)
                msg_warn("cidr map %s, line %d: ignoring text after \"if %s\"",
                         t->origin, lineno, arg);
        }
        struct cidr_rule tmp;
        memset(&tmp, 0, sizeof(tmp));
        tmp.kind = RULE_IF;
        if (*arg == 0) {
            msg_warn("cidr map %s, line %d: \"if\" without a pattern", t->origin, lineno);
            tmp.never = true;
        } else if (!parse_pattern(t, lineno, arg, &tmp)) {
            tmp.never = true;
        }
        if (t->depth == t->depth_cap) {
            t->depth_cap = t->depth_cap ? t->depth_cap * 2 : 8;
            t->open_if = xreallocarray(t->open_if, t->depth_cap, sizeof(*t->open_if));
        }
        t->open_if[t->depth++] = t->count;
        *table_push(t, RULE_IF) = tmp;
        return;
    }
    if (*rest == 0) {
        msg_warn("cidr map %s, line %d: expected format: network/prefix result",
                 t->origin, lineno);
        return;
    }
    struct cidr_rule tmp;
    memset(&tmp, 0, sizeof(tmp));
    tmp.kind = RULE_MATCH;
    if (!parse_pattern(t, lineno, pat, &tmp))
        return;
    tmp.value = xstrdup(rest);
    *table_push(t, RULE_MATCH) = tmp;
}

/* cidr_table_free - release rules and the table */
static void cidr_table_free(struct cidr_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->count; i++)
        free(t->rule[i].value);
    free(t->rule);
    free(t->open_if);
    free(t);
}

/* dict_cidr_lookup - first matching rule, honouring if/endif blocks */
static enum dict_result dict_cidr_lookup(struct dict *d, const char *key, const char **value)
{
    const struct cidr_table *t = d->priv;
    int family;
    uint8_t addr[16];

    if (!cidr_addr_parse(key, &family, addr))
        return DICT_NOTFOUND;
    for (size_t i = 0; i < t->count; i++) {
        const struct cidr_rule *r = &t->rule[i];
        switch (r->kind) {
        case RULE_IF:
            if (r->never || cidr_match(&r->net, family, addr) == r->negate)
                i = r->endif;    /* the loop steps past the endif */
            break;
        case RULE_ENDIF:
            break;
        case RULE_MATCH:
            if (cidr_match(&r->net, family, addr) != r->negate)
                return dict_set_value(d, r->value, strlen(r->value), value);
            break;
        }
    }
    return DICT_NOTFOUND;
}

/* dict_cidr_close - close method */
static void dict_cidr_close(struct dict *d)
{
    cidr_table_free(d->priv);
    d->priv = NULL;
}

/* dict_cidr_load - build the rules from the file's text */
bool dict_cidr_load(struct dict *d, const char *text, size_t len, char **err)
{
    struct cidr_table *t = xcalloc(1, sizeof(*t));

    t->origin = d->name;
    dict_text_lines(text, len, d->name, cidr_line, t);
    if (t->depth > 0) {
        msg_warn("cidr map %s: missing \"endif\" at end of file", d->name);
        while (t->depth > 0) {
            t->rule[t->open_if[--t->depth]].endif = t->count;
            table_push(t, RULE_ENDIF);
        }
    }
    d->flags |= DICT_FLAG_FIXED_CASE;
    d->priv = t;
    d->lookup = dict_cidr_lookup;
    d->close = dict_cidr_close;
    return true;
}

/* dict_cidr_open - cidr:/file/name */
bool dict_cidr_open(struct dict *d, char **err)
{
    size_t len;
    char *text;

    dict_watch(d, d->name, -1);
    if ((text = dict_read_file(d->name, &len, err)) == NULL)
        return false;
    bool ok = dict_cidr_load(d, text, len, err);
    free(text);
    return ok;
}
