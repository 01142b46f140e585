/*
 * test_policy_client.c - unit tests for smtpd/policy_client.c: the
 * check_policy_service argument parser, the request encoder and the
 * reply parser, and the runtime (pool, queue, retries, default action)
 * against a scripted server inside the test's own event loop
 *
 * Golden files in tests/golden/policy_client/:
 *   NAME.spec   a restriction list's text after "check_policy_service"
 *               (its first element is the argument, a braced group
 *               arrives without braces); NAME.out the parsed settings or
 *               the error
 *   NAME.attrs  request attributes, "name<TAB>value" a line (value with
 *               golden escapes, "-" alone: NULL); NAME.out the request
 *   NAME.reply  the bytes a server sent; NAME.out what the parser says
 */
#include "util/sys.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/inet.h"

#include "../../smtpd/policy_client.c"

#include "golden.h"

#define GOLDEN_SUBDIR "policy_client"
#define GOLDEN_MIN_SPEC 6
#define GOLDEN_MIN_ATTRS 2
#define GOLDEN_MIN_REPLY 8
#define LOOP_STEP_MS 50
#define LOOP_MAX_STEPS 200

/* test_defaults - Postfix's defaults, as main.cf would give them */
static void test_defaults(struct pol_spec *d)
{
    memset(d, 0, sizeof(*d));
    d->timeout_ms = 100000;
    d->max_idle_ms = 300000;
    d->max_ttl_ms = 1000000;
    d->retry_delay_ms = 1000;
    d->try_limit = 2;
    d->request_limit = 0;
    d->default_action = "451 4.3.5 Server configuration problem";
    d->policy_context = "";
}

/* render_spec - the parsed settings of the first element, or the error */
static void render_spec(const char *file, char *text, size_t len, struct buf *out)
{
    struct pol_spec d, s;
    size_t n;
    char **words;
    char *err = NULL;

    (void)file;
    text[strcspn(text, "\n")] = 0;
    (void)len;
    test_defaults(&d);
    words = cfg_split_list(text, &n);
    if (n == 0) {
        (void)buf_puts(out, "empty\n");
    } else if (!pol_spec_parse(words[0], &d, &s, &err)) {
        (void)buf_printf(out, "error: %s\n", err);
        free(err);
    } else {
        (void)buf_printf(out, "endpoint=%s\n", s.endpoint);
        if (s.is_unix)
            (void)buf_printf(out, "unix=%s\n", s.path);
        else
            (void)buf_printf(out, "host=%s port=%s\n", s.host, s.port);
        (void)buf_printf(out, "timeout=%u max_idle=%u max_ttl=%u retry_delay=%u\n",
                         s.timeout_ms, s.max_idle_ms, s.max_ttl_ms, s.retry_delay_ms);
        (void)buf_printf(out, "try_limit=%u request_limit=%u\n", s.try_limit,
                         s.request_limit);
        (void)buf_printf(out, "default_action=%s\npolicy_context=%s\n", s.default_action,
                         s.policy_context);
        pol_spec_free(&s);
    }
    for (size_t i = 1; i < n; i++)
        (void)buf_printf(out, "next=%s\n", words[i]);
    cfg_list_free(words, n);
}

/* render_attrs - the request encoded from "name<TAB>value" lines */
static void render_attrs(const char *file, char *text, size_t len, struct buf *out)
{
    struct pol_attr attrs[64] = {{NULL, NULL}};
    struct buf values[64];
    size_t n = 0;
    char *line = text, *next;

    (void)file;
    (void)len;
    for (; line && *line && n < 64; line = next) {
        char *tab;

        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        tab = strchr(line, '\t');
        assert_non_null(tab);
        *tab = 0;
        memset(&values[n], 0, sizeof(values[n]));
        attrs[n].name = line;
        if (strcmp(tab + 1, "-") == 0) {
            attrs[n].value = NULL;
        } else {
            golden_expand(tab + 1, strlen(tab + 1), true, &values[n]);
            attrs[n].value = buf_str(&values[n]);
        }
        n++;
    }
    pol_request_encode(out, attrs, n);
    for (size_t i = 0; i < n; i++)
        buf_free(&values[i]);
}

/* render_reply - what the reply parser says about a server's bytes */
static void render_reply(const char *file, char *text, size_t len, struct buf *out)
{
    static const char *const names[] = {"MORE", "DONE", "ERROR"};
    struct buf action = BUF_INIT;
    const char *why;
    size_t used;
    enum pol_reply_status st = pol_reply_parse(text, len, &action, &used, &why);

    (void)file;
    (void)buf_printf(out, "%s\n", names[st]);
    if (st == POL_REPLY_DONE)
        (void)buf_printf(out, "action=%s\nused=%zu of %zu\n", buf_str(&action), used, len);
    if (st == POL_REPLY_ERROR)
        (void)buf_printf(out, "why=%s\n", why);
    buf_free(&action);
}

/* test_golden_spec - the argument parser */
static void test_golden_spec(void **state)
{
    (void)state;
    golden_run_dir(GOLDEN_SUBDIR, ".spec", GOLDEN_MIN_SPEC, render_spec);
}

