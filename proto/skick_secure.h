/*  skick_secure - the checks behind "secure by default" between processes

    Shared by skick-broker, skick-node and the client library (skickctl):
    whether a CURVE secret key file is private enough to be used (as ssh
    does for its keys), and whether an endpoint is reachable from this host
    only (loopback or ipc), which decides whether a broker may run without
    CURVE. Pure functions, no state; safe from any thread.
*/
#ifndef SKICK_SECURE_H_INCLUDED
#define SKICK_SECURE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

/*  skick_secret_file_check: 0 when the secret key file at path exists and
    no one but its owner may read or write it (mode & 077 == 0); else -1
    with err set to a message naming the file, its mode and the fix
    ("permissions 0644 for FILE are too open; chmod 600 FILE"). */
int skick_secret_file_check(const char *path, char *err, size_t errlen);

/*  skick_endpoint_is_local: true when a socket bound to ep can be reached
    from this host only: ipc://, inproc://, or tcp:// on 127.0.0.0/8, ::1 or
    localhost. A wildcard (*, 0.0.0.0, ::), an interface name or any other
    address is not local. */
bool skick_endpoint_is_local(const char *ep);

/*  The warning every process of a cluster without CURVE logs once at start
    (one text, so that operators and tests find the same line everywhere). */
#define SKICK_INSECURE_WARNING                                                                     \
    "CURVE is off: this cluster is open to every local user (any of them can join as a "           \
    "shard, read the directory and message its actors); run `skickctl up` without "                \
    "--insecure, or give the broker --curve-secret/--curve-allow and every shard "                 \
    "--curve-secret/--curve-server"

#endif
