/*  test_poll - skick_poll (a coroutine waits for descriptors) and the
    conversation look (skick_conv_recv with timeout 0), in the test kit.

    The test kit's loop never polls, so what is tested here is the part of
    skick_poll that does not need the reactor: descriptors ready already
    (readable, writable, hung up), the timeout in virtual time, the
    refusals, a stop during the wait, and that the descriptors are
    forgotten afterwards. Readiness that comes later, through the reactor,
    is exercised by tools.so's tests (tests/integration/test_tools.py):
    every command's pipes and pidfd are waited for that way.
*/
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "skick/testkit.h"

static int g_rc, g_err, g_revents;

/*  {"action":"poll","fd":N,"events":E,"timeout":T,"twice":bool} -> {"n","err","revents"} */
static void poller_poll(skick_actor_t *self, json_object *msg)
{
    skick_pollfd_t p[2] = {{.fd = (int) skick_get_int(msg, "fd", -1),
                            .events = (int) skick_get_int(msg, "events", SKICK_FD_READ)}};
    p[1] = p[0];
    size_t n = skick_get_bool(msg, "twice", false) ? 2 : skick_get_int(msg, "n", 1);
    int rc = skick_poll(self, p, n, skick_get_int(msg, "timeout", -1));
    g_rc = rc;
    g_err = rc < 0 ? skick_errno() : 0;
    g_revents = p[0].revents;
    json_object *r = skick_json("{\"n\": %d, \"err\": \"%s\", \"revents\": %d}", rc,
                                rc < 0 ? skick_err_name(skick_errno()) : "", p[0].revents);
    skick_reply(self, msg, &r);
}

static int g_factory_rc, g_factory_err;
static int g_fd = -1;

static void poller(skick_actor_t *self, json_object *init)
{
    if (g_fd >= 0) {
        skick_pollfd_t p = {.fd = g_fd, .events = SKICK_FD_READ};
        g_factory_rc = skick_poll(self, &p, 1, 100);
        g_factory_err = skick_errno();
    }
    skick_conversation(self, "poll", NULL, poller_poll);
}

static json_object *s_call(skick_tk_t *tk, const char *to, int fd, int events, int timeout)
{
    char text[160];
    snprintf(text, sizeof text, "{\"action\":\"poll\",\"fd\":%d,\"events\":%d,\"timeout\":%d}", fd,
             events, timeout);
    return skick_tk_call(tk, to, text, 5000);
}

/*  A test kit with a poller actor and a pipe (read end p[0], write end p[1]). */
typedef struct {
    skick_tk_t *tk;
    skick_addr_t a;
    int p[2];
} fx_t;

static void fx_init(fx_t *f)
{
    cr_assert_eq(pipe(f->p), 0);
    f->tk = skick_tk_new(NULL);
    skick_tk_actor(f->tk, "poller", poller);
    f->a = skick_tk_spawn(f->tk, "poller", NULL, NULL);
}

static void fx_fini(fx_t *f)
{
    if (f->p[0] >= 0)
        close(f->p[0]);
    if (f->p[1] >= 0)
        close(f->p[1]);
    skick_tk_destroy(&f->tk);
}

Test(poll, ready_descriptors_answer_at_once)
{
    fx_t f;
    fx_init(&f);
    skick_tk_t *tk = f.tk;
    skick_addr_t a = f.a;
    int *p = f.p;
    cr_assert_eq(write(p[1], "x", 1), 1);
    int64_t t0 = skick_tk_now(tk);
    json_object *r = s_call(tk, a.str, p[0], SKICK_FD_READ, -1);
    cr_assert_not_null(r);
    cr_assert_eq(skick_get_int(r, "n", -1), 1);
    cr_assert_eq(skick_get_int(r, "revents", 0), SKICK_FD_READ);
    cr_assert_eq(skick_tk_now(tk), t0, "no time passed: no suspension");
    json_object_put(r);
    /* a write end with room: writable; reading is not asked, so not reported */
    r = s_call(tk, a.str, p[1], SKICK_FD_WRITE, 1000);
    cr_assert_eq(skick_get_int(r, "revents", 0), SKICK_FD_WRITE);
    json_object_put(r);
    /* the writer gone: a hang-up counts as ready for what was asked */
    char c;
    cr_assert_eq(read(p[0], &c, 1), 1);
    close(p[1]);
    p[1] = -1;
    r = s_call(tk, a.str, p[0], SKICK_FD_READ | SKICK_FD_WRITE, 1000);
    cr_assert_eq(skick_get_int(r, "n", -1), 1);
    cr_assert_eq(skick_get_int(r, "revents", 0), SKICK_FD_READ | SKICK_FD_WRITE);
    json_object_put(r);
    fx_fini(&f);
}

