/*
 * dest.c - one delivery request's plan: where to connect, in what order
 *
 * A request's next hop (mail/nexthop.h) becomes a list of targets:
 *   unix:/path (LMTP)   one AF_UNIX target, relative paths under
 *                       $queue_directory;
 *   [host]:port, host   host's own addresses (LMTP: every inet form);
 *   domain (SMTP)       its MX hosts in preference order (mail/mxlist.h),
 *                       each host's addresses in turn; no MX records
 *                       means the domain's own addresses (RFC 5321 5.1).
 * Addresses are ordered by smtp_address_preference within each host and
 * the list is cut at smtp_mx_address_limit. An MX host whose address is
 * one of ours ends the list there (mxlist_cut_self); when nothing is
 * left the mail "loops back to myself". Literal and [host] next hops are
 * never loop-checked (as Postfix), nor is LMTP.
 *
 * The walk: for each target, an idle cached session to that address or a
 * new one (sess_open); each session that reached a server counts
 * against smtp_mx_session_limit. One transaction per session carries
 * every recipient still without a result; a recipient deferred with
 * try_next goes on to the next address while one remains. A reused
 * session that turns out stale is replaced by a fresh connection to the
 * same address, once. When the targets run out, the remaining
 * recipients get the last failure: deferred, unless it was a 5xx
 * (greeting/HELO) from the last address of the list, which bounces.
 *
 * DNS failures: a name that does not exist bounces (NXDOMAIN, 5.1.2) and
 * a temporary failure defers (4.4.3) - but a permanent failure only
 * bounces a recipient whose own domain is the next hop; for a relay host
 * or a transport table's next hop it is a configuration problem here and
 * defers, as Postfix does not bounce mail for a broken relayhost.
 *
 * Connection cache: after a transaction that left the session sound, the
 * session waits idle for smtp_connection_cache_time_limit, keyed by the
 * request's next hop (a later request for it skips DNS) and by its
 * address. smtp_connection_reuse_count_limit and _reuse_time_limit
 * retire old sessions; at most CACHE_MAX sessions are idle at once.
 *
 * DIAGNOSTICS: none of its own beyond the per-recipient results; a
 * malformed next hop defers with 4.3.5 and a warning.
 */
#include "util/sys.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "mail/config.h"
#include "mail/mxlist.h"
#include "mail/nexthop.h"
#include "mail/params.h"
#include "mail/qfile.h"
#include "mail/server.h"
#include "util/alloc.h"
#include "util/dns.h"
#include "util/event.h"
#include "util/log.h"
#include "util/tls.h"

#include "dest.h"

#define DEST_DNS_TIMEOUT_MS 30000u  /* one MX or address lookup, in all */
#define CACHE_MAX 256               /* idle cached sessions at most */
#define US_PER_SEC 1000000LL
#define ADDR_KEY_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) + 16)

#define DSN_NULLMX "5.1.10"
#define DSN_LOOP "5.4.6"
#define DSN_NOTFOUND "5.1.2"
#define DSN_DNS_HARD "5.4.4"
#define DSN_DNS_TEMP "4.4.3"
#define DSN_CONFIG "4.3.5"
#define DSN_NOROUTE "4.4.1"

#define TEXT_NOTFOUND "Host not found"
#define TEXT_TRYAGAIN "Host not found, try again"

struct dtarget {
    struct smtp_target t;
    unsigned pref;              /* MX preference; 0 for a single host */
};

struct dest {
    const struct deliver_request *req;
    const struct qfile *q;
    struct dest_rcpt *rc;
    size_t n;
    size_t pending;             /* recipients without a final result */
    dest_rcpt_fn rcpt_fn;
    dest_done_fn done_fn;
    void *ctx;

    struct nexthop nh;
    bool nh_ok;
    char *key;                  /* cache key: the next hop, lower case */
    bool mx_path;               /* MX lookup: loop checks apply */
    struct dns_req *dns;
    struct mxhost *mx;
    size_t nmx, mx_next;
    bool dns_failed, dns_temp;  /* an MX host did not resolve */
    struct buf dns_why;

    struct dtarget *tg;
    size_t ntg, tg_cap, tg_next;
    unsigned reached;           /* sessions that reached a server */

    struct sess_status last;    /* the latest session failure */
    bool have_last;
    size_t last_idx;            /* target index of that failure */
    struct buf last_relay, last_mta;

    struct smtp_sess *sess;     /* the session in use, or NULL */
    bool from_nh_cache;         /* taken from the cache by next hop */
    bool from_cache;            /* taken from the cache at all */
    bool stale_retried;
    size_t cur;                 /* target index in use */
    struct buf cur_relay, cur_mta;
    struct smtp_xact x;
    struct smtp_rcpt **xr;
    long long conn_us;
    struct event_timer finish;
};

