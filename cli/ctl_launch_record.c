/*  ctl_launch_record - the record `up` starts from: run directory, old record, new record

    Before `up` starts anything it makes and checks the run directory
    (ctl_rundir.c) and looks at the record already there (ctl_record.c):
    one whose broker still runs is refused, one whose processes have all
    ended is reported and forgotten, one whose shards still run without
    their broker is handed back to be repaired (ctl_repair.c, as `scale`
    does). A new cluster gets a fresh record, cluster.json, saved before
    the first process starts: its endpoints, the programs, the apps and
    node arguments, the hash store's URL (--hash; its password too: the
    record is the owner's only, 0600 in a 0700 directory), and unless --insecure a fresh set of
   CURVE keys in RUN_DIR/keys, one per role, admitted in keys/allow/.

    Its callers hold the record's lock (ctl_lock) throughout. The record
    returned is the caller's; starting the processes and recording them
    is ctl_launch.c's and ctl_spawn.c's.
*/
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

/*  Make the CURVE keys: broker, node (every shard) and client (skickctl),
    fresh at every up; the broker admits node.cert in keys/allow/shards/
    and client.cert in keys/allow/clients/ (keys/allow/bridges/ stays
    empty), so that the client key cannot join as a shard nor a shard's
    run control operations. */
static int s_curve_keys(ctl_t *ctl, json_object *cluster)
{
    char keys[PATH_MAX + 8], allow[PATH_MAX + 16], path[PATH_MAX + 64];
    snprintf(keys, sizeof keys, "%s/keys", ctl->run_dir);
    snprintf(allow, sizeof allow, "%s/allow", keys);
    static const char *const names[] = {"broker", "node", "client"};
    static const char *const roles[] = {NULL, "shard", "client"};
    for (int i = 0; i < 3; i++) {
        if (ctl_keygen(ctl, keys, names[i], true, NULL) != 0)
            return -1;
        /* a run directory of an older skickctl admitted keys directly in
           allow/, which the broker now refuses: those links go */
        snprintf(path, sizeof path, "%s/%s.cert", allow, names[i]);
        unlink(path);
        if (roles[i] && ctl_keygen_admit(ctl, keys, names[i], allow, roles[i]) != 0)
            return -1;
    }
    snprintf(path, sizeof path, "%s/bridges", allow);
    if (ctl_mkdirs(path, 0700) != 0)
        return ctl_fail(ctl, SKICK_ESTART, "cannot create %s: %s", path, strerror(errno)), -1;
    json_object *c = json_object_new_object();
    json_object_object_add(c, "dir", json_object_new_string(keys));
    json_object_object_add(c, "allow", json_object_new_string(allow));
    snprintf(path, sizeof path, "%s/broker.cert_secret", keys);
    json_object_object_add(c, "broker_secret", json_object_new_string(path));
    snprintf(path, sizeof path, "%s/broker.cert", keys);
    json_object_object_add(c, "broker_public", json_object_new_string(path));
    snprintf(path, sizeof path, "%s/node.cert_secret", keys);
    json_object_object_add(c, "node_secret", json_object_new_string(path));
    snprintf(path, sizeof path, "%s/client.cert_secret", keys);
    json_object_object_add(c, "client_secret", json_object_new_string(path));
    json_object_object_add(cluster, "curve", c);
    return 0;
}

/*  The name of a recorded process that is still alive, or NULL. */
static const char *s_any_alive(json_object *cluster)
{
    static ctl_proc_t procs[CTL_MAX_PROCS];
    int n = ctl_cluster_procs(cluster, procs, CTL_MAX_PROCS);
    for (int i = 0; i < n; i++)
        if (ctl_proc_alive(&procs[i]))
            return procs[i].name;
    return NULL;
}

/*  An old record whose processes have all ended: say how they ended and
    forget them (their pid files go too). */
static void s_forget_ended(ctl_t *ctl, json_object *old)
{
    static ctl_proc_t procs[CTL_MAX_PROCS];
    int n = ctl_cluster_procs(old, procs, CTL_MAX_PROCS);
    if (n && !ctl->json)
        fprintf(stderr, "skickctl: the cluster recorded in %s had ended:", ctl->run_dir);
    for (int i = 0; i < n; i++) {
        char why[128];
        ctl_proc_ended(ctl, &procs[i], 0, why, sizeof why);
        if (!ctl->json)
            fprintf(stderr, "%s %s (pid %d) %s", i ? ";" : "", procs[i].name, (int) procs[i].pid,
                    why);
        ctl_cluster_forget(ctl, old, &procs[i]);
    }
    if (n && !ctl->json)
        fprintf(stderr, ". Starting a new one.\n");
}

