#!/usr/bin/env bash
#  browser_env.sh - make what the browser test needs (test_browser.js)
#
#  Usage: tests/integration/browser_env.sh BUILD_DIR
#  Installs, only when missing: Debian's chromium (/usr/bin/chromium), nodejs
#  and npm (apt-get, needs root), and playwright-core@1 under
#  BUILD_DIR/browser (npm, no browser download: the test drives
#  /usr/bin/chromium). Idempotent and quiet: on success it prints one line,
#  the NODE_PATH to run the test with; on failure it prints the tool's log on
#  stderr and exits non-zero (77 when something is missing and we are not root,
#  which ctest reports as skipped).
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
mkdir -p "$1"
build=$(cd "$1" && pwd)
dir="$build/browser"
mkdir -p "$dir"
log="$dir/env.log"
: >"$log"

s_fail() {
    echo "browser_env: $1 (log follows)" >&2
    cat "$log" >&2
    exit "${2:-1}"
}

# One at a time (two test trees may share the machine).
exec 9>"$dir/.lock"
flock -w 900 9 || s_fail "another browser_env.sh holds $dir/.lock"

updated=
s_apt_install() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "browser_env: missing $* and not root: cannot install" >&2
        exit 77
    fi
    if [ -z "$updated" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q update \
            >>"$log" 2>&1 || s_fail "apt-get update failed"
        updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -y -q install \
        --no-install-recommends "$@" >>"$log" 2>&1 || s_fail "apt-get install $* failed"
}

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
[ ${#missing[@]} -eq 0 ] || s_apt_install "${missing[@]}"
# Debian's nodejs comes without npm (NodeSource's has it): add it only then.
command -v npm >/dev/null 2>&1 || s_apt_install npm

# playwright-core 1.62 and later want node 20; Debian bookworm's nodejs is 18.
spec=playwright-core@1
[ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ] || spec=playwright-core@~1.61.0
if [ ! -f "$dir/node_modules/playwright-core/package.json" ]; then
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$dir" --no-audit --no-fund \
        --no-save --loglevel=error "$spec" >>"$log" 2>&1 ||
        s_fail "npm install $spec failed"
    [ -f "$dir/node_modules/playwright-core/package.json" ] ||
        s_fail "playwright-core is not in $dir/node_modules after npm install"
fi

echo "$dir/node_modules"
