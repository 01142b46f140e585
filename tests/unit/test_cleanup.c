/*
 * test_cleanup.c - unit and golden tests for the local-submission clean-up
 *
 * Unit tests: address qualification, address-list parsing (groups,
 * comments, quoted strings, routes), the full-name phrase (quoting,
 * RFC 2047 for 8-bit text, control characters neutralised so that no
 * header can be injected), header_size_limit and the output maximum.
 *
 * Golden files: tests/golden/cleanup/NAME.in is a message as sendmail
 * hands it over; NAME.out is the cleaned message followed by a line
 * "--rcpts--" and the extracted recipients, one per line. Files whose
 * name starts with "t_" are cleaned with extract (sendmail -t). The
 * settings are fixed: queue ID 0TESTQIDz1, arrival 1795374973 in UTC,
 * myhostname mail.example.com, myorigin example.com, uid 1000, sender
 * alice@example.com, full name "Alice Smith". The golden directory is
 * $POSTA_SRCDIR/tests/golden (default "./tests/golden");
 * POSTA_GOLDEN_PRINT=1 prints what was produced, for review.
 */
#include "util/sys.h"

#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "mail/cleanup.h"
#include "util/alloc.h"
#include "util/buf.h"

#define TEST_ARRIVAL 1795374973
#define GOLDEN_MAX ((size_t)1 << 20)

/* info - the fixed settings */
static struct cleanup_info info(bool extract)
{
    struct cleanup_info ci = {"0TESTQIDz1", TEST_ARRIVAL, "mail.example.com", "example.com",
                              1000, "alice@example.com", "Alice Smith", extract, 0};
    return ci;
}

/* run - clean text; returns the output as a string (free it) */
static char *run(const struct cleanup_info *ci, const char *text, size_t len)
{
    struct cleanup_out out;
    struct buf b = BUF_INIT;

    cleanup_out_init(&out, 0);
    assert_int_equal(cleanup_local(ci, text, len, &out), 0);
    buf_append(&b, buf_str(&out.msg), out.msg.len);
    buf_puts(&b, "--rcpts--\n");
    for (size_t i = 0; i < out.nrcpts; i++)
        buf_printf(&b, "%s\n", out.rcpts[i]);
    cleanup_out_free(&out);
    return buf_steal(&b);
}

/* test_qualify - bare addresses get @origin; others stay */
static void test_qualify(void **state)
{
    char *s;

    s = cleanup_qualify("bob", "example.com");
    assert_string_equal(s, "bob@example.com");
    free(s);
    s = cleanup_qualify("bob@x.org", "example.com");
    assert_string_equal(s, "bob@x.org");
    free(s);
    s = cleanup_qualify("\"a@b\"", "example.com");
    assert_string_equal(s, "\"a@b\"@example.com");
    free(s);
    s = cleanup_qualify("", "example.com");
    assert_string_equal(s, "");
    free(s);
}

static struct buf collected;

/* collect - gather addresses "a|b|" */
static void collect(void *ctx, const char *addr)
{
    buf_puts(&collected, addr);
    buf_putc(&collected, '|');
}

/* test_addr_list - the parser on tricky lists */
static void test_addr_list(void **state)
{
    static const struct {
        const char *in, *addrs, *rewritten;
    } cases[] = {
        {"bob", "bob@o|", "bob@o"},
        {"Bob <bob>", "bob@o|", "Bob <bob@o>"},
        {"a, b@x (c, d), \"e, f\" <g>", "a@o|b@x|g@o|", "a@o, b@x (c, d), \"e, f\" <g@o>"},
        {"grp: a, b; c", "a@o|b@o|c@o|", "grp: a@o, b@o; c@o"},
        {"undisclosed-recipients:;", "", "undisclosed-recipients:;"},
        {"<@r1,@r2:x@y>", "x@y|", "<@r1,@r2:x@y>"},
        {"\"q\\\"uote\"@x", "\"q\\\"uote\"@x|", "\"q\\\"uote\"@x"},
        {"<>", "", "<>"},
        {"(only comment)", "", "(only comment)"},
        {"a,,b", "a@o|b@o|", "a@o,,b@o"},
        {"<unterminated", "unterminated@o|", "<unterminated"},  /* found, not rewritten */
    };

    for (size_t i = 0; i < POSTA_ARRAY_LEN(cases); i++) {
        struct buf rw = BUF_INIT;
        buf_reset(&collected);
        cleanup_addr_list(cases[i].in, strlen(cases[i].in), "o", &rw, collect, NULL);
        if (strcmp(buf_str(&collected), cases[i].addrs) != 0 ||
            strcmp(buf_str(&rw), cases[i].rewritten) != 0)
            fail_msg("case %zu \"%s\": got \"%s\" / \"%s\"", i, cases[i].in,
                     buf_str(&collected), buf_str(&rw));
        buf_free(&rw);
    }
    buf_free(&collected);
}

