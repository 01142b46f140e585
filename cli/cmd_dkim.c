/*
 * cmd_dkim.c - "posta dkim": key generation, and signing and verifying by hand
 *
 * keygen writes a new private key (PEM, PKCS#8, mode 0600, never over an
 * existing file) and prints the TXT record for the zone, its text split
 * into strings of at most 255 bytes as DNS requires. sign and verify run
 * the same library code as the daemons (mail/dkim.h) on a message read
 * from stdin, for admins checking a setup and for the tests.
 *
 * DIAGNOSTICS: errors on stderr ("posta dkim: ..."), exit 1; usage 2.
 * SECURITY: the key file is created with O_EXCL and mode 0600 before any
 * key material is written; the directory is created with mode 0700.
 */
#include "util/sys.h"

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cmd_dkim.h"
#include "mail/dkim.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/dns.h"
#include "util/event.h"

#define EXIT_DKIM_OK 0
#define EXIT_DKIM_FAIL 1
#define EXIT_DKIM_USAGE 2
#define RSA_BITS_DEFAULT 2048
#define RSA_BITS_MIN 1024
#define RSA_BITS_MAX 8192
#define TXT_STRING_MAX 255
#define KEY_DIR_MODE 0700
#define KEY_FILE_MODE 0600
#define MSG_MAX ((size_t)1 << 30)
#define READ_CHUNK 65536
#define DNS_TIMEOUT_MS 10000
#define NO_GID ((gid_t)-1)

/* dkim_usage - the summary on stderr */
static int dkim_usage(void)
{
    fprintf(stderr,
            "usage: posta dkim keygen DOMAIN SELECTOR [--type rsa|ed25519] [--bits N] [--dir DIR]\n"
            "       posta dkim sign --key FILE --domain DOMAIN --selector SELECTOR [--time T]\n"
            "                       [--canon HEADER/BODY] < message\n"
            "       posta dkim verify [--record NAME=TXT]... [--dns-servers LIST] [--time T]\n"
            "                         < message\n");
    return EXIT_DKIM_USAGE;
}

/* ossl_err - the last OpenSSL error */
static const char *ossl_err(void)
{
    static char text[256];

    ERR_error_string_n(ERR_get_error(), text, sizeof(text));
    return text;
}

/* print_record - the zone-file line, strings of at most 255 bytes */
static void print_record(const char *domain, const char *selector, const char *rec)
{
    const char *p = strstr(rec, "p=");
    size_t n;

    printf("%s._domainkey.%s. IN TXT ( \"%.*s\"", selector, domain, (int)(p - rec), rec);
    for (; *p; p += n) {
        n = strlen(p) < TXT_STRING_MAX ? strlen(p) : TXT_STRING_MAX;
        printf("\n\t\"%.*s\"", (int)n, p);
    }
    printf(" )\n");
}

