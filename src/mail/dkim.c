/*
 * dkim.c - DKIM verification (RFC 6376 section 6, RFC 8463)
 *
 * The verifier is a continuation. dkim_verify_header() finds the
 * DKIM-Signature fields (the first dkim_verify_limit of them), parses
 * each, checks t=/x= against the clock and prepares the header data to
 * be verified; from then on the key queries are known and may be
 * answered while the body streams through one canonicaliser and SHA-256
 * per signature (l= honoured: only that many canonical bytes count). The
 * crypto runs once, when the body has ended and every key is answered.
 *
 * Results: pass; fail (body hash or signature); neutral (failed under a
 * key in testing mode, t=y); temperror (key lookup failed temporarily);
 * permerror (syntax, no key, revoked key, key not for this signature,
 * RSA key under 1024 bits, expired, timestamp in the future).
 *
 * DIAGNOSTICS
 *   No logging: every verdict carries a short reason for the caller's log
 *   line and the Authentication-Results comment.
 * SECURITY
 *   Headers and key records are outside input, parsed by dkim_tags.c.
 *   The number of signatures checked is capped; body hashing is
 *   streaming, so memory does not grow with the message.
 */
#include "util/sys.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "mail/dkim.h"
#include "mail/dkim_impl.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/dns.h"
#include "util/event.h"
#include "util/log.h"

#define ED25519_PUB_LEN 32
#define HEADER_B_CHARS 8    /* RFC 6008: header.b carries a prefix of b= */

struct vsig {
    struct dkim_verify *v;
    struct dkim_sig sig;
    bool parsed;
    bool decided;            /* status is final before the crypto */
    char *qname;
    bool answered;
    struct dns_req *req;
    struct dkim_keyrec key;
    struct buf hdata;        /* header data the signature covers */
    EVP_MD_CTX *bctx;
    struct dkim_body body;
    uint64_t hashed;         /* canonical body bytes hashed so far */
    struct dkim_result res;
};

struct dkim_verify {
    unsigned limit;
    time_t now;
    struct vsig *s;
    size_t n;
    struct dkim_result *results;   /* copies of s[i].res, for the caller's array */
    bool header_done;
    bool body_done;
    bool computed;
    dkim_verify_done_fn *done;
    void *done_ctx;
    size_t pending;          /* dns lookups in flight (dkim_verify_run) */
    struct event_timer timer;
    bool timer_set;
};

/* dkim_verify_new - a verifier */
struct dkim_verify *dkim_verify_new(unsigned limit, time_t now)
{
    struct dkim_verify *v = xcalloc(1, sizeof(*v));

    v->limit = limit ? limit : DKIM_VERIFY_LIMIT_DEFAULT;
    v->now = now;
    return v;
}

/* decide - a final verdict before any crypto */
static void decide(struct vsig *vs, enum dkim_status st, const char *reason)
{
    vs->res.status = st;
    vs->res.reason = reason;
    vs->decided = true;
    vs->answered = true;
}

/* body_fn - canonical body bytes into one signature's hash, up to l= */
static void body_fn(void *ctx, const void *p, size_t n)
{
    struct vsig *vs = ctx;

    if (vs->sig.has_l) {
        uint64_t left = vs->sig.l > vs->hashed ? vs->sig.l - vs->hashed : 0;
        if (n > left)
            n = (size_t)left;
    }
    if (n > 0)
        EVP_DigestUpdate(vs->bctx, p, n);
    vs->hashed += n;
}

/*
 * strip_b - the field with the b= value removed (RFC 6376 section 3.5:
 * the value and its surrounding white space become the empty string)
 */
static void strip_b(const char *f, size_t len, struct buf *out)
{
    const char *colon = memchr(f, ':', len), *end = f + len, *p, *spec, *eq, *semi;

    if (colon == NULL) {
        buf_append(out, f, len);
        return;
    }
    buf_append(out, f, (size_t)(colon + 1 - f));
    for (p = colon + 1; p < end;) {
        spec = p;
        semi = memchr(p, ';', (size_t)(end - p));
        const char *send = semi ? semi : end;
        eq = memchr(spec, '=', (size_t)(send - spec));
        const char *n0 = spec, *n1 = eq ? eq : send;
        while (n0 < n1 && isspace((unsigned char)*n0))
            n0++;
        while (n1 > n0 && isspace((unsigned char)n1[-1]))
            n1--;
        if (eq != NULL && n1 - n0 == 1 && *n0 == 'b')
            buf_append(out, spec, (size_t)(eq + 1 - spec));
        else
            buf_append(out, spec, (size_t)(send - spec));
        if (semi) {
            buf_putc(out, ';');
            p = semi + 1;
        } else {
            p = end;
        }
    }
}

