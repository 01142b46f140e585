/*
 * tls.c - TLS on OpenSSL 3 for event-driven servers and clients
 *
 * See tls.h. Contexts are built once per process; connections wrap
 * non-blocking sockets and report what they wait for instead of waiting.
 * Session tickets are sealed with AES-256-CBC and HMAC-SHA256 under keys
 * read from a file shared by all processes of a service (RFC 5077 and
 * TLS 1.3 stateless tickets both go through the ticket key callback), so
 * a client resumes with whichever process accepts its next connection.
 *
 * DIAGNOSTICS: error texts include OpenSSL's own reasons
 * ("SSL routines::wrong version number"); none is logged here.
 *
 * The key file is created and rotated under flock(2) of its folder, so
 * smtpd processes that start together agree on one key.
 *
 * SECURITY: SSLv2 and SSLv3 are never enabled whatever the settings say;
 * renegotiation and compression are off; aNULL, eNULL, EXPORT, RC4,
 * 3DES, DES, MD5, PSK, SRP and CBC cipher suites are never offered. Ticket keys
 * live in memory of the process and in a 0600 file of the unprivileged
 * mail owner; a key file that is not a regular file of the right size is
 * not used.
 */
#include "util/sys.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/tls.h"

#define TLS_ERR_MAX 512 /* error text kept per connection */
#define TLS_SUMMARY_MAX 160
#define TICKET_NAME_LEN 16
#define TICKET_AES_LEN 32
#define TICKET_HMAC_LEN 32
#define TICKET_KEY_LEN (TICKET_NAME_LEN + TICKET_AES_LEN + TICKET_HMAC_LEN)
#define TICKET_KEYS_MAX 2    /* current and previous */
#define TICKET_CHECK_SECS 60 /* how often the key file is looked at */
#define TICKET_FILE_MODE 0600
#define TICKET_RENEW 2 /* callback: ticket ok, issue a new one */
#define SESSION_ID_CONTEXT "posta"
#define CERT_SERIAL_BYTES 16
#define CERT_VERSION_3 2 /* X509_set_version counts from 0 */
#define SECS_PER_DAY 86400L
#define KEY_FILE_MODE 0600
#define CRT_FILE_MODE 0644

/* The key exchange groups: ECDHE first, FFDHE (RFC 7919) for old peers. */
#define TLS_GROUPS "X25519:P-256:P-384:X448:ffdhe2048:ffdhe3072"

/* Never offered, whatever the grade. */
#define TLS_EXCLUDE ":!aNULL:!eNULL:!EXPORT:!RC4:!3DES:!DES:!MD5:!PSK:!SRP:!DSS:!SEED:!IDEA"
/* "high": forward secrecy and AEAD only */
#define TLS_HIGH "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20" TLS_EXCLUDE
/*
 * "medium": the same first, then AES-GCM with RSA key exchange for old
 * MTAs. No CBC suites at all (LUCKY13 and friends): every TLS 1.2 stack
 * worth talking to has AES-GCM, and TLS 1.0/1.1 are off by default.
 */
#define TLS_MEDIUM "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:AESGCM" TLS_EXCLUDE

struct ticket_key {
    unsigned char name[TICKET_NAME_LEN];
    unsigned char aes[TICKET_AES_LEN];
    unsigned char hmac[TICKET_HMAC_LEN];
};

struct tls_ctx {
    SSL_CTX *ssl;
    bool server;
    struct ticket_key keys[TICKET_KEYS_MAX];
    size_t nkeys;
    int ticket_dir; /* -1: keys of this process only */
    char *ticket_name;
    long ticket_lifetime;
    time_t ticket_checked;
    struct timespec ticket_mtime;
    ino_t ticket_ino;
};

struct tls_conn {
    SSL *ssl;
    struct tls_ctx *ctx;
    unsigned want;
    bool done;
    bool shut;
    enum tls_level level;
    SSL_SESSION *latest; /* client: the newest ticket's session */
    char err[TLS_ERR_MAX];
    char summary[TLS_SUMMARY_MAX];
};

static int ctx_index = -1;
static int conn_index = -1;

/* proto_names - Postfix's protocol names and their bits */
static const struct {
    const char *name;
    unsigned bit;
    int version;
} proto_names[] = {
    {"SSLv2", TLS_PROTO_SSLv2, 0},
    {"SSLv3", TLS_PROTO_SSLv3, SSL3_VERSION},
    {"TLSv1", TLS_PROTO_TLSv1, TLS1_VERSION},
    {"TLSv1.1", TLS_PROTO_TLSv1_1, TLS1_1_VERSION},
    {"TLSv1.2", TLS_PROTO_TLSv1_2, TLS1_2_VERSION},
    {"TLSv1.3", TLS_PROTO_TLSv1_3, TLS1_3_VERSION},
};

