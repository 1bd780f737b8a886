/*  node_actor.h - the actor layer of the shard runtime (node/actor/)

    One shard = one reactor thread. Everything below is owned by the shard and
    touched only from its thread. The pieces, in reading order:

      node_loop.c     the reactor and scheduler: run queue, ready fibers,
                      timers, polling, coroutine tasks, waits
      node_actor.c    actor table, spawn, mailbox delivery, dispatch
      node_stop.c     stopping: on_stop, sentinels, dead letters, cleanup
      node_behaviour.c  action tables built by factories, shared between actors
      node_conv.c     conversations (call / respond) and waits
      node_daemon.c   daemons and their watchers
      node_service.c  the service registry
      node_hash.c     hashes and the hash-backend interface (in-process backend)
      node_time.c     sleeping, delayed messages
      node_poll.c     skick_poll: a coroutine waits for descriptors
      node_app.c      modules, actor types, the shard actor
      node_metrics.c  the shard's Prometheus registry (when enabled): the
                      actor layer's metrics, and the hook the layers above
                      add theirs with

    This layer knows nothing of websockets or the broker. The layers above
    reach into it through what is declared here and are told things through
    tables they register (the way node_hash.c dispatches to a backend):

      node_transport_t   where an address that is not on this shard lives:
                         remote delivery, spawning and placement, watches.
                         node/cluster sets sh->transport when it joins; NULL
                         means standalone (everything is local).
      node_actor_kind_t  what a kind of actor above this layer adds (session
                         actors, node/ws): messages it takes before the
                         mailbox, who may dispatch, what ends it. Set in
                         x->kind when such an actor is spawned.
      node_shard_add_action / node_shard_on_destroy: actions the layers
                         above give the shard actor, and state they keep on
                         the shard and free with it.

    The scheduler lives here, not in node/core/, because it is the actors'
    scheduler: its run queue holds actors, its tasks are an actor's
    coroutines and its waits fail when their actor stops.

    How suspension works (docs/internals/scheduler.md has the long form):
    the loop runs on a fiber and calls handlers directly, so a handler that
    never waits costs no switch. When a handler waits, its fiber keeps the
    handler's frames and the loop continues on a fresh or idle fiber. When the
    wait completes the fiber is put on the ready list; the loop parks itself
    among the idle fibers and switches to it. Idle fibers are parked inside
    the loop, so any of them can continue it.

    One header for the layer (about 600 lines) on purpose: its structures
    are read together, and the files above include one thing.
*/
#ifndef NODE_ACTOR_H_INCLUDED
#define NODE_ACTOR_H_INCLUDED

#include "node_core.h"
#include "skick/schema.h"
#include "skick/skick.h"
#include "skick_envelope.h"

/* ------------------------------------------------------------------------- */
/* Execution contexts and waits                                               */

typedef enum {
    NODE_EXEC_HANDLER, /* a plain action, on_start, on_stop: blocks the actor */
    NODE_EXEC_TASK,    /* a conversation handler or skick_spawn_task: concurrent */
    NODE_EXEC_DAEMON,  /* a daemon body: concurrent */
    NODE_EXEC_HOST,    /* test kit or shard glue: no actor mailbox to block */
} node_exec_kind_t;

typedef struct node_wait node_wait_t;
typedef struct node_daemon node_daemon_t;
typedef struct node_msg node_msg_t;

/*  What is running: lives on the running code's own stack. */
typedef struct node_exec {
    skick_actor_t *actor;       /* whose code this is */
    node_msg_t *msg;            /* message being handled, or NULL */
    node_exec_kind_t kind;      /* see above */
    node_daemon_t *daemon;      /* the daemon, for NODE_EXEC_DAEMON */
    bool cancelled;             /* the actor is stopping: waits fail at once */
    bool failed;                /* skick_fail was called in this context */
    bool answered;              /* msg (an opener) was replied to or picked up */
    node_wait_t *wait;          /* the wait it is suspended in, or NULL */
    struct node_exec *next;     /* actor's list of suspended contexts */
    struct node_exec **pprev;   /* what points at it in that list (O(1) unlink) */
} node_exec_t;

/*  A suspended coroutine waiting for one event. */
struct node_wait {
    node_fiber_t *fiber; /* who to resume */
    bool suspended;      /* the fiber is switched away in node_wait */
    uint64_t timer;      /* timeout timer id, 0 = none */
    int err;             /* result: SKICK_OK or an error */
    bool done;           /* completed (resumption pending or happened) */
};

/*  The running context, or NULL outside actor code. */
extern __thread node_exec_t *node_cur;

