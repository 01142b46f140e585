/*
 * mastercf.h - master.cf: the services master runs
 *
 * Eight columns per service: service name, type (inet, unix, unix-dgram,
 * fifo, pass), private, unpriv, chroot (y, n or - for the default), wakeup,
 * maxproc (- means default_process_limit), command + arguments. A line that
 * starts with white space continues the previous one. Arguments may be
 * grouped with { ... } to hold spaces; "-o name=value" (also "-o
 * { name = value }") sets a main.cf parameter for that service only.
 * Defaults as Postfix 3.x: private y (n for inet, which cannot be
 * private), unpriv y, chroot n, wakeup 0, maxproc - (default_process_limit).
 * A '#' line (also white space then '#') is a comment, also between
 * continuation lines. Errors are "FILE, line N: why".
 */
#ifndef POSTA_MASTERCF_H
#define POSTA_MASTERCF_H

#include <stdbool.h>
#include <stddef.h>

struct master_opt {
    char *name;
    char *value;
};

/* The seven columns before the command, kept verbatim in fields[]. */
enum {
    MASTER_F_NAME,
    MASTER_F_TYPE,
    MASTER_F_PRIVATE,
    MASTER_F_UNPRIV,
    MASTER_F_CHROOT,
    MASTER_F_WAKEUP,
    MASTER_F_MAXPROC,
    MASTER_NFIELDS
};

struct master_service {
    char *name;        /* "smtp", "127.0.0.1:2525", "submission", "qmgr" */
    char *type;        /* "inet", "unix", ... */
    bool private_;
    bool unpriv;
    bool chroot;
    int wakeup;        /* seconds, 0 = none */
    int maxproc;       /* 0 = unlimited; -1 = default_process_limit */
    char *command;     /* program name in daemon_directory */
    char **args;       /* arguments other than -o overrides */
    size_t nargs;
    struct master_opt *opts;   /* -o overrides, in order */
    size_t nopts;
    char *file;        /* where it was defined */
    int line;
    bool wakeup_if_used;  /* wakeup written "N?": only if the service is used */
    char *fields[MASTER_NFIELDS];  /* columns 1-7 as written ("-" kept) */
};

struct master_cf {
    struct master_service *svc;
    size_t n;
};

/* master_cf_load - parse a master.cf file; false + *err ("FILE, line N: why") */
bool master_cf_load(const char *path, struct master_cf *out, char **err);
bool master_cf_parse(const char *text, size_t len, const char *origin,
                     struct master_cf *out, char **err);
void master_cf_free(struct master_cf *m);
/*
 * master_cf_postfix_only - is command one of Postfix's programs that posta
 * does not have (cleanup, trivial-rewrite, bounce, pipe, ...)? A service
 * running one is skipped with a warning (a stock Postfix master.cf works).
 */
bool master_cf_postfix_only(const char *command);

#endif