/* from_line - the From: header cleanup adds for a full name */
static char *from_line(const char *full_name)
{
    struct cleanup_info ci = info(false);
    char *out, *p, *e;

    ci.full_name = full_name;
    out = run(&ci, "Subject: x\n\n", strlen("Subject: x\n\n"));
    p = strstr(out, "\nFrom: ");
    assert_non_null(p);
    e = strchr(p + 1, '\n');
    char *line = xstrndup(p + 1, (size_t)(e - p - 1));
    free(out);
    return line;
}

/* test_full_name - phrase forms and header injection */
static void test_full_name(void **state)
{
    char *s;

    s = from_line("Alice Smith");
    assert_string_equal(s, "From: Alice Smith <alice@example.com>");
    free(s);
    s = from_line("Smith, Alice \"Al\"");
    assert_string_equal(s, "From: \"Smith, Alice \\\"Al\\\"\" <alice@example.com>");
    free(s);
    s = from_line("Jörg");
    assert_string_equal(s, "From: =?UTF-8?B?SsO2cmc=?= <alice@example.com>");
    free(s);
    s = from_line("Eve\nBcc: victim@example.org");
    assert_string_equal(s, "From: \"Eve Bcc: victim@example.org\" <alice@example.com>");
    free(s);
    s = from_line("");
    assert_string_equal(s, "From: alice@example.com");
    free(s);
}

/* test_header_limit - an oversized field ends the header */
static void test_header_limit(void **state)
{
    struct cleanup_info ci = info(false);
    const char *msg = "Subject: short\nX-Long: 0123456789012345678901234567890123456789\n\nb\n";
    char *out;

    ci.header_size_limit = 32;
    out = run(&ci, msg, strlen(msg));
    /* the long field and everything after it is body, after the added headers */
    assert_non_null(strstr(out, "From: Alice Smith <alice@example.com>\n\nX-Long: "));
    free(out);
}

/* test_overflow - a result past the buffer maximum is refused */
static void test_overflow(void **state)
{
    struct cleanup_info ci = info(false);
    struct cleanup_out out;
    char body[4096];

    memset(body, 'a', sizeof(body));
    body[sizeof(body) - 1] = '\n';
    cleanup_out_init(&out, 1024);
    assert_int_equal(cleanup_local(&ci, body, sizeof(body), &out), -1);
    assert_true(out.overflow);
    cleanup_out_free(&out);
}

/* golden_dir - where the golden files are */
static const char *golden_dir(void)
{
    static char path[4096];
    const char *src = getenv("POSTA_SRCDIR");

    snprintf(path, sizeof(path), "%s/tests/golden/cleanup", src ? src : ".");
    return path;
}

/* slurp - a whole file into b; false if missing */
static bool slurp(const char *path, struct buf *b)
{
    char chunk[4096];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return false;
    buf_init(b, GOLDEN_MAX);
    while ((n = read(fd, chunk, sizeof(chunk))) > 0)
        buf_append(b, chunk, (size_t)n);
    close(fd);
    return true;
}

/* test_golden - every NAME.in cleans to NAME.out */
static void test_golden(void **state)
{
    const char *dir = golden_dir();
    bool print = getenv("POSTA_GOLDEN_PRINT") != NULL;
    DIR *d = opendir(dir);
    struct dirent *e;
    int failures = 0, count = 0;

    if (d == NULL)
        fail_msg("golden directory %s: %s", dir, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 3, ".in") != 0)
            continue;
        char *in_path = xasprintf("%s/%s", dir, e->d_name);
        char *out_path = xasprintf("%s/%.*s.out", dir, (int)(n - 3), e->d_name);
        struct buf in = BUF_INIT, want = BUF_INIT;
        struct cleanup_info ci = info(strncmp(e->d_name, "t_", 2) == 0);

        assert_true(slurp(in_path, &in));
        char *got = run(&ci, buf_str(&in), in.len);
        count++;
        if (print)
            printf("== %s\n%s", e->d_name, got);
        if (!slurp(out_path, &want)) {
            printf("golden %s: missing %s\n", e->d_name, out_path);
            failures++;
        } else if (strcmp(buf_str(&want), got) != 0) {
            printf("golden %s: got\n%s", e->d_name, got);
            failures++;
        }
        free(got);
        buf_free(&in);
        buf_free(&want);
        free(in_path);
        free(out_path);
    }
    closedir(d);
    assert_true(count > 0);
    assert_int_equal(failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qualify),
        cmocka_unit_test(test_addr_list),
        cmocka_unit_test(test_full_name),
        cmocka_unit_test(test_header_limit),
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_golden),
    };

    setenv("TZ", "UTC", 1);
    tzset();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
