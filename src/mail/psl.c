/*
 * psl.c - Public Suffix List loading and organisational-domain lookup
 *
 * Rules are kept in one open-addressing hash set of lower-case strings,
 * stored as written in the list ("co.uk", "*.ck", "!www.ck"), so a lookup
 * is a few hash probes per label of the domain.
 *
 * DIAGNOSTICS
 *	psl_get warns once when the list cannot be read and falls back to
 *	"the last two labels", which is right for .com/.org/.net and wrong
 *	for co.uk-style suffixes.
 */
#include "util/sys.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <strings.h>

#include "mail/psl.h"
#include "util/alloc.h"
#include "util/log.h"

#define PSL_FILE_MAX ((size_t)16 << 20)   /* the list is about 230 kB */
#define PSL_MIN_SLOTS 64
#define FNV_OFFSET 2166136261U
#define FNV_PRIME 16777619U
#define PSL_NAME_MAX 1024

struct psl {
    char **slot;       /* NULL = empty */
    size_t nslots;     /* a power of two */
    size_t n;
};

/* hash - FNV-1a of s[0..len) */
static uint32_t hash(const char *s, size_t len)
{
    uint32_t h = FNV_OFFSET;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= FNV_PRIME;
    }
    return h;
}

/* find_slot - the slot holding s[0..len), or the empty slot where it belongs */
static size_t find_slot(const struct psl *psl, const char *s, size_t len)
{
    size_t i = hash(s, len) & (psl->nslots - 1);

    while (psl->slot[i] != NULL
           && !(strlen(psl->slot[i]) == len && memcmp(psl->slot[i], s, len) == 0))
        i = (i + 1) & (psl->nslots - 1);
    return i;
}

/* has - the rule s[0..len) is in the set */
static bool has(const struct psl *psl, const char *s, size_t len)
{
    return psl != NULL && psl->n > 0 && psl->slot[find_slot(psl, s, len)] != NULL;
}

/* grow - double the table when half full */
static void grow(struct psl *psl)
{
    char **old = psl->slot;
    size_t oldn = psl->nslots, i;

    psl->nslots = oldn ? oldn * 2 : PSL_MIN_SLOTS;
    psl->slot = xcalloc(psl->nslots, sizeof(*psl->slot));
    for (i = 0; i < oldn; i++)
        if (old[i] != NULL)
            psl->slot[find_slot(psl, old[i], strlen(old[i]))] = old[i];
    free(old);
}

/* add - insert a rule (lower-cased) */
static void add(struct psl *psl, const char *s, size_t len)
{
    char *rule = xstrndup(s, len);
    size_t i;

    for (i = 0; i < len; i++)
        rule[i] = (char)tolower((unsigned char)rule[i]);
    if ((psl->n + 1) * 2 > psl->nslots)
        grow(psl);
    i = find_slot(psl, rule, len);
    if (psl->slot[i] != NULL) {
        free(rule);
        return;
    }
    psl->slot[i] = rule;
    psl->n++;
}

/* psl_parse - rules from the text of a list */
struct psl *psl_parse(const char *text, size_t len)
{
    struct psl *psl = xcalloc(1, sizeof(*psl));
    const char *p = text, *end = text + len, *eol, *w;

    grow(psl);
    while (p < end) {
        eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        while (p < eol && (*p == ' ' || *p == '\t'))
            p++;
        /* a rule is the first word of a line; "//" starts a comment line */
        for (w = p; w < eol && !isspace((unsigned char)*w); w++)
            ;
        if (w > p && !(w - p >= 2 && p[0] == '/' && p[1] == '/'))
            add(psl, p, (size_t)(w - p));
        p = eol + 1;
    }
    return psl;
}

/* psl_load - read a list file */
struct psl *psl_load(const char *path, const char **err)
{
    struct buf b = BUF_INIT;
    struct psl *psl;

    if (buf_read_file(&b, path, PSL_FILE_MAX) < 0) {
        *err = errno == EFBIG ? "file too large" : strerror(errno);
        buf_free(&b);
        return NULL;
    }
    psl = psl_parse(buf_str(&b), b.len);
    buf_free(&b);
    return psl;
}

static struct psl *psl_global;
static char *psl_global_path;

/* psl_get - the process-wide list, loaded on first use */
const struct psl *psl_get(const char *path)
{
    const char *err;

    if (psl_global != NULL && psl_global_path != NULL && strcmp(psl_global_path, path) == 0)
        return psl_global;
    psl_free(psl_global);
    free(psl_global_path);
    psl_global_path = xstrdup(path);
    psl_global = psl_load(path, &err);
    if (psl_global == NULL) {
        msg_warn("cannot read the public suffix list %s: %s; DMARC organisational domains "
                 "fall back to the last two labels (install the publicsuffix package)",
                 path, err);
        psl_global = xcalloc(1, sizeof(*psl_global));
        grow(psl_global);
    }
    return psl_global;
}

/* psl_free - release a list */
void psl_free(struct psl *psl)
{
    size_t i;

    if (psl == NULL)
        return;
    for (i = 0; i < psl->nslots; i++)
        free(psl->slot[i]);
    free(psl->slot);
    free(psl);
}

/* psl_rules - number of rules loaded */
size_t psl_rules(const struct psl *psl)
{
    return psl ? psl->n : 0;
}

/* psl_org_domain - the organisational domain of domain */
void psl_org_domain(const struct psl *psl, const char *domain, struct buf *out)
{
    char name[PSL_NAME_MAX + 2];
    size_t len = strlen(domain), labels = 0, i, k, ps = 1, want;
    size_t start[PSL_NAME_MAX / 2 + 1];   /* offset of the suffix with k labels */

    while (len > 0 && domain[len - 1] == '.')
        len--;
    buf_reset(out);
    if (len == 0 || len > PSL_NAME_MAX) {
        buf_append(out, domain, len);
        return;
    }
    /* name[1..] = the domain in lower case */
    name[0] = '.';
    for (i = 0; i < len; i++)
        name[i + 1] = (char)tolower((unsigned char)domain[i]);
    name[len + 1] = 0;
    /* start[k] = offset in name of the last k labels */
    start[0] = len + 1;
    for (i = len; i > 0; i--) {
        if (i == 1 || name[i - 1] == '.')
            start[++labels] = i;
    }
    if (psl != NULL && psl->n > 0) {
        for (k = 1; k <= labels; k++) {
            const char *suf = name + start[k];
            size_t slen = len + 1 - start[k];
            if (has(psl, suf, slen) && k > ps)
                ps = k;
            if (k >= 2) {
                /* "*.parent" where parent is the last k-1 labels */
                char wild[PSL_NAME_MAX + 3];
                size_t plen = len + 1 - start[k - 1];
                wild[0] = '*';
                wild[1] = '.';
                memcpy(wild + 2, name + start[k - 1], plen);
                if (has(psl, wild, plen + 2) && k > ps)
                    ps = k;
            }
        }
        for (k = labels; k >= 1; k--) {   /* exception rules override */
            char exc[PSL_NAME_MAX + 2];
            size_t slen = len + 1 - start[k];
            exc[0] = '!';
            memcpy(exc + 1, name + start[k], slen);
            if (has(psl, exc, slen + 1)) {
                ps = k - 1;
                break;
            }
        }
    }
    want = ps + 1;
    if (want > labels)
        want = labels;
    buf_append(out, name + start[want], len + 1 - start[want]);
}
