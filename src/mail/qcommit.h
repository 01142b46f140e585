/*
 * qcommit.h - group commit: one flush makes many queue files durable
 *
 * A session that has finished writing a queue file (qfw_finish) hands it
 * here with a callback. At the end of the current event-loop iteration all
 * pending files are made durable together - their data and the directory
 * entries that name them - and then each callback runs with 0 (on disk:
 * now say 250) or an errno (say 4xx, the file has been removed). Several
 * sessions finishing at once thus share one flush.
 */
#ifndef POSTA_QCOMMIT_H
#define POSTA_QCOMMIT_H

struct qfile_writer;

typedef void (*qcommit_fn)(void *ctx, int err);

/* qcommit_init - dirfd is the directory the files live in (incoming/) */
void qcommit_init(int dirfd);
/* qcommit_add - make w durable soon, then call fn(ctx, err) */
void qcommit_add(struct qfile_writer *w, qcommit_fn fn, void *ctx);
/* qcommit_cancel - forget a pending entry (its session went away) */
void qcommit_cancel(void *ctx);

#endif
