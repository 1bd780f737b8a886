/*  demo.js - the Skick demo page (examples/www/index.html, `make demo`)

    One panel per session type of examples/hello.c, each driving a
    Skick.Session from /skick.js, and a live view of the cluster polling
    the front shard's /skick/cluster.json every second. Everything the
    server says is shown with textContent (never as HTML): chat text comes
    from other people.
*/
(function () {
    "use strict";

    const $ = id => document.getElementById(id);

    function add(list, text, cls) {
        const li = document.createElement("li");
        if (cls) li.className = cls;
        li.textContent = text;
        list.appendChild(li);
        while (list.children.length > 500) list.removeChild(list.firstChild);
        list.scrollTop = list.scrollHeight;
        return li;
    }

    /*  A panel: opens a session of `type` on demand and keeps its status, its
        buttons and its log up to date. hooks.message(m) may show a message
        itself (return true); hooks.open/closed run on (re)open and for good. */
    function panel(key, type, hooks) {
        hooks = hooks || {};
        const log = $(key + "-log") || $(key + "-lines");
        const status = $(key + "-status");
        const p = { session: null, log: log };

        function setStatus(text, cls) {
            status.textContent = text;
            status.className = "status" + (cls ? " " + cls : "");
        }

        function enable(open) {
            document.querySelectorAll("[data-needs='" + key + "']").forEach(el => {
                el.disabled = !open;
            });
            $(key + "-close").disabled = !p.session;
            const opener = $(key + "-open") || $(key + "-join");
            opener.disabled = !!p.session;
        }

        p.open = function (handshake) {
            if (p.session) return p.session;
            const s = new Skick.Session(type, { handshake: handshake });
            p.session = s;
            setStatus("connecting…");
            enable(false);
            s.on("open", () => {
                if (p.session !== s) return;
                setStatus("open", "open");
                add(log, "session " + type + " open", "event");
                enable(true);
                if (hooks.open) hooks.open(s);
            });
            s.on("message", m => {
                if (p.session !== s) return;
                if (!(hooks.message && hooks.message(m))) add(log, JSON.stringify(m));
            });
            s.on("error", e => {
                if (p.session === s) add(log, "error: " + (e.type || e.error || JSON.stringify(e)), "error");
            });
            s.on("query", q => { if (p.session === s && hooks.query) hooks.query(s, q); });
            s.on("denied", () => {
                if (p.session === s) add(log, "the server denied the session", "error");
            });
            s.on("close", c => {
                if (p.session !== s) return;
                const why = c.code + (c.reason ? " " + c.reason : "");
                if (hooks.closed) hooks.closed(s);
                if (c.reconnect !== false) {
                    add(log, "connection lost (" + why + "), reconnecting in " +
                        (c.reconnect / 1000).toFixed(1) + " s", "event");
                    setStatus("reconnecting…", "bad");
                    enable(false);
                    $(key + "-close").disabled = false;
                    return;
                }
                add(log, "closed (" + why + ")", "event");
                setStatus(c.reason === "session denied" ? "denied" : "closed",
                          c.code === 1000 && c.reason !== "session denied" ? "" : "bad");
                p.session = null;
                enable(false);
            });
            return s;
        };

        p.close = function () {
            if (p.session) p.session.close();
        };

        p.send = function (msg) {
            if (p.session && !p.session.closed) p.session.send(msg);
        };

        const closeBtn = $(key + "-close");
        closeBtn.addEventListener("click", p.close);
        return p;
    }

    function needs(key, ids) {
        ids.forEach(id => $(id).setAttribute("data-needs", key));
    }

    /* ---- hello ------------------------------------------------------------ */
    needs("hello", ["hello-greet"]);
    const hello = panel("hello", "hello");
    $("hello-open").addEventListener("click", () => hello.open());
    $("hello-greet").addEventListener("click", () => hello.send({ action: "greet" }));

    /* ---- curious: answer its SocketQuery with Yes / No --------------------- */
    needs("curious", ["curious-ask"]);
    const queries = $("curious-queries");

    function showQuery(s, q) {
        const box = document.createElement("div");
        box.className = "query";
        box.setAttribute("data-query-id", q.query_id);
        const text = document.createElement("span");
        text.className = "question";
        const m = q.message;
        text.textContent = m && typeof m === "object" && typeof m.gdpr_query === "string"
            ? m.gdpr_query : "The session asks: " + JSON.stringify(m);
        box.appendChild(text);
        [["Yes", "yes", true], ["No", "no", false]].forEach(([label, cls, value]) => {
            const b = document.createElement("button");
            b.type = "button";
            b.className = cls;
            b.textContent = label;
            b.addEventListener("click", () => {
                if (s.reply(q.query_id, value)) add(curious.log, "you answered " + label, "event");
                else add(curious.log, "not connected: the question is gone", "error");
                box.remove();
            });
            box.appendChild(b);
        });
        queries.appendChild(box);
    }

    const curious = panel("curious", "curious", {
        query: showQuery,
        closed: () => { queries.textContent = ""; },
        message: m => {
            if (m && m.error) add(curious.log, JSON.stringify(m), "error");
            else return false;
            return true;
        }
    });
    $("curious-open").addEventListener("click", () => curious.open());
    $("curious-ask").addEventListener("click", () => curious.send({ action: "get_information" }));

    /* ---- logarithm ---------------------------------------------------------- */
    needs("logarithm", ["logarithm-send"]);
    let base = null;
    const logarithm = panel("logarithm", "logarithm", {
        open: () => { base = null; $("logarithm-base").textContent = "?"; },
        message: m => {
            if (m && typeof m.base === "number") {
                base = m.base;
                $("logarithm-base").textContent = String(base);
                add(logarithm.log, "base " + base, "event");
                return true;
            }
            if (m && typeof m["log_base(x)"] === "number") {
                add(logarithm.log, "log" + (base === null ? "" : "_" + base) + "(" + m.x + ") = " +
                    m["log_base(x)"]);
                return true;
            }
            return false;
        }
    });
    $("logarithm-open").addEventListener("click", () => logarithm.open());
    $("logarithm-form").addEventListener("submit", ev => {
        ev.preventDefault();
        const x = Number($("logarithm-x").value);
        if ($("logarithm-x").value === "" || !isFinite(x)) {
            add(logarithm.log, "x must be a number", "error");
            return;
        }
        logarithm.send({ action: "log", x: x });
    });

    /* ---- chat ------------------------------------------------------------------ */
    needs("chat", ["chat-text", "chat-send"]);
    const chat = panel("chat", "chat", {
        message: m => {
            if (!m || m.action !== "chat_line") return false;
            const li = document.createElement("li");
            if (m.from === "room") {
                li.className = "event";
                li.textContent = m.text + " " + (m.event || "");
            } else {
                const from = document.createElement("span");
                from.className = "from";
                from.textContent = m.from;
                li.appendChild(from);
                li.appendChild(document.createTextNode(": " + m.text));
            }
            chat.log.appendChild(li);
            chat.log.scrollTop = chat.log.scrollHeight;
            return true;
        }
    });
    $("chat-join-form").addEventListener("submit", ev => {
        ev.preventDefault();
        const name = $("chat-name").value.trim();
        if (!name) return;
        chat.open({ name: name });
    });
    $("chat-form").addEventListener("submit", ev => {
        ev.preventDefault();
        const text = $("chat-text").value;
        if (!text) return;
        chat.send({ action: "say", text: text });
        $("chat-text").value = "";
        $("chat-text").focus();
    });
    $("chat-name").value = "guest" + Math.floor(100 + Math.random() * 900);

    window.skickDemo = { hello: hello, curious: curious, logarithm: logarithm, chat: chat };

    /*  The live view: GET /skick/cluster.json every second (one request at a
        time; a failed one is shown and retried). 404: the shard runs
        without --cluster-view. */
    (function live() {
        const status = $("cluster-status");
        const shards = $("cluster-shards");
        const show = (id, v) => { $(id).textContent = v === undefined || v === null ? "?" : String(v); };
        function setStatus(text, cls) {
            status.textContent = text;
            status.className = "status" + (cls ? " " + cls : "");
        }
        async function poll() {
            try {
                const r = await fetch("/skick/cluster.json", { cache: "no-store" });
                if (r.status === 404) {
                    setStatus("off (skick-node --cluster-view)", "bad");
                    return; /* not served: stop asking */
                }
                if (!r.ok) throw new Error("HTTP " + r.status);
                const v = await r.json();
                setStatus("live", "open");
                show("cluster-sessions", v.client_sessions);
                show("cluster-websockets", v.websockets);
                show("cluster-in", v.messages_in_per_s);
                show("cluster-out", v.messages_out_per_s);
                show("cluster-handled", v.delivered_per_s);
                show("cluster-actors", v.actors);
                shards.replaceChildren();
                for (const e of v.shards || []) {
                    add(shards, e.shard + "  " + (e.roles || []).join(",") +
                        (e.self ? "  (this shard)" : ""));
                }
                if (!v.directory) add(shards, "(the other shards are not listed by this build)", "event");
            } catch (err) {
                setStatus("no answer: " + err.message, "bad");
            }
            setTimeout(poll, 1000);
        }
        poll();
    })();
})();
