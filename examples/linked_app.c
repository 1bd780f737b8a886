/*  linked_app - a Skick application as its own program (skick-example-linked)

    The linked form of an application: the module is compiled into the
    program, whose main hands over to skick_run (the seed's skick.start()).
    SKICK_MODULE records the module from a constructor before main runs, so
    skick_run finds it with the ones named by --app; the options are
    skick-node's (try --help).

    The module has one actor type, "greeter", whose daemon greets once a
    second; the shard's hooks spawn it and say goodbye at shutdown.
*/
#include "skick/skick.h"

/*  Daemon: log a greeting every second until the actor stops. */
static void s_greet(skick_actor_t *self)
{
    int64_t *greetings = skick_state(self);
    while (skick_sleep(self, 1000) == 0)
        skick_actor_log(self, SKICK_LOG_INFO, "hello from the linked program (greeting %lld)",
                        (long long) ++*greetings);
}

static void s_greeter_stop(skick_actor_t *self)
{
    skick_actor_log(self, SKICK_LOG_INFO, "goodbye after %lld greeting(s)",
                    (long long) *(int64_t *) skick_state(self));
}

static void s_greeter(skick_actor_t *self, json_object *init)
{
    (void) init;
    skick_state_new(self, sizeof(int64_t), NULL); /* the greeting count, zeroed */
    skick_daemon(self, "greet", s_greet, SKICK_DEAD_MANS_SWITCH, NULL);
    skick_on_stop(self, s_greeter_stop);
}

/*  The shard's hooks: shard is the shard actor. */
static void s_shard_start(skick_actor_t *shard)
{
    json_object *init = NULL; /* NULL init means {} */
    if (!skick_spawn(shard, "greeter", &init, SKICK_LOCAL).str[0])
        skick_fail(shard, "cannot spawn the greeter: %s", skick_err_name(skick_errno()));
}

static void s_shard_stop(skick_actor_t *shard)
{
    skick_actor_log(shard, SKICK_LOG_INFO, "linked application stopping");
}

SKICK_MODULE(linked)
{
    skick_actor(app, "greeter", s_greeter);
    skick_app_on_start(app, s_shard_start);
    skick_app_on_stop(app, s_shard_stop);
}

int main(int argc, char **argv)
{
    return skick_run(argc, argv);
}
