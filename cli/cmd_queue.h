/*
 * cmd_queue.h - "posta queue": list the mail queue (mailq)
 */
#ifndef POSTA_CMD_QUEUE_H
#define POSTA_CMD_QUEUE_H

struct cfg;

/*
 * cmd_queue - argv[0] is the command name ("queue" or "mailq"); options:
 * -p (default) the listing in postqueue -p format, -j one JSON object per
 * message. Deferred recipients show their last reason from the defer log
 * ("(reason)" lines with -p, "delay_reason" with -j). Returns the exit
 * status: 0, 1 (queue unreadable or output error) or 2 (usage).
 */
int cmd_queue(int argc, char **argv, struct cfg *cfg);

#endif
