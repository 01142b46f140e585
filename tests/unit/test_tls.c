/*
 * test_tls.c - unit tests for util/tls: option parsing, self-signed
 * certificates, non-blocking handshakes, session tickets shared through
 * the key file (resumption across "processes": two server contexts)
 *
 * Handshakes run over a non-blocking socketpair in this process, each
 * side driven in turn as an event loop would, so the want-read/want-write
 * reporting is exercised for real. Files go to a mkdtemp folder under
 * $TMPDIR (default /tmp) that is removed at the end.
 */
#include "util/sys.h"

#include <fcntl.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/tls.h"

#define HANDSHAKE_ROUNDS 200 /* turns before a handshake counts as stuck */
#define TICKET_KEY_BYTES 80  /* one key in the file (name, AES, HMAC) */
#define DAY_SECS 86400L

static char tmpdir[256];
static char crt[300], key[300];

/* setup - a temporary folder with a self-signed certificate */
static int setup(void **state)
{
    const char *t = getenv("TMPDIR");
    char *err = NULL;

    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "%s/test_tls.XXXXXX", t ? t : "/tmp");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(crt, sizeof(crt), "%s/c.crt", tmpdir);
    snprintf(key, sizeof(key), "%s/c.key", tmpdir);
    if (!tls_make_selfsigned("mx.example.org", crt, key, 30, &err)) {
        fprintf(stderr, "tls_make_selfsigned: %s\n", err);
        return -1;
    }
    return 0;
}

/* teardown - remove the folder */
static int teardown(void **state)
{
    char *cmd = xasprintf("rm -rf '%s'", tmpdir);

    (void)state;
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", tmpdir);
    free(cmd);
    return 0;
}

/* test_protocols - Postfix's protocol syntax */
static void test_protocols(void **state)
{
    const char *why = NULL;
    const unsigned tls12up = TLS_PROTO_TLSv1_2 | TLS_PROTO_TLSv1_3;

    (void)state;
    assert_int_equal(tls_parse_protocols(">=TLSv1.2", &why), tls12up);
    assert_int_equal(tls_parse_protocols("!SSLv2, !SSLv3, !TLSv1, !TLSv1.1", &why),
                     tls12up);
    assert_int_equal(tls_parse_protocols("!SSLv2:!SSLv3:!TLSv1:!TLSv1.1", &why), tls12up);
    assert_int_equal(tls_parse_protocols("TLSv1.3", &why), TLS_PROTO_TLSv1_3);
    assert_int_equal(tls_parse_protocols("", &why),
                     TLS_PROTO_TLSv1 | TLS_PROTO_TLSv1_1 | tls12up);
    assert_int_equal(tls_parse_protocols(">=TLSv1 <=TLSv1.2", &why),
                     TLS_PROTO_TLSv1 | TLS_PROTO_TLSv1_1 | TLS_PROTO_TLSv1_2);
    assert_int_equal(tls_parse_protocols("TLSv1.2 TLSv1", &why),
                     TLS_PROTO_TLSv1 | TLS_PROTO_TLSv1_2);
    /* SSL is never enabled, even when asked for */
    assert_int_equal(tls_parse_protocols("SSLv3, TLSv1.3", &why), TLS_PROTO_TLSv1_3);
    why = NULL;
    assert_int_equal(tls_parse_protocols("SSLv3", &why), 0);
    assert_non_null(why);
    why = NULL;
    assert_int_equal(tls_parse_protocols("TLSv1.4", &why), 0);
    assert_non_null(why);
    why = NULL;
    assert_int_equal(tls_parse_protocols(">=TLSv1.3, !TLSv1.3", &why), 0);
    assert_non_null(why);
    why = NULL;
    assert_int_equal(tls_parse_protocols("!", &why), 0);
    assert_non_null(why);
}

/* test_grades_levels - cipher grades and client security levels */
static void test_grades_levels(void **state)
{
    const char *high = tls_cipher_list("high");
    const char *medium = tls_cipher_list("medium");

    (void)state;
    assert_non_null(high);
    assert_non_null(medium);
    for (const char *const *l = (const char *const[]){high, medium, NULL}; *l; l++) {
        assert_non_null(strstr(*l, "!aNULL"));
        assert_non_null(strstr(*l, "!eNULL"));
        assert_non_null(strstr(*l, "!EXPORT"));
        assert_non_null(strstr(*l, "!RC4"));
        assert_non_null(strstr(*l, "!3DES"));
        assert_non_null(strstr(*l, "!MD5"));
    }
    assert_null(strstr(high, ":AESGCM:"));
    assert_null(strstr(medium, "+AES:")); /* no CBC */
    assert_null(tls_cipher_list("export"));
    assert_null(tls_cipher_list("null"));
    assert_int_equal(tls_level_parse("none"), TLS_LEVEL_NONE);
    assert_int_equal(tls_level_parse(""), TLS_LEVEL_NONE);
    assert_int_equal(tls_level_parse("may"), TLS_LEVEL_MAY);
    assert_int_equal(tls_level_parse("Encrypt"), TLS_LEVEL_ENCRYPT);
    assert_int_equal(tls_level_parse("verify"), TLS_LEVEL_VERIFY);
    assert_int_equal(tls_level_parse("secure"), TLS_LEVEL_SECURE);
    assert_int_equal(tls_level_parse("dane"), -1);
    assert_string_equal(tls_trust_name(TLS_TRUST_ANONYMOUS), "Anonymous");
    assert_string_equal(tls_trust_name(TLS_TRUST_UNTRUSTED), "Untrusted");
    assert_string_equal(tls_trust_name(TLS_TRUST_TRUSTED), "Trusted");
    assert_string_equal(tls_trust_name(TLS_TRUST_VERIFIED), "Verified");
}