/* keygen - posta dkim keygen */
static int keygen(int argc, char **argv, const char *config_dir)
{
    static const struct option opts[] = {
        {"type", required_argument, NULL, 't'},
        {"bits", required_argument, NULL, 'b'},
        {"dir", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    const char *type = "rsa", *domain, *selector;
    char *dir = NULL, *path, *err = NULL;
    long bits = RSA_BITS_DEFAULT;
    EVP_PKEY *pkey;
    struct dkim_key *k;
    struct buf rec = BUF_INIT;
    FILE *fp;
    int c, fd, rc = EXIT_DKIM_FAIL;

    optind = 0; /* 0: glibc starts afresh (posta.c parsed with "+") */
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            type = optarg;
            break;
        case 'b':
            bits = strtol(optarg, NULL, 10);
            break;
        case 'd':
            free(dir);
            dir = xstrdup(optarg);
            break;
        default:
            free(dir);
            return dkim_usage();
        }
    }
    if (argc - optind != 2 || (strcmp(type, "rsa") != 0 && strcmp(type, "ed25519") != 0)
        || bits < RSA_BITS_MIN || bits > RSA_BITS_MAX) {
        free(dir);
        return dkim_usage();
    }
    domain = argv[optind];
    selector = argv[optind + 1];
    if (strchr(domain, '/') || strchr(selector, '/') || *domain == '.' || *selector == '.') {
        fprintf(stderr, "posta dkim: bad domain or selector\n");
        free(dir);
        return EXIT_DKIM_USAGE;
    }
    if (dir == NULL)
        dir = xasprintf("%s/dkim", config_dir);
    if (mkdir(dir, KEY_DIR_MODE) < 0 && errno != EEXIST) {
        fprintf(stderr, "posta dkim: cannot create %s: %s\n", dir, strerror(errno));
        free(dir);
        return EXIT_DKIM_FAIL;
    }
    path = xasprintf("%s/%s.%s.key", dir, domain, selector);
    if (strcmp(type, "rsa") == 0)
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    else
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (pkey == NULL) {
        fprintf(stderr, "posta dkim: key generation failed: %s\n", ossl_err());
        goto out;
    }
    if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, KEY_FILE_MODE)) < 0) {
        fprintf(stderr, "posta dkim: cannot create %s: %s%s\n", path, strerror(errno),
                errno == EEXIST ? " (not replaced: remove it first)" : "");
        EVP_PKEY_free(pkey);
        goto out;
    }
    fp = fdopen(fd, "w");
    if (fp == NULL || PEM_write_PrivateKey(fp, pkey, NULL, NULL, 0, NULL, NULL) != 1
        || fflush(fp) != 0 || fsync(fd) != 0) {
        fprintf(stderr, "posta dkim: cannot write %s: %s\n", path, strerror(errno));
        if (fp)
            fclose(fp);
        else
            close(fd);
        unlink(path);
        EVP_PKEY_free(pkey);
        goto out;
    }
    fclose(fp);
    EVP_PKEY_free(pkey);
    if ((k = dkim_key_load(domain, selector, path, NO_GID, &err)) == NULL
        || dkim_pubkey_record(k, &rec, &err) < 0) {
        fprintf(stderr, "posta dkim: %s\n", err);
        free(err);
        dkim_key_release(k);
        goto out;
    }
    dkim_key_release(k);
    printf("; private key: %s\n", path);
    printf("; dkim_signing_table entry: %s %s:%s\n", domain, selector, path);
    print_record(domain, selector, buf_str(&rec));
    rc = EXIT_DKIM_OK;
out:
    buf_free(&rec);
    free(path);
    free(dir);
    return rc;
}

/* read_stdin - the whole message */
static bool read_stdin(struct buf *msg)
{
    char chunk[READ_CHUNK];
    size_t n;

    buf_init(msg, MSG_MAX);
    while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
        if (buf_append(msg, chunk, n) < 0) {
            fprintf(stderr, "posta dkim: message too large\n");
            return false;
        }
    }
    return !ferror(stdin);
}

/* header_len - length of the header block including the empty line */
static size_t header_len(const struct buf *msg)
{
    const char *s = buf_str(msg);

    for (size_t i = 0; i < msg->len; i++) {
        if (s[i] != '\n')
            continue;
        if (i + 1 < msg->len && s[i + 1] == '\n')
            return i + 2;
        if (i + 2 < msg->len && s[i + 1] == '\r' && s[i + 2] == '\n')
            return i + 3;
    }
    return msg->len;
}

/* sign - posta dkim sign */
static int sign(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"domain", required_argument, NULL, 'd'},
        {"selector", required_argument, NULL, 's'},
        {"time", required_argument, NULL, 't'},
        {"canon", required_argument, NULL, 'c'},
        {NULL, 0, NULL, 0},
    };
    const char *key = NULL, *domain = NULL, *selector = NULL;
    struct dkim_sign_opts o;
    time_t now = time(NULL);
    struct buf msg = BUF_INIT, sig = BUF_INIT;
    struct dkim_key *k;
    struct dkim_sign *s;
    char *err = NULL;
    int c, rc = EXIT_DKIM_FAIL;

    dkim_sign_opts_init(&o);
    optind = 0; /* 0: glibc starts afresh (posta.c parsed with "+") */
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            key = optarg;
            break;
        case 'd':
            domain = optarg;
            break;
        case 's':
            selector = optarg;
            break;
        case 't':
            now = (time_t)strtoll(optarg, NULL, 10);
            break;
        case 'c':
            if (!dkim_parse_canon(optarg, &o.hcanon, &o.bcanon))
                return dkim_usage();
            break;
        default:
            return dkim_usage();
        }
    }
    if (key == NULL || domain == NULL || selector == NULL || optind != argc)
        return dkim_usage();
    if ((k = dkim_key_load(domain, selector, key, NO_GID, &err)) == NULL) {
        fprintf(stderr, "posta dkim: %s\n", err);
        free(err);
        return EXIT_DKIM_FAIL;
    }
    if (!read_stdin(&msg))
        goto out;
    size_t hl = header_len(&msg);
    bool crlf = strstr(buf_str(&msg), "\r\n") != NULL;
    s = dkim_sign_new(k, &o, now);
    dkim_sign_header(s, buf_str(&msg), hl);
    dkim_sign_body(s, buf_str(&msg) + hl, msg.len - hl);
    if (dkim_sign_finish(s, crlf ? "\r\n" : "\n", &sig, &err) < 0) {
        fprintf(stderr, "posta dkim: %s\n", err);
        free(err);
        dkim_sign_free(s);
        goto out;
    }
    dkim_sign_free(s);
    fwrite(sig.data, 1, sig.len, stdout);
    fputs(crlf ? "\r\n" : "\n", stdout);
    fwrite(buf_str(&msg), 1, msg.len, stdout);
    rc = fflush(stdout) == 0 ? EXIT_DKIM_OK : EXIT_DKIM_FAIL;
