/*
 * config.c - main.cf: Postfix-syntax parameters with lazy $expansion
 *
 * main.cf is read into one entry per parameter name (last setting wins, as
 * in Postfix). Values are kept raw; reading a parameter expands it against
 * (in order) the -o overrides, main.cf and the settings table defaults, and
 * caches the result. An override invalidates every cached value (a
 * generation counter); strings already handed to callers stay valid until
 * cfg_free.
 *
 * At load (and after each override) every parameter that main.cf or an
 * override sets, and every parameter of the table, is expanded once: this
 * finds $loops, bad $ syntax and typed values that do not parse, so that
 * later reads cannot fail. A few parameters are expanded by their user at
 * delivery time ($home, $user, ...) and are returned raw: see cfg_is_raw.
 *
 * Machine-dependent defaults: myhostname (the system host name, made fully
 * qualified through the resolver or by appending ".localdomain"), mydomain
 * (myhostname minus its first label) and config_directory (the directory
 * this cfg was loaded from).
 *
 * As in Debian's Postfix, "myorigin = /etc/mailname" (an absolute path)
 * means the first line of that file; when the file cannot be read (or its
 * first line is empty) a warning says so and $myhostname is used.
 *
 * DIAGNOSTICS
 *	cfg_load: fatal "FILE, line N: ..." for syntax errors and bad values;
 *	a warning for each unknown parameter and each undefined $name.
 *	cfg_load_string returns the same text in *err instead.
 *	Reading a name that is not in the settings table is a panic.
 *
 * SECURITY
 *	main.cf is trusted input, but it is parsed with hard limits on file
 *	size, value length and $nesting so that a broken file cannot exhaust
 *	memory or the stack (it is also fuzzed).
 */
#include "util/sys.h"

#include <ctype.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <sys/stat.h>

#include "mail/config.h"
#include "mail/params.h"
#include "posta_paths.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"

#define CFG_FILE_MAX ((size_t)16 << 20)   /* main.cf larger than this: fatal */
#define CFG_VALUE_MAX ((size_t)1 << 20)   /* longest value, raw or expanded */
#define CFG_NEST_MAX 100                  /* $name nesting (as Postfix) */
#define CFG_HASH_MIN 512                  /* initial hash slots (power of 2) */
#define CFG_HOST_MAX 256                  /* gethostname buffer */
#define CFG_LIST_SEP ", \t\r\n"
#define CFG_DEFAULT_DOMAIN "localdomain"
/* A parameter whose absolute-path value means "the file's first line". */
#define CFG_FILE_VALUED "myorigin"
#define CFG_NAME_FILE_MAX ((size_t)4096)  /* longest such file read */

/* Parameters whose value is expanded by their user, with extra $names. */
static const char *const cfg_raw_params[] = {
    "forward_path",
    "luser_relay",
    "mailbox_command",
    "smtpd_reject_footer",
};

struct cfg_ent {
    char *name;
    const struct param_def *def; /* NULL: not in the settings table */
    char *file_val;              /* main.cf value, or NULL */
    int line;                    /* main.cf line of file_val */
    char *ovr;                   /* override value, or NULL */
    char *ovr_where;             /* where the override came from */
    char *cache;                 /* expanded value */
    unsigned cache_gen;          /* cache valid while == cfg->gen */
    bool exported;               /* cache was handed to a caller */
    bool busy;                   /* being expanded (loop detection) */
    bool raw;                    /* returned unexpanded (cfg_raw_params) */
    char *computed;              /* machine-dependent default text */
    char *named_file;            /* CFG_FILE_VALUED: the file last read */
    char *named_line;            /* ... and its first line (read once) */
};

struct cfg {
    char *dir;                   /* configuration directory, or NULL */
    char *origin;                /* main.cf path or the load_string origin */
    struct cfg_ent **slot;       /* open-addressing hash table */
    size_t nslot;
    size_t nent;
    struct cfg_ent **order;      /* entries set by main.cf/-o, in order */
    size_t norder;
    unsigned gen;
    char **grave;                /* superseded values still handed out */
    size_t ngrave;
    char **warned;               /* undefined names already warned about */
    size_t nwarned;
};

/* cfg_hash - FNV-1a of a name */
static size_t cfg_hash(const char *s)
{
    size_t h = 14695981039346656037ULL & SIZE_MAX;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL & SIZE_MAX;
    }
    return h;
}

/* cfg_lookup - the entry for name, or NULL */
static struct cfg_ent *cfg_lookup(const struct cfg *cfg, const char *name)
{
    size_t i = cfg_hash(name) & (cfg->nslot - 1);

    while (cfg->slot[i]) {
        if (strcmp(cfg->slot[i]->name, name) == 0)
            return cfg->slot[i];
        i = (i + 1) & (cfg->nslot - 1);
    }
    return NULL;
}

/* cfg_insert_slot - place an entry in the table (no duplicate check) */
static void cfg_insert_slot(struct cfg *cfg, struct cfg_ent *e)
{
    size_t i = cfg_hash(e->name) & (cfg->nslot - 1);

    while (cfg->slot[i])
        i = (i + 1) & (cfg->nslot - 1);
    cfg->slot[i] = e;
}

