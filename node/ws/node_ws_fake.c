/*  node_ws_fake - the test kit's websocket server: no civetweb, no threads

    Connections are records of what the server sent (frames, and a close code
    and reason once it closed). Client input goes through the same parser and
    the same receptionist entry points as a real front shard, on the caller's
    thread (the test kit's loop). The size and rate limits, which civetweb's
    threads enforce, are not applied. The send queue is: a paused client
    does not read, so what is sent to it waits, bounded and with the same
    policy as on a real server (node_ws_write.c), until it reads again.
*/
#include "node_ws_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static node_ws_fake_conn_t *s_fake(node_ws_t *ws, uint64_t id)
{
    return node_u64map_get(&ws->conns, id);
}

int node_ws_fake_record(node_ws_t *ws, uint64_t id, const char *text, size_t len,
                        bool *went_high)
{
    node_ws_fake_conn_t *f = s_fake(ws, id);
    if (!f || f->closed) {
        skick_set_errno(SKICK_EDEAD);
        return -1;
    }
    unsigned char hdr[NODE_WS_HEADER_MAX];
    size_t bytes = node_ws_frame_header(hdr, 1, len) + len;
    int rc = bytes > f->limits.bytes ? SKICK_ETOOBIG : 0;
    if (!rc && f->paused &&
        (f->queued + bytes > f->limits.bytes || f->nqueued + 1 > f->limits.frames))
        rc = SKICK_EBACKLOG;
    if (rc) {
        f->refused++;
        if (rc == SKICK_EBACKLOG && f->limits.policy != SKICK_SEND_REFUSE)
            node_ws_fake_record_close(ws, id, 1008, "send queue full"); /* behind the queue */
        skick_set_errno(rc);
        return -1;
    }
    node_ws_frame_t *fr = node_malloc(sizeof *fr + len + 1);
    fr->next = NULL;
    fr->bytes = bytes;
    memcpy(fr->text, text, len);
    fr->text[len] = '\0';
    if (f->tail)
        f->tail->next = fr;
    else
        f->head = fr;
    f->tail = fr;
    if (f->paused) {
        if (!f->unread)
            f->unread = fr;
        f->queued += bytes;
        f->nqueued++;
        if (!f->high && f->queued >= f->limits.bytes / 2) {
            f->high = true;
            if (went_high)
                *went_high = true;
        }
    }
    return 0;
}

void node_ws_fake_status(node_ws_t *ws, uint64_t id, skick_socket_status_t *st)
{
    node_ws_fake_conn_t *f = s_fake(ws, id);
    if (f) {
        st->queued = f->queued;
        st->limit = f->limits.bytes;
        st->refused = f->refused;
    }
}

void node_ws_fake_set_queue(node_ws_t *ws, uint64_t id, const node_outbox_limits_t *l)
{
    node_ws_fake_conn_t *f = s_fake(ws, id);
    if (f)
        f->limits = *l;
}

void node_ws_fake_pause(node_ws_t *ws, uint64_t id, bool paused)
{
    node_ws_fake_conn_t *f = s_fake(ws, id);
    if (!f || f->paused == paused)
        return;
    f->paused = paused;
    if (paused)
        return;
    f->unread = NULL; /* the client reads what waited */
    f->queued = f->nqueued = 0;
    uint64_t actor = (uint64_t) (uintptr_t) node_u64map_get(&ws->binds, id);
    if (f->high && actor) {
        f->high = false;
        node_receptionist_pressure(ws->sh, actor);
    }
    f->high = false;
}

void node_ws_fake_record_close(node_ws_t *ws, uint64_t id, int code, const char *reason)
{
    node_ws_fake_conn_t *f = s_fake(ws, id);
    if (f && !f->closed) {
        f->closed = true;
        f->code = code;
        snprintf(f->reason, sizeof f->reason, "%s", reason);
    }
}

node_ws_t *node_ws_fake(node_shard_t *sh)
{
    node_ws_t *ws = node_calloc(1, sizeof *ws);
    ws->fake = true;
    ws->sh = sh;
    ws->efd = -1;
    node_ws_defaults(&ws->cfg);
    node_u64map_init(&ws->conns);
    node_u64map_init(&ws->binds);
    sh->ws = ws;
    return ws;
}

uint64_t node_ws_fake_open(node_ws_t *ws)
{
    uint64_t id = ++ws->next_id;
    node_ws_fake_conn_t *f = node_calloc(1, sizeof *f);
    f->limits = node_ws_default_limits(&ws->cfg);
    node_u64map_put(&ws->conns, id, f);
    uint64_t actor = node_receptionist_open(ws->sh, id, "testkit");
    if (actor)
        node_u64map_put(&ws->binds, id, (void *) (uintptr_t) actor);
    return id;
}

int node_ws_fake_input(node_ws_t *ws, uint64_t id, const char *text, size_t len)
{
    uint64_t actor = (uint64_t) (uintptr_t) node_u64map_get(&ws->binds, id);
    node_ws_fake_conn_t *f = s_fake(ws, id);
    if (!actor || !f || f->closed)
        return -1;
    node_ws_event_t ev = {.kind = EV_MESSAGE, .id = id};
    node_ws_parse(&ev, text, len);
    node_receptionist_input(ws->sh, actor, &ev.msg, ev.json_error);
    json_object_put(ev.msg);
    return 0;
}

char *node_ws_fake_output(node_ws_t *ws, uint64_t id)
{
    node_ws_fake_conn_t *f = s_fake(ws, id);
    node_ws_frame_t *fr = f ? f->head : NULL;
    if (!fr || fr == f->unread) /* nothing, or the client is not reading */
        return NULL;
    f->head = fr->next;
    if (!f->head)
        f->tail = NULL;
    char *text = node_strdup(fr->text);
    free(fr);
    return text;
}

bool node_ws_fake_closed(node_ws_t *ws, uint64_t id, int *code, const char **reason)
{
    node_ws_fake_conn_t *f = s_fake(ws, id);
    if (!f || !f->closed)
        return false;
    if (code)
        *code = f->code;
    if (reason)
        *reason = f->reason;
    return true;
}

void node_ws_fake_drop(node_ws_t *ws, uint64_t id)
{
    uint64_t actor = (uint64_t) (uintptr_t) node_u64map_get(&ws->binds, id);
    node_ws_fake_conn_t *f = s_fake(ws, id);
    if (f)
        f->closed = true;
    if (actor) {
        node_u64map_del(&ws->binds, id);
        node_receptionist_closed(ws->sh, actor);
    }
}

void node_ws_fake_free(node_ws_t *ws)
{
    for (size_t i = 0; i < ws->conns.cap; i++) {
        node_ws_fake_conn_t *f = ws->conns.keys[i] ? ws->conns.vals[i] : NULL;
        while (f && f->head) {
            node_ws_frame_t *fr = f->head;
            f->head = fr->next;
            free(fr);
        }
        free(f);
    }
    node_u64map_free(&ws->conns);
    node_u64map_free(&ws->binds);
    ws->sh->ws = NULL;
    node_ws_rcpt_type_free(ws);
    free(ws);
}