/*  Prepare w; an operation may complete it before node_wait is called. */
void node_wait_init(node_wait_t *w);
/*  Suspend the current coroutine until node_wait_complete(w) or timeout_ms
    (< 0: none). Returns w->err. Fails at once with ESTOPPED if cancelled, and
    with ECONTEXT outside a coroutine that may suspend. */
int node_wait(node_wait_t *w, int64_t timeout_ms);
/*  Complete w with err (first completion wins) and make its fiber ready. */
void node_wait_complete(node_wait_t *w, int err);

/* ------------------------------------------------------------------------- */
/* Messages and actors                                                        */

struct node_msg {
    node_msg_t *next;   /* mailbox link */
    json_object *body;  /* owned JSON object */
    node_ref_t from;    /* sender, {0,0} when unknown */
    bool control;       /* exempt from the mailbox bound */
    bool client;        /* a client message forwarded by the receptionist */
    uint32_t gen;       /* client: the schema generation it was checked with */
};

typedef struct node_action {
    char *name;                   /* owned */
    skick_handler_fn *fn;         /* handler */
    const skick_schema_t *schema; /* from the shard's cache, or NULL */
    bool concurrent;              /* skick_conversation */
    bool socket;                  /* skick_socket: clients may send it */
    char *socket_schema;          /* its schema text (owned once finished), or NULL */
} node_action_t;

typedef struct node_qschema {
    char *name; /* owned once finished */
    char *text; /* owned once finished */
} node_qschema_t;

typedef struct node_daemon_spec {
    char *name;               /* owned */
    skick_hook_fn *fn;        /* body */
    skick_hook_fn *on_failure; /* or NULL */
    int flags;                /* SKICK_RESTART, SKICK_DETACHED */
} node_daemon_spec_t;

/*  What a factory registers; shared by every actor whose factory registered
    the same things (copy on write), so an idle actor holds only a pointer. */
typedef struct node_behaviour {
    int refs;                           /* actors using it (+1 for the type's cache) */
    node_action_t *actions;             /* nactions entries */
    int nactions;
    int capactions;                     /* allocated entries (builders only) */
    node_daemon_spec_t *daemons;        /* ndaemons entries */
    int ndaemons;
    int capdaemons;                     /* allocated entries (builders only) */
    skick_hook_fn *on_start;            /* or NULL */
    skick_hook_fn *on_stop;             /* or NULL */
    skick_handler_fn *default_sentinel; /* or NULL */
    node_qschema_t *qschemas;           /* query subschemas (sessions) */
    int nqschemas;
    int capqschemas;                    /* allocated entries (builders only) */
    json_object *ship;                  /* {"sockets":{..},"queries":{..}} for the
                                           receptionist, built once; NULL if none */
} node_behaviour_t;

typedef struct node_type node_type_t;
typedef struct node_shard node_shard_t;

/*  Rarely needed per-actor parts, allocated on first use. */
typedef struct node_extra {
    skick_conv_t *convs;       /* open conversations */
    node_exec_t *suspended;    /* contexts suspended in a wait */
    node_daemon_t *daemons;    /* running daemons */
    node_strmap_t *routes;     /* sentinel handler per address, or NULL */
    char *fail_reason;         /* set by skick_fail, owned */
    int ntasks;                /* concurrent tasks running */
    struct node_after *afters; /* skick_after timers pending */
    json_object *replace_init; /* pending replace: init message (owned) */
    const node_type_t *replace_type;   /* pending replace by type */
    skick_factory_fn *replace_factory; /* pending replace by function */
    int nservices;             /* services registered */
    const struct node_actor_kind *kind; /* a kind from a layer above (sessions), or NULL */
    void *kind_state;          /* that kind's state for this actor (its own to free) */
} node_extra_t;

enum {
    NODE_A_SCHEDULED = 0x01, /* on the run queue */
    NODE_A_STARTED = 0x02,   /* on_start has been run (or is running) */
    NODE_A_STOPPING = 0x04,  /* stop requested */
    NODE_A_STOPPED = 0x08,   /* torn down, waiting to be freed */
    NODE_A_BUILDING = 0x10,  /* factory running: registrations go to the builder */
    NODE_A_REPLACE = 0x20,   /* replace pending */
    NODE_A_TEARDOWN = 0x40,  /* teardown in progress */
    NODE_A_SHARD = 0x80,     /* the shard actor */
    NODE_A_PROBE = 0x100,    /* a test kit probe: captures messages */
    NODE_A_ONSTOP = 0x200,   /* on_stop has been run (or is running) */
};

typedef enum { NODE_END_CANCELLATION, NODE_END_DONE, NODE_END_EXCEPTION } node_end_t;