/* server_ctx - a server context with the test certificate */
static struct tls_ctx *server_ctx(const char *protocols, const char *grade)
{
    struct tls_server_opts o = {0};
    struct tls_ctx *c;
    char *err = NULL;

    o.cert_file = crt;
    o.key_file = key;
    o.CAfile = "";
    o.CApath = "";
    o.protocols = protocols;
    o.cipher_grade = grade;
    o.session_timeout = 3600;
    c = tls_server_ctx_new(&o, &err);
    if (c == NULL)
        fail_msg("server ctx: %s", err);
    return c;
}

/* client_ctx - a client context that trusts the test certificate */
static struct tls_ctx *client_ctx(const char *protocols, bool trust)
{
    struct tls_client_opts o = {0};
    struct tls_ctx *c;
    char *err = NULL;

    o.cert_file = "";
    o.CAfile = trust ? crt : "";
    o.CApath = "";
    o.protocols = protocols;
    o.cipher_grade = "medium";
    c = tls_client_ctx_new(&o, &err);
    if (c == NULL)
        fail_msg("client ctx: %s", err);
    return c;
}

/* pair - a non-blocking socketpair */
static void pair(int fd[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fd),
                     0);
}

/* drive - run both handshakes in turn; 1 both done, -1 one failed */
static int drive(struct tls_conn *a, struct tls_conn *b)
{
    int ra = 0, rb = 0;

    for (int i = 0; i < HANDSHAKE_ROUNDS; i++) {
        if (ra == 0)
            ra = tls_handshake(a);
        if (rb == 0)
            rb = tls_handshake(b);
        if (ra < 0 || rb < 0)
            return -1;
        if (ra == 1 && rb == 1)
            return 1;
        /* whoever is not done waits for something */
        if (ra == 0)
            assert_true(tls_conn_want(a) & (TLS_WANT_READ | TLS_WANT_WRITE));
    }
    return -1;
}

/* test_handshake_io - handshake, summary, data both ways, want-read on empty */
static void test_handshake_io(void **state)
{
    struct tls_ctx *sc = server_ctx(">=TLSv1.2", "medium");
    struct tls_ctx *cc = client_ctx("", true);
    const char *names[] = {"mx.example.org"};
    int fd[2];
    char buf[64];
    struct tls_conn *s, *c;

    (void)state;
    pair(fd);
    s = tls_conn_server(sc, fd[0]);
    c = tls_conn_client(cc, fd[1], "mx.example.org", TLS_LEVEL_VERIFY, names, 1);
    assert_non_null(s);
    assert_non_null(c);
    /* nothing to read yet: EAGAIN with want-read, no error */
    assert_int_equal(tls_handshake(s), 0);
    assert_int_equal(tls_conn_want(s), TLS_WANT_READ);
    assert_int_equal(drive(c, s), 1);
    assert_string_equal(tls_protocol(s), "TLSv1.3");
    assert_non_null(strstr(tls_summary(s), "TLSv1.3 with cipher TLS_"));
    assert_non_null(strstr(tls_summary(s), " bits)"));
    assert_int_equal(tls_peer_trust(s), TLS_TRUST_ANONYMOUS);
    assert_int_equal(tls_peer_trust(c), TLS_TRUST_VERIFIED);
    assert_string_equal(tls_peer_cn(c), "mx.example.org");

    assert_int_equal(tls_read(s, buf, sizeof(buf)), -1);
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(tls_write(c, "EHLO x\r\n", 8), 8);
    memset(buf, 0, sizeof(buf));
    assert_int_equal(tls_read(s, buf, 4), 4);
    assert_int_equal(tls_pending(s), 4); /* decrypted, invisible to epoll */
    assert_int_equal(tls_read(s, buf + 4, sizeof(buf) - 5), 4);
    assert_string_equal(buf, "EHLO x\r\n");
    assert_int_equal(tls_write(s, "250 ok\r\n", 8), 8);
    assert_int_equal(tls_read(c, buf, sizeof(buf)), 8);

    tls_shutdown(c);
    assert_int_equal(tls_read(s, buf, sizeof(buf)), 0); /* close_notify: end */
    tls_conn_free(s);
    tls_conn_free(c);
    close(fd[0]);
    close(fd[1]);
    tls_ctx_free(sc);
    tls_ctx_free(cc);
}

