/*
 * test_dkim.c - DKIM canonicalisation, tag parsers, signing and verification
 *
 * Golden files in tests/golden/dkim/:
 *   canon/NAME.msg      a message; NAME.out its canonical header fields and
 *                       body, simple and relaxed (the body also fed one byte
 *                       at a time, which must give the same bytes)
 *   sig_tags.txt        DKIM-Signature values and what the parser makes of them
 *   key_tags.txt        key records, the same way
 *   sign/NAME.eml       signed with rsa.key (also as rsa_traditional.key,
 *                       "BEGIN RSA PRIVATE KEY") and ed.key at a fixed time: the
 *                       signature headers must be byte-identical to
 *                       sign/NAME.rsa.out and sign/NAME.ed25519.out
 *                       and completing the pending field (deferred signing)
 *                       gives the same bytes
 *   vectors/NAME.eml    messages signed by dkimpy (make_vectors.py) with
 *                       NAME.dns (key records) and NAME.dkimpy (dkimpy's
 *                       verdicts): posta must pass exactly what dkimpy
 *                       passes, and its results must equal NAME.out
 *
 * The key records come from a test callback: no DNS is used.
 */
#include "util/sys.h"

#include <setjmp.h>
#include <cmocka.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "mail/dkim.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/event.h"

#include "golden.h"

#define SIGN_TIME 1700000000      /* t= of the golden signatures and vectors */
#define VERIFY_TIME 1750000000    /* "now" for verifying the vectors */
#define ODD_CHUNK 7               /* feeds bodies in awkward pieces */

/* hdr_len - header block length including the empty line */
static size_t hdr_len(const char *s, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] != '\n')
            continue;
        if (s[i + 1] == '\n')
            return i + 2;
        if (i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n')
            return i + 3;
    }
    return n;
}

/* render_bytes - escaped text, a real newline after each escaped LF */
static void render_bytes(struct buf *out, const char *s, size_t n)
{
    size_t start = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n') {
            golden_render(out, s + start, i + 1 - start);
            buf_putc(out, '\n');
            start = i + 1;
        }
    }
    golden_render(out, s + start, n - start);
    if (start < n)
        buf_putc(out, '\n');
}

struct fieldlist {
    enum dkim_canon c;
    struct buf *out;
};

/* canon_field_fn - one field, canonicalised */
static void canon_field_fn(void *ctx, const char *field, size_t len)
{
    struct fieldlist *fl = ctx;

    dkim_canon_header(fl->c, field, len, fl->out);
}

/* collect_fn - canonical body bytes into a buf */
static void collect_fn(void *ctx, const void *p, size_t n)
{
    buf_append(ctx, p, n);
}

/* canon_body - the canonical body, whole and byte by byte (must agree) */
static void canon_body(enum dkim_canon c, const char *s, size_t n, struct buf *got)
{
    struct dkim_body b;
    struct buf bytewise = BUF_INIT;

    dkim_body_init(&b, c, collect_fn, got);
    dkim_body_update(&b, s, n);
    dkim_body_final(&b);
    dkim_body_init(&b, c, collect_fn, &bytewise);
    for (size_t i = 0; i < n; i++)
        dkim_body_update(&b, s + i, 1);
    dkim_body_final(&b);
    assert_int_equal(got->len, bytewise.len);
    assert_memory_equal(buf_str(got), buf_str(&bytewise), got->len);
    buf_free(&bytewise);
}

/* render_canon - canon/NAME.msg -> NAME.out */
static void render_canon(const char *file, char *text, size_t len, struct buf *out)
{
    static const char *const names[] = {"simple", "relaxed"};
    size_t hl = hdr_len(text, len);

    for (int c = DKIM_CANON_SIMPLE; c <= DKIM_CANON_RELAXED; c++) {
        struct buf got = BUF_INIT;
        struct fieldlist fl = {(enum dkim_canon)c, &got};
        dkim_header_split(text, hl, canon_field_fn, &fl);
        buf_printf(out, "== header %s\n", names[c]);
        render_bytes(out, buf_str(&got), got.len);
        buf_free(&got);
    }
    for (int c = DKIM_CANON_SIMPLE; c <= DKIM_CANON_RELAXED; c++) {
        struct buf got = BUF_INIT;
        canon_body((enum dkim_canon)c, text + hl, len - hl, &got);
        buf_printf(out, "== body %s\n", names[c]);
        render_bytes(out, buf_str(&got), got.len);
        buf_free(&got);
    }
}

