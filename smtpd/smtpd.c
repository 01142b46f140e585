/*
 * smtpd.c - posta's SMTP server: settings and the skeleton's hooks
 *
 * USAGE: started by master (see mail/server.h for the command line and
 * the inherited listeners). One process serves many sessions from one
 * event loop; the sessions live in session.c.
 *
 * The settings are read once, after privileges are dropped, into
 * struct smtpd_conf; only the TLS certificates and keys and the SASL
 * backend are opened before (they are often readable by root only).
 * The resolver (util/dns.h) is started before the jail so that it can
 * read /etc/resolv.conf.
 *
 * DIAGNOSTICS: bad settings are fatal (master restarts the daemon with
 * its throttle); see man/smtpd.8.
 *
 * SECURITY: runs unprivileged (mail_owner), optionally chrooted; talks
 * to SMTP clients and to DNS servers.
 */
#include "util/sys.h"

#include <string.h>
#include <strings.h>

#include "mail/bcc.h"
#include "mail/cleanup.h"
#include "mail/config.h"
#include "mail/matchlist.h"
#include "mail/msgcheck.h"
#include "mail/qcommit.h"
#include "mail/server.h"
#include "mail/spool.h"
#include "mail/valias.h"
#include "util/alloc.h"
#include "util/dns.h"
#include "util/log.h"

#include "mailauth.h"
#include "policy.h"
#include "smtpd.h"

#define CLIENT_BUCKETS 256      /* per-client connection count hash */
#define MS_PER_SEC 1000

struct smtpd_conf smtpd_conf;

/* client_count - one client address: sessions now, events in the rate window */
struct client_count {
    struct client_count *next;
    unsigned count;
    uint64_t since;                /* event_now() when the rate window began */
    unsigned rates[CR_COUNT];
    char addr[INET_ADDR_MAX];
};

static struct client_count *client_counts[CLIENT_BUCKETS];

/* client_hash - bucket of an address text */
static size_t client_hash(const char *addr)
{
    size_t h = 5381;

    for (const unsigned char *p = (const unsigned char *)addr; *p; p++)
        h = h * 33 + *p;
    return h % CLIENT_BUCKETS;
}

/* window_over - the rate window of c has ended */
static bool window_over(const struct client_count *c, uint64_t now)
{
    return now - c->since >= smtpd_conf.rate_unit_ms;
}

/* idle - no session and no event in a running window: the entry can go */
static bool idle(const struct client_count *c, uint64_t now)
{
    if (c->count > 0)
        return false;
    if (window_over(c, now))
        return true;
    for (int i = 0; i < CR_COUNT; i++)
        if (c->rates[i] > 0)
            return false;
    return true;
}

/* client_get - the entry of addr (made when missing); idle ones of its bucket are freed */
static struct client_count *client_get(const char *addr)
{
    struct client_count **pp = &client_counts[client_hash(addr)];
    struct client_count *found = NULL;
    uint64_t now = event_now();

    while (*pp) {
        struct client_count *c = *pp;

        if (strcmp(c->addr, addr) == 0) {
            found = c;
        } else if (idle(c, now)) {
            *pp = c->next;
            free(c);
            continue;
        }
        pp = &c->next;
    }
    if (found == NULL) {
        found = xcalloc(1, sizeof(*found));
        snprintf(found->addr, sizeof(found->addr), "%s", addr);
        found->since = now;
        found->next = client_counts[client_hash(addr)];
        client_counts[client_hash(addr)] = found;
    }
    if (window_over(found, now)) {
        found->since = now;
        memset(found->rates, 0, sizeof(found->rates));
    }
    return found;
}

/* smtpd_client_conn_add - one more session from addr; returns the new count */
unsigned smtpd_client_conn_add(const char *addr)
{
    return ++client_get(addr)->count;
}

/* smtpd_client_conn_del - a session from addr ended (the entry goes when idle) */
void smtpd_client_conn_del(const char *addr)
{
    struct client_count *c = client_get(addr);

    if (c->count > 0)
        c->count--;
}

/* smtpd_client_rate - one more event of this kind from addr; the count in this window */
unsigned smtpd_client_rate(const char *addr, enum client_rate what)
{
    return ++client_get(addr)->rates[what];
}

