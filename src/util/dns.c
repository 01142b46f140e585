/*
 * dns.c - c-ares integrated with the event loop: client names, MX, A/AAAA, TXT
 *
 * c-ares tells us which sockets it wants watched through its socket-state
 * callback; we mirror that into event_add/event_modify/event_remove and
 * call ares_process_fd when one is ready. After every call into c-ares
 * the single channel timer is re-armed from ares_timeout(), so
 * retransmissions and c-ares' own timeouts happen without blocking.
 *
 * Each request also has its own deadline timer: when it fires the caller
 * gets its (negative) answer and the request lingers, invisible, until
 * c-ares finishes with it. The same timer, armed at 0 ms, delivers
 * answers that are known while the request is being started (cache hits,
 * literal addresses, /etc/hosts, c-ares failing synchronously), so no
 * callback ever runs inside the call that started it.
 *
 * Record lookups use ares_query (no search domains, class IN) and hand
 * the raw answer to dns_answer_parse, which classifies it: NXDOMAIN is
 * DNS_NOTFOUND, NOERROR without records of the type DNS_NODATA,
 * SERVFAIL/REFUSED/NOTIMP (and time-outs, unreachable servers, garbled
 * packets) DNS_TEMPFAIL, a bad query name, FORMERR or an MX set whose
 * host names are all invalid DNS_PERMFAIL. A garbled packet is a
 * temporary failure on purpose: a bounce is final, a retry is cheap.
 *
 * Answers other than temporary failures are cached per (lowercased name,
 * type): positive ones for their smallest TTL (at most DNS_CACHE_TTL_MAX
 * seconds, TTL 0 is not cached), NXDOMAIN/NODATA for DNS_NEG_TTL seconds.
 * The cache holds at most DNS_CACHE_MAX entries and drops the oldest.
 *
 * DIAGNOSTICS: failure to initialise c-ares is fatal; lookup failures are
 * not logged here (the caller decides).
 *
 * SECURITY: names from DNS are checked with dns_hostname_valid before
 * they are handed out, so they are safe to log and to put in headers;
 * answers are parsed with explicit bounds (see dns_parse.h).
 */
#include "util/sys.h"

#include <arpa/inet.h>
#include <ares.h>
#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/dns.h"
#include "util/dns_parse.h"
#include "util/event.h"
#include "util/log.h"

#define DNS_TIMEOUT_MS 2000 /* per try, per server */
#define DNS_TRIES 2
#define DNS_NAME_MAX 255
#define DNS_QNAME_MAX 253 /* presentation form, no trailing dot */
#define DNS_LABEL_MAX 63
#define DNS_PACKET_MAX 65535
#define DNS_HEADER_LEN 12
#define DNS_RR_FIXED_LEN 10 /* type, class, ttl, rdlength */
#define DNS_QUESTION_FIXED_LEN 4
#define DNS_CLASS_IN 1
#define DNS_TYPE_CNAME 5
#define DNS_RCODE_MASK 0x0f
#define DNS_FLAGS_LO 3 /* header byte holding the rcode */
#define DNS_TTL_SIGNED_MAX 0x7fffffffu
#define DNS_PORT_MAX 65535
#define DNS_PORT_DIGITS_MAX 5
#define DNS_SERVERS_MAX 16
#define DNS_CACHE_BUCKETS 1024
#define DNS_HOSTS_PATH "/etc/hosts"
#define DNS_HOSTS_MAX ((size_t)1 << 22) /* bytes of /etc/hosts we read */
#define DNS_HOSTS_CHUNK 4096
#define MS_PER_S 1000
#define NS_PER_MS 1000000
#define FNV_OFFSET 2166136261u
#define FNV_PRIME 16777619u

/* DNS rcodes (RFC 1035 4.1.1) */
enum {
    RCODE_NOERROR,
    RCODE_FORMERR,
    RCODE_SERVFAIL,
    RCODE_NXDOMAIN,
    RCODE_NOTIMP,
    RCODE_REFUSED
};

static const char why_notfound[] = "Host not found";
static const char why_tempfail[] = "Host not found, try again";
static const char why_nodata[] = "Host found but no data record of requested type";
static const char why_permfail[] = "Non-recoverable error";
static const char why_badname[] = "Malformed domain name";
static const char why_badreply[] = "Malformed name server reply";
static const char why_badmx[] = "Malformed MX host name in name server reply";

enum dns_kind { DNS_KIND_NAME, DNS_KIND_MX, DNS_KIND_ADDR, DNS_KIND_TXT };

#define DNS_QUERIES_MAX 2 /* A and AAAA */

struct dns_req;

/* struct dns_query - one question of a record lookup */
struct dns_query {
    struct dns_req *req;
    enum dns_qtype qtype;
    bool done; /* ans is valid */
    struct dns_answer ans;
};

struct dns_req {
    enum dns_kind kind;
    dns_name_fn fn;
    dns_mx_fn mx_fn;
    dns_addr_fn addr_fn;
    dns_txt_fn txt_fn;
    void *ctx;
    int pending;              /* c-ares queries in flight */
    bool user_done;           /* answered or cancelled */
    bool starting;            /* inside the call that started it */
    bool deliver;             /* an answer waits for the timer */
    struct event_timer timer; /* deadline, or deferred delivery */
    /* dns_client_name */
    char *answer;
    char *ptr_name;
    struct sockaddr_storage addr;
    /* record lookups */
    char *qname;     /* lowercased, no trailing dot */
    bool have_final; /* final answers without queries */
    struct dns_answer final;
    size_t nq;
    struct dns_query q[DNS_QUERIES_MAX];
};

/*
 * struct dns_flight - a query in flight; lookups of the same (name, type)
 * made meanwhile wait for it instead of asking again
 */
