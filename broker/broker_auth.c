/*  broker_auth - who may connect (ZAP) and in which role (HELLO, CONTROL)

    The broker's own ZAP handler (RFC 27, on inproc://zeromq.zap.01), in
    place of CZMQ's zauth, so that an admitted key carries its role. The
    --curve-allow directory holds one subdirectory per role:

        ALLOW/shards/    public certificates of shards (skick-node)
        ALLOW/bridges/   reserved for bridges (no bridge protocol yet: their
                         keys connect, but their HELLO is refused)
        ALLOW/clients/   skickctl and programs using skick/client.h

    A CURVE handshake is admitted when the client's public key is in one of
    them; the ZAP reply's User-Id is the role ("shard", "bridge", "client"),
    which libzmq attaches to every frame the connection delivers. (Directory
    entries travel on a shard's own link, so only a peer that joined with a
    shard key can publish one: broker_dir.c.) Certificates left directly in
    ALLOW (the layout before
    roles) make the broker refuse to start with a migration message, since
    their role cannot be guessed safely.

    The keys are reloaded when the directory or a role directory changed
    (checked at every handshake: a certificate added or removed takes effect
    for the next connection) and on SIGHUP (a certificate edited in place).

    At HELLO (broker_auth_hello) the role must fit the peer kind: a shard
    key joins as a shard, a client key as a client. On CONTROL
    (broker_auth_may_control) a peer that joined with a shard key may run
    only `hash` on the broker (the cluster's hash backend); ps, directory,
    services, stats and every operation forwarded to a shard (actors,
    sessions, stats, stop) belong to the control plane, client keys.
    Without CURVE there is no role (BROKER_ROLE_NONE) and these two checks
    pass: what a connection may do is then decided by the socket it uses.

    Threads: the ZAP handler is a CZMQ actor with its own thread, which
    alone owns its key table; the main thread talks to it through the actor
    pipe ($TERM, RELOAD). broker_auth_hello and broker_auth_may_control run
    on the broker thread and read only the frame metadata and the peer.
*/
#include "broker_auth.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define S_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define S_ROLE_DIRS 3 /* shards, bridges, clients */

/*  Role directory names, by BROKER_ROLE_* - 1. */
static const char *const s_role_dir[S_ROLE_DIRS] = {"shards", "bridges", "clients"};

const char *broker_auth_role_name(int role)
{
    static const char *const names[] = {"none", "shard", "bridge", "client"};
    return role >= 0 && role <= BROKER_ROLE_CLIENT ? names[role] : "none";
}

/* ---- the ZAP handler's thread ----------------------------------------------- */

/*  The handler's state, owned by its thread. */
typedef struct {
    char allow[PATH_MAX];                   /* the --curve-allow directory */
    zhashx_t *keys;                         /* Z85 public key -> role (int, as a pointer) */
    struct timespec mtime[1 + S_ROLE_DIRS]; /* ALLOW and each role dir at the last load */
    broker_ratelimit_t rl;                  /* log budget for refused handshakes */
} s_auth_t;

/*  The modification times of ALLOW and its role directories (0 when absent). */
static void s_mtimes(const char *allow, struct timespec out[1 + S_ROLE_DIRS])
{
    char path[PATH_MAX + 16];
    for (int i = 0; i <= S_ROLE_DIRS; i++) {
        if (i == 0)
            snprintf(path, sizeof path, "%s", allow);
        else
            snprintf(path, sizeof path, "%s/%s", allow, s_role_dir[i - 1]);
        struct stat st;
        out[i] = stat(path, &st) == 0 ? st.st_mtim : (struct timespec){0, 0};
    }
}

/*  True for a directory entry that may be a public certificate. */
static bool s_cert_name(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && !(n >= 7 && strcmp(name + n - 7, "_secret") == 0);
}