/* prepare - parse signature field f and build what verification needs */
static void prepare(struct dkim_verify *v, struct vsig *vs, const struct dkim_fields *fs,
                    const struct dkim_field *f)
{
    const char *colon = memchr(f->text, ':', f->len), *why;
    struct buf own = BUF_INIT;

    vs->v = v;
    vs->res.d = xstrdup("");
    vs->res.s = xstrdup("");
    if (dkim_sig_parse(colon + 1, f->len - (size_t)(colon + 1 - f->text), &vs->sig, &why) < 0) {
        decide(vs, DKIM_PERMERROR, why);
        return;
    }
    vs->parsed = true;
    free(vs->res.d);
    free(vs->res.s);
    vs->res.d = xstrdup(vs->sig.d);
    vs->res.s = xstrdup(vs->sig.s);
    vs->res.i = vs->sig.i ? xstrdup(vs->sig.i) : NULL;
    vs->res.b8 = xstrndup(vs->sig.b_text, HEADER_B_CHARS);
    vs->res.alg = vs->sig.alg;
    if (vs->sig.has_x && vs->sig.x < (int64_t)v->now) {
        decide(vs, DKIM_PERMERROR, "signature expired");
        return;
    }
    if (vs->sig.has_t && vs->sig.t > (int64_t)v->now + DKIM_CLOCK_SLOP) {
        decide(vs, DKIM_PERMERROR, "signature timestamp in the future");
        return;
    }
    vs->qname = xasprintf("%s._domainkey.%s", vs->sig.s, vs->sig.d);
    dkim_hash_headers(fs, vs->sig.h, vs->sig.nh, vs->sig.hcanon, &vs->hdata);
    strip_b(f->text, f->len, &own);
    dkim_canon_header(vs->sig.hcanon, own.data, own.len, &vs->hdata);
    buf_truncate(&vs->hdata, vs->hdata.len - 2);   /* no CRLF after the signature field */
    buf_free(&own);
    if ((vs->bctx = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(vs->bctx, EVP_sha256(), NULL) != 1)
        msg_fatal("DKIM: cannot start SHA-256");
    dkim_body_init(&vs->body, vs->sig.bcanon, body_fn, vs);
}

/* dkim_verify_header - find and prepare the signatures */
void dkim_verify_header(struct dkim_verify *v, const char *hdr, size_t len)
{
    struct dkim_fields fs;
    size_t i, count = 0;

    if (v->header_done)
        msg_panic("dkim_verify_header: called twice");
    v->header_done = true;
    dkim_fields_collect(&fs, hdr, len);
    for (i = 0; i < fs.n; i++)
        if (strcmp(fs.f[i].name, "dkim-signature") == 0 && count < v->limit)
            count++;
    v->s = xcalloc(count ? count : 1, sizeof(*v->s));
    for (i = 0; i < fs.n && v->n < count; i++) {
        if (strcmp(fs.f[i].name, "dkim-signature") == 0)
            prepare(v, &v->s[v->n++], &fs, &fs.f[i]);
    }
    dkim_fields_free(&fs);
}

/* dkim_verify_body - a chunk of the body into every live signature */
void dkim_verify_body(struct dkim_verify *v, const void *p, size_t n)
{
    for (size_t i = 0; i < v->n; i++) {
        struct vsig *vs = &v->s[i];
        if (vs->bctx == NULL)
            continue;
        if (vs->sig.has_l && vs->hashed >= vs->sig.l)
            continue;      /* l= reached: the rest does not count */
        dkim_body_update(&vs->body, p, n);
    }
}

/* dkim_verify_body_end - the end of the body */
void dkim_verify_body_end(struct dkim_verify *v)
{
    for (size_t i = 0; i < v->n; i++)
        if (v->s[i].bctx != NULL)
            dkim_body_final(&v->s[i].body);
    v->body_done = true;
}

/* dkim_verify_nsigs - signatures being checked */
size_t dkim_verify_nsigs(const struct dkim_verify *v)
{
    return v->n;
}

/* dkim_verify_query - the key to look up for signature i, or NULL */
const char *dkim_verify_query(const struct dkim_verify *v, size_t i)
{
    return i < v->n && !v->s[i].answered ? v->s[i].qname : NULL;
}

/* key_check - the key record suits the signature; false + decided otherwise */
static bool key_check(struct vsig *vs)
{
    const struct dkim_keyrec *k = &vs->key;

    vs->res.testing = k->testing;
    if (k->revoked) {
        decide(vs, DKIM_PERMERROR, "key revoked");
        return false;
    }
    if (!k->sha256_ok) {
        decide(vs, DKIM_PERMERROR, "key does not allow sha256");
        return false;
    }
    if (!k->email_ok) {
        decide(vs, DKIM_PERMERROR, "key not for email");
        return false;
    }
    if ((k->k == DKIM_KEY_RSA) != (vs->sig.alg == DKIM_ALG_RSA_SHA256)) {
        decide(vs, DKIM_PERMERROR, "key type does not match the algorithm");
        return false;
    }
    if (k->strict && vs->sig.i != NULL) {
        const char *at = strrchr(vs->sig.i, '@');
        if (at == NULL || strcasecmp(at + 1, vs->sig.d) != 0) {
            decide(vs, DKIM_PERMERROR, "i= is a subdomain but the key says t=s");
            return false;
        }
    }
    return true;
}

/* dkim_verify_key_answer - the TXT answer for signature i */
void dkim_verify_key_answer(struct dkim_verify *v, size_t i, enum dkim_dns st,
                            char *const *txt, size_t n)
{
    struct vsig *vs;
    const char *why = "key syntax error";

    if (i >= v->n || v->s[i].answered)
        return;
    vs = &v->s[i];
    vs->answered = true;
    if (st == DKIM_DNS_TEMPFAIL) {
        decide(vs, DKIM_TEMPERROR, "key lookup failed temporarily");
        return;
    }
    if (st != DKIM_DNS_OK || n == 0) {
        decide(vs, DKIM_PERMERROR, "no key for signature");
        return;
    }
    /* several records are ambiguous: use the first that is a key record */
    for (size_t j = 0; j < n; j++) {
        if (dkim_key_parse(txt[j], strlen(txt[j]), &vs->key, &why) == 0) {
            key_check(vs);
            return;
        }
    }
    decide(vs, DKIM_PERMERROR, why);
}

/* dkim_verify_keys_sync - answer the pending queries through fn */
void dkim_verify_keys_sync(struct dkim_verify *v, dkim_key_lookup_fn *fn, void *ctx)
{
    struct buf txt = BUF_INIT;

    for (size_t i = 0; i < v->n; i++) {
        const char *q = dkim_verify_query(v, i);
        if (q == NULL)
            continue;
        buf_reset(&txt);
        enum dkim_dns st = fn(ctx, q, &txt);
        char *one = txt.data ? txt.data : (char *)"";
        dkim_verify_key_answer(v, i, st, &one, st == DKIM_DNS_OK ? 1 : 0);
    }
    buf_free(&txt);
}

/* run_check_done - every lookup answered: tell the caller */
static void run_check_done(struct dkim_verify *v)
{
    dkim_verify_done_fn *done = v->done;

    if (v->pending > 0 || done == NULL)
        return;
    v->done = NULL;
    done(v->done_ctx, v);
}

/* run_timer_fn - nothing to look up: report from the event loop */
static void run_timer_fn(void *ctx)
{
    run_check_done(ctx);
}

/* txt_fn - dns_lookup_txt callback */
static void txt_fn(void *ctx, enum dns_status st, char *const *txt, size_t n, const char *why)
{
    struct vsig *vs = ctx;
    struct dkim_verify *v = vs->v;
    enum dkim_dns ds = st == DNS_OK ? DKIM_DNS_OK
                       : st == DNS_TEMPFAIL ? DKIM_DNS_TEMPFAIL : DKIM_DNS_NOTFOUND;

    vs->req = NULL;
    dkim_verify_key_answer(v, (size_t)(vs - v->s), ds, txt, n);
    v->pending--;
    run_check_done(v);
}

/* dkim_verify_run - look the keys up with util/dns.h */
void dkim_verify_run(struct dkim_verify *v, unsigned timeout_ms, dkim_verify_done_fn *done,
                     void *ctx)
{
    v->done = done;
    v->done_ctx = ctx;
    for (size_t i = 0; i < v->n; i++) {
        const char *q = dkim_verify_query(v, i);
        if (q == NULL || v->s[i].req != NULL)
            continue;
        v->pending++;
        v->s[i].req = dns_lookup_txt(q, timeout_ms, txt_fn, &v->s[i]);
    }
    if (v->pending == 0) {
        event_timer_setup(&v->timer, run_timer_fn, v);
        v->timer_set = true;
        event_timer_arm(&v->timer, 0);
    }
}

/* dkim_verify_ready - body ended and every key answered */
bool dkim_verify_ready(const struct dkim_verify *v)
{
    if (!v->header_done || !v->body_done)
        return false;
    for (size_t i = 0; i < v->n; i++)
        if (!v->s[i].answered)
            return false;
    return true;
}

/*
 * Decoded public keys, kept per process: decoding a DER key costs more
 * than verifying with it, and the DNS cache hands back the same record
 * for every message of a sender. Least recently used goes first.
 */
#define PUBKEY_CACHE_SIZE 64

struct pubkey_slot {
    unsigned char *p;
    size_t plen;
    enum dkim_keytype k;
    EVP_PKEY *pkey;
    uint64_t used;
};

static struct pubkey_slot pubkey_cache[PUBKEY_CACHE_SIZE];
static uint64_t pubkey_clock;

/* decode_pubkey - the key record's p= as an EVP_PKEY, NULL if unusable */
static EVP_PKEY *decode_pubkey(const struct dkim_keyrec *k)
{
    const unsigned char *p = k->p;

    if (k->k == DKIM_KEY_ED25519) {
        if (k->plen != ED25519_PUB_LEN)
            return NULL;
        return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, k->p, k->plen);
    }
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)k->plen);
    if (pk == NULL) {
        /* some publish a bare RSAPublicKey (PKCS#1) */
        p = k->p;
        pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)k->plen);
    }
    if (pk != NULL && EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA) {
        EVP_PKEY_free(pk);
        pk = NULL;
    }
    return pk;
}