struct dns_flight {
    char *name;
    enum dns_qtype qtype;
    struct dns_query **waiters;
    size_t nwait;
    struct dns_flight *next;
};

/* struct dns_cache_ent - one cached answer */
struct dns_cache_ent {
    char *name;
    enum dns_qtype qtype;
    uint64_t expires; /* monotonic ms */
    struct dns_answer ans;
    struct dns_cache_ent *hnext; /* hash chain */
    struct dns_cache_ent *older; /* insertion order */
    struct dns_cache_ent *newer;
};

static ares_channel dns_channel;
static bool dns_ready;
static struct event_timer dns_timer;
static bool *dns_watched;
static size_t dns_nwatched;
static char *dns_servers;    /* canonical list for c-ares, or NULL */
static char *dns_hosts_path; /* NULL: DNS_HOSTS_PATH */

static struct dns_cache_ent *dns_cache_tab[DNS_CACHE_BUCKETS];
static struct dns_cache_ent *dns_cache_oldest;
static struct dns_cache_ent *dns_cache_newest;
static size_t dns_cache_count;
static struct dns_flight *dns_flights; /* short: queries in flight */

static void dns_schedule(void);

/* ---- the channel and the event loop ------------------------------------------ */

/* dns_fd_ready - a c-ares socket is ready */
static void dns_fd_ready(int fd, unsigned events, void *ctx)
{
    (void)ctx;
    ares_process_fd(dns_channel,
                    (events & (EVENT_READ | EVENT_ERROR)) ? fd : ARES_SOCKET_BAD,
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
    event_timer_arm(&dns_timer,
                    (uint64_t)t->tv_sec * 1000 + (uint64_t)t->tv_usec / 1000 + 1);
}

/* dns_init - create the channel */
void dns_init(void)
{
    struct ares_options opt;
    int optmask =
        ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS;
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
    if (dns_servers &&
        (rc = ares_set_servers_ports_csv(dns_channel, dns_servers)) != ARES_SUCCESS)
        msg_fatal("c-ares name servers \"%s\": %s", dns_servers, ares_strerror(rc));
    event_timer_setup(&dns_timer, dns_timer_fire, NULL);
    dns_ready = true;
}

/* dns_server_port - append ":port" after checking it (1-65535) */
static bool dns_server_port(const char *p, size_t n, struct buf *out)
{
    unsigned long port = 0;

    if (n == 0 || n > DNS_PORT_DIGITS_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        port = port * 10 + (unsigned long)(p[i] - '0');
    }
    if (port == 0 || port > DNS_PORT_MAX)
        return false;
    buf_printf(out, ":%lu", port);
    return true;
}

/* dns_server_entry - one "ip[:port]" or "[ip6]:port" in canonical form; false if bad */
static bool dns_server_entry(const char *s, size_t n, struct buf *out)
{
    unsigned char tmp[sizeof(struct in6_addr)];
    const char *colon, *close;
    char *addr;
    bool ok;

    if (n == 0)
        return false;
    if (s[0] == '[') {
        close = memchr(s, ']', n);
        if (close == NULL)
            return false;
        addr = xstrndup(s + 1, (size_t)(close - s - 1));
        ok = inet_pton(AF_INET6, addr, tmp) == 1 || inet_pton(AF_INET, addr, tmp) == 1;
        if (ok) {
            size_t rest = n - (size_t)(close + 1 - s);
            if (rest == 0) {
                buf_puts(out, addr);
            } else {
                buf_printf(out, strchr(addr, ':') ? "[%s]" : "%s", addr);
                ok = close[1] == ':' && dns_server_port(close + 2, rest - 1, out);
            }
        }
        free(addr);
        return ok;
    }
    colon = memchr(s, ':', n);
    if (colon && memchr(colon + 1, ':', n - (size_t)(colon + 1 - s)) != NULL) {
        addr = xstrndup(s, n); /* a bare IPv6 address, no port */
        ok = inet_pton(AF_INET6, addr, tmp) == 1;
        if (ok)
            buf_puts(out, addr);
        free(addr);
        return ok;
    }
    addr = xstrndup(s, colon ? (size_t)(colon - s) : n);
    ok = inet_pton(AF_INET, addr, tmp) == 1;
    if (ok) {
        buf_puts(out, addr);
        if (colon)
            ok = dns_server_port(colon + 1, n - (size_t)(colon + 1 - s), out);
    }
    free(addr);
    return ok;
}

/* dns_set_servers - use these servers instead of /etc/resolv.conf */
bool dns_set_servers(const char *servers, const char **err)
{
    struct buf out = BUF_INIT;
    const char *p = servers, *end, *s, *e;
    size_t count = 0;
    int rc;

    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == 0) {
        if (dns_ready && dns_servers) {
            *err = "the system's name servers cannot be restored once DNS is initialised";
            return false;
        }
        return true;
    }
    for (;;) {
        end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        for (s = p; s < end && (*s == ' ' || *s == '\t'); s++)
            ;
        for (e = end; e > s && (e[-1] == ' ' || e[-1] == '\t'); e--)
            ;
        if (count > 0)
            buf_putc(&out, ',');
        if (++count > DNS_SERVERS_MAX || !dns_server_entry(s, (size_t)(e - s), &out)) {
            *err = count > DNS_SERVERS_MAX
                       ? "too many name servers"
                       : "malformed name server (ip[:port] or [ipv6]:port)";
            buf_free(&out);
            return false;
        }
        if (*end == 0)
            break;
        p = end + 1;
    }
    if (dns_ready &&
        (rc = ares_set_servers_ports_csv(dns_channel, buf_str(&out))) != ARES_SUCCESS) {
        /* c-ares 1.18 will not change servers under queries in flight */
        *err = rc == ARES_ENOTIMP ? "DNS queries in flight, try again later"
                                  : ares_strerror(rc);
        buf_free(&out);
        return false;
    }
    free(dns_servers);
    dns_servers = buf_steal(&out);
    return true;
}

