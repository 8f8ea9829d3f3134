#!/usr/bin/env bash
# The proposal's pipeline, end to end, with timings:
#
#   examples/demo.sh build/release        (what `make demo` runs)
#
# 1. starts pmmd with its embedded default config (pools `general`, shmem,
#    and `display`, sysv) on a private socket ($PMM_SOCKET);
# 2. starts Xvfb (3840x2160, MIT-SHM) when no DISPLAY is set;
# 3. decodes the shipped 4K test card, scales it to 1920x1080 and shows it:
#      pmm-jpegdec card.jpg --pool P | pmm-scale --to 1920x1080 | pmm-show
#    once through `display` (the X server attaches the block's SysV segment)
#    and once through `general` (the X server maps the pool's fd), and the
#    copying baseline (malloc + pipes + PutImage) the same way;
# 4. saves what the X server shows as PNGs under build/demo/ and prints the
#    per-stage timings (median of $RUNS runs) of all three side by side;
# 5. stops everything it started (trap EXIT).
set -euo pipefail

build=${1:-build/release}
runs=${RUNS:-5}
size=${SIZE:-1920x1080}
here=$(cd "$(dirname "$0")" && pwd)
image=${IMAGE:-$here/data/testcard-3840x2160.jpg}
out_dir=$(cd "$(dirname "$build")" && pwd)/demo

bin=$build/examples
pmmd=$build/src/daemon/pmmd
pmmctl=$build/tools/pmmctl/pmmctl
for f in "$bin/pmm-jpegdec" "$bin/pmm-scale" "$bin/pmm-show" "$bin/baseline-jpegdec" \
         "$bin/baseline-scale" "$bin/baseline-show" "$pmmd"; do
  if [ ! -x "$f" ]; then
    echo "demo: $f is missing; build first (make demo builds, or: make build)" >&2
    exit 1
  fi
done
[ -r "$image" ] || { echo "demo: cannot read the image $image" >&2; exit 1; }

tmp=$(mktemp -d /tmp/pmm-demo.XXXXXX)
pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- pmmd on a private socket ------------------------------------------------
export PMM_SOCKET=$tmp/pmm.sock
"$pmmd" --socket "$PMM_SOCKET" 2>"$tmp/pmmd.log" &
pids+=($!)
for _ in $(seq 100); do [ -S "$PMM_SOCKET" ] && break; sleep 0.05; done
if [ ! -S "$PMM_SOCKET" ]; then
  echo "demo: pmmd did not start; its log:" >&2; cat "$tmp/pmmd.log" >&2; exit 1
fi

# ---- an X server ---------------------------------------------------------------
if [ -z "${DISPLAY:-}" ]; then
  # -displayfd: Xvfb picks a free display number and writes it once it
  # accepts connections, so there is nothing to guess and no race.
  Xvfb -displayfd 3 -screen 0 3840x2160x24 +extension MIT-SHM -nolisten tcp \
    3>"$tmp/display" 2>"$tmp/xvfb.log" &
  pids+=($!)
  for _ in $(seq 200); do [ -s "$tmp/display" ] && break; sleep 0.05; done
  if [ ! -s "$tmp/display" ]; then
    echo "demo: Xvfb did not start; its log:" >&2; cat "$tmp/xvfb.log" >&2; exit 1
  fi
  export DISPLAY=:$(head -1 "$tmp/display")
  echo "demo: started Xvfb on $DISPLAY (3840x2160, MIT-SHM)"
else
  echo "demo: using the X display $DISPLAY"
fi
mkdir -p "$out_dir"

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# run_once NAME SCREENSHOT: one pipeline run; its stages' timing lines go to
# $tmp/NAME.timing (appended), the wall time to $tmp/NAME.wall.
run_once() {
  local name=$1 shot=$2 err=$tmp/$1.err
  local shot_args=()
  [ -n "$shot" ] && shot_args=(--screenshot "$shot")
  local start end
  start=$(now_ms)
  case $name in
    pmm-display|pmm-general)
      "$bin/pmm-jpegdec" "$image" --pool "${name#pmm-}" --timing 2>>"$err" |
        "$bin/pmm-scale" --to "$size" --timing 2>>"$err" |
        "$bin/pmm-show" --timing "${shot_args[@]}" 2>>"$err" >>"$tmp/$name.out" ;;
    baseline)
      "$bin/baseline-jpegdec" "$image" --timing 2>>"$err" |
        "$bin/baseline-scale" --to "$size" --timing 2>>"$err" |
        "$bin/baseline-show" --timing "${shot_args[@]}" 2>>"$err" >>"$tmp/$name.out" ;;
  esac
  end=$(now_ms)
  echo $((end - start)) >>"$tmp/$name.wall"
}

