/*
 * dict_text.c - in-memory tables: texthash: files and inline:{...} specs
 *
 * texthash:/file reads a file in postmap's input format ("key value" per
 * logical line, '#' comments, continuation lines starting with white
 * space) into a hash table at open time. inline:{ key=value, { key = value
 * with spaces } } builds the same table from the spec itself.
 *
 * DIAGNOSTICS: a malformed line is skipped with a warning naming file and
 * line (as postmap does); a duplicate key keeps the first value, with a
 * warning. A malformed inline: spec is an open error.
 * SECURITY: the file size and logical line length are bounded
 * (DICT_FILE_MAX, DICT_LINE_MAX); lookups copy the value out.
 */
#include "util/sys.h"

#include <stdio.h>
#include <string.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/dict.h"
#include "util/dict_impl.h"
#include "util/log.h"

#define KVTAB_INITIAL 16      /* buckets in a fresh table (a power of two) */
#define FNV_OFFSET 2166136261u
#define FNV_PRIME 16777619u

struct kv_entry {
    char *key;
    char *value;
    struct kv_entry *next;
};

struct kvtab {
    struct kv_entry **bucket;
    size_t nbucket;           /* a power of two */
    size_t count;
    const char *origin;       /* for duplicate warnings */
};

/* kv_hash - FNV-1a over the key */
static uint32_t kv_hash(const char *s)
{
    uint32_t h = FNV_OFFSET;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= FNV_PRIME;
    }
    return h;
}

/* kvtab_new - an empty table */
static struct kvtab *kvtab_new(const char *origin)
{
    struct kvtab *t = xcalloc(1, sizeof(*t));

    t->nbucket = KVTAB_INITIAL;
    t->bucket = xcalloc(t->nbucket, sizeof(*t->bucket));
    t->origin = origin;
    return t;
}

/* kvtab_find - the entry for key, or NULL */
static struct kv_entry *kvtab_find(const struct kvtab *t, const char *key)
{
    struct kv_entry *e = t->bucket[kv_hash(key) & (t->nbucket - 1)];

    for (; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

/* kvtab_grow - double the buckets when the chains get long */
static void kvtab_grow(struct kvtab *t)
{
    size_t n = t->nbucket * 2;
    struct kv_entry **nb = xcalloc(n, sizeof(*nb));

    for (size_t i = 0; i < t->nbucket; i++) {
        struct kv_entry *e = t->bucket[i], *next;
        for (; e; e = next) {
            next = e->next;
            size_t j = kv_hash(e->key) & (n - 1);
            e->next = nb[j];
            nb[j] = e;
        }
    }
    free(t->bucket);
    t->bucket = nb;
    t->nbucket = n;
}

/* kvtab_add - insert key; a duplicate keeps the first value (postmap's rule) */
static void kvtab_add(struct kvtab *t, const char *key, const char *value, int lineno)
{
    if (kvtab_find(t, key) != NULL) {
        if (lineno > 0)
            msg_warn("%s, line %d: duplicate entry: \"%s\"", t->origin, lineno, key);
        else
            msg_warn("%s: duplicate entry: \"%s\"", t->origin, key);
        return;
    }
    if (t->count >= t->nbucket)
        kvtab_grow(t);
    struct kv_entry *e = xmalloc(sizeof(*e));
    e->key = xstrdup(key);
    e->value = xstrdup(value);
    size_t j = kv_hash(key) & (t->nbucket - 1);
    e->next = t->bucket[j];
    t->bucket[j] = e;
    t->count++;
}

/* kvtab_free - release the table and its strings */
static void kvtab_free(struct kvtab *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nbucket; i++) {
        struct kv_entry *e = t->bucket[i], *next;
        for (; e; e = next) {
            next = e->next;
            free(e->key);
            free(e->value);
            free(e);
        }
    }
    free(t->bucket);
    free(t);
}

/* kv_lookup - lookup method shared by texthash: and inline: */
static enum dict_result kv_lookup(struct dict *d, const char *key, const char **value)
{
    const struct kv_entry *e = kvtab_find(d->priv, key);

    if (e == NULL)
        return DICT_NOTFOUND;
    return dict_set_value(d, e->value, strlen(e->value), value);
}

/* kv_close - close method shared by texthash: and inline: */
static void kv_close(struct dict *d)
{
    kvtab_free(d->priv);
    d->priv = NULL;
}

struct text_ctx {
    struct dict *d;
    struct kvtab *t;
};

/* texthash_line - one "key value" logical line */
static void texthash_line(void *ctx, char *line, int lineno)
{
    struct text_ctx *c = ctx;
    char *key = line;
    char *p = key + strcspn(key, " \t");

    if (*p == 0) {
        msg_warn("%s, line %d: expected format: key whitespace value", c->d->name, lineno);
        return;
    }
    *p++ = 0;
    p += strspn(p, " \t");
    if (!(c->d->flags & DICT_FLAG_FIXED_CASE))
        dict_fold(key);
    kvtab_add(c->t, key, p, lineno);
}

/* dict_texthash_load - build the table from the file's text */
bool dict_texthash_load(struct dict *d, const char *text, size_t len, char **err)
{
    struct text_ctx c = {d, kvtab_new(d->name)};

    dict_text_lines(text, len, d->name, texthash_line, &c);
    d->priv = c.t;
    d->lookup = kv_lookup;
    d->close = kv_close;
    return true;
}

/* dict_texthash_open - texthash:/file/name */
bool dict_texthash_open(struct dict *d, char **err)
{
    size_t len;
    char *text;

    dict_watch(d, d->name, -1);
    if ((text = dict_read_file(d->name, &len, err)) == NULL)
        return false;
    bool ok = dict_texthash_load(d, text, len, err);
    free(text);
    return ok;
}

/* trim - strip white space at both ends, in place */
static char *trim(char *s)
{
    size_t n;

    s += strspn(s, " \t\r\n");
    n = strlen(s);
    while (n > 0 && strchr(" \t\r\n", s[n - 1]) != NULL)
        s[--n] = 0;
    return s;
}

/* dict_inline_open - inline:{ key=value, { key = value with spaces } } */
bool dict_inline_open(struct dict *d, char **err)
{
    size_t n = strlen(d->name);
    bool bad = false;

    if (n < 2 || d->name[0] != '{' || d->name[n - 1] != '}') {
        *err = xasprintf("%s: expecting \"inline:{name=value, ...}\"", d->spec);
        return false;
    }
    char *copy = xstrndup(d->name + 1, n - 2);
    char *p = copy, *item;
    struct kvtab *t = kvtab_new(d->spec);

    while ((item = dict_next_item(&p, &bad)) != NULL) {
        char *eq = strchr(item, '=');
        if (eq == NULL) {
            *err = xasprintf("%s: \"%s\": expecting \"name=value\"", d->spec, item);
            break;
        }
        *eq = 0;
        char *key = trim(item), *value = trim(eq + 1);
        if (*key == 0) {
            *err = xasprintf("%s: empty name before \"=%s\"", d->spec, value);
            break;
        }
        if (!(d->flags & DICT_FLAG_FIXED_CASE))
            dict_fold(key);
        kvtab_add(t, key, value, 0);
    }
    if (bad && *err == NULL)
        *err = xasprintf("%s: unbalanced '{' or '}'", d->spec);
    if (*err == NULL && t->count == 0)
        *err = xasprintf("%s: empty table", d->spec);
    free(copy);
    if (*err != NULL) {
        kvtab_free(t);
        return false;
    }
    d->priv = t;
    d->lookup = kv_lookup;
    d->close = kv_close;
    return true;
}
