/*
 * test_qid.c - unit tests for queue IDs
 *
 * Many IDs from one process are valid, unique and strictly increasing as
 * strings; an ID from a child process differs in its PID part; the time
 * encoded in an ID is the wall clock; qid_valid refuses every malformed
 * form.
 */
#include "util/sys.h"

#include <setjmp.h>
#include <sys/wait.h>
#include <time.h>
#include <cmocka.h>

#include "mail/qid.h"

#define MANY_IDS 200000
#define TIME_SLACK_SEC 5

/* test_unique_sorted - strictly increasing, so unique */
static void test_unique_sorted(void **state)
{
    char prev[QID_MAX], cur[QID_MAX];

    qid_new(prev);
    assert_true(qid_valid(prev));
    for (int i = 0; i < MANY_IDS; i++) {
        qid_new(cur);
        if (!qid_valid(cur))
            fail_msg("invalid ID %s", cur);
        if (strcmp(prev, cur) >= 0)
            fail_msg("IDs out of order: %s then %s", prev, cur);
        memcpy(prev, cur, QID_MAX);
    }
}

/* test_time - the encoded time is now */
static void test_time(void **state)
{
    char id[QID_MAX];
    long long sec;
    long usec;
    time_t now = time(NULL);

    qid_new(id);
    assert_true(qid_time(id, &sec, &usec));
    assert_true(sec >= (long long)now - TIME_SLACK_SEC && sec <= (long long)now + TIME_SLACK_SEC);
    assert_true(usec >= 0 && usec < 1000000);
    assert_int_equal(id[10], 'z');
    assert_false(qid_time("bad", &sec, &usec));
}

/* test_fork - a child's IDs differ in the PID part */
static void test_fork(void **state)
{
    char parent[QID_MAX];
    int fds[2], status;
    pid_t pid;

    assert_int_equal(pipe(fds), 0);
    qid_new(parent);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char child[QID_MAX];

        qid_new(child);
        _exit(write(fds[1], child, QID_MAX) == QID_MAX ? 0 : 1);
    }
    {
        char child[QID_MAX];

        assert_int_equal(read(fds[0], child, QID_MAX), QID_MAX);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(qid_valid(child));
        assert_string_not_equal(child + 11, parent + 11);
    }
    close(fds[0]);
    close(fds[1]);
}

/* test_valid - accepted and refused forms */
static void test_valid(void **state)
{
    static const char *good[] = {
        "0000000000z1", "4Bq6Kq1Q9Lz9tdg", "yyyyyyyyyyzyyyyyy", "BCDFGHJKLMzB",
    };
    static const char *bad[] = {
        "", "0000000000z", "000000000z1", "00000000000z1", "0000000000y1",
        "0000000000z01", "0000000000z1234567", "000000000az1", "000000000Az1",
        "000000000ez1", "000000000zz1", "0000000000z1/", "../../etc/x", "0000000000z 1",
        "0000000000zz", "0000000000z1\n",
    };

    for (size_t i = 0; i < POSTA_ARRAY_LEN(good); i++)
        if (!qid_valid(good[i]))
            fail_msg("refused %s", good[i]);
    for (size_t i = 0; i < POSTA_ARRAY_LEN(bad); i++)
        if (qid_valid(bad[i]))
            fail_msg("accepted \"%s\"", bad[i]);
    assert_false(qid_valid(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unique_sorted),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_fork),
        cmocka_unit_test(test_valid),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