/* test_golden_attrs - the request encoder */
static void test_golden_attrs(void **state)
{
    (void)state;
    golden_run_dir(GOLDEN_SUBDIR, ".attrs", GOLDEN_MIN_ATTRS, render_attrs);
}

/* test_golden_reply - the reply parser */
static void test_golden_reply(void **state)
{
    (void)state;
    golden_run_dir(GOLDEN_SUBDIR, ".reply", GOLDEN_MIN_REPLY, render_reply);
}

/* test_reply_split - a reply that arrives a byte at a time is MORE until its empty line */
static void test_reply_split(void **state)
{
    const char *r = "foo=bar\naction=DUNNO\n\n";
    struct buf action = BUF_INIT;
    const char *why;
    size_t used, len = strlen(r);

    (void)state;
    for (size_t i = 0; i < len; i++)
        assert_int_equal(pol_reply_parse(r, i, &action, &used, &why), POL_REPLY_MORE);
    assert_int_equal(pol_reply_parse(r, len, &action, &used, &why), POL_REPLY_DONE);
    assert_string_equal(buf_str(&action), "DUNNO");
    assert_int_equal(used, len);
    buf_free(&action);
}

/* test_reply_bound - no empty line within POL_REPLY_MAX bytes is an error */
static void test_reply_bound(void **state)
{
    struct buf big = BUF_INIT, action = BUF_INIT;
    const char *why;
    size_t used;

    (void)state;
    (void)buf_puts(&big, "action=");
    while (big.len <= POL_REPLY_MAX)
        (void)buf_putc(&big, 'x');
    assert_int_equal(pol_reply_parse(big.data, big.len, &action, &used, &why), POL_REPLY_ERROR);
    assert_string_equal(why, "reply too long");
    buf_free(&big);
    buf_free(&action);
}

/* ---- the runtime against a scripted server in this process ---- */

enum srv_mode { SRV_ANSWER, SRV_CLOSE_FIRST, SRV_GARBAGE, SRV_SILENT };

static struct {
    int lfd;
    enum srv_mode mode;
    unsigned accepted, requests;
    int fds[8];
    struct buf in[8];
    size_t nfds;
} srv;

static struct {
    unsigned done;
    char last[128];
} got;

/* srv_conn - a request arrived on one of the server's connections */
static void srv_conn(int fd, unsigned events, void *ctx)
{
    size_t k = (size_t)(uintptr_t)ctx;
    char chunk[512];
    ssize_t n = read(fd, chunk, sizeof(chunk));

    (void)events;
    if (n <= 0) {
        event_remove(fd);
        close(fd);
        srv.fds[k] = -1;
        return;
    }
    (void)buf_append(&srv.in[k], chunk, (size_t)n);
    while (strstr(buf_str(&srv.in[k]), "\n\n") != NULL) {
        const char *end = strstr(buf_str(&srv.in[k]), "\n\n");
        const char *answer = "action=DUNNO\n\n";

        buf_consume(&srv.in[k], (size_t)(end - srv.in[k].data) + 2);
        srv.requests++;
        if (srv.mode == SRV_SILENT)
            continue;
        if (srv.mode == SRV_GARBAGE)
            answer = "no equals sign here\n\n";
        if (srv.mode == SRV_CLOSE_FIRST && srv.requests == 1) {
            event_remove(fd);
            close(fd);
            srv.fds[k] = -1;
            return;
        }
        assert_true(write(fd, answer, strlen(answer)) == (ssize_t)strlen(answer));
    }
}

/* srv_accept - a new connection to the scripted server */
static void srv_accept(int fd, unsigned events, void *ctx)
{
    int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

    (void)events;
    (void)ctx;
    if (c < 0)
        return;
    assert_true(srv.nfds < 8);
    srv.accepted++;
    srv.fds[srv.nfds] = c;
    event_add(c, EVENT_READ, srv_conn, (void *)(uintptr_t)srv.nfds, false);
    srv.nfds++;
}

/* srv_start - listen on 127.0.0.1, any port; the port */
static int srv_start(enum srv_mode mode)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    char *err = NULL;

    memset(&srv, 0, sizeof(srv));
    srv.mode = mode;
    srv.lfd = inet_listen("127.0.0.1", "0", AF_INET, 16, &err);
    assert_true(srv.lfd >= 0);
    assert_int_equal(getsockname(srv.lfd, (struct sockaddr *)&sin, &sl), 0);
    event_add(srv.lfd, EVENT_READ, srv_accept, NULL, false);
    return ntohs(sin.sin_port);
}

/* srv_stop - close the server and its connections */
static void srv_stop(void)
{
    for (size_t i = 0; i < srv.nfds; i++) {
        if (srv.fds[i] >= 0) {
            event_remove(srv.fds[i]);
            close(srv.fds[i]);
        }
        buf_free(&srv.in[i]);
    }
    event_remove(srv.lfd);
    close(srv.lfd);
}

