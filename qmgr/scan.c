/*
 * scan.c - the queue directories: what enters active/, and how
 *
 * incoming/: only complete files (mode 0700, see mail/qfile.h) are moved
 * to active/ by rename; a file with another mode is being written and is
 * left alone, unless it is older than INCOMPLETE_MAX_AGE, when it is a
 * leftover of a writer that died and is removed (as Postfix's queue
 * manager removes cleanup leftovers). deferred/: a file's mtime is its
 * next retry time; due files (all of them on a flush) move to active/.
 * active/: at start, whatever a previous qmgr left behind is taken over
 * as is (recipients marked done are never delivered again).
 *
 * At most qmgr_message_active_limit messages are in active/ at once; a
 * scan that stops at the limit is resumed when a message leaves.
 *
 * DIAGNOSTICS: a queue file the reader refuses goes to corrupt/ with a
 *   warning naming it and the reason; rename and directory errors are
 *   warnings (the next scan tries again).
 * SECURITY: only names that are valid queue IDs are touched, and only
 *   regular files (fstatat without following links).
 */
#include "util/sys.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "mail/config.h"
#include "mail/qfile.h"
#include "mail/qid.h"
#include "qmgr.h"
#include "util/alloc.h"
#include "util/log.h"

#define INCOMPLETE_MAX_AGE 3600     /* seconds: a 0600 file older is a leftover */
#define MODE_BITS 07777

enum scan_queue { SCAN_INCOMING, SCAN_DEFERRED, SCAN_ACTIVE };

static size_t nactive;
static bool incoming_stopped, deferred_stopped;

/* scan_active_count - messages in active/ */
size_t scan_active_count(void)
{
    return nactive;
}

/* active_full - at qmgr_message_active_limit */
static bool active_full(void)
{
    return (long long)nactive >= cfg_int(qmgr_cfg, "qmgr_message_active_limit");
}

/* move_back - an unreadable file goes to deferred/ to be tried later */
static void move_back(const char *qid)
{
    struct timespec ts[2];

    ts[0].tv_sec = ts[1].tv_sec = time(NULL) + cfg_time(qmgr_cfg, "minimal_backoff_time");
    ts[0].tv_nsec = ts[1].tv_nsec = 0;
    if (utimensat(qmgr_dir_active, qid, ts, AT_SYMLINK_NOFOLLOW) < 0)
        msg_warn("%s: set retry time: %m", qid);
    if (renameat(qmgr_dir_active, qid, qmgr_dir_deferred, qid) < 0)
        msg_warn("%s: move to deferred/: %m", qid);
}

/* activate - open active/qid and schedule its recipients */
static void activate(const char *qid)
{
    struct qmsg *m;
    struct qfile *q;
    char *err = NULL;

    q = qfile_open(qmgr_dir_active, qid, &err);
    if (q == NULL) {
        if (errno == EINVAL) {
            msg_warn("%s: corrupt queue file moved to corrupt/: %s", qid, err);
            if (renameat(qmgr_dir_active, qid, qmgr_dir_corrupt, qid) < 0)
                msg_warn("%s: move to corrupt/: %m", qid);
        } else if (errno != ENOENT) {
            msg_warn("%s: open queue file: %s", qid, err ? err : strerror(errno));
            move_back(qid);
        }
        free(err);
        return;
    }
    /* Reopened when needed: thousands of active messages must not pin fds. */
    close(q->fd);
    q->fd = -1;
    m = xcalloc(1, sizeof(*m));
    memcpy(m->qid, qid, strnlen(qid, QID_MAX - 1));   /* qid_valid: short */
    m->q = q;
    m->active_us = qmgr_now_us();
    m->ri = xcalloc(q->nrcpts ? q->nrcpts : 1, sizeof(*m->ri));
    for (size_t i = 0; i < q->nrcpts; i++) {
        m->ri[i].st = q->rcpts[i].done ? RS_DONE : RS_TODO;
        if (!q->rcpts[i].done)
            m->unfinished++;
    }
    nactive++;
    msg_info("%s: from=<%s>, size=%llu, nrcpt=%zu (queue active)", qid, q->sender,
             (unsigned long long)q->content_length, q->nrcpts);
    /* A new delivery attempt starts a new defer log, as in Postfix. */
    if (unlinkat(qmgr_dir_defer, qid, 0) < 0 && errno != ENOENT)
        msg_warn("%s: remove defer log: %m", qid);
    result_load_bounce_log(m);
    if (signer_wanted(m))
        signer_submit(m);   /* scheduled once signed */
    else
        sched_message(m);
}

