/*  skick_redis - speaking Redis the Python original's way, with no event loop

    What a shard's Redis hash backend (node/redis/) and the broker's store
    need in common: the URL of the server, the key layout "<table>:<key>"
    and the mapping between JSON values and Redis strings (docs/hashes.md
    has the table, with what a Python Skick shard sees). Nothing here does
    I/O but skick_redis_url_read (and _choose, which reads the file and
    the environment); every function is thread-safe.

    Ownership: skick_redis_encode's *out and skick_redis_decode's *out
    belong to the caller (free() and json_object_put()).
*/
#ifndef SKICK_REDIS_H_INCLUDED
#define SKICK_REDIS_H_INCLUDED

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#define SKICK_REDIS_PORT 6379     /* when redis://HOST has no :PORT */
#define SKICK_REDIS_DB_MAX 100000 /* highest /DB or ?db=N accepted */
#define SKICK_REDIS_KEY_MAX 1300  /* bytes of "<table>:<key>" at most, with the NUL */

/*  Where a Redis server is and how to log in. */
typedef struct {
    bool unix_socket;    /* unix:///path: path is set, host and port are not */
    char host[256];      /* name or address, without the [] of an IPv6 one */
    int port;            /* TCP port */
    char path[108];      /* Unix socket path (sun_path's size) */
    char user[128];      /* AUTH user (Redis 6 ACL), "" for none */
    char password[512];  /* AUTH password, "" for none (has_password says) */
    bool has_password;   /* AUTH is sent on every connect */
    int db;              /* SELECT db on every connect (0: not sent) */
} skick_redis_url_t;

/*  Parse url: redis://[[user]:password@]HOST[:PORT][/DB] (HOST a name, an
    IPv4 address or [IPv6]; user and password percent-decoded) or
    unix:///absolute/path.sock[?db=N]. Returns 0 with *out filled, or -1
    with a one-line reason in err (rediss:// and other schemes, a user
    without a password, a bad port or db, trailing text). */
int skick_redis_url_parse(const char *url, skick_redis_url_t *out, char *err, size_t errlen);

/*  The URL as text for logs, the password shown as "***". */
void skick_redis_url_format(const skick_redis_url_t *u, char *buf, size_t len);

/*  Where a process finds its URL without it on the command line, which
    every local user can read (ps, /proc/PID/cmdline): --hash-file PATH,
    or this environment variable when neither --hash nor --hash-file is
    given. */
#define SKICK_REDIS_URL_ENV "SKICK_HASH_URL"
#define SKICK_REDIS_URL_MAX 2048 /* bytes of a URL at most, with the NUL */

/*  The warning a process logs once when a password came in --hash (one
    text for every process). */
#define SKICK_REDIS_ARGV_PASSWORD_WARNING                                                          \
    "the Redis password is on the command line (--hash), where every local user can read it "    \
    "(ps, /proc/PID/cmdline): put the URL in a file only you can read and give --hash-file "      \
    "FILE, or set " SKICK_REDIS_URL_ENV " in the environment"

/*  Read the URL kept in the file at path into buf (len bytes). The file
    must be a regular file that neither group nor others may read or write
    (mode & 077 == 0, as ssh asks of keys); it holds the URL, on one line,
    with surrounding white space (a final newline) ignored. Returns 0, or
    -1 with a one-line reason in err naming the file (missing or
    unreadable, too open with the fix "chmod 600 FILE", not a regular
    file, empty, too long, more than one line). */
int skick_redis_url_read(const char *path, char *buf, size_t len, char *err, size_t errlen);

/*  The URL a process is given, parsed into *out with its text in buf (len
    bytes): arg (--hash URL) if not NULL, else the file at file
    (--hash-file) if not NULL, else the environment's SKICK_HASH_URL if set
    and not empty. Returns 1 with *out and buf, 0 when none is given, or -1
    with a one-line reason in err (both arg and file, a file
    skick_redis_url_read refuses, a URL skick_redis_url_parse refuses; the
    reason names where the URL came from). */
int skick_redis_url_choose(const char *arg, const char *file, skick_redis_url_t *out, char *buf,
                           size_t len, char *err, size_t errlen);

/*  Write the Redis key "<table>:<key>" into buf (len bytes, at least
    SKICK_REDIS_KEY_MAX suffices for the names node_hash.c accepts).
    Returns its length, or -1 (EINVAL) when table or key is empty or holds
    '{', '}' or ':' (the Python original refused them), or buf is short. */
int skick_redis_key(char *buf, size_t len, const char *table, const char *key);

/*  Write the SCAN MATCH pattern of table's keys ("<table>:*", the glob
    characters of table escaped) into buf. Returns its length or -1. */
int skick_redis_match(char *buf, size_t len, const char *table);

/*  The Redis string for v (see docs/hashes.md): a string as its own UTF-8
    text unless that text would read back as another value, then as its
    JSON text; an integer in decimal; a double in the shortest form that
    reads back to the same double (with ".0" when it would look like an
    integer); objects, arrays and booleans as compact JSON. Returns 0 with
    *out (caller frees; NUL-terminated) and *outlen, or -1 for what is not
    storable: NULL (JSON null), a string that is not valid UTF-8, a
    non-finite double. */
int skick_redis_encode(json_object *v, char **out, size_t *outlen);

/*  The value of a Redis string data[0..len): what skick_json_parse_strict
    reads from it when that is a value other than null or an integer past
    int64 (the reader would clamp it), else the string itself. Returns 0 with *out (caller owns), or -1 when the bytes are
    not valid UTF-8 ("not text": the store holds something else). */
int skick_redis_decode(const char *data, size_t len, json_object **out);

#endif
