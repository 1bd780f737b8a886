/*  slow_bench_app - the session types bench/slow_clients.py drives

    Benchmark-only module, loaded by a front shard standalone:

      echo    {"action": "echo", "t": x} -> {"t": x}: the bystander's round trip.
      stream  {"session_type": "stream", "every": ms, "size": bytes}: sends its
              client a frame of about `size` bytes every `every` ms from a
              daemon, whether the client reads or not: a client that does not
              read fills its send queue and is closed (1008), as a stalled
              browser tab on a live feed would be.
      hold    {"action": "fill"} sends 8 KiB frames until skick_socksend
              refuses one (SKICK_SEND_REFUSE): the client's send queue is then
              full and stays so; {"action": "count"} -> {"queued", "refused"}.

    Ownership as everywhere: handler messages are borrowed.
*/
#include <string.h>

#include "skick/skick.h"

#define FRAME 8192 /* payload bytes per "hold" frame */

static json_object *s_frame(int64_t i, int64_t size)
{
    static char pad[65537];
    if (!pad[0])
        memset(pad, 'p', sizeof pad - 1);
    json_object *m = json_object_new_object();
    json_object_object_add(m, "i", json_object_new_int64(i));
    json_object_object_add(m, "pad", json_object_new_string_len(pad, (int) size));
    return m;
}

static void s_echo(skick_actor_t *self, json_object *msg)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "t", json_object_get(json_object_object_get(msg, "t")));
    skick_socksend(self, &m);
}

static void s_echo_session(skick_actor_t *self, json_object *init)
{
    (void) init;
    skick_socket(self, "echo", "{\"t\": \"any\"}", s_echo);
}

typedef struct {
    int64_t every, size; /* from the handshake */
} stream_t;

static void s_stream_body(skick_actor_t *self)
{
    stream_t *st = skick_state(self);
    for (int64_t i = 0;; i++) {
        json_object *m = s_frame(i, st->size);
        if (skick_socksend(self, &m) != 0)
            return; /* the client is gone or being closed: so is the session */
        if (skick_sleep(self, st->every) != 0)
            return;
    }
}

static void s_stream_session(skick_actor_t *self, json_object *init)
{
    stream_t *st = skick_state_new(self, sizeof *st, NULL);
    st->every = skick_get_int(init, "every", 20);
    st->size = skick_get_int(init, "size", 8192);
    if (st->every < 1)
        st->every = 1;
    if (st->size < 0 || st->size > 65536)
        st->size = 8192;
    skick_daemon(self, "stream", s_stream_body, 0, NULL);
}

typedef struct {
    int64_t refused;
} hold_t;

static void s_fill(skick_actor_t *self, json_object *msg)
{
    (void) msg;
    hold_t *h = skick_state(self);
    for (int64_t i = 0;; i++) {
        json_object *m = s_frame(i, FRAME);
        if (skick_socksend(self, &m) != 0) {
            h->refused++;
            return;
        }
    }
}

static void s_count(skick_actor_t *self, json_object *msg)
{
    (void) msg;
    hold_t *h = skick_state(self);
    skick_socket_status_t st;
    skick_socket_status(self, &st);
    json_object *m = json_object_new_object();
    json_object_object_add(m, "queued", json_object_new_int64((int64_t) st.queued));
    json_object_object_add(m, "refused", json_object_new_int64(h->refused));
    skick_socksend(self, &m);
}

static void s_hold_session(skick_actor_t *self, json_object *init)
{
    (void) init;
    skick_state_new(self, sizeof(hold_t), NULL);
    skick_socket(self, "fill", NULL, s_fill);
    skick_socket(self, "count", NULL, s_count);
}

SKICK_MODULE(slow_bench_app)
{
    skick_session(app, "echo", s_echo_session);
    skick_session(app, "stream", s_stream_session);
    skick_session_handshake_schema(app, "stream", "{\"every?\": \"integer\", "
                                                  "\"size?\": \"integer\"}");
    skick_session(app, "hold", s_hold_session);
    skick_session_limits(app, "hold",
                         &(skick_session_limits_t){.send_policy = SKICK_SEND_REFUSE});
}
