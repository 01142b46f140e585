/*
 * fuzz_macro.c - libFuzzer target for util/macro.c: any template expands
 * without reading out of bounds, and the output holds only bytes of the
 * template and of the variables' values
 */
#include "util/sys.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/macro.h"

#define TEMPLATE_MAX 4096

/* var - a few variables, one of them empty */
static const char *var(void *ctx, const char *name, size_t len)
{
    (void)ctx;
    if (len == 1 && name[0] == 'a')
        return "alpha";
    if (len == 1 && name[0] == 'e')
        return "";
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* LLVMFuzzerTestOneInput - expand the input as a template */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf out = BUF_INIT;
    char *text;

    if (size > TEMPLATE_MAX)
        return 0;
    text = xstrndup((const char *)data, size);
    macro_expand(text, var, NULL, &out);
    /* the output is never longer than the template with every $name as "alpha" */
    if (out.len > strlen(text) * strlen("alpha") + 1)
        __builtin_trap();
    buf_free(&out);
    free(text);
    return 0;
}
