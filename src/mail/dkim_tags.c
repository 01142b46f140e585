/*
 * dkim_tags.c - DKIM tag lists: DKIM-Signature values and key records
 *
 * The tag-list grammar of RFC 6376 section 3.2: "name = value" pairs
 * separated by ';', folding white space allowed around names, '=' and
 * values and inside values. A tag given twice, a name that is not
 * ALPHA *(ALPHA / DIGIT / "_"), or a value with a character outside
 * VALCHAR is a syntax error. Unknown tags are ignored, as required.
 *
 * DIAGNOSTICS
 *   Parsers return -1 with a short static explanation in *why.
 * SECURITY
 *   Input comes from the network (headers) and DNS (key records). No
 *   recursion, all lengths bounded by the input; fuzzed by
 *   fuzz/fuzz_dkim_tags.c.
 */
#include "util/sys.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "mail/dkim.h"
#include "util/alloc.h"
#include "util/buf.h"

#define TAGS_MAX 64              /* distinct tags in one list */
#define TAG_NAME_MAX 32
#define SHA256_LEN 32
#define DKIM_NUM_DIGITS_MAX 18   /* t=, x=: fits int64 */
#define B64_BITS 6
#define BYTE_BITS 8

struct tag {
    const char *name;
    size_t nlen;
    const char *val;
    size_t vlen;
};

struct taglist {
    struct tag t[TAGS_MAX];
    size_t n;
};

/* is_fws - white space that may appear in a folded value */
static bool is_fws(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* is_valchar - VALCHAR (%x21-3A / %x3C-7E), 8-bit text tolerated */
static bool is_valchar(int c)
{
    return (c >= 0x21 && c <= 0x7e && c != ';') || c >= 0x80;
}

/* tags_parse - split value into tags; -1 + *why on bad syntax or a duplicate */
static int tags_parse(const char *s, size_t len, struct taglist *tl, const char **why)
{
    size_t i = 0, start, end, j;

    tl->n = 0;
    while (i < len) {
        /* one tag-spec: up to the next ';' or the end */
        start = i;
        while (i < len && s[i] != ';')
            i++;
        end = i;
        if (i < len)
            i++;  /* the ';' */
        while (start < end && is_fws((unsigned char)s[start]))
            start++;
        while (end > start && is_fws((unsigned char)s[end - 1]))
            end--;
        if (start == end) {
            /* an empty tag-spec is only allowed as a trailing ';' */
            size_t k = i;
            while (k < len && is_fws((unsigned char)s[k]))
                k++;
            if (k < len) {
                *why = "empty tag";
                return -1;
            }
            continue;
        }
        const char *eq = memchr(s + start, '=', end - start);
        if (eq == NULL) {
            *why = "tag without \"=\"";
            return -1;
        }
        size_t nend = (size_t)(eq - s), vstart = nend + 1;
        while (nend > start && is_fws((unsigned char)s[nend - 1]))
            nend--;
        while (vstart < end && is_fws((unsigned char)s[vstart]))
            vstart++;
        if (nend == start || nend - start > TAG_NAME_MAX || !isalpha((unsigned char)s[start])) {
            *why = "bad tag name";
            return -1;
        }
        for (j = start; j < nend; j++) {
            if (!isalnum((unsigned char)s[j]) && s[j] != '_') {
                *why = "bad tag name";
                return -1;
            }
        }
        for (j = vstart; j < end; j++) {
            unsigned char c = (unsigned char)s[j];
            if (!is_valchar(c) && !is_fws(c)) {
                *why = "bad character in tag value";
                return -1;
            }
        }
        for (j = 0; j < tl->n; j++) {
            if (tl->t[j].nlen == nend - start && memcmp(tl->t[j].name, s + start, nend - start) == 0) {
                *why = "duplicate tag";
                return -1;
            }
        }
        if (tl->n == TAGS_MAX) {
            *why = "too many tags";
            return -1;
        }
        tl->t[tl->n].name = s + start;
        tl->t[tl->n].nlen = nend - start;
        tl->t[tl->n].val = s + vstart;
        tl->t[tl->n].vlen = end - vstart;
        tl->n++;
    }
    return 0;
}

/* tag_find - the tag called name, or NULL */
static const struct tag *tag_find(const struct taglist *tl, const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < tl->n; i++)
        if (tl->t[i].nlen == n && memcmp(tl->t[i].name, name, n) == 0)
            return &tl->t[i];
    return NULL;
}

