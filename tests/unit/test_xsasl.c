/*
 * test_xsasl.c - unit, golden and live tests of the SASL backends (xsasl)
 *
 * Pure pieces: base64 checks, security options and mechanism filtering,
 * Dovecot's tab escapes, the AUTH line, and the Dovecot reply parser
 * against golden files in tests/golden/xsasl/: NAME.in holds lines a
 * server sent, NAME.out one rendered result per line (kind and fields,
 * or "error: WHY"). POSTA_GOLDEN_UPDATE=1 rewrites the .out files.
 *
 * Live, against a fake Dovecot auth server forked by the test (a Unix
 * socket in a temporary folder): PLAIN OK and FAIL, LOGIN through CONT,
 * a disconnect in the middle of a request (XSASL_TEMP), the reconnect
 * after it, a request timeout, a user name with a control character,
 * and that no callback runs inside the call or after xsasl_sess_free.
 *
 * Live, against the real programs when installed (skipped otherwise;
 * CI has them): Cyrus libsasl2 with a sasldb made by saslpasswd2 and an
 * application config in cyrus_sasl_config_path; Dovecot (dovecot -F with
 * its own config, auth socket in the test folder, stopped by PID). Each
 * does PLAIN, LOGIN and CRAM-MD5 with the right and a wrong password.
 */
#include "util/sys.h"

#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/wait.h>
#include <time.h>

#include "mail/xsasl.h"
#include "mail/xsasl_impl.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/event.h"
#include "util/log.h"

#include "golden.h"

#define GOLDEN_SUBDIR "xsasl"
#define GOLDEN_MIN_CASES 4
#define WAIT_MS 8000 /* longest wait for one callback */
#define LOOP_SLICE_MS 20
#define FAKE_LINE_MAX 8192
#define FAKE_REQS 16
#define MD5_HEX_LEN 32
#define SASLPASSWD2 "/usr/sbin/saslpasswd2"
#define DOVECOT "/usr/sbin/dovecot"
#define PASSWORD "s3cret-pw"
#define WRONG "wrong-pw"
#define DOVECOT_START_MS 15000
#define DOVECOT_STOP_MS 10000
#define DIR_MODE 0755
#define FILE_MODE 0644

/* ---- helpers ----------------------------------------------------------- */

static pid_t child_pid; /* fake server or dovecot: stopped by teardown */
static char *child_dir; /* its folder, removed by teardown */

struct result {
    int calls;
    enum xsasl_status st;
    char data[XSASL_DATA_MAX * 2];
};

/* collect - the xsasl callback of the tests */
static void collect(void *ctx, enum xsasl_status st, const char *data)
{
    struct result *r = ctx;

    r->calls++;
    r->st = st;
    snprintf(r->data, sizeof(r->data), "%s", data);
}

/* now_ms - monotonic milliseconds */
static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* wait_result - run the loop until r has its answer (fails after WAIT_MS) */
static void wait_result(struct result *r)
{
    uint64_t end = now_ms() + WAIT_MS;

    while (r->calls == 0 && now_ms() < end)
        event_run_once(LOOP_SLICE_MS);
    assert_int_equal(r->calls, 1);
}

/* run_loop - run the event loop for ms */
static void run_loop(unsigned ms)
{
    uint64_t end = now_ms() + ms;

    while (now_ms() < end)
        event_run_once(LOOP_SLICE_MS);
}

/* b64 - base64 of p[n] (static storage, one at a time) */
static const char *b64(const void *p, size_t n)
{
    static struct buf out;

    buf_reset(&out);
    assert_int_equal(xsasl_base64_encode(p, n, &out), 0);
    return buf_str(&out);
}

/* plain_resp - base64 of "\0user\0pass" */
static const char *plain_resp(const char *user, const char *pass)
{
    char raw[256];
    size_t ul = strlen(user), pl = strlen(pass);

    raw[0] = 0;
    memcpy(raw + 1, user, ul);
    raw[1 + ul] = 0;
    memcpy(raw + 2 + ul, pass, pl);
    return b64(raw, 2 + ul + pl);
}

/* b64_text - decode base64 into a C string (static storage) */
static const char *b64_text(const char *s)
{
    static struct buf out;

    buf_reset(&out);
    assert_int_equal(xsasl_base64_decode(s, strlen(s), &out), 0);
    return buf_str(&out);
}

/* call_start - xsasl_start, checking that the answer is not given inside the call */
static void call_start(struct xsasl_sess *s, const char *mech, const char *initial,
                       struct result *r)
{
    memset(r, 0, sizeof(*r));
    xsasl_start(s, mech, initial, collect, r);
    assert_int_equal(r->calls, 0);
    wait_result(r);
}

/* call_step - xsasl_step, likewise */
static void call_step(struct xsasl_sess *s, const char *resp, struct result *r)
{
    memset(r, 0, sizeof(*r));
    xsasl_step(s, resp, collect, r);
    assert_int_equal(r->calls, 0);
    wait_result(r);
}

/* cram_response - base64 of "user HEX(HMAC-MD5(pass, challenge))" */
static const char *cram_response(const char *user, const char *pass,
                                 const char *challenge_b64)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    char text[512];
    const char *chal = b64_text(challenge_b64);
    size_t n;

    assert_non_null(HMAC(EVP_md5(), pass, (int)strlen(pass), (const unsigned char *)chal,
                         strlen(chal), md, &mdlen));
    n = (size_t)snprintf(text, sizeof(text), "%s ", user);
    for (unsigned i = 0; i < mdlen; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%02x", md[i]);
    return b64(text, n);
}

