/*
 * sendmail.c - the sendmail command (also mailq and newaliases)
 *
 * USAGE: sendmail [options] [recipient ...]
 *   -C dir    configuration directory (or main.cf in it); MAIL_CONFIG too
 *   -f addr   envelope sender (-r too); "<>" or "" is the null sender
 *   -F name   sender's full name (else $NAME, else the passwd gecos field)
 *   -t        recipients also from To:, Cc:, Bcc: (Bcc: is removed)
 *   -i, -oi   a line "." does not end the message (only EOF does)
 *   -bm       submit a message (default); -bs SMTP on stdin/stdout;
 *   -bp       list the queue (mailq); -bi rebuild aliases (newaliases)
 *   -q        flush the queue (wake the queue manager)
 *   -v        verbose
 * Other -o options and -B, -N, -R, -V, -X, -h, -G, -U, -e, -m, -n are
 * accepted and ignored, as MUAs pass them. Invoked as "mailq" it acts as
 * -bp, as "newaliases" as -bi.
 *
 * A message is read completely (up to message_size_limit bytes), CRLF
 * line ends are turned into LF, and it is handed to postdrop (see
 * postdrop/postdrop.c), which puts it into the maildrop queue whether or
 * not the mail system runs. sendmail exits 0 only after postdrop said the
 * message is on disk.
 *
 * DIAGNOSTICS: "sendmail: ..." on stderr; exit status per sysexits(3):
 * EX_USAGE bad options or addresses, EX_DATAERR message too big,
 * EX_NOINPUT empty input with -t and no recipient, EX_TEMPFAIL the
 * message could not be queued (try again), EX_UNAVAILABLE an unsupported
 * mode (-bd, -bv).
 * SECURITY: runs with the caller's privileges; only postdrop (set-group-
 * ID) writes the queue.
 */
#include "util/sys.h"

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>

#include "../cli/cmd_alias.h"
#include "../cli/cmd_queue.h"
#include "mail/addr.h"
#include "mail/cleanup.h"
#include "mail/config.h"
#include "mail/trigger.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"

#include "sendmail.h"

#define POSTDROP_NAME "postdrop"
#define SELF_EXE "/proc/self/exe"
#define READ_CHUNK 65536
#define EXIT_SYSEXITS_MIN EX_USAGE
#define EXIT_SYSEXITS_MAX EX_CONFIG

enum sm_mode { MODE_DELIVER, MODE_SMTP, MODE_QUEUE, MODE_ALIASES, MODE_FLUSH };

struct sm_opts {
    enum sm_mode mode;
    const char *config;
    const char *sender;
    const char *full_name;
    bool extract;
    bool dot_ends;           /* no -i/-oi */
    int verbose;
};

static const char *sm_config_dir;
static int sm_verbose;

/* usage - short help on stderr, EX_USAGE */
static void POSTA_NORETURN usage(const char *why)
{
    if (why)
        fprintf(stderr, "sendmail: %s\n", why);
    fprintf(stderr, "usage: sendmail [-C config] [-f sender] [-F name] [-t] [-i] [-v] "
                    "[-bm | -bs | -bp | -bi | -q] [recipient ...]\n");
    exit(EX_USAGE);
}

/* config_dir - -C names the directory or main.cf inside it */
static const char *config_dir(const char *arg)
{
    struct stat st;

    if (arg == NULL)
        return cfg_default_dir(NULL);
    if (stat(arg, &st) == 0 && S_ISREG(st.st_mode)) {
        static char dir[PATH_MAX];
        char *copy = xstrdup(arg);
        snprintf(dir, sizeof(dir), "%s", dirname(copy));
        free(copy);
        return dir;
    }
    return arg;
}

/* sm_addr_ok - syntax as pickup checks it */
bool sm_addr_ok(struct cfg *cfg, const char *addr)
{
    char *q = cleanup_qualify(addr, cfg_str(cfg, "myorigin"));
    struct addr a;
    size_t end;
    enum addr_status st = addr_parse_path(q, strlen(q), ADDR_LAX | ADDR_UTF8, &a, &end, NULL);
    bool ok = st == ADDR_OK && end == strlen(q);

    addr_free(&a);
    free(q);
    return ok;
}