/* incomplete - a file still being written, or a leftover to remove */
static bool incomplete(int dirfd, const char *name, const struct stat *st)
{
    time_t now = time(NULL);

    if ((st->st_mode & MODE_BITS) == QFILE_MODE_DONE)
        return false;
    if (now - st->st_mtime > INCOMPLETE_MAX_AGE) {
        msg_warn("%s: removing incomplete queue file (mode %04o, %lld seconds old)", name,
                 (unsigned)(st->st_mode & MODE_BITS), (long long)(now - st->st_mtime));
        if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
            msg_warn("%s: remove: %m", name);
    }
    return true;
}

/* scan_dir - walk one queue directory; false when stopped at the limit */
static bool scan_dir(int dirfd, enum scan_queue which, bool flush)
{
    int fd = dup(dirfd);
    DIR *d;
    struct dirent *e;
    struct stat st;
    time_t now = time(NULL);
    bool complete = true;

    if (fd < 0 || lseek(fd, 0, SEEK_SET) < 0 || (d = fdopendir(fd)) == NULL) {
        msg_warn("scan queue directory: %m");
        if (fd >= 0)
            close(fd);
        return true;
    }
    while ((e = readdir(d)) != NULL) {
        if (!qid_valid(e->d_name))
            continue;
        if (which != SCAN_ACTIVE && active_full()) {
            complete = false;
            break;
        }
        if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (which == SCAN_INCOMING && incomplete(dirfd, e->d_name, &st))
            continue;
        if (which == SCAN_DEFERRED && !flush && st.st_mtime > now)
            continue;
        if (which != SCAN_ACTIVE
            && renameat(dirfd, e->d_name, qmgr_dir_active, e->d_name) < 0) {
            if (errno != ENOENT)
                msg_warn("%s: move to active/: %m", e->d_name);
            continue;
        }
        activate(e->d_name);
    }
    closedir(d);
    return complete;
}

/* scan_active - take over what a previous qmgr left in active/ */
void scan_active(void)
{
    scan_dir(qmgr_dir_active, SCAN_ACTIVE, false);
}

/* scan_incoming - move complete new messages to active/ */
void scan_incoming(void)
{
    incoming_stopped = !scan_dir(qmgr_dir_incoming, SCAN_INCOMING, false);
}

/* scan_deferred - move due (or, on a flush, all) deferred messages */
void scan_deferred(bool flush)
{
    deferred_stopped = !scan_dir(qmgr_dir_deferred, SCAN_DEFERRED, flush);
}

/* scan_incoming_deferred - deferred call wrapper */
static void scan_incoming_deferred(void *ctx)
{
    (void)ctx;
    scan_incoming();
}

/* scan_incoming_soon - scan incoming/ at the end of this loop iteration */
void scan_incoming_soon(void)
{
    event_defer(scan_incoming_deferred, NULL);
}

/* scan_resume - deferred call: continue scans stopped at the limit */
static void scan_resume(void *ctx)
{
    (void)ctx;
    if (incoming_stopped)
        scan_incoming();
    if (deferred_stopped)
        scan_deferred(false);
}

/* scan_room - a message left active/ */
void scan_room(void)
{
    if (nactive > 0)
        nactive--;
    if (incoming_stopped || deferred_stopped)
        event_defer(scan_resume, NULL);
}
