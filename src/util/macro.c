/*
 * macro.c - "$name" expansion in templates (see macro.h)
 */
#include "util/sys.h"

#include <ctype.h>
#include <string.h>

#include "util/macro.h"

#define MACRO_DEPTH_MAX 10      /* ${a?${b?...}} nesting expanded */

/* value - the lookup's answer, NULL for an empty one */
static const char *value(macro_lookup_fn *lookup, void *ctx, const char *name, size_t len)
{
    const char *v = lookup(ctx, name, len);

    return v != NULL && *v ? v : NULL;
}

static void expand(const char *text, size_t tlen, macro_lookup_fn *lookup, void *ctx,
                   struct buf *out, int depth);

/* expand_part - the text of ${name?text} or ${name:text}, expanded in turn */
static void expand_part(const char *p, size_t n, macro_lookup_fn *lookup, void *ctx,
                        struct buf *out, int depth)
{
    if (depth >= MACRO_DEPTH_MAX)
        buf_append(out, p, n);      /* too deep: as written */
    else
        expand(p, n, lookup, ctx, out, depth + 1);
}

/* expand - text[0..tlen): $name, ${name}, ${name?text}, ${name:text}, $$ */
static void expand(const char *text, size_t tlen, macro_lookup_fn *lookup, void *ctx,
                   struct buf *out, int depth)
{
    const char *stop = text + tlen;

    for (const char *p = text; p < stop; p++) {
        if (*p != '$') {
            buf_putc(out, *p);
            continue;
        }
        if (p + 1 < stop && p[1] == '$') {
            buf_putc(out, '$');
            p++;
            continue;
        }
        if (p + 1 < stop && p[1] == '{') {
            const char *name = p + 2, *end = memchr(name, '}', (size_t)(stop - name));
            size_t len = 0;
            const char *val;

            if (end == NULL)
                break;
            while (name + len < end && name[len] != '?' && name[len] != ':')
                len++;
            val = value(lookup, ctx, name, len);
            if (name[len] == '?') {
                if (val)
                    expand_part(name + len + 1, (size_t)(end - name - len - 1), lookup, ctx,
                                out, depth);
            } else if (name[len] == ':') {
                if (!val)
                    expand_part(name + len + 1, (size_t)(end - name - len - 1), lookup, ctx,
                                out, depth);
            } else if (val) {
                buf_puts(out, val);
            }
            p = end;
            continue;
        }
        size_t len = 0;

        while (p + 1 + len < stop && (isalnum((unsigned char)p[1 + len]) || p[1 + len] == '_'))
            len++;
        const char *val = value(lookup, ctx, p + 1, len);

        if (val)
            buf_puts(out, val);
        p += len;
    }
}

/* macro_expand - text with its macros expanded, appended to out */
void macro_expand(const char *text, macro_lookup_fn *lookup, void *ctx, struct buf *out)
{
    expand(text, strlen(text), lookup, ctx, out, 0);
}
