/*
 * fuzz_dmarc_record.c - libFuzzer target for the DMARC record parser, the
 * From-domain extraction and Authentication-Results recognition
 *
 * Invariants: a record that parses starts with v=DMARC1 and has a policy
 * and pct within 0..100; From-domain extraction gives a domain exactly
 * when it says OK; authres_is_ours is the same on a copy with the id
 * upper-cased.
 */
#include "util/sys.h"

#include <ctype.h>
#include <string.h>

#include "mail/authres.h"
#include "mail/dmarc.h"
#include "util/alloc.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX 8192

/* check - abort with a message when an invariant fails */
static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant failed: %s\n", what);
        abort();
    }
}

/* LLVMFuzzerTestOneInput - one fuzz input, checked as the header says */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;
    struct dmarc_record rec;
    struct buf d = BUF_INIT;
    const char *why, *v[1];
    enum dmarc_from_status st;

    if (size > FUZZ_MAX)
        return 0;
    text = xstrndup((const char *)data, size);
    if (dmarc_record_parse(text, &rec, &why) == 0) {
        check(dmarc_is_record(text), "parsed record starts with v=DMARC1");
        check(rec.p != DMARC_POLICY_UNSET, "policy set");
        check(rec.pct <= 100, "pct range");
    }
    dmarc_record_free(&rec);
    v[0] = text;
    st = dmarc_from_domain(v, 1, &d, &why);
    check((st == DMARC_FROM_OK) == (d.len > 0), "domain iff OK");
    buf_free(&d);
    check(authres_is_ours(text, strlen(text), "mx.example.org")
              == authres_is_ours(text, strlen(text), "MX.EXAMPLE.ORG"),
          "authserv-id case");
    free(text);
    return 0;
}
