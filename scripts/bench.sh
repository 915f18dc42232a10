#!/usr/bin/env bash
# The benchmark of issue 14 (docs/performance.md): skill-pool side by side with the anchors
# (nginx serving the same files, nginx → fcgiwrap → git http-backend serving the same repos),
# then publish and scale benchmarks, and one table of ratios (skill-pool / anchor).
#
#   scripts/bench.sh                       the full run (release build; about an hour, see docs/performance.md)
#   QUICK=1 scripts/bench.sh               smoke mode: short runs, small counts (a few minutes)
#   PROFILE=debug QUICK=1 scripts/bench.sh what CI runs (.ci/run): the debug binaries it already has
#
# Steps: build (release: `cargo build --release --bins` into $BENCH_TARGET_DIR) → copy the harness
# (../shared/bench, read-only: it is copied, never written) into the output folder → its setup.sh
# (apt: nginx, wrk, fcgiwrap, hyperfine) and gen-data.sh → a skill-pool-server on a fresh data dir on
# 127.0.0.1:<free port>, loaded by load-skill-pool.py → run-all.sh with TARGET_* (anchor and skill-pool
# in the same run) → single-client latency per git and catalogue request (curl, anchor vs skill-pool)
# → publish (fresh server) → scale (fresh server) → the table. Only loopback; every loop is bounded in
# count and time; servers are stopped on exit (trap), also on error or Ctrl-C.
#
# Environment (defaults in brackets):
#   QUICK [0]           1 = smoke mode: QUICK=1 for run-all.sh (3 s runs), SIZES=10 (the 10-entry catalogue),
#                       REPOS="small medium", CONCURRENCY="1 16", EXTRAS=0, scale at 10 and 100 tenants
#   PROFILE [release]   release | debug (debug: `cargo build --bins` into CARGO_TARGET_DIR, as CI has it)
#   BENCH_TARGET_DIR    [~/.cache/skill-pool/target-bench] the release build's target dir
#   BENCH_HARNESS       [<repo>/../shared/bench] the harness to copy
#   BENCH_OUT           [~/.cache/skill-pool/bench/out] where the run's folder <utc>[-quick] goes
#   BENCH_WORK          [~/.cache/skill-pool/bench/work] the harness's generated data and anchor state (kept)
#   SECTIONS            run-all.sh sections [marketplace replay clone upload-pack; QUICK: without upload-pack]
#   SCALE_LEVELS        [10 1000 10000; QUICK: 10 100]   SCALE_BUDGET_S [1800; QUICK: 60] loading time bound
#   PUBLISH_REPS [3; QUICK: 1]   PUBLISH_SMALL_N [1000; QUICK: 20]   LAT_RUNS [20; QUICK: 5]
#   QUIET_WAIT          the harness's wait for a quiet machine per measurement [300; QUICK: 0]
#   BENCH_KEEP_DATA [0] 1 = keep the servers' data dirs after a successful run (kept after a failed one)
# Output: <out>/ratios.md (the table; its path is the last line printed), <out>/all (run-all.sh's
# summary.md and raw files), <out>/*.json|tsv (latency, publish, scale, the server's memory during
# run-all.sh), <out>/*.log (servers, steps).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

QUICK=${QUICK:-0}
PROFILE=${PROFILE:-release}
CACHE=${SKILL_POOL_CACHE:-$HOME/.cache/skill-pool}
HARNESS_SRC=${BENCH_HARNESS:-$ROOT/../shared/bench}
export BENCH_WORK=${BENCH_WORK:-$CACHE/bench/work}
OUT=${BENCH_OUT:-$CACHE/bench/out}/$(date -u +%Y%m%dT%H%M%SZ)$([ "$QUICK" = 1 ] && echo -quick || true)
started_at=$SECONDS

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [ "$QUICK" = 1 ]; then
    export QUICK=1 QUIET_WAIT=${QUIET_WAIT:-0}
    export SIZES=${SIZES:-10} REPOS=${REPOS:-small medium} CONCURRENCY=${CONCURRENCY:-1 16} EXTRAS=${EXTRAS:-0}
    SECTIONS=${SECTIONS:-marketplace replay clone}
    SCALE_LEVELS=${SCALE_LEVELS:-10 100} SCALE_BUDGET_S=${SCALE_BUDGET_S:-60}
    PUBLISH_REPS=${PUBLISH_REPS:-1} PUBLISH_SMALL_N=${PUBLISH_SMALL_N:-20} LAT_RUNS=${LAT_RUNS:-5}
