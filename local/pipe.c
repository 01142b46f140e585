/*
 * pipe.c - delivery to a command (mailbox_command, "|command" in aliases,
 * .forward and :include: files)
 *
 * The command is never handed to a shell by default: its text is split
 * into arguments (aliasfile_argv: quotes and backslashes as in sh), then
 * $NAME and ${NAME} in each argument are replaced by the delivery's
 * environment values (HOME, USER, EXTENSION, ...), so a value can never
 * become shell syntax or another argument. local_command_shell, when set
 * (e.g. "/bin/sh -c"), runs the command text through that program
 * instead, with the values only in the environment. The program is found
 * through PATH=/usr/bin:/bin and runs as the user (or default_privs), in
 * the user's home directory, in a process group of its own, with the
 * message on standard input: "From SENDER  DATE" line, Return-Path,
 * X-Original-To, Delivered-To, the message (no quoting, no empty line
 * after it), as Postfix feeds commands.
 *
 * Results: exit 0 sent ("delivered to command: CMD"); the <sysexits.h>
 * codes as Postfix maps them (EX_TEMPFAIL and other temporary ones:
 * deferred 4.3.0; EX_NOUSER 5.1.1; ...); any other status bounced 5.3.0;
 * a signal or command_time_limit deferred 4.3.0. The text carries the
 * first bytes of the command's output.
 *
 * SECURITY: runs inside the privs_run child (already the user). Output
 * is bounded (PIPE_OUTPUT_MAX); the whole process group is killed when
 * the time limit passes.
 */
#include "util/sys.h"

#include <ctype.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "mail/aliasfile.h"
#include "mail/config.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"

#include "local.h"

#define PIPE_OUTPUT_MAX 400
#define PIPE_PATH "PATH=/usr/bin:/bin"
#define PIPE_EXEC_FAILED 127
#define MS_PER_SEC 1000LL
#define NS_PER_MS 1000000L
#define ENV_MAX 32
#define PIPE_BACKSTOP_SEC 10
#define ATTR_NAME_UP 64        /* longest $name looked up */

struct sysexit {
    int status;
    const char *dsn;
    const char *text;
};

/* <sysexits.h> codes, as Postfix's sys_exits table classifies them. */
static const struct sysexit sysexits[] = {
    {64, "5.3.0", "command line usage error"},
    {65, "5.6.0", "data format error"},
    {66, "5.3.0", "cannot open input"},
    {67, "5.1.1", "user unknown"},
    {68, "5.1.2", "host name unknown"},
    {69, "5.3.0", "service unavailable"},
    {70, "5.3.0", "internal software error"},
    {71, "4.3.0", "system resource problem"},
    {72, "4.3.0", "critical OS file missing"},
    {73, "5.3.0", "can't create user output file"},
    {74, "4.3.0", "input/output error"},
    {75, "4.3.0", "temporary failure"},
    {76, "5.5.0", "remote error in protocol"},
    {77, "5.7.0", "permission denied"},
    {78, "5.3.5", "local configuration error"},
};

struct pipe_ctx {
    struct lmsg *m;
    const struct lrcpt *r;
    const struct privs *p;
    const char *command;
};

struct pipe_io {
    int in_fd, out_fd;
    long long deadline;
    struct buf output;
    bool timed_out, closed;
};

/* now_ms - monotonic milliseconds */
static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * MS_PER_SEC + ts.tv_nsec / NS_PER_MS;
}

/* env_add - one NAME=value */
static void env_add(char **env, size_t *n, const char *name, const char *value)
{
    if (*n + 1 >= ENV_MAX)
        return;
    env[(*n)++] = xasprintf("%s=%s", name, value ? value : "");
    env[*n] = NULL;
}

/* env_lookup - value of NAME in env, or NULL */
static const char *env_lookup(char **env, const char *name, size_t len)
{
    for (char **e = env; *e; e++)
        if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
            return *e + len + 1;
    return NULL;
}

