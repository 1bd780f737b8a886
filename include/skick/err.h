/*  skick/err.h - error codes shared by the runtime, the wire protocol and skickctl

    Every error that crosses a boundary (an API return, a wire frame, a CLI exit
    code) comes from this one table. Numbers are fixed forever: a retired code
    keeps its slot as SKICK_EOBSOLETE<n>, it is never reused.
*/
#ifndef SKICK_ERR_H_INCLUDED
#define SKICK_ERR_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

/*  XX(number, name, message) */
#define SKICK_ERR_MAP(XX)                                                           \
    XX(0, OK, "success")                                                            \
    XX(1, EINVAL, "invalid argument")                                               \
    XX(2, ENOTFOUND, "not found")                                                   \
    XX(3, EFULL, "mailbox full")                                                    \
    XX(4, EDEAD, "no such actor (dead or never existed)")                           \
    XX(5, ETIMEDOUT, "timed out")                                                   \
    XX(6, ECLOSED, "conversation closed by the partner")                            \
    XX(7, ESTOPPED, "actor is stopping")                                            \
    XX(8, ESCHEMA, "message does not conform to the schema")                        \
    XX(9, EPROTO, "protocol error")                                                 \
    XX(10, ENOMEM, "out of memory")                                                 \
    XX(11, ERESERVED, "reserved action name")                                       \
    XX(12, EACTION, "unknown action")                                               \
    XX(13, EPARTNER, "conversation partner failed")                                 \
    XX(14, EBACKEND, "storage backend error")                                       \
    XX(15, ENOTYPE, "unknown actor type")                                           \
    XX(16, ECONTEXT, "not allowed in this context")                                 \
    XX(17, ESTART, "could not start")                                               \
    XX(18, EFORMAT, "malformed message")                                            \
    XX(19, EUNREACH, "cannot be reached (no broker, or the Redis server is down)") \
    XX(20, EBACKLOG, "the client is not reading: its send queue is full")          \
    XX(21, ETOOBIG, "message larger than the limit")                                \
    XX(22, EVERSION, "the other side speaks another protocol version") \
    XX(23, ETYPE, "the stored value is not of the type the operation needs")       \
    XX(24, EPERM, "not permitted by the operator's configuration")                 \
    XX(25, EBUSY, "too many at once: a configured limit is reached")

typedef enum {
#define SKICK_ERR_ENUM_(n, name, msg) SKICK_##name = n,
    SKICK_ERR_MAP(SKICK_ERR_ENUM_)
#undef SKICK_ERR_ENUM_
    SKICK_ERR_COUNT_
} skick_err_t;

/*  Return a static, human-readable description of err ("unknown error" for
    numbers outside the table). Never NULL. */
const char *skick_strerror(int err);

/*  Return the static symbolic name of err without the SKICK_ prefix
    ("ETIMEDOUT"), or "EUNKNOWN". Never NULL. */
const char *skick_err_name(int err);

/*  The code whose skick_err_name is name ("EDEAD" -> SKICK_EDEAD), or
    `otherwise` for NULL or a name not in the table: for codes read from
    the wire. */
int skick_err_code(const char *name, int otherwise);

/*  Return the error code set by the last failing skick_* call on this thread
    (the runtime is single-threaded per shard, so this is per shard). Calls that
    succeed do not reset it. */
int skick_errno(void);

/*  Set the thread's last error code; used by the runtime and by backends. */
void skick_set_errno(int err);

#ifdef __cplusplus
}
#endif
#endif
