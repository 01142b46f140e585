/*
 * qcommit.c - group commit of finished queue files
 *
 * Files handed in during one event-loop iteration are made durable by one
 * flush in a call deferred to the end of that iteration (event_defer).
 * Two flush methods, chosen by posta_queue_sync:
 *   fsync   fdatasync() every file, then fsync() the directory: the data
 *           and the directory entries, nothing else.
 *   syncfs  one syncfs() on the directory's file system: writes all dirty
 *           data of that file system with a single device cache flush.
 *   auto    fsync for a batch of one file, syncfs for two or more: on the
 *           spool disk (ext4 without a journal) they tie for one file
 *           (~0.2-0.4 ms) but fsync does not pay for other processes'
 *           dirty data, while for 10 and 50 files syncfs was 2-3 times
 *           faster (0.4-0.8 ms against 1.1-2.0 ms for 10, 0.7-1.2 ms against
 *           3.5-5 ms for 50). Numbers and method: docs/QUEUE.md.
 * The flush runs synchronously in the deferred call: the loop stalls for
 * one flush per iteration, which the whole batch shares.
 *
 * DIAGNOSTICS
 *   A failed flush is logged once (warning) with the method and the number
 *   of files; every affected file is removed and its callback gets errno.
 *   An unknown posta_queue_sync value is fatal.
 */
#include "util/sys.h"

#include <time.h>

#include "mail/qcommit.h"
#include "mail/qfile.h"
#include "util/alloc.h"
#include "util/event.h"
#include "util/log.h"

#define AUTO_SYNCFS_MIN 2   /* batch size from which auto uses syncfs */
#define USEC_PER_SEC 1000000LL
#define NSEC_PER_USEC 1000LL

enum sync_mode { SYNC_AUTO, SYNC_FSYNC, SYNC_SYNCFS };

struct pending {
    struct qfile_writer *w;
    qcommit_fn fn;      /* NULL once cancelled */
    void *ctx;
    int err;
};

static int commit_dirfd = -1;
static enum sync_mode commit_mode = SYNC_AUTO;
static struct pending *pend;        /* waiting for the next flush */
static size_t npend, cappend;
static struct pending *running;     /* whose callbacks are being run */
static size_t nrunning;

/* qcommit_init - remember the directory and the flush method */
void qcommit_init(int dirfd, const char *mode)
{
    commit_dirfd = dirfd;
    if (mode == NULL || strcmp(mode, "auto") == 0)
        commit_mode = SYNC_AUTO;
    else if (strcmp(mode, "fsync") == 0)
        commit_mode = SYNC_FSYNC;
    else if (strcmp(mode, "syncfs") == 0)
        commit_mode = SYNC_SYNCFS;
    else
        msg_fatal("posta_queue_sync: unknown value \"%s\" (use auto, fsync or syncfs)", mode);
}

/* run_deferred - event_defer adapter */
static void run_deferred(void *unused)
{
    qcommit_flush();
}

/* qcommit_add - make w durable soon, then call fn(ctx, err) */
void qcommit_add(struct qfile_writer *w, qcommit_fn fn, void *ctx)
{
    if (commit_dirfd < 0)
        msg_panic("qcommit_add: qcommit_init was not called");
    if (npend == cappend) {
        cappend = cappend ? cappend * 2 : 16;
        pend = xreallocarray(pend, cappend, sizeof(*pend));
    }
    pend[npend++] = (struct pending){w, fn, ctx, qfw_error(w)};
    event_defer(run_deferred, NULL);
}

/* qcommit_cancel - forget the callback of a pending or running entry */
void qcommit_cancel(void *ctx)
{
    for (size_t i = 0; i < npend; i++)
        if (pend[i].ctx == ctx)
            pend[i].fn = NULL;
    for (size_t i = 0; i < nrunning; i++)
        if (running[i].ctx == ctx)
            running[i].fn = NULL;
}

/* usec_now - monotonic microseconds, for the flush timing log */
static long long usec_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / NSEC_PER_USEC;
}

/* fail_all - give every not yet failed entry the error e */
static void fail_all(struct pending *batch, size_t n, int e)
{
    for (size_t i = 0; i < n; i++)
        if (batch[i].err == 0)
            batch[i].err = e;
}

/* flush_fsync - fdatasync each file, then fsync the directory */
static void flush_fsync(struct pending *batch, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (batch[i].err == 0 && fdatasync(qfw_fd(batch[i].w)) < 0) {
            batch[i].err = errno;
            msg_warn("%s: fdatasync queue file: %m", qfw_id(batch[i].w));
        }
    }
    if (fsync(commit_dirfd) < 0) {
        int e = errno;

        msg_warn("fsync queue directory (%zu files): %s", n, strerror(e));
        fail_all(batch, n, e);
    }
}

/* flush_syncfs - one syncfs for the whole batch */
static void flush_syncfs(struct pending *batch, size_t n)
{
    if (syncfs(commit_dirfd) < 0) {
        int e = errno;

        msg_warn("syncfs queue file system (%zu files): %s", n, strerror(e));
        fail_all(batch, n, e);
    }
}

/* qcommit_flush - make all pending files durable, then run the callbacks */
void qcommit_flush(void)
{
    struct pending *batch = pend;
    struct pending *outer = running;    /* a flush called from a callback */
    size_t n = npend, live = 0, nouter = nrunning;
    long long t0;

    if (n == 0)
        return;
    pend = NULL;
    npend = cappend = 0;
    for (size_t i = 0; i < n; i++)
        if (batch[i].err == 0)
            live++;
    t0 = usec_now();
    if (live > 0) {
        if (commit_mode == SYNC_SYNCFS
            || (commit_mode == SYNC_AUTO && live >= AUTO_SYNCFS_MIN))
            flush_syncfs(batch, n);
        else
            flush_fsync(batch, n);
    }
    if (log_verbose_level() > 0)
        msg_verbose("qcommit: %zu files in %lld us", n, usec_now() - t0);
    for (size_t i = 0; i < n; i++) {
        if (batch[i].err) {
            errno = batch[i].err;
            qfw_abort(batch[i].w);
        } else {
            qfw_close(batch[i].w);
        }
        batch[i].w = NULL;
    }
    /* Callbacks may free sessions, cancel others, or add new files. */
    running = batch;
    nrunning = n;
    for (size_t i = 0; i < nrunning; i++) {
        qcommit_fn fn = running[i].fn;

        if (fn) {
            running[i].fn = NULL;
            fn(running[i].ctx, running[i].err);
        }
    }
    running = outer;
    nrunning = nouter;
    free(batch);
}
