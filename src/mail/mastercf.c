/*
 * mastercf.c - master.cf: the services master runs
 *
 * A logical line is a line that starts with a non-blank character plus the
 * lines after it that start with white space; blank lines and lines whose
 * first non-blank character is '#' are skipped (also inside a service's
 * continuation lines), as in Postfix. A logical line is split on white
 * space; "{ ... }" groups one field that may hold white space (the outer
 * braces and the space just inside them are removed, as Postfix 3 does).
 *
 * DIAGNOSTICS
 *	Every error is returned as "FILE, line N: why" (N is the first line of
 *	the service) and master treats it as fatal. A continuation line before
 *	the first service is a warning and is ignored, as Postfix does.
 *
 * SECURITY
 *	master.cf is trusted (root-owned), but parsing is bounded (file size,
 *	checked number conversions) and fuzzed.
 */
#include "util/sys.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>

#include "mail/config.h"
#include "mail/mastercf.h"
#include "util/alloc.h"
#include "util/buf.h"

#define MCF_FILE_MAX ((size_t)16 << 20)   /* master.cf larger than this: error */
#define MCF_LINE_MAX ((size_t)1 << 20)    /* longest logical line */
#define MCF_MIN_COLUMNS 8                 /* seven fields and a command */
#define MCF_WS " \t\r\n"

static const char *const mcf_types[] = {"inet", "unix", "unix-dgram", "fifo", "pass"};

/* A tokenized logical line. */
struct mcf_tokens {
    char **tok;
    size_t n;
};

/* mcf_tokens_free - release a token list */
static void mcf_tokens_free(struct mcf_tokens *t)
{
    size_t i;

    for (i = 0; i < t->n; i++)
        free(t->tok[i]);
    free(t->tok);
    t->tok = NULL;
    t->n = 0;
}

/* mcf_is_ws - a field separator */
static bool mcf_is_ws(int c)
{
    return c != 0 && strchr(MCF_WS, c) != NULL;
}

/* mcf_split - split on white space keeping {...} groups; false + *why */
static bool mcf_split(const char *text, struct mcf_tokens *t, const char **why)
{
    const char *p = text, *start;
    int depth;

    t->tok = NULL;
    t->n = 0;
    while (*p) {
        while (mcf_is_ws((unsigned char)*p))
            p++;
        if (*p == 0)
            break;
        start = p;
        depth = 0;
        for (; *p && (depth > 0 || !mcf_is_ws((unsigned char)*p)); p++) {
            if (*p == '{') {
                depth++;
            } else if (*p == '}') {
                if (depth == 0) {
                    *why = "'}' without '{'";
                    return false;
                }
                depth--;
            }
        }
        if (depth > 0) {
            *why = "missing '}'";
            return false;
        }
        t->tok = xreallocarray(t->tok, t->n + 1, sizeof(*t->tok));
        t->tok[t->n++] = cfg_group_token(start, (size_t)(p - start));
    }
    return true;
}

/* mcf_flag - a y/n/- field; false on anything else */
static bool mcf_flag(const char *text, bool def, bool *out)
{
    if (strcmp(text, "-") == 0)
        *out = def;
    else if (strcmp(text, "y") == 0)
        *out = true;
    else if (strcmp(text, "n") == 0)
        *out = false;
    else
        return false;
    return true;
}

/* mcf_number - a non-negative decimal that fits an int */
static bool mcf_number(const char *text, size_t len, int *out)
{
    long long v = 0;
    size_t i;

    if (len == 0)
        return false;
    for (i = 0; i < len; i++) {
        if (!isdigit((unsigned char)text[i]))
            return false;
        v = v * 10 + (text[i] - '0');
        if (v > INT_MAX)
            return false;
    }
    *out = (int)v;
    return true;
}

/* mcf_trim_dup - copy of [s, e) without surrounding white space */
static char *mcf_trim_dup(const char *s, const char *e)
{
    while (s < e && isspace((unsigned char)*s))
        s++;
    while (e > s && isspace((unsigned char)e[-1]))
        e--;
    return xstrndup(s, (size_t)(e - s));
}

/* mcf_svc_free - release one service */
static void mcf_svc_free(struct master_service *s)
{
    size_t i;

    free(s->name);
    free(s->type);
    free(s->command);
    for (i = 0; i < s->nargs; i++)
        free(s->args[i]);
    free(s->args);
    for (i = 0; i < s->nopts; i++) {
        free(s->opts[i].name);
        free(s->opts[i].value);
    }
    free(s->opts);
    free(s->file);
    for (i = 0; i < MASTER_NFIELDS; i++)
        free(s->fields[i]);
    memset(s, 0, sizeof(*s));
}

