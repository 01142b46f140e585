/*
 * test_qcommit.c - unit tests for group commit
 *
 * Files handed to qcommit in one loop iteration are flushed together at
 * its end with each method (fsync, syncfs, auto); callbacks get 0 and the
 * files stay; a writer with a sticky error gets its errno and its file is
 * removed; qcommit_cancel works for pending entries and from within a
 * callback; a callback may add a new file, which is committed as well.
 */
#include "util/sys.h"

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "mail/qcommit.h"
#include "mail/qfile.h"
#include "util/event.h"

#define NFILES 5
#define RESULT_NONE (-1)
#define FSIZE_LIMIT 4096
#define BIG_BODY 16384

static char tmpdir[] = "/tmp/test_qcommit.XXXXXX";
static int dirfd_ = -1;
static int results[NFILES + 1];
static int calls;

/* make_file - a finished queue file named name */
static struct qfile_writer *make_file(const char *name)
{
    struct qfile_writer *w = qfw_create(dirfd_, name);

    assert_non_null(w);
    qfw_record(w, QREC_TIME, "1.0", 3);
    qfw_record(w, QREC_SENDER, "a@b", 3);
    qfw_record(w, QREC_RCPT, "c@d", 3);
    qfw_content(w, "Subject: x\n\nbody\n", 17);
    assert_int_equal(qfw_finish(w), 0);
    return w;
}

/* done_cb - record the result for slot ctx */
static void done_cb(void *ctx, int err)
{
    results[(intptr_t)ctx] = err;
    calls++;
}

/* cancel_cb - cancel slot 1 (still running) and add slot NFILES */
static void cancel_cb(void *ctx, int err)
{
    done_cb(ctx, err);
    qcommit_cancel((void *)(intptr_t)1);
    qcommit_add(make_file("late"), done_cb, (void *)(intptr_t)NFILES);
}

/* file_mode - mode of name, or -1 if missing */
static int file_mode(const char *name)
{
    struct stat st;

    return fstatat(dirfd_, name, &st, 0) < 0 ? -1 : (int)(st.st_mode & 07777);
}

/* run_batch - commit NFILES files with the given method */
static void run_batch(const char *mode)
{
    char name[32];

    qcommit_init(dirfd_, mode);
    calls = 0;
    for (int i = 0; i <= NFILES; i++)
        results[i] = RESULT_NONE;
    for (intptr_t i = 0; i < NFILES; i++) {
        snprintf(name, sizeof(name), "%s%d", mode, (int)i);
        qcommit_add(make_file(name), i == 0 ? cancel_cb : done_cb, (void *)i);
    }
    qcommit_cancel((void *)(intptr_t)3);
    event_run_once(0);
    assert_int_equal(results[0], 0);
    assert_int_equal(results[1], RESULT_NONE);   /* cancelled by slot 0's callback */
    assert_int_equal(results[2], 0);
    assert_int_equal(results[3], RESULT_NONE);   /* cancelled while pending */
    assert_int_equal(results[4], 0);
    assert_int_equal(results[NFILES], 0);        /* added from a callback */
    for (int i = 0; i < NFILES; i++) {
        snprintf(name, sizeof(name), "%s%d", mode, i);
        assert_int_equal(file_mode(name), QFILE_MODE_DONE);   /* cancelled ones kept */
        unlinkat(dirfd_, name, 0);
    }
    unlinkat(dirfd_, "late", 0);
}

/* test_methods - each flush method commits the batch */
static void test_methods(void **state)
{
    run_batch("fsync");
    run_batch("syncfs");
    run_batch("auto");
}

/* test_single - one file alone (auto uses fsync) */
static void test_single(void **state)
{
    qcommit_init(dirfd_, "auto");
    results[0] = RESULT_NONE;
    qcommit_add(make_file("single"), done_cb, (void *)(intptr_t)0);
    qcommit_flush();
    assert_int_equal(results[0], 0);
    assert_int_equal(file_mode("single"), QFILE_MODE_DONE);
    unlinkat(dirfd_, "single", 0);
}

/* test_failed_writer - a sticky write error: errno to the callback, file removed */
static void test_failed_writer(void **state)
{
    static char body[BIG_BODY];
    struct rlimit old, lim;
    struct qfile_writer *w;

    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = FSIZE_LIMIT;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    w = qfw_create(dirfd_, "failed");
    assert_non_null(w);
    qfw_record(w, QREC_TIME, "1.0", 3);
    qfw_record(w, QREC_SENDER, "a@b", 3);
    memset(body, 'x', sizeof(body));
    qfw_content(w, body, sizeof(body));
    assert_int_equal(qfw_finish(w), -1);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    qcommit_init(dirfd_, "fsync");
    results[0] = RESULT_NONE;
    qcommit_add(w, done_cb, (void *)(intptr_t)0);
    event_run_once(0);
    assert_int_equal(results[0], EFBIG);
    assert_int_equal(file_mode("failed"), -1);
}

/* setup - event loop and a temporary directory */
static int setup(void **state)
{
    event_init();
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    dirfd_ = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return dirfd_ < 0 ? -1 : 0;
}

/* teardown - remove the directory */
static int teardown(void **state)
{
    close(dirfd_);
    return rmdir(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_single),
        cmocka_unit_test(test_failed_writer),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
