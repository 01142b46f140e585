/*
 * dns.c - c-ares integrated with the event loop
 *
 * c-ares tells us which sockets it wants watched through its socket-state
 * callback; we mirror that into event_add/event_modify/event_remove and
 * call ares_process_fd when one is ready. After every call into c-ares
 * the single channel timer is re-armed from ares_timeout(), so
 * retransmissions and c-ares' own timeouts happen without blocking.
 *
 * Each request also has its own deadline timer: when it fires the caller
 * gets its (negative) answer and the request lingers, invisible, until
 * c-ares finishes with it.
 *
 * DIAGNOSTICS: failure to initialise c-ares is fatal; lookup failures are
 * not logged here (the caller decides).
 *
 * SECURITY: names from DNS are checked with dns_hostname_valid before
 * they are handed out, so they are safe to log and to put in headers.
 */
#include "util/sys.h"

#include <arpa/inet.h>
#include <ares.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>

#include "util/alloc.h"
#include "util/dns.h"
#include "util/event.h"
#include "util/log.h"

#define DNS_TIMEOUT_MS 2000     /* per try, per server */
#define DNS_TRIES 2
#define DNS_NAME_MAX 255

struct dns_req {
    dns_name_fn fn;
    void *ctx;
    int pending;                  /* c-ares queries in flight */
    bool user_done;               /* answered or cancelled */
    bool starting;                /* inside dns_client_name */
    bool deliver;                 /* an answer waits for the timer */
    char *answer;
    char *ptr_name;
    struct sockaddr_storage addr;
    struct event_timer timer;     /* deadline, or deferred delivery */
};

static ares_channel dns_channel;
static bool dns_ready;
static struct event_timer dns_timer;
static bool *dns_watched;
static size_t dns_nwatched;

static void dns_schedule(void);

/* dns_fd_ready - a c-ares socket is ready */
static void dns_fd_ready(int fd, unsigned events, void *ctx)
{
    (void)ctx;
    ares_process_fd(dns_channel, (events & (EVENT_READ | EVENT_ERROR)) ? fd : ARES_SOCKET_BAD,
                    (events & EVENT_WRITE) ? fd : ARES_SOCKET_BAD);
    dns_schedule();
}

/* dns_sock_state - c-ares wants fd watched (or not any more) */
static void dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    unsigned ev = (readable ? EVENT_READ : 0) | (writable ? EVENT_WRITE : 0);

    (void)data;
    if (fd < 0)
        return;
    if ((size_t)fd >= dns_nwatched) {
        size_t n = dns_nwatched ? dns_nwatched : 64;

        while (n <= (size_t)fd)
            n *= 2;
        dns_watched = xreallocarray(dns_watched, n, sizeof(*dns_watched));
        memset(dns_watched + dns_nwatched, 0, (n - dns_nwatched) * sizeof(*dns_watched));
        dns_nwatched = n;
    }
    if (ev == 0) {
        if (dns_watched[fd]) {
            event_remove(fd);
            dns_watched[fd] = false;
        }
    } else if (dns_watched[fd]) {
        event_modify(fd, ev);
    } else {
        event_add(fd, ev, dns_fd_ready, NULL, false);
        dns_watched[fd] = true;
    }
}

/* dns_timer_fire - let c-ares handle its timeouts */
static void dns_timer_fire(void *ctx)
{
    (void)ctx;
    ares_process_fd(dns_channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    dns_schedule();
}

/* dns_schedule - arm the channel timer for c-ares' next timeout */
static void dns_schedule(void)
{
    struct timeval tv, *t = ares_timeout(dns_channel, NULL, &tv);

    if (t == NULL) {
        event_timer_disarm(&dns_timer);
        return;
    }
    event_timer_arm(&dns_timer, (uint64_t)t->tv_sec * 1000 + (uint64_t)t->tv_usec / 1000 + 1);
}

/* dns_init - create the channel */
void dns_init(void)
{
    struct ares_options opt;
    int optmask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS;
    int rc;

    if (dns_ready)
        return;
    if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS)
        msg_fatal("c-ares: %s", ares_strerror(rc));
    memset(&opt, 0, sizeof(opt));
    opt.sock_state_cb = dns_sock_state;
    opt.timeout = DNS_TIMEOUT_MS;
    opt.tries = DNS_TRIES;
    opt.lookups = (char *)"fb";
    if ((rc = ares_init_options(&dns_channel, &opt, optmask)) != ARES_SUCCESS)
        msg_fatal("c-ares init: %s", ares_strerror(rc));
    event_timer_setup(&dns_timer, dns_timer_fire, NULL);
    dns_ready = true;
}

/* dns_hostname_valid - a plausible host name, not an address */
bool dns_hostname_valid(const char *name)
{
    unsigned char tmp[sizeof(struct in6_addr)];
    size_t n = strlen(name);

    if (n == 0 || n > DNS_NAME_MAX || name[0] == '.' || name[0] == '-')
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
              || *p == '-' || *p == '.' || *p == '_'))
            return false;
    return inet_pton(AF_INET, name, tmp) != 1 && inet_pton(AF_INET6, name, tmp) != 1;
}

