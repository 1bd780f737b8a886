/*  bridge_seed - the Python original's wire format (--seed-compat)

    Python Skick shards (SEED-SPEC.md 6.4, 8.2) publish [address, message]
    to ActorExchange (direct, routing key address[:len//2]) and gossip
    receive_info on BroadcastExchange (fanout). docs/internals/bridge.md
    "The seed's wire format" has the design; in short:

      * every C shard X of the bridge's view is a seed shard pad(X) (48
        zeros, then X) with a queue of that name; a C address X:A is the
        seed address pad(X):pad(A), both ways, without state;
      * a Python address gets a proxy actor on the bridge's shard whose
        kind takes every message sent to it (intercept, never queued) and
        publishes it to the Python address; bounded (--seed-aliases), the
        least recently used is stopped at the bound; a sentinel about the
        Python actor retires it (EDEAD at once, stopped 10 s later);
      * the seed names remote spawns pad(X):R itself: the C name is
        X:R[:16]; a bounded map keeps R for the way back;
      * cids: C cid = the seed cid's first 32 digits; back through a
        bounded map for conversations Python opened, else + 32 zeros;
      * never sent to a Python shard: ping (B2), spawn without an
        add_monitor list (B1, B11).

    Inbound: acked once handed to the cluster, rejected without requeue
    when bad (counted, logged rate-limited) or refused. Outbound: publishes
    with confirms, at most --max-pending unconfirmed of its own (a budget
    beside the bridge actor's, so that neither side starves the other);
    beyond it, or while RabbitMQ is down, dropped and counted, as the seed
    drops what it cannot publish.

    Everything runs on the shard's thread. One br_seed_t per process (the
    proxies' kind finds it through s_seed).
*/
#include "bridge.h"
#include "node_cluster.h"
#include "skick_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEED_HALF 64                   /* hex digits of a seed id */
#define SEED_ADDR (2 * SEED_HALF + 1)  /* characters of a seed address */
#define SEED_PAD (SEED_HALF - 16)      /* zeros before a C id in pad form */
#define SEED_GONE_MS 30000             /* obituaries are gossiped this long */
#define SEED_PURGE_S 20.0              /* the seed's purge age */
#define SEED_MAX_QUEUES 1024           /* seed shard queues (C shards) at most */
#define SEED_RETIRE_MS 10000           /* an ended Python actor's proxy lives on this long */

typedef struct seed_alias { /* a Python address and its proxy */
    char addr[SEED_ADDR + 1];
    uint64_t id;   /* the proxy's actor id (on our shard) */
    uint64_t used; /* s->clock at the last use (LRU) */
    int64_t ended; /* ms when a sentinel said the Python actor ended, 0: alive */
} seed_alias_t;

typedef struct seed_ring { /* FIFO of keys for a bounded map */
    char (*keys)[SEED_HALF + 1];
    size_t cap, head, n;
} seed_ring_t;

typedef struct seed_key { /* a gossip key received */
    double ts;
    bool info;
} seed_key_t;

typedef struct seed_out { /* a gossip key we send */
    json_object *key;  /* owned */
    int64_t gone;      /* ms when it left the view, 0 while in it */
    uint64_t round;    /* last tick it was seen */
} seed_out_t;

typedef struct seed_stats {
    uint64_t received;     /* deliveries from seed queues */
    uint64_t delivered;    /* handed to the cluster (acked) */
    uint64_t gossip_in;    /* receive_info batches taken */
    uint64_t bad;          /* rejected: not JSON, not [address, message], bad fields */
    uint64_t unknown;      /* rejected: no C shard or actor of that address */
    uint64_t refused;      /* rejected: the shard refused it (no such actor, ...) */
    uint64_t dead_letters; /* dead letters that came back later */
    uint64_t published;    /* messages to Python confirmed by RabbitMQ */
    uint64_t dropped;      /* messages to Python dropped (down, backlog, nacked) */
    uint64_t gossip_out;   /* receive_info broadcasts */
    uint64_t refused_out;  /* C messages not sent: ping to Python (B2), not translatable */
    uint64_t evicted;      /* proxies stopped at the --seed-aliases bound */
    uint64_t retired;      /* proxies stopped because their Python actor ended */
    uint64_t keys_dropped; /* gossip keys beyond --seed-keys */
} seed_stats_t;

struct br_seed {
    skick_actor_t *self;   /* the bridge actor */
    br_amqp_t *amqp;
    node_shard_t *sh;
    bool up;
    uint64_t next_id;      /* publish / queue ids (with BR_SEED_ID_BIT) */
    size_t pending;        /* publishes unconfirmed */
    uint64_t clock;        /* LRU clock */
    uint64_t gateway;      /* proxy id for messages from Python without a sender */
    char own[SEED_ADDR + 1]; /* our seed shard address pad(B):pad(B) */
    node_strmap_t by_addr; /* Python address -> seed_alias_t* */
    node_u64map_t by_id;   /* proxy id -> seed_alias_t* (same objects) */
    node_u64map_t names;   /* C actor id -> char* R (64 hex): spawns named by the seed */
    seed_ring_t names_fifo;
    node_strmap_t cids;    /* C cid -> char* seed cid: conversations Python opened */
    seed_ring_t cids_fifo;
    node_strmap_t keys;    /* gossip key text -> seed_key_t* */
    node_strmap_t out;     /* our gossip key text -> seed_out_t* */
    uint64_t round;
    node_u64map_t queues;  /* C shard id -> (void*) queue (subscription) id */
    seed_stats_t st;
};

static br_seed_t *s_seed; /* the process's one (the proxies' kind needs it) */

static const char s_zeros[] = "000000000000000000000000000000000000000000000000"
                              "0000000000000000";

/* ------------------------------------------------------------------------- */
/* Small things                                                               */

static double s_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* the seed's time.monotonic() */
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static bool s_lowhex(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return false;
    return true;
}

/*  pad(id): 48 zeros and the 16 digits. out has SEED_HALF + 1 chars. */
static void s_pad(char *out, uint64_t id)
{
    memcpy(out, s_zeros, SEED_PAD);
    node_format_id(out + SEED_PAD, id);
}

