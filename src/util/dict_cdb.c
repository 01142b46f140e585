/*
 * dict_cdb.c - cdb: tables (constant databases, tinycdb's libcdb)
 *
 * "cdb:/etc/posta/transport" opens /etc/posta/transport.cdb. Postfix's
 * postmap stores cdb keys and values without a trailing NUL; a lookup
 * tries the plain key first, then the key with a NUL, and remembers which
 * form the file uses. A cdb file is never changed in place: a new one is
 * written to NAME.cdb.tmp (cdb_make) and renamed over NAME.cdb, so no
 * locking is needed; dict_lookup's change check reopens it.
 *
 * DIAGNOSTICS: open errors say "open database FILE.cdb: reason" (a file
 * too short for a cdb header: "not a cdb file"; a header whose tables lie
 * outside the file: "corrupt file"); a lookup that finds a record
 * pointing outside the file is DICT_TEMPFAIL with a warning.
 * SECURITY: tinycdb checks record positions against the file size.
 */
#include "util/sys.h"

#include <cdb.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "util/alloc.h"
#include "util/dict.h"
#include "util/dict_impl.h"
#include "util/log.h"

#define CDB_SUFFIX ".cdb"
#define CDB_TMP_SUFFIX ".cdb.tmp"
#define CDB_MODE 0644
#define CDB_LEN_MAX 0xffffffffu   /* cdb lengths are 32-bit */
#define CDB_HEADER_SLOTS 256      /* hash table pointers at the start of the file */
#define CDB_SLOT_SIZE 8           /* each: position, slot count (32-bit LE) */
#define CDB_HEADER_SIZE (CDB_HEADER_SLOTS * CDB_SLOT_SIZE)
#define BYTE_BITS 8

struct dict_cdb {
    struct cdb cdb;
    int fd;
    bool try_nul;
    bool try_plain;
};

/* cdb_value - copy the found record's data out (NUL dropped) */
static enum dict_result cdb_value(struct dict *d, struct dict_cdb *p, const char **value)
{
    unsigned n = cdb_datalen(&p->cdb);
    const char *data = cdb_get(&p->cdb, n, cdb_datapos(&p->cdb));

    if (data == NULL) {
        msg_warn("%s: read %s: corrupt record", d->spec, d->path);
        return DICT_TEMPFAIL;
    }
    if (n > 0 && data[n - 1] == 0)
        n--;
    return dict_set_value(d, data, n, value);
}

/* dict_cdb_lookup - plain key, then with its NUL */
static enum dict_result dict_cdb_lookup(struct dict *d, const char *key, const char **value)
{
    struct dict_cdb *p = d->priv;
    size_t len = strlen(key);
    int rc = 0;

    if (len >= CDB_LEN_MAX)
        return DICT_NOTFOUND;
    if (p->try_plain && len > 0) {
        rc = cdb_find(&p->cdb, key, (unsigned)len);
        if (rc > 0) {
            p->try_nul = false;
            return cdb_value(d, p, value);
        }
    }
    if (rc == 0 && p->try_nul) {
        rc = cdb_find(&p->cdb, key, (unsigned)len + 1);
        if (rc > 0) {
            p->try_plain = false;
            return cdb_value(d, p, value);
        }
    }
    if (rc < 0) {
        msg_warn("%s: lookup of \"%s\" in %s: corrupt file", d->spec, key, d->path);
        return DICT_TEMPFAIL;
    }
    return DICT_NOTFOUND;
}

/* counted_text - cdb bytes at pos as text without a trailing NUL */
static char *counted_text(const struct cdb *c, unsigned len, unsigned pos)
{
    const char *s = cdb_get(c, len, pos);

    if (s == NULL)
        return NULL;
    if (len > 0 && s[len - 1] == 0)
        len--;
    return xstrndup(s, len);
}

/* dict_cdb_walk - every record in file order */
static int dict_cdb_walk(struct dict *d, dict_walk_fn *fn, void *ctx, char **err)
{
    struct dict_cdb *p = d->priv;
    unsigned pos;
    int rc;

    cdb_seqinit(&pos, &p->cdb);
    while ((rc = cdb_seqnext(&pos, &p->cdb)) > 0) {
        char *k = counted_text(&p->cdb, cdb_keylen(&p->cdb), cdb_keypos(&p->cdb));
        char *v = counted_text(&p->cdb, cdb_datalen(&p->cdb), cdb_datapos(&p->cdb));
        if (k == NULL || v == NULL) {
            free(k);
            free(v);
            rc = -1;
            break;
        }
        fn(ctx, k, v);
        free(k);
        free(v);
    }
    if (rc < 0) {
        *err = xasprintf("read database %s: corrupt file", d->path);
        return -1;
    }
    return 0;
}

