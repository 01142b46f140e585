/*
 * test_qfile.c - unit and golden tests for the queue file writer/reader
 *
 * Unit tests: a round trip through every record kind (and multi-chunk
 * content written in odd pieces), qfile_mark_done, qfw_abort, a sticky
 * write error (RLIMIT_FSIZE), oversized records, and robustness: every
 * truncation of a valid file and single-byte corruptions at every offset
 * must be rejected (or, for payload bytes, parsed consistently) without a
 * crash.
 *
 * Golden files: tests/golden/qfile/NAME.q is a hand-made queue file and
 * NAME.out the expected reader dump (or "error: TEXT" for a malformed
 * file). The golden directory is $POSTA_SRCDIR/tests/golden (default
 * "./tests/golden"); POSTA_GOLDEN_PRINT=1 prints what the reader produced,
 * for review.
 */
#include "util/sys.h"

#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "mail/qfile.h"
#include "mail/qid.h"
#include "util/alloc.h"
#include "util/buf.h"

#define BIG_CONTENT (200 * 1024 + 17)   /* several CONTENT records */
#define SMALL_CONTENT 300
#define FSIZE_LIMIT (64 * 1024)
#define PRINTABLE_MIN 0x20
#define PRINTABLE_MAX 0x7e

static char tmpdir[] = "/tmp/test_qfile.XXXXXX";
static int tmpfd = -1;

/* setup_dir - a fresh temporary queue directory */
static int setup_dir(void **state)
{
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    tmpfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return tmpfd < 0 ? -1 : 0;
}

