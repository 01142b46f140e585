/*
 * restrict_parse.c - the pure parts of smtpd's restrictions: names,
 * list parsing, access-table results, lookup keys, host name syntax
 *
 * Nothing here touches a session or the network; tables are opened
 * through the caller's callback, so unit tests and the fuzz target can
 * parse without any file.
 *
 * DIAGNOSTICS: restr_parse_list explains a bad list in *err (the caller
 * makes it fatal): an unknown restriction name, a restriction without
 * its table or DNSBL domain, a table that cannot be opened. A typo thus
 * never turns into a silently open relay.
 *
 * SECURITY: access-table values and client-supplied names are parsed
 * with bounded copies; keys are built into one allocation whose size is
 * computed before it is filled.
 */
#include "util/sys.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mail/config.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/cidr.h"
#include "util/dict.h"

#include "policy.h"
#include "policy_client.h"

#define HOSTNAME_MAX 255
#define LABEL_MAX 63
#define ENH_MAX 15          /* "x.yyy.zzz" at most, with room */
#define REPLY_DIGITS 3

struct restr_name {
    const char *name;
    enum restr_op op;
    enum restr_argkind arg;
};

/* Every name Postfix accepts for the restrictions posta implements. */
static const struct restr_name restr_names[] = {
    {"permit", R_PERMIT, RA_NONE},
    {"reject", R_REJECT, RA_NONE},
    {"defer", R_DEFER, RA_NONE},
    {"defer_if_permit", R_DEFER_IF_PERMIT, RA_NONE},
    {"defer_if_reject", R_DEFER_IF_REJECT, RA_NONE},
    {"warn_if_reject", R_WARN_IF_REJECT, RA_NONE},
    {"dunno", R_DUNNO, RA_NONE},
    {"permit_mynetworks", R_PERMIT_MYNETWORKS, RA_NONE},
    {"permit_sasl_authenticated", R_PERMIT_SASL, RA_NONE},
    {"permit_auth_destination", R_PERMIT_AUTH_DEST, RA_NONE},
    {"reject_unauth_destination", R_REJECT_UNAUTH_DEST, RA_NONE},
    {"defer_unauth_destination", R_DEFER_UNAUTH_DEST, RA_NONE},
    {"reject_unknown_recipient_domain", R_REJECT_UNKNOWN_RCPT_DOMAIN, RA_NONE},
    {"reject_unknown_sender_domain", R_REJECT_UNKNOWN_SENDER_DOMAIN, RA_NONE},
    {"reject_non_fqdn_sender", R_REJECT_NON_FQDN_SENDER, RA_NONE},
    {"reject_non_fqdn_recipient", R_REJECT_NON_FQDN_RCPT, RA_NONE},
    {"reject_non_fqdn_helo_hostname", R_REJECT_NON_FQDN_HELO, RA_NONE},
    {"reject_non_fqdn_hostname", R_REJECT_NON_FQDN_HELO, RA_NONE},
    {"reject_invalid_helo_hostname", R_REJECT_INVALID_HELO, RA_NONE},
    {"reject_invalid_hostname", R_REJECT_INVALID_HELO, RA_NONE},
    {"reject_unknown_helo_hostname", R_REJECT_UNKNOWN_HELO, RA_NONE},
    {"reject_unknown_hostname", R_REJECT_UNKNOWN_HELO, RA_NONE},
    {"reject_unknown_client_hostname", R_REJECT_UNKNOWN_CLIENT, RA_NONE},
    {"reject_unknown_client", R_REJECT_UNKNOWN_CLIENT, RA_NONE},
    {"reject_unlisted_recipient", R_REJECT_UNLISTED_RCPT, RA_NONE},
    {"check_recipient_maps", R_REJECT_UNLISTED_RCPT, RA_NONE},
    {"reject_unlisted_sender", R_REJECT_UNLISTED_SENDER, RA_NONE},
    {"reject_unauth_pipelining", R_REJECT_UNAUTH_PIPELINING, RA_NONE},
    {"reject_rbl_client", R_REJECT_RBL_CLIENT, RA_DOMAIN},
    {"reject_rhsbl_client", R_REJECT_RHSBL_CLIENT, RA_DOMAIN},
    {"reject_rhsbl_helo", R_REJECT_RHSBL_HELO, RA_DOMAIN},
    {"reject_rhsbl_sender", R_REJECT_RHSBL_SENDER, RA_DOMAIN},
    {"reject_rhsbl_recipient", R_REJECT_RHSBL_RCPT, RA_DOMAIN},
    {"check_client_access", R_CHECK_CLIENT_ACCESS, RA_TABLE},
    {"check_helo_access", R_CHECK_HELO_ACCESS, RA_TABLE},
    {"check_sender_access", R_CHECK_SENDER_ACCESS, RA_TABLE},
    {"check_recipient_access", R_CHECK_RCPT_ACCESS, RA_TABLE},
    {"reject_sender_login_mismatch", R_REJECT_SENDER_LOGIN_MISMATCH, RA_NONE},
    {"check_policy_service", R_CHECK_POLICY, RA_POLICY},
};

