/*
 * dict_build.c - writing whole file tables, and listing Berkeley DB ones
 *
 * dict_build() is the one entry point for "posta map" and other writers:
 * it drops duplicate keys (the first value wins, as with postmap) and
 * hands the unique pairs to the type's writer: dict_db_build (hash,
 * btree), dict_lmdb_build or dict_cdb_build. Each writer fills a
 * temporary file next to the table and renames it into place.
 *
 * dict_db_walk() lists a hash: or btree: table with a Berkeley DB cursor
 * on its own read-only handle, under a shared fcntl lock (as lookups are).
 *
 * DIAGNOSTICS: errors are returned as text naming the file; duplicates
 * are warnings naming the table and the key.
 * SECURITY: the writers run with the caller's privileges; the caller
 * decides the final owner and mode.
 */
#include "util/sys.h"

#include <db.h>
#include <fcntl.h>
#include <string.h>

#include "util/alloc.h"
#include "util/dict.h"
#include "util/dict_impl.h"
#include "util/log.h"

#define FNV_OFFSET 2166136261u
#define FNV_PRIME 16777619u

struct build_type {
    const char *type;
    const char *suffix;
    bool default_nul;
};

static const struct build_type build_types[] = {
    {"hash", ".db", true},
    {"btree", ".db", true},
    {"lmdb", ".lmdb", true},
    {"cdb", ".cdb", false},
};

/* find_type - the writer entry for type, or NULL */
static const struct build_type *find_type(const char *type)
{
    for (size_t i = 0; i < POSTA_ARRAY_LEN(build_types); i++)
        if (strcmp(build_types[i].type, type) == 0)
            return &build_types[i];
    return NULL;
}

/* dict_buildable - dict_build can write this type */
bool dict_buildable(const char *type)
{
    return find_type(type) != NULL;
}

/* dict_build_suffix - ".db", ".lmdb" or ".cdb" ("" for other types) */
const char *dict_build_suffix(const char *type)
{
    const struct build_type *t = find_type(type);

    return t ? t->suffix : "";
}

/* key_hash - FNV-1a */
static uint32_t key_hash(const char *s)
{
    uint32_t h = FNV_OFFSET;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= FNV_PRIME;
    }
    return h;
}

/*
 * unique_pairs - indexes of the first occurrence of each key, in input
 * order (open addressing over a power-of-two table at most half full)
 */
static size_t unique_pairs(const char *path, const char *const *keys, size_t n, size_t *keep)
{
    size_t cap = 16, count = 0;

    while (cap < n * 2)
        cap *= 2;
    size_t *slot = xcalloc(cap, sizeof(*slot));   /* index + 1, 0 = empty */
    for (size_t i = 0; i < n; i++) {
        size_t j = key_hash(keys[i]) & (cap - 1);
        bool dup = false;
        while (slot[j] != 0) {
            if (strcmp(keys[slot[j] - 1], keys[i]) == 0) {
                dup = true;
                break;
            }
            j = (j + 1) & (cap - 1);
        }
        if (dup) {
            msg_warn("%s: duplicate entry: \"%s\" (first value kept)", path, keys[i]);
            continue;
        }
        slot[j] = i + 1;
        keep[count++] = i;
    }
    free(slot);
    return count;
}

