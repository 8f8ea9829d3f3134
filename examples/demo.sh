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
# 5. streams $FRAMES frames (the card panned 16x8 pixels per frame) through
#    the long-lived stages — pmm-stream-decode | pmm-stream-scale |
#    pmm-stream-show over a ring of blocks shared once, and the copying
#    baseline-stream-* through pipes — and prints frames/s, CPU per frame and
#    each stage's overhead side by side;
# 6. stops everything it started (trap EXIT).
set -euo pipefail

build=${1:-build/release}
runs=${RUNS:-5}
frames=${FRAMES:-120}
# JPEG=K: the first streaming stage decodes a JPEG per frame (K panned frames
# encoded at start) instead of panning the once-decoded card.
jpeg=${JPEG:-0}
size=${SIZE:-1920x1080}
here=$(cd "$(dirname "$0")" && pwd)
image=${IMAGE:-$here/data/testcard-3840x2160.jpg}
out_dir=$(cd "$(dirname "$build")" && pwd)/demo

bin=$build/examples
pmmd=$build/src/daemon/pmmd
pmmctl=$build/tools/pmmctl/pmmctl
for f in "$bin/pmm-jpegdec" "$bin/pmm-scale" "$bin/pmm-show" "$bin/baseline-jpegdec" \
         "$bin/baseline-scale" "$bin/baseline-show" "$bin/pmm-stream-decode" \
         "$bin/pmm-stream-scale" "$bin/pmm-stream-show" "$bin/baseline-stream-decode" \
         "$bin/baseline-stream-scale" "$bin/baseline-stream-show" "$pmmd"; do
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
xvfb_pid=
if [ -z "${DISPLAY:-}" ]; then
  # -displayfd: Xvfb picks a free display number and writes it once it
  # accepts connections, so there is nothing to guess and no race.
  Xvfb -displayfd 3 -screen 0 3840x2160x24 +extension MIT-SHM -nolisten tcp \
    3>"$tmp/display" 2>"$tmp/xvfb.log" &
  pids+=($!)
  xvfb_pid=$!
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
# ---- streaming: N frames through long-lived stages -----------------------------
# x_ticks: the X server's CPU (utime + stime, clock ticks), when we started it.
x_ticks() {
  if [ -n "$xvfb_pid" ]; then awk '{print $14 + $15}' "/proc/$xvfb_pid/stat"; else echo 0; fi
}
# stream_once NAME: one streaming run; stage lines to $tmp/stream-NAME.err.
stream_once() {
  local name=$1 err=$tmp/stream-$1.err x0 x1 start end
  : >"$err"
  x0=$(x_ticks)
  start=$(now_ms)
  case $name in
    pmm-display|pmm-general)
      # The 4K ring (3 x 33 MB) lives in `general` either way: the default
      # `display` pool (64 MiB) holds the 1080p ring, which the X server reads.
      "$bin/pmm-stream-decode" "$image" --frames "$frames" --jpeg "$jpeg" \
        --out "$tmp/decode.sock" --stats \
        2>>"$err" &
      local dec=$!
      "$bin/pmm-stream-scale" --in "$tmp/decode.sock" --out "$tmp/scale.sock" --to "$size" \
        --pool "${name#pmm-}" --stats 2>>"$err" &
      local sc=$!
      local st=0
      "$bin/pmm-stream-show" --in "$tmp/scale.sock" --stats 2>>"$err" >>"$tmp/stream-$name.out" || st=$?
      wait "$dec" || st=$?
      wait "$sc" || st=$?
      [ "$st" = 0 ] || return 1 ;;
    baseline)
      "$bin/baseline-stream-decode" "$image" --frames "$frames" --jpeg "$jpeg" --stats 2>>"$err" |
        "$bin/baseline-stream-scale" --to "$size" --stats 2>>"$err" |
        "$bin/baseline-stream-show" --stats 2>>"$err" >>"$tmp/stream-$name.out" ;;
  esac
  end=$(now_ms)
  x1=$(x_ticks)
  echo $((end - start)) >"$tmp/stream-$name.wall"
  echo $(( (x1 - x0) * 1000 / $(getconf CLK_TCK) )) >"$tmp/stream-$name.xcpu"
}
for name in "${pipelines[@]}"; do
  if ! stream_once "$name"; then
    echo "demo: the streaming $name pipeline failed:" >&2; cat "$tmp/stream-$name.err" >&2; exit 1
  fi
  echo "demo: streaming $name: $(tail -1 "$tmp/stream-$name.out")"
done