#define NRESTR_NAMES (sizeof(restr_names) / sizeof(restr_names[0]))

/* restr_lookup_name - the restriction of this name, or -1 */
int restr_lookup_name(const char *name)
{
    for (size_t i = 0; i < NRESTR_NAMES; i++)
        if (strcasecmp(restr_names[i].name, name) == 0)
            return (int)restr_names[i].op;
    return -1;
}

/* restr_name - the (first) name of a restriction */
const char *restr_name(enum restr_op op)
{
    for (size_t i = 0; i < NRESTR_NAMES; i++)
        if (restr_names[i].op == op)
            return restr_names[i].name;
    return op == R_CLASS ? "restriction class" : "unknown";
}

/* restr_argkind - what the restriction takes after its name */
enum restr_argkind restr_argkind(enum restr_op op)
{
    for (size_t i = 0; i < NRESTR_NAMES; i++)
        if (restr_names[i].op == op)
            return restr_names[i].arg;
    return RA_NONE;
}

/* class_index - the index of a restriction class name, or -1 */
static long class_index(const struct restr_classes *classes, const char *name)
{
    if (classes == NULL)
        return -1;
    for (size_t i = 0; i < classes->n; i++)
        if (strcasecmp(classes->names[i], name) == 0)
            return (long)i;
    return -1;
}

/* valid_dnsbl_domain - a DNSBL zone: host name syntax */
static bool valid_dnsbl_domain(const char *d)
{
    return *d != 0 && restr_valid_hostname(d) && d[0] != '[';
}

/* parse_domain_arg - "DOMAIN" or "DOMAIN=d.d.d.d" (the reply that counts) */
static bool parse_domain_arg(const char *word, struct restr *r, char **err)
{
    const char *eq = strchr(word, '=');
    char *dom = eq ? xstrndup(word, (size_t)(eq - word)) : xstrdup(word);

    if (!valid_dnsbl_domain(dom)) {
        *err = xasprintf("bad DNSBL domain name: \"%s\"", word);
        free(dom);
        return false;
    }
    if (eq != NULL) {
        const char *f = eq + 1;

        /* d.d.d.d with each part a number or [range]/glob is Postfix's; posta: exact or 127.0.0.x */
        if (*f == 0 || strspn(f, "0123456789.") != strlen(f)) {
            *err = xasprintf("bad DNSBL reply filter: \"%s\"", word);
            free(dom);
            return false;
        }
        r->rbl_filter = xstrdup(f);
    }
    r->arg = dom;
    return true;
}