/* proto_lookup - bit of a protocol name of length n, 0 if unknown */
static unsigned proto_lookup(const char *name, size_t n)
{
    for (size_t i = 0; i < POSTA_ARRAY_LEN(proto_names); i++)
        if (strlen(proto_names[i].name) == n &&
            strncasecmp(proto_names[i].name, name, n) == 0)
            return proto_names[i].bit;
    return 0;
}

/* tls_parse_protocols - Postfix protocol syntax to a TLS_PROTO_* mask; 0 with *why */
unsigned tls_parse_protocols(const char *spec, const char **why)
{
    unsigned include = 0, exclude = 0, mask;
    unsigned lo = TLS_PROTO_SSLv2, hi = TLS_PROTO_TLSv1_3;
    const char *p = spec ? spec : "";

    while (*p) {
        size_t n;
        unsigned bit;
        int kind = 0; /* 0 include, 1 exclude, 2 >=, 3 <= */

        p += strspn(p, " \t,:");
        if (*p == 0)
            break;
        n = strcspn(p, " \t,:");
        if (*p == '!') {
            kind = 1;
            p++;
            n--;
        } else if (n >= 2 && strncmp(p, ">=", 2) == 0) {
            kind = 2;
            p += 2;
            n -= 2;
        } else if (n >= 2 && strncmp(p, "<=", 2) == 0) {
            kind = 3;
            p += 2;
            n -= 2;
        }
        bit = proto_lookup(p, n);
        if (bit == 0) {
            *why = "unknown TLS protocol name (SSLv2, SSLv3, TLSv1, TLSv1.1, TLSv1.2, "
                   "TLSv1.3)";
            return 0;
        }
        if (kind == 0)
            include |= bit;
        else if (kind == 1)
            exclude |= bit;
        else if (kind == 2)
            lo = bit > lo ? bit : lo;
        else
            hi = bit < hi ? bit : hi;
        p += n;
    }
    mask = include ? include : TLS_PROTO_ALL;
    mask &= ~exclude;
    for (unsigned b = 1; b <= TLS_PROTO_TLSv1_3; b <<= 1)
        if (b < lo || b > hi)
            mask &= ~b;
    /* SSL is never spoken, whatever was asked */
    mask &= ~(TLS_PROTO_SSLv2 | TLS_PROTO_SSLv3);
    if (mask == 0) {
        *why = "no TLS protocol left enabled";
        return 0;
    }
    return mask;
}

/* tls_cipher_list - the OpenSSL cipher string of a grade; NULL if unknown */
const char *tls_cipher_list(const char *grade)
{
    if (grade == NULL || *grade == 0 || strcasecmp(grade, "medium") == 0)
        return TLS_MEDIUM;
    if (strcasecmp(grade, "high") == 0)
        return TLS_HIGH;
    return NULL;
}

/* tls_level_parse - "none", "may", "encrypt", "verify", "secure"; -1 if unknown */
int tls_level_parse(const char *text)
{
    static const char *const names[] = {"none", "may", "encrypt", "verify", "secure"};

    if (text == NULL || *text == 0)
        return TLS_LEVEL_NONE;
    for (size_t i = 0; i < POSTA_ARRAY_LEN(names); i++)
        if (strcasecmp(text, names[i]) == 0)
            return (int)i;
    return -1; /* fingerprint, dane: not (yet) supported */
}

/* tls_trust_name - "Anonymous", "Untrusted", "Trusted", "Verified" */
const char *tls_trust_name(enum tls_trust t)
{
    switch (t) {
    case TLS_TRUST_VERIFIED:
        return "Verified";
    case TLS_TRUST_TRUSTED:
        return "Trusted";
    case TLS_TRUST_UNTRUSTED:
        return "Untrusted";
    default:
        return "Anonymous";
    }
}

/* ssl_errors - append OpenSSL's queued error reasons to b and clear the queue */
static void ssl_errors(struct buf *b)
{
    unsigned long e;
    char text[256];

    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, text, sizeof(text));
        (void)buf_printf(b, "%s%s", b->len ? "; " : "", text);
    }
}

/* ctx_fail - the error text of a failed context setup */
static struct tls_ctx *ctx_fail(struct tls_ctx *c, char **err, const char *what,
                                const char *arg)
{
    struct buf b = BUF_INIT;

    (void)buf_printf(&b, "%s%s%s", what, *arg ? " " : "", arg);
    (void)buf_puts(&b, ": ");
    ssl_errors(&b);
    *err = buf_steal(&b);
    if (*err == NULL)
        *err = xstrdup("TLS setup failed");
    tls_ctx_free(c);
    return NULL;
}

