/*
 * bcc.c - always_bcc, sender_bcc_maps and recipient_bcc_maps (see bcc.h)
 */
#include "util/sys.h"

#include <string.h>

#include "mail/addrmap.h"
#include "mail/bcc.h"
#include "mail/config.h"
#include "mail/valias.h"
#include "util/alloc.h"

struct bcc {
    char *always;              /* always_bcc, "" when unset */
    struct addrmap *sender;    /* sender_bcc_maps; NULL when empty */
    struct addrmap *rcpt;      /* recipient_bcc_maps; NULL when empty */
    char *origin;              /* $myorigin: for bare names */
};

/* qualified - addr with "@$myorigin" when it has no domain (malloc'ed) */
static char *qualified(const struct bcc *b, const char *addr)
{
    return strchr(addr, '@') ? xstrdup(addr) : xasprintf("%s@%s", addr, b->origin);
}

/* bcc_open - the settings; NULL when none is set */
struct bcc *bcc_open(struct cfg *cfg)
{
    struct bcc *b;
    const char *always = cfg_str(cfg, "always_bcc");
    struct addrmap *sender = addrmap_open(cfg, "sender_bcc_maps");
    struct addrmap *rcpt = addrmap_open(cfg, "recipient_bcc_maps");

    if (*always == 0 && sender == NULL && rcpt == NULL)
        return NULL;
    b = xcalloc(1, sizeof(*b));
    b->origin = xstrdup(cfg_str(cfg, "myorigin"));
    b->always = xstrdup(always);
    b->sender = sender;
    b->rcpt = rcpt;
    return b;
}

/* bcc_close - release the tables */
void bcc_close(struct bcc *b)
{
    if (b == NULL)
        return;
    addrmap_close(b->sender);
    addrmap_close(b->rcpt);
    free(b->always);
    free(b->origin);
    free(b);
}

/* lookup - the table's copy address for addr, appended to out; false: the table failed */
static bool lookup(const struct bcc *b, struct addrmap *map, const char *addr,
                   struct valias_list *out)
{
    const char *value = NULL;
    char *ext = NULL, *key, *copy;
    enum dict_result dr;

    if (map == NULL || *addr == 0)
        return true;
    key = qualified(b, addr);
    dr = addrmap_find(map, key, &value, &ext);
    free(key);
    free(ext);
    if (dr == DICT_TEMPFAIL)
        return false;
    if (dr == DICT_FOUND && *value) {
        copy = qualified(b, value);
        valias_list_add_new(out, copy);
        free(copy);
    }
    return true;
}

/* bcc_message - always_bcc and sender_bcc_maps */
bool bcc_message(struct bcc *b, const char *sender, struct valias_list *out)
{
    if (b == NULL)
        return true;
    if (*b->always) {
        char *copy = qualified(b, b->always);

        valias_list_add_new(out, copy);
        free(copy);
    }
    return sender == NULL || lookup(b, b->sender, sender, out);
}

/* bcc_recipient - recipient_bcc_maps for one recipient */
bool bcc_recipient(struct bcc *b, const char *rcpt, struct valias_list *out)
{
    if (b == NULL || rcpt == NULL)
        return true;
    return lookup(b, b->rcpt, rcpt, out);
}
