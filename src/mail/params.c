/*
 * params.c - the settings table and the parsing of typed values
 *
 * One entry per parameter that posta knows, sorted by name (param_find is a
 * binary search; a unit test checks the order). Defaults are Postfix's where
 * the parameter exists in Postfix (with "posta" for "postfix"), written as
 * main.cf text that may reference other parameters. An empty default for
 * myhostname, mydomain and mynetworks means "computed at run time" (see
 * config.c and matchlist.c).
 *
 * DIAGNOSTICS
 *	param_check explains a bad value in *why (static text); it never logs.
 */
#include "util/sys.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <strings.h>

#include "mail/params.h"
#include "posta_paths.h"

/* Limits used by the table. */
#define PARAM_INT_MAX ((long long)INT_MAX)
#define PARAM_TIME_MAX ((long long)INT_MAX)   /* seconds; fits an int */
#define PARAM_SIZE_MAX (1LL << 62)            /* byte counts */

/* Seconds per time unit. */
/* Explanations of bad values quote at most this much of the value. */
#define PARAM_WHY_MAX 256
#define PARAM_WHY_VALUE_MAX 80

#define SECS_MINUTE 60LL
#define SECS_HOUR (60LL * SECS_MINUTE)
#define SECS_DAY (24LL * SECS_HOUR)
#define SECS_WEEK (7LL * SECS_DAY)