/* done_cb - a request's answer */
static void done_cb(void *ctx, const char *action)
{
    (void)ctx;
    got.done++;
    snprintf(got.last, sizeof(got.last), "%s", action);
}

/* run_until - run the loop until want answers came (bounded) */
static void run_until(unsigned want)
{
    for (int i = 0; i < LOOP_MAX_STEPS && got.done < want; i++)
        event_run_once(LOOP_STEP_MS);
    assert_int_equal(got.done, want);
}

/* make_service - a service on 127.0.0.1:port with short times */
static struct pol_service *make_service(int port, const char *extra)
{
    struct pol_spec d, s;
    char *arg = xasprintf("inet:127.0.0.1:%d%s", port, extra);
    char *err = NULL;
    struct pol_service *svc;

    test_defaults(&d);
    d.retry_delay_ms = 1000;
    assert_true(pol_spec_parse(arg, &d, &s, &err));
    svc = pol_service_get(arg, &s);
    free(arg);
    return svc;
}

/* test_runtime_reuse - many requests share the pool; none is answered inside pol_request */
static void test_runtime_reuse(void **state)
{
    struct buf req = BUF_INIT;
    struct pol_service *svc;
    unsigned long opened;
    size_t open_now;

    (void)state;
    event_init();
    svc = make_service(srv_start(SRV_ANSWER), "");
    (void)buf_puts(&req, "request=smtpd_access_policy\n\n");
    memset(&got, 0, sizeof(got));
    for (int i = 0; i < 10; i++)
        pol_request(svc, &req, done_cb, NULL);
    assert_int_equal(got.done, 0);
    run_until(10);
    assert_string_equal(got.last, "DUNNO");
    pol_client_stats(svc, &opened, &open_now);
    assert_true(opened <= POL_POOL_MAX);
    assert_int_equal(srv.requests, 10);
    /* later requests reuse the idle connections */
    pol_request(svc, &req, done_cb, NULL);
    run_until(11);
    pol_client_stats(svc, &opened, &open_now);
    assert_true(opened <= POL_POOL_MAX);
    srv_stop();
    buf_free(&req);
}

/* test_runtime_retry - a closed connection is retried once; garbage ends in default_action */
static void test_runtime_retry(void **state)
{
    struct buf req = BUF_INIT;
    struct pol_service *svc;

    (void)state;
    event_init();
    svc = make_service(srv_start(SRV_CLOSE_FIRST), ", retry_delay=1s");
    (void)buf_puts(&req, "request=smtpd_access_policy\n\n");
    memset(&got, 0, sizeof(got));
    pol_request(svc, &req, done_cb, NULL);
    run_until(1);
    assert_string_equal(got.last, "DUNNO");
    assert_int_equal(srv.accepted, 2);
    srv_stop();

    svc = make_service(srv_start(SRV_GARBAGE), ", {default_action=DEFER garbage}");
    memset(&got, 0, sizeof(got));
    pol_request(svc, &req, done_cb, NULL);
    run_until(1);
    assert_string_equal(got.last, "DEFER garbage");
    assert_int_equal(srv.requests, 2);      /* try_limit 2 */
    srv_stop();
    buf_free(&req);
}

/* test_runtime_timeout - a silent server: timeout, retry, default_action */
static void test_runtime_timeout(void **state)
{
    struct buf req = BUF_INIT;
    struct pol_service *svc;

    (void)state;
    event_init();
    svc = make_service(srv_start(SRV_SILENT), ", timeout=1, try_limit=1, default_action=DUNNO");
    (void)buf_puts(&req, "request=smtpd_access_policy\n\n");
    memset(&got, 0, sizeof(got));
    pol_request(svc, &req, done_cb, NULL);
    run_until(1);
    assert_string_equal(got.last, "DUNNO");
    assert_int_equal(srv.requests, 1);
    srv_stop();
    buf_free(&req);
}

/* test_runtime_refused - nobody listens: default_action after try_limit attempts */
static void test_runtime_refused(void **state)
{
    struct buf req = BUF_INIT;
    struct pol_service *svc;
    int port;

    (void)state;
    event_init();
    port = srv_start(SRV_ANSWER);
    srv_stop();                 /* the port is now closed */
    svc = make_service(port, ", retry_delay=1s, {default_action = 451 4.3.5 Down}");
    (void)buf_puts(&req, "request=smtpd_access_policy\n\n");
    memset(&got, 0, sizeof(got));
    pol_request(svc, &req, done_cb, NULL);
    assert_int_equal(got.done, 0);
    run_until(1);
    assert_string_equal(got.last, "451 4.3.5 Down");
    buf_free(&req);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_spec),
        cmocka_unit_test(test_golden_attrs),
        cmocka_unit_test(test_golden_reply),
        cmocka_unit_test(test_reply_split),
        cmocka_unit_test(test_reply_bound),
        cmocka_unit_test(test_runtime_reuse),
        cmocka_unit_test(test_runtime_retry),
        cmocka_unit_test(test_runtime_timeout),
        cmocka_unit_test(test_runtime_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