/* teardown_dir - remove the temporary directory and what is left in it */
static int teardown_dir(void **state)
{
    DIR *d = fdopendir(dup(tmpfd));
    struct dirent *e;

    while (d && (e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            unlinkat(tmpfd, e->d_name, 0);
    if (d)
        closedir(d);
    close(tmpfd);
    rmdir(tmpdir);
    return 0;
}

/* fill - deterministic message bytes */
static void fill(char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (i % 73 == 72) ? '\n' : (char)('a' + (i * 7) % 26);
}

/* write_sample - a file with every record kind; returns its content */
static char *write_sample(const char *qid, size_t content_len)
{
    struct qfile_writer *w = qfw_create(tmpfd, qid);
    char *content = xmalloc(content_len + 1);
    size_t off = 0, piece = 1;

    assert_non_null(w);
    fill(content, content_len);
    qfw_recordf(w, QREC_TIME, "%lld.%06ld", 1700000000LL, 42L);
    qfw_recordf(w, QREC_ATTR, "client_name=%s", "mail.example.org");
    qfw_record(w, QREC_ATTR, "protocol=ESMTP", strlen("protocol=ESMTP"));
    qfw_record(w, QREC_SENDER, "alice@example.org", strlen("alice@example.org"));
    qfw_record(w, QREC_ORCPT, "rfc822;bob@example.net", strlen("rfc822;bob@example.net"));
    qfw_recordf(w, QREC_NOTIFY, "%u", QNOTIFY_SUCCESS | QNOTIFY_FAILURE);
    qfw_record(w, QREC_RCPT, "bob@example.net", strlen("bob@example.net"));
    qfw_record(w, QREC_DONE, "carol@example.net", strlen("carol@example.net"));
    qfw_recordf(w, QREC_NOTIFY, "%u", QNOTIFY_NEVER);
    qfw_record(w, QREC_RCPT, "\"d s\"@example.net", strlen("\"d s\"@example.net"));
    qfw_record(w, QREC_MESSAGE, "", 0);
    while (off < content_len) {   /* pieces of 1, 2, 4 ... bytes, then wrap */
        size_t n = content_len - off < piece ? content_len - off : piece;

        qfw_content(w, content + off, n);
        off += n;
        piece = piece >= 100000 ? 1 : piece * 2 + 1;
    }
    assert_int_equal(qfw_content_bytes(w), content_len);
    assert_int_equal(qfw_finish(w), 0);
    assert_int_equal(qfw_error(w), 0);
    qfw_close(w);
    return content;
}

/* test_roundtrip - write every record kind, read it back */
static void test_roundtrip(void **state)
{
    char qid[QID_MAX];
    char *content, *err = NULL;
    struct qfile *q;
    struct buf b = BUF_INIT;
    struct stat st;

    qid_new(qid);
    content = write_sample(qid, BIG_CONTENT);
    assert_int_equal(fstatat(tmpfd, qid, &st, 0), 0);
    assert_int_equal(st.st_mode & 07777, QFILE_MODE_DONE);
    q = qfile_open(tmpfd, qid, &err);
    if (q == NULL)
        fail_msg("parse: %s", err);
    assert_string_equal(q->qid, qid);
    assert_int_equal(q->arrival_sec, 1700000000LL);
    assert_int_equal(q->arrival_usec, 42);
    assert_string_equal(q->sender, "alice@example.org");
    assert_int_equal(q->nattrs, 2);
    assert_string_equal(qfile_attr(q, "client_name"), "mail.example.org");
    assert_string_equal(qfile_attr(q, "protocol"), "ESMTP");
    assert_null(qfile_attr(q, "helo_name"));
    assert_int_equal(q->nrcpts, 3);
    assert_string_equal(q->rcpts[0].addr, "bob@example.net");
    assert_string_equal(q->rcpts[0].orcpt, "rfc822;bob@example.net");
    assert_int_equal(q->rcpts[0].notify, QNOTIFY_SUCCESS | QNOTIFY_FAILURE);
    assert_false(q->rcpts[0].done);
    assert_string_equal(q->rcpts[1].addr, "carol@example.net");
    assert_null(q->rcpts[1].orcpt);
    assert_int_equal(q->rcpts[1].notify, 0);
    assert_true(q->rcpts[1].done);
    assert_string_equal(q->rcpts[2].addr, "\"d s\"@example.net");
    assert_int_equal(q->rcpts[2].notify, QNOTIFY_NEVER);
    assert_int_equal(q->content_length, BIG_CONTENT);
    assert_int_equal(q->file_size, st.st_size);
    assert_int_equal(qfile_read_content(q, &b), 0);
    assert_int_equal(b.len, BIG_CONTENT);
    assert_memory_equal(b.data, content, BIG_CONTENT);

    /* mark_done: in place, visible to a fresh reader */
    assert_int_equal(qfile_mark_done(q, 0), 0);
    assert_int_equal(qfile_mark_done(q, 1), 0);   /* already done: no-op */
    assert_int_equal(qfile_mark_done(q, 3), -1);
    assert_int_equal(errno, EINVAL);
    qfile_close(q);
    q = qfile_open(tmpfd, qid, &err);
    if (q == NULL)
        fail_msg("reparse: %s", err);
    assert_true(q->rcpts[0].done);
    assert_true(q->rcpts[1].done);
    assert_false(q->rcpts[2].done);
    assert_string_equal(q->rcpts[0].orcpt, "rfc822;bob@example.net");
    buf_reset(&b);
    assert_int_equal(qfile_read_content(q, &b), 0);
    assert_int_equal(b.len, BIG_CONTENT);
    qfile_close(q);
    buf_free(&b);
    free(content);
    unlinkat(tmpfd, qid, 0);
}

/* test_minimal - null sender, no recipients, no content, MESSAGE implied */
static void test_minimal(void **state)
{
    struct qfile_writer *w = qfw_create(tmpfd, "minimal");
    struct buf b = BUF_INIT;
    char *err = NULL;
    struct qfile *q;

    assert_non_null(w);
    assert_string_equal(qfw_id(w), "minimal");
    qfw_record(w, QREC_TIME, "5.0", 3);
    qfw_record(w, QREC_SENDER, "", 0);
    assert_int_equal(qfw_finish(w), 0);
    qfw_close(w);
    q = qfile_open(tmpfd, "minimal", &err);
    if (q == NULL)
        fail_msg("parse: %s", err);
    assert_string_equal(q->sender, "");
    assert_int_equal(q->nrcpts, 0);
    assert_int_equal(q->content_length, 0);
    assert_int_equal(qfile_read_content(q, &b), 0);
    assert_int_equal(b.len, 0);
    qfile_close(q);
    buf_free(&b);
    unlinkat(tmpfd, "minimal", 0);
}

/* test_create_abort - O_EXCL, bad names, abort removes the file */
static void test_create_abort(void **state)
{
    struct qfile_writer *w = qfw_create(tmpfd, "aborted");
    struct stat st;

    assert_non_null(w);
    assert_int_equal(fstatat(tmpfd, "aborted", &st, 0), 0);
    assert_int_equal(st.st_mode & 07777, QFILE_MODE_WRITING);
    assert_null(qfw_create(tmpfd, "aborted"));
    assert_int_equal(errno, EEXIST);
    qfw_content(w, "x\n", 2);
    qfw_abort(w);
    assert_int_equal(fstatat(tmpfd, "aborted", &st, 0), -1);
    assert_int_equal(errno, ENOENT);
    assert_null(qfw_create(tmpfd, "../escape"));
    assert_int_equal(errno, EINVAL);
    assert_null(qfw_create(tmpfd, ""));
}

/* test_move - a moved unfinished file is finished, or aborted, in its new folder */
static void test_move(void **state)
{
    struct qfile_writer *w;
    struct stat st;
    int sub;

    (void)state;
    assert_int_equal(mkdirat(tmpfd, "held", 0700), 0);
    sub = openat(tmpfd, "held", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(sub >= 0);
    for (int finish = 0; finish < 2; finish++) {
        w = qfw_create(tmpfd, "moved");
        assert_non_null(w);
        qfw_record(w, QREC_TIME, "1.0", 3);
        qfw_record(w, QREC_SENDER, "", 0);
        qfw_record(w, QREC_RCPT, "a@b", 3);
        assert_int_equal(qfw_move(w, sub), 0);
        assert_int_equal(fstatat(tmpfd, "moved", &st, 0), -1);
        assert_int_equal(fstatat(sub, "moved", &st, 0), 0);
        qfw_content(w, "x\n", 2);
        if (!finish) {
            qfw_abort(w);
            assert_int_equal(fstatat(sub, "moved", &st, 0), -1);
            continue;
        }
        assert_int_equal(qfw_finish(w), 0);
        qfw_close(w);
        assert_int_equal(fstatat(sub, "moved", &st, 0), 0);
        assert_int_equal(st.st_mode & 07777, QFILE_MODE_DONE);
        assert_int_equal(unlinkat(sub, "moved", 0), 0);
    }
    /* a folder that is not there: the file stays */
    w = qfw_create(tmpfd, "stays");
    assert_int_equal(qfw_move(w, -1), -1);
    assert_int_equal(fstatat(tmpfd, "stays", &st, 0), 0);
    qfw_abort(w);
    assert_int_equal(fstatat(tmpfd, "stays", &st, 0), -1);
    close(sub);
    assert_int_equal(unlinkat(tmpfd, "held", AT_REMOVEDIR), 0);
}

/* test_sticky_error - a write error is remembered and reported by finish */
static void test_sticky_error(void **state)
{
    struct rlimit old, lim;
    struct qfile_writer *w;
    char *content = xmalloc(BIG_CONTENT);
    struct stat st;

    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = FSIZE_LIMIT;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    w = qfw_create(tmpfd, "toobig");
    assert_non_null(w);
    fill(content, BIG_CONTENT);
    qfw_record(w, QREC_TIME, "5.0", 3);
    qfw_record(w, QREC_SENDER, "a@b", 3);
    qfw_record(w, QREC_RCPT, "c@d", 3);
    qfw_content(w, content, BIG_CONTENT);
    assert_int_equal(qfw_error(w), EFBIG);
    qfw_content(w, "more\n", 5);          /* ignored after the error */
    assert_int_equal(qfw_finish(w), -1);
    assert_int_equal(errno, EFBIG);
    qfw_abort(w);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_int_equal(fstatat(tmpfd, "toobig", &st, 0), -1);
    free(content);
}

/* test_oversized_record - an envelope record over the limit is an error */
static void test_oversized_record(void **state)
{
    struct qfile_writer *w = qfw_create(tmpfd, "oversized");
    char *big = xcalloc(1, QFILE_ENV_REC_MAX + 1);

    assert_non_null(w);
    memset(big, 'a', QFILE_ENV_REC_MAX + 1);
    qfw_record(w, QREC_TIME, "5.0", 3);
    qfw_record(w, QREC_SENDER, big, QFILE_ENV_REC_MAX + 1);
    assert_int_equal(qfw_error(w), EMSGSIZE);
    assert_int_equal(qfw_finish(w), -1);
    assert_int_equal(errno, EMSGSIZE);
    qfw_abort(w);
    free(big);
}

/* read_file - whole file into memory */
static char *read_file(int dirfd, const char *name, size_t *len)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    struct stat st;
    char *p;

    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    p = xmalloc((size_t)st.st_size + 1);
    assert_int_equal(read(fd, p, (size_t)st.st_size), st.st_size);
    close(fd);
    *len = (size_t)st.st_size;
    return p;
}

/* parse_bytes - parse bytes through a memfd; true if accepted */
static bool parse_bytes(const char *p, size_t len, char **errp)
{
    int fd = memfd_create("qfile", MFD_CLOEXEC);
    struct qfile *q;
    char *err = NULL;
    bool ok;

    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, len), (ssize_t)len);
    q = qfile_parse_fd(fd, "mem", &err);
    ok = q != NULL;
    if (q) {
        struct buf b = BUF_INIT;

        assert_null(err);
        assert_int_equal(qfile_read_content(q, &b), 0);
        assert_int_equal(b.len, q->content_length);
        buf_free(&b);
        qfile_close(q);
    } else {
        assert_non_null(err);
        assert_int_equal(errno, EINVAL);
    }
    if (errp)
        *errp = err;
    else
        free(err);
    return ok;
}