/* load_pubkey - decode_pubkey through the cache; the caller frees its reference */
static EVP_PKEY *load_pubkey(const struct dkim_keyrec *k)
{
    struct pubkey_slot *slot = &pubkey_cache[0];
    EVP_PKEY *pk;

    for (size_t i = 0; i < PUBKEY_CACHE_SIZE; i++) {
        struct pubkey_slot *c = &pubkey_cache[i];
        if (c->pkey != NULL && c->k == k->k && c->plen == k->plen
            && memcmp(c->p, k->p, k->plen) == 0) {
            c->used = ++pubkey_clock;
            if (EVP_PKEY_up_ref(c->pkey) != 1)
                return NULL;
            return c->pkey;
        }
        if (c->used < slot->used)
            slot = c;
    }
    if ((pk = decode_pubkey(k)) == NULL)
        return NULL;
    EVP_PKEY_free(slot->pkey);
    free(slot->p);
    slot->p = xmemdup(k->p, k->plen);
    slot->plen = k->plen;
    slot->k = k->k;
    slot->pkey = pk;
    slot->used = ++pubkey_clock;
    if (EVP_PKEY_up_ref(pk) != 1)
        return NULL;
    return pk;
}

/* check_sig - the cryptographic verdict for one prepared signature */
static void check_sig(struct vsig *vs)
{
    unsigned char bh[DKIM_SHA256_LEN], hash[DKIM_SHA256_LEN];
    unsigned bhlen = 0, hlen = 0;
    const unsigned char *tbs = (const unsigned char *)buf_str(&vs->hdata);
    size_t tbslen = vs->hdata.len;
    EVP_PKEY *pk;
    EVP_MD_CTX *ctx;
    int ok;

    if (EVP_DigestFinal_ex(vs->bctx, bh, &bhlen) != 1)
        msg_fatal("DKIM: SHA-256 failed");
    if ((pk = load_pubkey(&vs->key)) == NULL) {
        decide(vs, DKIM_PERMERROR, "unusable public key");
        return;
    }
    if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA) {
        vs->res.bits = (unsigned)EVP_PKEY_get_bits(pk);
        if (vs->res.bits < DKIM_MIN_RSA_BITS) {
            EVP_PKEY_free(pk);
            decide(vs, DKIM_PERMERROR, "key too short");
            return;
        }
    }
    if (bhlen != vs->sig.bhlen || memcmp(bh, vs->sig.bh, bhlen) != 0) {
        EVP_PKEY_free(pk);
        decide(vs, DKIM_FAIL, "body hash did not verify");
        return;
    }
    if ((ctx = EVP_MD_CTX_new()) == NULL)
        msg_fatal("DKIM: out of memory");
    if (vs->sig.alg == DKIM_ALG_ED25519_SHA256) {
        if (EVP_Digest(tbs, tbslen, hash, &hlen, EVP_sha256(), NULL) != 1)
            msg_fatal("DKIM: SHA-256 failed");
        tbs = hash;
        tbslen = hlen;
        ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk) == 1;
    } else {
        ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pk) == 1;
    }
    ok = ok && EVP_DigestVerify(ctx, vs->sig.b, vs->sig.blen, tbs, tbslen) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pk);
    if (ok)
        decide(vs, DKIM_PASS, NULL);
    else
        decide(vs, DKIM_FAIL, "signature did not verify");
}