const struct param_def param_table[] = {
    {"2bounce_notice_recipient", PARAM_STR, "postmaster", 0, 0, 0,
     "Recipient of postmaster notices about undeliverable bounces."},
    {"access_map_defer_code", PARAM_INT, "450", 400, 599, 0,
     "SMTP reply code for an access table DEFER result."},
    {"access_map_reject_code", PARAM_INT, "554", 400, 599, 0,
     "SMTP reply code for an access table REJECT result."},
    {"alias_database", PARAM_LIST, "hash:/etc/aliases", 0, 0, 0,
     "Alias databases that \"posta alias\" (newaliases) rebuilds."},
    {"alias_maps", PARAM_LIST, "hash:/etc/aliases", 0, 0, 0,
     "Alias tables that local delivery consults."},
    {"allow_mail_to_commands", PARAM_LIST, "alias, forward", 0, 0, 0,
     "Contexts (alias, forward, include) where delivery to \"|command\" is allowed."},
    {"allow_mail_to_files", PARAM_LIST, "alias, forward", 0, 0, 0,
     "Contexts (alias, forward, include) where delivery to /file/name is allowed."},
    {"always_add_missing_headers", PARAM_BOOL, "no", 0, 0, 0,
     "Add missing From:, To:, Date:, Message-ID: headers to all mail, not only local submissions."},
    {"always_bcc", PARAM_STR, "", 0, 0, 0,
     "Optional address that receives a blind copy of every message."},
    {"anvil_rate_time_unit", PARAM_TIME, "60s", 1, PARAM_TIME_MAX, 's',
     "Time unit over which client connection and message rates are counted."},
    {"append_dot_mydomain", PARAM_BOOL, "no", 0, 0, 0,
     "Append .$mydomain to addresses whose domain has no dot."},
    {"authserv_id", PARAM_STR, "$myhostname", 0, 0, 0,
     "Name of this receiving host in Authentication-Results headers (RFC 8601)."},
    {"body_checks", PARAM_LIST, "", 0, 0, 0,
     "Tables of patterns applied to message body lines."},
    {"body_checks_size_limit", PARAM_INT, "51200", 0, PARAM_SIZE_MAX, 0,
     "Bytes of each message body part that body_checks inspect (0: none)."},
    {"bounce_notice_recipient", PARAM_STR, "postmaster", 0, 0, 0,
     "Recipient of postmaster notices about bounced mail."},
    {"bounce_queue_lifetime", PARAM_TIME, "5d", 0, PARAM_TIME_MAX, 'd',
     "How long a bounce message stays queued before it is given up."},
    {"bounce_size_limit", PARAM_INT, "50000", 0, PARAM_SIZE_MAX, 0,
     "Largest original returned whole in a bounce; larger ones are returned as headers."},
    {"broken_sasl_auth_clients", PARAM_BOOL, "no", 0, 0, 0,
     "Also announce AUTH in the old \"AUTH=\" form for broken clients."},
    {"canonical_maps", PARAM_LIST, "", 0, 0, 0,
     "Address mapping tables applied to sender and recipient addresses."},
    {"command_directory", PARAM_STR, POSTA_COMMAND_DIR, 0, 0, 0,
     "Directory of the posta administrative commands."},
    {"command_expansion_filter", PARAM_STR,
     "1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", 0, 0, 0,
     "Characters allowed in $name expansions of delivery commands; others become \"_\"."},
    {"command_time_limit", PARAM_TIME, "1000s", 1, PARAM_TIME_MAX, 's',
     "Time limit for delivery to an external command (local)."},
    {"compatibility_level", PARAM_STR, "3.6", 0, 0, 0,
     "Accepted for Postfix compatibility; posta always uses the Postfix 3.6 defaults."},
    {"config_directory", PARAM_STR, POSTA_CONFIG_DIR, 0, 0, 0,
     "Directory of main.cf and master.cf (set with -c or MAIL_CONFIG)."},
    {"content_filter", PARAM_STR, "", 0, 0, 0,
     "Transport:nexthop that every message received here is sent to first (a content filter)."},
    {"cyrus_sasl_config_path", PARAM_STR, "", 0, 0, 0,
     "Directory searched for the Cyrus SASL application configuration (empty: the library's default)."},
    {"daemon_directory", PARAM_STR, POSTA_DAEMON_DIR, 0, 0, 0,
     "Directory of the posta daemon programs that master starts."},
    {"daemon_timeout", PARAM_TIME, "18000s", 1, PARAM_TIME_MAX, 's',
     "Time limit for a daemon to handle one request."},
    {"data_directory", PARAM_STR, POSTA_DATA_DIR, 0, 0, 0,
     "Directory of posta's writable data (caches, locks)."},
    {"debug_peer_level", PARAM_INT, "2", 1, PARAM_INT_MAX, 0,
     "Verbose logging level added for clients in debug_peer_list."},
    {"debug_peer_list", PARAM_LIST, "", 0, 0, 0,
     "Hosts and networks whose sessions are logged with extra detail."},
    {"default_database_type", PARAM_STR, "hash", 0, 0, 0,
     "Lookup table type used when a command is given a table without a type."},
    {"default_destination_concurrency_limit", PARAM_INT, "20", 0, PARAM_INT_MAX, 0,
     "Default maximum of parallel deliveries to one destination."},
    {"default_destination_recipient_limit", PARAM_INT, "50", 0, PARAM_INT_MAX, 0,
     "Default maximum of recipients per delivery."},
    {"default_privs", PARAM_STR, "nobody", 0, 0, 0,
     "User that local delivery runs as for deliveries not owned by a user (aliases)."},
    {"default_process_limit", PARAM_INT, "100", 1, PARAM_INT_MAX, 0,
     "Default maximum of processes per master.cf service (maxproc \"-\")."},
    {"default_transport", PARAM_STR, "smtp", 0, 0, 0,
     "Transport for destinations that are neither local, virtual nor relayed."},
    {"defer_code", PARAM_INT, "450", 400, 599, 0,
     "SMTP reply code for temporary rejections by access rules."},
    {"delay_notice_recipient", PARAM_STR, "postmaster", 0, 0, 0,
     "Recipient of postmaster notices about delayed mail."},
    {"delay_warning_time", PARAM_TIME, "0h", 0, PARAM_TIME_MAX, 'h',
     "Send a delay warning to the sender after this time (0 disables)."},
    {"deliver_lock_attempts", PARAM_INT, "20", 1, PARAM_INT_MAX, 0,
     "Attempts to lock a mailbox or file before the delivery is deferred."},
    {"deliver_lock_delay", PARAM_TIME, "1s", 1, PARAM_TIME_MAX, 's',
     "Time between attempts to lock a mailbox or file."},
    {"disable_mime_input_processing", PARAM_BOOL, "no", 0, 0, 0,
     "Do not follow MIME structure for header and body checks: after the primary header everything is body."},
    {"disable_vrfy_command", PARAM_BOOL, "no", 0, 0, 0,
     "Disable the SMTP VRFY command."},
    {"dkim_canonicalization", PARAM_STR, "relaxed/relaxed", 0, 0, 0,
     "DKIM signing canonicalisation, HEADER/BODY, each simple or relaxed."},
    {"dkim_sign_headers", PARAM_LIST,
     "From, To, Cc, Subject, Date, Message-ID, Reply-To, In-Reply-To, References, MIME-Version, Content-Type, Content-Transfer-Encoding",
     0, 0, 0, "Headers that DKIM signatures cover when present; From is always signed and oversigned."},
    {"dkim_signature_expiration", PARAM_TIME, "0", 0, PARAM_TIME_MAX, 's',
     "Lifetime of DKIM signatures (x= tag); 0: signatures do not expire."},
    {"dkim_signing_table", PARAM_STR, "", 0, 0, 0,
     "Table of sender domain -> [DOMAIN:]SELECTOR:/path/to/key for DKIM signing (empty: no signing)."},
    {"dkim_verify", PARAM_BOOL, "yes", 0, 0, 0,
     "Verify DKIM signatures of received mail."},
    {"dkim_verify_limit", PARAM_INT, "5", 1, 100, 0,
     "Most DKIM signatures verified per message."},
    {"dmarc_enforce", PARAM_BOOL, "yes", 0, 0, 0,
     "Act on the DMARC policy of mail that fails DMARC (no: only record the result in Authentication-Results)."},
    {"dmarc_public_suffix_list", PARAM_STR, "/usr/share/publicsuffix/public_suffix_list.dat", 0, 0, 0,
     "Public Suffix List file for DMARC organisational domains (missing: a warning, and the last two labels are used)."},
    {"dmarc_quarantine_action", PARAM_STR, "hold", 0, 0, 0,
     "What p=quarantine does to mail failing DMARC: hold (the hold queue) or header (deliver with the header only)."},
    {"dmarc_temperror_action", PARAM_STR, "header", 0, 0, 0,
     "What a temporary DNS error in the DMARC check does: defer (451 4.7.1) or header (deliver with dmarc=temperror)."},
    {"dmarc_verify", PARAM_BOOL, "yes", 0, 0, 0,
     "Check received mail against the DMARC policy of its From: domain (RFC 7489)."},
    {"dns_servers", PARAM_STR, "", 0, 0, 0,
     "Name servers for posta's DNS lookups, \"ip[:port], ...\" (empty: those of /etc/resolv.conf)."},
    {"double_bounce_sender", PARAM_STR, "double-bounce", 0, 0, 0,
     "Sender of postmaster notices about undeliverable bounces; mail from it is never bounced."},
    {"error_notice_recipient", PARAM_STR, "postmaster", 0, 0, 0,
     "Recipient of postmaster notices about software and resource errors."},
    {"fallback_transport", PARAM_STR, "", 0, 0, 0,
     "Transport (transport:nexthop) for local recipients not found in the user database."},
    {"fallback_transport_maps", PARAM_LIST, "", 0, 0, 0,
     "Tables of per-user transports (transport:nexthop) for local recipients not found in the user database; before fallback_transport."},
    {"forward_path", PARAM_LIST, "$home/.forward${recipient_delimiter}${extension}, $home/.forward", 0, 0, 0,
     "Places of .forward files; expanded by local delivery with $home, $user, $extension."},
    {"header_checks", PARAM_LIST, "", 0, 0, 0,
     "Tables of patterns applied to message header lines."},
    {"header_size_limit", PARAM_INT, "102400", 1, PARAM_INT_MAX, 0,
     "Maximum bytes of one message header (with its continuation lines)."},
    {"home_mailbox", PARAM_STR, "", 0, 0, 0,
     "Mailbox path relative to the home directory; ending in \"/\" means Maildir."},
    {"hopcount_limit", PARAM_INT, "50", 1, PARAM_INT_MAX, 0,
     "Maximum of Received: header fields in a message; smtpd refuses more (a mail loop)."},
    {"in_flow_delay", PARAM_TIME, "1s", 0, 10, 's',
     "Pause before accepting a new message while the queue manager lags behind."},
    {"inet_interfaces", PARAM_LIST, "all", 0, 0, 0,
     "Network addresses that smtpd listens on (\"all\", \"loopback-only\" or addresses)."},
    {"inet_protocols", PARAM_LIST, "all", 0, 0, 0,
     "IP versions used: \"all\", \"ipv4\", \"ipv6\" or \"ipv4, ipv6\"."},
    {"initial_destination_concurrency", PARAM_INT, "5", 1, PARAM_INT_MAX, 0,
     "Initial number of parallel deliveries to a new destination."},
    {"invalid_hostname_reject_code", PARAM_INT, "501", 400, 599, 0,
     "SMTP reply code for a malformed HELO/EHLO hostname."},
    {"ipc_timeout", PARAM_TIME, "3600s", 1, PARAM_TIME_MAX, 's',
     "Time limit for a request between posta processes."},
    {"line_length_limit", PARAM_INT, "2048", 1, PARAM_INT_MAX, 0,
     "Lines longer than this many bytes are split when received."},
    {"lmtp_address_preference", PARAM_STR, "any", 0, 0, 0,
     "Address family tried first by the LMTP client: ipv4, ipv6 or any."},
    {"lmtp_bind_address", PARAM_STR, "", 0, 0, 0,
     "Optional IPv4 source address of LMTP client connections."},
    {"lmtp_bind_address6", PARAM_STR, "", 0, 0, 0,
     "Optional IPv6 source address of LMTP client connections."},
    {"lmtp_connect_timeout", PARAM_TIME, "0s", 0, PARAM_TIME_MAX, 's',
     "Time limit for the LMTP client to connect (0: the system's limit)."},
    {"lmtp_data_done_timeout", PARAM_TIME, "600s", 1, PARAM_TIME_MAX, 's',
     "Time limit for the LMTP replies to the end of message data."},
    {"lmtp_data_init_timeout", PARAM_TIME, "120s", 1, PARAM_TIME_MAX, 's',
     "Time limit for the LMTP reply to the DATA command."},
    {"lmtp_data_xfer_timeout", PARAM_TIME, "180s", 1, PARAM_TIME_MAX, 's',
     "Time limit for sending message content to an LMTP server."},
    {"lmtp_destination_concurrency_limit", PARAM_INT, "$default_destination_concurrency_limit", 0, PARAM_INT_MAX, 0,
     "Maximum of parallel deliveries to one destination by the lmtp transport."},
    {"lmtp_destination_recipient_limit", PARAM_INT, "$default_destination_recipient_limit", 0, PARAM_INT_MAX, 0,
     "Maximum of recipients per delivery by the lmtp transport."},
    {"lmtp_lhlo_name", PARAM_STR, "$myhostname", 0, 0, 0,
     "Hostname that the LMTP client sends in LHLO."},
    {"lmtp_lhlo_timeout", PARAM_TIME, "300s", 1, PARAM_TIME_MAX, 's',
     "Time limit for the LMTP server greeting and the LHLO reply."},
    {"lmtp_mail_timeout", PARAM_TIME, "300s", 1, PARAM_TIME_MAX, 's',
     "Time limit for the LMTP reply to MAIL FROM."},
    {"lmtp_quit_timeout", PARAM_TIME, "300s", 1, PARAM_TIME_MAX, 's',
     "Time limit for the LMTP reply to QUIT."},
    {"lmtp_rcpt_timeout", PARAM_TIME, "300s", 1, PARAM_TIME_MAX, 's',
     "Time limit for the LMTP reply to RCPT TO."},
    {"local_command_shell", PARAM_STR, "", 0, 0, 0,
     "Program (e.g. \"/bin/sh -c\") that runs delivery commands; empty: run them directly, without a shell."},
    {"local_destination_concurrency_limit", PARAM_INT, "2", 0, PARAM_INT_MAX, 0,
     "Maximum of parallel deliveries to one local recipient."},
    {"local_destination_recipient_limit", PARAM_INT, "1", 0, PARAM_INT_MAX, 0,
     "Maximum of recipients per local delivery."},
    {"local_recipient_maps", PARAM_LIST, "proxy:unix:passwd.byname $alias_maps", 0, 0, 0,
     "Tables of local users; unknown local users are rejected at RCPT TO (empty: accept all)."},
    {"local_transport", PARAM_STR, "local:$myhostname", 0, 0, 0,
     "Transport for domains in mydestination."},
    {"luser_relay", PARAM_STR, "", 0, 0, 0,
     "Optional address that receives mail for unknown local users."},
    {"mail_name", PARAM_STR, "posta", 0, 0, 0,
     "Mail system name used in the SMTP greeting and in bounce messages."},
    {"mail_owner", PARAM_STR, "posta", 0, 0, 0,
     "Unprivileged user that owns the queue and runs the daemons."},
    {"mail_spool_directory", PARAM_STR, "/var/mail", 0, 0, 0,
     "Directory of mbox mailboxes (or Maildirs when it ends in \"/\")."},
    {"mail_version", PARAM_STR, POSTA_VERSION, 0, 0, 0,
     "Version of posta (read-only)."},
    {"mailbox_command", PARAM_STR, "", 0, 0, 0,
     "Optional command that local delivery runs instead of writing the mailbox."},
    {"mailbox_delivery_lock", PARAM_LIST, "fcntl, dotlock", 0, 0, 0,
     "Locking methods for mbox delivery (fcntl, flock, dotlock)."},
    {"mailbox_size_limit", PARAM_INT, "51200000", 0, PARAM_SIZE_MAX, 0,
     "Maximum bytes of a mailbox or maildir message file (0: no limit)."},
    {"mailbox_transport", PARAM_STR, "", 0, 0, 0,
     "Optional transport (transport:nexthop) for all local mailbox deliveries, e.g. lmtp:unix:private/dovecot-lmtp."},
    {"mailbox_transport_maps", PARAM_LIST, "", 0, 0, 0,
     "Tables of per-user transports (transport:nexthop) for local mailbox deliveries; before mailbox_transport."},
    {"maillog_file", PARAM_STR, "", 0, 0, 0,
     "Optional file that posta logs to instead of syslog or the journal."},
    {"mailq_path", PARAM_STR, "/usr/bin/mailq", 0, 0, 0,
     "Path of the mailq command."},
    {"manpage_directory", PARAM_STR, POSTA_MAN_DIR, 0, 0, 0,
     "Directory of the posta manual pages."},
    {"maps_rbl_reject_code", PARAM_INT, "554", 400, 599, 0,
     "SMTP reply code for a client or domain listed in a DNS blocklist."},
    {"masquerade_domains", PARAM_LIST, "", 0, 0, 0,
     "Domains whose subdomains are stripped from addresses."},
    {"max_idle", PARAM_TIME, "100s", 1, PARAM_TIME_MAX, 's',
     "Time an idle daemon process waits for work before it exits."},
    {"max_use", PARAM_INT, "100", 1, PARAM_INT_MAX, 0,
     "Number of requests a daemon process serves before it exits."},
    {"maximal_backoff_time", PARAM_TIME, "4000s", 1, PARAM_TIME_MAX, 's',
     "Longest time between delivery attempts of a deferred message."},
    {"maximal_queue_lifetime", PARAM_TIME, "5d", 0, PARAM_TIME_MAX, 'd',
     "How long a message stays queued before it is bounced as undeliverable."},
    {"message_size_limit", PARAM_INT, "10240000", 0, PARAM_SIZE_MAX, 0,
     "Maximum bytes of a message including its envelope (0: no limit)."},
    {"milter_default_action", PARAM_STR, "tempfail", 0, 0, 0,
     "What happens to mail when a milter is not available."},
    {"mime_header_checks", PARAM_LIST, "$header_checks", 0, 0, 0,
     "Tables of patterns applied to MIME header fields (Content-*, MIME-Version) and the headers of MIME parts."},
    {"minimal_backoff_time", PARAM_TIME, "300s", 1, PARAM_TIME_MAX, 's',
     "Shortest time between delivery attempts of a deferred message."},
    {"mydestination", PARAM_LIST, "$myhostname, localhost.$mydomain, localhost", 0, 0, 0,
     "Domains that are delivered locally."},
    {"mydomain", PARAM_STR, "", 0, 0, 0,
     "Internet domain of this host; default: myhostname minus its first label, else \"localdomain\" (depends on the machine)."},
    {"myhostname", PARAM_STR, "", 0, 0, 0,
     "Fully qualified name of this host; default: the system host name, canonicalised through the resolver (depends on the machine)."},
    {"mynetworks", PARAM_LIST, "", 0, 0, 0,
     "Trusted client networks; empty default means computed from mynetworks_style and the host's addresses."},
    {"mynetworks_style", PARAM_STR, "host", 0, 0, 0,
     "How mynetworks is computed when not set: host, subnet or class."},
    {"myorigin", PARAM_STR, "$myhostname", 0, 0, 0,
     "Domain appended to locally posted mail without a domain."},
    {"nested_header_checks", PARAM_LIST, "$header_checks", 0, 0, 0,
     "Tables of patterns applied to the header fields of attached messages (message/rfc822)."},
    {"newaliases_path", PARAM_STR, "/usr/bin/newaliases", 0, 0, 0,
     "Path of the newaliases command."},
    {"non_fqdn_reject_code", PARAM_INT, "504", 400, 599, 0,
     "SMTP reply code for a hostname or address that is not fully qualified."},
    {"non_smtpd_milters", PARAM_LIST, "", 0, 0, 0,
     "Milters applied to mail that does not arrive over SMTP."},
    {"notify_classes", PARAM_LIST, "resource, software, 2bounce", 0, 0, 0,
     "Kinds of problems reported to the postmaster."},
    {"parent_domain_matches_subdomains", PARAM_LIST, "debug_peer_list, fast_flush_domains, mynetworks, permit_mx_backup_networks, qmqpd_authorized_clients, relay_domains, smtpd_access_maps", 0, 0, 0,
     "Parameters whose domain patterns also match subdomains."},
    {"posta_queue_sync", PARAM_STR, "auto", 0, 0, 0,
     "How smtpd makes queue files durable before it answers 250 (free text, see smtpd)."},
    {"process_name", PARAM_STR, "", 0, 0, 0,
     "Read-only: the name of the running posta program, set by the program itself."},
    {"qmgr_message_active_limit", PARAM_INT, "20000", 1, PARAM_INT_MAX, 0,
     "Maximum of messages in the active queue."},
    {"qmgr_message_recipient_limit", PARAM_INT, "20000", 1, PARAM_INT_MAX, 0,
     "Maximum of recipients kept in memory by the queue manager."},
    {"queue_directory", PARAM_STR, POSTA_QUEUE_DIR, 0, 0, 0,
     "Directory of the mail queue."},
    {"queue_minfree", PARAM_INT, "0", 0, PARAM_SIZE_MAX, 0,
     "Free bytes the queue file system must keep: smtpd answers MAIL with 452 below this, 1.5 x message_size_limit and SIZE."},
    {"queue_run_delay", PARAM_TIME, "300s", 1, PARAM_TIME_MAX, 's',
     "Time between scans of the deferred queue."},
    {"receive_override_options", PARAM_LIST, "", 0, 0, 0,
     "What smtpd and pickup skip here: no_unknown_recipient_checks, no_address_mappings, no_header_body_checks, no_milters."},
    {"recipient_bcc_maps", PARAM_LIST, "", 0, 0, 0,
     "Tables that give a blind-copy address by recipient address."},
    {"recipient_canonical_maps", PARAM_LIST, "", 0, 0, 0,
     "Address mapping tables applied to recipient addresses."},
    {"recipient_delimiter", PARAM_STR, "", 0, 0, 0,
     "Characters that separate a user name from an address extension (user+ext)."},
    {"reject_code", PARAM_INT, "554", 400, 599, 0,
     "SMTP reply code for the reject restriction."},
    {"reject_tempfail_action", PARAM_STR, "defer_if_permit", 0, 0, 0,
     "What a restriction does when DNS fails temporarily (defer_if_permit, defer or dunno)."},
    {"relay_destination_concurrency_limit", PARAM_INT, "$default_destination_concurrency_limit", 0, PARAM_INT_MAX, 0,
     "Maximum of parallel deliveries to one destination by the relay transport."},
    {"relay_destination_recipient_limit", PARAM_INT, "$default_destination_recipient_limit", 0, PARAM_INT_MAX, 0,
     "Maximum of recipients per delivery by the relay transport."},
    {"relay_domains", PARAM_LIST, "", 0, 0, 0,
     "Domains that this host relays mail to (empty by default)."},
    {"relay_domains_reject_code", PARAM_INT, "554", 400, 599, 0,
     "SMTP reply code for a rejected relay attempt."},
    {"relay_recipient_maps", PARAM_LIST, "", 0, 0, 0,
     "Tables of valid recipients in relay_domains (empty: accept all)."},
    {"relay_transport", PARAM_STR, "relay", 0, 0, 0,
     "Transport for domains in relay_domains."},
    {"relayhost", PARAM_STR, "", 0, 0, 0,
     "Host that all non-local mail is sent to (empty: deliver by MX lookup)."},
    {"require_home_directory", PARAM_BOOL, "no", 0, 0, 0,
     "Require that a recipient's home directory exists before delivery."},
    {"sender_bcc_maps", PARAM_LIST, "", 0, 0, 0,
     "Tables that give a blind-copy address by sender address."},
    {"sender_canonical_maps", PARAM_LIST, "", 0, 0, 0,
     "Address mapping tables applied to sender addresses."},
    {"sendmail_path", PARAM_STR, "/usr/sbin/sendmail", 0, 0, 0,
     "Path of the sendmail command."},
    {"service_name", PARAM_STR, "", 0, 0, 0,
     "Read-only: the master.cf service name of the running daemon, set by the server skeleton."},
    {"service_throttle_time", PARAM_TIME, "60s", 1, PARAM_TIME_MAX, 's',
     "Time master waits before restarting a service that fails to start."},
    {"setgid_group", PARAM_STR, "postdrop", 0, 0, 0,
     "Group of the setgid helper that writes into the maildrop queue."},
    {"smtp_address_preference", PARAM_STR, "any", 0, 0, 0,
     "Address family tried first by the SMTP client: ipv4, ipv6 or any."},
    {"smtp_bind_address", PARAM_STR, "", 0, 0, 0,
     "Optional IPv4 source address of SMTP client connections."},
    {"smtp_bind_address6", PARAM_STR, "", 0, 0, 0,
     "Optional IPv6 source address of SMTP client connections."},
    {"smtp_connect_timeout", PARAM_TIME, "30s", 0, PARAM_TIME_MAX, 's',
     "Time limit for the SMTP client to connect."},
    {"smtp_connection_cache_destinations", PARAM_LIST, "", 0, 0, 0,
     "Next hops whose SMTP sessions are always kept open for reuse."},
    {"smtp_connection_cache_on_demand", PARAM_BOOL, "yes", 0, 0, 0,
     "Keep SMTP sessions open for reuse by later deliveries to the same next hop."},
    {"smtp_connection_cache_time_limit", PARAM_TIME, "2s", 1, PARAM_TIME_MAX, 's',
     "Time an unused SMTP session stays open in the connection cache."},
    {"smtp_connection_reuse_count_limit", PARAM_INT, "0", 0, PARAM_INT_MAX, 0,
     "Maximum of transactions per cached SMTP session (0: no limit)."},
    {"smtp_connection_reuse_time_limit", PARAM_TIME, "300s", 1, PARAM_TIME_MAX, 's',
     "Age after which an SMTP session is no longer reused."},
    {"smtp_data_done_timeout", PARAM_TIME, "600s", 1, PARAM_TIME_MAX, 's',
     "Time limit for the reply to the end of message data."},
    {"smtp_data_init_timeout", PARAM_TIME, "120s", 1, PARAM_TIME_MAX, 's',
     "Time limit for the reply to the DATA command."},
    {"smtp_data_xfer_timeout", PARAM_TIME, "180s", 1, PARAM_TIME_MAX, 's',
     "Time limit for sending message content."},
    {"smtp_destination_concurrency_limit", PARAM_INT, "$default_destination_concurrency_limit", 0, PARAM_INT_MAX, 0,
     "Maximum of parallel deliveries to one destination by the smtp transport."},
    {"smtp_destination_recipient_limit", PARAM_INT, "$default_destination_recipient_limit", 0, PARAM_INT_MAX, 0,
     "Maximum of recipients per delivery by the smtp transport."},
    {"smtp_enforce_tls", PARAM_BOOL, "no", 0, 0, 0,
     "Obsolete: require TLS in the SMTP client (use smtp_tls_security_level)."},
    {"smtp_helo_name", PARAM_STR, "$myhostname", 0, 0, 0,
     "Hostname that the SMTP client sends in HELO/EHLO."},
    {"smtp_helo_timeout", PARAM_TIME, "300s", 1, PARAM_TIME_MAX, 's',
     "Time limit for the server greeting and the HELO/EHLO reply."},
    {"smtp_host_lookup", PARAM_LIST, "dns", 0, 0, 0,
     "How the SMTP client looks up hosts: dns, native."},
    {"smtp_line_length_limit", PARAM_INT, "998", 0, PARAM_INT_MAX, 0,
     "Longest line the SMTP client sends (RFC 5321: 998); longer ones are broken with CR LF SPACE (0: none)."},
    {"smtp_mail_timeout", PARAM_TIME, "300s", 1, PARAM_TIME_MAX, 's',
     "Time limit for the reply to MAIL FROM."},
    {"smtp_mx_address_limit", PARAM_INT, "5", 0, PARAM_INT_MAX, 0,
     "Maximum of MX host addresses the SMTP client tries per delivery (0: no limit)."},
    {"smtp_mx_session_limit", PARAM_INT, "2", 0, PARAM_INT_MAX, 0,
     "Maximum of sessions with servers that answered, per delivery (0: no limit)."},
    {"smtp_never_send_ehlo", PARAM_BOOL, "no", 0, 0, 0,
     "Greet servers with HELO instead of EHLO."},
    {"smtp_quit_timeout", PARAM_TIME, "300s", 1, PARAM_TIME_MAX, 's',
     "Time limit for the reply to QUIT."},
    {"smtp_rcpt_timeout", PARAM_TIME, "300s", 1, PARAM_TIME_MAX, 's',
     "Time limit for the reply to RCPT TO."},
    {"smtp_sasl_auth_enable", PARAM_BOOL, "no", 0, 0, 0,
     "Enable SASL authentication in the SMTP client."},
    {"smtp_sasl_mechanism_filter", PARAM_LIST, "", 0, 0, 0,
     "SASL mechanisms the SMTP client may use (empty: any it supports)."},
    {"smtp_sasl_password_maps", PARAM_LIST, "", 0, 0, 0,
     "Tables of user:password credentials by destination for the SMTP client."},
    {"smtp_sasl_security_options", PARAM_LIST, "noplaintext, noanonymous", 0, 0, 0,
     "SASL mechanism restrictions of the SMTP client."},
    {"smtp_sasl_tls_security_options", PARAM_LIST, "$smtp_sasl_security_options", 0, 0, 0,
     "SASL mechanism restrictions of the SMTP client over TLS."},
    {"smtp_sasl_type", PARAM_STR, "cyrus", 0, 0, 0,
     "SASL plug-in type of the SMTP client."},
    {"smtp_skip_5xx_greeting", PARAM_BOOL, "yes", 0, 0, 0,
     "Try the next MX host when a server greets with 5xx (it bounces only at the last)."},
    {"smtp_starttls_timeout", PARAM_TIME, "300s", 1, PARAM_TIME_MAX, 's',
     "Time limit for the SMTP client's TLS handshake."},
    {"smtp_tls_CAfile", PARAM_STR, "", 0, 0, 0,
     "File of CA certificates that the SMTP client trusts."},
    {"smtp_tls_CApath", PARAM_STR, "", 0, 0, 0,
     "Directory of CA certificates that the SMTP client trusts."},
    {"smtp_tls_cert_file", PARAM_STR, "", 0, 0, 0,
     "Optional client certificate of the SMTP client (PEM)."},
    {"smtp_tls_ciphers", PARAM_STR, "medium", 0, 0, 0,
     "Cipher grade of the SMTP client with opportunistic TLS: medium or high."},
    {"smtp_tls_key_file", PARAM_STR, "$smtp_tls_cert_file", 0, 0, 0,
     "Private key of smtp_tls_cert_file (PEM)."},
    {"smtp_tls_loglevel", PARAM_INT, "0", 0, 4, 0,
     "Amount of TLS logging of the SMTP client (0-4)."},
    {"smtp_tls_mandatory_ciphers", PARAM_STR, "medium", 0, 0, 0,
     "Cipher grade of the SMTP client when TLS is mandatory: medium or high."},
    {"smtp_tls_mandatory_protocols", PARAM_STR, ">=TLSv1", 0, 0, 0,
     "TLS protocols the SMTP client allows when TLS is mandatory."},
    {"smtp_tls_note_starttls_offer", PARAM_BOOL, "no", 0, 0, 0,
     "Log the hosts that offer STARTTLS when the SMTP client does not use TLS."},
    {"smtp_tls_protocols", PARAM_STR, ">=TLSv1", 0, 0, 0,
     "TLS protocols the SMTP client allows with opportunistic TLS."},
    {"smtp_tls_secure_cert_match", PARAM_LIST, "nexthop, dot-nexthop", 0, 0, 0,
     "Names the server certificate must match at level secure (hostname, nexthop, dot-nexthop or a name)."},
    {"smtp_tls_security_level", PARAM_STR, "", 0, 0, 0,
     "TLS policy of the SMTP client: none, may, encrypt, verify, secure."},
    {"smtp_tls_servername", PARAM_STR, "", 0, 0, 0,
     "SNI name the SMTP client sends: hostname, nexthop or a name (empty: the host name at verify and secure only)."},
    {"smtp_tls_session_cache_database", PARAM_STR, "", 0, 0, 0,
     "Optional table that caches TLS sessions of the SMTP client."},
    {"smtp_tls_verify_cert_match", PARAM_LIST, "hostname", 0, 0, 0,
     "Names the server certificate must match at level verify (hostname, nexthop, dot-nexthop or a name)."},
    {"smtp_tls_wrappermode", PARAM_BOOL, "no", 0, 0, 0,
     "SMTP client uses TLS from the first byte (port 465) instead of STARTTLS."},
    {"smtp_use_tls", PARAM_BOOL, "no", 0, 0, 0,
     "Obsolete: opportunistic TLS in the SMTP client (use smtp_tls_security_level)."},
    {"smtpd_banner", PARAM_STR, "$myhostname ESMTP $mail_name", 0, 0, 0,
     "Text that follows the 220 code in the SMTP greeting."},
    {"smtpd_client_connection_count_limit", PARAM_INT, "50", 0, PARAM_INT_MAX, 0,
     "Maximum of simultaneous connections from one client (0: no limit)."},
    {"smtpd_client_connection_rate_limit", PARAM_INT, "0", 0, PARAM_INT_MAX, 0,
     "Maximum of connections per client per anvil_rate_time_unit (0: no limit)."},
    {"smtpd_client_event_limit_exceptions", PARAM_LIST, "${smtpd_client_connection_limit_exceptions:$mynetworks}", 0, 0, 0,
     "Clients exempt from the connection and rate limits."},
    {"smtpd_client_message_rate_limit", PARAM_INT, "0", 0, PARAM_INT_MAX, 0,
     "Maximum of messages per client per anvil_rate_time_unit (0: no limit)."},
    {"smtpd_client_recipient_rate_limit", PARAM_INT, "0", 0, PARAM_INT_MAX, 0,
     "Maximum of recipients per client per anvil_rate_time_unit (0: no limit)."},
    {"smtpd_client_restrictions", PARAM_LIST, "", 0, 0, 0,
     "Access restrictions applied when a client connects."},
    {"smtpd_data_restrictions", PARAM_LIST, "", 0, 0, 0,
     "Access restrictions applied to the DATA command."},
    {"smtpd_delay_reject", PARAM_BOOL, "yes", 0, 0, 0,
     "Wait until RCPT TO before applying client, HELO and sender restrictions."},
    {"smtpd_discard_ehlo_keywords", PARAM_LIST, "", 0, 0, 0,
     "EHLO keywords that smtpd does not announce."},
    {"smtpd_end_of_data_restrictions", PARAM_LIST, "", 0, 0, 0,
     "Access restrictions applied at the end of message data."},
    {"smtpd_enforce_tls", PARAM_BOOL, "no", 0, 0, 0,
     "Obsolete: require STARTTLS (use smtpd_tls_security_level)."},
    {"smtpd_error_sleep_time", PARAM_TIME, "1s", 0, PARAM_TIME_MAX, 's',
     "Delay before replying to a client error once the soft error limit is reached."},
    {"smtpd_forbid_bare_newline", PARAM_STR, "normalize", 0, 0, 0,
     "Treatment of lines ending in bare LF: normalize, yes (reject), reject or no."},
    {"smtpd_forbid_bare_newline_exclusions", PARAM_LIST, "$mynetworks", 0, 0, 0,
     "Clients exempt from smtpd_forbid_bare_newline."},
    {"smtpd_hard_error_limit", PARAM_INT, "20", 1, PARAM_INT_MAX, 0,
     "Number of client errors without delivering mail after which smtpd disconnects."},
    {"smtpd_helo_required", PARAM_BOOL, "no", 0, 0, 0,
     "Require HELO or EHLO before MAIL FROM."},
    {"smtpd_helo_restrictions", PARAM_LIST, "", 0, 0, 0,
     "Access restrictions applied to HELO/EHLO."},
    {"smtpd_junk_command_limit", PARAM_INT, "100", 1, PARAM_INT_MAX, 0,
     "Number of NOOP, RSET, VRFY commands without delivering mail before each counts as an error."},
    {"smtpd_milters", PARAM_LIST, "", 0, 0, 0,
     "Milters applied to mail received over SMTP."},
    {"smtpd_null_access_lookup_key", PARAM_STR, "<>", 0, 0, 0,
     "Access table key for the null sender address."},
    {"smtpd_peername_lookup", PARAM_BOOL, "yes", 0, 0, 0,
     "Look up the client hostname (reverse and forward DNS)."},
    {"smtpd_policy_service_default_action", PARAM_STR, "451 4.3.5 Server configuration problem",
     0, 0, 0,
     "The access action of a check_policy_service request that failed try_limit times."},
    {"smtpd_policy_service_max_idle", PARAM_TIME, "300s", 1, PARAM_TIME_MAX, 's',
     "Close a policy server connection that has been unused this long."},
    {"smtpd_policy_service_max_ttl", PARAM_TIME, "1000s", 1, PARAM_TIME_MAX, 's',
     "Close a policy server connection after its current request once it is this old."},
    {"smtpd_policy_service_policy_context", PARAM_STR, "", 0, 0, 0,
     "Sent as the policy_context attribute to check_policy_service servers."},
    {"smtpd_policy_service_request_limit", PARAM_INT, "0", 0, PARAM_INT_MAX, 0,
     "Requests per policy server connection before it is closed (0: no limit)."},
    {"smtpd_policy_service_retry_delay", PARAM_TIME, "1s", 1, PARAM_TIME_MAX, 's',
     "Wait this long before trying a failed check_policy_service request again."},
    {"smtpd_policy_service_timeout", PARAM_TIME, "100s", 1, PARAM_TIME_MAX, 's',
     "Time limit for one check_policy_service request (connect, send, reply)."},
    {"smtpd_policy_service_try_limit", PARAM_INT, "2", 1, PARAM_INT_MAX, 0,
     "Attempts of a check_policy_service request before default_action applies."},
    {"smtpd_recipient_limit", PARAM_INT, "1000", 1, PARAM_INT_MAX, 0,
     "Maximum of recipients per message."},
    {"smtpd_recipient_restrictions", PARAM_LIST, "", 0, 0, 0,
     "Access restrictions applied to RCPT TO, after smtpd_relay_restrictions."},
    {"smtpd_reject_footer", PARAM_STR, "", 0, 0, 0,
     "Text added to every 4xx/5xx reply of smtpd: \\n starts a line, a leading \\c continues the last; $client_address, $server_name, ... expand."},
    {"smtpd_reject_unlisted_recipient", PARAM_BOOL, "yes", 0, 0, 0,
     "Reject recipients that are not listed for their domain class."},
    {"smtpd_reject_unlisted_sender", PARAM_BOOL, "no", 0, 0, 0,
     "Reject sender addresses that are not listed for their domain class."},
    {"smtpd_relay_restrictions", PARAM_LIST, "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination", 0, 0, 0,
     "Relay control applied to RCPT TO, before smtpd_recipient_restrictions (posta rejects, Postfix defers)."},
    {"smtpd_restriction_classes", PARAM_LIST, "", 0, 0, 0,
     "Names of parameters that hold restriction lists usable as one restriction."},
    {"smtpd_sasl_auth_enable", PARAM_BOOL, "no", 0, 0, 0,
     "Offer SASL authentication (AUTH) in smtpd."},
    {"smtpd_sasl_authenticated_header", PARAM_BOOL, "no", 0, 0, 0,
     "Record the SASL login name in the Received: header."},
    {"smtpd_sasl_local_domain", PARAM_STR, "", 0, 0, 0,
     "SASL realm of smtpd."},
    {"smtpd_sasl_path", PARAM_STR, "smtpd", 0, 0, 0,
     "Cyrus configuration name, or the Dovecot auth socket path."},
    {"smtpd_sasl_security_options", PARAM_LIST, "noanonymous, noplaintext", 0, 0, 0,
     "SASL mechanism restrictions of smtpd without TLS (posta: no plaintext mechanisms)."},
    {"smtpd_sasl_service", PARAM_STR, "smtp", 0, 0, 0,
     "SASL service name of smtpd."},
    {"smtpd_sasl_tls_security_options", PARAM_LIST, "noanonymous", 0, 0, 0,
     "SASL mechanism restrictions of smtpd over TLS."},
    {"smtpd_sasl_type", PARAM_STR, "cyrus", 0, 0, 0,
     "SASL plug-in type of smtpd: cyrus or dovecot."},
    {"smtpd_sender_login_maps", PARAM_LIST, "", 0, 0, 0,
     "Tables of which SASL login may use which sender address."},
    {"smtpd_sender_restrictions", PARAM_LIST, "", 0, 0, 0,
     "Access restrictions applied to MAIL FROM."},
    {"smtpd_soft_error_limit", PARAM_INT, "10", 1, PARAM_INT_MAX, 0,
     "Number of client errors without delivering mail after which smtpd delays each reply."},
    {"smtpd_starttls_timeout", PARAM_TIME, "300s", 1, PARAM_TIME_MAX, 's',
     "Time limit for smtpd's TLS handshake."},
    {"smtpd_timeout", PARAM_TIME, "300s", 1, PARAM_TIME_MAX, 's',
     "Time limit for a client to send a command or data."},
    {"smtpd_tls_CAfile", PARAM_STR, "", 0, 0, 0,
     "File of CA certificates that smtpd trusts for client certificates."},
    {"smtpd_tls_CApath", PARAM_STR, "", 0, 0, 0,
     "Directory of CA certificates that smtpd trusts for client certificates."},
    {"smtpd_tls_auth_only", PARAM_BOOL, "no", 0, 0, 0,
     "Offer AUTH only after STARTTLS."},
    {"smtpd_tls_cert_file", PARAM_STR, "", 0, 0, 0,
     "Server certificate of smtpd (PEM)."},
    {"smtpd_tls_chain_files", PARAM_LIST, "", 0, 0, 0,
     "Files of keys and certificate chains of smtpd (instead of cert/key files)."},
    {"smtpd_tls_ciphers", PARAM_STR, "medium", 0, 0, 0,
     "Cipher grade of smtpd with opportunistic TLS."},
    {"smtpd_tls_key_file", PARAM_STR, "$smtpd_tls_cert_file", 0, 0, 0,
     "Private key of smtpd_tls_cert_file (PEM)."},
    {"smtpd_tls_loglevel", PARAM_INT, "0", 0, 4, 0,
     "Amount of TLS logging of smtpd (0-4)."},
    {"smtpd_tls_mandatory_ciphers", PARAM_STR, "medium", 0, 0, 0,
     "Cipher grade of smtpd when TLS is mandatory."},
    {"smtpd_tls_mandatory_protocols", PARAM_STR, ">=TLSv1.2", 0, 0, 0,
     "TLS protocols smtpd allows when TLS is mandatory."},
    {"smtpd_tls_protocols", PARAM_STR, ">=TLSv1.2", 0, 0, 0,
     "TLS protocols smtpd allows with opportunistic TLS."},
    {"smtpd_tls_received_header", PARAM_BOOL, "no", 0, 0, 0,
     "Record the TLS protocol and cipher in the Received: header."},
    {"smtpd_tls_security_level", PARAM_STR, "", 0, 0, 0,
     "TLS policy of smtpd: none, may (offer STARTTLS) or encrypt (require it)."},
    {"smtpd_tls_session_cache_database", PARAM_STR, "", 0, 0, 0,
     "Optional table that caches TLS sessions of smtpd."},
    {"smtpd_tls_session_cache_timeout", PARAM_TIME, "3600s", 0, PARAM_TIME_MAX, 's',
     "Lifetime of cached TLS sessions of smtpd."},
    {"smtpd_tls_wrappermode", PARAM_BOOL, "no", 0, 0, 0,
     "smtpd uses TLS from the first byte (port 465) instead of STARTTLS."},
    {"smtpd_use_tls", PARAM_BOOL, "no", 0, 0, 0,
     "Obsolete: offer STARTTLS (use smtpd_tls_security_level)."},
    {"smtputf8_enable", PARAM_BOOL, "yes", 0, 0, 0,
     "Support SMTPUTF8 (RFC 6531) in smtpd and the SMTP client."},
    {"soft_bounce", PARAM_BOOL, "no", 0, 0, 0,
     "Turn permanent delivery errors and rejects into temporary ones (for testing)."},
    {"spf_fail_action", PARAM_STR, "header", 0, 0, 0,
     "What an SPF fail of MAIL FROM or HELO does: reject (550 5.7.23 with the domain's explanation) or header."},
    {"spf_helo_verify", PARAM_BOOL, "yes", 0, 0, 0,
     "Check the HELO/EHLO name with SPF (RFC 7208) too."},
    {"spf_received_header", PARAM_BOOL, "no", 0, 0, 0,
     "Also add a Received-SPF: header field (RFC 7208 9.1) to received mail."},
    {"spf_verify", PARAM_BOOL, "yes", 0, 0, 0,
     "Check the MAIL FROM domain of received mail with SPF (RFC 7208)."},
    {"stale_lock_time", PARAM_TIME, "500s", 1, PARAM_TIME_MAX, 's',
     "Age after which a mailbox dotlock file is removed as stale."},
    {"strict_rfc821_envelopes", PARAM_BOOL, "no", 0, 0, 0,
     "Require the <> brackets and reject extra text in MAIL FROM and RCPT TO."},
    {"syslog_facility", PARAM_STR, "mail", 0, 0, 0,
     "Syslog facility of posta's log lines."},
    {"syslog_name", PARAM_STR, "posta", 0, 0, 0,
     "Prefix of the tag of posta's log lines (posta/smtpd)."},
    {"transport_maps", PARAM_LIST, "", 0, 0, 0,
     "Tables that choose the transport and next hop by recipient."},
    {"unknown_address_reject_code", PARAM_INT, "450", 400, 599, 0,
     "SMTP reply code for a sender or recipient domain that does not resolve."},
    {"unknown_address_tempfail_action", PARAM_STR, "$reject_tempfail_action", 0, 0, 0,
     "Action of reject_unknown_sender_domain/reject_unknown_recipient_domain when DNS fails temporarily."},
    {"unknown_client_reject_code", PARAM_INT, "450", 400, 599, 0,
     "SMTP reply code for a client without a valid hostname."},
    {"unknown_helo_hostname_tempfail_action", PARAM_STR, "$reject_tempfail_action", 0, 0, 0,
     "Action of reject_unknown_helo_hostname when DNS fails temporarily."},
    {"unknown_hostname_reject_code", PARAM_INT, "450", 400, 599, 0,
     "SMTP reply code for a HELO hostname without an address or MX."},
    {"unknown_local_recipient_reject_code", PARAM_INT, "550", 400, 599, 0,
     "SMTP reply code for an unknown local recipient."},
    {"unknown_relay_recipient_reject_code", PARAM_INT, "550", 400, 599, 0,
     "SMTP reply code for an unknown recipient in relay_domains."},
    {"unknown_virtual_alias_reject_code", PARAM_INT, "550", 400, 599, 0,
     "SMTP reply code for an unknown recipient in virtual_alias_domains."},
    {"unknown_virtual_mailbox_reject_code", PARAM_INT, "550", 400, 599, 0,
     "SMTP reply code for an unknown recipient in virtual_mailbox_domains."},
    {"virtual_alias_domains", PARAM_LIST, "$virtual_alias_maps", 0, 0, 0,
     "Domains whose addresses are all aliased through virtual_alias_maps (a table key equal to the domain counts); mail to an unlisted address there is refused."},
    {"virtual_alias_expansion_limit", PARAM_INT, "1000", 1, PARAM_INT_MAX, 0,
     "Most addresses one recipient may expand to through virtual_alias_maps; beyond it the message is not accepted (try again later)."},
    {"virtual_alias_maps", PARAM_LIST, "$virtual_maps", 0, 0, 0,
     "Tables that map recipient addresses to lists of addresses, for all domains, applied recursively when mail is queued (see virtual(5))."},
    {"virtual_alias_recursion_limit", PARAM_INT, "1000", 1, PARAM_INT_MAX, 0,
     "Longest chain of virtual_alias_maps expansions; beyond it the message is not accepted (try again later)."},
    {"virtual_mailbox_base", PARAM_STR, "", 0, 0, 0,
     "Directory that virtual_mailbox_maps paths are relative to."},
    {"virtual_mailbox_domains", PARAM_LIST, "$virtual_mailbox_maps", 0, 0, 0,
     "Domains whose mailboxes are listed in virtual_mailbox_maps."},
    {"virtual_mailbox_maps", PARAM_LIST, "", 0, 0, 0,
     "Tables of mailbox paths by virtual address."},
    {"virtual_maps", PARAM_LIST, "", 0, 0, 0,
     "Obsolete name of virtual_alias_maps."},
    {"virtual_transport", PARAM_STR, "virtual", 0, 0, 0,
     "Transport for domains in virtual_mailbox_domains."},
};

