#!/usr/bin/env bash
#  test_deploy.sh - check deploy/: systemd units, example settings, cluster.example.json
#
#  Usage: bash tests/integration/test_deploy.sh BUILD_DIR
#
#  1. The unit files carry the keys docs/deploy.md promises (users, restart
#     policy, hardening, the runtime directory of the control socket...).
#  2. Every option the units and the example settings pass is listed by the
#     binary's --help, and each complete command line, expanded the way
#     systemd expands ExecStart= with the example settings, is accepted by
#     the binary (run with --help appended: options are parsed, nothing runs).
#  3. deploy/cluster.example.json parses, agrees with the example settings,
#     and each of its fields is documented in docs/deploy.md.
#  4. `systemd-analyze verify` accepts the units (skipped when it is absent).
#  5. The copies CMake generates for installation differ from the sources
#     only in the binaries' directory.
#  6. Live: the example settings (moved to loopback, fresh keys from
#     `skickctl keygen`) run a CURVE cluster of one broker, one front and one
#     back shard that skickctl can list; the shards rejoin a restarted
#     broker by themselves; a shard declared lost exits with status 1 (what
#     Restart=on-failure acts on); SIGTERM stops shards and broker with 0.
#
#  Each check prints "ok - ..." or "not ok - ..."; the last line is
#  "N passed, M failed"; the exit status is non-zero when anything failed.
#  Every process started is killed on exit.
set -u

