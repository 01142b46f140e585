/*
 * dict.c - lookup tables behind Postfix's "type:name"
 *
 * Parses the table spec, dispatches to the type's opener (dict_db.c,
 * dict_text.c, dict_cidr.c, dict_regexp.c, dict_lmdb.c, dict_cdb.c,
 * dict_multi.c, and static: and unix: here), folds keys, and watches the
 * backing file: dict_lookup() reopens a table whose file changed on disk
 * (checked at most once per recheck interval), keeping the old table when
 * the new file cannot be opened.
 *
 * DIAGNOSTICS: open failures are returned as text for the caller to log or
 * turn into a fatal error; lookup failures are DICT_TEMPFAIL, with a
 * warning naming the table. A reopen is logged ("table changed on disk,
 * reopened"); a failed reopen is one warning per new state of the file.
 * SECURITY: keys come from the network (addresses, client names); every
 * type treats them as opaque bytes with bounded copies.
 */
#include "util/sys.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/dict.h"
#include "util/dict_impl.h"
#include "util/log.h"

#define DICT_PROXY_PREFIX "proxy:"
#define DICT_LOCK_STEP_NS 10000000L  /* 10 ms between lock attempts */
#define DICT_NS_PER_MS 1000000L
#define DICT_PW_BUF_MIN 1024          /* first getpwnam_r buffer */
#define DICT_PW_SNAPSHOT_MAX 100000   /* accounts copied for a chrooted daemon */
#define DICT_PASSWD_FILE "/etc/passwd" /* absent inside a chroot jail */
#define DICT_PW_BUF_MAX (1u << 20)    /* give up past this (ERANGE loop) */
#define MS_PER_SEC 1000LL
#define NS_PER_MS 1000000L

static unsigned dict_recheck_ms = DICT_RECHECK_MS_DEFAULT;

struct dict_type_entry {
    const char *type;
    bool (*open)(struct dict *d, char **err);
};

static bool dict_static_open(struct dict *d, char **err);
static bool dict_db_open_walk(struct dict *d, char **err);
static bool dict_unix_open(struct dict *d, char **err);

static const struct dict_type_entry dict_types[] = {
    {"hash", dict_db_open_walk},
    {"btree", dict_db_open_walk},
    {"texthash", dict_texthash_open},
    {"inline", dict_inline_open},
    {"static", dict_static_open},
    {"cidr", dict_cidr_open},
    {"unix", dict_unix_open},
    {"regexp", dict_regexp_open},
    {"pcre", dict_regexp_open},
    {"lmdb", dict_lmdb_open},
    {"cdb", dict_cdb_open},
    {"unionmap", dict_unionmap_open},
    {"pipemap", dict_pipemap_open},
};

/* dict_db_open_walk - hash:/btree: with the listing of dict_build.c */
static bool dict_db_open_walk(struct dict *d, char **err)
{
    if (!dict_db_open(d, err))
        return false;
    d->walk = dict_db_walk;
    return true;
}

