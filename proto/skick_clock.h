/*  skick_clock - the monotonic clock in milliseconds

    What deadlines, back-offs and log budgets measure against in proto/
    and the programs built on it (CLOCK_MONOTONIC: never jumps with the
    wall clock). Thread-safe; no state.
*/
#ifndef SKICK_CLOCK_H_INCLUDED
#define SKICK_CLOCK_H_INCLUDED

#include <stdint.h>

/*  Milliseconds of CLOCK_MONOTONIC. */
int64_t skick_clock_ms(void);

#endif
