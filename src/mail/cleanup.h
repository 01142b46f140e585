/*
 * cleanup.h - header clean-up for locally submitted mail (sendmail, pickup)
 *
 * cleanup_local() turns the message a local user handed to sendmail into
 * the one that is queued, as Postfix's cleanup does for mail from pickup:
 *   - a leading mbox "From " line is removed;
 *   - "Received: by MYHOSTNAME (posta, from userid UID)\n\tid QID; DATE"
 *     is put first;
 *   - bare addresses (no '@') in From:, Sender:, Reply-To:, To:, Cc:,
 *     Bcc: and their Resent- forms get "@$myorigin";
 *   - Return-Path: and Bcc:/Resent-Bcc: headers are removed (a Bcc: must
 *     not reach the recipients);
 *   - with extract (sendmail -t) the recipients are taken from
 *     Resent-To/Cc/Bcc when the message has any Resent- header, else from
 *     To/Cc/Bcc;
 *   - missing Message-ID: <YYYYMMDDhhmmss.QID@MYHOSTNAME> (Postfix's
 *     form), Date: (the arrival time) and From: (the sender, with the
 *     full name as an RFC 5322 phrase, RFC 2047-encoded when not ASCII)
 *     are added at the end of the header.
 * The header ends at the first empty line or the first line that is not
 * a header field; in the latter case an empty line is inserted. A header
 * field longer than header_size_limit also ends the header (it and what
 * follows become body), as in Postfix.
 *
 * Input and output lines end in "\n" (the queue-file convention).
 * SECURITY: the input comes from any local user; the parser is bounded by
 * the input and the buffer limits and never trusts lengths in the text.
 */
#ifndef POSTA_CLEANUP_H
#define POSTA_CLEANUP_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "util/buf.h"

struct cleanup_info {
    const char *qid;          /* queue ID of the new message */
    time_t arrival;           /* submission time: Date:, Message-ID: */
    const char *myhostname;
    const char *myorigin;     /* domain for bare addresses */
    long long uid;            /* submitting user, for Received: */
    const char *sender;       /* envelope sender, already qualified ("" = <>) */
    const char *full_name;    /* sender's full name, or NULL/"" */
    bool extract;             /* -t: recipients from the header */
    size_t header_size_limit; /* bytes of one header field; 0: no limit */
};

struct cleanup_out {
    struct buf msg;           /* the cleaned message */
    char **rcpts;             /* extracted recipients (extract only), qualified */
    size_t nrcpts;
    bool overflow;            /* the message passed msg.max (result unusable) */
};

/*
 * cleanup_local - clean msg[0..len) into out (initialise it with
 * cleanup_out_init first); 0, or -1 when the result passes the buffer
 * maximum (out->msg.max; set it to bound the message size).
 */
int cleanup_local(const struct cleanup_info *ci, const char *msg, size_t len,
                  struct cleanup_out *out);
void cleanup_out_init(struct cleanup_out *out, size_t max);
void cleanup_out_free(struct cleanup_out *out);

/*
 * cleanup_qualify - addr with "@origin" appended when it has no '@'
 * outside a quoted string; "" (the null address) stays "". Free it.
 */
char *cleanup_qualify(const char *addr, const char *origin);

/*
 * receive_override_options (per service, e.g. the listener a content
 * filter hands mail back to): what smtpd and pickup skip for mail they
 * receive. Unknown words are fatal, naming the setting.
 */
#define RECEIVE_NO_UNKNOWN_RCPT 1u       /* no_unknown_recipient_checks */
#define RECEIVE_NO_ADDRESS_MAPPINGS 2u   /* no_address_mappings: virtual aliases, BCC */
#define RECEIVE_NO_HEADER_BODY 4u        /* no_header_body_checks */
#define RECEIVE_NO_MILTERS 8u            /* no_milters (posta has none) */
struct cfg;
unsigned cleanup_receive_overrides(struct cfg *cfg);
/*
 * cleanup_addr_list - parse an RFC 5322 address list (a header value):
 * each mailbox's addr-spec (quotes kept, white space and comments
 * removed) is passed to fn; when rewritten is not NULL the value is
 * copied there with "@origin" inserted after every bare addr-spec.
 * Groups ("name: a, b;") and obsolete routes (<@a,@b:x@y>) are handled.
 * Returns the number of addresses found.
 */
size_t cleanup_addr_list(const char *value, size_t len, const char *origin,
                         struct buf *rewritten,
                         void (*fn)(void *ctx, const char *addr), void *ctx);

#endif