/* smtpd_rate_exceeded - count an event of s against its rate limit; true when over */
bool smtpd_rate_exceeded(struct session *s, enum client_rate what)
{
    static const char *const names[CR_COUNT] = {
        "Connection rate", "Message delivery request rate", "Recipient address rate"};
    unsigned limit = smtpd_conf.rate_limit[what], n;

    if (limit == 0 || (smtpd_conf.event_excl != NULL
                       && matchlist_match_addr(smtpd_conf.event_excl, s->addr) == MATCH_YES))
        return false;
    n = smtpd_client_rate(s->addr, what);
    if (n <= limit)
        return false;
    msg_warn("%s limit exceeded: %u from %s[%s] for service smtp", names[what], n, s->name,
             s->addr);
    return true;
}

/* bare_lf_mode - smtpd_forbid_bare_newline */
static enum dd_bare_lf bare_lf_mode(const char *v)
{
    if (strcasecmp(v, "normalize") == 0)
        return DD_BARE_LF_NORMALIZE;
    if (strcasecmp(v, "reject") == 0 || strcasecmp(v, "yes") == 0)
        return DD_BARE_LF_REJECT;
    if (strcasecmp(v, "no") == 0)
        return DD_BARE_LF_ALLOW;
    msg_fatal("bad smtpd_forbid_bare_newline value: \"%s\" (normalize, reject, yes or no)", v);
}

/* positive - an integer setting that must fit unsigned */
static unsigned long long positive(struct cfg *cfg, const char *name)
{
    long long v = cfg_int(cfg, name);

    if (v < 0)
        msg_fatal("%s must not be negative", name);
    return (unsigned long long)v;
}

/*
 * smtpd_load - read the settings, open the queue, the tables and the
 * restriction lists; runs before privileges are dropped, so a chrooted
 * smtpd (master.cf chroot = y) has everything outside the jail open
 */
static void smtpd_load(struct cfg *cfg)
{
    struct smtpd_conf *c = &smtpd_conf;

    c->cfg = cfg;
    c->myhostname = cfg_str(cfg, "myhostname");
    c->banner = xstrdup(cfg_str(cfg, "smtpd_banner"));
    c->line_limit = positive(cfg, "line_length_limit");
    c->timeout_ms = (uint64_t)cfg_time(cfg, "smtpd_timeout") * MS_PER_SEC;
    c->rcpt_limit = positive(cfg, "smtpd_recipient_limit");
    c->hopcount_limit = (unsigned)positive(cfg, "hopcount_limit");
    c->junk_limit = (unsigned)positive(cfg, "smtpd_junk_command_limit");
    c->soft_errors = (unsigned)positive(cfg, "smtpd_soft_error_limit");
    c->hard_errors = (unsigned)positive(cfg, "smtpd_hard_error_limit");
    c->error_sleep_ms = (uint64_t)cfg_time(cfg, "smtpd_error_sleep_time") * MS_PER_SEC;
    c->size_limit = positive(cfg, "message_size_limit");
    c->reject_footer = cfg_str(cfg, "smtpd_reject_footer");
    c->queue_minfree = positive(cfg, "queue_minfree");
    c->disable_vrfy = cfg_bool(cfg, "disable_vrfy_command");
    c->smtputf8 = cfg_bool(cfg, "smtputf8_enable");
    c->helo_required = cfg_bool(cfg, "smtpd_helo_required");
    c->strict_envelopes = cfg_bool(cfg, "strict_rfc821_envelopes");
    c->peername_lookup = cfg_bool(cfg, "smtpd_peername_lookup");
    c->bare_lf = bare_lf_mode(cfg_str(cfg, "smtpd_forbid_bare_newline"));
    c->conn_limit = (unsigned)positive(cfg, "smtpd_client_connection_count_limit");
    c->rate_limit[CR_CONN] = (unsigned)positive(cfg, "smtpd_client_connection_rate_limit");
    c->rate_limit[CR_MAIL] = (unsigned)positive(cfg, "smtpd_client_message_rate_limit");
    c->rate_limit[CR_RCPT] = (unsigned)positive(cfg, "smtpd_client_recipient_rate_limit");
    c->rate_unit_ms = (uint64_t)cfg_time(cfg, "anvil_rate_time_unit") * MS_PER_SEC;
    c->discard_ehlo = cfg_list(cfg, "smtpd_discard_ehlo_keywords", &c->ndiscard_ehlo);
    c->relay_restr = cfg_list(cfg, "smtpd_relay_restrictions", &c->nrelay_restr);
    c->rcpt_restr = cfg_list(cfg, "smtpd_recipient_restrictions", &c->nrcpt_restr);
    c->overrides = cleanup_receive_overrides(cfg);
    c->reject_unlisted = cfg_bool(cfg, "smtpd_reject_unlisted_recipient")
                         && !(c->overrides & RECEIVE_NO_UNKNOWN_RCPT);
    c->unknown_local_code = (int)cfg_int(cfg, "unknown_local_recipient_reject_code");
    if (c->unknown_local_code < 400 || c->unknown_local_code > 599)
        msg_fatal("unknown_local_recipient_reject_code must be 4xx or 5xx");
    c->mydestination = matchlist_domains(cfg, "mydestination");
    c->relay_domains = matchlist_domains(cfg, "relay_domains");
    c->mynetworks = matchlist_networks(cfg, "mynetworks");
    c->bare_lf_excl = matchlist_networks(cfg, "smtpd_forbid_bare_newline_exclusions");
    c->event_excl = matchlist_networks(cfg, "smtpd_client_event_limit_exceptions");
    c->local_rcpt = local_rcpt_open(cfg);
    if (*cfg_str(cfg, "relay_recipient_maps"))
        c->relay_rcpt = rcpt_maps_open(cfg, "relay_recipient_maps");
    c->valias = valias_open(cfg);
    c->bcc = (c->overrides & RECEIVE_NO_ADDRESS_MAPPINGS) ? NULL : bcc_open(cfg);
    c->unknown_valias_code = (int)cfg_int(cfg, "unknown_virtual_alias_reject_code");
    c->incoming_fd = spool_dir_fd(cfg, "incoming");
    c->hold_fd = spool_dir_fd(cfg, "hold");
    c->content_filter = cfg_str(cfg, "content_filter");
    /* header/body check tables may be readable by root only */
    if (!(c->overrides & RECEIVE_NO_HEADER_BODY))
        c->checks = msgcheck_conf_load(cfg);
    qcommit_init(c->incoming_fd, cfg_str(cfg, "posta_queue_sync"));
}