static void s_ring_init(seed_ring_t *r, size_t cap)
{
    r->cap = cap;
    r->keys = node_calloc(cap, sizeof *r->keys);
}

/*  Remember key; the oldest key comes out at the bound (*out, true). */
static bool s_ring_push(seed_ring_t *r, const char *key, char out[SEED_HALF + 1])
{
    bool full = r->n == r->cap;
    size_t slot = (r->head + r->n) % r->cap;
    if (full) {
        memcpy(out, r->keys[r->head], SEED_HALF + 1);
        r->head = (r->head + 1) % r->cap;
        slot = (r->head + r->n - 1) % r->cap;
    } else {
        r->n++;
    }
    snprintf(r->keys[slot], SEED_HALF + 1, "%s", key);
    return full;
}

/*  Free m and every value in it. */
static void s_u64map_free_all(node_u64map_t *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i])
            free(m->vals[i]);
    node_u64map_free(m);
}

/*  Append key to a growing list of keys (to delete after a map walk). */
static void s_keys_add(const char ***keys, size_t *n, size_t *cap, const char *key)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        *keys = realloc(*keys, *cap * sizeof **keys);
        if (!*keys)
            abort();
    }
    (*keys)[(*n)++] = key;
}

#define SEED_LOG(...) NODE_LOG_LIMITED(SKICK_LOG_WARNING, "seed", __VA_ARGS__)

/* ------------------------------------------------------------------------- */
/* Proxies                                                                    */

static void s_alias_drop(br_seed_t *s, seed_alias_t *a)
{
    node_strmap_del(&s->by_addr, a->addr);
    node_u64map_del(&s->by_id, a->id);
    free(a);
}

/*  Forget alias a and stop its proxy (its C monitors get cancellation). */
static void s_proxy_stop(br_seed_t *s, seed_alias_t *a)
{
    skick_actor_t *p = node_actor_by_ref(s->sh, (node_ref_t){s->sh->id, a->id});
    s_alias_drop(s, a);
    if (p)
        node_request_stop(p, NODE_END_CANCELLATION);
}

/*  Stop the least recently used proxy (the alias map is full). */
static void s_evict(br_seed_t *s)
{
    seed_alias_t *old = NULL;
    for (size_t i = 0; i < s->by_id.cap; i++) {
        seed_alias_t *a = s->by_id.keys[i] ? s->by_id.vals[i] : NULL;
        if (a && (!old || a->used < old->used))
            old = a;
    }
    if (!old)
        return;
    s_proxy_stop(s, old);
    s->st.evicted++;
}

/*  Stop the proxies of Python actors that ended SEED_RETIRE_MS ago: until
    then sentinels about them (one per monitor) still name the same proxy. */
static void s_retire(br_seed_t *s, int64_t now)
{
    seed_alias_t *done[64];
    size_t n = 0;
    for (size_t i = 0; i < s->by_id.cap && n < 64; i++) {
        seed_alias_t *a = s->by_id.keys[i] ? s->by_id.vals[i] : NULL;
        if (a && a->ended && now - a->ended > SEED_RETIRE_MS)
            done[n++] = a;
    }
    for (size_t i = 0; i < n; i++)
        s_proxy_stop(s, done[i]);
    s->st.retired += n;
}

static uint64_t s_spawn_proxy(br_seed_t *s)
{
    skick_addr_t a = skick_spawn(s->self, BR_SEED_PROXY_TYPE, NULL, SKICK_LOCAL | SKICK_NO_MONITOR);
    node_ref_t ref;
    if (!a.str[0] || node_parse_addr(a.str, &ref) != 0)
        return 0;
    return ref.id;
}

/*  The proxy of Python address addr (SEED_ADDR characters), made if need
    be when alloc: its id, or 0. */
static uint64_t s_proxy_of(br_seed_t *s, const char *addr, bool alloc)
{
    seed_alias_t *a = node_strmap_get(&s->by_addr, addr);
    if (a) {
        a->used = ++s->clock;
        return a->id;
    }
    if (!alloc)
        return 0;
    if (s->by_id.count >= br_cfg.seed_aliases)
        s_evict(s);
    uint64_t id = s_spawn_proxy(s);
    if (!id)
        return 0;
    a = node_calloc(1, sizeof *a);
    memcpy(a->addr, addr, SEED_ADDR + 1);
    a->id = id;
    a->used = ++s->clock;
    node_strmap_put(&s->by_addr, a->addr, a);
    node_u64map_put(&s->by_id, id, a);
    return id;
}

/* ------------------------------------------------------------------------- */
/* Addresses                                                                  */

static bool s_seed_shaped(const char *addr)
{
    return addr && strlen(addr) == SEED_ADDR && addr[SEED_HALF] == ':' &&
           s_lowhex(addr, SEED_HALF) && s_lowhex(addr + SEED_HALF + 1, SEED_HALF);
}

static bool s_padded(const char *half)
{
    return memcmp(half, s_zeros, SEED_PAD) == 0;
}

/*  Seed address -> C address (ref): a C actor's (pad form, or a name the
    seed gave a spawn), or a Python actor's proxy (made when alloc).
    0, or -1 when it is neither. */
static int s_to_c_addr(br_seed_t *s, const char *addr, bool alloc, node_ref_t *ref)
{
    if (!s_seed_shaped(addr))
        return -1;
    const char *sh = addr, *act = addr + SEED_HALF + 1;
    if (s_padded(sh)) {
        char sid[17], id[17];
        memcpy(sid, sh + SEED_PAD, 16);
        sid[16] = '\0';
        memcpy(id, s_padded(act) ? act + SEED_PAD : act, 16);
        id[16] = '\0';
        uint64_t shard, actor;
        if (node_parse_id(sid, &shard) != 0 || node_parse_id(id, &actor) != 0 ||
            !shard || !actor)
            return -1;
        *ref = (node_ref_t){shard, actor};
        return 0;
    }
    uint64_t id = s_proxy_of(s, addr, alloc);
    if (!id)
        return -1;
    *ref = (node_ref_t){s->sh->id, id};
    return 0;
}

