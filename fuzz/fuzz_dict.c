/*
 * fuzz_dict.c - libFuzzer target for the texthash: and inline: parsers
 *
 * The first input byte picks the parser: even, the rest is the text of a
 * texthash: file (postmap format); odd, it is the part after "inline:"
 * (and also after "static:"). Every key the texthash parser could have
 * stored - the first word of each line, folded - is looked up; a found
 * value never holds a newline.
 */
#include "util/sys.h"

#include <string.h>

#include "util/alloc.h"
#include "util/dict.h"
#include "util/dict_impl.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check - abort with a message when an invariant fails */
static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant failed: %s\n", what);
        abort();
    }
}

/* lookup_words - look up the first word of every line */
static void lookup_words(struct dict *d, const char *text, size_t len)
{
    size_t pos = 0;

    while (pos < len) {
        const char *p = text + pos;
        const char *nl = memchr(p, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - p) : len - pos;
        size_t w = 0;
        while (w < n && p[w] != ' ' && p[w] != '\t' && p[w] != 0)
            w++;
        char *key = xstrndup(p, w);
        const char *value = NULL;
        if (dict_lookup(d, key, &value) == DICT_FOUND)
            check(value != NULL && strchr(value, '\n') == NULL, "value has no newline");
        free(key);
        pos += n + 1;
    }
}

/* LLVMFuzzerTestOneInput - one fuzz input, checked as the header says */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    char *err = NULL;

    if (!quiet) {
        log_open("fuzz_dict", LOG_SINK_FILE, "/dev/null");
        quiet = true;
    }
    if (size == 0)
        return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    if ((data[0] & 1) == 0) {
        struct dict *d = dict_alloc("texthash:fuzz", "texthash", "fuzz", 0);
        if (dict_texthash_load(d, text, len, &err))
            lookup_words(d, text, len);
        free(err);
        dict_free(d);
        return 0;
    }
    if (memchr(text, 0, len) != NULL)
        return 0;   /* a spec is a C string */
    static const char *const prefixes[] = {"inline:", "static:"};
    for (size_t i = 0; i < POSTA_ARRAY_LEN(prefixes); i++) {
        char *spec = xasprintf("%s%.*s", prefixes[i], (int)len, text);
        struct dict *d = dict_open(spec, 0, &err);
        if (d != NULL) {
            check(err == NULL, "no error on success");
            const char *value;
            check(dict_lookup(d, "a", &value) != DICT_TEMPFAIL, "no tempfail in memory");
            dict_close(d);
        } else {
            check(err != NULL, "an error says why");
        }
        free(err);
        err = NULL;
        free(spec);
    }
    return 0;
}