/* make_tempdir - a fresh folder under /tmp (xmalloc'd path) */
static char *make_tempdir(const char *tag)
{
    char *dir = xasprintf("/tmp/posta-xsasl-%s-XXXXXX", tag);

    assert_non_null(mkdtemp(dir));
    chmod(dir, DIR_MODE);
    return dir;
}

/* remove_tree - rm -r of a test folder */
static void remove_tree(const char *dir)
{
    char *cmd = xasprintf("rm -rf '%s'", dir);

    if (strncmp(dir, "/tmp/posta-xsasl-", strlen("/tmp/posta-xsasl-")) == 0)
        (void)!system(cmd);
    free(cmd);
}

/* write_file - a small file with mode */
static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    chmod(path, mode);
}

/* child_stop - SIGTERM by PID, then SIGKILL if it lingers; forget it */
static void child_stop(pid_t pid)
{
    uint64_t end = now_ms() + DOVECOT_STOP_MS;
    int status;

    if (pid <= 0)
        return;
    if (pid == child_pid)
        child_pid = 0;
    kill(pid, SIGTERM);
    while (now_ms() < end) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return;
        usleep(LOOP_SLICE_MS * 1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
}

/* stop_child - teardown: a failed test leaves no server or folder behind */
static int stop_child(void **state)
{
    child_stop(child_pid);
    if (child_dir) {
        remove_tree(child_dir);
        free(child_dir);
        child_dir = NULL;
    }
    return 0;
}

/* ---- pure pieces ------------------------------------------------------- */

/* test_base64 - validity, decode and encode */
static void test_base64(void **state)
{
    static const struct {
        const char *in;
        bool valid;
    } cases[] = {
        {"", true},          {"YQ==", true},  {"YWI=", true},  {"YWJj", true},
        {"YWJjZA==", true},  {"+/+/", true},  {"Y", false},    {"YQ=", false},
        {"YQ===", false},    {"Y===", false}, {"Y=Q=", false}, {"YW J", false},
        {"YWJj\r\n", false}, {"====", false}, {"YW-j", false}, {"*", false},
    };
    struct buf out = BUF_INIT;

    for (size_t i = 0; i < POSTA_ARRAY_LEN(cases); i++) {
        if (xsasl_base64_valid(cases[i].in, strlen(cases[i].in)) != cases[i].valid)
            fail_msg("base64 \"%s\": want %d", cases[i].in, cases[i].valid);
    }
    assert_int_equal(xsasl_base64_decode("YWJjZA==", 8, &out), 0);
    assert_string_equal(buf_str(&out), "abcd");
    assert_int_equal(xsasl_base64_decode("YW J", 4, &out), -1);
    buf_reset(&out);
    for (size_t n = 0; n < 40; n++) {
        unsigned char raw[40];
        struct buf enc = BUF_INIT;

        for (size_t k = 0; k < n; k++)
            raw[k] = (unsigned char)(k * 37 + n);
        assert_int_equal(xsasl_base64_encode(raw, n, &enc), 0);
        assert_int_equal(enc.len % 4, 0);
        assert_true(xsasl_base64_valid(buf_str(&enc), enc.len));
        buf_reset(&out);
        assert_int_equal(xsasl_base64_decode(buf_str(&enc), enc.len, &out), 0);
        assert_int_equal(out.len, n);
        assert_memory_equal(buf_str(&out), raw, n);
        buf_free(&enc);
    }
    assert_string_equal(b64("\0alice\0pw", 9), "AGFsaWNlAHB3");
    buf_free(&out);
}

/* test_options - option words and mechanism filtering */
static void test_options(void **state)
{
    struct xsasl_mech list[] = {
        {"PLAIN", XSASL_SEC_PLAINTEXT | XSASL_SEC_DICTIONARY | XSASL_SEC_ACTIVE},
        {"LOGIN", XSASL_SEC_PLAINTEXT | XSASL_SEC_DICTIONARY | XSASL_SEC_ACTIVE},
        {"CRAM-MD5", XSASL_SEC_DICTIONARY | XSASL_SEC_ACTIVE},
        {"SCRAM-SHA-256", XSASL_SEC_DICTIONARY | XSASL_SEC_MUTUAL_AUTH},
        {"ANONYMOUS", XSASL_SEC_ANONYMOUS},
        {"OTP", XSASL_SEC_DICTIONARY | XSASL_SEC_ACTIVE | XSASL_SEC_FORWARD_SECRECY},
        {"GSSAPI", XSASL_SEC_MUTUAL_AUTH},
        {"OAUTHBEARER", XSASL_SEC_PRIVATE},
        {"bad name", 0},
        {"PLAIN", XSASL_SEC_PLAINTEXT | XSASL_SEC_DICTIONARY | XSASL_SEC_ACTIVE},
    };
    static const struct {
        const char *opts;
        const char *want;
    } cases[] = {
        {"", "PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256 ANONYMOUS OTP GSSAPI"},
        {"noanonymous", "PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256 OTP GSSAPI"},
        {"noanonymous, noplaintext", "CRAM-MD5 SCRAM-SHA-256 OTP GSSAPI"},
        {"noanonymous noplaintext noactive", "SCRAM-SHA-256 GSSAPI"},
        {"nodictionary,noanonymous", "GSSAPI"},
        {"mutual_auth", "SCRAM-SHA-256 GSSAPI"},
        {"forward_secrecy", "OTP"},
        {"NoAnonymous , NOPLAINTEXT", "CRAM-MD5 SCRAM-SHA-256 OTP GSSAPI"},
    };
    struct buf out = BUF_INIT;
    struct xsasl_opts o;
    char *err = NULL;
    unsigned props;

    for (size_t i = 0; i < POSTA_ARRAY_LEN(cases); i++) {
        assert_true(xsasl_check_options(cases[i].opts, &err));
        memset(&o, 0, sizeof(o));
        o.noanonymous = strcasestr(cases[i].opts, "noanonymous") != NULL;
        o.noplaintext = strcasestr(cases[i].opts, "noplaintext") != NULL;
        o.noactive = strcasestr(cases[i].opts, "noactive") != NULL;
        o.nodictionary = strcasestr(cases[i].opts, "nodictionary") != NULL;
        o.mutual_auth = strcasestr(cases[i].opts, "mutual_auth") != NULL;
        o.forward_secrecy = strcasestr(cases[i].opts, "forward_secrecy") != NULL;
        xsasl_mechs_filter(list, POSTA_ARRAY_LEN(list), &o, &out);
        if (strcmp(buf_str(&out), cases[i].want) != 0)
            fail_msg("options \"%s\": got \"%s\" want \"%s\"", cases[i].opts, buf_str(&out),
                     cases[i].want);
    }
    assert_false(xsasl_check_options("noanonymous, noplaintxt", &err));
    assert_non_null(strstr(err, "noplaintxt"));
    free(err);
    assert_true(xsasl_mech_props("plain", &props));
    assert_true(props & XSASL_SEC_PLAINTEXT);
    assert_true(xsasl_mech_props("LOGIN", &props));
    assert_true(props & XSASL_SEC_PLAINTEXT);
    assert_true(xsasl_mech_props("CRAM-MD5", &props));
    assert_false(props & XSASL_SEC_PLAINTEXT);
    assert_false(xsasl_mech_props("X-UNKNOWN", &props));
    assert_true(xsasl_mech_in_list("PLAIN LOGIN", "login"));
    assert_false(xsasl_mech_in_list("PLAIN LOGIN", "LOG"));
    assert_false(xsasl_mech_in_list("PLAIN LOGIN", ""));
    buf_free(&out);
}

/* test_escape - Dovecot's tab escapes both ways */
static void test_escape(void **state)
{
    struct buf out = BUF_INIT, back = BUF_INIT;
    const char *in = "a\tb\nc\rd\001e\\f";

    assert_int_equal(xsasl_dc_escape(&out, in), 0);
    assert_string_equal(buf_str(&out), "a\001tb\001nc\001rd\0011e\\f");
    assert_null(memchr(buf_str(&out), '\t', out.len));
    assert_int_equal(xsasl_dc_unescape(out.data, out.len, &back), 0);
    assert_string_equal(buf_str(&back), in);
    buf_reset(&back);
    assert_int_equal(xsasl_dc_unescape("x\001", 2, &back), -1);
    assert_int_equal(xsasl_dc_unescape("x\001z", 3, &back), -1);
    buf_free(&out);
    buf_free(&back);
}

/* test_auth_line - the AUTH request as sent */
static void test_auth_line(void **state)
{
    struct buf out = BUF_INIT;

    assert_int_equal(xsasl_dc_auth_line(&out, 7, "PLAIN", "smtp", "127.0.0.1", "587",
                                        "192.0.2.1", "40000", true, "AGEAYg=="),
                     0);
    assert_string_equal(buf_str(&out),
                        "AUTH\t7\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1"
                        "\trip=192.0.2.1\tlport=587\trport=40000\tsecured"
                        "\tresp=AGEAYg==\n");
    buf_reset(&out);
    assert_int_equal(
        xsasl_dc_auth_line(&out, 8, "LOGIN", "sm\ttp", "", "", "::1", "", false, NULL), 0);
    assert_string_equal(buf_str(&out),
                        "AUTH\t8\tLOGIN\tservice=sm\001ttp\tnologin\trip=::1\n");
    buf_reset(&out);
    assert_int_equal(
        xsasl_dc_auth_line(&out, 9, "PLAIN", "smtp", "", "", "", "", false, "="), 0);
    assert_string_equal(buf_str(&out), "AUTH\t9\tPLAIN\tservice=smtp\tnologin\tresp=\n");
    buf_free(&out);
}

/* render_reply - one parsed line as golden text */
static void render_reply(const char *line, size_t len, struct buf *out)
{
    static const char *const kinds[] = {"UNKNOWN", "VERSION", "MECH", "SPID", "CUID",
                                        "COOKIE",  "DONE",    "OK",   "CONT", "FAIL"};
    static const struct {
        unsigned flag;
        const char *name;
    } props[] = {
        {XSASL_SEC_ANONYMOUS, "anonymous"},
        {XSASL_SEC_PLAINTEXT, "plaintext"},
        {XSASL_SEC_ACTIVE, "active"},
        {XSASL_SEC_DICTIONARY, "dictionary"},
        {XSASL_SEC_FORWARD_SECRECY, "forward-secrecy"},
        {XSASL_SEC_MUTUAL_AUTH, "mutual-auth"},
        {XSASL_SEC_PRIVATE, "private"},
    };
    struct xsasl_dc_reply r;
    const char *err;

    if (xsasl_dc_parse(line, len, &r, &err) < 0) {
        assert_non_null(err);
        buf_printf(out, "error: %s\n", err);
        return;
    }
    buf_puts(out, kinds[r.kind]);
    switch (r.kind) {
    case XSASL_DC_VERSION:
        buf_printf(out, " major=%lu minor=%lu", r.major, r.minor);
        break;
    case XSASL_DC_MECH:
        buf_puts(out, " name=");
        golden_render(out, r.mech, strlen(r.mech));
        buf_puts(out, " props=");
        for (size_t i = 0, n = 0; i < POSTA_ARRAY_LEN(props); i++)
            if (r.props & props[i].flag)
                buf_printf(out, "%s%s", n++ ? "," : "", props[i].name);
        break;
    case XSASL_DC_OK:
    case XSASL_DC_CONT:
    case XSASL_DC_FAIL:
        buf_printf(out, " id=%lu user=", r.id);
        if (r.user)
            golden_render(out, r.user, strlen(r.user));
        else
            buf_puts(out, "-");
        buf_printf(out, " data=%s reason=", r.data ? (*r.data ? r.data : "(empty)") : "-");
        if (r.reason)
            golden_render(out, r.reason, strlen(r.reason));
        else
            buf_puts(out, "-");
        buf_printf(out, " temp=%s", r.temp ? "yes" : "no");
        break;
    default:
        break;
    }
    buf_putc(out, '\n');
    xsasl_dc_free(&r);
}

/* render_transcript - golden_render_fn: every line of a server transcript */
static void render_transcript(const char *file, char *text, size_t len, struct buf *out)
{
    size_t off = 0, n;
    const char *nl;

    while (off < len) {
        nl = memchr(text + off, '\n', len - off);
        n = nl ? (size_t)(nl - (text + off)) : len - off;
        render_reply(text + off, n, out);
        off += n + 1;
    }
}

/* test_golden_replies - the reply parser against tests/golden/xsasl */
static void test_golden_replies(void **state)
{
    golden_run_dir(GOLDEN_SUBDIR, ".in", GOLDEN_MIN_CASES, render_transcript);
}

/* test_parse_limits - oversized lines and every prefix of a long line */
static void test_parse_limits(void **state)
{
    struct xsasl_dc_reply r;
    const char *err;
    size_t big = XSASL_DC_LINE_MAX + 1;
    char *line = xmalloc(big + 1);

    memset(line, 'A', big);
    memcpy(line, "CONT\t1\t", 7);
    assert_int_equal(xsasl_dc_parse(line, big, &r, &err), -1);
    assert_string_equal(err, "line too long");
    /* Base64 of a length that is not a multiple of 4 is refused. */
    assert_int_equal(xsasl_dc_parse(line, 7 + 4 * 100 + 1, &r, &err), -1);
    assert_int_equal(xsasl_dc_parse(line, 7 + 4 * 100, &r, &err), 0);
    assert_int_equal(r.kind, XSASL_DC_CONT);
    assert_int_equal(strlen(r.data), 400);
    xsasl_dc_free(&r);
    free(line);
}

/* ---- fake Dovecot auth server ------------------------------------------- */

struct fake_req {
    unsigned long id;
    int step; /* LOGIN: 1 asked for user, 2 asked for password */
    char user[64];
};

/* fake_send - write a whole string */
static void fake_send(int fd, const char *s)
{
    size_t n = strlen(s);
    ssize_t w;

    while (n > 0) {
        w = write(fd, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

/* fake_field - the value of "key=" in a TAB-separated line, or NULL (static) */
static const char *fake_field(const char *line, const char *key)
{
    static char val[FAKE_LINE_MAX];
    size_t kl = strlen(key);
    const char *p = line;

    while ((p = strchr(p, '\t')) != NULL) {
        p++;
        if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
            size_t n = strcspn(p + kl + 1, "\t\n");
            snprintf(val, sizeof(val), "%.*s", (int)n, p + kl + 1);
            return val;
        }
    }
    return NULL;
}

/* fake_check_pw - answer for user/password; false to drop the connection */
static bool fake_answer(int fd, unsigned long id, const char *user, const char *pw,
                        const char *authline)
{
    char out[FAKE_LINE_MAX + 64];

    if (strcmp(user, "drop") == 0)
        return false;
    if (strcmp(user, "slow") == 0)
        return true;
    if (strcmp(user, "echo") == 0) {
        /* The request as seen, tabs shown as '|', for the test to check. */
        char seen[FAKE_LINE_MAX];
        snprintf(seen, sizeof(seen), "%s", authline);
        for (char *p = seen; *p; p++)
            if (*p == '\t')
                *p = '|';
        snprintf(out, sizeof(out), "FAIL\t%lu\treason=%s\n", id, seen);
    } else if (strcmp(user, "temp") == 0) {
        snprintf(out, sizeof(out), "FAIL\t%lu\ttemp\treason=backend down\n", id);
    } else if (strcmp(user, "esc") == 0) {
        snprintf(out, sizeof(out), "OK\t%lu\tuser=a\001tb\n", id);
    } else if (strcmp(user, "alice") == 0 && strcmp(pw, PASSWORD) == 0) {
        snprintf(out, sizeof(out), "OK\t%lu\tuser=alice\n", id);
    } else {
        snprintf(out, sizeof(out), "FAIL\t%lu\tuser=%s\n", id, user);
    }
    fake_send(fd, out);
    return true;
}

/* fake_line - one client line; false to drop the connection */
static bool fake_line(int fd, char *line, struct fake_req *reqs)
{
    char out[FAKE_LINE_MAX];
    unsigned long id;
    struct buf raw = BUF_INIT;
    const char *resp, *user, *pw;
    struct fake_req *q = NULL;
    bool keep = true;

    if (strncmp(line, "VERSION\t1\t", 10) == 0) {
        fake_send(fd, "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\n"
                      "MECH\tCRAM-MD5\tdictionary\tactive\nMECH\tANONYMOUS\tanonymous\n"
                      "MECH\tSECRET\tprivate\nSPID\t1\nCUID\t7\nCOOKIE\tabcdef\nDONE\n");
        return true;
    }
    if (strncmp(line, "CPID\t", 5) == 0)
        return true;
    if (sscanf(line, "%*[A-Z]\t%lu", &id) != 1)
        return false;
    for (int i = 0; i < FAKE_REQS; i++)
        if (reqs[i].id == id || (q == NULL && reqs[i].id == 0))
            q = &reqs[i];
    if (strncmp(line, "AUTH\t", 5) == 0 && strstr(line, "\tPLAIN\t") != NULL) {
        resp = fake_field(line, "resp");
        if (resp == NULL) {
            snprintf(out, sizeof(out), "CONT\t%lu\t\n", id);
            fake_send(fd, out);
            q->id = id;
            q->step = 3;
            return true;
        }
        xsasl_base64_decode(resp, strlen(resp), &raw);
        user = raw.len > 1 ? raw.data + 1 : "";
        pw = raw.len > 1 ? user + strlen(user) + 1 : "";
        keep = fake_answer(fd, id, user, pw < raw.data + raw.len ? pw : "", line);
    } else if (strncmp(line, "AUTH\t", 5) == 0 && strstr(line, "\tLOGIN\t") != NULL) {
        memset(q, 0, sizeof(*q));
        q->id = id;
        q->step = 1;
        snprintf(out, sizeof(out), "CONT\t%lu\t%s\n", id, "VXNlcm5hbWU6");
        fake_send(fd, out);
    } else if (strncmp(line, "CONT\t", 5) == 0 && q->id == id && q->step == 1) {
        xsasl_base64_decode(strrchr(line, '\t') + 1, strlen(strrchr(line, '\t') + 1), &raw);
        snprintf(q->user, sizeof(q->user), "%s", buf_str(&raw));
        q->step = 2;
        snprintf(out, sizeof(out), "CONT\t%lu\t%s\n", id, "UGFzc3dvcmQ6");
        fake_send(fd, out);
    } else if (strncmp(line, "CONT\t", 5) == 0 && q->id == id && q->step == 2) {
        xsasl_base64_decode(strrchr(line, '\t') + 1, strlen(strrchr(line, '\t') + 1), &raw);
        keep = fake_answer(fd, id, q->user, buf_str(&raw), line);
        q->id = 0;
    } else {
        snprintf(out, sizeof(out), "FAIL\t%lu\treason=unexpected\n", id);
        fake_send(fd, out);
    }
    buf_free(&raw);
    return keep;
}

/* fake_serve - the child: accept connections one after the other */
static void fake_serve(int lfd, int ready)
{
    char in[FAKE_LINE_MAX];
    struct fake_req reqs[FAKE_REQS];
    size_t have;
    ssize_t n;
    char *nl;
    int fd;

    (void)!write(ready, "x", 1);
    close(ready);
    for (;;) {
        fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            _exit(1);
        memset(reqs, 0, sizeof(reqs));
        have = 0;
        for (bool up = true; up;) {
            n = read(fd, in + have, sizeof(in) - 1 - have);
            if (n <= 0)
                break;
            have += (size_t)n;
            in[have] = 0;
            while (up && (nl = strchr(in, '\n')) != NULL) {
                *nl = 0;
                up = fake_line(fd, in, reqs);
                memmove(in, nl + 1, have - (size_t)(nl + 1 - in) + 1);
                have -= (size_t)(nl + 1 - in);
            }
        }
        close(fd);
    }
}

struct fake {
    char *dir;
    char *sock;
    pid_t pid;
};

/* fake_start - fork the fake server on DIR/auth */
static void fake_start(struct fake *f)
{
    struct sockaddr_un sun;
    int lfd, pfd[2];
    char c;

    f->dir = make_tempdir("fake");
    f->sock = xasprintf("%s/auth", f->dir);
    lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(lfd >= 0);
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", f->sock);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    assert_int_equal(listen(lfd, 8), 0);
    assert_int_equal(pipe(pfd), 0);
    f->pid = fork();
    assert_true(f->pid >= 0);
    if (f->pid == 0) {
        close(pfd[0]);
        fake_serve(lfd, pfd[1]);
        _exit(0);
    }
    child_pid = f->pid;
    child_dir = xstrdup(f->dir);
    close(pfd[1]);
    close(lfd);
    assert_int_equal(read(pfd[0], &c, 1), 1);
    close(pfd[0]);
}

/* fake_stop - end the child by its PID */
static void fake_stop(struct fake *f)
{
    child_stop(f->pid);
    remove_tree(f->dir);
    free(f->dir);
    free(f->sock);
}

/* test_dovecot_fake - the Dovecot client against the fake server */
static void test_dovecot_fake(void **state)
{
    struct fake f;
    struct xsasl_server *srv;
    struct xsasl_sess *s, *s2;
    struct result r, r2;
    char *err = NULL;

    event_init();
    xsasl_dovecot_set_timeouts(2000, 400, 100);
    fake_start(&f);
    /* A relative path is taken under queue_dir. */
    srv = xsasl_server_open("dovecot", "auth", f.dir, "smtp", &err);
    assert_non_null(srv);
    s = xsasl_sess_new(srv, "noanonymous", false, "127.0.0.1;587", "192.0.2.1;40000",
                       "192.0.2.1");
    assert_string_equal(xsasl_mechs(s), "PLAIN LOGIN CRAM-MD5");
    xsasl_sess_free(s);
    s = xsasl_sess_new(srv, "noanonymous, noplaintext", false, "127.0.0.1;587",
                       "192.0.2.1;40000", "192.0.2.1");
    assert_string_equal(xsasl_mechs(s), "CRAM-MD5");
    /* A mechanism that is not offered now. */
    call_start(s, "PLAIN", plain_resp("alice", PASSWORD), &r);
    assert_int_equal(r.st, XSASL_FAIL);
    assert_string_equal(r.data, "mechanism not available");
    xsasl_sess_free(s);

    s = xsasl_sess_new(srv, "noanonymous", true, "127.0.0.1;587", "192.0.2.1;40000",
                       "192.0.2.1");
    /* PLAIN: right, wrong, the request as Dovecot sees it. */
    call_start(s, "PLAIN", plain_resp("alice", PASSWORD), &r);
    assert_int_equal(r.st, XSASL_OK);
    assert_string_equal(r.data, "alice");
    call_start(s, "plain", plain_resp("alice", WRONG), &r);
    assert_int_equal(r.st, XSASL_FAIL);
    assert_string_equal(r.data, "authentication failure");
    call_start(s, "PLAIN", plain_resp("echo", "x"), &r);
    assert_int_equal(r.st, XSASL_FAIL);
    assert_non_null(strstr(r.data, "|PLAIN|service=smtp|nologin|lip=127.0.0.1|rip=192.0.2.1"
                                   "|lport=587|rport=40000|secured|resp="));
    call_start(s, "PLAIN", plain_resp("temp", "x"), &r);
    assert_int_equal(r.st, XSASL_TEMP);
    assert_string_equal(r.data, "backend down");
    /* Control characters in a user name are refused. */
    call_start(s, "PLAIN", plain_resp("esc", "x"), &r);
    assert_int_equal(r.st, XSASL_FAIL);
    /* Malformed client data never reaches the server. */
    call_start(s, "PLAIN", "not base64", &r);
    assert_int_equal(r.st, XSASL_FAIL);
    /* PLAIN without an initial response: an empty challenge first. */
    call_start(s, "PLAIN", NULL, &r);
    assert_int_equal(r.st, XSASL_CONTINUE);
    assert_string_equal(r.data, "");

    /* LOGIN through CONT, on a second session sharing the connection. */
    s2 = xsasl_sess_new(srv, "noanonymous", false, "127.0.0.1;587", "192.0.2.2;40001",
                        "192.0.2.2");
    call_start(s2, "LOGIN", NULL, &r);
    assert_int_equal(r.st, XSASL_CONTINUE);
    assert_string_equal(b64_text(r.data), "Username:");
    call_step(s2, b64("alice", 5), &r);
    assert_int_equal(r.st, XSASL_CONTINUE);
    assert_string_equal(b64_text(r.data), "Password:");
    call_step(s2, b64(PASSWORD, strlen(PASSWORD)), &r);
    assert_int_equal(r.st, XSASL_OK);
    assert_string_equal(r.data, "alice");
    /* A step with no exchange in progress. */
    call_step(s2, "", &r);
    assert_int_equal(r.st, XSASL_FAIL);

    /* A request the server never answers times out; the link stays. */
    call_start(s2, "PLAIN", plain_resp("slow", "x"), &r);
    assert_int_equal(r.st, XSASL_TEMP);

    /* The server drops the connection mid-request: XSASL_TEMP ... */
    call_start(s2, "PLAIN", plain_resp("drop", "x"), &r);
    assert_int_equal(r.st, XSASL_TEMP);
    assert_string_equal(r.data, "Connection lost to authentication server");
    /* ... s was waiting for its client's next response on the old link. */
    call_step(s, plain_resp("alice", PASSWORD), &r);
    assert_int_equal(r.st, XSASL_TEMP);
    /* ... and the next request reconnects. */
    call_start(s2, "LOGIN", NULL, &r);
    assert_int_equal(r.st, XSASL_CONTINUE);
    call_step(s2, b64("alice", 5), &r);
    call_step(s2, b64(WRONG, strlen(WRONG)), &r);
    assert_int_equal(r.st, XSASL_FAIL);
    call_start(s, "PLAIN", plain_resp("alice", PASSWORD), &r);
    assert_int_equal(r.st, XSASL_OK);

    /* Two sessions in flight at once. */
    memset(&r, 0, sizeof(r));
    memset(&r2, 0, sizeof(r2));
    xsasl_start(s, "PLAIN", plain_resp("alice", PASSWORD), collect, &r);
    xsasl_start(s2, "PLAIN", plain_resp("alice", WRONG), collect, &r2);
    wait_result(&r);
    wait_result(&r2);
    assert_int_equal(r.st, XSASL_OK);
    assert_int_equal(r2.st, XSASL_FAIL);

    /* Freeing a session cancels its callback. */
    memset(&r, 0, sizeof(r));
    xsasl_start(s, "PLAIN", plain_resp("alice", PASSWORD), collect, &r);
    xsasl_sess_free(s);
    run_loop(200);
    assert_int_equal(r.calls, 0);
    memset(&r, 0, sizeof(r));
    xsasl_start(s2, "PLAIN", "###", collect, &r);
    xsasl_sess_free(s2);
    run_loop(100);
    assert_int_equal(r.calls, 0);

    /* The server goes away: the mechanism list stays cached, AUTH is TEMP. */
    fake_stop(&f);
    run_loop(100);
    s = xsasl_sess_new(srv, "noanonymous", false, "127.0.0.1;587", "192.0.2.1;40000",
                       "192.0.2.1");
    assert_string_equal(xsasl_mechs(s), "PLAIN LOGIN CRAM-MD5");
    call_start(s, "PLAIN", plain_resp("alice", PASSWORD), &r);
    assert_int_equal(r.st, XSASL_TEMP);
    xsasl_sess_free(s);
    xsasl_server_close(srv);
}

/* test_dovecot_absent - no server at all: empty list, TEMP, no long wait */
static void test_dovecot_absent(void **state)
{
    struct xsasl_server *srv;
    struct xsasl_sess *s;
    struct result r;
    char *err = NULL;
    uint64_t t0 = now_ms();

    event_init();
    srv =
        xsasl_server_open("dovecot", "/tmp/posta-xsasl-nonexistent/auth", "", "smtp", &err);
    assert_non_null(srv);
    s = xsasl_sess_new(srv, "noanonymous", false, "127.0.0.1;25", "192.0.2.1;1",
                       "192.0.2.1");
    assert_string_equal(xsasl_mechs(s), "");
    call_start(s, "PLAIN", plain_resp("alice", PASSWORD), &r);
    assert_int_equal(r.st, XSASL_FAIL); /* not offered */
    assert_true(now_ms() - t0 < 2000);
    xsasl_sess_free(s);
    xsasl_server_close(srv);
    assert_null(xsasl_server_open("pam", "x", "", "smtp", &err));
    assert_non_null(strstr(err, "pam"));
    free(err);
}

/* test_dovecot_hung - a server that never answers: bounded waits, then none */
static void test_dovecot_hung(void **state)
{
    struct sockaddr_un sun;
    struct xsasl_server *srv;
    struct xsasl_sess *s;
    struct result r;
    char *dir = make_tempdir("hung"), *err = NULL;
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    uint64_t t0;

    event_init();
    xsasl_dovecot_set_timeouts(300, 300, 60000);
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/auth", dir);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    assert_int_equal(listen(lfd, 8), 0); /* never accepted, never answered */
    t0 = now_ms();
    srv = xsasl_server_open("dovecot", sun.sun_path, "", "smtp", &err);
    assert_non_null(srv);
    assert_true(now_ms() - t0 >= 250 && now_ms() - t0 < 2000);
    /* Within the retry interval: no more waiting, and no mechanisms to offer. */
    t0 = now_ms();
    s = xsasl_sess_new(srv, "noanonymous", false, "127.0.0.1;25", "192.0.2.1;1",
                       "192.0.2.1");
    assert_string_equal(xsasl_mechs(s), "");
    assert_true(now_ms() - t0 < 200);
    /* AUTH with a mechanism never learned is refused at once. */
    call_start(s, "PLAIN", plain_resp("alice", PASSWORD), &r);
    assert_int_equal(r.st, XSASL_FAIL); /* PLAIN was never offered */
    xsasl_sess_free(s);
    xsasl_server_close(srv);
    close(lfd);
    remove_tree(dir);
    free(dir);
}

/* ---- live backends ------------------------------------------------------ */

/*
 * fresh - replace s by a new TLS session from another client address:
 * Dovecot delays answers to an address after failures (auth penalty).
 */
static struct xsasl_sess *fresh(struct xsasl_server *srv, struct xsasl_sess *s)
{
    static unsigned n;
    char rip[INET6_ADDRSTRLEN + 8], addr[INET6_ADDRSTRLEN];

    xsasl_sess_free(s);
    n++;
    snprintf(addr, sizeof(addr), "127.0.%u.%u", (n >> 8) & 0xffu, (n & 0xffu) + 1);
    snprintf(rip, sizeof(rip), "%s;40000", addr);
    return xsasl_sess_new(srv, "noanonymous", true, "127.0.0.1;587", rip, addr);
}

/* exercise - PLAIN, LOGIN, CRAM-MD5 right and wrong; user is the login name */
static void exercise(struct xsasl_server *srv, const char *user, bool cram)
{
    struct xsasl_sess *s;
    struct result r;
    const char *mechs;

    s = fresh(srv, NULL);
    mechs = xsasl_mechs(s);
    print_message("mechanisms: %s\n", mechs);
    assert_true(xsasl_mech_in_list(mechs, "PLAIN"));
    assert_true(xsasl_mech_in_list(mechs, "LOGIN"));
    assert_int_equal(xsasl_mech_in_list(mechs, "CRAM-MD5"), cram);

    call_start(s, "PLAIN", plain_resp(user, PASSWORD), &r);
    assert_int_equal(r.st, XSASL_OK);
    assert_int_equal(strncmp(r.data, "alice", 5), 0);
    s = fresh(srv, s);
    call_start(s, "PLAIN", plain_resp(user, WRONG), &r);
    assert_int_equal(r.st, XSASL_FAIL);
    print_message("wrong PLAIN: %s\n", r.data);
    s = fresh(srv, s);
    call_start(s, "PLAIN", plain_resp("nobody-here", WRONG), &r);
    assert_int_equal(r.st, XSASL_FAIL);

    s = fresh(srv, s);
    call_start(s, "LOGIN", NULL, &r);
    assert_int_equal(r.st, XSASL_CONTINUE);
    call_step(s, b64(user, strlen(user)), &r);
    assert_int_equal(r.st, XSASL_CONTINUE);
    call_step(s, b64(PASSWORD, strlen(PASSWORD)), &r);
    assert_int_equal(r.st, XSASL_OK);
    assert_int_equal(strncmp(r.data, "alice", 5), 0);
    s = fresh(srv, s);
    call_start(s, "LOGIN", NULL, &r);
    call_step(s, b64(user, strlen(user)), &r);
    call_step(s, b64(WRONG, strlen(WRONG)), &r);
    assert_int_equal(r.st, XSASL_FAIL);

    if (cram) {
        s = fresh(srv, s);
        call_start(s, "CRAM-MD5", NULL, &r);
        assert_int_equal(r.st, XSASL_CONTINUE);
        call_step(s, cram_response(user, PASSWORD, r.data), &r);
        assert_int_equal(r.st, XSASL_OK);
        assert_int_equal(strncmp(r.data, "alice", 5), 0);
        s = fresh(srv, s);
        call_start(s, "CRAM-MD5", NULL, &r);
        assert_int_equal(r.st, XSASL_CONTINUE);
        call_step(s, cram_response(user, WRONG, r.data), &r);
        assert_int_equal(r.st, XSASL_FAIL);
    }
    xsasl_sess_free(s);

    /* Without TLS and with noplaintext: no PLAIN or LOGIN. */
    s = xsasl_sess_new(srv, "noanonymous, noplaintext", false, "127.0.0.1;587",
                       "127.0.0.2;40000", "127.0.0.2");
    mechs = xsasl_mechs(s);
    assert_false(xsasl_mech_in_list(mechs, "PLAIN"));
    assert_false(xsasl_mech_in_list(mechs, "LOGIN"));
    call_start(s, "PLAIN", plain_resp(user, PASSWORD), &r);
    assert_int_equal(r.st, XSASL_FAIL);
    xsasl_sess_free(s);
}

/* test_cyrus_live - libsasl2 with a sasldb made by saslpasswd2 */
static void test_cyrus_live(void **state)
{
    char *dir, *cmd, *conf, *text;
    struct xsasl_server *srv;
    char *err = NULL;
    int rc;

    if (access(SASLPASSWD2, X_OK) != 0)
        skip();
    event_init();
    dir = make_tempdir("cyrus");
    child_dir = xstrdup(dir);
    cmd = xasprintf("echo '%s' | " SASLPASSWD2 " -p -f %s/sasldb2 -c -u example.test alice",
                    PASSWORD, dir);
    rc = system(cmd);
    free(cmd);
    assert_int_equal(rc, 0);
    conf = xasprintf("%s/smtpd.conf", dir);
    text = xasprintf(
        "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: %s/sasldb2\n"
        "mech_list: PLAIN LOGIN CRAM-MD5 DIGEST-MD5 SCRAM-SHA-1 SCRAM-SHA-256\n",
        dir);
    write_file(conf, text, FILE_MODE);
    free(text);
    free(conf);
    xsasl_configure(dir, "example.test");
    srv = xsasl_server_open("cyrus", "smtpd", "", "smtp", &err);
    if (srv == NULL)
        fail_msg("cyrus: %s", err);
    exercise(srv, "alice", true);
    xsasl_server_close(srv);
    xsasl_configure(NULL, NULL);
    remove_tree(dir);
    free(dir);
}

/* test_dovecot_live - a real Dovecot's auth socket */
static void test_dovecot_live(void **state)
{
    char *dir, *path, *text, *sock, *logtext;
    struct xsasl_server *srv;
    char *err = NULL;
    pid_t pid;
    uint64_t end;
    size_t loglen;
    struct stat st;

    if (access(DOVECOT, X_OK) != 0)
        skip();
    event_init();
    xsasl_dovecot_set_timeouts(5000, 30000, 1000);
    dir = make_tempdir("dovecot");
    for (int i = 0; i < 2; i++) {
        path = xasprintf("%s/%s", dir, i ? "state" : "run");
        assert_int_equal(mkdir(path, DIR_MODE), 0);
        free(path);
    }
    path = xasprintf("%s/passwd", dir);
    text = xasprintf("alice:{PLAIN}%s\n", PASSWORD);
    write_file(path, text, FILE_MODE);
    free(text);
    free(path);
    sock = xasprintf("%s/auth", dir);
    path = xasprintf("%s/dovecot.conf", dir);
    text = xasprintf("protocols = none\nbase_dir = %s/run\nstate_dir = %s/state\n"
                     "log_path = %s/dovecot.log\nssl = no\ndisable_plaintext_auth = no\n"
                     "auth_mechanisms = plain login cram-md5\nauth_failure_delay = 0\n"
                     "passdb {\n  driver = passwd-file\n"
                     "  args = scheme=PLAIN username_format=%%u %s/passwd\n}\n"
                     "userdb {\n  driver = static\n"
                     "  args = uid=65534 gid=65534 home=/nonexistent\n}\n"
                     "service auth {\n  unix_listener %s {\n    mode = 0666\n  }\n}\n",
                     dir, dir, dir, dir, sock);
    write_file(path, text, FILE_MODE);
    free(text);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        execl(DOVECOT, "dovecot", "-F", "-c", path, (char *)NULL);
        _exit(127);
    }
    child_pid = pid;
    child_dir = xstrdup(dir);
    end = now_ms() + DOVECOT_START_MS;
    while (stat(sock, &st) != 0 && now_ms() < end && waitpid(pid, NULL, WNOHANG) == 0)
        usleep(LOOP_SLICE_MS * 1000);
    if (stat(sock, &st) != 0) {
        char *logpath = xasprintf("%s/dovecot.log", dir);
        logtext = golden_read_file(logpath, &loglen);
        child_stop(pid);
        fail_msg("dovecot did not create %s:\n%s", sock, logtext ? logtext : "(no log)");
    }
    srv = xsasl_server_open("dovecot", sock, "", "smtp", &err);
    assert_non_null(srv);
    exercise(srv, "alice", true);
    xsasl_server_close(srv);
    child_stop(pid);
    free(path);
    free(sock);
    remove_tree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_auth_line),
        cmocka_unit_test(test_golden_replies),
        cmocka_unit_test(test_parse_limits),
        cmocka_unit_test_teardown(test_dovecot_fake, stop_child),
        cmocka_unit_test(test_dovecot_absent),
        cmocka_unit_test(test_dovecot_hung),
        cmocka_unit_test_teardown(test_cyrus_live, stop_child),
        cmocka_unit_test_teardown(test_dovecot_live, stop_child),
    };

    signal(SIGPIPE, SIG_IGN);
    log_open("test_xsasl", LOG_SINK_STDERR, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