/* An idle session in the connection cache. */
struct centry {
    struct smtp_sess *s;
    char *key;                  /* next hop */
    char addrkey[ADDR_KEY_MAX]; /* "addr:port" or the socket path */
    struct event_timer timer;
    struct centry *prev, *next;
};

static struct centry *cache_head, *cache_tail;
static size_t cache_n;
static size_t live_dests;
static char **cache_dests;      /* smtp_connection_cache_destinations */
static size_t ncache_dests;
static char *my_hostname;       /* the "host" of a Unix-domain next hop */
static struct sockaddr_storage *own_addrs;
static size_t nown_addrs;

static void walk(struct dest *d);
static void plan_start(struct dest *d);

/* now_us - wall clock in microseconds (log delays) */
static long long now_us(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * US_PER_SEC + tv.tv_usec;
}

/* lower_dup - a lower-cased copy */
static char *lower_dup(const char *s)
{
    char *c = xstrdup(s);

    for (char *p = c; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return c;
}

/* own_add - remember one of our addresses */
static void own_add(const struct sockaddr *sa)
{
    size_t len = sa->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                          : sizeof(struct sockaddr_in6);

    own_addrs = xreallocarray(own_addrs, nown_addrs + 1, sizeof(*own_addrs));
    memset(&own_addrs[nown_addrs], 0, sizeof(own_addrs[0]));
    memcpy(&own_addrs[nown_addrs], sa, len);
    nown_addrs++;
}

/* own_add_text - an inet_interfaces element: an address, [address] or host name */
static void own_add_text(const char *text)
{
    struct addrinfo hints, *res = NULL;
    char *h = xstrdup(text);
    size_t len = strlen(h);

    if (len >= 2 && h[0] == '[' && h[len - 1] == ']') {
        memmove(h, h + 1, len - 2);
        h[len - 2] = 0;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    /* Start-up only: a blocking lookup of a configured interface name is fine. */
    if (getaddrinfo(h, NULL, &hints, &res) == 0) {
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
            if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
                own_add(ai->ai_addr);
        freeaddrinfo(res);
    } else {
        msg_warn("inet_interfaces: cannot find the address of \"%s\" for loop detection", h);
    }
    free(h);
}

/* own_init - this host's addresses (inet_interfaces, or every interface) */
static void own_init(struct cfg *cfg)
{
    size_t n;
    char **list = cfg_list(cfg, "inet_interfaces", &n);
    bool all = n == 0;

    for (size_t i = 0; i < n; i++)
        if (strcasecmp(list[i], "all") == 0)
            all = true;
    if (all) {
        struct ifaddrs *ifa = NULL;

        if (getifaddrs(&ifa) < 0) {
            msg_warn("getifaddrs: %m; MX loop detection by address uses the loopback only");
            own_add_text("127.0.0.1");
            own_add_text("::1");
        } else {
            for (struct ifaddrs *p = ifa; p; p = p->ifa_next)
                if (p->ifa_addr
                    && (p->ifa_addr->sa_family == AF_INET || p->ifa_addr->sa_family == AF_INET6))
                    own_add(p->ifa_addr);
            freeifaddrs(ifa);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            if (strcasecmp(list[i], "loopback-only") == 0) {
                own_add_text("127.0.0.1");
                own_add_text("::1");
            } else {
                own_add_text(list[i]);
            }
        }
    }
    cfg_list_free(list, n);
}

/* own_addr - sa (port ignored) is one of this host's addresses */
static bool own_addr(const struct sockaddr_storage *sa)
{
    for (size_t i = 0; i < nown_addrs; i++) {
        const struct sockaddr_storage *o = &own_addrs[i];

        if (o->ss_family != sa->ss_family)
            continue;
        if (sa->ss_family == AF_INET
            && ((const struct sockaddr_in *)o)->sin_addr.s_addr
                   == ((const struct sockaddr_in *)sa)->sin_addr.s_addr)
            return true;
        if (sa->ss_family == AF_INET6
            && memcmp(&((const struct sockaddr_in6 *)o)->sin6_addr,
                      &((const struct sockaddr_in6 *)sa)->sin6_addr, sizeof(struct in6_addr))
                   == 0)
            return true;
    }
    return false;
}

/* dest_init - read the plan's settings */
void dest_init(struct cfg *cfg)
{
    char *name = xasprintf("%s_connection_cache_destinations", smtp_conf.prefix);

    if (param_find(name) != NULL)
        cache_dests = cfg_list(cfg, name, &ncache_dests);
    else
        cache_dests = cfg_list(cfg, "smtp_connection_cache_destinations", &ncache_dests);
    for (size_t i = 0; i < ncache_dests; i++)
        for (char *p = cache_dests[i]; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    free(name);
    my_hostname = xstrdup(cfg_str(cfg, "myhostname"));
    own_init(cfg);
}

/* target_key - the cache key of a target's address */
static void target_key(const struct smtp_target *t, char *out, size_t size)
{
    if (t->sa.ss_family == AF_UNIX)
        snprintf(out, size, "unix:%s", ((const struct sockaddr_un *)&t->sa)->sun_path);
    else
        snprintf(out, size, "%s:%u", t->addr, t->port);
}

/* cache_unlink - take e out of the list */
static void cache_unlink(struct centry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        cache_head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        cache_tail = e->prev;
    cache_n--;
    event_timer_disarm(&e->timer);
}

/* cache_closed - the server closed an idle session (already freed) */
static void cache_closed(void *ctx)
{
    struct centry *e = ctx;

    cache_unlink(e);
    free(e->key);
    free(e);
}

/* cache_retire - end an idle session with QUIT */
static void cache_retire(struct centry *e)
{
    cache_unlink(e);
    sess_watch_close(e->s, NULL, NULL);
    sess_quit(e->s);
    free(e->key);
    free(e);
}

/* cache_expire - smtp_connection_cache_time_limit is over */
static void cache_expire(void *ctx)
{
    cache_retire(ctx);
}

/* cache_wanted - caching is on for this next hop */
static bool cache_wanted(const char *key)
{
    if (smtp_conf.cache_time_ms == 0)
        return false;
    if (smtp_conf.cache_on_demand)
        return true;
    for (size_t i = 0; i < ncache_dests; i++)
        if (strcmp(cache_dests[i], key) == 0)
            return true;
    return false;
}

/* cache_put - park a sound session, or QUIT it when it may not be reused */
static void cache_put(struct smtp_sess *s, const char *key)
{
    unsigned long long age = event_now() - sess_started_ms(s);
    struct centry *e;

    if (!cache_wanted(key) || server_draining()
        || (smtp_conf.reuse_count > 0 && sess_count(s) >= smtp_conf.reuse_count)
        || age >= smtp_conf.reuse_time_ms) {
        sess_quit(s);
        return;
    }
    if (cache_n >= CACHE_MAX)
        cache_retire(cache_head);
    e = xcalloc(1, sizeof(*e));
    e->s = s;
    e->key = xstrdup(key);
    target_key(sess_target(s), e->addrkey, sizeof(e->addrkey));
    e->prev = cache_tail;
    if (cache_tail)
        cache_tail->next = e;
    else
        cache_head = e;
    cache_tail = e;
    cache_n++;
    event_timer_setup(&e->timer, cache_expire, e);
    event_timer_arm(&e->timer, smtp_conf.cache_time_ms);
    sess_watch_close(s, cache_closed, e);
}

/*
 * cache_take - an idle session by next hop (key) or by address (addrkey,
 * for next hop nhkey). A session that logged in with AUTH, or whose
 * certificate was checked against names (verify, secure), was made for
 * its own next hop: it is not shared with another one by address.
 */
static struct smtp_sess *cache_take(const char *key, const char *addrkey, const char *nhkey)
{
    /* Newest first: the one least likely to have been closed by the server. */
    for (struct centry *e = cache_tail; e; e = e->prev) {
        struct smtp_sess *s;

        if (key ? strcmp(e->key, key) != 0 : strcmp(e->addrkey, addrkey) != 0)
            continue;
        if (!key && strcmp(e->key, nhkey) != 0 &&
            (sess_authenticated(e->s) || smtp_conf.tls_level >= TLS_LEVEL_VERIFY))
            continue;
        s = e->s;
        cache_unlink(e);
        sess_watch_close(s, NULL, NULL);
        free(e->key);
        free(e);
        return s;
    }
    return NULL;
}

/* dest_cache_flush - QUIT every idle session */
void dest_cache_flush(void)
{
    while (cache_head)
        cache_retire(cache_head);
}

/* dest_cache_count - idle cached sessions */
size_t dest_cache_count(void)
{
    return cache_n;
}

/* dest_live - deliveries in progress */
size_t dest_live(void)
{
    return live_dests;
}

/* fix_dsn - a status code whose class matches st (qmgr checks it strictly) */
static void fix_dsn(char *dsn, size_t size, enum deliver_status st)
{
    static const char *const dflt[] = {"2.0.0", "4.0.0", "5.0.0"};
    static const char cls[] = {'2', '4', '5'};

    if (dsn[0] != 0 && dsn[0] != cls[st]) {
        dsn[0] = cls[st];
        if (deliver_dsn_valid(dsn, st))
            return;
    }
    if (!deliver_dsn_valid(dsn, st))
        snprintf(dsn, size, "%s", dflt[st]);
}

/* rcpt_final - recipient i has its result: report it */
static void rcpt_final(struct dest *d, struct dest_rcpt *r)
{
    r->r.done = true;
    r->r.try_next = false;
    fix_dsn(r->r.dsn, sizeof(r->r.dsn), r->r.st);
    if (d->pending > 0)
        d->pending--;
    d->rcpt_fn(d->ctx, r);
}

/* rcpt_set - give r a result that no server sent */
static void rcpt_set(struct dest_rcpt *r, enum deliver_status st, const char *dsn,
                     const char *text)
{
    r->r.st = st;
    snprintf(r->r.dsn, sizeof(r->r.dsn), "%s", dsn);
    buf_set(&r->r.text, text);
    buf_reset(&r->r.diag);
    buf_reset(&r->relay);
    buf_reset(&r->remote_mta);
    r->r.relayed = false;
    r->conn_us = 0;
}

/* rcpt_domain_is - the recipient's domain is name */
static bool rcpt_domain_is(const struct dest *d, const struct dest_rcpt *r, const char *name)
{
    const char *at = strrchr(d->req->rcpts[r->r.idx].address, '@');

    return at != NULL && name != NULL && strcasecmp(at + 1, name) == 0;
}

/* finish_fire - every recipient has a result: tell the caller, free d */
static void finish_fire(void *ctx)
{
    struct dest *d = ctx;
    dest_done_fn fn = d->done_fn;
    void *fctx = d->ctx;

    dest_cancel(d);
    fn(fctx);
}

/* maybe_finish - end the delivery once no recipient waits */
static bool maybe_finish(struct dest *d)
{
    if (d->pending > 0)
        return false;
    if (d->sess) {
        cache_put(d->sess, d->key);
        d->sess = NULL;
    }
    event_timer_arm(&d->finish, 0);
    return true;
}

/* fail_all - every waiting recipient gets the same result */
static void fail_all(struct dest *d, enum deliver_status st, const char *dsn, const char *text)
{
    for (size_t i = 0; i < d->n; i++) {
        struct dest_rcpt *r = &d->rc[i];

        if (r->r.done)
            continue;
        rcpt_set(r, st, dsn, text);
        rcpt_final(d, r);
    }
    maybe_finish(d);
}

/*
 * fail_dns - a name service failure for the whole next hop: permanent
 * ones bounce recipients of that very domain, everything else defers
 */
static void fail_dns(struct dest *d, bool hard, const char *dsn, const char *text)
{
    for (size_t i = 0; i < d->n; i++) {
        struct dest_rcpt *r = &d->rc[i];
        char soft[sizeof(r->r.dsn)];

        if (r->r.done)
            continue;
        if (hard && rcpt_domain_is(d, r, d->nh.host)) {
            rcpt_set(r, DELIVER_BOUNCED, dsn, text);
        } else {
            snprintf(soft, sizeof(soft), "%s", dsn);
            soft[0] = '4';
            rcpt_set(r, DELIVER_DEFERRED, soft, text);
        }
        rcpt_final(d, r);
    }
    maybe_finish(d);
}

/* dns_fail_text - Postfix's wording of a lookup failure */
static void dns_fail_text(struct buf *out, const char *name, const char *type,
                          enum dns_status st, const char *why)
{
    const char *what = st == DNS_NOTFOUND ? TEXT_NOTFOUND
                       : st == DNS_TEMPFAIL ? TEXT_TRYAGAIN
                                            : (why && *why ? why : TEXT_NOTFOUND);

    buf_reset(out);
    buf_printf(out, "Host or domain name not found. Name service error for name=%s type=%s: %s",
               name, type, what);
}

/* addr_type - the record type named in address lookup errors */
static const char *addr_type(void)
{
    return smtp_conf.family == AF_INET6 ? "AAAA" : "A";
}

/* target_add - one more address to try */
static void target_add(struct dest *d, const char *host, unsigned pref,
                       const struct sockaddr_storage *sa, socklen_t len, unsigned port)
{
    struct dtarget *t;

    if (smtp_conf.mx_address_limit > 0 && d->ntg >= smtp_conf.mx_address_limit)
        return;
    if (d->ntg == d->tg_cap) {
        d->tg_cap = d->tg_cap ? d->tg_cap * 2 : 8;
        d->tg = xreallocarray(d->tg, d->tg_cap, sizeof(*d->tg));
    }
    t = &d->tg[d->ntg++];
    memset(t, 0, sizeof(*t));
    t->pref = pref;
    t->t.host = xstrdup(host);
    memcpy(&t->t.sa, sa, sizeof(t->t.sa));
    t->t.salen = len;
    t->t.port = port;
    if (sa->ss_family == AF_INET) {
        ((struct sockaddr_in *)&t->t.sa)->sin_port = htons((uint16_t)port);
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, t->t.addr,
                  sizeof(t->t.addr));
    } else if (sa->ss_family == AF_INET6) {
        ((struct sockaddr_in6 *)&t->t.sa)->sin6_port = htons((uint16_t)port);
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, t->t.addr,
                  sizeof(t->t.addr));
    } else {
        /* The path, cut to fit: the full path stays in sa (logs use host). */
        const char *path = ((const struct sockaddr_un *)sa)->sun_path;
        size_t plen = strnlen(path, sizeof(t->t.addr) - 1);

        memcpy(t->t.addr, path, plen);
        t->t.addr[plen] = 0;
        t->t.port = 0;
    }
}

/* targets_add_host - a host's addresses, the preferred family first */
static void targets_add_host(struct dest *d, const char *host, unsigned pref,
                             const struct dns_addr *a, size_t n)
{
    int first = smtp_conf.prefer;

    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < n; i++) {
            bool preferred = first == AF_UNSPEC || a[i].sa.ss_family == first;

            /* Pass 0: the preferred family (all of them for "any"); pass 1: the rest. */
            if (preferred != (pass == 0))
                continue;
            if (a[i].sa.ss_family != AF_INET && a[i].sa.ss_family != AF_INET6)
                continue;
            target_add(d, host, pref, &a[i].sa, a[i].len, d->nh.port);
        }
}