/* test_truncations - every proper prefix of a valid file is rejected */
static void test_truncations(void **state)
{
    char qid[QID_MAX];
    char *content, *data;
    size_t len;

    qid_new(qid);
    content = write_sample(qid, SMALL_CONTENT);
    data = read_file(tmpfd, qid, &len);
    assert_true(parse_bytes(data, len, NULL));
    for (size_t n = 0; n < len; n++)
        if (parse_bytes(data, n, NULL))
            fail_msg("prefix of %zu of %zu bytes accepted", n, len);
    free(data);
    free(content);
    unlinkat(tmpfd, qid, 0);
}

/* is_header_byte - offsets of record type and length bytes in data */
static void header_map(const unsigned char *p, size_t len, bool *hdr)
{
    size_t off = 0;

    while (off < len) {
        size_t v = 0, i = 0;

        hdr[off] = true;
        do {
            hdr[off + 1 + i] = true;
            v |= (size_t)(p[off + 1 + i] & 0x7f) << (7 * i);
        } while (p[off + 1 + i++] & 0x80);
        off += 1 + i + v;
    }
}

/* test_corruptions - single-byte changes never crash; header changes fail */
static void test_corruptions(void **state)
{
    static const unsigned char flips[] = {0x01, 0x20, 0x40, 0x80, 0xff};
    char qid[QID_MAX];
    char *content, *data;
    bool *hdr;
    size_t len, accepted = 0, rejected = 0;

    qid_new(qid);
    content = write_sample(qid, SMALL_CONTENT);
    data = read_file(tmpfd, qid, &len);
    hdr = xcalloc(len, sizeof(*hdr));
    header_map((const unsigned char *)data, len, hdr);
    for (size_t off = 0; off < len; off++) {
        for (size_t f = 0; f <= POSTA_ARRAY_LEN(flips); f++) {
            char saved = data[off];
            bool ok;

            data[off] = f < POSTA_ARRAY_LEN(flips) ? (char)(saved ^ flips[f]) : 0;
            if (data[off] == saved) {
                data[off] = saved;
                continue;
            }
            ok = parse_bytes(data, len, NULL);
            /* RCPT <-> DONE differ in one type byte: both valid (0x10 apart
             * is not among the flips, so no other case is expected) */
            if (ok && hdr[off] && (flips[f % POSTA_ARRAY_LEN(flips)] & 0x80))
                fail_msg("header byte %zu ^0x80 accepted", off);
            ok ? accepted++ : rejected++;
            data[off] = saved;
        }
    }
    assert_true(rejected > 0);
    assert_true(accepted > 0);   /* payload text changes are not detectable */
    free(hdr);
    free(data);
    free(content);
    unlinkat(tmpfd, qid, 0);
}