/* dkim_verify_results - the verdicts */
const struct dkim_result *dkim_verify_results(struct dkim_verify *v, size_t *n)
{
    if (!dkim_verify_ready(v))
        msg_panic("dkim_verify_results: not ready (body or key answers missing)");
    if (!v->computed) {
        v->computed = true;
        for (size_t i = 0; i < v->n; i++) {
            struct vsig *vs = &v->s[i];
            if (!vs->decided)
                check_sig(vs);
            if (vs->res.status == DKIM_FAIL && vs->res.testing) {
                vs->res.status = DKIM_NEUTRAL;
                vs->res.reason = "failed, key in testing mode";
            }
        }
        v->results = xcalloc(v->n ? v->n : 1, sizeof(*v->results));
        for (size_t i = 0; i < v->n; i++)
            v->results[i] = v->s[i].res;   /* strings stay owned by s[i] */
    }
    *n = v->n;
    return v->n ? v->results : NULL;
}

/* ar_value - an A-R property value, quoted when it is not a plain token */
static void ar_value(struct buf *out, const char *s)
{
    bool plain = *s != 0;

    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && strchr("@.-_+=/", *p) == NULL)
            plain = false;
    if (plain) {
        buf_puts(out, s);
        return;
    }
    buf_putc(out, '"');
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\')
            buf_putc(out, '\\');
        if ((unsigned char)*p >= ' ')
            buf_putc(out, *p);
    }
    buf_putc(out, '"');
}

