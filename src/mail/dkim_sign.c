/*
 * dkim_sign.c - DKIM signing: private keys, the signing table, signatures
 *
 * Keys are read once (dkim_keys_load at start and on reload) from PEM
 * files, PKCS#8 or traditional RSA; an RSA key gives rsa-sha256, an
 * Ed25519 key ed25519-sha256 (RFC 8463: the SHA-256 hash of the header
 * data is what Ed25519 signs). The signing table maps a sender domain to
 * "[DOMAIN:]SELECTOR:/path/to/key" (see dkim.h and posta-dkim(8)).
 *
 * A signature covers the configured headers that are present (each
 * instance), From once more than it occurs, never uses l=, and is
 * folded at 78 columns. RSA (PKCS#1 v1.5) and Ed25519 signatures are
 * deterministic: a fixed key and time give the same header.
 *
 * DIAGNOSTICS
 *   A missing or unreadable key file is an error naming the file; a key
 *   file readable by others than root or mail_owner's group is a warning.
 * SECURITY
 *   Private keys are read before privileges are dropped and kept in
 *   memory; they are never logged.
 */
#include "util/sys.h"

#include <ctype.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "mail/config.h"
#include "mail/dkim.h"
#include "mail/dkim_impl.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/dict.h"
#include "util/log.h"

#define TAB_WIDTH 8

_Static_assert(sizeof(DKIM_PENDING_HEADER) == sizeof(DKIM_SIG_HEADER),
               "a pending field becomes a DKIM-Signature in place");
#define NO_GID ((gid_t)-1)
#define ED25519_PUB_LEN 32
#define KEY_PUB_DER_MAX 4096

struct dkim_key {
    int refs;
    char *domain;
    char *selector;
    char *path;
    EVP_PKEY *pkey;
    enum dkim_alg alg;
};

/* ossl_why - the last OpenSSL error as text (static buffer) */
static const char *ossl_why(void)
{
    static char text[256];
    unsigned long e = ERR_get_error();

    if (e == 0)
        return "unknown OpenSSL error";
    ERR_error_string_n(e, text, sizeof(text));
    ERR_clear_error();
    return text;
}

/* check_mode - warn about a key file that others can read */
static void check_mode(const char *path, const struct stat *st, gid_t mail_gid)
{
    if (st->st_mode & (S_IWGRP | S_IWOTH))
        msg_warn("DKIM key file %s is writable by group or others (mode %04o): chmod 600 it",
                 path, (unsigned)(st->st_mode & 07777));
    if (st->st_mode & S_IROTH)
        msg_warn("DKIM key file %s is readable by others (mode %04o): chmod 600 it", path,
                 (unsigned)(st->st_mode & 07777));
    else if ((st->st_mode & S_IRGRP) && st->st_gid != 0 && st->st_gid != mail_gid)
        msg_warn("DKIM key file %s is readable by group %u, neither root's nor mail_owner's",
                 path, (unsigned)st->st_gid);
}