struct skick_actor {
    uint64_t id;               /* actor id, key in the shard's table */
    node_shard_t *shard;       /* owner */
    node_behaviour_t *beh;     /* shared behaviour (refcounted) */
    node_msg_t *head;          /* mailbox FIFO */
    node_msg_t *tail;
    uint32_t depth;            /* user messages queued */
    uint16_t flags;            /* NODE_A_* */
    uint8_t busy;              /* a blocking handler is suspended */
    uint8_t end;               /* node_end_t, when stopping */
    skick_actor_t *run_next;   /* run queue link */
    void *state;               /* user state */
    void (*state_free)(void *);
    node_ref_t *monitors;      /* nmon entries */
    uint32_t nmon;
    uint32_t capmon;
    node_ref_t parent;         /* the spawner, may send "done" */
    node_extra_t *x;           /* or NULL */
    const node_type_t *type;   /* its type (NULL for ad-hoc factories) */
    char addr[SKICK_ADDR_LEN + 1];
};

/* ------------------------------------------------------------------------- */
/* The shard                                                                  */

struct node_type {
    char *name;                 /* owned */
    uint32_t index;             /* 1, 2...: its slot in sh->tcounts (0: actors of no registered type) */
    skick_factory_fn *factory;  /* the factory */
    const char *module;         /* module that registered it */
    node_behaviour_t *cached;   /* last behaviour built, shared if equal */
};

/*  What a shard counts per actor type when its metrics are on (node_metrics.c
    mirrors it): slot 0 is for actors made from a bare factory. */
typedef struct node_type_counts {
    uint64_t spawned;                     /* actors of the type spawned */
    uint64_t delivered;                   /* messages its handlers ran */
    struct skick_metric_series *latency;  /* sampled handler time, seconds */
} node_type_counts_t;

typedef struct node_timer node_timer_t;
typedef void(node_timer_fn)(node_shard_t *sh, void *arg, uint64_t id);

typedef struct node_stats {
    uint64_t delivered;        /* messages handed to handlers */
    uint64_t sent_local;       /* local deliveries */
    uint64_t dead_letters;     /* messages that could not be delivered or handled */
    uint64_t refused_full;     /* of which: mailbox full */
    uint64_t schema_failures;  /* messages failing an action schema */
    uint64_t unknown_actions;  /* messages with no handler */
    uint64_t spawned;          /* actors spawned */
    uint64_t stopped;          /* actors stopped */
    uint64_t failed;           /* actors stopped by a failure */
    uint64_t stale_replies;    /* replies for closed conversations */
    uint64_t lost_sentinels;   /* sentinels for monitors that were gone */
    uint64_t switches;         /* fiber switches */
    uint64_t sent_remote;      /* envelopes sent to other shards */
    uint64_t recv_remote;      /* envelopes received from other shards */
    uint64_t remote_dead;      /* dead-letter notices received from the cluster */
    uint64_t gaps;             /* envelopes found missing on the broker link */
    uint64_t malformed;        /* envelopes refused as malformed */
} node_stats_t;

typedef struct node_config {
    uint32_t mailbox_capacity; /* user messages per mailbox (default 1024) */
    int64_t call_timeout_ms;   /* SKICK_TIMEOUT_DEFAULT resolves to this */
    int64_t stop_timeout_ms;   /* bound on shutdown */
    size_t stack_size;         /* bytes per fiber stack */
    uint32_t idle_fibers;      /* idle fibers kept */
} node_config_t;

typedef struct node_hash_backend node_hash_backend_t;

typedef void(node_io_fn)(node_shard_t *sh, int fd, void *arg);

typedef struct node_io {
    int fd;            /* descriptor */
    node_io_fn *cb;    /* readable (or error, hang-up) callback */
    node_io_fn *wcb;   /* writable callback, NULL: never watched for writing */
    void *arg;         /* for both callbacks */
    bool read, write;  /* what is watched now (node_io_watch) */
    uint64_t gen;      /* registration serial: a stale poll result is dropped */
} node_io_t;

typedef struct node_task {
    struct node_task *next;                   /* queue link */
    skick_actor_t *actor;                     /* owner */
    node_exec_kind_t kind;                    /* context kind */
    void (*fn)(node_exec_t *exec, void *arg); /* body */
    void *arg;
} node_task_t;

