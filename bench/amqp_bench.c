/*  amqp_bench - messages/s and RPC round trips through skick-amqp-bridge,
    next to raw RabbitMQ in the same run (bench/amqp_bench.sh runs it)

    Usage: amqp_bench HOST PORT N M
      N  messages for the throughput runs, M round trips for the RPC runs

    1. raw: a librabbitmq publisher (confirms, a window of 256) to a queue
       and a consumer (acks each) on another connection: messages/s until
       the consumer has all N;
    2. bridge: the same publisher to exchange skick, routing key
       service.amqp-test ({"action":"event"}: the sink of amqp_app.c); done
       when the sink counts N (asked over AMQP, through the bridge);
    3. raw RPC: a responder thread answering a queue, M sequential round
       trips with reply_to;
    4. bridge RPC: M sequential {"action":"echo"} requests to
       service.amqp-test with reply_to.
    Prints the figures and the ratios (goals: throughput >= 0.5 x raw; RPC
    p50 <= raw p50 + a cross-shard round trip).
*/
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *s_host;
static int s_port;

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void s_die(const char *what)
{
    fprintf(stderr, "amqp_bench: %s\n", what);
    exit(1);
}

static void s_check(amqp_connection_state_t c, const char *what)
{
    if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL)
        s_die(what);
}

static amqp_connection_state_t s_connect(void)
{
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(c);
    if (!s || amqp_socket_open(s, s_host, s_port) != AMQP_STATUS_OK)
        s_die("cannot connect");
    if (amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest").reply_type !=
        AMQP_RESPONSE_NORMAL)
        s_die("login");
    amqp_channel_open(c, 1);
    s_check(c, "channel.open");
    return c;
}

static void s_close(amqp_connection_state_t c)
{
    amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
}

/*  Wait for publisher confirms up to seq (acks may cover several). */
static void s_wait_confirms(amqp_connection_state_t c, uint64_t seq, uint64_t *acked)
{
    while (*acked < seq) {
        amqp_frame_t f;
        if (amqp_simple_wait_frame(c, &f) != AMQP_STATUS_OK)
            s_die("waiting for confirms");
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue;
        if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            amqp_basic_ack_t *a = f.payload.method.decoded;
            *acked = a->delivery_tag > *acked ? a->delivery_tag : *acked;
        } else if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
            s_die("a publish was nacked");
        }
    }
}

/*  Publish n bodies with confirms, a window of 256 in flight. */
static void s_publish(const char *exchange, const char *key, const char *body, int n)
{
    amqp_connection_state_t c = s_connect();
    amqp_confirm_select(c, 1);
    s_check(c, "confirm.select");
    uint64_t acked = 0;
    for (int i = 1; i <= n; i++) {
        if (amqp_basic_publish(c, 1, amqp_cstring_bytes(exchange), amqp_cstring_bytes(key), 0, 0,
                               NULL, amqp_cstring_bytes(body)) != AMQP_STATUS_OK)
            s_die("publish");
        if (i - (int) acked >= 256)
            s_wait_confirms(c, (uint64_t) i - 128, &acked);
    }
    s_wait_confirms(c, (uint64_t) n, &acked);
    s_close(c);
}

typedef struct {
    const char *queue;
    int n;
    int rpc; /* answer to reply_to instead of counting */
} worker_t;

