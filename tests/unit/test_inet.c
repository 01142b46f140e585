/*
 * test_inet.c - unit tests for the listener and address helpers (util/inet)
 *
 * Binds only on 127.0.0.1 and ::1 with port 0 (the kernel picks a free
 * port), so the tests run anywhere and in parallel.
 */
#include "util/sys.h"

#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "util/inet.h"

#define TEST_BACKLOG 8
#define TEST_SOCK_MODE 0666
#define PORT_TEXT_MAX 16

/* bound_port - the port the kernel picked for fd */
static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    return sockaddr_port((struct sockaddr *)&ss);
}

/* test_listen_v4 - a listener is non-blocking, close-on-exec, listening */
static void test_listen_v4(void **state)
{
    char *err = NULL;
    int fd = inet_listen("127.0.0.1", "0", AF_INET, TEST_BACKLOG, &err);
    int on = 0;
    socklen_t len = sizeof(on);

    (void)state;
    assert_true(fd >= 0);
    assert_null(err);
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len), 0);
    assert_int_equal(on, 1);
    assert_true(bound_port(fd) > 0);
    close(fd);
}

/* test_address_in_use - a second bind says which address and why */
static void test_address_in_use(void **state)
{
    char *err = NULL, port[PORT_TEXT_MAX], want[128];
    int fd = inet_listen("127.0.0.1", "0", AF_INET, TEST_BACKLOG, &err);
    int fd2;

    (void)state;
    assert_true(fd >= 0);
    snprintf(port, sizeof(port), "%d", bound_port(fd));
    fd2 = inet_listen("127.0.0.1", port, AF_INET, TEST_BACKLOG, &err);
    assert_int_equal(fd2, -1);
    assert_non_null(err);
    snprintf(want, sizeof(want), "bind 127.0.0.1 port %s: Address already in use", port);
    assert_string_equal(err, want);
    free(err);
    close(fd);
}

/* test_bad_host - a malformed address is an error, not a crash */
static void test_bad_host(void **state)
{
    char *err = NULL;
    int fd = inet_listen("127.0.0.300", "0", AF_INET, TEST_BACKLOG, &err);

    (void)state;
    assert_int_equal(fd, -1);
    assert_non_null(err);
    assert_non_null(strstr(err, "127.0.0.300"));
    free(err);
}

/* test_listen_v6_only - an IPv6 listener does not take IPv4 */
static void test_listen_v6_only(void **state)
{
    char *err = NULL;
    int fd = inet_listen("::1", "0", AF_INET6, TEST_BACKLOG, &err);
    int on = 0;
    socklen_t len = sizeof(on);

    (void)state;
    if (fd < 0) {
        free(err);
        skip();   /* no IPv6 on this host */
    }
    assert_int_equal(getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, &len), 0);
    assert_int_equal(on, 1);
    close(fd);
}

/* test_sockaddr_text - numeric text, IPv4-mapped shown as IPv4 */
static void test_sockaddr_text(void **state)
{
    struct sockaddr_in6 s6;
    struct sockaddr_in s4;
    char buf[INET_ADDR_MAX];

    (void)state;
    memset(&s4, 0, sizeof(s4));
    s4.sin_family = AF_INET;
    s4.sin_port = htons(25);
    assert_int_equal(inet_pton(AF_INET, "192.0.2.7", &s4.sin_addr), 1);
    assert_string_equal(sockaddr_text((struct sockaddr *)&s4, sizeof(s4), buf), "192.0.2.7");
    assert_int_equal(sockaddr_port((struct sockaddr *)&s4), 25);

    memset(&s6, 0, sizeof(s6));
    s6.sin6_family = AF_INET6;
    s6.sin6_port = htons(587);
    assert_int_equal(inet_pton(AF_INET6, "::ffff:198.51.100.1", &s6.sin6_addr), 1);
    assert_string_equal(sockaddr_text((struct sockaddr *)&s6, sizeof(s6), buf), "198.51.100.1");
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", &s6.sin6_addr), 1);
    assert_string_equal(sockaddr_text((struct sockaddr *)&s6, sizeof(s6), buf), "2001:db8::1");
    assert_int_equal(sockaddr_port((struct sockaddr *)&s6), 587);
    /* Truncated length: no read past what the caller said. */
    assert_string_equal(sockaddr_text((struct sockaddr *)&s6, 4, buf), "");
}

/* test_unix_listen - path replaced, mode applied after bind */
static void test_unix_listen(void **state)
{
    char dir[] = "/tmp/test_inet.XXXXXX";
    char path[128], *err = NULL;
    struct stat st;
    int fd, fd2;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/sock", dir);
    fd = unix_listen(path, TEST_BACKLOG, TEST_SOCK_MODE, &err);
    assert_true(fd >= 0);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, TEST_SOCK_MODE);
    /* A stale socket file is replaced. */
    fd2 = unix_listen(path, TEST_BACKLOG, TEST_SOCK_MODE, &err);
    assert_true(fd2 >= 0);
    close(fd);
    close(fd2);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listen_v4),
        cmocka_unit_test(test_address_in_use),
        cmocka_unit_test(test_bad_host),
        cmocka_unit_test(test_listen_v6_only),
        cmocka_unit_test(test_sockaddr_text),
        cmocka_unit_test(test_unix_listen),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
