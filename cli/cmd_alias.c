/*
 * cmd_alias.c - "posta alias" / newaliases: aliases(5) text to Berkeley DB
 *
 * The source file has one alias per logical line, "name: value", where a
 * line that starts with white space continues the previous one, and
 * blank lines and lines whose first non-blank character is '#' are
 * ignored. The name may be quoted ("a b": ...); it is folded to lower
 * case, as posta's lookups fold keys. The value is kept as written (its
 * leading and trailing white space removed); local delivery parses it.
 * Like postalias, the table also gets the entry "@" = "@" that sendmail
 * compatible readers use to see that the database is complete.
 *
 * DIAGNOSTICS: a line without "name:" or with an empty value is skipped
 * with a warning naming file and line; a duplicate name keeps the first
 * value (warning). A table that cannot be read or written: an error on
 * stderr and exit status 1; the old .db file is then left untouched.
 * SECURITY: runs with the caller's privileges; the database replaces the
 * old one by rename, so readers never see a partial table.
 */
#include "util/sys.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd_alias.h"
#include "mail/config.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/dict.h"
#include "util/log.h"

#define EXIT_ALIAS_OK 0
#define EXIT_ALIAS_ERROR 1
#define EXIT_ALIAS_USAGE 2
#define ALIAS_FILE_MAX ((size_t)256 << 20)  /* largest aliases file read */
#define ALIAS_DEFAULT_TYPE "hash"
#define ALIAS_READ_CHUNK 65536

struct alias_table {
    char **keys;
    char **values;
    size_t n;
    size_t cap;
};

/* usage - the command summary; exit status 2 */
static int usage(const char *cmd)
{
    fprintf(stderr, "usage: posta %s [[type:]file ...]\n"
                    "  build FILE.db from the aliases file FILE (default: $alias_database)\n",
            cmd);
    return EXIT_ALIAS_USAGE;
}

/* table_add - append one pair (copied) */
static void table_add(struct alias_table *t, const char *key, const char *value)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->keys = xreallocarray(t->keys, t->cap, sizeof(char *));
        t->values = xreallocarray(t->values, t->cap, sizeof(char *));
    }
    t->keys[t->n] = xstrdup(key);
    t->values[t->n] = xstrdup(value);
    t->n++;
}

/* table_free - release every pair */
static void table_free(struct alias_table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->keys[i]);
        free(t->values[i]);
    }
    free(t->keys);
    free(t->values);
    memset(t, 0, sizeof(*t));
}

/* is_blank - SP or TAB */
static bool is_blank(int c)
{
    return c == ' ' || c == '\t';
}

/* trim - remove leading and trailing white space in place */
static char *trim(char *s)
{
    size_t n;

    while (is_blank(*s) || *s == '\r' || *s == '\n')
        s++;
    n = strlen(s);
    while (n > 0 && (is_blank(s[n - 1]) || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = 0;
    return s;
}

/* parse_entry - one logical line "name: value" into the table */
static void parse_entry(struct alias_table *t, const char *file, int lineno, char *line)
{
    struct buf name = BUF_INIT;
    char *p = line, *value;
    bool quoted = false;

    for (; *p; p++) {
        if (*p == '\\' && quoted && p[1]) {
            buf_putc(&name, *++p);
            continue;
        }
        if (*p == '"') {
            quoted = !quoted;
            continue;
        }
        if (*p == ':' && !quoted)
            break;
        buf_putc(&name, (unsigned char)*p);
    }
    if (*p != ':' || quoted) {
        msg_warn("%s, line %d: need name:value pair", file, lineno);
        buf_free(&name);
        return;
    }
    value = trim(p + 1);
    char *key = trim(name.data ? name.data : (char *)"");
    if (*key == 0 || *value == 0) {
        msg_warn("%s, line %d: %s", file, lineno, *key ? "empty value" : "empty name");
        buf_free(&name);
        return;
    }
    for (char *k = key; *k; k++)
        if (*k >= 'A' && *k <= 'Z')
            *k = (char)(*k - 'A' + 'a');
    table_add(t, key, value);
    buf_free(&name);
}

/* read_file - the whole file into b; false + message on stderr */
static bool read_file(const char *path, struct buf *b)
{
    char chunk[ALIAS_READ_CHUNK];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        msg_warn("open %s: %m", path);
        return false;
    }
    buf_init(b, ALIAS_FILE_MAX);
    while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            msg_warn("read %s: %m", path);
            close(fd);
            return false;
        }
        if (buf_append(b, chunk, (size_t)n) < 0) {
            msg_warn("%s: file too large", path);
            close(fd);
            return false;
        }
    }
    close(fd);
    return true;
}

/* parse_text - split into logical lines and parse each */
static void parse_text(struct alias_table *t, const char *file, char *text)
{
    struct buf logical = BUF_INIT;
    int lineno = 0, start = 0;
    char *line = text, *next;

    for (; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        lineno++;
        char *s = line;
        while (is_blank(*s) || *s == '\r')
            s++;
        if (*s == '#' || *s == 0)
            continue;               /* comment or blank line */
        if (is_blank(line[0]) && logical.len > 0) {
            buf_putc(&logical, ' ');
            buf_puts(&logical, s);
            continue;
        }
        if (logical.len > 0)
            parse_entry(t, file, start, logical.data);
        buf_reset(&logical);
        buf_puts(&logical, s);
        start = lineno;
    }
    if (logical.len > 0)
        parse_entry(t, file, start, logical.data);
    buf_free(&logical);
}

/* build_one - "type:path" or "path": read path, write path.db */
static int build_one(const char *spec)
{
    const char *colon = strchr(spec, ':');
    const char *path = spec;
    char *type = xstrdup(ALIAS_DEFAULT_TYPE);
    struct alias_table t = {0};
    struct buf text = BUF_INIT;
    char *err = NULL;
    int status = EXIT_ALIAS_OK;

    if (colon != NULL && colon != spec && spec[0] != '/') {
        free(type);
        type = xstrndup(spec, (size_t)(colon - spec));
        path = colon + 1;
    }
    if (strcmp(type, "hash") != 0 && strcmp(type, "btree") != 0) {
        msg_warn("%s: unsupported alias database type \"%s\" (use hash or btree)", spec, type);
        free(type);
        return EXIT_ALIAS_ERROR;
    }
    if (!read_file(path, &text)) {
        buf_free(&text);
        free(type);
        return EXIT_ALIAS_ERROR;
    }
    parse_text(&t, path, text.data ? text.data : (char *)"");
    table_add(&t, "@", "@");
    if (dict_db_build(type, path, (const char *const *)t.keys,
                      (const char *const *)t.values, t.n, &err) < 0) {
        msg_warn("%s", err);
        free(err);
        status = EXIT_ALIAS_ERROR;
    }
    table_free(&t);
    buf_free(&text);
    free(type);
    return status;
}

/* cmd_alias - "posta alias [[type:]file ...]" */
int cmd_alias(int argc, char **argv, struct cfg *cfg)
{
    const char *cmd = argc > 0 && argv[0] ? argv[0] : "alias";
    int status = EXIT_ALIAS_OK;

    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-')
            return usage(cmd);
    }
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            if (build_one(argv[i]) != EXIT_ALIAS_OK)
                status = EXIT_ALIAS_ERROR;
        return status;
    }
    size_t n;
    char **list = cfg_list(cfg, "alias_database", &n);
    for (size_t i = 0; i < n; i++)
        if (build_one(list[i]) != EXIT_ALIAS_OK)
            status = EXIT_ALIAS_ERROR;
    cfg_list_free(list, n);
    return status;
}
