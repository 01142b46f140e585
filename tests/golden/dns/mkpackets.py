#!/usr/bin/python3
"""mkpackets.py - build the hand-made DNS answer packets of tests/golden/dns.

Each NAME.hex holds comment lines ('#'), a line "type MX|A|AAAA|TXT" and the
answer packet as hex (whitespace ignored). test_dns renders what
dns_answer_parse makes of it and compares with NAME.out. Run this from its
folder to rebuild the .hex files; the .out files are reviewed by hand.
"""
import struct

T = {'A': 1, 'CNAME': 5, 'MX': 15, 'TXT': 16, 'AAAA': 28}


def name(n):
    if n in ('', '.'):
        return b'\0'
    return b''.join(bytes([len(l)]) + l.encode('latin-1') for l in n.rstrip('.').split('.')) + b'\0'


def header(rcode=0, qd=1, an=0, ns=0, ar=0, ident=0x2a2a):
    return struct.pack('>HHHHHH', ident, 0x8180 | rcode, qd, an, ns, ar)


def question(qname, qtype):
    return name(qname) + struct.pack('>HH', T[qtype], 1)


def rr(owner, rtype, ttl, rdata):
    # owner may be bytes (e.g. a compression pointer) or a text name
    o = owner if isinstance(owner, bytes) else name(owner)
    return o + struct.pack('>HHIH', T[rtype], 1, ttl, len(rdata)) + rdata


PTR_Q = b'\xc0\x0c'   # the question name, right after the header


def mx(pref, host):
    return struct.pack('>H', pref) + name(host)


def txt(*strings):
    return b''.join(bytes([len(s)]) + s.encode() for s in strings)


def packet(qname, qtype, answers, rcode=0):
    return header(rcode=rcode, an=len(answers)) + question(qname, qtype) + b''.join(answers)


CASES = {}


def case(fname, qtype, comment, data):
    CASES[fname] = (qtype, comment, data)


case('mx_two', 'MX', 'two MX records, smallest TTL wins',
     packet('example.test', 'MX', [rr(PTR_Q, 'MX', 300, mx(20, 'mx2.example.test')),
                                   rr(PTR_Q, 'MX', 120, mx(10, 'MX1.Example.Test'))]))
case('mx_null', 'MX', 'RFC 7505 Null MX: preference 0, host "."',
     packet('nomail.test', 'MX', [rr(PTR_Q, 'MX', 3600, mx(0, '.'))]))
case('mx_invalid_dropped', 'MX', 'an MX host that is not a host name is dropped, the other kept',
     packet('example.test', 'MX', [rr(PTR_Q, 'MX', 60, mx(10, 'bad!name.test')),
                                   rr(PTR_Q, 'MX', 60, mx(20, 'good.example.test')),
                                   rr(PTR_Q, 'MX', 60, mx(30, '192.0.2.1'))]))
case('mx_all_invalid', 'MX', 'every MX host malformed: a permanent failure, not "no MX"',
     packet('example.test', 'MX', [rr(PTR_Q, 'MX', 60, mx(10, 'bad name.test')),
                                   rr(PTR_Q, 'MX', 60, mx(20, 'a\\b.test'))]))
case('mx_nxdomain', 'MX', 'NXDOMAIN', packet('nx.test', 'MX', [], rcode=3))
case('mx_nodata', 'MX', 'NOERROR, empty answer section', packet('host.test', 'MX', []))
case('mx_servfail', 'MX', 'SERVFAIL', packet('broken.test', 'MX', [], rcode=2))
case('mx_refused', 'MX', 'REFUSED', packet('broken.test', 'MX', [], rcode=5))
case('mx_formerr', 'MX', 'FORMERR', packet('broken.test', 'MX', [], rcode=1))
case('mx_notimp', 'MX', 'NOTIMP', packet('broken.test', 'MX', [], rcode=4))
case('mx_truncated', 'MX', 'the packet ends inside the second record',
     packet('example.test', 'MX', [rr(PTR_Q, 'MX', 60, mx(10, 'mx1.example.test')),
                                   rr(PTR_Q, 'MX', 60, mx(20, 'mx2.example.test'))])[:-9])
case('mx_cname_only', 'MX', 'only a CNAME in the answer: no MX records',
     packet('alias.test', 'MX', [rr(PTR_Q, 'CNAME', 60, name('real.test'))]))
case('mx_many', 'MX', '120 MX records: at most 100 are kept',
     packet('big.test', 'MX', [rr(PTR_Q, 'MX', 600, mx(i, 'mx%d.big.test' % i)) for i in range(120)]))
case('mx_pointer_loop', 'MX', 'a compression pointer that points at itself',
     header(an=1) + question('loop.test', 'MX') + b'\xc0\x1b' + struct.pack('>HHIH', 15, 1, 60, 4) + b'\x00\x0a\xc0\x1b')
case('mx_huge_ttl', 'MX', 'a TTL with the top bit set counts as 0 (RFC 2181 8)',
     packet('example.test', 'MX', [rr(PTR_Q, 'MX', 0x80000000, mx(5, 'mx.example.test'))]))
case('mx_trailing_data', 'MX', 'the answer count claims two records, there is one',
     header(an=2) + question('example.test', 'MX') + rr(PTR_Q, 'MX', 60, mx(10, 'mx.example.test')))
case('a_two', 'A', 'two A records',
     packet('host.test', 'A', [rr(PTR_Q, 'A', 86400, bytes([192, 0, 2, 1])),
                               rr(PTR_Q, 'A', 86400, bytes([192, 0, 2, 2]))]))
case('a_cname', 'A', 'a CNAME chain to the A record; the other name\'s A is ignored',
     packet('www.test', 'A', [rr(PTR_Q, 'CNAME', 30, name('real.test')),
                              rr('real.test', 'A', 300, bytes([198, 51, 100, 7])),
                              rr('other.test', 'A', 300, bytes([203, 0, 113, 9]))]))
case('a_bad_rdlength', 'A', 'an A record with five bytes of data',
     packet('host.test', 'A', [rr(PTR_Q, 'A', 60, bytes([192, 0, 2, 1, 9]))]))
case('aaaa_one', 'AAAA', 'one AAAA record',
     packet('host.test', 'AAAA', [rr(PTR_Q, 'AAAA', 3600, bytes.fromhex('20010db8000000000000000000000025'))]))
case('aaaa_nodata', 'AAAA', 'the name has an A record only (an A in the answer to an AAAA question)',
     packet('host.test', 'AAAA', [rr(PTR_Q, 'A', 60, bytes([192, 0, 2, 1]))]))
case('txt_multi', 'TXT', 'one record in three strings, one in one string, one empty string',
     packet('txt.test', 'TXT', [rr(PTR_Q, 'TXT', 60, txt('v=spf1 ', 'ip4:192.0.2.0/24', ' -all')),
                                rr(PTR_Q, 'TXT', 50, txt('second record')),
                                rr(PTR_Q, 'TXT', 40, txt(''))]))
case('txt_nxdomain', 'TXT', 'NXDOMAIN for a TXT question', packet('nx.test', 'TXT', [], rcode=3))
case('short_header', 'MX', 'five bytes: not even a header', bytes.fromhex('2a2a818000'))

if __name__ == '__main__':
    for fname, (qtype, comment, data) in CASES.items():
        with open(fname + '.hex', 'w') as f:
            f.write('# %s\n# generated by mkpackets.py\ntype %s\n' % (comment, qtype))
            h = data.hex()
            for i in range(0, len(h), 64):
                f.write(h[i:i + 64] + '\n')