/* dns_req_maybe_free - free once the caller and c-ares are both done */
static void dns_req_maybe_free(struct dns_req *r)
{
    if (!r->user_done || r->pending > 0)
        return;
    event_timer_disarm(&r->timer);
    free(r->answer);
    free(r->ptr_name);
    free(r);
}

/*
 * dns_finish - give the caller its answer (later, if we are still
 * starting). It never frees r: every caller ends with dns_req_maybe_free,
 * exactly once.
 */
static void dns_finish(struct dns_req *r, const char *name)
{
    if (r->user_done || r->deliver)
        return;
    if (r->starting) {
        r->deliver = true;
        r->answer = name ? xstrdup(name) : NULL;
        event_timer_arm(&r->timer, 0);
        return;
    }
    r->user_done = true;
    event_timer_disarm(&r->timer);
    r->fn(r->ctx, name);
}

/* dns_req_timer - deadline passed, or a deferred answer is due */
static void dns_req_timer(void *ctx)
{
    struct dns_req *r = ctx;

    if (r->deliver) {
        r->deliver = false;
        r->user_done = true;
        r->fn(r->ctx, r->answer);
    } else {
        dns_finish(r, NULL);
    }
    dns_req_maybe_free(r);
}

/* dns_same_addr - does ai_addr hold the address we started from? */
static bool dns_same_addr(const struct sockaddr_storage *want, const struct sockaddr *got)
{
    if (want->ss_family != got->sa_family)
        return false;
    if (got->sa_family == AF_INET)
        return memcmp(&((const struct sockaddr_in *)want)->sin_addr,
                      &((const struct sockaddr_in *)got)->sin_addr, sizeof(struct in_addr)) == 0;
    if (got->sa_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)want)->sin6_addr,
                      &((const struct sockaddr_in6 *)got)->sin6_addr,
                      sizeof(struct in6_addr)) == 0;
    return false;
}

/* dns_forward_done - the name's addresses: does one match? */
static void dns_forward_done(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    struct dns_req *r = arg;
    bool ok = false;

    (void)timeouts;
    r->pending--;
    if (status == ARES_SUCCESS && res != NULL)
        for (struct ares_addrinfo_node *n = res->nodes; n && !ok; n = n->ai_next)
            ok = dns_same_addr(&r->addr, n->ai_addr);
    if (res)
        ares_freeaddrinfo(res);
    dns_finish(r, ok ? r->ptr_name : NULL);
    dns_req_maybe_free(r);
}

/* dns_reverse_done - the PTR answer: now confirm it forward */
static void dns_reverse_done(void *arg, int status, int timeouts, struct hostent *he)
{
    struct dns_req *r = arg;
    struct ares_addrinfo_hints hints;

    (void)timeouts;
    r->pending--;
    if (r->user_done || r->deliver) {
        dns_req_maybe_free(r);
        return;
    }
    if (status != ARES_SUCCESS || he == NULL || he->h_name == NULL
        || !dns_hostname_valid(he->h_name)) {
        dns_finish(r, NULL);
        dns_req_maybe_free(r);
        return;
    }
    r->ptr_name = xstrdup(he->h_name);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = r->addr.ss_family;
    r->pending++;
    ares_getaddrinfo(dns_channel, r->ptr_name, NULL, &hints, dns_forward_done, r);
}

/* dns_client_name - reverse + forward-confirmed name of an address */
struct dns_req *dns_client_name(const struct sockaddr *sa, socklen_t len, unsigned timeout_ms,
                                dns_name_fn fn, void *ctx)
{
    struct dns_req *r;
    const void *a;
    int alen;

    struct sockaddr_in v4;

    dns_init();
    if (sa->sa_family == AF_INET6
        && IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)sa)->sin6_addr)) {
        /* an IPv4 client on a dual-stack socket: look up the IPv4 address */
        memset(&v4, 0, sizeof(v4));
        v4.sin_family = AF_INET;
        memcpy(&v4.sin_addr, ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr + 12, 4);
        sa = (const struct sockaddr *)&v4;
        len = sizeof(v4);
    }
    if (sa->sa_family == AF_INET) {
        a = &((const struct sockaddr_in *)sa)->sin_addr;
        alen = sizeof(struct in_addr);
    } else if (sa->sa_family == AF_INET6) {
        a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        alen = sizeof(struct in6_addr);
    } else {
        return NULL;
    }
    r = xcalloc(1, sizeof(*r));
    r->fn = fn;
    r->ctx = ctx;
    if ((size_t)len > sizeof(r->addr))
        len = sizeof(r->addr);
    memcpy(&r->addr, sa, len);
    event_timer_setup(&r->timer, dns_req_timer, r);
    event_timer_arm(&r->timer, timeout_ms);
    r->starting = true;
    r->pending++;
    ares_gethostbyaddr(dns_channel, a, alen, sa->sa_family, dns_reverse_done, r);
    r->starting = false;
    dns_schedule();
    return r;
}

/* dns_cancel - no callback for this request any more */
void dns_cancel(struct dns_req *req)
{
    if (req == NULL || req->user_done)
        return;
    req->user_done = true;
    req->deliver = false;
    event_timer_disarm(&req->timer);
    dns_req_maybe_free(req);
}
