/*
 * cmd_map.c - "posta map": Postfix's postmap(1) for posta's tables
 *
 *   posta map [options] [type:]file ...      build file.db/.lmdb/.cdb from file
 *   posta map -q key [type:]name ...         query (any table type)
 *   posta map -q - [type:]name ...           query the keys on stdin
 *   posta map -s [type:]name ...             list every entry
 *   posta map -d key|- [type:]name ...       delete entries
 *   posta map -i [type:]file ...             add entries from stdin
 *
 * The source is postmap's input format: "key value" per logical line,
 * '#' comments and blank lines ignored, a line that starts with white
 * space continues the previous one. Keys are folded to lower case unless
 * -f. A key given twice keeps its first value with a warning (-r: the
 * last value wins; -w: no warning). A table is written to a temporary
 * file and renamed into place, so readers never see it half-built; the
 * result gets the source file's mode (and owner, when run as root)
 * unless -p; -i and -d keep the table's own owner and mode. While the
 * temporary file is written the umask is 077, so a table of secrets is
 * never readable by others, not even for a moment. Writers are
 * serialised by an flock(2) on the table's folder (readers use fcntl
 * locks, which flock does not touch), so two concurrent "posta map -i"
 * runs cannot lose each other's entries or share a temporary file.
 *
 * -F (as postmap): when building, each value is a list of file names
 * whose contents are concatenated and stored base64-encoded; when
 * querying or listing, values are base64-decoded before printing.
 * -N stores keys and values with a trailing NUL, -n without (the
 * defaults are Postfix's: with for hash, btree and lmdb, without for
 * cdb). -o is accepted for compatibility (posta map never changes its
 * privileges).
 *
 * DIAGNOSTICS: warnings (bad lines, duplicates) name the file and line;
 * errors are "fatal:" lines naming the file. Exit status 0 on success,
 * 1 when a -q or -d key was not found, 2 on an error or bad usage.
 * SECURITY: runs with the caller's privileges; as root it hands the
 * result to the source file's owner.
 */
#include "util/sys.h"

#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "cmd_map.h"
#include "mail/config.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/dict.h"
#include "util/log.h"

#define EXIT_MAP_OK 0
#define EXIT_MAP_NOTFOUND 1
#define EXIT_MAP_ERROR 2
#define MAP_FALLBACK_TYPE "hash"
#define MAP_STDIN_MAX ((size_t)256 << 20)   /* largest -i / -q - / -d - input */
#define MAP_VALUE_FILE_MAX ((size_t)64 << 20) /* largest -F value file */
#define MAP_SECRET_UMASK 077
#define MAP_DEFAULT_MODE 0644
#define MAP_MODE_BITS 0777
#define MAP_INDEX_MIN 64
#define B64_GROUP 3
#define B64_CHARS 4
#define B64_BITS 6
#define B64_MASK 0x3f
#define BYTE_BITS 8
#define BYTE_MASK 0xff
#define FNV_OFFSET 2166136261u
#define FNV_PRIME 16777619u

enum map_mode { MODE_BUILD, MODE_QUERY, MODE_DUMP, MODE_DELETE };
enum dup_policy { DUP_WARN, DUP_REPLACE, DUP_IGNORE };

struct map_opts {
    const char *config_dir;
    enum map_mode mode;
    enum dup_policy dups;
    bool fixed_case;      /* -f */
    bool base64;          /* -F */
    bool incremental;     /* -i */
    bool no_inherit;      /* -p */
    unsigned build_flags; /* -N / -n */
    const char *query;    /* -q */
    char **del;           /* -d keys */
    size_t ndel;
    char *default_type;
};

/* The entries of one table while it is built or edited. */
struct pairs {
    char **key;           /* NULL: deleted */
    char **value;
    size_t n, cap;
    size_t *slot;         /* open addressing: index + 1, 0 empty */
    size_t nslot;
    const struct map_opts *o;
    const char *origin;   /* source name for warnings */
};

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* usage - the synopsis on stderr; exit status 2 */
static int usage(void)
{
    fprintf(stderr,
            "usage: posta map [-c config_dir] [-f] [-F] [-N|-n] [-i] [-o] [-p] [-r] [-w] [-v]\n"
            "                 [-q key|-] [-s] [-d key|-] [type:]file ...\n"
            "  build:  posta map [type:]file      (hash, btree, lmdb, cdb; default "
            "$default_database_type)\n"
            "  query:  posta map -q key type:name  (exit 0 found, 1 not found, 2 error)\n"
            "  list:   posta map -s type:name\n"
            "  delete: posta map -d key type:name\n"
            "  add:    posta map -i type:file < entries\n");
    return EXIT_MAP_ERROR;
}

