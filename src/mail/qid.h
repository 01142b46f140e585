/*
 * qid.h - queue IDs: unique, sortable by arrival time
 *
 * A queue ID is 10 characters encoding the arrival time in microseconds
 * (fixed width, base 51 over Postfix's long-ID alphabet, so IDs sort by
 * time as strings), the letter 'z', then the process ID in the same
 * alphabet. Each process keeps its timestamps strictly increasing, so two
 * IDs from one process never collide, and the PID separates processes.
 * Log readers that know Postfix's long queue IDs (pflogsumm) accept them.
 */
#ifndef POSTA_QID_H
#define POSTA_QID_H

#include <stdbool.h>
#include <stddef.h>

#define QID_MAX 24   /* buffer size including the NUL */

/* qid_new - a fresh ID into buf[QID_MAX] */
void qid_new(char *buf);
/* qid_valid - a well-formed ID (callers re-check IDs they are sent) */
bool qid_valid(const char *s);
/* qid_time - arrival time encoded in an ID (seconds, microseconds) */
bool qid_time(const char *s, long long *sec, long *usec);

#endif
