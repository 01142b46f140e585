/*
 * policy_attrs.c - the attributes of an smtpd_access_policy request, as
 * Postfix's SMTP server sends them to a check_policy_service server
 *
 * What posta knows is filled in; what it does not know (client
 * certificates, ETRN, stress) is sent empty, as Postfix does when it
 * has no value. reverse_client_name is the verified client name (posta
 * keeps no unverified one). recipient_count is non-zero only at DATA/BDAT;
 * there "recipient" is sent only when the message has one recipient.
 * instance is the same for every request about one message of a session.
 *
 * SECURITY: the values come from the client (HELO name, addresses, SASL
 * name): pol_request_encode turns any CR or LF into '?'.
 */
#include "util/sys.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/tls.h"

#include "policy_client.h"
#include "smtpd.h"

#define NUM_MAX 32           /* decimal text of a number */

/* policy_request_build - the request for a session at a protocol state */
void policy_request_build(struct buf *out, const struct session *s, const char *state,
                          const char *helo, const char *sender, const char *rcpt,
                          const char *context)
{
    bool eod = strcmp(state, "END-OF-MESSAGE") == 0;
    bool data = eod || strcmp(state, "DATA") == 0 || strcmp(state, "BDAT") == 0;
    char count[NUM_MAX], size[NUM_MAX], instance[NUM_MAX * 2], keysize[NUM_MAX];
    char saddr[INET_ADDR_MAX + 8], *semi;
    const char *sport = "";
    const char *proto = "", *cipher = "";
    bool auth = session_authenticated(s);

    snprintf(count, sizeof(count), "%zu", data ? s->nrcpt : (size_t)0);
    /* at the end of the content, its size; before, what SIZE= declared */
    if (eod)
        snprintf(size, sizeof(size), "%llu", (unsigned long long)s->dd.out_bytes);
    else
        snprintf(size, sizeof(size), "%lld", s->decl_size > 0 ? s->decl_size : 0LL);
    /* one message of one session: pid, socket, client port, transactions so far */
    snprintf(instance, sizeof(instance), "%x.%x.%s.%u", (unsigned)getpid(), (unsigned)s->fd,
             s->port, s->counts[V_MAIL][0]);
    snprintf(saddr, sizeof(saddr), "%s", s->local);
    if ((semi = strchr(saddr, ';')) != NULL) {
        *semi = 0;
        sport = semi + 1;
    }
    keysize[0] = 0;
    if (s->tls_ready && s->tls != NULL) {
        proto = tls_protocol(s->tls);
        cipher = tls_cipher_name(s->tls);
        snprintf(keysize, sizeof(keysize), "%d", tls_cipher_bits(s->tls, NULL));
    }
    if (data && rcpt == NULL && s->nrcpt == 1)
        rcpt = s->rcpts[0].addr;
    {
        const struct pol_attr attrs[] = {
            {"request", "smtpd_access_policy"},
            {"protocol_state", state},
            {"protocol_name", s->esmtp ? "ESMTP" : "SMTP"},
            {"helo_name", helo},
            {"queue_id", s->sender != NULL ? s->qid : ""},
            {"sender", sender},
            {"recipient", rcpt},
            {"recipient_count", count},
            {"client_address", s->addr},
            {"client_name", s->name},
            {"reverse_client_name", s->name},
            {"instance", instance},
            {"sasl_method", auth ? s->sasl_method : NULL},
            {"sasl_username", auth ? s->sasl_username : NULL},
            {"sasl_sender", NULL},
            {"size", size},
            {"ccert_subject", NULL},
            {"ccert_issuer", NULL},
            {"ccert_fingerprint", NULL},
            {"ccert_pubkey_fingerprint", NULL},
            {"encryption_protocol", proto},
            {"encryption_cipher", cipher},
            {"encryption_keysize", keysize},
            {"etrn_domain", NULL},
            {"stress", NULL},
            {"client_port", s->port},
            {"policy_context", context},
            {"server_address", saddr},
            {"server_port", sport},
        };

        pol_request_encode(out, attrs, sizeof(attrs) / sizeof(attrs[0]));
    }
}
