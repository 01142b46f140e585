/*
 * golden.h - golden-file helpers shared by the unit tests
 *
 * Each tests/unit/test_*.c is built alone, so these are static inline
 * functions in a header (inline: a test need not use them all). Include
 * it after <cmocka.h>, "util/alloc.h" and "util/buf.h". Two kinds of
 * golden files:
 *
 *   directory  tests/golden/SUB/NAME.IN is an input, NAME.out what the
 *              test renders for it (golden_run_dir). POSTA_GOLDEN_UPDATE=1
 *              rewrites the .out files instead of comparing (review the
 *              diff!).
 *   table      tests/golden/SUB/NAME.txt, one case a line, TAB-separated
 *              fields; "#" lines and blank lines are skipped
 *              (golden_lines_*). Fields use the escapes \\ \t \{ \xHH and
 *              {TEXT*N} repeats (golden_expand, golden_render).
 *              POSTA_GOLDEN_PRINT=1 asks the test to print what it got.
 *              golden_table_run runs a check function on every case
 *              and fails the test when any case failed.
 *
 * Also for the table tests that compare with Postfix (dict_*): a
 * temporary folder with a log file (golden_tmp_*), the warnings a case
 * logged (golden_log_warnings), and Postfix's postmap (golden_postmap_*).
 *
 * The golden directory is $POSTA_SRCDIR/tests/golden (default
 * ./tests/golden, i.e. run from the repository root).
 *
 * DIAGNOSTICS
 *   A mismatch prints the file, line, want and got, and the test fails
 *   after all cases of the file have run.
 */
#ifndef POSTA_TESTS_GOLDEN_H
#define POSTA_TESTS_GOLDEN_H

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/log.h"

#define GOLDEN_FILE_MAX ((size_t)1 << 24)
#define GOLDEN_HEX_RADIX 16

/* golden_dir - $POSTA_SRCDIR/tests/golden/SUB (xmalloc'd) */
static inline char *golden_dir(const char *sub)
{
    const char *src = getenv("POSTA_SRCDIR");

    return xasprintf("%s/tests/golden/%s", src && *src ? src : ".", sub);
}

/* golden_read_file - whole file (xmalloc'd, NUL-terminated), or NULL */
static inline char *golden_read_file(const char *path, size_t *len)
{
    struct buf b = BUF_INIT;

    *len = 0;
    if (buf_read_file(&b, path, GOLDEN_FILE_MAX) < 0) {
        assert_int_not_equal(errno, EFBIG); /* a golden file this large is a mistake */
        buf_free(&b);
        return NULL;
    }
    *len = b.len;
    return buf_steal(&b);
}

/* golden_compare - got equals the file outpath (or rewrites it); 1 if not */
static inline int golden_compare(const char *file, const char *outpath, const struct buf *got)
{
    const char *update = getenv("POSTA_GOLDEN_UPDATE");
    size_t elen = 0;
    char *expect;
    int failed = 0;
    FILE *fp;

    if (update && strcmp(update, "1") == 0) {
        fp = fopen(outpath, "w");
        assert_non_null(fp);
        fputs(buf_str(got), fp);
        fclose(fp);
        return 0;
    }
    expect = golden_read_file(outpath, &elen);
    if (expect == NULL) {
        print_error("golden %s: missing %s\n", file, outpath);
        failed = 1;
    } else if (elen != got->len || memcmp(expect, buf_str(got), elen) != 0) {
        print_error("golden %s: output differs from %s\n--- got:\n%s--- expected:\n%s", file,
                    outpath, buf_str(got), expect);
        failed = 1;
    }
    free(expect);
    return failed;
}

/* golden_render_fn - render one input file (text may be modified) into out */
typedef void golden_render_fn(const char *file, char *text, size_t len, struct buf *out);

/* golden_case - render dir/NAME.IN and compare with dir/NAME.out; 1 if not */
static inline int golden_case(const char *dir, const char *file, size_t suffix_len,
                              golden_render_fn *render)
{
    char *path = xasprintf("%s/%s", dir, file);
    char *outpath = xasprintf("%.*s.out", (int)(strlen(path) - suffix_len), path);
    struct buf out = BUF_INIT;
    size_t len;
    char *text = golden_read_file(path, &len);
    int failed;

    assert_non_null(text);
    render(file, text, len, &out);
    failed = golden_compare(file, outpath, &out);
    buf_free(&out);
    free(text);
    free(outpath);
    free(path);
    return failed;
}

