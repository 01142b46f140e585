/*
 * policy_client.h - the client side of Postfix's SMTPD access policy
 * delegation protocol (check_policy_service)
 *
 * Three pure parts, which the unit tests and the fuzz target use alone:
 * the parsing of a service's specification ("inet:host:port" or
 * "unix:path", or the braced form's inside "inet:host:port, timeout=10s,
 * ..."), the request encoder (name=value lines and an empty line, values
 * sanitised) and the reply parser ("action=..." among other attributes,
 * then an empty line). Then the runtime: one pool of connections per
 * service, driven by the event loop, reused across requests and sessions,
 * one request in flight per connection, a queue of waiting requests,
 * retries and a default action. A request's answer always comes through
 * the callback, never from inside pol_request.
 */
#ifndef POSTA_SMTPD_POLICY_CLIENT_H
#define POSTA_SMTPD_POLICY_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

struct buf;
struct cfg;
struct session;

#define POL_REPLY_MAX 8192          /* a longer reply is a protocol error */
#define POL_VALUE_MAX 4096          /* longest attribute value sent (longer: cut) */

/* pol_spec - one check_policy_service's endpoint and settings */
struct pol_spec {
    char *endpoint;                 /* "inet:127.0.0.1:10023", "unix:private/policy" */
    bool is_unix;
    char *host, *port;              /* inet: host without brackets */
    char *path;                     /* unix: as given (relative: to queue_directory) */
    unsigned timeout_ms, max_idle_ms, max_ttl_ms, retry_delay_ms;
    unsigned try_limit, request_limit;   /* request_limit 0: no limit */
    char *default_action;
    char *policy_context;
};

/*
 * pol_spec_parse - the argument of check_policy_service (a braced group
 * arrives without its braces) with main.cf's settings in defaults;
 * false + *err (malloc'ed) for a bad endpoint, an unknown attribute or a
 * bad value.
 */
bool pol_spec_parse(const char *arg, const struct pol_spec *defaults, struct pol_spec *out,
                    char **err);
void pol_spec_free(struct pol_spec *spec);
/* pol_spec_defaults - the smtpd_policy_service_* settings of cfg (endpoint unset) */
void pol_spec_defaults(struct cfg *cfg, struct pol_spec *out);

/* pol_attr - one request attribute */
struct pol_attr {
    const char *name;
    const char *value;              /* NULL: sent empty */
};

/*
 * pol_request_encode - "name=value\n" each (a CR or LF in a value becomes
 * '?', values cut at POL_VALUE_MAX), then "\n", appended to out
 */
void pol_request_encode(struct buf *out, const struct pol_attr *attrs, size_t n);

enum pol_reply_status { POL_REPLY_MORE, POL_REPLY_DONE, POL_REPLY_ERROR };

/*
 * pol_reply_parse - look at the bytes read so far: MORE (no empty line
 * yet, within POL_REPLY_MAX), DONE (action copied into *action; *used:
 * the bytes of the reply, the empty line included) or ERROR (*why: a line
 * without '=', no or an empty action, two actions, a control character
 * in the action, too long). A CR before LF is tolerated; attributes other
 * than action are ignored.
 */
enum pol_reply_status pol_reply_parse(const char *data, size_t len, struct buf *action,
                                      size_t *used, const char **why);

/* runtime */

struct pol_service;

/* pol_done_fn - the action to apply (the service's or default_action); valid during the call */
typedef void pol_done_fn(void *ctx, const char *action);

/* pol_client_init - cfg gives queue_directory for relative unix: names (read at each connect) */
void pol_client_init(struct cfg *cfg);
/* pol_service_get - the service of this spec (one per distinct argument text); spec is taken */
struct pol_service *pol_service_get(const char *arg, struct pol_spec *spec);
/* pol_service_spec - the settings of a service */
const struct pol_spec *pol_service_spec(const struct pol_service *svc);
/* pol_request - send request (copied) to svc; fn(ctx, action) is called later, exactly once */
void pol_request(struct pol_service *svc, const struct buf *request, pol_done_fn *fn, void *ctx);
/* pol_client_stats - connections opened so far and now open (tests, logs) */
void pol_client_stats(const struct pol_service *svc, unsigned long *opened, size_t *open_now);

/*
 * policy_request_build (policy_attrs.c) - the smtpd_access_policy request
 * for a session at a protocol state (HELO, EHLO, MAIL, RCPT, DATA, BDAT)
 * with the addresses of the command being judged (NULL: none)
 */
void policy_request_build(struct buf *out, const struct session *s, const char *state,
                          const char *helo, const char *sender, const char *rcpt,
                          const char *context);

#endif