/* test_limits - hostile lengths are refused without big allocations */
static void test_limits(void **state)
{
    static const char huge[] = "V\x0dposta-queue 1S\xff\xff\xff\xff\x07";
    static const char sixbyte[] = "V\x0dposta-queue 1S\x80\x80\x80\x80\x80\x01";
    char *err = NULL;

    assert_false(parse_bytes(huge, sizeof(huge) - 1, &err));
    assert_non_null(strstr(err, "runs past the end of the file"));
    free(err);
    assert_false(parse_bytes(sixbyte, sizeof(sixbyte) - 1, &err));
    assert_non_null(strstr(err, "more than 5 bytes"));
    free(err);
}

/* render_str - golden rendering of text: printable ASCII, else \xHH */
static void render_str(struct buf *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '\\')
            buf_puts(out, "\\\\");
        else if (c == '\n')
            buf_puts(out, "\\n\n  ");
        else if (c >= PRINTABLE_MIN && c <= PRINTABLE_MAX)
            buf_putc(out, c);
        else
            buf_printf(out, "\\x%02x", c);
    }
}

/* render - the golden dump of a parsed file */
static void render(struct qfile *q, struct buf *out)
{
    struct buf content = BUF_INIT;

    buf_printf(out, "arrival %lld.%06ld\n", q->arrival_sec, q->arrival_usec);
    for (size_t i = 0; i < q->nattrs; i++) {
        buf_puts(out, "attr ");
        render_str(out, q->attrs[i].name, strlen(q->attrs[i].name));
        buf_putc(out, '=');
        render_str(out, q->attrs[i].value, strlen(q->attrs[i].value));
        buf_putc(out, '\n');
    }
    buf_puts(out, "sender <");
    render_str(out, q->sender, strlen(q->sender));
    buf_puts(out, ">\n");
    for (size_t i = 0; i < q->nrcpts; i++) {
        const struct qrcpt *r = &q->rcpts[i];

        buf_printf(out, "%s <", r->done ? "done" : "rcpt");
        render_str(out, r->addr, strlen(r->addr));
        buf_printf(out, "> notify=%u orcpt=", r->notify);
        if (r->orcpt)
            render_str(out, r->orcpt, strlen(r->orcpt));
        else
            buf_puts(out, "-");
        buf_printf(out, " offset=%lld\n", (long long)r->offset);
    }
    buf_printf(out, "content offset=%lld length=%llu file=%lld\n",
               (long long)q->content_offset, (unsigned long long)q->content_length,
               (long long)q->file_size);
    assert_int_equal(qfile_read_content(q, &content), 0);
    buf_puts(out, "  ");
    render_str(out, buf_str(&content), content.len);
    buf_puts(out, "|\n");
    buf_free(&content);
}

