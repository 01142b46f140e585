/*
 * test_local_pass.c - local's mailbox_transport/fallback_transport hand-over
 *
 * Golden file tests/golden/local_pass/split.txt, one case a line, TAB
 * separated (escapes as in golden.h; "#" and blank lines ignored):
 *
 *   VALUE  RESULT      RESULT = "T=TRANSPORT N=NEXTHOP" or "ERR why"
 *
 * Then pass_deliver against a fake agent: a child process that listens
 * on QUEUE/private/fake, checks the deliver/1 request it gets (one
 * recipient: the expanded address with the request's orig, orcpt,
 * notify and offset; transport and nexthop from the setting) and
 * answers as told: a result, a malformed reply, or nothing. Also: no
 * service ("mail transport unavailable"), local's own transport (a loop,
 * 4.3.5), per-user mailbox_transport_maps, a table that cannot be opened
 * (4.3.0 "table lookup failure"), and the duplicate filter.
 * POSTA_GOLDEN_PRINT=1 prints what the golden cases produced.
 */
#include "util/sys.h"

#include <poll.h>
#include <setjmp.h>
#include <stdio.h>
#include <cmocka.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "util/alloc.h"
#include "util/buf.h"

#include "golden.h"

#include "../../local/pass.c"
#include "../../local/result.c"

#define GOLDEN_SUBDIR "local_pass"
#define GOLDEN_FIELDS 2
#define GOLDEN_MIN_CASES 8
#define AGENT_TIMEOUT_MS 10000
#define TEST_QID "0lCd0jn99Rz8PT"     /* a well-formed queue ID */
#define TEST_OFFSET 321
#define TEST_NOTIFY 3u
#define DIR_MODE 0700

/* ---- what pass.c needs from the rest of local ---- */

struct local_conf local_conf;
static int logged;              /* local_log calls */
static char **seen;
static size_t nseen;

/* local_log - count the lines local itself would log */
void local_log(const struct lmsg *m, const struct lrcpt *r, struct dres *res)
{
    (void)m;
    (void)r;
    (void)res;
    logged++;
}

/* resolve_seen - the duplicate filter, as resolve.c keeps it */
bool resolve_seen(struct lmsg *m, const char *kind, const char *what)
{
    char *key = xasprintf("%s:%s", kind, what);

    (void)m;
    for (size_t i = 0; i < nseen; i++)
        if (strcmp(seen[i], key) == 0) {
            free(key);
            return true;
        }
    seen = xreallocarray(seen, nseen + 1, sizeof(char *));
    seen[nseen++] = key;
    return false;
}

/* forget_seen - a new request recipient */
static void forget_seen(void)
{
    for (size_t i = 0; i < nseen; i++)
        free(seen[i]);
    free(seen);
    seen = NULL;
    nseen = 0;
}

/* ---- golden: pass_split ---- */

/* test_golden - tests/golden/local_pass/split.txt */
static int check_split(struct golden_lines *g, char *line, void *ctx)
{
    struct buf value = BUF_INIT, want = BUF_INIT, got = BUF_INIT;
    char *t1 = strchr(line, '\t'), *transport = NULL, *nexthop = NULL;
    const char *err = NULL;

    (void)ctx;
    if (t1 == NULL)
        fail_msg("%s:%zu: fewer than %d fields", g->path, g->lineno, GOLDEN_FIELDS);
    golden_expand(line, (size_t)(t1 - line), true, &value);
    golden_expand(t1 + 1, strlen(t1 + 1), true, &want);
    if (pass_split(buf_str(&value), &transport, &nexthop, &err)) {
        buf_printf(&got, "T=%s N=%s", transport, nexthop);
    } else {
        assert_null(transport);
        assert_null(nexthop);
        buf_printf(&got, "ERR %s", err);
    }
    if (g->print)
        print_message("%.*s\t%s\n", (int)(t1 - line), line, buf_str(&got));
    /* golden_lines_check counts a failure itself. */
    (void)golden_lines_check(g, line, (int)(t1 - line), buf_str(&want), buf_str(&got));
    free(transport);
    free(nexthop);
    buf_free(&value);
    buf_free(&want);
    buf_free(&got);
    return 0;
}

/* test_golden - every case of split.txt */
static void test_golden(void **state)
{
    (void)state;
    golden_table_run(GOLDEN_SUBDIR, "split.txt", GOLDEN_MIN_CASES, check_split, NULL);
}

/* ---- pass_deliver against a fake agent ---- */

enum agent_mode { AGENT_OK, AGENT_GARBAGE, AGENT_CLOSE };

static char queue_dir[] = "/tmp/posta-test-pass-XXXXXX";
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static const char *want_nexthop = "unix:private/lmtp-x";

