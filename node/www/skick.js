/*  skick.js - the browser client of Skick (served by every front shard at /skick.js)

    One file, no dependencies, ES2017. Load it with <script src="/skick.js"></script>;
    it defines the global `Skick` (and module.exports under CommonJS).

        const s = new Skick.Session("chat", {handshake: {name: "ada"}});
        s.on("message", m => console.log(m));     // whatever the session sends
        s.on("error", e => console.warn(e));      // the server's error objects
        s.onQuery((payload, schema) => true);     // answer SocketQuery: a value or a Promise
        await s.ready;                            // the server took the handshake
        s.send({action: "say", text: "hi"});
        const line = await s.waitFor(m => m.action === "chat_line", 5000);
        s.close();

    new Skick.Session(type, options)
        Opens a websocket and requests a session of `type`. options:
          url         websocket URL; default: the page's own host ("ws[s]://host/")
          handshake   extra handshake fields, e.g. {name: "ada"} (the session type
                      must declare them in its handshake schema, or it is denied)
          reconnect   reconnect when the connection drops (default true)
          minBackoff  first reconnect delay in ms (default 500); doubles per attempt
          maxBackoff  largest reconnect delay in ms (default 30000)
          settle      ms after the handshake without a refusal or a message after
                      which the session counts as accepted (default 250): the
                      protocol has no acknowledgement, so sessions that say nothing
                      first are accepted when no "denied" came in that time
          keep        most unread messages kept for next()/waitFor() (default 100)

    Properties: type, url, ready (a Promise: resolves with the session once the
    first session is accepted, rejects when it is denied or the session closes
    for good before that), connected (the socket is up and the handshake sent),
    closed (closed for good: no more reconnects).

    Methods
        send(msg)        an object is sent as JSON, a string as it is. Messages sent
                         while not connected are queued and go out, in order, right
                         after the next handshake (the server holds up to 64 while
                         the session starts). Throws once closed for good.
        onQuery(fn)      answer every SocketQuery with fn(payload, schema, query):
                         a value or a Promise of one. A throw or rejection leaves
                         the query unanswered and emits "error".
        reply(id, value) answer a SocketQuery by its query_id yourself (from a
                         "query" listener); false if not connected.
        next(ms)         Promise of the next unread message (in order, each message
                         once); rejects after ms (if given) or when closed for good.
        waitFor(pred, ms) Promise of the first unread message for which pred(msg)
                         is true; the unread messages before it are skipped.
        close()          close the connection (1000) and never reconnect.
        on(ev, fn), off(ev, fn)

    Events (listener gets one argument)
        "open"          a session was accepted (again after each reconnect)
        "message"       a message from the session (any JSON but the ones below)
        "query"         a SocketQuery {action, query_id, message, schema}
        "error"         {"action":"error","type":...} from the server, the
                        {"error":"Invalid subschema","query_id":..} answer to a query reply
                        (the query stays open: reply again), or a local problem
                        {"action":"error","type":..., local: true}
        "denied"        the server refused the handshake (the type is the argument)
        "close"         {code, reason, wasClean, reconnect}: reconnect is the delay
                        in ms before the next attempt, or false when closed for good
        "reconnecting"  {delay, attempt}

    Reconnecting: after a drop the client retries with exponential back-off
    (minBackoff doubling to maxBackoff, +-20 % jitter; back to minBackoff once a
    session stayed up 10 s), except when the server closed on purpose (1000:
    session denied or ended; 1008: policy, rate limit, handshake timeout;
    1009: message too big) or close() was called. A reconnect starts a NEW
    session on the server (state is not resumed): set it up again in "open".
*/
(function (global) {
    "use strict";

    const FINAL_CODES = { 1000: true, 1008: true, 1009: true };
    const STABLE_MS = 10000; /* a session up this long resets the back-off */

    function defaultUrl() {
        const l = global.location;
        if (!l || !/^https?:$/.test(l.protocol)) return "ws://127.0.0.1:8000/";
        return (l.protocol === "https:" ? "wss://" : "ws://") + l.host + "/";
    }

    function localError(type) {
        return { action: "error", type: type, local: true };
    }

    class Session {
        constructor(type, options) {
            options = options || {};
            this.type = type;
            this.url = options.url || defaultUrl();
            this.handshake = Object.assign({}, options.handshake || {}, { session_type: type });
            this.reconnect = options.reconnect !== false;
            this.minBackoff = options.minBackoff > 0 ? options.minBackoff : 500;
            this.maxBackoff = options.maxBackoff > 0 ? options.maxBackoff : 30000;
            this.settle = options.settle >= 0 ? options.settle : 250;
            this.keep = options.keep >= 0 ? options.keep : 100;
            this.connected = false;
            this.closed = false;
            this.ws = null;
            this._handlers = {};
            this._backoff = this.minBackoff;
            this._attempt = 0;
            this._accepted = false;   /* this connection's session was accepted */
            this._acceptedAt = 0;
            this._settleTimer = null;
            this._retryTimer = null;
            this._queryHandler = null;
            this._outbox = [];        /* sent while not connected */
            this._inbox = [];         /* unread messages for next()/waitFor() */
            this._waiters = [];       /* {pred, resolve, reject, timer} */
            this.ready = new Promise((res, rej) => { this._resolveReady = res; this._rejectReady = rej; });
            this.ready.catch(() => {}); /* a denial is also an event; no unhandled rejection */
            this._connect();
        }

        on(ev, fn) {
            (this._handlers[ev] = this._handlers[ev] || []).push(fn);
            return this;
        }

        off(ev, fn) {
            this._handlers[ev] = (this._handlers[ev] || []).filter(f => f !== fn);
            return this;
        }

        _emit(ev, arg) {
            (this._handlers[ev] || []).slice().forEach(f => {
                try { f.call(this, arg); } catch (e) { setTimeout(() => { throw e; }); }
            });
        }

        _connect() {
            this._retryTimer = null;
            if (this.closed) return;
            const ws = new WebSocket(this.url);
            this.ws = ws;
            this._accepted = false;
            ws.onopen = () => {
                if (this.ws !== ws) return;
                ws.send(JSON.stringify(this.handshake));
                this.connected = true;
                /* The server holds client messages until the session is ready. */
                const out = this._outbox;
                this._outbox = [];
                out.forEach(m => ws.send(m));
                this._settleTimer = setTimeout(() => this._accept(ws), this.settle);
            };
            ws.onmessage = ev => { if (this.ws === ws) this._receive(ws, ev.data); };
            ws.onclose = ev => { if (this.ws === ws) this._onclose(ev); };
        }

        _accept(ws) {
            clearTimeout(this._settleTimer);
            this._settleTimer = null;
            if (this._accepted || this.ws !== ws || ws.readyState !== 1) return;
            this._accepted = true;
            this._acceptedAt = Date.now();
            this._attempt = 0;
            this._resolveReady(this);
            this._emit("open", this);
        }

        _onclose(ev) {
            clearTimeout(this._settleTimer);
            this._settleTimer = null;
            this.connected = false;
            this.ws = null;
            if (this._accepted && Date.now() - this._acceptedAt >= STABLE_MS)
                this._backoff = this.minBackoff;
            this._accepted = false;
            const final = this.closed || !this.reconnect || FINAL_CODES[ev.code] === true;
            let delay = false;
            if (!final) {
                delay = Math.round(this._backoff * (0.8 + 0.4 * Math.random()));
                this._backoff = Math.min(this._backoff * 2, this.maxBackoff);
            }
            this._emit("close", { code: ev.code, reason: ev.reason, wasClean: ev.wasClean,
                                  reconnect: delay });
            if (final) {
                this._finish(ev.code, ev.reason);
                return;
            }
            this._attempt++;
            this._emit("reconnecting", { delay: delay, attempt: this._attempt });
            this._retryTimer = setTimeout(() => this._connect(), delay);
        }

        /* Closed for good: settle every promise. */
        _finish(code, reason) {
            this.closed = true;
            const err = new Error("skick session " + this.type + " closed: " + code +
                                  (reason ? " " + reason : ""));
            err.code = code;
            err.reason = reason;
            this._rejectReady(err);
            const w = this._waiters;
            this._waiters = [];
            w.forEach(x => { clearTimeout(x.timer); x.reject(err); });
        }

        _receive(ws, data) {
            if (data === "denied") {
                clearTimeout(this._settleTimer);
                this.closed = true; /* the close (1000) that follows is final */
                const err = new Error("session denied: " + this.type);
                err.code = 1000;
                err.reason = "session denied";
                this._rejectReady(err);
                this._emit("denied", this.type);
                return;
            }
            let msg;
            try {
                msg = JSON.parse(data);
            } catch (e) {
                this._emit("error", localError("unparsable server frame"));
                return;
            }
            this._accept(ws);
            if (msg && typeof msg === "object" && !Array.isArray(msg)) {
                if (msg.action === "error" || msg.error === "Invalid subschema") {
                    this._emit("error", msg);
                    return;
                }
                if (msg.action === "SocketQuery" && typeof msg.query_id === "string") {
                    this._query(ws, msg);
                    return;
                }
            }
            this._deliver(msg);
            this._emit("message", msg);
        }

        _deliver(msg) {
            for (let i = 0; i < this._waiters.length; i++) {
                const w = this._waiters[i];
                let hit = false;
                try { hit = w.pred(msg); } catch (e) { hit = false; }
                if (hit) {
                    this._waiters.splice(i, 1);
                    clearTimeout(w.timer);
                    w.resolve(msg);
                    return;
                }
            }
            this._inbox.push(msg);
            if (this._inbox.length > this.keep) this._inbox.splice(0, this._inbox.length - this.keep);
        }

        _query(ws, q) {
            this._emit("query", q);
            const fn = this._queryHandler;
            if (!fn) return;
            Promise.resolve()
                .then(() => fn(q.message, q.schema, q))
                .then(value => {
                    /* A query dies with the connection that asked it. */
                    if (this.ws === ws && ws.readyState === 1)
                        ws.send(JSON.stringify({ action: "query_reply", query_id: q.query_id,
                                                 message: value === undefined ? null : value }));
                }, err => {
                    this._emit("error", localError("query handler failed: " +
                                                   (err && err.message ? err.message : String(err))));
                });
        }

        send(msg) {
            const text = typeof msg === "string" ? msg : JSON.stringify(msg);
            if (this.closed) throw new Error("skick session " + this.type + " is closed");
            if (this.connected && this.ws && this.ws.readyState === 1) this.ws.send(text);
            else this._outbox.push(text);
        }

        reply(queryId, value) {
            if (!this.connected || !this.ws || this.ws.readyState !== 1) return false;
            this.ws.send(JSON.stringify({ action: "query_reply", query_id: queryId,
                                          message: value === undefined ? null : value }));
            return true;
        }

        onQuery(fn) {
            this._queryHandler = fn;
            return this;
        }

        next(ms) {
            return this.waitFor(() => true, ms);
        }

        waitFor(pred, ms) {
            while (this._inbox.length) {
                const m = this._inbox.shift();
                let hit = false;
                try { hit = pred(m); } catch (e) { hit = false; }
                if (hit) return Promise.resolve(m);
            }
            if (this.closed)
                return Promise.reject(new Error("skick session " + this.type + " is closed"));
            return new Promise((resolve, reject) => {
                const w = { pred: pred, resolve: resolve, reject: reject, timer: null };
                if (ms > 0)
                    w.timer = setTimeout(() => {
                        this._waiters = this._waiters.filter(x => x !== w);
                        reject(new Error("skick session " + this.type + ": no such message in " +
                                         ms + " ms"));
                    }, ms);
                this._waiters.push(w);
            });
        }

        close() {
            if (this.closed && !this.ws) return;
            this.closed = true;
            clearTimeout(this._retryTimer);
            this._retryTimer = null;
            this._outbox = [];
            if (this.ws) {
                this.ws.close(1000, "client closed");
            } else {
                this._emit("close", { code: 1000, reason: "client closed", wasClean: true,
                                      reconnect: false });
                this._finish(1000, "client closed");
            }
        }
    }

    const Skick = { Session: Session, version: "0.2.0" };
    global.Skick = Skick;
    if (typeof module === "object" && module && module.exports) module.exports = Skick;
})(typeof window !== "undefined" ? window : typeof self !== "undefined" ? self : this);
