/*
 * master.h - shared state of the master supervisor
 *
 * master.c       main: options, daemonizing, the lock file, readiness
 * master_conf.c  main.cf + master.cf -> services and their listeners
 * master_spawn.c children: fork+exec, reaping, restart throttle
 * master_sig.c   signals: SIGCHLD, SIGHUP (reload), SIGTERM/SIGINT (stop)
 */
#ifndef POSTA_MASTER_H
#define POSTA_MASTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/event.h"

struct cfg;

/* One listening endpoint of a service. */
struct mlistener {
    char *key;      /* "inet:127.0.0.1:2525", "unix:/spool/private/qmgr" */
    char *host;     /* inet: numeric address ("" = wildcard) */
    char *port;     /* inet: numeric port */
    int family;     /* inet: AF_INET or AF_INET6 */
    char *path;     /* unix, fifo: absolute path */
    int fd;         /* -1 until bound */
};

/* One master.cf service, resolved against main.cf. */
struct mservice {
    char *name;           /* master.cf first column */
    char *type;           /* inet, unix, fifo */
    char *command;        /* program name in daemon_directory */
    char *path;           /* daemon_directory/command */
    char **argv;          /* NULL-terminated, as server.h describes */
    struct mlistener *listen;
    size_t nlisten;
    int nproc;            /* processes to keep running */
    int wakeup;           /* seconds, 0 = none */
    bool private_;
    /* runtime */
    int running;          /* live children of this service */
    int fast_exits;       /* consecutive exits soon after start */
    bool throttled;
    struct event_timer throttle_timer;
    struct event_timer wakeup_timer;
    struct mconfig *conf; /* back pointer */
};

/* A complete configuration: what master runs between reloads. */
struct mconfig {
    struct cfg *cfg;
    char *config_dir;     /* absolute */
    char *queue_dir;
    char *daemon_dir;
    struct mservice *svc;
    size_t nsvc;
};

/* master.c */
extern bool master_verbose;
/* master_log_open - open the log as syslog_name/master per cfg */
void master_log_open(struct cfg *cfg);
/* master_notify - sd_notify text (no-op without NOTIFY_SOCKET) */
void master_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* master_conf.c */
/* master_conf_load - read and check everything; NULL + *err on a problem */
struct mconfig *master_conf_load(const char *config_dir, char **err);
/* master_conf_bind - open listeners, reusing old's with the same key */
bool master_conf_bind(struct mconfig *conf, struct mconfig *old, char **err);
/* master_conf_free - close remaining listeners, free everything */
void master_conf_free(struct mconfig *conf);

/* master_spawn.c */
/* master_spawn_all - start the children every service still lacks */
void master_spawn_all(struct mconfig *conf);
/* master_spawn_detach - drain every child of conf (SIGUSR1), forget conf */
void master_spawn_detach(struct mconfig *conf);
/* master_spawn_reap - collect exited children; restart or throttle */
void master_spawn_reap(void);
/* master_spawn_stop - SIGTERM all children, wait, SIGKILL leftovers */
void master_spawn_stop(void);
/* master_spawn_count - live children (tests, logging) */
size_t master_spawn_count(void);

/* master_tls.c */
/* master_tls_snakeoil - self-signed smtpd certificate when TLS is on without one */
void master_tls_snakeoil(struct mconfig *conf);

/* master_sig.c */
void master_sig_init(void);
/* master_current - the running configuration */
extern struct mconfig *master_current;

#endif