/*  C address -> seed address into out: a proxy's Python address, a
    seed-named spawn's name, or the pad form. -1 when not a C address. */
static int s_to_seed_addr(br_seed_t *s, const char *caddr, char out[SEED_ADDR + 1])
{
    node_ref_t ref;
    if (!caddr || node_parse_addr(caddr, &ref) != 0)
        return -1;
    if (ref.shard == s->sh->id) {
        seed_alias_t *a = node_u64map_get(&s->by_id, ref.id);
        if (a) {
            memcpy(out, a->addr, SEED_ADDR + 1);
            return 0;
        }
    }
    s_pad(out, ref.shard);
    out[SEED_HALF] = ':';
    const char *r = node_u64map_get(&s->names, ref.id);
    if (r)
        memcpy(out + SEED_HALF + 1, r, SEED_HALF + 1);
    else
        s_pad(out + SEED_HALF + 1, ref.id);
    return 0;
}

/*  Replace the string member key of obj with its translation; missing is
    fine. -1 when present and not translatable. */
static int s_member_to_c(br_seed_t *s, json_object *obj, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(obj, key, &v))
        return 0;
    node_ref_t ref;
    if (!json_object_is_type(v, json_type_string) ||
        s_to_c_addr(s, json_object_get_string(v), true, &ref) != 0)
        return -1;
    char c[SKICK_ADDR_LEN + 1];
    node_format_addr(c, ref.shard, ref.id);
    json_object_object_add(obj, key, json_object_new_string(c));
    return 0;
}

static int s_member_to_seed(br_seed_t *s, json_object *obj, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(obj, key, &v))
        return 0;
    char out[SEED_ADDR + 1];
    if (!json_object_is_type(v, json_type_string) ||
        s_to_seed_addr(s, json_object_get_string(v), out) != 0)
        return -1;
    json_object_object_add(obj, key, json_object_new_string(out));
    return 0;
}

/* ------------------------------------------------------------------------- */
/* Publishing to Python                                                       */

static uint64_t s_id(br_seed_t *s)
{
    return BR_SEED_ID_BIT | ++s->next_id;
}

/*  Publish msg (taken) to exchange, routing key and address as the seed
    does: body [address, message]. Dropped and counted when it cannot be. */
static void s_publish(br_seed_t *s, const char *exchange, const char *key, const char *to,
                      json_object **msg)
{
    if (!s->up || s->pending >= br_cfg.max_pending) {
        s->st.dropped++;
        SEED_LOG("message for %.129s dropped: %s", to[0] ? to : "(broadcast)",
                 s->up ? "--max-pending publishes unconfirmed" : "RabbitMQ unreachable");
        json_object_put(*msg);
        *msg = NULL;
        return;
    }
    json_object *pair = json_object_new_array();
    json_object_array_add(pair, json_object_new_string(to));
    json_object_array_add(pair, *msg);
    *msg = NULL;
    size_t len;
    const char *text = json_object_to_json_string_length(pair, JSON_C_TO_STRING_PLAIN, &len);
    br_cmd_t *c = node_calloc(1, sizeof *c);
    c->kind = BR_CMD_PUBLISH;
    c->id = s_id(s);
    c->exchange = node_strdup(exchange);
    c->routing_key = node_strdup(key);
    c->content_type = node_strdup("application/json");
    c->body = node_malloc(len + 1);
    memcpy(c->body, text, len + 1);
    c->len = len;
    json_object_put(pair);
    s->pending++;
    br_amqp_post(s->amqp, c);
}

/*  To a Python actor: ActorExchange, routing key address[:len//2]. */
static void s_send_python(br_seed_t *s, const char *to, json_object **msg)
{
    char key[SEED_HALF + 1];
    memcpy(key, to, SEED_HALF);
    key[SEED_HALF] = '\0';
    s_publish(s, BR_SEED_ACTOR_EXCHANGE, key, to, msg);
}

/* ------------------------------------------------------------------------- */
/* Conversations                                                              */

/*  The seed cid of C cid c (32 characters) into out. */
static void s_cid_to_seed(br_seed_t *s, const char *c, char out[SEED_HALF + 1])
{
    const char *full = node_strmap_get(&s->cids, c);
    if (full)
        memcpy(out, full, SEED_HALF + 1);
    else
        snprintf(out, SEED_HALF + 1, "%.32s%.32s", c, s_zeros);
}

/*  Python opened conversation full (64 digits) with C cid c: remember it. */
static void s_cid_remember(br_seed_t *s, const char *c, const char *full)
{
    if (node_strmap_get(&s->cids, c))
        return;
    char old[SEED_HALF + 1];
    if (s_ring_push(&s->cids_fifo, c, old))
        free(node_strmap_del(&s->cids, old));
    node_strmap_put(&s->cids, c, node_strdup(full));
}

static bool s_is_turn(const char *action)
{
    return strcmp(action, "receive_reply") == 0 || strcmp(action, "end_conversation") == 0;
}

/* ------------------------------------------------------------------------- */
/* C -> Python: what a proxy takes                                            */

/*  Tell the C sender of opener msg (borrowed) that it is refused. */
static void s_refuse_opener(br_seed_t *s, json_object *msg, int err, const char *why)
{
    node_refuse_opener(s->sh, msg, err, why);
}

