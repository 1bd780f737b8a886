/*  accumulator - the seed README's accumulator and caller, plus a haggle

    Four actor types in one module (skick-node --app accumulator.so):

      accumulator  keeps a tally: "add" adds a number, "get_tally" answers a
                   call with {"tally": n}; a daemon reports the tally every
                   second to init "report_to"; provides the "adder" service.
      caller       finds the "adder" service and, every 2 s, calls "add" and
                   then "get_tally", logging the tally.
      seller       haggles over a lamp, one conversation per customer.
      bargainer    opens a conversation with the seller and negotiates over
                   up to 3 turns (skick_converse / skick_conv_ask / close).

    The shard's on_start hook spawns one of each. Ownership reminder (see
    skick.h): a json_object ** argument is taken and set to NULL whether the
    call succeeds or not; a returned json_object * is ours to json_object_put;
    the message handed to a handler is borrowed.
*/
#include <stdio.h>

#include "skick/skick.h"

/*  True when msg opened a conversation (it came from skick_call or
    skick_converse), so the sender is waiting for an answer. */
static bool s_was_called(json_object *msg)
{
    return skick_get_string(msg, "cid", NULL) != NULL;
}

/* ---- accumulator ---------------------------------------------------------- */

typedef struct {
    int64_t tally;                      /* the running total */
    char report_to[SKICK_ADDR_LEN + 1]; /* where the reporter sends, or "" */
} accumulator_t;

/*  {"action": "add", "number": n}: add n; answer with what was added if the
    sender is waiting (a plain skick_send gets no answer). */
static void s_acc_add(skick_actor_t *self, json_object *msg)
{
    accumulator_t *st = skick_state(self);
    int64_t number = skick_get_int(msg, "number", 0); /* the schema made it an integer */
    st->tally += number;
    if (s_was_called(msg)) {
        json_object *ack = skick_json("{\"added\": %lld}", (long long) number);
        skick_reply(self, msg, &ack); /* takes ack */
    }
}

/*  {"action": "get_tally"} as a call: answer {"tally": n}. */
static void s_acc_get_tally(skick_actor_t *self, json_object *msg)
{
    accumulator_t *st = skick_state(self);
    json_object *answer = skick_json("{\"tally\": %lld}", (long long) st->tally);
    if (skick_reply(self, msg, &answer) != 0) /* takes answer, even on failure */
        skick_actor_log(self, SKICK_LOG_WARNING, "get_tally was sent, not called: no answer");
}

/*  Daemon: every second, send the tally to report_to (if there is one). */
static void s_acc_reporter(skick_actor_t *self)
{
    accumulator_t *st = skick_state(self);
    if (!st->report_to[0])
        return; /* SKICK_DETACHED: returning just ends this daemon */

    /* skick_sleep fails (ESTOPPED) when the actor stops: the loop ends. */
    while (skick_sleep(self, 1000) == 0) {
        json_object *report =
            skick_json("{\"action\": \"report_tally\", \"tally\": %lld}", (long long) st->tally);
        if (skick_send(self, st->report_to, &report) != 0) /* takes report */
            skick_actor_log(self, SKICK_LOG_WARNING, "cannot report to %s: %s", st->report_to,
                            skick_err_name(skick_errno()));
    }
}

static void s_acc_start(skick_actor_t *self)
{
    skick_register_service(self, "adder"); /* withdrawn for us when we stop */
}

static void s_acc_stop(skick_actor_t *self)
{
    accumulator_t *st = skick_state(self);
    skick_actor_log(self, SKICK_LOG_INFO, "final tally %lld", (long long) st->tally);
}

/*  The factory: runs once per accumulator, registers what it does. init is
    borrowed: copy what we keep. */
static void s_accumulator(skick_actor_t *self, json_object *init)
{
    accumulator_t *st = skick_state_new(self, sizeof *st, NULL); /* owned by the actor */
    st->tally = skick_get_int(init, "initial_tally", 0);
    snprintf(st->report_to, sizeof st->report_to, "%s", skick_get_string(init, "report_to", ""));
    /* The shorthand admits only "number" (and the "cid"/"sender" a caller adds). */
    skick_action(self, "add", "{\"number\": \"integer\"}", s_acc_add);
    skick_action(self, "get_tally", NULL, s_acc_get_tally);
    skick_daemon(self, "reporter", s_acc_reporter, SKICK_DETACHED, NULL);
    skick_on_start(self, s_acc_start);
    skick_on_stop(self, s_acc_stop);
}

/* ---- caller ----------------------------------------------------------------- */

typedef struct {
    skick_addr_t adder; /* the accumulator we talk to (a value: no ownership) */
} caller_t;

/*  on_start: find an "adder". The accumulator registers in its own on_start,
    which may not have run yet, so try a few times. */
