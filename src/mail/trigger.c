/*
 * trigger.c - wake a posta daemon with a one-byte request
 *
 * The connection is non-blocking: a receiver that is busy or absent never
 * stalls the sender (smtpd calls this from its event loop). A full listen
 * queue (EAGAIN) means the receiver already has triggers waiting, so the
 * byte may be dropped.
 *
 * DIAGNOSTICS: none from trigger_send (best effort by design);
 *   trigger_send_checked returns false with errno.
 * SECURITY: the path is built from queue_directory and a constant service
 *   name; nothing from outside reaches it.
 */
#include "util/sys.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "mail/config.h"
#include "mail/trigger.h"

/* trigger_send_checked - connect, write one byte, close; false + errno */
bool trigger_send_checked(struct cfg *cfg, const char *service_path, char code)
{
    struct sockaddr_un sun;
    const char *top = cfg_str(cfg, "queue_directory");
    int fd, n, saved;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/%s", top, service_path);
    if (n < 0 || (size_t)n >= sizeof(sun.sun_path)) {
        errno = ENAMETOOLONG;
        return false;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0
        || send(fd, &code, 1, MSG_NOSIGNAL) != 1) {
        saved = errno;
        close(fd);
        errno = saved;
        return false;
    }
    close(fd);
    return true;
}

/* trigger_send - best effort: the receiver also scans on its own */
void trigger_send(struct cfg *cfg, const char *service_path, char code)
{
    int saved = errno;

    (void)trigger_send_checked(cfg, service_path, code);
    errno = saved;
}
