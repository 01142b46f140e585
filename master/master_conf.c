/*
 * master_conf.c - main.cf + master.cf -> the services master runs
 *
 * master_conf_load() reads both files and resolves every service: its
 * listening addresses (inet: the service name, inet_interfaces and
 * inet_protocols; unix and fifo: a path under private/ or public/ of the
 * queue directory), the program to run and its argv (see server.h), and
 * how many processes to keep. Nothing is bound here, so a reload that
 * fails to load leaves the running configuration untouched.
 *
 * master_conf_bind() opens the listeners; on a reload a listener whose
 * address is unchanged keeps its socket (same fd), so no connection
 * arriving during the reload is refused.
 *
 * HOW MANY PROCESSES: one event-driven process (smtpd, smtp, lmtp, qmgr)
 * serves many sessions at once, so maxproc caps processes, not sessions:
 * such a service gets min(maxproc, online CPUs) processes, at least one.
 * A program that handles one request at a time gets min(maxproc,
 * MASTER_SERIAL_PROCS). maxproc "-" is default_process_limit, 0 is no cap.
 *
 * POSTFIX'S CONFIGURATION: a service whose program is one of Postfix's that
 * posta does not have (cleanup, trivial-rewrite, bounce, pipe, ...) is
 * skipped with a warning naming it, and so is each main.cf setting that
 * posta accepts but does not act on: a stock Postfix main.cf and master.cf
 * start posta.
 *
 * DIAGNOSTICS: every problem is returned as one line naming the file, line
 * and service ("master.cf:3: service smtpx: unknown port name"); the
 * warnings above name file, line and service or parameter.
 */
#include "util/sys.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "mail/config.h"
#include "mail/mastercf.h"
#include "master.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/inet.h"
#include "util/log.h"

#define MASTER_CF_NAME "master.cf"
#define MAIN_CF_NAME "main.cf"
#define MASTER_SERIAL_PROCS 4          /* one-request-at-a-time programs */
#define MASTER_LISTEN_BACKLOG SOMAXCONN
#define MASTER_SOCKET_MODE 0666        /* access is decided by the folder */
#define MASTER_FIFO_MODE 0622
#define MAIN_CF_MAX ((size_t)4 << 20)  /* sanity limit on main.cf */
#define PORT_MAX 65535

/*
 * Parameters of the settings table that posta accepts but does not act on
 * (yet), with the value that matches what posta does anyway ("" none: any
 * setting is reported). Set to anything else in main.cf, each is named in
 * a warning, so an admin coming from Postfix knows it has no effect.
 */
static const struct {
    const char *name;
    const char *harmless;
} unimplemented_params[] = {
    {"always_add_missing_headers", "no"},
    {"append_dot_mydomain", "no"},
    {"canonical_maps", ""},
    {"compatibility_level", "3.6"},
    {"masquerade_domains", ""},
    {"milter_default_action", "tempfail"},
    {"non_smtpd_milters", ""},
    {"recipient_canonical_maps", ""},
    {"sender_canonical_maps", ""},
    {"smtp_tls_session_cache_database", ""},
    {"smtpd_milters", ""},
    {"unknown_virtual_mailbox_reject_code", "550"},
    {"virtual_mailbox_base", ""},
    {"virtual_mailbox_domains", ""},
    {"virtual_mailbox_maps", ""},
    {"virtual_transport", "virtual"},
};

/* Programs that serve many sessions in one process (see the header). */
static const char *const event_driven_commands[] = {"smtpd", "smtp", "lmtp", "qmgr"};

/* An address family enabled by inet_protocols. */
struct families {
    bool v4;
    bool v6;
};

/* A host to listen on: numeric text ("" = wildcard) and its family. */
struct lhost {
    char *host;
    int family;
};

/* is_event_driven - does command serve many sessions per process? */
static bool is_event_driven(const char *command)
{
    for (size_t i = 0; i < POSTA_ARRAY_LEN(event_driven_commands); i++)
        if (strcmp(command, event_driven_commands[i]) == 0)
            return true;
    return false;
}