Test(poll, timeout_and_look)
{
    fx_t f;
    fx_init(&f);
    skick_tk_t *tk = f.tk;
    skick_addr_t a = f.a;
    int *p = f.p;
    int64_t t0 = skick_tk_now(tk);
    json_object *r = s_call(tk, a.str, p[0], SKICK_FD_READ, 300);
    cr_assert_eq(skick_get_int(r, "n", -1), 0, "the timeout passed: 0");
    cr_assert_eq(skick_get_int(r, "revents", -1), 0);
    cr_assert_geq(skick_tk_now(tk) - t0, 300);
    json_object_put(r);
    t0 = skick_tk_now(tk);
    r = s_call(tk, a.str, p[0], SKICK_FD_READ, 0);
    cr_assert_eq(skick_get_int(r, "n", -1), 0, "timeout 0 only looks");
    cr_assert_eq(skick_tk_now(tk), t0);
    json_object_put(r);
    /* the descriptor was forgotten after each call: it can be waited for again */
    r = s_call(tk, a.str, p[0], SKICK_FD_READ, 100);
    cr_assert_eq(skick_get_int(r, "n", -1), 0);
    json_object_put(r);
    fx_fini(&f);
}

Test(poll, bad_arguments_are_refused)
{
    fx_t f;
    fx_init(&f);
    skick_tk_t *tk = f.tk;
    skick_addr_t a = f.a;
    int *p = f.p;
    const char *bad[] = {
        "{\"action\":\"poll\",\"fd\":-1,\"events\":1,\"timeout\":100}",
        "{\"action\":\"poll\",\"fd\":%d,\"events\":0,\"timeout\":100}",
        "{\"action\":\"poll\",\"fd\":%d,\"events\":1,\"timeout\":100,\"n\":0}",
        "{\"action\":\"poll\",\"fd\":%d,\"events\":1,\"timeout\":100,\"n\":65}",
        "{\"action\":\"poll\",\"fd\":%d,\"events\":1,\"timeout\":100,\"twice\":true}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[200];
        snprintf(text, sizeof text, bad[i], p[0]);
        json_object *r = skick_tk_call(tk, a.str, text, 5000);
        cr_assert_not_null(r, "%s", text);
        cr_assert_eq(skick_get_int(r, "n", 0), -1, "%s", text);
        cr_assert_str_eq(skick_get_string(r, "err", ""), "EINVAL", "%s", text);
        json_object_put(r);
    }
    /* the refused duplicate left nothing registered */
    json_object *r = s_call(tk, a.str, p[0], SKICK_FD_READ, 100);
    cr_assert_eq(skick_get_int(r, "n", -1), 0);
    json_object_put(r);
    fx_fini(&f);
}

Test(poll, outside_a_coroutine_is_econtext)
{
    fx_t f;
    fx_init(&f);
    g_fd = f.p[0];
    skick_tk_spawn(f.tk, "poller", NULL, NULL);
    g_fd = -1;
    cr_assert_eq(g_factory_rc, -1);
    cr_assert_eq(g_factory_err, SKICK_ECONTEXT, "a factory may not suspend");
    fx_fini(&f);
}