/* postdrop_path - $command_directory/postdrop, else next to this program */
static char *postdrop_path(struct cfg *cfg)
{
    char *path = xasprintf("%s/%s", cfg_str(cfg, "command_directory"), POSTDROP_NAME);
    char self[PATH_MAX];
    ssize_t n;

    if (access(path, X_OK) == 0)
        return path;
    n = readlink(SELF_EXE, self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = 0;
        char *alt = xasprintf("%s/%s", dirname(self), POSTDROP_NAME);
        if (access(alt, X_OK) == 0) {
            free(path);
            return alt;
        }
        free(alt);
    }
    return path;
}

/* write_all - the whole buffer to fd; false on error */
static bool write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* request_line - "T<text>\n" into the request; control characters refused */
static bool request_line(struct buf *req, char type, const char *text)
{
    for (const char *p = text; *p; p++)
        if (*p == '\n' || *p == '\r')
            return false;
    return buf_putc(req, type) == 0 && buf_puts(req, text) == 0 && buf_putc(req, '\n') == 0;
}

/* sm_submit - run postdrop with the request on its stdin */
int sm_submit(struct cfg *cfg, const struct submission *sub)
{
    struct buf req = BUF_INIT;
    char *path = postdrop_path(cfg);
    int fds[2], status;
    pid_t pid;
    bool ok = request_line(&req, 'S', sub->sender);

    if (ok && sub->full_name && *sub->full_name)
        ok = request_line(&req, 'F', sub->full_name);
    if (ok && sub->extract)
        ok = request_line(&req, 'T', "");
    for (size_t i = 0; ok && i < sub->nrcpts; i++)
        ok = request_line(&req, 'R', sub->rcpts[i]);
    if (!ok || buf_printf(&req, "M%zu\n", sub->msg.len) < 0) {
        msg_warn("bad address or name: line breaks are not allowed");
        buf_free(&req);
        free(path);
        return EX_USAGE;
    }
    if (pipe2(fds, O_CLOEXEC) < 0)
        msg_fatal_status(EX_OSERR, "pipe: %m");
    if ((pid = fork()) < 0)
        msg_fatal_status(EX_OSERR, "fork: %m");
    if (pid == 0) {
        char *argv[] = {POSTDROP_NAME, "-c", (char *)sm_config_dir,
                        sm_verbose ? "-v" : NULL, NULL};
        if (dup2(fds[0], STDIN_FILENO) < 0)
            _exit(EX_OSERR);
        execv(path, argv);
        fprintf(stderr, "sendmail: execute %s: %s\n", path, strerror(errno));
        _exit(EX_TEMPFAIL);
    }
    close(fds[0]);
    signal(SIGPIPE, SIG_IGN);
    ok = write_all(fds[1], req.data, req.len) &&
         write_all(fds[1], buf_str(&sub->msg), sub->msg.len);
    close(fds[1]);
    buf_free(&req);
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            msg_fatal_status(EX_OSERR, "waitpid: %m");
    if (WIFEXITED(status) && WEXITSTATUS(status) == EX_OK && ok) {
        free(path);
        return EX_OK;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) >= EXIT_SYSEXITS_MIN &&
        WEXITSTATUS(status) <= EXIT_SYSEXITS_MAX) {
        msg_warn("%s failed: the message was not queued", path);
        free(path);
        return WEXITSTATUS(status);
    }
    msg_warn("%s failed (%s %d): the message was not queued", path,
             WIFSIGNALED(status) ? "signal" : "status",
             WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    free(path);
    return EX_TEMPFAIL;
}

