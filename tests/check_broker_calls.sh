#!/usr/bin/env bash
# check_broker_calls.sh BUILD_DIR - fail on a call that goes up inside broker/.
#
# skick-broker's files are layered (docs/internals/layers.md, "Inside
# broker/"): main wires everything up, route decides what happens to each
# envelope, and the modules below it are told. A file may call functions of
# its own and of files on a lower level, never of one on its own level or
# above: a lower file that must make a higher one act returns what happened
# (or goes through a table the higher one registered). The check reads the
# built objects of skick-broker with nm: every undefined symbol that another
# broker object defines is a cross-file call (or a use of its data), and is
# printed with both files when it does not go down. The includes of
# broker/*.c are held to the same levels (broker_state.h, the shared state,
# is for everyone; the umbrella broker.h for level 0 only). A broker_*.c
# without a level below fails too, so that a new file gets its place.
set -euo pipefail
build=${1:?usage: check_broker_calls.sh BUILD_DIR [SOURCE_DIR]}
src=$(cd "${2:-$(dirname "$0")/..}" && pwd)

# level  files (0 is the top; a file calls only files on a higher number)
levels=(
  "0 broker_main"
  "1 broker_route broker_metrics"
  "2 broker_peers broker_control"
  "3 broker_dir"
  "4 broker_net"
  "5 broker_auth broker_hash broker_redis"
  "6 broker_util"
)

declare -A level
for row in "${levels[@]}"; do
  read -r n files <<<"$row"
  for f in $files; do level[$f]=$n; done
done

mapfile -t objs < <(find "$build" -path '*skick-broker.dir*' -name 'broker_*.o' | sort)
if [[ ${#objs[@]} == 0 ]]; then
  echo "no skick-broker objects under $build: build skick-broker first"
  exit 1
fi

bad=0
declare -A owner # symbol -> the file that defines it
for o in "${objs[@]}"; do
  f=$(basename "$o")
  f=${f%%.*}
  if [[ -z ${level[$f]:-} ]]; then
    echo "$f.c has no level in tests/check_broker_calls.sh: give it one"
    bad=1
    continue
  fi
  while read -r sym; do owner[$sym]=$f; done < <(nm --defined-only -g "$o" | awk '{print $3}')
done

calls=0
for o in "${objs[@]}"; do
  f=$(basename "$o")
  f=${f%%.*}
  [[ -z ${level[$f]:-} ]] && continue
  while read -r sym; do
    to=${owner[$sym]:-}
    [[ -z $to || $to == "$f" ]] && continue # a library's, or its own
    calls=$((calls + 1))
    if ((level[$to] <= level[$f])); then
      echo "$f.c uses $sym of $to.c (level ${level[$to]}): $f.c (level ${level[$f]}) may use only lower levels"
      bad=1
    fi
  done < <(nm --undefined-only "$o" | awk '{print $2}')
done
for c in "$src"/broker/broker_*.c; do
  f=$(basename "$c" .c)
  [[ -z ${level[$f]:-} ]] && continue
  while IFS=: read -r line inc; do
    h=$(sed -E 's/.*"(broker[a-z_]*)\.h".*/\1/' <<<"$inc")
    case $h in
    broker_state | "$f") continue ;;
    broker) to=broker_main ;;
    *) to=$h ;;
    esac
    [[ $to == "$f" ]] && continue
    if [[ -z ${level[$to]:-} ]] || ((level[$to] <= level[$f])); then
      echo "broker/$f.c:$line: includes $h.h: $f.c (level ${level[$f]}) may include only lower levels"
      bad=1
    fi
  done < <(grep -n -E '^#include "broker[a-z_]*\.h"' "$c" || true)
done

if [[ $bad == 0 ]]; then
  echo "broker calls: all $calls cross-file uses go down (${#objs[@]} files, ${#levels[@]} levels)"
fi
exit $bad