/* targets_cut - drop the targets with preference pref or more (a loop) */
static void targets_cut(struct dest *d, unsigned pref)
{
    size_t k = 0;

    for (size_t i = 0; i < d->ntg; i++) {
        if (d->tg[i].pref >= pref) {
            free(d->tg[i].t.host);
            continue;
        }
        d->tg[k++] = d->tg[i];
    }
    d->ntg = k;
}

/* fail_loop - the best MX is this host */
static void fail_loop(struct dest *d)
{
    struct buf text = BUF_INIT;

    buf_printf(&text, "mail for %s loops back to myself", d->nh.host);
    fail_all(d, DELIVER_BOUNCED, DSN_LOOP, buf_str(&text));
    buf_free(&text);
}

/* resolved_all - the targets are known: start the walk, or fail */
static void resolved_all(struct dest *d)
{
    if (d->ntg > 0) {
        walk(d);
        return;
    }
    if (d->dns_failed)
        fail_dns(d, !d->dns_temp, d->dns_temp ? DSN_DNS_TEMP : DSN_DNS_HARD,
                 buf_str(&d->dns_why));
    else
        fail_all(d, DELIVER_DEFERRED, DSN_NOROUTE, "no usable address for the next hop");
}

static void resolve_next_mx(struct dest *d);