static void test_canon_golden(void **state)
{
    golden_run_dir("dkim/canon", ".msg", 5, render_canon);
}

/* test_canon_rfc_example - RFC 6376 section 3.4.6, spelled out */
static void test_canon_rfc_example(void **state)
{
    const char *body = " C \r\nD \t E\r\n\r\n\r\n";
    struct buf got = BUF_INIT;

    buf_reset(&got);
    dkim_canon_header(DKIM_CANON_RELAXED, "A: X", 4, &got);
    dkim_canon_header(DKIM_CANON_RELAXED, "B : Y\t\r\n\tZ  ", 12, &got);
    assert_string_equal(buf_str(&got), "a:X\r\nb:Y Z\r\n");
    buf_reset(&got);
    canon_body(DKIM_CANON_RELAXED, body, strlen(body), &got);
    assert_string_equal(buf_str(&got), " C\r\nD E\r\n");
    buf_reset(&got);
    canon_body(DKIM_CANON_SIMPLE, body, strlen(body), &got);
    assert_string_equal(buf_str(&got), " C \r\nD \t E\r\n");
    buf_free(&got);
}

/* render_sig - what dkim_sig_parse made of a value */
static void render_sig(const char *in, struct buf *got)
{
    struct dkim_sig sig;
    const char *why;

    if (dkim_sig_parse(in, strlen(in), &sig, &why) < 0) {
        buf_printf(got, "error: %s", why);
        return;
    }
    buf_printf(got, "ok a=%s c=%s/%s d=%s s=%s i=%s h=",
               sig.alg == DKIM_ALG_RSA_SHA256 ? "rsa-sha256" : "ed25519-sha256",
               sig.hcanon == DKIM_CANON_RELAXED ? "relaxed" : "simple",
               sig.bcanon == DKIM_CANON_RELAXED ? "relaxed" : "simple", sig.d, sig.s,
               sig.i ? sig.i : "-");
    for (size_t i = 0; i < sig.nh; i++)
        buf_printf(got, "%s%s", i ? ":" : "", sig.h[i]);
    if (sig.has_l)
        buf_printf(got, " l=%llu", (unsigned long long)sig.l);
    if (sig.has_t)
        buf_printf(got, " t=%lld", (long long)sig.t);
    if (sig.has_x)
        buf_printf(got, " x=%lld", (long long)sig.x);
    buf_printf(got, " blen=%zu b=%.8s", sig.blen, sig.b_text);
    dkim_sig_free(&sig);
}

/* render_key - what dkim_key_parse made of a record */
static void render_key(const char *in, struct buf *got)
{
    struct dkim_keyrec k;
    const char *why;

    if (dkim_key_parse(in, strlen(in), &k, &why) < 0) {
        buf_printf(got, "error: %s", why);
        return;
    }
    buf_printf(got, "ok k=%s plen=%zu%s%s%s%s%s", k.k == DKIM_KEY_RSA ? "rsa" : "ed25519", k.plen,
               k.revoked ? " revoked" : "", k.testing ? " testing" : "",
               k.strict ? " strict" : "", k.sha256_ok ? "" : " no-sha256",
               k.email_ok ? "" : " not-email");
    dkim_key_free(&k);
}

/* run_table - NAME<TAB>INPUT<TAB>EXPECTED lines through render */
static void run_table(const char *file, void (*render)(const char *, struct buf *))
{
    struct golden_lines g;
    char *t1, *t2, *line;

    golden_lines_open(&g, "dkim", file);
    while ((line = golden_lines_next(&g)) != NULL) {
        struct buf in = BUF_INIT, got = BUF_INIT;
        golden_lines_fields(&g, &t1, &t2, 3);
        golden_expand(t1 + 1, (size_t)(t2 - t1 - 1), true, &in);
        render(buf_str(&in), &got);
        if (g.print)
            print_message("%.*s\t%s\n", (int)(t1 - line), line, buf_str(&got));
        golden_lines_check(&g, line, (int)(t1 - line), t2 + 1, buf_str(&got));
        buf_free(&in);
        buf_free(&got);
    }
    golden_lines_close(&g);
}

static void test_sig_tags(void **state)
{
    run_table("sig_tags.txt", render_sig);
}

static void test_key_tags(void **state)
{
    run_table("key_tags.txt", render_key);
}