struct node_shard {
    uint64_t id;                 /* shard id */
    char addr[SKICK_ADDR_LEN + 1]; /* "S:S" */
    node_config_t cfg;           /* settings */
    node_stats_t stats;          /* counters */
    node_u64map_t actors;        /* id -> skick_actor_t* */
    skick_actor_t *runq_head;    /* actors with work */
    skick_actor_t *runq_tail;
    node_fiber_t *ready_head;    /* fibers to resume */
    node_fiber_t *ready_tail;
    node_fiber_t *idle;          /* parked loop fibers */
    uint32_t nidle;
    node_fiber_t *host;          /* the thread's own context */
    node_fiber_t *doomed;        /* fiber to free once we are off it */
    node_timer_t **heap;         /* timer min-heap */
    size_t nheap, capheap;
    node_u64map_t timers;        /* id -> node_timer_t* (for cancel) */
    uint64_t next_timer_id;
    bool virtual_clock;          /* test kit: time moves only when told */
    int64_t vnow;                /* virtual now, ms */
    int64_t epoch_ms;            /* real clock origin */
    bool until_idle;             /* loop returns to host when idle */
    bool exit_loop;              /* loop returns to host now */
    struct node_io *io;          /* polled descriptors */
    size_t nio, capio;
    struct pollfd *pfd;          /* s_poll's array, one per watched descriptor */
    uint64_t *pfd_gen;           /* the registration each pfd entry was made for */
    size_t cappfd;
    uint64_t next_io_gen;        /* last node_io_t.gen handed out */
    struct node_task *tasks_head; /* coroutines to start */
    struct node_task *tasks_tail;
    uint32_t steps;              /* loop steps since the last poll */
    skick_app_t *app;            /* types and hooks */
    skick_actor_t *shard_actor;  /* "S:S" */
    node_strmap_t schemas;       /* schema text -> skick_schema_t* */
    node_strmap_t services;      /* name -> node_service_t* */
    void *convs;                 /* conversation index (node_conv.c) */
    node_hash_backend_t *hash;   /* hash backend */
    void *hash_state;            /* backend's state */
    bool stopping;               /* shard shutdown in progress */
    int exit_status;             /* process status once the loop ends */
    size_t live;                 /* actors alive */
    bool front, back;            /* roles: accepts websockets / hosts application actors */
    struct node_metrics *metrics; /* node_metrics.c: the registry and its state, or NULL (off) */
    node_type_counts_t *tcounts; /* per-type counts by node_type.index (metrics on), or NULL */
    uint32_t ntcounts;           /* slots in tcounts */
    uint32_t msample;            /* dispatches since the last timed one */
    /*  Conversations closed, by outcome: [0] ended well (closed by this
        side or ended by the partner without an error), [code] with that
        error (a time-out included). Counted always: one add per close. */
    uint64_t conv_outcomes[SKICK_ERR_COUNT_];
    /*  Dead letters (stats.dead_letters) by the code that made them. */
    uint64_t dead_codes[SKICK_ERR_COUNT_];
    /*  Called before each poll; returns true when it did work (the poll
        then does not block). The cluster drains its ZeroMQ sockets here:
        their descriptors signal edges, not levels. */
    bool (*poll_hook)(node_shard_t *sh);
    /*  Where addresses of other shards live, or NULL: standalone. */
    const struct node_transport *transport;
    struct node_shard_hook *on_destroy; /* node_shard_on_destroy, newest first */
    struct node_shard_action *shard_actions; /* node_shard_add_action, in order */

    /*  Held here for the layers above, which own them; this layer never
        looks inside (the types are theirs) and only frees what they
        registered with node_shard_on_destroy. */
    struct node_ws *ws;          /* node/ws: websocket server (real or test kit fake), or NULL */
    node_strmap_t schema_sets;   /* node/ws: shipped schemas text -> compiled set */
    size_t sessions;             /* node/ws: session actors alive */
    size_t clients;              /* node/ws: receptionists (open websockets) alive */
    size_t client_sessions;      /* node/ws: of those, the ones whose handshake opened a session */
    struct node_cluster *cluster; /* node/cluster: broker link, or NULL when standalone */
    bool declared_lost;          /* node/cluster: the cluster declared this shard lost: its
                                    sessions' other halves and its actors' partners are gone */
};

extern __thread node_shard_t *node_shard;

/* ------------------------------------------------------------------------- */
/* What the layers above register                                             */

/*  node_transport_t: where an address that is not on this shard lives. The
    cluster (node/cluster) sets sh->transport to its table when it joins and
    back to NULL when it leaves; every caller here checks for NULL, which
    means standalone: such an address is dead and nothing can be placed
    elsewhere. Each entry behaves like the local operation it extends:
    failures are counted, openers refused and errors set in skick_errno the
    same way. */
