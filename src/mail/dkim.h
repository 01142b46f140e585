/*
 * dkim.h - DKIM signatures (RFC 6376, RFC 8463): signing and verification
 *
 * Algorithms rsa-sha256 and ed25519-sha256 (Ed25519 signs the SHA-256
 * hash of the header data, PureEdDSA), canonicalisations simple and
 * relaxed for header and body. Both directions stream: the caller hands
 * over the header block once, then the body in chunks of any size, so a
 * large message is never held in memory twice.
 *
 * Message text may use CRLF or bare LF line ends: both are hashed as the
 * CRLF that goes on the wire.
 *
 * Signing (outbound):
 *
 *   keys = dkim_keys_load(cfg, &err);              at start and on reload
 *   k = dkim_keys_find(keys, "example.com");       the From domain
 *   s = dkim_sign_new(k, &opts, time(NULL));
 *   dkim_sign_header(s, hdr, hdrlen);              the whole header block
 *   dkim_sign_body(s, chunk, n);  ...              body chunks
 *   dkim_sign_finish(s, "\n", &out, &err);         "DKIM-Signature: ..."
 *
 * The signature covers the headers of dkim_sign_headers that are present,
 * with From listed once more than it occurs (oversigned: a From added on
 * the way breaks the signature); l= is never produced.
 *
 * Verification (inbound) is a continuation: after the header block the
 * verifier knows which keys it needs; the caller answers each query
 * ("SELECTOR._domainkey.DOMAIN" TXT) whenever it likes, e.g. while the
 * body is still arriving, through dkim_verify_key_answer() or with
 * dkim_verify_run(), which asks util/dns.h itself. Results are ready when
 * the body has ended and every query is answered (dkim_verify_ready()).
 *
 * SECURITY
 *   Everything in a DKIM-Signature and a key record is outside input:
 *   the parsers are strict (duplicate tags, bad syntax -> permerror) and
 *   fuzzed (fuzz/fuzz_dkim_tags.c). At most dkim_verify_limit signatures
 *   are checked per message; RSA keys under 1024 bits are refused.
 */
#ifndef POSTA_DKIM_H
#define POSTA_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct buf;
struct cfg;

enum dkim_alg { DKIM_ALG_RSA_SHA256 = 0, DKIM_ALG_ED25519_SHA256 };
enum dkim_canon { DKIM_CANON_SIMPLE = 0, DKIM_CANON_RELAXED };
enum dkim_keytype { DKIM_KEY_RSA = 0, DKIM_KEY_ED25519 };

/* Verification results, as RFC 8601 names them (dkim_status_name) */
enum dkim_status {
    DKIM_NONE = 0,     /* no signature */
    DKIM_PASS,
    DKIM_FAIL,         /* signature or body hash did not verify */
    DKIM_NEUTRAL,      /* failed, but the key is in testing mode (t=y) */
    DKIM_POLICY,       /* verified, but not acceptable to local policy */
    DKIM_TEMPERROR,    /* key lookup failed temporarily */
    DKIM_PERMERROR,    /* syntax, missing or revoked key, expired, ... */
};

#define DKIM_MIN_RSA_BITS 1024        /* smaller keys fail verification */
#define DKIM_VERIFY_LIMIT_DEFAULT 5
#define DKIM_CLOCK_SLOP 300           /* seconds of clock difference tolerated for t= */
#define DKIM_HEADER_WIDTH 78          /* fold generated headers at this column */
#define DKIM_DEFAULT_SIGN_HEADERS                                                    \
    "From, To, Cc, Subject, Date, Message-ID, Reply-To, In-Reply-To, References, " \
    "MIME-Version, Content-Type, Content-Transfer-Encoding"

/* dkim_status_name - "pass", "fail", ... as in Authentication-Results */
const char *dkim_status_name(enum dkim_status st);

/* ---- tag lists, signatures, key records (dkim_tags.c) -------------------- */

/* struct dkim_sig - a parsed DKIM-Signature header value */
struct dkim_sig {
    enum dkim_alg alg;
    enum dkim_canon hcanon, bcanon;
    char *d;                 /* signing domain, lower case */
    char *s;                 /* selector */
    char *i;                 /* agent or user identifier ("@d" if absent) */
    char **h;                /* signed header names, lower case, in order */
    size_t nh;
    unsigned char *b;        /* decoded signature */
    size_t blen;
    char *b_text;            /* b= without white space (for header.b) */
    unsigned char *bh;       /* decoded body hash */
    size_t bhlen;
    bool has_l, has_t, has_x;
    uint64_t l;
    int64_t t, x;
};