/* abs_golden - absolute path of tests/golden/dkim/NAME */
static char *abs_golden(const char *name)
{
    char *dir = golden_dir("dkim"), *rel = xasprintf("%s/%s", dir, name);
    char *abs = realpath(rel, NULL);

    assert_non_null(abs);
    free(dir);
    free(rel);
    return abs;
}

/* sign_message - the signature header for text with key, body in odd chunks */
static void sign_message(struct dkim_key *k, const struct dkim_sign_opts *o, const char *text,
                         size_t len, size_t chunk, struct buf *out)
{
    size_t hl = hdr_len(text, len);
    struct dkim_sign *s = dkim_sign_new(k, o, SIGN_TIME);
    char *err = NULL;

    dkim_sign_header(s, text, hl);
    for (size_t i = hl; i < len; i += chunk)
        dkim_sign_body(s, text + i, len - i < chunk ? len - i : chunk);
    assert_int_equal(dkim_sign_finish(s, "\r\n", out, &err), 0);
    dkim_sign_free(s);
}

struct keyctx {
    const char *qname;
    const char *txt;
};

/* one_key - the test resolver for one name */
static enum dkim_dns one_key(void *ctx, const char *qname, struct buf *txt)
{
    const struct keyctx *kc = ctx;

    if (kc->qname == NULL)
        return DKIM_DNS_TEMPFAIL;
    if (strcmp(qname, kc->qname) != 0)
        return DKIM_DNS_NOTFOUND;
    buf_puts(txt, kc->txt);
    return DKIM_DNS_OK;
}

/* verify_text - verify a whole message against one key; the first status */
static enum dkim_status verify_text(const char *text, size_t len, const struct keyctx *kc,
                                    struct buf *ar)
{
    size_t hl = hdr_len(text, len), n;
    struct dkim_verify *v = dkim_verify_new(0, SIGN_TIME + 10);
    enum dkim_status st;

    dkim_verify_header(v, text, hl);
    dkim_verify_body(v, text + hl, len - hl);
    dkim_verify_body_end(v);
    dkim_verify_keys_sync(v, one_key, (void *)kc);
    assert_true(dkim_verify_ready(v));
    const struct dkim_result *r = dkim_verify_results(v, &n);
    st = n ? r[0].status : DKIM_NONE;
    if (ar)
        dkim_verify_ar(v, "\r\n", ar);
    dkim_verify_free(v);
    return st;
}

/* lf - s with every CR LF as LF */
static char *lf(const char *s)
{
    char *out = xstrdup(s), *w = out;

    for (const char *p = s; *p; p++)
        if (!(p[0] == '\r' && p[1] == '\n'))
            *w++ = *p;
    *w = 0;
    return out;
}

/*
 * check_deferred - the pending field smtpd writes, completed as the queue
 * manager does, is byte for byte the signature made at once (want, LF
 * line ends), whether its name is still the pending one or (a crash
 * between two writes) already DKIM-Signature; a key of another size is
 * refused.
 */
static void check_deferred(struct dkim_key *k, const char *keypath, const char *selector,
                           const struct dkim_sign_opts *o, const char *text, size_t len,
                           const char *want)
{
    char tpath[] = "/tmp/test_dkim_tableXXXXXX", *spec, *err = NULL;
    size_t hl = hdr_len(text, len);
    struct buf pend = BUF_INIT, done = BUF_INIT;
    struct dkim_sign *s = dkim_sign_new(k, o, SIGN_TIME);
    int fd = mkstemp(tpath);
    FILE *fp;

    assert_true(fd >= 0);
    assert_non_null(fp = fdopen(fd, "w"));
    fprintf(fp, "example.com %s:%s\n", selector, keypath);
    fclose(fp);
    spec = xasprintf("texthash:%s", tpath);
    struct dkim_keys *ks = dkim_keys_open(spec, (gid_t)-1, &err);
    if (ks == NULL)
        fail_msg("%s", err);

    dkim_sign_header(s, text, hl);
    assert_int_equal(dkim_sign_pending(s, "\n", &pend, &err), 0);
    dkim_sign_free(s);
    assert_int_equal(pend.len, strlen(want));
    assert_int_equal(strncmp(buf_str(&pend), DKIM_PENDING_HEADER ":", 15), 0);
    assert_true(dkim_complete_needed(pend.data, pend.len));
    assert_false(dkim_complete_needed(want, strlen(want)));
    for (int round = 0; round < 2; round++) {
        if (round == 1)   /* the name written, the values not yet */
            memcpy(pend.data, "DKIM-Signature", 14);
        struct dkim_complete *c = dkim_complete_new(ks, pend.data, pend.len, &err);
        if (c == NULL)
            fail_msg("%s", err);
        assert_string_equal(dkim_complete_domain(c), "example.com");
        dkim_complete_header(c, text, hl);
        for (size_t i = hl; i < len; i += ODD_CHUNK)
            dkim_complete_body(c, text + i, len - i < ODD_CHUNK ? len - i : ODD_CHUNK);
        buf_reset(&done);
        assert_int_equal(dkim_complete_finish(c, &done, &err), 0);
        dkim_complete_free(c);
        assert_string_equal(buf_str(&done), want);
    }
    /* a selector the table does not have */
    char *other = xstrdup(buf_str(&pend));
    char *sel = strstr(other, "; s=");
    assert_non_null(sel);
    sel[4] = 'Z';
    assert_null(dkim_complete_new(ks, other, strlen(other), &err));
    assert_non_null(strstr(err, "no signing key"));
    free(err);
    free(other);

    dkim_keys_free(ks);
    unlink(tpath);
    free(spec);
    buf_free(&pend);
    buf_free(&done);
}

