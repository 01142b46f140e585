/*
 * inet.c - sockets: listeners, address text
 *
 * inet_listen() and unix_listen() open the listening sockets master hands
 * to its children; the other functions turn socket addresses into the
 * numeric text posta logs and matches against tables.
 *
 * DIAGNOSTICS: errors are returned as text that names the operation, the
 * address and the reason, e.g. "bind 127.0.0.1 port 2525: Address already
 * in use"; the caller decides whether that is fatal.
 * SECURITY: host names are never resolved here when the host is numeric
 * (AI_NUMERICHOST); a name is resolved once, at start-up, by master.
 */
#include "util/sys.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "util/alloc.h"
#include "util/inet.h"

/* is_numeric_host - an IPv4 or IPv6 literal (no resolver needed) */
static bool is_numeric_host(const char *host)
{
    struct in6_addr a6;
    struct in_addr a4;

    return inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
}

/* listen_one - socket/bind/listen on one resolved address; -1 + *err */
static int listen_one(const struct addrinfo *ai, const char *what, int backlog, char **err)
{
    int on = 1;
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);

    if (fd < 0) {
        *err = xasprintf("socket %s: %s", what, strerror(errno));
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0) {
        *err = xasprintf("setsockopt SO_REUSEADDR %s: %s", what, strerror(errno));
        close(fd);
        return -1;
    }
    /* One socket per family: an IPv6 wildcard must not also take IPv4. */
    if (ai->ai_family == AF_INET6
        && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0) {
        *err = xasprintf("setsockopt IPV6_V6ONLY %s: %s", what, strerror(errno));
        close(fd);
        return -1;
    }
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        *err = xasprintf("bind %s: %s", what, strerror(errno));
        close(fd);
        return -1;
    }
    if (listen(fd, backlog) < 0) {
        *err = xasprintf("listen %s: %s", what, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* inet_listen - bind+listen on host:port */
int inet_listen(const char *host, const char *port, int family, int backlog, char **err)
{
    struct addrinfo hints, *res = NULL, *ai;
    const char *shown = host && *host ? host : family == AF_INET6 ? "::" : "0.0.0.0";
    char *what;
    int rc, fd = -1;

    *err = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    if (port[0] && strspn(port, "0123456789") == strlen(port))
        hints.ai_flags |= AI_NUMERICSERV;
    if (host && *host && is_numeric_host(host))
        hints.ai_flags |= AI_NUMERICHOST;
    if (host && !*host)
        host = NULL;
    what = xasprintf("%s port %s", shown, port);
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        *err = xasprintf("look up %s: %s", what,
                         rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        free(what);
        return -1;
    }
    /* The first address that works; report the first failure otherwise. */
    for (ai = res; ai; ai = ai->ai_next) {
        char *e = NULL;

        fd = listen_one(ai, what, backlog, &e);
        if (fd >= 0) {
            free(*err);
            *err = NULL;
            break;
        }
        if (*err == NULL)
            *err = e;
        else
            free(e);
    }
    freeaddrinfo(res);
    if (fd < 0 && *err == NULL)
        *err = xasprintf("look up %s: no address", what);
    free(what);
    return fd;
}

/* unix_listen - bind+listen on a Unix socket path (removed first) */
int unix_listen(const char *path, int backlog, mode_t mode, char **err)
{
    struct sockaddr_un sun;
    int fd;

    *err = NULL;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        *err = xasprintf("unix socket path too long: %s", path);
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = xasprintf("socket %s: %s", path, strerror(errno));
        return -1;
    }
    if (unlink(path) < 0 && errno != ENOENT) {
        *err = xasprintf("remove %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        *err = xasprintf("bind %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    /* chmod after bind: the umask must not decide who may connect. */
    if (chmod(path, mode) < 0) {
        *err = xasprintf("chmod %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (listen(fd, backlog) < 0) {
        *err = xasprintf("listen %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* sockaddr_text - numeric address into buf[INET_ADDR_MAX] */
const char *sockaddr_text(const struct sockaddr *sa, socklen_t len, char *buf)
{
    buf[0] = 0;
    if (sa == NULL)
        return buf;
    if ((sa->sa_family == AF_INET && len < (socklen_t)sizeof(struct sockaddr_in))
        || (sa->sa_family == AF_INET6 && len < (socklen_t)sizeof(struct sockaddr_in6)))
        return buf;   /* truncated: nothing trustworthy to show */
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

        if (!inet_ntop(AF_INET, &s4->sin_addr, buf, INET_ADDR_MAX))
            buf[0] = 0;
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            if (!inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], buf, INET_ADDR_MAX))
                buf[0] = 0;
        } else if (!inet_ntop(AF_INET6, &s6->sin6_addr, buf, INET_ADDR_MAX)) {
            buf[0] = 0;
        }
    } else if (sa->sa_family == AF_UNIX) {
        snprintf(buf, INET_ADDR_MAX, "%s", "unix");
    } else {
        snprintf(buf, INET_ADDR_MAX, "%s", "unknown");
    }
    return buf;
}

/* sockaddr_port - port number, 0 for non-IP */
int sockaddr_port(const struct sockaddr *sa)
{
    if (sa == NULL)
        return 0;
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return 0;
}

/* set_nonblock - O_NONBLOCK on/off */
void set_nonblock(int fd, bool on)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0)
        return;
    fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    (void)fcntl(fd, F_SETFL, fl);
}

/* set_cloexec - FD_CLOEXEC on/off */
void set_cloexec(int fd, bool on)
{
    int fl = fcntl(fd, F_GETFD);

    if (fl < 0)
        return;
    fl = on ? (fl | FD_CLOEXEC) : (fl & ~FD_CLOEXEC);
    (void)fcntl(fd, F_SETFD, fl);
}