static void s_caller_start(skick_actor_t *self)
{
    caller_t *st = skick_state(self);
    for (int attempt = 1; attempt <= 10; attempt++) {
        st->adder = skick_get_service(self, "adder", SKICK_MIXED);
        if (st->adder.str[0]) {
            skick_actor_log(self, SKICK_LOG_INFO, "found adder %s (attempt %d)", st->adder.str,
                            attempt);
            return;
        }
        if (skick_sleep(self, 100) != 0)
            return; /* stopping */
    }
    skick_fail(self, "no \"adder\" service after 10 attempts"); /* monitors get "exception" */
}

/*  Daemon: every 2 s, add 10 and read the tally back. Each skick_call
    suspends this daemon only; the caller keeps handling its mailbox. */
static void s_caller_loop(skick_actor_t *self)
{
    caller_t *st = skick_state(self);
    do {
        json_object *add = skick_json("{\"action\": \"add\", \"number\": 10}");
        /* skick_call takes add (it is NULL afterwards, whatever happens) and
           returns the answer, which is ours, or NULL with skick_errno(). */
        json_object *ack = skick_call(self, st->adder.str, &add, SKICK_TIMEOUT_DEFAULT);
        if (!ack) {
            skick_actor_log(self, SKICK_LOG_WARNING, "add failed: %s",
                            skick_err_name(skick_errno()));
            continue; /* to the sleep */
        }
        json_object_put(ack);
        json_object *ask = skick_json("{\"action\": \"get_tally\"}");
        json_object *answer = skick_call(self, st->adder.str, &ask, 1000); /* takes ask */
        if (!answer) {
            skick_actor_log(self, SKICK_LOG_WARNING, "get_tally failed: %s",
                            skick_err_name(skick_errno()));
            continue;
        }
        skick_actor_log(self, SKICK_LOG_INFO, "tally is %lld",
                        (long long) skick_get_int(answer, "tally", -1));
        json_object_put(answer);
    } while (skick_sleep(self, 2000) == 0);
    /* Returning ends the daemon; with the default flags (dead man's switch)
       that would stop the caller, but we only return when it is stopping. */
}

/*  {"action": "report_tally", "tally": n} from the accumulator's reporter. */
static void s_caller_report(skick_actor_t *self, json_object *msg)
{
    skick_actor_log(self, SKICK_LOG_INFO, "accumulator %s reports tally %lld", skick_sender(self),
                    (long long) skick_get_int(msg, "tally", -1));
}

static void s_caller(skick_actor_t *self, json_object *init)
{
    (void) init;
    skick_state_new(self, sizeof(caller_t), NULL);
    skick_on_start(self, s_caller_start);
    skick_daemon(self, "adding", s_caller_loop, SKICK_DEAD_MANS_SWITCH, NULL);
    skick_action(self, "report_tally", "{\"tally\": \"integer\"}", s_caller_report);
}

/* ---- seller and bargainer: a conversation over several turns ---------------- */

#define LIST_PRICE 100 /* the seller's first asking price */
#define FLOOR_PRICE 58 /* the seller accepts any offer from here */
#define MAX_TURNS 3    /* offers the seller listens to */

/*  {"action": "haggle", "item": s, "offer": n} opens a conversation. Each
    turn the seller accepts, or counters with the midpoint of its last price
    and the offer; the buyer answers {"offer": n}. Registered with
    skick_conversation, so several customers can haggle at once. */
static void s_seller_haggle(skick_actor_t *self, json_object *msg)
{
    skick_conv_t *conv = skick_respond(self, msg); /* owned by the actor; we close it */
    if (!conv)
        return;
    const char *item = skick_get_string(msg, "item", "?"); /* borrowed from msg */
    int64_t offer = skick_get_int(msg, "offer", 0);
    int64_t asking = LIST_PRICE;
    for (int turn = 1;; turn++) {
        if (offer >= FLOOR_PRICE) {
            json_object *deal = skick_json("{\"deal\": true, \"price\": %lld}", (long long) offer);
            skick_conv_send(conv, &deal); /* takes deal */
            skick_actor_log(self, SKICK_LOG_INFO, "turn %d: sold the %s for %lld", turn, item,
                            (long long) offer);
            break;
        }
        if (turn == MAX_TURNS) {
            json_object *no = skick_json("{\"deal\": false}");
            skick_conv_send(conv, &no);
            skick_actor_log(self, SKICK_LOG_INFO, "turn %d: no deal", turn);
            break;
        }
        asking = (asking + offer) / 2;
        if (asking < FLOOR_PRICE)
            asking = FLOOR_PRICE;
        skick_actor_log(self, SKICK_LOG_INFO, "turn %d: offered %lld, I ask %lld", turn,
                        (long long) offer, (long long) asking);
        json_object *counter = skick_json("{\"counter\": %lld}", (long long) asking);
        json_object *next = skick_conv_ask(conv, &counter, 2000); /* takes counter */
        if (!next) { /* ETIMEDOUT, ECLOSED (the buyer left), ESTOPPED... */
            skick_actor_log(self, SKICK_LOG_INFO, "buyer gone: %s", skick_err_name(skick_errno()));
            break;
        }
        offer = skick_get_int(next, "offer", 0);
        json_object_put(next); /* each turn received is ours */
    }
    skick_conv_close(&conv); /* the partner gets end_conversation; conv becomes NULL */
}