/* dict_fold - ASCII lower case in place (keys are not locale text) */
void dict_fold(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* dict_alloc - an empty dict with copies of its names */
struct dict *dict_alloc(const char *spec, const char *type, const char *name,
                        unsigned flags)
{
    struct dict *d = xcalloc(1, sizeof(*d));

    d->spec = xstrdup(spec);
    d->type = xstrdup(type);
    d->name = xstrdup(name);
    d->flags = flags;
    buf_init(&d->key, 0);
    buf_init(&d->value, 0);
    return d;
}

/* dict_free - run the type's close and release everything */
void dict_free(struct dict *d)
{
    if (d == NULL)
        return;
    if (d->close)
        d->close(d);
    free(d->spec);
    free(d->type);
    free(d->name);
    free(d->path);
    buf_free(&d->key);
    buf_free(&d->value);
    free(d);
}

/* dict_watch - remember the file's identity so dict_changed can compare */
void dict_watch(struct dict *d, const char *path, int fd)
{
    struct stat st;
    int rc = fd >= 0 ? fstat(fd, &st) : stat(path, &st);

    free(d->path);
    d->path = xstrdup(path);
    d->watched = rc == 0;
    if (rc == 0) {
        d->st_dev = st.st_dev;
        d->st_ino = st.st_ino;
        d->st_size = st.st_size;
        d->st_mtim = st.st_mtim;
    }
}

/* dict_set_value - copy a value into the dict's buffer and hand it out */
enum dict_result dict_set_value(struct dict *d, const void *p, size_t n, const char **value)
{
    buf_reset(&d->value);
    if (buf_append(&d->value, p, n) < 0 || buf_reserve(&d->value, 1) < 0) {
        msg_warn("%s: value too large", d->spec);
        return DICT_TEMPFAIL;
    }
    *value = buf_str(&d->value);
    return DICT_FOUND;
}

/* dict_read_file - slurp a text table, bounded by DICT_FILE_MAX */
char *dict_read_file(const char *path, size_t *len, char **err)
{
    struct buf b = BUF_INIT;

    if (buf_read_file(&b, path, DICT_FILE_MAX) < 0) {
        if (errno == EFBIG)
            *err = xasprintf("%s: file larger than %zu bytes", path, (size_t)DICT_FILE_MAX);
        else
            *err = xasprintf("open %s: %s", path, strerror(errno));
        buf_free(&b);
        return NULL;
    }
    *len = b.len;
    if (b.data == NULL)
        return xstrdup("");
    return buf_steal(&b);
}

/* flush_line - hand a finished logical line to the callback */
static void flush_line(struct buf *line, int lineno, const char *origin,
                       void (*fn)(void *, char *, int), void *ctx)
{
    if (line->len == 0)
        return;
    while (line->len > 0 && (line->data[line->len - 1] == ' ' ||
                             line->data[line->len - 1] == '\t'))
        buf_truncate(line, line->len - 1);
    if (memchr(line->data, 0, line->len) != NULL)
        msg_warn("%s, line %d: NUL byte in line, ignored", origin, lineno);
    else if (line->len > 0)
        fn(ctx, line->data, lineno);
    buf_reset(line);
}

/* dict_text_lines - postmap-style logical lines out of a text */
void dict_text_lines(const char *text, size_t len, const char *origin,
                     void (*fn)(void *ctx, char *line, int lineno), void *ctx)
{
    struct buf line = BUF_INIT;
    size_t pos = 0;
    int lineno = 0, start = 0;
    bool overflow = false;

    buf_init(&line, DICT_LINE_MAX);
    while (pos < len) {
        const char *p = text + pos;
        const char *nl = memchr(p, '\n', len - pos);
        size_t plen = nl ? (size_t)(nl - p) : len - pos;
        pos += plen + (nl ? 1 : 0);
        lineno++;
        if (plen > 0 && p[plen - 1] == '\r')
            plen--;

        size_t skip = 0;
        while (skip < plen && (p[skip] == ' ' || p[skip] == '\t'))
            skip++;
        if (skip == plen || p[skip] == '#')
            continue;                       /* blank or comment line */
        if (skip == 0) {                    /* a new logical line */
            if (!overflow)
                flush_line(&line, start, origin, fn, ctx);
            buf_reset(&line);
            overflow = false;
            start = lineno;
        } else if (line.len == 0 && !overflow) {
            msg_warn("%s, line %d: logical line must not start with white space",
                     origin, lineno);
            start = lineno;
            p += skip;
            plen -= skip;
        }
        if (!overflow && buf_append(&line, p, plen) < 0) {
            msg_warn("%s, line %d: line longer than %zu bytes, ignored",
                     origin, start, (size_t)DICT_LINE_MAX);
            overflow = true;
            buf_reset(&line);
        }
    }
    if (!overflow)
        flush_line(&line, start, origin, fn, ctx);
    buf_free(&line);
}

/* dict_static_lookup - every key finds the same value */
static enum dict_result dict_static_lookup(struct dict *d, const char *key, const char **value)
{
    const char *v = d->priv;

    return dict_set_value(d, v, strlen(v), value);
}

/* dict_priv_free - close method for a priv that is one allocation */
static void dict_priv_free(struct dict *d)
{
    free(d->priv);
    d->priv = NULL;
}

/* dict_static_open - static:value or static:{value with spaces} */
static bool dict_static_open(struct dict *d, char **err)
{
    const char *v = d->name;
    size_t n = strlen(v);

    if (n > 0 && v[0] == '{') {
        if (v[n - 1] != '}') {
            *err = xasprintf("static:%s: missing '}'", v);
            return false;
        }
        v++;
        n -= 2;
        while (n > 0 && (*v == ' ' || *v == '\t'))
            v++, n--;
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
    }
    d->priv = xstrndup(v, n);
    d->lookup = dict_static_lookup;
    d->close = dict_priv_free;
    return true;
}

/* unix_lookup - getgrnam_r (group) or getpwnam_r with a growing buffer */
static enum dict_result unix_lookup(struct dict *d, const char *key, bool group,
                                    const char **value)
{
    struct passwd pw, *pres = NULL;
    struct group gr, *gres = NULL;
    struct buf out = BUF_INIT;
    size_t size = DICT_PW_BUF_MIN;
    char *buf = NULL;
    enum dict_result r;
    int rc;

    for (;;) {
        buf = xrealloc(buf, size);
        if (group)
            rc = getgrnam_r(key, &gr, buf, size, &gres);
        else
            rc = getpwnam_r(key, &pw, buf, size, &pres);
        if (rc != ERANGE || size >= DICT_PW_BUF_MAX)
            break;
        size *= 2;
    }
    if (pres != NULL) {
        buf_printf(&out, "%s:%s:%ld:%ld:%s:%s:%s", pw.pw_name, pw.pw_passwd,
                   (long)pw.pw_uid, (long)pw.pw_gid, pw.pw_gecos ? pw.pw_gecos : "",
                   pw.pw_dir ? pw.pw_dir : "", pw.pw_shell ? pw.pw_shell : "");
    } else if (gres != NULL) {
        buf_printf(&out, "%s:%s:%ld:", gr.gr_name, gr.gr_passwd ? gr.gr_passwd : "",
                   (long)gr.gr_gid);
        for (char **m = gr.gr_mem; m && *m; m++)
            buf_printf(&out, "%s%s", m == gr.gr_mem ? "" : ",", *m);
    }
    if (pres != NULL || gres != NULL) {
        r = dict_set_value(d, buf_str(&out), out.len, value);
    } else if (rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM) {
        r = DICT_NOTFOUND;
    } else {
        msg_warn("%s: lookup of \"%s\": %s", d->spec, key, strerror(rc));
        r = DICT_TEMPFAIL;
    }
    buf_free(&out);
    free(buf);
    return r;
}

/*
 * The passwd snapshot: a daemon chrooted into the queue (master.cf chroot
 * = y; Postfix would ask proxymap outside the jail) cannot read
 * /etc/passwd. unix:passwd.byname therefore copies the accounts when it
 * is opened (before the jail) and answers from the copy when the live
 * database is out of reach. A restart (posta reload) takes a new copy.
 */
struct pw_entry {
    char *name;
    char *line;        /* "name:passwd:uid:gid:gecos:dir:shell" */
};

struct pw_snapshot {
    struct pw_entry *e;
    size_t n;
};

/* pw_entry_cmp - order by name (qsort/bsearch) */
static int pw_entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct pw_entry *)a)->name, ((const struct pw_entry *)b)->name);
}

