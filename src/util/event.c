/*
 * event.c - the epoll event loop
 *
 * DIAGNOSTICS: epoll failures are fatal (the process cannot work
 * without its loop); misuse (unknown fd) is a panic.
 */
#include "util/sys.h"

#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>

#include "util/alloc.h"
#include "util/event.h"
#include "util/log.h"

struct fd_slot {
    event_fd_fn fn;
    void *ctx;
    unsigned events;
    bool used;
    uint32_t gen;   /* bumped by event_add: tells a stale event from a reused fd */
};

#define EVENT_GEN_SHIFT 32

struct deferred {
    event_fn fn;
    void *ctx;
};

static int ep_fd = -1;
static struct fd_slot *slots;
static size_t nslots;
static struct event_timer **heap;
static size_t heap_len, heap_cap;
static struct deferred *defer_list;
static size_t defer_len, defer_cap;
static uint64_t now_ms;
static bool stop_flag;
static int sig_fd = -1;
static sigset_t sig_mask;
static void (*sig_handlers[65])(int);

static uint64_t clock_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* event_init - create the loop */
void event_init(void)
{
    if (ep_fd >= 0)
        return;
    ep_fd = epoll_create1(EPOLL_CLOEXEC);
    if (ep_fd < 0)
        msg_fatal("epoll_create1: %m");
    sigemptyset(&sig_mask);
    now_ms = clock_ms();
}

static unsigned to_epoll(unsigned ev)
{
    return ((ev & EVENT_READ) ? EPOLLIN : 0) | ((ev & EVENT_WRITE) ? EPOLLOUT : 0);
}

/* event_tag - epoll user data: the fd and the generation of its slot */
static uint64_t event_tag(int fd)
{
    return ((uint64_t)slots[fd].gen << EVENT_GEN_SHIFT) | (uint32_t)fd;
}

/* event_add - watch a file descriptor */
void event_add(int fd, unsigned events, event_fd_fn fn, void *ctx, bool exclusive)
{
    struct epoll_event ee;

    if (fd < 0)
        msg_panic("event_add: bad fd %d", fd);
    if ((size_t)fd >= nslots) {
        size_t n = nslots ? nslots : 64;

        while (n <= (size_t)fd)
            n *= 2;
        slots = xreallocarray(slots, n, sizeof(*slots));
        memset(slots + nslots, 0, (n - nslots) * sizeof(*slots));
        nslots = n;
    }
    if (slots[fd].used)
        msg_panic("event_add: fd %d already watched", fd);
    slots[fd] = (struct fd_slot){fn, ctx, events, true, slots[fd].gen + 1};
    memset(&ee, 0, sizeof(ee));
    ee.events = to_epoll(events) | (exclusive ? EPOLLEXCLUSIVE : 0);
    ee.data.u64 = event_tag(fd);
    if (epoll_ctl(ep_fd, EPOLL_CTL_ADD, fd, &ee) < 0)
        msg_fatal("epoll_ctl ADD fd %d: %m", fd);
}

/* event_modify - change the events of interest */
void event_modify(int fd, unsigned events)
{
    struct epoll_event ee;

    if (fd < 0 || (size_t)fd >= nslots || !slots[fd].used)
        msg_panic("event_modify: fd %d not watched", fd);
    if (slots[fd].events == events)
        return;
    slots[fd].events = events;
    memset(&ee, 0, sizeof(ee));
    ee.events = to_epoll(events);
    ee.data.u64 = event_tag(fd);
    if (epoll_ctl(ep_fd, EPOLL_CTL_MOD, fd, &ee) < 0)
        msg_fatal("epoll_ctl MOD fd %d: %m", fd);
}

/* event_remove - stop watching fd (call before close) */
void event_remove(int fd)
{
    if (fd < 0 || (size_t)fd >= nslots || !slots[fd].used)
        msg_panic("event_remove: fd %d not watched", fd);
    slots[fd].used = false;
    if (epoll_ctl(ep_fd, EPOLL_CTL_DEL, fd, NULL) < 0 && errno != EBADF)
        msg_warn("epoll_ctl DEL fd %d: %m", fd);
}

/* heap helpers: a min-heap on 'when' */
static void heap_swap(size_t a, size_t b)
{
    struct event_timer *t = heap[a];

    heap[a] = heap[b];
    heap[b] = t;
    heap[a]->heap_idx = a;
    heap[b]->heap_idx = b;
}