/*  Translate C message msg for Python; -1 (and *why) when it cannot go. */
static int s_msg_to_seed(br_seed_t *s, const char *action, json_object *msg, const char **why)
{
    if (strcmp(action, "ping") == 0) {
        *why = "a ping to a Python shard would crash it (SEED-SPEC.md B2)";
        return -1;
    }
    if ((strcmp(action, "monitor") == 0 || strcmp(action, "sentinel") == 0) &&
        s_member_to_seed(s, msg, "address") != 0) {
        *why = "\"address\" is not an address";
        return -1;
    }
    if (strcmp(action, "spawn") == 0) {
        json_object *mons = json_object_object_get(msg, "add_monitor"), *list;
        if (json_object_is_type(mons, json_type_array)) {
            list = json_object_get(mons);
        } else { /* missing or null: B1 kills the shard, B11 drops it; a list does neither */
            list = json_object_new_array();
            if (json_object_is_type(mons, json_type_string))
                json_object_array_add(list, json_object_get(mons));
        }
        json_object_object_add(msg, "add_monitor", list);
        for (size_t i = 0; i < json_object_array_length(list); i++) {
            char out[SEED_ADDR + 1];
            json_object *m = json_object_array_get_idx(list, i);
            if (s_to_seed_addr(s, json_object_get_string(m), out) != 0) {
                *why = "\"add_monitor\" holds something that is not an address";
                return -1;
            }
            json_object_array_put_idx(list, i, json_object_new_string(out));
        }
    }
    json_object *cid;
    if (json_object_object_get_ex(msg, "cid", &cid)) {
        const char *c = json_object_get_string(cid);
        if (!json_object_is_type(cid, json_type_string) || strlen(c) != 32) {
            *why = "\"cid\" is not a conversation id";
            return -1;
        }
        char full[SEED_HALF + 1];
        s_cid_to_seed(s, c, full);
        if (strcmp(action, "end_conversation") == 0)
            free(node_strmap_del(&s->cids, c));
        json_object_object_add(msg, "cid", json_object_new_string(full));
    }
    /* last: until here a refusal can still name the C sender */
    if (s_member_to_seed(s, msg, "sender") != 0) {
        *why = "\"sender\" is not an address";
        return -1;
    }
    return 0;
}

static bool s_proxy_intercept(skick_actor_t *a, node_ref_t from, const char *action,
                              json_object **body)
{
    (void) from;
    br_seed_t *s = s_seed;
    if (strcmp(action, "done") == 0)
        return false; /* the runtime's rule: only the bridge (its spawner) may end it */
    seed_alias_t *al = s ? node_u64map_get(&s->by_id, a->id) : NULL;
    const char *why = "no Python address behind this proxy";
    int err = SKICK_EINVAL;
    if (al && al->ended) { /* the original would nack-requeue it forever (W4) */
        why = "the Python actor has ended";
        err = SKICK_EDEAD;
        al = NULL;
    }
    if (al && s_msg_to_seed(s, action, *body, &why) == 0) {
        al->used = ++s->clock;
        s_send_python(s, al->addr, body);
        return true;
    }
    if (s) {
        s->st.refused_out++;
        SEED_LOG("a message for %s (%.40s) not sent to Python: %s", a->addr, action, why);
        s_refuse_opener(s, *body, strcmp(action, "ping") == 0 ? SKICK_EACTION : err, why);
    }
    json_object_put(*body);
    *body = NULL;
    return true;
}

/*  A dead letter came back for a message a proxy sent into the cluster: a
    conversation it opened or continued ends on the Python side too. */
static void s_proxy_undelivered(skick_actor_t *a, node_ref_t to, const char *action,
                                const char *cid, int err)
{
    (void) to;
    (void) action;
    br_seed_t *s = s_seed;
    if (!s)
        return;
    s->st.dead_letters++;
    seed_alias_t *al = node_u64map_get(&s->by_id, a->id);
    if (!al || !cid || strlen(cid) != 32)
        return;
    char full[SEED_HALF + 1];
    s_cid_to_seed(s, cid, full);
    free(node_strmap_del(&s->cids, cid));
    json_object *end = json_object_new_object();
    json_object_object_add(end, "action", json_object_new_string("end_conversation"));
    json_object_object_add(end, "cid", json_object_new_string(full));
    json_object_object_add(end, "error", json_object_new_string(skick_strerror(err)));
    json_object_object_add(end, "code", json_object_new_string(skick_err_name(err)));
    s_send_python(s, al->addr, &end);
}

static void s_proxy_free(skick_actor_t *a)
{
    br_seed_t *s = s_seed;
    seed_alias_t *al = s ? node_u64map_get(&s->by_id, a->id) : NULL;
    if (al)
        s_alias_drop(s, al);
}

static const node_actor_kind_t s_proxy_kind = {
    .name = "seed-proxy",
    .intercept = s_proxy_intercept,
    .undelivered = s_proxy_undelivered,
    .free = s_proxy_free,
};

void br_seed_proxy(skick_actor_t *self, json_object *init)
{
    (void) init;
    node_extra(self)->kind = &s_proxy_kind;
}

/* ------------------------------------------------------------------------- */
/* Gossip in                                                                  */

/*  The text of a gossip key (one of the three shapes), or NULL. */
static char *s_key_text(json_object *key, const char **shard)
{
    const char *sh = skick_get_string(key, "shard", NULL);
    if (!json_object_is_type(key, json_type_object) || !sh)
        return NULL;
    *shard = sh;
    const char *f = skick_get_string(key, "factory", NULL);
    const char *sv = skick_get_string(key, "service", NULL);
    const char *ad = skick_get_string(key, "address", NULL);
    int n = json_object_object_length(key);
    char buf[1024];
    if (n == 1)
        snprintf(buf, sizeof buf, "S\t%s", sh);
    else if (n == 2 && f)
        snprintf(buf, sizeof buf, "F\t%s\t%s", sh, f);
    else if (n == 3 && sv && ad)
        snprintf(buf, sizeof buf, "V\t%s\t%s\t%s", sh, sv, ad);
    else
        return NULL;
    return strlen(buf) + 1 < sizeof buf ? node_strdup(buf) : NULL;
}

static int s_purge_each(const char *key, void *val, void *arg)
{
    (void) key;
    double *limit = arg;
    seed_key_t *k = val;
    if (k->ts < *limit)
        k->ts = -1; /* marked: removed after the walk */
    return 0;
}

typedef struct {
    node_strmap_t *m;
    const char **dead;
    size_t n, cap;
} seed_sweep_t;

static int s_sweep_each(const char *key, void *val, void *arg)
{
    seed_sweep_t *w = arg;
    if (((seed_key_t *) val)->ts < 0)
        s_keys_add(&w->dead, &w->n, &w->cap, key);
    return 0;
}

/*  receive_info (SEED-SPEC.md 6.4): merged newest-wins; purge drops what
    is older than 20 s. -1 when it is not one. */
