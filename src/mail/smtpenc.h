/*
 * smtpenc.h - message content to SMTP DATA wire form, streaming
 *
 * Queue-file content is lines ending in "\n" (mail/qfile.h), but a
 * message may still hold stray bytes: CR LF from a local submission, a
 * bare CR, a last line without a line end. On the wire every line must
 * end in CR LF and a line starting with "." gets one more "." (RFC 5321
 * 4.5.2). The encoder turns "\r\n", "\n" and a lone "\r" each into one
 * CR LF, so no byte sequence in a stored message can end the DATA phase
 * early or start a second transaction at the next hop (SMTP smuggling).
 * A lone CR is decided when the next byte is seen, possibly in the next
 * smtp_enc_feed call.
 *
 * smtp_enc_finish ends the stream: a CR LF when the last line had none,
 * then ".\r\n" (for DATA; with dot = false, for BDAT, only the line end).
 *
 * With a line limit (smtp_line_length_limit), a line longer than that is
 * broken by inserting CR LF SPACE, as Postfix does: the next hop never
 * sees a line over the RFC 5321 limit, and a header line stays one
 * (folded) header.
 */
#ifndef POSTA_SMTPENC_H
#define POSTA_SMTPENC_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

struct smtp_enc {
    bool line_start;     /* the next byte starts a line */
    bool pending_cr;     /* a CR seen, not yet known whether LF follows */
    size_t limit;        /* longest wire line without CR LF; 0 = none */
    size_t col;          /* bytes on the current wire line */
};

#define SMTP_ENC_LIMIT_MIN 40  /* smaller limits are raised to this */

/* smtp_enc_init - a new stream without a line limit */
void smtp_enc_init(struct smtp_enc *e);
/* smtp_enc_set_limit - break lines longer than limit (0 = never) */
void smtp_enc_set_limit(struct smtp_enc *e, size_t limit);
/* smtp_enc_feed - encode in[0..n) and append the wire bytes to out */
void smtp_enc_feed(struct smtp_enc *e, const char *in, size_t n, struct buf *out);
/* smtp_enc_finish - end the last line and append ".\r\n" when dot */
void smtp_enc_finish(struct smtp_enc *e, bool dot, struct buf *out);

#endif
