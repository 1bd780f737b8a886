/*  node_run.h - skick_run for programs that are more than a shard (node/)

    A program on top of libskick that is a special kind of shard (the AMQP
    bridge, bridge/) runs the same process as skick-node: options, modules,
    signals, the cluster. It says here how it differs. Internal: for the
    programs of this tree, not part of the public API.
*/
#ifndef NODE_RUN_H_INCLUDED
#define NODE_RUN_H_INCLUDED

#include <stdbool.h>

typedef struct node_run_opts {
    const char *name;          /* the program's name for --version ("skick-amqp-bridge") */
    const char *const *roles;  /* roles it announces besides front and back (NULL-terminated) */
    bool no_default_roles;     /* neither front nor back unless asked (--front / --back) */
} node_run_opts_t;

/*  skick_run(argc, argv) with ro (borrowed for the call; NULL: skick-node's
    defaults). Same options, same exit status. */
int node_run(int argc, char **argv, const node_run_opts_t *ro);

#endif
