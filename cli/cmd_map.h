/*
 * cmd_map.h - "posta map": build, query, list and edit lookup tables (postmap)
 */
#ifndef POSTA_CMD_MAP_H
#define POSTA_CMD_MAP_H

/*
 * cmd_map - argv[0] is the command name ("map"), the postmap(1) options
 * and "[type:]file" arguments follow:
 *
 *   posta map [-c config_dir] [-f] [-F] [-N|-n] [-i] [-o] [-p] [-r] [-w] [-v]
 *             [-q key|-] [-s] [-d key|-] [type:]file ...
 *
 * The configuration (read only for $default_database_type, when an
 * argument has no "type:") is -c config_dir, else $MAIL_CONFIG, else the
 * compiled-in default. Returns the exit status: 0 success (found, built,
 * deleted), 1 the key was not found (-q, -d), 2 an error or bad usage.
 */
int cmd_map(int argc, char **argv);

/* cmd_map_dir - the same, with posta's global -c directory as the default */
int cmd_map_dir(int argc, char **argv, const char *config_dir);

#endif
