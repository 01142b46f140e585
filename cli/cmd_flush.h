/*
 * cmd_flush.h - "posta flush": retry every deferred message now
 */
#ifndef POSTA_CMD_FLUSH_H
#define POSTA_CMD_FLUSH_H

struct cfg;

/*
 * cmd_flush - argv[0] is the command name; no options. Sends the queue
 * manager the 'F' trigger (public/qmgr). Returns the exit status: 0, 1
 * (the queue manager could not be reached) or 2 (usage).
 */
int cmd_flush(int argc, char **argv, struct cfg *cfg);

#endif
