/*
 * cmd_dkim.h - "posta dkim": DKIM keys, signing and verification by hand
 */
#ifndef POSTA_CMD_DKIM_H
#define POSTA_CMD_DKIM_H

/*
 * cmd_dkim - argv[0] is "dkim", argv[1] the subcommand:
 *
 *   keygen DOMAIN SELECTOR [--type rsa|ed25519] [--bits N] [--dir DIR]
 *       write DIR/DOMAIN.SELECTOR.key (mode 0600; DIR defaults to
 *       CONFIG_DIR/dkim) and print the DNS TXT record to publish
 *   sign --key FILE --domain D --selector S [--time T] [--canon C]
 *       sign the message on stdin, print it with the signature on top
 *   verify [--record NAME=TXT]... [--dns-servers LIST] [--time T]
 *       verify the message on stdin (keys from --record, else from DNS,
 *       through the name servers LIST if given: "ip[:port], ...")
 *       and print the dkim= results; exit 0 when one signature passes
 *
 * Returns the exit status: 0, 1 (failure) or 2 (usage).
 */
int cmd_dkim(int argc, char **argv, const char *config_dir);

#endif
