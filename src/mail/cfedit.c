/*
 * cfedit.c - edit main.cf and master.cf text in place (postconf -e, -X, -#)
 *
 * Two passes over the text: the first splits it into physical lines and
 * classifies each (start of a logical line, continuation, comment/blank,
 * or a continuation before any start, which the parsers ignore), and finds
 * the key of each logical line; the second copies the text, applying the
 * operation that names each key. See cfedit.h for the rules.
 *
 * DIAGNOSTICS: none; only an output buffer over its limit is reported.
 * SECURITY: pure text processing, bounded by the caller's buffer limits;
 * fuzzed (fuzz/fuzz_cfedit.c).
 */
#include "util/sys.h"

#include <ctype.h>

#include "mail/cfedit.h"
#include "util/alloc.h"
#include "util/buf.h"

enum line_kind { LK_PASSIVE, LK_START, LK_CONT, LK_ORPHAN };

/* What happens to the lines of one logical line. */
enum line_action { LA_COPY, LA_DROP, LA_COMMENT, LA_REPLACE };

struct pline {
    size_t off;          /* first byte */
    size_t len;          /* bytes including the line end, if any */
    size_t text_len;     /* bytes without "\n" / "\r\n" */
    enum line_kind kind;
    size_t owner;        /* LK_CONT: index of its LK_START line */
};

#define NO_OP ((size_t)-1)
#define MASTER_KEY_FIELDS 2

/* split_lines - physical lines with their kind */
static struct pline *split_lines(const char *text, size_t len, size_t *count)
{
    struct pline *lines = NULL;
    size_t n = 0, cap = 0, pos = 0, start = NO_OP;

    while (pos < len) {
        const char *p = text + pos;
        const char *nl = memchr(p, '\n', len - pos);
        size_t full = nl ? (size_t)(nl - p) + 1 : len - pos;
        size_t tl = nl ? (size_t)(nl - p) : full;
        size_t k = 0;
        struct pline *l;

        if (tl > 0 && p[tl - 1] == '\r')
            tl--;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            lines = xreallocarray(lines, cap, sizeof(*lines));
        }
        l = &lines[n];
        l->off = pos;
        l->len = full;
        l->text_len = tl;
        l->owner = NO_OP;
        while (k < tl && isspace((unsigned char)p[k]))
            k++;
        if (k == tl || p[k] == '#') {
            l->kind = LK_PASSIVE;
        } else if (k > 0) {
            l->kind = start == NO_OP ? LK_ORPHAN : LK_CONT;
            l->owner = start;
        } else {
            l->kind = LK_START;
            start = n;
        }
        n++;
        pos += full;
    }
    *count = n;
    return lines;
}

/* logical_text - the logical line that starts at lines[i], joined with spaces */
static char *logical_text(const char *text, const struct pline *lines, size_t n, size_t i)
{
    struct buf b = BUF_INIT;

    buf_append(&b, text + lines[i].off, lines[i].text_len);
    for (size_t j = i + 1; j < n && lines[j].kind != LK_START; j++) {
        if (lines[j].kind == LK_CONT) {
            buf_putc(&b, ' ');
            buf_append(&b, text + lines[j].off, lines[j].text_len);
        }
    }
    if (b.data == NULL)
        buf_puts(&b, "");
    return buf_steal(&b);
}

/* line_key - the key of a logical line (malloced), or NULL if it has none */
static char *line_key(enum cfedit_syntax syntax, const char *logical)
{
    const char *p = logical, *q;
    struct buf b = BUF_INIT;

    if (syntax == CFEDIT_MAIN) {
        for (q = p; *q && *q != '=' && !isspace((unsigned char)*q); q++)
            ;
        if (q == p)
            return NULL;
        for (const char *r = q; *r != '='; r++)
            if (*r == 0 || !isspace((unsigned char)*r))
                return NULL;
        return xstrndup(p, (size_t)(q - p));
    }
    for (int field = 0; field < MASTER_KEY_FIELDS; field++) {
        while (isspace((unsigned char)*p))
            p++;
        for (q = p; *q && !isspace((unsigned char)*q); q++)
            ;
        if (q == p) {
            buf_free(&b);
            return NULL;
        }
        if (field > 0)
            buf_putc(&b, '/');
        buf_append(&b, p, (size_t)(q - p));
        p = q;
    }
    return buf_steal(&b);
}

