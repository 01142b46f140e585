/*
 * dict_impl.h - private interface between dict.c and the table types
 *
 * Only the dict_*.c files (and the fuzz targets, which drive the text
 * parsers from memory) include this. Each table type has an opener that
 * fills in the lookup and close methods of a struct dict made by
 * dict_alloc(); dict.c does key folding, file-change detection and the
 * reopen of a changed table (dict_adopt moves a fresh open into place).
 */
#ifndef POSTA_DICT_IMPL_H
#define POSTA_DICT_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "util/buf.h"
#include "util/dict.h"

#define DICT_FILE_MAX ((size_t)256 << 20)  /* largest text table read into memory */
#define DICT_LINE_MAX ((size_t)1 << 20)    /* longest logical line of a text table */

struct dict {
    char *spec;         /* as given to dict_open */
    char *type;         /* "hash", after any "proxy:" prefix */
    char *name;         /* what follows "type:" */
    unsigned flags;     /* DICT_FLAG_* from the caller and the type */
    /* lookup - key already folded as the flags say; value in d->value */
    enum dict_result (*lookup)(struct dict *d, const char *key, const char **value);
    void (*close)(struct dict *d);   /* release priv (may be NULL) */
    /* walk - every entry (file tables); 0, or -1 + *err (may be NULL) */
    int (*walk)(struct dict *d, dict_walk_fn *fn, void *ctx, char **err);
    void *priv;
    unsigned open_flags;    /* the caller's flags, for reopening */
    char *path;         /* the file dict_changed watches, or NULL */
    bool watched;       /* st_* hold the file's identity at open */
    dev_t st_dev;
    ino_t st_ino;
    off_t st_size;
    struct timespec st_mtim;
    long long checked_ms;   /* monotonic ms of the last reopen check, 0 never */
    bool reopen_failed;     /* the changed file could not be opened ... */
    ino_t fail_ino;         /* ... as it was then (not retried until it changes) */
    off_t fail_size;
    struct timespec fail_mtim;
    struct buf key;     /* scratch: the folded key */
    struct buf value;   /* the value handed out by the last lookup */
};

/* dict_alloc - an empty dict for spec, type and name (copied) */
struct dict *dict_alloc(const char *spec, const char *type, const char *name,
                        unsigned flags);
/* dict_free - close and release a dict, also a half-opened one */
void dict_free(struct dict *d);
/* dict_watch - remember path's identity for dict_changed (fd: fstat it if >= 0) */
void dict_watch(struct dict *d, const char *path, int fd);
/* dict_set_value - copy n bytes into d->value and point *value at it */
enum dict_result dict_set_value(struct dict *d, const void *p, size_t n, const char **value);

/* dict_read_file - the whole file (NUL-terminated), or NULL + *err */
char *dict_read_file(const char *path, size_t *len, char **err);
/*
 * dict_text_lines - split text into postmap-style logical lines: '#'
 * comment lines and blank lines are skipped, a line starting with white
 * space continues the previous one. fn gets each logical line (trailing
 * white space removed) with the number of the line where it started.
 */
void dict_text_lines(const char *text, size_t len, const char *origin,
                     void (*fn)(void *ctx, char *line, int lineno), void *ctx);

/* Type openers: fill in d (methods, priv, watch); false + *err on failure. */
bool dict_db_open(struct dict *d, char **err);        /* hash:, btree: */
bool dict_texthash_open(struct dict *d, char **err);  /* texthash: */
bool dict_inline_open(struct dict *d, char **err);    /* inline:{...} */
bool dict_cidr_open(struct dict *d, char **err);      /* cidr: */
bool dict_regexp_open(struct dict *d, char **err);    /* regexp:, pcre: */
bool dict_lmdb_open(struct dict *d, char **err);      /* lmdb: */
bool dict_cdb_open(struct dict *d, char **err);       /* cdb: */
bool dict_unionmap_open(struct dict *d, char **err);  /* unionmap:{...} */
bool dict_pipemap_open(struct dict *d, char **err);   /* pipemap:{...} */

/* Writers behind dict_build (keys already unique; nul: store the NUL). */
int dict_lmdb_build(const char *path, const char *const *keys, const char *const *values,
                    size_t n, bool nul, char **err);
int dict_cdb_build(const char *path, const char *const *keys, const char *const *values,
                   size_t n, bool nul, char **err);
/* dict_db_walk - hash:/btree: entries (dict_build.c, Berkeley DB cursor) */
int dict_db_walk(struct dict *d, dict_walk_fn *fn, void *ctx, char **err);

/* From memory (fuzzing, tests): text is the file's content. */
bool dict_texthash_load(struct dict *d, const char *text, size_t len, char **err);
bool dict_cidr_load(struct dict *d, const char *text, size_t len, char **err);
/* regexp: or pcre: rules (d->type says which) from a file's text */
bool dict_regexp_load(struct dict *d, const char *text, size_t len, char **err);

/*
 * dict_next_item - cut the next item out of a "{a, {b c}, type:{x}}" list
 * body in place: an item in braces loses them, braces nested in an item
 * stay. NULL at the end, or NULL with *bad set on unbalanced braces.
 */
char *dict_next_item(char **pp, bool *bad);
/*
 * dict_file_lock - take a shared (F_RDLCK) or drop (F_UNLCK) the fcntl
 * lock of a whole table file, retrying for up to DICT_LOCK_WAIT_MS while
 * a writer holds it; false (errno set) when it is not granted
 */
#define DICT_LOCK_WAIT_MS 2000
bool dict_file_lock(int fd, short type);

/* dict_fold - ASCII lower case in place */
void dict_fold(char *s);

#endif