/* apply_protocols - min/max version and holes from a protocol mask */
static bool apply_protocols(SSL_CTX *ssl, unsigned mask)
{
    int minv = 0, maxv = 0;
    uint64_t no = 0;

    for (size_t i = 0; i < POSTA_ARRAY_LEN(proto_names); i++) {
        if (proto_names[i].version == 0 || !(mask & proto_names[i].bit))
            continue;
        if (minv == 0)
            minv = proto_names[i].version;
        maxv = proto_names[i].version;
    }
    for (size_t i = 0; i < POSTA_ARRAY_LEN(proto_names); i++) {
        int v = proto_names[i].version;

        if (v > minv && v < maxv && !(mask & proto_names[i].bit)) {
            if (v == TLS1_1_VERSION)
                no |= SSL_OP_NO_TLSv1_1;
            else if (v == TLS1_2_VERSION)
                no |= SSL_OP_NO_TLSv1_2;
        }
    }
    if (no)
        SSL_CTX_set_options(ssl, no);
    return SSL_CTX_set_min_proto_version(ssl, minv) == 1 &&
           SSL_CTX_set_max_proto_version(ssl, maxv) == 1;
}

/* ctx_common - protocols, ciphers, groups and options of both roles */
static struct tls_ctx *ctx_common(bool server, const char *protocols, const char *grade,
                                  char **err)
{
    struct tls_ctx *c = xcalloc(1, sizeof(*c));
    const char *why = NULL;
    const char *ciphers = tls_cipher_list(grade);
    unsigned mask = tls_parse_protocols(protocols, &why);

    c->server = server;
    c->ticket_dir = -1;
    if (mask == 0) {
        *err = xasprintf("bad TLS protocol list \"%s\": %s", protocols, why);
        tls_ctx_free(c);
        return NULL;
    }
    if (ciphers == NULL) {
        *err = xasprintf("bad TLS cipher grade \"%s\" (medium or high)", grade);
        tls_ctx_free(c);
        return NULL;
    }
    ERR_clear_error();
    c->ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (c->ssl == NULL)
        return ctx_fail(c, err, "SSL_CTX_new", "");
    if (ctx_index < 0)
        ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    SSL_CTX_set_ex_data(c->ssl, ctx_index, c);
    if (!apply_protocols(c->ssl, mask))
        return ctx_fail(c, err, "cannot set the TLS protocol versions", "");
    if (SSL_CTX_set_cipher_list(c->ssl, ciphers) != 1)
        return ctx_fail(c, err, "cannot set the TLS cipher list", ciphers);
    if (SSL_CTX_set1_groups_list(c->ssl, TLS_GROUPS) != 1)
        return ctx_fail(c, err, "cannot set the key exchange groups", TLS_GROUPS);
    SSL_CTX_set_options(c->ssl, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                    SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                 SSL_MODE_RELEASE_BUFFERS);
    return c;
}

/* load_chain_file - one file of private keys and certificate chains */
static bool load_chain_file(SSL_CTX *ssl, const char *path)
{
    /*
     * Postfix's smtpd_tls_chain_files: each file holds a key followed by
     * its certificate and the chain; several files give several algorithms.
     */
    return SSL_CTX_use_PrivateKey_file(ssl, path, SSL_FILETYPE_PEM) == 1 &&
           SSL_CTX_use_certificate_chain_file(ssl, path) == 1 &&
           SSL_CTX_check_private_key(ssl) == 1;
}

/* ticket_cb - seal or open a session ticket with the shared keys */
static int ticket_cb(SSL *ssl, unsigned char name[TICKET_NAME_LEN], unsigned char *iv,
                     EVP_CIPHER_CTX *ectx, EVP_MAC_CTX *hctx, int enc)
{
    struct tls_ctx *c = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_index);
    const struct ticket_key *k = NULL;
    OSSL_PARAM params[3];
    int ret = 1; /* encrypting: 1 */

    if (c == NULL || c->nkeys == 0)
        return enc ? -1 : 0;
    if (enc) {
        k = &c->keys[0];
        if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1)
            return -1;
        memcpy(name, k->name, TICKET_NAME_LEN);
        if (EVP_EncryptInit_ex(ectx, EVP_aes_256_cbc(), NULL, k->aes, iv) != 1)
            return -1;
    } else {
        for (size_t i = 0; i < c->nkeys; i++) {
            if (memcmp(name, c->keys[i].name, TICKET_NAME_LEN) == 0) {
                /*
                 * Always a new ticket: a TLS 1.3 client uses each only once
                 * (RFC 8446 C.4), and one under the previous key moves on.
                 */
                k = &c->keys[i];
                ret = TICKET_RENEW;
                break;
            }
        }
        if (k == NULL)
            return 0; /* unknown key: a full handshake */
        if (EVP_DecryptInit_ex(ectx, EVP_aes_256_cbc(), NULL, k->aes, iv) != 1)
            return -1;
    }
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac,
                                                  TICKET_HMAC_LEN);
    params[1] =
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    if (EVP_MAC_CTX_set_params(hctx, params) != 1)
        return -1;
    return ret;
}

/* ticket_key_new - a fresh random key */
static bool ticket_key_new(struct ticket_key *k)
{
    return RAND_bytes((unsigned char *)k, sizeof(*k)) == 1;
}