static void s_seller(skick_actor_t *self, json_object *init)
{
    (void) init;
    /* A conversation opener always carries cid and sender: require them. */
    skick_conversation(self, "haggle",
                       "{\"item\": \"string\", \"offer\": \"integer\", "
                       "\"cid\": \"string\", \"sender\": \"string\"}",
                       s_seller_haggle);
}

typedef struct {
    skick_addr_t seller;
} bargainer_t;

/*  on_start: haggle once. on_start may suspend (messages to the bargainer
    queue meanwhile); each skick_conv_* wait returns ESTOPPED on shutdown. */
static void s_bargainer_start(skick_actor_t *self)
{
    bargainer_t *st = skick_state(self);
    int64_t offer = 40;
    json_object *hello = skick_json("{\"action\": \"haggle\", \"item\": \"lamp\", \"offer\": %lld}",
                                    (long long) offer);
    skick_conv_t *conv = skick_converse(self, st->seller.str, &hello); /* takes hello */
    if (!conv) {
        skick_actor_log(self, SKICK_LOG_WARNING, "cannot reach the seller: %s",
                        skick_err_name(skick_errno()));
        return;
    }
    json_object *answer = skick_conv_recv(conv, 2000); /* the seller's first turn */
    for (int turn = 1; answer; turn++) {
        if (json_object_object_get_ex(answer, "deal", NULL)) {
            if (skick_get_bool(answer, "deal", false))
                skick_actor_log(self, SKICK_LOG_INFO, "turn %d: bought the lamp for %lld", turn,
                                (long long) skick_get_int(answer, "price", -1));
            else
                skick_actor_log(self, SKICK_LOG_INFO, "turn %d: no deal", turn);
            break;
        }
        int64_t counter = skick_get_int(answer, "counter", 0);
        json_object_put(answer);
        offer = (offer + counter + 1) / 2; /* meet halfway, rounding up */
        skick_actor_log(self, SKICK_LOG_INFO, "turn %d: seller asks %lld, I offer %lld", turn,
                        (long long) counter, (long long) offer);
        json_object *next = skick_json("{\"offer\": %lld}", (long long) offer);
        answer = skick_conv_ask(conv, &next, 2000); /* takes next; answer is ours */
    }
    if (!answer)
        skick_actor_log(self, SKICK_LOG_WARNING, "haggle ended: %s", skick_err_name(skick_errno()));
    json_object_put(answer); /* NULL-safe */
    skick_conv_close(&conv);
}

static void s_bargainer(skick_actor_t *self, json_object *init)
{
    bargainer_t *st = skick_state_new(self, sizeof *st, NULL);
    snprintf(st->seller.str, sizeof st->seller.str, "%s", skick_get_string(init, "seller", ""));
    skick_on_start(self, s_bargainer_start);
}

/* ---- the module ------------------------------------------------------------- */

/*  Spawn one actor of type with *init (taken, like every json_object **
    argument; NULL means {}) into *out. On failure, fail the shard's start:
    skick-node then exits with status 1. Returns 0 or -1. */
static int s_spawn(skick_actor_t *shard, const char *type, json_object **init, skick_addr_t *out)
{
    *out = skick_spawn(shard, type, init, SKICK_LOCAL); /* the shard monitors it */
    if (out->str[0])
        return 0;
    skick_fail(shard, "cannot spawn %s: %s", type, skick_err_name(skick_errno()));
    return -1;
}

/*  The shard's on_start hook: shard is the shard actor, which may spawn.
    The caller comes first so the accumulator can report to it. Addresses are
    hex digits and a colon, safe to interpolate with skick_json. */
static void s_shard_start(skick_actor_t *shard)
{
    skick_addr_t caller, accumulator, seller, bargainer;
    if (s_spawn(shard, "caller", NULL, &caller) != 0)
        return;
    json_object *init = skick_json("{\"initial_tally\": 0, \"report_to\": \"%s\"}", caller.str);
    if (s_spawn(shard, "accumulator", &init, &accumulator) != 0) /* init is NULL now */
        return;
    if (s_spawn(shard, "seller", NULL, &seller) != 0)
        return;
    init = skick_json("{\"seller\": \"%s\"}", seller.str);
    s_spawn(shard, "bargainer", &init, &bargainer);
}

SKICK_MODULE(accumulator)
{
    skick_actor(app, "accumulator", s_accumulator);
    skick_actor(app, "caller", s_caller);
    skick_actor(app, "seller", s_seller);
    skick_actor(app, "bargainer", s_bargainer);
    skick_app_on_start(app, s_shard_start);
}