/* warn_unimplemented - name each main.cf setting posta does not act on */
static void warn_unimplemented(struct cfg *cfg)
{
    for (size_t i = 0; i < POSTA_ARRAY_LEN(unimplemented_params); i++) {
        const char *name = unimplemented_params[i].name;
        const char *file = NULL;
        const char *raw;
        int line = 0;

        if (!cfg_is_set(cfg, name))
            continue;
        raw = cfg_raw(cfg, name, &file, &line);
        if (*raw == 0 || strcasecmp(cfg_str(cfg, name), unimplemented_params[i].harmless) == 0)
            continue;
        msg_warn("%s, line %d: parameter %s is not implemented by posta (ignored)",
                 file ? file : MAIN_CF_NAME, line, name);
    }
}

/* online_cpus - processors online, at least 1 */
static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n < 1 ? 1 : n > INT32_MAX ? INT32_MAX : (int)n;
}

/* read_main_cf - load DIR/main.cf without dying on a bad value */
static struct cfg *read_main_cf(const char *config_dir, char **err)
{
    char *path = xasprintf("%s/%s", config_dir, MAIN_CF_NAME);
    struct buf text;
    struct cfg *cfg = NULL;
    char chunk[8192];
    ssize_t n;
    int fd;

    buf_init(&text, MAIN_CF_MAX);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *err = xasprintf("open %s: %s", path, strerror(errno));
        goto out;
    }
    while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *err = xasprintf("read %s: %s", path, strerror(errno));
            break;
        }
        if (buf_append(&text, chunk, (size_t)n) < 0) {
            *err = xasprintf("%s: file too large", path);
            break;
        }
    }
    close(fd);
    if (*err == NULL)
        cfg = cfg_load_string(buf_str(&text), text.len, path, err);
    if (cfg == NULL && *err == NULL)
        *err = xasprintf("%s: cannot be loaded", path);
out:
    buf_free(&text);
    free(path);
    return cfg;
}

/* ipv6_available - can this host make IPv6 sockets at all? */
static bool ipv6_available(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return false;
    close(fd);
    return true;
}

/* parse_protocols - inet_protocols -> families; false + *err */
static bool parse_protocols(struct cfg *cfg, struct families *fam, char **err)
{
    size_t n;
    char **list = cfg_list(cfg, "inet_protocols", &n);
    bool ok = true;

    fam->v4 = fam->v6 = false;
    for (size_t i = 0; i < n && ok; i++) {
        if (strcasecmp(list[i], "all") == 0) {
            fam->v4 = true;
            fam->v6 = ipv6_available();
        } else if (strcasecmp(list[i], "ipv4") == 0) {
            fam->v4 = true;
        } else if (strcasecmp(list[i], "ipv6") == 0) {
            fam->v6 = true;
        } else {
            *err = xasprintf("inet_protocols: unknown protocol \"%s\" "
                             "(all, ipv4, ipv6)", list[i]);
            ok = false;
        }
    }
    if (ok && !fam->v4 && !fam->v6) {
        *err = xasprintf("inet_protocols: no protocol enabled");
        ok = false;
    }
    cfg_list_free(list, n);
    return ok;
}

/* add_host - append a host unless already there */
static void add_host(struct lhost **hosts, size_t *n, const char *host, int family)
{
    for (size_t i = 0; i < *n; i++)
        if ((*hosts)[i].family == family && strcmp((*hosts)[i].host, host) == 0)
            return;
    *hosts = xreallocarray(*hosts, *n + 1, sizeof(**hosts));
    (*hosts)[*n].host = xstrdup(host);
    (*hosts)[*n].family = family;
    (*n)++;
}

/* free_hosts - release a host list */
static void free_hosts(struct lhost *hosts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(hosts[i].host);
    free(hosts);
}

/* add_loopback - 127.0.0.1 and/or ::1 */
static void add_loopback(struct lhost **hosts, size_t *n, const struct families *fam)
{
    if (fam->v4)
        add_host(hosts, n, "127.0.0.1", AF_INET);
    if (fam->v6)
        add_host(hosts, n, "::1", AF_INET6);
}

