#!/usr/bin/env bash
# check_layers.sh [SOURCE_DIR] - fail on an include that goes up a layer.
#
# The tree is built in layers (issue 13; docs/internals/ has the picture):
# a folder may include headers of its own and of the folders below it,
# never of one above or beside it. Each rule below names a folder and the
# folders whose headers it may include by "name" (system and library
# headers in <...> are not checked). An include that names a header found
# only in a folder the rule does not allow is printed with its file and
# line, and the script exits 1. As more of node/ moves into layer folders,
# each gets its rule here.
set -euo pipefail
root=$(cd "${1:-$(dirname "$0")/..}" && pwd)

# folder            what it may include (besides itself)
rules=(
  "node/schema      include/skick/schema.h"
  "proto            include/skick/err.h include/skick/log.h"
  "broker           proto include/skick/err.h include/skick/log.h"
  "cli              proto include/skick"
  "node             node/schema proto include/skick"
)

# Every header of the tree by base name -> the folders that hold one.
declare -A where
while IFS= read -r h; do
  rel=${h#"$root"/}
  dir=$(dirname "$rel")
  base=$(basename "$rel")
  # include/skick/x.h is included as "skick/x.h"
  if [[ $dir == include/skick ]]; then base="skick/$base"; fi
  where[$base]+="$dir "
done < <(find "$root"/node "$root"/proto "$root"/broker "$root"/cli "$root"/include \
              -name '*.h' -not -path '*/www/*' | sort)

allowed() { # allowed RULE_TARGETS FOLDER HEADER_DIR HEADER_BASE
  local targets=$1 folder=$2 hdir=$3 hbase=$4
  [[ $hdir == "$folder" ]] && return 0
  for t in $targets; do
    if [[ $t == *.h ]]; then
      [[ "$hdir/$(basename "$hbase")" == "$t" ]] && return 0
    elif [[ $hdir == "$t" ]]; then
      return 0
    fi
  done
  return 1
}

bad=0
for rule in "${rules[@]}"; do
  read -r folder targets <<<"$rule"
  # node's rule covers node/ itself only: its layer folders have their own
  files=$(find "$root/$folder" -maxdepth 1 \( -name '*.c' -o -name '*.h' \) | sort)
  for f in $files; do
    while IFS=: read -r line inc; do
      name=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1/' <<<"$inc")
      dirs=${where[$name]:-}
      [[ -z $dirs ]] && continue # generated, or from a library
      ok=0
      for d in $dirs; do
        if allowed "$targets" "$folder" "$d" "$name"; then ok=1; fi
      done
      if [[ $ok == 0 ]]; then
        echo "${f#"$root"/}:$line: includes \"$name\" (in ${dirs% }): $folder may include only its own headers and: $targets"
        bad=1
      fi
    done < <(grep -n -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" || true)
  done
done
if [[ $bad == 0 ]]; then
  echo "layers: no include goes up (${#rules[@]} rules)"
fi
exit $bad
