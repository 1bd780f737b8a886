/*  ws_echo_server - bare civetweb websocket echo server, the baseline of ws_bench.sh  */
/*
    The smallest civetweb websocket server that does the job right, so that
    ws_bench.sh can put Skick's websocket front next to what civetweb itself
    costs: each text or binary frame is written back as one frame of the
    same opcode (civetweb hands over frames, not messages; a continuation
    frame is echoed as a text frame), pings are answered, and a close frame
    is echoed (civetweb does not answer it) before the connection ends.

    Settings that matter (shared/DEPS.md sections 2 and 9): tcp_nodelay=1,
    or every echo waits for the peer's delayed ACK; num_threads bounds the
    open websockets, since each one holds a worker thread for its life.
    Listens on 127.0.0.1 only. SIGINT/SIGTERM stop it (exit 0); the signals
    are blocked before mg_start so that only sigwait in main sees them.

    Usage: ws_echo_server [--port P] [--threads N]
*/
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <civetweb.h>

static bool s_parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static int s_on_data(struct mg_connection *conn, int bits, char *data, size_t len, void *ud)
{
    (void) ud;
    int op = bits & 0x0f;
    switch (op) {
    case MG_WEBSOCKET_OPCODE_CONTINUATION:
        op = MG_WEBSOCKET_OPCODE_TEXT;
        /* fall through */
    case MG_WEBSOCKET_OPCODE_TEXT:
    case MG_WEBSOCKET_OPCODE_BINARY:
        return mg_websocket_write(conn, op, data, len) >= 0;
    case MG_WEBSOCKET_OPCODE_PING:
        return mg_websocket_write(conn, MG_WEBSOCKET_OPCODE_PONG, data, len) >= 0;
    case MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE:
        mg_websocket_write(conn, MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE, data, len);
        return 0;
    default:
        return 1;                   /* pong */
    }
}

static int s_log(const struct mg_connection *conn, const char *message)
{
    (void) conn;
    fprintf(stderr, "ws_echo_server: %s\n", message);
    return 1;
}

static bool s_parse_args(int argc, char **argv, char *port, size_t portlen, char *threads,
                         size_t threadslen)
{
    long v;
    for (int i = 1; i < argc; i++) {
        bool has = i + 1 < argc;
        if (strcmp(argv[i], "--port") == 0 && has && s_parse_int(argv[i + 1], 1, 65535, &v))
            snprintf(port, portlen, "127.0.0.1:%ld", v);
        else if (strcmp(argv[i], "--threads") == 0 && has
                 && s_parse_int(argv[i + 1], 1, 100000, &v))
            snprintf(threads, threadslen, "%ld", v);
        else
            return false;
        i++;
    }
    return true;
}

static struct mg_context *s_start(const char *port, const char *threads)
{
    const char *options[] = {
        "listening_ports", port,       "num_threads", threads,
        "tcp_nodelay", "1",            "listen_backlog", "1024",
        "enable_keep_alive", "yes",    NULL};
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.log_message = s_log;
    struct mg_context *ctx = mg_start(&cb, NULL, options);
    if (ctx)
        mg_set_websocket_handler(ctx, "/", NULL, NULL, s_on_data, NULL, NULL);
    return ctx;
}

int main(int argc, char **argv)
{
    char port[32] = "127.0.0.1:8000", threads[16] = "1100";
    if (!s_parse_args(argc, argv, port, sizeof port, threads, sizeof threads)) {
        fprintf(stderr, "Usage: ws_echo_server [--port P] [--threads N]\n");
        return 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    mg_init_library(0);
    struct mg_context *ctx = s_start(port, threads);
    if (!ctx) {
        fprintf(stderr, "ws_echo_server: cannot listen on %s\n", port);
        mg_exit_library();
        return 1;
    }
    fprintf(stderr, "ws_echo_server: listening on %s, %s threads\n", port, threads);
    int sig;
    sigwait(&set, &sig);
    mg_stop(ctx);
    mg_exit_library();
    return 0;
}