/* agent_check - the request as local must send it */
static bool agent_check(struct attr_msg *msg)
{
    struct deliver_request q;
    const char *err = NULL;
    bool ok;

    if (!deliver_request_decode(msg, &q, &err))
        return false;
    ok = q.nrcpts == 1 && strcmp(q.queue_id, TEST_QID) == 0
         && strcmp(q.queue_name, "active") == 0 && strcmp(q.transport, "fake") == 0
         && strcmp(q.nexthop, want_nexthop) == 0 && strcmp(q.sender, "s@example") == 0
         && strcmp(q.rcpts[0].address, "bob@example") == 0
         && strcmp(q.rcpts[0].orig, "team@example") == 0
         && strcmp(q.rcpts[0].orcpt, "rfc822;team@example") == 0
         && q.rcpts[0].notify == TEST_NOTIFY && q.rcpts[0].offset == TEST_OFFSET;
    deliver_request_free(&q);
    return ok;
}

/* agent_serve - the child: one connection, answered as mode says */
static void agent_serve(int lfd, enum agent_mode mode)
{
    struct buf in = BUF_INIT, out = BUF_INIT;
    struct attr_msg msg = {0};
    const char *err = NULL;
    struct pollfd pf = {.fd = lfd, .events = POLLIN};
    int fd = poll(&pf, 1, AGENT_TIMEOUT_MS) == 1 ? accept(lfd, NULL, NULL) : -1;
    struct deliver_result r = {.status = DELIVER_BOUNCED, .dsn = "5.1.1",
                               .relay = (char *)"mx[private/lmtp-x]",
                               .text = (char *)"host said: 550 5.1.1 no such user",
                               .final = (char *)"", .remote_mta = (char *)"dns; mx",
                               .diag = (char *)"smtp; 550 5.1.1 no such user"};

    if (fd < 0)
        _exit(1);
    buf_init(&in, PASS_REPLY_MAX);
    if (attr_read_fd(fd, &in, &msg, AGENT_TIMEOUT_MS, &err) != 1 || !agent_check(&msg))
        _exit(2);
    if (mode == AGENT_OK)
        deliver_reply_encode(&r, 1, &out);
    else if (mode == AGENT_GARBAGE)
        buf_puts(&out, "v=deliver/1\nrcpt_count=7\n\n");
    if (out.len > 0 && attr_write_fd(fd, &out, AGENT_TIMEOUT_MS) < 0)
        _exit(3);
    close(fd);
    _exit(0);
}

/* run_pass - pass_deliver for bob with an agent in mode (or none); the child's status */
static bool run_pass(enum pass_kind kind, const char *user, bool agent, enum agent_mode mode,
                     struct dres *res)
{
    struct deliver_rcpt rc = {.address = (char *)"team@example", .orig = (char *)"team@example",
                              .orcpt = (char *)"rfc822;team@example", .notify = TEST_NOTIFY,
                              .offset = TEST_OFFSET};
    struct deliver_request req = {.queue_name = (char *)"active", .queue_id = (char *)TEST_QID,
                                  .transport = (char *)"local", .nexthop = (char *)"host",
                                  .sender = (char *)"s@example", .envid = (char *)"",
                                  .ret = (char *)"", .encoding = (char *)"",
                                  .client_name = (char *)"", .client_address = (char *)"",
                                  .helo_name = (char *)"", .protocol = (char *)"",
                                  .rcpts = &rc, .nrcpts = 1};
    struct lmsg m = {.req = &req, .sender = "s@example"};
    struct lrcpt r = {.address = "bob@example", .orig = "team@example", .top = "team@example",
                      .rc = &rc};
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    pid_t pid = -1;
    int lfd = -1, status = 0;
    bool passed;