/* tag_is - the value equals text exactly (case-sensitive, as RFC 6376 says) */
static bool tag_is(const struct tag *t, const char *text)
{
    return t->vlen == strlen(text) && memcmp(t->val, text, t->vlen) == 0;
}

/* b64_val - value of a base64 character, -1 if none */
static int b64_val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/*
 * b64_decode - base64 with folding white space inside; the text without
 * white space into *text (if not NULL). -1 if malformed.
 */
static int b64_decode(const char *s, size_t len, unsigned char **out, size_t *olen, char **text)
{
    struct buf clean = BUF_INIT;
    unsigned char *o;
    size_t i, n = 0, pad = 0, chars;
    unsigned acc = 0;
    int bits = 0, v;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_fws(c))
            continue;
        if (c == '=') {
            pad++;
        } else if (pad > 0 || b64_val(c) < 0) {
            buf_free(&clean);
            return -1;
        }
        buf_putc(&clean, c);
    }
    chars = clean.len;
    if (chars % 4 != 0 || pad > 2) {
        buf_free(&clean);
        return -1;
    }
    o = xmalloc(chars / 4 * 3 + 1);
    for (i = 0; i < chars - pad; i++) {
        v = b64_val((unsigned char)clean.data[i]);
        acc = (acc << B64_BITS) | (unsigned)v;
        bits += B64_BITS;
        if (bits >= BYTE_BITS) {
            bits -= BYTE_BITS;
            o[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    *out = o;
    *olen = n;
    if (text)
        *text = buf_steal(&clean);
    else
        buf_free(&clean);
    return 0;
}

/* copy_nows - the value as a fresh string, folding white space removed */
static char *copy_nows(const struct tag *t)
{
    struct buf b = BUF_INIT;

    for (size_t i = 0; i < t->vlen; i++)
        if (!is_fws((unsigned char)t->val[i]))
            buf_putc(&b, t->val[i]);
    char *r = buf_steal(&b);

    return r ? r : xstrdup("");
}

/* domain_ok - a plausible domain name (letters, digits, '-', '_', '.') */
static bool domain_ok(const char *d)
{
    size_t n = strlen(d);

    if (n == 0 || d[0] == '.' || d[n - 1] == '.' || strstr(d, "..") != NULL)
        return false;
    for (const char *p = d; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_'
            && (unsigned char)*p < 0x80)
            return false;
    return true;
}

/* lower - fold ASCII to lower case in place */
static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* parse_num - decimal digits only, at most max_digits; saturating at UINT64_MAX */
static bool parse_num(const struct tag *t, size_t max_digits, uint64_t *out)
{
    uint64_t v = 0;

    if (t->vlen == 0 || t->vlen > max_digits)
        return false;
    for (size_t i = 0; i < t->vlen; i++) {
        if (!isdigit((unsigned char)t->val[i]))
            return false;
        unsigned d = (unsigned)(t->val[i] - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    *out = v;
    return true;
}

/* parse_canon_word - "simple" or "relaxed" */
static bool parse_canon_word(const char *s, size_t n, enum dkim_canon *c)
{
    if (n == 6 && memcmp(s, "simple", 6) == 0)
        *c = DKIM_CANON_SIMPLE;
    else if (n == 7 && memcmp(s, "relaxed", 7) == 0)
        *c = DKIM_CANON_RELAXED;
    else
        return false;
    return true;
}

/* dkim_parse_canon - "h/b" or "h" (body simple) */
bool dkim_parse_canon(const char *text, enum dkim_canon *hc, enum dkim_canon *bc)
{
    const char *slash = strchr(text, '/');

    if (slash == NULL) {
        *bc = DKIM_CANON_SIMPLE;
        return parse_canon_word(text, strlen(text), hc);
    }
    return parse_canon_word(text, (size_t)(slash - text), hc)
           && parse_canon_word(slash + 1, strlen(slash + 1), bc);
}

/*
 * list_next - the next element of a colon-separated tag value, white
 * space trimmed: [*start, *end) of t->val. *pos starts at 0; false when
 * the list is done (an empty value is one empty element).
 */
static bool list_next(const struct tag *t, size_t *pos, size_t *start, size_t *end)
{
    size_t i = *pos;

    if (i > t->vlen)
        return false;
    *start = i;
    while (i < t->vlen && t->val[i] != ':')
        i++;
    *end = i;
    *pos = i + 1;
    while (*start < *end && is_fws((unsigned char)t->val[*start]))
        (*start)++;
    while (*end > *start && is_fws((unsigned char)t->val[*end - 1]))
        (*end)--;
    return true;
}

/* parse_h - the colon-separated header list, lower case; must hold From */
static int parse_h(const struct tag *t, struct dkim_sig *sig, const char **why)
{
    size_t pos = 0, start, end;
    bool from = false;

    while (list_next(t, &pos, &start, &end)) {
        if (start == end) {
            *why = "empty name in h=";
            return -1;
        }
        for (size_t j = start; j < end; j++) {
            unsigned char c = (unsigned char)t->val[j];
            if (c <= ' ' || c >= 0x7f) {
                *why = "bad name in h=";
                return -1;
            }
        }
        char *name = xstrndup(t->val + start, end - start);
        lower(name);
        if (strcmp(name, "from") == 0)
            from = true;
        sig->h = xreallocarray(sig->h, sig->nh + 1, sizeof(*sig->h));
        sig->h[sig->nh++] = name;
    }
    if (!from) {
        *why = "From not signed";
        return -1;
    }
    return 0;
}

/* list_has - a colon-separated list (white space allowed) holds word */
static bool list_has(const struct tag *t, const char *word)
{
    size_t pos = 0, start, end, wl = strlen(word);

    while (list_next(t, &pos, &start, &end))
        if (end - start == wl && strncasecmp(t->val + start, word, wl) == 0)
            return true;
    return false;
}

/* dkim_sig_free - release a parsed signature */
void dkim_sig_free(struct dkim_sig *sig)
{
    for (size_t i = 0; i < sig->nh; i++)
        free(sig->h[i]);
    free(sig->h);
    free(sig->d);
    free(sig->s);
    free(sig->i);
    free(sig->b);
    free(sig->b_text);
    free(sig->bh);
    memset(sig, 0, sizeof(*sig));
}

/* sig_fill - the checks of dkim_sig_parse, on an empty *sig */
static int sig_fill(const struct taglist *tl, struct dkim_sig *sig, const char **why)
{
    static const char *const required[] = {"v", "a", "b", "bh", "d", "h", "s"};
    const struct tag *t;
    uint64_t num;

    for (size_t i = 0; i < POSTA_ARRAY_LEN(required); i++) {
        if (tag_find(tl, required[i]) == NULL) {
            *why = "missing required tag";
            return -1;
        }
    }
    if (!tag_is(tag_find(tl, "v"), "1")) {
        *why = "unsupported version";
        return -1;
    }
    t = tag_find(tl, "a");
    if (tag_is(t, "rsa-sha256")) {
        sig->alg = DKIM_ALG_RSA_SHA256;
    } else if (tag_is(t, "ed25519-sha256")) {
        sig->alg = DKIM_ALG_ED25519_SHA256;
    } else {
        *why = "unsupported algorithm";
        return -1;
    }
    t = tag_find(tl, "b");
    if (b64_decode(t->val, t->vlen, &sig->b, &sig->blen, &sig->b_text) < 0 || sig->blen == 0) {
        *why = "bad b= value";
        return -1;
    }
    t = tag_find(tl, "bh");
    if (b64_decode(t->val, t->vlen, &sig->bh, &sig->bhlen, NULL) < 0 || sig->bhlen != SHA256_LEN) {
        *why = "bad bh= value";
        return -1;
    }
    sig->hcanon = sig->bcanon = DKIM_CANON_SIMPLE;
    if ((t = tag_find(tl, "c")) != NULL) {
        char *c = xstrndup(t->val, t->vlen);
        bool ok = dkim_parse_canon(c, &sig->hcanon, &sig->bcanon);
        free(c);
        if (!ok) {
            *why = "bad c= value";
            return -1;
        }
    }
    sig->d = copy_nows(tag_find(tl, "d"));
    lower(sig->d);
    if (!domain_ok(sig->d)) {
        *why = "bad d= value";
        return -1;
    }
    sig->s = copy_nows(tag_find(tl, "s"));
    if (!domain_ok(sig->s)) {
        *why = "bad s= value";
        return -1;
    }
    if (parse_h(tag_find(tl, "h"), sig, why) < 0)
        return -1;
    if ((t = tag_find(tl, "i")) != NULL) {
        sig->i = copy_nows(t);
        const char *at = strrchr(sig->i, '@');
        size_t dl = strlen(sig->d), il;
        if (at == NULL) {
            *why = "bad i= value";
            return -1;
        }
        at++;
        il = strlen(at);
        if (!(il == dl && strcasecmp(at, sig->d) == 0)
            && !(il > dl && at[il - dl - 1] == '.' && strcasecmp(at + il - dl, sig->d) == 0)) {
            *why = "i= not within d=";
            return -1;
        }
    }
    if ((t = tag_find(tl, "l")) != NULL) {
        /* 76 digits are allowed; anything past 2^64 is "the whole body" */
        if (!parse_num(t, 76, &sig->l)) {
            *why = "bad l= value";
            return -1;
        }
        sig->has_l = true;
    }
    if ((t = tag_find(tl, "q")) != NULL && !list_has(t, "dns/txt")) {
        *why = "unsupported q= method";
        return -1;
    }
    if ((t = tag_find(tl, "t")) != NULL) {
        if (!parse_num(t, DKIM_NUM_DIGITS_MAX, &num)) {
            *why = "bad t= value";
            return -1;
        }
        sig->t = (int64_t)num;
        sig->has_t = true;
    }
    if ((t = tag_find(tl, "x")) != NULL) {
        if (!parse_num(t, DKIM_NUM_DIGITS_MAX, &num)) {
            *why = "bad x= value";
            return -1;
        }
        sig->x = (int64_t)num;
        sig->has_x = true;
        if (sig->has_t && sig->x < sig->t) {
            *why = "x= before t=";
            return -1;
        }
    }
    return 0;
}

/* dkim_sig_parse - parse and check a DKIM-Signature value */
int dkim_sig_parse(const char *value, size_t len, struct dkim_sig *sig, const char **why)
{
    struct taglist tl;

    memset(sig, 0, sizeof(*sig));
    if (tags_parse(value, len, &tl, why) < 0)
        return -1;
    if (sig_fill(&tl, sig, why) < 0) {
        dkim_sig_free(sig);
        return -1;
    }
    return 0;
}

/* dkim_key_free - release a parsed key record */
void dkim_key_free(struct dkim_keyrec *key)
{
    free(key->p);
    memset(key, 0, sizeof(*key));
}

/* dkim_key_parse - parse a key record */
int dkim_key_parse(const char *txt, size_t len, struct dkim_keyrec *key, const char **why)
{
    struct taglist tl;
    const struct tag *t;

    memset(key, 0, sizeof(*key));
    if (tags_parse(txt, len, &tl, why) < 0)
        return -1;
    if ((t = tag_find(&tl, "v")) != NULL && (t != &tl.t[0] || !tag_is(t, "DKIM1"))) {
        *why = "bad v= in key record";
        return -1;
    }
    key->k = DKIM_KEY_RSA;
    if ((t = tag_find(&tl, "k")) != NULL) {
        if (tag_is(t, "rsa")) {
            key->k = DKIM_KEY_RSA;
        } else if (tag_is(t, "ed25519")) {
            key->k = DKIM_KEY_ED25519;
        } else {
            *why = "unknown key type";
            return -1;
        }
    }
    key->sha256_ok = (t = tag_find(&tl, "h")) == NULL || list_has(t, "sha256");
    key->email_ok = (t = tag_find(&tl, "s")) == NULL || list_has(t, "*") || list_has(t, "email");
    if ((t = tag_find(&tl, "t")) != NULL) {
        key->testing = list_has(t, "y");
        key->strict = list_has(t, "s");
    }
    if ((t = tag_find(&tl, "p")) == NULL) {
        *why = "key record without p=";
        return -1;
    }
    bool empty = true;
    for (size_t i = 0; i < t->vlen; i++)
        if (!is_fws((unsigned char)t->val[i]))
            empty = false;
    if (empty) {
        key->revoked = true;
        return 0;
    }
    if (b64_decode(t->val, t->vlen, &key->p, &key->plen, NULL) < 0 || key->plen == 0) {
        dkim_key_free(key);
        *why = "bad p= value";
        return -1;
    }
    return 0;
}

/* dkim_status_name - the RFC 8601 result word */
const char *dkim_status_name(enum dkim_status st)
{
    switch (st) {
    case DKIM_NONE:
        return "none";
    case DKIM_PASS:
        return "pass";
    case DKIM_FAIL:
        return "fail";
    case DKIM_NEUTRAL:
        return "neutral";
    case DKIM_POLICY:
        return "policy";
    case DKIM_TEMPERROR:
        return "temperror";
    case DKIM_PERMERROR:
        return "permerror";
    }
    return "permerror";
}
