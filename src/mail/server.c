/*
 * server.c - the shared skeleton every event-driven posta daemon runs in
 *
 * event_server_main() parses the command line master gives a child (see
 * server.h), loads main.cf plus the service's -o overrides, opens the log,
 * runs the daemon's pre_jail hook, drops privileges, runs post_jail, then
 * accepts connections on the listeners at fd 3.. and hands each one to
 * the daemon's accept hook until SIGTERM (stop now) or SIGUSR1 (drain).
 *
 * Several processes share each listener (EPOLLEXCLUSIVE wakes one of
 * them); accept4() runs until EAGAIN, so a process that loses the race
 * simply finds nothing. Running out of descriptors (EMFILE/ENFILE) pauses
 * accepting for a moment instead of spinning on a readable listener.
 *
 * DIAGNOSTICS: bad usage and bad configuration are fatal (master logs the
 * exit and restarts, throttled). Accept errors other than the transient
 * ones are logged as warnings.
 * SECURITY: privileges are dropped here, after pre_jail and before the
 * first connection is accepted: chroot to queue_directory (-r), then
 * setgid/initgroups/setuid to mail_owner (-u). mail_owner = root is
 * refused, and the drop is verified (setuid(0) must fail afterwards).
 */
#include "util/sys.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include "mail/config.h"
#include "mail/server.h"
#include "util/alloc.h"
#include "util/event.h"
#include "util/inet.h"
#include "util/log.h"

#define SERVER_EXIT_OK 0
#define SERVER_MAX_LISTEN 64          /* sanity limit on -s */
#define SERVER_ACCEPT_BURST 256       /* accepts per wake-up, for fairness */
#define SERVER_FD_PAUSE_MS 1000       /* pause after EMFILE/ENFILE */

struct listener {
    int fd;
    bool watched;
};

static const struct event_server_hooks *srv_hooks;
static struct server_ctx srv_ctx;
static struct listener srv_listen[SERVER_MAX_LISTEN];
static int srv_nlisten;
static bool srv_draining;
static struct event_timer srv_pause_timer;

/* server_usage - bad command line: fatal */
static void POSTA_NORETURN server_usage(const char *program)
{
    msg_fatal("usage: %s -c config_dir -n service -t type -s count "
              "[-o name=value]... [-r] [-u] [-v]", program);
}

/* server_sessions - live sessions according to the daemon */
static size_t server_sessions(void)
{
    return srv_hooks->sessions ? srv_hooks->sessions() : 0;
}

/* server_drain_check - exit once draining and no session is left */
static void server_drain_check(void *ctx)
{
    (void)ctx;
    if (srv_draining && server_sessions() == 0) {
        msg_verbose("drained: no live session left");
        exit(SERVER_EXIT_OK);
    }
}

/* server_session_ended - a daemon calls this when a session ends */
void server_session_ended(void)
{
    /* Deferred: the daemon finishes its own clean-up before we count. */
    if (srv_draining)
        event_defer(server_drain_check, NULL);
}

/* server_draining - true once SIGUSR1 arrived */
bool server_draining(void)
{
    return srv_draining;
}

static void server_accept_ready(int fd, unsigned events, void *ctx);

/* server_watch - start or stop watching every open listener */
static void server_watch(bool on)
{
    for (int i = 0; i < srv_nlisten; i++) {
        struct listener *l = &srv_listen[i];

        if (l->fd < 0 || l->watched == on)
            continue;
        if (on)
            event_add(l->fd, EVENT_READ, server_accept_ready, l, true);
        else
            event_remove(l->fd);
        l->watched = on;
    }
}

/* server_resume - the descriptor shortage pause is over */
static void server_resume(void *ctx)
{
    (void)ctx;
    if (!srv_draining)
        server_watch(true);
}

/* server_accept_one - hand one accepted connection to the daemon */
static void server_accept_one(int fd, const struct sockaddr_storage *peer, socklen_t peerlen)
{
    struct sockaddr_storage local;
    socklen_t locallen = sizeof(local);

    memset(&local, 0, sizeof(local));
    if (getsockname(fd, (struct sockaddr *)&local, &locallen) < 0) {
        msg_warn("getsockname: %m");
        locallen = 0;
    }
    srv_hooks->accept(&srv_ctx, fd, (const struct sockaddr *)peer, peerlen,
                      (const struct sockaddr *)&local, locallen);
}