/* restr_parse_list - parse a parameter's words into out; false + *err */
bool restr_parse_list(char **words, size_t n, const char *param,
                      const struct restr_classes *classes, restr_open_fn *open_fn,
                      void *open_ctx, struct restr_list *out, char **err)
{
    *err = NULL;
    out->param = xstrdup(param);
    out->v = xcalloc(n ? n : 1, sizeof(*out->v));
    out->n = 0;
    for (size_t i = 0; i < n; i++) {
        const char *w = words[i];
        int op = restr_lookup_name(w);
        long ci;
        struct restr *r = &out->v[out->n];

        memset(r, 0, sizeof(*r));
        if (op < 0) {
            ci = class_index(classes, w);
            if (ci < 0) {
                *err = xasprintf("unknown restriction: \"%s\"", w);
                goto fail;
            }
            r->op = R_CLASS;
            r->class_idx = (size_t)ci;
            r->arg = xstrdup(w);
            out->n++;
            continue;
        }
        r->op = (enum restr_op)op;
        switch (restr_argkind(r->op)) {
        case RA_NONE:
            break;
        case RA_TABLE:
            if (i + 1 >= n || strchr(words[i + 1], ':') == NULL) {
                *err = xasprintf("restriction %s requires a type:table argument", w);
                goto fail;
            }
            r->arg = xstrdup(words[++i]);
            if (open_fn != NULL) {
                char *why = NULL;

                r->table = open_fn(open_ctx, r->arg, &why);
                if (r->table == NULL) {
                    *err = xasprintf("%s %s: %s", w, r->arg, why ? why : "cannot open table");
                    free(why);
                    free(r->arg);
                    r->arg = NULL;
                    goto fail;
                }
            }
            break;
        case RA_DOMAIN:
            if (i + 1 >= n || restr_lookup_name(words[i + 1]) >= 0) {
                *err = xasprintf("restriction %s requires a domain name argument", w);
                goto fail;
            }
            if (!parse_domain_arg(words[++i], r, err))
                goto fail;
            break;
        case RA_POLICY:
            /* "inet:host:port", "unix:path" or a braced group that starts with one;
             * the attributes are checked when smtpd starts (policy_client.c) */
            if (i + 1 >= n || (strncasecmp(words[i + 1], "inet:", 5) != 0
                               && strncasecmp(words[i + 1], "unix:", 5) != 0)) {
                *err = xasprintf("restriction %s requires an inet:host:port or unix:pathname "
                                 "argument", w);
                goto fail;
            }
            r->arg = xstrdup(words[++i]);
            break;
        }
        out->n++;
    }
    return true;
fail:
    restr_list_free(out);
    return false;
}

/* restr_list_free - release a parsed list (tables included) */
void restr_list_free(struct restr_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].arg);
        free(l->v[i].rbl_filter);
        if (l->v[i].table != NULL)
            dict_close(l->v[i].table);
    }
    free(l->v);
    free(l->param);
    l->v = NULL;
    l->param = NULL;
    l->n = 0;
}

/* word_is - value starts with the keyword w followed by the end or white space */
static const char *word_is(const char *value, const char *w)
{
    size_t n = strlen(w);

    if (strncasecmp(value, w, n) != 0 || (value[n] != 0 && value[n] != ' ' && value[n] != '\t'))
        return NULL;
    value += n;
    while (*value == ' ' || *value == '\t')
        value++;
    return value;
}

/* enh_prefix - length of a leading "x.y.z" enhanced status code (then a space or end), or 0 */
static size_t enh_prefix(const char *p)
{
    size_t i = 0, parts = 0;

    if (p[0] != '2' && p[0] != '4' && p[0] != '5')
        return 0;
    for (;;) {
        size_t d = strspn(p + i, "0123456789");

        if (d == 0 || d > REPLY_DIGITS)
            return 0;
        i += d;
        parts++;
        if (parts == REPLY_DIGITS)
            break;
        if (p[i] != '.')
            return 0;
        i++;
    }
    if (p[i] != 0 && p[i] != ' ' && p[i] != '\t')
        return 0;
    return i <= ENH_MAX ? i : 0;
}

/* access_parse - what an access-table value says */
void access_parse(const char *value, const struct restr_classes *classes,
                  struct access_result *r)
{
    static const struct {
        const char *word;
        enum access_kind kind;
    } words[] = {
        {"OK", AK_OK}, {"PERMIT", AK_OK}, {"DUNNO", AK_DUNNO},
        {"REJECT", AK_REJECT}, {"DEFER", AK_DEFER},
        {"DEFER_IF_PERMIT", AK_DEFER_IF_PERMIT}, {"DEFER_IF_REJECT", AK_DEFER_IF_REJECT},
        {"WARN", AK_WARN}, {"HOLD", AK_HOLD}, {"DISCARD", AK_DISCARD},
        {"FILTER", AK_FILTER}, {"REDIRECT", AK_REDIRECT}, {"PREPEND", AK_PREPEND},
        {"BCC", AK_BCC}, {"INFO", AK_INFO},
    };
    const char *rest;
    long ci;
    int op;

