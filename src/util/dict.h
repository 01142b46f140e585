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
 * unix:passwd.byname (getpwnam) and unix:group.byname (getgrnam),
 * lmdb: (liblmdb, NAME.lmdb), cdb: (tinycdb, NAME.cdb), regexp: (POSIX
 * regular expressions, regexp_table(5)) and pcre: (PCRE2, pcre_table(5)),
 * unionmap:{type:name, ...} (every table's results joined by commas) and
 * pipemap:{type:name, ...} (each table's result is the next one's key). A
 * leading "proxy:" is accepted and ignored. Keys are folded to lower case
 * unless the table is opened with DICT_FLAG_FIXED_CASE (cidr:, regexp:,
 * pcre: and unix: tables are always fixed-case: their patterns decide).
 *
 * A table whose file changed on disk (a new inode, size or mtime, as when
 * postmap renames a new NAME.db into place) is reopened by dict_lookup()
 * itself, at most once per dict_set_recheck_interval() (default 1 s): every
 * long-running user gets the new table at its next lookup. When the new
 * file cannot be opened the old table stays in use, with one warning.
 * dict_changed() still tells whether the file differs from the one open.
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

/* dict_set_recheck_interval - how often (ms) dict_lookup stats table files */
void dict_set_recheck_interval(unsigned ms);
#define DICT_RECHECK_MS_DEFAULT 1000u

/*
 * dict_walk - call fn for every entry of a file table (hash, btree, lmdb,
 * cdb), keys and values without their trailing NUL, in the file's order.
 * 0, or -1 with *err (malloc'ed): the type cannot be listed, or a read
 * error (naming the file).
 */
typedef void dict_walk_fn(void *ctx, const char *key, const char *value);
int dict_walk(struct dict *d, dict_walk_fn *fn, void *ctx, char **err);

/* dict_build flags: how keys and values are stored */
#define DICT_BUILD_NUL 1u      /* with a trailing NUL (default: hash, btree, lmdb) */
#define DICT_BUILD_NONUL 2u    /* without (default: cdb) */

/* dict_buildable - the type can be written by dict_build */
bool dict_buildable(const char *type);
/* dict_build_suffix - the file suffix of a buildable type (".db", ".lmdb", ".cdb") */
const char *dict_build_suffix(const char *type);
/*
 * dict_build - write a whole table of type hash, btree, lmdb or cdb to
 * PATH + suffix as Postfix's postmap would (hash, btree, lmdb: keys and
 * values with their NUL; cdb: without), through a temporary file renamed
 * into place. A duplicate key keeps its first value with a warning. 0, or
 * -1 with *err (malloc'ed) set; the old table is then untouched.
 */
int dict_build(const char *type, const char *path, const char *const *keys,
               const char *const *values, size_t n, unsigned flags, char **err);

/*
 * dict_source_file - read a table source in postmap's input format and
 * call fn for each logical line ('#' comments and blank lines skipped, a
 * line that starts with white space continues the previous one; trailing
 * white space removed) with the number of the line where it starts.
 * 0, or -1 with *err (malloc'ed) naming the file. dict_source_text does
 * the same for text in memory (origin names it in warnings).
 */
typedef void dict_line_fn(void *ctx, char *line, int lineno);
int dict_source_file(const char *path, dict_line_fn *fn, void *ctx, char **err);
void dict_source_text(const char *text, size_t len, const char *origin, dict_line_fn *fn,
                      void *ctx);

#endif
