/*
 * cmd_conf.c - "posta conf": postconf for posta
 *
 * Shows main.cf parameters ("name = value", unexpanded unless -x, as
 * postconf does) from main.cf or the settings table, the defaults (-d),
 * only what main.cf sets (-n), values only (-h); master.cf services (-M)
 * in postconf -M's column layout, their fields (-F, "service/type/field =
 * value") and their -o parameters (-P, "service/type/name = value").
 *
 * Edits, as postconf: -e name=value ... (main.cf), -X name ... (remove),
 * -# name ... (comment out); -Me 'service/type = entry', -MX service/type,
 * -M# service/type; -Fe 'service/type/field = value'; -Pe
 * 'service/type/name = value', -PX service/type/name. An edit keeps every
 * other line, comment and the order (mail/cfedit.h); an edited master.cf
 * entry is written in postconf's layout (columns, then one "-o" or
 * argument per continuation line). The file is locked (flock) while it is
 * read and replaced, and replaced atomically: a temporary file in the same
 * directory with the old file's owner and mode, fsync, rename, fsync of
 * the directory. The result must load (main.cf values are checked against
 * the settings table, master.cf must parse, service/type unique) or
 * nothing is written.
 *
 * DIAGNOSTICS
 *	An unknown parameter: "posta conf: unknown parameter: NAME (did you
 *	mean OTHER?)", exit status 1; -e accepts a name unknown to posta only
 *	when main.cf already sets it or main.cf/master.cf refer to it as
 *	$NAME (a parameter of the admin's own, as in Debian's master.cf).
 *	An unknown service: "posta conf: unknown service: NAME/TYPE". Bad
 *	options: usage, exit status 2. A main.cf or master.cf that does not
 *	load is fatal (exit status 1) with file and line.
 * SECURITY
 *	Runs with the caller's rights; editing needs write access to the
 *	configuration directory. The temporary file is created O_EXCL and
 *	not through symbolic links.
 */
#include "util/sys.h"

#include <ctype.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "cmd_conf.h"
#include "mail/cfedit.h"
#include "mail/config.h"
#include "mail/mastercf.h"
#include "mail/params.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"

enum {
    CONF_EXIT_OK = 0,
    CONF_EXIT_ERROR = 1,   /* unknown name, unreadable or unwritable file */
    CONF_EXIT_USAGE = 2,
};

#define CONF_PROG "posta conf"
#define CONF_SUGGEST_MIN 2     /* always allow this many edits... */
#define CONF_SUGGEST_DIV 3     /* ...or one edit per this many characters */
#define CONF_FILE_MAX ((size_t)4 << 20)
#define CONF_LOCK_RETRIES 10   /* the file was replaced while we waited */
#define CONF_CHUNK 8192
#define CONF_MODE_BITS 07777
#define CONF_TMP_MODE 0600
#define CONF_CONT_INDENT "    "
#define CONF_FIELD_COMMAND MASTER_NFIELDS   /* -F's 8th field */
#define CONF_PATTERN_PARTS 3

/* master.cf -M output: the column where each field starts (as postconf -M). */
static const int conf_mcf_cols[MASTER_NFIELDS + 1] = {0, 11, 17, 25, 33, 41, 49, 57};

/* -F field names, in column order (postconf's names). */
static const char *const conf_field_names[MASTER_NFIELDS + 1] = {
    "service", "type", "private", "unprivileged", "chroot", "wakeup", "process_limit",
    "command",
};

enum conf_edit { EDIT_NONE, EDIT_SET = 'e', EDIT_REMOVE = 'X', EDIT_COMMENT = '#' };
enum conf_table { TABLE_MAIN, TABLE_MASTER = 'M', TABLE_FIELDS = 'F', TABLE_PARAMS = 'P' };

struct conf_opts {
    bool nondefault;   /* -n */
    bool defaults;     /* -d */
    bool value_only;   /* -h */
    bool expand;       /* -x */
    enum conf_table table;   /* -M, -F, -P */
    enum conf_edit edit;     /* -e, -X, -# */
};

/* conf_usage - the usage message; exit status CONF_EXIT_USAGE */
static int conf_usage(void)
{
    fprintf(stderr,
            "usage: posta [-c config_dir] conf [-dhnx] [parameter ...]\n"
            "       posta conf -e name=value ...    set parameters in main.cf\n"
            "       posta conf -X name ...          remove parameters from main.cf\n"
            "       posta conf -# name ...          comment out parameters in main.cf\n"
            "       posta conf -M [service[/type] ...]   show master.cf services\n"
            "       posta conf -Me 'service/type = entry' ... | -MX service/type ... |\n"
            "                  -M# service/type ...\n"
            "       posta conf -F [service/type/field ...]  | -Fe 'service/type/field = value'\n"
            "       posta conf -P [service/type/name ...]   | -Pe 'service/type/name = value' |\n"
            "                  -PX service/type/name\n"
            "  -c dir  configuration directory\n"
            "  -d  show default values      -n  only parameters set in main.cf\n"
            "  -h  values only              -x  expand $name references\n");
    return CONF_EXIT_USAGE;
}

