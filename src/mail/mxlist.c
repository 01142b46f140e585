/*
 * mxlist.c - the order in which to try a domain's mail exchangers
 *
 * Records are sorted by preference (ties by their position in the
 * answer, so the result depends only on rnd), then each run of equal
 * preference is shuffled (Fisher-Yates with the caller's rnd). Then the
 * first record naming this host cuts the list at its preference.
 *
 * Null MX (RFC 7505): one record with host "" is MXLIST_NULLMX; so is an
 * answer made only of such records. Mixed with real hosts a "" record
 * is ignored (the domain is misconfigured; the real hosts still work).
 * An empty answer gives MXLIST_OK with an empty list: the caller
 * handles "no MX" (RFC 5321 5.1: use the domain's own addresses) before
 * it gets here.
 *
 * DIAGNOSTICS
 *  mxlist_cut_self with an index outside the list is a panic.
 */
#include "util/sys.h"

#include <string.h>
#include <strings.h>

#include "mail/mxlist.h"
#include "util/alloc.h"
#include "util/log.h"

struct mx_sort {
    const struct dns_mx *mx;
    size_t index;                   /* position in the answer: tie-break */
};

/* sort_cmp - by preference, then by position in the answer */
static int sort_cmp(const void *a, const void *b)
{
    const struct mx_sort *x = a, *y = b;

    if (x->mx->pref != y->mx->pref)
        return x->mx->pref < y->mx->pref ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* default_rnd - random() below bound */
static unsigned default_rnd(unsigned bound)
{
    return (unsigned)((unsigned long)random() % bound);
}

/* name_len - length of s without one trailing dot */
static size_t name_len(const char *s)
{
    size_t n = strlen(s);

    return n > 0 && s[n - 1] == '.' ? n - 1 : n;
}

/* is_self - host is one of the names of this host */
static bool is_self(const char *host, const char *const *self, size_t nself)
{
    size_t n = name_len(host), i;

    if (n == 0)
        return false;
    for (i = 0; i < nself; i++) {
        if (self[i] != NULL && name_len(self[i]) == n && strncasecmp(host, self[i], n) == 0)
            return true;
    }
    return false;
}

/* is_null_host - the "." host of a Null MX */
static bool is_null_host(const char *host)
{
    return host == NULL || name_len(host) == 0;
}

/* mxlist_order - the hosts to try, in order */
enum mxlist_status mxlist_order(const struct dns_mx *mx, size_t n, const char *const *self_names,
                                size_t nself, unsigned (*rnd)(unsigned bound),
                                struct mxhost **out, size_t *nout)
{
    struct mx_sort *s;
    struct mxhost *list;
    size_t i, j, k, m = 0, start, cut;
    unsigned r;

    *out = NULL;
    *nout = 0;
    if (rnd == NULL)
        rnd = default_rnd;
    for (i = 0; i < n; i++)
        m += !is_null_host(mx[i].host);
    if (n > 0 && m == 0)
        return MXLIST_NULLMX;
    if (m == 0)
        return MXLIST_OK;

    s = xreallocarray(NULL, m, sizeof(*s));
    for (i = 0, j = 0; i < n; i++) {
        if (!is_null_host(mx[i].host)) {
            s[j].mx = &mx[i];
            s[j].index = i;
            j++;
        }
    }
    qsort(s, m, sizeof(*s), sort_cmp);
    for (start = 0; start < m; start = i) {
        for (i = start + 1; i < m && s[i].mx->pref == s[start].mx->pref; i++)
            continue;
        for (k = i - start; k > 1; k--) {
            struct mx_sort t;

            r = rnd((unsigned)k) % (unsigned)k;   /* a bad rnd must not index out */
            t = s[start + k - 1];
            s[start + k - 1] = s[start + r];
            s[start + r] = t;
        }
    }

    /* Loop avoidance: cut at the preference of the first host that is us. */
    for (cut = 0; cut < m && !is_self(s[cut].mx->host, self_names, nself); cut++)
        continue;
    if (cut < m)
        while (cut > 0 && s[cut - 1].mx->pref == s[cut].mx->pref)
            cut--;
    if (cut == 0) {
        free(s);
        return MXLIST_SELF;
    }
    list = xreallocarray(NULL, cut, sizeof(*list));
    for (i = 0; i < cut; i++) {
        list[i].host = xstrdup(s[i].mx->host);
        list[i].pref = s[i].mx->pref;
    }
    free(s);
    *out = list;
    *nout = cut;
    return MXLIST_OK;
}

/* mxlist_cut_self - host i is this host: drop it and all not better than it */
size_t mxlist_cut_self(struct mxhost *list, size_t n, size_t i)
{
    unsigned pref;
    size_t j, kept = 0;

    if (i >= n)
        msg_panic("mxlist_cut_self: index %zu outside a list of %zu", i, n);
    pref = list[i].pref;
    for (j = 0; j < n; j++) {
        if (list[j].pref < pref) {
            list[kept++] = list[j];
        } else {
            free(list[j].host);
            list[j].host = NULL;
        }
    }
    /* The tail holds moved or freed pointers: a free with the old n is safe. */
    for (j = kept; j < n; j++)
        list[j].host = NULL;
    return kept;
}

/* mxlist_free - release a list from mxlist_order */
void mxlist_free(struct mxhost *list, size_t n)
{
    size_t i;

    if (list == NULL)
        return;
    for (i = 0; i < n; i++)
        free(list[i].host);
    free(list);
}
