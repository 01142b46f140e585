/*
 * posta.c - the posta command: start, stop and inspect the mail system
 *
 *   posta [-c DIR] [-v] COMMAND [args]
 *
 * COMMAND is start, start-fg, stop, abort, reload, status, check,
 * set-permissions, conf, queue, flush, super, cat, alias or map (each
 * documented in posta(1)). Global options come before the command. The configuration
 * directory is -c DIR, else $MAIL_CONFIG, else the compiled-in default.
 * Invoked as "mailq", posta behaves as "posta queue -p".
 *
 * Whether the mail system runs is decided by the lock master holds on
 * $queue_directory/pid/master.pid (fcntl), never by the PID in the file
 * alone: a stale file from a crash does not count.
 *
 * DIAGNOSTICS: messages go to stdout ("posta: starting the mail system")
 * and problems to stderr; exit 0 on success, 1 on failure, 2 on bad
 * usage (usage text on stderr).
 * SECURITY: posta runs with the caller's privileges; it signals master
 * only through the PID the lock names.
 */
#include "util/sys.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "cmd_alias.h"
#include "cmd_cat.h"
#include "cmd_check.h"
#include "cmd_conf.h"
#include "cmd_dkim.h"
#include "cmd_flush.h"
#include "cmd_map.h"
#include "cmd_queue.h"
#include "cmd_super.h"
#include "../smtpd/policy.h"
#include "mail/config.h"
#include "mail/mastercf.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"

#define EXIT_USAGE 2
#define PID_FILE_REL "pid/master.pid"
#define STOP_WAIT_MS 30000
#define STOP_POLL_MS 100
#define START_WAIT_MS 60000
#define READY_LINE_MAX 4096
#define MASTER_PROGRAM "master"

static const char *progname = "posta";
static int verbose;

/* usage - the command summary on stderr, exit 2 */
static void POSTA_NORETURN usage(void)
{
    fprintf(stderr,
            "usage: posta [-c config_dir] [-v] command [args]\n"
            "commands:\n"
            "  start      start the mail system in the background\n"
            "  start-fg   run the mail system in the foreground\n"
            "  stop       stop the mail system (waits until it has stopped)\n"
            "  abort      stop the mail system without waiting\n"
            "  reload     re-read the configuration\n"
            "  status     is the mail system running?\n"
            "  check      check the configuration, owners and modes\n"
            "  set-permissions  repair owners and modes (as root)\n"
            "  conf       show or edit main.cf and master.cf (postconf)\n"
            "  queue      list the queue, retry mail (postqueue)\n"
            "  flush      retry deferred mail now\n"
            "  super      delete, hold, release, requeue, repair (postsuper)\n"
            "  cat        show a queue file (postcat)\n"
            "  alias      build the alias database (postalias, newaliases)\n"
            "  map        build, query and edit lookup tables (postmap)\n"
            "  dkim       DKIM keys and checks: keygen, sign, verify\n");
    exit(EXIT_USAGE);
}

/* say - a message on stdout, "posta: " first */
static void POSTA_PRINTF(1, 2) say(const char *fmt, ...)
{
    va_list ap;

    printf("%s: ", progname);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* complain - a message on stderr, "posta: " first */
static void POSTA_PRINTF(1, 2) complain(const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fprintf(stderr, "%s: ", progname);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* no_args - commands that take no arguments */
static void no_args(int argc)
{
    if (argc > 1)
        usage();
}

/* lock_holder - PID of the master holding the lock, 0 if none */
static pid_t lock_holder(struct cfg *cfg)
{
    char *path = xasprintf("%s/%s", cfg_str(cfg, "queue_directory"), PID_FILE_REL);
    struct flock fl;
    pid_t pid = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0) {
        if (errno != ENOENT)
            complain("warning: open %s: %s", path, strerror(errno));
        free(path);
        return 0;
    }
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_GETLK, &fl) < 0)
        complain("warning: lock test %s: %s", path, strerror(errno));
    else if (fl.l_type != F_UNLCK)
        pid = fl.l_pid;
    close(fd);
    free(path);
    return pid;
}

/* master_path - daemon_directory/master */
static char *master_path(struct cfg *cfg)
{
    return xasprintf("%s/%s", cfg_str(cfg, "daemon_directory"), MASTER_PROGRAM);
}

/* sleep_ms - pause */
static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* read_ready_line - master's one-line answer on the -w pipe ("" at EOF) */
static void read_ready_line(int fd, struct buf *line)
{
    char c;
    int waited = 0;

    buf_init(line, READY_LINE_MAX);
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int rc = poll(&p, 1, STOP_POLL_MS);
        ssize_t n;

        if (rc < 0 && errno == EINTR)
            continue;
        if (rc == 0) {
            waited += STOP_POLL_MS;
            if (waited >= START_WAIT_MS)
                return;
            continue;
        }
        n = read(fd, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || c == '\n' || buf_putc(line, c) < 0)
            return;
    }
}

