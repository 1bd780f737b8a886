/*  ctl_top.h - skickctl top: the model (ctl_top.c) and the screen (ctl_top_screen.c)

    ctl_top.c samples the cluster: the broker's `ps` (every shard's last
    heartbeat body: counters and load) and each shard's `actors` list
    (types, mailbox depths, states), each request with a short timeout;
    rates come from successive heartbeats on the shard's own clock.
    ctl_top_screen.c turns a sample into lines (a header, the shard table,
    the busiest actor types) and runs the terminal: raw keys, refresh,
    resize, restore.

    Ownership: a top_t is the caller's (ctl_cmd_top's, on its stack); it
    owns its client and nothing else on the heap.
*/
#ifndef CTL_TOP_H_INCLUDED
#define CTL_TOP_H_INCLUDED

#include "ctl.h"

#define TOP_MAX_SHARDS 256
#define TOP_MAX_TYPES 128
#define TOP_UNKNOWN (-1) /* a count not known (the shard did not answer) */
/*  A shard whose last heartbeat at the broker is older than this is stale. */
#define TOP_STALE_HEARTBEAT_MS 2000
/*  A shard that did not answer is asked again after this long (meanwhile "?"). */
#define TOP_RETRY_MS 5000
/*  A shard the broker no longer lists is shown (as lost) this long. */
#define TOP_LOST_SHOWN_MS 30000

/*  The columns the shard table can be sorted by, in screen order. */
typedef enum {
    TOP_SORT_NAME,
    TOP_SORT_ACTORS,
    TOP_SORT_SESSIONS,
    TOP_SORT_MSGS,
    TOP_SORT_MAILBOX,
    TOP_SORT_ERRORS,
    TOP_SORT_RSS,
    TOP_SORT_COUNT
} top_sort_t;

typedef enum {
    TOP_OK,    /* listed by the broker, heartbeat fresh, answered */
    TOP_STALE, /* heartbeat old, or did not answer: its figures are "?" */
    TOP_LOST,  /* the broker no longer lists it (declared lost, or left) */
} top_state_t;

typedef struct {
    char id[17];    /* shard id */
    char name[32];  /* cluster name (back-1) or "-" */
    char roles[24]; /* "front", "back", "front,back" */
    long long pid;  /* its pid (from ps) */
    char host[64];  /* the host it reported */
    top_state_t state;
    bool answered;                       /* the last actors request was answered */
    long long actors, sessions, clients; /* from the heartbeat; TOP_UNKNOWN */
    double msgs_s, errors_s;             /* < 0: not known */
    long long mailbox_max;               /* deepest mailbox listed; TOP_UNKNOWN */
    long long rss;                       /* bytes (local processes only); TOP_UNKNOWN */
    long long heartbeat_age_ms;          /* at the broker */
    long long prev_uptime, prev_delivered, prev_errors; /* the heartbeat rates come from */
    bool have_prev;
    long long next_try_ms; /* mono ms before which a silent shard is not asked again */
    long long lost_ms;     /* mono ms it went missing from ps */
    bool seen;             /* in the current ps */
} top_shard_t;

typedef struct {
    char type[64];
    long long actors, busy, queued, depth_max;
    int shards;     /* shards running at least one */
    int last_shard; /* index of the last shard counted (for shards) */
} top_type_t;

typedef struct {
    ctl_t *ctl;
    skick_client_t *c;
    double interval_s; /* -d */
    top_sort_t sort;
    bool reverse;
    top_shard_t shards[TOP_MAX_SHARDS];
    int nshards;
    top_type_t types[TOP_MAX_TYPES];
    int ntypes;
    bool types_truncated; /* a shard listed only its first actors, or too many types */
    bool broker_ok;
    char broker_error[256];
    char broker_id[17];
    long long samples;
    long long sample_wall_ms;
    char local_host[64];
} top_t;

/* ctl_top.c */
/*  Take one sample: ps from the broker, actors from each fresh shard. */
void ctl_top_sample(top_t *t);
/*  The sample as JSON (caller owns). */
json_object *ctl_top_json(top_t *t);
/*  The shard indexes in display order into order (t->nshards of them). */
void ctl_top_order(const top_t *t, int *order);
/*  The name of a sort column ("msgs/s"), and its key. */
const char *ctl_top_sort_name(top_sort_t s);
char ctl_top_sort_key(top_sort_t s);

/* ctl_top_screen.c */
/*  Write the sample as text lines to out: width columns at most (0: no
    limit), height lines at most (0: no limit); header true adds the key
    help line. */
void ctl_top_render(top_t *t, FILE *out, int width, int height, bool keys);
/*  The interactive loop on a terminal: CTL_OK when quit with q, Ctrl-C
    or a termination signal; the terminal is restored in every case. */
int ctl_top_interactive(top_t *t);

#endif
