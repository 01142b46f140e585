/*
 * data_decode.h - smtpd's message content decoders for DATA and BDAT
 *
 * Pure stream decoders, no I/O: the session feeds them whatever bytes it
 * has read, in any split, and they hand decoded content to a sink. Content
 * leaves with "\n" line ends (the queue file's form).
 *
 * DATA (RFC 5321 4.1.1.4, 4.5.2): dot-unstuffing; the end of data is ONLY
 * the sequence CR LF . CR LF (the start of the data counts as following
 * CR LF). How a line that ends in a bare LF is treated depends on the mode
 * (smtpd_forbid_bare_newline):
 *   DD_BARE_LF_NORMALIZE  the line is taken as if it ended in CR LF for
 *                         the content, but a "." line that follows it, or
 *                         that itself ends in a bare LF, never ends the
 *                         data (no SMTP smuggling);
 *   DD_BARE_LF_REJECT     a bare LF stops decoding with DD_ERR_BARE_LF;
 *   DD_BARE_LF_ALLOW      (legacy "no") a bare LF is a full line end.
 * A bare CR is an ordinary byte in every mode. Lines of any length are
 * streamed: only the line-start state is remembered.
 *
 * BDAT (RFC 3030): raw bytes, no dot handling; CR LF becomes "\n" even
 * when the CR and the LF arrive in different chunks.
 */
#ifndef POSTA_SMTPD_DATA_DECODE_H
#define POSTA_SMTPD_DATA_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dd_bare_lf {
    DD_BARE_LF_NORMALIZE = 0,
    DD_BARE_LF_REJECT,
    DD_BARE_LF_ALLOW,
};

enum dd_status {
    DD_MORE = 0,        /* all input consumed, the data goes on */
    DD_END,             /* end of data seen; *used tells where it ended */
    DD_ERR_BARE_LF,     /* a bare LF in DD_BARE_LF_REJECT mode */
};

/* dd_sink_fn - receives decoded content, in order */
typedef void (*dd_sink_fn)(void *ctx, const char *p, size_t n);

struct data_decoder {
    int state;              /* private: DD_S_* */
    bool prev_crlf;         /* private: the last line ended in CR LF */
    enum dd_bare_lf mode;
    bool saw_bare_lf;       /* any bare LF seen (for logging) */
    uint64_t out_bytes;     /* content bytes handed to the sink */
    char last;              /* last byte handed to the sink (0: none) */
    dd_sink_fn sink;
    void *ctx;
};

/* dd_init - a decoder for one message (DATA or BDAT) */
void dd_init(struct data_decoder *d, enum dd_bare_lf mode, dd_sink_fn sink, void *ctx);
/*
 * dd_data_feed - decode DATA bytes p[0..n); *used is set to the number of
 * bytes consumed (all of them for DD_MORE; up to and including the final
 * LF for DD_END; up to the bad LF for DD_ERR_BARE_LF).
 */
enum dd_status dd_data_feed(struct data_decoder *d, const char *p, size_t n, size_t *used);
/* dd_bdat_feed - decode one piece of a BDAT chunk (all of it is consumed) */
void dd_bdat_feed(struct data_decoder *d, const char *p, size_t n);
/* dd_bdat_finish - after BDAT LAST: flush a held CR, end with a newline */
void dd_bdat_finish(struct data_decoder *d);

#endif