/* mxaddr_done - the addresses of MX host mx_next */
static void mxaddr_done(void *ctx, enum dns_status st, const struct dns_addr *a, size_t n,
                        const char *why)
{
    struct dest *d = ctx;
    struct mxhost *h = &d->mx[d->mx_next];

    d->dns = NULL;
    if (st != DNS_OK) {
        /* Skip a host that does not resolve; remember why for the end. */
        d->dns_failed = true;
        if (st == DNS_TEMPFAIL)
            d->dns_temp = true;
        dns_fail_text(&d->dns_why, h->host, addr_type(), st, why);
        d->mx_next++;
        resolve_next_mx(d);
        return;
    }
    if (d->mx_path) {
        for (size_t i = 0; i < n; i++) {
            if (!own_addr(&a[i].sa))
                continue;
            unsigned pref = h->pref;

            msg_verbose("%s: MX host %s is this host: ignoring it and any less preferred",
                        d->req->queue_id, h->host);
            d->nmx = mxlist_cut_self(d->mx, d->nmx, d->mx_next);
            targets_cut(d, pref);
            if (d->nmx == 0 && d->ntg == 0) {
                fail_loop(d);
                return;
            }
            resolved_all(d);
            return;
        }
    }
    targets_add_host(d, h->host, h->pref, a, n);
    d->mx_next++;
    resolve_next_mx(d);
}