/* cfg_is_raw_name - is name expanded by its user rather than by cfg_str? */
static bool cfg_is_raw_name(const char *name)
{
    size_t i;

    for (i = 0; i < POSTA_ARRAY_LEN(cfg_raw_params); i++)
        if (strcmp(cfg_raw_params[i], name) == 0)
            return true;
    return false;
}

/* cfg_enter - the entry for name, created if needed */
static struct cfg_ent *cfg_enter(struct cfg *cfg, const char *name)
{
    struct cfg_ent *e;
    struct cfg_ent **old;
    size_t i, oldn;

    if ((e = cfg_lookup(cfg, name)) != NULL)
        return e;
    if ((cfg->nent + 1) * 2 > cfg->nslot) {
        old = cfg->slot;
        oldn = cfg->nslot;
        cfg->nslot *= 2;
        cfg->slot = xcalloc(cfg->nslot, sizeof(*cfg->slot));
        for (i = 0; i < oldn; i++)
            if (old[i])
                cfg_insert_slot(cfg, old[i]);
        free(old);
    }
    e = xcalloc(1, sizeof(*e));
    e->name = xstrdup(name);
    e->def = param_find(name);
    e->raw = cfg_is_raw_name(name);
    e->line = 0;
    cfg_insert_slot(cfg, e);
    cfg->nent++;
    return e;
}

/* cfg_note_order - remember that e was set explicitly (once) */
static void cfg_note_order(struct cfg *cfg, struct cfg_ent *e)
{
    if (e->file_val || e->ovr)
        return;
    cfg->order = xreallocarray(cfg->order, cfg->norder + 1, sizeof(*cfg->order));
    cfg->order[cfg->norder++] = e;
}

/* cfg_new - an empty configuration with an entry per table parameter */
static struct cfg *cfg_new(const char *dir, const char *origin)
{
    struct cfg *cfg = xcalloc(1, sizeof(*cfg));
    size_t i;

    cfg->dir = dir ? xstrdup(dir) : NULL;
    cfg->origin = xstrdup(origin);
    cfg->nslot = CFG_HASH_MIN;
    while (cfg->nslot < param_count * 2)
        cfg->nslot *= 2;
    cfg->slot = xcalloc(cfg->nslot, sizeof(*cfg->slot));
    cfg->gen = 1;
    for (i = 0; i < param_count; i++)
        cfg_enter(cfg, param_table[i].name);
    return cfg;
}

/* cfg_bury - drop a cached value; keep it alive if a caller may hold it */
static void cfg_bury(struct cfg *cfg, struct cfg_ent *e)
{
    if (e->cache == NULL)
        return;
    if (e->exported) {
        cfg->grave = xreallocarray(cfg->grave, cfg->ngrave + 1, sizeof(*cfg->grave));
        cfg->grave[cfg->ngrave++] = e->cache;
    } else {
        free(e->cache);
    }
    e->cache = NULL;
    e->exported = false;
}

/* cfg_free - release everything, including values handed out */
void cfg_free(struct cfg *cfg)
{
    size_t i;

    if (cfg == NULL)
        return;
    for (i = 0; i < cfg->nslot; i++) {
        struct cfg_ent *e = cfg->slot[i];

        if (e == NULL)
            continue;
        free(e->name);
        free(e->file_val);
        free(e->ovr);
        free(e->ovr_where);
        free(e->cache);
        free(e->computed);
        free(e->named_file);
        free(e->named_line);
        free(e);
    }
    for (i = 0; i < cfg->ngrave; i++)
        free(cfg->grave[i]);
    for (i = 0; i < cfg->nwarned; i++)
        free(cfg->warned[i]);
    free(cfg->grave);
    free(cfg->warned);
    free(cfg->slot);
    free(cfg->order);
    free(cfg->dir);
    free(cfg->origin);
    free(cfg);
}

/* ---- machine-dependent defaults --------------------------------------- */

/* cfg_system_fqdn - the host's name, fully qualified (computed once) */
static const char *cfg_system_fqdn(void)
{
    static char *fqdn;
    char host[CFG_HOST_MAX];
    struct addrinfo hints, *res = NULL;

    if (fqdn)
        return fqdn;
    if (gethostname(host, sizeof(host)) != 0 || host[0] == 0) {
        msg_warn("gethostname: %m; using localhost");
        snprintf(host, sizeof(host), "localhost");
    }
    host[sizeof(host) - 1] = 0;
    if (strchr(host, '.') == NULL) {
        memset(&hints, 0, sizeof(hints));
        hints.ai_flags = AI_CANONNAME;
        hints.ai_family = AF_UNSPEC;
        if (getaddrinfo(host, NULL, &hints, &res) == 0 && res && res->ai_canonname
            && strchr(res->ai_canonname, '.') != NULL)
            fqdn = xstrdup(res->ai_canonname);
        if (res)
            freeaddrinfo(res);
    }
    if (fqdn == NULL)
        fqdn = strchr(host, '.') ? xstrdup(host)
                                 : xasprintf("%s.%s", host, CFG_DEFAULT_DOMAIN);
    return fqdn;
}