/* test_verify_fails - wrong name or untrusted chain fails at verify */
static void test_verify_fails(void **state)
{
    struct tls_ctx *sc = server_ctx("", "high");
    struct tls_ctx *trusted = client_ctx("", true), *untrusted = client_ctx("", false);
    const char *wrong[] = {"other.example.org"};
    const char *right[] = {"mx.example.org"};
    int fd[2];
    struct tls_conn *s, *c;

    (void)state;
    pair(fd);
    s = tls_conn_server(sc, fd[0]);
    c = tls_conn_client(trusted, fd[1], "other.example.org", TLS_LEVEL_SECURE, wrong, 1);
    assert_int_equal(drive(c, s), -1);
    assert_non_null(strstr(tls_conn_error(c), "certificate"));
    tls_conn_free(s);
    tls_conn_free(c);
    close(fd[0]);
    close(fd[1]);

    /* at "may" an untrusted certificate is fine, and said so */
    pair(fd);
    s = tls_conn_server(sc, fd[0]);
    c = tls_conn_client(untrusted, fd[1], NULL, TLS_LEVEL_MAY, right, 1);
    assert_int_equal(drive(c, s), 1);
    assert_int_equal(tls_peer_trust(c), TLS_TRUST_UNTRUSTED);
    tls_conn_free(s);
    tls_conn_free(c);
    close(fd[0]);
    close(fd[1]);
    tls_ctx_free(sc);
    tls_ctx_free(trusted);
    tls_ctx_free(untrusted);
}

/* test_protocol_floor - a TLS 1.1-only client cannot talk to the default server */
static void test_protocol_floor(void **state)
{
    struct tls_ctx *sc = server_ctx(">=TLSv1.2", "medium");
    struct tls_ctx *cc = client_ctx("TLSv1.1", false);
    int fd[2];
    struct tls_conn *s, *c;

    (void)state;
    pair(fd);
    s = tls_conn_server(sc, fd[0]);
    c = tls_conn_client(cc, fd[1], NULL, TLS_LEVEL_MAY, NULL, 0);
    assert_int_equal(drive(c, s), -1);
    tls_conn_free(s);
    tls_conn_free(c);
    close(fd[0]);
    close(fd[1]);
    tls_ctx_free(sc);
    tls_ctx_free(cc);
}

/* one_session - handshake (offering saved when not NULL); save the session; reused? */
static bool one_session(struct tls_ctx *sc, struct tls_ctx *cc, const char *protocols,
                        struct buf *saved)
{
    int fd[2];
    char b[16];
    struct tls_conn *s, *c;
    bool reused;

    pair(fd);
    s = tls_conn_server(sc, fd[0]);
    c = tls_conn_client(cc, fd[1], NULL, TLS_LEVEL_MAY, NULL, 0);
    if (saved->len > 0)
        assert_true(tls_session_load(c, saved->data, saved->len));
    assert_int_equal(drive(c, s), 1);
    /* TLS 1.3 tickets come after the handshake: let the client read them */
    assert_int_equal(tls_write(s, "x", 1), 1);
    assert_int_equal(tls_read(c, b, sizeof(b)), 1);
    reused = tls_reused(s);
    assert_int_equal(reused, tls_reused(c));
    buf_reset(saved);
    if (!tls_session_save(c, saved))
        fail_msg("no session to save (%s, reused %d)", protocols, reused);
    tls_conn_free(s);
    tls_conn_free(c);
    close(fd[0]);
    close(fd[1]);
    return reused;
}