/* dict_build - dedupe, then hand the pairs to the type's writer */
int dict_build(const char *type, const char *path, const char *const *keys,
               const char *const *values, size_t n, unsigned flags, char **err)
{
    const struct build_type *t = find_type(type);
    bool nul;
    int rc;

    *err = NULL;
    if (t == NULL) {
        *err = xasprintf("unsupported database type for building: \"%s\" "
                         "(use hash, btree, lmdb or cdb)", type);
        return -1;
    }
    if (path[0] == 0) {
        *err = xasprintf("%s: empty table name", type);
        return -1;
    }
    nul = (flags & DICT_BUILD_NUL) ? true : (flags & DICT_BUILD_NONUL) ? false : t->default_nul;
    if (!nul && t->suffix[1] == 'd') {
        *err = xasprintf("%s:%s: keys without a trailing NUL are not supported for "
                         "Berkeley DB tables", type, path);
        return -1;
    }
    size_t *keep = xcalloc(n ? n : 1, sizeof(*keep));
    size_t m = unique_pairs(path, keys, n, keep);
    const char **k = xcalloc(m ? m : 1, sizeof(*k));
    const char **v = xcalloc(m ? m : 1, sizeof(*v));
    for (size_t i = 0; i < m; i++) {
        k[i] = keys[keep[i]];
        v[i] = values[keep[i]];
    }
    if (t->suffix[1] == 'd')
        rc = dict_db_build(type, path, k, v, m, err);
    else if (strcmp(type, "lmdb") == 0)
        rc = dict_lmdb_build(path, k, v, m, nul, err);
    else
        rc = dict_cdb_build(path, k, v, m, nul, err);
    free(keep);
    free(k);
    free(v);
    return rc;
}

/* db_lock_file - a shared or no lock on the whole file, waiting */
static int db_lock_file(int fd, short type)
{
    struct flock fl;

    memset(&fl, 0, sizeof(fl));
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    while (fcntl(fd, F_SETLKW, &fl) < 0)
        if (errno != EINTR)
            return -1;
    return 0;
}

/* strip_nul - a counted DB string as text without a trailing NUL */
static char *strip_nul(const DBT *t)
{
    size_t n = t->size;
    const char *p = t->data;

    if (n > 0 && p[n - 1] == 0)
        n--;
    return xstrndup(p, n);
}

/* dict_db_walk - every pair of a hash: or btree: table */
int dict_db_walk(struct dict *d, dict_walk_fn *fn, void *ctx, char **err)
{
    DBTYPE type = strcmp(d->type, "btree") == 0 ? DB_BTREE : DB_HASH;
    DB *db = NULL;
    DBC *cur = NULL;
    DBT k, v;
    int rc, fd = -1;

    if ((rc = db_create(&db, NULL, 0)) != 0) {
        *err = xasprintf("open database %s: %s", d->path, db_strerror(rc));
        return -1;
    }
    if ((rc = db->open(db, NULL, d->path, NULL, type, DB_RDONLY, 0)) != 0 ||
        (rc = db->fd(db, &fd)) != 0) {
        *err = xasprintf("open database %s: %s", d->path, db_strerror(rc));
        db->close(db, 0);
        return -1;
    }
    if (db_lock_file(fd, F_RDLCK) < 0) {
        *err = xasprintf("lock %s: %s", d->path, strerror(errno));
        db->close(db, 0);
        return -1;
    }
    if ((rc = db->cursor(db, NULL, &cur, 0)) != 0) {
        *err = xasprintf("read database %s: %s", d->path, db_strerror(rc));
    } else {
        memset(&k, 0, sizeof(k));
        memset(&v, 0, sizeof(v));
        while ((rc = cur->get(cur, &k, &v, DB_NEXT)) == 0) {
            char *ks = strip_nul(&k), *vs = strip_nul(&v);
            fn(ctx, ks, vs);
            free(ks);
            free(vs);
        }
        if (rc != DB_NOTFOUND)
            *err = xasprintf("read database %s: %s", d->path, db_strerror(rc));
        cur->close(cur);
    }
    (void)db_lock_file(fd, F_UNLCK);
    db->close(db, 0);
    return *err ? -1 : 0;
}

/* dict_source_file - postmap-format logical lines of a file */
int dict_source_file(const char *path, dict_line_fn *fn, void *ctx, char **err)
{
    size_t len;
    char *text;

    *err = NULL;
    if ((text = dict_read_file(path, &len, err)) == NULL)
        return -1;
    dict_text_lines(text, len, path, fn, ctx);
    free(text);
    return 0;
}

/* dict_source_text - postmap-format logical lines of text in memory */
void dict_source_text(const char *text, size_t len, const char *origin, dict_line_fn *fn,
                      void *ctx)
{
    dict_text_lines(text, len, origin, fn, ctx);
}