/* fail - a fatal error: message and exit status 2 */
static void POSTA_NORETURN POSTA_PRINTF(1, 2) fail(const char *fmt, ...)
{
    va_list ap;
    struct buf b = BUF_INIT;

    va_start(ap, fmt);
    (void)buf_vprintf(&b, fmt, ap);
    va_end(ap);
    msg_fatal_status(EXIT_MAP_ERROR, "%s", buf_str(&b));
}

/* str_hash - FNV-1a */
static uint32_t str_hash(const char *s)
{
    uint32_t h = FNV_OFFSET;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= FNV_PRIME;
    }
    return h;
}

/* pairs_find - the index of key, or SIZE_MAX */
static size_t pairs_find(const struct pairs *p, const char *key)
{
    if (p->nslot == 0)
        return SIZE_MAX;
    for (size_t j = str_hash(key) & (p->nslot - 1); p->slot[j] != 0; j = (j + 1) & (p->nslot - 1)) {
        size_t i = p->slot[j] - 1;
        if (p->key[i] != NULL && strcmp(p->key[i], key) == 0)
            return i;
    }
    return SIZE_MAX;
}

/* pairs_index - put entry i into the index */
static void pairs_index(struct pairs *p, size_t i)
{
    size_t j = str_hash(p->key[i]) & (p->nslot - 1);

    while (p->slot[j] != 0)
        j = (j + 1) & (p->nslot - 1);
    p->slot[j] = i + 1;
}

/* pairs_grow - room for one more entry, the index at most half full */
static void pairs_grow(struct pairs *p)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : MAP_INDEX_MIN;
        p->key = xreallocarray(p->key, p->cap, sizeof(char *));
        p->value = xreallocarray(p->value, p->cap, sizeof(char *));
    }
    if ((p->n + 1) * 2 > p->nslot) {
        free(p->slot);
        p->nslot = p->nslot ? p->nslot * 2 : MAP_INDEX_MIN * 2;
        p->slot = xcalloc(p->nslot, sizeof(*p->slot));
        for (size_t i = 0; i < p->n; i++)
            if (p->key[i] != NULL)
                pairs_index(p, i);
    }
}

/* pairs_add - one entry, duplicates as the options say */
static void pairs_add(struct pairs *p, const char *key, const char *value, int lineno)
{
    size_t i = pairs_find(p, key);

    if (i != SIZE_MAX) {
        if (p->o->dups == DUP_REPLACE) {
            free(p->value[i]);
            p->value[i] = xstrdup(value);
        } else if (p->o->dups == DUP_WARN) {
            if (lineno > 0)
                msg_warn("%s, line %d: duplicate entry: \"%s\"", p->origin, lineno, key);
            else
                msg_warn("%s: duplicate entry: \"%s\"", p->origin, key);
        }
        return;
    }
    pairs_grow(p);
    p->key[p->n] = xstrdup(key);
    p->value[p->n] = xstrdup(value);
    pairs_index(p, p->n);
    p->n++;
}

/* pairs_delete - remove key; false if it is not there */
static bool pairs_delete(struct pairs *p, const char *key)
{
    size_t i = pairs_find(p, key);

    if (i == SIZE_MAX)
        return false;
    free(p->key[i]);
    free(p->value[i]);
    p->key[i] = p->value[i] = NULL;
    return true;
}

/* pairs_compact - drop deleted entries (the index is not used afterwards) */
static void pairs_compact(struct pairs *p)
{
    size_t w = 0;

    for (size_t i = 0; i < p->n; i++) {
        if (p->key[i] == NULL)
            continue;
        p->key[w] = p->key[i];
        p->value[w] = p->value[i];
        w++;
    }
    p->n = w;
}

/* pairs_free - release everything */
static void pairs_free(struct pairs *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->key[i]);
        free(p->value[i]);
    }
    free(p->key);
    free(p->value);
    free(p->slot);
    memset(p, 0, sizeof(*p));
}