/* resolve_host - a name or literal -> numeric hosts of enabled families */
static bool resolve_host(const char *name, const struct families *fam,
                         struct lhost **hosts, size_t *n, char **err)
{
    struct addrinfo hints, *res = NULL;
    size_t before = *n;
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = fam->v4 && fam->v6 ? AF_UNSPEC : fam->v4 ? AF_INET : AF_INET6;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    rc = getaddrinfo(name, NULL, &hints, &res);
    if (rc != 0) {
        *err = xasprintf("host \"%s\": %s", name,
                         rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return false;
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        char text[INET_ADDR_MAX];

        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        add_host(hosts, n, sockaddr_text(ai->ai_addr, ai->ai_addrlen, text), ai->ai_family);
    }
    freeaddrinfo(res);
    if (*n == before) {
        *err = xasprintf("host \"%s\": no address of an enabled protocol "
                         "(inet_protocols)", name);
        return false;
    }
    return true;
}

/* strip_brackets - "[::1]" -> "::1" (fresh copy) */
static char *strip_brackets(const char *s)
{
    size_t len = strlen(s);

    if (len >= 2 && s[0] == '[' && s[len - 1] == ']')
        return xstrndup(s + 1, len - 2);
    return xstrdup(s);
}

/* interface_hosts - inet_interfaces -> hosts; false + *err */
static bool interface_hosts(struct cfg *cfg, const struct families *fam,
                            struct lhost **hosts, size_t *nhosts, char **err)
{
    size_t n;
    char **list = cfg_list(cfg, "inet_interfaces", &n);
    bool ok = true;

    for (size_t i = 0; i < n && ok; i++) {
        if (strcasecmp(list[i], "all") == 0) {
            if (fam->v4)
                add_host(hosts, nhosts, "", AF_INET);
            if (fam->v6)
                add_host(hosts, nhosts, "", AF_INET6);
        } else if (strcasecmp(list[i], "loopback-only") == 0
                   || strcasecmp(list[i], "localhost") == 0) {
            add_loopback(hosts, nhosts, fam);
        } else {
            char *h = strip_brackets(list[i]);
            char *why = NULL;

            ok = resolve_host(h, fam, hosts, nhosts, &why);
            if (!ok) {
                *err = xasprintf("inet_interfaces: %s", why);
                free(why);
            }
            free(h);
        }
    }
    if (ok && *nhosts == 0) {
        *err = xasprintf("inet_interfaces: no address to listen on");
        ok = false;
    }
    cfg_list_free(list, n);
    return ok;
}

/* resolve_port - "25" or "smtp" -> numeric text; NULL if unknown */
static char *resolve_port(const char *port)
{
    if (*port && strspn(port, "0123456789") == strlen(port)) {
        long v = strtol(port, NULL, 10);

        if (v < 1 || v > PORT_MAX || strlen(port) > 5)
            return NULL;
        return xasprintf("%ld", v);
    } else {
        struct servent *se = getservbyname(port, "tcp");

        return se ? xasprintf("%d", ntohs((uint16_t)se->s_port)) : NULL;
    }
}

/* add_listener - append one listener to a service */
static struct mlistener *add_listener(struct mservice *svc)
{
    struct mlistener *l;

