/*
 * cmd_queue.h - "posta queue": list the mail queue (mailq), retry mail (postqueue)
 */
#ifndef POSTA_CMD_QUEUE_H
#define POSTA_CMD_QUEUE_H

struct cfg;

/*
 * cmd_queue - argv[0] is the command name ("queue" or "mailq"); options:
 * -p (default) the listing in postqueue -p format, -j one JSON object per
 * message. Deferred recipients show their last reason from the defer log
 * ("(reason)" lines with -p, "delay_reason" with -j). -f retries all
 * deferred mail, -s SITE the deferred messages with a recipient in domain
 * SITE, -i ID one deferred message (made due now, the queue manager
 * woken). Returns the exit status: 0, 1 (queue unreadable, output error,
 * unknown ID, queue manager unreachable) or 2 (usage).
 */
int cmd_queue(int argc, char **argv, struct cfg *cfg);

#endif
