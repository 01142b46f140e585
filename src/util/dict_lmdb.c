/*
 * dict_lmdb.c - lmdb: tables (OpenLDAP's Lightning Memory-Mapped Database)
 *
 * "lmdb:/etc/posta/virtual" opens /etc/posta/virtual.lmdb, one file (no
 * sub-directory, no lock file: MDB_NOSUBDIR | MDB_NOLOCK), as Postfix's
 * postmap writes it. Postfix stores keys and values with a trailing NUL;
 * a lookup tries the key with its NUL, then without, and remembers which
 * form the file uses. Each lookup is one read transaction under a shared
 * fcntl lock on the file, so a writer that locks the file exclusively
 * (Postfix's postmap -i/-d) is never seen half-done.
 *
 * dict_lmdb_build writes NAME.lmdb.tmp and renames it over NAME.lmdb; the
 * map size starts at LMDB_MAP_MIN (Postfix's lmdb_map_size default) or
 * more for a large table, and is doubled when the table does not fit.
 *
 * DIAGNOSTICS: open errors say "open database FILE.lmdb: reason" (a
 * corrupt file: LMDB's "File is not an LMDB file" or similar); lookup
 * errors are DICT_TEMPFAIL with a warning.
 * SECURITY: opened read-only; keys are passed as counted byte strings.
 */
#include "util/sys.h"

#include <fcntl.h>
#include <lmdb.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "util/alloc.h"
#include "util/dict.h"
#include "util/dict_impl.h"
#include "util/log.h"

#define LMDB_SUFFIX ".lmdb"
#define LMDB_TMP_SUFFIX ".lmdb.tmp"
#define LMDB_OPEN_FLAGS (MDB_NOSUBDIR | MDB_NOLOCK | MDB_RDONLY | MDB_NORDAHEAD)
#define LMDB_BUILD_FLAGS (MDB_NOSUBDIR | MDB_NOLOCK | MDB_NOSYNC)
#define LMDB_MODE 0644
#define LMDB_MAP_MIN ((size_t)16 << 20)        /* Postfix's lmdb_map_size */
#define LMDB_MAP_MAX ((size_t)1 << 40)         /* give up past 1 TiB */
#define LMDB_ENTRY_OVERHEAD 64                 /* bytes per pair, for sizing */
#define LMDB_SIZE_FACTOR 4                     /* map size / payload */

struct dict_lmdb {
    MDB_env *env;
    MDB_dbi dbi;
    int fd;
    bool try_nul;
    bool try_plain;
};

/* lmdb_begin - a read transaction, adopting a map grown by a writer */
static int lmdb_begin(struct dict_lmdb *p, MDB_txn **txn)
{
    int rc = mdb_txn_begin(p->env, NULL, MDB_RDONLY, txn);

    if (rc == MDB_MAP_RESIZED) {
        if ((rc = mdb_env_set_mapsize(p->env, 0)) == 0)
            rc = mdb_txn_begin(p->env, NULL, MDB_RDONLY, txn);
    }
    return rc;
}

/* lmdb_get - one get in txn; 0, MDB_NOTFOUND or an error */
static int lmdb_get(struct dict_lmdb *p, MDB_txn *txn, const char *key, size_t len, MDB_val *v)
{
    MDB_val k = {len, (void *)key};

    return mdb_get(txn, p->dbi, &k, v);
}

/* dict_lmdb_lookup - key with trailing NUL, then without */
static enum dict_result dict_lmdb_lookup(struct dict *d, const char *key, const char **value)
{
    struct dict_lmdb *p = d->priv;
    size_t len = strlen(key);
    enum dict_result r = DICT_NOTFOUND;
    MDB_txn *txn = NULL;
    MDB_val v;
    int rc = MDB_NOTFOUND;