/* resolve_next_mx - look up the next MX host's addresses, or walk */
static void resolve_next_mx(struct dest *d)
{
    if (d->mx_next >= d->nmx
        || (smtp_conf.mx_address_limit > 0 && d->ntg >= smtp_conf.mx_address_limit)) {
        resolved_all(d);
        return;
    }
    d->dns = dns_lookup_addr(d->mx[d->mx_next].host, smtp_conf.family, smtp_conf.hosts_file,
                             DEST_DNS_TIMEOUT_MS, mxaddr_done, d);
}

/* mx_done - the MX records of the next-hop domain */
static void mx_done(void *ctx, enum dns_status st, const struct dns_mx *mx, size_t n,
                    const char *why)
{
    struct dest *d = ctx;
    struct buf text = BUF_INIT;

    d->dns = NULL;
    switch (st) {
    case DNS_OK:
        switch (mxlist_order(mx, n, (const char *const *)smtp_conf.self_names, smtp_conf.nself,
                             NULL, &d->mx, &d->nmx)) {
        case MXLIST_NULLMX:
            buf_printf(&text, "Domain %s does not accept mail (nullMX)", d->nh.host);
            fail_all(d, DELIVER_BOUNCED, DSN_NULLMX, buf_str(&text));
            break;
        case MXLIST_SELF:
            fail_loop(d);
            break;
        case MXLIST_OK:
            resolve_next_mx(d);
            break;
        }
        break;
    case DNS_NODATA:
        /* RFC 5321 5.1: no MX records: the domain itself, as an MX of preference 0 */
        d->mx = xcalloc(1, sizeof(*d->mx));
        d->mx[0].host = xstrdup(d->nh.host);
        d->mx[0].pref = 0;
        d->nmx = 1;
        for (size_t i = 0; i < smtp_conf.nself; i++)
            if (strcasecmp(smtp_conf.self_names[i], d->nh.host) == 0) {
                fail_loop(d);
                return;
            }
        resolve_next_mx(d);
        break;
    case DNS_NOTFOUND:
        dns_fail_text(&text, d->nh.host, "MX", st, why);
        fail_dns(d, true, DSN_NOTFOUND, buf_str(&text));
        break;
    case DNS_TEMPFAIL:
        dns_fail_text(&text, d->nh.host, "MX", st, why);
        fail_dns(d, false, DSN_DNS_TEMP, buf_str(&text));
        break;
    case DNS_PERMFAIL:
        dns_fail_text(&text, d->nh.host, "MX", st, why);
        fail_dns(d, true, DSN_DNS_HARD, buf_str(&text));
        break;
    }
    buf_free(&text);
}

