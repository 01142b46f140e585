/*
 * dict_regexp.c - regexp: (POSIX) and pcre: (PCRE2) tables
 *
 * The file formats of Postfix's regexp_table(5) and pcre_table(5); one
 * parser serves both, only the pattern compiler and matcher differ:
 *
 *   /pattern/flags result      the first matching rule gives the result
 *   !/pattern/flags result     applies when the key does NOT match
 *   /pat1/!/pat2/ result       (regexp: only) pat1 matches and pat2 not
 *   if /pattern/flags          the rules up to the matching endif apply
 *   ...                        only when the key matches (if !/p/: when
 *   endif                      it does not); blocks nest
 *
 * Any character may delimit a pattern ("/" is usual); a backslash before
 * the delimiter keeps it inside the pattern. Lines are postmap's input
 * format ('#' comments, blank lines, continuation lines that start with
 * white space). Keys are matched as given (fixed-case table); matching is
 * case-insensitive unless the "i" flag turns that off.
 *
 * Flags (each toggles its default):
 *   regexp:  i (REG_ICASE, on), x (REG_EXTENDED, on), m (REG_NEWLINE, off)
 *   pcre:    i (CASELESS, on), m (MULTILINE), s (DOTALL), x (EXTENDED),
 *            A (ANCHORED), E (DOLLAR_ENDONLY), U (UNGREEDY); X (PCRE1's
 *            EXTRA) is accepted and ignored, PCRE2 is always strict.
 *
 * In a result, $1 .. $N (or ${N}, $(N)) is replaced with the text the
 * N-th parenthesised subexpression matched (empty if it took no part),
 * $0 with the whole match, and $$ is a "$". A rule whose result names a
 * subexpression the pattern does not have, or any $N in a negated rule,
 * is rejected when the table is loaded.
 *
 * The inline forms regexp:{ {/a/ b}, {/c/ d} } and pcre:{...} hold the
 * rules in the spec itself.
 *
 * DIAGNOSTICS: as Postfix, a bad rule is skipped with a warning that
 * names the table file and line ("regexp map FILE, line N: ..."); an
 * endif without if is ignored and a missing endif is closed at the end of
 * the file, both with a warning. A missing file is an open error naming
 * it. A PCRE2 match that hits its resource limits is a warning and counts
 * as "no match" for that rule.
 * SECURITY: keys come from the network; PCRE2 matching runs under match
 * and depth limits so that a hostile key cannot stall a daemon, and the
 * result is built in a bounded buffer.
 */
#include "util/sys.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/dict.h"
#include "util/dict_impl.h"
#include "util/log.h"

#define RX_MATCH_LIMIT 1000000u      /* PCRE2 backtracking steps per match */
#define RX_DEPTH_LIMIT 10000u        /* PCRE2 nesting depth per match */
#define RX_RESULT_MAX ((size_t)1 << 20)  /* longest expanded result */
#define RX_GROUP_MAX 999             /* highest $N accepted */
#define RX_DECIMAL 10
#define RX_BOUND_MAX 255             /* largest {n,m} in a POSIX pattern */
#define POSTA_STR_(x) #x
#define POSTA_STR(x) POSTA_STR_(x)
#define RX_ERRBUF 256

enum rx_kind { RX_MATCH, RX_IF, RX_ENDIF };

struct rx_pat {
    bool match;            /* true: applies on a match; false: on no match */
    bool used;             /* compiled */
    regex_t posix;
    pcre2_code *pcre;
    size_t groups;         /* parenthesised subexpressions */
};

struct rx_rule {
    enum rx_kind kind;
    struct rx_pat pat;
    struct rx_pat pat2;    /* regexp: "/a/!/b/", else unused */
    char *result;          /* RX_MATCH */
    size_t endif;          /* RX_IF: index of its endif (or count) */
    int lineno;
};

struct rx_table {
    bool pcre;
    struct rx_rule *rule;
    size_t count, cap;
    size_t *open_if;       /* unclosed "if" rules while loading */
    size_t depth, depth_cap;
    size_t max_groups;
    regmatch_t *pm;        /* max_groups + 1 */
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    struct buf out;
    const char *type;      /* "regexp" or "pcre", for messages */
    const char *origin;    /* file name or spec */
};

/* rx_pat_free - release a compiled pattern */
static void rx_pat_free(struct rx_pat *p)
{
    if (!p->used)
        return;
    if (p->pcre != NULL)
        pcre2_code_free(p->pcre);
    else
        regfree(&p->posix);
    p->used = false;
}

