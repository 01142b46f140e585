/*
 * bcc.h - always_bcc, sender_bcc_maps and recipient_bcc_maps: the blind
 * copies Postfix's cleanup adds to a message as it is queued
 *
 * always_bcc is one address for every message; sender_bcc_maps is looked
 * up by the envelope sender, recipient_bcc_maps by each envelope recipient
 * as received, in Postfix's address key order (mail/addrmap.h). A table
 * value is one address (Postfix supports no list here); a bare name gets
 * "@$myorigin". The caller adds each as a recipient with DSN NOTIFY=NEVER
 * (the sender hears nothing about the copies) and sends it through
 * virtual_alias_maps like any recipient. The null sender is not looked
 * up (always_bcc applies to it too).
 *
 * DIAGNOSTICS: a failing table is a warning (mail/addrmap.c) and the
 * message is not accepted now (the caller answers 451 4.3.0).
 */
#ifndef POSTA_BCC_H
#define POSTA_BCC_H

#include <stdbool.h>

struct cfg;
struct bcc;
struct valias_list;

/* bcc_open - the three settings; NULL when none is set */
struct bcc *bcc_open(struct cfg *cfg);
void bcc_close(struct bcc *b);
/* bcc_message - always_bcc and the sender's copy, appended to out (no duplicates); false: a table failed */
bool bcc_message(struct bcc *b, const char *sender, struct valias_list *out);
/* bcc_recipient - the copy for one recipient, appended to out (no duplicates); false: a table failed */
bool bcc_recipient(struct bcc *b, const char *rcpt, struct valias_list *out);

#endif
