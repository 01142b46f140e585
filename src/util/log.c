/*
 * log.c - one line per event, in the form Postfix's log readers parse
 *
 * The file sink (maillog_file) writes what a syslog daemon writes to
 * /var/log/mail.log: "Mmm dd hh:mm:ss host tag[pid]: text", so that
 * pflogsumm and fail2ban read it as they read a Postfix log.
 *
 * DIAGNOSTICS: a sink that fails is dropped silently (logging must never
 * take the process down); stderr is the last resort.
 * SECURITY: text is logged as given; callers quote what came from outside
 * (control characters are replaced here so one event stays one line).
 */
#include "util/sys.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>

#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-journal.h>

#include "util/log.h"

#define LOG_LINE_MAX 4096
#define LOG_STAMP_MAX 32

static char log_tag_buf[128] = "posta";
static char log_host[256] = "localhost";
static unsigned log_sinks = LOG_SINK_STDERR;
static int log_fd = -1;
static int log_verbose;
static void (*log_fatal_hook)(void);
static bool log_in_fatal;

/* log_open - set the tag and the sinks */
void log_open(const char *tag, unsigned sinks, const char *file)
{
    snprintf(log_tag_buf, sizeof(log_tag_buf), "%s", tag);
    if (log_fd >= 0 && log_fd > 2)
        close(log_fd);
    log_fd = -1;
    if ((sinks & LOG_SINK_FILE) && file && *file) {
        if (strcmp(file, "/dev/stdout") == 0)
            log_fd = 1;
        else if (strcmp(file, "/dev/stderr") == 0)
            log_fd = 2;
        else
            log_fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (log_fd < 0)
            sinks &= ~(unsigned)LOG_SINK_FILE;
    } else {
        sinks &= ~(unsigned)LOG_SINK_FILE;
    }
    if (sinks & LOG_SINK_SYSLOG) {
        closelog();
        openlog(log_tag_buf, LOG_PID | LOG_NDELAY, LOG_MAIL);
    }
    log_sinks = sinks;
}

/* log_default_sinks - journal under systemd, else syslog (plus stderr if a tty) */
unsigned log_default_sinks(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned sinks;

    if (js && *js) {
        struct stat st;
        unsigned long dev, ino;

        if (sscanf(js, "%lu:%lu", &dev, &ino) == 2 && fstat(2, &st) == 0
            && (unsigned long)st.st_dev == dev && (unsigned long)st.st_ino == ino)
            return LOG_SINK_JOURNAL;
    }
    sinks = LOG_SINK_SYSLOG;
    if (isatty(2))
        sinks |= LOG_SINK_STDERR;
    return sinks;
}

/* log_tag - the current tag */
const char *log_tag(void)
{
    return log_tag_buf;
}

/* log_set_hostname - host name for timestamped file lines */
void log_set_hostname(const char *name)
{
    snprintf(log_host, sizeof(log_host), "%s", name);
}

/* log_set_verbose - enable msg_verbose output */
void log_set_verbose(int level)
{
    log_verbose = level;
}

/* log_verbose_level - current verbosity */
int log_verbose_level(void)
{
    return log_verbose;
}

/* log_on_fatal - run fn just before a fatal or panic exit */
void log_on_fatal(void (*fn)(void))
{
    log_fatal_hook = fn;
}

/* log_write_all - write, ignoring errors (logging never fails loudly) */
static void log_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/*
 * log_stamp - "Mmm dd hh:mm:ss" in local time, as syslog daemons write it
 *
 * The traditional syslog (RFC 3164) stamp, with English month names
 * whatever the locale and no fraction of a second: the form pflogsumm and
 * fail2ban recognise in a mail log.
 */
static void log_stamp(char *out, size_t len)
{
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    struct tm tm;

    if (localtime_r(&now, &tm) == NULL || tm.tm_mon < 0
        || (size_t)tm.tm_mon >= POSTA_ARRAY_LEN(months)) {
        snprintf(out, len, "Jan  1 00:00:00");
        return;
    }
    snprintf(out, len, "%s %2d %02d:%02d:%02d", months[tm.tm_mon], tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec);
}