typedef struct node_transport {
    /*  Send *body (taken) to `to` on another shard; kind is SKICK_KIND_ACTOR
        or SKICK_KIND_CLIENT (gen: the client schema generation). 0, or -1
        with skick_errno. */
    int (*deliver)(node_shard_t *sh, int kind, node_ref_t from, node_ref_t to,
                   json_object **body, bool control, uint32_t gen);
    /*  A shard that offers actor type (0: none); spawn one there for self. */
    uint64_t (*pick_type)(node_shard_t *sh, const char *type);
    skick_addr_t (*spawn)(skick_actor_t *self, uint64_t where, const char *type,
                          json_object **init, node_ref_t parent, const char *const *monitors,
                          size_t n);
    /*  A remote provider of service name into *out: 0, or -1 when none. */
    int (*pick_service)(node_shard_t *sh, const char *name, node_ref_t *out);
    /*  The shard's own services changed: advertise them again. */
    void (*services_changed)(node_shard_t *sh);
    /*  Our actor `watched` got monitor `monitor`, which may live elsewhere:
        tell its shard (a no-op for our own actors). */
    void (*watch_tell)(node_shard_t *sh, node_ref_t watched, node_ref_t monitor);
    /*  Session placement, for the receptionists (node/ws): a back shard that
        offers requestable session type name (0: none; *entry gets its
        advert, borrowed until the next directory update), the handshake
        schema of such an advert (NULL: none), and a session of type spawned
        there for receptionist rcpt (init taken; returns its address). */
    uint64_t (*pick_session)(node_shard_t *sh, const char *name, json_object **entry);
    const skick_schema_t *(*session_handshake)(node_shard_t *sh, json_object *entry);
    node_ref_t (*spawn_session)(node_shard_t *sh, uint64_t where, const char *type,
                                json_object **init, node_ref_t rcpt);
} node_transport_t;

/*  node_actor_kind_t: what a kind of actor defined above this layer adds to
    the core's delivery and dispatch (node/ws's session actors). The layer
    that spawns such an actor sets x->kind (and x->kind_state, which the kind
    owns and frees in `free`). Every entry may be NULL. */
typedef struct node_actor_kind {
    const char *name; /* for logs */
    /*  A message from `from` with that action, before the mailbox (and
        before conversation replies are routed): true when the kind took it
        (*body consumed) and it must not be queued. */
    bool (*intercept)(skick_actor_t *a, node_ref_t from, const char *action, json_object **body);
    /*  A message the kind handles itself in mailbox order (after what came
        before it): true when handled. */
    bool (*dispatch)(skick_actor_t *a, const node_msg_t *m, const char *action);
    /*  Whether a client message (m->client) may run handler act (may be
        NULL); when not, the kind answers the client itself. */
    bool (*accepts)(skick_actor_t *a, const node_msg_t *m, const struct node_action *act);
    /*  A sentinel about `about` arrived: true when it means the actor ends
        (the kind has requested the stop), whatever its handlers say. */
    bool (*partner_ended)(skick_actor_t *a, const char *about);
    /*  The actor started, or its behaviour changed (a replace). */
    void (*started)(skick_actor_t *a);
    /*  skick_replace(a, name): the type of that name for this kind, or NULL. */
    const struct node_type *(*replace_type)(skick_actor_t *a, const char *name);
    /*  The actor is being freed: free x->kind_state. */
    void (*free)(skick_actor_t *a);
    /*  Another shard sent back a dead letter for a message this actor sent
        to `to` (action and cid as the notice names them, either may be
        NULL; err its code): the cluster calls it as the notice arrives, in
        link order with the replies (the AMQP bridge's delivery confirms). */
    void (*undelivered)(skick_actor_t *a, node_ref_t to, const char *action, const char *cid,
                        int err);
} node_actor_kind_t;

/*  State of a layer above, freed with the shard (after its actors). */
typedef struct node_shard_hook {
    struct node_shard_hook *next;
    void (*fn)(node_shard_t *sh);
} node_shard_hook_t;

/*  node_shard_on_destroy: call fn(sh) when sh is destroyed, after every
    actor is freed; hooks run newest first, and a hook registered twice runs
    once. */
void node_shard_on_destroy(node_shard_t *sh, void (*fn)(node_shard_t *sh));

/*  An action of the shard actor given by a layer above. */
typedef struct node_shard_action {
    struct node_shard_action *next;
    const char *name;       /* static */
    const char *schema;     /* static, or NULL */
    skick_handler_fn *fn;
} node_shard_action_t;

/*  node_shard_add_action: the shard actor gets action name (schema text and
    handler static) when it is started (call before node_shard_start). Such
    an action is a spawn request of that layer: one that arrives from
    another shard is applied at once like "spawn" (node_shard_apply_now), so
    its handler must not suspend. */