/* dns_set_hosts_file - read path instead of /etc/hosts */
void dns_set_hosts_file(const char *path)
{
    free(dns_hosts_path);
    dns_hosts_path = path ? xstrdup(path) : NULL;
}

/* dns_hostname_valid - a plausible host name, not an address */
bool dns_hostname_valid(const char *name)
{
    unsigned char tmp[sizeof(struct in6_addr)];
    size_t n = strlen(name);

    if (n == 0 || n > DNS_NAME_MAX || name[0] == '.' || name[0] == '-')
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_'))
            return false;
    return inet_pton(AF_INET, name, tmp) != 1 && inet_pton(AF_INET6, name, tmp) != 1;
}

/* ---- answers: classification and parsing ---------------------------------------- */

/* dns_status_text - the log text for a status */
const char *dns_status_text(enum dns_status st)
{
    switch (st) {
    case DNS_OK:
        return "Success";
    case DNS_NOTFOUND:
        return why_notfound;
    case DNS_NODATA:
        return why_nodata;
    case DNS_TEMPFAIL:
        return why_tempfail;
    case DNS_PERMFAIL:
        return why_permfail;
    }
    return why_permfail;
}

/* dns_answer_set_status - an answer without records */
void dns_answer_set_status(struct dns_answer *ans, enum dns_status st, const char *why)
{
    memset(ans, 0, sizeof(*ans));
    ans->status = st;
    ans->why = why ? why : dns_status_text(st);
}

/* dns_ares_status - a c-ares status as ours */
enum dns_status dns_ares_status(int ares_status, const char **why)
{
    enum dns_status st;

    switch (ares_status) {
    case ARES_SUCCESS:
        st = DNS_OK;
        break;
    case ARES_ENOTFOUND:
    case ARES_ENONAME:
        st = DNS_NOTFOUND;
        break;
    case ARES_ENODATA:
        st = DNS_NODATA;
        break;
    case ARES_EFORMERR:
    case ARES_EBADQUERY:
    case ARES_EBADNAME:
    case ARES_EBADFAMILY:
    case ARES_EBADFLAGS:
    case ARES_EBADHINTS:
        st = DNS_PERMFAIL;
        *why = ares_status == ARES_EBADNAME ? why_badname : why_permfail;
        return st;
    default: /* SERVFAIL, REFUSED, NOTIMP, time-out, no server, ... */
        st = DNS_TEMPFAIL;
        break;
    }
    *why = dns_status_text(st);
    return st;
}

/* dns_get16 - a big-endian 16-bit field */
static unsigned dns_get16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* dns_skip_name - step over a (possibly compressed) name at *pos; false if malformed */
static bool dns_skip_name(const unsigned char *abuf, size_t alen, size_t *pos)
{
    char *name = NULL;
    long enclen = 0;

    if (ares_expand_name(abuf + *pos, abuf, (int)alen, &name, &enclen) != ARES_SUCCESS)
        return false;
    ares_free_string(name);
    if (enclen <= 0 || (size_t)enclen > alen - *pos)
        return false;
    *pos += (size_t)enclen;
    return true;
}

/*
 * dns_answer_ttl - the smallest TTL of the answer section's records of
 * qtype and CNAMEs (the chain that led to them); false if the packet does
 * not hold together.
 */
static bool dns_answer_ttl(const unsigned char *abuf, size_t alen, enum dns_qtype qtype,
                           unsigned *ttl)
{
    size_t pos = DNS_HEADER_LEN;
    unsigned qd = dns_get16(abuf + 4), an = dns_get16(abuf + 6);
    uint32_t min = DNS_TTL_SIGNED_MAX, t;
    unsigned type, rdlen;

    for (unsigned i = 0; i < qd; i++) {
        if (!dns_skip_name(abuf, alen, &pos) || alen - pos < DNS_QUESTION_FIXED_LEN)
            return false;
        pos += DNS_QUESTION_FIXED_LEN;
    }
    for (unsigned i = 0; i < an; i++) {
        if (!dns_skip_name(abuf, alen, &pos) || alen - pos < DNS_RR_FIXED_LEN)
            return false;
        type = dns_get16(abuf + pos);
        t = (uint32_t)abuf[pos + 4] << 24 | (uint32_t)abuf[pos + 5] << 16 |
            (uint32_t)abuf[pos + 6] << 8 | abuf[pos + 7];
        rdlen = dns_get16(abuf + pos + 8);
        pos += DNS_RR_FIXED_LEN;
        if (alen - pos < rdlen)
            return false;
        if ((type == DNS_QTYPE_A && rdlen != sizeof(struct in_addr)) ||
            (type == DNS_QTYPE_AAAA && rdlen != sizeof(struct in6_addr)))
            return false; /* c-ares would skip it silently */
        pos += rdlen;
        if (t > DNS_TTL_SIGNED_MAX) /* RFC 2181 8: treat as zero */
            t = 0;
        if ((type == (unsigned)qtype || type == DNS_TYPE_CNAME) && t < min)
            min = t;
    }
    *ttl = min;
    return true;
}