/*
 * dkim_sig_parse - parse and check a DKIM-Signature value: required tags
 * v a b bh d h s, v=1, a known algorithm and canonicalisation, i= in d=
 * or a subdomain, From among h=, q=dns/txt, numbers in range, x >= t, no
 * tag twice. 0, or -1 with *why (static text); *sig is then empty.
 */
int dkim_sig_parse(const char *value, size_t len, struct dkim_sig *sig, const char **why);
void dkim_sig_free(struct dkim_sig *sig);

/* struct dkim_keyrec - a parsed key record (TXT at SEL._domainkey.DOMAIN) */
struct dkim_keyrec {
    enum dkim_keytype k;
    unsigned char *p;        /* decoded public key; NULL when revoked (p= empty) */
    size_t plen;
    bool revoked;
    bool testing;            /* t=y */
    bool strict;             /* t=s: i= must be in d= itself, no subdomain */
    bool sha256_ok;          /* h= absent or lists sha256 */
    bool email_ok;           /* s= absent, "*" or lists "email" */
};

/* dkim_key_parse - parse a key record; 0, or -1 with *why (static text) */
int dkim_key_parse(const char *txt, size_t len, struct dkim_keyrec *key, const char **why);
void dkim_key_free(struct dkim_keyrec *key);

/* ---- canonicalisation (dkim_canon.c) -------------------------------------- */

/* dkim_canon_header - one header field (name ":" value, folded, no final EOL) + CRLF */
void dkim_canon_header(enum dkim_canon c, const char *field, size_t len, struct buf *out);

/* dkim_body_fn - receives canonical body bytes */
typedef void dkim_body_fn(void *ctx, const void *p, size_t n);

/* struct dkim_body - a streaming body canonicaliser (state between chunks) */
struct dkim_body {
    enum dkim_canon canon;
    dkim_body_fn *fn;
    void *ctx;
    size_t empty_lines;      /* empty lines held back (trailing ones vanish) */
    bool line_data;          /* the current line has output */
    bool wsp;                /* relaxed: white space held back */
    bool cr;                 /* a CR held back (CRLF across chunks) */
    bool any;                /* any line output at all */
    unsigned char out[4096];
    size_t outlen;
};

void dkim_body_init(struct dkim_body *b, enum dkim_canon c, dkim_body_fn *fn, void *ctx);
void dkim_body_update(struct dkim_body *b, const void *p, size_t n);
void dkim_body_final(struct dkim_body *b);

/*
 * dkim_header_split - split a header block into fields: calls fn with
 * each field (folded lines included, without its final line end); a
 * line without ':' that is not a continuation ends nothing and is
 * skipped. Stops at an empty line.
 */
typedef void dkim_field_fn(void *ctx, const char *field, size_t len);
void dkim_header_split(const char *hdr, size_t len, dkim_field_fn *fn, void *ctx);

/* ---- signing (dkim.c) ------------------------------------------------------ */

struct dkim_key;      /* a loaded private key with its domain and selector */
struct dkim_keys;     /* the signing table with its keys */

/*
 * dkim_key_load - the private key in path (PEM: PKCS#8 or traditional RSA)
 * for domain and selector. A key file readable by others, or by a group
 * other than root's or mail_owner_gid's (pass (gid_t)-1 for none), is a
 * warning. NULL + *err (malloc'ed, names the file) on failure.
 */
struct dkim_key *dkim_key_load(const char *domain, const char *selector, const char *path,
                               gid_t mail_gid, char **err);
void dkim_key_release(struct dkim_key *k);
const char *dkim_key_domain(const struct dkim_key *k);
const char *dkim_key_selector(const struct dkim_key *k);
enum dkim_alg dkim_key_alg(const struct dkim_key *k);

/*
 * Signing table (dkim_signing_table = type:name): the key is a domain,
 * ".parent.domain" (matches every subdomain) or "*" (everything); the
 * value is "SELECTOR:/path/to/key" (d= is the domain looked up; for
 * ".parent" it is the parent) or "DOMAIN:SELECTOR:/path/to/key" (d= is
 * DOMAIN). Lookup order: the domain, its parents as ".parent", then "*".
 */
