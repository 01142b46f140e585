/*
 * cmd_conf.h - "posta conf": show main.cf parameters and master.cf services
 *
 * The postconf subset: no arguments prints every parameter "name = value"
 * (unexpanded, as main.cf or the default has it); -n only those set in
 * main.cf; -d the defaults; -h values only; -x expanded values; names as
 * arguments print just those (unknown names: a warning with a "did you
 * mean" suggestion, exit 1); -M prints the master.cf services, normalised.
 * -c DIR is normally handled by the caller (config_dir) but is accepted
 * here too. Bad options: usage on stderr, exit 2.
 */
#ifndef POSTA_CMD_CONF_H
#define POSTA_CMD_CONF_H

/* cmd_conf - run "posta conf"; argv[0] is the command name; exit status */
int cmd_conf(int argc, char **argv, const char *config_dir);

#endif
