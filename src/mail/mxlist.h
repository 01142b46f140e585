/*
 * mxlist.h - the order in which to try a domain's mail exchangers
 *
 * mxlist_order sorts MX records by preference, lowest first, and puts
 * records of equal preference in random order (RFC 5321 5.1), then
 * applies loop avoidance against this host's names: when an MX host is
 * one of ours (a name in self_names, compared case-insensitively and
 * without a trailing dot), that record and every record with an equal or
 * higher preference are dropped, since the mail would come back to us.
 * The caller repeats the check with addresses (mxlist_cut_self) once it
 * knows them.
 *
 * A single record with preference any and host "" (a "." MX) is a Null
 * MX (RFC 7505): the domain accepts no mail.
 */
#ifndef POSTA_MXLIST_H
#define POSTA_MXLIST_H

#include <stdbool.h>
#include <stddef.h>

#include "util/dns.h"

enum mxlist_status {
    MXLIST_OK,       /* *out holds at least one host */
    MXLIST_NULLMX,   /* RFC 7505: bounce with 5.1.10 */
    MXLIST_SELF,     /* we are the best MX: "mail for X loops back to myself" */
};

struct mxhost {
    char *host;
    unsigned pref;
};

/*
 * mxlist_order - the hosts to try, in order (*out: free with
 * mxlist_free). rnd returns a uniformly random number below its
 * argument (tests pass a deterministic one; NULL uses random()).
 */
enum mxlist_status mxlist_order(const struct dns_mx *mx, size_t n, const char *const *self_names,
                                size_t nself, unsigned (*rnd)(unsigned bound),
                                struct mxhost **out, size_t *nout);
/*
 * mxlist_cut_self - host i of list turned out to be this host (by
 * address): drop it and every host with an equal or higher preference.
 * Returns the new length (0 means MXLIST_SELF).
 */
size_t mxlist_cut_self(struct mxhost *list, size_t n, size_t i);
void mxlist_free(struct mxhost *list, size_t n);

#endif
