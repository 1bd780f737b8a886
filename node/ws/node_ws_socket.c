/*  node_ws_socket - finding a new websocket connection's socket and TLS session

    Runs on the civetweb worker thread of the connection, once, from
    node_ws_on_connect (node_ws_conn.c); node_ws_tls_info runs on the
    worker thread doing a TLS handshake (set on civetweb's TLS context by
    node_ws.c's s_init_ssl). civetweb 1.15 has no accessor for a
    connection's socket or TLS session, so this file finds them: the
    session from the worker thread's last completed handshake, the plain
    socket by scanning /proc/self/fd for the connection's address 4-tuple.
    The descriptor returned is our own duplicate (the caller owns it and
    node_ws_conn_gone closes it); the TLS session stays civetweb's.
*/
#include "node_ws_int.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

/*  The TLS session the worker thread's last handshake made (its app data is
    civetweb's connection): how node_ws_on_connect finds a wss:// connection's. */
static __thread SSL *s_tls_session;

void node_ws_tls_info(const SSL *ssl, int where, int ret)
{
    (void) ret;
    if (where & SSL_CB_HANDSHAKE_DONE)
        s_tls_session = (SSL *) ssl;
}

/*  Whether descriptor fd is the TCP connection described by ri. */
static bool s_is_conn_socket(int fd, const struct mg_request_info *ri)
{
    struct sockaddr_storage peer, self;
    socklen_t pl = sizeof peer, sl = sizeof self;
    if (getpeername(fd, (struct sockaddr *) &peer, &pl) != 0 ||
        getsockname(fd, (struct sockaddr *) &self, &sl) != 0 || peer.ss_family != self.ss_family)
        return false;
    char addr[INET6_ADDRSTRLEN];
    int pport, sport;
    if (peer.ss_family == AF_INET) {
        struct sockaddr_in *p = (struct sockaddr_in *) &peer;
        inet_ntop(AF_INET, &p->sin_addr, addr, sizeof addr);
        pport = ntohs(p->sin_port);
        sport = ntohs(((struct sockaddr_in *) &self)->sin_port);
    } else if (peer.ss_family == AF_INET6) {
        struct sockaddr_in6 *p = (struct sockaddr_in6 *) &peer;
        inet_ntop(AF_INET6, &p->sin6_addr, addr, sizeof addr);
        pport = ntohs(p->sin6_port);
        sport = ntohs(((struct sockaddr_in6 *) &self)->sin6_port);
    } else {
        return false;
    }
    return pport == ri->remote_port && sport == ri->server_port &&
           strcmp(addr, ri->remote_addr) == 0;
}

/*  Find connection c's socket and return our own duplicate of it (-1 if it
    cannot be found), with civetweb's TLS session in *ssl for wss://.

    civetweb 1.15 has no accessor for either. A TLS connection's session is
    the one this worker thread just completed the handshake of (checked by
    its app data, which civetweb sets to the connection); its descriptor is
    the session's. A plain connection's socket is the one descriptor of the
    process whose addresses are this connection's (peer address and port,
    local port): unique while the connection is open, which it is, since we
    are on its thread. That costs one getpeername per open descriptor, once
    per connection, on the worker thread. */
int node_ws_conn_socket(const struct mg_connection *c, SSL **ssl)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    *ssl = NULL;
    if (!ri)
        return -1;
    int fd = -1;
    if (ri->is_ssl) {
        SSL *s = s_tls_session;
        s_tls_session = NULL;
        if (s && SSL_get_app_data(s) == (void *) c && s_is_conn_socket(SSL_get_fd(s), ri)) {
            *ssl = s;
            fd = SSL_get_fd(s);
        }
    } else {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        while (d && fd < 0 && (de = readdir(d)) != NULL) {
            char *end;
            long n = strtol(de->d_name, &end, 10);
            if (*end == '\0' && end != de->d_name && n != dirfd(d) &&
                s_is_conn_socket((int) n, ri))
                fd = (int) n;
        }
        if (d)
            closedir(d);
    }
    return fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 0);
}
