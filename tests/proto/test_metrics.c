/*  test_metrics - proto/skick_metrics.c: the registry and its text format

    What a scraper sees must be exactly the exposition format 0.0.4:
    HELP/TYPE lines, escaped label values, cumulative buckets with +Inf,
    _sum and _count; and Prometheus's own checker (promtool check metrics,
    Debian package prometheus) must accept the whole text. The registry's
    rules (names, counters ending in _total, bounded series) are checked
    on bad input, and counting from several threads at once must lose
    nothing.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "skick_metrics.h"

static char *s_render(skick_metrics_t *reg)
{
    size_t len = 0;
    char *text = skick_metrics_render(reg, &len);
    cr_assert_not_null(text);
    cr_assert_eq(strlen(text), len);
    return text;
}

/*  text holds line as one whole line. */
static bool s_has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

#define assert_line(text, line) cr_assert(s_has_line(text, line), "no line %s in:\n%s", line, text)

Test(metrics, counter_and_gauge_text)
{
    skick_metrics_t *reg = skick_metrics_new();
    skick_metric_t *msgs = skick_metrics_counter(reg, "skick_messages_delivered_total",
                                                 "Messages put in a mailbox", "type", 0);
    skick_metric_t *alive = skick_metrics_gauge(reg, "skick_actors", "Actors alive", NULL, 0);
    cr_assert(msgs && alive);
    skick_counter_add(skick_metric_series(msgs, "echo"), 3);
    skick_counter_add(skick_metric_series(msgs, "echo"), 2);
    skick_counter_add(skick_metric_series(msgs, "a\"b\\c\nd"), 1);
    skick_series_t *g = skick_metric_series(alive);
    skick_gauge_set(g, 7);
    skick_gauge_add(g, -2.5);
    cr_assert_float_eq(skick_series_value(g), 4.5, 1e-12);
    char *text = s_render(reg);
    assert_line(text, "# HELP skick_messages_delivered_total Messages put in a mailbox");
    assert_line(text, "# TYPE skick_messages_delivered_total counter");
    assert_line(text, "skick_messages_delivered_total{type=\"echo\"} 5");
    assert_line(text, "skick_messages_delivered_total{type=\"a\\\"b\\\\c\\nd\"} 1");
    assert_line(text, "# TYPE skick_actors gauge");
    assert_line(text, "skick_actors 4.5");
    /* the registry's own family has no series yet, so it says nothing */
    cr_assert_null(strstr(text, "overflow"));
    free(text);
    skick_metrics_destroy(&reg);
    cr_assert_null(reg);
}

Test(metrics, unlabelled_families_start_at_zero)
{
    skick_metrics_t *reg = skick_metrics_new();
    skick_metrics_counter(reg, "x_total", "x", NULL, 0);
    skick_metrics_histogram(reg, "h_seconds", "h", NULL, (double[]){1}, 1, 0);
    char *text = s_render(reg);
    assert_line(text, "x_total 0");
    assert_line(text, "h_seconds_bucket{le=\"1\"} 0");
    assert_line(text, "h_seconds_bucket{le=\"+Inf\"} 0");
    assert_line(text, "h_seconds_count 0");
    free(text);
    skick_metrics_destroy(&reg);
}

Test(metrics, histogram_buckets_are_cumulative)
{
    skick_metrics_t *reg = skick_metrics_new();
    const double bounds[] = {0.001, 0.01, 0.1};
    skick_metric_t *h = skick_metrics_histogram(reg, "skick_handler_seconds", "Handler time",
                                                "type", bounds, 3, 0);
    cr_assert_not_null(h);
    skick_series_t *s = skick_metric_series(h, "echo");
    const double obs[] = {0.0005, 0.001, 0.005, 0.05, 0.05, 2};
    for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++)
        skick_histogram_observe(s, obs[i]);
    char *text = s_render(reg);
    assert_line(text, "# TYPE skick_handler_seconds histogram");
    assert_line(text, "skick_handler_seconds_bucket{type=\"echo\",le=\"0.001\"} 2"); /* le is <= */
    assert_line(text, "skick_handler_seconds_bucket{type=\"echo\",le=\"0.01\"} 3");
    assert_line(text, "skick_handler_seconds_bucket{type=\"echo\",le=\"0.1\"} 5");
    assert_line(text, "skick_handler_seconds_bucket{type=\"echo\",le=\"+Inf\"} 6");
    double sum = 0;
    const char *p = strstr(text, "\nskick_handler_seconds_sum{type=\"echo\"} ");
    cr_assert(p && sscanf(strchr(p, '}') + 1, "%lf", &sum) == 1, "%s", text);
    cr_assert_float_eq(sum, 2.1065, 1e-9);
    assert_line(text, "skick_handler_seconds_count{type=\"echo\"} 6");
    cr_assert_float_eq(skick_series_value(s), 6, 0);
    free(text);
    skick_metrics_destroy(&reg);
}