/* sign_golden - one key: golden header, chunking-independent, verifies */
static void sign_golden(const char *keyname, const char *selector, const char *outname)
{
    char *keypath = abs_golden(keyname), *msgpath = abs_golden("sign/message.eml");
    char *dir = golden_dir("dkim/sign"), *outpath = xasprintf("%s/%s", dir, outname);
    char *err = NULL, *text, *record;
    size_t len;
    struct buf sig = BUF_INIT, sig2 = BUF_INIT, msg = BUF_INIT, rec = BUF_INIT;
    struct dkim_key *k = dkim_key_load("Example.COM", selector, keypath, (gid_t)-1, &err);
    struct dkim_sign_opts o;

    if (k == NULL)
        fail_msg("%s", err);
    text = golden_read_file(msgpath, &len);
    assert_non_null(text);
    dkim_sign_opts_init(&o);
    sign_message(k, &o, text, len, len, &sig);
    sign_message(k, &o, text, len, ODD_CHUNK, &sig2);
    assert_string_equal(buf_str(&sig), buf_str(&sig2));
    /* every line of the header fits in 78 columns */
    for (const char *p = buf_str(&sig), *nl;; p = nl + 2) {
        nl = strstr(p, "\r\n");
        size_t linelen = nl ? (size_t)(nl - p) : strlen(p);
        assert_true(linelen <= DKIM_HEADER_WIDTH);
        if (nl == NULL)
            break;
    }
    char *want = lf(buf_str(&sig));
    check_deferred(k, keypath, selector, &o, text, len, want);
    free(want);
    buf_putc(&sig, '\n');   /* the golden file ends with a newline */
    assert_int_equal(golden_compare(outname, outpath, &sig), 0);
    buf_truncate(&sig, sig.len - 1);

    /* posta verifies its own signature, and a change breaks it */
    assert_int_equal(dkim_pubkey_record(k, &rec, &err), 0);
    record = buf_steal(&rec);
    char *qname = xasprintf("%s._domainkey.example.com", selector);
    struct keyctx kc = {qname, record};
    buf_printf(&msg, "%s\r\n%s", buf_str(&sig), text);
    assert_int_equal(verify_text(buf_str(&msg), msg.len, &kc, NULL), DKIM_PASS);
    char *subj = strstr(msg.data, "Subject: ");
    assert_non_null(subj);
    subj[9] ^= 0x20;
    assert_int_equal(verify_text(buf_str(&msg), msg.len, &kc, NULL), DKIM_FAIL);
    subj[9] ^= 0x20;
    /* an added From breaks the oversigned signature */
    buf_reset(&msg);
    buf_printf(&msg, "%s\r\nFrom: evil@example.net\r\n%s", buf_str(&sig), text);
    assert_int_equal(verify_text(buf_str(&msg), msg.len, &kc, NULL), DKIM_FAIL);

    free(qname);
    free(record);
    dkim_key_release(k);
    buf_free(&sig);
    buf_free(&sig2);
    buf_free(&msg);
    free(text);
    free(outpath);
    free(dir);
    free(msgpath);
    free(keypath);
}

