/*
 * fuzz_xsasl_dovecot.c - libFuzzer target for the Dovecot auth reply parser
 *
 * The input is what a Dovecot auth server might send: it is cut at LF
 * and each line goes through xsasl_dc_parse as the client reads it.
 * Checked for every accepted line: OK/CONT/FAIL carry an ID in
 * 1..2^32-1, CONT data and OK success data are base64 that decodes,
 * a MECH has a name, and every string value survives
 * xsasl_dc_escape + xsasl_dc_unescape unchanged with no TAB or LF in
 * its escaped form. A refused line must say why. The whole input is
 * also unescaped as one value: success means escaping gives back a
 * string that unescapes to the same bytes.
 */
#include "util/sys.h"

#include <stdio.h>
#include <string.h>

#include "mail/xsasl_impl.h"
#include "util/buf.h"

#define DC_ID_MAX 0xffffffffUL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check - abort with a message when an invariant fails */
static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant failed: %s\n", what);
        abort();
    }
}

/* check_roundtrip - s escapes without TAB/LF and unescapes back to s */
static void check_roundtrip(const char *s)
{
    struct buf esc = BUF_INIT, back = BUF_INIT;

    if (s == NULL)
        return;
    check(xsasl_dc_escape(&esc, s) == 0, "escape");
    check(memchr(buf_str(&esc), '\t', esc.len) == NULL, "TAB in escaped text");
    check(memchr(buf_str(&esc), '\n', esc.len) == NULL, "LF in escaped text");
    check(xsasl_dc_unescape(buf_str(&esc), esc.len, &back) == 0,
          "unescape of escaped text");
    check(strcmp(buf_str(&back), s) == 0, "escape round trip");
    buf_free(&esc);
    buf_free(&back);
}

/* check_base64 - s is base64 that decodes */
static void check_base64(const char *s)
{
    struct buf out = BUF_INIT;

    check(s != NULL, "data present");
    check(xsasl_base64_decode(s, strlen(s), &out) == 0, "data decodes");
    buf_free(&out);
}

/* check_line - parse one line and check what came out */
static void check_line(const char *line, size_t len)
{
    struct xsasl_dc_reply r;
    const char *err = NULL;

    if (xsasl_dc_parse(line, len, &r, &err) < 0) {
        check(err != NULL && *err, "refusal has a reason");
        return;
    }
    switch (r.kind) {
    case XSASL_DC_OK:
    case XSASL_DC_FAIL:
        check(r.id >= 1 && r.id <= DC_ID_MAX, "ID range");
        if (r.data)
            check_base64(r.data);
        break;
    case XSASL_DC_CONT:
        check(r.id >= 1 && r.id <= DC_ID_MAX, "ID range");
        check_base64(r.data);
        break;
    case XSASL_DC_MECH:
        check(r.mech != NULL && *r.mech, "MECH name");
        break;
    default:
        break;
    }
    check_roundtrip(r.mech);
    check_roundtrip(r.user);
    check_roundtrip(r.reason);
    check_roundtrip(r.data);
    xsasl_dc_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size, *nl;
    struct buf whole = BUF_INIT;

    while (p < end) {
        nl = memchr(p, '\n', (size_t)(end - p));
        check_line(p, nl ? (size_t)(nl - p) : (size_t)(end - p));
        p = nl ? nl + 1 : end;
    }
    if (xsasl_dc_unescape((const char *)data, size, &whole) == 0)
        check_roundtrip(buf_str(&whole));
    buf_free(&whole);
    return 0;
}