/* dkim_verify_ar - the dkim= parts of Authentication-Results */
void dkim_verify_ar(struct dkim_verify *v, const char *eol, struct buf *out)
{
    size_t n;
    const struct dkim_result *r = dkim_verify_results(v, &n);

    if (n == 0) {
        buf_puts(out, "dkim=none");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            buf_printf(out, ";%s\t", eol);
        buf_printf(out, "dkim=%s", dkim_status_name(r[i].status));
        if (r[i].reason)
            buf_printf(out, " (%s)", r[i].reason);
        else if (r[i].bits)
            buf_printf(out, " (%u-bit key)", r[i].bits);
        if (*r[i].d) {
            buf_puts(out, " header.d=");
            ar_value(out, r[i].d);
        }
        if (r[i].i) {
            buf_puts(out, " header.i=");
            ar_value(out, r[i].i);
        }
        if (*r[i].s) {
            buf_puts(out, " header.s=");
            ar_value(out, r[i].s);
        }
        if (r[i].b8 && *r[i].b8) {   /* parsed: the algorithm is known too */
            buf_printf(out, " header.a=%s",
                       r[i].alg == DKIM_ALG_RSA_SHA256 ? "rsa-sha256" : "ed25519-sha256");
            buf_puts(out, " header.b=");
            ar_value(out, r[i].b8);
        }
    }
}

/* dkim_verify_free - release, cancelling lookups in flight */
void dkim_verify_free(struct dkim_verify *v)
{
    if (v == NULL)
        return;
    if (v->timer_set)
        event_timer_disarm(&v->timer);
    for (size_t i = 0; i < v->n; i++) {
        struct vsig *vs = &v->s[i];
        if (vs->req)
            dns_cancel(vs->req);
        dkim_sig_free(&vs->sig);
        dkim_key_free(&vs->key);
        free(vs->qname);
        buf_free(&vs->hdata);
        EVP_MD_CTX_free(vs->bctx);
        free(vs->res.d);
        free(vs->res.s);
        free(vs->res.i);
        free(vs->res.b8);
    }
    free(v->results);
    free(v->s);
    free(v);
}
