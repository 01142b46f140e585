/*
 * trigger.h - wake a posta daemon: connect to its socket, write one byte
 *
 * A trigger is a connection to $queue_directory/SERVICE ("public/qmgr",
 * "public/pickup") that carries one request byte and is closed at once,
 * as master's wakeup requests. The receiver reads the byte(s) and acts:
 * qmgr knows 'A' (scan incoming/ now), 'F' (flush: every deferred message
 * is due now) and 'W' (wakeup: the periodic scan). Failures are ignored:
 * every receiver also scans when it starts and at regular intervals.
 */
#ifndef POSTA_TRIGGER_H
#define POSTA_TRIGGER_H

#include <stdbool.h>

struct cfg;

#define TRIGGER_QMGR "public/qmgr"
#define TRIGGER_PICKUP "public/pickup"

#define TRIGGER_SCAN 'A'      /* new mail in incoming/ */
#define TRIGGER_FLUSH 'F'     /* retry every deferred message now */
#define TRIGGER_WAKEUP 'W'    /* periodic wakeup (master) */

/*
 * trigger_send - non-blocking connect to $queue_directory/service_path,
 * write code, close; errors are silently ignored
 */
void trigger_send(struct cfg *cfg, const char *service_path, char code);
/*
 * trigger_send_checked - the same, but false with errno set when the
 * trigger could not be delivered (for "posta flush", which reports it)
 */
bool trigger_send_checked(struct cfg *cfg, const char *service_path, char code);

#endif