static void heap_up(size_t i)
{
    while (i > 0 && heap[(i - 1) / 2]->when > heap[i]->when) {
        heap_swap(i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;

        if (l < heap_len && heap[l]->when < heap[m]->when)
            m = l;
        if (r < heap_len && heap[r]->when < heap[m]->when)
            m = r;
        if (m == i)
            return;
        heap_swap(i, m);
        i = m;
    }
}

/* event_timer_setup - initialise a caller-owned timer */
void event_timer_setup(struct event_timer *t, event_fn fn, void *ctx)
{
    t->when = 0;
    t->heap_idx = SIZE_MAX;
    t->fn = fn;
    t->ctx = ctx;
}

/* event_timer_arm - (re)arm a timer */
void event_timer_arm(struct event_timer *t, uint64_t ms)
{
    uint64_t old = t->when;

    t->when = now_ms + ms;
    if (t->heap_idx != SIZE_MAX) {
        if (t->when < old)
            heap_up(t->heap_idx);
        else
            heap_down(t->heap_idx);
        return;
    }
    if (heap_len == heap_cap) {
        heap_cap = heap_cap ? heap_cap * 2 : 64;
        heap = xreallocarray(heap, heap_cap, sizeof(*heap));
    }
    heap[heap_len] = t;
    t->heap_idx = heap_len++;
    heap_up(t->heap_idx);
}

/* event_timer_disarm - cancel a timer (harmless when not armed) */
void event_timer_disarm(struct event_timer *t)
{
    size_t i = t->heap_idx;

    if (i == SIZE_MAX)
        return;
    t->heap_idx = SIZE_MAX;
    heap_len--;
    if (i != heap_len) {
        heap[i] = heap[heap_len];
        heap[i]->heap_idx = i;
        heap_up(i);
        heap_down(heap[i]->heap_idx);
    }
}

/* event_signal_ready - dispatch signals read from the signalfd */
static void event_signal_ready(int fd, unsigned events, void *ctx)
{
    struct signalfd_siginfo si;

    (void)events;
    (void)ctx;
    while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo < POSTA_ARRAY_LEN(sig_handlers) && sig_handlers[si.ssi_signo])
            sig_handlers[si.ssi_signo]((int)si.ssi_signo);
    }
}

/* event_signal - deliver signo through the loop */
void event_signal(int signo, void (*fn)(int signo))
{
    if (signo <= 0 || (size_t)signo >= POSTA_ARRAY_LEN(sig_handlers))
        msg_panic("event_signal: bad signal %d", signo);
    sig_handlers[signo] = fn;
    sigaddset(&sig_mask, signo);
    if (sigprocmask(SIG_BLOCK, &sig_mask, NULL) < 0)
        msg_fatal("sigprocmask: %m");
    if (sig_fd < 0) {
        sig_fd = signalfd(-1, &sig_mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (sig_fd < 0)
            msg_fatal("signalfd: %m");
        event_add(sig_fd, EVENT_READ, event_signal_ready, NULL, false);
    } else if (signalfd(sig_fd, &sig_mask, 0) < 0) {
        msg_fatal("signalfd: %m");
    }
}

/* event_defer - run fn(ctx) once at the end of this iteration */
void event_defer(event_fn fn, void *ctx)
{
    for (size_t i = 0; i < defer_len; i++)
        if (defer_list[i].fn == fn && defer_list[i].ctx == ctx)
            return;
    if (defer_len == defer_cap) {
        defer_cap = defer_cap ? defer_cap * 2 : 16;
        defer_list = xreallocarray(defer_list, defer_cap, sizeof(*defer_list));
    }
    defer_list[defer_len++] = (struct deferred){fn, ctx};
}

/* event_now - cached monotonic milliseconds */
uint64_t event_now(void)
{
    return now_ms;
}

/* event_run_deferred - run the calls deferred to the end of the iteration */
static void event_run_deferred(void)
{
    while (defer_len > 0) {
        struct deferred d = defer_list[0];

        memmove(defer_list, defer_list + 1, (defer_len - 1) * sizeof(*defer_list));
        defer_len--;
        d.fn(d.ctx);
    }
}

/* event_run_once - one iteration: wait, dispatch fds, timers, deferred calls */
void event_run_once(int max_ms)
{
    struct epoll_event evs[256];
    int timeout = max_ms;
    int n;

    if (defer_len > 0)
        timeout = 0;
    else if (heap_len > 0) {
        uint64_t due = heap[0]->when;
        int wait = due <= now_ms ? 0 : (int)(due - now_ms > 86400000 ? 86400000 : due - now_ms);

        if (timeout < 0 || wait < timeout)
            timeout = wait;
    }
    n = epoll_wait(ep_fd, evs, (int)POSTA_ARRAY_LEN(evs), timeout);
    if (n < 0 && errno != EINTR)
        msg_fatal("epoll_wait: %m");
    now_ms = clock_ms();
    for (int i = 0; i < n; i++) {
        int fd = (int)(uint32_t)evs[i].data.u64;
        uint32_t gen = (uint32_t)(evs[i].data.u64 >> EVENT_GEN_SHIFT);
        unsigned ev = 0;

        /*
         * Removed by an earlier callback in this batch - or removed,
         * closed, and its number reused by a new descriptor (an accept):
         * this event belongs to the old one.
         */
        if ((size_t)fd >= nslots || !slots[fd].used || slots[fd].gen != gen)
            continue;
        if (evs[i].events & EPOLLIN)
            ev |= EVENT_READ;
        if (evs[i].events & EPOLLOUT)
            ev |= EVENT_WRITE;
        if (evs[i].events & (EPOLLERR | EPOLLHUP))
            ev |= EVENT_ERROR | (slots[fd].events & (EVENT_READ | EVENT_WRITE));
        slots[fd].fn(fd, ev, slots[fd].ctx);
    }
    while (heap_len > 0 && heap[0]->when <= now_ms) {
        struct event_timer *t = heap[0];

        event_timer_disarm(t);
        t->fn(t->ctx);
    }
    event_run_deferred();
}

/* event_run - loop until event_stop() */
void event_run(void)
{
    stop_flag = false;
    while (!stop_flag)
        event_run_once(-1);
}

/* event_stop - make event_run return after this iteration */
void event_stop(void)
{
    stop_flag = true;
}