/* dns_parse_mx - MX records: trailing dots gone, invalid names dropped, "." kept as "" */
static void dns_parse_mx(const unsigned char *abuf, size_t alen, struct dns_answer *ans)
{
    struct ares_mx_reply *list = NULL;
    size_t seen = 0;
    int rc = ares_parse_mx_reply(abuf, (int)alen, &list);

    if (rc != ARES_SUCCESS) {
        dns_answer_set_status(ans, rc == ARES_ENODATA ? DNS_NODATA : DNS_TEMPFAIL,
                              rc == ARES_ENODATA ? NULL : why_badreply);
        return;
    }
    ans->mx = xcalloc(DNS_RECORDS_MAX, sizeof(*ans->mx));
    for (struct ares_mx_reply *m = list; m && ans->n < DNS_RECORDS_MAX; m = m->next) {
        char *host = xstrdup(m->host ? m->host : "");
        size_t len = strlen(host);

        seen++;
        if (len > 0 && host[len - 1] == '.')
            host[--len] = 0;
        if (len > 0 && !dns_hostname_valid(host)) {
            free(host);
            continue;
        }
        ans->mx[ans->n].pref = m->priority;
        ans->mx[ans->n].host = host;
        ans->n++;
    }
    ares_free_data(list);
    if (ans->n == 0) {
        free(ans->mx);
        dns_answer_set_status(ans, seen ? DNS_PERMFAIL : DNS_NODATA,
                              seen ? why_badmx : NULL);
    }
}

/* dns_addr_fill - one address as a struct dns_addr with port 0 */
static void dns_addr_fill(struct dns_addr *a, int family, const void *bytes)
{
    memset(a, 0, sizeof(*a));
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&a->sa;
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, bytes, sizeof(sin->sin_addr));
        a->len = sizeof(*sin);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->sa;
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, bytes, sizeof(sin6->sin6_addr));
        a->len = sizeof(*sin6);
    }
}

/* dns_parse_addr - A or AAAA records (following CNAMEs from the question name) */
static void dns_parse_addr(enum dns_qtype qtype, const unsigned char *abuf, size_t alen,
                           struct dns_answer *ans)
{
    struct ares_addrttl v4[DNS_RECORDS_MAX];
    struct ares_addr6ttl v6[DNS_RECORDS_MAX];
    struct hostent *he = NULL;
    int n = DNS_RECORDS_MAX, rc;

    if (qtype == DNS_QTYPE_A)
        rc = ares_parse_a_reply(abuf, (int)alen, &he, v4, &n);
    else
        rc = ares_parse_aaaa_reply(abuf, (int)alen, &he, v6, &n);
    if (he)
        ares_free_hostent(he);
    if (rc == ARES_SUCCESS && n <= 0)
        rc = ARES_ENODATA;
    if (rc != ARES_SUCCESS) {
        dns_answer_set_status(ans, rc == ARES_ENODATA ? DNS_NODATA : DNS_TEMPFAIL,
                              rc == ARES_ENODATA ? NULL : why_badreply);
        return;
    }
    if (n > DNS_RECORDS_MAX)
        n = DNS_RECORDS_MAX;
    ans->addr = xcalloc((size_t)n, sizeof(*ans->addr));
    for (int i = 0; i < n; i++)
        dns_addr_fill(&ans->addr[i], qtype == DNS_QTYPE_A ? AF_INET : AF_INET6,
                      qtype == DNS_QTYPE_A ? (const void *)&v4[i].ipaddr
                                           : (const void *)&v6[i].ip6addr);
    ans->n = (size_t)n;
}

/* dns_parse_txt - TXT records, the strings of each record concatenated */
static void dns_parse_txt(const unsigned char *abuf, size_t alen, struct dns_answer *ans)
{
    struct ares_txt_ext *list = NULL;
    struct buf cur = BUF_INIT;
    bool open = false;
    int rc = ares_parse_txt_reply_ext(abuf, (int)alen, &list);

    if (rc != ARES_SUCCESS) {
        dns_answer_set_status(ans, rc == ARES_ENODATA ? DNS_NODATA : DNS_TEMPFAIL,
                              rc == ARES_ENODATA ? NULL : why_badreply);
        return;
    }
    ans->txt = xcalloc(DNS_RECORDS_MAX, sizeof(*ans->txt));
    for (struct ares_txt_ext *t = list; t; t = t->next) {
        if (t->record_start && open) {
            ans->txt[ans->n++] = buf_steal(&cur);
            open = false;
        }
        if (ans->n >= DNS_RECORDS_MAX)
            break;
        if (!open) {
            buf_init(&cur, DNS_PACKET_MAX);
            open = true;
        }
        buf_append(&cur, t->txt, t->length);
    }
    if (open)
        ans->txt[ans->n++] = buf_steal(&cur);
    ares_free_data(list);
    if (ans->n == 0) {
        free(ans->txt);
        dns_answer_set_status(ans, DNS_NODATA, NULL);
    }
}

/* dns_answer_parse - classify and parse one raw answer */
void dns_answer_parse(enum dns_qtype qtype, const unsigned char *abuf, size_t alen,
                      struct dns_answer *ans)
{
    unsigned ttl = 0;

