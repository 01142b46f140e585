/*
 * inet.h - sockets: listeners, address text
 */
#ifndef POSTA_INET_H
#define POSTA_INET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#define INET_ADDR_MAX 64   /* text of an IPv6 address, brackets excluded */

/*
 * inet_listen - bind+listen on host:port (host "" or NULL: wildcard of the
 * family); family AF_INET, AF_INET6 (IPV6_V6ONLY set) or AF_UNSPEC.
 * Returns a non-blocking close-on-exec fd, or -1 with *err set.
 */
int inet_listen(const char *host, const char *port, int family, int backlog, char **err);
/* unix_listen - bind+listen on a Unix socket path (removed first) */
int unix_listen(const char *path, int backlog, mode_t mode, char **err);
/* sockaddr_text - numeric address (no port) into buf[INET_ADDR_MAX]; IPv4-mapped shown as IPv4 */
const char *sockaddr_text(const struct sockaddr *sa, socklen_t len, char *buf);
/* sockaddr_port - port number, 0 for non-IP */
int sockaddr_port(const struct sockaddr *sa);
/* set_nonblock - O_NONBLOCK on/off */
void set_nonblock(int fd, bool on);
void set_cloexec(int fd, bool on);

#endif
