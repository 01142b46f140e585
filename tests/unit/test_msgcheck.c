/*
 * test_msgcheck.c - golden tests for header_checks/body_checks (mail/msgcheck.h)
 *
 * Each tests/golden/msgcheck/NAME.mc holds sections, each opened by a
 * line of its own:
 *   [settings]       main.cf lines; "@T" in them is the path of table T
 *   [table T]        a regexp: table written to a temporary file
 *   [message]        the rest of the file: the content fed to msgcheck
 * NAME.out is what the test renders: the verdict, the log lines (as
 * msgcheck_log_line writes them), the warnings logged, then the content
 * that came out. The content is fed three ways (all at once, one byte at
 * a time, in pieces of 7 bytes); the renders must be equal, else the
 * test fails. A message section may use the golden escapes ({TEXT*N}
 * repeats, \xHH) when its first line is "#escaped".
 */
#include "util/sys.h"

#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "mail/config.h"
#include "mail/msgcheck.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"
#include "golden.h"

#define ORIGIN "from client.example[192.0.2.1]; from=<a@example.org> to=<b@example.net> " \
               "proto=ESMTP helo=<client.example>"
#define PIECE 7
#define MIN_CASES 12
#define ESCAPED_MARK "#escaped\n"

static char tmpdir[] = "/tmp/test_msgcheck.XXXXXX";
static char *log_path;

struct sink {
    struct buf out;
    struct buf log;
};

/* sink_out - the content msgcheck writes */
static void sink_out(void *ctx, const char *p, size_t n)
{
    struct sink *s = ctx;

    assert_int_equal(buf_append(&s->out, p, n), 0);
}

/* sink_log - one log line per event */
static void sink_log(void *ctx, const struct msgcheck_event *ev)
{
    struct sink *s = ctx;

    msgcheck_log_line(&s->log, "QID", ev, ORIGIN);
    buf_putc(&s->log, '\n');
}

/* kind_name - the verdict as a word */
static const char *kind_name(enum msgcheck_kind k)
{
    switch (k) {
    case MSGCHECK_ACCEPT:
        return "accept";
    case MSGCHECK_REJECT:
        return "reject";
    case MSGCHECK_DEFER:
        return "defer";
    case MSGCHECK_DISCARD:
        return "discard";
    }
    return "?";
}

/* run - feed msg in pieces of step bytes (0: at once); render into out */
static void run(const struct msgcheck_conf *c, const char *msg, size_t len, size_t step,
                struct buf *out)
{
    struct sink s = {BUF_INIT, BUF_INIT};
    struct msgcheck *m = msgcheck_new(c, "QID", sink_out, sink_log, &s);
    const struct msgcheck_verdict *v;
    size_t off = 0;
    size_t wpos = golden_file_size(log_path);

    while (off < len) {
        size_t n = step == 0 || len - off < step ? len - off : step;

        msgcheck_feed(m, msg + off, n);
        off += n;
    }
    v = msgcheck_end(m);
    buf_printf(out, "== verdict: %s", kind_name(v->kind));
    if (v->kind == MSGCHECK_REJECT || v->kind == MSGCHECK_DEFER)
        buf_printf(out, " %d %s %s", v->code, v->enh, v->text);
    else if (v->kind == MSGCHECK_DISCARD)
        buf_printf(out, " (%s)", v->text);
    buf_putc(out, '\n');
    if (v->hold)
        buf_printf(out, "== hold (%s)\n", v->hold_text);
    if (v->unsupported)
        buf_printf(out, "== unsupported %s\n", v->unsupported);
    buf_printf(out, "== log\n%s", buf_str(&s.log));
    buf_puts(out, "== warnings\n");
    golden_log_warnings(log_path, wpos, tmpdir, "TMP", out);
    buf_printf(out, "== output\n%s", buf_str(&s.out));
    msgcheck_free(m);
    buf_free(&s.out);
    buf_free(&s.log);
}

/* section - the text of "[name]" up to the next "[" section line (or the end) */
static char *section(const char *file, const char *text, const char *name, bool to_end)
{
    char *head = xasprintf("[%s]\n", name);
    const char *p = strncmp(text, head, strlen(head)) == 0 ? text : NULL;
    char *nhead = xasprintf("\n[%s]\n", name);
    const char *end;

    if (p == NULL && (p = strstr(text, nhead)) != NULL)
        p++;
    free(nhead);
    if (p == NULL) {
        free(head);
        return NULL;
    }
    p += strlen(head);
    free(head);
    if (to_end)
        return xstrdup(p);
    for (end = p; *end && !(end[0] == '[' && (end == p || end[-1] == '\n')); end++)
        ;
    (void)file;
    return xstrndup(p, (size_t)(end - p));
}

