/*
 * cmd_super.c - "posta super": delete, hold, release, requeue, repair (postsuper)
 *
 *   posta super [-ps] [-d ID] [-h ID] [-H ID] [-r ID] [queue ...]
 *
 * ID is a queue ID, ALL (every message of the queues concerned) or "-"
 * (IDs read from standard input, one per line). The queues default as in
 * Postfix: -d hold, incoming, active, deferred; -h incoming, active,
 * deferred; -H hold; -r hold, incoming, active, deferred; queue names
 * after the options limit them. Order as postsuper: -p and -s first,
 * then -d, -h, -H, -r.
 *
 *   -d  remove the queue file and its defer/bounce logs ("ID: removed")
 *   -h  move to hold/ ("ID: placed on hold"): the queue manager never
 *       looks there
 *   -H  move from hold/ to deferred/, due now ("ID: released from hold")
 *   -r  move to incoming/ ("ID: requeued"): the queue manager resolves
 *       every recipient again (transport_maps, relayhost, ... as they are
 *       now). The queue ID is kept (postsuper gives a new one; posta's
 *       queue IDs need not encode the file's inode).
 *   -s  structure check: every entry of incoming/ active/ deferred/ hold/
 *       must be a complete, readable queue file named by a queue ID, else
 *       it moves to corrupt/ with a warning that gives the reason; defer
 *       and bounce logs whose message is gone are removed.
 *   -p  remove temporary files: unfinished queue files in incoming/ (not
 *       mode 0700) and maildrop/tmp.* files.
 * The queue manager is woken afterwards (release: 'W', requeue: 'A').
 *
 * SAFETY WITH A RUNNING MAIL SYSTEM: only the queue manager works on
 * active/, so while the mail system runs (master holds its lock) active/
 * is left alone: messages there are reported as skipped and -s does not
 * check it. Everything else is done with single renames and unlinks,
 * which cannot conflict with the queue manager's own renames: whichever
 * rename comes first wins and the other sees ENOENT (a message the queue
 * manager has just taken to active/ is reported as not found). Files that
 * are still being written (incoming/ files not yet mode 0700) are never
 * touched, except by -p when they are older than an hour or the mail
 * system is stopped. A stale log is removed only when its message is in
 * none of the queues, looked for twice.
 *
 * DIAGNOSTICS
 *   Each action is logged to the mail log (maillog_file, else syslog or
 *   the journal; also stderr when it is a terminal) as "ID: removed" etc.
 *   with the tag syslog_name/postsuper, and the totals go to stderr as
 *   postsuper prints them ("posta super: Deleted: 3 messages"). Exit
 *   status 1 when a queue cannot be read or an operation fails, 2 for bad
 *   usage.
 * SECURITY
 *   Only root or mail_owner may run it. Every name taken from the command
 *   line or stdin must be a valid queue ID (hence a plain file name), and
 *   all files are reached relative to queue directory descriptors without
 *   following symbolic links.
 */
#include "util/sys.h"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "cmd_super.h"
#include "mail/config.h"
#include "mail/qfile.h"
#include "mail/qid.h"
#include "mail/trigger.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/log.h"

#define EXIT_SUPER_OK 0
#define EXIT_SUPER_ERROR 1
#define EXIT_SUPER_USAGE 2

#define SUPER_PROG "posta super"
#define SUPER_LOG_PROGRAM "postsuper"
#define STALE_TEMP_SEC 3600          /* as the queue manager's leftover rule */
#define MAILDROP_TMP_PREFIX "tmp."
#define WARNED_SUFFIX ".warned"
#define ID_LINE_MAX 256
#define CORRUPT_NAME_TRIES 100

/* The queues, and the other spool directories this command uses. */
enum queue { Q_INCOMING, Q_ACTIVE, Q_DEFERRED, Q_HOLD, NQUEUES };

static const char *const queue_names[NQUEUES] = {"incoming", "active", "deferred", "hold"};

enum super_op { OP_DELETE, OP_HOLD, OP_RELEASE, OP_REQUEUE, NOPS };