else
    SECTIONS=${SECTIONS:-marketplace replay clone upload-pack}
    SCALE_LEVELS=${SCALE_LEVELS:-10 1000 10000} SCALE_BUDGET_S=${SCALE_BUDGET_S:-1800}
    PUBLISH_REPS=${PUBLISH_REPS:-3} PUBLISH_SMALL_N=${PUBLISH_SMALL_N:-1000} LAT_RUNS=${LAT_RUNS:-20}
fi
export SCALE_LEVELS SCALE_BUDGET_S PUBLISH_REPS PUBLISH_SMALL_N LAT_RUNS SECTIONS PROFILE

[ -f "$HARNESS_SRC/run-all.sh" ] || die "no benchmark harness at $HARNESS_SRC (set BENCH_HARNESS)"
mkdir -p "$OUT"
log "output: $OUT"

# ---------------------------------------------------------------- build
case $PROFILE in
    release)
        export CARGO_TARGET_DIR=${BENCH_TARGET_DIR:-$CACHE/target-bench}
        log "cargo build --release --bins (target dir $CARGO_TARGET_DIR)"
        cargo build --release --bins --quiet
        BIN=$CARGO_TARGET_DIR/release/skill-pool-server ;;
    debug)
        export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CACHE/target}
        log "cargo build --bins (debug, target dir $CARGO_TARGET_DIR)"
        cargo build --bins --quiet
        BIN=$CARGO_TARGET_DIR/debug/skill-pool-server ;;
    *) die "PROFILE must be release or debug, not $PROFILE" ;;
esac
[ -x "$BIN" ] || die "no server binary at $BIN"

# ---------------------------------------------------------------- the harness (a copy)
H=$OUT/harness
cp -a "$HARNESS_SRC" "$H"
chmod -R u+w "$H"
rm -rf "$H/out"
. "$H/lib.sh"    # BENCH_DATA, ANCHOR_PORT, make_requests (the harness's own helpers)
log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
"$H/setup.sh" > "$OUT/setup.log" 2>&1 || die "the harness's setup.sh failed: $OUT/setup.log"
"$H/gen-data.sh" > "$OUT/gen-data.log" 2>&1 || die "the harness's gen-data.sh failed: $OUT/gen-data.log"

# ---------------------------------------------------------------- servers, cleaned up on exit
# The server's settings for the load: no rate limits, git slots above the harness's 16 clients, and
# logs at warn (nginx runs with access_log off). Nothing else from the caller's environment.
for v in $(env | sed -n 's/^\(SKILL_POOL_[A-Z0-9_]*\)=.*/\1/p'); do
    case $v in SKILL_POOL_TEST_*|SKILL_POOL_CACHE) ;; *) unset "$v" ;; esac
done
export SKILL_POOL_RATE_LIMIT_PER_MIN=0 SKILL_POOL_AUTH_FAILURES_PER_MIN=0 \
    SKILL_POOL_GIT_MAX_CONCURRENT=256 SKILL_POOL_GIT_MAX_PER_ADDRESS=256 \
    SKILL_POOL_LOG=${BENCH_SERVER_LOG:-warn}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

