/*
 * dict_db.c - hash: and btree: tables in Berkeley DB files (read-only)
 *
 * "hash:/etc/aliases" opens /etc/aliases.db, as Postfix does. Tables built
 * by Postfix's postmap and postalias store keys and values with a
 * trailing NUL; tables built by other tools may not. A lookup tries the
 * key with its NUL first, then without, and remembers which form the
 * file uses after the first hit. A value's trailing NUL is dropped.
 *
 * Each lookup holds a shared fcntl lock on the file, so that a concurrent
 * postmap (which locks exclusively while it rebuilds) is never read
 * half-written; a lock not granted within DICT_LOCK_WAIT_MS is a
 * temporary failure.
 *
 * dict_db_build writes a whole table as postmap/postalias do (keys and
 * values with their NUL) into NAME.db.tmp, syncs it and renames it over
 * NAME.db: a reader sees either the old table or the new one.
 *
 * DIAGNOSTICS: open errors say "open database FILE.db: reason"; lookup
 * errors are DICT_TEMPFAIL with a warning. Berkeley DB's own messages go
 * to verbose logging.
 * SECURITY: opened read-only for lookups; keys are passed to Berkeley DB as counted
 * byte strings.
 */
#include "util/sys.h"

#include <db.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>

#include "util/alloc.h"
#include "util/dict.h"
#include "util/dict_impl.h"
#include "util/log.h"

#define DB_SUFFIX ".db"
#define DB_TMP_SUFFIX ".db.tmp"
#define DB_BUILD_MODE 0644

struct dict_db {
    DB *db;
    int fd;            /* Berkeley DB's file descriptor, for locking */
    bool try_nul;      /* keys may be stored with a trailing NUL */
    bool try_plain;    /* keys may be stored without one */
};

/* db_errcall - route Berkeley DB's messages to verbose logging */
static void db_errcall(const DB_ENV *env, const char *prefix, const char *text)
{
    msg_verbose("Berkeley DB: %s%s%s", prefix ? prefix : "", prefix ? ": " : "", text);
}

/* db_get - one Berkeley DB get; 0, DB_NOTFOUND or an error */
static int db_get(struct dict_db *p, const char *key, size_t len, DBT *val)
{
    DBT k;

    memset(&k, 0, sizeof(k));
    memset(val, 0, sizeof(*val));
    k.data = (void *)key;
    k.size = (u_int32_t)len;
    return p->db->get(p->db, NULL, &k, val, 0);
}

/* dict_db_lookup - key with trailing NUL, then without */
static enum dict_result dict_db_lookup(struct dict *d, const char *key, const char **value)
{
    struct dict_db *p = d->priv;
    size_t len = strlen(key);
    DBT val;
    int rc = DB_NOTFOUND;
    enum dict_result r = DICT_NOTFOUND;

    if (len >= UINT32_MAX)
        return DICT_NOTFOUND;
    if (!dict_file_lock(p->fd, F_RDLCK)) {
        msg_warn("%s: lock %s: %s", d->spec, d->path, strerror(errno));
        return DICT_TEMPFAIL;
    }
    if (p->try_nul) {
        rc = db_get(p, key, len + 1, &val);
        if (rc == 0)
            p->try_plain = false;
    }
    if (rc == DB_NOTFOUND && p->try_plain && len > 0) {
        rc = db_get(p, key, len, &val);
        if (rc == 0)
            p->try_nul = false;
    }
    if (rc == 0) {
        size_t n = val.size;
        const char *data = val.data;
        if (n > 0 && data[n - 1] == 0)
            n--;
        r = dict_set_value(d, data, n, value);
    } else if (rc != DB_NOTFOUND) {
        msg_warn("%s: lookup of \"%s\": %s", d->spec, key, db_strerror(rc));
        r = DICT_TEMPFAIL;
    }
    if (!dict_file_lock(p->fd, F_UNLCK))
        msg_warn("%s: unlock %s: %s", d->spec, d->path, strerror(errno));
    return r;
}

/* dict_db_close - close the Berkeley DB handle */
static void dict_db_close(struct dict *d)
{
    struct dict_db *p = d->priv;

    if (p == NULL)
        return;
    p->db->close(p->db, 0);
    free(p);
    d->priv = NULL;
}