/* settings - the [settings] text with @T replaced by table paths (written now) */
static char *settings(const char *file, const char *text)
{
    char *s = section(file, text, "settings", false);
    struct buf b = BUF_INIT;

    if (s == NULL)
        fail_msg("%s: no [settings]", file);
    for (const char *p = s; *p; p++) {
        if (*p != '@') {
            buf_putc(&b, *p);
            continue;
        }
        size_t n = strcspn(p + 1, " \t\n,");
        char *name = xstrndup(p + 1, n);
        char *sec = xasprintf("table %s", name);
        char *table = section(file, text, sec, false);
        char *path = xasprintf("%s/%s", tmpdir, name);

        if (table == NULL)
            fail_msg("%s: no [table %s]", file, name);
        golden_write_file(path, table, strlen(table));
        buf_puts(&b, path);
        p += n;
        free(name);
        free(sec);
        free(table);
        free(path);
    }
    free(s);
    return buf_steal(&b);
}

/* render - one golden case */
static void render(const char *file, char *text, size_t len, struct buf *out)
{
    char *set = settings(file, text), *err = NULL;
    char *msg = section(file, text, "message", true);
    struct buf exp = BUF_INIT, once = BUF_INIT, bytes = BUF_INIT, pieces = BUF_INIT;
    struct cfg *cfg = cfg_load_string(set, strlen(set), file, &err);
    struct msgcheck_conf *c;

    (void)len;
    if (cfg == NULL)
        fail_msg("%s: settings: %s", file, err);
    if (msg == NULL)
        fail_msg("%s: no [message]", file);
    if (strncmp(msg, ESCAPED_MARK, strlen(ESCAPED_MARK)) == 0)
        golden_expand(msg + strlen(ESCAPED_MARK), strlen(msg) - strlen(ESCAPED_MARK), true, &exp);
    else
        buf_puts(&exp, msg);
    c = msgcheck_conf_load(cfg);
    assert_true(msgcheck_active(c));
    run(c, buf_str(&exp), exp.len, 0, &once);
    run(c, buf_str(&exp), exp.len, 1, &bytes);
    run(c, buf_str(&exp), exp.len, PIECE, &pieces);
    if (strcmp(buf_str(&once), buf_str(&bytes)) != 0)
        fail_msg("%s: byte by byte differs:\n%s\n---\n%s", file, buf_str(&once), buf_str(&bytes));
    if (strcmp(buf_str(&once), buf_str(&pieces)) != 0)
        fail_msg("%s: in pieces differs:\n%s\n---\n%s", file, buf_str(&once), buf_str(&pieces));
    buf_append(out, once.data, once.len);
    msgcheck_conf_free(c);
    cfg_free(cfg);
    buf_free(&exp);
    buf_free(&once);
    buf_free(&bytes);
    buf_free(&pieces);
    free(set);
    free(msg);
}

static void test_golden(void **state)
{
    (void)state;
    golden_run_dir("msgcheck", ".mc", MIN_CASES, render);
}

/* test_inactive - no table: NULL, and msgcheck_active says no */
static void test_inactive(void **state)
{
    static const char text[] = "header_checks =\nbody_checks =\n";
    char *err = NULL;
    struct cfg *cfg = cfg_load_string(text, strlen(text), "test", &err);

    (void)state;
    assert_non_null(cfg);
    assert_null(msgcheck_conf_load(cfg));
    assert_false(msgcheck_active(NULL));
    cfg_free(cfg);
}

/* test_field_end - the caller's own field is decided at once */
static void test_field_end(void **state)
{
    char *path = xasprintf("%s/fe", tmpdir);
    char *text, *err = NULL;
    struct cfg *cfg;
    struct msgcheck_conf *c;
    struct sink s = {BUF_INIT, BUF_INIT};
    struct msgcheck *m;
    static const char table[] = "/^Received:.*ESMTPSA/ IGNORE\n";
    static const char rcv[] = "Received: from x\n\tby y with ESMTPSA id Q\n";

    (void)state;
    golden_write_file(path, table, strlen(table));
    text = xasprintf("header_checks = regexp:%s\n", path);
    cfg = cfg_load_string(text, strlen(text), "test", &err);
    assert_non_null(cfg);
    c = msgcheck_conf_load(cfg);
    m = msgcheck_new(c, "QID", sink_out, sink_log, &s);
    msgcheck_feed(m, "Received: from a\n", strlen("Received: from a\n"));
    msgcheck_field_end(m);
    assert_string_equal(buf_str(&s.out), "Received: from a\n");
    msgcheck_feed(m, rcv, strlen(rcv));
    msgcheck_field_end(m);
    assert_string_equal(buf_str(&s.out), "Received: from a\n");
    msgcheck_feed(m, "\nbody\n", strlen("\nbody\n"));
    assert_int_equal(msgcheck_end(m)->kind, MSGCHECK_ACCEPT);
    assert_string_equal(buf_str(&s.out), "Received: from a\n\nbody\n");
    msgcheck_free(m);
    msgcheck_conf_free(c);
    cfg_free(cfg);
    buf_free(&s.out);
    buf_free(&s.log);
    free(text);
    free(path);
}

static int setup(void **state)
{
    (void)state;
    log_path = golden_tmp_setup(tmpdir);
    return log_path ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(log_path);
    return golden_tmp_remove(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_inactive),
        cmocka_unit_test(test_field_end),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