/* server_accept_ready - accept until EAGAIN (or a burst limit) */
static void server_accept_ready(int fd, unsigned events, void *ctx)
{
    (void)events;
    (void)ctx;
    for (int n = 0; n < SERVER_ACCEPT_BURST && !srv_draining; n++) {
        struct sockaddr_storage peer;
        socklen_t peerlen = sizeof(peer);
        int cfd;

        memset(&peer, 0, sizeof(peer));
        cfd = accept4(fd, (struct sockaddr *)&peer, &peerlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd >= 0) {
            server_accept_one(cfd, &peer, peerlen);
            continue;
        }
        switch (errno) {
        case EAGAIN:
        case EINTR:
            return;
        case ECONNABORTED:
        case EPROTO:
        case EPERM:   /* firewall rules */
        case ENETDOWN:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case ENONET:
        case EHOSTUNREACH:
        case EOPNOTSUPP:
        case ENETUNREACH:
            continue;   /* the client went away; try the next one */
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM:
            msg_warn("accept: %m; pausing for %d ms", SERVER_FD_PAUSE_MS);
            server_watch(false);
            event_timer_arm(&srv_pause_timer, SERVER_FD_PAUSE_MS);
            return;
        default:
            msg_warn("accept: %m");
            return;
        }
    }
}

/* server_on_stop - SIGTERM/SIGINT: end every session now and exit */
static void server_on_stop(int signo)
{
    msg_verbose("stopping on signal %d", signo);
    if (srv_hooks->stop)
        srv_hooks->stop();
    exit(SERVER_EXIT_OK);
}

/* server_on_drain - SIGUSR1: stop accepting, exit when sessions are done */
static void server_on_drain(int signo)
{
    (void)signo;
    if (srv_draining)
        return;
    srv_draining = true;
    event_timer_disarm(&srv_pause_timer);
    server_watch(false);
    for (int i = 0; i < srv_nlisten; i++) {
        if (srv_listen[i].fd >= 0)
            close(srv_listen[i].fd);
        srv_listen[i].fd = -1;
    }
    msg_verbose("draining: %zu live session(s)", server_sessions());
    server_drain_check(NULL);
}

/* server_open_log - tag syslog_name/program; maillog_file or the defaults */
static void server_open_log(struct cfg *cfg, const char *program)
{
    const char *file = cfg_str(cfg, "maillog_file");
    char *tag = xasprintf("%s/%s", cfg_str(cfg, "syslog_name"), program);

    if (file && *file)
        log_open(tag, LOG_SINK_FILE, file);
    else
        log_open(tag, log_default_sinks(), NULL);
    log_set_hostname(cfg_str(cfg, "myhostname"));
    free(tag);
}

/* server_drop_privileges - chroot (-r), become mail_owner (-u); verified */
static void server_drop_privileges(struct cfg *cfg, bool do_chroot, bool do_unpriv)
{
    const char *owner = cfg_str(cfg, "mail_owner");
    const char *qdir = cfg_str(cfg, "queue_directory");
    struct passwd *pw = NULL;
    uid_t uid;
    gid_t gid;

    if (geteuid() != 0) {
        /* An unprivileged instance: there is nothing to give up. */
        msg_verbose("not root: -r and -u do not apply");
        return;
    }
    if (do_unpriv) {
        errno = 0;
        pw = getpwnam(owner);
        if (pw == NULL)
            msg_fatal("mail_owner %s: %s", owner,
                      errno ? strerror(errno) : "no such user");
        if (pw->pw_uid == 0)
            msg_fatal("mail_owner %s has user ID 0: refusing to run as root", owner);
    }
    uid = pw ? pw->pw_uid : 0;
    gid = pw ? pw->pw_gid : 0;
    /* Group membership first: /etc/group is not reachable after chroot. */
    if (pw) {
        if (setgid(gid) < 0)
            msg_fatal("setgid %ld: %m", (long)gid);
        if (initgroups(owner, gid) < 0)
            msg_fatal("initgroups %s: %m", owner);
    }
    if (do_chroot) {
        if (chroot(qdir) < 0)
            msg_fatal("chroot %s: %m", qdir);
        if (chdir("/") < 0)
            msg_fatal("chdir / in chroot %s: %m", qdir);
        /* Inside the jail the queue is "/": paths built from
         * queue_directory from now on (triggers, sockets) stay valid.
         * Everything outside it must be opened in pre_jail. */
        cfg_override(cfg, "queue_directory", "/");
    }
    if (pw) {
        if (setuid(uid) < 0)
            msg_fatal("setuid %ld: %m", (long)uid);
        /* Verify: the drop must be permanent. */
        if (getuid() != uid || geteuid() != uid || getgid() != gid || getegid() != gid)
            msg_fatal("privilege drop to %s did not take effect", owner);
        if (setuid(0) == 0 || seteuid(0) == 0)
            msg_fatal("privilege drop to %s is reversible: refusing to run", owner);
    }
}

