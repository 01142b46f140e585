/*
 * local.h - the local delivery agent's shared types (local/ only)
 *
 * local.c reads requests and settings; resolve.c decides what a
 * recipient is (alias, .forward, user); alias.c expands destination
 * lists; mbox.c (mailboxes and files), maildir.c and pipe.c write the message; lock.c
 * locks mailboxes; privs.c runs each write as the recipient in a child;
 * content.c streams the queue file's message; forward.c queues mail for
 * other destinations; pass.c hands mailbox deliveries and unknown users
 * to mailbox_transport and fallback_transport.
 */
#ifndef POSTA_LOCAL_H
#define POSTA_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "mail/deliver.h"
#include "mail/qfile.h"
#include "util/buf.h"

struct cfg;
struct dict;
struct matchlist;

#define LOCAL_TEXT_MAX 512          /* result text sent to qmgr */
#define LOCAL_ADDR_MAX 1024         /* final recipient kept in a result */
#define LOCAL_RELAY_MAX 256         /* relay/remote MTA of a passed delivery */
#define LOCAL_READ_CHUNK 4096       /* read() size for small files and pipes */
#define LOCAL_EXPAND_DEPTH 20       /* nested alias/.forward/:include: */
#define LOCAL_ORIGIN_ALIAS 1u       /* allow_mail_to_* classes */
#define LOCAL_ORIGIN_FORWARD 2u
#define LOCAL_ORIGIN_INCLUDE 4u

struct local_conf {
    struct cfg *cfg;
    const char *myhostname;
    const char *home_mailbox;
    const char *spool_dir;
    const char *mailbox_command;       /* raw: $-expanded per delivery */
    const char *luser_relay;           /* raw: $-expanded per delivery */
    const char *forward_path;          /* raw */
    const char *recipient_delimiter;
    const char *command_shell;         /* local_command_shell */
    const char *expansion_filter;      /* command_expansion_filter */
    long long mailbox_size_limit;
    long long message_size_limit;
    long long command_time_limit;      /* seconds */
    long long stale_lock_time;         /* seconds */
    long long lock_attempts;
    long long lock_delay;              /* seconds */
    bool lock_fcntl, lock_flock, lock_dotlock;
    bool require_home;           /* require_home_directory */
    unsigned allow_commands, allow_files;   /* LOCAL_ORIGIN_* bits */
    struct dict **alias_maps;
    size_t nalias_maps;
    struct matchlist *mydestination;
    uid_t default_uid;
    gid_t default_gid;
    const char *default_user;
    int active_fd, incoming_fd;
};

extern struct local_conf local_conf;

/* One delivery result: worst status wins when several are combined. */
struct dres {
    enum deliver_status status;
    char dsn[16];
    char text[LOCAL_TEXT_MAX];
    char final[LOCAL_ADDR_MAX];    /* the expanded address it concerns */
    /* Set only by a delivery passed to another transport (pass.c). */
    char relay[LOCAL_RELAY_MAX];   /* "" = "local" */
    char remote_mta[LOCAL_RELAY_MAX];
    char diag[LOCAL_TEXT_MAX];
    bool relayed;
    bool set;
};

/* The privileges and identity a write runs with. */
struct privs {
    uid_t uid;
    gid_t gid;
    char *user;
    char *home;
    char *shell;
};

/* The message being delivered (one request). */
struct lmsg {
    struct qfile *q;
    const struct deliver_request *req;
    const char *sender;            /* "" for <> */
    char **delivered_to;           /* lower-cased Delivered-To: values */
    size_t ndelivered;
    unsigned fwd_count;            /* queue files written for this request */
    char **seen;                   /* leaves delivered for this recipient */
    size_t nseen;
};

/* Where a delivery stands in the expansion of one request recipient. */
struct lrcpt {
    const char *address;           /* the address being delivered now */
    const char *orig;              /* the original recipient (X-Original-To) */
    const char *top;               /* the request recipient (for logging) */
    const struct deliver_rcpt *rc; /* the request recipient (orcpt, notify, offset) */
    unsigned depth;
    unsigned origin;               /* LOCAL_ORIGIN_* of the current list */
    const struct privs *owner;     /* privileges for files and commands */
    const char *const *chain;      /* names expanded on the way here */
    size_t nchain;
};