/* b64_encode - append the base64 form of n bytes */
static void b64_encode(struct buf *out, const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i += B64_GROUP) {
        unsigned long v = (unsigned long)s[i] << (2 * BYTE_BITS);
        size_t left = n - i;
        if (left > 1)
            v |= (unsigned long)s[i + 1] << BYTE_BITS;
        if (left > 2)
            v |= s[i + 2];
        char q[B64_CHARS];
        for (int k = 0; k < B64_CHARS; k++)
            q[k] = b64_alphabet[(v >> (B64_BITS * (B64_CHARS - 1 - k))) & B64_MASK];
        if (left < 3)
            q[3] = '=';
        if (left < 2)
            q[2] = '=';
        if (buf_append(out, q, B64_CHARS) < 0)
            fail("base64 value too large");
    }
}

/* b64_decode - the bytes of a base64 text; false if it is not base64 */
static bool b64_decode(const char *s, struct buf *out)
{
    unsigned long v = 0;
    int bits = 0;

    buf_reset(out);
    for (; *s && *s != '='; s++) {
        const char *c = strchr(b64_alphabet, *s);
        if (c == NULL || *s == 0)
            return false;
        v = (v << B64_BITS) | (unsigned long)(c - b64_alphabet);
        bits += B64_BITS;
        if (bits >= BYTE_BITS) {
            bits -= BYTE_BITS;
            if (buf_putc(out, (int)((v >> bits) & BYTE_MASK)) < 0)
                return false;
        }
    }
    for (; *s == '='; s++)
        ;
    return *s == 0;
}

/* file_value - -F: the named files' contents, concatenated and base64-encoded */
static bool file_value(const char *origin, int lineno, const char *names, struct buf *out)
{
    struct buf raw = BUF_INIT;
    char *copy = xstrdup(names), *save = NULL;
    bool ok = true;

    buf_init(&raw, MAP_VALUE_FILE_MAX);
    for (char *f = strtok_r(copy, " \t,", &save); f; f = strtok_r(NULL, " \t,", &save)) {
        FILE *fp = fopen(f, "re");
        char chunk[BUFSIZ];
        size_t n;
        if (fp == NULL) {
            msg_warn("%s, line %d: open %s: %s: skipping this entry", origin, lineno, f,
                     strerror(errno));
            ok = false;
            break;
        }
        while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
            if (buf_append(&raw, chunk, n) < 0)
                break;
        if (ferror(fp) || n > 0) {
            msg_warn("%s, line %d: read %s: %s: skipping this entry", origin, lineno, f,
                     n > 0 ? "file too large" : strerror(errno));
            ok = false;
        }
        fclose(fp);
        if (!ok)
            break;
    }
    buf_reset(out);
    if (ok)
        b64_encode(out, (const unsigned char *)buf_str(&raw), raw.len);
    buf_free(&raw);
    free(copy);
    return ok;
}