/* rx_table_free - release every rule and the match state */
static void rx_table_free(struct rx_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->count; i++) {
        rx_pat_free(&t->rule[i].pat);
        rx_pat_free(&t->rule[i].pat2);
        free(t->rule[i].result);
    }
    free(t->rule);
    free(t->open_if);
    free(t->pm);
    if (t->md != NULL)
        pcre2_match_data_free(t->md);
    if (t->mctx != NULL)
        pcre2_match_context_free(t->mctx);
    buf_free(&t->out);
    free(t);
}

/* rx_push - append a rule (zeroed) and return it */
static struct rx_rule *rx_push(struct rx_table *t, enum rx_kind kind, int lineno)
{
    if (t->count == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->rule = xreallocarray(t->rule, t->cap, sizeof(*t->rule));
    }
    struct rx_rule *r = &t->rule[t->count++];
    memset(r, 0, sizeof(*r));
    r->kind = kind;
    r->lineno = lineno;
    return r;
}

/* rx_warn - "TYPE map FILE, line N: text" */
static void POSTA_PRINTF(3, 4) rx_warn(const struct rx_table *t, int lineno, const char *fmt, ...)
{
    char text[RX_ERRBUF * 2];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    msg_warn("%s map %s, line %d: %s", t->type, t->origin, lineno, text);
}

/* rx_bound_ok - the counts of a "{n,m}" bound at s are at most RX_BOUND_MAX */
static bool rx_bound_ok(const char *s)
{
    char *end;
    unsigned long lo = strtoul(s, &end, RX_DECIMAL);
    unsigned long hi = *end == ',' ? strtoul(end + 1, &end, RX_DECIMAL) : lo;

    return lo <= RX_BOUND_MAX && hi <= RX_BOUND_MAX;
}

/*
 * rx_posix_risky - a pattern that makes glibc's regcomp take memory
 * exponential in its length: a repetition applied to a repetition
 * ("a++", "a*{9}", BRE "a**") or a bound above RX_BOUND_MAX. Postfix
 * passes such patterns on and the process can exhaust memory; posta
 * refuses them. ere: extended syntax (else basic: "*" and "\{n\}").
 */
static const char *rx_posix_risky(const char *re, bool ere)
{
    bool after_quant = false;
    int in_bracket = 0;

    for (const char *s = re; *s; s++) {
        bool quant = false;
        if (in_bracket) {
            if (*s == ']' && in_bracket > 1)
                in_bracket = 0;
            else
                in_bracket++;
            continue;
        }
        if (*s == '[') {
            in_bracket = 1;
            if (s[1] == '^')
                s++;
        } else if (*s == '\\' && s[1] != 0) {
            s++;
            if (!ere && *s == '{') {
                if (!rx_bound_ok(s + 1))
                    return "a repetition count above " POSTA_STR(RX_BOUND_MAX);
                quant = true;
                const char *close = strstr(s, "\\}");
                if (close != NULL)
                    s = close + 1;
            }
        } else if (*s == '*' || (ere && (*s == '+' || *s == '?'))) {
            quant = true;
        } else if (ere && *s == '{') {
            if (!rx_bound_ok(s + 1))
                return "a repetition count above " POSTA_STR(RX_BOUND_MAX);
            quant = true;
            const char *close = strchr(s, '}');
            if (close != NULL)
                s = close;
        }
        if (quant && after_quant)
            return "a repetition of a repetition";
        after_quant = quant;
    }
    return NULL;
}

/* rx_compile_posix - regcomp with the flags the rule asked for */
static bool rx_compile_posix(struct rx_table *t, int lineno, const char *re, int cflags,
                             struct rx_pat *p)
{
    const char *risk = rx_posix_risky(re, (cflags & REG_EXTENDED) != 0);

    if (risk != NULL) {
        rx_warn(t, lineno, "regular expression \"%s\" has %s (too costly to compile): "
                "skipping this rule", re, risk);
        return false;
    }
    int rc = regcomp(&p->posix, re, cflags);

    if (rc != 0) {
        char ebuf[RX_ERRBUF];
        regerror(rc, &p->posix, ebuf, sizeof(ebuf));
        regfree(&p->posix);
        rx_warn(t, lineno, "error in regular expression \"%s\": %s: skipping this rule", re,
                ebuf);
        return false;
    }
    p->used = true;
    p->groups = p->posix.re_nsub;
    return true;
}

