/*
 * authres.h - the Authentication-Results header field (RFC 8601) and
 * Received-SPF (RFC 7208 9.1)
 *
 * authres_build() writes the one Authentication-Results field that posta
 * adds at the top of a received message: spf= for MAIL FROM (and for
 * HELO when checked), one dkim= per signature, dmarc= with the policy
 * comment. authres_is_ours() recognises fields that claim our
 * authserv-id (RFC 8601 5: the receiver must remove those it did not
 * add), with comments, quoted ids and the "id 1;" version syntax.
 *
 * Output: the complete header field, folded with LF + TAB before each
 * result, ending in LF. The caller converts line ends as it stores them.
 */
#ifndef POSTA_AUTHRES_H
#define POSTA_AUTHRES_H

#include <stdbool.h>
#include <stddef.h>

#include "mail/dmarc.h"
#include "mail/spf.h"
#include "util/buf.h"

#define AUTHRES_HEADER "Authentication-Results"
#define AUTHRES_B_PREFIX 8   /* characters of b= in header.b (RFC 6008) */

struct authres_dkim {
    const char *result;      /* "pass", "fail", "neutral", "policy", "temperror", "permerror" */
    const char *domain;      /* header.d (may be NULL) */
    const char *selector;    /* header.s (may be NULL) */
    const char *b;           /* the signature's b= value (may be NULL) */
    const char *reason;      /* a short comment, or NULL */
};

struct authres {
    const char *authserv_id;
    bool spf_checked;            /* spf= for MAIL FROM */
    enum spf_result spf;
    const char *mailfrom;        /* smtp.mailfrom: the address checked */
    bool helo_checked;           /* spf= for HELO */
    enum spf_result spf_helo;
    const char *helo;            /* smtp.helo */
    bool dkim_checked;           /* dkim=none when checked and no signature */
    const struct authres_dkim *dkim;
    size_t ndkim;
    bool dmarc_checked;
    enum dmarc_result dmarc;
    enum dmarc_policy policy;        /* published policy that applied (p or sp) */
    enum dmarc_policy disposition;   /* what was done: none/quarantine/reject */
    const char *from_domain;         /* header.from */
};

/* authres_build - the Authentication-Results field (replaces out's contents) */
void authres_build(const struct authres *ar, struct buf *out);

/*
 * authres_is_ours - the field body (after "Authentication-Results:")
 * names authserv_id (case-insensitive), so we must remove it
 */
bool authres_is_ours(const char *value, size_t len, const char *authserv_id);
/*
 * authres_field_is_ours - a whole header field ("Name: value", possibly
 * folded) is an Authentication-Results field claiming authserv_id
 */
bool authres_field_is_ours(const char *field, size_t len, const char *authserv_id);

/*
 * authres_received_spf - a Received-SPF field (RFC 7208 9.1) for one
 * check: identity is "mailfrom" or "helo"; problem explains
 * temperror/permerror (may be NULL). Replaces out's contents.
 */
void authres_received_spf(enum spf_result r, const char *receiver, const char *client_ip,
                          const char *envelope_from, const char *helo, const char *identity,
                          const char *problem, struct buf *out);

#endif