/* tls_server_ctx_new - a server context; NULL with *err (allocated) */
struct tls_ctx *tls_server_ctx_new(const struct tls_server_opts *o, char **err)
{
    struct tls_ctx *c = ctx_common(true, o->protocols, o->cipher_grade, err);
    const char *key;

    if (c == NULL)
        return NULL;
    SSL_CTX_set_options(c->ssl, SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_dh_auto(c->ssl, 1);
    if (o->nchain_files > 0) {
        for (size_t i = 0; i < o->nchain_files; i++)
            if (!load_chain_file(c->ssl, o->chain_files[i]))
                return ctx_fail(c, err, "cannot load TLS key and certificate chain file",
                                o->chain_files[i]);
    } else if (o->cert_file && *o->cert_file) {
        key = o->key_file && *o->key_file ? o->key_file : o->cert_file;
        if (SSL_CTX_use_certificate_chain_file(c->ssl, o->cert_file) != 1)
            return ctx_fail(c, err, "cannot load TLS certificate file", o->cert_file);
        if (SSL_CTX_use_PrivateKey_file(c->ssl, key, SSL_FILETYPE_PEM) != 1)
            return ctx_fail(c, err, "cannot load TLS private key file", key);
        if (SSL_CTX_check_private_key(c->ssl) != 1)
            return ctx_fail(c, err, "TLS private key does not match the certificate:", key);
    } else {
        *err = xstrdup("no TLS certificate configured");
        tls_ctx_free(c);
        return NULL;
    }
    if ((o->CAfile && *o->CAfile) || (o->CApath && *o->CApath)) {
        if (SSL_CTX_load_verify_locations(c->ssl, *o->CAfile ? o->CAfile : NULL,
                                          *o->CApath ? o->CApath : NULL) != 1)
            return ctx_fail(c, err, "cannot load TLS CA certificates",
                            *o->CAfile ? o->CAfile : o->CApath);
    }
    SSL_CTX_set_verify(c->ssl, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_id_context(c->ssl, (const unsigned char *)SESSION_ID_CONTEXT,
                                   sizeof(SESSION_ID_CONTEXT) - 1);
    /* no per-process cache: tickets carry the state, any process resumes */
    SSL_CTX_set_session_cache_mode(c->ssl, SSL_SESS_CACHE_OFF);
    if (o->session_timeout > 0)
        SSL_CTX_set_timeout(c->ssl, o->session_timeout);
    if (!ticket_key_new(&c->keys[0]))
        return ctx_fail(c, err, "RAND_bytes", "");
    c->nkeys = 1;
    if (SSL_CTX_set_tlsext_ticket_key_evp_cb(c->ssl, ticket_cb) != 1)
        return ctx_fail(c, err, "cannot set the session ticket callback", "");
    return c;
}

/* new_session_cb - (client) a session ticket arrived: remember it */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    struct tls_conn *t = conn_index >= 0 ? SSL_get_ex_data(ssl, conn_index) : NULL;

    if (t == NULL)
        return 0;
    SSL_SESSION_free(t->latest);
    t->latest = sess;
    return 1; /* we keep the reference */
}

/* tls_client_ctx_new - a client context; NULL with *err (allocated) */
struct tls_ctx *tls_client_ctx_new(const struct tls_client_opts *o, char **err)
{
    struct tls_ctx *c = ctx_common(false, o->protocols, o->cipher_grade, err);
    const char *cafile, *capath;

