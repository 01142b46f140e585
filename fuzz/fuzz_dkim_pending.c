/*
 * fuzz_dkim_pending.c - libFuzzer target for completing pending DKIM signatures
 *
 * The queue manager reads the pending signature field back from a queue
 * file (mail/dkim.h, qmgr/signer.c): that field, and the message around
 * it, are parsed again. An Ed25519 key (made at start, in memory after
 * loading) signs for d=example.com s=fz. Two modes, by the first byte:
 *   even: the rest is a message; smtpd's pending field is made for it
 *         and completed with the same message: the finished field must
 *         be as long as the pending one, named DKIM-Signature, without
 *         placeholders, and completing it twice gives the same bytes;
 *   odd:  the rest is the field itself (tried as is and behind the
 *         pending name), completed against a fixed message: whatever
 *         completes keeps its length.
 */
#include "util/sys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "mail/dkim.h"
#include "util/alloc.h"
#include "util/buf.h"

#define FUZZ_NOW 1700000000
#define SIG_NAME "DKIM-Signature:"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dkim_keys *keys;
static struct dkim_key *key;

static const char fixed_msg[] = "From: a@example.com\nTo: b@example.net\nSubject: s\n\nbody\n";

/* check - abort with a message when an invariant fails */
static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant failed: %s\n", what);
        abort();
    }
}

/* setup - a fresh Ed25519 key in a signing table (files removed after loading) */
static void setup(void)
{
    char kpath[] = "/tmp/fuzz_dkim_keyXXXXXX", tpath[] = "/tmp/fuzz_dkim_tabXXXXXX";
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    int kfd = mkstemp(kpath), tfd = mkstemp(tpath);
    FILE *kf, *tf;
    char *spec, *err = NULL;

    check(pk != NULL && kfd >= 0 && tfd >= 0, "key files");
    kf = fdopen(kfd, "w");
    tf = fdopen(tfd, "w");
    check(kf && tf && PEM_write_PrivateKey(kf, pk, NULL, NULL, 0, NULL, NULL) == 1, "key");
    fprintf(tf, "example.com fz:%s\n", kpath);
    fclose(kf);
    fclose(tf);
    EVP_PKEY_free(pk);
    spec = xasprintf("texthash:%s", tpath);
    keys = dkim_keys_open(spec, (gid_t)-1, &err);
    check(keys != NULL, err ? err : "keys");
    key = dkim_keys_lookup(keys, "example.com", "fz");
    check(key != NULL, "key loaded");
    unlink(kpath);
    unlink(tpath);
    free(spec);
}

/* header_len - the header block of msg (up to the empty line) */
static size_t header_len(const char *msg, size_t n, size_t *body)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (msg[i] == '\n' && msg[i + 1] == '\n') {
            *body = i + 2;
            return i + 1;
        }
    *body = n;
    return n;
}

/* complete - finish field against msg: 0 and out, or -1 */
static int complete(const char *field, size_t flen, const char *msg, size_t n, struct buf *out)
{
    char *err = NULL;
    size_t body, hl = header_len(msg, n, &body);
    struct dkim_complete *c = dkim_complete_new(keys, field, flen, &err);
    int rc;

    if (c == NULL) {
        check(err != NULL, "a reason");
        free(err);
        return -1;
    }
    dkim_complete_header(c, msg, hl);
    dkim_complete_body(c, msg + body, n - body);
    rc = dkim_complete_finish(c, out, &err);
    free(err);
    dkim_complete_free(c);
    if (rc == 0)
        check(out->len == flen, "same length");
    return rc;
}

/* fuzz_message - smtpd's pending field for msg, completed */
static void fuzz_message(const char *msg, size_t n)
{
    struct dkim_sign *s = dkim_sign_new(key, NULL, FUZZ_NOW);
    struct buf pend = BUF_INIT, a = BUF_INIT, b = BUF_INIT;
    char *err = NULL;
    size_t body, hl = header_len(msg, n, &body);

    dkim_sign_header(s, msg, hl);
    if (dkim_sign_pending(s, "\n", &pend, &err) == 0) {
        check(dkim_complete_needed(pend.data, pend.len), "pending is needed");
        check(complete(pend.data, pend.len, msg, n, &a) == 0, "our own field completes");
        check(strncmp(buf_str(&a), SIG_NAME, strlen(SIG_NAME)) == 0, "named DKIM-Signature");
        check(!dkim_complete_needed(a.data, a.len), "no placeholder left");
        check(complete(pend.data, pend.len, msg, n, &b) == 0 && strcmp(a.data, b.data) == 0,
              "deterministic");
    }
    free(err);
    dkim_sign_free(s);
    buf_free(&pend);
    buf_free(&a);
    buf_free(&b);
}

/* fuzz_field - an arbitrary field, as is and behind the pending name */
static void fuzz_field(const char *f, size_t n)
{
    struct buf out = BUF_INIT, named = BUF_INIT;

    (void)dkim_complete_needed(f, n);
    (void)complete(f, n, fixed_msg, strlen(fixed_msg), &out);
    buf_puts(&named, DKIM_PENDING_HEADER ": ");
    buf_append(&named, f, n);
    buf_reset(&out);
    (void)complete(named.data, named.len, fixed_msg, strlen(fixed_msg), &out);
    buf_free(&out);
    buf_free(&named);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;

    if (keys == NULL)
        setup();
    if (size == 0)
        return 0;
    text = xmemdup(data + 1, size - 1);   /* not NUL-terminated: the size rules */
    if (data[0] % 2 == 0)
        fuzz_message(text, size - 1);
    else
        fuzz_field(text, size - 1);
    free(text);
    return 0;
}