/* host_done - the addresses of a [host] or LMTP inet next hop */
static void host_done(void *ctx, enum dns_status st, const struct dns_addr *a, size_t n,
                      const char *why)
{
    struct dest *d = ctx;
    struct buf text = BUF_INIT;

    d->dns = NULL;
    if (st == DNS_OK) {
        targets_add_host(d, d->nh.host, 0, a, n);
        resolved_all(d);
        return;
    }
    dns_fail_text(&text, d->nh.host, addr_type(), st, why);
    if (st == DNS_TEMPFAIL)
        fail_dns(d, false, DSN_DNS_TEMP, buf_str(&text));
    else
        fail_dns(d, true, DSN_DNS_HARD, buf_str(&text));
    buf_free(&text);
}

/* plan_unix - an LMTP Unix-domain socket */
static void plan_unix(struct dest *d)
{
    struct sockaddr_storage ss;
    struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
    const char *path = d->nh.path;
    int len;

    memset(&ss, 0, sizeof(ss));
    sun->sun_family = AF_UNIX;
    if (path[0] == '/')
        len = snprintf(sun->sun_path, sizeof(sun->sun_path), "%s", path);
    else
        len = snprintf(sun->sun_path, sizeof(sun->sun_path), "%s/%s", smtp_conf.queue_dir, path);
    if (len < 0 || (size_t)len >= sizeof(sun->sun_path)) {
        msg_warn("%s: next hop %s: socket path too long", d->req->queue_id, d->req->nexthop);
        fail_all(d, DELIVER_DEFERRED, DSN_CONFIG, "socket path of the next hop is too long");
        return;
    }
    /* Named as Postfix does: relay=myhostname[/path/to/socket] */
    target_add(d, my_hostname, 0, &ss, (socklen_t)sizeof(*sun), 0);
    resolved_all(d);
}

/* plan_start - find the targets of the next hop (DNS), then walk them */
static void plan_start(struct dest *d)
{
    d->from_nh_cache = false;
    switch (d->nh.kind) {
    case NEXTHOP_UNIX:
        plan_unix(d);
        break;
    case NEXTHOP_HOST:
        d->dns = dns_lookup_addr(d->nh.host, smtp_conf.family, smtp_conf.hosts_file,
                                 DEST_DNS_TIMEOUT_MS, host_done, d);
        break;
    case NEXTHOP_MX:
        d->mx_path = !smtp_conf.lmtp;
        d->dns = dns_lookup_mx(d->nh.host, DEST_DNS_TIMEOUT_MS, mx_done, d);
        break;
    }
}

/* remember_failure - the latest reason a session failed */
static void remember_failure(struct dest *d, const struct sess_status *st)
{
    d->have_last = true;
    d->last_idx = d->cur;
    d->last.st = st->st;
    d->last.reached = st->reached;
    snprintf(d->last.dsn, sizeof(d->last.dsn), "%s", st->dsn);
    buf_set(&d->last.text, buf_str(&st->text));
    buf_set(&d->last.diag, buf_str(&st->diag));
    buf_set(&d->last_relay, st->reached ? buf_str(&d->cur_relay) : "");
    buf_set(&d->last_mta, st->reached ? buf_str(&d->cur_mta) : "");
}