pipelines=(pmm-display pmm-general baseline)
for name in "${pipelines[@]}"; do
  shot=$out_dir/screen-$name.png
  [ "$name" = pmm-display ] && shot=$out_dir/screen.png
  # The first run warms caches and takes the screenshot; it is not timed.
  if ! run_once "$name" "$shot"; then
    echo "demo: the $name pipeline failed:" >&2; cat "$tmp/$name.err" >&2; exit 1
  fi
  : >"$tmp/$name.err"; : >"$tmp/$name.wall"
  for _ in $(seq "$runs"); do
    if ! run_once "$name" ""; then
      echo "demo: the $name pipeline failed:" >&2; cat "$tmp/$name.err" >&2; exit 1
    fi
  done
  grep '^timing ' "$tmp/$name.err" >"$tmp/$name.timing" || true
  echo "demo: $name: $(tail -1 "$tmp/$name.out")"
done

# median FILE: the median of the numbers in FILE, one per line.
median() { sort -g "$1" | awk '{v[NR]=$1} END {printf "%.1f", NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
# field NAME STAGE KEY: the median of KEY over the runs of one stage.
field() {
  grep "stage=$2 " "$tmp/$1.timing" | tr ' ' '\n' | sed -n "s/^$3=//p" >"$tmp/f"
  median "$tmp/f"
}
# sum NAME STAGES... KEYS: the sum of the medians.
sum() {
  local name=$1 stages=$2 keys=$3 total=0 st k
  for st in $stages; do
    for k in $keys; do total=$(awk -v a="$total" -v b="$(field "$name" "$st" "$k")" 'BEGIN {print a + b}'); done
  done
  printf "%.1f" "$total"
}
row() { printf "%-24s %14s %14s %14s\n" "$@"; }

echo
echo "${image##*/} (3840x2160) -> decode -> scale to $size -> show"
echo "milliseconds, median of $runs runs; each stage is its own process"
row "" "pmm display" "pmm general" "baseline"
row "" "(SysV shmid)" "(memfd fd)" "(copies)"
for stage in decode scale show; do
  for phase in setup in work out; do
    label="$stage $phase"
    case $stage.$phase in
      decode.in) label="decode in (read, alloc)" ;;
      decode.out) label="decode out (hand on)" ;;
      scale.in) label="scale in (get frame)" ;;
      show.in) label="show in (get frame)" ;;
      show.work) label="show work (to X)" ;;
    esac
    row "$label" "$(field pmm-display $stage ${phase}_ms)" "$(field pmm-general $stage ${phase}_ms)" \
      "$(field baseline $stage ${phase}_ms)"
  done
done
echo "------------------------------------------------------------------------"
for stage in decode scale show; do
  row "$stage (in+work+out)" "$(sum pmm-display $stage "in_ms work_ms out_ms")" \
    "$(sum pmm-general $stage "in_ms work_ms out_ms")" "$(sum baseline $stage "in_ms work_ms out_ms")"
done
all="decode scale show"
row "per frame (in+work+out)" "$(sum pmm-display "$all" "in_ms work_ms out_ms")" \
  "$(sum pmm-general "$all" "in_ms work_ms out_ms")" "$(sum baseline "$all" "in_ms work_ms out_ms")"
row "setup (once per process)" "$(sum pmm-display "$all" setup_ms)" \
  "$(sum pmm-general "$all" setup_ms)" "$(sum baseline "$all" setup_ms)"
row "wall, whole pipeline" "$(median "$tmp/pmm-display.wall")" "$(median "$tmp/pmm-general.wall")" \
  "$(median "$tmp/baseline.wall")"
echo "setup: connecting to pmmd / the X server, creating the window; in: getting the input"
echo "frame and the output memory; out: handing the frame on. The baseline's pipe transfer"
echo "shows in the producer's out and the consumer's in (they overlap). wall includes"
echo "process start-up and exit."
echo
echo "screenshots: $out_dir/screen.png (pmm, display), screen-pmm-general.png, screen-baseline.png"
if [ -x "$pmmctl" ]; then
  # Every stage has exited: the daemon must hold no block and no export.
  status_json=$("$pmmctl" --json status)
  if grep -qE '^  "blocks": 0,' <<<"$status_json" && grep -qE '^  "exports": 0,' <<<"$status_json"; then
    echo "pmmd after the runs: 0 blocks, 0 exports — every block went back to its pool"
  else
    echo "demo: pmmd still holds blocks or exports after every stage exited:" >&2
    "$pmmctl" status >&2
    exit 1
  fi
fi
