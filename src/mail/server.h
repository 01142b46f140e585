/*
 * server.h - the shared skeleton every event-driven posta daemon runs in
 *
 * A daemon's main() fills in a struct event_server_hooks and calls
 * event_server_main(). The skeleton, not the daemon, does the rest:
 * command line, configuration (main.cf plus the service's -o overrides),
 * logging, dropping privileges, the accept loop and the signals.
 *
 * HOW MASTER STARTS A CHILD (fixed and documented, see docs/ARCHITECTURE.md):
 *   argv: PROGRAM -c CONFIG_DIR -n SERVICE -t TYPE -s NLISTEN
 *                 [-o name=value]... [-r] [-u] [-v]
 *     -r  chroot to queue_directory (master.cf chroot column = y)
 *     -u  run as mail_owner (master.cf unpriv column = y); only acted on
 *         when started as root
 *   file descriptors: listening sockets at SERVER_LISTEN_FD (3) ..
 *     3 + NLISTEN - 1, non-blocking, close-on-exec cleared.
 *   signals: SIGTERM  stop now (sessions are told 421 and closed);
 *            SIGUSR1  drain: stop accepting, finish live sessions, exit
 *                     (master sends this on reload so no session is cut);
 *            SIGHUP, SIGPIPE ignored.
 *   master execs the child with SIGTERM and SIGUSR1 blocked, so one sent
 *   while the child starts stays pending until the event loop takes it.
 *
 * SECURITY: privileges are dropped here (chroot, then setgid/initgroups/
 * setuid to mail_owner) after pre_jail and before any outside input.
 */
#ifndef POSTA_SERVER_H
#define POSTA_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define SERVER_LISTEN_FD 3

struct cfg;

struct server_ctx {
    struct cfg *cfg;
    const char *program;    /* "smtpd" */
    const char *service;    /* master.cf service name, e.g. "smtp" */
    const char *type;       /* "inet", "unix" */
    const char *config_dir;
};

struct event_server_hooks {
    const char *program;
    /* pre_jail - as started (maybe root): open what needs privilege */
    void (*pre_jail)(struct server_ctx *ctx);
    /* post_jail - after privileges are dropped, before the loop */
    void (*post_jail)(struct server_ctx *ctx);
    /* accept - a new connection; fd is non-blocking and close-on-exec */
    void (*accept)(struct server_ctx *ctx, int fd,
                   const struct sockaddr *peer, socklen_t peerlen,
                   const struct sockaddr *local, socklen_t locallen);
    /* sessions - how many sessions are live (drain exits at 0) */
    size_t (*sessions)(void);
    /* stop - SIGTERM: end every session now (421), remove unfinished files */
    void (*stop)(void);
};

/* event_server_main - run the daemon; returns only to exit */
int event_server_main(int argc, char **argv, const struct event_server_hooks *hooks);
/* server_session_ended - a daemon calls this when a session ends (drain check) */
void server_session_ended(void);
/* server_draining - true once SIGUSR1 arrived (stop offering new sessions) */
bool server_draining(void);

#endif
