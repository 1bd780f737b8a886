#!/usr/bin/env node
/*  test_browser.js - the browser client (/skick.js) and the demo page
    (examples/www) in headless Chromium against a real skick-node

    Usage: node tests/integration/test_browser.js BUILD_DIR
    Needs playwright-core (tests/integration/browser_env.sh installs it under
    BUILD_DIR/browser and prints the NODE_PATH; it is looked for there too) and
    /usr/bin/chromium. Starts BUILD_DIR/node/skick-node with
    BUILD_DIR/examples/hello.so on a free port serving examples/www, then:
      - /skick.js is the library's copy of node/www/skick.js, / the demo page;
      - demo page: hello (greeting, greet), curious (the SocketQuery answered
        with the page's Yes and No buttons), logarithm (log x);
      - skick.js in the page: a session with next(), a session that says
        nothing first, a query answered with a Promise, Invalid subschema and
        reply(), error events for bad messages, denied for an unknown session
        type and a handshake failing its schema, extra handshake fields;
      - a chat between two pages;
      - reconnect: skick-node is stopped (SIGTERM, then SIGKILL) and started
        again on the same port; sessions come back by themselves with back-off,
        close() stops that.
    Every wait is bounded; the server is killed on exit. Prints one line per
    check and "N passed, M failed" last; exits 1 on any failure.

    Environment: SKICK_JS=FILE serves FILE as /skick.js to the pages instead of
    the library's copy (to try a changed client without rebuilding);
    SKICK_TEST_WWW=DIR serves DIR instead of examples/www.
*/
"use strict";

const fs = require("fs");
const http = require("http");
const net = require("net");
const path = require("path");
const { spawn } = require("child_process");

const ROOT = path.resolve(__dirname, "..", "..");
const BUILD = path.resolve(process.argv[2] || path.join(ROOT, "build"));
const NODE_BIN = path.join(BUILD, "node", "skick-node");
const HELLO_SO = path.join(BUILD, "examples", "hello.so");
const WWW = path.resolve(process.env.SKICK_TEST_WWW || path.join(ROOT, "examples", "www"));
const SKICK_JS = process.env.SKICK_JS ? path.resolve(process.env.SKICK_JS) : null;
const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"];
const WATCHDOG_MS = 420000; /* the whole run; ctest allows 600 s */

let passed = 0, failed = 0;
let server = null, browser = null;
const pageLogs = new Map(); /* page -> console lines */

function log(s) { process.stdout.write(s + "\n"); }

function finish(code) {
    if (server) server.kill();
    log(`${passed} passed, ${failed} failed`);
    process.exit(code === undefined ? (failed ? 1 : 0) : code);
}

process.on("exit", () => { if (server) server.kill(); });
for (const sig of ["SIGINT", "SIGTERM"])
    process.on(sig, () => { log(`interrupted (${sig})`); failed++; finish(1); });
process.on("unhandledRejection", e => { log(`unhandled rejection: ${e && e.stack || e}`); });

function loadPlaywright() {
    const tries = ["playwright-core", path.join(BUILD, "browser", "node_modules", "playwright-core")];
    for (const t of tries) {
        try { return require(t); } catch (e) { if (e.code !== "MODULE_NOT_FOUND") throw e; }
    }
    log("playwright-core not found: run tests/integration/browser_env.sh " + BUILD +
        " and set NODE_PATH to what it prints");
    failed++;
    finish(1);
}

/* ---- helpers -------------------------------------------------------------- */

const sleep = ms => new Promise(r => setTimeout(r, ms));