const size_t param_count = POSTA_ARRAY_LEN(param_table);

/* param_cmp - bsearch comparison of a name with a table entry */
static int param_cmp(const void *key, const void *elem)
{
    const struct param_def *def = elem;

    return strcmp(key, def->name);
}

/* param_find - the entry for name, or NULL */
const struct param_def *param_find(const char *name)
{
    if (name == NULL)
        return NULL;
    return bsearch(name, param_table, param_count, sizeof(param_table[0]), param_cmp);
}

/* param_parse_int - a decimal integer with optional sign, nothing else */
bool param_parse_int(const char *value, long long *out)
{
    const char *p = value;
    char *end;
    long long v;

    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '-' || *p == '+')
        p++;
    if (!isdigit((unsigned char)*p))
        return false;
    errno = 0;
    v = strtoll(value, &end, 10);
    if (errno == ERANGE)
        return false;
    while (*end == ' ' || *end == '\t')
        end++;
    if (*end != 0)
        return false;
    *out = v;
    return true;
}

/* param_parse_bool - yes/no, true/false, 1/0 (any case) */
bool param_parse_bool(const char *value, bool *out)
{
    static const char *const yes[] = {"yes", "true", "1"};
    static const char *const no[] = {"no", "false", "0"};
    size_t i;

    for (i = 0; i < POSTA_ARRAY_LEN(yes); i++) {
        if (strcasecmp(value, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(value, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* unit_seconds - seconds in one unit, 0 for an unknown unit letter */
static long long unit_seconds(int unit)
{
    switch (tolower(unit)) {
    case 's':
        return 1;
    case 'm':
        return SECS_MINUTE;
    case 'h':
        return SECS_HOUR;
    case 'd':
        return SECS_DAY;
    case 'w':
        return SECS_WEEK;
    default:
        return 0;
    }
}

/* param_parse_time - seconds from "10s", "5m", "1h", "2d", "1w" or a bare number */
bool param_parse_time(const char *value, char unit, long long *secs)
{
    const char *p = value;
    long long n = 0;
    long long mult;
    int u;

    if (!isdigit((unsigned char)*p))
        return false;
    for (; isdigit((unsigned char)*p); p++) {
        if (n > (LLONG_MAX - 9) / 10)
            return false;
        n = n * 10 + (*p - '0');
    }
    if (*p == 0) {
        u = unit ? unit : 's';
    } else {
        u = *p++;
        if (*p != 0)
            return false;
    }
    if ((mult = unit_seconds(u)) == 0)
        return false;
    if (n > LLONG_MAX / mult)
        return false;
    *secs = n * mult;
    return true;
}

/* list_braces_ok - { and } balanced and properly nested */
static bool list_braces_ok(const char *value)
{
    long depth = 0;
    const char *p;

    for (p = value; *p; p++) {
        if (*p == '{')
            depth++;
        else if (*p == '}' && --depth < 0)
            return false;
    }
    return depth == 0;
}

/* param_check - validate value (expanded) for def; false + *why on error */
bool param_check(const struct param_def *def, const char *value, const char **why)
{
    static char why_buf[PARAM_WHY_MAX];
    long long n;
    bool b;

    switch (def->type) {
    case PARAM_STR:
        return true;
    case PARAM_LIST:
        if (!list_braces_ok(value)) {
            *why = "unbalanced { } in list";
            return false;
        }
        return true;
    case PARAM_BOOL:
        if (!param_parse_bool(value, &b)) {
            snprintf(why_buf, sizeof(why_buf), "\"%.*s\" is not yes or no",
                     PARAM_WHY_VALUE_MAX, value);
            *why = why_buf;
            return false;
        }
        return true;
    case PARAM_INT:
        if (!param_parse_int(value, &n)) {
            snprintf(why_buf, sizeof(why_buf), "\"%.*s\" is not an integer",
                     PARAM_WHY_VALUE_MAX, value);
            *why = why_buf;
            return false;
        }
        break;
    case PARAM_TIME:
        if (!param_parse_time(value, def->unit, &n)) {
            snprintf(why_buf, sizeof(why_buf),
                     "\"%.*s\" is not a time (number with optional unit s, m, h, d or w)",
                     PARAM_WHY_VALUE_MAX, value);
            *why = why_buf;
            return false;
        }
        break;
    default:
        *why = "unknown parameter type";
        return false;
    }
    if (n < def->min || n > def->max) {
        snprintf(why_buf, sizeof(why_buf), "\"%.*s\" is out of range %lld..%lld%s",
                 PARAM_WHY_VALUE_MAX, value, def->min, def->max,
                 def->type == PARAM_TIME ? " seconds" : "");
        *why = why_buf;
        return false;
    }
    return true;
}