/* dkim_key_load - read a private key from a PEM file */
struct dkim_key *dkim_key_load(const char *domain, const char *selector, const char *path,
                               gid_t mail_gid, char **err)
{
    struct dkim_key *k;
    struct stat st;
    EVP_PKEY *pkey;
    FILE *fp;
    int fd;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
        *err = xasprintf("DKIM key file %s for %s: %s", path, domain, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        *err = xasprintf("DKIM key file %s for %s: not a regular file", path, domain);
        close(fd);
        return NULL;
    }
    check_mode(path, &st, mail_gid);
    if ((fp = fdopen(fd, "r")) == NULL) {
        *err = xasprintf("DKIM key file %s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    pkey = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    fclose(fp);
    if (pkey == NULL) {
        *err = xasprintf("DKIM key file %s: not a PEM private key (%s)", path, ossl_why());
        return NULL;
    }
    k = xcalloc(1, sizeof(*k));
    if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA) {
        if (EVP_PKEY_get_bits(pkey) < DKIM_MIN_RSA_BITS) {
            *err = xasprintf("DKIM key file %s: RSA key of %d bits is too short (minimum %d)",
                             path, EVP_PKEY_get_bits(pkey), DKIM_MIN_RSA_BITS);
            EVP_PKEY_free(pkey);
            free(k);
            return NULL;
        }
        k->alg = DKIM_ALG_RSA_SHA256;
    } else if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519) {
        k->alg = DKIM_ALG_ED25519_SHA256;
    } else {
        *err = xasprintf("DKIM key file %s: neither an RSA nor an Ed25519 key", path);
        EVP_PKEY_free(pkey);
        free(k);
        return NULL;
    }
    k->refs = 1;
    k->pkey = pkey;
    k->domain = xstrdup(domain);
    for (char *p = k->domain; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    k->selector = xstrdup(selector);
    k->path = xstrdup(path);
    return k;
}

/* dkim_key_release - drop one reference */
void dkim_key_release(struct dkim_key *k)
{
    if (k == NULL || --k->refs > 0)
        return;
    EVP_PKEY_free(k->pkey);
    free(k->domain);
    free(k->selector);
    free(k->path);
    free(k);
}

/* dkim_key_domain - d= of signatures made with k */
const char *dkim_key_domain(const struct dkim_key *k)
{
    return k->domain;
}

/* dkim_key_selector - s= of signatures made with k */
const char *dkim_key_selector(const struct dkim_key *k)
{
    return k->selector;
}

/* dkim_key_alg - the algorithm k signs with */
enum dkim_alg dkim_key_alg(const struct dkim_key *k)
{
    return k->alg;
}

/* dkim_pubkey_record - the TXT record that publishes k */
int dkim_pubkey_record(const struct dkim_key *k, struct buf *out, char **err)
{
    unsigned char raw[ED25519_PUB_LEN], *der = NULL;
    size_t rlen = sizeof(raw);
    int dlen;

    if (k->alg == DKIM_ALG_ED25519_SHA256) {
        if (EVP_PKEY_get_raw_public_key(k->pkey, raw, &rlen) != 1) {
            *err = xasprintf("cannot get the Ed25519 public key: %s", ossl_why());
            return -1;
        }
        buf_puts(out, "v=DKIM1; k=ed25519; p=");
        dkim_b64(raw, rlen, out);
        return 0;
    }
    if ((dlen = i2d_PUBKEY(k->pkey, &der)) <= 0) {
        *err = xasprintf("cannot encode the RSA public key: %s", ossl_why());
        return -1;
    }
    buf_puts(out, "v=DKIM1; k=rsa; p=");
    dkim_b64(der, (size_t)dlen, out);
    OPENSSL_free(der);
    return 0;
}

/* ---- the signing table ------------------------------------------------------ */

struct keyent {
    char *domain, *selector, *path;
    struct dkim_key *key;
};

struct dkim_keys {
    struct dict *table;      /* NULL: no signing */
    gid_t gid;
    struct keyent *e;
    size_t n;
    char *load_err;          /* first error while preloading */
};

/*
 * parse_value - "[DOMAIN:]SELECTOR:/path" for table key; d= from key when
 * absent ("*" then is an error). false + *why (static).
 */
static bool parse_value(const char *key, const char *value, char **dom, char **sel, char **path,
                        const char **why)
{
    const char *slash = strchr(value, '/');
    const char *c1, *c2 = NULL;

    while (*value == ' ' || *value == '\t')
        value++;
    if (slash == NULL || slash == value) {
        *why = "expected [DOMAIN:]SELECTOR:/path/to/key";
        return false;
    }
    c1 = memchr(value, ':', (size_t)(slash - value));
    if (c1 != NULL)
        c2 = memchr(c1 + 1, ':', (size_t)(slash - c1 - 1));
    if (c1 == NULL || (c2 ? c2 : c1) + 1 != slash) {
        *why = "expected [DOMAIN:]SELECTOR:/path/to/key";
        return false;
    }
    if (c2 != NULL) {
        *dom = xstrndup(value, (size_t)(c1 - value));
        *sel = xstrndup(c1 + 1, (size_t)(c2 - c1 - 1));
    } else {
        if (strcmp(key, "*") == 0) {
            *why = "the \"*\" entry must name the signing domain (DOMAIN:SELECTOR:/path)";
            return false;
        }
        *dom = xstrdup(key[0] == '.' ? key + 1 : key);
        *sel = xstrndup(value, (size_t)(c1 - value));
    }
    *path = xstrdup(slash);
    for (char *p = *path + strlen(*path); p > *path && (p[-1] == ' ' || p[-1] == '\t');)
        *--p = 0;
    for (char *p = *dom; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (**dom == 0 || **sel == 0) {
        free(*dom);
        free(*sel);
        free(*path);
        *why = "empty domain or selector";
        return false;
    }
    return true;
}

/* keyset_get - the loaded key for an entry, loading it at first use */
static struct dkim_key *keyset_get(struct dkim_keys *ks, const char *key, const char *value,
                                   char **err)
{
    char *dom, *sel, *path;
    const char *why;
    struct keyent *e;

    if (!parse_value(key, value, &dom, &sel, &path, &why)) {
        *err = xasprintf("%s: entry \"%s\": %s", dict_spec(ks->table), key, why);
        return NULL;
    }
    for (size_t i = 0; i < ks->n; i++) {
        e = &ks->e[i];
        if (strcmp(e->domain, dom) == 0 && strcmp(e->selector, sel) == 0
            && strcmp(e->path, path) == 0) {
            free(dom);
            free(sel);
            free(path);
            return e->key;
        }
    }
    struct dkim_key *k = dkim_key_load(dom, sel, path, ks->gid, err);
    if (k != NULL) {
        ks->e = xreallocarray(ks->e, ks->n + 1, sizeof(*ks->e));
        ks->e[ks->n++] = (struct keyent){dom, sel, path, k};
        return k;
    }
    free(dom);
    free(sel);
    free(path);
    return NULL;
}

/* preload_fn - dict_walk callback: load each key now */
static void preload_fn(void *ctx, const char *key, const char *value)
{
    struct dkim_keys *ks = ctx;
    char *err = NULL;

    if (keyset_get(ks, key, value, &err) == NULL && ks->load_err == NULL)
        ks->load_err = err;
    else
        free(err);
}

/* preload_line_fn - texthash source lines: "KEY VALUE" */
static void preload_line_fn(void *ctx, char *line, int lineno)
{
    char *v = line + strcspn(line, " \t");

    if (*v == 0)
        return;
    *v++ = 0;
    v += strspn(v, " \t");
    for (char *p = line; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    preload_fn(ctx, line, v);
}

/* dkim_keys_open - the keyset of a table spec */
struct dkim_keys *dkim_keys_open(const char *table, gid_t mail_gid, char **err)
{
    struct dkim_keys *ks = xcalloc(1, sizeof(*ks));
    char *werr = NULL;

    ks->gid = mail_gid;
    if (table == NULL || *table == 0)
        return ks;
    if ((ks->table = dict_open(table, 0, err)) == NULL) {
        free(ks);
        return NULL;
    }
    if (strcmp(dict_type(ks->table), "texthash") == 0) {
        const char *colon = strchr(table, ':');
        if (dict_source_file(colon + 1, preload_line_fn, ks, &werr) < 0)
            free(werr);
    } else if (dict_walk(ks->table, preload_fn, ks, &werr) < 0) {
        free(werr);    /* not listable: keys load at first use */
    }
    if (ks->load_err != NULL) {
        *err = ks->load_err;
        ks->load_err = NULL;
        dkim_keys_free(ks);
        return NULL;
    }
    return ks;
}

/* dkim_keys_load - the keyset of dkim_signing_table */
struct dkim_keys *dkim_keys_load(struct cfg *cfg, char **err)
{
    struct passwd *pw = getpwnam(cfg_str(cfg, "mail_owner"));

    return dkim_keys_open(cfg_str(cfg, "dkim_signing_table"), pw ? pw->pw_gid : NO_GID, err);
}

/* dkim_keys_find - the key for a sender domain: DOMAIN, .PARENT..., "*" */
struct dkim_key *dkim_keys_find(struct dkim_keys *ks, const char *domain, bool *tempfail)
{
    char *d = xstrdup(domain), *err = NULL, *probe;
    const char *value = NULL, *hit = NULL, *p;
    enum dict_result r = DICT_NOTFOUND;
    struct dkim_key *k = NULL;

    *tempfail = false;
    if (ks->table == NULL || *domain == 0) {
        free(d);
        return NULL;
    }
    for (char *q = d; *q; q++)
        *q = (char)tolower((unsigned char)*q);
    if ((r = dict_lookup(ks->table, d, &value)) == DICT_FOUND)
        hit = d;
    for (p = strchr(d, '.'); r == DICT_NOTFOUND && p != NULL; p = strchr(p + 1, '.')) {
        if ((r = dict_lookup(ks->table, p, &value)) == DICT_FOUND)
            hit = p;
    }
    if (r == DICT_NOTFOUND && (r = dict_lookup(ks->table, "*", &value)) == DICT_FOUND)
        hit = "*";
    if (r == DICT_TEMPFAIL) {
        msg_warn("%s: lookup of %s failed", dict_spec(ks->table), d);
        *tempfail = true;
    } else if (r == DICT_FOUND) {
        probe = xstrdup(value);
        if ((k = keyset_get(ks, hit, probe, &err)) == NULL) {
            msg_warn("%s", err);
            free(err);
        }
        free(probe);
    }
    free(d);
    return k;
}

/* dkim_keys_count - keys loaded */
size_t dkim_keys_count(const struct dkim_keys *ks)
{
    return ks->n;
}

/* dkim_keys_free - release the table and every key */
void dkim_keys_free(struct dkim_keys *ks)
{
    if (ks == NULL)
        return;
    for (size_t i = 0; i < ks->n; i++) {
        free(ks->e[i].domain);
        free(ks->e[i].selector);
        free(ks->e[i].path);
        dkim_key_release(ks->e[i].key);
    }
    free(ks->e);
    free(ks->load_err);
    if (ks->table)
        dict_close(ks->table);
    free(ks);
}

/* ---- options ---------------------------------------------------------------- */

static const char *const default_headers[] = {
    "From", "To", "Cc", "Subject", "Date", "Message-ID", "Reply-To", "In-Reply-To",
    "References", "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
};

/* dkim_sign_opts_init - the defaults */
void dkim_sign_opts_init(struct dkim_sign_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->hcanon = o->bcanon = DKIM_CANON_RELAXED;
    o->headers = default_headers;
    o->nheaders = POSTA_ARRAY_LEN(default_headers);
}

/* dkim_sign_opts_from_cfg - the options main.cf sets */
bool dkim_sign_opts_from_cfg(struct cfg *cfg, struct dkim_sign_opts *o, char **err)
{
    size_t n = 0;
    char **list;

    dkim_sign_opts_init(o);
    if (!dkim_parse_canon(cfg_str(cfg, "dkim_canonicalization"), &o->hcanon, &o->bcanon)) {
        *err = xasprintf("bad dkim_canonicalization \"%s\": expected simple or relaxed, "
                         "optionally HEADER/BODY", cfg_str(cfg, "dkim_canonicalization"));
        return false;
    }
    list = cfg_list(cfg, "dkim_sign_headers", &n);
    o->headers = (const char *const *)list;
    o->nheaders = n;
    o->expire = (unsigned)cfg_time(cfg, "dkim_signature_expiration");
    return true;
}

/* dkim_sign_opts_free - the header list of dkim_sign_opts_from_cfg */
void dkim_sign_opts_free(struct dkim_sign_opts *o)
{
    if (o->headers != default_headers && o->headers != NULL)
        cfg_list_free((char **)o->headers, o->nheaders);
    o->headers = NULL;
    o->nheaders = 0;
}

/* ---- signing ------------------------------------------------------------------ */

/* struct body_hash - the canonical body into SHA-256 (bh=); the digest starts at the first byte */
struct body_hash {
    EVP_MD_CTX *md;
    struct dkim_body canon;
};

/* bh_start - the SHA-256 context, made when first needed */
static EVP_MD_CTX *bh_start(struct body_hash *h)
{
    if (h->md == NULL
        && ((h->md = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(h->md, EVP_sha256(), NULL) != 1))
        msg_fatal("DKIM: cannot start SHA-256: %s", ossl_why());
    return h->md;
}

/* bh_fn - canonical body bytes into the hash */
static void bh_fn(void *ctx, const void *p, size_t n)
{
    EVP_DigestUpdate(bh_start(ctx), p, n);
}

/* bh_init - a body hash with canonicalisation c (h must not move afterwards) */
static void bh_init(struct body_hash *h, enum dkim_canon c)
{
    h->md = NULL;
    dkim_body_init(&h->canon, c, bh_fn, h);
}

/* bh_final - end of body: the base64 of the hash into b64 */
static void bh_final(struct body_hash *h, struct buf *b64)
{
    unsigned char d[DKIM_SHA256_LEN];
    unsigned dlen = 0;

    dkim_body_final(&h->canon);
    if (EVP_DigestFinal_ex(bh_start(h), d, &dlen) != 1)
        msg_fatal("DKIM: SHA-256 failed: %s", ossl_why());
    dkim_b64(d, dlen, b64);
}

struct dkim_sign {
    struct dkim_key *key;
    enum dkim_canon hcanon, bcanon;
    char **names;            /* configured header names, lower case */
    size_t nnames;
    unsigned expire;
    time_t now;
    struct dkim_fields fields;
    bool have_header;
    struct body_hash body;
};

/* dkim_sign_new - start a signature */
struct dkim_sign *dkim_sign_new(struct dkim_key *k, const struct dkim_sign_opts *o, time_t now)
{
    struct dkim_sign *s = xcalloc(1, sizeof(*s));
    struct dkim_sign_opts def;

    if (o == NULL) {
        dkim_sign_opts_init(&def);
        o = &def;
    }
    k->refs++;
    s->key = k;
    s->hcanon = o->hcanon;
    s->bcanon = o->bcanon;
    s->expire = o->expire;
    s->now = now;
    /* From is always signed (RFC 6376 section 5.4), first */
    s->names = xcalloc(o->nheaders + 1, sizeof(*s->names));
    s->names[s->nnames++] = xstrdup("from");
    for (size_t i = 0; i < o->nheaders; i++) {
        char *n = xstrdup(o->headers[i]);
        for (char *p = n; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        /* the same name twice would sign its instances twice */
        bool dup = false;
        for (size_t j = 0; j < s->nnames; j++)
            dup = dup || strcmp(s->names[j], n) == 0;
        if (dup || *n == 0)
            free(n);
        else
            s->names[s->nnames++] = n;
    }
    bh_init(&s->body, s->bcanon);
    return s;
}

/* dkim_sign_header - the header block */
void dkim_sign_header(struct dkim_sign *s, const char *hdr, size_t len)
{
    dkim_fields_free(&s->fields);
    dkim_fields_collect(&s->fields, hdr, len);
    s->have_header = true;
}

/* dkim_sign_body - a chunk of the body */
void dkim_sign_body(struct dkim_sign *s, const void *p, size_t n)
{
    dkim_body_update(&s->body.canon, p, n);
}

/* struct fold - a header being written with folding at DKIM_HEADER_WIDTH */
struct fold {
    struct buf *out;
    size_t col;
};

/* fold_break - a line break and a tab */
static void fold_break(struct fold *f)
{
    buf_puts(f->out, "\r\n\t");
    f->col = TAB_WIDTH;
}

/* fold_tag - "; " then a whole tag, on a new line if it does not fit */
static void fold_tag(struct fold *f, const char *tag, bool first)
{
    size_t n = strlen(tag);

    if (!first) {
        buf_putc(f->out, ';');
        f->col++;
        if (f->col + 1 + n > DKIM_HEADER_WIDTH) {
            fold_break(f);
        } else {
            buf_putc(f->out, ' ');
            f->col++;
        }
    }
    buf_puts(f->out, tag);
    f->col += n;
}

/* fold_chars - a value that may break anywhere: wrap at DKIM_HEADER_WIDTH */
static void fold_chars(struct fold *f, const char *p)
{
    while (*p) {
        if (f->col >= DKIM_HEADER_WIDTH)
            fold_break(f);
        size_t room = DKIM_HEADER_WIDTH - f->col, n = strlen(p);
        if (n > room)
            n = room;
        buf_append(f->out, p, n);
        f->col += n;
        p += n;
    }
}

/* fold_long - "name=" then a value that may break anywhere (base64) */
static void fold_long(struct fold *f, const char *name, const char *value)
{
    buf_putc(f->out, ';');
    f->col++;
    if (f->col + 1 + strlen(name) + 1 + 8 > DKIM_HEADER_WIDTH) {   /* 8: a useful start */
        fold_break(f);
    } else {
        buf_putc(f->out, ' ');
        f->col++;
    }
    buf_puts(f->out, name);
    buf_putc(f->out, '=');
    f->col += strlen(name) + 1;
    fold_chars(f, value);
}

/* fold_hlist - "h=" with the names, breaking after a ':' when needed */
static void fold_hlist(struct fold *f, char *const *h, size_t nh)
{
    buf_puts(f->out, "; ");
    f->col += 2;
    if (f->col + 2 + strlen(h[0]) + 1 > DKIM_HEADER_WIDTH) {
        buf_truncate(f->out, f->out->len - 1);
        fold_break(f);
    }
    buf_puts(f->out, "h=");
    f->col += 2;
    for (size_t i = 0; i < nh; i++) {
        size_t n = strlen(h[i]) + (i + 1 < nh ? 1 : 0);
        if (i > 0 && f->col + n + 1 > DKIM_HEADER_WIDTH)
            fold_break(f);
        buf_puts(f->out, h[i]);
        if (i + 1 < nh)
            buf_putc(f->out, ':');
        f->col += n;
    }
}

/* sign_data - the signature over data with the key's algorithm; -1 + *err */
static int sign_data(struct dkim_key *k, const struct buf *data, struct buf *sigb64, char **err)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char hash[DKIM_SHA256_LEN], *sig = NULL;
    const unsigned char *tbs = (const unsigned char *)buf_str(data);
    size_t tbslen = data->len, siglen = 0;
    unsigned hlen;
    int ok;

    if (ctx == NULL)
        msg_fatal("DKIM: out of memory");
    if (k->alg == DKIM_ALG_ED25519_SHA256) {
        /* RFC 8463: Ed25519 (PureEdDSA) over the SHA-256 hash */
        if (EVP_Digest(tbs, tbslen, hash, &hlen, EVP_sha256(), NULL) != 1)
            msg_fatal("DKIM: SHA-256 failed: %s", ossl_why());
        tbs = hash;
        tbslen = hlen;
        ok = EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) == 1;
    } else {
        ok = EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) == 1;
    }
    if (ok) {
        /* the key's size bounds the signature: no sizing call that hashes twice */
        siglen = (size_t)EVP_PKEY_get_size(k->pkey);
        sig = xmalloc(siglen);
        ok = EVP_DigestSign(ctx, sig, &siglen, tbs, tbslen) == 1;
    }
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        free(sig);
        *err = xasprintf("DKIM signing with %s failed: %s", k->path, ossl_why());
        return -1;
    }
    dkim_b64(sig, siglen, sigb64);
    free(sig);
    return 0;
}

/* placeholder - base64 of n zero bytes with each 'A' a DKIM_PENDING_CHAR */
static void placeholder(size_t n, struct buf *out)
{
    unsigned char *zero = xcalloc(n ? n : 1, 1);
    size_t start = out->len;

    dkim_b64(zero, n, out);
    free(zero);
    for (size_t i = start; i < out->len; i++)
        if (out->data[i] == 'A')
            out->data[i] = DKIM_PENDING_CHAR;
}

/* emit - hdr (CRLF line ends) to out with the caller's line ends */
static void emit(const struct buf *hdr, const char *eol, struct buf *out)
{
    for (const char *p = buf_str(hdr); *p; p++) {
        if (p[0] == '\r' && p[1] == '\n') {
            buf_puts(out, eol);
            p++;
        } else {
            buf_putc(out, *p);
        }
    }
}

/*
 * sign_head - the field up to and including "b=" (CRLF folds) with body
 * hash bh64; *h (malloc'ed, names owned by s) gets the h= list. -1 + *err
 * when the message has no From.
 */
static int sign_head(struct dkim_sign *s, const char *bh64, struct fold *f, char ***hp,
                     size_t *nhp, char **err)
{
    char **h = NULL, tag[128];
    size_t nh = 0, i, j, count, from = 0;

    /* h=: each configured name as often as it occurs; From once more */
    for (i = 0; i < s->nnames; i++) {
        for (count = 0, j = 0; j < s->fields.n; j++)
            count += strcmp(s->fields.f[j].name, s->names[i]) == 0;
        if (strcmp(s->names[i], "from") == 0)
            from = count++;
        for (; count > 0; count--) {
            h = xreallocarray(h, nh + 1, sizeof(*h));
            h[nh++] = s->names[i];
        }
    }
    if (from == 0) {
        free(h);
        *err = xstrdup("DKIM: the message has no From header");
        return -1;
    }
    buf_puts(f->out, DKIM_SIG_HEADER ": v=1");
    f->col = strlen(DKIM_SIG_HEADER ": v=1");
    fold_tag(f, s->key->alg == DKIM_ALG_RSA_SHA256 ? "a=rsa-sha256" : "a=ed25519-sha256", false);
    snprintf(tag, sizeof(tag), "c=%s/%s", s->hcanon == DKIM_CANON_RELAXED ? "relaxed" : "simple",
             s->bcanon == DKIM_CANON_RELAXED ? "relaxed" : "simple");
    fold_tag(f, tag, false);
    char *dtag = xasprintf("d=%s", s->key->domain);
    fold_tag(f, dtag, false);
    free(dtag);
    char *stag = xasprintf("s=%s", s->key->selector);
    fold_tag(f, stag, false);
    free(stag);
    snprintf(tag, sizeof(tag), "t=%lld", (long long)s->now);
    fold_tag(f, tag, false);
    if (s->expire > 0) {
        snprintf(tag, sizeof(tag), "x=%lld", (long long)s->now + s->expire);
        fold_tag(f, tag, false);
    }
    fold_hlist(f, h, nh);
    fold_long(f, "bh", bh64);
    /* b= goes on a line of its own: its value is all that follows */
    buf_putc(f->out, ';');
    fold_break(f);
    buf_puts(f->out, "b=");
    f->col += 2;
    *hp = h;
    *nhp = nh;
    return 0;
}

/* dkim_sign_finish - the DKIM-Signature header */
int dkim_sign_finish(struct dkim_sign *s, const char *eol, struct buf *out, char **err)
{
    struct buf hdr = BUF_INIT, data = BUF_INIT, b64 = BUF_INIT, sigb64 = BUF_INIT;
    char **h = NULL;
    size_t nh = 0;
    struct fold f = {&hdr, 0};
    int rc = -1;

    bh_final(&s->body, &b64);
    if (sign_head(s, buf_str(&b64), &f, &h, &nh, err) < 0)
        goto out;
    dkim_hash_headers(&s->fields, h, nh, s->hcanon, &data);
    dkim_canon_header(s->hcanon, hdr.data, hdr.len, &data);
    buf_truncate(&data, data.len - 2);   /* the signature's own field: no CRLF */
    if (sign_data(s->key, &data, &sigb64, err) < 0)
        goto out;
    fold_chars(&f, buf_str(&sigb64));
    emit(&hdr, eol, out);
    rc = 0;
out:
    free(h);
    buf_free(&hdr);
    buf_free(&data);
    buf_free(&b64);
    buf_free(&sigb64);
    return rc;
}

/* dkim_sign_pending - the field with placeholders, for dkim_complete_* later */
int dkim_sign_pending(struct dkim_sign *s, const char *eol, struct buf *out, char **err)
{
    struct buf hdr = BUF_INIT, b64 = BUF_INIT;
    char **h = NULL;
    size_t nh = 0, start = out->len;
    struct fold f = {&hdr, 0};
    int rc = -1;

    placeholder(DKIM_SHA256_LEN, &b64);
    if (sign_head(s, buf_str(&b64), &f, &h, &nh, err) < 0)
        goto out;
    buf_reset(&b64);
    placeholder((size_t)EVP_PKEY_get_size(s->key->pkey), &b64);
    fold_chars(&f, buf_str(&b64));
    emit(&hdr, eol, out);
    /* the same length as the name it becomes (see dkim.h) */
    memcpy(out->data + start, DKIM_PENDING_HEADER, strlen(DKIM_PENDING_HEADER));
    rc = 0;
out:
    free(h);
    buf_free(&hdr);
    buf_free(&b64);
    return rc;
}

/* dkim_sign_free - release a signing state */
void dkim_sign_free(struct dkim_sign *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nnames; i++)
        free(s->names[i]);
    free(s->names);
    dkim_fields_free(&s->fields);
    EVP_MD_CTX_free(s->body.md);
    dkim_key_release(s->key);
    free(s);
}

