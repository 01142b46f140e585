/*
 * fuzz_msgcheck.c - libFuzzer target for header/body checks (mail/msgcheck.h)
 *
 * The first input byte selects a configuration (bit 0: tables that
 * change content - IGNORE, REPLACE, PREPEND, STRIP, REJECT, DISCARD -
 * instead of tables that only log; bit 1: small limits; bit 2:
 * disable_mime_input_processing); the second byte is where the rest is
 * split. The rest is the message. Invariants: feeding it at once, one
 * byte at a time, and in two pieces split there gives the same output,
 * verdict and log; with the logging tables and large limits the output
 * equals the input byte for byte. The tables are regexp: files written
 * once into a temporary folder.
 */
#include "util/sys.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mail/config.h"
#include "mail/msgcheck.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"

#define OPT_EDIT 1u
#define OPT_SMALL 2u
#define OPT_NOMIME 4u
#define NCONF 8
#define HEADER_BYTES 2

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char passive_table[] =
    "/^Subject:/ WARN subject\n"
    "/^Content-Type:.*multipart/ INFO multipart\n"
    "/^X-Hold/ HOLD held\n"
    "/^--/ INFO boundary\n"
    "/^(.{1,20})/ DUNNO\n";

static const char edit_table[] =
    "/^X-Ignore/ IGNORE\n"
    "/^X-Replace: (.*)/ REPLACE X-Replaced: $1\n"
    "/^X-Prepend/ PREPEND X-Added: yes\n"
    "/^X-Strip/ STRIP\n"
    "/^X-Reject/ REJECT no\n"
    "/^X-Discard/ DISCARD\n"
    "/^drop/ IGNORE\n"
    "/^swap(.*)/ REPLACE swapped$1\n"
    "/^add/ PREPEND added\n"
    "/^X-Bad/ REPLACE not a field\n";

static struct msgcheck_conf *confs[NCONF];

struct sink {
    struct buf out;
    struct buf log;
};

/* check - abort with a message when an invariant fails */
static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant failed: %s\n", what);
        abort();
    }
}

/* sink_out - collect the content */
static void sink_out(void *ctx, const char *p, size_t n)
{
    struct sink *s = ctx;

    (void)buf_append(&s->out, p, n);
}

/* sink_log - collect the log lines */
static void sink_log(void *ctx, const struct msgcheck_event *ev)
{
    struct sink *s = ctx;

    msgcheck_log_line(&s->log, "Q", ev, "from x");
    (void)buf_putc(&s->log, '\n');
}

/* write_table - a table file in dir */
static char *write_table(const char *dir, const char *name, const char *text)
{
    char *path = xasprintf("%s/%s", dir, name);
    FILE *fp = fopen(path, "w");

    check(fp != NULL && fputs(text, fp) >= 0 && fclose(fp) == 0, "write table");
    return path;
}

/* setup - the eight configurations, once */
static void setup(void)
{
    static char dir[] = "/tmp/fuzz_msgcheck.XXXXXX";
    char *passive, *edit;

    log_open("fuzz", LOG_SINK_FILE, "/dev/null");
    check(mkdtemp(dir) != NULL, "mkdtemp");
    passive = write_table(dir, "passive", passive_table);
    edit = write_table(dir, "edit", edit_table);
    for (unsigned i = 0; i < NCONF; i++) {
        const char *t = i & OPT_EDIT ? edit : passive;
        char *text = xasprintf("header_checks = regexp:%s\nbody_checks = regexp:%s\n"
                               "header_size_limit = %s\nline_length_limit = %s\n"
                               "body_checks_size_limit = %s\n"
                               "disable_mime_input_processing = %s\n",
                               t, t, i & OPT_SMALL ? "16" : "1000000",
                               i & OPT_SMALL ? "8" : "1000000", i & OPT_SMALL ? "20" : "51200",
                               i & OPT_NOMIME ? "yes" : "no");
        char *err = NULL;
        struct cfg *cfg = cfg_load_string(text, strlen(text), "fuzz", &err);

        check(cfg != NULL, "configuration");
        confs[i] = msgcheck_conf_load(cfg);
        check(msgcheck_active(confs[i]), "active");
        cfg_free(cfg);
        free(text);
    }
    /* the tables are open: their files may go */
    unlink(passive);
    unlink(edit);
    rmdir(dir);
    free(passive);
    free(edit);
}

/* run - feed msg in pieces (step 0: at once; split: first piece size) */
static void run(const struct msgcheck_conf *c, const char *msg, size_t len, size_t step,
                size_t split, struct buf *render)
{
    struct sink s = {BUF_INIT, BUF_INIT};
    struct msgcheck *m = msgcheck_new(c, "Q", sink_out, sink_log, &s);
    const struct msgcheck_verdict *v;

    if (step == 0) {
        msgcheck_feed(m, msg, split);
        msgcheck_feed(m, msg + split, len - split);
    } else {
        for (size_t i = 0; i < len; i++)
            msgcheck_feed(m, msg + i, 1);
    }
    v = msgcheck_end(m);
    (void)buf_printf(render, "%d %d %s %s %d %s %s\n", (int)v->kind, v->code, v->enh,
                     v->text ? v->text : "-", (int)v->hold, v->hold_text,
                     v->unsupported ? v->unsupported : "-");
    (void)buf_append(render, s.log.data, s.log.len);
    (void)buf_puts(render, "--\n");
    (void)buf_append(render, s.out.data, s.out.len);
    if (!(c == confs[0] || c == confs[OPT_NOMIME]) || step != 0)
        goto out;
    check(s.out.len == len && (len == 0 || memcmp(s.out.data, msg, len) == 0),
          "logging tables changed the content");
out:
    msgcheck_free(m);
    buf_free(&s.out);
    buf_free(&s.log);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf a = BUF_INIT, b = BUF_INIT, c = BUF_INIT;
    const struct msgcheck_conf *conf;
    char *msg;
    size_t len, split;

    if (confs[0] == NULL)
        setup();
    if (size < HEADER_BYTES)
        return 0;
    conf = confs[data[0] % NCONF];
    len = size - HEADER_BYTES;
    split = len ? data[1] % (len + 1) : 0;
    msg = len ? xmemdup(data + HEADER_BYTES, len) : xstrdup("");
    run(conf, msg, len, 0, len, &a);
    run(conf, msg, len, 1, 0, &b);
    run(conf, msg, len, 0, split, &c);
    check(a.len == b.len && memcmp(buf_str(&a), buf_str(&b), a.len) == 0,
          "byte by byte differs from at once");
    check(a.len == c.len && memcmp(buf_str(&a), buf_str(&c), a.len) == 0,
          "two pieces differ from at once");
    buf_free(&a);
    buf_free(&b);
    buf_free(&c);
    free(msg);
    return 0;
}