/*
 * dkim_keys_load - open dkim_signing_table and load every key it names
 * (file tables are walked at once; others are loaded at first use).
 * An empty table setting gives an empty keyset. NULL + *err on failure.
 */
struct dkim_keys *dkim_keys_load(struct cfg *cfg, char **err);
/* dkim_keys_open - same from a table spec (tests; mail_gid as dkim_key_load) */
struct dkim_keys *dkim_keys_open(const char *table, gid_t mail_gid, char **err);
/*
 * dkim_keys_find - the key for a sender domain, NULL if none (or the
 * lookup failed: *tempfail set when it was a temporary failure).
 */
struct dkim_key *dkim_keys_find(struct dkim_keys *ks, const char *domain, bool *tempfail);
/* dkim_keys_count - keys loaded so far */
size_t dkim_keys_count(const struct dkim_keys *ks);
void dkim_keys_free(struct dkim_keys *ks);

struct dkim_sign_opts {
    enum dkim_canon hcanon, bcanon;
    const char *const *headers;  /* names to sign when present; NULL: the default list */
    size_t nheaders;
    unsigned expire;             /* seconds until x=; 0: no x= */
};

/* dkim_sign_opts_init - relaxed/relaxed, default headers, no x= */
void dkim_sign_opts_init(struct dkim_sign_opts *o);
/*
 * dkim_sign_opts_from_cfg - dkim_canonicalization, dkim_sign_headers and
 * dkim_signature_expiration; the returned list (*names) belongs to the
 * caller (dkim_sign_opts_free). false + *err for a bad canonicalization.
 */
bool dkim_sign_opts_from_cfg(struct cfg *cfg, struct dkim_sign_opts *o, char **err);
void dkim_sign_opts_free(struct dkim_sign_opts *o);
/* dkim_parse_canon - "relaxed/simple", "simple", ...; false if malformed */
bool dkim_parse_canon(const char *text, enum dkim_canon *hc, enum dkim_canon *bc);

struct dkim_sign;
/* dkim_sign_new - start a signature with k (kept referenced) at time now */
struct dkim_sign *dkim_sign_new(struct dkim_key *k, const struct dkim_sign_opts *o, time_t now);
/* dkim_sign_header - the message's header block (up to the empty line or not) */
void dkim_sign_header(struct dkim_sign *s, const char *hdr, size_t len);
void dkim_sign_body(struct dkim_sign *s, const void *p, size_t n);
/*
 * dkim_sign_finish - append "DKIM-Signature: ..." folded at 78 columns
 * with eol ("\n" or "\r\n") before each continuation, no final eol.
 * 0, or -1 with *err (malloc'ed): no From header, a crypto failure.
 */
int dkim_sign_finish(struct dkim_sign *s, const char *eol, struct buf *out, char **err);
void dkim_sign_free(struct dkim_sign *s);

/*
 * Deferred signing. smtpd writes, when the message is queued, the
 * signature field with placeholders (DKIM_PENDING_CHAR where the base64
 * of bh= and b= goes) under the name DKIM_PENDING_HEADER, which has the
 * length of "DKIM-Signature"; the queue manager completes it in place
 * before any delivery: the same bytes, the real values, the real name.
 * RSA PKCS#1 v1.5 and Ed25519 signatures are deterministic, so completing
 * the same field again (after a crash) writes the same signature.
 */
#define DKIM_PENDING_HEADER "X-DKIM-Pending"
#define DKIM_PENDING_CHAR '*'
/* dkim_sign_pending - like dkim_sign_finish, without body or signature yet */
int dkim_sign_pending(struct dkim_sign *s, const char *eol, struct buf *out, char **err);
/* dkim_keys_lookup - the key that signs for d=domain s=selector, or NULL */
struct dkim_key *dkim_keys_lookup(struct dkim_keys *ks, const char *domain,
                                  const char *selector);
/* dkim_complete_needed - field (as stored) still waits for its values */
bool dkim_complete_needed(const char *field, size_t flen);
struct dkim_complete;
/* dkim_complete_new - parse a pending field, find its key; NULL + *err (malloc'ed) */
struct dkim_complete *dkim_complete_new(struct dkim_keys *ks, const char *field, size_t flen,
                                        char **err);