    memset(r, 0, sizeof(*r));
    r->text = "";
    while (*value == ' ' || *value == '\t')
        value++;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if ((rest = word_is(value, words[i].word)) != NULL) {
            r->kind = words[i].kind;
            r->text = rest;
            return;
        }
    }
    /* "NNN text" / "NNN x.y.z text": 4xx defers, 5xx rejects (2xx etc. are bad) */
    if (isdigit((unsigned char)value[0]) && isdigit((unsigned char)value[1])
        && isdigit((unsigned char)value[2]) && (value[3] == ' ' || value[3] == '\t' || !value[3])
        && (value[0] == '4' || value[0] == '5')) {
        size_t e;

        r->kind = value[0] == '4' ? AK_DEFER : AK_REJECT;
        r->numeric = true;
        r->code = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
        rest = value + REPLY_DIGITS;
        while (*rest == ' ' || *rest == '\t')
            rest++;
        e = enh_prefix(rest);
        if (e > 0 && rest[0] == value[0]) {
            memcpy(r->enh, rest, e);
            r->enh[e] = 0;
            rest += e;
            while (*rest == ' ' || *rest == '\t')
                rest++;
        }
        r->text = rest;
        return;
    }
    /* a restriction name without argument, or a class */
    {
        char name[64];
        size_t len = strcspn(value, " \t");

        if (len > 0 && len < sizeof(name)) {
            memcpy(name, value, len);
            name[len] = 0;
            op = restr_lookup_name(name);
            if (op >= 0 && restr_argkind((enum restr_op)op) == RA_NONE && value[len] == 0) {
                r->kind = AK_RESTRICTION;
                r->op = op;
                return;
            }
            ci = class_index(classes, name);
            if (ci >= 0 && value[len] == 0) {
                r->kind = AK_RESTRICTION;
                r->op = R_CLASS;
                r->class_idx = (size_t)ci;
                return;
            }
        }
    }
    r->kind = AK_BAD;
}

/* keys_alloc - one block for count keys of at most each bytes */
static char *keys_alloc(size_t count, size_t each)
{
    return xreallocarray(NULL, count, each + 1);
}

/* add_domain_keys - domain, then its parents ("parent" or ".parent") */
static size_t add_domain_keys(const char *domain, bool parents, char **pp,
                              const char *keys[RESTR_KEYS_MAX], size_t n)
{
    char *p = *pp;
    const char *d = domain;

    if (*d == 0)
        return n;
    keys[n++] = p;
    p += snprintf(p, strlen(d) + 1, "%s", d) + 1;
    while (n < RESTR_KEYS_MAX && (d = strchr(d + 1, '.')) != NULL && d[1] != 0) {
        const char *k = parents ? d + 1 : d;

        keys[n++] = p;
        p += snprintf(p, strlen(k) + 1, "%s", k) + 1;
    }
    *pp = p;
    return n;
}

/* restr_domain_keys - a domain (HELO name) and its parent domains */
size_t restr_domain_keys(const char *domain, bool parents, char **store,
                         const char *keys[RESTR_KEYS_MAX])
{
    size_t len = strlen(domain) + 1;
    char *p = keys_alloc(RESTR_KEYS_MAX, len + 1);

    *store = p;
    return add_domain_keys(domain, parents, &p, keys, 0);
}

/* restr_addr_keys - user@domain, domain and parents, user@ */
size_t restr_addr_keys(const char *addr, bool parents, char **store,
                       const char *keys[RESTR_KEYS_MAX])
{
    size_t len = strlen(addr) + 2;
    char *p = keys_alloc(RESTR_KEYS_MAX + 2, len);
    const char *at = strrchr(addr, '@');
    size_t n = 0;

    *store = p;
    keys[n++] = p;
    p += snprintf(p, len, "%s", addr) + 1;
    if (at == NULL)
        return n;
    n = add_domain_keys(at + 1, parents, &p, keys, n);
    if (n < RESTR_KEYS_MAX) {
        keys[n++] = p;
        p += snprintf(p, len, "%.*s@", (int)(at - addr), addr) + 1;
    }
    return n;
}

/* restr_client_keys - name and parents, then the address and its networks */
size_t restr_client_keys(const char *name, const char *addr, bool parents, char **store,
                         const char *keys[RESTR_KEYS_MAX])
{
    size_t len = strlen(name) + strlen(addr) + 2;
    char *p = keys_alloc(RESTR_KEYS_MAX, len);
    size_t n = 0;
    char sep = strchr(addr, ':') ? ':' : '.';

    *store = p;
    if (strcmp(name, "unknown") != 0)
        n = add_domain_keys(name, parents, &p, keys, n);
    if (*addr == 0 || n >= RESTR_KEYS_MAX)
        return n;
    /* the address, then shorter prefixes at each separator */
    keys[n++] = p;
    p += snprintf(p, len, "%s", addr) + 1;
    for (size_t l = strlen(addr); l > 0 && n < RESTR_KEYS_MAX;) {
        while (l > 0 && addr[l - 1] != sep)
            l--;
        if (l <= 1)
            break;
        l--;                /* drop the separator */
        while (l > 0 && addr[l - 1] == sep)
            l--;            /* IPv6 "::" */
        if (l == 0)
            break;
        keys[n++] = p;
        p += snprintf(p, len, "%.*s", (int)l, addr) + 1;
    }
    return n;
}

