/*  skick_err - the error table: names, messages, and the per-thread last error

    The numbers live in include/skick/err.h (SKICK_ERR_MAP) and never change.
*/
#include "skick/err.h"

#include <string.h>

static __thread int s_errno;

const char *skick_strerror(int err)
{
    switch (err) {
#define SKICK_ERR_MSG_(n, name, msg)                                                \
    case n:                                                                         \
        return msg;
        SKICK_ERR_MAP(SKICK_ERR_MSG_)
#undef SKICK_ERR_MSG_
    default:
        return "unknown error";
    }
}

const char *skick_err_name(int err)
{
    switch (err) {
#define SKICK_ERR_NAME_(n, name, msg)                                               \
    case n:                                                                         \
        return #name;
        SKICK_ERR_MAP(SKICK_ERR_NAME_)
#undef SKICK_ERR_NAME_
    default:
        return "EUNKNOWN";
    }
}

int skick_err_code(const char *name, int otherwise)
{
    for (int e = 1; name && e < SKICK_ERR_COUNT_; e++)
        if (strcmp(name, skick_err_name(e)) == 0)
            return e;
    return otherwise;
}

int skick_errno(void)
{
    return s_errno;
}

void skick_set_errno(int err)
{
    s_errno = err;
}
