/*  test_sendqueue - a session's client that does not read: the send queue's
    bound, the two send policies, what skick_socksend and skick_query tell
    the session, skick_socket_status. Through the test kit's fake clients
    (skick_tk_ws_pause); tests/integration/test_slow.py does the same with
    real sockets.
*/
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skick/testkit.h"

/* What the session saw, for the test to check. */
static int g_sent, g_refused, g_first_err, g_last_err, g_stops;
static skick_socket_status_t g_status;

static void s_flood(skick_actor_t *self, json_object *msg)
{
    int n = (int) skick_get_int(msg, "n", 1), size = (int) skick_get_int(msg, "size", 100);
    char *text = malloc((size_t) size + 1);
    memset(text, 'x', (size_t) size);
    text[size] = '\0';
    for (int i = 0; i < n; i++) {
        json_object *m = json_object_new_object();
        json_object_object_add(m, "i", json_object_new_int(i));
        json_object_object_add(m, "text", json_object_new_string(text));
        if (skick_socksend(self, &m) == 0) {
            g_sent++;
        } else {
            if (!g_refused++)
                g_first_err = skick_errno();
            g_last_err = skick_errno();
        }
    }
    free(text);
    skick_socket_status(self, &g_status);
}

static void s_ask(skick_actor_t *self, json_object *msg)
{
    (void) msg;
    json_object *q = skick_json("{\"q\": \"?\"}");
    json_object *a = skick_query(self, &q, "int", 60000);
    g_last_err = a ? 0 : skick_errno();
    json_object_put(a);
}

static void s_on_stop(skick_actor_t *self)
{
    (void) self;
    g_stops++;
}

static void s_sink(skick_actor_t *self, json_object *init)
{
    (void) init;
    skick_socket(self, "flood", "{\"n\": \"integer\", \"size\": \"integer\"}", s_flood);
    skick_socket(self, "ask", NULL, s_ask);
    skick_on_stop(self, s_on_stop);
}

static void app(skick_app_t *a)
{
    skick_session(a, "sink", s_sink);
    skick_session(a, "patient", s_sink);
    skick_session_limits(a, "patient", &(skick_session_limits_t){
                                           .send_queue = 4096,
                                           .send_policy = SKICK_SEND_REFUSE,
                                       });
}

static skick_tk_t *s_kit(size_t queue)
{
    g_sent = g_refused = g_first_err = g_last_err = g_stops = 0;
    memset(&g_status, 0, sizeof g_status);
    skick_tk_t *tk = skick_tk_new(app);
    skick_tk_ws_send_queue(tk, queue, SKICK_SEND_DEFAULT);
    return tk;
}

static uint64_t s_client(skick_tk_t *tk, const char *type)
{
    uint64_t c = skick_tk_ws_open(tk);
    char hs[64];
    snprintf(hs, sizeof hs, "{\"session_type\": \"%s\"}", type);
    cr_assert_eq(skick_tk_ws_send(tk, c, hs), 0);
    skick_tk_run(tk);
    return c;
}

static void s_flood_cmd(skick_tk_t *tk, uint64_t c, int n, int size)
{
    char cmd[96];
    snprintf(cmd, sizeof cmd, "{\"action\": \"flood\", \"n\": %d, \"size\": %d}", n, size);
    cr_assert_eq(skick_tk_ws_send(tk, c, cmd), 0);
    skick_tk_run(tk);
}

/*  Read every frame the client has; returns how many, checking their order. */
static int s_read_all(skick_tk_t *tk, uint64_t c, int first)
{
    int n = 0;
    json_object *m;
    while ((m = skick_tk_ws_recv_json(tk, c)) != NULL) {
        cr_assert_eq(skick_get_int(m, "i", -1), first + n, "frames out of order");
        json_object_put(m);
        n++;
    }
    return n;
}

Test(sendqueue, usage)
{
    /* A client that does not read: what is sent waits, and arrives in order
       once it reads again. */
    skick_tk_t *tk = s_kit(0);
    uint64_t c = s_client(tk, "sink");
    skick_tk_ws_pause(tk, c, true);
    s_flood_cmd(tk, c, 10, 100);
    cr_assert_eq(g_sent, 10);
    cr_assert_null(skick_tk_ws_recv(tk, c), "a paused client reads nothing");
    cr_assert(g_status.exact);
    /* {"i":N,"text":"x..."}: 117 bytes of JSON and a 2-byte frame header */
    cr_assert_eq(g_status.queued, 10 * 119, "queued %zu", g_status.queued);
    cr_assert_eq(g_status.limit, 1 << 20, "the default bound is 1 MiB");
    skick_tk_ws_pause(tk, c, false);
    cr_assert_eq(s_read_all(tk, c, 0), 10);
    skick_tk_destroy(&tk);
}

