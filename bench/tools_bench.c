/*  tools_bench - command start latency: a run of /usr/bin/true through
    tools.so's command executor (client -> broker -> shard -> posix_spawn ->
    pidfd -> {"exit":0} back), next to posix_spawn + waitpid of the same
    program in a loop here, and a control request round trip (the share of
    the broker and the client). Run by tools_bench.sh.

    tools_bench CONTROL_ENDPOINT COMMAND_ADDRESS [N]   prints "name value" lines
*/
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <skick/client.h>

extern char **environ;

static double s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

static void s_print(const char *name, double *t, int n)
{
    qsort(t, (size_t) n, sizeof *t, s_cmp);
    printf("%s_median_ms %.3f\n%s_p90_ms %.3f\n", name, t[n / 2], name, t[n * 9 / 10]);
}

/*  One run of /usr/bin/true to its end; 0 when it said {"exit":0}. */
static int s_run(skick_client_t *c, const char *addr, json_object *msg)
{
    skick_client_conv_t *v = skick_client_converse(c, addr, msg);
    int rc = -1;
    for (json_object *turn = NULL; v && skick_client_conv_recv(v, 5000, &turn) == 1;) {
        json_object *e;
        if (json_object_object_get_ex(turn, "exit", &e))
            rc = json_object_get_int(e);
        json_object_put(turn);
        turn = NULL;
    }
    skick_client_conv_close(&v);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: tools_bench CONTROL_ENDPOINT COMMAND_ADDRESS [N]\n");
        return 2;
    }
    int n = argc > 3 ? atoi(argv[3]) : 1000;
    if (n < 10)
        n = 10;
    skick_client_t *c = skick_client_connect(argv[1], NULL);
    if (!c) {
        fprintf(stderr, "tools_bench: cannot connect: %s\n", skick_strerror(skick_errno()));
        return 1;
    }
    double *t = calloc((size_t) n, sizeof *t);
    json_object *msg = json_tokener_parse("{\"action\":\"run\",\"argv\":[\"/usr/bin/true\"]}");
    for (int i = 0; i < 20; i++)
        s_run(c, argv[2], msg); /* warm up */
    for (int i = 0; i < n; i++) {
        double t0 = s_now_ms();
        if (s_run(c, argv[2], msg) != 0) {
            fprintf(stderr, "tools_bench: run %d did not exit 0 (is /usr/bin/* allowed?)\n", i);
            return 1;
        }
        t[i] = s_now_ms() - t0;
    }
    s_print("executor_run_true", t, n);
    for (int i = 0; i < n; i++) {
        double t0 = s_now_ms();
        pid_t pid;
        char *args[] = {"true", NULL};
        if (posix_spawn(&pid, "/usr/bin/true", NULL, NULL, args, environ) != 0 ||
            waitpid(pid, NULL, 0) != pid)
            return 1;
        t[i] = s_now_ms() - t0;
    }
    s_print("posix_spawn_true", t, n);
    for (int i = 0; i < n; i++) {
        double t0 = s_now_ms();
        json_object *r = NULL;
        if (skick_client_ps(c, 5000, &r) != 0)
            return 1;
        json_object_put(r);
        t[i] = s_now_ms() - t0;
    }
    s_print("control_request", t, n);
    json_object_put(msg);
    free(t);
    skick_client_destroy(&c);
    return 0;
}