/* rx_compile_pcre - pcre2_compile with the flags the rule asked for */
static bool rx_compile_pcre(struct rx_table *t, int lineno, const char *re, uint32_t options,
                            struct rx_pat *p)
{
    int code;
    PCRE2_SIZE off;
    uint32_t groups = 0;

    p->pcre = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, options, &code, &off, NULL);
    if (p->pcre == NULL) {
        PCRE2_UCHAR ebuf[RX_ERRBUF];
        if (pcre2_get_error_message(code, ebuf, sizeof(ebuf)) < 0)
            snprintf((char *)ebuf, sizeof(ebuf), "error %d", code);
        rx_warn(t, lineno, "error in regular expression \"%s\" at offset %zu: %s: "
                "skipping this rule", re, (size_t)off, (char *)ebuf);
        return false;
    }
    (void)pcre2_pattern_info(p->pcre, PCRE2_INFO_CAPTURECOUNT, &groups);
    p->used = true;
    p->groups = groups;
    return true;
}

/* rx_flag_posix - toggle one regexp: flag; false if unknown */
static bool rx_flag_posix(char c, int *cflags)
{
    switch (c) {
    case 'i':
        *cflags ^= REG_ICASE;
        return true;
    case 'x':
        *cflags ^= REG_EXTENDED;
        return true;
    case 'm':
        *cflags ^= REG_NEWLINE;
        return true;
    default:
        return false;
    }
}

/* rx_flag_pcre - toggle one pcre: flag; false if unknown */
static bool rx_flag_pcre(char c, uint32_t *opt)
{
    static const struct {
        char flag;
        uint32_t option;
    } map[] = {
        {'i', PCRE2_CASELESS}, {'m', PCRE2_MULTILINE},     {'s', PCRE2_DOTALL},
        {'x', PCRE2_EXTENDED}, {'A', PCRE2_ANCHORED},      {'E', PCRE2_DOLLAR_ENDONLY},
        {'U', PCRE2_UNGREEDY}, {'X', 0},
    };

    for (size_t i = 0; i < POSTA_ARRAY_LEN(map); i++) {
        if (map[i].flag == c) {
            *opt ^= map[i].option;
            return true;
        }
    }
    return false;
}

/*
 * rx_get_pat - parse "[!...]<d>pattern<d>flags" at *pp and compile it;
 * *pp is left after the flags. false (warned) if the rule must be skipped.
 */
static bool rx_get_pat(struct rx_table *t, int lineno, char **pp, struct rx_pat *pat)
{
    char *p = *pp;
    char delim;
    struct buf re = BUF_INIT;
    int cflags = REG_EXTENDED | REG_ICASE;
    uint32_t opt = PCRE2_CASELESS;
    bool ok;

    pat->match = true;
    for (; *p == '!' || *p == ' ' || *p == '\t'; p++)
        if (*p == '!')
            pat->match = !pat->match;
    if (*p == 0) {
        rx_warn(t, lineno, "no regular expression: skipping this rule");
        return false;
    }
    delim = *p++;
    if ((delim >= 'a' && delim <= 'z') || (delim >= 'A' && delim <= 'Z') ||
        (delim >= '0' && delim <= '9')) {
        rx_warn(t, lineno, "ignoring unrecognized request");
        return false;
    }
    for (; *p && *p != delim; p++) {
        if (*p == '\\' && p[1] != 0) {
            (void)buf_putc(&re, *p++);   /* the escaped character stays escaped */
        }
        if (buf_putc(&re, *p) < 0)
            break;
    }
    if (*p != delim) {
        rx_warn(t, lineno, "no closing %s delimiter \"%c\": skipping this rule",
                t->type, delim);
        buf_free(&re);
        return false;
    }
    p++;
    /* Flags run up to white space (or, regexp: only, a second pattern's "!"). */
    for (; *p && *p != ' ' && *p != '\t' && !(!t->pcre && *p == '!'); p++) {
        if (t->pcre && *p == 'X')
            rx_warn(t, lineno, "ignoring obsolete %s option \"X\"", t->type);
        if (t->pcre ? !rx_flag_pcre(*p, &opt) : !rx_flag_posix(*p, &cflags)) {
            rx_warn(t, lineno, "unknown %s option \"%c\": skipping this rule", t->type, *p);
            buf_free(&re);
            return false;
        }
    }
    *pp = p;
    if (t->pcre)
        ok = rx_compile_pcre(t, lineno, buf_str(&re), opt, pat);
    else
        ok = rx_compile_posix(t, lineno, buf_str(&re), cflags, pat);
    buf_free(&re);
    if (ok && pat->groups > t->max_groups)
        t->max_groups = pat->groups;
    return ok;
}

