/*
 * pickup_dkim.h - DKIM signing of local submissions (pickup_dkim.c)
 */
#ifndef POSTA_PICKUP_DKIM_H
#define POSTA_PICKUP_DKIM_H

#include "util/buf.h"

struct cfg;

/* pickup_dkim_pre_jail - load dkim_signing_table and its keys (as root) */
void pickup_dkim_pre_jail(struct cfg *cfg);
/* pickup_dkim_sign - sign msg (the cleaned message) by its From domain's key, if any */
void pickup_dkim_sign(const char *qid, struct buf *msg);

#endif
