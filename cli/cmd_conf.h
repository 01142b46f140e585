/*
 * cmd_conf.h - "posta conf": show and edit main.cf and master.cf (postconf)
 *
 * Without edit options: every parameter "name = value" (unexpanded, as
 * main.cf or the default has it); -n only those set in main.cf; -d the
 * defaults; -h values only; -x expanded values; names as arguments print
 * just those (an unknown name: "unknown parameter: NAME (did you mean
 * OTHER?)", exit 1); -M prints the master.cf services, normalised; -F
 * their fields, -P their -o parameters. Edits: -e, -X, -# on main.cf,
 * with -M, -F or -P on master.cf (see cmd_conf.c). -c DIR is normally
 * handled by the caller (config_dir) but is accepted here too. Bad
 * options: usage on stderr, exit 2.
 */
#ifndef POSTA_CMD_CONF_H
#define POSTA_CMD_CONF_H

/* cmd_conf - run "posta conf"; argv[0] is the command name; exit status */
int cmd_conf(int argc, char **argv, const char *config_dir);

#endif
