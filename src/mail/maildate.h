/*
 * maildate.h - the one RFC 5322 date formatter
 *
 * Used for Received:, Date:, and the dates of delivery status
 * notifications: "Sun, 22 Nov 2026 19:09:40 +0000 (UTC)" in local time,
 * English day and month names whatever the locale.
 */
#ifndef POSTA_MAILDATE_H
#define POSTA_MAILDATE_H

#include <time.h>

#include "util/buf.h"

/* mail_date - append the RFC 5322 date-time of when */
void mail_date(struct buf *out, time_t when);

#endif
