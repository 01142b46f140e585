/*
 * fuzz_policy_reply.c - libFuzzer target for check_policy_service's
 * parsers (smtpd/policy_client.c)
 *
 * The first input byte selects what the rest is: 0 the bytes a policy
 * server sent (the reply parser), 1 a check_policy_service argument (up
 * to the first NUL; the spec parser), 2 request attributes (NUL-separated
 * name, value, name, value, ...; the request encoder). Checked: a
 * complete reply used at least its empty line and at most the input, its
 * action is non-empty without CR, LF or NUL, and one byte less is still
 * incomplete; an incomplete reply is within POL_REPLY_MAX; an error says
 * why. A parsed specification has an endpoint, a try limit of at least
 * one and a host and port or a socket name; a failed one explains
 * itself. An encoded request is one line per attribute plus the empty
 * line, without CR and without a newline inside any value.
 */
#include "util/sys.h"

#include <stdio.h>
#include <string.h>

#include "util/alloc.h"
#include "util/buf.h"

#include "../smtpd/policy_client.c"

#define FUZZ_ATTRS_MAX 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check - abort with a message when an invariant fails */
static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant failed: %s\n", what);
        abort();
    }
}

/* fuzz_reply - the reply parser */
static void fuzz_reply(const char *p, size_t n)
{
    struct buf action = BUF_INIT;
    const char *why;
    size_t used;

    switch (pol_reply_parse(p, n, &action, &used, &why)) {
    case POL_REPLY_DONE:
        check(used >= 2 && used <= n && p[used - 1] == '\n', "used");
        check(action.len > 0 && strlen(buf_str(&action)) == action.len, "action");
        check(strpbrk(buf_str(&action), "\r\n") == NULL, "action has no line end");
        {
            struct buf again = BUF_INIT;
            size_t u2;
            const char *w2;

            check(pol_reply_parse(p, used - 1, &again, &u2, &w2) == POL_REPLY_MORE,
                  "one byte less is incomplete");
            buf_free(&again);
        }
        break;
    case POL_REPLY_MORE:
        check(n <= POL_REPLY_MAX, "incomplete within the bound");
        break;
    case POL_REPLY_ERROR:
        check(why != NULL && *why != 0, "error explained");
        break;
    }
    buf_free(&action);
}

/* fuzz_spec - the check_policy_service argument parser */
static void fuzz_spec(const char *p, size_t n)
{
    char *text = xstrndup(p, n);
    struct pol_spec d, s;
    char *err = NULL;

    memset(&d, 0, sizeof(d));
    d.timeout_ms = d.max_idle_ms = d.max_ttl_ms = d.retry_delay_ms = MS_PER_S;
    d.try_limit = 2;
    d.default_action = "DUNNO";
    d.policy_context = "";
    if (pol_spec_parse(text, &d, &s, &err)) {
        check(s.endpoint != NULL && s.try_limit >= 1, "spec");
        check(s.is_unix ? s.path != NULL && *s.path : s.host && *s.host && s.port && *s.port,
              "endpoint parts");
        check(s.default_action != NULL && *s.default_action, "default action");
        pol_spec_free(&s);
    } else {
        check(err != NULL && *err != 0, "error explained");
        free(err);
    }
    free(text);
}

/* fuzz_encode - the request encoder */
static void fuzz_encode(const char *p, size_t n)
{
    struct pol_attr attrs[FUZZ_ATTRS_MAX];
    char *copy = xmalloc(n + 1);
    struct buf out = BUF_INIT;
    size_t na = 0, pos = 0, lines = 0;

    memcpy(copy, p, n);
    copy[n] = 0;
    while (pos < n && na < FUZZ_ATTRS_MAX) {
        const char *name = copy + pos;

        pos += strlen(name) + 1;
        if (strchr(name, '\n') != NULL || strchr(name, '\r') != NULL || *name == 0)
            continue;       /* names are the program's own, never outside input */
        attrs[na].name = name;
        attrs[na].value = pos < n ? copy + pos : NULL;
        if (pos < n)
            pos += strlen(copy + pos) + 1;
        na++;
    }
    pol_request_encode(&out, attrs, na);
    check(out.len >= 1 && strchr(buf_str(&out), '\r') == NULL, "no CR");
    for (size_t i = 0; i < out.len; i++)
        lines += out.data[i] == '\n';
    check(lines == na + 1, "one line per attribute, then the empty line");
    check(out.len >= 2 || na == 0, "ends with the empty line");
    buf_free(&out);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data + 1;

    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0:
        fuzz_reply(p, size - 1);
        break;
    case 1:
        fuzz_spec(p, strnlen(p, size - 1));
        break;
    default:
        fuzz_encode(p, size - 1);
        break;
    }
    return 0;
}