Test(sendqueue, full_queue_closes_the_client)
{
    skick_tk_t *tk = s_kit(10000);
    uint64_t c = s_client(tk, "sink");
    uint64_t other = s_client(tk, "sink");
    skick_tk_ws_pause(tk, c, true);
    s_flood_cmd(tk, c, 200, 100); /* ~24 kB for a 10 kB queue */
    /* {"i":N,"text":"x..."} frames of 119 (i < 10) and 120 bytes in 10000 */
    cr_assert_eq(g_sent, 83, "what fitted was queued (%d)", g_sent);
    cr_assert_eq(g_refused, 117, "the rest refused: the client is being closed");
    cr_assert_eq(g_first_err, SKICK_EBACKLOG, "got %s", skick_err_name(g_first_err));
    cr_assert_eq(g_last_err, SKICK_EDEAD, "got %s", skick_err_name(g_last_err));
    int code = 0;
    const char *why = "";
    cr_assert(skick_tk_ws_closed(tk, c, &code, &why));
    cr_assert_eq(code, 1008);
    cr_assert_str_eq(why, "send queue full");
    cr_assert_eq(g_stops, 1, "the session ends with its client");
    /* What was queued before the close is still delivered if it reads. */
    skick_tk_ws_pause(tk, c, false);
    cr_assert_eq(s_read_all(tk, c, 0), 83);
    /* Nobody else noticed. */
    g_sent = 0;
    s_flood_cmd(tk, other, 5, 10);
    cr_assert_eq(g_sent, 5);
    cr_assert_eq(s_read_all(tk, other, 0), 5);
    cr_assert_not(skick_tk_ws_closed(tk, other, NULL, NULL));
    skick_tk_destroy(&tk);
}

Test(sendqueue, refuse_policy_keeps_the_client)
{
    skick_tk_t *tk = s_kit(0);
    uint64_t c = s_client(tk, "patient"); /* 4096 bytes, SKICK_SEND_REFUSE */
    skick_tk_ws_pause(tk, c, true);
    s_flood_cmd(tk, c, 100, 100);
    /* frames of 119 bytes (i < 10) and 120 bytes: 10 * 119 + 24 * 120 <= 4096 */
    cr_assert_eq(g_sent, 34, "sent %d", g_sent);
    cr_assert_eq(g_refused, 66);
    cr_assert_eq(g_last_err, SKICK_EBACKLOG);
    cr_assert_eq(g_status.refused, (uint64_t) g_refused);
    cr_assert_not(skick_tk_ws_closed(tk, c, NULL, NULL));
    skick_tk_ws_pause(tk, c, false);
    cr_assert_eq(s_read_all(tk, c, 0), g_sent, "the queued ones arrive, in order");
    /* After it read, there is room again. */
    g_sent = g_refused = 0;
    s_flood_cmd(tk, c, 3, 100);
    cr_assert_eq(g_sent, 3);
    cr_assert_eq(g_status.queued, 0, "a reading client has nothing waiting");
    cr_assert_eq(g_stops, 0);
    skick_tk_destroy(&tk);
}

Test(sendqueue, message_larger_than_the_queue)
{
    /* Refused under either policy: it could never fit. The client stays. */
    skick_tk_t *tk = s_kit(1000);
    uint64_t c = s_client(tk, "sink");
    s_flood_cmd(tk, c, 1, 2000);
    cr_assert_eq(g_refused, 1);
    cr_assert_eq(g_last_err, SKICK_ETOOBIG);
    cr_assert_not(skick_tk_ws_closed(tk, c, NULL, NULL));
    s_flood_cmd(tk, c, 1, 10);
    cr_assert_eq(g_sent, 1);
    cr_assert_eq(s_read_all(tk, c, 0), 1);
    skick_tk_destroy(&tk);
}

Test(sendqueue, query_refused_fails_at_once)
{
    skick_tk_t *tk = s_kit(0);
    uint64_t c = s_client(tk, "patient");
    skick_tk_ws_pause(tk, c, true);
    s_flood_cmd(tk, c, 40, 100); /* fill the 4 kB queue */
    cr_assert_gt(g_refused, 0);
    g_last_err = -1;
    cr_assert_eq(skick_tk_ws_send(tk, c, "{\"action\": \"ask\"}"), 0);
    skick_tk_run(tk);
    cr_assert_eq(g_last_err, SKICK_EBACKLOG, "skick_query gave %d: the question never "
                 "reaches the client, the query must fail now, not in 60 s", g_last_err);
    skick_tk_destroy(&tk);
}

Test(sendqueue, gone_client)
{
    skick_tk_t *tk = s_kit(0);
    uint64_t c = s_client(tk, "sink");
    skick_tk_ws_drop(tk, c);
    skick_tk_run(tk);
    cr_assert_eq(g_stops, 1);
    skick_tk_destroy(&tk);
}