/* pw_snapshot_take - every account NSS lists now, sorted by name */
static struct pw_snapshot *pw_snapshot_take(void)
{
    struct pw_snapshot *snap = xcalloc(1, sizeof(*snap));
    size_t cap = 0;
    struct passwd *pw;

    setpwent();
    while ((pw = getpwent()) != NULL && snap->n < DICT_PW_SNAPSHOT_MAX) {
        if (snap->n == cap) {
            cap = cap ? cap * 2 : 64;
            snap->e = xreallocarray(snap->e, cap, sizeof(*snap->e));
        }
        snap->e[snap->n].name = xstrdup(pw->pw_name);
        snap->e[snap->n].line = xasprintf("%s:%s:%ld:%ld:%s:%s:%s", pw->pw_name, pw->pw_passwd,
                                          (long)pw->pw_uid, (long)pw->pw_gid,
                                          pw->pw_gecos ? pw->pw_gecos : "",
                                          pw->pw_dir ? pw->pw_dir : "",
                                          pw->pw_shell ? pw->pw_shell : "");
        snap->n++;
    }
    endpwent();
    if (snap->n > 0)
        qsort(snap->e, snap->n, sizeof(*snap->e), pw_entry_cmp);
    return snap;
}

/* pw_snapshot_free - release the copy (dict close) */
static void pw_snapshot_free(struct dict *d)
{
    struct pw_snapshot *snap = d->priv;

    for (size_t i = 0; snap && i < snap->n; i++) {
        free(snap->e[i].name);
        free(snap->e[i].line);
    }
    if (snap)
        free(snap->e);
    free(snap);
    d->priv = NULL;
}

