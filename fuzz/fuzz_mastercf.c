/*
 * fuzz_mastercf.c - libFuzzer target for the master.cf parser
 *
 * The input is parsed with master_cf_parse. On success every service must
 * be complete (name, type, command, the seven verbatim fields), numbers in
 * range, argument lists NULL-terminated and -o names non-empty; on failure
 * the error must name the origin and the result must be empty.
 */
#include "util/sys.h"

#include "mail/mastercf.h"
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

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    log_open("fuzz_mastercf", 0, NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct master_cf m;
    char *err = NULL;
    size_t i, j;

    if (!master_cf_parse((const char *)data, size, "fuzz", &m, &err)) {
        check(err != NULL && strncmp(err, "fuzz", 4) == 0, "error does not name the origin");
        check(m.svc == NULL && m.n == 0, "failed parse left services");
        free(err);
        return 0;
    }
    for (i = 0; i < m.n; i++) {
        const struct master_service *s = &m.svc[i];

        check(s->name && *s->name && s->type && s->command && *s->command, "incomplete");
        for (j = 0; j < MASTER_NFIELDS; j++)
            check(s->fields[j] != NULL, "missing field");
        check(s->wakeup >= 0 && s->maxproc >= -1, "number out of range");
        check(s->line >= 1, "bad line number");
        check(s->args != NULL && s->args[s->nargs] == NULL, "args not NULL-terminated");
        for (j = 0; j < s->nopts; j++)
            check(*s->opts[j].name != 0 && s->opts[j].value != NULL, "bad -o");
    }
    master_cf_free(&m);
    return 0;
}
