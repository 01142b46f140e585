/*
 * dict.h - lookup tables behind Postfix's "type:name"
 *
 * One interface (open, lookup, close; update and iterate where the type
 * allows) for every table type. Lookups answer one of three things:
 * found (with a value), not found, or a temporary failure - callers must
 * never treat a failure as "not found" (defer, don't reject).
 *
 * Types: hash: and btree: (Berkeley DB, the file NAME.db), texthash:
 * (a text file read into memory), inline:{ key=value, ... }, static:value,
 * cidr: (a file of "network/prefix value" lines, first match wins),
 * unix:passwd.byname (getpwnam) and unix:group.byname (getgrnam). A
 * leading "proxy:" is accepted and ignored. Keys are folded to lower case
 * unless the table is opened with DICT_FLAG_FIXED_CASE (cidr: and unix:
 * tables are always fixed-case). A table whose file changed on disk is
 * noticed by dict_changed() so long-running daemons can reopen.
 *
 * Berkeley DB tables are read as Postfix's postmap/postalias write them:
 * a key is looked up with its trailing NUL first, then without; a value's
 * trailing NUL is not part of the value.
 */
#ifndef POSTA_DICT_H
#define POSTA_DICT_H

#include <stdbool.h>
#include <stddef.h>

enum dict_result {
    DICT_FOUND = 0,
    DICT_NOTFOUND = 1,
    DICT_TEMPFAIL = 2,
};

#define DICT_FLAG_FIXED_CASE 1u

struct dict;

/* dict_open - open "type:name"; NULL + *err (malloc'ed) on failure */
struct dict *dict_open(const char *spec, unsigned flags, char **err);
/* dict_lookup - *value valid until the next call on this dict */
enum dict_result dict_lookup(struct dict *d, const char *key, const char **value);
/* dict_changed - the backing file changed since open */
bool dict_changed(struct dict *d);
const char *dict_spec(const struct dict *d);
/* dict_type - the table type ("hash", "unix", ...), "proxy:" removed */
const char *dict_type(const struct dict *d);
void dict_close(struct dict *d);

/*
 * dict_db_build - write a Berkeley DB table ("hash" or "btree") as
 * Postfix's postmap/postalias do: PATH.db with every key and value
 * stored with its trailing NUL. The table is written to PATH.db.tmp and
 * renamed over PATH.db, so readers see the old or the new table, never a
 * half-written one. A key given twice keeps its first value (a warning
 * names the duplicate). 0, or -1 with *err (malloc'ed) set.
 */
int dict_db_build(const char *type, const char *path, const char *const *keys,
                  const char *const *values, size_t n, char **err);

#endif