/* unix_pw_lookup - unix:passwd.byname: live, or the copy inside a jail */
static enum dict_result unix_pw_lookup(struct dict *d, const char *key, const char **value)
{
    enum dict_result r = unix_lookup(d, key, false, value);
    struct pw_snapshot *snap = d->priv;
    struct pw_entry probe = {(char *)key, NULL}, *hit;

    if (r != DICT_NOTFOUND || snap == NULL || snap->n == 0 || access(DICT_PASSWD_FILE, F_OK) == 0)
        return r;
    hit = bsearch(&probe, snap->e, snap->n, sizeof(*snap->e), pw_entry_cmp);
    if (hit == NULL)
        return DICT_NOTFOUND;
    return dict_set_value(d, hit->line, strlen(hit->line), value);
}

/* unix_gr_lookup - unix:group.byname */
static enum dict_result unix_gr_lookup(struct dict *d, const char *key, const char **value)
{
    return unix_lookup(d, key, true, value);
}

/* dict_unix_open - unix:passwd.byname and unix:group.byname */
static bool dict_unix_open(struct dict *d, char **err)
{
    if (strcmp(d->name, "passwd.byname") == 0) {
        d->lookup = unix_pw_lookup;
        d->priv = pw_snapshot_take();
        d->close = pw_snapshot_free;
    }
    else if (strcmp(d->name, "group.byname") == 0)
        d->lookup = unix_gr_lookup;
    else {
        *err = xasprintf("unknown table: unix:%s", d->name);
        return false;
    }
    d->flags |= DICT_FLAG_FIXED_CASE;
    return true;
}

/* dict_file_lock - shared lock or unlock of a table file, waiting briefly */
bool dict_file_lock(int fd, short type)
{
    struct flock fl;
    long waited = 0;

    memset(&fl, 0, sizeof(fl));
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    for (;;) {
        struct timespec ts = {0, DICT_LOCK_STEP_NS};

        if (fcntl(fd, F_SETLK, &fl) == 0)
            return true;
        if ((errno != EAGAIN && errno != EACCES && errno != EINTR)
            || waited >= (long)DICT_LOCK_WAIT_MS * DICT_NS_PER_MS)
            return false;
        nanosleep(&ts, NULL);
        waited += DICT_LOCK_STEP_NS;
    }
}

/* dict_open - "type:name" (any "proxy:" prefixes dropped) */
struct dict *dict_open(const char *spec, unsigned flags, char **err)
{
    const char *s = spec;
    const char *colon;

    *err = NULL;
    while (strncmp(s, DICT_PROXY_PREFIX, strlen(DICT_PROXY_PREFIX)) == 0)
        s += strlen(DICT_PROXY_PREFIX);
    colon = strchr(s, ':');
    if (colon == NULL || colon == s) {
        *err = xasprintf("open dictionary: expecting \"type:name\" form instead of \"%s\"",
                         spec);
        return NULL;
    }
    char *type = xstrndup(s, (size_t)(colon - s));
    const struct dict_type_entry *t = NULL;
    for (size_t i = 0; i < POSTA_ARRAY_LEN(dict_types); i++)
        if (strcmp(dict_types[i].type, type) == 0)
            t = &dict_types[i];
    if (t == NULL) {
        *err = xasprintf("unsupported dictionary type: %s", type);
        free(type);
        return NULL;
    }
    struct dict *d = dict_alloc(spec, type, colon + 1, flags);
    free(type);
    d->open_flags = flags;
    if (!t->open(d, err)) {
        dict_free(d);
        return NULL;
    }
    if (d->lookup == NULL)
        msg_panic("dict_open: %s: type set no lookup method", spec);
    return d;
}

/* dict_set_recheck_interval - how often dict_lookup looks at table files */
void dict_set_recheck_interval(unsigned ms)
{
    dict_recheck_ms = ms;
}

/* now_ms - monotonic milliseconds (never 0) */
static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * MS_PER_SEC + ts.tv_nsec / NS_PER_MS + 1;
}