/* dkim_complete_header - the header block below the pending field */
void dkim_complete_header(struct dkim_complete *c, const char *hdr, size_t len);
void dkim_complete_body(struct dkim_complete *c, const void *p, size_t n);
/* dkim_complete_finish - append the finished field (flen bytes) to out; 0 or -1 + *err */
int dkim_complete_finish(struct dkim_complete *c, struct buf *out, char **err);
const char *dkim_complete_domain(const struct dkim_complete *c);
void dkim_complete_free(struct dkim_complete *c);

/* ---- verification (dkim.c) ------------------------------------------------- */

struct dkim_result {
    enum dkim_status status;
    const char *reason;      /* short text for logs and A-R comments; NULL for pass */
    char *d, *s;             /* header.d, header.s ("" when unparsable) */
    char *i;                 /* header.i (may be NULL) */
    char *b8;                /* header.b: the first 8 characters of b= */
    enum dkim_alg alg;
    unsigned bits;           /* key size (RSA) when known */
    bool testing;            /* key in testing mode */
};

struct dkim_verify;

/* dkim_verify_new - a verifier; limit signatures at most (0: default), clock now */
struct dkim_verify *dkim_verify_new(unsigned limit, time_t now);
/* dkim_verify_header - the header block; finds and parses the signatures */
void dkim_verify_header(struct dkim_verify *v, const char *hdr, size_t len);
void dkim_verify_body(struct dkim_verify *v, const void *p, size_t n);
void dkim_verify_body_end(struct dkim_verify *v);

/*
 * dkim_verify_nsigs - signatures being checked (after dkim_verify_header);
 * dkim_verify_query - the TXT name to look up for signature i, or NULL
 * when none is needed (already decided or answered).
 */
size_t dkim_verify_nsigs(const struct dkim_verify *v);
const char *dkim_verify_query(const struct dkim_verify *v, size_t i);

enum dkim_dns { DKIM_DNS_OK = 0, DKIM_DNS_NOTFOUND, DKIM_DNS_TEMPFAIL };
/* dkim_verify_key_answer - the TXT strings (each record's strings joined) for query i */
void dkim_verify_key_answer(struct dkim_verify *v, size_t i, enum dkim_dns st,
                            char *const *txt, size_t n);
/* dkim_key_lookup_fn - a synchronous key source (tests, tools) */
typedef enum dkim_dns dkim_key_lookup_fn(void *ctx, const char *qname, struct buf *txt);
/* dkim_verify_keys_sync - answer every pending query through fn (one record) */
void dkim_verify_keys_sync(struct dkim_verify *v, dkim_key_lookup_fn *fn, void *ctx);

/*
 * dkim_verify_run - look up every pending key with dns_lookup_txt
 * (timeout_ms each) and call done(ctx, v) once all are answered, from the
 * event loop (never inside this call). dkim_verify_free cancels.
 */
typedef void dkim_verify_done_fn(void *ctx, struct dkim_verify *v);
void dkim_verify_run(struct dkim_verify *v, unsigned timeout_ms, dkim_verify_done_fn *done,
                     void *ctx);

/* dkim_verify_ready - body ended and every key answered */
bool dkim_verify_ready(const struct dkim_verify *v);
/*
 * dkim_verify_results - the verdicts (computed at the first call after
 * ready), one per signature in header order; *n = 0 when unsigned.
 */
const struct dkim_result *dkim_verify_results(struct dkim_verify *v, size_t *n);
/*
 * dkim_verify_ar - the "dkim=..." parts of an Authentication-Results
 * header ("dkim=none" when unsigned), separated by ";" + eol + "\t".
 */
void dkim_verify_ar(struct dkim_verify *v, const char *eol, struct buf *out);
void dkim_verify_free(struct dkim_verify *v);

/* ---- keys for publication (dkim.c, used by posta dkim keygen) ---------------- */

/*
 * dkim_pubkey_record - the key record for k: "v=DKIM1; k=rsa; p=BASE64"
 * (k=ed25519 with the raw 32-byte key). 0, or -1 with *err (malloc'ed).
 */
int dkim_pubkey_record(const struct dkim_key *k, struct buf *out, char **err);

#endif
