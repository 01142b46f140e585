/*
 * cmd_conf.c - "posta conf": the postconf subset
 *
 * Prints main.cf parameters ("name = value", unexpanded unless -x, as
 * postconf does) from main.cf or the settings table, the defaults (-d),
 * only what main.cf sets (-n), values only (-h), and master.cf services
 * (-M) in postconf -M's normalised column layout.
 *
 * DIAGNOSTICS
 *	An unknown parameter name: "posta conf: warning: NAME: unknown
 *	parameter" and a "did you mean" suggestion from the settings table;
 *	exit status 1. Bad options: usage, exit status 2. A broken main.cf or
 *	master.cf is fatal (exit status 1) with the file and line.
 */
#include "util/sys.h"

#include <getopt.h>
#include <stdio.h>

#include "cmd_conf.h"
#include "mail/config.h"
#include "mail/mastercf.h"
#include "mail/params.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"

enum {
    CONF_EXIT_OK = 0,
    CONF_EXIT_ERROR = 1,   /* unknown parameter, unreadable master.cf */
    CONF_EXIT_USAGE = 2,
};

#define CONF_PROG "posta conf"
#define CONF_SUGGEST_MIN 2     /* always allow this many edits... */
#define CONF_SUGGEST_DIV 3     /* ...or one edit per this many characters */

/* master.cf -M output: the column where each field starts (as postconf -M). */
static const int conf_mcf_cols[MASTER_NFIELDS + 1] = {0, 11, 17, 25, 33, 41, 49, 57};

struct conf_opts {
    bool nondefault;   /* -n */
    bool defaults;     /* -d */
    bool value_only;   /* -h */
    bool expand;       /* -x */
    bool master;       /* -M */
};

/* conf_usage - the usage message; exit status CONF_EXIT_USAGE */
static int conf_usage(void)
{
    fprintf(stderr,
            "usage: posta [-c config_dir] conf [-dhnx] [parameter ...]\n"
            "       posta [-c config_dir] conf -M [service[/type] ...]\n"
            "  -d  show default values\n"
            "  -n  show only parameters set in main.cf\n"
            "  -h  show values only, without \"name = \"\n"
            "  -x  expand $name references\n"
            "  -M  show master.cf services\n");
    return CONF_EXIT_USAGE;
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

/* conf_suggest - the closest table name, or NULL if none is close */
static const char *conf_suggest(const char *name)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1, d, i;
    size_t limit = strlen(name) / CONF_SUGGEST_DIV;

    if (limit < CONF_SUGGEST_MIN)
        limit = CONF_SUGGEST_MIN;
    for (i = 0; i < param_count; i++) {
        d = conf_distance(name, param_table[i].name);
        if (d < best_d) {
            best_d = d;
            best = param_table[i].name;
        }
    }
    return best_d <= limit ? best : NULL;
}

/* conf_unknown - report an unknown parameter name */
static void conf_unknown(const char *name)
{
    const char *hint = conf_suggest(name);

    fprintf(stderr, "%s: warning: %s: unknown parameter\n", CONF_PROG, name);
    if (hint)
        fprintf(stderr, "%s: did you mean \"%s\"?\n", CONF_PROG, hint);
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
static void conf_pad_to(struct buf *b, size_t col)
{
    if (b->len > 0)
        buf_putc(b, ' ');
    while (b->len < col)
        buf_putc(b, ' ');
}

/* conf_has_space - does text need {} to stay one field? */
static bool conf_has_space(const char *text)
{
    return *text == 0 || strpbrk(text, " \t") != NULL;
}

/* conf_show_service - one master.cf service in postconf -M layout */
static void conf_show_service(const struct master_service *s)
{
    struct buf b = BUF_INIT;
    size_t i;

    for (i = 0; i < MASTER_NFIELDS; i++) {
        conf_pad_to(&b, (size_t)conf_mcf_cols[i]);
        buf_puts(&b, s->fields[i]);
    }
    conf_pad_to(&b, (size_t)conf_mcf_cols[MASTER_NFIELDS]);
    buf_puts(&b, s->command);
    /* -o options first, then the other arguments (operands stay last) */
    for (i = 0; i < s->nopts; i++) {
        if (strpbrk(s->opts[i].value, " \t") != NULL)
            buf_printf(&b, " -o {%s=%s}", s->opts[i].name, s->opts[i].value);
        else
            buf_printf(&b, " -o %s=%s", s->opts[i].name, s->opts[i].value);
    }
    for (i = 0; i < s->nargs; i++) {
        if (conf_has_space(s->args[i]))
            buf_printf(&b, " {%s}", s->args[i]);
        else
            buf_printf(&b, " %s", s->args[i]);
    }
    printf("%s\n", buf_str(&b));
    buf_free(&b);
}

/* conf_service_wanted - does s match one of the service[/type] arguments? */
static bool conf_service_wanted(const struct master_service *s, int argc, char **argv)
{
    const char *slash;
    size_t nlen;
    int i;

    if (argc == 0)
        return true;
    for (i = 0; i < argc; i++) {
        slash = strchr(argv[i], '/');
        nlen = slash ? (size_t)(slash - argv[i]) : strlen(argv[i]);
        if (strlen(s->name) == nlen && strncmp(s->name, argv[i], nlen) == 0
            && (slash == NULL || strcmp(slash + 1, s->type) == 0))
            return true;
    }
    return false;
}

/* conf_master - -M: print master.cf services */
static int conf_master(const char *dir, int argc, char **argv)
{
    struct master_cf m;
    char *path = xasprintf("%s/master.cf", dir);
    char *err = NULL;
    size_t i;

    if (!master_cf_load(path, &m, &err)) {
        fprintf(stderr, "%s: fatal: %s\n", CONF_PROG, err);
        free(err);
        free(path);
        return CONF_EXIT_ERROR;
    }
    for (i = 0; i < m.n; i++)
        if (conf_service_wanted(&m.svc[i], argc, argv))
            conf_show_service(&m.svc[i]);
    master_cf_free(&m);
    free(path);
    return CONF_EXIT_OK;
}

/* cmd_conf - run "posta conf"; argv[0] is the command name */
int cmd_conf(int argc, char **argv, const char *config_dir)
{
    struct conf_opts o = {false, false, false, false, false};
    const char *dir = config_dir;
    struct cfg *cfg;
    char *err = NULL;
    int status = CONF_EXIT_OK;
    int c, i;
    size_t k;

    optind = 0;   /* GNU getopt: restart scanning (cmd_conf may run twice) */
    opterr = 0;
    while ((c = getopt(argc, argv, "+c:dhnxM")) != -1) {
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
            o.master = true;
            break;
        default:
            fprintf(stderr, "%s: bad option -%c\n", CONF_PROG, optopt ? optopt : '?');
            return conf_usage();
        }
    }
    if (o.defaults && o.nondefault) {
        fprintf(stderr, "%s: -d and -n cannot be used together\n", CONF_PROG);
        return conf_usage();
    }
    dir = cfg_default_dir(dir);
    argc -= optind;
    argv += optind;
    if (o.master)
        return conf_master(dir, argc, argv);

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