/* ---- completing a pending signature (deferred signing) ------------------------ */

/* dkim_keys_lookup - the key for d= and s=: loaded ones, then the table */
struct dkim_key *dkim_keys_lookup(struct dkim_keys *ks, const char *domain,
                                  const char *selector)
{
    struct dkim_key *k;
    bool tempfail;

    for (size_t i = 0; i < ks->n; i++)
        if (strcasecmp(ks->e[i].domain, domain) == 0
            && strcmp(ks->e[i].selector, selector) == 0)
            return ks->e[i].key;
    k = dkim_keys_find(ks, domain, &tempfail);
    if (k != NULL && strcasecmp(k->domain, domain) == 0 && strcmp(k->selector, selector) == 0)
        return k;
    return NULL;
}

struct dkim_complete {
    char *field;             /* the stored field, any line ends */
    size_t flen;
    struct dkim_sig sig;     /* its tags (placeholders read as zero bytes) */
    struct dkim_key *key;
    struct dkim_fields fields;
    struct body_hash body;
};

/* name_is - does field start with exactly name ':'? */
static bool name_is(const char *field, size_t flen, const char *name)
{
    size_t n = strlen(name);

    return flen > n && memcmp(field, name, n) == 0 && field[n] == ':';
}

/* dkim_complete_needed - is field a pending signature, or one a crash left half written? */
bool dkim_complete_needed(const char *field, size_t flen)
{
    if (name_is(field, flen, DKIM_PENDING_HEADER))
        return true;
    return name_is(field, flen, DKIM_SIG_HEADER) && memchr(field, DKIM_PENDING_CHAR, flen);
}