/* more_targets - another address may still be tried */
static bool more_targets(const struct dest *d)
{
    if (d->from_nh_cache)
        return false;
    if (smtp_conf.mx_session_limit > 0 && d->reached >= smtp_conf.mx_session_limit)
        return false;
    return d->tg_next < d->ntg;
}

/* exhausted - no address left: the last failure for everyone waiting */
static void exhausted(struct dest *d)
{
    enum deliver_status st = DELIVER_DEFERRED;
    char dsn[sizeof(d->last.dsn)];

    if (!d->have_last) {
        fail_all(d, DELIVER_DEFERRED, DSN_NOROUTE, "no server for the next hop could be reached");
        return;
    }
    snprintf(dsn, sizeof(dsn), "%s", d->last.dsn[0] ? d->last.dsn : "4.4.1");
    /* A 5xx greeting or HELO reply bounces only at the very last address. */
    if (d->last.st == DELIVER_BOUNCED && d->last_idx + 1 == d->ntg)
        st = DELIVER_BOUNCED;
    for (size_t i = 0; i < d->n; i++) {
        struct dest_rcpt *r = &d->rc[i];

        if (r->r.done)
            continue;
        rcpt_set(r, st, dsn, buf_str(&d->last.text));
        buf_set(&r->r.diag, buf_str(&d->last.diag));
        buf_set(&r->relay, buf_str(&d->last_relay));
        buf_set(&r->remote_mta, buf_str(&d->last_mta));
        rcpt_final(d, r);
    }
    maybe_finish(d);
}

static void xact_done(struct smtp_sess *s, const struct sess_status *status, void *ctx);

/* run_xact - one transaction on d->sess for every waiting recipient */
static void run_xact(struct dest *d)
{
    const struct smtp_target *t = sess_target(d->sess);
    size_t k = 0;

    /*
     * A session taken from the cache by address may have been opened for
     * another host name with that address: name the host of this plan.
     */
    if (!d->from_nh_cache && d->cur < d->ntg)
        t = &d->tg[d->cur].t;

    buf_reset(&d->cur_relay);
    smtp_target_relay(t, &d->cur_relay);
    buf_set(&d->cur_mta, t->host ? t->host : t->addr);
    d->conn_us = now_us();
    d->xr = xreallocarray(d->xr, d->n ? d->n : 1, sizeof(*d->xr));
    for (size_t i = 0; i < d->n; i++)
        if (!d->rc[i].r.done)
            d->xr[k++] = &d->rc[i].r;
    memset(&d->x, 0, sizeof(d->x));
    d->x.req = d->req;
    d->x.q = d->q;
    d->x.rcpts = d->xr;
    d->x.n = k;
    d->x.conn_us = d->conn_us;
    sess_xact(d->sess, &d->x, xact_done, d);
}

/* use_cached - carry on with an idle session from the cache */
static void use_cached(struct dest *d, struct smtp_sess *s, bool by_nexthop)
{
    d->sess = s;
    d->from_cache = true;
    d->from_nh_cache = by_nexthop;
    d->reached++;
    run_xact(d);
}

/* opened - sess_open finished */
static void opened(struct smtp_sess *s, const struct sess_status *status, void *ctx)
{
    struct dest *d = ctx;

    if (!status->ok) {
        d->sess = NULL;
        if (status->reached)
            d->reached++;
        buf_reset(&d->cur_relay);
        smtp_target_relay(&d->tg[d->cur].t, &d->cur_relay);
        buf_set(&d->cur_mta, d->tg[d->cur].t.host);
        remember_failure(d, status);
        /* As Postfix: each address given up on is logged when another
         * one is tried; the last one's reason is in the status line. */
        if (more_targets(d))
            msg_info("%s", buf_str(&status->text));
        if (status->st == DELIVER_BOUNCED && status->reached && !smtp_conf.skip_5xx_greeting) {
            /* smtp_skip_5xx_greeting = no: a 5xx greeting or HELO reply is final */
            d->last_idx = d->ntg - 1;
            d->tg_next = d->ntg;
            exhausted(d);
            return;
        }
        walk(d);
        return;
    }
    d->sess = s;
    d->from_cache = false;
    d->reached++;
    run_xact(d);
}

/* open_target - a fresh connection to target i */
static void open_target(struct dest *d, size_t i)
{
    d->cur = i;
    d->from_cache = false;
    d->sess = sess_open(&d->tg[i].t, d->req->nexthop, d->nh.host, opened, d);
    if (d->sess == NULL)
        msg_panic("sess_open returned no session");
}

