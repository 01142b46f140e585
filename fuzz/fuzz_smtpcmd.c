/*
 * fuzz_smtpcmd.c - libFuzzer target for SMTP command-line parsing
 *
 * The first input byte selects SMTPUTF8 (bit 0); the rest, up to the
 * first NUL, is fed as a C string to smtpcmd_split, smtpcmd_params,
 * xtext_decode and xtext_encode. Checked: split's argument lies inside
 * the line; parsed parameters are within SMTP_PARAMS_MAX, have valid
 * upper-case keywords, valid values, no duplicates, are found by
 * smtpcmd_param_get and re-parse identically when printed; a failed
 * parse leaves nothing behind; xtext encode/decode round-trips.
 */
#include "util/sys.h"

#include <strings.h>

#include "mail/addr.h"
#include "mail/smtpcmd.h"
#include "util/alloc.h"
#include "util/buf.h"

#define UTF8_FLAG 0x01u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const verbs[] = {
    "HELO", "EHLO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT", "STARTTLS",
};

/* check - abort with a message when an invariant fails */
static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant failed: %s\n", what);
        abort();
    }
}

/* check_params - the promises of a successful smtpcmd_params */
static void check_params(const struct smtp_params *p, bool utf8)
{
    struct smtp_params again;
    struct buf b = BUF_INIT;
    const char *why;
    size_t i, j;

    check(p->n <= SMTP_PARAMS_MAX, "parameter count");
    for (i = 0; i < p->n; i++) {
        const unsigned char *k = (const unsigned char *)p->p[i].key;
        const unsigned char *v = (const unsigned char *)p->p[i].value;
        check(k[0] != 0 && k[0] != '-', "keyword start");
        for (j = 0; k[j] != 0; j++)
            check((k[j] >= 'A' && k[j] <= 'Z') || (k[j] >= '0' && k[j] <= '9') || k[j] == '-',
                  "keyword characters");
        if (v != NULL) {
            check(v[0] != 0, "value not empty");
            for (j = 0; v[j] != 0; j++)
                check((v[j] > ' ' && v[j] < 0x7f && v[j] != '=') || (utf8 && v[j] >= 0x80),
                      "value characters");
            check(utf8_valid((const char *)v, j), "value UTF-8");
        }
        for (j = 0; j < i; j++)
            check(strcmp(p->p[i].key, p->p[j].key) != 0, "no duplicates");
        check(smtpcmd_param_get(p, p->p[i].key) == &p->p[i], "param_get finds it");
        buf_printf(&b, " %s%s%s", p->p[i].key, v ? "=" : "", v ? p->p[i].value : "");
    }
    check(smtpcmd_params(buf_str(&b), utf8, &again, &why), "printed parameters reparse");
    check(again.n == p->n, "reparse count");
    for (i = 0; i < p->n; i++) {
        check(strcmp(again.p[i].key, p->p[i].key) == 0, "reparse key");
        check((again.p[i].value == NULL) == (p->p[i].value == NULL), "reparse value presence");
        if (p->p[i].value != NULL)
            check(strcmp(again.p[i].value, p->p[i].value) == 0, "reparse value");
    }
    smtpcmd_params_free(&again);
    buf_free(&b);
}

/* LLVMFuzzerTestOneInput - one line through split, params and xtext */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct smtp_params params;
    const char *why = NULL, *arg = NULL;
    char *text, *dec, *enc, *back;
    bool utf8;
    int idx;

    if (size == 0)
        return 0;
    utf8 = (data[0] & UTF8_FLAG) != 0;
    text = xstrndup((const char *)data + 1, size - 1);

    idx = smtpcmd_split(text, verbs, POSTA_ARRAY_LEN(verbs), &arg);
    check(arg != NULL && arg >= text && arg <= text + strlen(text), "split argument in line");
    if (idx >= 0)
        check(strncasecmp(text, verbs[idx], strlen(verbs[idx])) == 0, "split verb matches");

    if (smtpcmd_params(text, utf8, &params, &why)) {
        check_params(&params, utf8);
        smtpcmd_params_free(&params);
    } else {
        check(why != NULL && why[0] != 0, "error has a reason");
        check(params.n == 0, "nothing left on error");
    }

    dec = xtext_decode(text);
    if (dec != NULL) {
        enc = xtext_encode(dec);
        back = xtext_decode(enc);
        check(back != NULL && strcmp(back, dec) == 0, "xtext decode/encode round trip");
        free(back);
        free(enc);
        free(dec);
    }
    enc = xtext_encode(text);
    back = xtext_decode(enc);
    check(back != NULL && strcmp(back, text) == 0, "xtext encode/decode round trip");
    free(back);
    free(enc);
    free(text);
    return 0;
}
