/*
 * fuzz_addr.c - libFuzzer target for the RFC 5321 path parser
 *
 * The first input byte selects the ADDR_* flags (all 16 combinations);
 * the rest is the path text, copied to a buffer of exactly its size so
 * that any over-read is caught by ASan. On success the result must obey
 * the parser's promises: *end within the input and followed by a blank
 * or the end; no control characters; 8-bit only with ADDR_UTF8 and then
 * well-formed UTF-8; the mailbox no longer than a 256-octet path allows;
 * "<" addr ">" re-parses strictly to the same result; the quoted local
 * part parses back to the same internal local part. utf8_valid is
 * checked against an independent decoder.
 */
#include "util/sys.h"

#include "mail/addr.h"
#include "util/alloc.h"

#define FLAG_BITS 0x0fu
#define MAILBOX_MAX 254        /* 256-octet path minus the brackets */
#define UNICODE_MAX 0x10ffff
#define SURROGATE_FIRST 0xd800
#define SURROGATE_LAST 0xdfff

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check - abort with a message when an invariant fails */
static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant failed: %s\n", what);
        abort();
    }
}

/* ref_utf8_valid - a plain decoder: code point, then range checks */
static bool ref_utf8_valid(const unsigned char *s, size_t len)
{
    static const unsigned long min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
    size_t i = 0, n, k;
    unsigned long cp;

    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            n = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i < n)
            return false;
        for (k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min_for_len[n] || cp > UNICODE_MAX
            || (cp >= SURROGATE_FIRST && cp <= SURROGATE_LAST))
            return false;
        i += n;
    }
    return true;
}

/* check_success - the promises of a successful parse */
static void check_success(const char *text, size_t len, unsigned flags,
                          const struct addr *a, size_t end)
{
    struct addr again;
    const char *why;
    size_t alen, i, aend;
    bool eight = false;
    char *q, *re;

    check(a->addr && a->local && a->domain, "result strings set");
    check(end <= len, "end within input");
    check(end == len || text[end] == ' ' || text[end] == '\t', "blank after path");
    alen = strlen(a->addr);
    check(alen <= MAILBOX_MAX, "mailbox length");
    for (i = 0; i < alen; i++) {
        unsigned char c = (unsigned char)a->addr[i];
        check(c >= 0x20 && c != 0x7f, "no control characters");
        if (c >= 0x80)
            eight = true;
    }
    check(eight == a->has_8bit, "has_8bit matches");
    if (!(flags & ADDR_UTF8))
        check(!eight, "8-bit only with ADDR_UTF8");
    else
        check(utf8_valid(a->addr, alen), "addr is valid UTF-8");
    if (alen == 0)
        check(flags & ADDR_ALLOW_NULL, "null only when allowed");
    if (a->domain[0] != 0)
        check(addr_domain_valid(a->domain, (flags & ADDR_UTF8) != 0), "domain valid");
    else if (alen > 0)
        check(flags & ADDR_ALLOW_POSTMASTER, "domain-less only for Postmaster");

    /* "<" addr ">" parses strictly to the same thing */
    re = xasprintf("<%s>", a->addr);
    check(addr_parse_path(re, strlen(re), (flags & ~ADDR_LAX) | ADDR_ALLOW_NULL, &again,
                          &aend, &why) == ADDR_OK, "reparse ok");
    check(aend == strlen(re), "reparse consumes all");
    check(strcmp(again.addr, a->addr) == 0, "reparse addr");
    check(strcmp(again.local, a->local) == 0, "reparse local");
    check(strcmp(again.domain, a->domain) == 0, "reparse domain");
    addr_free(&again);
    free(re);

    /* the SMTP form of the internal local part gives it back */
    if (a->domain[0] != 0) {
        q = addr_quote_local(a->local);
        re = xasprintf("<%s@%s>", q, a->domain);
        check(addr_parse_path(re, strlen(re), ADDR_UTF8, &again, NULL, &why) == ADDR_OK,
              "quoted local part reparses");
        check(strcmp(again.local, a->local) == 0, "quoted local part round trip");
        addr_free(&again);
        free(re);
        free(q);
    }
}

/* LLVMFuzzerTestOneInput - one path through addr_parse_path and the invariants */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct addr a;
    unsigned flags;
    const char *why = NULL;
    size_t len, end = 0;
    char *text, *cstr;
    enum addr_status st;

    if (size == 0)
        return 0;
    flags = data[0] & FLAG_BITS;
    len = size - 1;
    text = xmalloc(len ? len : 1);
    memcpy(text, data + 1, len);

    st = addr_parse_path(text, len, flags, &a, &end, &why);
    if (st == ADDR_OK) {
        check_success(text, len, flags, &a, end);
    } else {
        check(why != NULL && why[0] != 0, "error has a reason");
        check(a.addr == NULL && a.local == NULL && a.domain == NULL, "no result on error");
        check(end <= len, "error offset within input");
    }
    addr_free(&a);

    check(utf8_valid(text, len) == ref_utf8_valid((const unsigned char *)text, len),
          "utf8_valid agrees with the reference decoder");

    cstr = xstrndup(text, len);
    (void)addr_domain_valid(cstr, (flags & ADDR_UTF8) != 0);
    free(addr_quote_local(cstr));
    free(cstr);
    free(text);
    return 0;
}