void node_shard_add_action(node_shard_t *sh, const char *name, const char *schema,
                           skick_handler_fn *fn);

/* node_loop.c */
node_shard_t *node_shard_new(skick_app_t *app, bool virtual_clock);
void node_shard_destroy(node_shard_t **sh_p);
void node_schedule(skick_actor_t *a);
void node_ready(node_fiber_t *f);
/*  Run the loop from the host until it is idle (until_idle) or told to exit. */
void node_loop_run(node_shard_t *sh, bool until_idle);
int64_t node_now(node_shard_t *sh);
uint64_t node_timer_add(node_shard_t *sh, int64_t delay_ms, node_timer_fn *fn, void *arg);
int node_timer_cancel(node_shard_t *sh, uint64_t id);
int64_t node_timer_next(node_shard_t *sh); /* ms until next timer, -1 none */
/*  Queue fn(exec, arg) to start on the loop as a coroutine of actor a in
    context kind (daemons, conversation tasks). The actor is not freed before
    the task ends; a task that starts after a stop sees exec->cancelled. */
void node_task_post(node_shard_t *sh, skick_actor_t *a, node_exec_kind_t kind,
                    void (*fn)(node_exec_t *exec, void *arg), void *arg);
/*  Register fd with the loop: cb runs on the loop when it is readable. */
int node_io_add(node_shard_t *sh, int fd, void (*cb)(node_shard_t *sh, int fd, void *arg),
                void *arg);
/*  Register fd with a readable callback and a writable one (both may be
    NULL), watching neither until node_io_watch says so: for libraries that
    toggle their interest (hiredis). -1 when fd is registered already. */
int node_io_add_rw(node_shard_t *sh, int fd, node_io_fn *on_read, node_io_fn *on_write,
                   void *arg);
/*  Watch fd (registered) for reading and/or writing from the next poll on.
    An error or hang-up is reported to the read callback when reading is
    watched, else to the write callback. 0, or -1 when fd is not registered. */
int node_io_watch(node_shard_t *sh, int fd, bool read, bool write);
/*  Forget fd. Safe from inside any io callback, also for another fd: a
    descriptor removed (or removed and registered again) during a poll gets
    no callback for what that poll saw. */
void node_io_remove(node_shard_t *sh, int fd);

/* node_actor.c */
skick_actor_t *node_actor_lookup(node_shard_t *sh, const char *addr);
skick_actor_t *node_actor_by_ref(node_shard_t *sh, node_ref_t ref);
skick_actor_t *node_spawn(node_shard_t *sh, const node_type_t *type,
                          skick_factory_fn *factory, json_object **init, node_ref_t parent,
                          const char *const *monitors, size_t nmon, uint16_t extra_flags,
                          uint64_t want_id);
/*  Allocate an actor and enter it in the table (no behaviour yet). */
skick_actor_t *node_actor_new(node_shard_t *sh, const node_type_t *type, node_ref_t parent,
                              uint16_t flags, uint64_t want_id);
/*  Run the factory (init taken) and schedule the actor's start. */
void node_actor_start(skick_actor_t *a, skick_factory_fn *factory, json_object **init);
/*  Count one dead letter made with code err (stats.dead_letters and by code). */
static inline void node_count_dead(node_shard_t *sh, int err)
{
    sh->stats.dead_letters++;
    sh->dead_codes[err > 0 && err < SKICK_ERR_COUNT_ ? err : 0]++;
}
/*  Deliver *body from `from` to address (takes *body). 0 or -1 (skick_errno). */
int node_deliver(node_shard_t *sh, node_ref_t from, const char *to, json_object **body);
int node_deliver_ref(node_shard_t *sh, node_ref_t from, node_ref_t to, json_object **body,
                     bool control);
/*  Append m (taken) to a's mailbox and schedule a. No checks: callers do them. */
void node_enqueue(skick_actor_t *a, node_msg_t *m);
void node_process_actor(skick_actor_t *a);
node_extra_t *node_extra(skick_actor_t *a);
node_ref_t node_ref_of(const skick_actor_t *a);
/*  Whether the message self is handling now came from ref. */
bool node_sent_by(skick_actor_t *self, node_ref_t ref);
bool node_is_opener(json_object *msg);
/*  Tell a conversation opener's caller that it will get no answer. */
void node_refuse_opener(node_shard_t *sh, json_object *msg, int err, const char *why);
void node_dead_letter(node_shard_t *sh, const char *to, json_object *msg, int err);
/*  Run a factory against a, collecting registrations into a behaviour. */
void node_build(skick_actor_t *a, skick_factory_fn *factory, json_object *init);
/*  Add a monitor reference (deduplicated). Returns whether it is new. */
bool node_add_monitor(skick_actor_t *a, node_ref_t ref);
/*  Tell the shards of a's monitors that live elsewhere, except those on
    shard recorded_by (which recorded them when its request left; 0: none),
    through sh->transport; nothing when standalone. */
