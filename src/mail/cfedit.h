/*
 * cfedit.h - edit main.cf and master.cf text in place, as postconf -e does
 *
 * The text is split into logical lines by the rules of the parsers
 * (mail/config.h, mail/mastercf.h): a line that starts with a non-blank
 * character begins a logical line, a line that starts with white space
 * continues it, and blank lines and lines whose first non-blank character
 * is '#' are comments that belong to no logical line. A logical line's
 * key is, in main.cf, the parameter name before '=' ("name = value"), and
 * in master.cf "service/type" from its first two fields.
 *
 * For each key the last operation that names it applies:
 *   CFEDIT_SET      the first logical line with that key (with all of its
 *                   continuation lines) is replaced by "name = value"
 *                   (main.cf) or by the entry text (master.cf); later ones
 *                   are removed; with none, the line is appended at the end
 *   CFEDIT_REMOVE   every logical line with that key is removed
 *   CFEDIT_COMMENT  every physical line of every logical line with that key
 *                   gets a '#' in front
 * Everything else (comments, blank lines, order, other lines, CR LF line
 * ends) is copied byte for byte.
 */
#ifndef POSTA_CFEDIT_H
#define POSTA_CFEDIT_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

enum cfedit_syntax { CFEDIT_MAIN, CFEDIT_MASTER };
enum cfedit_op_type { CFEDIT_SET, CFEDIT_REMOVE, CFEDIT_COMMENT };

struct cfedit_op {
    enum cfedit_op_type type;
    const char *key;     /* "name" (main.cf) or "service/type" (master.cf) */
    const char *value;   /* CFEDIT_SET: the value, or the master.cf entry */
    bool found;          /* set by cfedit_apply: the key occurred in the text */
};

/*
 * cfedit_apply - the text with ops applied, appended to out; false when out
 * would exceed its maximum. Values must not contain newlines (the caller
 * checks: cfedit_value_ok).
 */
bool cfedit_apply(enum cfedit_syntax syntax, const char *text, size_t len,
                  struct cfedit_op *ops, size_t nops, struct buf *out);
/* cfedit_value_ok - one line: no NUL, CR or LF */
bool cfedit_value_ok(const char *value);

#endif