static int s_gossip_in(br_seed_t *s, json_object *msg)
{
    json_object *batch;
    if (!json_object_object_get_ex(msg, "batch", &batch) ||
        !json_object_is_type(batch, json_type_array))
        return -1;
    const char *by = skick_get_string(msg, "broadcaster", "");
    if (strcmp(by, s->own) == 0)
        return 0; /* our own broadcast, back on our queue */
    for (size_t i = 0; i < json_object_array_length(batch); i++) {
        json_object *it = json_object_array_get_idx(batch, i), *ts, *info;
        const char *shard = NULL;
        char *text = s_key_text(json_object_object_get(it, "key"), &shard);
        if (!text || !json_object_object_get_ex(it, "timestamp", &ts) ||
            !(json_object_is_type(ts, json_type_double) || json_object_is_type(ts, json_type_int)) ||
            !json_object_object_get_ex(it, "info", &info)) {
            free(text);
            return -1;
        }
        bool ours = s_seed_shaped(shard) && s_padded(shard);
        seed_key_t *k = ours ? NULL : node_strmap_get(&s->keys, text);
        if (!ours && !k) {
            if (s->keys.count >= br_cfg.seed_keys) {
                s->st.keys_dropped++;
            } else {
                k = node_calloc(1, sizeof *k);
                k->ts = -1e300;
                node_strmap_put(&s->keys, text, k);
            }
        }
        double t = json_object_get_double(ts);
        if (k && t >= k->ts) {
            k->ts = t;
            k->info = json_object_is_type(info, json_type_boolean) ? json_object_get_boolean(info)
                                                                   : info != NULL;
        }
        free(text);
    }
    if (skick_get_bool(msg, "purge", false)) {
        double limit = s_mono() - SEED_PURGE_S;
        node_strmap_each(&s->keys, s_purge_each, &limit);
        seed_sweep_t w = {.m = &s->keys};
        node_strmap_each(&s->keys, s_sweep_each, &w);
        for (size_t i = 0; i < w.n; i++)
            free(node_strmap_del(&s->keys, w.dead[i]));
        free(w.dead);
    }
    s->st.gossip_in++;
    return 0;
}

static bool s_alive(br_seed_t *s, const char *text)
{
    seed_key_t *k = node_strmap_get(&s->keys, text);
    return k && k->info;
}

typedef struct {
    br_seed_t *s;
    const char *name; /* a service, or NULL: count shards */
    json_object *found;
    size_t shards;
} seed_find_t;

static int s_find_each(const char *key, void *val, void *arg)
{
    seed_find_t *f = arg;
    if (!((seed_key_t *) val)->info)
        return 0;
    if (key[0] == 'S' && !f->name) {
        f->shards++;
        return 0;
    }
    if (key[0] != 'V' || !f->name)
        return 0;
    char shard[SEED_ADDR + 8], name[512], addr[SEED_ADDR + 8];
    if (sscanf(key, "V\t%136[^\t]\t%511[^\t]\t%136s", shard, name, addr) != 3 ||
        strcmp(name, f->name) != 0)
        return 0;
    char sk[sizeof shard + 4];
    snprintf(sk, sizeof sk, "S\t%s", shard);
    if (s_alive(f->s, sk) && s_seed_shaped(addr))
        json_object_array_add(f->found, json_object_new_string(addr));
    return 0;
}

/* ------------------------------------------------------------------------- */
/* Gossip out and the seed queues                                             */

static void s_out_key(br_seed_t *s, json_object *key)
{
    const char *shard;
    char *text = s_key_text(key, &shard);
    seed_out_t *o = text ? node_strmap_get(&s->out, text) : NULL;
    if (!text) {
        json_object_put(key);
        return;
    }
    if (!o) {
        o = node_calloc(1, sizeof *o);
        o->key = key;
        node_strmap_put(&s->out, text, o);
    } else {
        json_object_put(key);
    }
    o->gone = 0;
    o->round = s->round;
    free(text);
}

static json_object *s_key(const char *shard, const char *k2, const char *v2, const char *k3,
                          const char *v3)
{
    json_object *k = json_object_new_object();
    json_object_object_add(k, "shard", json_object_new_string(shard));
    if (k2)
        json_object_object_add(k, k2, json_object_new_string(v2));
    if (k3)
        json_object_object_add(k, k3, json_object_new_string(v3));
    return k;
}

/*  The keys of one directory entry (its shard, types, services). */
static void s_entry_keys(br_seed_t *s, json_object *entry, uint64_t id)
{
    char sa[SEED_ADDR + 1];
    s_pad(sa, id);
    sa[SEED_HALF] = ':';
    s_pad(sa + SEED_HALF + 1, id);
    s_out_key(s, s_key(sa, NULL, NULL, NULL, NULL));
    json_object *types = json_object_object_get(entry, "types");
    for (size_t i = 0; i < json_object_array_length(types); i++)
        s_out_key(s, s_key(sa, "factory",
                           json_object_get_string(json_object_array_get_idx(types, i)), NULL,
                           NULL));
    json_object_object_foreach(json_object_object_get(entry, "services"), name, ids)
    {
        for (size_t i = 0; json_object_is_type(ids, json_type_array) &&
                           i < json_object_array_length(ids);
             i++) {
            uint64_t actor;
            char addr[SEED_ADDR + 1];
            if (node_parse_id(json_object_get_string(json_object_array_get_idx(ids, i)),
                              &actor) != 0)
                continue;
            char c[SKICK_ADDR_LEN + 1];
            node_format_addr(c, id, actor);
            s_to_seed_addr(s, c, addr);
            s_out_key(s, s_key(sa, "service", name, "address", addr));
        }
    }
}

/*  A seed queue for C shard id (new in the view): pad(id), bound to
    ActorExchange by that key, and ours to BroadcastExchange too. */