    if (c == NULL)
        return NULL;
    if (o->cert_file && *o->cert_file) {
        const char *key = o->key_file && *o->key_file ? o->key_file : o->cert_file;

        if (SSL_CTX_use_certificate_chain_file(c->ssl, o->cert_file) != 1 ||
            SSL_CTX_use_PrivateKey_file(c->ssl, key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(c->ssl) != 1)
            return ctx_fail(c, err, "cannot load TLS client certificate", o->cert_file);
    }
    cafile = o->CAfile && *o->CAfile ? o->CAfile : NULL;
    capath = o->CApath && *o->CApath ? o->CApath : NULL;
    if (cafile || capath) {
        if (SSL_CTX_load_verify_locations(c->ssl, cafile, capath) != 1)
            return ctx_fail(c, err, "cannot load TLS CA certificates",
                            cafile ? cafile : capath);
    }
    /* TLS 1.3 tickets arrive after the handshake: keep the newest per connection */
    SSL_CTX_set_session_cache_mode(c->ssl, SSL_SESS_CACHE_CLIENT |
                                               SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(c->ssl, new_session_cb);
    return c;
}

/* tls_ctx_free - release a context */
void tls_ctx_free(struct tls_ctx *c)
{
    if (c == NULL)
        return;
    SSL_CTX_free(c->ssl);
    if (c->ticket_dir >= 0)
        (void)close(c->ticket_dir);
    free(c->ticket_name);
    OPENSSL_cleanse(c->keys, sizeof(c->keys));
    free(c);
}

/* ticket_read - the keys in the file: 1 read, 0 missing or unusable, -1 error */
static int ticket_read(struct tls_ctx *c, struct ticket_key *keys, size_t *n,
                       struct stat *st)
{
    int fd = openat(c->ticket_dir, c->ticket_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    unsigned char data[TICKET_KEYS_MAX * TICKET_KEY_LEN + 1];
    ssize_t got;

    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
        (void)close(fd);
        return 0;
    }
    got = read(fd, data, sizeof(data));
    (void)close(fd);
    if (got <= 0 || got % TICKET_KEY_LEN != 0 || got > TICKET_KEYS_MAX * TICKET_KEY_LEN) {
        OPENSSL_cleanse(data, sizeof(data));
        return 0;
    }
    *n = (size_t)got / TICKET_KEY_LEN;
    memcpy(keys, data, (size_t)got);
    OPENSSL_cleanse(data, sizeof(data));
    return 1;
}

/* ticket_write - replace the key file atomically (temp file, rename) */
static bool ticket_write(struct tls_ctx *c, const struct ticket_key *keys, size_t n,
                         char **err)
{
    char *tmp = xasprintf("%s.%ld.tmp", c->ticket_name, (long)getpid());
    int fd = openat(c->ticket_dir, tmp,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, TICKET_FILE_MODE);
    size_t len = n * sizeof(*keys);
    bool ok;

    if (fd < 0 && errno == EEXIST) {
        (void)unlinkat(c->ticket_dir, tmp, 0); /* left by a dead process of this PID */
        fd = openat(c->ticket_dir, tmp,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, TICKET_FILE_MODE);
    }
    if (fd < 0) {
        *err = xasprintf("create %s: %s", tmp, strerror(errno));
        free(tmp);
        return false;
    }
    ok = write(fd, keys, len) == (ssize_t)len && fsync(fd) == 0;
    if (close(fd) < 0)
        ok = false;
    if (ok && renameat(c->ticket_dir, tmp, c->ticket_dir, c->ticket_name) < 0)
        ok = false;
    if (!ok) {
        *err = xasprintf("write %s: %s", c->ticket_name, strerror(errno));
        (void)unlinkat(c->ticket_dir, tmp, 0);
    }
    free(tmp);
    return ok;
}

/* ticket_sync_locked - adopt the file's keys, creating or rotating it when due */
static bool ticket_sync_locked(struct tls_ctx *c, char **err)
{
    struct ticket_key keys[TICKET_KEYS_MAX];
    size_t n = 0;
    struct stat st;
    time_t now = time(NULL);
    int r = ticket_read(c, keys, &n, &st);

    c->ticket_checked = now;
    if (r < 0) {
        *err = xasprintf("open %s: %s", c->ticket_name, strerror(errno));
        return false;
    }
    if (r == 0 || st.st_mtime + c->ticket_lifetime <= now ||
        st.st_mtime > now + SECS_PER_DAY) {
        /* new current key; the old current one still opens its tickets */
        struct ticket_key fresh[TICKET_KEYS_MAX];
        size_t nf = 1;

        if (!ticket_key_new(&fresh[0])) {
            *err = xstrdup("RAND_bytes failed");
            return false;
        }
        if (r == 1)
            fresh[nf++] = keys[0];
        if (!ticket_write(c, fresh, nf, err)) {
            OPENSSL_cleanse(fresh, sizeof(fresh));
            return false;
        }
        OPENSSL_cleanse(fresh, sizeof(fresh));
        /* read back: another process may have rotated at the same moment */
        if (ticket_read(c, keys, &n, &st) != 1) {
            *err = xasprintf("cannot read back %s", c->ticket_name);
            return false;
        }
    }
    memcpy(c->keys, keys, n * sizeof(keys[0]));
    c->nkeys = n;
    c->ticket_mtime = st.st_mtim;
    c->ticket_ino = st.st_ino;
    OPENSSL_cleanse(keys, sizeof(keys));
    return true;
}

/* ticket_sync - ticket_sync_locked under an exclusive lock of the folder */
static bool ticket_sync(struct tls_ctx *c, char **err)
{
    bool ok;

    /*
     * Processes starting together would each create (or rotate) the file
     * and end up with different keys: one at a time decides.
     */
    while (flock(c->ticket_dir, LOCK_EX) < 0) {
        if (errno != EINTR) {
            *err = xasprintf("lock the folder of %s: %s", c->ticket_name, strerror(errno));
            return false;
        }
    }
    ok = ticket_sync_locked(c, err);
    (void)flock(c->ticket_dir, LOCK_UN);
    return ok;
}

/* tls_ctx_ticket_keys - share session ticket keys through a file in dir_fd */
bool tls_ctx_ticket_keys(struct tls_ctx *c, int dir_fd, const char *name, long lifetime,
                         char **err)
{
    if (c->ticket_dir >= 0)
        (void)close(c->ticket_dir);
    c->ticket_dir = fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
    if (c->ticket_dir < 0) {
        *err = xasprintf("dup: %s", strerror(errno));
        return false;
    }
    free(c->ticket_name);
    c->ticket_name = xstrdup(name);
    c->ticket_lifetime = lifetime > 0 ? lifetime : SECS_PER_DAY;
    return ticket_sync(c, err);
}

/* tls_ctx_ticket_refresh - re-read or rotate the key file when due (cheap) */
void tls_ctx_ticket_refresh(struct tls_ctx *c)
{
    struct stat st;
    time_t now = time(NULL);
    char *err = NULL;

    if (c == NULL || c->ticket_dir < 0 || now - c->ticket_checked < TICKET_CHECK_SECS)
        return;
    c->ticket_checked = now;
    if (fstatat(c->ticket_dir, c->ticket_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        st.st_ino == c->ticket_ino && st.st_mtim.tv_sec == c->ticket_mtime.tv_sec &&
        st.st_mtim.tv_nsec == c->ticket_mtime.tv_nsec &&
        st.st_mtime + c->ticket_lifetime > now)
        return;
    /* on failure the keys in memory go on working */
    (void)ticket_sync(c, &err);
    free(err);
}

/* conn_new - a connection object around fd */
static struct tls_conn *conn_new(struct tls_ctx *c, int fd)
{
    struct tls_conn *t = xcalloc(1, sizeof(*t));

    ERR_clear_error();
    t->ctx = c;
    t->ssl = SSL_new(c->ssl);
    if (conn_index < 0)
        conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    if (t->ssl == NULL || SSL_set_fd(t->ssl, fd) != 1 ||
        SSL_set_ex_data(t->ssl, conn_index, t) != 1) {
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        return NULL;
    }
    return t;
}

/* tls_conn_server - wrap an accepted non-blocking socket */
struct tls_conn *tls_conn_server(struct tls_ctx *c, int fd)
{
    struct tls_conn *t;

    tls_ctx_ticket_refresh(c);
    t = conn_new(c, fd);
    if (t != NULL)
        SSL_set_accept_state(t->ssl);
    return t;
}

/* tls_conn_client - wrap a connected non-blocking socket */
struct tls_conn *tls_conn_client(struct tls_ctx *c, int fd, const char *sni,
                                 enum tls_level level, const char *const *names, size_t n)
{
    struct tls_conn *t = conn_new(c, fd);

    if (t == NULL)
        return NULL;
    t->level = level;
    if (sni && *sni && SSL_set_tlsext_host_name(t->ssl, sni) != 1)
        goto fail;
    if (level >= TLS_LEVEL_VERIFY) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);

        X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        /* no names given: the server name we asked for must match */
        if (n == 0 && sni && *sni && X509_VERIFY_PARAM_set1_host(vp, sni, 0) != 1)
            goto fail;
        for (size_t i = 0; i < n; i++) {
            int ok = i == 0 ? X509_VERIFY_PARAM_set1_host(vp, names[i], 0)
                            : X509_VERIFY_PARAM_add1_host(vp, names[i], 0);

            if (ok != 1)
                goto fail;
        }
        SSL_set_verify(t->ssl, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_set_verify(t->ssl, SSL_VERIFY_NONE, NULL);
    }
    SSL_set_connect_state(t->ssl);
    return t;
fail:
    tls_conn_free(t);
    ERR_clear_error();
    return NULL;
}

/* tls_conn_free - release a connection (the fd stays open) */
void tls_conn_free(struct tls_conn *t)
{
    if (t == NULL)
        return;
    SSL_free(t->ssl);
    SSL_SESSION_free(t->latest);
    free(t);
}

/* conn_error - record why a call failed */
static void conn_error(struct tls_conn *t, int ssl_err, int sys_errno)
{
    struct buf b = BUF_INIT;

    if (ssl_err == SSL_ERROR_SYSCALL && sys_errno != 0)
        (void)buf_printf(&b, "%s", strerror(sys_errno));
    else if (ssl_err == SSL_ERROR_SYSCALL || ssl_err == SSL_ERROR_ZERO_RETURN)
        (void)buf_puts(&b, "lost connection");
    ssl_errors(&b);
    if (b.len == 0)
        (void)buf_printf(&b, "SSL error %d", ssl_err);
    if (t->level >= TLS_LEVEL_VERIFY && SSL_get_verify_result(t->ssl) != X509_V_OK)
        (void)buf_printf(&b, " (certificate verification: %s)",
                         X509_verify_cert_error_string(SSL_get_verify_result(t->ssl)));
    snprintf(t->err, sizeof(t->err), "%s", buf_str(&b));
    buf_free(&b);
}

/* io_result - map an SSL call's result: 1 go on, 0 would block, -1 failed */
static int io_result(struct tls_conn *t, int r)
{
    int sys_errno = errno;
    int e = SSL_get_error(t->ssl, r);

    t->want = 0;
    switch (e) {
    case SSL_ERROR_NONE:
        return 1;
    case SSL_ERROR_WANT_READ:
        t->want = TLS_WANT_READ;
        return 0;
    case SSL_ERROR_WANT_WRITE:
        t->want = TLS_WANT_WRITE;
        return 0;
    default:
        conn_error(t, e, sys_errno);
        return -1;
    }
}

/* tls_handshake - drive the handshake: 1 done, 0 call again, -1 failed */
int tls_handshake(struct tls_conn *t)
{
    int r;

    if (t->done)
        return 1;
    ERR_clear_error();
    errno = 0;
    r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        t->done = true;
        t->want = 0;
        return 1;
    }
    r = io_result(t, r);
    return r < 0 ? -1 : 0;
}

/* tls_read - read decrypted bytes */
ssize_t tls_read(struct tls_conn *t, void *p, size_t n)
{
    size_t got = 0;
    int r;

    ERR_clear_error();
    errno = 0;
    if (SSL_read_ex(t->ssl, p, n, &got) == 1) {
        t->want = 0;
        return (ssize_t)got;
    }
    if (SSL_get_error(t->ssl, 0) == SSL_ERROR_ZERO_RETURN) {
        t->want = 0;
        return 0;
    }
    r = io_result(t, 0);
    if (r == 0) {
        errno = EAGAIN;
        return -1;
    }
    if (r > 0)
        return 0;
    errno = EPROTO;
    return -1;
}

/* tls_write - write bytes (maybe only some of them) */
ssize_t tls_write(struct tls_conn *t, const void *p, size_t n)
{
    size_t done = 0;
    int r;

    if (n == 0)
        return 0;
    ERR_clear_error();
    errno = 0;
    if (SSL_write_ex(t->ssl, p, n, &done) == 1) {
        t->want = 0;
        return (ssize_t)done;
    }
    r = io_result(t, 0);
    if (r == 0) {
        errno = EAGAIN;
        return -1;
    }
    errno = EPROTO;
    return -1;
}

/* tls_pending - bytes decrypted but not yet read */
size_t tls_pending(const struct tls_conn *t)
{
    int n = SSL_pending(t->ssl);

    return n > 0 ? (size_t)n : 0;
}

/* tls_conn_want - TLS_WANT_* of the last call that would have blocked */
unsigned tls_conn_want(const struct tls_conn *t)
{
    return t->want;
}

/* tls_shutdown - send close_notify once, without waiting for the answer */
void tls_shutdown(struct tls_conn *t)
{
    if (t->shut || !t->done)
        return;
    t->shut = true;
    ERR_clear_error();
    (void)SSL_shutdown(t->ssl);
    ERR_clear_error();
}

/* tls_conn_error - why the last call failed */
const char *tls_conn_error(const struct tls_conn *t)
{
    return t->err;
}

/* tls_protocol - "TLSv1.3" */
const char *tls_protocol(const struct tls_conn *t)
{
    return SSL_get_version(t->ssl);
}

/* tls_cipher_name - "TLS_AES_256_GCM_SHA384" */
const char *tls_cipher_name(const struct tls_conn *t)
{
    const SSL_CIPHER *c = SSL_get_current_cipher(t->ssl);

    return c ? SSL_CIPHER_get_name(c) : "none";
}

/* tls_cipher_bits - secret bits (and algorithm bits) of the cipher */
int tls_cipher_bits(const struct tls_conn *t, int *alg_bits)
{
    const SSL_CIPHER *c = SSL_get_current_cipher(t->ssl);
    int alg = 0, bits = c ? SSL_CIPHER_get_bits(c, &alg) : 0;

    if (alg_bits)
        *alg_bits = alg;
    return bits;
}

/* tls_summary - "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)" */
const char *tls_summary(const struct tls_conn *t)
{
    struct tls_conn *w = (struct tls_conn *)t; /* the text is a cache */
    int alg = 0, bits = tls_cipher_bits(t, &alg);

    snprintf(w->summary, sizeof(w->summary), "%s with cipher %s (%d/%d bits)",
             tls_protocol(t), tls_cipher_name(t), bits, alg);
    return t->summary;
}

/* tls_reused - was the session resumed? */
bool tls_reused(const struct tls_conn *t)
{
    return SSL_session_reused(t->ssl) == 1;
}

/* tls_peer_trust - what the peer's certificate (if any) proved */
enum tls_trust tls_peer_trust(const struct tls_conn *t)
{
    X509 *peer = SSL_get0_peer_certificate(t->ssl);

