/*
 * log.h - one line per event, in the form Postfix's log readers parse
 *
 * Every line is tagged "TAG[PID]: " where TAG is syslog_name/program
 * (e.g. "posta/smtpd"). Levels: info (no prefix), warn ("warning: "),
 * fatal ("fatal: ", then exit: bad environment or configuration),
 * panic ("panic: ", then abort: a broken internal assumption).
 *
 * Sinks (any combination): stderr, syslog (facility mail), the systemd
 * journal (native protocol, with SYSLOG_IDENTIFIER and SYSLOG_PID so that
 * journalctl shows the same line), and a file (maillog_file: timestamped
 * lines as syslog writes them; "/dev/stdout" and "/dev/stderr" work).
 */
#ifndef POSTA_LOG_H
#define POSTA_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_sink {
    LOG_SINK_STDERR = 1 << 0,   /* "TAG[PID]: text" on stderr */
    LOG_SINK_SYSLOG = 1 << 1,   /* syslog(3), facility LOG_MAIL */
    LOG_SINK_JOURNAL = 1 << 2,  /* sd_journal_send */
    LOG_SINK_FILE = 1 << 3,     /* timestamped lines appended to a file */
};

/* log_open - set the tag and the sinks; file is used with LOG_SINK_FILE */
void log_open(const char *tag, unsigned sinks, const char *file);
/* log_default_sinks - journal under systemd, else syslog (plus stderr if a tty) */
unsigned log_default_sinks(void);
/* log_tag - the current tag ("posta/smtpd") */
const char *log_tag(void);
void log_set_hostname(const char *name);
void log_set_verbose(int level);
int log_verbose_level(void);
/* log_on_fatal - run fn just before a fatal or panic exit (e.g. remove temp files) */
void log_on_fatal(void (*fn)(void));

void msg_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_verbose(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
/* msg_fatal_status - fatal with a chosen exit status */
void msg_fatal_status(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
void msg_panic(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void msg_vlog(int level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* levels for msg_vlog */
enum { MSG_INFO, MSG_WARN, MSG_FATAL, MSG_PANIC, MSG_VERBOSE };

#endif