/* is_address - a bare IPv4/IPv6 address */
static bool is_address(const char *name)
{
    int family;
    uint8_t a[16];

    return cidr_addr_parse(name, &family, a);
}

/* restr_valid_hostname - host name syntax, or an [address] literal */
bool restr_valid_hostname(const char *name)
{
    size_t len = strlen(name), label = 0;
    bool alpha = false;

    if (len == 0 || len > HOSTNAME_MAX)
        return false;
    if (name[0] == '[' && name[len - 1] == ']') {
        char lit[HOSTNAME_MAX + 1];
        const char *a = name + 1;

        if (strncasecmp(a, "ipv6:", 5) == 0)
            a += 5;
        snprintf(lit, sizeof(lit), "%.*s", (int)(name + len - 1 - a), a);
        return is_address(lit);
    }
    if (is_address(name))
        return true;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];

        if (c == '.') {
            if (label == 0)
                return false;       /* empty label: leading dot, "..", "." */
            if (name[i - 1] == '-')
                return false;       /* (a trailing dot after a label is fine) */
            label = 0;
            continue;
        }
        if (!(isalnum(c) || c == '-' || c == '_'))
            return false;
        if (c == '-' && label == 0)
            return false;
        if (++label > LABEL_MAX)
            return false;
        if (!isdigit(c))
            alpha = true;
    }
    if (name[len - 1] == '-')
        return false;
    return alpha;   /* all-numeric is an address attempt, not a name */
}

/* restr_fqdn - fully qualified: valid name with a dot inside, or an address literal */
bool restr_fqdn(const char *name)
{
    size_t len = strlen(name);
    const char *dot;

    if (len > 0 && name[0] == '[')
        return restr_valid_hostname(name);
    if (!restr_valid_hostname(name) || is_address(name))
        return false;
    dot = strchr(name, '.');
    return dot != NULL && dot != name + len - 1;
}

/* open_table - restr_open_fn: a table for a check_*_access restriction */
static struct dict *open_table(void *ctx, const char *spec, char **err)
{
    (void)ctx;
    return dict_open(spec, 0, err);
}

/* parse_text - parse one parameter's value; false + *err "param: why" */
static bool parse_text(const char *param, const char *text, const struct restr_classes *classes,
                       bool open_tables, struct restr_list *out, char **err)
{
    size_t n;
    char **words = cfg_split_list(text, &n);
    char *why = NULL;
    bool ok = restr_parse_list(words, n, param, classes, open_tables ? open_table : NULL, NULL,
                               out, &why);

    if (!ok) {
        *err = xasprintf("%s: %s", param, why);
        free(why);
    }
    cfg_list_free(words, n);
    return ok;
}

/* can_refuse_relay - does a list hold a restriction that can stop relaying? */
static bool can_refuse_relay(const struct restr_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        enum restr_op op = l->v[i].op;

        if (op == R_REJECT_UNAUTH_DEST || op == R_DEFER_UNAUTH_DEST || op == R_REJECT
            || op == R_DEFER || op == R_DEFER_IF_PERMIT || op == R_CLASS)
            return true;
    }
    return false;
}

/* load_classes - smtpd_restriction_classes: each name is a parameter holding a list */
static bool load_classes(struct cfg *cfg, bool open_tables, struct restr_classes *c, char **err)
{
    size_t n;
    char **names = cfg_list(cfg, "smtpd_restriction_classes", &n);

    c->names = names;
    c->n = 0;
    c->lists = xcalloc(n ? n : 1, sizeof(*c->lists));
    for (size_t i = 0; i < n; i++) {
        if (restr_lookup_name(names[i]) >= 0) {
            *err = xasprintf("smtpd_restriction_classes: \"%s\" is the name of a restriction",
                             names[i]);
            c->n = n;
            return false;
        }
    }
    c->n = n;   /* every name is known before any list is parsed (classes may nest) */
    for (size_t i = 0; i < n; i++) {
        const char *raw = cfg_raw(cfg, names[i], NULL, NULL);
        char *text;
        bool ok;

        if (raw == NULL) {
            *err = xasprintf("smtpd_restriction_classes: restriction class \"%s\" has no "
                             "definition", names[i]);
            return false;
        }
        text = cfg_expand(cfg, raw);
        ok = parse_text(names[i], text, c, open_tables, &c->lists[i], err);
        free(text);
        if (!ok)
            return false;
    }
    return true;
}

