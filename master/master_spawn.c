/*
 * master_spawn.c - master's children: fork+exec, reaping, restart throttle
 *
 * Every service keeps mservice.nproc children running. A child gets the
 * service's listeners at fd 3.. (close-on-exec cleared on exactly those),
 * /dev/null on stdin and stdout, master's stderr, an empty signal mask and
 * default signal dispositions, and the argv built by master_conf.c.
 *
 * A child that exits is restarted at once, unless it keeps failing on its
 * own (a non-zero exit status or a crash; not a clean exit, not a kill
 * from outside) soon after it starts: after MASTER_THROTTLE_COUNT such
 * exits in a row the
 * service is throttled for service_throttle_time before the next try, so
 * a broken program or configuration does not make master spin.
 *
 * On reload the children of the old configuration are detached: they get
 * SIGUSR1 (finish live sessions, then exit) and are never restarted.
 *
 * DIAGNOSTICS: "process PATH pid N exit status S" or "... killed by
 * signal S" for a child that ends abnormally; "service NAME: ...
 * throttling" when a service is throttled.
 */
#include "util/sys.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "mail/config.h"
#include "mail/server.h"
#include "master.h"
#include "util/alloc.h"
#include "util/log.h"

#define MASTER_EXEC_FAILED 127
#define MASTER_FAST_EXIT_MS 10000     /* an exit this soon counts as failure */
#define MASTER_THROTTLE_COUNT 3       /* fast exits in a row before throttle */
#define MASTER_FORK_RETRY_MS 1000
#define MASTER_STOP_WAIT_MS 5000      /* SIGTERM grace before SIGKILL */
#define MASTER_STOP_POLL_MS 20
#define MASTER_WAKEUP_TEXT "W"

struct mchild {
    pid_t pid;
    struct mservice *svc;   /* NULL once detached (draining) */
    char *path;             /* for log lines after detaching */
    uint64_t started;       /* monotonic ms */
};

static struct mchild *children;
static size_t nchildren;
static bool stopping;
static struct event_timer fork_retry_timer;

/* now_ms - monotonic milliseconds (not the loop's cached clock) */
static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* child_setup_fds - listeners to 3.., stdio, close the rest (in the child) */
static void child_setup_fds(const struct mservice *svc)
{
    int first_free = SERVER_LISTEN_FD + (int)svc->nlisten;
    int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
    int *tmp = xcalloc(svc->nlisten + 1, sizeof(int));

    if (nul < 0 || dup2(nul, STDIN_FILENO) < 0 || dup2(nul, STDOUT_FILENO) < 0) {
        msg_warn("child: /dev/null: %m");
        _exit(MASTER_EXEC_FAILED);
    }
    /* Two steps: a listener may already sit on one of the target fds. */
    for (size_t i = 0; i < svc->nlisten; i++) {
        tmp[i] = fcntl(svc->listen[i].fd, F_DUPFD_CLOEXEC, first_free);
        if (tmp[i] < 0) {
            msg_warn("child: dup listener: %m");
            _exit(MASTER_EXEC_FAILED);
        }
    }
    for (size_t i = 0; i < svc->nlisten; i++) {
        /* dup2 leaves close-on-exec clear on the new descriptor. */
        if (dup2(tmp[i], SERVER_LISTEN_FD + (int)i) < 0) {
            msg_warn("child: dup2 listener: %m");
            _exit(MASTER_EXEC_FAILED);
        }
    }
    free(tmp);
    if (close_range((unsigned)first_free, ~0U, 0) < 0) {
        for (int fd = first_free; fd < first_free + 1024; fd++)
            (void)close(fd);
    }
}

