/*
 * fuzz_smtpreply.c - libFuzzer target for SMTP reply and EHLO parsing
 *
 * The input is a stream of server bytes, parsed reply after reply as
 * the smtp client does. Checked for every complete reply: it used at
 * least one and at most the given bytes, its code is 200-599, its DSN
 * is empty or "C.N.N" with C the code's first digit, its text has no
 * control characters but the "\n" between lines, every line starts
 * with the code, there are at most SMTP_REPLY_LINES_MAX lines, the
 * prefix one byte shorter is incomplete, and re-parsing the same bytes
 * gives the same reply. smtp_reply_oneline and smtp_ehlo_features run
 * on it: the one-line form has no newline and the AUTH mechanisms are
 * a NUL-terminated list of upper-case SASL names.
 */
#include "util/sys.h"

#include <stdio.h>
#include <string.h>

#include "mail/smtpreply.h"
#include "util/buf.h"

#define ASCII_FIRST_PRINT 0x20
#define ASCII_DEL 0x7f
#define CODE_MIN 200
#define CODE_MAX 599
#define REPLY_CODE_LEN 3

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check - abort with a message when an invariant fails */
static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant failed: %s\n", what);
        abort();
    }
}

/* check_reply - the promises of a complete reply */
static void check_reply(const struct smtp_reply *r)
{
    const char *t = buf_str(&r->text);
    size_t i, lines = 1, dl = strlen(r->dsn);
    char code[REPLY_CODE_LEN + 1];
    bool line_start = true;

    check(r->code >= CODE_MIN && r->code <= CODE_MAX, "code range");
    snprintf(code, sizeof(code), "%d", r->code);
    check(dl == 0 || (dl >= strlen("2.0.0") && r->dsn[0] == code[0] && r->dsn[1] == '.'),
          "dsn form");
    for (i = 0; i < r->text.len; i++) {
        unsigned char c = (unsigned char)t[i];
        if (line_start)
            check(strncmp(t + i, code, REPLY_CODE_LEN) == 0, "line starts with code");
        line_start = c == '\n';
        lines += c == '\n';
        check(c == '\n' || (c >= ASCII_FIRST_PRINT && c != ASCII_DEL), "clean text");
    }
    check(lines <= SMTP_REPLY_LINES_MAX, "line count");
}

/* check_features - the promises of smtp_ehlo_features */
static void check_features(const struct smtp_reply *r)
{
    struct smtp_features f;
    size_t n, i;

    smtp_ehlo_features(r, &f);
    n = strnlen(f.auth_mechs, sizeof(f.auth_mechs));
    check(n < sizeof(f.auth_mechs), "auth_mechs terminated");
    for (i = 0; i < n; i++) {
        char c = f.auth_mechs[i];
        check((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'
                  || c == ' ',
              "auth mechanism characters");
    }
    check(n == 0 || (f.auth_mechs[0] != ' ' && f.auth_mechs[n - 1] != ' '), "auth list trimmed");
    check(f.size_limit == 0 || (f.flags & SMTP_FEAT_SIZE), "size without SIZE");
}

/* LLVMFuzzerTestOneInput - parse the bytes as a stream of replies */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data, *err = NULL;
    struct smtp_reply r, again;
    struct buf one = BUF_INIT;
    size_t pos = 0, used = 0, used2 = 0;
    int rc;

    smtp_reply_init(&r);
    smtp_reply_init(&again);
    while (pos < size) {
        rc = smtp_reply_parse(in + pos, size - pos, &used, &r, &err);
        if (rc < 0) {
            check(err != NULL && err[0] != 0, "error has a reason");
            break;
        }
        if (rc == 0)
            break;
        check(rc == 1 && used > 0 && used <= size - pos, "used in range");
        check_reply(&r);
        check(smtp_reply_parse(in + pos, used - 1, &used2, &again, &err) == 0,
              "shorter prefix is incomplete");
        check(smtp_reply_parse(in + pos, used, &used2, &again, &err) == 1 && used2 == used
                  && again.code == r.code && strcmp(again.dsn, r.dsn) == 0
                  && again.text.len == r.text.len
                  && memcmp(buf_str(&again.text), buf_str(&r.text), r.text.len) == 0,
              "reparse identical");
        buf_reset(&one);
        smtp_reply_oneline(&r, &one);
        check(memchr(buf_str(&one), '\n', one.len) == NULL, "oneline has no newline");
        check_features(&r);
        pos += used;
    }
    buf_free(&one);
    smtp_reply_free(&r);
    smtp_reply_free(&again);
    return 0;
}
