/*
 * sendmail.h - shared between the parts of the sendmail command
 */
#ifndef POSTA_SENDMAIL_H
#define POSTA_SENDMAIL_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

struct cfg;

/* One submission, as handed to postdrop. */
struct submission {
    const char *sender;       /* as given; "" for the null sender */
    const char *full_name;    /* or NULL */
    bool extract;             /* -t */
    char **rcpts;
    size_t nrcpts;
    struct buf msg;           /* the message, lines ending in "\n" */
};

/* sm_submit - hand sub to postdrop; EX_OK once the message is queued, else a sysexits code */
int sm_submit(struct cfg *cfg, const struct submission *sub);
/* sm_addr_ok - a recipient/sender that pickup will accept (qualified with myorigin) */
bool sm_addr_ok(struct cfg *cfg, const char *addr);
/* sm_smtp - "sendmail -bs": SMTP on stdin/stdout; the exit status */
int sm_smtp(struct cfg *cfg, const char *full_name);

#endif
