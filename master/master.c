/*
 * master.c - the posta master supervisor: main
 *
 *   master -c CONFIG_DIR [-f] [-w FD] [-v]
 *
 * Reads main.cf and master.cf, creates the queue directory, takes the
 * lock $queue_directory/pid/master.pid (held for master's life, holding
 * its PID), binds every listener, starts the children and then supervises
 * them (master_spawn.c) and answers signals (master_sig.c).
 *
 *   -f     stay in the foreground (systemd, "posta start-fg")
 *   -w FD  write "ok\n" to FD once ready, or one line saying why start-up
 *          failed ("posta start" prints it)
 *   -v     verbose logging, passed on to the children
 *
 * With NOTIFY_SOCKET set (systemd Type=notify), master reports READY=1
 * once listeners are bound and children started, RELOADING=1 / READY=1
 * around a reload and STOPPING=1 on stop.
 *
 * DIAGNOSTICS: start-up problems are fatal and name their cause:
 * "the posta mail system is already running (PID N)", "bind 127.0.0.1
 * port 2525: Address already in use", "master.cf:3: service ...".
 * SECURITY: master keeps root (when started as root) to bind privileged
 * ports and to start children that drop to mail_owner themselves; it
 * parses only its own configuration and never reads from the network.
 */
#include "util/sys.h"

#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "mail/config.h"
#include "mail/spool.h"
#include "master.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/event.h"
#include "util/log.h"
#include "posta_paths.h"

#define MASTER_EXIT_OK 0
#define MASTER_EXIT_USAGE 2
#define MASTER_PID_DIR "pid"
#define MASTER_PID_FILE "master.pid"
#define MASTER_PID_MODE 0644
#define MASTER_UMASK 022
#define MASTER_READY_TEXT "ok\n"
#define MASTER_DATA_MODE 0700

bool master_verbose;
static int ready_fd = -1;

/* master_notify - sd_notify text (no-op without NOTIFY_SOCKET) */
void master_notify(const char *fmt, ...)
{
    struct buf b = BUF_INIT;
    va_list ap;

    if (getenv("NOTIFY_SOCKET") == NULL)
        return;
    va_start(ap, fmt);
    (void)buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (sd_notify(0, buf_str(&b)) < 0)
        msg_warn("sd_notify: %s", buf_str(&b));
    buf_free(&b);
}

/* master_log_open - open the log as syslog_name/master per cfg */
void master_log_open(struct cfg *cfg)
{
    const char *file = cfg_str(cfg, "maillog_file");
    char *tag = xasprintf("%s/master", cfg_str(cfg, "syslog_name"));

    if (file && *file)
        log_open(tag, LOG_SINK_FILE, file);
    else
        log_open(tag, log_default_sinks(), NULL);
    log_set_hostname(cfg_str(cfg, "myhostname"));
    free(tag);
}

/* ready_write - one line to the -w descriptor, then close it */
static void ready_write(const char *text)
{
    size_t len = strlen(text);

    if (ready_fd < 0)
        return;
    while (len > 0) {
        ssize_t n = write(ready_fd, text, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        text += n;
        len -= (size_t)n;
    }
    close(ready_fd);
    ready_fd = -1;
}

/* ready_on_fatal - a fatal error nobody reported yet: say so on -w */
static void ready_on_fatal(void)
{
    ready_write("mail system startup failed (see the mail log)\n");
}

/* master_fail - report a start-up failure on -w and in the log, exit */
static void POSTA_NORETURN POSTA_PRINTF(1, 2) master_fail(const char *fmt, ...)
{
    struct buf b = BUF_INIT;
    va_list ap;

    va_start(ap, fmt);
    (void)buf_vprintf(&b, fmt, ap);
    va_end(ap);
    (void)buf_putc(&b, '\n');
    ready_write(buf_str(&b));
    buf_truncate(&b, b.len - 1);
    msg_fatal("%s", buf_str(&b));
}

/* usage - bad command line */
static void POSTA_NORETURN usage(const char *me)
{
    fprintf(stderr, "usage: %s [-c config_dir] [-f] [-w fd] [-v]\n", me);
    exit(MASTER_EXIT_USAGE);
}

/* daemonize - leave the caller: new session, parent returns at once */
static void daemonize(void)
{
    pid_t pid = fork();

    if (pid < 0)
        master_fail("fork: %s", strerror(errno));
    if (pid > 0)
        _exit(MASTER_EXIT_OK);
    if (setsid() < 0)
        master_fail("setsid: %s", strerror(errno));
}

/* detach_stdio - stdin, stdout and stderr to /dev/null */
static void detach_stdio(void)
{
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

    if (fd < 0)
        msg_fatal("open /dev/null: %m");
    (void)dup2(fd, STDIN_FILENO);
    (void)dup2(fd, STDOUT_FILENO);
    (void)dup2(fd, STDERR_FILENO);
    close(fd);
}

/* lock_master - take $queue_directory/pid/master.pid for master's life */
static int lock_master(const char *queue_dir)
{
    char *path = xasprintf("%s/%s/%s", queue_dir, MASTER_PID_DIR, MASTER_PID_FILE);
    struct flock fl;
    char text[32];
    int fd, len;

    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, MASTER_PID_MODE);
    if (fd < 0)
        master_fail("open lock file %s: %s", path, strerror(errno));
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_SETLK, &fl) < 0) {
        if (errno == EAGAIN || errno == EACCES) {
            memset(&fl, 0, sizeof(fl));
            fl.l_type = F_WRLCK;
            fl.l_whence = SEEK_SET;
            if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
                master_fail("the posta mail system is already running (PID %ld)",
                            (long)fl.l_pid);
            master_fail("the posta mail system is already running");
        }
        master_fail("lock %s: %s", path, strerror(errno));
    }
    len = snprintf(text, sizeof(text), "%10ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, text, (size_t)len, 0) != len)
        master_fail("write %s: %s", path, strerror(errno));
    free(path);
    return fd;
}

