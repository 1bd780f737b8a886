/*  skick-node - one Skick shard process

    Everything lives in libskick; see skick_run (node/node_run.c) and
    `skick-node --help`.
*/
#include "skick/skick.h"

int main(int argc, char **argv)
{
    return skick_run(argc, argv);
}