/* mcf_add_opt - record "-o name=value"; false + *why */
static bool mcf_add_opt(struct master_service *s, const char *arg, char **why)
{
    const char *eq = strchr(arg, '=');
    char *name;

    if (eq == NULL) {
        *why = xasprintf("-o \"%.80s\": expected name=value", arg);
        return false;
    }
    name = mcf_trim_dup(arg, eq);
    if (!cfg_valid_param_name(name)) {
        *why = xasprintf("-o \"%.80s\": bad parameter name", arg);
        free(name);
        return false;
    }
    s->opts = xreallocarray(s->opts, s->nopts + 1, sizeof(*s->opts));
    s->opts[s->nopts].name = name;
    s->opts[s->nopts].value = mcf_trim_dup(eq + 1, eq + strlen(eq));
    s->nopts++;
    return true;
}

/* mcf_service - build a service from a tokenized line; false + *why */
static bool mcf_service(struct mcf_tokens *t, struct master_service *s, char **why)
{
    char **f = t->tok;
    const char *w;
    size_t i, wl;
    bool type_ok = false;

    if (t->n < MCF_MIN_COLUMNS) {
        *why = xasprintf("expected at least %d fields (service, type, private, unpriv, "
                         "chroot, wakeup, maxproc, command), found %zu",
                         MCF_MIN_COLUMNS, t->n);
        return false;
    }
    for (i = 0; i < MASTER_NFIELDS; i++)
        s->fields[i] = xstrdup(f[i]);
    if (*f[MASTER_F_NAME] == 0) {
        *why = xstrdup("empty service name");
        return false;
    }
    s->name = xstrdup(f[MASTER_F_NAME]);
    for (i = 0; i < POSTA_ARRAY_LEN(mcf_types); i++)
        if (strcmp(f[MASTER_F_TYPE], mcf_types[i]) == 0)
            type_ok = true;
    if (!type_ok) {
        *why = xasprintf("bad type field \"%.40s\" (expected inet, unix, unix-dgram, "
                         "fifo or pass)", f[MASTER_F_TYPE]);
        return false;
    }
    s->type = xstrdup(f[MASTER_F_TYPE]);
    if (!mcf_flag(f[MASTER_F_PRIVATE], strcmp(s->type, "inet") != 0, &s->private_)) {
        *why = xasprintf("bad private field \"%.40s\" (expected y, n or -)",
                         f[MASTER_F_PRIVATE]);
        return false;
    }
    if (s->private_ && strcmp(s->type, "inet") == 0) {
        *why = xstrdup("an inet service cannot be private (use n or -)");
        return false;
    }
    if (!mcf_flag(f[MASTER_F_UNPRIV], true, &s->unpriv)) {
        *why = xasprintf("bad unpriv field \"%.40s\" (expected y, n or -)",
                         f[MASTER_F_UNPRIV]);
        return false;
    }
    if (!mcf_flag(f[MASTER_F_CHROOT], false, &s->chroot)) {
        *why = xasprintf("bad chroot field \"%.40s\" (expected y, n or -)",
                         f[MASTER_F_CHROOT]);
        return false;
    }
    w = f[MASTER_F_WAKEUP];
    wl = strlen(w);
    if (strcmp(w, "-") == 0) {
        s->wakeup = 0;
    } else {
        if (wl > 1 && w[wl - 1] == '?') {
            s->wakeup_if_used = true;
            wl--;
        }
        if (!mcf_number(w, wl, &s->wakeup)) {
            *why = xasprintf("bad wakeup field \"%.40s\" (expected seconds, seconds? or -)", w);
            return false;
        }
    }
    w = f[MASTER_F_MAXPROC];
    if (strcmp(w, "-") == 0) {
        s->maxproc = -1;
    } else if (!mcf_number(w, strlen(w), &s->maxproc)) {
        *why = xasprintf("bad maxproc field \"%.40s\" (expected a number or -)", w);
        return false;
    }
    if (*f[MASTER_NFIELDS] == 0) {
        *why = xstrdup("empty command name");
        return false;
    }
    s->command = xstrdup(f[MASTER_NFIELDS]);
    s->args = xcalloc(1, sizeof(*s->args));
    for (i = MASTER_NFIELDS + 1; i < t->n; i++) {
        if (strcmp(f[i], "-o") == 0) {
            if (i + 1 >= t->n) {
                *why = xstrdup("-o without name=value");
                return false;
            }
            if (!mcf_add_opt(s, f[++i], why))
                return false;
            continue;
        }
        s->args = xreallocarray(s->args, s->nargs + 2, sizeof(*s->args));
        s->args[s->nargs++] = xstrdup(f[i]);
        s->args[s->nargs] = NULL;
    }
    return true;
}