/* golden_dir - where the golden files are */
static const char *golden_dir(void)
{
    const char *src = getenv("POSTA_SRCDIR");
    static char path[4096];

    snprintf(path, sizeof(path), "%s/tests/golden/qfile", src ? src : ".");
    return path;
}

/* name_cmp - qsort by name */
static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* test_golden - every NAME.q renders as NAME.out says */
static void test_golden(void **state)
{
    const char *dir = golden_dir();
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    bool print = getenv("POSTA_GOLDEN_PRINT") != NULL;
    char **names = NULL;
    size_t nnames = 0, failures = 0;
    DIR *d;
    struct dirent *e;

    if (dfd < 0)
        fail_msg("golden directory %s: %s", dir, strerror(errno));
    d = fdopendir(dup(dfd));
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);

        if (n > 2 && strcmp(e->d_name + n - 2, ".q") == 0) {
            names = xreallocarray(names, nnames + 1, sizeof(*names));
            names[nnames++] = xstrndup(e->d_name, n - 2);
        }
    }
    closedir(d);
    qsort(names, nnames, sizeof(*names), name_cmp);
    assert_true(nnames >= 10);
    for (size_t i = 0; i < nnames; i++) {
        char *qname = xasprintf("%s.q", names[i]);
        char *oname = xasprintf("%s.out", names[i]);
        struct buf got = BUF_INIT;
        char *err = NULL, *want;
        size_t wantlen;
        struct qfile *q = qfile_open(dfd, qname, &err);
        int ofd;

        if (q) {
            render(q, &got);
            qfile_close(q);
        } else {
            buf_printf(&got, "error: %s\n", err);
            free(err);
        }
        if (print)
            printf("== %s\n%s", qname, buf_str(&got));
        ofd = openat(dfd, oname, O_RDONLY | O_CLOEXEC);
        if (ofd < 0) {
            printf("golden %s: missing %s\n", qname, oname);
            failures++;
        } else {
            close(ofd);
            want = read_file(dfd, oname, &wantlen);
            if (wantlen != got.len || memcmp(want, got.data, got.len) != 0) {
                printf("golden %s: got\n%s", qname, buf_str(&got));
                failures++;
            }
            free(want);
        }
        buf_free(&got);
        free(qname);
        free(oname);
        free(names[i]);
    }
    free(names);
    close(dfd);
    assert_int_equal(failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_minimal),
        cmocka_unit_test(test_create_abort),
        cmocka_unit_test(test_move),
        cmocka_unit_test(test_sticky_error),
        cmocka_unit_test(test_oversized_record),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_corruptions),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_golden),
    };

    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