/*  The number of certificates directly in ALLOW (the layout before roles). */
static int s_flat_certs(const char *allow, char *first, size_t firstlen)
{
    DIR *d = opendir(allow);
    if (!d)
        return 0;
    int n = 0;
    char path[PATH_MAX + 272];
    for (struct dirent *de; (de = readdir(d));) {
        snprintf(path, sizeof path, "%s/%s", allow, de->d_name);
        struct stat st;
        if (!s_cert_name(de->d_name) || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (n++ == 0)
            snprintf(first, firstlen, "%s", path);
    }
    closedir(d);
    return n;
}

/*  Read the public keys of one role directory into self->keys. */
static void s_load_role(s_auth_t *self, int role)
{
    char dir[PATH_MAX + 16], path[PATH_MAX + 272];
    snprintf(dir, sizeof dir, "%s/%s", self->allow, s_role_dir[role - 1]);
    DIR *d = opendir(dir);
    if (!d)
        return; /* no such role directory: nobody in that role */
    for (struct dirent *de; (de = readdir(d));) {
        if (!s_cert_name(de->d_name))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        zcert_t *cert = zcert_load(path);
        const char *key = cert ? zcert_public_txt(cert) : NULL;
        if (!key || strlen(key) != 40 ||
            strcmp(key, "0000000000000000000000000000000000000000") == 0)
            SKICK_LOG(SKICK_LOG_WARNING, "auth", "%s is not a public certificate: ignored", path);
        else if (zhashx_lookup(self->keys, key))
            SKICK_LOG(SKICK_LOG_WARNING, "auth",
                      "%s: this key is already admitted in another role; it keeps the first "
                      "(remove it from all but one role directory)",
                      path);
        else
            zhashx_insert(self->keys, key, (void *) (intptr_t) role);
        zcert_destroy(&cert);
    }
    closedir(d);
}

/*  (Re)load every role's keys. */
static void s_load(s_auth_t *self)
{
    s_mtimes(self->allow, self->mtime);
    zhashx_purge(self->keys);
    for (int role = BROKER_ROLE_SHARD; role <= BROKER_ROLE_CLIENT; role++)
        s_load_role(self, role);
    char first[PATH_MAX + 272];
    int flat = s_flat_certs(self->allow, first, sizeof first);
    if (flat)
        SKICK_LOG(SKICK_LOG_WARNING, "auth",
                  "%d certificate(s) directly in %s (e.g. %s) admit nobody: move each into "
                  "shards/, bridges/ or clients/",
                  flat, self->allow, first);
    SKICK_LOG(SKICK_LOG_INFO, "auth", "%zu key(s) admitted from %s", zhashx_size(self->keys),
              self->allow);
}

/*  Reload when a directory changed since the last load. */
static void s_refresh(s_auth_t *self)
{
    struct timespec now[1 + S_ROLE_DIRS];
    s_mtimes(self->allow, now);
    if (memcmp(now, self->mtime, sizeof now) != 0)
        s_load(self);
}

/*  The role a handshake with this key gets, or 0 with *why. */
static int s_decide(s_auth_t *self, const char *mechanism, const zframe_t *cred,
                    char key[41], const char **why)
{
    key[0] = '\0';
    if (strcmp(mechanism, "CURVE") != 0 || !cred || zframe_size((zframe_t *) cred) != 32) {
        *why = "CURVE only";
        return 0;
    }
    zmq_z85_encode(key, zframe_data((zframe_t *) cred), 32);
    s_refresh(self);
    int role = (int) (intptr_t) zhashx_lookup(self->keys, key);
    if (!role) {
        *why = "key not admitted in any role directory";
        return 0;
    }
    return role;
}

/*  Answer one ZAP request read from the handler socket. */
static void s_serve(s_auth_t *self, zsock_t *zap)
{
    zmsg_t *rq = zmsg_recv(zap);
    if (!rq)
        return;
    char *version = zmsg_popstr(rq), *request_id = zmsg_popstr(rq), *domain = zmsg_popstr(rq),
         *address = zmsg_popstr(rq), *identity = zmsg_popstr(rq), *mechanism = zmsg_popstr(rq);
    zframe_t *cred = zmsg_pop(rq);
    const char *why = "malformed ZAP request";
    char key[41] = "";
    int role = 0;
    if (version && strcmp(version, "1.0") == 0 && request_id && domain && mechanism)
        role = s_decide(self, mechanism, cred, key, &why);
    if (!role)
        broker_log_limited(&self->rl, SKICK_LOG_NOTICE, "auth",
                           "handshake from %s on %s refused: %s%s%s", address ? address : "?",
                           domain ? domain : "?", why, key[0] ? ", key " : "", key);
    zmsg_t *reply = zmsg_new();
    zmsg_addstr(reply, "1.0");
    zmsg_addstr(reply, request_id ? request_id : "");
    zmsg_addstr(reply, role ? "200" : "400");
    zmsg_addstr(reply, role ? "OK" : why);
    zmsg_addstr(reply, role ? broker_auth_role_name(role) : "");
    zmsg_addmem(reply, NULL, 0); /* no metadata */
    zmsg_send(&reply, zap);
    zframe_destroy(&cred);
    free(version);
    free(request_id);
    free(domain);
    free(address);
    free(identity);
    free(mechanism);
    zmsg_destroy(&rq);
}

/*  The actor: bind the ZAP endpoint, load the keys, signal, serve. */
static void s_actor(zsock_t *pipe, void *args)
{
    s_auth_t self = {.keys = zhashx_new()};
    snprintf(self.allow, sizeof self.allow, "%s", (const char *) args);
    zsock_t *zap = zsock_new(ZMQ_REP);
    if (!zap || zsock_bind(zap, S_ZAP_ENDPOINT) != 0) {
        SKICK_LOG(SKICK_LOG_ERROR, "auth", "cannot bind %s: %s (is another ZAP handler running?)",
                  S_ZAP_ENDPOINT, zmq_strerror(zmq_errno()));
        zsock_destroy(&zap);
        zhashx_destroy(&self.keys);
        zsock_signal(pipe, 1);
        return;
    }
    s_load(&self);
    zsock_signal(pipe, 0);
    zpoller_t *poller = zpoller_new(pipe, zap, NULL);
    for (bool run = true; run;) {
        void *which = zpoller_wait(poller, -1);
        if (which == zap) {
            s_serve(&self, zap);
        } else if (which == pipe) {
            char *cmd = zstr_recv(pipe);
            run = cmd && strcmp(cmd, "$TERM") != 0;
            if (cmd && strcmp(cmd, "RELOAD") == 0)
                s_load(&self);
            free(cmd);
        } else if (zpoller_terminated(poller)) {
            break;
        }
    }
    zpoller_destroy(&poller);
    zsock_destroy(&zap);
    zhashx_destroy(&self.keys);
}

/* ---- the broker thread ------------------------------------------------------ */

int broker_auth_start(broker_t *b)
{
    const char *allow = b->cfg.curve_allow;
    struct stat st;
    if (stat(allow, &st) != 0 || !S_ISDIR(st.st_mode) || strlen(allow) >= PATH_MAX) {
        SKICK_LOG(SKICK_LOG_ERROR, "broker",
                  "--curve-allow %s is not a directory (it holds shards/, bridges/ and "
                  "clients/, each with public certificates)",
                  allow);
        return -1;
    }
    char first[PATH_MAX + 272];
    int flat = s_flat_certs(allow, first, sizeof first);
    if (flat) {
        SKICK_LOG(SKICK_LOG_ERROR, "broker",
                  "%s holds %d certificate(s) directly (e.g. %s): keys are now admitted per "
                  "role; move each shard's certificate into %s/shards/, each skickctl or "
                  "client certificate into %s/clients/ (bridges: %s/bridges/), then start "
                  "again",
                  allow, flat, first, allow, allow, allow);
        return -1;
    }
    b->auth = zactor_new(s_actor, (void *) allow);
    if (!b->auth) {
        SKICK_LOG(SKICK_LOG_ERROR, "broker", "cannot start the ZAP handler");
        return -1;
    }
    return 0;
}

void broker_auth_stop(broker_t *b)
{
    zactor_destroy(&b->auth);
}

void broker_auth_reload(broker_t *b)
{
    if (b->auth)
        zstr_send(b->auth, "RELOAD");
}

int broker_auth_frame_role(zmq_msg_t *frame)
{
    const char *user = zmq_msg_gets(frame, "User-Id");
    for (int role = BROKER_ROLE_SHARD; user && role <= BROKER_ROLE_CLIENT; role++)
        if (strcmp(user, broker_auth_role_name(role)) == 0)
            return role;
    return BROKER_ROLE_NONE;
}

const char *broker_auth_hello(broker_t *b, skick_wire_held_t *m, bool shard, int *role)
{
    *role = b->cert ? broker_auth_frame_role(&m->head) : BROKER_ROLE_NONE;
    if (!b->cert)
        return NULL;
    switch (*role) {
    case BROKER_ROLE_SHARD:
        return shard ? NULL : "a shard key cannot join as a client (use a key in clients/)";
    case BROKER_ROLE_CLIENT:
        return shard ? "a client key cannot join as a shard (use a key in shards/)" : NULL;
    case BROKER_ROLE_BRIDGE:
        return "bridge keys are reserved: this broker has no bridge protocol yet";
    default:
        return "the connection has no admitted role";
    }
}

bool broker_auth_may_control(const broker_peer_t *p, const skick_envelope_t *e, const char **why)
{
    *why = NULL;
    if (p->role != BROKER_ROLE_SHARD)
        return true;
    const char *op = e->to_shard == 0 ? broker_json_str(e->body, "op") : NULL;
    if (op && strcmp(op, "hash") == 0)
        return true;
    *why = e->to_shard ? "a shard key may not send control requests to shards (control plane "
                         "only: use a client key)"
                       : "a shard key may run only the hash operation on the broker (control "
                         "plane only: use a client key)";
    return false;
}