/* Default queues of each operation (bit per enum queue). */
#define QBIT(q) (1u << (q))
static const unsigned op_default_queues[NOPS] = {
    QBIT(Q_HOLD) | QBIT(Q_INCOMING) | QBIT(Q_ACTIVE) | QBIT(Q_DEFERRED),
    QBIT(Q_INCOMING) | QBIT(Q_ACTIVE) | QBIT(Q_DEFERRED),
    QBIT(Q_HOLD),
    QBIT(Q_HOLD) | QBIT(Q_INCOMING) | QBIT(Q_ACTIVE) | QBIT(Q_DEFERRED),
};

/* postsuper's summary words per operation */
static const char *const op_summary[NOPS] = {
    "Deleted", "Placed on hold", "Released from hold", "Requeued",
};

struct request {
    enum super_op op;
    char *id;     /* a queue ID, "ALL" or "-" */
};

struct super {
    struct cfg *cfg;
    const char *top;
    bool running;
    int qfd[NQUEUES];
    int deferfd, bouncefd, corruptfd, maildropfd;
    unsigned long count[NOPS];
    unsigned long skipped_active;
    int status;
};

/* usage - the option summary; exit status 2 */
static int usage(void)
{
    fprintf(stderr,
            "usage: posta [-c config_dir] super [-ps] [-d id] [-h id] [-H id] [-r id] [queue ...]\n"
            "  id is a queue ID, ALL, or - (IDs from standard input)\n"
            "  -d  delete            -h  put on hold        -H  release from hold\n"
            "  -r  requeue           -s  structure check    -p  purge temporary files\n"
            "  queues: incoming active deferred hold\n");
    return EXIT_SUPER_USAGE;
}

/* complain - "posta super: TEXT" on stderr */
static void POSTA_PRINTF(1, 2) complain(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", SUPER_PROG);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* open_log - the mail log as the daemons use it, tag syslog_name/postsuper */
static void open_log(struct cfg *cfg)
{
    const char *file = cfg_str(cfg, "maillog_file");
    char *tag = xasprintf("%s/%s", cfg_str(cfg, "syslog_name"), SUPER_LOG_PROGRAM);
    unsigned tty = isatty(STDERR_FILENO) ? LOG_SINK_STDERR : 0;

    if (file && *file)
        log_open(tag, LOG_SINK_FILE | (strncmp(file, "/dev/std", 8) == 0 ? 0 : tty), file);
    else
        log_open(tag, log_default_sinks() | tty, NULL);
    log_set_hostname(cfg_str(cfg, "myhostname"));
    free(tag);
}

/* allowed - root or mail_owner */
static bool allowed(struct cfg *cfg)
{
    struct passwd *pw;

    if (geteuid() == 0)
        return true;
    pw = getpwnam(cfg_str(cfg, "mail_owner"));
    return pw != NULL && pw->pw_uid == geteuid();
}

/* open_sub - $queue_directory/name as a directory descriptor, or -1 */
static int open_sub(struct super *s, int topfd, const char *name, bool required)
{
    int fd = openat(topfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0 && required) {
        complain("fatal: open %s/%s: %s", s->top, name, strerror(errno));
        s->status = EXIT_SUPER_ERROR;
    }
    return fd;
}

/* complete - a finished queue file (mode 0700) in dfd; false if not (or gone) */
static bool complete(int dfd, const char *name)
{
    struct stat st;

    return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)
           && (st.st_mode & S_IRWXU) == QFILE_MODE_DONE;
}

/* remove_logs - the defer and bounce logs of id (and the delay-notice mark) */
static void remove_logs(struct super *s, const char *id)
{
    char warned[QID_MAX + sizeof(WARNED_SUFFIX)];

    snprintf(warned, sizeof(warned), "%s%s", id, WARNED_SUFFIX);
    if (s->deferfd >= 0) {
        if (unlinkat(s->deferfd, id, 0) < 0 && errno != ENOENT)
            msg_warn("%s: remove defer log: %m", id);
        if (unlinkat(s->deferfd, warned, 0) < 0 && errno != ENOENT)
            msg_warn("%s: remove defer/%s: %m", id, warned);
    }
    if (s->bouncefd >= 0 && unlinkat(s->bouncefd, id, 0) < 0 && errno != ENOENT)
        msg_warn("%s: remove bounce log: %m", id);
}

