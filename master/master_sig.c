/*
 * master_sig.c - master's signals: children, reload, stop
 *
 * Signals arrive through the event loop (signalfd), so every handler here
 * is ordinary code that may allocate, log and fork.
 *
 *   SIGCHLD        reap children; restart them (throttled) as needed
 *   SIGHUP         reload: re-read main.cf and master.cf; keep listeners
 *                  whose address is unchanged, close removed ones, bind
 *                  new ones; drain the old children (SIGUSR1) and start
 *                  new ones at once. A configuration that fails to load
 *                  or bind is logged and the running one is kept.
 *   SIGTERM/SIGINT stop: SIGTERM to every child, SIGKILL after a grace
 *                  period, remove the service sockets, exit 0.
 *   SIGPIPE        ignored.
 *
 * DIAGNOSTICS: "reload -- version V, configuration DIR" after a reload;
 * "reload failed: ...; keeping the running configuration" otherwise;
 * "terminating on signal N" on stop.
 */
#include "util/sys.h"

#include <signal.h>
#include <string.h>
#include <time.h>

#include "mail/config.h"
#include "master.h"
#include "util/alloc.h"
#include "util/event.h"
#include "util/log.h"
#include "posta_paths.h"

#define MASTER_EXIT_OK 0
#define USEC_PER_SEC 1000000ull
#define NSEC_PER_USEC 1000ull

struct mconfig *master_current;

/* monotonic_usec - CLOCK_MONOTONIC in microseconds (for systemd) */
static unsigned long long monotonic_usec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * USEC_PER_SEC
           + (unsigned long long)ts.tv_nsec / NSEC_PER_USEC;
}

/* on_sigchld - reap and restart */
static void on_sigchld(int signo)
{
    (void)signo;
    master_spawn_reap();
}

/* reload - build the new configuration; old one stays on any failure */
static void reload(void)
{
    struct mconfig *old = master_current;
    struct mconfig *conf;
    char *err = NULL;

    conf = master_conf_load(old->config_dir, &err);
    if (conf && strcmp(conf->queue_dir, old->queue_dir) != 0) {
        err = xasprintf("queue_directory changed from %s to %s: "
                        "stop and start the mail system instead",
                        old->queue_dir, conf->queue_dir);
        master_conf_free(conf);
        conf = NULL;
    }
    if (conf && !master_conf_bind(conf, old, &err)) {
        master_conf_free(conf);
        conf = NULL;
    }
    if (conf == NULL) {
        msg_warn("reload failed: %s; keeping the running configuration", err);
        free(err);
        return;
    }
    master_tls_snakeoil(conf);
    /* Old children finish their sessions; new ones start right away. */
    master_spawn_detach(old);
    master_current = conf;
    master_log_open(conf->cfg);
    master_conf_free(old);
    master_spawn_all(conf);
    msg_info("reload -- version %s, configuration %s", POSTA_VERSION, conf->config_dir);
}

/* on_sighup - reload, telling systemd around it */
static void on_sighup(int signo)
{
    (void)signo;
    master_notify("RELOADING=1\nMONOTONIC_USEC=%llu", monotonic_usec());
    reload();
    master_notify("READY=1");
}

/* on_stop - SIGTERM/SIGINT: stop every child, exit */
static void on_stop(int signo)
{
    msg_info("terminating on signal %d", signo);
    master_notify("STOPPING=1");
    master_spawn_stop();
    master_conf_free(master_current);
    master_current = NULL;
    exit(MASTER_EXIT_OK);
}

/* master_sig_init - route master's signals through the event loop */
void master_sig_init(void)
{
    (void)signal(SIGPIPE, SIG_IGN);
    (void)signal(SIGUSR1, SIG_IGN);
    (void)signal(SIGUSR2, SIG_IGN);
    event_signal(SIGCHLD, on_sigchld);
    event_signal(SIGHUP, on_sighup);
    event_signal(SIGTERM, on_stop);
    event_signal(SIGINT, on_stop);
}