/* check_policy_args - the check_policy_service arguments of a list parse; false + *err */
static bool check_policy_args(const struct restr_list *l, const struct pol_spec *defaults,
                              char **err)
{
    for (size_t i = 0; i < l->n; i++) {
        struct pol_spec spec;
        char *why = NULL;

        if (l->v[i].op != R_CHECK_POLICY)
            continue;
        if (!pol_spec_parse(l->v[i].arg, defaults, &spec, &why)) {
            *err = xasprintf("%s: check_policy_service: %s", l->param, why);
            free(why);
            return false;
        }
        pol_spec_free(&spec);
    }
    return true;
}

/* restr_config_load - every list of cfg; false + *err */
bool restr_config_load(struct cfg *cfg, bool open_tables, struct restr_config *out, char **err)
{
    const struct {
        const char *param;
        struct restr_list *list;
    } lists[] = {
        {"smtpd_client_restrictions", &out->client},
        {"smtpd_helo_restrictions", &out->helo},
        {"smtpd_sender_restrictions", &out->sender},
        {"smtpd_relay_restrictions", &out->relay},
        {"smtpd_recipient_restrictions", &out->rcpt},
        {"smtpd_data_restrictions", &out->data},
        {"smtpd_end_of_data_restrictions", &out->eod},
    };

    memset(out, 0, sizeof(*out));
    *err = NULL;
    if (!load_classes(cfg, open_tables, &out->classes, err))
        goto fail;
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        if (!parse_text(lists[i].param, cfg_str(cfg, lists[i].param), &out->classes,
                        open_tables, lists[i].list, err))
            goto fail;
    {
        struct pol_spec defaults;
        bool ok = true;

        pol_spec_defaults(cfg, &defaults);
        for (size_t i = 0; ok && i < sizeof(lists) / sizeof(lists[0]); i++)
            ok = check_policy_args(lists[i].list, &defaults, err);
        for (size_t i = 0; ok && i < out->classes.n; i++)
            ok = check_policy_args(&out->classes.lists[i], &defaults, err);
        pol_spec_free(&defaults);
        if (!ok)
            goto fail;
    }
    if (!can_refuse_relay(&out->relay) && !can_refuse_relay(&out->rcpt)) {
        *err = xasprintf("in parameters smtpd_relay_restrictions or "
                         "smtpd_recipient_restrictions, specify at least one working instance "
                         "of: reject_unauth_destination, defer_unauth_destination, reject, "
                         "defer, defer_if_permit");
        goto fail;
    }
    return true;
fail:
    restr_config_free(out);
    return false;
}

/* restr_config_lists - every smtpd_*_restrictions list of rc */
size_t restr_config_lists(struct restr_config *rc, struct restr_list *out[RESTR_LISTS])
{
    struct restr_list *lists[RESTR_LISTS] = {&rc->client, &rc->helo, &rc->sender, &rc->relay,
                                             &rc->rcpt,   &rc->data, &rc->eod};

    memcpy(out, lists, sizeof(lists));
    return RESTR_LISTS;
}

/* restr_config_free - release every list and class */
void restr_config_free(struct restr_config *rc)
{
    struct restr_list *lists[RESTR_LISTS];
    size_t nlists = restr_config_lists(rc, lists);

    for (size_t i = 0; i < nlists; i++)
        if (lists[i]->param != NULL)
            restr_list_free(lists[i]);
    for (size_t i = 0; i < rc->classes.n; i++)
        if (rc->classes.lists[i].param != NULL)
            restr_list_free(&rc->classes.lists[i]);
    if (rc->classes.names != NULL)
        cfg_list_free(rc->classes.names, rc->classes.n);
    free(rc->classes.lists);
    memset(rc, 0, sizeof(*rc));
}
