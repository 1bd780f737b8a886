#!/usr/bin/env bash
# check_layers.sh [SOURCE_DIR [BUILD_DIR]] - fail on an include or a call that
# goes up a layer.
#
# The tree is built in layers (issue 13; docs/internals/ has the picture):
# a folder may include headers of its own and of the folders below it,
# never of one above or beside it. Each rule below names a folder and the
# folders whose headers it may include by "name" (system and library
# headers in <...> are not checked). An include that names a header found
# only in a folder the rule does not allow is printed with its file and
# line, and the script exits 1.
#
# With a BUILD_DIR, calls are checked too: node/'s folders are ranked from the
# bottom up (node_order below), and a symbol that an object file of a lower
# folder uses but an object of a higher folder defines is printed (nm), the
# way an upward include is. That catches what an include check cannot: a
# function declared by hand, or a table filled in the wrong direction.
set -euo pipefail
root=$(cd "${1:-$(dirname "$0")/..}" && pwd)

# folder            what it may include (besides itself)
rules=(
  "node/schema      include/skick/schema.h"
  "proto            include/skick/err.h include/skick/log.h"
  "broker           proto include/skick/err.h include/skick/log.h"
  "cli              proto include/skick"
  "node/core        include/skick"
  "node/actor       node/core proto include/skick"
  "node/redis       node/actor node/core proto include/skick"
  "node/ws          node/actor node/core proto include/skick"
  "node/cluster     node/ws node/actor node/core proto include/skick"
  "node             node/cluster node/ws node/redis node/actor node/core node/schema proto include/skick"
  "bridge           node node/cluster node/ws node/redis node/actor node/core node/schema proto include/skick"
  "tools            include/skick"
)

# node/'s folders from the bottom up, for the call check.
node_order=(node/schema node/core node/actor node/redis node/ws node/cluster node)

# Every header of the tree by base name -> the folders that hold one.
declare -A where
while IFS= read -r h; do
  rel=${h#"$root"/}
  dir=$(dirname "$rel")
  base=$(basename "$rel")
  # include/skick/x.h is included as "skick/x.h"
  if [[ $dir == include/skick ]]; then base="skick/$base"; fi
  where[$base]+="$dir "
done < <(find "$root"/node "$root"/proto "$root"/broker "$root"/cli "$root"/bridge "$root"/tools "$root"/include \
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

# The call check, on the objects of libskick's layers (BUILD_DIR given).
build=${2:-}
if [[ -n $build ]]; then
  declare -A rank defined_in
  for i in "${!node_order[@]}"; do rank[${node_order[$i]}]=$i; done
  objs=()
  # An object's path under <target>.dir/ is its source's path under the
  # target's folder; objects whose source is gone (a stale build) are skipped.
  while IFS= read -r o; do
    rel=${o#*.dir/}
    rel=${rel%.o}
    dir=$(dirname "$o" | sed -E 's|/CMakeFiles/[^/]+\.dir(/.*)?$||')
    src_dir=${dir#"$build"/}
    src="$root/$src_dir/$rel"
    [[ -f $src ]] || continue
    folder=$(dirname "$src_dir/$rel")
    [[ -n ${rank[$folder]:-} ]] || continue
    objs+=("$folder:$o")
  done < <(find "$build/node" -path '*/CMakeFiles/*' -name '*.c.o' | sort)
  if [[ ${#objs[@]} == 0 ]]; then
    echo "layers: no object files of node/ under $build (build first)"
    exit 1
  fi
  for fo in "${objs[@]}"; do
    folder=${fo%%:*}
    while read -r _ sym; do defined_in[$sym]=$folder; done \
      < <(nm --defined-only "${fo#*:}" | awk '$2 ~ /^[TDBRV]$/ {print $2, $3}')
  done
  ncalls=0
  for fo in "${objs[@]}"; do
    folder=${fo%%:*}
    o=${fo#*:}
    while read -r sym; do
      def=${defined_in[$sym]:-}
      [[ -z $def ]] && continue
      ncalls=$((ncalls + 1))
      if (( ${rank[$def]} > ${rank[$folder]} )); then
        echo "${o#"$build"/}: uses $sym from $def: $folder is below $def"
        bad=1
      fi
    done < <(nm --undefined-only "$o" | awk '{print $2}')
  done
  if [[ $bad == 0 ]]; then
    echo "layers: no call goes up ($ncalls uses across ${#objs[@]} objects of node/)"
  fi
fi
exit $bad