/* dkim_complete_new - parse a pending field and find its key; NULL + *err */
struct dkim_complete *dkim_complete_new(struct dkim_keys *ks, const char *field, size_t flen,
                                        char **err)
{
    struct dkim_complete *c;
    const char *why = NULL;
    size_t nlen = strlen(DKIM_SIG_HEADER);
    char *value;

    if (!name_is(field, flen, DKIM_PENDING_HEADER) && !name_is(field, flen, DKIM_SIG_HEADER)) {
        *err = xstrdup("not a pending DKIM signature");
        return NULL;
    }
    c = xcalloc(1, sizeof(*c));
    c->field = xmemdup(field, flen);
    c->flen = flen;
    /* the placeholders as the base64 zero bytes they stand for */
    value = xstrndup(field + nlen + 1, flen - nlen - 1);
    for (char *p = value; *p; p++)
        if (*p == DKIM_PENDING_CHAR)
            *p = 'A';
    if (dkim_sig_parse(value, strlen(value), &c->sig, &why) < 0) {
        *err = xasprintf("pending DKIM signature: %s", why);
        goto fail;
    }
    if ((c->key = dkim_keys_lookup(ks, c->sig.d, c->sig.s)) == NULL) {
        *err = xasprintf("no signing key for d=%s s=%s", c->sig.d, c->sig.s);
        goto fail;
    }
    if (c->key->alg != c->sig.alg
        || c->sig.blen != (size_t)EVP_PKEY_get_size(c->key->pkey)) {
        *err = xasprintf("the key for d=%s s=%s changed since the message was queued",
                         c->sig.d, c->sig.s);
        goto fail;
    }
    c->key->refs++;
    bh_init(&c->body, c->sig.bcanon);
    free(value);
    return c;
fail:
    free(value);
    c->key = NULL;
    dkim_complete_free(c);
    return NULL;
}

