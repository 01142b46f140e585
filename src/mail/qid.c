/*
 * qid.c - queue IDs: unique, sortable by arrival time
 *
 * An ID is the arrival time in microseconds since the epoch, written as
 * QID_TIME_DIGITS fixed-width digits in base 51 over Postfix's long queue
 * ID alphabet (digits, then upper case, then lower case, without vowels
 * and without 'z'), the separator 'z', then the process ID in the same
 * base without leading zeros. The alphabet is in ASCII order, so IDs sort
 * by time as plain strings. Ten digits cover 51^10 microseconds (about
 * 3,770 years after 1970), so the width never overflows in practice.
 *
 * Within one process the timestamps strictly increase: when the clock
 * repeats or goes back, the last value plus one is used. Two processes
 * differ in their PID, so IDs are unique across the host.
 *
 * DIAGNOSTICS
 *   qid_new panics only if the clock cannot be read.
 * SECURITY
 *   qid_valid is strict (fixed alphabet and lengths): an ID that passes
 *   can safely be used as a file name in a queue directory.
 */
#include "util/sys.h"

#include <time.h>

#include "mail/qid.h"
#include "util/log.h"

#define QID_ALPHABET "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxy"
#define QID_BASE 51u
#define QID_TIME_DIGITS 10
#define QID_SEP 'z'
#define QID_PID_DIGITS_MAX 6     /* 51^6 > 2^31: any pid_t value fits */
#define USEC_PER_SEC 1000000ULL

static uint64_t qid_last_usec;

/* qid_digit - value of one alphabet character, or -1 */
static int qid_digit(int c)
{
    const char *p;

    if (c == 0 || c == QID_SEP)
        return -1;
    p = strchr(QID_ALPHABET, c);
    return p ? (int)(p - QID_ALPHABET) : -1;
}

/* qid_now_usec - wall clock in microseconds, strictly increasing per process */
static uint64_t qid_now_usec(void)
{
    struct timespec ts;
    uint64_t now;

    if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
        msg_panic("qid: clock_gettime: %m");
    now = (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
    if (now <= qid_last_usec)
        now = qid_last_usec + 1;
    qid_last_usec = now;
    return now;
}

/* qid_new - a fresh ID into buf[QID_MAX] */
void qid_new(char *buf)
{
    uint64_t t = qid_now_usec();
    unsigned long pid = (unsigned long)getpid();
    char digits[QID_PID_DIGITS_MAX];
    size_t n = 0, out = 0;

    for (int i = QID_TIME_DIGITS - 1; i >= 0; i--) {
        buf[i] = QID_ALPHABET[t % QID_BASE];
        t /= QID_BASE;
    }
    out = QID_TIME_DIGITS;
    buf[out++] = QID_SEP;
    do {
        digits[n++] = QID_ALPHABET[pid % QID_BASE];
        pid /= QID_BASE;
    } while (pid > 0 && n < sizeof(digits));
    while (n > 0)
        buf[out++] = digits[--n];
    buf[out] = 0;
}

/* qid_valid - a well-formed ID */
bool qid_valid(const char *s)
{
    size_t len, piddigits;

    if (s == NULL)
        return false;
    len = strnlen(s, QID_MAX);
    if (len < QID_TIME_DIGITS + 2 || len > QID_TIME_DIGITS + 1 + QID_PID_DIGITS_MAX)
        return false;
    for (size_t i = 0; i < QID_TIME_DIGITS; i++)
        if (qid_digit((unsigned char)s[i]) < 0)
            return false;
    if (s[QID_TIME_DIGITS] != QID_SEP)
        return false;
    piddigits = len - QID_TIME_DIGITS - 1;
    if (s[QID_TIME_DIGITS + 1] == '0')
        return false;   /* no leading zeros: one spelling per PID */
    for (size_t i = 0; i < piddigits; i++)
        if (qid_digit((unsigned char)s[QID_TIME_DIGITS + 1 + i]) < 0)
            return false;
    return true;
}

/* qid_time - arrival time encoded in an ID (seconds, microseconds) */
bool qid_time(const char *s, long long *sec, long *usec)
{
    uint64_t t = 0;

    if (!qid_valid(s))
        return false;
    for (size_t i = 0; i < QID_TIME_DIGITS; i++)
        t = t * QID_BASE + (uint64_t)qid_digit((unsigned char)s[i]);
    if (sec)
        *sec = (long long)(t / USEC_PER_SEC);
    if (usec)
        *usec = (long)(t % USEC_PER_SEC);
    return true;
}