/* smtpd_pre_jail - before privileges are dropped: keys, settings, tables */
static void smtpd_pre_jail(struct server_ctx *ctx)
{
    mailauth_pre_jail(ctx->cfg);    /* dns_servers first; DKIM keys as root */
    if (cfg_bool(ctx->cfg, "smtpd_peername_lookup"))
        dns_init();
    /* private keys and the SASL configuration are readable by root only */
    smtpd_tls_pre_jail(ctx->cfg);
    smtpd_sasl_pre_jail(ctx->cfg);
    smtpd_load(ctx->cfg);
    policy_init(ctx->cfg);      /* every restriction list: a typo is fatal here */
    mailauth_post_jail(ctx->cfg);
}

/* smtpd_post_jail - what must run as mail_owner */
static void smtpd_post_jail(struct server_ctx *ctx)
{
    smtpd_tls_post_jail(ctx->cfg);
    smtpd_sasl_post_jail(ctx->cfg);
}

/* smtpd_accept - a new client */
static void smtpd_accept(struct server_ctx *ctx, int fd, const struct sockaddr *peer,
                         socklen_t peerlen, const struct sockaddr *local, socklen_t locallen)
{
    (void)ctx;
    session_start(fd, peer, peerlen, local, locallen);
}

/* smtpd_sessions - live sessions, for the drain */
static size_t smtpd_sessions(void)
{
    return session_count();
}

/* smtpd_stop - SIGTERM: 421 to everyone, unfinished files removed */
static void smtpd_stop(void)
{
    session_stop_all();
}

/* main - hand the hooks to the event-driven server skeleton */
int main(int argc, char **argv)
{
    static const struct event_server_hooks hooks = {
        .program = "smtpd",
        .pre_jail = smtpd_pre_jail,
        .post_jail = smtpd_post_jail,
        .accept = smtpd_accept,
        .sessions = smtpd_sessions,
        .stop = smtpd_stop,
    };

    return event_server_main(argc, argv, &hooks);
}