/* msg_vlog - format one event and send it to every sink */
void msg_vlog(int level, const char *fmt, va_list ap)
{
    static const char *prefix[] = {"", "warning: ", "fatal: ", "panic: ", ""};
    static const int prio[] = {LOG_INFO, LOG_WARNING, LOG_CRIT, LOG_CRIT, LOG_DEBUG};
    char text[LOG_LINE_MAX];
    char line[LOG_LINE_MAX + 512];
    int saved_errno = errno;
    size_t n;
    int len;

    len = snprintf(text, sizeof(text), "%s", prefix[level]);
    if (len < 0)
        len = 0;
    vsnprintf(text + len, sizeof(text) - (size_t)len, fmt, ap);
    for (char *p = text; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    if (log_sinks & LOG_SINK_STDERR) {
        len = snprintf(line, sizeof(line), "%s[%ld]: %s\n", log_tag_buf,
                       (long)getpid(), text);
        n = len < 0 ? 0 : ((size_t)len < sizeof(line) ? (size_t)len : sizeof(line) - 1);
        log_write_all(2, line, n);
    }
    if ((log_sinks & LOG_SINK_FILE) && log_fd >= 0) {
        char stamp[LOG_STAMP_MAX];

        log_stamp(stamp, sizeof(stamp));
        len = snprintf(line, sizeof(line), "%s %s %s[%ld]: %s\n", stamp, log_host,
                       log_tag_buf, (long)getpid(), text);
        n = len < 0 ? 0 : ((size_t)len < sizeof(line) ? (size_t)len : sizeof(line) - 1);
        log_write_all(log_fd, line, n);
    }
    if (log_sinks & LOG_SINK_SYSLOG)
        syslog(prio[level], "%s", text);
    if (log_sinks & LOG_SINK_JOURNAL)
        sd_journal_send("MESSAGE=%s", text, "PRIORITY=%d", prio[level],
                        "SYSLOG_FACILITY=%d", LOG_MAIL >> 3,
                        "SYSLOG_IDENTIFIER=%s", log_tag_buf,
                        "SYSLOG_PID=%ld", (long)getpid(), NULL);
    errno = saved_errno;
}

#define MSG_FN(name, level)                 \
    void name(const char *fmt, ...)         \
    {                                       \
        va_list ap;                         \
        va_start(ap, fmt);                  \
        msg_vlog(level, fmt, ap);           \
        va_end(ap);                         \
    }

MSG_FN(msg_info, MSG_INFO)
MSG_FN(msg_warn, MSG_WARN)

/* msg_verbose - debug output, only when verbose logging is on */
void msg_verbose(const char *fmt, ...)
{
    va_list ap;

    if (!log_verbose)
        return;
    va_start(ap, fmt);
    msg_vlog(MSG_VERBOSE, fmt, ap);
    va_end(ap);
}

/* log_run_fatal_hook - run the cleanup hook once */
static void log_run_fatal_hook(void)
{
    if (!log_in_fatal && log_fatal_hook) {
        log_in_fatal = true;
        log_fatal_hook();
    }
}

/* msg_fatal_status - log, clean up, exit with status */
void msg_fatal_status(int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    msg_vlog(MSG_FATAL, fmt, ap);
    va_end(ap);
    log_run_fatal_hook();
    exit(status);
}

/* msg_fatal - bad environment or configuration: log and exit 1 */
void msg_fatal(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    msg_vlog(MSG_FATAL, fmt, ap);
    va_end(ap);
    log_run_fatal_hook();
    exit(1);
}

/* msg_panic - broken internal assumption: log and abort */
void msg_panic(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    msg_vlog(MSG_PANIC, fmt, ap);
    va_end(ap);
    log_run_fatal_hook();
    abort();
}
