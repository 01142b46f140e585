/*
 * postdrop.c - put one locally submitted message into the maildrop queue
 *
 * USAGE: postdrop [-c config_dir] [-v]   (run by sendmail, request on stdin)
 *
 * postdrop is the only program that writes into $queue_directory/maildrop.
 * It is installed set-group-ID $setgid_group (maildrop/ is mode 0730,
 * owner mail_owner, group setgid_group), so any local user can submit
 * mail while the mail system is stopped, and nobody can read what others
 * submitted. In an unprivileged instance it runs without set-ID bits and
 * the maildrop belongs to the invoking user.
 *
 * REQUEST (stdin, written by sendmail; every line ends in "\n", holds no
 * NUL and is at most QFILE_ENV_REC_MAX bytes):
 *     S<sender>            exactly one, first ("S" alone: the null sender)
 *     F<full name>         optional
 *     T                    optional: extract recipients from the header (-t)
 *     R<recipient>         any number
 *     M<length>            then exactly <length> message bytes, then EOF
 * The counted message makes a truncated request (sendmail killed half-way)
 * an error instead of a truncated message.
 *
 * OUTPUT: maildrop/tmp.QID in the queue-file format (mail/qfile.h):
 * TIME, ATTR uid=UID (the real user ID: never taken from the request),
 * ATTR full_name=..., ATTR rewrite=yes (for T), SENDER, RCPT..., MESSAGE,
 * CONTENT..., END; made durable (fsync), made readable for pickup (mode
 * 0744, owner the user) and renamed to maildrop/QID; the rename is made
 * durable with syncfs (the 0730 directory cannot be opened for fsync by
 * postdrop's group), then pickup is woken. Only then does postdrop exit 0.
 *
 * DIAGNOSTICS: "postdrop: ..." on stderr; the exit status follows
 * sysexits(3): EX_USAGE bad usage or request, EX_DATAERR message larger
 * than message_size_limit, EX_NOPERM a configuration directory the
 * set-group-ID program may not use, EX_TEMPFAIL the maildrop could not be
 * written (the message is not queued: the caller must keep it).
 *
 * SECURITY: with set-group-ID privilege (effective group != real group)
 * and a non-root caller, only the compiled-in configuration directory is
 * accepted (-c or MAIL_CONFIG naming another one is refused), so a user
 * cannot point postdrop at a queue directory of their choosing. The
 * request is checked strictly; the file is created O_EXCL|O_NOFOLLOW
 * under a fresh queue ID; signals remove the unfinished file.
 */
#include "util/sys.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>

#include "mail/config.h"
#include "mail/qfile.h"
#include "mail/qid.h"
#include "mail/trigger.h"
#include "posta_paths.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"

#define MAILDROP_DIR "maildrop"
#define MAILDROP_TMP_PREFIX "tmp."
#define MAILDROP_MODE_DONE 0744     /* x: complete; r for pickup (mail_owner) */
#define POSTDROP_UMASK 077
#define READ_CHUNK 65536
#define NAME_MAX_LEN 64

static char tmp_name[NAME_MAX_LEN];   /* unfinished file, for the signal handler */
static int maildrop_fd = -1;
static volatile sig_atomic_t file_live;

/* usage - bad command line */
static void POSTA_NORETURN usage(void)
{
    fprintf(stderr, "usage: postdrop [-c config_dir] [-v]\n");
    exit(EX_USAGE);
}

/* on_signal - remove the unfinished file and exit (async-signal-safe) */
static void on_signal(int signo)
{
    if (file_live && maildrop_fd >= 0)
        (void)unlinkat(maildrop_fd, tmp_name, 0);
    _exit(EX_TEMPFAIL);
}

/* on_fatal - a fatal error: remove the unfinished file */
static void on_fatal(void)
{
    if (file_live && maildrop_fd >= 0)
        (void)unlinkat(maildrop_fd, tmp_name, 0);
    file_live = 0;
}