    if (!dict_file_lock(p->fd, F_RDLCK)) {
        msg_warn("%s: lock %s: %s", d->spec, d->path, strerror(errno));
        return DICT_TEMPFAIL;
    }
    if ((rc = lmdb_begin(p, &txn)) != 0) {
        msg_warn("%s: read %s: %s", d->spec, d->path, mdb_strerror(rc));
        (void)dict_file_lock(p->fd, F_UNLCK);
        return DICT_TEMPFAIL;
    }
    rc = MDB_NOTFOUND;
    if (p->try_nul) {
        rc = lmdb_get(p, txn, key, len + 1, &v);
        if (rc == 0)
            p->try_plain = false;
    }
    if (rc == MDB_NOTFOUND && p->try_plain && len > 0) {
        rc = lmdb_get(p, txn, key, len, &v);
        if (rc == 0)
            p->try_nul = false;
    }
    if (rc == 0) {
        size_t n = v.mv_size;
        const char *data = v.mv_data;
        if (n > 0 && data[n - 1] == 0)
            n--;
        r = dict_set_value(d, data, n, value);
    } else if (rc != MDB_NOTFOUND) {
        msg_warn("%s: lookup of \"%s\": %s", d->spec, key, mdb_strerror(rc));
        r = DICT_TEMPFAIL;
    }
    mdb_txn_abort(txn);
    if (!dict_file_lock(p->fd, F_UNLCK))
        msg_warn("%s: unlock %s: %s", d->spec, d->path, strerror(errno));
    return r;
}

/* val_text - an MDB_val as text without its trailing NUL */
static char *val_text(const MDB_val *v)
{
    size_t n = v->mv_size;
    const char *s = v->mv_data;

    if (n > 0 && s[n - 1] == 0)
        n--;
    return xstrndup(s, n);
}

/* dict_lmdb_walk - every pair in key order */
static int dict_lmdb_walk(struct dict *d, dict_walk_fn *fn, void *ctx, char **err)
{
    struct dict_lmdb *p = d->priv;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    int rc;

    if (!dict_file_lock(p->fd, F_RDLCK)) {
        *err = xasprintf("lock %s: %s", d->path, strerror(errno));
        return -1;
    }
    if ((rc = lmdb_begin(p, &txn)) != 0 || (rc = mdb_cursor_open(txn, p->dbi, &cur)) != 0) {
        *err = xasprintf("read database %s: %s", d->path, mdb_strerror(rc));
    } else {
        while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
            char *ks = val_text(&k), *vs = val_text(&v);
            fn(ctx, ks, vs);
            free(ks);
            free(vs);
        }
        if (rc != MDB_NOTFOUND)
            *err = xasprintf("read database %s: %s", d->path, mdb_strerror(rc));
        mdb_cursor_close(cur);
    }
    if (txn != NULL)
        mdb_txn_abort(txn);
    (void)dict_file_lock(p->fd, F_UNLCK);
    return *err ? -1 : 0;
}

/* dict_lmdb_close - close the environment */
static void dict_lmdb_close(struct dict *d)
{
    struct dict_lmdb *p = d->priv;

    if (p == NULL)
        return;
    mdb_env_close(p->env);
    free(p);
    d->priv = NULL;
}

