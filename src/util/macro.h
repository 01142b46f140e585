/*
 * macro.h - "$name" expansion in admin-written templates whose names are
 * known only to the program that uses them (forward_path's $home,
 * smtpd_reject_footer's $client_address, ...), as Postfix expands them
 *
 * Forms: $name and ${name} (the value, or nothing), ${name?text} (text
 * when name has a non-empty value), ${name:text} (text when it has none),
 * $$ (a literal '$'). A name is letters, digits and '_'. An unclosed
 * "${" ends the expansion there. The text inside ?/: is expanded in turn
 * (to a depth of ten; deeper, it is copied as written). A "}" ends the
 * innermost ${ , so a nested ${x} inside ?/: text is not supported.
 */
#ifndef POSTA_MACRO_H
#define POSTA_MACRO_H

#include <stddef.h>

#include "util/buf.h"

/* macro_lookup_fn - the value of name[0..len) or NULL (unknown or empty) */
typedef const char *macro_lookup_fn(void *ctx, const char *name, size_t len);

/* macro_expand - text with its macros expanded, appended to out */
void macro_expand(const char *text, macro_lookup_fn *lookup, void *ctx, struct buf *out);

#endif