SERVER_PID="" anchor_started=0 helper_pid=""
cleanup() {
    local rc=$?
    [ -n "$helper_pid" ] && kill -TERM "$helper_pid" 2>/dev/null && wait "$helper_pid" 2>/dev/null
    stop_server
    [ "$anchor_started" = 1 ] && "$H/anchor-server.sh" stop >> "$OUT/anchor.log" 2>&1
    if [ "$rc" != 0 ]; then
        log "failed (exit $rc) after $((SECONDS - started_at)) s; logs and data in $OUT"
    elif [ "${BENCH_KEEP_DATA:-0}" != 1 ]; then
        # the servers' data dirs (GBs after a full scale run); the results stay
        rm -rf "$OUT/server-data" "$OUT/publish-data" "$OUT/publish-work" "$OUT/scale-data" "$OUT/scale-work"
    fi
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_server DATA_DIR LOG: a server of its own session (so its git children go with it); sets
# SERVER_PID and URL, waits (≤ 120 s) for /readyz.
start_server() {
    local data=$1 logf=$2 port i
    port=$(free_port)
    URL=http://127.0.0.1:$port
    SKILL_POOL_DATA_DIR=$data SKILL_POOL_BIND=127.0.0.1:$port \
        setsid "$BIN" serve </dev/null >>"$logf" 2>&1 &
    SERVER_PID=$!
    for i in $(seq 1200); do
        curl -fs -o /dev/null "$URL/readyz" && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || die "the server exited at start: $logf"
        sleep 0.1
    done
    die "the server was not ready within 120 s: $logf"
}
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    local i
    kill -TERM -- "-$SERVER_PID" 2>/dev/null || true
    for i in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# ---------------------------------------------------------------- skill-pool loaded with the harness's data
start_server "$OUT/server-data" "$OUT/server.log"
log "skill-pool-server $URL (pid $SERVER_PID); loading the harness's data (load-skill-pool.py)"
t0=$SECONDS
python3 "$H/load-skill-pool.py" "$BIN" "$URL" "$OUT/server-data" "$BENCH_DATA" > "$OUT/targets.env" 2> "$OUT/load.log" \
    || die "load-skill-pool.py failed: $OUT/load.log"
log "loaded in $((SECONDS - t0)) s"
while IFS='=' read -r k v; do
    case $k in TARGET_URL|TARGET_MKT_PATH|TARGET_GIT_PATH) export "$k=$v" ;; esac
done < "$OUT/targets.env"
export TARGET_PIDS=$SERVER_PID
[ -n "${TARGET_GIT_PATH:-}" ] || die "load-skill-pool.py printed no TARGET_GIT_PATH: $OUT/targets.env"

if ! "$H/anchor-server.sh" status | grep -q 'nginx [0-9]* up'; then
    "$H/anchor-server.sh" start >> "$OUT/anchor.log" 2>&1 || die "the anchor did not start: $OUT/anchor.log"
    anchor_started=1
fi
ANCHOR=http://127.0.0.1:$ANCHOR_PORT

