/*
 * qcommit.h - group commit: one flush makes many queue files durable
 *
 * A session that has finished writing a queue file (qfw_finish) hands it
 * here with a callback. At the end of the current event-loop iteration all
 * pending files are made durable together - their data and the directory
 * entries that name them - and then each callback runs with 0 (on disk:
 * now say 250) or an errno (say 4xx, the file has been removed). Several
 * sessions finishing at once thus share one flush.
 *
 * OWNERSHIP: qcommit_add takes the writer. After the flush qcommit closes
 * it (qfw_close) on success or removes the file (qfw_abort) on failure,
 * BEFORE the callback runs: the callback must not touch the writer (copy
 * qfw_id first if it is needed for logging).
 *
 * The flush is synchronous inside the deferred call (the loop blocks for
 * the fraction of a millisecond to few milliseconds a flush takes on the
 * measured disk); a flush thread may come later without changing this API.
 */
#ifndef POSTA_QCOMMIT_H
#define POSTA_QCOMMIT_H

struct qfile_writer;

typedef void (*qcommit_fn)(void *ctx, int err);

/*
 * qcommit_init - dirfd is the directory the files live in (incoming/);
 * mode is the posta_queue_sync value: "auto" (the faster method for the
 * batch size, as measured on the target disk: see docs/QUEUE.md),
 * "fsync" (fdatasync each file, then fsync the directory) or "syncfs"
 * (one syncfs of the file system). Anything else is fatal.
 */
void qcommit_init(int dirfd, const char *mode);
/* qcommit_add - make w durable soon, then call fn(ctx, err); takes w */
void qcommit_add(struct qfile_writer *w, qcommit_fn fn, void *ctx);
/*
 * qcommit_cancel - forget the callback of a pending entry (its session went
 * away). The file is still made durable and kept: it is complete, and like
 * Postfix after the final dot, the message will be delivered. Safe to call
 * from within a callback.
 */
void qcommit_cancel(void *ctx);
/* qcommit_flush - run the pending commit now (programs without an event loop) */
void qcommit_flush(void);

#endif