/* le32 - a little-endian 32-bit number */
static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << BYTE_BITS | (uint32_t)p[2] << (2 * BYTE_BITS) |
           (uint32_t)p[3] << (3 * BYTE_BITS);
}

/* cdb_header_ok - every hash table the header names lies inside the file */
static bool cdb_header_ok(const struct cdb *c, off_t size)
{
    const unsigned char *h = cdb_get(c, CDB_HEADER_SIZE, 0);

    if (h == NULL)
        return false;
    for (size_t i = 0; i < CDB_HEADER_SLOTS; i++) {
        uint64_t pos = le32(h + i * CDB_SLOT_SIZE);
        uint64_t slots = le32(h + i * CDB_SLOT_SIZE + 4);
        if (pos < CDB_HEADER_SIZE || pos > (uint64_t)size ||
            slots > ((uint64_t)size - pos) / CDB_SLOT_SIZE)
            return false;
    }
    return true;
}

/* dict_cdb_close - unmap and close */
static void dict_cdb_close(struct dict *d)
{
    struct dict_cdb *p = d->priv;

    if (p == NULL)
        return;
    cdb_free(&p->cdb);
    close(p->fd);
    free(p);
    d->priv = NULL;
}

/* dict_cdb_open - map NAME.cdb */
bool dict_cdb_open(struct dict *d, char **err)
{
    char *path;
    int fd;

    if (d->name[0] == 0) {
        *err = xasprintf("%s: empty table name", d->spec);
        return false;
    }
    path = xasprintf("%s%s", d->name, CDB_SUFFIX);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        *err = xasprintf("open database %s: %s", path, strerror(errno));
        free(path);
        return false;
    }
    struct dict_cdb *p = xcalloc(1, sizeof(*p));
    if (cdb_init(&p->cdb, fd) < 0) {
        *err = xasprintf("open database %s: %s", path,
                         errno == EPROTO || errno == 0 ? "not a cdb file" : strerror(errno));
        close(fd);
        free(p);
        free(path);
        return false;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !cdb_header_ok(&p->cdb, st.st_size)) {
        *err = xasprintf("open database %s: corrupt file (bad header)", path);
        cdb_free(&p->cdb);
        close(fd);
        free(p);
        free(path);
        return false;
    }
    p->fd = fd;
    p->try_nul = p->try_plain = true;
    d->priv = p;
    d->lookup = dict_cdb_lookup;
    d->walk = dict_cdb_walk;
    d->close = dict_cdb_close;
    dict_watch(d, path, fd);
    free(path);
    return true;
}

/* dict_cdb_build - write PATH.cdb atomically from n unique pairs */
int dict_cdb_build(const char *path, const char *const *keys, const char *const *values,
                   size_t n, bool nul, char **err)
{
    char *tmp = xasprintf("%s%s", path, CDB_TMP_SUFFIX);
    char *final = xasprintf("%s%s", path, CDB_SUFFIX);
    struct cdb_make cm;
    size_t extra = nul ? 1 : 0;
    int fd = -1, ret = -1;

    if (unlink(tmp) < 0 && errno != ENOENT) {
        *err = xasprintf("remove %s: %s", tmp, strerror(errno));
        goto out;
    }
    if ((fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, CDB_MODE)) < 0) {
        *err = xasprintf("create database %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (cdb_make_start(&cm, fd) < 0) {
        *err = xasprintf("create database %s: %s", tmp, strerror(errno));
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        size_t kl = strlen(keys[i]) + extra, vl = strlen(values[i]) + extra;
        if (kl == 0) {
            msg_warn("%s: empty key skipped", final);
            continue;
        }
        if (kl >= CDB_LEN_MAX || vl >= CDB_LEN_MAX ||
            cdb_make_add(&cm, keys[i], (unsigned)kl, values[i], (unsigned)vl) < 0) {
            *err = xasprintf("write database %s: %s", tmp,
                             errno ? strerror(errno) : "record too large");
            (void)cdb_make_finish(&cm);   /* frees its lists */
            goto out;
        }
    }
    if (cdb_make_finish(&cm) < 0) {
        *err = xasprintf("write database %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (fsync(fd) < 0) {
        *err = xasprintf("fsync %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) < 0) {
        fd = -1;
        *err = xasprintf("close %s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, final) < 0) {
        *err = xasprintf("rename %s to %s: %s", tmp, final, strerror(errno));
        goto out;
    }
    ret = 0;
out:
    if (fd >= 0)
        close(fd);
    if (ret != 0)
        (void)unlink(tmp);
    free(tmp);
    free(final);
    return ret;
}