/* effective_op - index of the last op naming key, or NO_OP */
static size_t effective_op(const struct cfedit_op *ops, size_t nops, const char *key)
{
    size_t found = NO_OP;

    for (size_t i = 0; i < nops; i++) {
        if (strcmp(ops[i].key, key) == 0) {
            found = i;
        }
    }
    return found;
}

/* mark_found - every op that names key has found = true */
static void mark_found(struct cfedit_op *ops, size_t nops, const char *key)
{
    for (size_t i = 0; i < nops; i++)
        if (strcmp(ops[i].key, key) == 0)
            ops[i].found = true;
}

/* put_set - the replacement line of a CFEDIT_SET, ending in eol */
static int put_set(enum cfedit_syntax syntax, const struct cfedit_op *op, const char *eol,
                   struct buf *out)
{
    const char *value = op->value ? op->value : "";

    if (syntax == CFEDIT_MASTER)
        return buf_printf(out, "%s%s", value, eol);
    if (*value == 0)
        return buf_printf(out, "%s =%s", op->key, eol);
    return buf_printf(out, "%s = %s%s", op->key, value, eol);
}

/* cfedit_value_ok - one line: no NUL, CR or LF */
bool cfedit_value_ok(const char *value)
{
    return value != NULL && strpbrk(value, "\r\n") == NULL;
}

/* cfedit_apply - the text with ops applied, appended to out */
bool cfedit_apply(enum cfedit_syntax syntax, const char *text, size_t len,
                  struct cfedit_op *ops, size_t nops, struct buf *out)
{
    size_t n, i;
    struct pline *lines = split_lines(text, len, &n);
    enum line_action *action = xcalloc(n ? n : 1, sizeof(*action));
    bool *emitted = xcalloc(nops ? nops : 1, sizeof(*emitted));
    /* new lines end as the file's first line does (CR LF files stay so) */
    const char *eol = n > 0 && lines[0].len > lines[0].text_len + 1 ? "\r\n" : "\n";
    int rc = 0;

    for (i = 0; i < nops; i++)
        ops[i].found = false;
    for (i = 0; i < n && rc == 0; i++) {
        const struct pline *l = &lines[i];
        enum line_action a = LA_COPY;

        if (l->kind == LK_START) {
            char *logical = logical_text(text, lines, n, i);
            char *key = line_key(syntax, logical);
            size_t op = key ? effective_op(ops, nops, key) : NO_OP;

            if (key)
                mark_found(ops, nops, key);
            if (op != NO_OP) {
                switch (ops[op].type) {
                case CFEDIT_SET:
                    a = emitted[op] ? LA_DROP : LA_REPLACE;
                    emitted[op] = true;
                    break;
                case CFEDIT_REMOVE:
                    a = LA_DROP;
                    break;
                case CFEDIT_COMMENT:
                    a = LA_COMMENT;
                    break;
                }
            }
            action[i] = a;
            if (a == LA_REPLACE)
                rc = put_set(syntax, &ops[op], eol, out);
            free(key);
            free(logical);
        } else if (l->kind == LK_CONT) {
            a = action[l->owner];
        }
        if (a == LA_COMMENT)
            rc |= buf_putc(out, '#');
        if (a == LA_COPY || a == LA_COMMENT)
            rc |= buf_append(out, text + l->off, l->len);
    }
    for (i = 0; i < nops && rc == 0; i++) {
        if (ops[i].type != CFEDIT_SET || emitted[i] || effective_op(ops, nops, ops[i].key) != i)
            continue;
        if (out->len > 0 && out->data[out->len - 1] != '\n')
            rc = buf_puts(out, eol);
        rc |= put_set(syntax, &ops[i], eol, out);
        emitted[i] = true;
    }
    free(emitted);
    free(action);
    free(lines);
    return rc == 0;
}