Test(poll, a_stop_ends_the_wait_with_estopped)
{
    fx_t f;
    fx_init(&f);
    skick_tk_t *tk = f.tk;
    skick_addr_t a = f.a;
    int *p = f.p;
    skick_addr_t probe = skick_tk_probe(tk);
    char text[160];
    snprintf(text, sizeof text,
             "{\"action\":\"poll\",\"fd\":%d,\"events\":1,\"timeout\":-1,\"cid\":\"%032x\","
             "\"sender\":\"%s\"}",
             p[0], 7, probe.str);
    g_rc = 99;
    skick_tk_send(tk, probe.str, a.str, text);
    skick_tk_advance(tk, 1000);
    cr_assert_eq(g_rc, 99, "still waiting");
    skick_tk_stop(tk, a.str);
    skick_tk_run(tk);
    cr_assert_eq(g_rc, -1);
    cr_assert_eq(g_err, SKICK_ESTOPPED);
    cr_assert_not(skick_tk_alive(tk, a.str));
    /* and the descriptor is free for another actor */
    skick_addr_t b = skick_tk_spawn(tk, "poller", NULL, NULL);
    json_object *r = s_call(tk, b.str, p[0], SKICK_FD_READ, 100);
    cr_assert_eq(skick_get_int(r, "n", -1), 0);
    json_object_put(r);
    fx_fini(&f);
}

/* ---- skick_conv_recv(conv, 0): a look -------------------------------------- */

static char g_look[3][32];

static void looker_go(skick_actor_t *self, json_object *msg)
{
    skick_conv_t *c = skick_respond(self, msg);
    json_object *t = skick_conv_recv(c, 0);
    snprintf(g_look[0], sizeof g_look[0], "%s", t ? "turn" : skick_err_name(skick_errno()));
    json_object_put(t);
    skick_sleep(self, 100); /* the caller's turn arrives meanwhile */
    t = skick_conv_recv(c, 0);
    snprintf(g_look[1], sizeof g_look[1], "%s", t ? skick_get_string(t, "n", "?") : "none");
    json_object_put(t);
    skick_sleep(self, 100); /* and then the end */
    t = skick_conv_recv(c, 0);
    snprintf(g_look[2], sizeof g_look[2], "%s", t ? "turn" : skick_err_name(skick_errno()));
    json_object_put(t);
    skick_conv_close(&c);
}

static void looker(skick_actor_t *self, json_object *init)
{
    skick_conversation(self, "go", NULL, looker_go);
}

Test(poll, conv_recv_with_timeout_zero_only_looks)
{
    memset(g_look, 0, sizeof g_look);
    skick_tk_t *tk = skick_tk_new(NULL);
    skick_tk_actor(tk, "looker", looker);
    skick_addr_t a = skick_tk_spawn(tk, "looker", NULL, NULL);
    skick_addr_t probe = skick_tk_probe(tk);
    char text[200];
    const char *cid = "0000000000000000000000000000000a";
    snprintf(text, sizeof text, "{\"action\":\"go\",\"cid\":\"%s\",\"sender\":\"%s\"}", cid,
             probe.str);
    skick_tk_send(tk, probe.str, a.str, text);
    skick_tk_run(tk);
    cr_assert_str_eq(g_look[0], "ETIMEDOUT", "nothing queued: at once");
    snprintf(text, sizeof text,
             "{\"action\":\"receive_reply\",\"cid\":\"%s\",\"message\":{\"n\":\"one\"}}", cid);
    skick_tk_send(tk, probe.str, a.str, text);
    skick_tk_advance(tk, 100);
    cr_assert_str_eq(g_look[1], "one", "a queued turn is returned");
    snprintf(text, sizeof text, "{\"action\":\"end_conversation\",\"cid\":\"%s\"}", cid);
    skick_tk_send(tk, probe.str, a.str, text);
    skick_tk_advance(tk, 100);
    cr_assert_str_eq(g_look[2], "ECLOSED", "the end is reported");
    skick_tk_destroy(&tk);
}
