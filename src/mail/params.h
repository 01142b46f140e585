/*
 * params.h - the settings table: every parameter posta knows, once
 *
 * One entry per parameter: name, type, default (Postfix's default where
 * the parameter exists in Postfix, as text that may reference $other
 * parameters), limits for numbers and times, and one line of
 * documentation. `posta conf -d` prints this table; the posta.conf(5) man
 * page is checked against it by a test.
 */
#ifndef POSTA_PARAMS_H
#define POSTA_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

enum param_type {
    PARAM_STR,    /* free text (may hold $references) */
    PARAM_INT,    /* integer, within [min, max] */
    PARAM_BOOL,   /* yes/no (also true/false, 1/0) */
    PARAM_TIME,   /* number + optional unit s/m/h/d/w; default unit in unit */
    PARAM_LIST,   /* comma/space separated list */
};

struct param_def {
    const char *name;
    enum param_type type;
    const char *def;       /* default value as main.cf text */
    long long min, max;    /* PARAM_INT, PARAM_TIME (seconds) */
    char unit;             /* PARAM_TIME: default unit ('s','m','h','d','w') */
    const char *doc;       /* one line */
};

extern const struct param_def param_table[];
extern const size_t param_count;

/* param_find - the entry for name, or NULL */
const struct param_def *param_find(const char *name);
/* param_check - validate value (expanded) for def; false + *why on error */
bool param_check(const struct param_def *def, const char *value, const char **why);
/* param_parse_time - seconds from "10s", "5m", "1h", "2d", "1w" or a bare number */
bool param_parse_time(const char *value, char unit, long long *secs);
bool param_parse_bool(const char *value, bool *out);
bool param_parse_int(const char *value, long long *out);

#endif