# ---------------------------------------------------------------- run-all.sh: anchors and skill-pool, same run
# The server's memory under the run's load (goal 6): its RSS now, and its peak during run-all.sh (the
# peak is reset first — `5 > clear_refs` — so that the loading's own peak is not counted).
status_kib() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$SERVER_PID/status"; }
rss_loaded=$(status_kib VmRSS)
peak_reset=true
{ echo 5 > "/proc/$SERVER_PID/clear_refs"; } 2>/dev/null || peak_reset=false
log "run-all.sh (sections: $SECTIONS)"
t0=$SECONDS
SECTIONS=$SECTIONS "$H/run-all.sh" > "$OUT/run-all.log" 2>&1 || die "run-all.sh failed: $OUT/run-all.log"
ALL=$(ls -d "$H"/out/*-all | tail -n 1)
ln -s "$ALL" "$OUT/all"
log "run-all.sh done in $((SECONDS - t0)) s: $OUT/all/summary.md"
printf '{"rss_loaded_kib": %s, "peak_kib": %s, "rss_after_kib": %s, "peak_reset": %s}\n' \
    "$rss_loaded" "$(status_kib VmHWM)" "$(status_kib VmRSS)" "$peak_reset" > "$OUT/memory.json"
log "server RSS: $((rss_loaded / 1024)) MiB after loading, peak $(($(status_kib VmHWM) / 1024)) MiB during run-all.sh"

# ---------------------------------------------------------------- one client: latency per request
# curl, one request at a time on a fresh loopback connection (time_total: connect to last byte).
# The three requests of a depth-1 clone (what the issue's "~40 ms per git request" was about) and
# the catalogue (gzip, as Claude Code asks for it).
log "single-client latency per request ($LAT_RUNS runs each)"
printf 'side\twhat\trepo\trun\tms\n' > "$OUT/latency.tsv"
lat_repos=$(awk -F'\t' 'NR>1 && ($1=="small" || $1=="medium") {print $1}' "$BENCH_DATA/repos.tsv")
for side in anchor target; do
    for slug in $lat_repos; do
        tag=$(awk -F'\t' -v s="$slug" '$1==s{print $2}' "$BENCH_DATA/repos.tsv")
        if [ "$side" = anchor ]; then
            u=$ANCHOR/git/plugins/$slug.git; src=$BENCH_DATA/git/plugins/$slug.git
        else
            pat='{slug}'; u=$TARGET_URL${TARGET_GIT_PATH//"$pat"/$slug}; src=$u
        fi
        rq=$OUT/lat-req/$side-$slug
        make_requests "$src" "$tag" "$rq"
        for run in $(seq "$LAT_RUNS"); do
            for what in info-refs ls-refs fetch; do
                case $what in
                    info-refs) args=(-H 'Git-Protocol: version=2' "$u/info/refs?service=git-upload-pack") ;;
                    ls-refs) args=(-H 'Git-Protocol: version=2' -H 'Content-Type: application/x-git-upload-pack-request'
                                   --data-binary @"$rq/lsrefs.req" "$u/git-upload-pack") ;;
                    fetch) args=(-H 'Git-Protocol: version=2' -H 'Content-Type: application/x-git-upload-pack-request'
                                 --data-binary @"$rq/fetch.req" "$u/git-upload-pack") ;;
                esac
                ms=$(curl -fsS --max-time 30 -o /dev/null -w '%{time_total}' "${args[@]}" | awk '{printf "%.3f", $1 * 1000}') \
                    || die "$side $what $slug: request failed ($u)"
                printf '%s\t%s\t%s\t%s\t%s\n' "$side" "$what" "$slug" "$run" "$ms" >> "$OUT/latency.tsv"
            done
        done
    done
    n=${SIZES:-10}; n=${n%% *}; pat='{N}'
    if [ "$side" = anchor ]; then u=$ANCHOR/tz/bench-$n/marketplace.json; else u=$TARGET_URL${TARGET_MKT_PATH//"$pat"/$n}; fi
    for run in $(seq "$LAT_RUNS"); do
        ms=$(curl -fsS --max-time 30 -o /dev/null -H 'Accept-Encoding: gzip, compress, deflate, br' -w '%{time_total}' "$u" \
            | awk '{printf "%.3f", $1 * 1000}') || die "$side catalogue: request failed ($u)"
        printf '%s\t%s\t%s\t%s\t%s\n' "$side" "catalogue-gzip" "bench-$n" "$run" "$ms" >> "$OUT/latency.tsv"
    done
done
stop_server
if [ "$anchor_started" = 1 ]; then "$H/anchor-server.sh" stop >> "$OUT/anchor.log" 2>&1; anchor_started=0; fi

# ---------------------------------------------------------------- publish and scale (fresh servers each)
log "publish benchmark (reps $PUBLISH_REPS, $PUBLISH_SMALL_N one-skill plugins)"
t0=$SECONDS
python3 "$ROOT/scripts/bench/bench.py" publish "$BIN" "$OUT" "$BENCH_DATA" > "$OUT/publish.log" 2>&1 &
helper_pid=$!
wait "$helper_pid" || { helper_pid=""; die "publish benchmark failed: $OUT/publish.log"; }
helper_pid=""
log "publish done in $((SECONDS - t0)) s"

log "scale benchmark (levels $SCALE_LEVELS tenants, loading bounded by $SCALE_BUDGET_S s)"
t0=$SECONDS
python3 "$ROOT/scripts/bench/bench.py" scale "$BIN" "$OUT" > "$OUT/scale.log" 2>&1 &
helper_pid=$!
wait "$helper_pid" || { helper_pid=""; die "scale benchmark failed: $OUT/scale.log"; }
helper_pid=""
log "scale done in $((SECONDS - t0)) s"

# ---------------------------------------------------------------- the table
python3 "$ROOT/scripts/bench/bench.py" report "$OUT" > "$OUT/report.log" 2>&1 \
    || { cat "$OUT/report.log" >&2; die "the report found missing results: $OUT/report.log"; }
log "done in $((SECONDS - started_at)) s"
echo "$OUT/ratios.md"