/* State of one master_cf_parse, for mcf_logical. */
struct mcf_parse {
    struct master_cf *out;
    const char *origin;
};

/* mcf_logical - handle one logical line (a cfg_line_fn); false + *err */
static bool mcf_logical(void *ctx, char *text, int line, char **err)
{
    struct master_cf *out = ((struct mcf_parse *)ctx)->out;
    const char *origin = ((struct mcf_parse *)ctx)->origin;
    struct mcf_tokens t;
    struct master_service s;
    const char *split_why = NULL;
    char *why = NULL;
    size_t i;

    if (!mcf_split(text, &t, &split_why)) {
        *err = xasprintf("%s, line %d: %s", origin, line, split_why);
        mcf_tokens_free(&t);
        return false;
    }
    memset(&s, 0, sizeof(s));
    if (!mcf_service(&t, &s, &why)) {
        *err = xasprintf("%s, line %d: %s", origin, line, why);
        free(why);
        mcf_tokens_free(&t);
        mcf_svc_free(&s);
        return false;
    }
    mcf_tokens_free(&t);
    for (i = 0; i < out->n; i++) {
        if (strcmp(out->svc[i].name, s.name) == 0 && strcmp(out->svc[i].type, s.type) == 0) {
            *err = xasprintf("%s, line %d: duplicate service %s/%s (first at line %d)",
                             origin, line, s.name, s.type, out->svc[i].line);
            mcf_svc_free(&s);
            return false;
        }
    }
    s.file = xstrdup(origin);
    s.line = line;
    out->svc = xreallocarray(out->svc, out->n + 1, sizeof(*out->svc));
    out->svc[out->n++] = s;
    return true;
}

/* master_cf_parse - parse master.cf text; false + *err */
bool master_cf_parse(const char *text, size_t len, const char *origin,
                     struct master_cf *out, char **err)
{
    struct mcf_parse st;

    out->svc = NULL;
    out->n = 0;
    *err = NULL;
    st.out = out;
    st.origin = origin ? origin : "master.cf";
    if (!cfg_logical_lines(text, len, st.origin, MCF_LINE_MAX, mcf_logical, &st, err)) {
        master_cf_free(out);
        return false;
    }
    return true;
}

/* master_cf_load - read and parse a master.cf file; false + *err */
bool master_cf_load(const char *path, struct master_cf *out, char **err)
{
    struct buf text;
    bool ok;

    out->svc = NULL;
    out->n = 0;
    if (!cfg_read_file(path, MCF_FILE_MAX, &text, err))
        return false;
    ok = master_cf_parse(buf_str(&text), text.len, path, out, err);
    buf_free(&text);
    return ok;
}

/* master_cf_free - release all services */
void master_cf_free(struct master_cf *m)
{
    size_t i;

    if (m == NULL)
        return;
    for (i = 0; i < m->n; i++)
        mcf_svc_free(&m->svc[i]);
    free(m->svc);
    m->svc = NULL;
    m->n = 0;
}

/*
 * Postfix programs that posta does not have: their work is done by posta's
 * own programs (smtpd and pickup clean up messages, qmgr writes bounces
 * and handles error:, and so on).
 */
static const char *const mcf_postfix_only[] = {
    "cleanup", "tlsmgr", "trivial-rewrite", "bounce", "verify", "flush",
    "proxymap", "showq", "error", "discard", "virtual", "anvil", "scache",
    "postlogd", "pipe", "spawn", "oqmgr", "postscreen", "dnsblog", "tlsproxy",
};

/* master_cf_postfix_only - a Postfix program that posta does not have? */
bool master_cf_postfix_only(const char *command)
{
    for (size_t i = 0; i < POSTA_ARRAY_LEN(mcf_postfix_only); i++)
        if (strcmp(command, mcf_postfix_only[i]) == 0)
            return true;
    return false;
}