/* move - rename id from queue a to queue b; true if done */
static bool move(struct super *s, enum queue a, enum queue b, const char *id)
{
    if (renameat(s->qfd[a], id, s->qfd[b], id) == 0)
        return true;
    if (errno != ENOENT) {
        msg_warn("%s: move from %s/ to %s/: %m", id, queue_names[a], queue_names[b]);
        s->status = EXIT_SUPER_ERROR;
    }
    return false;
}

/* apply - one operation on id in queue q; true when the message was there */
static bool apply(struct super *s, enum super_op op, enum queue q, const char *id)
{
    if (s->qfd[q] < 0 || !complete(s->qfd[q], id))
        return false;
    if (q == Q_ACTIVE && s->running) {
        s->skipped_active++;
        msg_warn("%s: in active/ while the mail system runs: left alone", id);
        return true;
    }
    switch (op) {
    case OP_DELETE:
        if (unlinkat(s->qfd[q], id, 0) < 0) {
            if (errno == ENOENT)
                return false;
            msg_warn("%s: remove %s/%s: %m", id, queue_names[q], id);
            s->status = EXIT_SUPER_ERROR;
            return true;
        }
        remove_logs(s, id);
        msg_info("%s: removed", id);
        break;
    case OP_HOLD:
        if (q == Q_HOLD || !move(s, q, Q_HOLD, id))
            return q == Q_HOLD;
        msg_info("%s: placed on hold", id);
        break;
    case OP_RELEASE:
        if (q != Q_HOLD)
            return false;
        /* due now: the mtime of a deferred file is its next retry time */
        if (utimensat(s->qfd[Q_HOLD], id, NULL, AT_SYMLINK_NOFOLLOW) < 0 && errno != ENOENT)
            msg_warn("%s: set retry time: %m", id);
        if (!move(s, Q_HOLD, Q_DEFERRED, id))
            return false;
        msg_info("%s: released from hold", id);
        break;
    case OP_REQUEUE:
        if (q != Q_INCOMING && !move(s, q, Q_INCOMING, id))
            return false;
        msg_info("%s: requeued", id);
        break;
    case NOPS:
        msg_panic("apply: bad operation");
    }
    s->count[op]++;
    return true;
}

/* apply_id - one operation on one message, in the first queue that has it */
static void apply_id(struct super *s, enum super_op op, unsigned queues, const char *id)
{
    if (!qid_valid(id)) {
        complain("warning: invalid queue ID: \"%s\"", id);
        s->status = EXIT_SUPER_ERROR;
        return;
    }
    for (int q = 0; q < NQUEUES; q++)
        if ((queues & QBIT(q)) && apply(s, op, (enum queue)q, id))
            return;
}

/* list_ids - the queue IDs in a directory (sorted), NULL-terminated */
static char **list_ids(int dfd, size_t *count)
{
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    DIR *d = dfd >= 0 ? fdopendir(dup(dfd)) : NULL;

    if (d != NULL) {
        rewinddir(d);
        while ((e = readdir(d)) != NULL) {
            if (!qid_valid(e->d_name))
                continue;
            names = xreallocarray(names, n + 2, sizeof(*names));
            names[n++] = xstrdup(e->d_name);
        }
        closedir(d);
    }
    names = xreallocarray(names, n + 1, sizeof(*names));
    names[n] = NULL;
    *count = n;
    return names;
}

/* free_ids - release list_ids' result */
static void free_ids(char **names)
{
    for (size_t i = 0; names[i]; i++)
        free(names[i]);
    free(names);
}

/* apply_all - one operation on every message of the queues */
static void apply_all(struct super *s, enum super_op op, unsigned queues)
{
    for (int q = 0; q < NQUEUES; q++) {
        size_t n;
        char **ids;

        if (!(queues & QBIT(q)) || s->qfd[q] < 0)
            continue;
        ids = list_ids(s->qfd[q], &n);
        for (size_t i = 0; i < n; i++)
            apply(s, op, (enum queue)q, ids[i]);
        free_ids(ids);
    }
}

