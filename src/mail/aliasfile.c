/*
 * aliasfile.c - parse aliases(5)/.forward right-hand sides and commands
 *
 * The text is first cut into elements at commas and new lines outside
 * double quotes ('#' at the start of a line comments out the line), then
 * each element is classified (see aliasfile.h). Everything is copied out
 * of the input; nothing is executed or opened here.
 *
 * DIAGNOSTICS: false/NULL with a malloc'ed explanation naming the
 * problem (unbalanced quote or bracket, empty command, too many items).
 * SECURITY: parses text written by users (.forward); bounded by
 * ALIASFILE_TEXT_MAX, ALIASFILE_ITEMS_MAX and ALIASFILE_ARGS_MAX.
 */
#include "util/sys.h"

#include <string.h>
#include <strings.h>

#include "mail/aliasfile.h"
#include "util/alloc.h"
#include "util/buf.h"

#define INCLUDE_PREFIX ":include:"
#define INCLUDE_PREFIX_LEN (sizeof(INCLUDE_PREFIX) - 1)

/* is_blank - space or tab */
static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* add_item - append one destination; false when there are too many */
static bool add_item(struct alias_list *l, enum alias_type type, const char *p, size_t n,
                     char **err)
{
    if (l->n >= ALIASFILE_ITEMS_MAX) {
        *err = xasprintf("more than %d destinations", ALIASFILE_ITEMS_MAX);
        return false;
    }
    l->items = xreallocarray(l->items, l->n + 1, sizeof(*l->items));
    l->items[l->n].type = type;
    l->items[l->n].value = xstrndup(p, n);
    l->n++;
    return true;
}

/* trim - drop leading and trailing blanks of [*p, *p + *n) */
static void trim(const char **p, size_t *n)
{
    while (*n > 0 && is_blank(**p)) {
        (*p)++;
        (*n)--;
    }
    while (*n > 0 && is_blank((*p)[*n - 1]))
        (*n)--;
}

/* classify - one destination text (already unquoted) into an item */
static bool classify(struct alias_list *l, const char *p, size_t n, char **err)
{
    trim(&p, &n);
    if (n == 0) {
        *err = xstrdup("empty destination");
        return false;
    }
    if (memchr(p, '\0', n)) {
        *err = xstrdup("NUL byte in destination");
        return false;
    }
    if (p[0] == '|') {
        p++;
        n--;
        trim(&p, &n);
        if (n == 0) {
            *err = xstrdup("empty command after \"|\"");
            return false;
        }
        return add_item(l, ALIAS_COMMAND, p, n, err);
    }
    if (n >= INCLUDE_PREFIX_LEN && strncasecmp(p, INCLUDE_PREFIX, INCLUDE_PREFIX_LEN) == 0) {
        p += INCLUDE_PREFIX_LEN;
        n -= INCLUDE_PREFIX_LEN;
        trim(&p, &n);
        if (n == 0) {
            *err = xstrdup("empty file name after \":include:\"");
            return false;
        }
        return add_item(l, ALIAS_INCLUDE, p, n, err);
    }
    if (p[0] == '/')
        return add_item(l, ALIAS_FILE, p, n, err);
    if (p[0] == '\\') {
        p++;
        n--;
        if (n == 0) {
            *err = xstrdup("empty address after \"\\\"");
            return false;
        }
        return add_item(l, ALIAS_NOALIAS, p, n, err);
    }
    return add_item(l, ALIAS_ADDR, p, n, err);
}

/* quoted_end - index of the closing quote of p[start] == '"', or n */
static size_t quoted_end(const char *p, size_t n, size_t start)
{
    for (size_t i = start + 1; i < n; i++) {
        if (p[i] == '\\' && i + 1 < n)
            i++;
        else if (p[i] == '"')
            return i;
    }
    return n;
}

/* unquote - the text between quotes with backslash escapes removed */
static void unquote(const char *p, size_t n, struct buf *out)
{
    buf_reset(out);
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\\' && i + 1 < n)
            i++;
        buf_putc(out, p[i]);
    }
}

/* element_words - unquoted addresses separated by white space */
static bool element_words(struct alias_list *l, const char *p, size_t n, char **err)
{
    size_t i = 0;

    while (i < n) {
        size_t start;

        while (i < n && is_blank(p[i]))
            i++;
        if (i >= n)
            break;
        start = i;
        while (i < n && !is_blank(p[i])) {
            if (p[i] == '"') {
                i = quoted_end(p, n, i);
                if (i >= n) {
                    *err = xstrdup("missing closing '\"'");
                    return false;
                }
            }
            i++;
        }
        if (!classify(l, p + start, i - start, err))
            return false;
    }
    return true;
}