/* cfg_domain_of - hostname minus its first label, or "localdomain" */
static char *cfg_domain_of(const char *hostname)
{
    const char *dot = strchr(hostname, '.');

    if (dot == NULL || dot[1] == 0)
        return xstrdup(CFG_DEFAULT_DOMAIN);
    return xstrdup(dot + 1);
}

/* ---- expansion --------------------------------------------------------- */

struct cfg_exp {
    struct cfg *cfg;
    char *err;            /* first error (why only; caller adds location) */
};

static const char *cfg_ent_value(struct cfg_exp *x, struct cfg_ent *e, int depth);
static bool cfg_expand_into(struct cfg_exp *x, const char *text, size_t len,
                            struct buf *out, int depth);

/* cfg_exp_fail - record the first expansion error */
static bool cfg_exp_fail(struct cfg_exp *x, char *why)
{
    if (x->err == NULL)
        x->err = why;
    else
        free(why);
    return false;
}

/* cfg_name_char - may c appear in a parameter name? */
static bool cfg_name_char(int c)
{
    return isalnum(c) || c == '_';
}

/* cfg_warn_undefined - warn once per cfg about an undefined $name */
static void cfg_warn_undefined(struct cfg *cfg, const char *name)
{
    size_t i;

    for (i = 0; i < cfg->nwarned; i++)
        if (strcmp(cfg->warned[i], name) == 0)
            return;
    cfg->warned = xreallocarray(cfg->warned, cfg->nwarned + 1, sizeof(*cfg->warned));
    cfg->warned[cfg->nwarned++] = xstrdup(name);
    msg_warn("%s: undefined parameter: %s", cfg->origin, name);
}

/* cfg_ref_value - expanded value of $name; NULL if undefined or on error */
static const char *cfg_ref_value(struct cfg_exp *x, const char *name, int depth,
                                 bool *defined)
{
    struct cfg_ent *e = cfg_lookup(x->cfg, name);

    *defined = e && (e->def || e->file_val || e->ovr);
    if (!*defined)
        return NULL;
    return cfg_ent_value(x, e, depth);
}

/* cfg_append - append, failing cleanly past CFG_VALUE_MAX */
static bool cfg_append(struct cfg_exp *x, struct buf *out, const char *p, size_t n)
{
    if (buf_append(out, p, n) < 0)
        return cfg_exp_fail(x, xasprintf("expanded value is longer than %zu bytes",
                                         (size_t)CFG_VALUE_MAX));
    return true;
}

/* cfg_group_text - the text of "{...}" at *p (without braces), advancing *p */
static bool cfg_group_text(const char **p, const char *end, const char **text,
                           size_t *len)
{
    const char *s = *p;
    int depth = 0;

    if (s >= end || *s != '{')
        return false;
    for (; s < end; s++) {
        if (*s == '{')
            depth++;
        else if (*s == '}' && --depth == 0) {
            *text = *p + 1;
            *len = (size_t)(s - *p - 1);
            *p = s + 1;
            return true;
        }
    }
    return false;
}

/*
 * cfg_expand_cond - the operator part of ${name?...} or ${name:...}:
 * body is the text after the operator, up to the closing delimiter.
 * Forms: "text", "{text}", and "{text1}:{text2}" after '?'.
 */
static bool cfg_expand_cond(struct cfg_exp *x, const char *name, int op,
                            const char *body, size_t blen, struct buf *out, int depth)
{
    const char *p = body, *end = body + blen;
    const char *t1 = body, *t2 = NULL;
    size_t l1 = blen, l2 = 0;
    const char *val;
    bool defined, nonempty;

    /* Postfix 3 forms with {} around the texts */
    if (p < end && *p == '{') {
        const char *q = p;

        if (cfg_group_text(&q, end, &t1, &l1)) {
            while (q < end && isspace((unsigned char)*q))
                q++;
            if (q == end) {
                /* ${name?{text}} */
            } else if (op == '?' && *q == ':') {
                q++;
                while (q < end && isspace((unsigned char)*q))
                    q++;
                if (!cfg_group_text(&q, end, &t2, &l2))
                    return cfg_exp_fail(x, xasprintf("bad ${%s?{...}:{...}} syntax", name));
                while (q < end && isspace((unsigned char)*q))
                    q++;
                if (q != end)
                    return cfg_exp_fail(x, xasprintf("text after ${%s?{...}:{...}}", name));
            } else {
                t1 = body;   /* plain text that happens to start with '{' */
                l1 = blen;
            }
        }
    }
    val = cfg_ref_value(x, name, depth, &defined);
    if (x->err)
        return false;
    nonempty = defined && val && *val;
    if (op == '?') {
        if (nonempty)
            return cfg_expand_into(x, t1, l1, out, depth + 1);
        if (t2)
            return cfg_expand_into(x, t2, l2, out, depth + 1);
        return true;
    }
    /* op == ':' */
    if (!nonempty)
        return cfg_expand_into(x, t1, l1, out, depth + 1);
    return true;
}

/* cfg_expand_ref - one $reference at *pp (just past the '$'), advancing */
static bool cfg_expand_ref(struct cfg_exp *x, const char **pp, const char *end,
                           struct buf *out, int depth)
{
    const char *p = *pp;
    const char *name_start, *body;
    char *name;
    int open, close, nest;
    bool ok, defined;
    const char *val;