Test(metrics, special_values)
{
    skick_metrics_t *reg = skick_metrics_new();
    skick_metric_t *g = skick_metrics_gauge(reg, "g", "g", "k", 0);
    skick_gauge_set(skick_metric_series(g, "inf"), INFINITY);
    skick_gauge_set(skick_metric_series(g, "ninf"), -INFINITY);
    skick_gauge_set(skick_metric_series(g, "nan"), NAN);
    skick_gauge_set(skick_metric_series(g, "tenth"), 0.1);
    skick_gauge_set(skick_metric_series(g, "big"), 1e300);
    char *text = s_render(reg);
    assert_line(text, "g{k=\"inf\"} +Inf");
    assert_line(text, "g{k=\"ninf\"} -Inf");
    assert_line(text, "g{k=\"nan\"} NaN");
    assert_line(text, "g{k=\"tenth\"} 0.1");
    assert_line(text, "g{k=\"big\"} 1e+300");
    free(text);
    skick_metrics_destroy(&reg);
}

Test(metrics, registration_rules)
{
    skick_metrics_t *reg = skick_metrics_new();
    const double b[] = {1, 2}, bad[] = {2, 1}, nan[] = {NAN};
    cr_assert_null(skick_metrics_counter(reg, "no_suffix", "h", NULL, 0));
    cr_assert_null(skick_metrics_counter(reg, "9starts_with_digit_total", "h", NULL, 0));
    cr_assert_null(skick_metrics_counter(reg, "has-dash_total", "h", NULL, 0));
    cr_assert_null(skick_metrics_counter(reg, "", "h", NULL, 0));
    cr_assert_null(skick_metrics_gauge(reg, "g", "two\nlines", NULL, 0));
    cr_assert_null(skick_metrics_gauge(reg, "g", "h", "__reserved", 0));
    cr_assert_null(skick_metrics_gauge(reg, "g", "h", "a,a", 0));
    cr_assert_null(skick_metrics_gauge(reg, "g", "h", "a,", 0));
    cr_assert_null(skick_metrics_gauge(reg, "g", "h", "a:b", 0));
    cr_assert_null(skick_metrics_gauge(reg, "g", "h", "a,b,c,d,e", 0));
    cr_assert_null(skick_metrics_histogram(reg, "h", "h", "le", b, 2, 0));
    cr_assert_null(skick_metrics_histogram(reg, "h", "h", NULL, bad, 2, 0));
    cr_assert_null(skick_metrics_histogram(reg, "h", "h", NULL, nan, 1, 0));
    cr_assert_null(skick_metrics_histogram(reg, "h", "h", NULL, b, 0, 0));
    cr_assert_null(skick_metrics_histogram(reg, "h_count", "h", NULL, b, 2, 0));
    cr_assert_not_null(skick_metrics_gauge(reg, "g:ok", "h", "a,b,c,d", 0));
    cr_assert_null(skick_metrics_gauge(reg, "g:ok", "again", NULL, 0)); /* taken */
    cr_assert_null(skick_metrics_counter(reg, "skick_metrics_series_overflow_total", "h", NULL, 0));
    cr_assert_not_null(skick_metrics_find(reg, "g:ok"));
    cr_assert_null(skick_metrics_find(reg, "nope"));
    /* a series of the wrong kind is ignored, NULL is a metric switched off */
    skick_series_t *s = skick_metric_series(skick_metrics_find(reg, "g:ok"), "1", "2", "3", "4");
    skick_counter_add(s, 5);
    skick_histogram_observe(s, 1);
    cr_assert_float_eq(skick_series_value(s), 0, 0);
    skick_counter_add(NULL, 1);
    skick_gauge_set(NULL, 1);
    cr_assert_null(skick_metric_series(NULL));
    skick_metrics_destroy(&reg);
    skick_metrics_destroy(&reg); /* NULL-safe */
}

