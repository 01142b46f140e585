/*
 * qmgr.c - the queue manager: main(), skeleton hooks, triggers, timers
 *
 * qmgr runs as one event-driven process under the shared skeleton
 * (mail/server.h). Its listener is public/qmgr; every connection is a
 * trigger (mail/trigger.h) carrying request bytes: 'A' scan incoming/
 * now, 'F' flush (every deferred message is due now), 'W' master's
 * periodic wakeup (scan deferred/ for due messages). At start it takes
 * over what a previous qmgr left in active/, then incoming/, then the due
 * part of deferred/; a timer repeats the incoming/ and deferred/ scans
 * every queue_run_delay as a safety net for lost triggers.
 *
 * DIAGNOSTICS: unknown trigger bytes are logged as warnings and ignored.
 * SECURITY: runs as mail_owner (master.cf unpriv column). Trigger
 *   connections are read at most TRIGGER_READ_MAX bytes at a time and
 *   closed after TRIGGER_IDLE_MS of silence.
 */
#include "util/sys.h"

#include <string.h>
#include <time.h>

#include "mail/config.h"
#include "mail/resolve.h"
#include "mail/server.h"
#include "mail/spool.h"
#include "mail/trigger.h"
#include "qmgr.h"
#include "util/alloc.h"
#include "util/event.h"
#include "util/log.h"

#define TRIGGER_READ_MAX 64
#define TRIGGER_IDLE_MS 10000
#define MS_PER_SEC 1000u
#define US_PER_SEC 1000000LL
#define NS_PER_US 1000

struct cfg *qmgr_cfg;
struct resolver *qmgr_resolver;
int qmgr_dir_incoming = -1, qmgr_dir_active = -1, qmgr_dir_deferred = -1,
    qmgr_dir_corrupt = -1, qmgr_dir_defer = -1, qmgr_dir_bounce = -1;

struct trigger_conn {
    int fd;
    struct event_timer idle;
};

static struct event_timer run_timer;
static bool want_flush;

/* qmgr_now_us - wall clock in microseconds */
long long qmgr_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * US_PER_SEC + ts.tv_nsec / NS_PER_US;
}

/* do_scan_incoming - deferred call: pick up new mail */
static void do_scan_incoming(void *ctx)
{
    (void)ctx;
    scan_incoming();
}

/* do_scan_deferred - deferred call: due (or, after 'F', all) deferred mail */
static void do_scan_deferred(void *ctx)
{
    bool flush = want_flush;

    (void)ctx;
    want_flush = false;
    scan_deferred(flush);
}

/* run_timer_fire - queue_run_delay: the safety-net scans */
static void run_timer_fire(void *ctx)
{
    (void)ctx;
    scan_incoming();
    scan_deferred(false);
    event_timer_arm(&run_timer, (uint64_t)cfg_time(qmgr_cfg, "queue_run_delay") * MS_PER_SEC);
}

/* trigger_close - end one trigger connection */
static void trigger_close(struct trigger_conn *tc)
{
    event_timer_disarm(&tc->idle);
    event_remove(tc->fd);
    close(tc->fd);
    free(tc);
}

/* trigger_idle - a trigger client that says nothing is dropped */
static void trigger_idle(void *ctx)
{
    trigger_close(ctx);
}

/* trigger_code - act on one request byte */
static void trigger_code(char c)
{
    switch (c) {
    case TRIGGER_SCAN:
        event_defer(do_scan_incoming, NULL);
        break;
    case TRIGGER_FLUSH:
        want_flush = true;
        event_defer(do_scan_incoming, NULL);
        event_defer(do_scan_deferred, NULL);
        break;
    case TRIGGER_WAKEUP:
        event_defer(do_scan_incoming, NULL);
        event_defer(do_scan_deferred, NULL);
        break;
    case '\n':
    case '\r':
        break;
    default:
        msg_warn("ignoring unknown trigger request 0x%02x", (unsigned char)c);
        break;
    }
}

/* trigger_read - read request bytes until the client closes */
static void trigger_read(int fd, unsigned events, void *ctx)
{
    struct trigger_conn *tc = ctx;
    char buf[TRIGGER_READ_MAX];
    ssize_t n;

    (void)fd;
    (void)events;
    n = read(tc->fd, buf, sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        trigger_close(tc);
        return;
    }
    for (ssize_t i = 0; i < n; i++)
        trigger_code(buf[i]);
    event_timer_arm(&tc->idle, TRIGGER_IDLE_MS);
}

/* qmgr_accept - a trigger connection */
static void qmgr_accept(struct server_ctx *ctx, int fd, const struct sockaddr *peer,
                        socklen_t peerlen, const struct sockaddr *local, socklen_t locallen)
{
    struct trigger_conn *tc = xcalloc(1, sizeof(*tc));

    tc->fd = fd;
    event_timer_setup(&tc->idle, trigger_idle, tc);
    event_timer_arm(&tc->idle, TRIGGER_IDLE_MS);
    event_add(fd, EVENT_READ, trigger_read, tc, false);
}

/* qmgr_startup - the first pass: active/ (a crash), incoming/, due deferred/ */
static void qmgr_startup(void *ctx)
{
    (void)ctx;
    scan_active();
    scan_incoming();
    scan_deferred(false);
}

/* qmgr_pre_jail - as root: the DKIM signing keys */
static void qmgr_pre_jail(struct server_ctx *ctx)
{
    signer_pre_jail(ctx->cfg);
}

/* qmgr_post_jail - open the queue directories and the resolver */
static void qmgr_post_jail(struct server_ctx *ctx)
{
    qmgr_cfg = ctx->cfg;
    event_init();   /* idempotent; the timers below need its clock */
    qmgr_dir_incoming = spool_dir_fd(qmgr_cfg, "incoming");
    qmgr_dir_active = spool_dir_fd(qmgr_cfg, "active");
    qmgr_dir_deferred = spool_dir_fd(qmgr_cfg, "deferred");
    qmgr_dir_corrupt = spool_dir_fd(qmgr_cfg, "corrupt");
    qmgr_dir_defer = spool_dir_fd(qmgr_cfg, "defer");
    qmgr_dir_bounce = spool_dir_fd(qmgr_cfg, "bounce");
    qmgr_resolver = resolver_open(qmgr_cfg);
    signer_post_jail(qmgr_cfg);
    event_timer_setup(&run_timer, run_timer_fire, NULL);
    event_timer_arm(&run_timer, (uint64_t)cfg_time(qmgr_cfg, "queue_run_delay") * MS_PER_SEC);
    event_defer(qmgr_startup, NULL);
}

/* qmgr_stop - SIGTERM: unfinished deliveries are redone by the next qmgr */
static void qmgr_stop(void)
{
    agent_stop_all();
}

/* main - hand control to the event server skeleton */
int main(int argc, char **argv)
{
    static const struct event_server_hooks hooks = {
        .program = "qmgr",
        .pre_jail = qmgr_pre_jail,
        .post_jail = qmgr_post_jail,
        .accept = qmgr_accept,
        .stop = qmgr_stop,
    };

    return event_server_main(argc, argv, &hooks);
}