    if (p < end && *p == '$') {           /* $$ */
        *pp = p + 1;
        return cfg_append(x, out, "$", 1);
    }
    if (p < end && (*p == '{' || *p == '(')) {
        open = *p;
        close = open == '{' ? '}' : ')';
        name_start = ++p;
        while (p < end && cfg_name_char((unsigned char)*p))
            p++;
        if (p == name_start)
            return cfg_exp_fail(x, xasprintf("empty or bad parameter name after \"$%c\"", open));
        name = xstrndup(name_start, (size_t)(p - name_start));
        if (p < end && *p == close) {
            *pp = p + 1;
            val = cfg_ref_value(x, name, depth, &defined);
            if (!defined && !x->err)
                cfg_warn_undefined(x->cfg, name);
            ok = x->err == NULL && (val == NULL || cfg_append(x, out, val, strlen(val)));
            free(name);
            return ok;
        }
        if (p >= end) {
            ok = cfg_exp_fail(x, xasprintf("missing '%c' after \"$%c%s\"", close, open, name));
            free(name);
            return ok;
        }
        if (*p != '?' && *p != ':') {
            ok = cfg_exp_fail(x, xasprintf("bad character after \"$%c%s\"", open, name));
            free(name);
            return ok;
        }
        /* find the matching close delimiter */
        body = p + 1;
        nest = 1;
        for (p = body; p < end; p++) {
            if (*p == open)
                nest++;
            else if (*p == close && --nest == 0)
                break;
        }
        if (p >= end) {
            ok = cfg_exp_fail(x, xasprintf("missing '%c' after \"$%c%s\"", close, open, name));
            free(name);
            return ok;
        }
        *pp = p + 1;
        ok = cfg_expand_cond(x, name, body[-1], body, (size_t)(p - body), out, depth);
        free(name);
        return ok;
    }
    name_start = p;
    while (p < end && cfg_name_char((unsigned char)*p))
        p++;
    if (p == name_start)
        return cfg_exp_fail(x, xstrdup("empty parameter name after \"$\" (use $$ for a literal $)"));
    name = xstrndup(name_start, (size_t)(p - name_start));
    *pp = p;
    val = cfg_ref_value(x, name, depth, &defined);
    if (!defined && !x->err)
        cfg_warn_undefined(x->cfg, name);
    ok = x->err == NULL && (val == NULL || cfg_append(x, out, val, strlen(val)));
    free(name);
    return ok;
}

/* cfg_expand_into - expand text[0..len) onto out */
static bool cfg_expand_into(struct cfg_exp *x, const char *text, size_t len,
                            struct buf *out, int depth)
{
    const char *p = text, *end = text + len, *dollar;

    if (depth > CFG_NEST_MAX)
        return cfg_exp_fail(x, xasprintf("$expansion nested more than %d deep",
                                         CFG_NEST_MAX));
    while (p < end) {
        dollar = memchr(p, '$', (size_t)(end - p));
        if (dollar == NULL)
            return cfg_append(x, out, p, (size_t)(end - p));
        if (!cfg_append(x, out, p, (size_t)(dollar - p)))
            return false;
        p = dollar + 1;
        if (!cfg_expand_ref(x, &p, end, out, depth))
            return false;
    }
    return true;
}

/* cfg_ent_rawtext - current unexpanded text: override, main.cf or default */
static const char *cfg_ent_rawtext(struct cfg_exp *x, struct cfg_ent *e, int depth)
{
    struct cfg *cfg = x->cfg;

    if (e->ovr)
        return e->ovr;
    if (e->file_val)
        return e->file_val;
    if (e->def == NULL)
        return "";
    if (strcmp(e->name, "myhostname") == 0)
        return cfg_system_fqdn();
    if (strcmp(e->name, "config_directory") == 0 && cfg->dir)
        return cfg->dir;
    if (strcmp(e->name, "mydomain") == 0) {
        struct cfg_ent *h = cfg_lookup(cfg, "myhostname");
        const char *host = h ? cfg_ent_value(x, h, depth + 1) : NULL;

        free(e->computed);
        e->computed = cfg_domain_of(host ? host : cfg_system_fqdn());
        return e->computed;
    }
    return e->def->def;
}

static char *cfg_trim(char *s);

/*
 * cfg_file_first_line - Debian's "myorigin = /etc/mailname": the first line
 * of the file named by an absolute path, trimmed; NULL (after one warning
 * per path) when it cannot be read or is empty: the caller then uses
 * $myhostname. The file is read once per path: a daemon re-expands its
 * settings after chroot, where the file is out of reach.
 */
