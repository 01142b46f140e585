/*
 * dict_multi.c - tables made of tables: unionmap:{...} and pipemap:{...}
 *
 *   unionmap:{type:name, type:name, ...}  every table is asked; the values
 *                                         found are joined with commas
 *   pipemap:{type:name, type:name, ...}   the key goes to the first table,
 *                                         its value is the next table's key,
 *                                         the last table's value is the answer
 *
 * Items are separated by commas or white space; an item may itself hold
 * braces (inline:{a=b}, regexp:{{/x/ y}}). Each component is a table of
 * its own: it folds keys as its type does and reopens itself when its
 * file changes. Also here: dict_next_item(), the brace-aware splitter of
 * such lists, shared with the inline forms of regexp: and pcre:.
 *
 * DIAGNOSTICS: a component that cannot be opened makes the whole open
 * fail, naming the component. A temporary failure of any component is a
 * temporary failure of the whole lookup.
 * SECURITY: no recursion limit is needed beyond the spec's own nesting,
 * which comes from the configuration, not from the network.
 */
#include "util/sys.h"

#include <string.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/dict.h"
#include "util/dict_impl.h"
#include "util/log.h"

struct dict_multi {
    struct dict **part;
    size_t count;
    struct buf acc;       /* the union's joined values, the pipe's next key */
};

/* is_sep - separators between list items */
static bool is_sep(char c)
{
    return c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* trim_both - drop leading and trailing white space in place */
static char *trim_both(char *s)
{
    size_t n;

    s += strspn(s, " \t\r\n");
    n = strlen(s);
    while (n > 0 && strchr(" \t\r\n", s[n - 1]) != NULL)
        s[--n] = 0;
    return s;
}

/* dict_next_item - the next list item, braces around it removed */
char *dict_next_item(char **pp, bool *bad)
{
    char *p = *pp, *start;
    int depth = 0;

    while (*p && is_sep(*p))
        p++;
    if (*p == 0)
        return NULL;
    start = p;
    if (*start == '{') {
        for (; *p; p++) {
            if (*p == '{')
                depth++;
            else if (*p == '}' && --depth == 0)
                break;
        }
        if (*p != '}' || (p[1] != 0 && !is_sep(p[1]))) {
            *bad = true;
            return NULL;
        }
        *p++ = 0;
        *pp = p;
        return trim_both(start + 1);
    }
    for (; *p; p++) {
        if (*p == '{')
            depth++;
        else if (*p == '}' && --depth < 0)
            break;
        else if (depth == 0 && is_sep(*p))
            break;
    }
    if (depth != 0) {
        *bad = true;
        return NULL;
    }
    if (*p)
        *p++ = 0;
    *pp = p;
    return start;
}

/* multi_close - close every component */
static void multi_close(struct dict *d)
{
    struct dict_multi *m = d->priv;

    if (m == NULL)
        return;
    for (size_t i = 0; i < m->count; i++)
        dict_close(m->part[i]);
    free(m->part);
    buf_free(&m->acc);
    free(m);
    d->priv = NULL;
}

/* union_lookup - ask every table, join what is found */
static enum dict_result union_lookup(struct dict *d, const char *key, const char **value)
{
    struct dict_multi *m = d->priv;
    bool found = false;

    buf_reset(&m->acc);
    for (size_t i = 0; i < m->count; i++) {
        const char *v;
        enum dict_result r = dict_lookup(m->part[i], key, &v);
        if (r == DICT_TEMPFAIL)
            return DICT_TEMPFAIL;
        if (r != DICT_FOUND)
            continue;
        if ((found && buf_putc(&m->acc, ',') < 0) || buf_puts(&m->acc, v) < 0) {
            msg_warn("%s: value too large", d->spec);
            return DICT_TEMPFAIL;
        }
        found = true;
    }
    if (!found)
        return DICT_NOTFOUND;
    return dict_set_value(d, buf_str(&m->acc), m->acc.len, value);
}

/* pipe_lookup - each table's value is the next one's key */
static enum dict_result pipe_lookup(struct dict *d, const char *key, const char **value)
{
    struct dict_multi *m = d->priv;
    const char *v = NULL;

    if (buf_set(&m->acc, key) < 0)
        return DICT_NOTFOUND;
    for (size_t i = 0; i < m->count; i++) {
        enum dict_result r = dict_lookup(m->part[i], buf_str(&m->acc), &v);
        if (r != DICT_FOUND)
            return r;
        if (buf_set(&m->acc, v) < 0) {
            msg_warn("%s: value too large", d->spec);
            return DICT_TEMPFAIL;
        }
    }
    return dict_set_value(d, buf_str(&m->acc), m->acc.len, value);
}

/* multi_open - open every component of "{type:name, ...}" */
static bool multi_open(struct dict *d, char **err)
{
    size_t n = strlen(d->name);
    bool bad = false;
    char *item;

    if (n < 2 || d->name[0] != '{' || d->name[n - 1] != '}') {
        *err = xasprintf("%s: expecting \"%s:{type:name, ...}\"", d->spec, d->type);
        return false;
    }
    char *copy = xstrndup(d->name + 1, n - 2);
    char *p = copy;
    struct dict_multi *m = xcalloc(1, sizeof(*m));
    buf_init(&m->acc, 0);
    d->priv = m;
    d->close = multi_close;
    while ((item = dict_next_item(&p, &bad)) != NULL) {
        char *sub_err = NULL;
        struct dict *sub = dict_open(item, d->open_flags, &sub_err);
        if (sub == NULL) {
            *err = xasprintf("%s: %s", d->spec, sub_err);
            free(sub_err);
            break;
        }
        m->part = xreallocarray(m->part, m->count + 1, sizeof(*m->part));
        m->part[m->count++] = sub;
    }
    if (bad && *err == NULL)
        *err = xasprintf("%s: unbalanced '{' or '}'", d->spec);
    if (*err == NULL && m->count == 0)
        *err = xasprintf("%s: no tables listed", d->spec);
    free(copy);
    if (*err != NULL)
        return false;
    /* The components fold keys as their own types do. */
    d->flags |= DICT_FLAG_FIXED_CASE;
    return true;
}

/* dict_unionmap_open - unionmap:{type:name, ...} */
bool dict_unionmap_open(struct dict *d, char **err)
{
    d->lookup = union_lookup;
    return multi_open(d, err);
}

/* dict_pipemap_open - pipemap:{type:name, ...} */
bool dict_pipemap_open(struct dict *d, char **err)
{
    d->lookup = pipe_lookup;
    return multi_open(d, err);
}