Test(metrics, series_are_bounded)
{
    skick_metrics_t *reg = skick_metrics_new();
    skick_metric_t *m = skick_metrics_counter(reg, "c_total", "c", "peer", 3);
    skick_series_t *first = skick_metric_series(m, "p0");
    for (int i = 0; i < 10; i++) {
        char peer[8];
        snprintf(peer, sizeof peer, "p%d", i);
        skick_counter_add(skick_metric_series(m, peer), 1);
    }
    cr_assert_eq(skick_metric_series(m, "p0"), first);
    char *text = s_render(reg);
    assert_line(text, "c_total{peer=\"p2\"} 1");
    cr_assert_null(strstr(text, "p3"));
    assert_line(text, "c_total{peer=\"_other\"} 7");
    assert_line(text, "skick_metrics_series_overflow_total{family=\"c_total\"} 7");
    free(text);
    skick_metrics_destroy(&reg);
}

typedef struct {
    skick_series_t *c, *g, *h;
} shared_t;

static void *s_hammer(void *arg)
{
    shared_t *sh = arg;
    for (int i = 0; i < 100000; i++) {
        skick_counter_add(sh->c, 1);
        skick_gauge_add(sh->g, 1);
        skick_histogram_observe(sh->h, (i % 4) * 0.5);
    }
    return NULL;
}

static void *s_scrape(void *arg)
{
    skick_metrics_t *reg = arg;
    for (int i = 0; i < 50; i++)
        free(skick_metrics_render(reg, NULL));
    return NULL;
}

Test(metrics, threads_lose_nothing)
{
    skick_metrics_t *reg = skick_metrics_new();
    const double b[] = {0.5, 1};
    shared_t sh = {
        skick_metric_series(skick_metrics_counter(reg, "c_total", "c", NULL, 0)),
        skick_metric_series(skick_metrics_gauge(reg, "g", "g", NULL, 0)),
        skick_metric_series(skick_metrics_histogram(reg, "h", "h", NULL, b, 2, 0)),
    };
    pthread_t t[5];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, s_hammer, &sh);
    pthread_create(&t[4], NULL, s_scrape, reg);
    for (int i = 0; i < 5; i++)
        pthread_join(t[i], NULL);
    cr_assert_float_eq(skick_series_value(sh.c), 400000, 0);
    cr_assert_float_eq(skick_series_value(sh.g), 400000, 0);
    cr_assert_float_eq(skick_series_value(sh.h), 400000, 0);
    char *text = s_render(reg);
    assert_line(text, "h_bucket{le=\"0.5\"} 200000");
    assert_line(text, "h_bucket{le=\"1\"} 300000");
    assert_line(text, "h_sum 300000");
    free(text);
    skick_metrics_destroy(&reg);
}

Test(metrics, process_metrics)
{
    skick_metrics_t *reg = skick_metrics_new();
    cr_assert_eq(skick_metrics_add_process(reg), 0);
    cr_assert_eq(skick_metrics_add_process(reg), -1);
    char *text = s_render(reg);
    double rss = 0, fds = 0, start = 0, cpu = -1;
    const char *p = strstr(text, "\nprocess_resident_memory_bytes ");
    cr_assert(p && sscanf(p, "\nprocess_resident_memory_bytes %lf", &rss) == 1, "%s", text);
    p = strstr(text, "\nprocess_open_fds ");
    cr_assert(p && sscanf(p, "\nprocess_open_fds %lf", &fds) == 1);
    p = strstr(text, "\nprocess_start_time_seconds ");
    cr_assert(p && sscanf(p, "\nprocess_start_time_seconds %lf", &start) == 1);
    p = strstr(text, "\nprocess_cpu_seconds_total ");
    cr_assert(p && sscanf(p, "\nprocess_cpu_seconds_total %lf", &cpu) == 1);
    cr_assert_gt(rss, 1 << 20);
    cr_assert_geq(fds, 3);
    cr_assert_geq(cpu, 0);
    cr_assert_lt(fabs(start - (double) time(NULL)), 3600, "start %f", start);
    free(text);
    skick_metrics_destroy(&reg);
}

/*  Prometheus's own parser accepts the text of a registry that has every
    kind, labels that need escaping, the overflow family and process_*. */