/* child_exec - in the child: clean signal state, fds, then exec */
static void POSTA_NORETURN child_exec(const struct mservice *svc)
{
    sigset_t held;

    /*
     * SIGTERM and SIGUSR1 stay blocked across exec: a stop or a drain that
     * master sends before the skeleton has set up its signalfd stays
     * pending and is handled by the event loop, instead of killing a child
     * that is still starting (seen on reload under load).
     */
    sigemptyset(&held);
    sigaddset(&held, SIGTERM);
    sigaddset(&held, SIGUSR1);
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            (void)signal(sig, SIG_DFL);
    (void)sigprocmask(SIG_SETMASK, &held, NULL);
    /* Only master talks to systemd. */
    (void)unsetenv("NOTIFY_SOCKET");
    child_setup_fds(svc);
    execv(svc->path, svc->argv);
    msg_warn("exec %s: %m", svc->path);
    _exit(MASTER_EXEC_FAILED);
}

/* fork_retry - fork failed earlier: try again */
static void fork_retry(void *ctx)
{
    (void)ctx;
    if (master_current)
        master_spawn_all(master_current);
}

/* spawn_one - start one child of svc; false if fork failed */
static bool spawn_one(struct mservice *svc)
{
    pid_t pid = fork();

    if (pid < 0) {
        msg_warn("service %s: fork: %m; retrying", svc->name);
        event_timer_arm(&fork_retry_timer, MASTER_FORK_RETRY_MS);
        return false;
    }
    if (pid == 0)
        child_exec(svc);
    children = xreallocarray(children, nchildren + 1, sizeof(*children));
    children[nchildren].pid = pid;
    children[nchildren].svc = svc;
    children[nchildren].path = xstrdup(svc->path);
    children[nchildren].started = now_ms();
    nchildren++;
    svc->running++;
    msg_verbose("service %s: started %s pid %ld", svc->name, svc->path, (long)pid);
    return true;
}

/* throttle_over - the pause is over: try the service again */
static void throttle_over(void *ctx)
{
    struct mservice *svc = ctx;

    svc->throttled = false;
    /* One more fast failure throttles again at once. */
    svc->fast_exits = MASTER_THROTTLE_COUNT - 1;
    if (!stopping)
        master_spawn_all(svc->conf);
}

/* wakeup_send - poke a unix or fifo service, as its wakeup column asks */
static void wakeup_send(void *ctx)
{
    struct mservice *svc = ctx;
    const char *path = svc->listen[0].path;
    int fd = -1;

    if (strcmp(svc->type, "fifo") == 0) {
        fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    } else {
        struct sockaddr_un sun;

        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        if (strlen(path) < sizeof(sun.sun_path)) {
            memcpy(sun.sun_path, path, strlen(path) + 1);
            fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
                close(fd);
                fd = -1;
            }
        }
    }
    if (fd < 0 || write(fd, MASTER_WAKEUP_TEXT, strlen(MASTER_WAKEUP_TEXT)) < 0)
        msg_warn("service %s: wakeup %s: %m", svc->name, path);
    if (fd >= 0)
        close(fd);
    event_timer_arm(&svc->wakeup_timer, (uint64_t)svc->wakeup * 1000u);
}

/* master_spawn_all - start the children every service still lacks */
void master_spawn_all(struct mconfig *conf)
{
    static bool timer_ready;

    if (!timer_ready) {
        event_timer_setup(&fork_retry_timer, fork_retry, NULL);
        timer_ready = true;
    }
    if (stopping)
        return;
    for (size_t s = 0; s < conf->nsvc; s++) {
        struct mservice *svc = &conf->svc[s];

        svc->throttle_timer.fn = throttle_over;
        svc->throttle_timer.ctx = svc;
        svc->wakeup_timer.fn = wakeup_send;
        svc->wakeup_timer.ctx = svc;
        if (svc->wakeup > 0 && svc->nlisten > 0 && svc->listen[0].path
            && !event_timer_armed(&svc->wakeup_timer))
            event_timer_arm(&svc->wakeup_timer, (uint64_t)svc->wakeup * 1000u);
        while (!svc->throttled && svc->running < svc->nproc)
            if (!spawn_one(svc))
                return;
    }
}

/* master_spawn_detach - drain every child of conf (SIGUSR1), forget conf */
void master_spawn_detach(struct mconfig *conf)
{
    for (size_t i = 0; i < nchildren; i++) {
        struct mchild *c = &children[i];

        if (c->svc == NULL || c->svc->conf != conf)
            continue;
        if (kill(c->pid, SIGUSR1) < 0 && errno != ESRCH)
            msg_warn("kill SIGUSR1 pid %ld: %m", (long)c->pid);
        c->svc->running--;
        c->svc = NULL;
    }
}