/* rx_is_word - the line starts with keyword (any case) not followed by a letter or digit */
static bool rx_is_word(const char *p, const char *word)
{
    size_t n = strlen(word);

    if (strncasecmp(p, word, n) != 0)
        return false;
    char c = p[n];
    return !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'));
}

/*
 * rx_ref - parse the name after a "$" at s; its length in *len. Returns the
 * group number, -1 for a literal "$" (nothing usable follows), -2 for a
 * name that is not a number.
 */
static long rx_ref(const char *s, size_t *len)
{
    const char *name = s;
    size_t n;
    char close = 0;

    if (*s == '{')
        close = '}';
    else if (*s == '(')
        close = ')';
    if (close) {
        const char *end = strchr(s + 1, close);
        if (end == NULL)
            return -2;
        name = s + 1;
        n = (size_t)(end - name);
        *len = n + 2;
    } else {
        n = 0;
        while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
               (s[n] >= '0' && s[n] <= '9') || s[n] == '_')
            n++;
        if (n == 0) {
            *len = 0;
            return -1;
        }
        *len = n;
    }
    if (n == 0 || n > 3)
        return -2;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (name[i] < '0' || name[i] > '9')
            return -2;
        v = v * RX_DECIMAL + (name[i] - '0');
    }
    return v;
}

/* rx_check_result - every $N names a group the positive pattern has */
static bool rx_check_result(struct rx_table *t, int lineno, const struct rx_rule *r)
{
    for (const char *s = r->result; *s; s++) {
        if (*s != '$')
            continue;
        if (s[1] == '$') {
            s++;
            continue;
        }
        size_t len;
        long n = rx_ref(s + 1, &len);
        if (n == -1)
            continue;
        if (n == -2) {
            rx_warn(t, lineno, "non-numeric replacement index in \"%s\": skipping this rule",
                    r->result);
            return false;
        }
        if (!r->pat.match) {
            rx_warn(t, lineno, "$number found in negative match replacement text: "
                    "skipping this rule");
            return false;
        }
        if (n > RX_GROUP_MAX || (size_t)n > r->pat.groups) {
            rx_warn(t, lineno, "out of range replacement index \"%ld\": skipping this rule", n);
            return false;
        }
        s += len;
    }
    return true;
}

/* rx_rule_line - "[!]/pat/flags[!/pat2/flags] result" */
static void rx_rule_line(struct rx_table *t, char *p, int lineno)
{
    struct rx_rule *r = rx_push(t, RX_MATCH, lineno);

    if (!rx_get_pat(t, lineno, &p, &r->pat))
        goto skip;
    if (!t->pcre && *p == '!') {
        if (!rx_get_pat(t, lineno, &p, &r->pat2))   /* "!/b/": b must not match */
            goto skip;
    }
    p += strspn(p, " \t");
    if (*p == 0)
        rx_warn(t, lineno, "no replacement text: using empty string");
    r->result = xstrdup(p);
    if (!rx_check_result(t, lineno, r))
        goto skip;
    return;
skip:
    rx_pat_free(&r->pat);
    rx_pat_free(&r->pat2);
    free(r->result);
    t->count--;
}