/* element - classify one comma- or line-separated element */
static bool element(struct alias_list *l, const char *p, size_t n, struct buf *tmp,
                    char **err)
{
    const char *lt;

    trim(&p, &n);
    if (n == 0)
        return true;
    if (p[0] == '"') {
        size_t end = quoted_end(p, n, 0);

        if (end >= n) {
            *err = xstrdup("missing closing '\"'");
            return false;
        }
        if (end == n - 1) {
            /* Wholly quoted: "|cmd, with commas", "/file name", "user". */
            unquote(p + 1, end - 1, tmp);
            return classify(l, tmp->data ? tmp->data : "", tmp->len, err);
        }
        if (memchr(p + end, '<', n - end) == NULL)
            return element_words(l, p, n, err);
        /* "Quoted Name" <addr>: fall through to the bracket form. */
        p += end;
        n -= end;
    }
    else if (p[0] == '|' || p[0] == '/'
        || (n >= INCLUDE_PREFIX_LEN && strncasecmp(p, INCLUDE_PREFIX, INCLUDE_PREFIX_LEN) == 0))
        return classify(l, p, n, err);
    lt = memchr(p, '<', n);
    if (lt) {
        /* "Name <addr>": the phrase is ignored. */
        const char *gt = memchr(lt, '>', n - (size_t)(lt - p));

        if (gt == NULL) {
            *err = xstrdup("missing closing '>'");
            return false;
        }
        return classify(l, lt + 1, (size_t)(gt - lt - 1), err);
    }
    return element_words(l, p, n, err);
}

/* aliasfile_parse - parse a right-hand side into destinations */
bool aliasfile_parse(const char *text, size_t len, struct alias_list *out, char **err)
{
    struct buf tmp = BUF_INIT;
    size_t i = 0;
    bool line_start = true, ok = true;

    *err = NULL;
    if (len > ALIASFILE_TEXT_MAX) {
        *err = xasprintf("text longer than %d bytes", ALIASFILE_TEXT_MAX);
        return false;
    }
    while (i < len && ok) {
        size_t start;

        while (i < len && is_blank(text[i]))
            i++;
        if (i >= len)
            break;
        if (text[i] == '\n' || text[i] == ',') {
            line_start = text[i] == '\n';
            i++;
            continue;
        }
        if (line_start && text[i] == '#') {
            while (i < len && text[i] != '\n')
                i++;
            continue;
        }
        start = i;
        while (i < len && text[i] != ',' && text[i] != '\n') {
            if (text[i] == '"') {
                size_t end = quoted_end(text, len, i);

                if (end >= len) {
                    *err = xstrdup("missing closing '\"'");
                    ok = false;
                    break;
                }
                i = end;
            }
            i++;
        }
        if (ok)
            ok = element(out, text + start, i - start, &tmp, err);
        line_start = false;
    }
    buf_free(&tmp);
    return ok;
}

/* alias_list_free - release the items */
void alias_list_free(struct alias_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i].value);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

/* alias_type_name - printable type */
const char *alias_type_name(enum alias_type t)
{
    switch (t) {
    case ALIAS_ADDR:
        return "address";
    case ALIAS_NOALIAS:
        return "noalias";
    case ALIAS_FILE:
        return "file";
    case ALIAS_COMMAND:
        return "command";
    case ALIAS_INCLUDE:
        return "include";
    }
    return "?";
}

/* argv_push - append one finished argument */
static bool argv_push(char ***argv, size_t *argc, struct buf *arg, char **err)
{
    if (*argc >= ALIASFILE_ARGS_MAX) {
        *err = xasprintf("more than %d arguments", ALIASFILE_ARGS_MAX);
        return false;
    }
    *argv = xreallocarray(*argv, *argc + 2, sizeof(**argv));
    (*argv)[(*argc)++] = xstrndup(arg->data ? arg->data : "", arg->len);
    (*argv)[*argc] = NULL;
    buf_reset(arg);
    return true;
}

/* aliasfile_argv - split a command into arguments, without a shell */
char **aliasfile_argv(const char *cmd, size_t *argcp, char **err)
{
    struct buf arg = BUF_INIT;
    char **argv = NULL;
    size_t argc = 0;
    bool in_arg = false;
    const char *p = cmd;

    *err = NULL;
    if (strlen(cmd) > ALIASFILE_TEXT_MAX) {
        *err = xstrdup("command too long");
        return NULL;
    }
    for (; *p; p++) {
        char c = *p;

        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            if (in_arg && !argv_push(&argv, &argc, &arg, err))
                goto bad;
            in_arg = false;
            continue;
        }
        in_arg = true;
        if (c == '\'') {
            const char *q = strchr(p + 1, '\'');

            if (q == NULL) {
                *err = xstrdup("missing closing \"'\" in command");
                goto bad;
            }
            buf_append(&arg, p + 1, (size_t)(q - p - 1));
            p = q;
        } else if (c == '"') {
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && (p[1] == '"' || p[1] == '\\' || p[1] == '$' || p[1] == '`'))
                    p++;
                buf_putc(&arg, *p);
            }
            if (*p != '"') {
                *err = xstrdup("missing closing '\"' in command");
                goto bad;
            }
        } else if (c == '\\') {
            if (p[1] == 0) {
                *err = xstrdup("backslash at the end of the command");
                goto bad;
            }
            buf_putc(&arg, *++p);
        } else {
            buf_putc(&arg, c);
        }
    }
    if (in_arg && !argv_push(&argv, &argc, &arg, err))
        goto bad;
    if (argc == 0) {
        *err = xstrdup("empty command");
        goto bad;
    }
    buf_free(&arg);
    if (argcp)
        *argcp = argc;
    return argv;
bad:
    buf_free(&arg);
    aliasfile_argv_free(argv);
    return NULL;
}

/* aliasfile_argv_free - release an argument vector */
void aliasfile_argv_free(char **argv)
{
    if (argv == NULL)
        return;
    for (char **a = argv; *a; a++)
        free(*a);
    free(argv);
}
