/*  broker_net - the broker's three sockets: bind, secure, send

    Creates the shard ROUTER (--bind), the directory's XPUB (derived from
    --bind) and the control ROUTER (--control). With CURVE configured every
    one is a CURVE server with its own ZAP domain, and the broker's ZAP
    handler (broker_auth.c) admits only the public certificates in the role
    directories of --curve-allow. The secret certificate is refused when
    others may read it. An ipc:// control endpoint is made owner-only: its
    directory is created 0700 (an existing one must belong to us or root),
    the socket is bound under umask 077 and chmod'ed 0600.

    Sends never block: ROUTERs have ZMQ_ROUTER_MANDATORY on, so a send to a
    connection that is gone fails with EHOSTUNREACH and one to a full queue
    with EAGAIN; the caller turns those into dead letters. A socket monitor
    on the shard ROUTER reports its disconnections; broker_net_disconnected
    returns their descriptors, and broker_route.c tells the peer table. Runs
    on the broker thread; the broker owns the sockets, the monitor, the ZAP
    handler and the certificate.
*/
#include "broker_net.h"
#include "broker_auth.h"
#include "skick_secure.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static zsock_t *s_socket(broker_t *b, int type, const char *what)
{
    zsock_t *s = zsock_new(type);
    if (!s) {
        SKICK_LOG(SKICK_LOG_ERROR, "broker", "cannot create the %s socket: %s", what,
                  zmq_strerror(zmq_errno()));
        return NULL;
    }
    zsock_set_linger(s, BROKER_LINGER_MS);
    zsock_set_sndhwm(s, BROKER_HWM);
    zsock_set_rcvhwm(s, BROKER_HWM);
    if (b->cert) {
        char domain[64]; /* names the socket for the ZAP handler (broker_auth.c) */
        snprintf(domain, sizeof domain, "%s%s", BROKER_ZAP_DOMAIN, what);
        zsock_set_zap_domain(s, domain);
        zcert_apply(b->cert, zsock_resolve(s));
        zsock_set_curve_server(s, 1);
    }
    return s;
}

static int s_bind(zsock_t *s, const char *ep, const char *what)
{
    if (zmq_bind(zsock_resolve(s), ep) != 0) {
        SKICK_LOG(SKICK_LOG_ERROR, "broker", "cannot bind the %s endpoint %s: %s", what, ep,
                  zmq_strerror(zmq_errno()));
        return -1;
    }
    return 0;
}

static int s_curve_setup(broker_t *b)
{
    const broker_config_t *c = &b->cfg;
    char err[PATH_MAX + 200];
    if (skick_secret_file_check(c->curve_secret, err, sizeof err) != 0) {
        SKICK_LOG(SKICK_LOG_ERROR, "broker", "--curve-secret: %s", err);
        return -1;
    }
    b->cert = zcert_load(c->curve_secret);
    if (!b->cert) {
        SKICK_LOG(SKICK_LOG_ERROR, "broker",
                  "cannot load the CURVE certificate %s (a CZMQ .cert_secret file, made by "
                  "`skickctl keygen`)",
                  c->curve_secret);
        return -1;
    }
    const byte *secret = zcert_secret_key(b->cert);
    bool zero = true;
    for (int i = 0; i < 32; i++)
        zero = zero && secret[i] == 0;
    if (zero) {
        SKICK_LOG(SKICK_LOG_ERROR, "broker",
                  "%s holds no secret key: pass the .cert_secret file, not the public .cert",
                  c->curve_secret);
        return -1;
    }
    return broker_auth_start(b);
}

