/*
 * event.h - the epoll event loop every long-running posta process uses
 *
 * One loop per process (module-level state). File descriptors get a
 * callback for readability/writability; timers are caller-owned structs
 * kept in a heap (re-arming is O(log n), so a per-session idle timer that
 * is pushed back on every read costs little); signals arrive through a
 * signalfd as ordinary callbacks; deferred calls run once at the end of
 * the current loop iteration (used for group commit: all sessions that
 * finished a message in one iteration share one flush).
 */
#ifndef POSTA_EVENT_H
#define POSTA_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EVENT_READ 1u
#define EVENT_WRITE 2u
#define EVENT_ERROR 4u   /* reported only: EPOLLERR/EPOLLHUP */

typedef void (*event_fd_fn)(int fd, unsigned events, void *ctx);
typedef void (*event_fn)(void *ctx);

struct event_timer {
    uint64_t when;      /* monotonic ms; private */
    size_t heap_idx;    /* private; SIZE_MAX while not armed */
    event_fn fn;
    void *ctx;
};

void event_init(void);
/* event_add - watch fd; exclusive: EPOLLEXCLUSIVE (for shared listeners) */
void event_add(int fd, unsigned events, event_fd_fn fn, void *ctx, bool exclusive);
void event_modify(int fd, unsigned events);
void event_remove(int fd);

void event_timer_setup(struct event_timer *t, event_fn fn, void *ctx);
/* event_timer_arm - (re)arm to fire once after ms milliseconds */
void event_timer_arm(struct event_timer *t, uint64_t ms);
void event_timer_disarm(struct event_timer *t);
static inline bool event_timer_armed(const struct event_timer *t)
{
    return t->heap_idx != SIZE_MAX;
}

/* event_signal - deliver signo through the loop (the signal is blocked) */
void event_signal(int signo, void (*fn)(int signo));
/* event_defer - run fn(ctx) once at the end of this iteration (deduplicated) */
void event_defer(event_fn fn, void *ctx);

/* event_now - cached monotonic time in ms, refreshed every iteration */
uint64_t event_now(void);
/* event_run_once - wait up to max_ms (-1: until something happens) */
void event_run_once(int max_ms);
/* event_run - loop until event_stop() */
void event_run(void);
void event_stop(void);

#endif