function within(promise, ms, what) {
    let t;
    return Promise.race([
        promise,
        new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what}: timed out after ${ms} ms`)), ms); })
    ]).finally(() => clearTimeout(t));
}

function assert(cond, msg) { if (!cond) throw new Error(msg); }

function eq(actual, expected, what) {
    const a = JSON.stringify(actual), e = JSON.stringify(expected);
    if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

function freePort() {
    return new Promise((res, rej) => {
        const s = net.createServer();
        s.on("error", rej);
        s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => res(p)); });
    });
}

function get(url, ms = 5000) {
    return new Promise((res, rej) => {
        const req = http.get(url, r => {
            const chunks = [];
            r.on("data", c => chunks.push(c));
            r.on("end", () => res({ status: r.statusCode, headers: r.headers, body: Buffer.concat(chunks) }));
        });
        req.on("error", rej);
        req.setTimeout(ms, () => req.destroy(new Error(`GET ${url}: timed out`)));
    });
}

/* skick-node on a port; keeps the last lines of its output for failures */
class Server {
    constructor(port) { this.port = port; this.proc = null; this.lines = []; this.starts = 0; }

    async start(ms = 20000) {
        this.starts++;
        const args = ["--app", HELLO_SO, "--port", String(this.port), "--www", WWW, "--cluster-view"];
        const proc = spawn(NODE_BIN, args, { stdio: ["ignore", "pipe", "pipe"],
                                             env: Object.assign({}, process.env, { SKICK_LOG_LEVEL: "info" }) });
        this.proc = proc;
        const keep = d => {
            for (const l of String(d).split("\n")) if (l) this.lines.push(`[server#${this.starts}] ${l}`);
            if (this.lines.length > 200) this.lines.splice(0, this.lines.length - 200);
        };
        proc.stdout.on("data", keep);
        proc.stderr.on("data", keep);
        proc.exited = new Promise(r => proc.on("exit", (code, sig) => { proc.status = { code, sig }; r(proc.status); }));
        const deadline = Date.now() + ms;
        for (;;) {
            if (proc.status) throw new Error(`skick-node exited at start (${JSON.stringify(proc.status)})`);
            try {
                const r = await get(`http://127.0.0.1:${this.port}/skick.js`, 1000);
                if (r.status === 200) return;
            } catch (e) { /* not listening yet */ }
            if (Date.now() > deadline) throw new Error(`skick-node not serving on port ${this.port} after ${ms} ms`);
            await sleep(100);
        }
    }

    /* Stop with sig and wait for the exit (SIGKILL after ms). */
    async stop(sig = "SIGTERM", ms = 10000) {
        const proc = this.proc;
        if (!proc || proc.status) return proc && proc.status;
        proc.kill(sig);
        let status;
        try {
            status = await within(proc.exited, ms, "skick-node exit");
        } catch (e) {
            proc.kill("SIGKILL");
            status = await within(proc.exited, 5000, "skick-node exit after SIGKILL");
        }
        return status;
    }

    kill() {
        if (this.proc && !this.proc.status) {
            try { this.proc.kill("SIGKILL"); } catch (e) { /* gone */ }
        }
    }

    tail(n = 25) { return this.lines.slice(-n).join("\n"); }
}

async function check(name, fn, ms = 30000) {
    const t0 = Date.now();
    try {
        await within(Promise.resolve().then(fn), ms, name);
        passed++;
        log(`ok   ${name} (${Date.now() - t0} ms)`);
    } catch (e) {
        failed++;
        log(`FAIL ${name}: ${e && e.message || e}`);
        for (const [p, lines] of pageLogs) {
            if (lines.length) log(`  console of ${p.__name}:\n    ` + lines.slice(-15).join("\n    "));
        }
        if (server) log("  server log (tail):\n    " + server.tail().split("\n").join("\n    "));
    }
}

/* In-page helpers, installed before the page's own scripts. */
function pageHelpers() {
    window.__t = {
        sleep: ms => new Promise(r => setTimeout(r, ms)),
        /* the next `ev` of session s, or a rejection after ms */
        once(s, ev, ms) {
            return new Promise((res, rej) => {
                const t = setTimeout(() => { s.off(ev, f); rej(new Error(`no ${ev} event in ${ms} ms`)); }, ms);
                function f(x) { clearTimeout(t); s.off(ev, f); res(x); }
                s.on(ev, f);
            });
        },
        within(p, ms, what) {
            return Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error(`${what}: timed out after ${ms} ms`)), ms))]);
        },
        /* every event of s into an array */
        record(s) {
            const evs = [];
            for (const ev of ["open", "message", "query", "error", "denied", "close", "reconnecting"])
                s.on(ev, x => evs.push({ ev: ev, x: ev === "open" ? null : x, at: Date.now() }));
            return evs;
        }
    };
}