static char *cfg_file_first_line(struct cfg_ent *e, const char *path)
{
    struct buf text;
    char *why = NULL;
    char *line = NULL;

    if (e->named_file && strcmp(e->named_file, path) == 0)
        return e->named_line ? xstrdup(e->named_line) : NULL;

    buf_init(&text, CFG_NAME_FILE_MAX);
    if (!cfg_read_file(path, CFG_NAME_FILE_MAX, &text, &why)) {
        msg_warn("%s = %s: %s; using $myhostname", e->name, path, why);
        free(why);
    } else {
        const char *s = buf_str(&text);
        size_t n = strcspn(s, "\r\n");

        line = xstrndup(s, n);
        (void)cfg_trim(line);
        if (*line == 0) {
            msg_warn("%s = %s: the first line is empty; using $myhostname", e->name, path);
            free(line);
            line = NULL;
        }
    }
    buf_free(&text);
    free(e->named_file);
    free(e->named_line);
    e->named_file = xstrdup(path);
    e->named_line = line ? xstrdup(line) : NULL;
    return line;
}

/* cfg_ent_value - the expanded (cached) value of e; NULL + x->err on error */
static const char *cfg_ent_value(struct cfg_exp *x, struct cfg_ent *e, int depth)
{
    struct cfg *cfg = x->cfg;
    struct buf b;
    const char *raw;

    if (e->cache && e->cache_gen == cfg->gen)
        return e->cache;
    if (e->busy) {
        cfg_exp_fail(x, xasprintf("$%s refers to itself (expansion loop)", e->name));
        return NULL;
    }
    if (depth > CFG_NEST_MAX) {
        cfg_exp_fail(x, xasprintf("$expansion nested more than %d deep", CFG_NEST_MAX));
        return NULL;
    }
    e->busy = true;
    raw = cfg_ent_rawtext(x, e, depth);
    buf_init(&b, CFG_VALUE_MAX);
    if (x->err == NULL) {
        if (e->raw)
            cfg_append(x, &b, raw, strlen(raw));
        else
            cfg_expand_into(x, raw, strlen(raw), &b, depth + 1);
    }
    e->busy = false;
    if (x->err == NULL && strcmp(e->name, CFG_FILE_VALUED) == 0 && buf_str(&b)[0] == '/') {
        char *line = cfg_file_first_line(e, buf_str(&b));
        static const char fallback[] = "$myhostname";

        buf_reset(&b);
        if (line) {
            cfg_append(x, &b, line, strlen(line));
            free(line);
        } else {
            cfg_expand_into(x, fallback, sizeof(fallback) - 1, &b, depth + 1);
        }
    }
    if (x->err) {
        buf_free(&b);
        return NULL;
    }
    cfg_bury(cfg, e);
    e->cache = buf_steal(&b);
    e->cache_gen = cfg->gen;
    return e->cache;
}

/* ---- validation -------------------------------------------------------- */

/* cfg_where - where e's current value comes from, for messages */
static char *cfg_where(const struct cfg *cfg, const struct cfg_ent *e)
{
    if (e->ovr)
        return xstrdup(e->ovr_where ? e->ovr_where : "-o override");
    if (e->file_val)
        return xasprintf("%s, line %d", cfg->origin, e->line);
    return xasprintf("%s: default", cfg->origin);
}

/* cfg_check_ent - expand e and check its type; false + *err on error */
static bool cfg_check_ent(struct cfg *cfg, struct cfg_ent *e, char **err)
{
    struct cfg_exp x = {cfg, NULL};
    const char *val, *why;
    char *where;

    val = cfg_ent_value(&x, e, 0);
    if (val == NULL) {
        where = cfg_where(cfg, e);
        *err = xasprintf("%s: bad value for parameter %s: %s", where, e->name, x.err);
        free(where);
        free(x.err);
        return false;
    }
    if (e->def && !e->raw && !param_check(e->def, val, &why)) {
        where = cfg_where(cfg, e);
        *err = xasprintf("%s: bad value for parameter %s: %s", where, e->name, why);
        free(where);
        return false;
    }
    return true;
}

/* cfg_validate - check all explicit settings, then all table defaults */
static bool cfg_validate(struct cfg *cfg, char **err)
{
    size_t i;
    struct cfg_ent *e;

    for (i = 0; i < cfg->norder; i++)
        if (!cfg_check_ent(cfg, cfg->order[i], err))
            return false;
    for (i = 0; i < param_count; i++) {
        e = cfg_lookup(cfg, param_table[i].name);
        if (e && !e->file_val && !e->ovr && !cfg_check_ent(cfg, e, err))
            return false;
    }
    return true;
}

/* ---- main.cf parsing --------------------------------------------------- */

/* cfg_valid_param_name - a parameter name: letters, digits, underscore */
bool cfg_valid_param_name(const char *name)
{
    if (*name == 0)
        return false;
    for (; *name; name++)
        if (!cfg_name_char((unsigned char)*name))
            return false;
    return true;
}