/* conf_error - "posta conf: TEXT" on stderr */
static void POSTA_PRINTF(1, 2) conf_error(const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fprintf(stderr, "%s: ", CONF_PROG);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* conf_print - "name = value" (postconf prints "name =" for empty values) */
static void conf_print(const struct conf_opts *o, const char *name, const char *value)
{
    if (o->value_only)
        printf("%s\n", value);
    else if (*value)
        printf("%s = %s\n", name, value);
    else
        printf("%s =\n", name);
}

/* conf_distance - Levenshtein distance, for suggestions */
static size_t conf_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i, j;
    size_t *row = xcalloc(lb + 1, sizeof(*row));
    size_t diag, up, best;

    for (j = 0; j <= lb; j++)
        row[j] = j;
    for (i = 1; i <= la; i++) {
        diag = row[0];
        row[0] = i;
        for (j = 1; j <= lb; j++) {
            up = row[j];
            best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    best = row[lb];
    free(row);
    return best;
}

/* conf_closer - keep candidate in *best when it is nearer to name */
static void conf_closer(const char *name, const char *candidate, const char **best,
                        size_t *best_d)
{
    size_t d = conf_distance(name, candidate);

    if (d < *best_d) {
        *best_d = d;
        *best = candidate;
    }
}

/* conf_close_enough - is a suggestion at distance d useful for name? */
static bool conf_close_enough(const char *name, size_t d)
{
    size_t limit = strlen(name) / CONF_SUGGEST_DIV;

    return d <= (limit < CONF_SUGGEST_MIN ? CONF_SUGGEST_MIN : limit);
}

/* conf_suggest - the closest table name, or NULL if none is close */
static const char *conf_suggest(const char *name)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;

    for (size_t i = 0; i < param_count; i++)
        conf_closer(name, param_table[i].name, &best, &best_d);
    return conf_close_enough(name, best_d) ? best : NULL;
}

/* conf_unknown - report an unknown parameter name */
static void conf_unknown(const char *name)
{
    const char *hint = conf_suggest(name);

    if (hint)
        conf_error("unknown parameter: %s (did you mean %s?)", name, hint);
    else
        conf_error("unknown parameter: %s", name);
}
/* conf_value - the text to show for name; NULL if unknown; *tofree set */
static const char *conf_value(struct cfg *cfg, const struct conf_opts *o,
                              const char *name, char **tofree)
{
    const char *raw;

    *tofree = NULL;
    if (o->defaults) {
        if (param_find(name) == NULL)
            return NULL;
        if (o->expand)
            return cfg_str(cfg, name);
        return cfg_default_text(cfg, name);
    }
    if (param_find(name) != NULL)
        return o->expand ? cfg_str(cfg, name) : cfg_raw(cfg, name, NULL, NULL);
    if ((raw = cfg_raw(cfg, name, NULL, NULL)) == NULL)
        return NULL;
    if (!o->expand)
        return raw;
    return *tofree = cfg_expand(cfg, raw);
}

/* conf_show - print one parameter; false if unknown */
static bool conf_show(struct cfg *cfg, const struct conf_opts *o, const char *name)
{
    char *tofree;
    const char *value = conf_value(cfg, o, name, &tofree);

    if (value == NULL)
        return false;
    conf_print(o, name, value);
    free(tofree);
    return true;
}

/* conf_strcmp - qsort comparison of names */
static int conf_strcmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* conf_show_set - -n: every parameter set in main.cf, sorted by name */
static void conf_show_set(struct cfg *cfg, const struct conf_opts *o)
{
    const char **names = NULL;
    const char *name;
    size_t n = 0, i;

    for (i = 0; (name = cfg_set_name(cfg, i)) != NULL; i++) {
        names = xreallocarray(names, n + 1, sizeof(*names));
        names[n++] = name;
    }
    if (n)
        qsort(names, n, sizeof(*names), conf_strcmp);
    for (i = 0; i < n; i++)
        conf_show(cfg, o, names[i]);
    free(names);
}

/* conf_pad_to - add spaces up to column col (at least one after text) */
static void conf_pad_to(struct buf *b, size_t start, size_t col)
{
    if (b->len > start)
        buf_putc(b, ' ');
    while (b->len - start < col)
        buf_putc(b, ' ');
}

/* conf_has_space - does text need {} to stay one field? */
static bool conf_has_space(const char *text)
{
    return *text == 0 || strpbrk(text, " \t") != NULL;
}

/* conf_put_opt - " -o name=value" (sep first), braced when it holds space */
static void conf_put_opt(struct buf *b, const char *sep, const struct master_opt *opt)
{
    if (strpbrk(opt->value, " \t") != NULL)
        buf_printf(b, "%s-o {%s=%s}", sep, opt->name, opt->value);
    else
        buf_printf(b, "%s-o %s=%s", sep, opt->name, opt->value);
}

/* conf_put_arg - sep + an argument, braced when needed */
static void conf_put_arg(struct buf *b, const char *sep, const char *arg)
{
    if (conf_has_space(arg))
        buf_printf(b, "%s{%s}", sep, arg);
    else
        buf_printf(b, "%s%s", sep, arg);
}

/* conf_put_command - command, -o options, then the other arguments (sep between) */
static void conf_put_command(struct buf *b, const struct master_service *s, const char *sep)
{
    buf_puts(b, s->command);
    /* -o options first, then the other arguments (operands stay last) */
    for (size_t i = 0; i < s->nopts; i++)
        conf_put_opt(b, sep, &s->opts[i]);
    for (size_t i = 0; i < s->nargs; i++)
        conf_put_arg(b, sep, s->args[i]);
}

/* conf_put_fields - the seven columns padded as postconf -M, from fields[] */
static void conf_put_fields(struct buf *b, char *const fields[MASTER_NFIELDS])
{
    size_t start = b->len;

    for (size_t i = 0; i < MASTER_NFIELDS; i++) {
        conf_pad_to(b, start, (size_t)conf_mcf_cols[i]);
        buf_puts(b, fields[i]);
    }
    conf_pad_to(b, start, (size_t)conf_mcf_cols[MASTER_NFIELDS]);
}

/* conf_show_service - one master.cf service in postconf -M layout */
static void conf_show_service(const struct master_service *s)
{
    struct buf b = BUF_INIT;

    conf_put_fields(&b, s->fields);
    conf_put_command(&b, s, " ");
    printf("%s\n", buf_str(&b));
    buf_free(&b);
}

/* conf_entry_text - s as postconf writes an edited entry (multi-line) */
static void conf_entry_text(const struct master_service *s, struct buf *b)
{
    conf_put_fields(b, s->fields);
    conf_put_command(b, s, "\n" CONF_CONT_INDENT);
}

/* conf_pattern - split "a/b/c" into up to 3 parts (missing: NULL = any) */
static char *conf_pattern(const char *arg, const char *part[CONF_PATTERN_PARTS])
{
    char *copy = xstrdup(arg), *p = copy;

    for (int i = 0; i < CONF_PATTERN_PARTS; i++) {
        char *slash;

        part[i] = NULL;
        if (p == NULL)
            continue;
        slash = i + 1 < CONF_PATTERN_PARTS ? strchr(p, '/') : NULL;
        if (slash)
            *slash = 0;
        part[i] = strcmp(p, "*") == 0 ? NULL : p;
        p = slash ? slash + 1 : NULL;
    }
    return copy;
}

/* conf_part_match - a pattern part (NULL = any) against a value */
static bool conf_part_match(const char *part, const char *value)
{
    return part == NULL || strcmp(part, value) == 0;
}

/* conf_service_key - "name/type" (malloced) */
static char *conf_service_key(const struct master_service *s)
{
    return xasprintf("%s/%s", s->name, s->type);
}

/* conf_load_master - parse DIR/master.cf; false after an error message */
static bool conf_load_master(const char *dir, struct master_cf *m)
{
    char *path = xasprintf("%s/master.cf", dir);
    char *err = NULL;
    bool ok = master_cf_load(path, m, &err);

    if (!ok) {
        conf_error("fatal: %s", err);
        free(err);
    }
    free(path);
    return ok;
}

/* conf_unknown_service - report a service/type that master.cf lacks */
static void conf_unknown_service(const char *key, const struct master_cf *m)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    char **keys = xcalloc(m->n ? m->n : 1, sizeof(*keys));

    for (size_t i = 0; i < m->n; i++) {
        keys[i] = conf_service_key(&m->svc[i]);
        conf_closer(key, keys[i], &best, &best_d);
    }
    if (best && conf_close_enough(key, best_d))
        conf_error("unknown service: %s (did you mean %s?)", key, best);
    else
        conf_error("unknown service: %s", key);
    for (size_t i = 0; i < m->n; i++)
        free(keys[i]);
    free(keys);
}