    svc->listen = xreallocarray(svc->listen, svc->nlisten + 1, sizeof(*svc->listen));
    l = &svc->listen[svc->nlisten++];
    memset(l, 0, sizeof(*l));
    l->fd = -1;
    return l;
}

/* inet_listeners - the listeners of an inet service; false + *err */
static bool inet_listeners(struct mconfig *conf, struct mservice *svc,
                           const struct families *fam, char **err)
{
    const char *name = svc->name;
    const char *colon = strrchr(name, ':');
    struct lhost *hosts = NULL;
    size_t nhosts = 0;
    char *port;
    bool ok = true;

    if (colon == NULL) {
        port = resolve_port(name);
        if (port && !interface_hosts(conf->cfg, fam, &hosts, &nhosts, err))
            ok = false;
    } else {
        char *host = xstrndup(name, (size_t)(colon - name));
        char *bare = strip_brackets(host);

        port = resolve_port(colon + 1);
        if (host[0] != '[' && strchr(host, ':')) {
            *err = xasprintf("write an IPv6 address as [address]:port");
            ok = false;
        } else if (port == NULL) {
            ok = true;  /* reported below */
        } else if (*bare == 0 || strcmp(bare, "*") == 0) {
            if (fam->v4)
                add_host(&hosts, &nhosts, "", AF_INET);
            if (fam->v6)
                add_host(&hosts, &nhosts, "", AF_INET6);
        } else {
            ok = resolve_host(bare, fam, &hosts, &nhosts, err);
        }
        free(bare);
        free(host);
    }
    if (ok && port == NULL) {
        *err = xasprintf("unknown port or service name (see /etc/services)");
        ok = false;
    }
    for (size_t i = 0; ok && i < nhosts; i++) {
        struct mlistener *l = add_listener(svc);

        l->host = xstrdup(hosts[i].host);
        l->port = xstrdup(port);
        l->family = hosts[i].family;
        l->key = xasprintf(l->family == AF_INET6 ? "inet:[%s]:%s" : "inet:%s:%s",
                           *l->host ? l->host : l->family == AF_INET6 ? "::" : "0.0.0.0",
                           port);
    }
    free_hosts(hosts, nhosts);
    free(port);
    return ok;
}

/* path_listener - the socket or fifo of a unix/fifo service */
static bool path_listener(struct mconfig *conf, struct mservice *svc, char **err)
{
    struct mlistener *l;

    if (strchr(svc->name, '/') || strcmp(svc->name, ".") == 0
        || strcmp(svc->name, "..") == 0) {
        *err = xasprintf("a %s service name must not contain '/'", svc->type);
        return false;
    }
    l = add_listener(svc);
    l->path = xasprintf("%s/%s/%s", conf->queue_dir,
                        svc->private_ ? "private" : "public", svc->name);
    l->key = xasprintf("%s:%s", svc->type, l->path);
    return true;
}

/* process_count - how many processes a service keeps (see the header) */
static int process_count(struct cfg *cfg, const struct master_service *ms)
{
    long long limit = ms->maxproc < 0 ? cfg_int(cfg, "default_process_limit")
                                      : ms->maxproc;
    long long want = is_event_driven(ms->command) ? online_cpus() : MASTER_SERIAL_PROCS;

    if (limit > 0 && limit < want)
        want = limit;
    return want < 1 ? 1 : (int)want;
}

/* build_argv - PROGRAM -c DIR -n SERVICE -t TYPE -s N [-o ..] [args] [-r] [-u] */
static void build_argv(struct mconfig *conf, struct mservice *svc,
                       const struct master_service *ms)
{
    size_t max = 16 + 2 * ms->nopts + ms->nargs;
    char **argv = xcalloc(max, sizeof(char *));
    size_t n = 0;

    argv[n++] = xstrdup(ms->command);
    argv[n++] = xstrdup("-c");
    argv[n++] = xstrdup(conf->config_dir);
    argv[n++] = xstrdup("-n");
    argv[n++] = xstrdup(ms->name);
    argv[n++] = xstrdup("-t");
    argv[n++] = xstrdup(ms->type);
    argv[n++] = xstrdup("-s");
    argv[n++] = xasprintf("%zu", svc->nlisten);
    for (size_t i = 0; i < ms->nopts; i++) {
        argv[n++] = xstrdup("-o");
        argv[n++] = xasprintf("%s=%s", ms->opts[i].name, ms->opts[i].value);
    }
    for (size_t i = 0; i < ms->nargs; i++)
        argv[n++] = xstrdup(ms->args[i]);
    if (ms->chroot)
        argv[n++] = xstrdup("-r");
    if (ms->unpriv)
        argv[n++] = xstrdup("-u");
    if (master_verbose)
        argv[n++] = xstrdup("-v");
    argv[n] = NULL;
    svc->argv = argv;
}

/* add_service - resolve one master.cf entry; false + *err */
static bool add_service(struct mconfig *conf, const struct master_service *ms,
                        const struct families *fam, char **err)
{
    struct mservice *svc;
    char *why = NULL;
    bool ok = true;

    if (master_cf_postfix_only(ms->command)) {
        char *path = xasprintf("%s/%s", conf->daemon_dir, ms->command);
        bool have = access(path, X_OK) == 0;

        free(path);
        if (!have) {
            msg_warn("%s, line %d: service %s: program %s is not part of posta "
                     "(its work is done elsewhere): ignored",
                     ms->file ? ms->file : MASTER_CF_NAME, ms->line, ms->name,
                     ms->command);
            return true;
        }
    }
    conf->svc = xreallocarray(conf->svc, conf->nsvc + 1, sizeof(*conf->svc));
    svc = &conf->svc[conf->nsvc++];
    memset(svc, 0, sizeof(*svc));
    svc->name = xstrdup(ms->name);
    svc->type = xstrdup(ms->type);
    svc->command = xstrdup(ms->command);
    svc->path = xasprintf("%s/%s", conf->daemon_dir, ms->command);
    svc->private_ = ms->private_;
    svc->wakeup = ms->wakeup;
    svc->conf = conf;
    event_timer_setup(&svc->throttle_timer, NULL, svc);
    event_timer_setup(&svc->wakeup_timer, NULL, svc);

    if (strcmp(ms->type, "inet") == 0)
        ok = inet_listeners(conf, svc, fam, &why);
    else if (strcmp(ms->type, "unix") == 0 || strcmp(ms->type, "fifo") == 0)
        ok = path_listener(conf, svc, &why);
    else {
        why = xasprintf("service type \"%s\" is not supported (inet, unix, fifo)", ms->type);
        ok = false;
    }
    if (ok && (strchr(ms->command, '/') || *ms->command == 0)) {
        why = xasprintf("command \"%s\" must be a program name in daemon_directory",
                        ms->command);
        ok = false;
    }
    if (ok && access(svc->path, X_OK) < 0) {
        why = xasprintf("cannot execute %s: %s", svc->path, strerror(errno));
        ok = false;
    }
    if (!ok) {
        *err = xasprintf("%s:%d: service %s: %s", ms->file ? ms->file : MASTER_CF_NAME,
                         ms->line, ms->name, why);
        free(why);
        return false;
    }
    svc->nproc = process_count(conf->cfg, ms);
    build_argv(conf, svc, ms);
    return true;
}

/* check_duplicates - no two services may share an address */
static bool check_duplicates(struct mconfig *conf, char **err)
{
    for (size_t a = 0; a < conf->nsvc; a++)
        for (size_t i = 0; i < conf->svc[a].nlisten; i++)
            for (size_t b = a; b < conf->nsvc; b++)
                for (size_t j = b == a ? i + 1 : 0; j < conf->svc[b].nlisten; j++)
                    if (strcmp(conf->svc[a].listen[i].key, conf->svc[b].listen[j].key) == 0) {
                        *err = xasprintf("%s: services %s and %s both use %s",
                                         MASTER_CF_NAME, conf->svc[a].name,
                                         conf->svc[b].name, conf->svc[a].listen[i].key);
                        return false;
                    }
    return true;
}

/* master_conf_load - read and check everything; NULL + *err on a problem */
struct mconfig *master_conf_load(const char *config_dir, char **err)
{
    struct mconfig *conf = xcalloc(1, sizeof(*conf));
    struct master_cf mcf = {NULL, 0};
    struct families fam;
    char *path;
    bool ok;