/* dkim_complete_header - the header block the signature covers (without the pending field) */
void dkim_complete_header(struct dkim_complete *c, const char *hdr, size_t len)
{
    dkim_fields_free(&c->fields);
    dkim_fields_collect(&c->fields, hdr, len);
}

/* dkim_complete_body - a chunk of the body */
void dkim_complete_body(struct dkim_complete *c, const void *p, size_t n)
{
    dkim_body_update(&c->body.canon, p, n);
}

/* tag_value - offset of the value of tag name (after "name="), or flen */
static size_t tag_value(const char *f, size_t flen, const char *name, size_t from)
{
    size_t n = strlen(name);

    for (size_t i = from; i + n + 1 <= flen; i++) {
        if (f[i] != ';' && f[i] != ':')
            continue;
        size_t j = i + 1;
        while (j < flen && (f[j] == ' ' || f[j] == '\t' || f[j] == '\r' || f[j] == '\n'))
            j++;
        if (j + n + 1 <= flen && memcmp(f + j, name, n) == 0 && f[j + n] == '=')
            return j + n + 1;
    }
    return flen;
}

/* fill - overwrite the value at f[at...] (up to ';' or the end) skipping white space */
static bool fill(char *f, size_t flen, size_t at, const char *chars)
{
    size_t n = strlen(chars), k = 0;

    for (size_t i = at; i < flen && f[i] != ';'; i++) {
        if (f[i] == ' ' || f[i] == '\t' || f[i] == '\r' || f[i] == '\n')
            continue;
        if (k == n)
            return false;
        f[i] = chars[k++];
    }
    return k == n;
}

