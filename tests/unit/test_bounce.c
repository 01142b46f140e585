/*
 * test_bounce.c - unit and golden tests for delivery status notifications
 *
 * Each test writes an original queue file into a temporary spool
 * (active/), calls bounce_notify() and reads the notice back from
 * incoming/ with the queue file reader: envelope (null sender, recipient,
 * attributes) and content. The content is compared with
 * tests/golden/bounce/NAME.eml after the variable parts are replaced by
 * fixed tokens: the new queue ID by NEWQID, the seconds in the boundary
 * and Message-Id by SECONDS, and the values of Date:, Arrival-Date:,
 * Last-Attempt-Date: and Will-Retry-Until: by DATE.
 *
 * Also checked: NOTIFY filtering for every kind, RET=HDRS and
 * bounce_size_limit (headers only), 8-bit originals (8bitmime), the null
 * sender (postmaster copy only with 2bounce in notify_classes),
 * double-bounce suppression, the Status class per Action, a notice
 * without the original when it cannot be read, the log lines, and that
 * write errors
 * (RLIMIT_FSIZE, a missing incoming/) return -1 and leave nothing behind.
 *
 * The golden directory is $POSTA_SRCDIR/tests/golden (default
 * "./tests/golden"). POSTA_GOLDEN_PRINT=1 prints each normalised notice;
 * POSTA_GOLDEN_WRITE=1 (re)writes the golden files, for review.
 */
#include "util/sys.h"

#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "mail/bounce.h"
#include "mail/config.h"
#include "mail/qfile.h"
#include "mail/qid.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"

#define ORIG_QID "4Xbq5TQhCkz1a"
#define ARRIVAL "1700000000.123456"
#define BIG_BODY 60000    /* over bounce_size_limit (50000) */
#define MEDIUM_BODY 30000 /* under it, over the file size limit */
#define FSIZE_LIMIT 8192
#define PATH_MAX_ 4096

static char tmpdir[] = "/tmp/test_bounce.XXXXXX";
static int activefd = -1, incomingfd = -1;
static struct cfg *cfg;
static char logpath[PATH_MAX_];

static const char base_cf[] = "myhostname = mail.example.org\n"
                              "mydomain = example.org\n"
                              "myorigin = $mydomain\n"
                              "maximal_queue_lifetime = 5d\n";

static const char orig_content[] =
    "Received: from client.example.com (client.example.com [192.0.2.7])\n"
    "\tby mail.example.org (posta) with ESMTP id " ORIG_QID "\n"
    "\tfor <bob@example.org>; Tue, 14 Nov 2023 22:13:20 +0000\n"
    "From: Alice <alice@example.com>\n"
    "To: Bob <bob@example.org>\n"
    "Subject: lunch\n"
    "Message-Id: <lunch.1@example.com>\n"
    "\n"
    "Shall we have lunch on Friday?\n"
    "--\n"
    "Alice\n";

/* An original recipient of the test message. */
struct orcpt_spec {
    const char *addr;
    const char *orcpt;
    unsigned notify;
};

static const char long_diag[] =
    "host mx.example.net[192.0.2.25] said: 550 5.7.1 <carol@example.net>: "
    "Recipient address rejected: this mailbox has been closed by its owner "
    "and no forwarding address was left \xc3\xa9t\xc3\xa9 (in reply to RCPT TO command)";
/* long_reply - the same server's reply alone, as the smtp client passes it */
static const char long_reply[] =
    "550 5.7.1 <carol@example.net>: "
    "Recipient address rejected: this mailbox has been closed by its owner "
    "and no forwarding address was left \xc3\xa9t\xc3\xa9";