/* dict_lmdb_open - open NAME.lmdb read-only */
bool dict_lmdb_open(struct dict *d, char **err)
{
    char *path;
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    struct stat st;
    int rc, fd = -1;

    if (d->name[0] == 0) {
        *err = xasprintf("%s: empty table name", d->spec);
        return false;
    }
    path = xasprintf("%s%s", d->name, LMDB_SUFFIX);
    /* LMDB would create a missing file even read-only in some versions. */
    if (stat(path, &st) < 0) {
        *err = xasprintf("open database %s: %s", path, strerror(errno));
        free(path);
        return false;
    }
    if ((rc = mdb_env_create(&env)) != 0 ||
        (rc = mdb_env_open(env, path, LMDB_OPEN_FLAGS, LMDB_MODE)) != 0 ||
        (rc = mdb_env_get_fd(env, &fd)) != 0 ||
        (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0 ||
        (rc = mdb_dbi_open(txn, NULL, 0, &dbi)) != 0) {
        *err = xasprintf("open database %s: %s", path, mdb_strerror(rc));
        if (txn != NULL)
            mdb_txn_abort(txn);
        if (env != NULL)
            mdb_env_close(env);
        free(path);
        return false;
    }
    mdb_txn_abort(txn);
    struct dict_lmdb *p = xcalloc(1, sizeof(*p));
    p->env = env;
    p->dbi = dbi;
    p->fd = fd;
    p->try_nul = p->try_plain = true;
    d->priv = p;
    d->lookup = dict_lmdb_lookup;
    d->walk = dict_lmdb_walk;
    d->close = dict_lmdb_close;
    dict_watch(d, path, fd);
    free(path);
    return true;
}

/* lmdb_fill - one attempt at writing tmp with the given map size */
static int lmdb_fill(const char *tmp, size_t mapsize, const char *const *keys,
                     const char *const *values, size_t n, bool nul, char **err)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    int rc;
    size_t extra = nul ? 1 : 0;

    if ((rc = mdb_env_create(&env)) != 0 || (rc = mdb_env_set_mapsize(env, mapsize)) != 0 ||
        (rc = mdb_env_open(env, tmp, LMDB_BUILD_FLAGS, LMDB_MODE)) != 0 ||
        (rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0 ||
        (rc = mdb_dbi_open(txn, NULL, 0, &dbi)) != 0)
        goto done;
    for (size_t i = 0; i < n; i++) {
        MDB_val k = {strlen(keys[i]) + extra, (void *)keys[i]};
        MDB_val v = {strlen(values[i]) + extra, (void *)values[i]};
        if (k.mv_size == 0) {
            msg_warn("%s: empty key skipped", tmp);
            continue;
        }
        rc = mdb_put(txn, dbi, &k, &v, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST) {
            msg_warn("%s: duplicate entry: \"%s\" (first value kept)", tmp, keys[i]);
            continue;
        }
        if (rc != 0)
            goto done;
    }
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc == 0)
        rc = mdb_env_sync(env, 1);
done:
    if (txn != NULL)
        mdb_txn_abort(txn);
    if (env != NULL)
        mdb_env_close(env);
    if (rc != 0 && rc != MDB_MAP_FULL)
        *err = xasprintf("write database %s: %s", tmp, mdb_strerror(rc));
    return rc;
}

/* dict_lmdb_build - write PATH.lmdb atomically from n unique pairs */
int dict_lmdb_build(const char *path, const char *const *keys, const char *const *values,
                    size_t n, bool nul, char **err)
{
    char *tmp = xasprintf("%s%s", path, LMDB_TMP_SUFFIX);
    char *final = xasprintf("%s%s", path, LMDB_SUFFIX);
    size_t payload = 0, mapsize = LMDB_MAP_MIN;
    int rc, ret = -1;

    for (size_t i = 0; i < n; i++)
        payload += strlen(keys[i]) + strlen(values[i]) + LMDB_ENTRY_OVERHEAD;
    while (mapsize < payload * LMDB_SIZE_FACTOR && mapsize < LMDB_MAP_MAX)
        mapsize *= 2;
    for (;;) {
        if (unlink(tmp) < 0 && errno != ENOENT) {
            *err = xasprintf("remove %s: %s", tmp, strerror(errno));
            goto out;
        }
        rc = lmdb_fill(tmp, mapsize, keys, values, n, nul, err);
        if (rc != MDB_MAP_FULL)
            break;
        if (mapsize >= LMDB_MAP_MAX) {
            *err = xasprintf("write database %s: table larger than %zu bytes", tmp,
                             (size_t)LMDB_MAP_MAX);
            goto out;
        }
        mapsize *= 2;
    }
    if (rc != 0)
        goto out;
    /* The map size is virtual; the file holds only the pages in use. */
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0) {
        *err = xasprintf("fsync %s: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        goto out;
    }
    close(fd);
    if (rename(tmp, final) < 0) {
        *err = xasprintf("rename %s to %s: %s", tmp, final, strerror(errno));
        goto out;
    }
    ret = 0;
out:
    if (ret != 0)
        (void)unlink(tmp);
    free(tmp);
    free(final);
    return ret;
}