/* server_check_listeners - fds 3.. must be listening sockets from master */
static void server_check_listeners(int count)
{
    for (int i = 0; i < count; i++) {
        int fd = SERVER_LISTEN_FD + i;
        int type = 0;
        socklen_t len = sizeof(type);

        if (fcntl(fd, F_GETFD) < 0)
            msg_fatal("no listening socket at fd %d: this program is started by master", fd);
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
            msg_fatal("fd %d is not a socket: %m", fd);
        set_nonblock(fd, true);
        set_cloexec(fd, true);
        srv_listen[i].fd = fd;
        srv_listen[i].watched = false;
    }
    srv_nlisten = count;
}

/* server_parent_watch - exit when master goes away without telling us */
static void server_parent_watch(pid_t parent)
{
    /* Reset by setuid, so set it after the privilege drop. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
        msg_warn("prctl PR_SET_PDEATHSIG: %m");
    if (getppid() != parent)
        msg_fatal("master went away during start-up");
}

/* event_server_main - run the daemon; returns only to exit */
int event_server_main(int argc, char **argv, const struct event_server_hooks *hooks)
{
    const char *program = hooks->program ? hooks->program : "posta";
    const char *config_dir = NULL, *service = NULL, *type = NULL;
    char **overrides = xcalloc((size_t)argc + 1, sizeof(char *));
    size_t noverrides = 0;
    bool do_chroot = false, do_unpriv = false;
    int verbose = 0, nlisten = 1, c;
    pid_t parent = getppid();
    struct cfg *cfg;

    srv_hooks = hooks;
    if (hooks->accept == NULL)
        msg_panic("event_server_main: %s has no accept hook", program);
    log_open(program, LOG_SINK_STDERR, NULL);
    opterr = 0;
    while ((c = getopt(argc, argv, "+c:n:t:s:o:ruv")) != -1) {
        switch (c) {
        case 'c':
            config_dir = optarg;
            break;
        case 'n':
            service = optarg;
            break;
        case 't':
            type = optarg;
            break;
        case 's': {
            char *end;
            long v;

            errno = 0;
            v = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || v < 0 || v > SERVER_MAX_LISTEN)
                msg_fatal("bad listener count: -s %s", optarg);
            nlisten = (int)v;
            break;
        }
        case 'o':
            overrides[noverrides++] = optarg;
            break;
        case 'r':
            do_chroot = true;
            break;
        case 'u':
            do_unpriv = true;
            break;
        case 'v':
            verbose++;
            break;
        default:
            server_usage(program);
        }
    }
    if (optind != argc)
        server_usage(program);

    config_dir = cfg_default_dir(config_dir);
    cfg = cfg_load(config_dir);
    /* Read-only, as in Postfix: -o values may say $service_name
     * (Debian's master.cf: syslog_name=postfix/$service_name). */
    cfg_override(cfg, "service_name", service ? service : program);
    cfg_override(cfg, "process_name", program);
    for (size_t i = 0; i < noverrides; i++)
        if (!cfg_override_arg(cfg, overrides[i]))
            msg_fatal("bad -o argument (want name=value): %s", overrides[i]);
    free(overrides);
    server_open_log(cfg, program);
    log_set_verbose(verbose);

    srv_ctx.cfg = cfg;
    srv_ctx.program = program;
    srv_ctx.service = service ? service : program;
    srv_ctx.type = type ? type : "inet";
    srv_ctx.config_dir = config_dir;

    (void)signal(SIGPIPE, SIG_IGN);
    (void)signal(SIGHUP, SIG_IGN);
    server_check_listeners(nlisten);

    if (hooks->pre_jail)
        hooks->pre_jail(&srv_ctx);
    server_drop_privileges(cfg, do_chroot, do_unpriv);
    server_parent_watch(parent);
    if (hooks->post_jail)
        hooks->post_jail(&srv_ctx);

    event_init();
    event_timer_setup(&srv_pause_timer, server_resume, NULL);
    event_signal(SIGTERM, server_on_stop);
    event_signal(SIGINT, server_on_stop);
    event_signal(SIGUSR1, server_on_drain);
    server_watch(true);
    msg_verbose("service %s: %d listener(s), ready", srv_ctx.service, nlisten);
    event_run();
    return SERVER_EXIT_OK;
}
