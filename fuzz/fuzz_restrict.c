/*
 * fuzz_restrict.c - libFuzzer target for smtpd's restriction-list and
 * access-table-result parsers (smtpd/restrict_parse.c)
 *
 * The first input byte selects what the rest (up to the first NUL) is:
 * 0 a restriction list (split as main.cf lists are, then parsed with two
 * classes and without opening tables), 1 an access-table value, 2 a client
 * "name address" pair, an address and a HELO name for the lookup keys, 3
 * a host name for the syntax checks. Checked: a parse either succeeds
 * with only known restrictions (each with its argument where one is
 * needed) or fails with an explanation and nothing left behind; an access
 * result's code agrees with its kind and its text lies inside the value;
 * every key is a NUL-terminated string within the key block and at most
 * RESTR_KEYS_MAX are made; a fully-qualified name is a valid name.
 */
#include "util/sys.h"

#include <string.h>

#include "mail/config.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/dict.h"

#include "../smtpd/restrict_parse.c"
#include "../smtpd/policy_client.c"   /* check_policy_service arguments */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *class_names[] = {"strict", "relaxed"};
static const struct restr_classes classes = {class_names, NULL, 2};

/* check - abort with a message when an invariant fails */
static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant failed: %s\n", what);
        abort();
    }
}

/* fuzz_list - parse a list; check what came out */
static void fuzz_list(const char *text)
{
    size_t n;
    char **words = cfg_split_list(text, &n);
    struct restr_list l;
    char *err = NULL;

    if (restr_parse_list(words, n, "fuzz_restrictions", &classes, NULL, NULL, &l, &err)) {
        check(err == NULL, "no error on success");
        check(l.n <= n, "restriction count");
        for (size_t i = 0; i < l.n; i++) {
            const struct restr *r = &l.v[i];

            check(r->op < R_COUNT, "restriction op");
            if (r->op == R_CLASS)
                check(r->class_idx < classes.n, "class index");
            else if (restr_argkind(r->op) != RA_NONE)
                check(r->arg != NULL && *r->arg != 0, "argument present");
            check(r->table == NULL, "no table opened");
        }
        restr_list_free(&l);
    } else {
        check(err != NULL && *err != 0, "error explained");
        check(l.v == NULL && l.n == 0 && l.param == NULL, "nothing left after failure");
        free(err);
    }
    cfg_list_free(words, n);
}

/* fuzz_access - parse an access value; check the result */
static void fuzz_access(const char *value)
{
    struct access_result r;
    size_t len = strlen(value);

    access_parse(value, &classes, &r);
    check(r.kind <= AK_BAD, "kind");
    check(r.text != NULL, "text");
    if (*r.text)
        check(r.text >= value && r.text <= value + len, "text inside the value");
    if (r.numeric) {
        check(r.code >= 400 && r.code <= 599, "numeric code 4xx/5xx");
        check(r.kind == (r.code < 500 ? AK_DEFER : AK_REJECT), "numeric kind");
        if (r.enh[0])
            check(r.enh[0] == (char)('0' + r.code / 100), "enhanced code class");
    } else {
        check(r.code == 0, "no code without a number");
    }
    if (r.kind == AK_RESTRICTION) {
        if (r.op == R_CLASS)
            check(r.class_idx < classes.n, "class index");
        else
            check(r.op >= 0 && r.op < R_CLASS && restr_argkind((enum restr_op)r.op) == RA_NONE,
                  "restriction without argument");
    }
}

/* check_keys - each key lies in its block */
static void check_keys(size_t n, const char *keys[RESTR_KEYS_MAX], char *store)
{
    check(n <= RESTR_KEYS_MAX, "key count");
    for (size_t i = 0; i < n; i++)
        check(keys[i] >= store, "key inside the block");
    free(store);
}

/* fuzz_keys - the lookup keys of the input as client, address and HELO name */
static void fuzz_keys(const char *text)
{
    const char *keys[RESTR_KEYS_MAX];
    char *store = NULL;
    char *copy = xstrdup(text);
    char *sp = strchr(copy, ' ');
    const char *addr = sp ? sp + 1 : "192.0.2.1";
    size_t n;

    if (sp)
        *sp = 0;
    n = restr_client_keys(copy, addr, true, &store, keys);
    check_keys(n, keys, store);
    n = restr_addr_keys(text, true, &store, keys);
    check(n >= 1 && strcmp(keys[0], text) == 0, "address is the first key");
    check_keys(n, keys, store);
    n = restr_addr_keys(text, false, &store, keys);
    check_keys(n, keys, store);
    n = restr_domain_keys(text, true, &store, keys);
    check(*text == 0 || (n >= 1 && strcmp(keys[0], text) == 0), "name is the first key");
    check_keys(n, keys, store);
    free(copy);
}

/* LLVMFuzzerTestOneInput - the first byte picks the parser, the rest is its text */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;

    if (size == 0)
        return 0;
    text = xstrndup((const char *)data + 1, size - 1);
    switch (data[0] % 4) {
    case 0:
        fuzz_list(text);
        break;
    case 1:
        fuzz_access(text);
        break;
    case 2:
        fuzz_keys(text);
        break;
    default:
        if (restr_fqdn(text))
            check(restr_valid_hostname(text), "fqdn is valid");
        break;
    }
    free(text);
    return 0;
}