static void s_queue_open(br_seed_t *s, uint64_t id)
{
    char q[SEED_HALF + 1];
    s_pad(q, id);
    br_cmd_t *c = node_calloc(1, sizeof *c);
    c->kind = BR_CMD_SUBSCRIBE;
    c->seed = true;
    c->id = s_id(s);
    c->routing_key = node_strdup(q);
    json_object *bindings = json_object_new_array(), *bd = json_object_new_object();
    json_object_object_add(bd, "exchange", json_object_new_string(BR_SEED_ACTOR_EXCHANGE));
    json_object_object_add(bd, "routing_key", json_object_new_string(q));
    json_object_array_add(bindings, bd);
    if (id == s->sh->id) {
        bd = json_object_new_object();
        json_object_object_add(bd, "exchange", json_object_new_string(BR_SEED_BROADCAST_EXCHANGE));
        json_object_object_add(bd, "routing_key", json_object_new_string(""));
        json_object_array_add(bindings, bd);
    }
    c->headers = bindings;
    node_u64map_put(&s->queues, id, (void *) (uintptr_t) c->id);
    br_amqp_post(s->amqp, c);
}

static void s_queue_close(br_seed_t *s, uint64_t id)
{
    uint64_t sub = (uint64_t) (uintptr_t) node_u64map_del(&s->queues, id);
    br_cmd_t *c = node_calloc(1, sizeof *c);
    c->kind = BR_CMD_UNSUBSCRIBE; /* auto-delete: the queue goes with its consumer */
    c->seed = true;
    c->id = sub;
    br_amqp_post(s->amqp, c);
}

typedef struct {
    br_seed_t *s;
    int64_t now;
    json_object *batch;
    double ts;
    const char **dead;
    size_t n, cap;
} seed_emit_t;

static int s_emit_each(const char *key, void *val, void *arg)
{
    seed_emit_t *e = arg;
    seed_out_t *o = val;
    if (o->round != e->s->round && !o->gone)
        o->gone = e->now ? e->now : 1;
    if (o->gone && e->now - o->gone > SEED_GONE_MS) {
        s_keys_add(&e->dead, &e->n, &e->cap, key);
        return 0;
    }
    json_object *it = json_object_new_object();
    json_object_object_add(it, "key", json_object_get(o->key));
    json_object_object_add(it, "timestamp", json_object_new_double(e->ts));
    json_object_object_add(it, "info", json_object_new_boolean(!o->gone));
    json_object_array_add(e->batch, it);
    return 0;
}

static void s_out_free(void *v)
{
    seed_out_t *o = v;
    json_object_put(o->key);
    free(o);
}

void br_seed_tick(br_seed_t *s)
{
    json_object *view = node_cluster_directory(s->sh);
    s->round++;
    node_u64map_t seen;
    node_u64map_init(&seen);
    for (size_t i = 0; i < json_object_array_length(view); i++) {
        json_object *entry = json_object_array_get_idx(view, i);
        uint64_t id;
        if (node_parse_id(skick_get_string(entry, "shard", NULL), &id) != 0 || !id)
            continue;
        node_u64map_put(&seen, id, entry);
        s_entry_keys(s, entry, id);
        if (s->up && !node_u64map_get(&s->queues, id) && s->queues.count < SEED_MAX_QUEUES)
            s_queue_open(s, id);
    }
    uint64_t gone[64]; /* closed after the walk (a delete may move entries); more next tick */
    size_t ngone = 0;
    for (size_t i = 0; i < s->queues.cap && ngone < 64; i++)
        if (s->queues.keys[i] && !node_u64map_get(&seen, s->queues.keys[i]))
            gone[ngone++] = s->queues.keys[i];
    for (size_t i = 0; i < ngone; i++)
        s_queue_close(s, gone[i]);
    node_u64map_free(&seen);
    json_object_put(view);
    s_retire(s, skick_now(s->self));
    seed_emit_t e = {.s = s, .now = skick_now(s->self), .batch = json_object_new_array(),
                     .ts = s_mono()};
    node_strmap_each(&s->out, s_emit_each, &e);
    for (size_t i = 0; i < e.n; i++)
        s_out_free(node_strmap_del(&s->out, e.dead[i]));
    free(e.dead);
    if (!s->up) { /* nobody to tell: not a dropped message */
        json_object_put(e.batch);
        return;
    }
    json_object *msg = json_object_new_object();
    json_object_object_add(msg, "action", json_object_new_string("receive_info"));
    json_object_object_add(msg, "batch", e.batch);
    json_object_object_add(msg, "purge", json_object_new_boolean(0));
    json_object_object_add(msg, "broadcaster", json_object_new_string(s->own));
    s_publish(s, BR_SEED_BROADCAST_EXCHANGE, "", "", &msg);
    s->st.gossip_out++;
}

/* ------------------------------------------------------------------------- */
/* Python -> C                                                                */

/*  Translate Python message msg for the C cluster; *from gets the proxy
    of its sender (or the gateway). -1 and *why when it cannot cross. */