void node_announce_monitors(node_shard_t *sh, skick_actor_t *a, uint64_t recorded_by);

/* node_behaviour.c */
node_behaviour_t *node_behaviour_finish(node_shard_t *sh, const node_type_t *type,
                                        const node_behaviour_t *built);
node_behaviour_t *node_behaviour_writable(skick_actor_t *a);
void node_behaviour_unref(node_behaviour_t **b_p);
const node_action_t *node_behaviour_find(const node_behaviour_t *b, const char *name);
const skick_schema_t *node_schema_cached(node_shard_t *sh, const char *text,
                                         const char *action);
/*  The same cache; socket = true compiles for client messages (strictly the
    listed keys: no implicit "cid"/"sender"). */
const skick_schema_t *node_schema_cached_as(node_shard_t *sh, const char *text,
                                            const char *action, bool socket);

/* node_stop.c */
void node_request_stop(skick_actor_t *a, node_end_t end);
/*  A sentinel body saying that actor shard:id ended with exception why
    (caller owns). */
json_object *node_sentinel_new(uint64_t shard, uint64_t id, const char *why);
/*  Deliver such a sentinel about `about` to address text `to` (nothing
    when it does not parse). */
void node_sentinel_to(node_shard_t *sh, const char *to, node_ref_t about, const char *why);
void node_teardown(skick_actor_t *a);
void node_cancel_waits(skick_actor_t *a);
void node_free_actor(skick_actor_t *a);
/*  Apply a pending replace (called by the loop when the handler returned). */
void node_apply_replace(skick_actor_t *a);

/* node_conv.c */
void node_conv_init(node_shard_t *sh);
void node_conv_fini(node_shard_t *sh);
/*  Route a receive_reply / end_conversation body to actor a (takes *body). */
void node_conv_deliver(skick_actor_t *a, json_object **body);
/*  End every conversation of a, telling partners why (err, reason). */
void node_conv_end_all(skick_actor_t *a, int err, const char *reason);

/* node_time.c */
void node_afters_cancel(skick_actor_t *a);

/*  Register an action with socket flags (node_behaviour.c). */
int node_behaviour_add_action(skick_actor_t *self, const char *name, const char *schema,
                              skick_handler_fn *fn, bool concurrent, bool socket,
                              const char *socket_schema);

/* node_daemon.c */
void node_daemons_start(skick_actor_t *a);
void node_daemons_cancel(skick_actor_t *a);
void node_daemons_free(skick_actor_t *a);
/*  Mark the running daemon context failed with reason (skick_fail). */
void node_daemon_fail(node_daemon_t *d, const char *reason);

/* node_service.c */
void node_services_init(node_shard_t *sh);
void node_services_fini(node_shard_t *sh);
void node_services_drop_actor(skick_actor_t *a);

/* node_hash.c */
struct node_hash_backend {
    const char *name;
    void *(*open)(node_shard_t *sh, const char *url);
    void (*close)(void *state);
    /*  Each op completes by calling node_wait_complete(w, err) (possibly
        before returning) and storing its result in *out. */
    void (*get)(void *state, const char *table, const char *key, json_object **out,
                node_wait_t *w);
    void (*del)(void *state, const char *table, const char *key, node_wait_t *w);
    void (*contains)(void *state, const char *table, const char *key, bool *out,
                     node_wait_t *w);
    /*  Set key to *value (taken when stored): only if absent when nx
        (*stored says whether it was), with a time to live when ttl_ms > 0
        (0: lasting; a set without one makes a key lasting again). */
    void (*set_ex)(void *state, const char *table, const char *key, json_object **value,
                   int64_t ttl_ms, bool nx, bool *stored, node_wait_t *w);
    /*  Add delta to the integer at key (absent: 0); *out gets the result.
        ETYPE when the value is not an integer, EINVAL on overflow. */
    void (*incr)(void *state, const char *table, const char *key, int64_t delta,
                 int64_t *out, node_wait_t *w);
    /*  Up to max keys of table into *out (a new JSON array of strings);
        *truncated when there are more. */
    void (*keys)(void *state, const char *table, size_t max, json_object **out,
                 bool *truncated, node_wait_t *w);
    /*  Forget w (its waiter gave up: timeout or stop) so that a late answer
        touches nothing; NULL when every op completes before returning. */
    void (*cancel)(void *state, node_wait_t *w);
};
#define NODE_HASH_KEYS_MAX 100000 /* skick_hash_keys: most keys in one answer */
extern node_hash_backend_t node_hash_inproc;