/* filtered - append v with bytes outside command_expansion_filter as '_' */
static void filtered(struct buf *out, const char *v)
{
    const char *allow = local_conf.expansion_filter;

    for (; *v; v++)
        buf_putc(out, strchr(allow, *v) ? *v : '_');
}

/* env_name - the environment name of a Postfix-style $lower name */
static const char *env_name(const char *name, size_t len, char *up, size_t upsize)
{
    if (len + 1 > upsize)
        return NULL;
    for (size_t i = 0; i < len; i++)
        up[i] = (char)toupper((unsigned char)name[i]);
    up[len] = 0;
    /* Postfix's $user is the USER variable; $mailbox has no equivalent. */
    return up;
}

/*
 * expand_arg - $NAME and ${NAME} (or Postfix's lower-case $name) from env;
 * unknown names expand to nothing. Values pass command_expansion_filter,
 * so an expansion can never carry shell syntax into a "sh -c" argument.
 */
static char *expand_arg(const char *arg, char **env)
{
    struct buf out = BUF_INIT;

    for (const char *p = arg; *p; p++) {
        const char *name, *v;
        size_t len = 0;
        bool brace = false;

        if (*p != '$') {
            buf_putc(&out, *p);
            continue;
        }
        name = p + 1;
        if (*name == '{') {
            brace = true;
            name++;
        }
        while (isalnum((unsigned char)name[len]) || name[len] == '_')
            len++;
        if (len == 0 || (brace && name[len] != '}')) {
            buf_putc(&out, '$');
            continue;
        }
        {
            char up[ATTR_NAME_UP];
            const char *en = env_name(name, len, up, sizeof(up));

            v = en ? env_lookup(env, en, len) : NULL;
        }
        if (v)
            filtered(&out, v);
        p = name + len + (brace ? 1 : 0) - 1;
    }
    if (out.data == NULL)
        return xstrdup("");
    return buf_steal(&out);
}

/* build_env - the environment Postfix gives delivery commands */
static void build_env(const struct pipe_ctx *c, char **env)
{
    char *local = NULL, *domain = NULL;
    const char *delim = local_conf.recipient_delimiter;
    char *ext = NULL;
    size_t n = 0;
    const char *tz = getenv("TZ"), *lang = getenv("LANG");

    env[0] = NULL;
    split_address(c->r->address, &local, &domain);
    if (*delim) {
        size_t k = strcspn(local, delim);

        if (local[k] && k > 0) {
            ext = xstrdup(local + k + 1);
        }
    }
    env_add(env, &n, "HOME", c->p->home);
    env_add(env, &n, "LOGNAME", c->p->user);
    env_add(env, &n, "USER", c->p->user);
    env_add(env, &n, "SHELL", c->p->shell);
    env_add(env, &n, "SENDER", c->m->sender);
    env_add(env, &n, "RECIPIENT", c->r->address);
    env_add(env, &n, "LOCAL", local);
    env_add(env, &n, "EXTENSION", ext ? ext : "");
    env_add(env, &n, "DOMAIN", domain);
    env_add(env, &n, "ORIGINAL_RECIPIENT", c->r->orig);
    env_add(env, &n, "MAIL_CONFIG", cfg_dir(local_conf.cfg));
    env[n++] = xstrdup(PIPE_PATH);
    env[n] = NULL;
    if (tz)
        env_add(env, &n, "TZ", tz);
    if (lang)
        env_add(env, &n, "LANG", lang);
    free(local);
    free(domain);
    free(ext);
}

