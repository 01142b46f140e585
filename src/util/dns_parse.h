/*
 * dns_parse.h - raw DNS answers and hosts files to records (internal to dns.c)
 *
 * The pure half of util/dns.c, exposed so that the unit tests (golden
 * answer packets) and the fuzz target can drive it without a network:
 * dns_answer_parse takes the bytes a name server sent for one question
 * and classifies them exactly as the asynchronous lookups do (rcode,
 * empty answer, malformed packet, invalid MX host names), and
 * dns_hosts_parse answers a name from the text of an /etc/hosts file.
 *
 * SECURITY: the input is untrusted; every length is checked by c-ares'
 * parsers or by dns_answer_ttl, at most DNS_RECORDS_MAX records are kept
 * and MX host names must pass dns_hostname_valid.
 */
#ifndef POSTA_DNS_PARSE_H
#define POSTA_DNS_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "util/dns.h"

#define DNS_RECORDS_MAX 100 /* records kept from one answer */
#define DNS_CACHE_MAX 4096  /* cached answers; the oldest goes first */

/* the query types dns_answer_parse understands (the wire values) */
enum dns_qtype {
    DNS_QTYPE_A = 1,
    DNS_QTYPE_MX = 15,
    DNS_QTYPE_TXT = 16,
    DNS_QTYPE_AAAA = 28
};

/* struct dns_answer - one question's outcome; only the array of its type is set */
struct dns_answer {
    enum dns_status status;
    const char *why;       /* static text, never NULL */
    unsigned ttl;          /* smallest TTL of the records used (DNS_OK) */
    size_t n;              /* records in the array (0 unless DNS_OK) */
    struct dns_mx *mx;     /* DNS_QTYPE_MX */
    struct dns_addr *addr; /* DNS_QTYPE_A, DNS_QTYPE_AAAA (and hosts files) */
    char **txt;            /* DNS_QTYPE_TXT */
};

/* dns_status_text - the log text for a status ("Host not found", ...) */
const char *dns_status_text(enum dns_status st);
/* dns_answer_set_status - fill in a failure with a fixed why text */
void dns_answer_set_status(struct dns_answer *ans, enum dns_status st, const char *why);
/* dns_ares_status - a c-ares status code as one of ours (why: its text) */
enum dns_status dns_ares_status(int ares_status, const char **why);
/*
 * dns_answer_parse - classify and parse abuf (alen bytes) as the answer
 * to a question of type qtype. ans is overwritten (free it with
 * dns_answer_free).
 */
void dns_answer_parse(enum dns_qtype qtype, const unsigned char *abuf, size_t alen,
                      struct dns_answer *ans);
/*
 * dns_hosts_parse - the addresses of name (case-insensitive) in the hosts
 * file text (len bytes), A first then AAAA as family asks. DNS_OK with
 * the addresses, or DNS_NOTFOUND. ans is overwritten.
 */
void dns_hosts_parse(const char *text, size_t len, const char *name, int family,
                     struct dns_answer *ans);
/* dns_answer_copy - deep copy of src into dst */
void dns_answer_copy(struct dns_answer *dst, const struct dns_answer *src);
/* dns_answer_free - release the arrays (the struct itself is the caller's) */
void dns_answer_free(struct dns_answer *ans);
/* dns_set_hosts_file - read path instead of /etc/hosts (tests); NULL restores it */
void dns_set_hosts_file(const char *path);

#endif