/* conf_field_index - -F field name to 0..MASTER_NFIELDS, or -1 */
static int conf_field_index(const char *name)
{
    for (int i = 0; i <= MASTER_NFIELDS; i++)
        if (strcmp(conf_field_names[i], name) == 0)
            return i;
    return -1;
}

/* conf_show_field - "service/type/field = value" */
static void conf_show_field(const struct conf_opts *o, const struct master_service *s, int f)
{
    char *name = xasprintf("%s/%s/%s", s->name, s->type, conf_field_names[f]);
    struct buf b = BUF_INIT;

    if (f == CONF_FIELD_COMMAND)
        conf_put_command(&b, s, " ");
    else
        buf_puts(&b, s->fields[f]);
    conf_print(o, name, buf_str(&b));
    buf_free(&b);
    free(name);
}

/* conf_opt_cmp - qsort: -o options by name */
static int conf_opt_cmp(const void *a, const void *b)
{
    return strcmp(((const struct master_opt *)a)->name, ((const struct master_opt *)b)->name);
}

/* conf_show_params - -P: a service's -o parameters, sorted by name */
static void conf_show_params(const struct conf_opts *o, const struct master_service *s,
                             const char *want)
{
    struct master_opt *opts = xcalloc(s->nopts ? s->nopts : 1, sizeof(*opts));

    if (s->nopts)
        memcpy(opts, s->opts, s->nopts * sizeof(*opts));
    if (s->nopts > 1)
        qsort(opts, s->nopts, sizeof(*opts), conf_opt_cmp);
    for (size_t i = 0; i < s->nopts; i++) {
        char *name;

        if (!conf_part_match(want, opts[i].name))
            continue;
        name = xasprintf("%s/%s/%s", s->name, s->type, opts[i].name);
        conf_print(o, name, opts[i].value);
        free(name);
    }
    free(opts);
}