    if (peer == NULL)
        return TLS_TRUST_ANONYMOUS;
    if (SSL_get_verify_result(t->ssl) != X509_V_OK)
        return TLS_TRUST_UNTRUSTED;
    /* the name was checked (and matched) only at verify and secure */
    return t->level >= TLS_LEVEL_VERIFY ? TLS_TRUST_VERIFIED : TLS_TRUST_TRUSTED;
}

/* tls_peer_cn - the peer certificate's subject CN ("" if none) */
const char *tls_peer_cn(const struct tls_conn *t)
{
    static char cn[256];
    X509 *peer = SSL_get0_peer_certificate(t->ssl);

    cn[0] = 0;
    if (peer != NULL && X509_NAME_get_text_by_NID(X509_get_subject_name(peer),
                                                  NID_commonName, cn, sizeof(cn)) < 0)
        cn[0] = 0;
    return cn;
}

/* tls_session_save - (client) the session to resume later, serialised */
bool tls_session_save(const struct tls_conn *t, struct buf *out)
{
    SSL_SESSION *sess = t->latest ? t->latest : SSL_get1_session(t->ssl);
    unsigned char *p;
    int n;
    bool ok = false;

    if (sess == NULL)
        return false;
    if (SSL_SESSION_is_resumable(sess) == 1 && (n = i2d_SSL_SESSION(sess, NULL)) > 0 &&
        buf_reserve(out, (size_t)n) == 0) {
        p = (unsigned char *)out->data + out->len;
        if (i2d_SSL_SESSION(sess, &p) == n) {
            out->len += (size_t)n;
            out->data[out->len] = 0;
            ok = true;
        }
    }
    if (sess != t->latest)
        SSL_SESSION_free(sess);
    return ok;
}

/* tls_session_load - (client) offer a saved session before the handshake */
bool tls_session_load(struct tls_conn *t, const void *p, size_t n)
{
    const unsigned char *q = p;
    SSL_SESSION *sess;
    bool ok;

    if (n > LONG_MAX)
        return false;
    sess = d2i_SSL_SESSION(NULL, &q, (long)n);
    if (sess == NULL) {
        ERR_clear_error();
        return false;
    }
    ok = SSL_set_session(t->ssl, sess) == 1;
    SSL_SESSION_free(sess);
    ERR_clear_error();
    return ok;
}

/* add_ext - one X509v3 extension of a self-signed certificate */
static bool add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX v3;
    X509_EXTENSION *ext;
    bool ok;

    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (ext == NULL)
        return false;
    ok = X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

/* write_pem - create path (O_EXCL, mode) and write a key or a certificate */
static bool write_pem(const char *path, int mode, EVP_PKEY *key, X509 *crt)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    FILE *fp;
    bool ok;