/* apply_stdin - one operation on each queue ID read from stdin */
static void apply_stdin(struct super *s, enum super_op op, unsigned queues)
{
    char line[ID_LINE_MAX];

    while (fgets(line, sizeof(line), stdin) != NULL) {
        char *p = line, *end;

        while (*p == ' ' || *p == '\t')
            p++;
        end = p + strcspn(p, " \t\r\n");
        *end = 0;
        if (*p)
            apply_id(s, op, queues, p);
    }
}

/* corrupt_name - a free name in corrupt/ for name (name, name.1, ...) */
static char *corrupt_name(struct super *s, const char *name)
{
    struct stat st;

    for (int i = 0; i < CORRUPT_NAME_TRIES; i++) {
        char *try = i ? xasprintf("%s.%d", name, i) : xstrdup(name);

        if (fstatat(s->corruptfd, try, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
            return try;
        free(try);
    }
    return NULL;
}

/* to_corrupt - move queue/name to corrupt/ with a warning giving why */
static void to_corrupt(struct super *s, enum queue q, const char *name, const char *why,
                       unsigned long *moved)
{
    char *dest = s->corruptfd >= 0 ? corrupt_name(s, name) : NULL;

    if (dest == NULL) {
        msg_warn("%s/%s: %s; cannot move it to corrupt/", queue_names[q], name, why);
        s->status = EXIT_SUPER_ERROR;
        return;
    }
    if (renameat(s->qfd[q], name, s->corruptfd, dest) < 0) {
        if (errno != ENOENT) {
            msg_warn("%s/%s: %s; move to corrupt/: %m", queue_names[q], name, why);
            s->status = EXIT_SUPER_ERROR;
        }
    } else {
        msg_warn("%s/%s: %s; moved to corrupt/%s", queue_names[q], name, why, dest);
        (*moved)++;
    }
    free(dest);
}

/* check_entry - -s on one directory entry of a queue */
static void check_entry(struct super *s, enum queue q, const char *name, unsigned long *moved)
{
    struct stat st;
    struct qfile *qf;
    char *err = NULL;

    if (fstatat(s->qfd[q], name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return;     /* gone meanwhile */
    if (!qid_valid(name)) {
        to_corrupt(s, q, name, "not named by a queue ID", moved);
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        to_corrupt(s, q, name, "not a regular file", moved);
        return;
    }
    if ((st.st_mode & S_IRWXU) != QFILE_MODE_DONE) {
        if (q != Q_INCOMING)   /* only incoming/ has files being written */
            to_corrupt(s, q, name, "an unfinished queue file", moved);
        return;
    }
    if ((qf = qfile_open(s->qfd[q], name, &err)) != NULL) {
        qfile_close(qf);
    } else if (errno == EINVAL) {
        char *why = xasprintf("corrupt queue file: %s", err);

        to_corrupt(s, q, name, why, moved);
        free(why);
    } else if (errno != ENOENT) {
        msg_warn("%s/%s: %s", queue_names[q], name, err);
        s->status = EXIT_SUPER_ERROR;
    }
    free(err);
}

/* in_some_queue - is there a queue file (or a corrupt one) named id? */
static bool in_some_queue(struct super *s, const char *id)
{
    struct stat st;

    /* twice, in the opposite directions of the queue manager's renames */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < NQUEUES; i++) {
            int q = pass ? NQUEUES - 1 - i : i;

            if (s->qfd[q] >= 0 && fstatat(s->qfd[q], id, &st, AT_SYMLINK_NOFOLLOW) == 0)
                return true;
        }
    }
    return s->corruptfd >= 0 && fstatat(s->corruptfd, id, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* check_logs - -s on defer/ or bounce/: logs of messages that are gone */
static void check_logs(struct super *s, int dfd, const char *dir, unsigned long *removed)
{
    struct dirent *e;
    DIR *d = dfd >= 0 ? fdopendir(dup(dfd)) : NULL;

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        char id[sizeof(e->d_name)];
        size_t len = strlen(e->d_name), wl = strlen(WARNED_SUFFIX);

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        memcpy(id, e->d_name, len + 1);
        if (len > wl && strcmp(e->d_name + len - wl, WARNED_SUFFIX) == 0)
            id[len - wl] = 0;
        if (!qid_valid(id)) {
            msg_warn("%s/%s: not a log of a queue ID; left alone", dir, e->d_name);
            continue;
        }
        if (in_some_queue(s, id))
            continue;
        if (unlinkat(dfd, e->d_name, 0) == 0) {
            msg_info("%s: removed stale %s/%s", id, dir, e->d_name);
            (*removed)++;
        } else if (errno != ENOENT) {
            msg_warn("%s/%s: remove: %m", dir, e->d_name);
            s->status = EXIT_SUPER_ERROR;
        }
    }
    closedir(d);
}

/* structure_check - -s */
static void structure_check(struct super *s)
{
    unsigned long moved = 0, removed = 0;

    for (int q = 0; q < NQUEUES; q++) {
        struct dirent *e;
        DIR *d;
        char **names = NULL;
        size_t n = 0;

        if (s->qfd[q] < 0 || (q == Q_ACTIVE && s->running))
            continue;
        if ((d = fdopendir(dup(s->qfd[q]))) == NULL) {
            msg_warn("read %s/%s: %m", s->top, queue_names[q]);
            s->status = EXIT_SUPER_ERROR;
            continue;
        }
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            names = xreallocarray(names, n + 1, sizeof(*names));
            names[n++] = xstrdup(e->d_name);
        }
        closedir(d);
        for (size_t i = 0; i < n; i++) {
            check_entry(s, (enum queue)q, names[i], &moved);
            free(names[i]);
        }
        free(names);
    }
    check_logs(s, s->deferfd, "defer", &removed);
    check_logs(s, s->bouncefd, "bounce", &removed);
    if (moved)
        complain("Moved to corrupt: %lu file%s", moved, moved == 1 ? "" : "s");
    if (removed)
        complain("Removed stale logs: %lu", removed);
}

/* purge_dir - -p in one directory: unfinished files that match */
static unsigned long purge_dir(struct super *s, int dfd, const char *dir, bool maildrop)
{
    time_t now = time(NULL);
    unsigned long removed = 0;
    struct dirent *e;
    DIR *d = dfd >= 0 ? fdopendir(dup(dfd)) : NULL;

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        bool temp;

        if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (maildrop)
            temp = strncmp(e->d_name, MAILDROP_TMP_PREFIX, strlen(MAILDROP_TMP_PREFIX)) == 0;
        else
            temp = qid_valid(e->d_name) && (st.st_mode & S_IRWXU) != QFILE_MODE_DONE;
        /* while posta runs, a young one may still be written */
        if (!temp || (s->running && now - st.st_mtime < STALE_TEMP_SEC))
            continue;
        if (unlinkat(dfd, e->d_name, 0) == 0) {
            msg_info("%s/%s: removed temporary file", dir, e->d_name);
            removed++;
        } else if (errno != ENOENT) {
            msg_warn("%s/%s: remove: %m", dir, e->d_name);
            s->status = EXIT_SUPER_ERROR;
        }
    }
    closedir(d);
    return removed;
}

/* parse_queues - queue names from the operands; a bit mask, 0 on error */
static unsigned parse_queues(int argc, char **argv)
{
    unsigned mask = 0;

    for (int i = 0; i < argc; i++) {
        int q;

        for (q = 0; q < NQUEUES && strcmp(argv[i], queue_names[q]) != 0; q++)
            ;
        if (q == NQUEUES) {
            complain("unknown queue: \"%s\" (known: incoming active deferred hold)", argv[i]);
            return 0;
        }
        mask |= QBIT(q);
    }
    return mask;
}

/* close_all - the directory descriptors */
static void close_all(struct super *s)
{
    for (int q = 0; q < NQUEUES; q++)
        if (s->qfd[q] >= 0)
            close(s->qfd[q]);
    if (s->deferfd >= 0)
        close(s->deferfd);
    if (s->bouncefd >= 0)
        close(s->bouncefd);
    if (s->corruptfd >= 0)
        close(s->corruptfd);
    if (s->maildropfd >= 0)
        close(s->maildropfd);
}

/* cmd_super - "posta super" */
int cmd_super(int argc, char **argv, struct cfg *cfg, bool running)
{
    struct super s = {cfg, cfg_str(cfg, "queue_directory"), running, {-1, -1, -1, -1},
                      -1, -1, -1, -1, {0}, 0, EXIT_SUPER_OK};
    struct request *req = NULL;
    size_t nreq = 0;
    bool check = false, purge = false;
    unsigned limit = 0;
    int c, topfd;

    optind = 0;
    opterr = 0;
    while ((c = getopt(argc, argv, "+d:h:H:r:spv")) != -1) {
        enum super_op op;

        switch (c) {
        case 'd':
            op = OP_DELETE;
            break;
        case 'h':
            op = OP_HOLD;
            break;
        case 'H':
            op = OP_RELEASE;
            break;
        case 'r':
            op = OP_REQUEUE;
            break;
        case 's':
            check = true;
            continue;
        case 'p':
            purge = true;
            continue;
        case 'v':
            log_set_verbose(log_verbose_level() + 1);
            continue;
        default:
            free(req);
            return usage();
        }
        req = xreallocarray(req, nreq + 1, sizeof(*req));
        req[nreq].op = op;
        req[nreq].id = optarg;
        nreq++;
    }
    if (optind < argc && (limit = parse_queues(argc - optind, argv + optind)) == 0) {
        free(req);
        return usage();
    }
    if (nreq == 0 && !check && !purge) {
        free(req);
        return usage();
    }
    if (!allowed(cfg)) {
        complain("fatal: only root or mail_owner (%s) may do this", cfg_str(cfg, "mail_owner"));
        free(req);
        return EXIT_SUPER_ERROR;
    }
    if ((topfd = open(s.top, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        complain("fatal: open queue directory %s: %s", s.top, strerror(errno));
        free(req);
        return EXIT_SUPER_ERROR;
    }
    open_log(cfg);
    for (int q = 0; q < NQUEUES; q++)
        s.qfd[q] = open_sub(&s, topfd, queue_names[q], q != Q_HOLD);
    s.deferfd = open_sub(&s, topfd, "defer", false);
    s.bouncefd = open_sub(&s, topfd, "bounce", false);
    s.corruptfd = open_sub(&s, topfd, "corrupt", false);
    s.maildropfd = open_sub(&s, topfd, "maildrop", false);
    close(topfd);
    if (s.status != EXIT_SUPER_OK) {
        close_all(&s);
        free(req);
        return s.status;
    }

    if (purge) {
        unsigned long n = purge_dir(&s, s.qfd[Q_INCOMING], "incoming", false)
                          + purge_dir(&s, s.maildropfd, "maildrop", true);

        if (n)
            complain("Deleted: %lu temporary file%s", n, n == 1 ? "" : "s");
    }
    if (check)
        structure_check(&s);
    /* postsuper's order: delete, hold, release, requeue */
    for (int op = 0; op < NOPS; op++) {
        for (size_t i = 0; i < nreq; i++) {
            unsigned queues = op_default_queues[op];

            if (req[i].op != (enum super_op)op)
                continue;
            if (limit)
                queues = limit;
            if (strcmp(req[i].id, "ALL") == 0)
                apply_all(&s, (enum super_op)op, queues);
            else if (strcmp(req[i].id, "-") == 0)
                apply_stdin(&s, (enum super_op)op, queues);
            else
                apply_id(&s, (enum super_op)op, queues, req[i].id);
        }
    }
    for (int op = 0; op < NOPS; op++)
        if (s.count[op])
            complain("%s: %lu message%s", op_summary[op], s.count[op],
                     s.count[op] == 1 ? "" : "s");
    if (s.skipped_active)
        complain("warning: %lu message%s in active/ left alone while the mail system runs "
                 "(stop it with \"posta stop\" first)",
                 s.skipped_active, s.skipped_active == 1 ? "" : "s");
    if (s.count[OP_RELEASE])
        trigger_send(cfg, TRIGGER_QMGR, TRIGGER_WAKEUP);
    if (s.count[OP_REQUEUE])
        trigger_send(cfg, TRIGGER_QMGR, TRIGGER_SCAN);
    close_all(&s);
    free(req);
    return s.status;
}