async function newPage(name) {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    page.__name = name;
    const lines = [];
    pageLogs.set(page, lines);
    page.errors = [];
    page.on("console", m => lines.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", e => { page.errors.push(String(e)); lines.push(`pageerror: ${e}`); });
    page.setDefaultTimeout(10000);
    await page.addInitScript(pageHelpers);
    if (SKICK_JS) {
        const body = fs.readFileSync(SKICK_JS);
        await page.route("**/skick.js", route => route.fulfill({ status: 200, contentType: "application/javascript", body }));
    }
    return page;
}

async function openDemo(name) {
    const page = await newPage(name);
    await page.goto(`http://127.0.0.1:${server.port}/`, { timeout: 15000 });
    await page.waitForFunction(() => window.Skick && window.skickDemo, null, { timeout: 10000 });
    return page;
}

/* Wait until the element's text contains every string. */
async function waitText(page, selector, strings, ms = 10000) {
    strings = [].concat(strings);
    try {
        await page.waitForFunction(([sel, ss]) => {
            const el = document.querySelector(sel);
            return !!el && ss.every(s => el.textContent.includes(s));
        }, [selector, strings], { timeout: ms });
    } catch (e) {
        const text = await page.evaluate(sel => { const el = document.querySelector(sel); return el ? el.textContent : "(no element)"; }, selector).catch(() => "?");
        throw new Error(`${selector} never showed ${JSON.stringify(strings)} in ${ms} ms; it shows ${JSON.stringify(text.slice(-400))}`);
    }
}

/* ---- the run -------------------------------------------------------------- */

async function main() {
    for (const f of [NODE_BIN, HELLO_SO, path.join(WWW, "index.html")])
        if (!fs.existsSync(f)) { log(`missing ${f} (build first: cmake --build ${BUILD})`); failed++; finish(1); }
    if (!fs.existsSync(CHROMIUM)) { log(`missing ${CHROMIUM}: run tests/integration/browser_env.sh`); failed++; finish(1); }
    const { chromium } = loadPlaywright();

    const port = await freePort();
    server = new Server(port);
    const base = `http://127.0.0.1:${port}`;
    let started = false;
    await check("skick-node starts (hello.so, --www)", async () => { await server.start(); started = true; });
    if (!started) return;

    await check("chromium starts", async () => {
        browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60000 });
    }, 90000);
    if (!browser) return;

    /* ---- HTTP ---- */
    await check("GET /skick.js is node/www/skick.js (rebuild if not)", async () => {
        const r = await get(`${base}/skick.js`);
        eq(r.status, 200, "status");
        assert(/javascript/.test(r.headers["content-type"] || ""), `content-type ${r.headers["content-type"]}`);
        const src = fs.readFileSync(path.join(ROOT, "node", "www", "skick.js"));
        assert(r.body.equals(src), `served ${r.body.length} bytes differ from node/www/skick.js (${src.length} bytes): libskick is stale, rebuild`);
    });
    await check("GET / serves the demo page and its files", async () => {
        const r = await get(`${base}/`);
        eq(r.status, 200, "status of /");
        const html = String(r.body);
        assert(html.includes("/skick.js") && html.includes("demo.js"), "/ is not the demo page (index.html of --www)");
        for (const f of ["demo.js", "demo.css"]) {
            if (!fs.existsSync(path.join(WWW, f))) continue;
            eq((await get(`${base}/${f}`)).status, 200, `status of /${f}`);
        }
    });

    /* ---- the demo page ---- */
    let demo = null;
    await check("demo page loads /skick.js and demo.js", async () => { demo = await openDemo("demo"); });

    await check("demo: hello greets, and greets again on Greet", async () => {
        await demo.click("#hello-open");
        await waitText(demo, "#hello-log", "Hello, use the action 'greet' to receive a greeting");
        await demo.click("#hello-greet");
        await waitText(demo, "#hello-log", "Hello good sir");
        await waitText(demo, "#hello-status", "open");
    });

    await check("demo: curious asks (SocketQuery), Yes gives the information", async () => {
        await demo.click("#curious-open");
        await demo.click("#curious-ask");
        await waitText(demo, "#curious-queries", "Do you accept the terms?");
        await demo.click("#curious-queries .query button.yes");
        await waitText(demo, "#curious-log", '{"secret":42}');
        eq(await demo.locator("#curious-queries .query").count(), 0, "open questions after answering");
    });

    await check("demo: curious, No refuses the terms", async () => {
        await demo.click("#curious-ask");
        await waitText(demo, "#curious-queries", "Do you accept the terms?");
        await demo.click("#curious-queries .query button.no");
        await waitText(demo, "#curious-log", "terms not accepted");
    });

    await check("demo: logarithm shows its base and log x", async () => {
        await demo.click("#logarithm-open");
        await demo.waitForFunction(() => /^\d+(\.\d+)?$/.test(document.getElementById("logarithm-base").textContent), null, { timeout: 10000 });
        const b = Number(await demo.textContent("#logarithm-base"));
        assert(b >= 2 && b <= 18 && b % 2 === 0, `base ${b} is not 2 * (1..9)`);
        await demo.fill("#logarithm-x", "8");
        await demo.click("#logarithm-send");
        const want = Math.log(8) / Math.log(b);
        await demo.waitForFunction(() => /= [-0-9.e]+$/.test((document.querySelector("#logarithm-log li:last-child") || {}).textContent || ""), null, { timeout: 10000 })
            .catch(async () => { throw new Error("no result in #logarithm-log: " + await demo.textContent("#logarithm-log")); });
        const line = await demo.textContent("#logarithm-log li:last-child");
        const got = Number(line.split("= ").pop());
        assert(Math.abs(got - want) < 1e-9, `"${line}": expected log_${b}(8) = ${want}`);
    });

    await check("demo: the live panel shows the sessions, and client messages move it", async () => {
        await waitText(demo, "#cluster-status", "live");
        await waitText(demo, "#cluster-shards", "(this shard)");
        /* hello, curious and logarithm are open */
        await demo.waitForFunction(() => Number(document.getElementById("cluster-sessions").textContent) >= 3,
                                   null, { timeout: 10000 })
            .catch(async () => { throw new Error("sessions: " + await demo.textContent("#cluster-sessions")); });
        const moved = async () => Number(await demo.textContent("#cluster-in")) > 0;
        const deadline = Date.now() + 15000;
        while (!(await moved()) && Date.now() < deadline) {
            for (let i = 0; i < 5; i++) await demo.click("#hello-greet");
            await sleep(300);
        }
        assert(await moved(), "messages in/s stayed at " + await demo.textContent("#cluster-in"));
        const r = await get(`${base}/skick/cluster.json`);
        eq(r.status, 200, "GET /skick/cluster.json");
        const v = JSON.parse(String(r.body));
        assert(v.client_sessions >= 3 && v.messages_in > 0 && Array.isArray(v.shards), JSON.stringify(v));
    });

    /* ---- skick.js itself ---- */
    let p = null;
    await check("skick.js: page for direct tests", async () => { p = await openDemo("direct"); });

    await check("skick.js: session, ready, next(), send()", async () => {
        const r = await p.evaluate(async () => {
            const s = new Skick.Session("hello");
            const first = s.next(5000);
            const ready = await __t.within(s.ready, 5000, "ready");
            const g1 = await first;
            s.send({ action: "greet" });
            const g2 = await s.next(5000);
            let timedOut = false;
            try { await s.waitFor(() => false, 300); } catch (e) { timedOut = /300 ms/.test(e.message); }
            const closed = __t.once(s, "close", 3000);
            s.close();
            const c = await closed;
            let rejected = false;
            try { s.send({ action: "greet" }); } catch (e) { rejected = true; }
            return { same: ready === s, g1, g2, timedOut, c, rejected, closedFlag: s.closed };
        });
        assert(r.same, "ready does not resolve with the session");
        eq(r.g1, { greeting: "Hello, use the action 'greet' to receive a greeting" }, "first message");
        eq(r.g2, { greeting: "Hello good sir" }, "reply to greet");
        assert(r.timedOut, "waitFor(pred, 300) did not time out");
        eq([r.c.code, r.c.reconnect], [1000, false], "close after close()");
        assert(r.rejected && r.closedFlag, "send() after close() should throw, closed should be true");
    });

    await check("skick.js: ready after await, then next() gets the greeting (no lost message)", async () => {
        const r = await p.evaluate(async () => {
            const s = new Skick.Session("hello");
            await __t.within(s.ready, 5000, "ready");
            const g = await s.next(5000);
            s.close();
            return g;
        });
        eq(r, { greeting: "Hello, use the action 'greet' to receive a greeting" }, "greeting");
    });

    await check("skick.js: query answered with a Promise (curious says nothing first)", async () => {
        const r = await p.evaluate(async () => {
            const s = new Skick.Session("curious");
            const evs = __t.record(s);
            let asked = null;
            s.onQuery((payload, schema, q) => {
                asked = { payload, schema, id: typeof q.query_id };
                return new Promise(res => setTimeout(() => res(true), 200));
            });
            s.send({ action: "get_information" }); /* queued before the handshake */
            await __t.within(s.ready, 5000, "ready of a session that says nothing first");
            const info = await s.waitFor(m => m && typeof m === "object" && "secret" in m, 10000);
            s.onQuery(() => Promise.resolve(false));
            s.send({ action: "get_information" });
            const refused = await s.next(10000);
            s.close();
            return { info, refused, asked, queries: evs.filter(e => e.ev === "query").length,
                     messages: evs.filter(e => e.ev === "message").map(e => e.x),
                     errors: evs.filter(e => e.ev === "error").map(e => e.x) };
        });
        eq(r.info, { secret: 42 }, "information after yes");
        eq(r.refused, { error: "terms not accepted" }, "answer after no");
        eq(r.asked, { payload: { gdpr_query: "Do you accept the terms?" }, schema: "bool", id: "string" }, "what onQuery got");
        eq(r.queries, 2, "query events");
        eq(r.errors, [], "errors");
        assert(!r.messages.some(m => m && m.action === "SocketQuery"), "SocketQuery delivered as a message");
    });

    await check("skick.js: Invalid subschema is an error event; reply() answers again", async () => {
        const r = await p.evaluate(async () => {
            const s = new Skick.Session("curious");
            let qid = null;
            s.on("query", q => { qid = q.query_id; });
            s.onQuery(() => "maybe"); /* a string: not a bool */
            const err = __t.once(s, "error", 10000);
            s.send({ action: "get_information" });
            const e = await err;
            const replied = s.reply(qid, true);
            const info = await s.next(10000);
            const err2 = __t.once(s, "error", 5000);
            s.reply(qid, true); /* answered already */
            const e2 = await err2;
            s.close();
            return { e, replied, info, e2, qid };
        });
        eq(r.e, { error: "Invalid subschema", query_id: r.qid },
           "error (naming the query) for a non-bool answer");
        assert(r.replied, "reply() returned false while connected");
        eq(r.info, { secret: 42 }, "information after the second answer");
        eq(r.e2, { action: "error", type: "unknown query" }, "error for a second answer");
    });

    await check("skick.js: error events for bad messages, the session stays", async () => {
        const r = await p.evaluate(async () => {
            const s = new Skick.Session("hello");
            await __t.within(s.ready, 5000, "ready");
            await s.next(5000); /* the greeting */
            const evs = __t.record(s);
            const errs = [];
            for (const bad of [{ action: "nope" }, "not json", "[1,2]", { hello: 1 }]) {
                const e = __t.once(s, "error", 5000);
                s.send(bad);
                errs.push(await e);
            }
            s.send({ action: "greet" });
            const g = await s.next(5000);
            const closed = __t.once(s, "close", 3000);
            s.close();
            await closed;
            return { errs, g, messages: evs.filter(e => e.ev === "message").map(e => e.x),
                     closes: evs.filter(e => e.ev === "close").map(e => e.x.code) };
        });
        eq(r.errs, [
            { action: "error", type: "No schema present for action 'nope'" },
            { action: "error", type: "invalid JSON" },
            { action: "error", type: "Incorrect message format" },
            { action: "error", type: "No action requested" }
        ], "error events");
        eq(r.g, { greeting: "Hello good sir" }, "greet after the errors");
        eq(r.messages, [{ greeting: "Hello good sir" }], "message events (errors must not be messages)");
        eq(r.closes, [1000], "closes");
    });

    await check("skick.js: denied for an unknown session type (ready rejects, no reconnect)", async () => {
        const r = await p.evaluate(async () => {
            const s = new Skick.Session("no_such_session", { minBackoff: 50 });
            const evs = __t.record(s);
            let err = null;
            try { await __t.within(s.ready, 5000, "ready"); } catch (e) { err = e.message; }
            await __t.sleep(1500);
            let nextRejects = false;
            try { await __t.within(s.next(), 1000, "next"); } catch (e) { nextRejects = !/timed out/.test(e.message); }
            return { err, closed: s.closed, nextRejects, evs: evs.map(e => e.ev === "close" ? { ev: "close", code: e.x.code, reason: e.x.reason, reconnect: e.x.reconnect } : { ev: e.ev, x: e.x }) };
        });
        assert(r.err && /denied/.test(r.err), `ready should reject with "session denied", got ${r.err}`);
        eq(r.evs, [{ ev: "denied", x: "no_such_session" }, { ev: "close", code: 1000, reason: "session denied", reconnect: false }], "events");
        assert(r.closed, "closed should be true after denied");
        assert(r.nextRejects, "next() should reject at once on a closed session");
    });

    await check("skick.js: extra handshake fields (chat name; a field outside the schema is denied)", async () => {
        const r = await p.evaluate(async () => {
            const ok = new Skick.Session("chat", { handshake: { name: "hs-test" } });
            const joined = await ok.waitFor(m => m.action === "chat_line" && m.event === "joined", 5000);
            ok.close();
            const bad = new Skick.Session("chat", { handshake: { name: "x", extra: 1 } });
            let denied = false;
            try { await __t.within(bad.ready, 5000, "ready"); } catch (e) { denied = /denied/.test(e.message); }
            return { joined, denied };
        });
        eq(r.joined, { action: "chat_line", from: "room", text: "hs-test", event: "joined" }, "joined line");
        assert(r.denied, "a handshake with a field outside the schema should be denied");
    });

    /* ---- chat between two pages ---- */
    await check("demo: chat between two pages", async () => {
        const a = await openDemo("chat-ada"), b = await openDemo("chat-bob");
        await a.fill("#chat-name", "ada");
        await a.click("#chat-join");
        await waitText(a, "#chat-lines", "ada joined");
        await b.fill("#chat-name", "bob");
        await b.click("#chat-join");
        await waitText(a, "#chat-lines", "bob joined");
        await a.fill("#chat-text", "hello from ada");
        await a.click("#chat-send");
        await waitText(b, "#chat-lines", "ada: hello from ada");
        await waitText(a, "#chat-lines", "ada: hello from ada");
        await b.fill("#chat-text", "hi ada <b>bob</b> here");
        await b.press("#chat-text", "Enter");
        await waitText(a, "#chat-lines", "bob: hi ada <b>bob</b> here");
        eq(await a.locator("#chat-lines b").count(), 0, "chat text rendered as HTML elements");
        await a.click("#chat-close");
        await waitText(a, "#chat-status", "closed");
        await a.context().close();
        await b.context().close();
    }, 45000);

    /* ---- reconnect ---- */
    await check("skick.js: reconnects after the server restarts (SIGTERM, then SIGKILL)", async () => {
        await p.evaluate(async () => {
            const s = new Skick.Session("hello", { minBackoff: 200, maxBackoff: 4000 });
            window.rs = s;
            window.rev = __t.record(s);
            await __t.within(s.ready, 5000, "ready");
            await s.next(5000);
        });
        for (const sig of ["SIGTERM", "SIGKILL"]) {
            const opens = await p.evaluate(() => rev.filter(e => e.ev === "open").length);
            const closes = await p.evaluate(() => rev.filter(e => e.ev === "close").length);
            await server.stop(sig);
            await p.waitForFunction(n => rev.filter(e => e.ev === "close").length > n, closes, { timeout: 10000 });
            await sleep(1200); /* a few attempts fail while the server is down */
            await server.start();
            await p.waitForFunction(n => rev.filter(e => e.ev === "open").length > n, opens, { timeout: 20000 })
                .catch(() => { throw new Error(`no reconnect after ${sig}`); });
            const r = await p.evaluate(async () => {
                const g1 = await rs.waitFor(m => /use the action/.test(m.greeting || ""), 5000);
                rs.send({ action: "greet" });
                const g2 = await rs.waitFor(m => m.greeting === "Hello good sir", 5000);
                return { g1, g2 };
            });
            eq(r.g2, { greeting: "Hello good sir" }, `greet after the restart (${sig})`);
        }
        const r = await p.evaluate(() => {
            const closes = rev.filter(e => e.ev === "close").map(e => e.x);
            const delays = rev.filter(e => e.ev === "reconnecting").map(e => e.x);
            return { closes, delays };
        });
        eq(r.closes[0].code, 1001, "close code when the server shuts down");
        eq(r.closes[0].reason, "server shutting down", "close reason when the server shuts down");
        assert(r.closes.every(c => typeof c.reconnect === "number"), "every close should announce a reconnect: " + JSON.stringify(r.closes));
        assert(r.delays.length >= 3, `expected several attempts, got ${JSON.stringify(r.delays)}`);
        const firstRun = [];
        for (const d of r.delays) { if (d.attempt === 1 && firstRun.length) break; firstRun.push(d.delay); }
        assert(firstRun.length >= 2 && firstRun[1] > firstRun[0], `back-off should grow: ${JSON.stringify(r.delays)}`);
        assert(r.delays.every(d => d.delay <= 4000 * 1.2), `back-off above maxBackoff: ${JSON.stringify(r.delays)}`);
    }, 90000);

    await check("demo: the page's hello session came back by itself", async () => {
        await waitText(demo, "#hello-status", "open", 20000);
        const n = await demo.evaluate(() => [...document.querySelectorAll("#hello-log li")].filter(li => /use the action/.test(li.textContent)).length);
        assert(n >= 2, `expected a greeting from the first session and one after a restart, saw ${n}`);
        await demo.click("#hello-greet");
        await demo.waitForFunction(() => [...document.querySelectorAll("#hello-log li")].filter(li => /good sir/.test(li.textContent)).length >= 2, null, { timeout: 10000 });
    });

    await check("skick.js: close() stops reconnecting", async () => {
        const r = await p.evaluate(async () => {
            const before = rev.length;
            const c = __t.once(rs, "close", 3000);
            rs.close();
            const closed = await c;
            await __t.sleep(1500);
            return { closed, after: rev.slice(before + 1).map(e => e.ev), flag: rs.closed };
        });
        eq([r.closed.code, r.closed.reconnect], [1000, false], "close event");
        eq(r.after, [], "events after close()");
        assert(r.flag, "closed flag");
    });

    await check("no uncaught errors in the pages", async () => {
        const errs = [];
        for (const pg of pageLogs.keys()) for (const e of pg.errors) errs.push(`${pg.__name}: ${e}`);
        eq(errs, [], "page errors");
    });
}

const watchdog = setTimeout(() => {
    log(`FAIL watchdog: the run took more than ${WATCHDOG_MS / 1000} s`);
    failed++;
    finish(1);
}, WATCHDOG_MS);

main()
    .catch(e => { failed++; log(`FAIL ${e && e.stack || e}`); })
    .then(async () => {
        if (browser) await within(browser.close(), 15000, "browser close").catch(() => {});
        if (server) {
            const st = await server.stop("SIGTERM").catch(() => null);
            if (st && st.code !== 0 && st.sig == null && server.proc.status) {
                /* a clean stop exits 0; anything else is worth seeing */
                log(`note: skick-node exited with ${JSON.stringify(st)} on SIGTERM`);
            }
        }
        clearTimeout(watchdog);
        finish();
    });