/* conf_show_master - -M, -F, -P without editing */
static int conf_show_master(const char *dir, const struct conf_opts *o, int argc, char **argv)
{
    struct master_cf m;
    int status = CONF_EXIT_OK;

    if (!conf_load_master(dir, &m))
        return CONF_EXIT_ERROR;
    for (int a = 0; a < (argc ? argc : 1); a++) {
        const char *part[CONF_PATTERN_PARTS] = {NULL, NULL, NULL};
        char *copy = argc ? conf_pattern(argv[a], part) : NULL;
        int field = -1;
        bool matched = false;

        if (o->table == TABLE_FIELDS && part[2] && (field = conf_field_index(part[2])) < 0) {
            conf_error("invalid service attribute name: \"%s\"", part[2]);
            status = CONF_EXIT_ERROR;
            free(copy);
            continue;
        }
        for (size_t i = 0; i < m.n; i++) {
            const struct master_service *s = &m.svc[i];

            if (!conf_part_match(part[0], s->name) || !conf_part_match(part[1], s->type))
                continue;
            matched = true;
            if (o->table == TABLE_MASTER) {
                conf_show_service(s);
            } else if (o->table == TABLE_FIELDS) {
                for (int f = 0; f <= MASTER_NFIELDS; f++)
                    if (field < 0 || f == field)
                        conf_show_field(o, s, f);
            } else {
                conf_show_params(o, s, part[2]);
            }
        }
        if (argc && !matched) {
            conf_unknown_service(argv[a], &m);
            status = CONF_EXIT_ERROR;
        }
        free(copy);
    }
    master_cf_free(&m);
    return status;
}

/* ---- editing ---------------------------------------------------------- */

/* conf_edit_fn - make the new text from the old; false after a message */
typedef bool conf_edit_fn(void *ctx, const char *path, const char *text, size_t len,
                          struct buf *out);

/* conf_read_fd - the whole open file into text; false after a message */
static bool conf_read_fd(int fd, const char *path, struct buf *text)
{
    char chunk[CONF_CHUNK];
    ssize_t n;

    buf_init(text, CONF_FILE_MAX);
    while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            conf_error("fatal: read %s: %s", path, strerror(errno));
            return false;
        }
        if (buf_append(text, chunk, (size_t)n) < 0) {
            conf_error("fatal: %s: larger than %zu bytes", path, CONF_FILE_MAX);
            return false;
        }
    }
    return true;
}