/* catch_signals - clean up on the usual termination signals */
static void catch_signals(void)
{
    static const int sigs[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGPIPE, SIGXFSZ};
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigfillset(&sa.sa_mask);
    for (size_t i = 0; i < POSTA_ARRAY_LEN(sigs); i++)
        (void)sigaction(sigs[i], &sa, NULL);
}

/* read_line - one request line without its "\n"; false at EOF; fatal if too long */
static bool read_line(struct buf *line)
{
    int c;

    buf_reset(line);
    while ((c = getchar()) != EOF && c != '\n') {
        if (c == 0)
            msg_fatal_status(EX_USAGE, "bad request: NUL byte in the envelope");
        if (buf_putc(line, c) < 0)
            msg_fatal_status(EX_USAGE, "bad request: envelope line too long");
    }
    if (c == EOF) {
        if (ferror(stdin))
            msg_fatal_status(EX_TEMPFAIL, "read request: %m");
        if (line->len > 0)
            msg_fatal_status(EX_USAGE, "bad request: truncated envelope");
        return false;
    }
    return true;
}

/* checked_config_dir - the set-group-ID program only serves the default configuration */
static const char *checked_config_dir(const char *cli_dir)
{
    const char *dir = cfg_default_dir(cli_dir);
    bool privileged = getegid() != getgid() || geteuid() != getuid();

    if (privileged && getuid() != 0 && strcmp(dir, POSTA_CONFIG_DIR) != 0)
        msg_fatal_status(EX_NOPERM, "configuration directory %s not allowed for a "
                         "set-group-ID postdrop (only %s)", dir, POSTA_CONFIG_DIR);
    return dir;
}

/* parse_length - the decimal length of the M line */
static unsigned long long parse_length(const char *s)
{
    unsigned long long v = 0;

    if (*s == 0)
        msg_fatal_status(EX_USAGE, "bad request: message length missing");
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (ULLONG_MAX - 9) / 10)
            msg_fatal_status(EX_USAGE, "bad request: bad message length");
        v = v * 10 + (unsigned long long)(*s - '0');
    }
    return v;
}

/* copy_message - exactly len bytes from stdin into the queue file, then EOF */
static void copy_message(struct qfile_writer *w, unsigned long long len)
{
    char chunk[READ_CHUNK];

    while (len > 0) {
        size_t want = len < sizeof(chunk) ? (size_t)len : sizeof(chunk);
        size_t got = fread(chunk, 1, want, stdin);
        if (got == 0)
            msg_fatal_status(ferror(stdin) ? EX_TEMPFAIL : EX_USAGE,
                             "bad request: message shorter than announced");
        qfw_content(w, chunk, got);
        len -= got;
    }
    if (getchar() != EOF)
        msg_fatal_status(EX_USAGE, "bad request: data after the message");
}

/* write_request - read the request and write it as a queue file */
static void write_request(struct qfile_writer *w, long long size_limit)
{
    struct buf line = BUF_INIT;
    struct timespec ts;
    bool have_sender = false, have_message = false;
    size_t envelope = 0, nrcpt = 0;

    buf_init(&line, QFILE_ENV_REC_MAX);
    clock_gettime(CLOCK_REALTIME, &ts);
    qfw_recordf(w, QREC_TIME, "%lld.%06ld", (long long)ts.tv_sec, ts.tv_nsec / 1000);
    qfw_recordf(w, QREC_ATTR, "uid=%lld", (long long)getuid());
    while (!have_message && read_line(&line)) {
        const char *arg = buf_str(&line) + 1;
        char type = line.len ? line.data[0] : 0;

        if (!have_sender && type != 'S')
            msg_fatal_status(EX_USAGE, "bad request: sender must come first");
        switch (type) {
        case 'S':
            if (have_sender)
                msg_fatal_status(EX_USAGE, "bad request: two senders");
            have_sender = true;
            qfw_record(w, QREC_SENDER, arg, strlen(arg));
            break;
        case 'F':
            qfw_recordf(w, QREC_ATTR, "full_name=%s", arg);
            break;
        case 'T':
            if (*arg)
                msg_fatal_status(EX_USAGE, "bad request: bad T line");
            qfw_recordf(w, QREC_ATTR, "rewrite=yes");
            break;
        case 'R':
            if (*arg == 0)
                msg_fatal_status(EX_USAGE, "bad request: empty recipient");
            qfw_record(w, QREC_RCPT, arg, strlen(arg));
            nrcpt++;
            break;
        case 'M': {
            unsigned long long len = parse_length(arg);
            if (size_limit > 0 && len > (unsigned long long)size_limit)
                msg_fatal_status(EX_DATAERR, "message file too big (%llu bytes, "
                                 "message_size_limit is %lld)", len, size_limit);
            qfw_record(w, QREC_MESSAGE, "", 0);
            copy_message(w, len);
            have_message = true;
            break;
        }
        default:
            msg_fatal_status(EX_USAGE, "bad request: unknown line type");
        }
        envelope += line.len;
        if (envelope > QFILE_ENVELOPE_MAX / 2 || nrcpt > QFILE_RCPT_MAX)
            msg_fatal_status(EX_USAGE, "bad request: envelope too large");
    }
    if (!have_message)
        msg_fatal_status(EX_USAGE, "bad request: no message");
    buf_free(&line);
}