/* setup - temporary spool, configuration, log file */
static int setup(void **state)
{
    char *err = NULL, *text;

    if (mkdtemp(tmpdir) == NULL)
        return -1;
    text = xasprintf("%squeue_directory = %s\n", base_cf, tmpdir);
    cfg = cfg_load_string(text, strlen(text), "main.cf", &err);
    free(text);
    if (cfg == NULL) {
        fprintf(stderr, "cfg: %s\n", err);
        return -1;
    }
    snprintf(logpath, sizeof(logpath), "%s/log", tmpdir);
    log_open("test_bounce", LOG_SINK_FILE, logpath);
    int dfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (dfd < 0 || mkdirat(dfd, "active", 0700) < 0 || mkdirat(dfd, "incoming", 0700) < 0)
        return -1;
    activefd = openat(dfd, "active", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    incomingfd = openat(dfd, "incoming", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    close(dfd);
    return activefd < 0 || incomingfd < 0 ? -1 : 0;
}

/* empty_dir - remove every file in dirfd */
static void empty_dir(int dirfd)
{
    DIR *d = fdopendir(dup(dirfd));
    struct dirent *e;

    if (d)
        rewinddir(d); /* the duplicate shares the offset of earlier scans */

    while (d && (e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            unlinkat(dirfd, e->d_name, 0);
    if (d)
        closedir(d);
}

/* count_files - files in dirfd */
static int count_files(int dirfd)
{
    DIR *d = fdopendir(dup(dirfd));
    struct dirent *e;

    if (d)
        rewinddir(d); /* the duplicate shares the offset of earlier scans */
    int n = 0;

    while (d && (e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    if (d)
        closedir(d);
    return n;
}

/* teardown - remove the spool */
static int teardown(void **state)
{
    char path[PATH_MAX_];

    empty_dir(activefd);
    empty_dir(incomingfd);
    close(activefd);
    close(incomingfd);
    snprintf(path, sizeof(path), "%s/active", tmpdir);
    rmdir(path);
    snprintf(path, sizeof(path), "%s/incoming", tmpdir);
    rmdir(path);
    unlink(logpath);
    rmdir(tmpdir);
    cfg_free(cfg);
    return 0;
}

/* per_test - start each test with empty queues and the default classes */
static int per_test(void **state)
{
    empty_dir(activefd);
    empty_dir(incomingfd);
    cfg_override(cfg, "notify_classes", "resource, software");
    return 0;
}

/* make_orig - write and open the original message */
static struct qfile *make_orig(const char *sender, const char *ret, const char *envid,
                               const char *content, size_t clen,
                               const struct orcpt_spec *rs, size_t n, const char *encoding)
{
    struct qfile_writer *w = qfw_create(activefd, ORIG_QID);
    struct qfile *q;
    char *err = NULL;

    assert_non_null(w);
    qfw_record(w, QREC_TIME, ARRIVAL, strlen(ARRIVAL));
    qfw_recordf(w, QREC_ATTR, "protocol=ESMTP");
    qfw_recordf(w, QREC_ATTR, "encoding=%s", encoding);
    if (envid)
        qfw_recordf(w, QREC_ATTR, "envid=%s", envid);
    if (ret)
        qfw_recordf(w, QREC_ATTR, "ret=%s", ret);
    qfw_recordf(w, QREC_ATTR, "log_ident=%s", ORIG_QID);
    qfw_record(w, QREC_SENDER, sender, strlen(sender));
    for (size_t i = 0; i < n; i++) {
        if (rs[i].orcpt)
            qfw_record(w, QREC_ORCPT, rs[i].orcpt, strlen(rs[i].orcpt));
        if (rs[i].notify)
            qfw_recordf(w, QREC_NOTIFY, "%u", rs[i].notify);
        qfw_record(w, QREC_RCPT, rs[i].addr, strlen(rs[i].addr));
    }
    qfw_content(w, content, clen);
    assert_int_equal(qfw_finish(w), 0);
    qfw_close(w);
    q = qfile_open(activefd, ORIG_QID, &err);
    if (q == NULL)
        fail_msg("qfile_open: %s", err);
    return q;
}

/* rcpts_from - bounce_rcpt entries for the queue file's recipients */
static struct bounce_rcpt *rcpts_from(const struct qfile *q, const char *dsn,
                                      const char *text)
{
    struct bounce_rcpt *r = xcalloc(q->nrcpts, sizeof(*r));

    for (size_t i = 0; i < q->nrcpts; i++) {
        r[i].address = q->rcpts[i].addr;
        r[i].orig = q->rcpts[i].addr;
        r[i].orcpt = q->rcpts[i].orcpt;
        r[i].notify = q->rcpts[i].notify;
        r[i].dsn = dsn;
        r[i].text = text;
    }
    return r;
}

/* replace_all - every occurrence of from in b becomes to */
static void replace_all(struct buf *b, const char *from, const char *to)
{
    struct buf out = BUF_INIT;
    size_t flen = strlen(from);
    const char *p = buf_str(b), *hit;

    while ((hit = strstr(p, from)) != NULL) {
        buf_append(&out, p, (size_t)(hit - p));
        buf_puts(&out, to);
        p = hit + flen;
    }
    buf_puts(&out, p);
    buf_set(b, buf_str(&out));
    buf_free(&out);
}

/* normalise - fixed tokens for the queue ID, the seconds and the dates */
static void normalise(struct buf *b, const char *qid)
{
    static const char *const date_fields[] = {
        "Date: ", "Arrival-Date: ", "Last-Attempt-Date: ", "Will-Retry-Until: "};
    struct buf out = BUF_INIT;
    const char *p;

    replace_all(b, qid, "NEWQID");
    p = buf_str(b);
    while (*p) {
        size_t len = strcspn(p, "\n");
        bool done = false;

        for (size_t i = 0; i < POSTA_ARRAY_LEN(date_fields) && !done; i++) {
            if (strncmp(p, date_fields[i], strlen(date_fields[i])) == 0) {
                buf_printf(&out, "%sDATE", date_fields[i]);
                done = true;
            }
        }
        for (size_t i = 0; i < len && !done;) {
            if (strncmp(p + i, "NEWQID.", 7) == 0 && p[i + 7] >= '0' && p[i + 7] <= '9') {
                buf_puts(&out, "NEWQID.SECONDS");
                for (i += 7; i < len && p[i] >= '0' && p[i] <= '9'; i++)
                    ;
            } else {
                buf_putc(&out, p[i++]);
            }
        }
        if (p[len] == '\n')
            buf_putc(&out, '\n');
        p += len + (p[len] == '\n');
    }
    buf_set(b, buf_str(&out));
    buf_free(&out);
}

/* golden_path - tests/golden/bounce/NAME.eml */
static char *golden_path(const char *name)
{
    const char *src = getenv("POSTA_SRCDIR");

    return xasprintf("%s/tests/golden/bounce/%s.eml", src ? src : ".", name);
}

/* compare_golden - got equals the golden file (or writes it when asked) */
static void compare_golden(const char *name, const struct buf *got)
{
    char *path = golden_path(name);
    FILE *fp;
    struct buf want = BUF_INIT;
    char chunk[4096];
    size_t n;

    if (getenv("POSTA_GOLDEN_PRINT"))
        printf("== %s\n%s", name, buf_str(got));
    if (getenv("POSTA_GOLDEN_WRITE")) {
        fp = fopen(path, "w");
        assert_non_null(fp);
        fwrite(got->data, 1, got->len, fp);
        assert_int_equal(fclose(fp), 0);
    }
    fp = fopen(path, "r");
    if (fp == NULL)
        fail_msg("golden %s: %s", path, strerror(errno));
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        buf_append(&want, chunk, n);
    fclose(fp);
    if (want.len != got->len || memcmp(want.data, got->data, got->len) != 0) {
        const char *a = buf_str(&want), *b = buf_str(got);
        size_t line = 1;

        for (; *a && *a == *b; a++, b++)
            line += *a == '\n';
        printf("golden %s differs at line %zu; got:\n%s", path, line, buf_str(got));
        fail_msg("golden %s differs", name);
    }
    buf_free(&want);
    free(path);
}

/* notice - open the notice new_qid, check its envelope, return its content */
static struct qfile *open_notice(const char *new_qid, const char *env_sender,
                                 const char *rcpt, struct buf *content)
{
    char *err = NULL;
    struct qfile *n;
    struct stat st;

    assert_true(qid_valid(new_qid));
    assert_int_equal(fstatat(incomingfd, new_qid, &st, 0), 0);
    assert_int_equal(st.st_mode & 07777, QFILE_MODE_DONE);
    n = qfile_open(incomingfd, new_qid, &err);
    if (n == NULL)
        fail_msg("notice %s: %s", new_qid, err);
    assert_string_equal(n->sender, env_sender);
    assert_int_equal(n->nrcpts, 1);
    assert_string_equal(n->rcpts[0].addr, rcpt);
    assert_null(n->rcpts[0].orcpt);
    assert_int_equal(n->rcpts[0].notify, 0);
    assert_string_equal(qfile_attr(n, "log_ident"), new_qid);
    assert_int_equal(qfile_read_content(n, content), 0);
    return n;
}

/* log_has - the log file contains text */
static bool log_has(const char *text)
{
    FILE *fp = fopen(logpath, "r");
    char line[8192];
    bool found = false;

    if (fp == NULL)
        return false;
    while (!found && fgets(line, sizeof(line), fp))
        found = strstr(line, text) != NULL;
    fclose(fp);
    return found;
}

static const struct orcpt_spec mixed_rcpts[] = {
    {"bob@example.org", "rfc822;Bob@Example.ORG", 0},
    {"carol@example.net", NULL, QNOTIFY_FAILURE | QNOTIFY_DELAY},
    {"dave@example.org", NULL, QNOTIFY_SUCCESS},
    {"eve@example.org", "rfc822;eve@example.org", QNOTIFY_NEVER},
    {"frank@example.org", NULL, QNOTIFY_SUCCESS | QNOTIFY_FAILURE},
};

/* mixed_results - per-recipient results for mixed_rcpts */
static struct bounce_rcpt *mixed_results(struct qfile *q, enum bounce_kind kind,
                                         const char *dsn)
{
    struct bounce_rcpt *r = rcpts_from(q, dsn, "unknown user: \"bob\"");

    r[0].orig = "postmaster-alias@example.org";
    r[1].remote_mta = "mx.example.net";
    r[1].text = long_diag;
    r[1].diag = long_reply;
    if (kind == BOUNCE_DELIVERED) {
        r[2].text = "delivered to mailbox";
        r[4].text = "delivered to maildir";
    } else if (kind == BOUNCE_RELAYED) {
        r[2].remote_mta = r[4].remote_mta = "mx.example.net";
        r[2].text = r[4].text = r[2].diag = r[4].diag = "250 2.0.0 Ok: queued as 4SZb2";
    } else {
        r[4].text = "cannot update mailbox /var/mail/frank for user frank. "
                    "error writing message: File too large";
    }
    return r;
}

/* run_kind - notice of kind about the mixed recipients, checked against NAME */
static void run_kind(const char *name, enum bounce_kind kind, const char *ret,
                     const char *dsn, int nexpected_reports, const char *log_text)
{
    struct qfile *q =
        make_orig("alice@example.com", ret, "ENV-0001+x", orig_content,
                  strlen(orig_content), mixed_rcpts, POSTA_ARRAY_LEN(mixed_rcpts), "7bit");
    struct bounce_rcpt *r = mixed_results(q, kind, dsn);
    char new_qid[QID_MAX] = "junk";
    struct buf content = BUF_INIT;
    struct qfile *n;
    char *want_log;
    int reports = 0;

    assert_int_equal(bounce_notify(cfg, q, kind, r, q->nrcpts, new_qid), 0);
    assert_int_not_equal(new_qid[0], 0);
    assert_int_equal(count_files(incomingfd), 1);
    n = open_notice(new_qid, "", "alice@example.com", &content);
    assert_string_equal(qfile_attr(n, "encoding"), "7bit");
    for (const char *p = buf_str(&content); (p = strstr(p, "\nFinal-Recipient:")); p++)
        reports++;
    assert_int_equal(reports, nexpected_reports);
    want_log = xasprintf("%s: %s: %s", ORIG_QID, log_text, new_qid);
    assert_true(log_has(want_log));
    free(want_log);
    normalise(&content, new_qid);
    compare_golden(name, &content);
    buf_free(&content);
    qfile_close(n);
    qfile_close(q);
    free(r);
}

/* test_failed_full - failure notice with the whole original (no RET) */
static void test_failed_full(void **state)
{
    /* bob (no NOTIFY), carol (FAILURE), frank (SUCCESS,FAILURE) */
    run_kind("failed_full", BOUNCE_FAILED, NULL, "5.1.1", 3,
             "sender non-delivery notification");
}

/* test_failed_hdrs - RET=HDRS returns the headers only */
static void test_failed_hdrs(void **state)
{
    run_kind("failed_hdrs", BOUNCE_FAILED, "HDRS", "5.1.1", 3,
             "sender non-delivery notification");
}

/* test_delayed - bob (no NOTIFY) and carol (DELAY) */
static void test_delayed(void **state)
{
    run_kind("delayed", BOUNCE_DELAYED, "FULL", "4.4.1", 2, "sender delay notification");
}

/* test_delivered - dave and frank asked for SUCCESS */
static void test_delivered(void **state)
{
    run_kind("delivered", BOUNCE_DELIVERED, NULL, "2.0.0", 2,
             "sender delivery status notification");
}

/* test_relayed - same recipients, Action: relayed */
static void test_relayed(void **state)
{
    run_kind("relayed", BOUNCE_RELAYED, NULL, "2.0.0", 2,
             "sender delivery status notification");
}

/* expect_none - bounce_notify writes nothing for this message and kind */
static void expect_none(const char *sender, enum bounce_kind kind,
                        const struct orcpt_spec *rs, size_t n)
{
    struct qfile *q =
        make_orig(sender, NULL, NULL, orig_content, strlen(orig_content), rs, n, "7bit");
    struct bounce_rcpt *r = rcpts_from(q, "5.1.1", "unknown user");
    char new_qid[QID_MAX] = "junk";

    assert_int_equal(bounce_notify(cfg, q, kind, r, q->nrcpts, new_qid), 0);
    assert_int_equal(new_qid[0], 0);
    assert_int_equal(count_files(incomingfd), 0);
    qfile_close(q);
    free(r);
    empty_dir(activefd);
}

/* test_notify_filter - recipients whose NOTIFY excludes the kind get nothing */
static void test_notify_filter(void **state)
{
    static const struct orcpt_spec never[] = {{"a@example.org", NULL, QNOTIFY_NEVER},
                                              {"b@example.org", NULL, QNOTIFY_SUCCESS},
                                              {"c@example.org", NULL, QNOTIFY_DELAY}};
    static const struct orcpt_spec plain[] = {{"a@example.org", NULL, 0}};
    static const struct orcpt_spec fail_only[] = {{"a@example.org", NULL, QNOTIFY_FAILURE}};

    expect_none("alice@example.com", BOUNCE_FAILED, never, 2); /* NEVER, SUCCESS */
    expect_none("alice@example.com", BOUNCE_DELIVERED, plain, 1);
    expect_none("alice@example.com", BOUNCE_RELAYED, fail_only, 1);
    expect_none("alice@example.com", BOUNCE_DELAYED, fail_only, 1);
    expect_none("alice@example.com", BOUNCE_DELAYED, never, 2);
    expect_none("alice@example.com", BOUNCE_FAILED, never, 0); /* no recipients */
}

/* test_null_sender - a bounce that bounced goes to postmaster only with 2bounce */
static void test_null_sender(void **state)
{
    static const struct orcpt_spec rs[] = {{"gone@example.net", NULL, QNOTIFY_NEVER}};
    struct qfile *q;
    struct bounce_rcpt *r;
    char new_qid[QID_MAX];
    struct buf content = BUF_INIT;
    struct qfile *n;

    expect_none("", BOUNCE_FAILED, rs, 1); /* notify_classes lacks 2bounce */
    assert_true(log_has(ORIG_QID ": undeliverable bounce dropped"));
    cfg_override(cfg, "notify_classes", "resource, software, 2bounce");
    expect_none("", BOUNCE_DELAYED, rs, 1);
    expect_none("", BOUNCE_DELIVERED, rs, 1);

    q = make_orig("", NULL, NULL, orig_content, strlen(orig_content), rs, 1, "7bit");
    r = rcpts_from(q, "5.1.1", "unknown user: \"gone\"");
    assert_int_equal(bounce_notify(cfg, q, BOUNCE_FAILED, r, q->nrcpts, new_qid), 0);
    /* NOTIFY=NEVER does not stop a postmaster copy (as Postfix) */
    n = open_notice(new_qid, "double-bounce@example.org", "postmaster@example.org",
                    &content);
    {
        char *want =
            xasprintf("%s: postmaster non-delivery notification: %s", ORIG_QID, new_qid);

        assert_true(log_has(want));
        free(want);
    }
    normalise(&content, new_qid);
    compare_golden("2bounce", &content);
    buf_free(&content);
    qfile_close(n);
    qfile_close(q);
    free(r);
    empty_dir(incomingfd);
    empty_dir(activefd);

    /* "bounce" implies 2bounce; the recipient setting is honoured */
    cfg_override(cfg, "notify_classes", "bounce");
    cfg_override(cfg, "2bounce_notice_recipient", "mailops@example.com");
    q = make_orig("", NULL, NULL, orig_content, strlen(orig_content), rs, 1, "7bit");
    r = rcpts_from(q, "5.1.1", "unknown user");
    assert_int_equal(bounce_notify(cfg, q, BOUNCE_FAILED, r, q->nrcpts, new_qid), 0);
    n = open_notice(new_qid, "double-bounce@example.org", "mailops@example.com", &content);
    buf_free(&content);
    qfile_close(n);
    qfile_close(q);
    free(r);
    cfg_override(cfg, "2bounce_notice_recipient", "postmaster");
}

/* test_double_bounce - mail from double_bounce_sender is never bounced */
static void test_double_bounce(void **state)
{
    static const struct orcpt_spec rs[] = {{"postmaster@example.org", NULL, 0}};
    static const char *const senders[] = {"double-bounce@example.org", "double-bounce",
                                          "Double-Bounce@mail.example.org",
                                          "DOUBLE-BOUNCE@EXAMPLE.ORG"};
    struct qfile *q;
    struct bounce_rcpt *r;
    char new_qid[QID_MAX];

    cfg_override(cfg, "notify_classes", "2bounce");
    for (size_t i = 0; i < POSTA_ARRAY_LEN(senders); i++)
        expect_none(senders[i], BOUNCE_FAILED, rs, 1);
    assert_true(log_has(ORIG_QID ": undeliverable postmaster notification discarded"));

    /* someone else's double-bounce user is an ordinary sender */
    q = make_orig("double-bounce@elsewhere.example", NULL, NULL, orig_content,
                  strlen(orig_content), rs, 1, "7bit");
    r = rcpts_from(q, "5.1.1", "unknown user");
    assert_int_equal(bounce_notify(cfg, q, BOUNCE_FAILED, r, q->nrcpts, new_qid), 0);
    assert_int_not_equal(new_qid[0], 0);
    assert_int_equal(count_files(incomingfd), 1);
    qfile_close(q);
    free(r);
}

/* fill_body - a header section and a body of size bytes in 72-column lines */
static char *fill_body(size_t size, bool eight_bit)
{
    char *p = xmalloc(size + 1);
    static const char hdr[] = "From: alice@example.com\nSubject: big\n\n";

    memcpy(p, hdr, sizeof(hdr) - 1);
    for (size_t i = sizeof(hdr) - 1; i < size; i++)
        p[i] = (i % 73 == 72)            ? '\n'
               : eight_bit && i % 5 == 0 ? '\xe9'
                                         : 'a' + (char)(i % 26);
    p[size - 1] = '\n';
    p[size] = 0;
    return p;
}

/* test_size_limit - an original over bounce_size_limit comes back as headers */
static void test_size_limit(void **state)
{
    static const struct orcpt_spec rs[] = {{"bob@example.org", NULL, 0}};
    char *body = fill_body(BIG_BODY, false);
    struct qfile *q =
        make_orig("alice@example.com", "FULL", NULL, body, BIG_BODY, rs, 1, "7bit");
    struct bounce_rcpt *r = rcpts_from(q, "5.1.1", "unknown user");
    char new_qid[QID_MAX];
    struct buf content = BUF_INIT;
    struct qfile *n;

    assert_int_equal(bounce_notify(cfg, q, BOUNCE_FAILED, r, 1, new_qid), 0);
    n = open_notice(new_qid, "", "alice@example.com", &content);
    assert_non_null(strstr(buf_str(&content),
                           "Content-Type: text/rfc822-headers\n\n"
                           "From: alice@example.com\nSubject: big\n\n--"));
    assert_null(strstr(buf_str(&content), "abcdefghij"));
    assert_true(content.len < 4096);
    buf_free(&content);
    qfile_close(n);
    qfile_close(q);
    free(r);
    free(body);
}

/* test_8bit - an 8-bit original returned whole: 8bitmime and CTE 8bit */
static void test_8bit(void **state)
{
    static const struct orcpt_spec rs[] = {{"bob@example.org", NULL, 0}};
    char *body = fill_body(2000, true);
    struct qfile *q =
        make_orig("alice@example.com", NULL, NULL, body, 2000, rs, 1, "8bitmime");
    struct bounce_rcpt *r = rcpts_from(q, "5.1.1", "unknown user \xe9\x01");
    char new_qid[QID_MAX];
    struct buf content = BUF_INIT;
    struct qfile *n;
    const char *report;

    assert_int_equal(bounce_notify(cfg, q, BOUNCE_FAILED, r, 1, new_qid), 0);
    n = open_notice(new_qid, "", "alice@example.com", &content);
    assert_string_equal(qfile_attr(n, "encoding"), "8bitmime");
    assert_non_null(strstr(buf_str(&content), "\tboundary=\""));
    assert_non_null(
        strstr(buf_str(&content), "Content-Transfer-Encoding: 8bit\n\nThis is"));
    assert_non_null(strstr(buf_str(&content), "Content-Type: message/rfc822\n"
                                              "Content-Transfer-Encoding: 8bit\n\n"));
    /* the report itself stays 7-bit */
    report = strstr(buf_str(&content), "Diagnostic-Code: X-Posta; unknown user ??\n");
    assert_non_null(report);
    assert_non_null(strstr(buf_str(&content), body));
    buf_free(&content);
    qfile_close(n);
    qfile_close(q);
    free(r);
    free(body);
}

/* expect_status - the Status: line of a one-recipient notice of kind with dsn */
static void expect_status(enum bounce_kind kind, const char *dsn, const char *want)
{
    static const struct orcpt_spec rs[] = {
        {"bob@example.org", NULL, QNOTIFY_SUCCESS | QNOTIFY_FAILURE | QNOTIFY_DELAY}};
    struct qfile *q = make_orig("alice@example.com", NULL, NULL, orig_content,
                                strlen(orig_content), rs, 1, "7bit");
    struct bounce_rcpt *r = rcpts_from(q, dsn, "text");
    char new_qid[QID_MAX];
    struct buf content = BUF_INIT;
    struct qfile *n;
    char *line = xasprintf("\nStatus: %s\n", want);

    assert_int_equal(bounce_notify(cfg, q, kind, r, 1, new_qid), 0);
    n = open_notice(new_qid, "", "alice@example.com", &content);
    if (strstr(buf_str(&content), line) == NULL)
        fail_msg("%s: want %s in\n%s", dsn, want, buf_str(&content));
    free(line);
    buf_free(&content);
    qfile_close(n);
    qfile_close(q);
    free(r);
    empty_dir(incomingfd);
    empty_dir(activefd);
}

/* test_status_class - Status matches the Action's class; junk gets a default */
static void test_status_class(void **state)
{
    expect_status(BOUNCE_FAILED, "5.1.1", "5.1.1");
    expect_status(BOUNCE_FAILED, "4.4.7", "4.4.7"); /* expired */
    expect_status(BOUNCE_FAILED, "2.0.0", "5.0.0");
    expect_status(BOUNCE_FAILED, "5.1.1\nX-Evil: 1", "5.0.0");
    expect_status(BOUNCE_DELAYED, "5.1.1", "4.1.1");
    expect_status(BOUNCE_DELAYED, "4.4.1", "4.4.1");
    expect_status(BOUNCE_DELAYED, "", "4.0.0");
    expect_status(BOUNCE_DELIVERED, "bogus", "2.0.0");
    expect_status(BOUNCE_RELAYED, "2.1.5", "2.1.5");
    expect_status(BOUNCE_DELIVERED, "5.1.1", "2.0.0");
}

/* test_unreadable - an unreadable original still gets a notice, without part 3 */
static void test_unreadable(void **state)
{
    static const struct orcpt_spec rs[] = {{"bob@example.org", NULL, 0}};
    struct qfile *q = make_orig("alice@example.com", NULL, NULL, orig_content,
                                strlen(orig_content), rs, 1, "7bit");
    struct bounce_rcpt *r = rcpts_from(q, "5.1.1", "unknown user");
    char new_qid[QID_MAX];
    struct buf content = BUF_INIT;
    struct qfile *n;
    int fd = openat(activefd, ORIG_QID, O_WRONLY | O_CLOEXEC);

    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, q->content_offset + 1), 0);
    close(fd);
    assert_int_equal(bounce_notify(cfg, q, BOUNCE_FAILED, r, 1, new_qid), 0);
    n = open_notice(new_qid, "", "alice@example.com", &content);
    assert_non_null(strstr(buf_str(&content), "could not be read back"));
    assert_non_null(strstr(buf_str(&content), "Content-Type: message/delivery-status"));
    assert_null(strstr(buf_str(&content), "message/rfc822"));
    assert_true(log_has(ORIG_QID ": read message content for the notice"));
    buf_free(&content);
    qfile_close(n);
    qfile_close(q);
    free(r);
}

/* test_write_error - a file size limit: -1, EFBIG, nothing left behind */
static void test_write_error(void **state)
{
    static const struct orcpt_spec rs[] = {{"bob@example.org", NULL, 0}};
    char *body = fill_body(MEDIUM_BODY, false);
    struct qfile *q =
        make_orig("alice@example.com", NULL, NULL, body, MEDIUM_BODY, rs, 1, "7bit");
    struct bounce_rcpt *r = rcpts_from(q, "5.1.1", "unknown user");
    char new_qid[QID_MAX] = "junk";
    struct rlimit old, lim;
    int rc, e;

    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = FSIZE_LIMIT;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    rc = bounce_notify(cfg, q, BOUNCE_FAILED, r, 1, new_qid);
    e = errno;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_int_equal(rc, -1);
    assert_int_equal(e, EFBIG);
    assert_int_equal(new_qid[0], 0);
    assert_int_equal(count_files(incomingfd), 0);
    qfile_close(q);
    free(r);
    free(body);
}

/* test_no_incoming - a missing incoming/: -1 with ENOENT */
static void test_no_incoming(void **state)
{
    static const struct orcpt_spec rs[] = {{"bob@example.org", NULL, 0}};
    struct qfile *q = make_orig("alice@example.com", NULL, NULL, orig_content,
                                strlen(orig_content), rs, 1, "7bit");
    struct bounce_rcpt *r = rcpts_from(q, "5.1.1", "unknown user");
    char new_qid[QID_MAX];
    char *text = xasprintf("%squeue_directory = %s/nonexistent\n", base_cf, tmpdir);
    char *err = NULL;
    struct cfg *other = cfg_load_string(text, strlen(text), "main.cf", &err);

    assert_non_null(other);
    assert_int_equal(bounce_notify(other, q, BOUNCE_FAILED, r, 1, new_qid), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(new_qid[0], 0);
    cfg_free(other);
    free(text);
    qfile_close(q);
    free(r);
}

/* main - run the tests */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_failed_full, per_test),
        cmocka_unit_test_setup(test_failed_hdrs, per_test),
        cmocka_unit_test_setup(test_delayed, per_test),
        cmocka_unit_test_setup(test_delivered, per_test),
        cmocka_unit_test_setup(test_relayed, per_test),
        cmocka_unit_test_setup(test_notify_filter, per_test),
        cmocka_unit_test_setup(test_null_sender, per_test),
        cmocka_unit_test_setup(test_double_bounce, per_test),
        cmocka_unit_test_setup(test_size_limit, per_test),
        cmocka_unit_test_setup(test_8bit, per_test),
        cmocka_unit_test_setup(test_status_class, per_test),
        cmocka_unit_test_setup(test_unreadable, per_test),
        cmocka_unit_test_setup(test_write_error, per_test),
        cmocka_unit_test_setup(test_no_incoming, per_test),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