static void *s_consumer(void *arg)
{
    worker_t *w = arg;
    amqp_connection_state_t c = s_connect();
    amqp_basic_qos(c, 1, 0, 256, 0);
    amqp_basic_consume(c, 1, amqp_cstring_bytes(w->queue), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    s_check(c, "basic.consume");
    for (int got = 0; got < w->n; got++) {
        amqp_envelope_t e;
        amqp_maybe_release_buffers(c);
        if (amqp_consume_message(c, &e, NULL, 0).reply_type != AMQP_RESPONSE_NORMAL)
            s_die("consume");
        if (w->rpc) {
            amqp_basic_properties_t p = {._flags = AMQP_BASIC_CORRELATION_ID_FLAG,
                                         .correlation_id = e.message.properties.correlation_id};
            amqp_basic_publish(c, 1, amqp_empty_bytes, e.message.properties.reply_to, 0, 0, &p,
                               e.message.body);
        }
        amqp_basic_ack(c, 1, e.delivery_tag, 0);
        amqp_destroy_envelope(&e);
    }
    s_close(c);
    return NULL;
}

/*  One RPC client: m sequential round trips to exchange/key; sorted
    latencies (ms) into lat. Returns the last answer's body (static). */
static const char *s_rpc(const char *exchange, const char *key, const char *body, int m,
                         double *lat)
{
    static char last[4096];
    amqp_connection_state_t c = s_connect();
    amqp_queue_declare_ok_t *q = amqp_queue_declare(c, 1, amqp_empty_bytes, 0, 0, 1, 1,
                                                    amqp_empty_table);
    s_check(c, "reply queue");
    amqp_bytes_t reply_to = amqp_bytes_malloc_dup(q->queue);
    amqp_basic_consume(c, 1, reply_to, amqp_empty_bytes, 0, 1, 1, amqp_empty_table);
    s_check(c, "consume replies");
    for (int i = 0; i < m; i++) {
        char cid[32];
        snprintf(cid, sizeof cid, "%d", i);
        amqp_basic_properties_t p = {._flags = AMQP_BASIC_REPLY_TO_FLAG |
                                               AMQP_BASIC_CORRELATION_ID_FLAG,
                                     .reply_to = reply_to,
                                     .correlation_id = amqp_cstring_bytes(cid)};
        double t0 = s_now();
        amqp_basic_publish(c, 1, amqp_cstring_bytes(exchange), amqp_cstring_bytes(key), 0, 0, &p,
                           amqp_cstring_bytes(body));
        amqp_envelope_t e;
        amqp_maybe_release_buffers(c);
        if (amqp_consume_message(c, &e, NULL, 0).reply_type != AMQP_RESPONSE_NORMAL)
            s_die("reply");
        lat[i] = (s_now() - t0) * 1000;
        snprintf(last, sizeof last, "%.*s", (int) e.message.body.len,
                 (char *) e.message.body.bytes);
        amqp_destroy_envelope(&e);
    }
    amqp_bytes_free(reply_to);
    s_close(c);
    return last;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

static double s_pct(double *lat, int m, double p)
{
    qsort(lat, (size_t) m, sizeof *lat, s_cmp);
    int i = (int) (p * (m - 1) + 0.5);
    return lat[i];
}

static long s_sink_count(void)
{
    double lat[1];
    const char *r = s_rpc("skick", "service.amqp-test", "{\"action\": \"count\"}", 1, lat);
    const char *n = strstr(r, "\"n\":");
    return n ? atol(n + 4) : -1;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s HOST PORT N M\n", argv[0]);
        return 2;
    }
    s_host = argv[1];
    s_port = atoi(argv[2]);
    int n = atoi(argv[3]), m = atoi(argv[4]);
    double *lat = calloc((size_t) m, sizeof *lat);

    /* 1. raw throughput */
    amqp_connection_state_t c = s_connect();
    amqp_queue_declare(c, 1, amqp_cstring_bytes("bench.raw"), 0, 0, 0, 0, amqp_empty_table);
    amqp_queue_declare(c, 1, amqp_cstring_bytes("bench.rpc"), 0, 0, 0, 0, amqp_empty_table);
    amqp_queue_purge(c, 1, amqp_cstring_bytes("bench.raw"));
    s_check(c, "declare");
    s_close(c);
    worker_t w = {.queue = "bench.raw", .n = n};
    pthread_t t;
    double t0 = s_now();
    pthread_create(&t, NULL, s_consumer, &w);
    s_publish("", "bench.raw", "{\"action\": \"event\", \"i\": 1}", n);
    pthread_join(t, NULL);
    double raw_rate = n / (s_now() - t0);

    /* 2. through the bridge to an actor */
    long base = s_sink_count();
    t0 = s_now();
    s_publish("skick", "service.amqp-test", "{\"action\": \"event\", \"i\": 1}", n);
    double sent = s_now();
    long got = 0;
    while ((got = s_sink_count() - base) < n && s_now() - sent < 60)
        nanosleep(&(struct timespec){.tv_nsec = 5000000}, NULL);
    double bridge_rate = got / (s_now() - t0);

    /* 3. raw RPC */
    worker_t r = {.queue = "bench.rpc", .n = m, .rpc = 1};
    pthread_create(&t, NULL, s_consumer, &r);
    s_rpc("", "bench.rpc", "{\"action\": \"echo\"}", m, lat);
    pthread_join(t, NULL);
    double raw50 = s_pct(lat, m, 0.5), raw99 = s_pct(lat, m, 0.99);

    /* 4. RPC through the bridge */
    const char *last = s_rpc("skick", "service.amqp-test", "{\"action\": \"echo\"}", m, lat);
    double br50 = s_pct(lat, m, 0.5), br99 = s_pct(lat, m, 0.99);

    printf("raw RabbitMQ (confirms), publisher -> consumer: %9.0f msg/s (%d messages)\n",
           raw_rate, n);
    printf("AMQP publisher (confirms) -> bridge -> actor:  %9.0f msg/s (%ld of %d delivered)\n",
           bridge_rate, got, n);
    printf("throughput ratio bridge / raw: %.2f (goal >= 0.50)\n", bridge_rate / raw_rate);
    printf("raw AMQP RPC (client -> queue -> responder -> reply queue): p50 %.3f ms  p99 %.3f ms\n",
           raw50, raw99);
    printf("RPC through the bridge (client -> bridge -> actor -> reply): p50 %.3f ms  p99 %.3f ms"
           " (last answer %.60s)\n", br50, br99, last);
    printf("RPC p50 difference bridge - raw: %.3f ms (goal: <= one cross-shard round trip)\n",
           br50 - raw50);
    free(lat);
    return got == n ? 0 : 1;
}
