/*
 * fuzz_valias.c - libFuzzer target for virtual_alias_maps values
 *
 * The input is "LHS\nVALUE": the address that was looked up, then the
 * table value (both as C strings: a table value holds no NUL). The value
 * goes through valias_parse_value. Invariants: an error comes with an
 * explanation and leaves no result; every result is non-empty and has a
 * domain ('@'); there are at most ALIASFILE_ITEMS_MAX results.
 */
#include "util/sys.h"

#include <stdio.h>
#include <string.h>

#include "mail/aliasfile.h"
#include "mail/valias.h"
#include "util/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ORIGIN "origin.example"

/* check - abort with a message when an invariant fails */
static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant failed: %s\n", what);
        abort();
    }
}

/* LLVMFuzzerTestOneInput - one input */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = xstrndup((const char *)data, size);
    char *nl = strchr(text, '\n');
    const char *lhs = nl ? text : "user@lhs.example";
    const char *value = nl ? nl + 1 : text;
    struct valias_list l = {0};
    char *err = NULL;
    bool ok;

    if (nl)
        *nl = 0;
    ok = valias_parse_value(value, lhs, FUZZ_ORIGIN, &l, &err);
    check(ok == (err == NULL), "error iff explanation");
    check(l.n <= ALIASFILE_ITEMS_MAX, "too many results");
    for (size_t i = 0; ok && i < l.n; i++) {
        check(l.addr[i][0] != 0, "empty result");
        check(strchr(l.addr[i], '@') != NULL, "result without a domain");
    }
    free(err);
    valias_list_free(&l);
    free(text);
    return 0;
}