static void test_sign_rsa_golden(void **state)
{
    sign_golden("rsa.key", "rsa", "message.rsa.out");
}

/* test_sign_traditional_pem - the same RSA key as "BEGIN RSA PRIVATE KEY" signs the same */
static void test_sign_traditional_pem(void **state)
{
    char *p8 = abs_golden("rsa.key"), *trad = abs_golden("rsa_traditional.key");
    char *msgpath = abs_golden("sign/message.eml"), *err = NULL, *text;
    struct dkim_key *k1 = dkim_key_load("example.com", "rsa", p8, (gid_t)-1, &err);
    struct dkim_key *k2 = dkim_key_load("example.com", "rsa", trad, (gid_t)-1, &err);
    struct buf s1 = BUF_INIT, s2 = BUF_INIT;
    size_t len;

    assert_non_null(k1);
    assert_non_null(k2);
    text = golden_read_file(msgpath, &len);
    assert_non_null(text);
    sign_message(k1, NULL, text, len, len, &s1);
    sign_message(k2, NULL, text, len, len, &s2);
    assert_string_equal(buf_str(&s1), buf_str(&s2));
    buf_free(&s1);
    buf_free(&s2);
    free(text);
    dkim_key_release(k1);
    dkim_key_release(k2);
    free(msgpath);
    free(trad);
    free(p8);
}

static void test_sign_ed25519_golden(void **state)
{
    sign_golden("ed.key", "ed", "message.ed25519.out");
}

/* test_sign_no_from - a message without From cannot be signed */
static void test_sign_no_from(void **state)
{
    char *keypath = abs_golden("ed.key"), *err = NULL;
    struct dkim_key *k = dkim_key_load("example.com", "ed", keypath, (gid_t)-1, &err);
    struct dkim_sign *s;
    struct buf out = BUF_INIT;
    const char *hdr = "To: a@example.org\r\nSubject: x\r\n\r\n";

    assert_non_null(k);
    s = dkim_sign_new(k, NULL, SIGN_TIME);
    dkim_sign_header(s, hdr, strlen(hdr));
    assert_int_equal(dkim_sign_finish(s, "\n", &out, &err), -1);
    assert_non_null(strstr(err, "From"));
    free(err);
    dkim_sign_free(s);
    dkim_key_release(k);
    buf_free(&out);
    free(keypath);
}

/* test_key_load_errors - missing file named, short RSA key refused */
static void test_key_load_errors(void **state)
{
    char *err = NULL, *shortkey = abs_golden("short.key");

    assert_null(dkim_key_load("example.com", "s", "/nonexistent/dkim.key", (gid_t)-1, &err));
    assert_non_null(strstr(err, "/nonexistent/dkim.key"));
    free(err);
    err = NULL;
    assert_null(dkim_key_load("example.com", "s", shortkey, (gid_t)-1, &err));
    assert_non_null(strstr(err, "too short"));
    free(err);
    free(shortkey);
}

/* test_signing_table - domain, .parent, "*", and a missing key file */
static void test_signing_table(void **state)
{
    char dir[] = "/tmp/test_dkim.XXXXXX";
    char *rsa = abs_golden("rsa.key"), *ed = abs_golden("ed.key"), *path, *spec, *err = NULL;
    struct dkim_keys *ks;
    struct dkim_key *k;
    bool tf;
    FILE *fp;

    assert_non_null(mkdtemp(dir));
    path = xasprintf("%s/signing", dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp, "# DKIM signing table\nexample.com rsa:%s\n.example.org ed:%s\n"
                "* example.net:default:%s\n", rsa, ed, ed);
    fclose(fp);
    spec = xasprintf("texthash:%s", path);
    ks = dkim_keys_open(spec, (gid_t)-1, &err);
    if (ks == NULL)
        fail_msg("%s", err);
    assert_int_equal(dkim_keys_count(ks), 3);
    k = dkim_keys_find(ks, "Example.COM", &tf);
    assert_non_null(k);
    assert_string_equal(dkim_key_domain(k), "example.com");
    assert_string_equal(dkim_key_selector(k), "rsa");
    assert_int_equal(dkim_key_alg(k), DKIM_ALG_RSA_SHA256);
    k = dkim_keys_find(ks, "mail.sub.example.org", &tf);
    assert_non_null(k);
    assert_string_equal(dkim_key_domain(k), "example.org");
    assert_int_equal(dkim_key_alg(k), DKIM_ALG_ED25519_SHA256);
    k = dkim_keys_find(ks, "elsewhere.test", &tf);
    assert_non_null(k);
    assert_string_equal(dkim_key_domain(k), "example.net");
    assert_string_equal(dkim_key_selector(k), "default");
    assert_false(tf);
    dkim_keys_free(ks);

    /* a missing key file fails the load and names the file */
    fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp, "example.com rsa:%s/missing.key\n", dir);
    fclose(fp);
    assert_null(dkim_keys_open(spec, (gid_t)-1, &err));
    assert_non_null(strstr(err, "missing.key"));
    free(err);
    /* a "*" entry must name its domain */
    fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp, "* rsa:%s\n", rsa);
    fclose(fp);
    err = NULL;
    assert_null(dkim_keys_open(spec, (gid_t)-1, &err));
    assert_non_null(strstr(err, "*"));
    free(err);
    /* an empty setting: no signing */
    ks = dkim_keys_open("", (gid_t)-1, &err);
    assert_non_null(ks);
    assert_null(dkim_keys_find(ks, "example.com", &tf));
    dkim_keys_free(ks);

    unlink(path);
    rmdir(dir);
    free(spec);
    free(path);
    free(rsa);
    free(ed);
}