    dns_answer_set_status(ans, DNS_OK, NULL);
    if (alen < DNS_HEADER_LEN || alen > DNS_PACKET_MAX) {
        dns_answer_set_status(ans, DNS_TEMPFAIL, why_badreply);
        return;
    }
    switch (abuf[DNS_FLAGS_LO] & DNS_RCODE_MASK) {
    case RCODE_NOERROR:
        break;
    case RCODE_NXDOMAIN:
        dns_answer_set_status(ans, DNS_NOTFOUND, NULL);
        return;
    case RCODE_FORMERR:
        dns_answer_set_status(ans, DNS_PERMFAIL, NULL);
        return;
    default: /* SERVFAIL, NOTIMP, REFUSED, later codes */
        dns_answer_set_status(ans, DNS_TEMPFAIL, NULL);
        return;
    }
    if (dns_get16(abuf + 6) == 0) {
        dns_answer_set_status(ans, DNS_NODATA, NULL);
        return;
    }
    if (!dns_answer_ttl(abuf, alen, qtype, &ttl)) {
        dns_answer_set_status(ans, DNS_TEMPFAIL, why_badreply);
        return;
    }
    switch (qtype) {
    case DNS_QTYPE_MX:
        dns_parse_mx(abuf, alen, ans);
        break;
    case DNS_QTYPE_A:
    case DNS_QTYPE_AAAA:
        dns_parse_addr(qtype, abuf, alen, ans);
        break;
    case DNS_QTYPE_TXT:
        dns_parse_txt(abuf, alen, ans);
        break;
    default:
        msg_panic("dns_answer_parse: query type %d", (int)qtype);
    }
    if (ans->status == DNS_OK)
        ans->ttl = ttl;
}

/* dns_hosts_add - append one address if it is new and there is room */
static void dns_hosts_add(struct dns_addr *list, size_t *n, int family, const void *bytes)
{
    struct dns_addr a;

    if (*n >= DNS_RECORDS_MAX)
        return;
    dns_addr_fill(&a, family, bytes);
    for (size_t i = 0; i < *n; i++)
        if (list[i].len == a.len && memcmp(&list[i].sa, &a.sa, a.len) == 0)
            return;
    list[(*n)++] = a;
}

/* dns_hosts_parse - name's addresses from hosts-file text */
void dns_hosts_parse(const char *text, size_t len, const char *name, int family,
                     struct dns_answer *ans)
{
    struct dns_addr v4[DNS_RECORDS_MAX], v6[DNS_RECORDS_MAX];
    size_t n4 = 0, n6 = 0, nlen = strlen(name), pos = 0;
    unsigned char bytes[sizeof(struct in6_addr)];

    if (nlen > 0 && name[nlen - 1] == '.')
        nlen--;
    dns_answer_set_status(ans, DNS_NOTFOUND, NULL);
    while (pos < len) {
        const char *line = text + pos, *nl = memchr(line, '\n', len - pos);
        size_t llen = nl ? (size_t)(nl - line) : len - pos;
        char *copy = xstrndup(line, llen), *save = NULL, *tok, *addr;
        int fam = 0;

        pos += llen + (nl ? 1 : 0);
        copy[strcspn(copy, "#")] = 0;
        addr = strtok_r(copy, " \t\r\v\f", &save);
        if (addr && inet_pton(AF_INET, addr, bytes) == 1)
            fam = AF_INET;
        else if (addr && inet_pton(AF_INET6, addr, bytes) == 1)
            fam = AF_INET6;
        if (fam == 0 || (family != AF_UNSPEC && family != fam)) {
            free(copy);
            continue;
        }
        while ((tok = strtok_r(NULL, " \t\r\v\f", &save)) != NULL) {
            size_t tlen = strlen(tok);
            if (tlen > 0 && tok[tlen - 1] == '.')
                tlen--;
            if (tlen == nlen && nlen > 0 && strncasecmp(tok, name, nlen) == 0) {
                if (fam == AF_INET)
                    dns_hosts_add(v4, &n4, fam, bytes);
                else
                    dns_hosts_add(v6, &n6, fam, bytes);
                break;
            }
        }
        free(copy);
    }
    if (n4 + n6 == 0)
        return;
    if (n4 + n6 > DNS_RECORDS_MAX)
        n6 = DNS_RECORDS_MAX - n4;
    ans->status = DNS_OK;
    ans->why = dns_status_text(DNS_OK);
    ans->addr = xcalloc(n4 + n6, sizeof(*ans->addr));
    memcpy(ans->addr, v4, n4 * sizeof(*v4));
    memcpy(ans->addr + n4, v6, n6 * sizeof(*v6));
    ans->n = n4 + n6;
}

/* dns_answer_copy - deep copy */
void dns_answer_copy(struct dns_answer *dst, const struct dns_answer *src)
{
    *dst = *src;
    if (src->mx) {
        dst->mx = xcalloc(src->n ? src->n : 1, sizeof(*dst->mx));
        for (size_t i = 0; i < src->n; i++) {
            dst->mx[i].pref = src->mx[i].pref;
            dst->mx[i].host = xstrdup(src->mx[i].host);
        }
    }
    if (src->addr)
        dst->addr = src->n ? xmemdup(src->addr, src->n * sizeof(*src->addr)) : NULL;
    if (src->txt) {
        dst->txt = xcalloc(src->n ? src->n : 1, sizeof(*dst->txt));
        for (size_t i = 0; i < src->n; i++)
            dst->txt[i] = xstrdup(src->txt[i]);
    }
}

/* dns_answer_free - release the arrays */
void dns_answer_free(struct dns_answer *ans)
{
    for (size_t i = 0; ans->mx && i < ans->n; i++)
        free(ans->mx[i].host);
    for (size_t i = 0; ans->txt && i < ans->n; i++)
        free(ans->txt[i]);
    free(ans->mx);
    free(ans->addr);
    free(ans->txt);
    ans->mx = NULL;
    ans->addr = NULL;
    ans->txt = NULL;
    ans->n = 0;
}

/* ---- the cache ---------------------------------------------------------------- */

/* dns_now_ms - monotonic time in ms (not the loop's cached time: tests sleep) */
static uint64_t dns_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * MS_PER_S + (uint64_t)ts.tv_nsec / NS_PER_MS;
}

/* dns_cache_bucket - hash chain of (name, qtype) */
static size_t dns_cache_bucket(const char *name, enum dns_qtype qtype)
{
    uint32_t h = FNV_OFFSET ^ (uint32_t)qtype;

    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * FNV_PRIME;
    return h % DNS_CACHE_BUCKETS;
}

