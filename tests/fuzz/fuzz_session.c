/*  fuzz_session - the whole client-message path through the test kit:
    frame payload -> JSON (proto/skick_json.c) -> schemas -> receptionist
    (node/ws/node_receptionist.c) -> session actor (node/ws/node_session.c)

    A small application: session type "fz" (socket actions echo, sum with a
    full JSON Schema, ask (a skick_query under a subschema the client names),
    become (replace by the subsession "fz:other"), quit and fail; a query
    subschema "small"), "named" (the same with a handshake schema), and
    "fz:other" (ping). Every handler answers the client at least once.

    Input: pieces separated by 0x1e. A piece is a frame the current client
    sends (its first one is the handshake), "$Q" in it replaced by the
    query id of the last SocketQuery the client got; or, when it starts
    with 0x1f, a command: 'o' open another client (later frames are its),
    'd' the client drops, 'a' N advance virtual time by N * 100 ms.

    What must hold:
      - every frame the server sends is "denied" or one strict JSON value
        (client text echoed in error objects stays valid UTF-8 and JSON);
      - nothing is lost silently: once the clocks have run out (virtual
        time past every query and idle timeout), each client got at least
        as many frames as it sent messages, or its connection was closed;
      - once every client has gone, only the shard actor lives (no
        receptionist or session left over), and nothing leaks.
*/
#include <string.h>

#include "fuzz_common.h"
#include "skick/testkit.h"

#define S_SEP 0x1e
#define S_CMD 0x1f
#define S_CLIENTS 4

/* ---- the application ---------------------------------------------------- */

static void s_send(skick_actor_t *self, const char *key, json_object *value)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, key, value);
    skick_socksend(self, &m);
}

static void s_greet(skick_actor_t *self)
{
    s_send(self, "greeting", json_object_new_string("hello"));
}

static void s_echo(skick_actor_t *self, json_object *msg)
{
    s_send(self, "echo", json_object_new_string(skick_get_string(msg, "text", "")));
}

static void s_sum(skick_actor_t *self, json_object *msg)
{
    json_object *xs = json_object_object_get(msg, "xs");
    int64_t sum = 0;
    for (size_t i = 0; i < json_object_array_length(xs); i++)
        sum += json_object_get_int64(json_object_array_get_idx(xs, i)) % 1000000;
    s_send(self, "sum", json_object_new_int64(sum));
}

static void s_ask(skick_actor_t *self, json_object *msg)
{
    json_object *q = json_object_new_object();
    json_object_object_add(q, "q", json_object_new_string("?"));
    json_object *a = skick_query(self, &q, skick_get_string(msg, "schema", "default"), 5000);
    if (a)
        s_send(self, "answer", a);
    else
        s_send(self, "error", json_object_new_string(skick_err_name(skick_errno())));
}

static void s_become(skick_actor_t *self, json_object *msg)
{
    s_send(self, "became", json_object_new_string("fz:other"));
    json_object *init = json_object_new_object();
    skick_replace(self, "fz:other", &init);
}

static void s_quit(skick_actor_t *self, json_object *msg)
{
    skick_stop(self);
}

static void s_fail(skick_actor_t *self, json_object *msg)
{
    skick_fail(self, "asked to");
}

static void s_ping(skick_actor_t *self, json_object *msg)
{
    s_send(self, "pong", json_object_new_boolean(1));
}

static void s_fz(skick_actor_t *self, json_object *init)
{
    skick_on_start(self, s_greet);
    skick_socket(self, "echo", "{\"text\": \"string\", \"note?\": {\"maxLength\": 8}}", s_echo);
    skick_socket(self, "sum",
                 "{\"type\": \"object\", \"required\": [\"action\", \"xs\"],"
                 " \"additionalProperties\": false, \"properties\": {\"action\": {\"const\": "
                 "\"sum\"}, \"xs\": {\"type\": \"array\", \"items\": {\"type\": \"integer\"},"
                 " \"maxItems\": 16}}}",
                 s_sum);
    skick_socket(self, "ask",
                 "{\"schema\": {\"enum\": [\"default\", \"str\", \"int\", "
                 "\"float\", \"bool\", \"list\", \"small\", \"nope\"]}}",
                 s_ask);
    skick_socket(self, "become", NULL, s_become);
    skick_socket(self, "quit", NULL, s_quit);
    skick_socket(self, "fail", NULL, s_fail);
    skick_query_schema(self, "small", "{\"type\": \"integer\", \"maximum\": 10}");
}

static void s_other(skick_actor_t *self, json_object *init)
{
    skick_on_start(self, s_greet);
    skick_socket(self, "ping", NULL, s_ping);
    skick_socket(self, "quit", NULL, s_quit);
}