struct dnsfile {
    char *text;
};

/* file_lookup - the test resolver: lines "QNAME<TAB>TXT" */
static enum dkim_dns file_lookup(void *ctx, const char *qname, struct buf *txt)
{
    const struct dnsfile *df = ctx;
    size_t ql = strlen(qname);

    for (const char *p = df->text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t ll = nl ? (size_t)(nl - p) : strlen(p);
        if (ll > ql && strncmp(p, qname, ql) == 0 && p[ql] == '\t') {
            buf_append(txt, p + ql + 1, ll - ql - 1);
            return DKIM_DNS_OK;
        }
        p = nl ? nl + 1 : NULL;
    }
    return DKIM_DNS_NOTFOUND;
}

/* sibling - dir/NAME with the suffix .eml replaced */
static char *sibling(const char *file, const char *suffix)
{
    char *dir = golden_dir("dkim/vectors");
    char *p = xasprintf("%s/%.*s%s", dir, (int)(strlen(file) - 4), file, suffix);

    free(dir);
    return p;
}

/* render_vector - verify a dkimpy vector; agree with dkimpy; render results */
static void render_vector(const char *file, char *text, size_t len, struct buf *out)
{
    char *dnspath = sibling(file, ".dns"), *pypath = sibling(file, ".dkimpy");
    size_t dlen, plen, hl = hdr_len(text, len), n;
    struct dnsfile df = {golden_read_file(dnspath, &dlen)};
    char *py = golden_read_file(pypath, &plen);
    struct dkim_verify *v = dkim_verify_new(0, VERIFY_TIME);
    const struct dkim_result *r;

    assert_non_null(df.text);
    assert_non_null(py);
    dkim_verify_header(v, text, hl);
    for (size_t i = hl; i < len; i += ODD_CHUNK)
        dkim_verify_body(v, text + i, len - i < ODD_CHUNK ? len - i : ODD_CHUNK);
    assert_false(dkim_verify_ready(v) && dkim_verify_nsigs(v) > 0);
    dkim_verify_body_end(v);
    dkim_verify_keys_sync(v, file_lookup, &df);
    r = dkim_verify_results(v, &n);
    /* the same verdict as dkimpy, signature by signature */
    const char *line = py;
    for (size_t i = 0; i < (n ? n : 1); i++) {
        bool py_pass = strncmp(line, "True", 4) == 0;
        bool pass = n > 0 && r[i].status == DKIM_PASS;
        if (pass != py_pass)
            fail_msg("%s: signature %zu: posta says %s, dkimpy %s", file, i,
                     n ? dkim_status_name(r[i].status) : "none", py_pass ? "pass" : "no pass");
        line = strchr(line, '\n');
        assert_non_null(line);
        line++;
    }
    dkim_verify_ar(v, "\n", out);
    buf_putc(out, '\n');
    dkim_verify_free(v);
    free(df.text);
    free(py);
    free(dnspath);
    free(pypath);
}

static void test_dkimpy_vectors(void **state)
{
    golden_run_dir("dkim/vectors", ".eml", 25, render_vector);
}