/* same_failure - the file is as it was when the last reopen failed */
static bool same_failure(const struct dict *d, int rc, const struct stat *st)
{
    if (rc < 0)
        return d->fail_ino == 0;
    return st->st_ino == d->fail_ino && st->st_size == d->fail_size &&
           st->st_mtim.tv_sec == d->fail_mtim.tv_sec &&
           st->st_mtim.tv_nsec == d->fail_mtim.tv_nsec;
}

/* dict_adopt - move a freshly opened table's insides into d */
static void dict_adopt(struct dict *d, struct dict *n)
{
    if (d->close)
        d->close(d);
    d->lookup = n->lookup;
    d->close = n->close;
    d->walk = n->walk;
    d->priv = n->priv;
    d->flags = n->flags;
    free(d->path);
    d->path = n->path;
    d->watched = n->watched;
    d->st_dev = n->st_dev;
    d->st_ino = n->st_ino;
    d->st_size = n->st_size;
    d->st_mtim = n->st_mtim;
    d->reopen_failed = false;
    n->priv = NULL;
    n->close = NULL;
    n->path = NULL;
    dict_free(n);
}

/* dict_maybe_reopen - reopen the table when its file changed on disk */
static void dict_maybe_reopen(struct dict *d)
{
    struct stat st;
    long long now;
    char *err = NULL;
    int rc;

    if (d->path == NULL)
        return;
    now = now_ms();
    if (d->checked_ms != 0 && now - d->checked_ms < (long long)dict_recheck_ms &&
        now >= d->checked_ms)
        return;
    d->checked_ms = now;
    if (!dict_changed(d))
        return;
    rc = stat(d->path, &st);
    if (d->reopen_failed && same_failure(d, rc, &st))
        return;
    struct dict *n = dict_open(d->spec, d->open_flags, &err);
    if (n == NULL) {
        msg_warn("%s: table file changed but cannot be reopened: %s; still using the old table",
                 d->spec, err ? err : "unknown error");
        free(err);
        d->reopen_failed = true;
        d->fail_ino = rc < 0 ? 0 : st.st_ino;
        d->fail_size = rc < 0 ? 0 : st.st_size;
        d->fail_mtim = rc < 0 ? (struct timespec){0, 0} : st.st_mtim;
        return;
    }
    msg_info("%s: table changed on disk, reopened", d->spec);
    dict_adopt(d, n);
    d->checked_ms = now;
}

/* dict_walk - list a file table's entries, if the type can */
int dict_walk(struct dict *d, dict_walk_fn *fn, void *ctx, char **err)
{
    *err = NULL;
    dict_maybe_reopen(d);
    if (d->walk == NULL) {
        *err = xasprintf("table %s: listing is not supported for type %s", d->spec, d->type);
        return -1;
    }
    return d->walk(d, fn, ctx, err);
}

/* dict_lookup - fold the key as configured and ask the type */
enum dict_result dict_lookup(struct dict *d, const char *key, const char **value)
{
    const char *dummy;

    if (value == NULL)
        value = &dummy;
    *value = NULL;
    dict_maybe_reopen(d);
    if (d->flags & DICT_FLAG_FIXED_CASE)
        return d->lookup(d, key, value);
    if (buf_set(&d->key, key) < 0)
        return DICT_NOTFOUND;
    if (d->key.data == NULL)
        return d->lookup(d, "", value);
    dict_fold(d->key.data);
    return d->lookup(d, d->key.data, value);
}

/* dict_changed - the watched file is gone or differs from when opened */
bool dict_changed(struct dict *d)
{
    struct stat st;

    if (d->path == NULL)
        return false;
    if (stat(d->path, &st) < 0)
        return true;
    if (!d->watched)
        return true;
    return st.st_dev != d->st_dev || st.st_ino != d->st_ino || st.st_size != d->st_size ||
           st.st_mtim.tv_sec != d->st_mtim.tv_sec || st.st_mtim.tv_nsec != d->st_mtim.tv_nsec;
}

/* dict_spec - the spec as given to dict_open */
const char *dict_spec(const struct dict *d)
{
    return d->spec;
}

/* dict_type - the type name without "proxy:" */
const char *dict_type(const struct dict *d)
{
    return d->type;
}

/* dict_close - release the table */
void dict_close(struct dict *d)
{
    dict_free(d);
}