/* dict_db_open - open NAME.db read-only as hash or btree */
bool dict_db_open(struct dict *d, char **err)
{
    DBTYPE type = strcmp(d->type, "btree") == 0 ? DB_BTREE : DB_HASH;
    char *path = xasprintf("%s%s", d->name, DB_SUFFIX);
    DB *db = NULL;
    int rc, fd = -1;

    if (d->name[0] == 0) {
        *err = xasprintf("%s: empty table name", d->spec);
        free(path);
        return false;
    }
    if ((rc = db_create(&db, NULL, 0)) != 0) {
        *err = xasprintf("open database %s: db_create: %s", path, db_strerror(rc));
        free(path);
        return false;
    }
    db->set_errcall(db, db_errcall);
    if ((rc = db->open(db, NULL, path, NULL, type, DB_RDONLY, 0)) != 0 ||
        (rc = db->fd(db, &fd)) != 0) {
        *err = xasprintf("open database %s: %s", path, db_strerror(rc));
        db->close(db, 0);
        free(path);
        return false;
    }
    struct dict_db *p = xcalloc(1, sizeof(*p));
    p->db = db;
    p->fd = fd;
    p->try_nul = p->try_plain = true;
    d->priv = p;
    d->lookup = dict_db_lookup;
    d->close = dict_db_close;
    dict_watch(d, path, fd);
    free(path);
    return true;
}

/* db_put - store key and value, both with their trailing NUL; DB_KEYEXIST on a duplicate */
static int db_put(DB *db, const char *key, const char *value)
{
    DBT k, v;
    size_t klen = strlen(key) + 1, vlen = strlen(value) + 1;

    if (klen > UINT32_MAX || vlen > UINT32_MAX)
        return EFBIG;
    memset(&k, 0, sizeof(k));
    memset(&v, 0, sizeof(v));
    k.data = (void *)key;
    k.size = (u_int32_t)klen;
    v.data = (void *)value;
    v.size = (u_int32_t)vlen;
    return db->put(db, NULL, &k, &v, DB_NOOVERWRITE);
}

/* dict_db_build - write PATH.db atomically from n key/value pairs */
int dict_db_build(const char *type, const char *path, const char *const *keys,
                  const char *const *values, size_t n, char **err)
{
    DBTYPE dbtype;
    DB *db = NULL;
    char *tmp, *final;
    int rc, fd = -1;

    if (strcmp(type, "hash") == 0)
        dbtype = DB_HASH;
    else if (strcmp(type, "btree") == 0)
        dbtype = DB_BTREE;
    else {
        *err = xasprintf("unsupported database type \"%s\" (use hash or btree)", type);
        return -1;
    }
    if (path[0] == 0) {
        *err = xasprintf("%s: empty table name", type);
        return -1;
    }
    tmp = xasprintf("%s%s", path, DB_TMP_SUFFIX);
    final = xasprintf("%s%s", path, DB_SUFFIX);
    if (unlink(tmp) < 0 && errno != ENOENT) {
        *err = xasprintf("remove %s: %s", tmp, strerror(errno));
        goto fail;
    }
    if ((rc = db_create(&db, NULL, 0)) != 0) {
        *err = xasprintf("create database %s: db_create: %s", final, db_strerror(rc));
        goto fail;
    }
    db->set_errcall(db, db_errcall);
    if ((rc = db->open(db, NULL, tmp, NULL, dbtype, DB_CREATE | DB_EXCL, DB_BUILD_MODE)) != 0) {
        *err = xasprintf("create database %s: %s", tmp, db_strerror(rc));
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        rc = db_put(db, keys[i], values[i]);
        if (rc == DB_KEYEXIST) {
            msg_warn("%s: duplicate entry: \"%s\" (first value kept)", path, keys[i]);
            continue;
        }
        if (rc != 0) {
            *err = xasprintf("write database %s: %s", tmp, db_strerror(rc));
            goto fail;
        }
    }
    if ((rc = db->sync(db, 0)) != 0 || (rc = db->fd(db, &fd)) != 0) {
        *err = xasprintf("write database %s: %s", tmp, db_strerror(rc));
        goto fail;
    }
    if (fsync(fd) < 0) {
        *err = xasprintf("fsync %s: %s", tmp, strerror(errno));
        goto fail;
    }
    rc = db->close(db, 0);
    db = NULL;
    if (rc != 0) {
        *err = xasprintf("close database %s: %s", tmp, db_strerror(rc));
        goto fail;
    }
    if (rename(tmp, final) < 0) {
        *err = xasprintf("rename %s to %s: %s", tmp, final, strerror(errno));
        goto fail;
    }
    free(tmp);
    free(final);
    return 0;

fail:
    if (db != NULL)
        db->close(db, 0);
    (void)unlink(tmp);
    free(tmp);
    free(final);
    return -1;
}