/* rx_line - one logical line of the table */
static void rx_line(void *ctx, char *line, int lineno)
{
    struct rx_table *t = ctx;
    char *p = line;

    if (rx_is_word(p, "if")) {
        struct rx_rule *r = rx_push(t, RX_IF, lineno);
        p += 2;
        if (!rx_get_pat(t, lineno, &p, &r->pat)) {
            /*
             * Keep the block, but it never applies: a bad "if" must not
             * make the rules it guards unconditional (Postfix drops the
             * "if" line alone; this is the safer reading).
             */
            r->pat.used = false;
            r->endif = SIZE_MAX;
        } else if (p[strspn(p, " \t")] != 0) {
            rx_warn(t, lineno, "ignoring extra text after IF statement: \"%s\"",
                    p + strspn(p, " \t"));
        }
        if (t->depth == t->depth_cap) {
            t->depth_cap = t->depth_cap ? t->depth_cap * 2 : 8;
            t->open_if = xreallocarray(t->open_if, t->depth_cap, sizeof(*t->open_if));
        }
        t->open_if[t->depth++] = t->count - 1;
        return;
    }
    if (rx_is_word(p, "endif")) {
        p += strlen("endif");
        p += strspn(p, " \t");
        if (*p != 0)
            rx_warn(t, lineno, "ignoring extra text after ENDIF: \"%s\"", p);
        if (t->depth == 0) {
            rx_warn(t, lineno, "ignoring ENDIF without matching IF");
            return;
        }
        rx_push(t, RX_ENDIF, lineno);
        t->rule[t->open_if[--t->depth]].endif = t->count - 1;
        return;
    }
    rx_rule_line(t, p, lineno);
}

/* rx_table_new - an empty table of the dict's type */
static struct rx_table *rx_table_new(struct dict *d, const char *origin)
{
    struct rx_table *t = xcalloc(1, sizeof(*t));

    t->pcre = strcmp(d->type, "pcre") == 0;
    t->type = t->pcre ? "pcre" : "regexp";
    t->origin = origin;
    buf_init(&t->out, RX_RESULT_MAX);
    return t;
}

/* rx_lookup_state - allocate per-table match state */
static void rx_lookup_state(struct rx_table *t)
{
    t->pm = xcalloc(t->max_groups + 1, sizeof(*t->pm));
    if (t->pcre) {
        t->md = pcre2_match_data_create((uint32_t)t->max_groups + 1, NULL);
        t->mctx = pcre2_match_context_create(NULL);
        if (t->md == NULL || t->mctx == NULL)
            msg_fatal("pcre2: out of memory");
        pcre2_set_match_limit(t->mctx, RX_MATCH_LIMIT);
        pcre2_set_depth_limit(t->mctx, RX_DEPTH_LIMIT);
    }
}

/*
 * rx_test - does the pattern decide that the rule applies to key? With
 * want_groups, the match offsets are left in t->pm for the result.
 */
static bool rx_test(struct dict *d, struct rx_table *t, struct rx_pat *p, const char *key,
                    bool want_groups)
{
    bool matched;

    if (!p->used)
        return false;
    if (p->pcre != NULL) {
        int rc = pcre2_match(p->pcre, (PCRE2_SPTR)key, strlen(key), 0, 0, t->md, t->mctx);
        if (rc == PCRE2_ERROR_NOMATCH) {
            matched = false;
        } else if (rc < 0) {
            PCRE2_UCHAR ebuf[RX_ERRBUF];
            if (pcre2_get_error_message(rc, ebuf, sizeof(ebuf)) < 0)
                snprintf((char *)ebuf, sizeof(ebuf), "error %d", rc);
            msg_warn("%s: matching \"%s\": %s (rule treated as not matching)", d->spec, key,
                     (char *)ebuf);
            return false;
        } else {
            matched = true;
            if (want_groups) {
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(t->md);
                uint32_t pairs = pcre2_get_ovector_count(t->md);
                for (size_t i = 0; i <= t->max_groups; i++) {
                    bool set = i < (size_t)rc && i < pairs && ov[2 * i] != PCRE2_UNSET;
                    t->pm[i].rm_so = set ? (regoff_t)ov[2 * i] : -1;
                    t->pm[i].rm_eo = set ? (regoff_t)ov[2 * i + 1] : -1;
                }
            }
        }
    } else {
        matched = regexec(&p->posix, key, t->max_groups + 1, t->pm, 0) == 0;
    }
    return matched == p->match;
}

/* rx_expand - the rule's result with $N replaced from t->pm */
static enum dict_result rx_expand(struct dict *d, struct rx_table *t, const struct rx_rule *r,
                                  const char *key, const char **value)
{
    buf_reset(&t->out);
    for (const char *s = r->result; *s; s++) {
        int rc;
        if (*s != '$') {
            rc = buf_putc(&t->out, *s);
        } else if (s[1] == '$') {
            rc = buf_putc(&t->out, '$');
            s++;
        } else {
            size_t len;
            long n = rx_ref(s + 1, &len);
            if (n < 0) {          /* checked at load time: only a literal "$" is left */
                rc = buf_putc(&t->out, '$');
            } else {
                const regmatch_t *m = &t->pm[n];
                rc = m->rm_so >= 0 && m->rm_eo >= m->rm_so
                         ? buf_append(&t->out, key + m->rm_so, (size_t)(m->rm_eo - m->rm_so))
                         : 0;
                s += len;
            }
        }
        if (rc < 0) {
            msg_warn("%s: result for \"%s\" longer than %zu bytes", d->spec, key,
                     (size_t)RX_RESULT_MAX);
            return DICT_TEMPFAIL;
        }
    }
    return dict_set_value(d, buf_str(&t->out), t->out.len, value);
}

