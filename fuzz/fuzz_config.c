/*
 * fuzz_config.c - libFuzzer target for the main.cf parser and $expansion
 *
 * The input is loaded with cfg_load_string. When it loads, every table
 * parameter is read (cfg_str, and the typed reader for its type, which
 * must not fail after a successful load), lists are split, and an
 * override that makes the configuration self-referential is attempted and
 * must be refused without changing what is read afterwards. The input is
 * also split as a list by cfg_split_list.
 */
#include "util/sys.h"

#include "mail/config.h"
#include "mail/params.h"
#include "util/alloc.h"
#include "util/log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check - abort with a message when an invariant fails */
static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant failed: %s\n", what);
        abort();
    }
}

/* read_all - read every parameter through its typed reader */
static void read_all(struct cfg *cfg)
{
    size_t i, n;
    char **list;

    for (i = 0; i < param_count; i++) {
        const struct param_def *d = &param_table[i];
        const char *v = cfg_str(cfg, d->name);

        check(v != NULL, "cfg_str returned NULL");
        switch (d->type) {
        case PARAM_INT:
            check(cfg_int(cfg, d->name) >= d->min, "int below min");
            break;
        case PARAM_TIME:
            check(cfg_time(cfg, d->name) >= d->min, "time below min");
            break;
        case PARAM_BOOL:
            (void)cfg_bool(cfg, d->name);
            break;
        case PARAM_LIST:
            list = cfg_list(cfg, d->name, &n);
            check(list[n] == NULL, "list not NULL-terminated");
            cfg_list_free(list, n);
            break;
        default:
            break;
        }
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    log_open("fuzz_config", 0, NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *err = NULL;
    struct cfg *cfg = cfg_load_string((const char *)data, size, "fuzz", &err);
    char *text, **list, *before;
    size_t n;

    if (cfg == NULL) {
        check(err != NULL && *err != 0, "load failed without an error");
        free(err);
    } else {
        read_all(cfg);
        before = xstrdup(cfg_str(cfg, "smtpd_banner"));
        if (cfg_try_override(cfg, "fuzz", "myhostname", "$smtpd_banner", &err)) {
            /* accepted only if smtpd_banner does not use $myhostname */
            read_all(cfg);
        } else {
            free(err);
            check(strcmp(before, cfg_str(cfg, "smtpd_banner")) == 0,
                  "refused override changed a value");
        }
        free(before);
        cfg_free(cfg);
    }
    text = xstrndup((const char *)data, size);
    list = cfg_split_list(text, &n);
    check(list[n] == NULL, "split list not NULL-terminated");
    cfg_list_free(list, n);
    free(text);
    return 0;
}