/* log_exit - one line for a child that ended abnormally */
static void log_exit(const struct mchild *c, int status)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        msg_warn("process %s pid %ld exit status %d", c->path, (long)c->pid,
                 WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        msg_warn("process %s pid %ld killed by signal %d", c->path, (long)c->pid,
                 WTERMSIG(status));
}

/*
 * failed_by_itself - the child failed on its own: a non-zero exit status
 * (a fatal error) or a crash. A clean exit, or a kill from outside
 * (SIGKILL, SIGTERM, SIGINT, SIGHUP: an admin or a test), says nothing
 * about the program or its configuration and never leads to throttling.
 */
static bool failed_by_itself(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status) != 0;
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);

        return sig != SIGKILL && sig != SIGTERM && sig != SIGINT && sig != SIGHUP;
    }
    return false;
}

/* child_gone - bookkeeping for one reaped child; restart or throttle */
static void child_gone(struct mchild *c, int status)
{
    struct mservice *svc = c->svc;
    uint64_t lived = now_ms() - c->started;

    if (!stopping)
        log_exit(c, status);
    if (svc == NULL || stopping)
        return;
    svc->running--;
    if (lived < MASTER_FAST_EXIT_MS && failed_by_itself(status))
        svc->fast_exits++;
    else
        svc->fast_exits = 0;
    if (svc->fast_exits >= MASTER_THROTTLE_COUNT && !svc->throttled) {
        long long pause = cfg_time(svc->conf->cfg, "service_throttle_time");

        msg_warn("service %s: child %s exited %d times in a row within %d s of "
                 "starting; throttling, next try in %lld s", svc->name, c->path,
                 svc->fast_exits, MASTER_FAST_EXIT_MS / 1000, pause);
        svc->throttled = true;
        event_timer_arm(&svc->throttle_timer, (uint64_t)pause * 1000u);
    }
}

/* reap - collect exited children; true if any */
static bool reap(void)
{
    bool any = false;
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        any = true;
        for (size_t i = 0; i < nchildren; i++) {
            if (children[i].pid != pid)
                continue;
            child_gone(&children[i], status);
            free(children[i].path);
            children[i] = children[--nchildren];
            break;
        }
    }
    return any;
}

/* master_spawn_reap - collect exited children; restart or throttle */
void master_spawn_reap(void)
{
    if (reap() && !stopping && master_current)
        master_spawn_all(master_current);
}

/* master_spawn_stop - SIGTERM all children, wait, SIGKILL leftovers */
void master_spawn_stop(void)
{
    uint64_t deadline = now_ms() + MASTER_STOP_WAIT_MS;
    struct timespec poll = {0, MASTER_STOP_POLL_MS * 1000000L};

    stopping = true;
    for (size_t i = 0; i < nchildren; i++)
        if (kill(children[i].pid, SIGTERM) < 0 && errno != ESRCH)
            msg_warn("kill SIGTERM pid %ld: %m", (long)children[i].pid);
    while (nchildren > 0 && now_ms() < deadline) {
        reap();
        if (nchildren > 0)
            nanosleep(&poll, NULL);
    }
    for (size_t i = 0; i < nchildren; i++) {
        msg_warn("process %s pid %ld did not stop; killing it", children[i].path,
                 (long)children[i].pid);
        (void)kill(children[i].pid, SIGKILL);
    }
    while (nchildren > 0) {
        int status;
        pid_t pid = waitpid(-1, &status, 0);

        if (pid < 0 && errno == EINTR)
            continue;
        if (pid < 0)
            break;
        for (size_t i = 0; i < nchildren; i++)
            if (children[i].pid == pid) {
                free(children[i].path);
                children[i] = children[--nchildren];
                break;
            }
    }
}

/* master_spawn_count - live children */
size_t master_spawn_count(void)
{
    return nchildren;
}