/*
 * restrictions_ok - smtpd's restriction lists parse and their tables open;
 * a typo must stop the start, not leave smtpd dying (or relaying) later
 */
static bool restrictions_ok(struct cfg *cfg)
{
    struct restr_config rc;
    char *err = NULL;

    if (restr_config_load(cfg, true, &rc, &err)) {
        restr_config_free(&rc);
        return true;
    }
    complain("fatal: %s", err);
    free(err);
    return false;
}

/* cmd_start - run master in the background and report how that went */
static int cmd_start(int argc, char **argv, const char *config_dir, struct cfg *cfg)
{
    const char *logfile = cfg_str(cfg, "maillog_file");
    char *master = master_path(cfg);
    char fdtext[16];
    struct buf line;
    int pfd[2], status;
    pid_t pid;

    no_args(argc);
    (void)argv;
    if ((pid = lock_holder(cfg)) > 0) {
        complain("the mail system is already running: PID: %ld", (long)pid);
        return 1;
    }
    if (!restrictions_ok(cfg))
        return 1;
    if (strcmp(logfile, "/dev/stderr") == 0 || strcmp(logfile, "/dev/stdout") == 0)
        complain("warning: maillog_file = %s: a mail system in the background "
                 "logs nowhere; use \"posta start-fg\" to see its log", logfile);
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        complain("fatal: pipe: %s", strerror(errno));
        return 1;
    }
    say("starting the mail system");
    pid = fork();
    if (pid < 0) {
        complain("fatal: fork: %s", strerror(errno));
        return 1;
    }
    if (pid == 0) {
        int wfd = fcntl(pfd[1], F_DUPFD, 3);   /* without close-on-exec */

        snprintf(fdtext, sizeof(fdtext), "%d", wfd);
        if (verbose)
            execl(master, MASTER_PROGRAM, "-c", config_dir, "-w", fdtext, "-v", (char *)NULL);
        else
            execl(master, MASTER_PROGRAM, "-c", config_dir, "-w", fdtext, (char *)NULL);
        fprintf(stderr, "%s: fatal: exec %s: %s\n", progname, master, strerror(errno));
        _exit(1);
    }
    close(pfd[1]);
    read_ready_line(pfd[0], &line);
    close(pfd[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    free(master);
    if (strcmp(buf_str(&line), "ok") == 0) {
        buf_free(&line);
        return 0;
    }
    if (line.len > 0)
        complain("fatal: %s", buf_str(&line));
    else
        complain("fatal: mail system startup failed");
    buf_free(&line);
    return 1;
}

/* cmd_start_fg - become master in the foreground (same PID: systemd) */
static int cmd_start_fg(int argc, char **argv, const char *config_dir, struct cfg *cfg)
{
    char *master = master_path(cfg);
    pid_t pid;

    no_args(argc);
    (void)argv;
    if ((pid = lock_holder(cfg)) > 0) {
        complain("the mail system is already running: PID: %ld", (long)pid);
        return 1;
    }
    if (!restrictions_ok(cfg))
        return 1;
    fflush(NULL);
    if (verbose)
        execl(master, MASTER_PROGRAM, "-c", config_dir, "-f", "-v", (char *)NULL);
    else
        execl(master, MASTER_PROGRAM, "-c", config_dir, "-f", (char *)NULL);
    complain("fatal: exec %s: %s", master, strerror(errno));
    free(master);
    return 1;
}

/* signal_master - send sig to the running master; its PID or 0 */
static pid_t signal_master(struct cfg *cfg, int sig)
{
    pid_t pid = lock_holder(cfg);

    if (pid <= 0) {
        complain("the mail system is not running");
        return 0;
    }
    if (kill(pid, sig) < 0) {
        complain("fatal: kill %ld: %s", (long)pid, strerror(errno));
        return 0;
    }
    return pid;
}

/* cmd_stop - SIGTERM, then wait until the lock is released */
static int cmd_stop(int argc, char **argv, struct cfg *cfg, bool wait)
{
    no_args(argc);
    (void)argv;
    if (lock_holder(cfg) > 0)
        say(wait ? "stopping the mail system" : "aborting the mail system");
    if (signal_master(cfg, SIGTERM) == 0)
        return 1;
    if (!wait)
        return 0;
    for (long waited = 0; waited < STOP_WAIT_MS; waited += STOP_POLL_MS) {
        if (lock_holder(cfg) == 0)
            return 0;
        sleep_ms(STOP_POLL_MS);
    }
    complain("warning: the mail system has not stopped after %d s", STOP_WAIT_MS / 1000);
    return 1;
}

/* cmd_reload - SIGHUP */
static int cmd_reload(int argc, char **argv, struct cfg *cfg)
{
    no_args(argc);
    (void)argv;
    if (lock_holder(cfg) > 0)
        say("refreshing the mail system");
    return signal_master(cfg, SIGHUP) > 0 ? 0 : 1;
}

/* cmd_status - exit 0 when running */
static int cmd_status(int argc, char **argv, struct cfg *cfg)
{
    pid_t pid;

    no_args(argc);
    (void)argv;
    pid = lock_holder(cfg);
    if (pid > 0) {
        say("the mail system is running: PID: %ld", (long)pid);
        return 0;
    }
    say("the mail system is not running");
    return 1;
}

/* base_name - the last path component */
static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash ? slash + 1 : path;
}