/* read_output - collect (bounded) command output; false at EOF */
static bool read_output(struct pipe_io *io)
{
    char tmp[LOCAL_READ_CHUNK];
    ssize_t n = read(io->out_fd, tmp, sizeof(tmp));

    if (n > 0) {
        size_t room = PIPE_OUTPUT_MAX > io->output.len ? PIPE_OUTPUT_MAX - io->output.len : 0;

        buf_append(&io->output, tmp, (size_t)n < room ? (size_t)n : room);
        return true;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return true;
    return false;
}

/* pipe_out - write message bytes to the command, draining its output */
static int pipe_out(void *ctx, const char *p, size_t n)
{
    struct pipe_io *io = ctx;

    while (n > 0 && !io->closed) {
        struct pollfd pf[2] = {{.fd = io->in_fd, .events = POLLOUT},
                               {.fd = io->out_fd, .events = POLLIN}};
        long long left = io->deadline - now_ms();
        int pr;

        if (left <= 0) {
            io->timed_out = true;
            errno = ETIMEDOUT;
            return -1;
        }
        pr = poll(pf, io->out_fd >= 0 ? 2 : 1, left > INT32_MAX ? INT32_MAX : (int)left);
        if (pr < 0 && errno != EINTR)
            return -1;
        if (pr <= 0)
            continue;
        if (io->out_fd >= 0 && (pf[1].revents & (POLLIN | POLLHUP))) {
            if (!read_output(io)) {
                close(io->out_fd);
                io->out_fd = -1;
            }
        }
        if (pf[0].revents & (POLLOUT | POLLERR | POLLHUP)) {
            ssize_t w = write(io->in_fd, p, n);

            if (w < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (w < 0 && errno == EPIPE) {
                /* The command stopped reading: its exit status decides. */
                io->closed = true;
                return 0;
            }
            if (w < 0)
                return -1;
            p += w;
            n -= (size_t)w;
        }
    }
    return 0;
}

/* command_argv - the argument vector: split + expanded, or via the shell */
static char **command_argv(const char *command, char **env, char **err)
{
    const char *shell = local_conf.command_shell;
    size_t argc = 0;
    char **argv;

    if (shell && *shell) {
        argv = aliasfile_argv(shell, &argc, err);
        if (argv == NULL)
            return NULL;
        argv = xreallocarray(argv, argc + 2, sizeof(char *));
        argv[argc++] = xstrdup(command);
        argv[argc] = NULL;
        return argv;
    }
    argv = aliasfile_argv(command, &argc, err);
    if (argv == NULL)
        return NULL;
    for (size_t i = 0; i < argc; i++) {
        char *x = expand_arg(argv[i], env);

        free(argv[i]);
        argv[i] = x;
    }
    return argv;
}

/* output_text - the command output on one line */
static const char *output_text(struct pipe_io *io)
{
    char *s = io->output.data ? io->output.data : "";

    for (char *q = s; *q; q++)
        if (*q == '\n' || *q == '\r' || *q == '\t' || (unsigned char)*q < ' ')
            *q = ' ';
    while (io->output.len > 0 && s[io->output.len - 1] == ' ')
        s[--io->output.len] = 0;
    return s;
}

/* pipe_child - in the privs child: run the command and feed it */
static void pipe_child(void *vctx, struct dres *res)
{
    struct pipe_ctx *c = vctx;
    char *env[ENV_MAX];
    char *err = NULL;
    char **argv;
    int in[2] = {-1, -1}, out[2] = {-1, -1};
    struct pipe_io io = {.in_fd = -1, .out_fd = -1};
    pid_t pid;
    int status = 0;

    build_env(c, env);
    argv = command_argv(c->command, env, &err);
    if (argv == NULL) {
        dres_set(res, DELIVER_BOUNCED, "5.3.5", "bad command \"%s\": %s", c->command, err);
        free(err);
        goto out_env;
    }
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
        dres_set(res, DELIVER_DEFERRED, "4.3.0", "cannot create pipe: %s", strerror(errno));
        goto out_fds;
    }
    pid = fork();
    if (pid < 0) {
        dres_set(res, DELIVER_DEFERRED, "4.3.0", "cannot fork: %s", strerror(errno));
        goto out_fds;
    }
    if (pid == 0) {
        sigset_t none;

        /* The daemon blocks signals for its event loop: not for commands. */
        sigemptyset(&none);
        (void)sigprocmask(SIG_SETMASK, &none, NULL);
        (void)setsid();
        (void)signal(SIGPIPE, SIG_DFL);
        if (dup2(in[0], STDIN_FILENO) < 0 || dup2(out[1], STDOUT_FILENO) < 0
            || dup2(out[1], STDERR_FILENO) < 0)
            _exit(PIPE_EXEC_FAILED);
        /* Nothing of the daemon's (tables, sockets) reaches the command. */
        if (close_range(STDERR_FILENO + 1, ~0U, 0) < 0)
            _exit(PIPE_EXEC_FAILED);
        if (chdir(c->p->home) < 0 && chdir("/") < 0)
            _exit(PIPE_EXEC_FAILED);
        (void)setenv("PATH", PIPE_PATH + sizeof("PATH=") - 1, 1);
        execvpe(argv[0], argv, env);
        dprintf(STDERR_FILENO, "cannot execute %s: %s\n", argv[0], strerror(errno));
        _exit(PIPE_EXEC_FAILED);
    }
    close(in[0]);
    close(out[1]);
    in[0] = out[1] = -1;
    io.in_fd = in[1];
    io.out_fd = out[0];
    io.deadline = now_ms() + local_conf.command_time_limit * MS_PER_SEC;
    buf_init(&io.output, PIPE_OUTPUT_MAX + 1);
    (void)fcntl(io.in_fd, F_SETFL, O_NONBLOCK);
    (void)fcntl(io.out_fd, F_SETFL, O_NONBLOCK);
    if (content_copy_to(c->m, c->r, COPY_FROM_LINE | COPY_ORIG_TO, pipe_out, &io, NULL) < 0
        && !io.timed_out)
        msg_warn("write to command \"%s\": %m", c->command);
    close(io.in_fd);
    in[1] = -1;
    while (io.out_fd >= 0 && !io.timed_out) {
        struct pollfd pf = {.fd = io.out_fd, .events = POLLIN};
        long long left = io.deadline - now_ms();

        if (left <= 0) {
            io.timed_out = true;
            break;
        }
        if (poll(&pf, 1, left > INT32_MAX ? INT32_MAX : (int)left) > 0 && !read_output(&io)) {
            close(io.out_fd);
            io.out_fd = -1;
        }
    }
    if (io.timed_out)
        kill(-pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        continue;
    if (io.out_fd >= 0)
        close(io.out_fd);
    out[0] = -1;
    if (io.timed_out) {
        dres_set(res, DELIVER_DEFERRED, "4.3.0", "Command time limit exceeded: \"%s\"",
                 c->command);
    } else if (WIFSIGNALED(status)) {
        dres_set(res, DELIVER_DEFERRED, "4.3.0", "Command died with signal %d: \"%s\"",
                 WTERMSIG(status), c->command);
    } else if (WEXITSTATUS(status) == 0) {
        dres_set(res, DELIVER_SENT, "2.0.0", "delivered to command: %s", c->command);
    } else {
        int st = WEXITSTATUS(status);
        const char *dsn = "5.3.0";
        const char *out_text = output_text(&io);

        for (size_t i = 0; i < POSTA_ARRAY_LEN(sysexits); i++)
            if (sysexits[i].status == st)
                dsn = sysexits[i].dsn;
        dres_set(res, dsn[0] == '4' ? DELIVER_DEFERRED : DELIVER_BOUNCED, dsn,
                 "Command died with status %d: \"%s\"%s%s", st, c->command,
                 *out_text ? ". Command output: " : "", out_text);
    }
    buf_free(&io.output);
out_fds:
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            close(in[i]);
        if (out[i] >= 0)
            close(out[i]);
    }
    aliasfile_argv_free(argv);
out_env:
    for (char **e = env; *e; e++)
        free(*e);
}

/* deliver_command - pipe the message into command as p */
void deliver_command(struct lmsg *m, const struct lrcpt *r, const struct privs *p,
                     const char *command, struct dres *res)
{
    struct pipe_ctx c = {.m = m, .r = r, .p = p, .command = command};
    memset(res, 0, sizeof(*res));
    /* The child enforces command_time_limit; this is the backstop. */
    privs_run(p, local_conf.command_time_limit + local_conf.command_time_limit / 2
                     + PIPE_BACKSTOP_SEC, pipe_child, &c, res);
}
