/*
 * fuzz_dict_regexp.c - libFuzzer target for the regexp: and pcre: tables
 *
 * The first input byte picks the variant: bit 0 clear, regexp: (POSIX);
 * set, pcre: (PCRE2). Bit 1 clear: the rest, up to a line "%%", is the
 * text of a table file; set: it is the body of the inline form
 * "TYPE:{...}" opened through dict_open. The lines after "%%" are lookup
 * keys (plus a few fixed ones). Invariants: loading never fails for file
 * text (bad rules are skipped with warnings); an inline spec either
 * opens or says why; a lookup is never a temporary failure for such small
 * inputs, and a found value is a string.
 */
#include "util/sys.h"

#include <stdio.h>
#include <string.h>

#include "util/alloc.h"
#include "util/dict.h"
#include "util/dict_impl.h"
#include "util/log.h"

#define FUZZ_KEY_MAX 256     /* longer keys only slow POSIX matching down */
#define FUZZ_INPUT_MAX 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check - abort with a message when an invariant fails */
static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant failed: %s\n", what);
        abort();
    }
}

/* lookup_one - one lookup, checked */
static void lookup_one(struct dict *d, const char *key)
{
    const char *value = NULL;
    enum dict_result r = dict_lookup(d, key, &value);

    check(r != DICT_TEMPFAIL, "no temporary failure");
    if (r == DICT_FOUND)
        check(value != NULL && strlen(value) < ((size_t)1 << 20), "found value is a string");
}

/* lookup_keys - every line of keys, then fixed keys */
static void lookup_keys(struct dict *d, const char *keys, size_t len)
{
    static const char *const fixed[] = {"", "a", "user@example.com", "A.B.C", "\n"};
    size_t pos = 0;

    while (pos < len) {
        const char *p = keys + pos;
        const char *nl = memchr(p, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - p) : len - pos;
        char *key = xstrndup(p, n < FUZZ_KEY_MAX ? n : FUZZ_KEY_MAX);
        lookup_one(d, key);
        free(key);
        pos += n + 1;
    }
    for (size_t i = 0; i < POSTA_ARRAY_LEN(fixed); i++)
        lookup_one(d, fixed[i]);
}

/* LLVMFuzzerTestOneInput - one fuzz input, checked as the header says */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    char *err = NULL;

    if (!quiet) {
        log_open("fuzz_dict_regexp", LOG_SINK_FILE, "/dev/null");
        quiet = true;
    }
    if (size == 0 || size > FUZZ_INPUT_MAX)
        return 0;
    const char *type = (data[0] & 1) ? "pcre" : "regexp";
    bool inline_form = (data[0] & 2) != 0;
    char *text = xstrndup((const char *)data + 1, size - 1);   /* stops at a NUL */
    size_t len = strlen(text);
    char *sep = strstr(text, "\n%%\n");
    const char *keys = "";
    size_t klen = 0;
    if (sep != NULL) {
        *sep = 0;
        keys = sep + strlen("\n%%\n");
        klen = len - (size_t)(keys - text);
        len = (size_t)(sep - text);
    }
    if (!inline_form) {
        char *spec = xasprintf("%s:fuzz", type);
        struct dict *d = dict_alloc(spec, type, "fuzz", 0);
        check(dict_regexp_load(d, text, len, &err), "file text always loads");
        lookup_keys(d, keys, klen);
        dict_free(d);
        free(spec);
    } else {
        char *spec = xasprintf("%s:{%s}", type, text);
        struct dict *d = dict_open(spec, 0, &err);
        if (d != NULL) {
            check(err == NULL, "no error on success");
            lookup_keys(d, keys, klen);
            dict_close(d);
        } else {
            check(err != NULL, "an error says why");
        }
        free(spec);
    }
    free(err);
    free(text);
    return 0;
}