/* conf_write_all - write the whole buffer; 0 or -1 */
static int conf_write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* conf_replace - write text to path atomically, keeping old's owner and mode */
static bool conf_replace(const char *path, const struct stat *old, const struct buf *text)
{
    char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
    char *dcopy = xstrdup(path);
    bool ok = false;
    int fd, dfd;

    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, CONF_TMP_MODE);
    if (fd < 0) {
        conf_error("fatal: create %s: %s", tmp, strerror(errno));
        goto out;
    }
    if ((old->st_uid != geteuid() || old->st_gid != getegid())
        && fchown(fd, old->st_uid, old->st_gid) < 0 && errno != EPERM)
        conf_error("warning: change owner of %s: %s", tmp, strerror(errno));
    if (fchmod(fd, old->st_mode & CONF_MODE_BITS) < 0
        || conf_write_all(fd, text->data ? text->data : "", text->len) < 0 || fsync(fd) < 0) {
        conf_error("fatal: write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto out;
    }
    if (close(fd) < 0 || rename(tmp, path) < 0) {
        conf_error("fatal: replace %s: %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    /* the new name must survive a crash as well */
    if ((dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    ok = true;
out:
    free(dcopy);
    free(tmp);
    return ok;
}

/* conf_edit_file - lock path, read it, let fn edit it, replace it if changed */
static int conf_edit_file(const char *path, conf_edit_fn *fn, void *ctx)
{
    for (int attempt = 0; attempt < CONF_LOCK_RETRIES; attempt++) {
        struct stat st, now;
        struct buf text, out = BUF_INIT;
        bool ok;
        int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);

        if (fd < 0) {
            conf_error("fatal: open %s: %s", path, strerror(errno));
            return CONF_EXIT_ERROR;
        }
        if (flock(fd, LOCK_EX) < 0 || fstat(fd, &st) < 0) {
            conf_error("fatal: lock %s: %s", path, strerror(errno));
            close(fd);
            return CONF_EXIT_ERROR;
        }
        /* another editor replaced the file while we waited: lock the new one */
        if (stat(path, &now) < 0 || now.st_ino != st.st_ino || now.st_dev != st.st_dev) {
            close(fd);
            continue;
        }
        buf_init(&out, CONF_FILE_MAX);
        ok = conf_read_fd(fd, path, &text) && fn(ctx, path, buf_str(&text), text.len, &out);
        if (ok && (out.len != text.len || memcmp(buf_str(&out), buf_str(&text), text.len) != 0))
            ok = conf_replace(path, &st, &out);
        buf_free(&text);
        buf_free(&out);
        close(fd);   /* releases the lock */
        return ok ? CONF_EXIT_OK : CONF_EXIT_ERROR;
    }
    conf_error("fatal: %s keeps being replaced; try again", path);
    return CONF_EXIT_ERROR;
}

/* Arguments of one edit command, for the conf_edit_fn callbacks. */
struct conf_edit_ctx {
    const char *dir;
    enum conf_edit edit;
    int argc;
    char **argv;
};

/* conf_trim - s without leading and trailing white space (in place) */
static char *conf_trim(char *s)
{
    char *end;

    while (*s == ' ' || *s == '\t')
        s++;
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        *--end = 0;
    return s;
}

/* conf_split_assign - "key = value" into trimmed key and value; false if no '=' */
static bool conf_split_assign(char *arg, char **key, char **value)
{
    char *eq = strchr(arg, '=');

    if (eq == NULL)
        return false;
    *eq = 0;
    *key = conf_trim(arg);
    *value = conf_trim(eq + 1);
    return **key != 0;
}

/* conf_refers_to - does text hold $name, ${name...} or $(name...)? */
static bool conf_refers_to(const char *text, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = strchr(text, '$'); p; p = strchr(p + 1, '$')) {
        const char *q = p + 1;

        if (*q == '{' || *q == '(')
            q++;
        if (strncmp(q, name, n) == 0 && !(q[n] == '_' || isalnum((unsigned char)q[n])))
            return true;
    }
    return false;
}

/* conf_file_refers - does DIR/file refer to $name? */
static bool conf_file_refers(const char *dir, const char *file, const char *name)
{
    char *path = xasprintf("%s/%s", dir, file);
    struct buf text = BUF_INIT;
    char *err = NULL;
    bool found = false;

    if (cfg_read_file(path, CONF_FILE_MAX, &text, &err))
        found = conf_refers_to(buf_str(&text), name);
    free(err);
    buf_free(&text);
    free(path);
    return found;
}

/* conf_main_edit - conf_edit_fn for main.cf: -e, -X, -# */
static bool conf_main_edit(void *vctx, const char *path, const char *text, size_t len,
                           struct buf *out)
{
    struct conf_edit_ctx *c = vctx;
    struct cfedit_op *ops = xcalloc((size_t)c->argc, sizeof(*ops));
    char **copies = xcalloc((size_t)c->argc, sizeof(*copies));
    struct cfg *check = NULL;
    char *err = NULL;
    bool ok = true;
    int i;

    for (i = 0; i < c->argc && ok; i++) {
        char *key, *value = NULL;

        copies[i] = xstrdup(c->argv[i]);
        if (c->edit == EDIT_SET) {
            if (!conf_split_assign(copies[i], &key, &value)) {
                conf_error("bad argument: \"%s\": need name=value", c->argv[i]);
                ok = false;
                break;
            }
            ops[i].type = CFEDIT_SET;
        } else {
            key = conf_trim(copies[i]);
            ops[i].type = c->edit == EDIT_REMOVE ? CFEDIT_REMOVE : CFEDIT_COMMENT;
        }
        if (!cfg_valid_param_name(key) || (value && !cfedit_value_ok(value))) {
            conf_error("bad parameter %s: \"%s\"", value ? "assignment" : "name", c->argv[i]);
            ok = false;
        }
        ops[i].key = key;
        ops[i].value = value;
    }
    if (ok && !cfedit_apply(CFEDIT_MAIN, text, len, ops, (size_t)c->argc, out)) {
        conf_error("fatal: %s: result too large", path);
        ok = false;
    }
    /* names posta does not know: only the admin's own, already in use */
    for (i = 0; ok && i < c->argc; i++) {
        if (param_find(ops[i].key) || ops[i].found)
            continue;
        if (c->edit == EDIT_SET && (conf_refers_to(text, ops[i].key)
                                    || conf_file_refers(c->dir, "master.cf", ops[i].key)))
            continue;
        conf_unknown(ops[i].key);
        ok = false;
    }
    if (ok && (check = cfg_load_string(buf_str(out), out->len, path, &err)) == NULL) {
        conf_error("fatal: not changed: %s", err ? err : "the new main.cf does not load");
        ok = false;
    }
    if (check)
        cfg_free(check);
    free(err);
    for (i = 0; i < c->argc; i++)
        free(copies[i]);
    free(copies);
    free(ops);
    return ok;
}

/* conf_find_service - index of name/type in m, or -1 */
static long conf_find_service(const struct master_cf *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++) {
        char *k = conf_service_key(&m->svc[i]);
        bool same = strcmp(k, key) == 0;

        free(k);
        if (same)
            return (long)i;
    }
    return -1;
}

/* conf_parse_entry - one master.cf entry from text; false after a message */
static bool conf_parse_entry(const char *text, const char *what, struct master_cf *m)
{
    char *err = NULL;

    if (!master_cf_parse(text, strlen(text), what, m, &err)) {
        conf_error("bad master.cf entry: %s", err);
        free(err);
        return false;
    }
    if (m->n != 1) {
        conf_error("bad master.cf entry: %s: need exactly one service", what);
        master_cf_free(m);
        return false;
    }
    return true;
}

/* conf_entry_with_field - the entry of s with field f set to value (text) */
static bool conf_entry_with_field(const struct master_service *s, int f, const char *value,
                                  struct buf *entry)
{
    char *fields[MASTER_NFIELDS];
    struct master_cf one;
    struct buf line = BUF_INIT;

    if (f != CONF_FIELD_COMMAND && (*value == 0 || strpbrk(value, " \t") != NULL)) {
        conf_error("bad value for %s: \"%s\"", conf_field_names[f], value);
        return false;
    }
    for (int i = 0; i < MASTER_NFIELDS; i++)
        fields[i] = i == f ? (char *)value : s->fields[i];
    conf_put_fields(&line, fields);
    if (f == CONF_FIELD_COMMAND)
        buf_puts(&line, value);
    else
        conf_put_command(&line, s, " ");
    if (!conf_parse_entry(buf_str(&line), "new entry", &one)) {
        buf_free(&line);
        return false;
    }
    conf_entry_text(&one.svc[0], entry);
    master_cf_free(&one);
    buf_free(&line);
    return true;
}

/* conf_entry_with_param - the entry of s with -o name set (value) or removed (NULL) */
static bool conf_entry_with_param(const struct master_service *s, const char *name,
                                  const char *value, struct buf *entry, bool *found)
{
    struct master_service copy = *s;
    struct master_opt *opts = xcalloc(s->nopts + 1, sizeof(*opts));
    size_t n = 0;

    *found = false;
    for (size_t i = 0; i < s->nopts; i++) {
        if (strcmp(s->opts[i].name, name) == 0) {
            if (value != NULL && !*found)
                opts[n++] = (struct master_opt){s->opts[i].name, (char *)value};
            *found = true;
            continue;
        }
        opts[n++] = s->opts[i];
    }
    if (value != NULL && !*found)
        opts[n++] = (struct master_opt){(char *)name, (char *)value};
    copy.opts = opts;
    copy.nopts = n;
    conf_entry_text(&copy, entry);
    free(opts);
    return true;
}

/* conf_check_master - the new master.cf parses and has no duplicate service */
static bool conf_check_master(const char *path, const struct buf *out)
{
    struct master_cf m;
    char *err = NULL;
    bool ok = true;

    if (!master_cf_parse(buf_str(out), out->len, path, &m, &err)) {
        conf_error("fatal: not changed: %s", err);
        free(err);
        return false;
    }
    for (size_t i = 0; i < m.n && ok; i++) {
        for (size_t j = i + 1; j < m.n && ok; j++) {
            if (strcmp(m.svc[i].name, m.svc[j].name) == 0
                && strcmp(m.svc[i].type, m.svc[j].type) == 0) {
                conf_error("fatal: not changed: service %s/%s would be defined twice",
                           m.svc[i].name, m.svc[i].type);
                ok = false;
            }
        }
    }
    master_cf_free(&m);
    return ok;
}

/* Parsed arguments of a master.cf edit. */
struct conf_master_arg {
    char *copy;
    const char *part[CONF_PATTERN_PARTS];
    char *value;          /* after '=', or NULL */
    struct buf entry;     /* the new entry text (CFEDIT_SET) */
};

/* conf_value_ok - a value on one line; false after a message */
static bool conf_value_ok(const char *arg, const char *value)
{
    if (cfedit_value_ok(value))
        return true;
    conf_error("bad argument: \"%s\": the value must be one line", arg);
    return false;
}

/* conf_master_op - turn one argument into an edit of master.cf; false after a message */
static bool conf_master_op(const struct conf_edit_ctx *c, enum conf_table table,
                           const struct master_cf *m, struct conf_master_arg *a,
                           struct cfedit_op *op, const char *arg)
{
    char *key = NULL, *value = NULL;
    const char *want_parts = table == TABLE_MASTER ? "service/type" : "service/type/name";
    int nparts = table == TABLE_MASTER ? 2 : 3;
    long idx;

    a->copy = xstrdup(arg);
    if (c->edit == EDIT_SET) {
        if (!conf_split_assign(a->copy, &key, &value)) {
            conf_error("bad argument: \"%s\": need %s = value", arg, want_parts);
            return false;
        }
        a->value = value;
    } else {
        key = conf_trim(a->copy);
    }
    /* every part given, no wildcards */
    a->part[0] = key;
    for (int i = 1; i < CONF_PATTERN_PARTS; i++) {
        char *slash = a->part[i - 1] ? strchr(a->part[i - 1], '/') : NULL;

        a->part[i] = NULL;
        if (slash && i < nparts) {
            *slash = 0;
            a->part[i] = slash + 1;
        }
    }
    for (int i = 0; i < nparts; i++) {
        if (a->part[i] == NULL || *a->part[i] == 0 || strchr(a->part[i], '/')
            || strcmp(a->part[i], "*") == 0) {
            conf_error("bad argument: \"%s\": need %s", arg, want_parts);
            return false;
        }
    }
    op->key = xasprintf("%s/%s", a->part[0], a->part[1]);
    idx = conf_find_service(m, op->key);
    if (table == TABLE_MASTER && c->edit == EDIT_SET) {
        struct master_cf one;
        char *want;

        if (!conf_value_ok(arg, value) || !conf_parse_entry(value, arg, &one))
            return false;
        want = conf_service_key(&one.svc[0]);
        if (strcmp(want, op->key) != 0) {
            conf_error("bad argument: \"%s\": the entry defines %s", arg, want);
            free(want);
            master_cf_free(&one);
            return false;
        }
        free(want);
        conf_entry_text(&one.svc[0], &a->entry);
        master_cf_free(&one);
        op->type = CFEDIT_SET;
        op->value = buf_str(&a->entry);
        return true;
    }
    if (idx < 0) {
        conf_unknown_service(op->key, m);
        return false;
    }
    if (table == TABLE_MASTER) {
        op->type = c->edit == EDIT_REMOVE ? CFEDIT_REMOVE : CFEDIT_COMMENT;
        return true;
    }
    op->type = CFEDIT_SET;
    if (table == TABLE_FIELDS) {
        int f = conf_field_index(a->part[2]);

        if (f < 0) {
            conf_error("invalid service attribute name: \"%s\"", a->part[2]);
            return false;
        }
        if (c->edit != EDIT_SET) {
            conf_error("-F supports only -e");
            return false;
        }
        if (!conf_value_ok(arg, value)
            || !conf_entry_with_field(&m->svc[idx], f, value, &a->entry))
            return false;
    } else {
        bool found;

        if (c->edit == EDIT_COMMENT) {
            conf_error("-P supports only -e and -X");
            return false;
        }
        if (!cfg_valid_param_name(a->part[2])) {
            conf_error("bad parameter name: \"%s\"", a->part[2]);
            return false;
        }
        if (value && !conf_value_ok(arg, value))
            return false;
        conf_entry_with_param(&m->svc[idx], a->part[2], value, &a->entry, &found);
        if (value == NULL && !found) {
            conf_error("%s: no -o %s", op->key, a->part[2]);
            return false;
        }
    }
    op->value = buf_str(&a->entry);
    return true;
}

/* Arguments of a master.cf edit callback. */
struct conf_master_ctx {
    struct conf_edit_ctx base;
    enum conf_table table;
};

/* conf_master_edit - conf_edit_fn for master.cf: -Me/-MX/-M#, -Fe, -Pe/-PX */
static bool conf_master_edit(void *vctx, const char *path, const char *text, size_t len,
                             struct buf *out)
{
    struct conf_master_ctx *mc = vctx;
    struct conf_edit_ctx *c = &mc->base;
    struct conf_master_arg *args = xcalloc((size_t)c->argc, sizeof(*args));
    struct cfedit_op *ops = xcalloc((size_t)c->argc, sizeof(*ops));
    struct master_cf m;
    char *err = NULL;
    bool ok = true;
    int i;

    if (!master_cf_parse(text, len, path, &m, &err)) {
        conf_error("fatal: %s", err);
        free(err);
        free(ops);
        free(args);
        return false;
    }
    /* -Fe and -Pe build on the entry as it is: one argument per service */
    for (i = 0; i < c->argc && ok; i++)
        ok = conf_master_op(c, mc->table, &m, &args[i], &ops[i], c->argv[i]);
    for (i = 0; ok && mc->table != TABLE_MASTER && i < c->argc; i++) {
        for (int j = i + 1; j < c->argc; j++) {
            if (strcmp(ops[i].key, ops[j].key) == 0) {
                conf_error("one edit per service at a time: %s", ops[i].key);
                ok = false;
                break;
            }
        }
    }
    if (ok && !cfedit_apply(CFEDIT_MASTER, text, len, ops, (size_t)c->argc, out)) {
        conf_error("fatal: %s: result too large", path);
        ok = false;
    }
    if (ok)
        ok = conf_check_master(path, out);
    for (i = 0; i < c->argc; i++) {
        free((char *)ops[i].key);
        free(args[i].copy);
        buf_free(&args[i].entry);
    }
    master_cf_free(&m);
    free(ops);
    free(args);
    return ok;
}

/* conf_do_edit - run one edit command */
static int conf_do_edit(const char *dir, const struct conf_opts *o, int argc, char **argv)
{
    struct conf_master_ctx mc = {{dir, o->edit, argc, argv}, o->table};
    char *path;
    int rc;

    if (argc == 0) {
        conf_error("-%c needs at least one argument", (char)o->edit);
        return conf_usage();
    }
    if (o->table == TABLE_MAIN) {
        path = xasprintf("%s/main.cf", dir);
        rc = conf_edit_file(path, conf_main_edit, &mc.base);
    } else {
        path = xasprintf("%s/master.cf", dir);
        rc = conf_edit_file(path, conf_master_edit, &mc);
    }
    free(path);
    return rc;
}

/* conf_set_table - -M, -F or -P (one of them) */
static bool conf_set_table(struct conf_opts *o, enum conf_table t)
{
    if (o->table != TABLE_MAIN && o->table != t)
        return false;
    o->table = t;
    return true;
}

/* conf_set_edit - -e, -X or -# (one of them) */
static bool conf_set_edit(struct conf_opts *o, enum conf_edit e)
{
    if (o->edit != EDIT_NONE && o->edit != e)
        return false;
    o->edit = e;
    return true;
}

/* cmd_conf - run "posta conf"; argv[0] is the command name */
int cmd_conf(int argc, char **argv, const char *config_dir)
{
    struct conf_opts o = {false, false, false, false, TABLE_MAIN, EDIT_NONE};
    const char *dir = config_dir;
    struct cfg *cfg;
    char *err = NULL;
    int status = CONF_EXIT_OK;
    int c, i;
    bool ok = true;
    size_t k;

    optind = 0;   /* GNU getopt: restart scanning (cmd_conf may run twice) */
    opterr = 0;
    while (ok && (c = getopt(argc, argv, "+c:dhnxMFPeX#")) != -1) {
        switch (c) {
        case 'c':
            dir = optarg;
            break;
        case 'd':
            o.defaults = true;
            break;
        case 'h':
            o.value_only = true;
            break;
        case 'n':
            o.nondefault = true;
            break;
        case 'x':
            o.expand = true;
            break;
        case 'M':
        case 'F':
        case 'P':
            ok = conf_set_table(&o, (enum conf_table)c);
            break;
        case 'e':
        case 'X':
        case '#':
            ok = conf_set_edit(&o, (enum conf_edit)c);
            break;
        default:
            conf_error("bad option -%c", optopt ? optopt : '?');
            return conf_usage();
        }
    }
    if (!ok) {
        conf_error("conflicting options: use one of -M, -F, -P and one of -e, -X, -#");
        return conf_usage();
    }
    if (o.defaults && o.nondefault) {
        conf_error("-d and -n cannot be used together");
        return conf_usage();
    }
    if (o.edit != EDIT_NONE && (o.defaults || o.nondefault || o.expand || o.value_only)) {
        conf_error("-%c cannot be combined with -d, -n, -h or -x", (char)o.edit);
        return conf_usage();
    }
    dir = cfg_default_dir(dir);
    argc -= optind;
    argv += optind;
    if (o.edit != EDIT_NONE)
        return conf_do_edit(dir, &o, argc, argv);
    if (o.table != TABLE_MAIN) {
        status = conf_show_master(dir, &o, argc, argv);
        fflush(stdout);
        return status;
    }

    if (o.defaults) {
        cfg = cfg_load_string("", 0, "defaults", &err);
        if (cfg == NULL)
            msg_panic("the settings table defaults do not load: %s", err);
    } else {
        cfg = cfg_load(dir);
    }
    if (argc > 0) {
        for (i = 0; i < argc; i++) {
            if (o.nondefault && cfg_is_set(cfg, argv[i]) == false && param_find(argv[i]))
                continue;
            if (!conf_show(cfg, &o, argv[i])) {
                conf_unknown(argv[i]);
                status = CONF_EXIT_ERROR;
            }
        }
    } else if (o.nondefault) {
        conf_show_set(cfg, &o);
    } else {
        for (k = 0; k < param_count; k++)
            conf_show(cfg, &o, param_table[k].name);
    }
    cfg_free(cfg);
    fflush(stdout);
    return status;
}