if [ $# -ne 1 ]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
build=$(cd "$1" && pwd) || exit 2
src=$(cd "$(dirname "$0")/../.." && pwd) || exit 2
deploy="$src/deploy"
units="$deploy/systemd"
conf="$deploy/skick"
doc="$src/docs/deploy.md"
broker_bin="$build/broker/skick-broker"
node_bin="$build/node/skick-node"
ctl_bin="$build/cli/skickctl"
python=/usr/bin/python3
[ -x "$python" ] || python=python3

unset JOURNAL_STREAM
export SKICK_LOG_LEVEL=info

tmp=$(mktemp -d "${TMPDIR:-/tmp}/skick-deploy.XXXXXX") || exit 2
started=() # pids of processes we started and have not reaped

s_cleanup() {
    local p
    for p in "${started[@]}"; do
        kill -KILL "$p" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap s_cleanup EXIT
trap 'exit 130' INT TERM HUP

passed=0
failed=0

s_ok() {
    passed=$((passed + 1))
    echo "ok - $1"
}

s_not_ok() {
    failed=$((failed + 1))
    echo "not ok - $1"
}

#  s_check NAME COMMAND...: pass when COMMAND succeeds.
s_check() {
    local name=$1
    shift
    if "$@"; then s_ok "$name"; else s_not_ok "$name"; fi
}

for b in "$broker_bin" "$node_bin" "$ctl_bin"; do
    if [ ! -x "$b" ]; then
        echo "not ok - $b is not built"
        echo "0 passed, 1 failed"
        exit 1
    fi
done

# ---- reading unit files --------------------------------------------------------

#  s_unit_values FILE SECTION KEY: every value of KEY in [SECTION], one a line.
s_unit_values() {
    awk -v want_s="$2" -v want_k="$3" '
        /^[ \t]*([#;]|$)/ { next }
        /^\[/ { section = substr($0, 2, index($0, "]") - 2); next }
        section == want_s {
            eq = index($0, "=")
            if (eq && substr($0, 1, eq - 1) == want_k) print substr($0, eq + 1)
        }' "$1"
}

#  s_unit_has FILE SECTION KEY WANT: some value of KEY is WANT or holds it as
#  a space-separated word; WANT "*" accepts any non-empty value.
s_unit_has() {
    local v w
    while IFS= read -r v; do
        if [ "$4" = "*" ]; then
            [ -n "$v" ] && return 0
            continue
        fi
        [ "$v" = "$4" ] && return 0
        for w in $v; do
            [ "$w" = "$4" ] && return 0
        done
    done < <(s_unit_values "$1" "$2" "$3")
    echo "    $(basename "$1"): no [$2] $3=$4" >&2
    return 1
}

#  s_unit_all FILE LIST...: s_unit_has for every "SECTION|KEY|WANT" in LIST.
s_unit_all() {
    local file=$1 spec rc=0
    shift
    for spec in "$@"; do
        IFS='|' read -r s k w <<< "$spec"
        s_unit_has "$file" "$s" "$k" "$w" || rc=1
    done
    return $rc
}

#  s_unit_syntax FILE: sections known, every other line KEY=VALUE, no
#  continuation lines (the parsing above and below reads one line a setting).
s_unit_syntax() {
    awk '
        /^[ \t]*([#;]|$)/ { next }
        /^\[(Unit|Service|Install)\]$/ { next }
        /\\$/ { print FILENAME ":" FNR ": continuation line"; bad = 1; next }
        !/^[A-Z][A-Za-z]*=/ { print FILENAME ":" FNR ": not KEY=VALUE: " $0; bad = 1 }
        END { exit bad }' "$1" >&2
}

# ---- 1. the units carry the promised keys --------------------------------------

broker_unit="$units/skick-broker.service"
node_unit="$units/skick-node@.service"
target_unit="$units/skick.target"

for f in "$broker_unit" "$node_unit" "$target_unit"; do
    s_check "$(basename "$f"): exists, sections and KEY=VALUE lines only" \
        eval '[ -f "$f" ] && s_unit_syntax "$f"'
done

service_keys=(
    "Unit|Description|*" "Unit|After|network-online.target" "Unit|Wants|network-online.target"
    "Unit|PartOf|skick.target" "Unit|StartLimitIntervalSec|*" "Unit|StartLimitBurst|*"
    "Service|Type|exec" "Service|User|skick" "Service|Group|skick" "Service|ExecStart|*"
    "Service|Restart|on-failure" "Service|RestartSec|*" "Service|RestartPreventExitStatus|2"
    "Service|TimeoutStopSec|*" "Service|SyslogIdentifier|*" "Service|UMask|0077"
    "Service|LimitNOFILE|65536"
    "Service|NoNewPrivileges|yes" "Service|CapabilityBoundingSet|" "Service|ProtectSystem|strict"
    "Service|ProtectHome|yes" "Service|PrivateTmp|yes" "Service|PrivateDevices|yes"
    "Service|ProtectKernelTunables|yes" "Service|ProtectKernelModules|yes"
    "Service|ProtectControlGroups|yes" "Service|RestrictNamespaces|yes"
    "Service|RestrictSUIDSGID|yes" "Service|LockPersonality|yes"
    "Service|RestrictAddressFamilies|AF_INET" "Service|RestrictAddressFamilies|AF_INET6"
    "Service|RestrictAddressFamilies|AF_UNIX" "Service|SystemCallFilter|@system-service"
    "Service|SystemCallArchitectures|native"
    "Install|WantedBy|skick.target"
)
s_check "skick-broker.service: service, restart and hardening keys" \
    s_unit_all "$broker_unit" "${service_keys[@]}"
s_check "skick-broker.service: settings file, runtime directory, MemoryDenyWriteExecute" \
    s_unit_all "$broker_unit" "Service|EnvironmentFile|-/etc/skick/broker.conf" \
    "Service|RuntimeDirectory|skick" "Service|RuntimeDirectoryMode|0700" \
    "Service|Environment|SKICK_CONTROL=ipc:///run/skick/control" \
    "Service|Environment|SKICK_BIND=tcp://127.0.0.1:7400" "Service|MemoryDenyWriteExecute|yes"
s_check "skick-node@.service: service, restart and hardening keys" \
    s_unit_all "$node_unit" "${service_keys[@]}"
s_check "skick-node@.service: the instance's settings file, broker ordering, tasks" \
    s_unit_all "$node_unit" "Service|EnvironmentFile|/etc/skick/node-%i.conf" \
    "Unit|After|skick-broker.service" "Service|TasksMax|*" "Unit|Description|*"
s_check "skick-node@.service: the instance name is in the log identifier" \
    eval 's_unit_values "$node_unit" Service SyslogIdentifier | grep -q "%i"'
s_check "skick.target: description, wanted by multi-user.target" \
    s_unit_all "$target_unit" "Unit|Description|*" "Install|WantedBy|multi-user.target"
s_check "the broker's default ipc control socket lives in its RuntimeDirectory" \
    eval '[ "$(s_unit_values "$broker_unit" Service RuntimeDirectory)" = skick ] &&
          s_unit_values "$broker_unit" Service Environment |
          grep -qx "SKICK_CONTROL=ipc:///run/skick/[^/]*"'

# ---- 2. options: listed by --help, complete command lines accepted ----------------

#  s_env_file FILE: print KEY<TAB>VALUE for an EnvironmentFile in the simple
#  form the examples use (KEY=value or KEY="value", comment lines); fail on
#  anything else, so that this emulation and systemd cannot disagree.
s_env_file() {
    awk '
        /^[ \t]*(#|$)/ { next }
        /^[A-Z_][A-Z0-9_]*="[^"\\$`]*"$/ {
            eq = index($0, "="); v = substr($0, eq + 2); v = substr(v, 1, length(v) - 1)
            print substr($0, 1, eq - 1) "\t" v; next
        }
        /^[A-Z_][A-Z0-9_]*=[^"\\$`'"'"' \t]*$/ {
            eq = index($0, "="); print substr($0, 1, eq - 1) "\t" substr($0, eq + 1); next
        }
        { print FILENAME ":" FNR ": unsupported line: " $0 > "/dev/stderr"; bad = 1 }
        END { exit bad }' "$1"
}

#  s_command UNIT ENVFILE BINARY: the argv systemd would run (one word a line),
#  with the unit's Environment= defaults overridden by ENVFILE, and the
#  binary replaced by BINARY. ${X} is one word, $X splits at whitespace.
s_command() {
    local unit=$1 envfile=$2 binary=$3 line k v tok name first=1
    declare -A env=()
    while IFS= read -r line; do
        env["${line%%=*}"]="${line#*=}"
    done < <(s_unit_values "$unit" Service Environment)
    local pairs
    pairs=$(s_env_file "$envfile") || return 1
    while IFS=$'\t' read -r k v; do
        [ -n "$k" ] && env["$k"]="$v"
    done <<< "$pairs"
    local -a words values
    read -ra words <<< "$(s_unit_values "$unit" Service ExecStart)"
    for tok in "${words[@]}"; do
        if [ $first = 1 ]; then
            first=0
            echo "$binary"
            continue
        fi
        case "$tok" in
        \$\{*\})
            name=${tok:2:-1}
            echo "${env[$name]-}"
            ;;
        \$*)
            name=${tok:1}
            read -ra values <<< "${env[$name]-}"
            for v in "${values[@]}"; do echo "$v"; done
            ;;
        *\$*)
            echo "$unit: unsupported ExecStart word '$tok'" >&2
            return 1
            ;;
        *) echo "$tok" ;;
        esac
    done
}

#  s_options_of TEXT...: the --options named in TEXT, one a line.
s_options_of() {
    printf '%s\n' "$@" | grep -oE -- '(^|[[:space:]"=])--[a-z][a-z0-9-]*' |
        sed 's/^[[:space:]"=]*//' | sort -u
}

#  s_help_lists BINARY OPTION...: BINARY --help names each OPTION.
s_help_lists() {
    local binary=$1 help o rc=0
    shift
    help=$("$binary" --help 2>&1) || return 1
    for o in "$@"; do
        if ! grep -qE -- "(^|[^a-z0-9-])${o}([^a-z0-9-]|\$)" <<< "$help"; then
            echo "    $(basename "$binary") --help does not list $o" >&2
            rc=1
        fi
    done
    return $rc
}

#  s_accepts ARGV_FILE: the command in ARGV_FILE (one word a line) parses its
#  options: run with --help appended, it exits 0.
s_accepts() {
    local -a argv
    mapfile -t argv < "$1"
    "${argv[@]}" --help > "$1.out" 2>&1 || {
        echo "    rejected: ${argv[*]}" >&2
        sed 's/^/    /' "$1.out" | head -5 >&2
        return 1
    }
}

broker_text=$(s_unit_values "$broker_unit" Service ExecStart; s_unit_values "$broker_unit" \
    Service Environment; cut -f2 <(s_env_file "$conf/broker.conf"))
node_text=$(s_unit_values "$node_unit" Service ExecStart; s_unit_values "$node_unit" \
    Service Environment; for f in "$conf"/node-*.conf; do cut -f2 <(s_env_file "$f"); done)
mapfile -t broker_opts < <(s_options_of "$broker_text")
mapfile -t node_opts < <(s_options_of "$node_text")
s_check "skick-broker --help lists every option the unit and broker.conf use (${broker_opts[*]})" \
    s_help_lists "$broker_bin" "${broker_opts[@]}"
s_check "skick-node --help lists every option the unit and node-*.conf use (${node_opts[*]})" \
    s_help_lists "$node_bin" "${node_opts[@]}"

s_check "skick-broker.service + broker.conf: the command line parses" \
    eval 's_command "$broker_unit" "$conf/broker.conf" "$broker_bin" > "$tmp/argv.broker" &&
          s_accepts "$tmp/argv.broker"'
printf '' > "$tmp/empty.conf"
s_check "skick-broker.service without broker.conf: the command line parses" \
    eval 's_command "$broker_unit" "$tmp/empty.conf" "$broker_bin" > "$tmp/argv.broker0" &&
          s_accepts "$tmp/argv.broker0"'
for f in "$conf"/node-*.conf; do
    inst=$(basename "$f" .conf)
    inst=${inst#node-}
    s_check "skick-node@$inst.service + $(basename "$f"): the command line parses" \
        eval 's_command "$node_unit" "$f" "$node_bin" > "$tmp/argv.$inst" &&
              s_accepts "$tmp/argv.$inst"'
done
s_check "node-front-1.conf is a front shard, node-back-1.conf a back shard" \
    eval 'grep -qx -- --front "$tmp/argv.front-1" && ! grep -qx -- --back "$tmp/argv.front-1" &&
          grep -qx -- --back "$tmp/argv.back-1" && ! grep -qx -- --front "$tmp/argv.back-1"'

# ---- 3. cluster.example.json --------------------------------------------------------

s_check "cluster.example.json agrees with the example settings; docs/deploy.md documents its fields" \
    "$python" - "$deploy/cluster.example.json" "$tmp" "$doc" <<'EOF'
import json, sys
path, tmp, doc = sys.argv[1:4]
c = json.load(open(path))
errors = []
def argv(name):
    return open(f"{tmp}/argv.{name}").read().split("\n")[:-1]
def pair(args, opt, value):
    return any(args[i] == opt and args[i + 1] == value for i in range(len(args) - 1))
def sub(args, seq):
    return any(args[i:i + len(seq)] == seq for i in range(len(args) - len(seq) + 1))
b = argv("broker")
for opt, value in (("--bind", c["broker"]), ("--control", c["control"]),
                   ("--heartbeat-ms", str(c["heartbeat_ms"])),
                   ("--lost-after-ms", str(c["lost_after_ms"])),
                   ("--curve-secret", c["curve"]["broker_secret"]),
                   ("--curve-allow", c["curve"]["allow"])):
    if not pair(b, opt, value):
        errors.append(f"broker.conf: no {opt} {value}")
for role in ("front", "back"):
    for shard in c[role]:
        try:
            a = argv(shard["name"])
        except FileNotFoundError:
            continue  # only front-1 and back-1 have example files
        if f"--{role}" not in a:
            errors.append(f"node-{shard['name']}.conf: not --{role}")
        checks = [("--broker", c["broker"]), ("--curve-secret", shard["curve_secret"]),
                  ("--curve-server", c["curve"]["broker_public"])]
        if role == "front":
            checks += [("--port", str(shard["port"])), ("--host", shard["listen"])]
        checks += [("--app", app) for app in shard["apps"]]
        for opt, value in checks:
            if not pair(a, opt, value):
                errors.append(f"node-{shard['name']}.conf: no {opt} {value}")
        if a.count("--app") != len(shard["apps"]):
            errors.append(f"node-{shard['name']}.conf: apps differ")
        if not sub(a, shard["node_args"]):
            errors.append(f"node-{shard['name']}.conf: node_args {shard['node_args']} missing")
for s in c["curve"].values():
    if not s.startswith(c["curve"]["dir"]):
        errors.append(f"curve path {s} outside curve.dir")
names = set()
def keys(o):
    if isinstance(o, dict):
        for k, v in o.items():
            names.add(k)
            keys(v)
    elif isinstance(o, list):
        for v in o:
            keys(v)
keys(c)
text = open(doc).read()
for k in sorted(names):
    if f"`{k}`" not in text:
        errors.append(f"docs/deploy.md does not document `{k}`")
for e in errors:
    print("    " + e, file=sys.stderr)
sys.exit(1 if errors else 0)
EOF

# ---- 4. systemd-analyze verify ---------------------------------------------------

#  The units with ExecStart= pointing at this build's binaries (verify checks
#  that they exist and are executable).
mkdir -p "$tmp/units"
for f in "$broker_unit" "$node_unit" "$target_unit"; do
    sed -e "s#^ExecStart=/usr/bin/skick-broker #ExecStart=$broker_bin #" \
        -e "s#^ExecStart=/usr/bin/skick-node #ExecStart=$node_bin #" "$f" \
        > "$tmp/units/$(basename "$f")"
done
cp "$tmp/units/skick-node@.service" "$tmp/units/skick-node@front-1.service"
if command -v systemd-analyze > /dev/null 2>&1; then
    s_check "systemd-analyze verify: no error or warning about the units" eval '
        (cd "$tmp/units" && systemd-analyze verify --man=no ./skick-broker.service \
            ./skick.target ./skick-node@front-1.service) > "$tmp/verify.out" 2>&1
        rc=$?
        grep -E "skick" "$tmp/verify.out" | sed "s/^/    /" >&2
        [ $rc = 0 ] && ! grep -qE "skick" "$tmp/verify.out"'
else
    echo "ok - systemd-analyze verify # SKIP systemd-analyze is not installed"
fi

# ---- 5. the copies CMake installs ----------------------------------------------------

for f in "$broker_unit" "$node_unit" "$target_unit"; do
    gen="$build/deploy/systemd/$(basename "$f")"
    s_check "$(basename "$f"): the generated copy differs only in the binaries' directory" \
        eval '[ -f "$gen" ] &&
              diff <(sed -E "s#^ExecStart=/[^ ]*/(skick-[a-z]+) #ExecStart=/usr/bin/\\1 #" "$gen") "$f" \
                  > /dev/null &&
              ! grep -E "^ExecStart=" "$gen" | grep -qvE "^ExecStart=/[^ ]*/skick-(broker|node) "'
done

# ---- 6. live: the examples on loopback ------------------------------------------------

#  Three consecutive free ports (the broker's) and one more (the front's).
ports=$("$python" - <<'EOF'
import random, socket
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        s.close()
while True:
    p = random.randrange(20000, 60000)
    if all(free(p + i) for i in range(4)):
        print(p, p + 3)
        break
EOF
)
read -r bport wport <<< "$ports"
keys="$tmp/keys"
run="$tmp/run"
control="ipc://$run/control"
live=1
#  deploy.md "Keys": each host's key admitted as a shard, the admin's as a client
"$ctl_bin" keygen "$keys" broker > /dev/null || live=0
for name in web-1:shard app-1:shard admin:client; do
    "$ctl_bin" keygen --allow "$keys/allow" --role "${name#*:}" "$keys" "${name%%:*}" > /dev/null ||
        live=0
done
s_check "skickctl keygen: public .cert and owner-only .cert_secret" \
    eval '[ -f "$keys/broker.cert" ] && [ "$(stat -c %a "$keys/broker.cert_secret")" = 600 ]'

apps_dir="$build/examples"
[ -f "$apps_dir/hello.so" ] || apps_dir=""
#  The example settings, moved to this host: loopback, free ports, the keys
#  just made, a faster loss timeout.
for f in broker node-front-1 node-back-1; do
    sed -e "s#tcp://10\\.0\\.0\\.1:7400#tcp://127.0.0.1:$bport#g" \
        -e "s#/etc/skick/keys/#$keys/#g" \
        -e "s#ipc:///run/skick/control#$control#g" \
        -e "s#--port 8000#--port $wport#" \
        -e "s#--host 0\\.0\\.0\\.0#--host 127.0.0.1#" \
        -e "s#--heartbeat-ms 500 --lost-after-ms 3000#--heartbeat-ms 100 --lost-after-ms 1000#" \
        "$conf/$f.conf" > "$tmp/$f.conf"
    if [ -n "$apps_dir" ]; then
        sed -i "s#/usr/local/lib/skick/apps/#$apps_dir/#g" "$tmp/$f.conf"
    else
        sed -i 's#^SKICK_APPS=.*#SKICK_APPS=#' "$tmp/$f.conf"
    fi
done
s_command "$broker_unit" "$tmp/broker.conf" "$broker_bin" > "$tmp/live.broker" || live=0
s_command "$node_unit" "$tmp/node-front-1.conf" "$node_bin" > "$tmp/live.front" || live=0
s_command "$node_unit" "$tmp/node-back-1.conf" "$node_bin" > "$tmp/live.back" || live=0

#  s_start NAME ARGV_FILE: start the command in the background (log NAME.log);
#  sets pid_NAME.
s_start() {
    local -a argv
    mapfile -t argv < "$2"
    "${argv[@]}" >> "$tmp/$1.log" 2>&1 &
    started+=($!)
    printf -v "pid_${1//-/_}" '%s' $!
}

#  s_reap PID SECONDS: wait for PID to exit; set reaped to its status
#  ("timeout" if it is still running). Runs in this shell (wait needs that).
s_reap() {
    local i p rest=()
    reaped=timeout
    for ((i = 0; i < $2 * 10; i++)); do
        if ! kill -0 "$1" 2>/dev/null; then
            wait "$1"
            reaped=$?
            for p in "${started[@]}"; do
                [ "$p" = "$1" ] || rest+=("$p")
            done
            started=("${rest[@]}")
            return
        fi
        sleep 0.1
    done
}

ctl=("$ctl_bin" --run-dir "$tmp/ctl" --control "$control" --timeout 1000
     --curve-secret "$keys/admin.cert_secret" --curve-server "$keys/broker.cert")

#  s_shards N SECONDS: skickctl ps (CURVE, the admin key) lists N shards
#  within SECONDS; the list is left in $tmp/ps.json.
s_shards() {
    local deadline=$((SECONDS + $2))
    while [ $SECONDS -lt $deadline ]; do
        if "${ctl[@]}" --json ps > "$tmp/ps.json" 2> "$tmp/ps.err" &&
            "$python" -c 'import json,sys; sys.exit(len(json.load(open(sys.argv[1]))) != int(sys.argv[2]))' \
                "$tmp/ps.json" "$1" 2>/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    echo "    skickctl ps: $(cat "$tmp/ps.json" "$tmp/ps.err" 2>/dev/null | head -c 600)" >&2
    return 1
}

if [ $live = 1 ]; then
    s_start broker "$tmp/live.broker"
    s_start front "$tmp/live.front"
    s_start back "$tmp/live.back"
    s_check "live: skickctl (CURVE, admin key) lists the front and the back shard" \
        eval 's_shards 2 15 && "$python" -c "
import json, sys
roles = sorted(r for s in json.load(open(sys.argv[1])) for r in s[\"roles\"])
sys.exit(roles != [\"back\", \"front\"])" "$tmp/ps.json"'
    s_check "live: the control socket is owner-only (0600)" \
        eval '[ "$(stat -c %a "$run/control")" = 600 ]'

    kill -TERM "$pid_broker"
    s_check "live: the broker stops on SIGTERM with status 0" \
        eval 's_reap "$pid_broker" 10; [ "$reaped" = 0 ]'
    s_start broker "$tmp/live.broker"
    s_check "live: after a broker restart both shards rejoin by themselves" \
        eval 's_shards 2 20 && kill -0 "$pid_front" && kill -0 "$pid_back"'

    kill -STOP "$pid_back" 2>/dev/null
    sleep 2 # the example's loss timeout, moved to 1 s here, and a margin
    kill -CONT "$pid_back" 2>/dev/null
    s_check "live: a back shard declared lost exits with status 1 (Restart=on-failure)" \
        eval 's_reap "$pid_back" 15; [ "$reaped" = 1 ]'
    s_check "live: the broker logged the loss" \
        eval 'grep -qi "lost" "$tmp/broker.log"'

    kill -TERM "$pid_front"
    s_check "live: the front shard stops on SIGTERM with status 0" \
        eval 's_reap "$pid_front" 20; [ "$reaped" = 0 ]'
    kill -TERM "$pid_broker"
    s_check "live: the broker stops on SIGTERM with status 0" \
        eval 's_reap "$pid_broker" 10; [ "$reaped" = 0 ]'
else
    s_not_ok "live: could not prepare the keys and command lines"
fi
if [ $failed -gt 0 ]; then
    for f in "$tmp"/*.log; do
        [ -f "$f" ] || continue
        echo "---- $(basename "$f") (last lines)"
        tail -n 15 "$f"
    done
fi

echo "$passed passed, $failed failed"
[ $failed = 0 ]