/* golden_name_cmp - qsort of file names */
static inline int golden_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* golden_run_dir - every tests/golden/SUB/NAME.SUFFIX, in name order */
static inline void golden_run_dir(const char *sub, const char *suffix, size_t min_cases,
                                  golden_render_fn *render)
{
    char *dir = golden_dir(sub);
    DIR *d = opendir(dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, i, len, slen = strlen(suffix);
    int failed = 0;

    if (d == NULL)
        fail_msg("cannot open %s (run the tests from the repository root)", dir);
    while ((de = readdir(d)) != NULL) {
        len = strlen(de->d_name);
        if (len > slen && strcmp(de->d_name + len - slen, suffix) == 0) {
            names = xreallocarray(names, n + 1, sizeof(*names));
            names[n++] = xstrdup(de->d_name);
        }
    }
    closedir(d);
    assert_true(n >= min_cases);
    qsort(names, n, sizeof(*names), golden_name_cmp);
    for (i = 0; i < n; i++) {
        failed += golden_case(dir, names[i], slen, render);
        free(names[i]);
    }
    free(names);
    free(dir);
    assert_int_equal(failed, 0);
}

/* golden_hexval - value of a hex digit or -1 */
static inline int golden_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * golden_expand - golden field -> bytes. {TEXT*N} is always expanded;
 * escapes are decoded when raw, else copied as written (to compare with
 * golden_render()).
 */
static inline void golden_expand(const char *s, size_t n, bool raw, struct buf *out)
{
    size_t i = 0, j, k, count;
    const char *star, *close;

    while (i < n) {
        if (s[i] == '\\' && i + 1 < n) {
            size_t w = 2;
            char c = s[i + 1];
            if (c == 'x' && i + 3 < n && golden_hexval(s[i + 2]) >= 0
                && golden_hexval(s[i + 3]) >= 0) {
                w = 4;
                c = (char)(golden_hexval(s[i + 2]) * GOLDEN_HEX_RADIX + golden_hexval(s[i + 3]));
            } else if (c == 't') {
                c = '\t';
            }
            if (raw)
                assert_int_equal(buf_putc(out, (unsigned char)c), 0);
            else
                assert_int_equal(buf_append(out, s + i, w), 0);
            i += w;
        } else if (s[i] == '{' && (star = memchr(s + i, '*', n - i)) != NULL
                   && (close = memchr(star, '}', (size_t)(s + n - star))) != NULL) {
            count = strtoul(star + 1, NULL, 10);
            j = (size_t)(star - (s + i + 1));
            for (k = 0; k < count; k++)
                assert_int_equal(buf_append(out, s + i + 1, j), 0);
            i = (size_t)(close - s) + 1;
        } else {
            assert_int_equal(buf_putc(out, (unsigned char)s[i]), 0);
            i++;
        }
    }
}

/* golden_render - bytes -> golden text (the escaped form golden_expand copies) */
static inline void golden_render(struct buf *out, const char *s, size_t n)
{
    size_t i;
    unsigned char c;

    for (i = 0; i < n; i++) {
        c = (unsigned char)s[i];
        if (c == '\\' || c == '{')
            buf_printf(out, "\\%c", c);
        else if (c == '\t')
            buf_puts(out, "\\t");
        else if (c < 0x20 || c == 0x7f)
            buf_printf(out, "\\x%02x", c);
        else
            buf_putc(out, c);
    }
}

/* struct golden_lines - reading one table file, case by case */
struct golden_lines {
    char *path;           /* tests/golden/SUB/NAME */
    const char *name;     /* NAME, for the summary */
    FILE *fp;
    char *line;           /* current case, CR/LF removed */
    size_t cap;
    size_t lineno;
    size_t cases;
    size_t failures;
    bool print;           /* POSTA_GOLDEN_PRINT is set */
};

/* golden_lines_open - open tests/golden/SUB/NAME or fail the test */
static inline void golden_lines_open(struct golden_lines *g, const char *sub,
                                     const char *name)
{
    char *dir = golden_dir(sub);

    memset(g, 0, sizeof(*g));
    g->path = xasprintf("%s/%s", dir, name);
    g->name = name;
    g->print = getenv("POSTA_GOLDEN_PRINT") != NULL;
    free(dir);
    g->fp = fopen(g->path, "r");
    if (g->fp == NULL)
        fail_msg("cannot open %s: %s", g->path, strerror(errno));
}

/* golden_lines_next - next case (counted), or NULL at the end */
static inline char *golden_lines_next(struct golden_lines *g)
{
    ssize_t n;

    while ((n = getline(&g->line, &g->cap, g->fp)) >= 0) {
        g->lineno++;
        while (n > 0 && (g->line[n - 1] == '\n' || g->line[n - 1] == '\r'))
            g->line[--n] = 0;
        if (n == 0 || g->line[0] == '#')
            continue;
        g->cases++;
        return g->line;
    }
    return NULL;
}

/* golden_lines_fields - split the current case at its first two TABs */
static inline void golden_lines_fields(struct golden_lines *g, char **t1, char **t2,
                                       int min_fields)
{
    *t1 = strchr(g->line, '\t');
    *t2 = *t1 ? strchr(*t1 + 1, '\t') : NULL;
    if (*t2 == NULL)
        fail_msg("%s:%zu: fewer than %d fields", g->path, g->lineno, min_fields);
}

/* golden_lines_check - want equals got, else print both (what: the case); 1 if not */
static inline int golden_lines_check(struct golden_lines *g, const char *what, int what_len,
                                     const char *want, const char *got)
{
    if (strcmp(want, got) == 0)
        return 0;
    print_message("%s:%zu: %.*s\n  want: %s\n  got:  %s\n", g->path, g->lineno, what_len, what,
                  want, got);
    g->failures++;
    return 1;
}

/* golden_lines_end - at least min_cases cases, and every case matched */
static inline void golden_lines_end(struct golden_lines *g, size_t min_cases)
{
    size_t failures = g->failures, cases = g->cases;
    const char *name = g->name;

    free(g->line);
    fclose(g->fp);
    free(g->path);
    assert_true(cases >= min_cases);
    if (failures > 0)
        fail_msg("%s: %zu of %zu cases differ", name, failures, cases);
}

/* golden_lines_close - at least one case, and every case matched */
static inline void golden_lines_close(struct golden_lines *g)
{
    golden_lines_end(g, 1);
}

/* golden_case_fn - check the current case (line, modifiable) of g; nonzero if it failed */
typedef int golden_case_fn(struct golden_lines *g, char *line, void *ctx);

/* golden_table_run - check every case of tests/golden/SUB/NAME; at least min_cases */
static inline void golden_table_run(const char *sub, const char *name, size_t min_cases,
                                    golden_case_fn *check, void *ctx)
{
    struct golden_lines g;
    char *line;

    golden_lines_open(&g, sub, name);
    while ((line = golden_lines_next(&g)) != NULL)
        if (check(&g, line, ctx) != 0)
            g.failures++;
    golden_lines_end(&g, min_cases);
}

/* ---- a temporary folder with a log, and Postfix's postmap ---- */

#define GOLDEN_POSTMAP "/usr/sbin/postmap"
#define GOLDEN_POSTCONF "/usr/sbin/postconf"
#define GOLDEN_PIPE_CHUNK 65536
#define GOLDEN_EXEC_FAILED 127

/* golden_tmp_setup - mkdtemp(tmpl) and log to TMPL/log; the log's path (xmalloc'd) or NULL */
static inline char *golden_tmp_setup(char *tmpl)
{
    char *log_path;

    if (mkdtemp(tmpl) == NULL)
        return NULL;
    log_path = xasprintf("%s/log", tmpl);
    log_open("test", LOG_SINK_FILE, log_path);
    return log_path;
}

/* golden_tmp_remove - rm -rf dir; 0, or -1 if that failed */
static inline int golden_tmp_remove(const char *dir)
{
    char *cmd = xasprintf("rm -rf '%s'", dir);
    int rc = system(cmd);

    free(cmd);
    return rc == 0 ? 0 : -1;
}

/* golden_write_file - create path with n bytes of text */
static inline void golden_write_file(const char *path, const char *text, size_t n)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

/* golden_file_size - bytes in path (0 if missing) */
static inline size_t golden_file_size(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? (size_t)st.st_size : 0;
}

/*
 * golden_log_warnings - the "warning: ..." lines that log_path got past
 * offset, one a line into out, each occurrence of from shown as to.
 */
static inline void golden_log_warnings(const char *log_path, size_t offset, const char *from,
                                       const char *to, struct buf *out)
{
    size_t len, flen = strlen(from);
    char *text = golden_read_file(log_path, &len);

    if (text == NULL)
        return;
    for (char *line = text + (offset < len ? offset : len); *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        char *w = strstr(line, "warning: ");
        if (w != NULL) {
            for (char *p = w; *p;) {
                char *hit = strstr(p, from);
                if (hit == NULL) {
                    buf_puts(out, p);
                    break;
                }
                buf_append(out, p, (size_t)(hit - p));
                buf_puts(out, to);
                p = hit + flen;
            }
            buf_putc(out, '\n');
        }
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    free(text);
}

/* golden_postfix_has - Postfix is installed and postconf -m lists the table type */
static inline bool golden_postfix_has(const char *type)
{
    char *cmd = xasprintf("%s -m 2>/dev/null | grep -qx %s", GOLDEN_POSTCONF, type);
    int rc = access(GOLDEN_POSTMAP, X_OK) == 0 ? system(cmd) : -1;

    free(cmd);
    return rc == 0;
}

/*
 * golden_postmap_run - postmap with up to three arguments (NULL ends);
 * its exit status, its output in out without the last newline.
 */
static inline int golden_postmap_run(const char *a1, const char *a2, const char *a3,
                                     struct buf *out)
{
    int fds[2], status;
    char chunk[GOLDEN_PIPE_CHUNK];
    ssize_t n;

    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, STDERR_FILENO);
        execl(GOLDEN_POSTMAP, "postmap", a1, a2, a3, (char *)NULL);
        _exit(GOLDEN_EXEC_FAILED);
    }
    close(fds[1]);
    buf_reset(out);
    while ((n = read(fds[0], chunk, sizeof(chunk))) > 0)
        buf_append(out, chunk, (size_t)n);
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (out->len > 0 && out->data[out->len - 1] == '\n')
        buf_truncate(out, out->len - 1);
    return WEXITSTATUS(status);
}

#endif
