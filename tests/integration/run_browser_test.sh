#!/usr/bin/env bash
#  run_browser_test.sh - ctest's integration_browser: make the environment
#  (browser_env.sh), then run test_browser.js with playwright-core on NODE_PATH
#
#  Usage: tests/integration/run_browser_test.sh BUILD_DIR
#  Exits with the test's status; 77 (ctest: skipped) when the environment
#  cannot be made because something is missing and we are not root.
set -uo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(cd "$1" && pwd) || exit 2

node_path=$(bash "$here/browser_env.sh" "$build")
rc=$?
if [ $rc -ne 0 ]; then
    [ $rc -eq 77 ] && echo "integration_browser: skipped (cannot install what it needs)"
    exit $rc
fi
export NODE_PATH="$node_path${NODE_PATH:+:$NODE_PATH}"
exec node "$here/test_browser.js" "$build"