/* run_mailq - "mailq [args]" is "posta queue -p [args]" */
static int run_mailq(int argc, char **argv)
{
    char **qargv = xcalloc((size_t)argc + 2, sizeof(char *));
    struct cfg *cfg = cfg_load(cfg_default_dir(NULL));
    int rc;

    qargv[0] = "queue";
    qargv[1] = "-p";
    for (int i = 1; i < argc; i++)
        qargv[i + 1] = argv[i];
    rc = cmd_queue(argc + 1, qargv, cfg);
    cfg_free(cfg);
    free(qargv);
    return rc;
}

/* The commands that need the loaded configuration, with a common signature. */
static int run_start(int argc, char **argv, const char *dir, struct cfg *cfg)
{
    return cmd_start(argc, argv, dir, cfg);
}

static int run_start_fg(int argc, char **argv, const char *dir, struct cfg *cfg)
{
    return cmd_start_fg(argc, argv, dir, cfg);
}

static int run_stop(int argc, char **argv, const char *dir, struct cfg *cfg)
{
    return cmd_stop(argc, argv, cfg, true);
}

static int run_abort(int argc, char **argv, const char *dir, struct cfg *cfg)
{
    return cmd_stop(argc, argv, cfg, false);
}

static int run_reload(int argc, char **argv, const char *dir, struct cfg *cfg)
{
    return cmd_reload(argc, argv, cfg);
}

static int run_status(int argc, char **argv, const char *dir, struct cfg *cfg)
{
    return cmd_status(argc, argv, cfg);
}

static int run_queue(int argc, char **argv, const char *dir, struct cfg *cfg)
{
    return cmd_queue(argc, argv, cfg);
}

static int run_flush(int argc, char **argv, const char *dir, struct cfg *cfg)
{
    return cmd_flush(argc, argv, cfg);
}

static int run_alias(int argc, char **argv, const char *dir, struct cfg *cfg)
{
    return cmd_alias(argc, argv, cfg);
}

static int run_super(int argc, char **argv, const char *dir, struct cfg *cfg)
{
    return cmd_super(argc, argv, cfg, lock_holder(cfg) > 0);
}

static int run_cat(int argc, char **argv, const char *dir, struct cfg *cfg)
{
    return cmd_cat(argc, argv, cfg);
}

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv, const char *config_dir, struct cfg *cfg);
} commands[] = {
    {"start", run_start},   {"start-fg", run_start_fg}, {"stop", run_stop},
    {"abort", run_abort},   {"reload", run_reload},     {"status", run_status},
    {"queue", run_queue},   {"flush", run_flush},       {"alias", run_alias},
    {"super", run_super},   {"cat", run_cat},
};

/* main - dispatch one command */
int main(int argc, char **argv)
{
    const char *cli_dir = NULL, *config_dir, *command;
    struct cfg *cfg = NULL;
    int c, rc = EXIT_USAGE;

    log_open("posta", LOG_SINK_STDERR, NULL);
    (void)signal(SIGPIPE, SIG_DFL);
    if (argc > 0 && strcmp(base_name(argv[0]), "mailq") == 0) {
        progname = "mailq";
        return run_mailq(argc, argv);
    }
    while ((c = getopt(argc, argv, "+c:v")) != -1) {
        switch (c) {
        case 'c':
            cli_dir = optarg;
            break;
        case 'v':
            verbose++;
            log_set_verbose(verbose);
            break;
        default:
            usage();
        }
    }
    if (optind >= argc)
        usage();
    argc -= optind;
    argv += optind;
    command = argv[0];
    config_dir = cfg_default_dir(cli_dir);

    /* These read the configuration themselves, leniently or not at all. */
    if (strcmp(command, "conf") == 0)
        return cmd_conf(argc, argv, config_dir);
    if (strcmp(command, "check") == 0)
        return cmd_check(argc, argv, config_dir, verbose);
    if (strcmp(command, "set-permissions") == 0)
        return cmd_set_permissions(argc, argv, config_dir, verbose);
    if (strcmp(command, "map") == 0)
        return cmd_map_dir(argc, argv, config_dir);
    if (strcmp(command, "dkim") == 0)
        return cmd_dkim(argc, argv, config_dir);

    for (size_t i = 0; i < POSTA_ARRAY_LEN(commands); i++) {
        if (strcmp(command, commands[i].name) == 0) {
            cfg = cfg_load(config_dir);
            rc = commands[i].fn(argc, argv, config_dir, cfg);
            break;
        }
    }
    if (cfg == NULL) {
        complain("unknown command: %s", command);
        usage();
    }
    cfg_free(cfg);
    return rc;
}