/* dns_cache_remove - unlink and free one entry */
static void dns_cache_remove(struct dns_cache_ent *e)
{
    struct dns_cache_ent **pp = &dns_cache_tab[dns_cache_bucket(e->name, e->qtype)];

    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    if (e->older)
        e->older->newer = e->newer;
    else
        dns_cache_oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        dns_cache_newest = e->older;
    dns_cache_count--;
    dns_answer_free(&e->ans);
    free(e->name);
    free(e);
}

/* dns_cache_find - the live entry for (name, qtype), or NULL (expired ones go) */
static struct dns_cache_ent *dns_cache_find(const char *name, enum dns_qtype qtype)
{
    struct dns_cache_ent *e = dns_cache_tab[dns_cache_bucket(name, qtype)];

    for (; e; e = e->hnext)
        if (e->qtype == qtype && strcmp(e->name, name) == 0)
            break;
    if (e && e->expires <= dns_now_ms()) {
        dns_cache_remove(e);
        e = NULL;
    }
    return e;
}

/* dns_cache_store - remember an answer for as long as it may be reused */
static void dns_cache_store(const char *name, enum dns_qtype qtype,
                            const struct dns_answer *ans)
{
    struct dns_cache_ent *e;
    unsigned ttl;
    size_t b;

    if (ans->status == DNS_OK)
        ttl = ans->ttl < DNS_CACHE_TTL_MAX ? ans->ttl : DNS_CACHE_TTL_MAX;
    else if (ans->status == DNS_NOTFOUND || ans->status == DNS_NODATA)
        ttl = DNS_NEG_TTL;
    else
        return;
    if ((e = dns_cache_find(name, qtype)) != NULL)
        dns_cache_remove(e);
    if (ttl == 0)
        return;
    while (dns_cache_count >= DNS_CACHE_MAX)
        dns_cache_remove(dns_cache_oldest);
    e = xcalloc(1, sizeof(*e));
    e->name = xstrdup(name);
    e->qtype = qtype;
    e->expires = dns_now_ms() + (uint64_t)ttl * MS_PER_S;
    dns_answer_copy(&e->ans, ans);
    b = dns_cache_bucket(name, qtype);
    e->hnext = dns_cache_tab[b];
    dns_cache_tab[b] = e;
    e->older = dns_cache_newest;
    if (dns_cache_newest)
        dns_cache_newest->newer = e;
    else
        dns_cache_oldest = e;
    dns_cache_newest = e;
    dns_cache_count++;
}

/* dns_cache_flush - forget every cached answer */
void dns_cache_flush(void)
{
    while (dns_cache_oldest)
        dns_cache_remove(dns_cache_oldest);
}

/* ---- requests ------------------------------------------------------------------ */

/* dns_req_maybe_free - free once the caller and c-ares are both done */
static void dns_req_maybe_free(struct dns_req *r)
{
    if (!r->user_done || r->pending > 0)
        return;
    event_timer_disarm(&r->timer);
    free(r->answer);
    free(r->ptr_name);
    free(r->qname);
    dns_answer_free(&r->final);
    for (size_t i = 0; i < r->nq; i++)
        dns_answer_free(&r->q[i].ans);
    free(r);
}

/* dns_addr_combine - A and AAAA answers as one (A first) */
static void dns_addr_combine(struct dns_req *r, struct dns_answer *out)
{
    static const enum dns_status order[] = {DNS_TEMPFAIL, DNS_NOTFOUND, DNS_PERMFAIL};
    size_t total = 0;

    for (size_t i = 0; i < r->nq; i++)
        if (r->q[i].ans.status == DNS_OK)
            total += r->q[i].ans.n;
    if (total > 0) {
        dns_answer_set_status(out, DNS_OK, NULL);
        out->addr = xcalloc(total, sizeof(*out->addr));
        for (size_t i = 0; i < r->nq; i++)
            if (r->q[i].ans.status == DNS_OK) {
                memcpy(out->addr + out->n, r->q[i].ans.addr,
                       r->q[i].ans.n * sizeof(*out->addr));
                out->n += r->q[i].ans.n;
            }
        return;
    }
    for (size_t k = 0; k < POSTA_ARRAY_LEN(order); k++)
        for (size_t i = 0; i < r->nq; i++)
            if (r->q[i].ans.status == order[k]) {
                dns_answer_set_status(out, order[k], r->q[i].ans.why);
                return;
            }
    dns_answer_set_status(out, DNS_NODATA, NULL);
}

/* dns_deliver - run the caller's callback with the request's answer */
static void dns_deliver(struct dns_req *r)
{
    struct dns_answer comb, *a = &r->final;
    bool combined = false;

    r->user_done = true;
    r->deliver = false;
    event_timer_disarm(&r->timer);
    if (!r->have_final) {
        if (r->kind == DNS_KIND_ADDR && r->nq > 1) {
            dns_addr_combine(r, &comb);
            a = &comb;
            combined = true;
        } else {
            a = &r->q[0].ans;
        }
    }
    switch (r->kind) {
    case DNS_KIND_MX:
        r->mx_fn(r->ctx, a->status, a->n ? a->mx : NULL, a->n, a->why);
        break;
    case DNS_KIND_ADDR:
        r->addr_fn(r->ctx, a->status, a->n ? a->addr : NULL, a->n, a->why);
        break;
    case DNS_KIND_TXT:
        r->txt_fn(r->ctx, a->status, a->n ? a->txt : NULL, a->n, a->why);
        break;
    case DNS_KIND_NAME:
        msg_panic("dns_deliver: name request");
    }
    if (combined)
        dns_answer_free(&comb);
}