/* cfg_trim - strip white space at both ends, in place */
static char *cfg_trim(char *s)
{
    char *end;

    while (isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = 0;
    return s;
}

/* cfg_set_line - one logical line "name = value" (a cfg_line_fn); false + *err */
static bool cfg_set_line(void *ctx, char *text, int line, char **err)
{
    struct cfg *cfg = ctx;
    char *eq = strchr(text, '=');
    char *name, *value;
    struct cfg_ent *e;

    if (eq == NULL) {
        *err = xasprintf("%s, line %d: missing '=' after parameter name: \"%.80s\"",
                         cfg->origin, line, text);
        return false;
    }
    *eq = 0;
    name = cfg_trim(text);
    value = cfg_trim(eq + 1);
    if (!cfg_valid_param_name(name)) {
        *err = xasprintf("%s, line %d: bad parameter name: \"%.80s\"",
                         cfg->origin, line, name);
        return false;
    }
    if (param_find(name) == NULL)
        msg_warn("%s, line %d: unknown parameter %s (ignored)", cfg->origin, line, name);
    e = cfg_enter(cfg, name);
    cfg_note_order(cfg, e);
    free(e->file_val);
    e->file_val = xstrdup(value);
    e->line = line;
    return true;
}

/* cfg_logical_lines - split text into logical lines, fn on each; false + *err */
bool cfg_logical_lines(const char *text, size_t len, const char *origin, size_t max,
                       cfg_line_fn *fn, void *ctx, char **err)
{
    const char *p = text, *end = text + len, *nl, *q;
    struct buf logical;
    int lineno = 0, start_line = 0;
    size_t n;
    bool ok = true;

    if (memchr(text, 0, len) != NULL) {
        *err = xasprintf("%s: file contains a NUL character", origin);
        return false;
    }
    buf_init(&logical, max);
    while (ok && p < end) {
        nl = memchr(p, '\n', (size_t)(end - p));
        n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        lineno++;
        if (n > 0 && p[n - 1] == '\r')
            n--;
        for (q = p; q < p + n && isspace((unsigned char)*q); q++)
            ;
        if (q == p + n || *q == '#') {
            /* blank or comment line: does not end a logical line */
        } else if (q != p) {
            if (start_line == 0) {
                msg_warn("%s, line %d: logical line must not start with white space "
                         "(ignored)", origin, lineno);
            } else if (buf_putc(&logical, ' ') < 0
                       || buf_append(&logical, q, (size_t)(p + n - q)) < 0) {
                *err = xasprintf("%s, line %d: logical line is too long", origin, start_line);
                ok = false;
            }
        } else {
            if (start_line)
                ok = fn(ctx, logical.data, start_line, err);
            buf_reset(&logical);
            start_line = lineno;
            if (ok && buf_append(&logical, p, n) < 0) {
                *err = xasprintf("%s, line %d: line is too long", origin, lineno);
                ok = false;
            }
        }
        p = nl ? nl + 1 : end;
    }
    if (ok && start_line)
        ok = fn(ctx, logical.data, start_line, err);
    buf_free(&logical);
    return ok;
}

/* cfg_build - parse and validate; the cfg or NULL + *err */
static struct cfg *cfg_build(const char *dir, const char *origin, const char *text,
                             size_t len, char **err)
{
    struct cfg *cfg = cfg_new(dir, origin);

    *err = NULL;
    if (!cfg_logical_lines(text, len, cfg->origin, CFG_VALUE_MAX, cfg_set_line, cfg, err)
        || !cfg_validate(cfg, err)) {
        cfg_free(cfg);
        return NULL;
    }
    return cfg;
}

/* cfg_read_file - whole file (at most max bytes) into memory; false + *err */
bool cfg_read_file(const char *path, size_t max, struct buf *out, char **err)
{
    char chunk[8192];
    ssize_t n;
    int fd;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        *err = xasprintf("open %s: %m", path);
        return false;
    }
    buf_init(out, max);
    for (;;) {
        n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *err = xasprintf("read %s: %m", path);
            break;
        }
        if (n == 0) {
            close(fd);
            return true;
        }
        if (buf_append(out, chunk, (size_t)n) < 0) {
            *err = xasprintf("%s: file is larger than %zu bytes", path, max);
            break;
        }
    }
    close(fd);
    buf_free(out);
    return false;
}

/* ---- public interface -------------------------------------------------- */

/* cfg_default_dir - -c argument, else $MAIL_CONFIG, else compiled default */
const char *cfg_default_dir(const char *cli_dir)
{
    const char *env;

    if (cli_dir && *cli_dir)
        return cli_dir;
    if ((env = getenv("MAIL_CONFIG")) != NULL && *env)
        return env;
    return POSTA_CONFIG_DIR;
}

/* cfg_load - read DIR/main.cf; fatal on any error */
struct cfg *cfg_load(const char *config_dir)
{
    struct buf text;
    struct cfg *cfg;
    char *path, *err = NULL;

    path = xasprintf("%s/main.cf", config_dir);
    if (!cfg_read_file(path, CFG_FILE_MAX, &text, &err))
        msg_fatal("%s", err);
    cfg = cfg_build(config_dir, path, buf_str(&text), text.len, &err);
    buf_free(&text);
    free(path);
    if (cfg == NULL)
        msg_fatal("%s", err);
    return cfg;
}

/* cfg_load_string - same, from text; NULL + *err on error */
struct cfg *cfg_load_string(const char *text, size_t len, const char *origin, char **err)
{
    char *dummy = NULL;
    struct cfg *cfg;

    cfg = cfg_build(NULL, origin ? origin : "main.cf", text, len, err ? err : &dummy);
    free(dummy);
    return cfg;
}

