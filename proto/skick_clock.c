/*  skick_clock - the monotonic clock in milliseconds  */
#include "skick_clock.h"

#include <time.h>

int64_t skick_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