/* main - read the request, queue it in maildrop/, wake pickup */
int main(int argc, char **argv)
{
    const char *cli_dir = NULL;
    struct qfile_writer *w;
    struct cfg *cfg;
    char qid[QID_MAX], *dir;
    int c;

    umask(POSTDROP_UMASK);
    log_open("postdrop", LOG_SINK_STDERR, NULL);
    while ((c = getopt(argc, argv, "c:v")) != -1) {
        switch (c) {
        case 'c':
            cli_dir = optarg;
            break;
        case 'v':
            log_set_verbose(log_verbose_level() + 1);
            break;
        default:
            usage();
        }
    }
    if (optind != argc)
        usage();
    cfg = cfg_load(checked_config_dir(cli_dir));
    dir = xasprintf("%s/%s", cfg_str(cfg, "queue_directory"), MAILDROP_DIR);
    /*
     * maildrop/ is mode 0730 as in Postfix: postdrop's group may create
     * files there but not list or open the directory, so it is reached
     * with O_PATH (enough for the *at() calls).
     */
    maildrop_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (maildrop_fd < 0)
        msg_fatal_status(EX_TEMPFAIL, "open maildrop directory %s: %m", dir);
    qid_new(qid);
    snprintf(tmp_name, sizeof(tmp_name), "%s%s", MAILDROP_TMP_PREFIX, qid);
    catch_signals();
    log_on_fatal(on_fatal);
    if ((w = qfw_create(maildrop_fd, tmp_name)) == NULL)
        msg_fatal_status(EX_TEMPFAIL, "create file %s/%s: %m", dir, tmp_name);
    file_live = 1;
    write_request(w, cfg_int(cfg, "message_size_limit"));
    if (qfw_finish(w) < 0 || fsync(qfw_fd(w)) < 0 ||
        fchmod(qfw_fd(w), MAILDROP_MODE_DONE) < 0) {
        errno = qfw_error(w) ? qfw_error(w) : errno;
        msg_fatal_status(EX_TEMPFAIL, "write file %s/%s: %m", dir, tmp_name);
    }
    if (renameat(maildrop_fd, tmp_name, maildrop_fd, qid) < 0)
        msg_fatal_status(EX_TEMPFAIL, "rename %s/%s to %s: %m", dir, tmp_name, qid);
    file_live = 0;
    /* The directory cannot be opened for fsync: syncfs makes the rename durable. */
    if (syncfs(qfw_fd(w)) < 0)
        msg_fatal_status(EX_TEMPFAIL, "sync the file system of %s: %m", dir);
    qfw_close(w);
    msg_verbose("queued %s/%s", dir, qid);
    trigger_send(cfg, TRIGGER_PICKUP, TRIGGER_WAKEUP);
    close(maildrop_fd);
    free(dir);
    cfg_free(cfg);
    return EX_OK;
}