    *err = NULL;
    conf->config_dir = xstrdup(config_dir);
    conf->cfg = read_main_cf(config_dir, err);
    if (conf->cfg == NULL) {
        master_conf_free(conf);
        return NULL;
    }
    warn_unimplemented(conf->cfg);
    conf->queue_dir = xstrdup(cfg_str(conf->cfg, "queue_directory"));
    conf->daemon_dir = xstrdup(cfg_str(conf->cfg, "daemon_directory"));
    if (conf->queue_dir[0] != '/' || conf->daemon_dir[0] != '/') {
        *err = xasprintf("%s/%s: queue_directory and daemon_directory must be "
                         "absolute paths", config_dir, MAIN_CF_NAME);
        master_conf_free(conf);
        return NULL;
    }
    path = xasprintf("%s/%s", config_dir, MASTER_CF_NAME);
    ok = master_cf_load(path, &mcf, err);
    free(path);
    if (ok)
        ok = parse_protocols(conf->cfg, &fam, err);
    for (size_t i = 0; ok && i < mcf.n; i++)
        ok = add_service(conf, &mcf.svc[i], &fam, err);
    if (ok && conf->nsvc == 0) {
        *err = xasprintf("%s/%s: no service defined", config_dir, MASTER_CF_NAME);
        ok = false;
    }
    if (ok)
        ok = check_duplicates(conf, err);
    master_cf_free(&mcf);
    if (!ok) {
        if (*err == NULL)
            *err = xasprintf("%s/%s: cannot be loaded", config_dir, MASTER_CF_NAME);
        master_conf_free(conf);
        return NULL;
    }
    return conf;
}

/* open_listener - bind one listener; false + *err */
static bool open_listener(struct mservice *svc, struct mlistener *l, char **err)
{
    if (strcmp(svc->type, "inet") == 0) {
        l->fd = inet_listen(l->host, l->port, l->family, MASTER_LISTEN_BACKLOG, err);
    } else if (strcmp(svc->type, "unix") == 0) {
        l->fd = unix_listen(l->path, MASTER_LISTEN_BACKLOG, MASTER_SOCKET_MODE, err);
    } else {
        if (unlink(l->path) < 0 && errno != ENOENT) {
            *err = xasprintf("remove %s: %s", l->path, strerror(errno));
            return false;
        }
        if (mkfifo(l->path, MASTER_FIFO_MODE) < 0 || chmod(l->path, MASTER_FIFO_MODE) < 0) {
            *err = xasprintf("mkfifo %s: %s", l->path, strerror(errno));
            return false;
        }
        /* O_RDWR: the fifo never reports end-of-file to its readers. */
        l->fd = open(l->path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (l->fd < 0)
            *err = xasprintf("open %s: %s", l->path, strerror(errno));
    }
    return l->fd >= 0;
}

/* find_old - the old listener with the same key and an open socket */
static struct mlistener *find_old(struct mconfig *old, const char *key)
{
    if (old == NULL)
        return NULL;
    for (size_t s = 0; s < old->nsvc; s++)
        for (size_t i = 0; i < old->svc[s].nlisten; i++)
            if (old->svc[s].listen[i].fd >= 0 && strcmp(old->svc[s].listen[i].key, key) == 0)
                return &old->svc[s].listen[i];
    return NULL;
}

/* master_conf_bind - open listeners, reusing old's with the same key */
bool master_conf_bind(struct mconfig *conf, struct mconfig *old, char **err)
{
    *err = NULL;
    /* Bind the new addresses first: on failure nothing is taken from old. */
    for (size_t s = 0; s < conf->nsvc && *err == NULL; s++) {
        struct mservice *svc = &conf->svc[s];

        for (size_t i = 0; i < svc->nlisten; i++) {
            struct mlistener *l = &svc->listen[i];

            if (find_old(old, l->key))
                continue;
            if (!open_listener(svc, l, err))
                break;
            msg_verbose("service %s: listening on %s", svc->name, l->key);
        }
    }
    if (*err) {
        for (size_t s = 0; s < conf->nsvc; s++)
            for (size_t i = 0; i < conf->svc[s].nlisten; i++) {
                struct mlistener *l = &conf->svc[s].listen[i];

                if (l->fd >= 0) {
                    close(l->fd);
                    l->fd = -1;
                    if (l->path)
                        (void)unlink(l->path);
                }
            }
        return false;
    }
    for (size_t s = 0; s < conf->nsvc; s++)
        for (size_t i = 0; i < conf->svc[s].nlisten; i++) {
            struct mlistener *l = &conf->svc[s].listen[i];
            struct mlistener *o;

            if (l->fd < 0 && (o = find_old(old, l->key)) != NULL) {
                l->fd = o->fd;
                o->fd = -1;
                msg_verbose("service %s: keeping %s", conf->svc[s].name, l->key);
            }
        }
    return true;
}

/* master_conf_free - close remaining listeners, free everything */
void master_conf_free(struct mconfig *conf)
{
    if (conf == NULL)
        return;
    for (size_t s = 0; s < conf->nsvc; s++) {
        struct mservice *svc = &conf->svc[s];

        event_timer_disarm(&svc->throttle_timer);
        event_timer_disarm(&svc->wakeup_timer);
        for (size_t i = 0; i < svc->nlisten; i++) {
            struct mlistener *l = &svc->listen[i];

            if (l->fd >= 0) {
                close(l->fd);
                if (l->path)
                    (void)unlink(l->path);
            }
            free(l->key);
            free(l->host);
            free(l->port);
            free(l->path);
        }
        free(svc->listen);
        for (size_t i = 0; svc->argv && svc->argv[i]; i++)
            free(svc->argv[i]);
        free(svc->argv);
        free(svc->name);
        free(svc->type);
        free(svc->command);
        free(svc->path);
    }
    free(conf->svc);
    if (conf->cfg)
        cfg_free(conf->cfg);
    free(conf->config_dir);
    free(conf->queue_dir);
    free(conf->daemon_dir);
    free(conf);
}