/* test_tickets_shared - two server contexts sharing the key file resume each other's */
static void test_tickets_shared(void **state)
{
    static const char *const protos[] = {"TLSv1.3", "TLSv1.2"};
    char *err = NULL;
    int dir = open(tmpdir, O_RDONLY | O_DIRECTORY);
    struct stat st;
    char *path = xasprintf("%s/ticket.key", tmpdir);

    (void)state;
    assert_true(dir >= 0);
    for (size_t i = 0; i < POSTA_ARRAY_LEN(protos); i++) {
        struct tls_ctx *a = server_ctx("", "medium"), *b = server_ctx("", "medium");
        struct tls_ctx *other = server_ctx("", "medium");
        struct tls_ctx *cc = client_ctx(protos[i], false);
        struct buf saved = BUF_INIT;

        assert_true(tls_ctx_ticket_keys(a, dir, "ticket.key", DAY_SECS, &err));
        assert_true(tls_ctx_ticket_keys(b, dir, "ticket.key", DAY_SECS, &err));
        assert_false(one_session(a, cc, protos[i], &saved));
        assert_true(one_session(b, cc, protos[i], &saved)); /* another "process" */
        /* a server without the shared key makes a full handshake */
        assert_false(one_session(other, cc, protos[i], &saved));
        tls_ctx_free(a);
        tls_ctx_free(b);
        tls_ctx_free(other);
        tls_ctx_free(cc);
        buf_free(&saved);
    }
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size, TICKET_KEY_BYTES);

    /* a day old: the next context rotates it and keeps the old key second */
    {
        struct timespec old[2] = {{time(NULL) - 2 * DAY_SECS, 0},
                                  {time(NULL) - 2 * DAY_SECS, 0}};
        struct tls_ctx *a = server_ctx("", "medium"), *b;
        struct tls_ctx *cc = client_ctx("TLSv1.3", false);
        struct buf saved = BUF_INIT;
        unsigned char before[TICKET_KEY_BYTES], after[2 * TICKET_KEY_BYTES];
        FILE *fp;

        assert_true(tls_ctx_ticket_keys(a, dir, "ticket.key", DAY_SECS, &err));
        assert_false(one_session(a, cc, "TLSv1.3", &saved));
        fp = fopen(path, "r");
        assert_int_equal(fread(before, 1, sizeof(before), fp), sizeof(before));
        fclose(fp);
        assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
        b = server_ctx("", "medium");
        assert_true(tls_ctx_ticket_keys(b, dir, "ticket.key", DAY_SECS, &err));
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_size, 2 * TICKET_KEY_BYTES);
        fp = fopen(path, "r");
        assert_int_equal(fread(after, 1, sizeof(after), fp), sizeof(after));
        fclose(fp);
        assert_memory_not_equal(after, before, TICKET_KEY_BYTES);
        assert_memory_equal(after + TICKET_KEY_BYTES, before, TICKET_KEY_BYTES);
        /* a ticket under the previous key still resumes */
        assert_true(one_session(b, cc, "TLSv1.3", &saved));
        tls_ctx_free(a);
        tls_ctx_free(b);
        tls_ctx_free(cc);
        buf_free(&saved);
    }
    /* a file of the wrong size is replaced, never used */
    {
        FILE *fp = fopen(path, "w");
        struct tls_ctx *a = server_ctx("", "medium");

        fputs("short", fp);
        fclose(fp);
        assert_true(tls_ctx_ticket_keys(a, dir, "ticket.key", DAY_SECS, &err));
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_size, TICKET_KEY_BYTES);
        tls_ctx_free(a);
    }
    close(dir);
    free(path);
}

/* test_bad_settings - errors instead of a half-configured context */
static void test_bad_settings(void **state)
{
    struct tls_server_opts o = {0};
    char *err = NULL;

    (void)state;
    o.cert_file = "/nonexistent/cert.pem";
    o.key_file = "";
    o.CAfile = "";
    o.CApath = "";
    o.protocols = "";
    o.cipher_grade = "medium";
    assert_null(tls_server_ctx_new(&o, &err));
    assert_non_null(strstr(err, "/nonexistent/cert.pem"));
    free(err);
    err = NULL;
    o.cert_file = crt;
    o.key_file = key;
    o.cipher_grade = "export";
    assert_null(tls_server_ctx_new(&o, &err));
    assert_non_null(strstr(err, "export"));
    free(err);
    err = NULL;
    o.cipher_grade = "high";
    o.protocols = "SSLv3";
    assert_null(tls_server_ctx_new(&o, &err));
    free(err);
    err = NULL;
    /* a certificate with someone else's key */
    {
        char crt2[320], key2[320];

        snprintf(crt2, sizeof(crt2), "%s/d.crt", tmpdir);
        snprintf(key2, sizeof(key2), "%s/d.key", tmpdir);
        assert_true(tls_make_selfsigned("other", crt2, key2, 1, &err));
        o.protocols = "";
        o.key_file = key2;
        assert_null(tls_server_ctx_new(&o, &err));
        assert_non_null(strstr(err, key2));
        free(err);
        err = NULL;
        /* never overwrites */
        assert_false(tls_make_selfsigned("other", crt2, key2, 1, &err));
        free(err);
    }
}

/* main - run the tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_protocols),      cmocka_unit_test(test_grades_levels),
        cmocka_unit_test(test_handshake_io),   cmocka_unit_test(test_verify_fails),
        cmocka_unit_test(test_protocol_floor), cmocka_unit_test(test_tickets_shared),
        cmocka_unit_test(test_bad_settings),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