/*  mkdir -p with mode 0700 for every directory created. */
static int s_mkdirs(const char *dir)
{
    char path[BROKER_EP_MAX];
    if (snprintf(path, sizeof path, "%s", dir) >= (int) sizeof path)
        return -1;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(path, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/*  Make the directory of the ipc control socket owner-only. */
static int s_control_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    char *dir = dirname(copy);
    char own[64]; /* the default directory, which we make owner-only if it is not */
    snprintf(own, sizeof own, "/tmp/skick-%u", (unsigned) getuid());
    int rc = 0;
    struct stat st;
    if (lstat(dir, &st) != 0) {
        if (errno != ENOENT || s_mkdirs(dir) != 0) {
            SKICK_LOG(SKICK_LOG_ERROR, "broker", "cannot create the control directory %s: %s", dir,
                      strerror(errno));
            rc = -1;
        }
    } else if (!S_ISDIR(st.st_mode)) {
        SKICK_LOG(SKICK_LOG_ERROR, "broker", "control directory %s is not a directory", dir);
        rc = -1;
    } else if (st.st_uid != getuid() && st.st_uid != 0) {
        SKICK_LOG(SKICK_LOG_ERROR, "broker",
                  "control directory %s belongs to another user: remove it or choose "
                  "another --control path",
                  dir);
        rc = -1;
    } else if (st.st_uid == getuid() && strcmp(dir, own) == 0 && (st.st_mode & 077) &&
               chmod(dir, 0700) != 0) {
        SKICK_LOG(SKICK_LOG_ERROR, "broker", "cannot make %s owner-only: %s", dir, strerror(errno));
        rc = -1;
    }
    free(copy);
    return rc;
}

/*  True when something accepts connections on the unix socket at path
    (libzmq would silently unlink it and take the path over). */
static bool s_path_in_use(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return false;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool used = connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0;
    close(fd);
    return used;
}

static int s_control_bind(broker_t *b)
{
    const char *ep = b->cfg.control;
    if (strncmp(ep, "ipc://", 6) != 0)
        return s_bind(b->router[BROKER_SOCK_CONTROL], ep, "control");
    const char *path = ep + 6;
    if (s_control_dir(path) != 0)
        return -1;
    if (s_path_in_use(path)) {
        SKICK_LOG(SKICK_LOG_ERROR, "broker",
                  "cannot bind the control endpoint %s: another process is serving it", ep);
        return -1;
    }
    mode_t old = umask(077);
    int rc = s_bind(b->router[BROKER_SOCK_CONTROL], ep, "control");
    umask(old);
    if (rc != 0)
        return -1;
    if (chmod(path, 0600) != 0) {
        SKICK_LOG(SKICK_LOG_ERROR, "broker", "cannot chmod the control socket %s: %s", path,
                  strerror(errno));
        return -1;
    }
    struct stat st;
    if (stat(path, &st) == 0) {
        b->control_dev = st.st_dev;
        b->control_ino = st.st_ino;
        b->control_path = strdup(path);
    }
    return 0;
}

/*  Watch the shard ROUTER's disconnections: a socket monitor into
    b->shard_events (read by broker_net_disconnected), so that a connection
    that later gets the same descriptor is not taken for the one that is
    gone. Returns 0, or -1 after logging why. */
static int s_watch(broker_t *b)
{
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://skick-broker-shard-events-%p", (void *) b);
    b->shard_events = zsock_new(ZMQ_PAIR);
    if (!b->shard_events ||
        zmq_socket_monitor(zsock_resolve(b->router[BROKER_SOCK_SHARD]), ep,
                           ZMQ_EVENT_DISCONNECTED) != 0 ||
        zsock_connect(b->shard_events, "%s", ep) != 0) {
        SKICK_LOG(SKICK_LOG_ERROR, "broker", "cannot monitor the shard socket: %s",
                  zmq_strerror(zmq_errno()));
        return -1;
    }
    return 0;
}

/*  Stop watching (before the ROUTER is closed). */
static void s_unwatch(broker_t *b)
{
    if (!b->shard_events)
        return;
    zmq_socket_monitor(zsock_resolve(b->router[BROKER_SOCK_SHARD]), NULL, 0);
    zsock_destroy(&b->shard_events);
}

int broker_net_open(broker_t *b)
{
    if (b->cfg.curve_secret && s_curve_setup(b) != 0)
        return -1;
    for (int i = 0; i < BROKER_ROUTERS; i++) {
        b->router[i] = s_socket(b, ZMQ_ROUTER, i == BROKER_SOCK_SHARD ? "shard" : "control");
        if (!b->router[i])
            return -1;
        zsock_set_router_mandatory(b->router[i], 1);
        /* On the control socket a client that reconnects with the same
           routing id takes its place. Not on the shard socket: a shard's
           routing id is its id, which the directory shows to anyone, and a
           handover cuts the shard's own connection off without closing it
           (libzmq 4.3) for whoever connects with that id. A connection that
           claims a routing id in use waits until that one is gone, and is
           then not taken for the shard it names (broker_route.c). */
        zsock_set_router_handover(b->router[i], i == BROKER_SOCK_CONTROL);
    }
    /* no directory-in socket: shards send their entries over their own
       link, where the broker knows who sent them (broker_dir.c) */
    b->xpub = s_socket(b, ZMQ_XPUB, "directory-out");
    if (!b->xpub)
        return -1;
    zsock_set_xpub_verbose(b->xpub, 1); /* see every subscription, repeats too */
    if (s_watch(b) != 0 || s_bind(b->router[BROKER_SOCK_SHARD], b->cfg.bind, "shard") != 0 ||
        s_bind(b->xpub, b->cfg.dir_out, "directory-out") != 0 || s_control_bind(b) != 0)
        return -1;
    return 0;
}

void broker_net_close(broker_t *b)
{
    s_unwatch(b);
    for (int i = 0; i < BROKER_ROUTERS; i++)
        zsock_destroy(&b->router[i]);
    zsock_destroy(&b->xpub);
    broker_auth_stop(b);
    zcert_destroy(&b->cert);
    if (b->control_path) {
        /* libzmq removes the file when its listener closes, in its I/O
           thread; make sure, but only if the path is still our socket */
        struct stat st;
        if (stat(b->control_path, &st) == 0 && st.st_dev == b->control_dev &&
            st.st_ino == b->control_ino)
            unlink(b->control_path);
        free(b->control_path);
        b->control_path = NULL;
    }
}

int broker_net_send(broker_t *b, int sock, const uint8_t *rid, size_t rid_len,
                    const skick_envelope_t *e)
{
    b->sent_on[sock] = true;
    return skick_wire_send(zsock_resolve(b->router[sock]), rid, rid_len, e, ZMQ_DONTWAIT);
}

int broker_net_forward(broker_t *b, int sock, const uint8_t *rid, size_t rid_len,
                       skick_wire_held_t *m, uint64_t seq)
{
    b->sent_on[sock] = true;
    return skick_wire_forward(zsock_resolve(b->router[sock]), rid, rid_len, m, seq,
                              ZMQ_DONTWAIT);
}

void broker_net_publish(broker_t *b, const skick_envelope_t *e)
{
    /* an XPUB drops for a subscriber at its high-water mark; each entry is a
       full state and is republished, so that loss heals itself */
    b->sent_on[BROKER_SOCK_XPUB] = true;
    if (skick_wire_send(zsock_resolve(b->xpub), NULL, 0, e, ZMQ_DONTWAIT) != 0)
        SKICK_LOG(SKICK_LOG_DEBUG, "directory", "publish failed: %s", zmq_strerror(zmq_errno()));
}

int broker_net_disconnected(broker_t *b, int *fds, int max)
{
    /* Each event is two frames: 16-bit event and 32-bit value (the
       descriptor), then the endpoint. */
    void *raw = b->shard_events ? zsock_resolve(b->shard_events) : NULL;
    int gone = 0;
    for (int n = 0; raw && n < max; n++) {
        zmq_msg_t ev, ep;
        zmq_msg_init(&ev);
        zmq_msg_init(&ep);
        if (zmq_msg_recv(&ev, raw, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            zmq_msg_close(&ep);
            break;
        }
        bool whole = zmq_msg_more(&ev) && zmq_msg_recv(&ep, raw, 0) >= 0;
        if (whole && zmq_msg_size(&ev) == 6) {
            const uint8_t *d = zmq_msg_data(&ev);
            uint16_t event;
            uint32_t value;
            memcpy(&event, d, sizeof event); /* host order, as libzmq writes them */
            memcpy(&value, d + 2, sizeof value);
            if (event == ZMQ_EVENT_DISCONNECTED)
                fds[gone++] = (int) value;
        }
        zmq_msg_close(&ev);
        zmq_msg_close(&ep);
    }
    return gone;
}