/* test_verify_limit - only dkim_verify_limit signatures are looked at */
static void test_verify_limit(void **state)
{
    struct buf msg = BUF_INIT;
    struct dkim_verify *v;
    const char *sig = "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s; h=from; "
                      "bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\r\n";

    for (int i = 0; i < 7; i++)
        buf_puts(&msg, sig);
    buf_puts(&msg, "From: a@example.com\r\n\r\n");
    v = dkim_verify_new(3, VERIFY_TIME);
    dkim_verify_header(v, buf_str(&msg), msg.len);
    assert_int_equal(dkim_verify_nsigs(v), 3);
    dkim_verify_free(v);
    v = dkim_verify_new(0, VERIFY_TIME);
    dkim_verify_header(v, buf_str(&msg), msg.len);
    assert_int_equal(dkim_verify_nsigs(v), DKIM_VERIFY_LIMIT_DEFAULT);
    assert_string_equal(dkim_verify_query(v, 0), "s._domainkey.example.com");
    dkim_verify_free(v);
    buf_free(&msg);
}

/* test_verify_tempfail_and_permerror - DNS trouble and syntax */
static void test_verify_tempfail_and_permerror(void **state)
{
    char *path = abs_golden("vectors/rsa_relaxed_valid.eml"), *text;
    size_t len;
    struct keyctx tf = {NULL, NULL};
    struct keyctx bad = {"rsa._domainkey.example.com", "v=DKIM1; k=rsa; p=!!!"};
    struct keyctx ed = {"rsa._domainkey.example.com", "v=DKIM1; k=ed25519; p=AAAA"};
    struct buf ar = BUF_INIT;
    const char *broken = "DKIM-Signature: v=1; a=rsa-sha1; d=example.com; s=s; h=from; "
                         "bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\r\n"
                         "From: a@example.com\r\n\r\nbody\r\n";

    text = golden_read_file(path, &len);
    assert_non_null(text);
    assert_int_equal(verify_text(text, len, &tf, &ar), DKIM_TEMPERROR);
    assert_non_null(strstr(buf_str(&ar), "dkim=temperror"));
    assert_int_equal(verify_text(text, len, &bad, NULL), DKIM_PERMERROR);
    assert_int_equal(verify_text(text, len, &ed, NULL), DKIM_PERMERROR);
    buf_reset(&ar);
    assert_int_equal(verify_text(broken, strlen(broken), &tf, &ar), DKIM_PERMERROR);
    assert_string_equal(buf_str(&ar), "dkim=permerror (unsupported algorithm)");
    buf_reset(&ar);
    assert_int_equal(verify_text("From: a\r\n\r\n", 11, &tf, &ar), DKIM_NONE);
    assert_string_equal(buf_str(&ar), "dkim=none");
    buf_free(&ar);
    free(text);
    free(path);
}

static bool run_done;

/* done_fn - dkim_verify_run's callback */
static void done_fn(void *ctx, struct dkim_verify *v)
{
    run_done = true;
    assert_ptr_equal(ctx, v);
}

/* test_verify_run_no_queries - the async driver answers from the loop */
static void test_verify_run_no_queries(void **state)
{
    const char *m = "From: a@example.com\r\n\r\nhi\r\n";
    struct dkim_verify *v = dkim_verify_new(0, VERIFY_TIME);
    size_t n;

    event_init();
    dkim_verify_header(v, m, strlen(m));
    dkim_verify_body_end(v);
    dkim_verify_run(v, 1000, done_fn, v);
    assert_false(run_done);   /* never from inside the call */
    for (int i = 0; i < 10 && !run_done; i++)
        event_run_once(100);
    assert_true(run_done);
    dkim_verify_results(v, &n);
    assert_int_equal(n, 0);
    dkim_verify_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canon_golden),
        cmocka_unit_test(test_canon_rfc_example),
        cmocka_unit_test(test_sig_tags),
        cmocka_unit_test(test_key_tags),
        cmocka_unit_test(test_sign_rsa_golden),
        cmocka_unit_test(test_sign_traditional_pem),
        cmocka_unit_test(test_sign_ed25519_golden),
        cmocka_unit_test(test_sign_no_from),
        cmocka_unit_test(test_key_load_errors),
        cmocka_unit_test(test_signing_table),
        cmocka_unit_test(test_dkimpy_vectors),
        cmocka_unit_test(test_verify_limit),
        cmocka_unit_test(test_verify_tempfail_and_permerror),
        cmocka_unit_test(test_verify_run_no_queries),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