/* rx_lookup - the first rule that applies gives the result */
static enum dict_result rx_lookup(struct dict *d, const char *key, const char **value)
{
    struct rx_table *t = d->priv;

    for (size_t i = 0; i < t->count; i++) {
        struct rx_rule *r = &t->rule[i];
        switch (r->kind) {
        case RX_ENDIF:
            break;
        case RX_IF:
            if (!rx_test(d, t, &r->pat, key, false))
                i = r->endif;   /* past the block (the loop steps over the endif) */
            break;
        case RX_MATCH:
            if (!rx_test(d, t, &r->pat, key, true))
                break;
            if (r->pat2.used && !rx_test(d, t, &r->pat2, key, false))
                break;
            if (r->pat2.used && r->pat.match)
                (void)rx_test(d, t, &r->pat, key, true);   /* pat2's regexec reused t->pm */
            return rx_expand(d, t, r, key, value);
        }
    }
    return DICT_NOTFOUND;
}

/* rx_close - release the table */
static void rx_close(struct dict *d)
{
    rx_table_free(d->priv);
    d->priv = NULL;
}

/* rx_table_finish - close unmatched ifs at the end, then install the methods */
static void rx_table_finish(struct dict *d, struct rx_table *t)
{
    while (t->depth > 0) {
        struct rx_rule *r = &t->rule[t->open_if[--t->depth]];
        rx_warn(t, r->lineno, "IF has no matching ENDIF");
        r->endif = t->count;
    }
    for (size_t i = 0; i < t->count; i++)
        if (t->rule[i].kind == RX_IF && t->rule[i].endif == SIZE_MAX)
            t->rule[i].endif = t->count;   /* only a bad if without endif gets here */
    rx_lookup_state(t);
    d->priv = t;
    d->lookup = rx_lookup;
    d->close = rx_close;
    d->flags |= DICT_FLAG_FIXED_CASE;
}

/* dict_regexp_load - the rules from a file's text */
bool dict_regexp_load(struct dict *d, const char *text, size_t len, char **err)
{
    struct rx_table *t = rx_table_new(d, d->name);

    dict_text_lines(text, len, d->name, rx_line, t);
    rx_table_finish(d, t);
    return true;
}

/* rx_inline - regexp:{ {/a/ b}, {/c/ d} }: each item is one rule line */
static bool rx_inline(struct dict *d, char **err)
{
    size_t n = strlen(d->name);
    bool bad = false;
    int item_no = 0;
    char *item;

    if (n < 2 || d->name[n - 1] != '}') {
        *err = xasprintf("%s: expecting \"%s:{rule, ...}\"", d->spec, d->type);
        return false;
    }
    char *copy = xstrndup(d->name + 1, n - 2);
    char *p = copy;
    struct rx_table *t = rx_table_new(d, d->spec);
    while ((item = dict_next_item(&p, &bad)) != NULL)
        rx_line(t, item, ++item_no);
    free(copy);
    if (bad || item_no == 0) {
        *err = xasprintf(bad ? "%s: unbalanced '{' or '}'" : "%s: empty table", d->spec);
        rx_table_free(t);
        return false;
    }
    rx_table_finish(d, t);
    return true;
}

/* dict_regexp_open - regexp:/file, pcre:/file, or the inline forms */
bool dict_regexp_open(struct dict *d, char **err)
{
    size_t len;
    char *text;

    if (d->name[0] == '{')
        return rx_inline(d, err);
    if (d->name[0] == 0) {
        *err = xasprintf("%s: empty table name", d->spec);
        return false;
    }
    dict_watch(d, d->name, -1);
    if ((text = dict_read_file(d->name, &len, err)) == NULL)
        return false;
    bool ok = dict_regexp_load(d, text, len, err);
    free(text);
    return ok;
}