/* dkim_complete_finish - the finished field, exactly as long as the pending one */
int dkim_complete_finish(struct dkim_complete *c, struct buf *out, char **err)
{
    struct buf b64 = BUF_INIT, head = BUF_INIT, data = BUF_INIT, sigb64 = BUF_INIT;
    char *f = xmemdup(c->field, c->flen);
    size_t bhat, bat;
    int rc = -1;

    bh_final(&c->body, &b64);
    memcpy(f, DKIM_SIG_HEADER, strlen(DKIM_SIG_HEADER));
    bhat = tag_value(f, c->flen, "bh", 0);
    /* b= is the last tag: everything after "b=" is its value */
    bat = tag_value(f, c->flen, "b", bhat);
    if (bhat == c->flen || bat == c->flen || !fill(f, c->flen, bhat, buf_str(&b64))) {
        *err = xstrdup("pending DKIM signature: bh= or b= is not where it was written");
        goto out;
    }
    /* the signature's own field with b= empty, CRLF line ends, no final CRLF */
    for (size_t i = 0; i < bat; i++) {
        if (f[i] == '\n' && (i == 0 || f[i - 1] != '\r'))
            buf_putc(&head, '\r');
        buf_putc(&head, f[i]);
    }
    dkim_hash_headers(&c->fields, c->sig.h, c->sig.nh, c->sig.hcanon, &data);
    dkim_canon_header(c->sig.hcanon, head.data, head.len, &data);
    buf_truncate(&data, data.len - 2);
    if (sign_data(c->key, &data, &sigb64, err) < 0)
        goto out;
    if (!fill(f, c->flen, bat, buf_str(&sigb64))) {
        *err = xstrdup("pending DKIM signature: b= has not the signature's length");
        goto out;
    }
    buf_append(out, f, c->flen);
    rc = 0;
out:
    free(f);
    buf_free(&b64);
    buf_free(&head);
    buf_free(&data);
    buf_free(&sigb64);
    return rc;
}

/* dkim_complete_domain - d= of the pending signature */
const char *dkim_complete_domain(const struct dkim_complete *c)
{
    return c->sig.d;
}

/* dkim_complete_free - release a completion state */
void dkim_complete_free(struct dkim_complete *c)
{
    if (c == NULL)
        return;
    free(c->field);
    dkim_sig_free(&c->sig);
    dkim_key_release(c->key);
    dkim_fields_free(&c->fields);
    EVP_MD_CTX_free(c->body.md);
    free(c);
}