/* dns_records_ready - every query answered: now, or from the loop if still starting */
static void dns_records_ready(struct dns_req *r)
{
    if (r->user_done || r->deliver)
        return;
    if (r->starting) {
        r->deliver = true;
        event_timer_arm(&r->timer, 0);
        return;
    }
    dns_deliver(r);
}

/* dns_finish - give a name request its answer (later, if still starting) */
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

    if (r->kind == DNS_KIND_NAME) {
        if (r->deliver) {
            r->deliver = false;
            r->user_done = true;
            r->fn(r->ctx, r->answer);
        } else {
            dns_finish(r, NULL);
        }
    } else if (!r->user_done) {
        if (!r->deliver) /* deadline: what is missing failed for now */
            for (size_t i = 0; i < r->nq; i++)
                if (!r->q[i].done) {
                    dns_answer_set_status(&r->q[i].ans, DNS_TEMPFAIL, NULL);
                    r->q[i].done = true;
                }
        dns_deliver(r);
    }
    dns_req_maybe_free(r);
}

/* dns_req_new - a request with its deadline armed */
static struct dns_req *dns_req_new(enum dns_kind kind, unsigned timeout_ms, void *ctx)
{
    struct dns_req *r = xcalloc(1, sizeof(*r));

    dns_init();
    r->kind = kind;
    r->ctx = ctx;
    event_timer_setup(&r->timer, dns_req_timer, r);
    event_timer_arm(&r->timer, timeout_ms);
    return r;
}

/* dns_answer_later - the answer is known now; deliver it from the loop */
static struct dns_req *dns_answer_later(struct dns_req *r)
{
    r->have_final = true;
    r->deliver = true;
    event_timer_arm(&r->timer, 0);
    return r;
}