/* make_data_dir - data_directory, owned by mail_owner, if missing */
static void make_data_dir(struct cfg *cfg)
{
    const char *dir = cfg_str(cfg, "data_directory");
    const char *owner = cfg_str(cfg, "mail_owner");
    struct passwd *pw;

    if (mkdir(dir, MASTER_DATA_MODE) < 0) {
        if (errno == EEXIST)
            return;
        master_fail("create data_directory %s: %s", dir, strerror(errno));
    }
    if (geteuid() != 0)
        return;
    if ((pw = getpwnam(owner)) == NULL)
        master_fail("mail_owner %s: no such user", owner);
    if (chown(dir, pw->pw_uid, pw->pw_gid) < 0)
        master_fail("chown %s: %s", dir, strerror(errno));
}

/* absolute_dir - the configuration directory as an absolute path */
static char *absolute_dir(const char *dir)
{
    char *real = realpath(dir, NULL);

    if (real == NULL)
        master_fail("configuration directory %s: %s", dir, strerror(errno));
    return real;
}

/* main - start the mail system */
int main(int argc, char **argv)
{
    const char *cli_dir = NULL;
    bool foreground = false;
    struct mconfig *conf;
    char *config_dir, *err = NULL;
    int c, lock_fd;

    log_open("posta/master", LOG_SINK_STDERR, NULL);
    while ((c = getopt(argc, argv, "c:dfw:v")) != -1) {
        switch (c) {
        case 'c':
            cli_dir = optarg;
            break;
        case 'd':   /* Postfix's spelling */
        case 'f':
            foreground = true;
            break;
        case 'w': {
            char *end;
            long v;

            errno = 0;
            v = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || v < 0 || v > INT_MAX
                || fcntl((int)v, F_GETFD) < 0)
                usage(argv[0]);
            ready_fd = (int)v;
            break;
        }
        case 'v':
            master_verbose = true;
            break;
        default:
            usage(argv[0]);
        }
    }
    if (optind != argc)
        usage(argv[0]);
    if (ready_fd >= 0)
        (void)fcntl(ready_fd, F_SETFD, FD_CLOEXEC);
    log_on_fatal(ready_on_fatal);
    (void)signal(SIGPIPE, SIG_IGN);
    umask(MASTER_UMASK);

    config_dir = absolute_dir(cfg_default_dir(cli_dir));
    conf = master_conf_load(config_dir, &err);
    if (conf == NULL)
        master_fail("%s", err);
    master_log_open(conf->cfg);
    if (master_verbose)
        log_set_verbose(1);

    if (!foreground)
        daemonize();
    spool_create(conf->cfg);
    make_data_dir(conf->cfg);
    master_tls_snakeoil(conf);
    lock_fd = lock_master(conf->queue_dir);
    if (chdir(conf->queue_dir) < 0)
        master_fail("chdir %s: %s", conf->queue_dir, strerror(errno));

    event_init();
    master_sig_init();
    if (!master_conf_bind(conf, NULL, &err))
        master_fail("%s", err);
    master_current = conf;
    msg_info("daemon started -- version %s, configuration %s", POSTA_VERSION, config_dir);
    if (!foreground)
        detach_stdio();
    master_spawn_all(conf);
    ready_write(MASTER_READY_TEXT);
    master_notify("READY=1\nMAINPID=%ld", (long)getpid());
    free(config_dir);

    event_run();
    (void)lock_fd;   /* held until exit */
    return MASTER_EXIT_OK;
}
