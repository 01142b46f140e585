/*
 * cmd_flush.c - "posta flush": ask the queue manager to retry deferred mail
 *
 * Like "postqueue -f" / "postfix flush": one 'F' trigger to public/qmgr;
 * the queue manager then treats every message in deferred/ as due and
 * also scans incoming/. The command does not wait for the deliveries.
 *
 * DIAGNOSTICS: "posta: cannot reach the queue manager at PATH: ERROR"
 *   (mail system not running) with exit status 1; usage errors exit 2.
 * SECURITY: only connects to a socket in the queue directory.
 */
#include "util/sys.h"

#include <stdio.h>
#include <string.h>

#include "cmd_flush.h"
#include "mail/config.h"
#include "mail/trigger.h"

#define EXIT_FLUSH_OK 0
#define EXIT_FLUSH_ERROR 1
#define EXIT_FLUSH_USAGE 2

/* cmd_flush - send the flush trigger */
int cmd_flush(int argc, char **argv, struct cfg *cfg)
{
    if (argc != 1) {
        fprintf(stderr, "usage: posta [-c config_dir] %s\n", argv[0]);
        return EXIT_FLUSH_USAGE;
    }
    if (!trigger_send_checked(cfg, TRIGGER_QMGR, TRIGGER_FLUSH)) {
        fprintf(stderr, "posta: cannot reach the queue manager at %s/%s: %s\n",
                cfg_str(cfg, "queue_directory"), TRIGGER_QMGR, strerror(errno));
        return EXIT_FLUSH_ERROR;
    }
    return EXIT_FLUSH_OK;
}