Test(metrics, promtool_accepts_the_text)
{
    if (access("/usr/bin/promtool", X_OK) != 0)
        cr_skip_test("promtool is not installed (Debian package prometheus)");
    skick_metrics_t *reg = skick_metrics_new();
    skick_metrics_add_process(reg);
    skick_metric_t *c = skick_metrics_counter(reg, "skick_x_total", "Things, \\ counted\\n", "a", 2);
    skick_counter_add(skick_metric_series(c, "x"), 1);
    skick_counter_add(skick_metric_series(c, "q\"uote\\"), 1);
    skick_counter_add(skick_metric_series(c, "new\nline"), 1);
    skick_metric_t *h = skick_metrics_histogram(reg, "skick_lat_seconds", "Latency", "type",
                                                skick_metrics_latency_bounds,
                                                skick_metrics_latency_nbounds, 0);
    skick_histogram_observe(skick_metric_series(h, "echo"), 0.003);
    skick_gauge_set(skick_metric_series(skick_metrics_gauge(reg, "skick_depth", "d", "k", 0), "x"),
                    NAN);
    char path[] = "/tmp/skick-metrics-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    size_t len = 0;
    char *text = skick_metrics_render(reg, &len);
    cr_assert_eq(write(fd, text, len), (ssize_t) len);
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s > %s.out 2>&1", path, path);
    int rc = system(cmd);
    char out[4096] = "";
    snprintf(cmd, sizeof cmd, "%s.out", path);
    FILE *f = fopen(cmd, "r");
    if (f) {
        size_t n = fread(out, 1, sizeof out - 1, f);
        out[n] = '\0';
        fclose(f);
    }
    unlink(cmd);
    unlink(path);
    cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "promtool: %s\non:\n%s", out, text);
    free(text);
    skick_metrics_destroy(&reg);
}

/* ---- the HTTP endpoint (proto/skick_metrics_http.c) ---------------------- */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "skick_metrics_http.h"

static int s_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *) &sa, sizeof sa), 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/*  Send request, read the whole response (the server closes). Caller frees. */
static char *s_exchange(int port, const char *request)
{
    int fd = s_connect(port);
    cr_assert_eq(write(fd, request, strlen(request)), (ssize_t) strlen(request));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    ssize_t r;
    while ((r = read(fd, buf + n, cap - 1 - n)) > 0) {
        n += (size_t) r;
        if (cap - 1 - n == 0)
            buf = realloc(buf, cap *= 2);
    }
    buf[n] = '\0';
    close(fd);
    return buf;
}

Test(metrics_http, parse_specs)
{
    char host[64], err[128];
    int port;
    cr_assert_eq(skick_metrics_http_parse("9100", host, sizeof host, &port, err, sizeof err), 0);
    cr_assert_str_eq(host, "127.0.0.1");
    cr_assert_eq(port, 9100);
    cr_assert_eq(skick_metrics_http_parse(":9101", host, sizeof host, &port, err, sizeof err), 0);
    cr_assert_str_eq(host, "127.0.0.1");
    cr_assert_eq(skick_metrics_http_parse("0.0.0.0:9102", host, sizeof host, &port, err, sizeof err), 0);
    cr_assert_str_eq(host, "0.0.0.0");
    cr_assert_eq(skick_metrics_http_parse("[::1]:9103", host, sizeof host, &port, err, sizeof err), 0);
    cr_assert_str_eq(host, "::1");
    cr_assert_eq(port, 9103);
    const char *bad[] = {"", "host:", "host:x", "host:70000", "::1:80", "[::1]80", "-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(skick_metrics_http_parse(bad[i], host, sizeof host, &port, err, sizeof err),
                     -1, "%s accepted", bad[i]);
    cr_assert(strstr(err, "--metrics"), "%s", err);
}