/* dns_qname - name lowercased without its trailing dot, or NULL if not a valid host name */
static char *dns_qname(const char *name)
{
    size_t n = strlen(name);
    const char *label;
    char *q;

    if (n > 0 && name[n - 1] == '.')
        n--;
    if (n == 0 || n > DNS_QNAME_MAX)
        return NULL;
    q = xstrndup(name, n);
    for (char *p = q; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (!dns_hostname_valid(q)) {
        free(q);
        return NULL;
    }
    label = q;
    for (const char *p = q;; p++)
        if (*p == '.' || *p == 0) {
            if (p == label || p - label > DNS_LABEL_MAX) {
                free(q);
                return NULL;
            }
            if (*p == 0)
                break;
            label = p + 1;
        }
    return q;
}

/* dns_flight_done - one ares_query answered (or failed): every waiter gets it */
static void dns_flight_done(void *arg, int status, int timeouts, unsigned char *abuf,
                            int alen)
{
    struct dns_flight *f = arg, **pp;
    struct dns_answer ans;
    const char *why = NULL;

    (void)timeouts;
    for (pp = &dns_flights; *pp != f; pp = &(*pp)->next)
        ;
    *pp = f->next; /* new lookups from callbacks start afresh */
    if (abuf != NULL && alen > 0 && status != ARES_ECANCELLED &&
        status != ARES_EDESTRUCTION) {
        dns_answer_parse(f->qtype, abuf, (size_t)alen, &ans);
    } else {
        enum dns_status st = dns_ares_status(status, &why);
        dns_answer_set_status(&ans, st == DNS_OK ? DNS_TEMPFAIL : st, why);
    }
    dns_cache_store(f->name, f->qtype, &ans);
    for (size_t w = 0; w < f->nwait; w++) {
        struct dns_query *q = f->waiters[w];
        struct dns_req *r = q->req; /* alive: its pending count includes us */
        bool all = true;

        r->pending--;
        if (!r->user_done && !q->done) {
            dns_answer_copy(&q->ans, &ans);
            q->done = true;
            for (size_t i = 0; i < r->nq; i++)
                all = all && r->q[i].done;
            if (all)
                dns_records_ready(r);
        }
        dns_req_maybe_free(r);
    }
    dns_answer_free(&ans);
    free(f->waiters);
    free(f->name);
    free(f);
}

/* dns_ask - put q on the query in flight for its (name, type), or start one */
static void dns_ask(struct dns_req *r, struct dns_query *q)
{
    struct dns_flight *f;

    for (f = dns_flights; f; f = f->next)
        if (f->qtype == q->qtype && strcmp(f->name, r->qname) == 0)
            break;
    if (f == NULL) {
        f = xcalloc(1, sizeof(*f));
        f->name = xstrdup(r->qname);
        f->qtype = q->qtype;
        f->next = dns_flights;
        dns_flights = f;
        f->waiters = xcalloc(1, sizeof(*f->waiters));
    } else {
        f->waiters = xreallocarray(f->waiters, f->nwait + 1, sizeof(*f->waiters));
    }
    f->waiters[f->nwait++] = q;
    r->pending++;
    if (f->nwait == 1) /* may answer at once (a bad name, no memory) */
        ares_query(dns_channel, f->name, DNS_CLASS_IN, (int)f->qtype, dns_flight_done, f);
}

/* dns_start - ask (or answer from the cache) each question of r */
static struct dns_req *dns_start(struct dns_req *r)
{
    struct dns_cache_ent *e;
    bool all = true;

    r->starting = true;
    for (size_t i = 0; i < r->nq; i++) {
        struct dns_query *q = &r->q[i];

        q->req = r;
        if ((e = dns_cache_find(r->qname, q->qtype)) != NULL) {
            dns_answer_copy(&q->ans, &e->ans);
            q->done = true;
        } else {
            dns_ask(r, q);
        }
    }
    for (size_t i = 0; i < r->nq; i++)
        all = all && r->q[i].done;
    if (all)
        dns_records_ready(r);
    r->starting = false;
    dns_schedule();
    return r;
}

/* dns_lookup_mx - MX records of domain */
struct dns_req *dns_lookup_mx(const char *domain, unsigned timeout_ms, dns_mx_fn fn,
                              void *ctx)
{
    struct dns_req *r = dns_req_new(DNS_KIND_MX, timeout_ms, ctx);

    r->mx_fn = fn;
    if ((r->qname = dns_qname(domain)) == NULL) {
        dns_answer_set_status(&r->final, DNS_PERMFAIL, why_badname);
        return dns_answer_later(r);
    }
    r->q[r->nq++].qtype = DNS_QTYPE_MX;
    return dns_start(r);
}

/* dns_lookup_txt - TXT records of name */
struct dns_req *dns_lookup_txt(const char *name, unsigned timeout_ms, dns_txt_fn fn,
                               void *ctx)
{
    struct dns_req *r = dns_req_new(DNS_KIND_TXT, timeout_ms, ctx);

    r->txt_fn = fn;
    if ((r->qname = dns_qname(name)) == NULL) {
        dns_answer_set_status(&r->final, DNS_PERMFAIL, why_badname);
        return dns_answer_later(r);
    }
    r->q[r->nq++].qtype = DNS_QTYPE_TXT;
    return dns_start(r);
}

/* dns_literal - a literal address of the wanted family as the final answer; false if none
 */
static bool dns_literal(struct dns_req *r, const char *host, int family)
{
    unsigned char bytes[sizeof(struct in6_addr)];
    int fam;

    if (inet_pton(AF_INET, host, bytes) == 1)
        fam = AF_INET;
    else if (inet_pton(AF_INET6, host, bytes) == 1)
        fam = AF_INET6;
    else
        return false;
    if (family != AF_UNSPEC && family != fam) {
        dns_answer_set_status(&r->final, DNS_NODATA, NULL);
        return true;
    }
    dns_answer_set_status(&r->final, DNS_OK, NULL);
    r->final.addr = xcalloc(1, sizeof(*r->final.addr));
    dns_addr_fill(r->final.addr, fam, bytes);
    r->final.n = 1;
    return true;
}

/* dns_hosts_lookup - answer r from the hosts file; false if it does not know the name */
static bool dns_hosts_lookup(struct dns_req *r, int family)
{
    const char *path = dns_hosts_path ? dns_hosts_path : DNS_HOSTS_PATH;
    FILE *fp = fopen(path, "r");
    struct buf text = BUF_INIT;
    char chunk[DNS_HOSTS_CHUNK];
    size_t got;

    if (fp == NULL)
        return false;
    buf_init(&text, DNS_HOSTS_MAX);
    while ((got = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        if (buf_append(&text, chunk, got) < 0)
            break; /* a huge hosts file: use what fits */
    fclose(fp);
    dns_hosts_parse(buf_str(&text), text.len, r->qname, family, &r->final);
    buf_free(&text);
    if (r->final.status == DNS_OK)
        return true;
    dns_answer_free(&r->final);
    dns_answer_set_status(&r->final, DNS_OK, NULL);
    return false;
}

/* dns_lookup_addr - A and/or AAAA records of host */
struct dns_req *dns_lookup_addr(const char *host, int family, bool hosts_file,
                                unsigned timeout_ms, dns_addr_fn fn, void *ctx)
{
    struct dns_req *r = dns_req_new(DNS_KIND_ADDR, timeout_ms, ctx);

    r->addr_fn = fn;
    if (family != AF_INET && family != AF_INET6 && family != AF_UNSPEC) {
        dns_answer_set_status(&r->final, DNS_PERMFAIL, "Address family not supported");
        return dns_answer_later(r);
    }
    if (dns_literal(r, host, family))
        return dns_answer_later(r);
    if ((r->qname = dns_qname(host)) == NULL) {
        dns_answer_set_status(&r->final, DNS_PERMFAIL, why_badname);
        return dns_answer_later(r);
    }
    if (hosts_file && dns_hosts_lookup(r, family))
        return dns_answer_later(r);
    if (family != AF_INET6)
        r->q[r->nq++].qtype = DNS_QTYPE_A;
    if (family != AF_INET)
        r->q[r->nq++].qtype = DNS_QTYPE_AAAA;
    return dns_start(r);
}

/* ---- client names (reverse with forward confirmation) ---------------------------- */

/* dns_same_addr - does ai_addr hold the address we started from? */
static bool dns_same_addr(const struct sockaddr_storage *want, const struct sockaddr *got)
{
    if (want->ss_family != got->sa_family)
        return false;
    if (got->sa_family == AF_INET)
        return memcmp(&((const struct sockaddr_in *)want)->sin_addr,
                      &((const struct sockaddr_in *)got)->sin_addr,
                      sizeof(struct in_addr)) == 0;
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
    if (status != ARES_SUCCESS || he == NULL || he->h_name == NULL ||
        !dns_hostname_valid(he->h_name)) {
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
struct dns_req *dns_client_name(const struct sockaddr *sa, socklen_t len,
                                unsigned timeout_ms, dns_name_fn fn, void *ctx)
{
    struct dns_req *r;
    const void *a;
    int alen;

    struct sockaddr_in v4;

    if (sa->sa_family == AF_INET6 &&
        IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)sa)->sin6_addr)) {
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
    r = dns_req_new(DNS_KIND_NAME, timeout_ms, ctx);
    r->fn = fn;
    if ((size_t)len > sizeof(r->addr))
        len = sizeof(r->addr);
    memcpy(&r->addr, sa, len);
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