/* read_message - stdin up to EOF (or "." with dot_ends); CRLF -> LF */
static void read_message(struct buf *msg, bool dot_ends, long long limit)
{
    char chunk[READ_CHUNK];
    struct buf line = BUF_INIT;
    size_t n;
    bool done = false;

    buf_init(msg, limit > 0 ? (size_t)limit : 0);
    buf_init(&line, limit > 0 ? (size_t)limit : 0);
    while (!done && (n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
        for (size_t i = 0; i < n && !done; i++) {
            if (chunk[i] != '\n') {
                if (buf_putc(&line, (unsigned char)chunk[i]) < 0)
                    msg_fatal_status(EX_DATAERR, "message file too big "
                                     "(message_size_limit is %lld bytes)", limit);
                continue;
            }
            if (line.len > 0 && line.data[line.len - 1] == '\r')
                buf_truncate(&line, line.len - 1);
            if (dot_ends && line.len == 1 && line.data[0] == '.') {
                done = true;
                break;
            }
            if (buf_append(msg, buf_str(&line), line.len) < 0 || buf_putc(msg, '\n') < 0)
                msg_fatal_status(EX_DATAERR, "message file too big "
                                 "(message_size_limit is %lld bytes)", limit);
            buf_reset(&line);
        }
    }
    if (ferror(stdin))
        msg_fatal_status(EX_TEMPFAIL, "read message: %m");
    if (!done && line.len > 0) {
        if (line.data[line.len - 1] == '\r')
            buf_truncate(&line, line.len - 1);
        if (!(dot_ends && line.len == 1 && line.data[0] == '.') &&
            (buf_append(msg, buf_str(&line), line.len) < 0 || buf_putc(msg, '\n') < 0))
            msg_fatal_status(EX_DATAERR, "message file too big "
                             "(message_size_limit is %lld bytes)", limit);
    }
    buf_free(&line);
}

/* default_full_name - $NAME, else the gecos field ('&' is the capitalised login) */
static char *default_full_name(const struct passwd *pw)
{
    const char *env = getenv("NAME");
    struct buf b = BUF_INIT;

    if (env && *env)
        return xstrdup(env);
    if (pw == NULL || pw->pw_gecos == NULL)
        return NULL;
    for (const char *p = pw->pw_gecos; *p && *p != ','; p++) {
        if (*p == '&') {
            for (const char *l = pw->pw_name; *l; l++)
                buf_putc(&b, l == pw->pw_name && *l >= 'a' && *l <= 'z' ? *l - 'a' + 'A' : *l);
        } else {
            buf_putc(&b, (unsigned char)*p);
        }
    }
    if (b.len == 0) {
        buf_free(&b);
        return NULL;
    }
    return buf_steal(&b);
}

/* strip_brackets - "<addr>" -> "addr" (copy) */
static char *strip_brackets(const char *s)
{
    size_t n = strlen(s);

    if (n >= 2 && s[0] == '<' && s[n - 1] == '>')
        return xstrndup(s + 1, n - 2);
    return xstrdup(s);
}

/* add_rcpt - collect one command-line recipient */
static void add_rcpt(void *ctx, const char *addr)
{
    struct submission *sub = ctx;

    sub->rcpts = xreallocarray(sub->rcpts, sub->nrcpts + 1, sizeof(char *));
    sub->rcpts[sub->nrcpts++] = xstrdup(addr);
}

/* deliver - -bm: read the message, check it, submit it */
static int deliver(struct cfg *cfg, const struct sm_opts *o, char **args, int nargs)
{
    struct submission sub;
    struct passwd *pw = getpwuid(getuid());
    char *sender, *full_name = NULL;
    int rc;

    memset(&sub, 0, sizeof(sub));
    if (o->sender)
        sender = strip_brackets(o->sender);
    else if (pw != NULL)
        sender = xstrdup(pw->pw_name);
    else
        sender = xasprintf("#%lld", (long long)getuid());
    if (*sender && !sm_addr_ok(cfg, sender))
        msg_fatal_status(EX_USAGE, "bad sender address syntax: %s", sender);
    full_name = o->full_name ? xstrdup(o->full_name) : default_full_name(pw);
    for (int i = 0; i < nargs; i++)
        cleanup_addr_list(args[i], strlen(args[i]), NULL, NULL, add_rcpt, &sub);
    for (size_t i = 0; i < sub.nrcpts; i++)
        if (!sm_addr_ok(cfg, sub.rcpts[i]))
            msg_fatal_status(EX_USAGE, "bad recipient address syntax: %s", sub.rcpts[i]);
    if (sub.nrcpts == 0 && !o->extract)
        msg_fatal_status(EX_USAGE, "Recipient addresses must be specified on the command "
                         "line or via the -t option");
    read_message(&sub.msg, o->dot_ends, cfg_int(cfg, "message_size_limit"));
    if (o->extract) {
        /* what pickup will extract: refuse now rather than lose the message */
        struct cleanup_info ci = {"X", 0, "localhost", cfg_str(cfg, "myorigin"), 0, sender,
                                  NULL, true, 0};
        struct cleanup_out co;
        size_t good = 0;
        cleanup_out_init(&co, 0);
        (void)cleanup_local(&ci, buf_str(&sub.msg), sub.msg.len, &co);
        for (size_t i = 0; i < co.nrcpts; i++)
            good += sm_addr_ok(cfg, co.rcpts[i]);
        cleanup_out_free(&co);
        if (good == 0 && sub.nrcpts == 0)
            msg_fatal_status(EX_NOINPUT, "No recipient addresses found in message header");
    }
    sub.sender = sender;
    sub.full_name = full_name;
    sub.extract = o->extract;
    rc = sm_submit(cfg, &sub);
    for (size_t i = 0; i < sub.nrcpts; i++)
        free(sub.rcpts[i]);
    free(sub.rcpts);
    buf_free(&sub.msg);
    free(sender);
    free(full_name);
    return rc;
}

/* flush - -q: wake the queue manager for a full retry */
static int flush(struct cfg *cfg)
{
    if (!trigger_send_checked(cfg, TRIGGER_QMGR, TRIGGER_FLUSH)) {
        msg_warn("cannot flush the queue: the mail system is not running (%m)");
        return EX_UNAVAILABLE;
    }
    return EX_OK;
}

/* parse_b - the -b mode letter */
static enum sm_mode parse_b(const char *arg)
{
    if (strcmp(arg, "m") == 0)
        return MODE_DELIVER;
    if (strcmp(arg, "s") == 0)
        return MODE_SMTP;
    if (strcmp(arg, "p") == 0)
        return MODE_QUEUE;
    if (strcmp(arg, "i") == 0)
        return MODE_ALIASES;
    if (strcmp(arg, "d") == 0 || strcmp(arg, "v") == 0 || strcmp(arg, "D") == 0)
        msg_fatal_status(EX_UNAVAILABLE, "-b%s is not supported (use posta start)", arg);
    usage("unknown -b mode");
}

/* parse_options - the sendmail command line; returns the index of the first recipient */
static int parse_options(int argc, char **argv, struct sm_opts *o)
{
    int c;

    opterr = 0;
    while ((c = getopt(argc, argv, "B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:q::r:tvx")) != -1) {
        switch (c) {
        case 'C':
            o->config = optarg;
            break;
        case 'F':
            o->full_name = optarg;
            break;
        case 'f':
        case 'r':
            o->sender = optarg;
            break;
        case 't':
            o->extract = true;
            break;
        case 'i':
            o->dot_ends = false;
            break;
        case 'o':
            if (strcmp(optarg, "i") == 0)
                o->dot_ends = false;
            break;   /* other -o options: ignored, as MUAs pass them */
        case 'b':
            o->mode = parse_b(optarg);
            break;
        case 'I':
            o->mode = MODE_ALIASES;
            break;
        case 'q':
            if (optarg == NULL)
                o->mode = MODE_FLUSH;
            else
                msg_fatal_status(EX_UNAVAILABLE, "-q%s is not supported (the queue manager "
                                 "runs by itself)", optarg);
            break;
        case 'v':
            o->verbose++;
            break;
        case '?':
            usage("unknown option");
        default:
            break;   /* accepted and ignored */
        }
    }
    return optind;
}

/* main - mode dispatch */
int main(int argc, char **argv)
{
    struct sm_opts o = {MODE_DELIVER, NULL, NULL, NULL, false, true, 0};
    char *base = strrchr(argv[0], '/');
    struct cfg *cfg;
    int first, rc = EX_SOFTWARE;

    base = base ? base + 1 : argv[0];
    log_open("sendmail", LOG_SINK_STDERR, NULL);
    if (strcmp(base, "mailq") == 0)
        o.mode = MODE_QUEUE;
    else if (strcmp(base, "newaliases") == 0)
        o.mode = MODE_ALIASES;
    first = parse_options(argc, argv, &o);
    for (int i = 0; i < o.verbose; i++)
        log_set_verbose(log_verbose_level() + 1);
    sm_verbose = o.verbose;
    sm_config_dir = config_dir(o.config);
    if (setenv("MAIL_CONFIG", sm_config_dir, 1) < 0)
        msg_fatal_status(EX_OSERR, "setenv: %m");
    cfg = cfg_load(sm_config_dir);
    switch (o.mode) {
    case MODE_QUEUE: {
        char *av[] = {"mailq", "-p", NULL};
        rc = cmd_queue(2, av, cfg) == 0 ? EX_OK : EX_UNAVAILABLE;
        break;
    }
    case MODE_ALIASES: {
        char *av[] = {"newaliases", NULL};
        rc = cmd_alias(1, av, cfg) == 0 ? EX_OK : EX_UNAVAILABLE;
        break;
    }
    case MODE_FLUSH:
        rc = flush(cfg);
        break;
    case MODE_SMTP:
        rc = sm_smtp(cfg, o.full_name);
        break;
    case MODE_DELIVER:
        rc = deliver(cfg, &o, argv + first, argc - first);
        break;
    }
    cfg_free(cfg);
    return rc;
}