# sval NAME STAGE KEY: KEY of a stage's 'stream' line.
sval() { grep "^stream stage=$2 " "$tmp/stream-$1.err" | tr ' ' '\n' | sed -n "s/^$3=//p" | head -1; }
# per NAME STAGE EXPR: an awk expression over cpu, work, frames, minflt, per frame.
per() {
  awk -v cpu="$(sval "$1" "$2" cpu_ms)" -v work="$(sval "$1" "$2" work_cpu_ms)" \
      -v n="$(sval "$1" "$2" frames)" -v flt="$(sval "$1" "$2" minflt)" "BEGIN {printf \"%.2f\", $3}"
}
# fps NAME: steady-state frames/s at the display stage.
fps() { awk -v n="$(sval "$1" show frames)" -v s="$(sval "$1" show span_ms)" 'BEGIN {printf "%.1f", (n - 1) * 1000 / s}'; }
total() {  # total NAME EXPR: the sum over the three stages
  local t=0 st
  for st in decode scale show; do t=$(awk -v a="$t" -v b="$(per "$1" "$st" "$2")" 'BEGIN {print a + b}'); done
  printf "%.2f" "$t"
}
echo
how="panned 16x8 px per frame"
[ "$jpeg" != 0 ] && how="panned, decoded from JPEG each frame ($jpeg encoded)"
echo "streaming $frames frames: ${image##*/} $how (3840x2160) -> scale to"
echo "$size -> show; each stage its own long-lived process; pmm: rings of 3 blocks shared once,"
echo "one message per frame; baseline: every frame through pipes and the X socket"
row "" "pmm display" "pmm general" "baseline"
row "" "(SysV shmid)" "(memfd fd)" "(copies)"
row "frames/s (steady state)" "$(fps pmm-display)" "$(fps pmm-general)" "$(fps baseline)"
row "frame time, ms" "$(awk -v f="$(fps pmm-display)" 'BEGIN {printf "%.2f", 1000 / f}')" \
  "$(awk -v f="$(fps pmm-general)" 'BEGIN {printf "%.2f", 1000 / f}')" \
  "$(awk -v f="$(fps baseline)" 'BEGIN {printf "%.2f", 1000 / f}')"
for stage in decode scale show; do
  label=$stage; [ "$stage" = decode ] && label="decode"; [ "$stage$jpeg" = decode0 ] && label="decode (pan)"; [ "$stage" = show ] && label="show (draw)"
  row "$label CPU/frame, ms" "$(per pmm-display $stage "cpu / n")" "$(per pmm-general $stage "cpu / n")" \
    "$(per baseline $stage "cpu / n")"
  row "  of it: work" "$(per pmm-display $stage "work / n")" "$(per pmm-general $stage "work / n")" \
    "$(per baseline $stage "work / n")"
  row "  of it: overhead" "$(per pmm-display $stage "(cpu - work) / n")" \
    "$(per pmm-general $stage "(cpu - work) / n")" "$(per baseline $stage "(cpu - work) / n")"
done
row "all stages CPU/frame, ms" "$(total pmm-display "cpu / n")" "$(total pmm-general "cpu / n")" \
  "$(total baseline "cpu / n")"
row "all stages overhead, ms" "$(total pmm-display "(cpu - work) / n")" \
  "$(total pmm-general "(cpu - work) / n")" "$(total baseline "(cpu - work) / n")"
ovh_pct() { awk -v o="$(total "$1" "(cpu - work) / n")" -v f="$(fps "$1")" 'BEGIN {printf "%.1f%%", o * f / 10}'; }
row "overhead / frame time" "$(ovh_pct pmm-display)" "$(ovh_pct pmm-general)" "$(ovh_pct baseline)"
row "page faults/frame" "$(total pmm-display "flt / n")" "$(total pmm-general "flt / n")" \
  "$(total baseline "flt / n")"
if [ -n "$xvfb_pid" ]; then
  xper() { awk -v x="$(cat "$tmp/stream-$1.xcpu")" -v n="$frames" 'BEGIN {printf "%.2f", x / n}'; }
  row "X server CPU/frame, ms" "$(xper pmm-display)" "$(xper pmm-general)" "$(xper baseline)"
fi
row "wall, $frames frames, ms" "$(cat "$tmp/stream-pmm-display.wall")" \
  "$(cat "$tmp/stream-pmm-general.wall")" "$(cat "$tmp/stream-baseline.wall")"
echo "CPU: getrusage of each stage over the frames (setup excluded); work: the thread's CPU in"
echo "making the frame (pan), scaling (libyuv) or drawing (PutImage / ShmPutImage + sync);"
echo "overhead = CPU - work: handing frames on, notifications, copies, page faults. frames/s"
echo "and frame time from the display stage's first to last frame."
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