/* source_line - one "key value" logical line into the pairs */
static void source_line(void *ctx, char *line, int lineno)
{
    struct pairs *p = ctx;
    char *key = line;
    char *v = key + strcspn(key, " \t");

    if (*v == 0) {
        msg_warn("%s, line %d: expected format: key whitespace value -- ignoring this line", p->origin, lineno);
        return;
    }
    *v++ = 0;
    v += strspn(v, " \t");
    if (key[strlen(key) - 1] == ':')
        msg_warn("%s, line %d: record is in \"key: value\" format; is this an alias file?",
                 p->origin, lineno);
    if (!p->o->fixed_case)
        for (char *c = key; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
    if (p->o->base64) {
        struct buf enc = BUF_INIT;
        if (file_value(p->origin, lineno, v, &enc))
            pairs_add(p, key, buf_str(&enc), lineno);
        buf_free(&enc);
        return;
    }
    pairs_add(p, key, v, lineno);
}

/* read_stdin - all of standard input, bounded */
static char *read_stdin(size_t *len)
{
    struct buf b = BUF_INIT;
    char chunk[BUFSIZ];
    size_t n;

    buf_init(&b, MAP_STDIN_MAX);
    while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
        if (buf_append(&b, chunk, n) < 0)
            fail("standard input: more than %zu bytes", (size_t)MAP_STDIN_MAX);
    if (ferror(stdin))
        fail("read standard input: %s", strerror(errno));
    *len = b.len;
    return b.data ? buf_steal(&b) : xstrdup("");
}

/* walk_add - dict_walk callback: existing entries into the pairs */
static void walk_add(void *ctx, const char *key, const char *value)
{
    pairs_add(ctx, key, value, 0);
}

/* default_type - $default_database_type of the configuration, else hash */
static const char *default_type(struct map_opts *o)
{
    if (o->default_type != NULL)
        return o->default_type;
    const char *dir = cfg_default_dir(o->config_dir);
    char *main_cf = xasprintf("%s/main.cf", dir);
    struct stat st;
    if (stat(main_cf, &st) == 0) {
        struct cfg *cfg = cfg_load(dir);
        o->default_type = xstrdup(cfg_str(cfg, "default_database_type"));
        cfg_free(cfg);
    } else {
        o->default_type = xstrdup(MAP_FALLBACK_TYPE);
    }
    free(main_cf);
    return o->default_type;
}

/* is_type_prefix - arg has a "type:" prefix (letters, digits, '_', '-') */
static bool is_type_prefix(const char *arg, size_t *len)
{
    const char *colon = strchr(arg, ':');

    if (colon == NULL || colon == arg)
        return false;
    for (const char *s = arg; s < colon; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return false;
    *len = (size_t)(colon - arg);
    return true;
}

/* full_spec - "type:name" for arg, the default type added when missing */
static char *full_spec(struct map_opts *o, const char *arg)
{
    size_t n;

    if (is_type_prefix(arg, &n))
        return xstrdup(arg);
    return xasprintf("%s:%s", default_type(o), arg);
}

/* split_spec - type and name of a buildable spec ("proxy:" dropped) */
static void split_spec(const char *spec, char **type, const char **name)
{
    const char *s = spec;
    const char *colon;

    while (strncmp(s, "proxy:", strlen("proxy:")) == 0)
        s += strlen("proxy:");
    colon = strchr(s, ':');
    *type = xstrndup(s, (size_t)(colon - s));
    *name = colon + 1;
    if (!dict_buildable(*type))
        fail("unsupported map type for this operation: %s (use hash, btree, lmdb or cdb)",
             *type);
    if (**name == 0)
        fail("%s: empty file name", spec);
}

/* open_table - dict_open or a fatal error naming the table */
static struct dict *open_table(const struct map_opts *o, const char *spec)
{
    char *err = NULL;
    struct dict *d = dict_open(spec, o->fixed_case ? DICT_FLAG_FIXED_CASE : 0, &err);

    if (d == NULL)
        fail("%s", err);
    return d;
}

/* write_table - build type:name from the pairs; mode/owner from ref (if any) */
static void write_table(const struct map_opts *o, const char *type, const char *name,
                        struct pairs *p, const struct stat *ref)
{
    char *err = NULL;
    char *final = xasprintf("%s%s", name, dict_build_suffix(type));
    mode_t old = umask(MAP_SECRET_UMASK);

    pairs_compact(p);
    int rc = dict_build(type, name, (const char *const *)p->key, (const char *const *)p->value,
                        p->n, o->build_flags, &err);
    umask(old);
    if (rc < 0)
        fail("%s", err);
    mode_t mode = ref ? ref->st_mode & MAP_MODE_BITS : MAP_DEFAULT_MODE & ~old;
    if (ref != NULL && geteuid() == 0 && chown(final, ref->st_uid, ref->st_gid) < 0)
        fail("chown %s: %s", final, strerror(errno));
    if (chmod(final, mode) < 0)
        fail("chmod %s: %s", final, strerror(errno));
    free(final);
}

/* writer_lock - flock the folder that holds name (serialises writers); the fd */
static int writer_lock(const char *name)
{
    char *copy = xstrdup(name);
    const char *dir = dirname(copy);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0)
        fail("open folder %s: %s", dir, strerror(errno));
    while (flock(fd, LOCK_EX) < 0)
        if (errno != EINTR)
            fail("lock folder %s: %s", dir, strerror(errno));
    free(copy);
    return fd;
}

/* do_build - build one table from its source file (or -i: from stdin) */
static void do_build(struct map_opts *o, const char *arg)
{
    char *spec = full_spec(o, arg), *type, *err = NULL;
    const char *name;
    struct pairs p;
    struct stat src, *ref = NULL;

    split_spec(spec, &type, &name);
    memset(&p, 0, sizeof(p));
    p.o = o;
    p.origin = name;
    int lock = writer_lock(name);
    if (o->incremental) {
        char *existing = xasprintf("%s%s", name, dict_build_suffix(type));
        if (stat(existing, &src) == 0) {
            struct dict *d = open_table(o, spec);
            if (dict_walk(d, walk_add, &p, &err) < 0)
                fail("%s", err);
            dict_close(d);
            ref = &src;
        }
        free(existing);
        size_t len;
        char *text = read_stdin(&len);
        p.origin = "standard input";
        dict_source_text(text, len, p.origin, source_line, &p);
        free(text);
    } else {
        if (dict_source_file(name, source_line, &p, &err) < 0)
            fail("%s", err);
        if (!o->no_inherit && stat(name, &src) == 0)
            ref = &src;
    }
    write_table(o, type, name, &p, ref);
    close(lock);
    pairs_free(&p);
    free(type);
    free(spec);
}

/* print_value - a value as found, or -F: base64-decoded */
static void print_value(const struct map_opts *o, const char *key, const char *value)
{
    struct buf dec = BUF_INIT;

    if (o->base64 && b64_decode(value, &dec)) {
        if (key != NULL)
            printf("%s\t", key);
        fwrite(buf_str(&dec), 1, dec.len, stdout);
        putchar('\n');     /* as postmap -F, even after a final newline */
    } else if (key != NULL) {
        printf("%s\t%s\n", key, value);
    } else {
        printf("%s\n", value);
    }
    buf_free(&dec);
}

/* query_one - key in each table in turn; the first hit counts */
static enum dict_result query_one(const struct map_opts *o, struct dict **d, size_t n,
                                  const char *key, const char **value)
{
    for (size_t i = 0; i < n; i++) {
        enum dict_result r = dict_lookup(d[i], key, value);
        if (r == DICT_TEMPFAIL)
            fail("table %s: lookup of \"%s\" failed (temporary error)", dict_spec(d[i]), key);
        if (r == DICT_FOUND)
            return r;
    }
    return DICT_NOTFOUND;
}

/* do_query - -q key or -q - over every table */
static int do_query(struct map_opts *o, int argc, char **argv)
{
    struct dict **d = xcalloc((size_t)argc, sizeof(*d));
    const char *value;
    bool found = false;

    for (int i = 0; i < argc; i++) {
        char *spec = full_spec(o, argv[i]);
        d[i] = open_table(o, spec);
        free(spec);
    }
    if (strcmp(o->query, "-") != 0) {
        found = query_one(o, d, (size_t)argc, o->query, &value) == DICT_FOUND;
        if (found)
            print_value(o, NULL, value);
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while ((n = getline(&line, &cap, stdin)) >= 0) {
            while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                line[--n] = 0;
            if (n == 0)
                continue;
            if (query_one(o, d, (size_t)argc, line, &value) == DICT_FOUND) {
                print_value(o, line, value);
                found = true;
            }
        }
        free(line);
    }
    for (int i = 0; i < argc; i++)
        dict_close(d[i]);
    free(d);
    if (fflush(stdout) != 0)
        fail("write standard output: %s", strerror(errno));
    return found ? EXIT_MAP_OK : EXIT_MAP_NOTFOUND;
}

/* dump_entry - dict_walk callback for -s */
static void dump_entry(void *ctx, const char *key, const char *value)
{
    print_value(ctx, key, value);
}

/* do_dump - -s: every entry of every table */
static void do_dump(struct map_opts *o, const char *arg)
{
    char *spec = full_spec(o, arg), *err = NULL;
    size_t n = 0;

    (void)is_type_prefix(spec, &n);
    if (strncmp(spec, "texthash:", strlen("texthash:")) == 0) {
        /* texthash: is its own source: list it as it would be loaded. */
        struct pairs p;
        memset(&p, 0, sizeof(p));
        p.o = o;
        p.origin = spec + n + 1;
        if (dict_source_file(p.origin, source_line, &p, &err) < 0)
            fail("%s", err);
        for (size_t i = 0; i < p.n; i++)
            dump_entry(o, p.key[i], p.value[i]);
        pairs_free(&p);
    } else {
        struct dict *d = open_table(o, spec);
        if (dict_walk(d, dump_entry, o, &err) < 0)
            fail("%s", err);
        dict_close(d);
    }
    free(spec);
}

/* do_delete - -d: remove the keys from every table; true if one was there */
static bool do_delete(struct map_opts *o, const char *arg)
{
    char *spec = full_spec(o, arg), *type, *err = NULL;
    const char *name;
    struct pairs p;
    struct stat st;
    bool any = false;

    split_spec(spec, &type, &name);
    memset(&p, 0, sizeof(p));
    p.o = o;
    p.origin = name;
    int lock = writer_lock(name);
    struct dict *d = open_table(o, spec);
    if (dict_walk(d, walk_add, &p, &err) < 0)
        fail("%s", err);
    dict_close(d);
    for (size_t i = 0; i < o->ndel; i++)
        if (pairs_delete(&p, o->del[i]))
            any = true;
    if (any) {
        char *existing = xasprintf("%s%s", name, dict_build_suffix(type));
        bool have = stat(existing, &st) == 0;
        write_table(o, type, name, &p, have ? &st : NULL);
        free(existing);
    }
    close(lock);
    pairs_free(&p);
    free(type);
    free(spec);
    return any;
}

/* add_delete_key - one -d key (folded unless -f) */
static void add_delete_key(struct map_opts *o, const char *key)
{
    char *k = xstrdup(key);

    if (!o->fixed_case)
        for (char *c = k; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
    o->del = xreallocarray(o->del, o->ndel + 1, sizeof(char *));
    o->del[o->ndel++] = k;
}

/* delete_keys_from_stdin - -d -: one key per line */
static void delete_keys_from_stdin(struct map_opts *o)
{
    size_t len;
    char *text = read_stdin(&len), *save = NULL;

    for (char *l = strtok_r(text, "\r\n", &save); l; l = strtok_r(NULL, "\r\n", &save))
        if (*l)
            add_delete_key(o, l);
    free(text);
}

/* cmd_map_dir - parse the postmap options and run one mode */
int cmd_map_dir(int argc, char **argv, const char *config_dir)
{
    struct map_opts o;
    bool delete_stdin = false, any = false;
    int c, rc = EXIT_MAP_OK;

    memset(&o, 0, sizeof(o));
    o.config_dir = config_dir;
    optind = 1;
    opterr = 0;
    while ((c = getopt(argc, argv, "c:d:fFinNopq:rsvw")) != -1) {
        switch (c) {
        case 'c':
            o.config_dir = optarg;
            break;
        case 'd':
            if (o.mode != MODE_BUILD && o.mode != MODE_DELETE)
                return usage();
            o.mode = MODE_DELETE;
            if (strcmp(optarg, "-") == 0)
                delete_stdin = true;
            else
                add_delete_key(&o, optarg);
            break;
        case 'f':
            o.fixed_case = true;
            break;
        case 'F':
            o.base64 = true;
            break;
        case 'i':
            o.incremental = true;
            break;
        case 'N':
            o.build_flags = DICT_BUILD_NUL;
            break;
        case 'n':
            o.build_flags = DICT_BUILD_NONUL;
            break;
        case 'o':
            break;
        case 'p':
            o.no_inherit = true;
            break;
        case 'q':
            if (o.mode != MODE_BUILD)
                return usage();
            o.mode = MODE_QUERY;
            o.query = optarg;
            break;
        case 'r':
            o.dups = DUP_REPLACE;
            break;
        case 's':
            if (o.mode != MODE_BUILD)
                return usage();
            o.mode = MODE_DUMP;
            break;
        case 'v':
            log_set_verbose(log_verbose_level() + 1);
            break;
        case 'w':
            o.dups = DUP_IGNORE;
            break;
        default:
            if (optopt == 'q' || optopt == 'd' || optopt == 'c')
                fprintf(stderr, "posta map: option -%c needs an argument\n", optopt);
            else
                fprintf(stderr, "posta map: unknown option -%c\n", optopt);
            return usage();
        }
    }
    argc -= optind;
    argv += optind;
    if (argc < 1 || (o.incremental && o.mode != MODE_BUILD))
        return usage();
    if (delete_stdin)
        delete_keys_from_stdin(&o);
    switch (o.mode) {
    case MODE_QUERY:
        rc = do_query(&o, argc, argv);
        break;
    case MODE_DUMP:
        for (int i = 0; i < argc; i++)
            do_dump(&o, argv[i]);
        if (fflush(stdout) != 0)
            fail("write standard output: %s", strerror(errno));
        break;
    case MODE_DELETE:
        for (int i = 0; i < argc; i++)
            if (do_delete(&o, argv[i]))
                any = true;
        rc = any ? EXIT_MAP_OK : EXIT_MAP_NOTFOUND;
        break;
    case MODE_BUILD:
        for (int i = 0; i < argc; i++)
            do_build(&o, argv[i]);
        break;
    }
    for (size_t i = 0; i < o.ndel; i++)
        free(o.del[i]);
    free(o.del);
    free(o.default_type);
    return rc;
}

/* cmd_map - posta map with -c / $MAIL_CONFIG / the compiled-in directory */
int cmd_map(int argc, char **argv)
{
    return cmd_map_dir(argc, argv, NULL);
}