Test(metrics_http, serves_the_snapshot)
{
    skick_metrics_t *reg = skick_metrics_new();
    skick_series_t *c = skick_metric_series(skick_metrics_counter(reg, "x_total", "x", NULL, 0));
    char err[256];
    skick_metrics_http_t *srv = skick_metrics_http_start("127.0.0.1:0", reg, err, sizeof err);
    cr_assert_not_null(srv, "%s", err);
    int port = skick_metrics_http_port(srv);
    cr_assert_gt(port, 0);
    /* before the first publish: an empty 200 */
    char *r = s_exchange(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_assert(strstr(r, "HTTP/1.1 200 OK\r\n"), "%s", r);
    cr_assert(strstr(r, "Content-Length: 0\r\n"), "%s", r);
    free(r);
    skick_counter_add(c, 41);
    skick_metrics_publish(reg);
    skick_counter_add(c, 1); /* not published yet */
    r = s_exchange(port, "GET /metrics?x=1 HTTP/1.0\r\n\r\n");
    cr_assert(strstr(r, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), "%s", r);
    cr_assert(strstr(r, "\r\n\r\n# HELP x_total x\n# TYPE x_total counter\nx_total 41\n"), "%s", r);
    free(r);
    int64_t age = -2;
    free(skick_metrics_snapshot(reg, NULL, &age));
    cr_assert(age >= 0 && age < 5000, "%lld", (long long) age);
    r = s_exchange(port, "HEAD /metrics HTTP/1.1\r\n\r\n");
    cr_assert(strstr(r, "200 OK") && !strstr(r, "x_total"), "%s", r);
    free(r);
    r = s_exchange(port, "GET / HTTP/1.1\r\n\r\n");
    cr_assert(strstr(r, "HTTP/1.1 404 Not Found\r\n"), "%s", r);
    free(r);
    r = s_exchange(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    cr_assert(strstr(r, "HTTP/1.1 405 Method Not Allowed\r\n") && strstr(r, "Allow: GET, HEAD"),
              "%s", r);
    free(r);
    r = s_exchange(port, "garbage\r\n\r\n");
    cr_assert(strstr(r, "HTTP/1.1 400 Bad Request\r\n"), "%s", r);
    free(r);
    char *big = malloc(20000);
    memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
    memset(big + 26, 'a', 20000 - 27);
    big[19999] = '\0';
    r = s_exchange(port, big);
    cr_assert(strstr(r, "HTTP/1.1 431 "), "%.200s", r);
    free(r);
    free(big);
    skick_metrics_http_stop(&srv);
    cr_assert_null(srv);
    skick_metrics_destroy(&reg);
}

/*  Scrapers that connect and never send, or never read a big answer, cost
    only their own slot: another scrape is answered meanwhile; when all
    slots are taken, new connections are closed at once (not queued behind
    them), and the deadline frees the slots. */
Test(metrics_http, stuck_scrapers_cost_only_themselves, .timeout = 60)
{
    skick_metrics_t *reg = skick_metrics_new();
    skick_metric_t *g = skick_metrics_gauge(reg, "big", "big", "k", 100000);
    for (int i = 0; i < 20000; i++) {
        char k[16];
        snprintf(k, sizeof k, "%d", i);
        skick_gauge_set(skick_metric_series(g, k), i);
    }
    skick_metrics_publish(reg); /* ~400 kB, more than a socket buffer */
    char err[256];
    skick_metrics_http_t *srv = skick_metrics_http_start(":0", reg, err, sizeof err);
    cr_assert_not_null(srv, "%s", err);
    int port = skick_metrics_http_port(srv);
    int silent = s_connect(port);          /* never sends */
    int nonreader = s_connect(port);       /* asks, never reads */
    int rcv = 4096;
    setsockopt(nonreader, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    const char *get = "GET /metrics HTTP/1.1\r\n\r\n";
    cr_assert_eq(write(nonreader, get, strlen(get)), (ssize_t) strlen(get));
    usleep(200000);
    char *r = s_exchange(port, get);
    cr_assert(strstr(r, "200 OK") && strstr(r, "big{k=\"19999\"} 19999\n"), "%.200s", r);
    free(r);
    /* fill every slot with silent clients: one more is closed at once */
    int more[SKICK_METRICS_HTTP_CONNS];
    for (int i = 0; i < SKICK_METRICS_HTTP_CONNS - 2; i++)
        more[i] = s_connect(port);
    usleep(200000);
    int extra = s_connect(port);
    char c;
    cr_assert_eq(read(extra, &c, 1), 0, "the extra connection was not closed");
    close(extra);
    /* the deadline closes the silent ones and the non-reader */
    sleep(SKICK_METRICS_HTTP_TIMEOUT_MS / 1000 + 1);
    cr_assert_eq(read(silent, &c, 1), 0);
    r = s_exchange(port, get);
    cr_assert(strstr(r, "200 OK"), "%.200s", r);
    free(r);
    for (int i = 0; i < SKICK_METRICS_HTTP_CONNS - 2; i++)
        close(more[i]);
    close(silent);
    close(nonreader);
    skick_metrics_http_stop(&srv);
    skick_metrics_destroy(&reg);
}