/* xact_done - the transaction ended: sort the recipients, go on */
static void xact_done(struct smtp_sess *s, const struct sess_status *status, void *ctx)
{
    struct dest *d = ctx;
    bool next_ok;

    if (!status->ok)
        d->sess = NULL;
    if (!status->ok && status->stale && d->from_cache) {
        /* Nothing was decided: the cached session was already closed. */
        d->reached--;
        if (d->from_nh_cache) {
            plan_start(d);
            return;
        }
        if (!d->stale_retried) {
            d->stale_retried = true;
            open_target(d, d->cur);
            return;
        }
    }
    next_ok = more_targets(d);
    for (size_t k = 0; k < d->x.n; k++) {
        struct smtp_rcpt *sr = d->x.rcpts[k];
        struct dest_rcpt *r = &d->rc[sr->idx];

        if (!sr->done)
            continue;
        if (sr->st == DELIVER_DEFERRED && sr->try_next && next_ok) {
            /* Try this recipient at the next address. */
            sr->done = false;
            sr->try_next = false;
            sr->relayed = false;
            buf_reset(&sr->text);
            buf_reset(&sr->diag);
            continue;
        }
        buf_set(&r->relay, buf_str(&d->cur_relay));
        buf_set(&r->remote_mta, buf_str(&d->cur_mta));
        r->conn_us = d->conn_us;
        rcpt_final(d, r);
    }
    if (!status->ok) {
        remember_failure(d, status);
    } else if (d->pending > 0) {
        /* Sound, but the rest goes elsewhere: keep it for later requests. */
        cache_put(s, d->key);
        d->sess = NULL;
    }
    if (maybe_finish(d))
        return;
    if (d->from_nh_cache) {
        /* The cached session could not finish: the full plan for the rest. */
        plan_start(d);
        return;
    }
    walk(d);
}

/* walk - try the next address, or give up */
static void walk(struct dest *d)
{
    char key[ADDR_KEY_MAX];
    struct smtp_sess *s;
    size_t i;

    if (maybe_finish(d))
        return;
    if (!more_targets(d)) {
        exhausted(d);
        return;
    }
    i = d->tg_next++;
    d->cur = i;
    d->stale_retried = false;
    target_key(&d->tg[i].t, key, sizeof(key));
    if ((s = cache_take(NULL, key, d->key)) != NULL) {
        use_cached(d, s, false);
        return;
    }
    open_target(d, i);
}

/* dest_start - plan and run one delivery request */
struct dest *dest_start(const struct deliver_request *req, const struct qfile *q,
                        struct dest_rcpt *rc, dest_rcpt_fn rcpt_fn, dest_done_fn done_fn,
                        void *ctx)
{
    struct dest *d = xcalloc(1, sizeof(*d));
    const char *err = NULL;
    struct smtp_sess *s;

    d->req = req;
    d->q = q;
    d->rc = rc;
    d->n = req->nrcpts;
    d->rcpt_fn = rcpt_fn;
    d->done_fn = done_fn;
    d->ctx = ctx;
    d->key = lower_dup(req->nexthop);
    smtp_status_init(&d->last);
    event_timer_setup(&d->finish, finish_fire, d);
    live_dests++;
    for (size_t i = 0; i < d->n; i++)
        if (!rc[i].r.done)
            d->pending++;
    if (maybe_finish(d))
        return d;
    if (!nexthop_parse(req->nexthop, smtp_conf.lmtp, &d->nh, &err)) {
        struct buf text = BUF_INIT;

        msg_warn("%s: bad next-hop destination \"%s\": %s", req->queue_id, req->nexthop, err);
        buf_printf(&text, "bad next-hop destination \"%s\": %s", req->nexthop, err);
        fail_all(d, DELIVER_DEFERRED, DSN_CONFIG, buf_str(&text));
        buf_free(&text);
        return d;
    }
    d->nh_ok = true;
    if ((s = cache_take(d->key, NULL, NULL)) != NULL) {
        use_cached(d, s, true);
        return d;
    }
    plan_start(d);
    return d;
}

/* dest_cancel - stop and free (also the normal end, from finish_fire) */
void dest_cancel(struct dest *d)
{
    if (d->dns)
        dns_cancel(d->dns);
    if (d->sess)
        sess_close(d->sess);
    event_timer_disarm(&d->finish);
    for (size_t i = 0; i < d->ntg; i++)
        free(d->tg[i].t.host);
    free(d->tg);
    if (d->mx)
        mxlist_free(d->mx, d->nmx);
    if (d->nh_ok)
        nexthop_free(&d->nh);
    free(d->key);
    free(d->xr);
    buf_free(&d->dns_why);
    smtp_status_free(&d->last);
    buf_free(&d->last_relay);
    buf_free(&d->last_mta);
    buf_free(&d->cur_relay);
    buf_free(&d->cur_mta);
    live_dests--;
    free(d);
}
