/*
 * maildate.c - the one RFC 5322 date formatter
 *
 * DIAGNOSTICS: none; a time that localtime cannot convert is shown in UTC.
 */
#include "util/sys.h"

#include <time.h>

#include "mail/maildate.h"

#define ZONE_NAME_MAX 64
#define SECONDS_PER_MINUTE 60
#define MINUTES_PER_HOUR 60
#define TM_YEAR_BASE 1900

/* mail_date - append the RFC 5322 date-time of when */
void mail_date(struct buf *out, time_t when)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char zone[ZONE_NAME_MAX];
    struct tm tm;
    long off, aoff;

    if (localtime_r(&when, &tm) == NULL)
        gmtime_r(&when, &tm);
    off = tm.tm_gmtoff / SECONDS_PER_MINUTE;
    aoff = off < 0 ? -off : off;
    if (strftime(zone, sizeof(zone), "%Z", &tm) == 0)
        zone[0] = 0;
    (void)buf_printf(out, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld", days[tm.tm_wday % 7],
                     tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + TM_YEAR_BASE,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+',
                     aoff / MINUTES_PER_HOUR, aoff % MINUTES_PER_HOUR);
    if (zone[0])
        (void)buf_printf(out, " (%s)", zone);
}