static void s_app(skick_app_t *app)
{
    skick_session(app, "fz", s_fz);
    skick_subsession(app, "fz:other", s_other);
    skick_session(app, "named", s_fz);
    skick_session_handshake_schema(app, "named",
                                   "{\"name?\": {\"type\": \"string\", "
                                   "\"pattern\": \"^[a-z]{1,8}$\"}}");
}

/* ---- the clients --------------------------------------------------------- */

typedef struct {
    uint64_t id;     /* the test kit's connection */
    size_t sent;     /* messages it sent that were taken */
    size_t received; /* frames the server sent it */
    bool dropped;    /* it went away */
    char qid[64];    /* the last SocketQuery's query_id */
} s_client_t;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    fuzz_warm_up();
    skick_log_set_level(SKICK_LOG_SILENT);
    return 0;
}

/*  Read every frame the server sent c and check it. */
static void s_read(skick_tk_t *tk, s_client_t *c)
{
    char *frame;
    while ((frame = skick_tk_ws_recv(tk, c->id))) {
        c->received++;
        size_t n = strlen(frame);
        json_object *v = NULL;
        FUZZ_ASSERT(strcmp(frame, "denied") == 0 || skick_json_parse_strict(frame, n, &v) == 0,
                    "the server sent a frame that is not JSON: '%s'", fuzz_show(frame, n));
        const char *qid = skick_get_string(v, "query_id", NULL);
        if (qid && strcmp(skick_get_string(v, "action", ""), "SocketQuery") == 0)
            snprintf(c->qid, sizeof c->qid, "%s", qid);
        json_object_put(v);
        free(frame);
    }
}

/*  The frame with every "$Q" replaced by c's last query id (caller frees). */
static char *s_expand(const s_client_t *c, const uint8_t *p, size_t n, size_t *out_len)
{
    size_t q = strlen(c->qid), cap = n + 1, o = 0;
    for (size_t i = 0; i + 1 < n; i++)
        cap += p[i] == '$' && p[i + 1] == 'Q' ? q : 0;
    char *out = malloc(cap);
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '$' && i + 1 < n && p[i + 1] == 'Q') {
            memcpy(out + o, c->qid, q);
            o += q;
            i++;
        } else {
            out[o++] = (char) p[i];
        }
    }
    *out_len = o;
    return out;
}

static void s_command(skick_tk_t *tk, s_client_t *clients, int *n, int *cur, const uint8_t *p,
                      size_t len)
{
    uint8_t op = len > 1 ? p[1] : 0;
    if (op == 'o' && *n < S_CLIENTS) {
        clients[*n] = (s_client_t){.id = skick_tk_ws_open(tk)};
        *cur = (*n)++;
    } else if (op == 'd' && !clients[*cur].dropped) {
        skick_tk_ws_drop(tk, clients[*cur].id);
        clients[*cur].dropped = true;
    } else if (op == 'a') {
        skick_tk_advance(tk, (len > 2 ? p[2] : 1) * 100);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    skick_tk_t *tk = skick_tk_new(s_app);
    s_client_t clients[S_CLIENTS];
    int n = 1, cur = 0;
    clients[0] = (s_client_t){.id = skick_tk_ws_open(tk)};
    fuzz_cursor_t cursor = fuzz_cursor(data, size);
    const uint8_t *p;
    size_t len;
    while (fuzz_next(&cursor, S_SEP, &p, &len)) {
        s_client_t *c = &clients[cur];
        if (len && p[0] == S_CMD) {
            s_command(tk, clients, &n, &cur, p, len);
        } else if (!c->dropped) {
            size_t flen;
            char *frame = s_expand(c, p, len, &flen);
            if (skick_tk_ws_send_len(tk, c->id, frame, flen) == 0)
                c->sent++;
            free(frame);
        }
        for (int i = 0; i < n; i++)
            s_read(tk, &clients[i]);
    }
    /* let every clock run out: query timeouts, then the idle timeout */
    for (int k = 0; k < 4; k++) {
        skick_tk_advance(tk, 100 * 1000);
        for (int i = 0; i < n; i++)
            s_read(tk, &clients[i]);
    }
    for (int i = 0; i < n; i++) {
        s_client_t *c = &clients[i];
        bool closed = skick_tk_ws_closed(tk, c->id, NULL, NULL);
        FUZZ_ASSERT(c->dropped || closed || c->received >= c->sent,
                    "client %d sent %zu messages and got %zu frames", i, c->sent, c->received);
        if (!c->dropped)
            skick_tk_ws_drop(tk, c->id);
    }
    skick_tk_run(tk);
    FUZZ_ASSERT(skick_tk_stat(tk, "live") == 1, "%llu actors outlived their clients",
                (unsigned long long) skick_tk_stat(tk, "live") - 1);
    skick_tk_destroy(&tk);
    return 0;
}