static int s_msg_to_c(br_seed_t *s, const char *action, json_object *msg, node_ref_t *from,
                      const char **why)
{
    *from = (node_ref_t){s->sh->id, s->gateway};
    json_object *v;
    if (json_object_object_get_ex(msg, "sender", &v)) {
        if (s_member_to_c(s, msg, "sender") != 0) {
            *why = "\"sender\" is not an address (or no proxy could be made)";
            return -1;
        }
        /* from is the sender's proxy; a sender that names a C actor does
           not make the message come from it (no forged spawner or partner) */
        node_ref_t ref;
        if (node_parse_addr(skick_get_string(msg, "sender", ""), &ref) == 0 &&
            ref.shard == s->sh->id && node_u64map_get(&s->by_id, ref.id))
            *from = ref;
    }
    if ((strcmp(action, "monitor") == 0 || strcmp(action, "sentinel") == 0) &&
        s_member_to_c(s, msg, "address") != 0) {
        *why = "\"address\" is not an address";
        return -1;
    }
    if (strcmp(action, "spawn") == 0) {
        const char *name = skick_get_string(msg, "name", NULL);
        node_ref_t ref;
        if (name && s_seed_shaped(name) && !s_padded(name + SEED_HALF + 1) &&
            s_to_c_addr(s, name, false, &ref) == 0 && !node_u64map_get(&s->names, ref.id)) {
            char idk[SEED_HALF + 1], old[SEED_HALF + 1];
            snprintf(idk, sizeof idk, "%016llx", (unsigned long long) ref.id);
            if (s_ring_push(&s->names_fifo, idk, old)) {
                uint64_t oid;
                if (node_parse_id(old, &oid) == 0)
                    free(node_u64map_del(&s->names, oid));
            }
            node_u64map_put(&s->names, ref.id, node_strdup(name + SEED_HALF + 1));
        }
        if (s_member_to_c(s, msg, "name") != 0) {
            *why = "\"name\" is not an address";
            return -1;
        }
        json_object *mons = json_object_object_get(msg, "add_monitor");
        if (json_object_is_type(mons, json_type_string) && s_member_to_c(s, msg, "add_monitor")) {
            *why = "\"add_monitor\" is not an address";
            return -1;
        }
        for (size_t i = 0; json_object_is_type(mons, json_type_array) &&
                           i < json_object_array_length(mons);
             i++) {
            json_object *m = json_object_array_get_idx(mons, i);
            if (!json_object_is_type(m, json_type_string) ||
                s_to_c_addr(s, json_object_get_string(m), true, &ref) != 0) {
                *why = "\"add_monitor\" holds something that is not an address";
                return -1;
            }
            char c[SKICK_ADDR_LEN + 1];
            node_format_addr(c, ref.shard, ref.id);
            json_object_array_put_idx(mons, i, json_object_new_string(c));
        }
    }
    if (json_object_object_get_ex(msg, "cid", &v)) {
        const char *cid = json_object_get_string(v);
        if (!json_object_is_type(v, json_type_string) || strlen(cid) < 32 || !s_lowhex(cid, 32)) {
            *why = "\"cid\" is not a conversation id";
            return -1;
        }
        char c[33];
        memcpy(c, cid, 32);
        c[32] = '\0';
        if (strcmp(action, "end_conversation") == 0)
            free(node_strmap_del(&s->cids, c));
        else if (!s_is_turn(action) && strlen(cid) == SEED_HALF)
            s_cid_remember(s, c, cid); /* Python opens it */
        json_object_object_add(msg, "cid", json_object_new_string(c));
    }
    return 0;
}

/*  Check a delivery: *addr and *msg (borrowed from *pair) or -1 and *why. */
static int s_check(const br_event_t *e, json_object **pair, const char **addr,
                   json_object **msg, const char **why)
{
    *pair = NULL;
    if (e->too_big) {
        *why = "body larger than --max-message";
        return -1;
    }
    if (skick_json_parse_strict(e->body, e->len, pair) != 0) {
        *why = "body is not JSON";
        return -1;
    }
    json_object *a, *m, *act;
    if (!json_object_is_type(*pair, json_type_array) || json_object_array_length(*pair) != 2) {
        *why = "body is not an array [address, message]";
        return -1;
    }
    a = json_object_array_get_idx(*pair, 0);
    m = json_object_array_get_idx(*pair, 1);
    if (!json_object_is_type(a, json_type_string)) {
        *why = "the address is not a string";
        return -1;
    }
    if (!json_object_is_type(m, json_type_object) || !json_object_object_get_ex(m, "action", &act) ||
        !json_object_is_type(act, json_type_string)) {
        *why = "the message is not an object with a string \"action\"";
        return -1;
    }
    *addr = json_object_get_string(a);
    *msg = m;
    return 0;
}

/*  Handle one checked message: 0 (ack), or the counter to bump (reject). */
static uint64_t *s_take(br_seed_t *s, const br_event_t *e, const char *addr, json_object *msg,
                        const char **why)
{
    const char *action = skick_get_string(msg, "action", "");
    if (!addr[0]) { /* a broadcast: for the shard actor, that is gossip */
        if (strcmp(action, "receive_info") == 0 && s_gossip_in(s, msg) != 0) {
            *why = "receive_info without a valid batch";
            return &s->st.bad;
        }
        return NULL; /* anything else broadcast: ignored, as a seed shard would */
    }
    node_ref_t to;
    if (!s_seed_shaped(addr) || !s_padded(addr) || strncmp(addr, e->routing_key, SEED_HALF) != 0 ||
        s_to_c_addr(s, addr, false, &to) != 0 || !node_u64map_get(&s->queues, to.shard)) {
        *why = "no C shard or actor has that address";
        return &s->st.unknown;
    }
    if (to.shard == to.id && strcmp(action, "receive_info") == 0) { /* whispered gossip */
        if (s_gossip_in(s, msg) != 0) {
            *why = "receive_info without a valid batch";
            return &s->st.bad;
        }
        return NULL;
    }
    char about[SEED_ADDR + 1] = ""; /* a sentinel about a Python actor: it has ended */
    const char *ad = skick_get_string(msg, "address", NULL);
    if (strcmp(action, "sentinel") == 0 && s_seed_shaped(ad) && !s_padded(ad))
        memcpy(about, ad, SEED_ADDR + 1);
    node_ref_t from;
    if (s_msg_to_c(s, action, msg, &from, why) != 0)
        return &s->st.bad;
    seed_alias_t *al = about[0] ? node_strmap_get(&s->by_addr, about) : NULL;
    if (al && !al->ended)
        al->ended = skick_now(s->self);
    bool control = strcmp(action, "sentinel") == 0 || strcmp(action, "monitor") == 0 ||
                   strcmp(action, "spawn") == 0;
    json_object *body = json_object_get(msg);
    if (node_deliver_ref(s->sh, from, to, &body, control) != 0) {
        *why = skick_strerror(skick_errno());
        return &s->st.refused;
    }
    s->st.delivered++;
    return NULL;
}

void br_seed_delivery(br_seed_t *s, br_event_t *e)
{
    s->st.received++;
    json_object *pair, *msg = NULL;
    const char *addr = NULL, *why = NULL;
    uint64_t *bad = &s->st.bad;
    if (s_check(e, &pair, &addr, &msg, &why) == 0)
        bad = s_take(s, e, addr, msg, &why);
    if (bad) {
        (*bad)++;
        SEED_LOG("rejected a message from a seed shard (queue %.64s, %zu bytes): %s",
                 e->routing_key, e->len, why);
    }
    br_amqp_settle(s->amqp, e, !bad);
    json_object_put(pair);
}

/* ------------------------------------------------------------------------- */
/* Life, events, stats, actions                                               */