/* node_metrics.c */

/*  The counts of a's type, or NULL when metrics are off (the hot paths'
    only cost then is this test). */
static inline node_type_counts_t *node_type_counts(const skick_actor_t *a)
{
    uint32_t i = a->type ? a->type->index : 0;
    return i < a->shard->ntcounts ? &a->shard->tcounts[i] : NULL;
}

/*  Every NODE_METRICS_SAMPLE-th handler run is timed for the latency
    histograms: reading the clock twice per message would cost the ping-pong
    figure more than the rest of the metrics together. */
#define NODE_METRICS_SAMPLE 64
#define NODE_METRICS_PERIOD_MS 1000 /* publish interval */

typedef void(node_metrics_collect_fn)(node_shard_t *sh, void *arg);

/*  Turn the shard's metrics on: a registry with the actor layer's families
    and process_*, published every NODE_METRICS_PERIOD_MS from a timer. The
    layers above then add their families (node_metrics_registry) and a
    collect function each. Idempotent; 0, or -1 when out of memory. */
int node_metrics_enable(node_shard_t *sh);

/*  The registry (borrowed; lives as long as the shard), or NULL when off. */
struct skick_metrics *node_metrics_registry(node_shard_t *sh);

/*  Have fn(sh, arg) mirror a layer's counters before every publish (at
    most 8). 0 or -1. */
int node_metrics_on_collect(node_shard_t *sh, node_metrics_collect_fn *fn, void *arg);

/*  Collect and publish now (also done by the timer). */
void node_metrics_publish(node_shard_t *sh);

/*  Count one hash operation of the shard's backend: op ("get", "set",
    ...), its result (0 or an error code) and how long it took. No-op when
    metrics are off. */
void node_metrics_hash(node_shard_t *sh, const char *op, int err, double seconds);

/* node_app.c */
#define NODE_MAX_HOOKS 64
struct skick_app {
    node_strmap_t types;                        /* name -> node_type_t* */
    uint32_t ntypes;                            /* types registered: the last index */
    node_strmap_t sessions;                     /* session types: node/ws fills it */
    void (*sessions_free)(skick_app_t *app);    /* and says how to free it, or NULL */
    skick_hook_fn *on_start[NODE_MAX_HOOKS];    /* shard on_start hooks, load order */
    int non_start;
    skick_hook_fn *on_stop[NODE_MAX_HOOKS];     /* shard on_stop hooks, run in reverse */
    int non_stop;
    const char *current_module;                 /* module whose init is running */
};
skick_app_t *node_app_new(void);
void node_app_destroy(skick_app_t **app_p);
/*  Run every registered module's init not yet applied to app. */
int node_app_load_modules(skick_app_t *app);
/*  dlopen a module file; its SKICK_MODULE constructor registers it. */
int node_app_load_file(const char *path, char *err, size_t errlen);
const node_type_t *node_app_type(skick_app_t *app, const char *name);
/*  Create the shard actor and run the app's on_start hook. */
void node_shard_start(node_shard_t *sh);
/*  Apply a remote spawn or spawn_session request for the shard actor at
    once instead of queueing it (body taken when it returns true): what the
    requester sends the new actor next, on the same ordered link, must find
    it. False: deliver it normally (not such a request, or invalid). */
bool node_shard_apply_now(node_shard_t *sh, node_ref_t from, json_object **body);
/*  A spawn request msg (the shard actor's "spawn", or a session's) failed:
    the monitors it listed in add_monitor hear that the address it named in
    "name" ended, with "spawn failed: why". */
void node_spawn_failed(node_shard_t *sh, json_object *msg, const char *why);
/*  Begin the shard's shutdown: on_stop hook, then every actor. */
void node_shard_stop(node_shard_t *sh);

/* node_conv.c, for the cluster */
/*  End conversations whose partner lived on shard id with err; id 0: on
    any shard but this one. */
void node_conv_shard_lost(node_shard_t *sh, uint64_t id, int err);
/*  End actor a's conversation cid with err, if it is still open. */
void node_conv_fail(skick_actor_t *a, const char *cid, int err, const char *why);


/*  The shard's local services as {"name": ["<actor id>", ...]} (node_service.c). */
json_object *node_services_to_json(node_shard_t *sh);

#define NODE_BATCH 64 /* messages per actor per turn */
#define NODE_BUILD_ACTIONS 16 /* actions a factory registers before the builder allocates */
#define NODE_BUILD_DAEMONS 4  /* likewise for daemons */

#endif