int ctl_launch_run_dir(ctl_t *ctl)
{
    if (ctl_rundir_secure(ctl, true) != 0)
        return -1;
    if (strncmp(ctl->control, "ipc://", 6) == 0 && strlen(ctl->control + 6) > 100)
        return ctl_fail(ctl, SKICK_EINVAL,
                        "the control socket path %s is too long for ipc:// "
                        "(use a shorter --run-dir)",
                        ctl->control + 6),
               -1;
    return 0;
}

json_object *ctl_launch_record_new(ctl_t *ctl, ctl_launch_opts_t *o, const char *broker_bin,
                                   const char *node_bin)
{
    json_object *cluster = json_object_new_object();
    json_object_object_add(cluster, "version", json_object_new_int(1));
    json_object_object_add(cluster, "run_dir", json_object_new_string(ctl->run_dir));
    json_object_object_add(cluster, "broker", json_object_new_string(o->broker));
    json_object_object_add(cluster, "control", json_object_new_string(ctl->control));
    json_object_object_add(cluster, "host", json_object_new_string(o->host));
    json_object_object_add(cluster, "port", json_object_new_int((int) o->port));
    json_object_object_add(cluster, "www", o->www ? json_object_new_string(o->www) : NULL);
    json_object_object_add(cluster, "apps", o->apps);
    json_object_object_add(cluster, "node_args", o->node_args);
    o->apps = o->node_args = NULL;
    json_object_object_add(cluster, "broker_bin", json_object_new_string(broker_bin));
    json_object_object_add(cluster, "node_bin", json_object_new_string(node_bin));
    json_object_object_add(cluster, "hash", o->hash ? json_object_new_string(o->hash) : NULL);
    json_object_object_add(cluster, "curve", NULL);
    if (o->metrics_base) { /* ctl_spawn.c gives each process its port from it */
        json_object *m = json_object_new_object();
        json_object_object_add(m, "host", json_object_new_string(o->metrics_host));
        json_object_object_add(m, "base", json_object_new_int((int) o->metrics_base));
        json_object_object_add(cluster, "metrics", m);
    }
    json_object_object_add(cluster, "started_ms", json_object_new_int64(ctl_wall_ms()));
    json_object_object_add(cluster, "processes", json_object_new_array());
    if (o->curve && s_curve_keys(ctl, cluster) != 0) {
        json_object_put(cluster);
        return NULL;
    }
    if (ctl_cluster_save(ctl, cluster) != 0) {
        ctl_fail(ctl, SKICK_ESTART, "cannot write %s/cluster.json: %s", ctl->run_dir,
                 strerror(errno));
        json_object_put(cluster);
        return NULL;
    }
    return cluster;
}

int ctl_launch_check_old(ctl_t *ctl, json_object **repair)
{
    *repair = NULL;
    json_object *old = ctl_cluster_load(ctl);
    if (!old && (errno == EINVAL || errno == EPERM) && !(old = ctl_cluster_need(ctl)))
        return -1; /* damaged or untrusted: processes it names may still run */
    const char *alive = old ? s_any_alive(old) : NULL;
    if (alive && ctl_broker_alive(old)) {
        ctl_fail(ctl, SKICK_ESTART,
                 "a cluster is already running in %s (%s is alive); "
                 "`skickctl --run-dir %s down` first",
                 ctl->run_dir, alive, ctl->run_dir);
        json_object_put(old);
        return -1;
    }
    if (alive) {
        *repair = old;
        return 0;
    }
    if (old)
        s_forget_ended(ctl, old);
    json_object_put(old);
    return 0;
}

int ctl_launch_record_amqp(ctl_t *ctl, json_object *cluster, const char *url,
                           const char *bridge_bin)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/amqp.url", ctl->run_dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f || fchmod(fd, 0600) != 0 || fprintf(f, "%s\n", url) < 0 || fclose(f) != 0) {
        if (f)
            fclose(f);
        else if (fd >= 0)
            close(fd);
        return ctl_fail(ctl, SKICK_ESTART, "cannot write %s: %s", path, strerror(errno)), -1;
    }
    json_object_object_add(cluster, "amqp_file", json_object_new_string(path));
    json_object_object_add(cluster, "amqp_bin", json_object_new_string(bridge_bin));
    if (ctl_cluster_save(ctl, cluster) != 0)
        return ctl_fail(ctl, SKICK_ESTART, "cannot write %s/cluster.json: %s", ctl->run_dir,
                        strerror(errno)), -1;
    return 0;
}
