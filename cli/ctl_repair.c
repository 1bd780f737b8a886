/*  ctl_repair - bringing back the broker of a cluster that lost it

    Shards outlive their broker: they say HELLO again every second and
    re-advertise their directory entries to whichever broker answers on
    the recorded endpoint (PROTOCOL.md "Watches", "Admission"). So a
    cluster whose broker was killed is repaired by starting a broker like
    the first one, not by `down` and `up`. `scale` and `up` over an
    existing record do that before anything else (ctl_scale.c,
    ctl_launch.c), under the record's lock.

    A broker that answers on the recorded control endpoint although the
    recorded one is dead was started by someone else (by hand, with the
    recorded command line): starting another would only fail to bind the
    same endpoints, so it is used as it is, and `down` cannot stop it (it
    has no record). The control endpoint is an ipc socket in the run
    directory, which only its owner can bind (ctl_rundir.c), or the
    --control the user gave.
*/
#include <string.h>

#include "ctl.h"

#define EXIT_FILE_WAIT_MS 200 /* for the watcher's record of the broker just killed */
#define PROBE_MS 1000         /* how long a broker started by hand gets to answer */

/*  Whether a broker answers on cluster's control endpoint now. */
static bool s_answers(json_object *cluster)
{
    skick_client_opts_t o;
    ctl_cluster_client_opts(cluster, PROBE_MS, &o);
    const char *control = ctl_str(cluster, "control");
    skick_client_t *c = control ? skick_client_connect(control, &o) : NULL;
    if (!c)
        return false;
    skick_client_destroy(&c);
    return true;
}

/*  The index of cluster's broker in procs (n entries), or -1. */
static int s_broker(const ctl_proc_t *procs, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(procs[i].role, "broker") == 0)
            return i;
    return -1;
}

bool ctl_broker_alive(json_object *cluster)
{
    static ctl_proc_t procs[CTL_MAX_PROCS];
    int n = ctl_cluster_procs(cluster, procs, CTL_MAX_PROCS), broker = s_broker(procs, n);
    return broker >= 0 && ctl_proc_alive(&procs[broker]);
}

int ctl_repair_broker(ctl_t *ctl, json_object *cluster, long wait_ms, json_object **what)
{
    static ctl_proc_t procs[CTL_MAX_PROCS];
    int n = ctl_cluster_procs(cluster, procs, CTL_MAX_PROCS), broker = s_broker(procs, n);
    *what = NULL;
    if (broker >= 0 && ctl_proc_alive(&procs[broker]))
        return 0;
    json_object *w;
    if (broker >= 0) {
        w = ctl_proc_dead_json(ctl, &procs[broker], EXIT_FILE_WAIT_MS);
        ctl_cluster_forget(ctl, cluster, &procs[broker]);
    } else {
        w = json_object_new_object();
        json_object_object_add(w, "name", json_object_new_string("broker"));
        json_object_object_add(w, "state", json_object_new_string("not recorded"));
    }
    bool adopted = s_answers(cluster);
    json_object_object_add(w, "action", json_object_new_string(adopted ? "adopted" : "restarted"));
    *what = w;
    if (adopted) {
        json_object_object_add(w, "control", json_object_new_string(ctl_str(cluster, "control")));
        ctl_cluster_save(ctl, cluster); /* without the dead entry */
        return 0;
    }
    if (ctl_start_broker(ctl, cluster) != 0)
        return -1;
    skick_client_t *c = ctl_wait_broker(ctl, cluster, ctl_mono_ms() + wait_ms);
    if (!c)
        return -1;
    skick_client_destroy(&c);
    return 0;
}

void ctl_repair_say(ctl_t *ctl, json_object *what, FILE *out)
{
    if (!what || ctl->json)
        return;
    const char *ended = ctl_str(what, "ended");
    char was[160];
    if (ended)
        snprintf(was, sizeof was, "(pid %lld) %s", ctl_int(what, "pid"), ended);
    else
        snprintf(was, sizeof was, "was not recorded");
    if (strcmp(ctl_str(what, "action"), "adopted") == 0)
        fprintf(out,
                "the cluster's broker %s; a broker started by someone else answers "
                "on %s: using it (skickctl did not start it: `down` will not stop it)\n",
                was, ctl_str(what, "control"));
    else
        fprintf(out, "restarted the broker: the cluster's broker %s\n", was);
}