    if (fd < 0)
        return false;
    fp = fdopen(fd, "w");
    if (fp == NULL) {
        (void)close(fd);
        return false;
    }
    ok = key ? PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL) == 1
             : PEM_write_X509(fp, crt) == 1;
    if (fflush(fp) != 0 || fsync(fileno(fp)) != 0)
        ok = false;
    if (fclose(fp) != 0)
        ok = false;
    if (!ok)
        (void)unlink(path);
    return ok;
}

/* tls_make_selfsigned - a new EC key and a self-signed certificate for cn */
bool tls_make_selfsigned(const char *cn, const char *crt_path, const char *key_path,
                         int days, char **err)
{
    EVP_PKEY *key = NULL;
    X509 *x = NULL;
    X509_NAME *name;
    unsigned char serial[CERT_SERIAL_BYTES];
    BIGNUM *bn = NULL;
    char *san = xasprintf("DNS:%s", cn);
    bool ok = false;
    const char *what = "create the key";

    ERR_clear_error();
    key = EVP_EC_gen("P-256");
    if (key == NULL)
        goto done;
    what = "build the certificate";
    x = X509_new();
    if (x == NULL || X509_set_version(x, CERT_VERSION_3) != 1 ||
        RAND_bytes(serial, sizeof(serial)) != 1)
        goto done;
    serial[0] &= 0x7f; /* a positive serial number */
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
        goto done;
    if (X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), (long)days * SECS_PER_DAY) == NULL ||
        X509_set_pubkey(x, key) != 1)
        goto done;
    name = X509_get_subject_name(x);
    if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1,
                                   -1, 0) != 1 ||
        X509_set_issuer_name(x, name) != 1)
        goto done;
    if (!add_ext(x, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(x, NID_key_usage, "critical,digitalSignature") ||
        !add_ext(x, NID_ext_key_usage, "serverAuth") ||
        !add_ext(x, NID_subject_alt_name, san))
        goto done;
    if (X509_sign(x, key, EVP_sha256()) == 0)
        goto done;
    what = key_path;
    if (!write_pem(key_path, KEY_FILE_MODE, key, NULL))
        goto done;
    what = crt_path;
    if (!write_pem(crt_path, CRT_FILE_MODE, NULL, x)) {
        (void)unlink(key_path);
        goto done;
    }
    ok = true;
done:
    if (!ok) {
        struct buf b = BUF_INIT;
        int e = errno;

        (void)buf_printf(&b, "cannot %s%s",
                         what == key_path || what == crt_path ? "write " : "", what);
        if (what == key_path || what == crt_path)
            (void)buf_printf(&b, ": %s", strerror(e));
        ssl_errors(&b);
        *err = buf_steal(&b);
    }
    ERR_clear_error();
    BN_free(bn);
    X509_free(x);
    EVP_PKEY_free(key);
    free(san);
    return ok;
}
