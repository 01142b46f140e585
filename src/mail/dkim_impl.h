/*
 * dkim_impl.h - what the DKIM modules share privately (not an interface)
 *
 * A message's header fields as a list, the choice of fields that h=
 * names (from the bottom, each instance once, missing ones hash as
 * nothing: oversigning), and base64 output.
 */
#ifndef POSTA_DKIM_IMPL_H
#define POSTA_DKIM_IMPL_H

#include <stddef.h>

#include "mail/dkim.h"

struct buf;

#define DKIM_SHA256_LEN 32
#define DKIM_SIG_HEADER "DKIM-Signature"

struct dkim_field {
    char *text;     /* the whole field, folded lines included, no final line end */
    size_t len;
    char *name;     /* lower case, white space before ':' removed */
};

struct dkim_fields {
    struct dkim_field *f;
    size_t n;
};

/* dkim_fields_collect - the fields of a header block, in order */
void dkim_fields_collect(struct dkim_fields *fs, const char *hdr, size_t len);
void dkim_fields_free(struct dkim_fields *fs);
/* dkim_hash_headers - the canonical form of the fields h names, in h order */
void dkim_hash_headers(const struct dkim_fields *fs, char *const *h, size_t nh,
                       enum dkim_canon c, struct buf *out);
/* dkim_b64 - base64 of p, appended to out */
void dkim_b64(const unsigned char *p, size_t n, struct buf *out);

#endif
