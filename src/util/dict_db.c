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
 * half-written; a lock not granted within DB_LOCK_WAIT_MS is a
 * temporary failure.
 *
 * DIAGNOSTICS: open errors say "open database FILE.db: reason"; lookup
 * errors are DICT_TEMPFAIL with a warning. Berkeley DB's own messages go
 * to verbose logging.
 * SECURITY: opened read-only; keys are passed to Berkeley DB as counted
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
#define DB_LOCK_WAIT_MS 2000       /* give up on a shared lock after this */
#define DB_LOCK_STEP_NS 10000000L  /* 10 ms between lock attempts */
#define NS_PER_MS 1000000L

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

/* db_lock - shared (F_RDLCK) or release (F_UNLCK) the whole file */
static bool db_lock(int fd, short type)
{
    struct flock fl;
    long waited = 0;

    memset(&fl, 0, sizeof(fl));
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    for (;;) {
        if (fcntl(fd, F_SETLK, &fl) == 0)
            return true;
        if ((errno != EAGAIN && errno != EACCES && errno != EINTR) ||
            waited >= (long)DB_LOCK_WAIT_MS * NS_PER_MS)
            return false;
        struct timespec ts = {0, DB_LOCK_STEP_NS};
        nanosleep(&ts, NULL);
        waited += DB_LOCK_STEP_NS;
    }
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
    if (!db_lock(p->fd, F_RDLCK)) {
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
    if (!db_lock(p->fd, F_UNLCK))
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