/* cfg_try_override - set an override and re-validate; roll back on error */
bool cfg_try_override(struct cfg *cfg, const char *where, const char *name,
                      const char *value, char **err)
{
    struct cfg_ent *e;
    char *old_val, *old_where;
    bool was_set;
    char *why = NULL;

    if (!cfg_valid_param_name(name)) {
        *err = xasprintf("%s: bad parameter name: \"%.80s\"", where, name);
        return false;
    }
    if (strlen(value) > CFG_VALUE_MAX) {
        *err = xasprintf("%s: value of %s is too long", where, name);
        return false;
    }
    if (param_find(name) == NULL)
        msg_warn("%s: unknown parameter %s (ignored)", where, name);
    e = cfg_enter(cfg, name);
    was_set = e->file_val || e->ovr;
    cfg_note_order(cfg, e);
    old_val = e->ovr;
    old_where = e->ovr_where;
    e->ovr = xstrdup(value);
    e->ovr_where = xstrdup(where);
    cfg->gen++;
    if (cfg_validate(cfg, &why)) {
        free(old_val);
        free(old_where);
        return true;
    }
    free(e->ovr);
    free(e->ovr_where);
    e->ovr = old_val;
    e->ovr_where = old_where;
    if (!was_set)
        cfg->norder--;    /* e was appended last by cfg_note_order */
    cfg->gen++;
    *err = why;
    return false;
}

/* cfg_override_at - a -o override; fatal (naming where) on a bad value */
void cfg_override_at(struct cfg *cfg, const char *where, const char *name,
                     const char *value)
{
    char *err = NULL;

    if (!cfg_try_override(cfg, where, name, value, &err))
        msg_fatal("%s", err);
}

/* cfg_override - a -o name=value from master.cf or the command line */
void cfg_override(struct cfg *cfg, const char *name, const char *value)
{
    char *where = xasprintf("-o %s=%s", name, value);

    cfg_override_at(cfg, where, name, value);
    free(where);
}

/* cfg_override_arg - parse "name=value"; false if malformed */
bool cfg_override_arg(struct cfg *cfg, const char *arg)
{
    const char *eq = strchr(arg, '=');
    char *name, *trimmed;
    char *value;

    if (eq == NULL || eq == arg)
        return false;
    name = xstrndup(arg, (size_t)(eq - arg));
    trimmed = cfg_trim(name);
    if (!cfg_valid_param_name(trimmed)) {
        free(name);
        return false;
    }
    value = xstrdup(eq + 1);
    cfg_override(cfg, trimmed, cfg_trim(value));
    free(value);
    free(name);
    return true;
}

/* cfg_known - the entry for a table parameter; panic for other names */
static struct cfg_ent *cfg_known(struct cfg *cfg, const char *name, const char *who)
{
    struct cfg_ent *e = cfg_lookup(cfg, name);

    if (e == NULL || e->def == NULL)
        msg_panic("%s: parameter %s is not in the settings table", who, name);
    return e;
}

/* cfg_value - expanded value of e for a public reader (fatal on error) */
static const char *cfg_value(struct cfg *cfg, struct cfg_ent *e)
{
    struct cfg_exp x = {cfg, NULL};
    const char *val = cfg_ent_value(&x, e, 0);
    char *where;

    if (val == NULL) {
        where = cfg_where(cfg, e);
        msg_fatal("%s: bad value for parameter %s: %s", where, e->name, x.err);
    }
    e->exported = true;
    return val;
}

/* cfg_typed - expanded value of a table parameter of the given type */
static const char *cfg_typed(struct cfg *cfg, const char *name, enum param_type type,
                             const char *who, const struct param_def **def)
{
    struct cfg_ent *e = cfg_known(cfg, name, who);

    if (e->def->type != type)
        msg_panic("%s: parameter %s has a different type", who, name);
    *def = e->def;
    return cfg_value(cfg, e);
}

/* cfg_str - expanded value of a table parameter */
const char *cfg_str(struct cfg *cfg, const char *name)
{
    return cfg_value(cfg, cfg_known(cfg, name, "cfg_str"));
}

/* cfg_int - an integer parameter */
long long cfg_int(struct cfg *cfg, const char *name)
{
    const struct param_def *def;
    const char *val = cfg_typed(cfg, name, PARAM_INT, "cfg_int", &def);
    const char *why = "not an integer";
    long long n;

    if (!param_check(def, val, &why) || !param_parse_int(val, &n))
        msg_fatal("bad value for parameter %s: %s", name, why);
    return n;
}

/* cfg_bool - a yes/no parameter */
bool cfg_bool(struct cfg *cfg, const char *name)
{
    const struct param_def *def;
    const char *val = cfg_typed(cfg, name, PARAM_BOOL, "cfg_bool", &def);
    bool b;

    if (!param_parse_bool(val, &b))
        msg_fatal("bad value for parameter %s: \"%s\" is not yes or no", name, val);
    return b;
}

/* cfg_time - a time parameter in seconds */
long long cfg_time(struct cfg *cfg, const char *name)
{
    const struct param_def *def;
    const char *val = cfg_typed(cfg, name, PARAM_TIME, "cfg_time", &def);
    const char *why = "not a time";
    long long secs;

    if (!param_check(def, val, &why) || !param_parse_time(val, def->unit, &secs))
        msg_fatal("bad value for parameter %s: %s", name, why);
    return secs;
}