out:
    buf_free(&msg);
    buf_free(&sig);
    dkim_key_release(k);
    return rc;
}

struct records {
    char **names;
    char **values;
    size_t n;
};

/* record_lookup - keys given with --record */
static enum dkim_dns record_lookup(void *ctx, const char *qname, struct buf *txt)
{
    struct records *r = ctx;

    for (size_t i = 0; i < r->n; i++) {
        if (strcasecmp(r->names[i], qname) == 0) {
            buf_puts(txt, r->values[i]);
            return DKIM_DNS_OK;
        }
    }
    return DKIM_DNS_NOTFOUND;
}

/* verify_done - dkim_verify_run finished */
static void verify_done(void *ctx, struct dkim_verify *v)
{
    *(bool *)ctx = true;
}

/* verify - posta dkim verify */
static int verify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"record", required_argument, NULL, 'r'},
        {"time", required_argument, NULL, 't'},
        {"dns-servers", required_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    const char *servers = NULL, *why;
    struct records r = {NULL, NULL, 0};
    time_t now = time(NULL);
    struct buf msg = BUF_INIT, ar = BUF_INIT;
    struct dkim_verify *v;
    const struct dkim_result *res;
    size_t n, i;
    int c, rc = EXIT_DKIM_FAIL;
    char *eq;

    optind = 0; /* 0: glibc starts afresh (posta.c parsed with "+") */
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            if ((eq = strchr(optarg, '=')) == NULL)
                return dkim_usage();
            r.names = xreallocarray(r.names, r.n + 1, sizeof(*r.names));
            r.values = xreallocarray(r.values, r.n + 1, sizeof(*r.values));
            r.names[r.n] = xstrndup(optarg, (size_t)(eq - optarg));
            r.values[r.n++] = xstrdup(eq + 1);
            break;
        case 't':
            now = (time_t)strtoll(optarg, NULL, 10);
            break;
        case 'n':
            servers = optarg;
            break;
        default:
            return dkim_usage();
        }
    }
    if (optind != argc)
        return dkim_usage();
    if (servers != NULL && !dns_set_servers(servers, &why)) {
        fprintf(stderr, "posta dkim: bad --dns-servers: %s\n", why);
        return EXIT_DKIM_USAGE;
    }
    if (read_stdin(&msg)) {
        size_t hl = header_len(&msg);
        v = dkim_verify_new(0, now);
        dkim_verify_header(v, buf_str(&msg), hl);
        dkim_verify_body(v, buf_str(&msg) + hl, msg.len - hl);
        dkim_verify_body_end(v);
        if (r.n > 0) {
            dkim_verify_keys_sync(v, record_lookup, &r);
        } else {
            bool done = false;
            event_init();
            dns_init();
            dkim_verify_run(v, DNS_TIMEOUT_MS, verify_done, &done);
            while (!done)
                event_run_once(-1);
        }
        res = dkim_verify_results(v, &n);
        dkim_verify_ar(v, "\n", &ar);
        printf("%s\n", buf_str(&ar));
        for (i = 0; i < n; i++)
            if (res[i].status == DKIM_PASS)
                rc = EXIT_DKIM_OK;
        dkim_verify_free(v);
    }
    for (i = 0; i < r.n; i++) {
        free(r.names[i]);
        free(r.values[i]);
    }
    free(r.names);
    free(r.values);
    buf_free(&msg);
    buf_free(&ar);
    return rc;
}

/* cmd_dkim - dispatch the subcommands */
int cmd_dkim(int argc, char **argv, const char *config_dir)
{
    if (argc < 2)
        return dkim_usage();
    if (strcmp(argv[1], "keygen") == 0)
        return keygen(argc - 1, argv + 1, config_dir);
    if (strcmp(argv[1], "sign") == 0)
        return sign(argc - 1, argv + 1);
    if (strcmp(argv[1], "verify") == 0)
        return verify(argc - 1, argv + 1);
    return dkim_usage();
}
