/*
 * fuzz_aliasfile.c - libFuzzer target for aliases(5) right-hand sides
 *
 * The first input byte selects the parser: even - aliasfile_parse over
 * the rest (copied to a buffer of exactly its size so that any over-read
 * is caught by ASan); odd - aliasfile_argv over the rest as a C string.
 * Invariants: an error comes with an explanation; items are never empty
 * and never contain NUL; commands and include paths have no leading
 * blank; argument vectors are NULL-terminated with argc entries.
 */
#include "util/sys.h"

#include <stdio.h>
#include <string.h>

#include "mail/aliasfile.h"
#include "util/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check - abort with a message when an invariant fails */
static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant failed: %s\n", what);
        abort();
    }
}

/* fuzz_parse - the list parser */
static void fuzz_parse(const uint8_t *data, size_t size)
{
    char *copy = xmalloc(size ? size : 1);
    struct alias_list l = {0};
    char *err = NULL;
    bool ok;

    memcpy(copy, data, size);
    ok = aliasfile_parse(copy, size, &l, &err);
    check(ok == (err == NULL), "error iff explanation");
    for (size_t i = 0; i < l.n; i++) {
        const char *v = l.items[i].value;

        check(v[0] != 0, "empty item");
        if (l.items[i].type == ALIAS_COMMAND || l.items[i].type == ALIAS_INCLUDE)
            check(v[0] != ' ' && v[0] != '\t', "leading blank");
        if (l.items[i].type == ALIAS_FILE)
            check(v[0] == '/', "file without slash");
    }
    free(err);
    alias_list_free(&l);
    free(copy);
}

/* fuzz_argv - the command splitter */
static void fuzz_argv(const uint8_t *data, size_t size)
{
    char *cmd = xstrndup((const char *)data, size);
    char *err = NULL;
    size_t argc = 0;
    char **argv = aliasfile_argv(cmd, &argc, &err);

    if (argv == NULL) {
        check(err != NULL, "error without explanation");
    } else {
        check(argc > 0 && argc <= ALIASFILE_ARGS_MAX, "argc range");
        check(argv[argc] == NULL, "NULL terminator");
        for (size_t i = 0; i < argc; i++)
            check(argv[i] != NULL, "missing argument");
    }
    free(err);
    aliasfile_argv_free(argv);
    free(cmd);
}

/* LLVMFuzzerTestOneInput - one input */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1)
        fuzz_argv(data + 1, size - 1);
    else
        fuzz_parse(data + 1, size - 1);
    return 0;
}