/* cfg_is_sep - a list separator */
static bool cfg_is_sep(int c)
{
    return c != 0 && strchr(CFG_LIST_SEP, c) != NULL;
}

/* cfg_group_token - copy of one element; strips the braces of a whole "{ ... }" */
char *cfg_group_token(const char *start, size_t len)
{
    const char *s = start, *e = start + len;
    int depth = 0;
    const char *p;

    if (len >= 2 && *s == '{' && e[-1] == '}') {
        for (p = s; p < e; p++) {
            if (*p == '{')
                depth++;
            else if (*p == '}' && --depth == 0)
                break;
        }
        if (p == e - 1) {
            s++;
            e--;
            while (s < e && isspace((unsigned char)*s))
                s++;
            while (e > s && isspace((unsigned char)e[-1]))
                e--;
        }
    }
    return xstrndup(s, (size_t)(e - s));
}

/* cfg_split_list - split on commas/white space, keeping {...} groups */
char **cfg_split_list(const char *text, size_t *count)
{
    char **list = xcalloc(1, sizeof(*list));
    size_t n = 0;
    const char *p = text, *start;
    int depth;

    while (*p) {
        while (cfg_is_sep((unsigned char)*p))
            p++;
        if (*p == 0)
            break;
        start = p;
        depth = 0;
        for (; *p && (depth > 0 || !cfg_is_sep((unsigned char)*p)); p++) {
            if (*p == '{')
                depth++;
            else if (*p == '}' && depth > 0)
                depth--;
        }
        list = xreallocarray(list, n + 2, sizeof(*list));
        list[n++] = cfg_group_token(start, (size_t)(p - start));
        list[n] = NULL;
    }
    *count = n;
    return list;
}

/* cfg_list - a list parameter, split */
char **cfg_list(struct cfg *cfg, const char *name, size_t *count)
{
    return cfg_split_list(cfg_str(cfg, name), count);
}

/* cfg_list_free - free what cfg_list or cfg_split_list returned */
void cfg_list_free(char **list, size_t count)
{
    size_t i;

    if (list == NULL)
        return;
    for (i = 0; i < count; i++)
        free(list[i]);
    free(list);
}

/* cfg_raw - unexpanded value and where it came from (NULL file: default) */
const char *cfg_raw(struct cfg *cfg, const char *name, const char **file, int *line)
{
    struct cfg_ent *e = cfg_lookup(cfg, name);
    struct cfg_exp x = {cfg, NULL};
    const char *raw;

    if (file)
        *file = NULL;
    if (line)
        *line = 0;
    if (e == NULL || (!e->def && !e->file_val && !e->ovr))
        return NULL;
    if (e->ovr) {
        if (file)
            *file = e->ovr_where;
    } else if (e->file_val) {
        if (file)
            *file = cfg->origin;
        if (line)
            *line = e->line;
    }
    raw = cfg_ent_rawtext(&x, e, 0);
    if (x.err) {
        msg_warn("%s: %s", name, x.err);
        free(x.err);
        return "";
    }
    return raw;
}

/* cfg_is_set - explicitly set in main.cf or by an override */
bool cfg_is_set(struct cfg *cfg, const char *name)
{
    struct cfg_ent *e = cfg_lookup(cfg, name);

    return e && (e->file_val || e->ovr);
}

/* cfg_is_raw - is name returned unexpanded (expanded later by its user)? */
bool cfg_is_raw(const char *name)
{
    return cfg_is_raw_name(name);
}

/* cfg_set_name - the i-th name set in main.cf or by -o, NULL past the end */
const char *cfg_set_name(const struct cfg *cfg, size_t i)
{
    return i < cfg->norder ? cfg->order[i]->name : NULL;
}

/* cfg_default_text - a table parameter's default, machine values computed */
const char *cfg_default_text(struct cfg *cfg, const char *name)
{
    struct cfg_ent *e = cfg_lookup(cfg, name);

    if (e == NULL || e->def == NULL)
        return NULL;
    if (strcmp(name, "myhostname") == 0)
        return cfg_system_fqdn();
    if (strcmp(name, "mydomain") == 0) {
        free(e->computed);
        e->computed = cfg_domain_of(cfg_system_fqdn());
        return e->computed;
    }
    if (strcmp(name, "config_directory") == 0 && cfg->dir)
        return cfg->dir;
    return e->def->def;
}

/* cfg_expand - expand $references in arbitrary text (caller frees) */
char *cfg_expand(struct cfg *cfg, const char *text)
{
    struct cfg_exp x = {cfg, NULL};
    struct buf b;

    buf_init(&b, CFG_VALUE_MAX);
    if (!cfg_expand_into(&x, text, strlen(text), &b, 0)) {
        msg_warn("cannot expand \"%.80s\": %s", text, x.err);
        free(x.err);
        buf_free(&b);
        return xstrdup(text);
    }
    return buf_steal(&b);
}

/* cfg_dir - the configuration directory this cfg was loaded from */
const char *cfg_dir(const struct cfg *cfg)
{
    return cfg->dir ? cfg->dir : POSTA_CONFIG_DIR;
}