/* result.c */
void dres_set(struct dres *r, enum deliver_status st, const char *dsn, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void dres_merge(struct dres *into, const struct dres *from);

/* content.c: streaming the message out of the queue file */
#define COPY_FROM_LINE 1u     /* "From sender date" first */
#define COPY_QUOTE 2u         /* ">From " quoting */
#define COPY_BLANK 4u         /* blank line after the message */
#define COPY_ORIG_TO 8u       /* X-Original-To: header */
int content_copy(const struct lmsg *m, const struct lrcpt *r, int fd, unsigned flags,
                 struct dres *res);
/* content_copy_to - the same through an output function; *written bytes */
int content_copy_to(const struct lmsg *m, const struct lrcpt *r, unsigned flags,
                    int (*out)(void *ctx, const char *p, size_t n), void *out_ctx,
                    uint64_t *written);
void content_scan_headers(struct lmsg *m);
bool content_delivered_to(const struct lmsg *m, const char *address);
/* content_stream - each line (or piece of a long line) of the message */
int content_stream(const struct qfile *q, int (*fn)(void *ctx, const char *p, size_t n,
                                                    bool bol),
                   void *ctx);

/* privs.c */
bool privs_lookup(const char *name, struct privs *p, bool *tempfail);
bool privs_lookup_uid(uid_t uid, struct privs *p, bool *tempfail);
void privs_free(struct privs *p);
void privs_default(struct privs *p);
/* privs_open_as - open path read-only with p's effective IDs; fd or -1 */
int privs_open_as(const struct privs *p, const char *path);
/* privs_stat_as - stat path (following links) with p's effective IDs; 0 or -1 */
int privs_stat_as(const struct privs *p, const char *path, struct stat *st);
/* privs_run - run fn in a child with p's identity; the result comes back */
void privs_run(const struct privs *p, long long timeout, void (*fn)(void *ctx, struct dres *r),
               void *ctx, struct dres *r);

/* lock.c */
struct mbox_lock {
    char *dotlock;     /* path of our dotlock, NULL if none */
};
bool lock_dot_acquire(const char *path, struct mbox_lock *lk, struct dres *r);
void lock_dot_release(struct mbox_lock *lk);
bool lock_fd(int fd, struct dres *r, const char *path);

/* mbox.c, maildir.c, pipe.c */
void deliver_mailbox(struct lmsg *m, const struct lrcpt *r, const struct privs *user,
                     struct dres *res);
void deliver_maildir(struct lmsg *m, const struct lrcpt *r, const struct privs *user,
                     const char *dir, struct dres *res);
void deliver_file(struct lmsg *m, const struct lrcpt *r, const struct privs *p,
                  const char *path, struct dres *res);
void deliver_command(struct lmsg *m, const struct lrcpt *r, const struct privs *p,
                     const char *command, struct dres *res);

/* resolve.c */
void resolve_deliver(struct lmsg *m, const struct lrcpt *r, struct dres *res);
/* resolve_user - a user's mailbox, skipping aliases (and .forward if asked) */
void resolve_user(struct lmsg *m, const struct lrcpt *r, const char *name, bool use_forward,
                  struct dres *res);
/* resolve_seen - true if this leaf was delivered already; else remembers it */
bool resolve_seen(struct lmsg *m, const char *kind, const char *what);
/* local_log - log one final result in Postfix's format; note its address */
void local_log(const struct lmsg *m, const struct lrcpt *r, struct dres *res);
bool resolve_is_local_domain(const char *domain);
void split_address(const char *addr, char **local, char **domain);

/* alias.c */
/* alias_deliver_address - one address (no list syntax), local or forwarded */
void alias_deliver_address(struct lmsg *m, const struct lrcpt *r, const char *addr,
                           struct dres *res);
void alias_deliver_list(struct lmsg *m, const struct lrcpt *r, const char *text, size_t len,
                        const char *what, struct dres *res);

/* pass.c: mailbox_transport(_maps), fallback_transport(_maps) */
enum pass_kind { PASS_MAILBOX, PASS_FALLBACK };
/* pass_init - check the settings (fatal when malformed) and open the tables */
void pass_init(struct cfg *cfg);
/*
 * pass_split - "transport:nexthop" into fresh strings (nexthop "" when
 * absent); false with *err (static text) when the transport is not a
 * plain master.cf service name
 */
bool pass_split(const char *value, char **transport, char **nexthop, const char **err);
/*
 * pass_deliver - hand r (user: the bare user name, the table key) to the
 * kind's transport; false (nothing done) when none is set for user
 */
bool pass_deliver(struct lmsg *m, const struct lrcpt *r, enum pass_kind kind, const char *user,
                  struct dres *res);

/* forward.c */
void forward_queue(struct lmsg *m, const struct lrcpt *r, char **addrs, size_t n,
                   struct dres *res);

#endif