br_seed_t *br_seed_new(skick_actor_t *self, br_amqp_t *amqp)
{
    br_seed_t *s = node_calloc(1, sizeof *s);
    s->self = self;
    s->amqp = amqp;
    s->sh = self->shard;
    s_pad(s->own, s->sh->id);
    s->own[SEED_HALF] = ':';
    s_pad(s->own + SEED_HALF + 1, s->sh->id);
    node_strmap_init(&s->by_addr);
    node_u64map_init(&s->by_id);
    node_u64map_init(&s->names);
    node_strmap_init(&s->cids);
    node_strmap_init(&s->keys);
    node_strmap_init(&s->out);
    node_u64map_init(&s->queues);
    s_ring_init(&s->names_fifo, br_cfg.seed_aliases);
    s_ring_init(&s->cids_fifo, br_cfg.seed_aliases);
    s_seed = s;
    s->gateway = s_spawn_proxy(s);
    return s;
}

void br_seed_free(br_seed_t **s_p)
{
    br_seed_t *s = s_p ? *s_p : NULL;
    if (!s)
        return;
    *s_p = NULL;
    s_seed = NULL;
    node_strmap_free(&s->by_addr, NULL); /* the same objects as by_id's */
    s_u64map_free_all(&s->by_id);
    s_u64map_free_all(&s->names);
    node_strmap_free(&s->cids, free);
    node_strmap_free(&s->keys, free);
    node_strmap_free(&s->out, s_out_free);
    node_u64map_free(&s->queues);
    free(s->names_fifo.keys);
    free(s->cids_fifo.keys);
    free(s);
}

void br_seed_event(br_seed_t *s, const br_event_t *e)
{
    if (e->kind == BR_EV_SUBSCRIBED) {
        if (!e->err)
            return;
        SEED_LOG("a seed shard queue was refused: %s", e->text ? e->text : "");
        for (size_t i = 0; i < s->queues.cap; i++) /* the next tick tries again */
            if (s->queues.keys[i] && (uint64_t) (uintptr_t) s->queues.vals[i] == e->id) {
                node_u64map_del(&s->queues, s->queues.keys[i]);
                break;
            }
        return;
    }
    if (s->pending)
        s->pending--;
    if (e->err)
        s->st.dropped++;
    else
        s->st.published++;
}

void br_seed_link(br_seed_t *s, bool up)
{
    s->up = up;
    if (up) /* the queues at once: until they exist, what Python sends us is unroutable */
        br_seed_tick(s);
}

void br_seed_stats(br_seed_t *s, json_object *r)
{
    const seed_stats_t *st = &s->st;
#define SEED_STAT(name) \
    json_object_object_add(r, "seed_" #name, json_object_new_int64((int64_t) st->name))
    SEED_STAT(received);
    SEED_STAT(delivered);
    SEED_STAT(gossip_in);
    SEED_STAT(bad);
    SEED_STAT(unknown);
    SEED_STAT(refused);
    SEED_STAT(dead_letters);
    SEED_STAT(published);
    SEED_STAT(dropped);
    SEED_STAT(gossip_out);
    SEED_STAT(refused_out);
    SEED_STAT(evicted);
    SEED_STAT(retired);
    SEED_STAT(keys_dropped);
#undef SEED_STAT
    seed_find_t f = {.s = s};
    node_strmap_each(&s->keys, s_find_each, &f);
    json_object_object_add(r, "seed_shards", json_object_new_int64((int64_t) f.shards));
    json_object_object_add(r, "seed_queues", json_object_new_int64((int64_t) s->queues.count));
    json_object_object_add(r, "seed_aliases", json_object_new_int64((int64_t) s->by_id.count));
    json_object_object_add(r, "seed_pending", json_object_new_int64((int64_t) s->pending));
}

static void s_reply_addr(skick_actor_t *self, json_object *msg, const char *addr)
{
    json_object *r = json_object_new_object();
    json_object_object_add(r, "address", json_object_new_string(addr));
    skick_reply(self, msg, &r);
}

static void s_reply_err(skick_actor_t *self, json_object *msg, int err, const char *why)
{
    json_object *r = json_object_new_object(), *e = json_object_new_object();
    json_object_object_add(e, "code", json_object_new_string(skick_err_name(err)));
    json_object_object_add(e, "message", json_object_new_string(why));
    json_object_object_add(r, "error", e);
    skick_reply(self, msg, &r);
}

void br_seed_on_alias(skick_actor_t *self, json_object *msg)
{
    br_seed_t *s = s_seed;
    node_ref_t ref;
    if (!s) {
        s_reply_err(self, msg, SKICK_ENOTFOUND, "the bridge runs without --seed-compat");
        return;
    }
    if (s_to_c_addr(s, skick_get_string(msg, "address", ""), true, &ref) != 0) {
        s_reply_err(self, msg, SKICK_EINVAL, "not a seed address (64 hex digits : 64 hex digits)");
        return;
    }
    char c[SKICK_ADDR_LEN + 1];
    node_format_addr(c, ref.shard, ref.id);
    s_reply_addr(self, msg, c);
}

void br_seed_on_service(skick_actor_t *self, json_object *msg)
{
    br_seed_t *s = s_seed;
    if (!s) {
        s_reply_err(self, msg, SKICK_ENOTFOUND, "the bridge runs without --seed-compat");
        return;
    }
    seed_find_t f = {.s = s, .name = skick_get_string(msg, "name", ""),
                     .found = json_object_new_array()};
    node_strmap_each(&s->keys, s_find_each, &f);
    size_t n = json_object_array_length(f.found);
    node_ref_t ref;
    if (!n || s_to_c_addr(s, json_object_get_string(json_object_array_get_idx(
                                 f.found, (size_t) (node_random64() % n))),
                          true, &ref) != 0) {
        json_object_put(f.found);
        s_reply_err(self, msg, SKICK_ENOTFOUND, "no Python shard provides that service");
        return;
    }
    json_object_put(f.found);
    char c[SKICK_ADDR_LEN + 1];
    node_format_addr(c, ref.shard, ref.id);
    s_reply_addr(self, msg, c);
}
