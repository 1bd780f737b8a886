/*  skick.js - the browser client of Skick (served by front shards at /skick.js)

    const s = new Skick.Session("hello", {url: "ws://127.0.0.1:8000/"});
    s.on("message", m => console.log(m));          // everything the session sends
    s.onQuery(q => 42);                            // answer SocketQuery (value or Promise)
    await s.ready;                                 // resolves after the handshake
    s.send({action: "greet"});

    Errors from the server ({"action":"error",...}) are emitted as "error"
    events, "denied" rejects `ready`. The client reconnects with exponential
    back-off (0.5 s doubling to 30 s) when the connection drops, unless the
    server closed it on purpose (1000, 1008, 1009) or close() was called.
*/
(function (global) {
    "use strict";

    function Emitter() { this._h = {}; }
    Emitter.prototype.on = function (ev, fn) {
        (this._h[ev] = this._h[ev] || []).push(fn);
        return this;
    };
    Emitter.prototype.off = function (ev, fn) {
        this._h[ev] = (this._h[ev] || []).filter(function (f) { return f !== fn; });
        return this;
    };
    Emitter.prototype.emit = function (ev, arg) {
        (this._h[ev] || []).slice().forEach(function (f) {
            try { f(arg); } catch (e) { setTimeout(function () { throw e; }); }
        });
    };

    function defaultUrl() {
        var l = global.location;
        if (!l || !/^https?:$/.test(l.protocol)) return "ws://127.0.0.1:8000/";
        return (l.protocol === "https:" ? "wss://" : "ws://") + l.host + "/";
    }

    var FINAL_CODES = { 1000: true, 1008: true, 1009: true };

    /*  A session of type `type`. options: url, handshake (extra handshake
        fields), reconnect (default true), maxBackoff (ms, default 30000). */
    function Session(type, options) {
        Emitter.call(this);
        options = options || {};
        this.type = type;
        this.url = options.url || defaultUrl();
        this.handshake = Object.assign({}, options.handshake || {}, { session_type: type });
        this.reconnect = options.reconnect !== false;
        this.maxBackoff = options.maxBackoff || 30000;
        this._backoff = 500;
        this._closed = false;
        this._queryHandler = null;
        this._queue = [];
        var self = this;
        this.ready = new Promise(function (res, rej) { self._ready = res; self._fail = rej; });
        this.ready.catch(function () {});
        this._connect();
    }
    Session.prototype = Object.create(Emitter.prototype);

    Session.prototype._connect = function () {
        var self = this;
        var ws = new WebSocket(this.url);
        this.ws = ws;
        this.open = false;
        ws.onopen = function () { ws.send(JSON.stringify(self.handshake)); };
        ws.onmessage = function (ev) { self._receive(ev.data); };
        ws.onclose = function (ev) {
            var wasOpen = self.open;
            self.open = false;
            self.emit("close", { code: ev.code, reason: ev.reason });
            if (self._closed || FINAL_CODES[ev.code] || !self.reconnect) {
                self._fail(new Error("closed: " + ev.code + " " + ev.reason));
                return;
            }
            if (wasOpen) self._backoff = 500;
            var delay = self._backoff;
            self._backoff = Math.min(self._backoff * 2, self.maxBackoff);
            self.emit("reconnecting", { delay: delay });
            setTimeout(function () { if (!self._closed) self._connect(); }, delay);
        };
    };

    Session.prototype._receive = function (data) {
        if (data === "denied") {
            this._closed = true;
            this.emit("denied", this.type);
            this._fail(new Error("session denied: " + this.type));
            return;
        }
        var msg;
        try { msg = JSON.parse(data); } catch (e) {
            this.emit("error", { action: "error", type: "unparsable server frame" });
            return;
        }
        if (!this.open) {
            this.open = true;
            this._ready(this);
            this.emit("open", this);
            var q = this._queue;
            this._queue = [];
            q.forEach(this.send, this);
        }
        if (msg && msg.action === "error") { this.emit("error", msg); return; }
        if (msg && msg.error === "Invalid subschema") { this.emit("error", msg); return; }
        if (msg && msg.action === "SocketQuery") { this._answer(msg); return; }
        this.emit("message", msg);
    };

    Session.prototype._answer = function (q) {
        var self = this;
        this.emit("query", q);
        if (!this._queryHandler) return;
        Promise.resolve()
            .then(function () { return self._queryHandler(q.message, q.schema, q); })
            .then(function (value) { self.reply(q.query_id, value); },
                  function (err) { self.emit("error", { action: "error", type: String(err) }); });
    };

    /*  Send a message (an object with an "action"); queued until the session is open. */
    Session.prototype.send = function (msg) {
        if (!this.open || !this.ws || this.ws.readyState !== 1) { this._queue.push(msg); return; }
        this.ws.send(JSON.stringify(msg));
    };

    /*  Answer a SocketQuery by id. */
    Session.prototype.reply = function (queryId, value) {
        this.send({ action: "query_reply", query_id: queryId, message: value });
    };

    /*  Answer every SocketQuery with fn(message, schema, query): a value or a Promise. */
    Session.prototype.onQuery = function (fn) { this._queryHandler = fn; return this; };

    /*  Resolve with the next message the session sends. */
    Session.prototype.next = function () {
        var self = this;
        return new Promise(function (res) {
            function once(m) { self.off("message", once); res(m); }
            self.on("message", once);
        });
    };

    Session.prototype.close = function () {
        this._closed = true;
        if (this.ws) this.ws.close(1000, "client closed");
    };

    global.Skick = { Session: Session, version: "0.1.0" };
})(typeof window !== "undefined" ? window : this);