    if (agent) {
        lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(lfd >= 0);
        snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock_path);
        (void)unlink(sock_path);
        assert_int_equal(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
        assert_int_equal(listen(lfd, 1), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            agent_serve(lfd, mode);
        close(lfd);
    }
    memset(res, 0, sizeof(*res));
    passed = pass_deliver(&m, &r, kind, user, res);
    if (agent) {
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        (void)unlink(sock_path);
    }
    forget_seen();
    return passed;
}

/* setup - a queue folder with private/, and the settings */
static int setup(void **state)
{
    char *err = NULL;
    char *text, *dir;
    struct cfg *cfg;

    (void)state;
    assert_non_null(mkdtemp(queue_dir));
    dir = xasprintf("%s/private", queue_dir);
    assert_int_equal(mkdir(dir, DIR_MODE), 0);
    free(dir);
    snprintf(sock_path, sizeof(sock_path), "%s/private/fake", queue_dir);
    text = xasprintf("queue_directory = %s\nipc_timeout = 10s\n"
                     "mailbox_transport = fake:unix:private/lmtp-x\n"
                     "mailbox_transport_maps = inline:{ carol=nosuch:x, dave=local:x, "
                     "erin=:bad }\nfallback_transport = fake\n",
                     queue_dir);
    cfg = cfg_load_string(text, strlen(text), "test", &err);
    assert_non_null(cfg);
    free(text);
    local_conf.cfg = cfg;
    pass_init(cfg);
    return 0;
}

/* teardown - remove the queue folder */
static int teardown(void **state)
{
    char *dir = xasprintf("%s/private", queue_dir);

    (void)state;
    (void)rmdir(dir);
    (void)rmdir(queue_dir);
    free(dir);
    return 0;
}

/* test_result - the agent's result is local's, field by field; nothing logged by local */
static void test_result(void **state)
{
    struct dres res;

    (void)state;
    logged = 0;
    assert_true(run_pass(PASS_MAILBOX, "bob", true, AGENT_OK, &res));
    assert_true(res.set);
    assert_int_equal(res.status, DELIVER_BOUNCED);
    assert_string_equal(res.dsn, "5.1.1");
    assert_string_equal(res.text, "host said: 550 5.1.1 no such user");
    assert_string_equal(res.relay, "mx[private/lmtp-x]");
    assert_string_equal(res.remote_mta, "dns; mx");
    assert_string_equal(res.diag, "smtp; 550 5.1.1 no such user");
    assert_string_equal(res.final, "bob@example");
    assert_int_equal(logged, 0);
}

/* test_failures - a broken agent, a missing service: deferred 4.3.0, logged */
static void test_failures(void **state)
{
    struct dres res;

    (void)state;
    logged = 0;
    assert_true(run_pass(PASS_MAILBOX, "bob", true, AGENT_GARBAGE, &res));
    assert_int_equal(res.status, DELIVER_DEFERRED);
    assert_string_equal(res.dsn, "4.3.0");
    assert_string_equal(res.text, TEXT_FAILED);
    assert_string_equal(res.relay, "");
    assert_true(run_pass(PASS_MAILBOX, "bob", true, AGENT_CLOSE, &res));
    assert_string_equal(res.text, TEXT_FAILED);
    assert_true(run_pass(PASS_MAILBOX, "bob", false, AGENT_OK, &res));
    assert_int_equal(res.status, DELIVER_DEFERRED);
    assert_string_equal(res.dsn, "4.3.0");
    assert_string_equal(res.text, TEXT_UNAVAILABLE);
    assert_int_equal(logged, 3);
}

/* test_maps - per-user table entries win; a loop and a bad value defer 4.3.5 */
static void test_maps(void **state)
{
    struct dres res;

    (void)state;
    assert_true(run_pass(PASS_MAILBOX, "carol", false, AGENT_OK, &res));
    assert_string_equal(res.text, TEXT_UNAVAILABLE);
    assert_true(run_pass(PASS_MAILBOX, "dave", false, AGENT_OK, &res));
    assert_int_equal(res.status, DELIVER_DEFERRED);
    assert_string_equal(res.dsn, "4.3.5");
    assert_string_equal(res.text, "mail for bob@example loops back to myself");
    assert_true(run_pass(PASS_MAILBOX, "erin", false, AGENT_OK, &res));
    assert_string_equal(res.dsn, "4.3.5");
    assert_string_equal(res.text, "bad mailbox_transport value \":bad\"");
}

/* test_fallback - fallback_transport without a nexthop: the request's */
static void test_fallback(void **state)
{
    struct dres res;

    (void)state;
    want_nexthop = "host";
    assert_true(run_pass(PASS_FALLBACK, "nobody", true, AGENT_OK, &res));
    want_nexthop = "unix:private/lmtp-x";
    assert_int_equal(res.status, DELIVER_BOUNCED);
    assert_string_equal(res.relay, "mx[private/lmtp-x]");
}

/* test_duplicate - a second delivery to the same user is suppressed */
static void test_duplicate(void **state)
{
    struct deliver_request req = {.queue_id = (char *)TEST_QID, .transport = (char *)"local"};
    struct lmsg m = {.req = &req};
    struct lrcpt r = {.address = "bob@example"};
    struct dres res;

    (void)state;
    assert_false(resolve_seen(&m, "mailbox", "bob"));
    assert_true(pass_deliver(&m, &r, PASS_MAILBOX, "bob", &res));
    assert_int_equal(res.status, DELIVER_SENT);
    assert_string_equal(res.text, "duplicate delivery to bob suppressed");
    forget_seen();
}

/* test_tempfail - a table that cannot be opened defers; nothing else is tried */
static void test_tempfail(void **state)
{
    struct pass_conf *pc = &pass_confs[PASS_FALLBACK];
    struct deliver_request req = {.queue_id = (char *)TEST_QID, .transport = (char *)"local"};
    struct lmsg m = {.req = &req};
    struct lrcpt r = {.address = "x@example"};
    struct dres res;
    char *specs[1] = {xasprintf("texthash:%s/missing", queue_dir)};
    struct dict *maps[1] = {NULL};
    char **old_specs = pc->specs;
    struct dict **old_maps = pc->maps;
    size_t old_n = pc->nmaps;

    (void)state;
    pc->specs = specs;
    pc->maps = maps;
    pc->nmaps = 1;
    assert_true(pass_deliver(&m, &r, PASS_FALLBACK, "x", &res));
    assert_int_equal(res.status, DELIVER_DEFERRED);
    assert_string_equal(res.dsn, "4.3.0");
    assert_string_equal(res.text, "table lookup failure");
    pc->specs = old_specs;
    pc->maps = old_maps;
    pc->nmaps = old_n;
    free(specs[0]);
}

/* main - run the tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_result),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_maps),
        cmocka_unit_test(test_fallback),
        cmocka_unit_test(test_duplicate),
        cmocka_unit_test(test_tempfail),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
