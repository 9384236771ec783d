#!/usr/bin/env bash
# Runs every benchmark of BENCHMARKS.md and prints the tables.
#
#   scripts/bench.sh            # build, micro benches, load tests, table
#   SKIP_MICRO=1 scripts/bench.sh   # load tests only (reuses criterion results)
#   SKIP_LOAD=1 scripts/bench.sh    # micro benches only
#
# Settings (environment): CARGO_TARGET_DIR (default ./target), DURATION (wrk
# seconds per run, default 8), ROUNDS (runs per server, median kept, default 3),
# CONNECTIONS (default 32), THREADS (wrk threads, default 1), BASE_PORT (28480).
# Load tests talk to 127.0.0.1 only.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
TARGET=$CARGO_TARGET_DIR
DURATION=${DURATION:-8}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
BASE_PORT=${BASE_PORT:-28480}
OUT=$TARGET/bench-results
mkdir -p "$OUT"

log() { printf '==> %s\n' "$*" >&2; }

if [[ -z ${SKIP_LOAD:-} ]] && ! command -v wrk >/dev/null; then
    log "installing wrk"
    if [[ $(id -u) -eq 0 ]]; then
        apt-get install -y wrk >/dev/null || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
    else
        sudo apt-get install -y wrk >/dev/null
    fi
fi

log "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"

log "building (release)"
cargo bench --no-run -p tower-principal-bench >/dev/null 2>&1
cargo build --release -p ecommerce -p tower-principal-bench --bins >/dev/null 2>&1
(cd bench-peers && cargo build --release --bins >/dev/null 2>&1 && cargo bench --no-run >/dev/null 2>&1)

if [[ -z ${SKIP_MICRO:-} ]]; then
    log "micro benches: ours"
    cargo bench -p tower-principal-bench --bench auth 2>/dev/null | grep -E '^[a-z0-9]+/|time:' || true
    log "micro benches: peers"
    (cd bench-peers && cargo bench 2>/dev/null | grep -E '^[a-z0-9]+/|time:') || true
fi

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

wait_for() { # url
    for _ in $(seq 1 100); do
        curl -fs -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "server at $1 did not come up" >&2
    return 1
}

if [[ -z ${SKIP_LOAD:-} ]]; then
    BIN=$TARGET/release
    PEERS=$TARGET/release # bench-peers shares the target dir
    P_ECOM=$BASE_PORT
    P_OURS=$((BASE_PORT + 1))
    P_CACHE=$((BASE_PORT + 2))
    P_JA=$((BASE_PORT + 3))
    P_AJA=$((BASE_PORT + 4))

    for port in $(seq "$BASE_PORT" $((BASE_PORT + 4))); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "port $port is taken; set BASE_PORT to a free range of 5 ports" >&2
            exit 1
        fi
    done
    log "starting the example (demo issuer embedded)"
    "$BIN/ecommerce" --listen "127.0.0.1:$P_ECOM" >"$OUT/ecommerce.out" 2>"$OUT/ecommerce.err" &
    PIDS+=($!)
    for _ in $(seq 1 100); do grep -q '^ready' "$OUT/ecommerce.out" 2>/dev/null && break; sleep 0.1; done
    TOKEN=$(sed -n "s/^export ALICE_TOKEN='\(.*\)'$/\1/p" "$OUT/ecommerce.out")
    NO_SCOPE=$(sed -n "s/^export NO_SCOPE_TOKEN='\(.*\)'$/\1/p" "$OUT/ecommerce.out")
    ISSUER=$(sed -n 's/^ *demo issuer *: \([^ ]*\) .*/\1/p' "$OUT/ecommerce.out")
    JWKS="$ISSUER/jwks.json"
    [[ -n $TOKEN && -n $ISSUER ]] || { echo "could not read the demo banner" >&2; exit 1; }
    log "issuer $ISSUER; every server below trusts its JWKS and gets the same ES256 token"

    "$BIN/bench-server" --listen "127.0.0.1:$P_OURS" --issuer "$ISSUER" --jwks-uri "$JWKS" >/dev/null 2>&1 &
    PIDS+=($!)
    "$BIN/bench-server" --listen "127.0.0.1:$P_CACHE" --issuer "$ISSUER" --jwks-uri "$JWKS" --cache >/dev/null 2>&1 &
    PIDS+=($!)
    "$PEERS/peer-jwt-authorizer" --listen "127.0.0.1:$P_JA" --issuer "$ISSUER" --jwks-uri "$JWKS" >/dev/null 2>&1 &
    PIDS+=($!)
    "$PEERS/peer-axum-jwt-auth" --listen "127.0.0.1:$P_AJA" --issuer "$ISSUER" --jwks-uri "$JWKS" --alg ES256 >/dev/null 2>&1 &
    PIDS+=($!)

    TARGETS=(
        "example_healthz|http://127.0.0.1:$P_ECOM/healthz|open"
        "example_orders|http://127.0.0.1:$P_ECOM/orders|auth"
        "ours_orders|http://127.0.0.1:$P_OURS/orders|auth"
        "ours_cached_orders|http://127.0.0.1:$P_CACHE/orders|auth"
        "jwt_authorizer_orders|http://127.0.0.1:$P_JA/orders|auth"
        "axum_jwt_auth_orders|http://127.0.0.1:$P_AJA/orders|auth"
    )

    log "sanity: every protected route refuses no token / no scope and accepts the token"
    for entry in "${TARGETS[@]}"; do
        IFS='|' read -r name url kind <<<"$entry"
        wait_for "${url%/*}/healthz"
        ok=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$url")
        [[ $ok == 200 ]] || { echo "$name: token got $ok" >&2; exit 1; }
        if [[ $kind == auth ]]; then
            none=$(curl -s -o /dev/null -w '%{http_code}' "$url")
            scope=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $NO_SCOPE" "$url")
            [[ $none == 401 && $scope == 403 ]] || { echo "$name: no token $none, no scope $scope" >&2; exit 1; }
        fi
    done

    log "load: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $ROUNDS rounds, servers interleaved"
    rm -f "$OUT"/wrk-*.txt
    for round in $(seq 1 "$ROUNDS"); do
        for entry in "${TARGETS[@]}"; do
            IFS='|' read -r name url _ <<<"$entry"
            wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency \
                -H "Authorization: Bearer $TOKEN" "$url" >"$OUT/wrk-$name-$round.txt"
            log "  round $round $name: $(grep 'Requests/sec' "$OUT/wrk-$name-$round.txt")"
        done
    done
fi

log "tables"
python3 - "$TARGET" <<'PY'
import glob, json, os, re, statistics, sys

target = sys.argv[1]
crit = os.path.join(target, "criterion")
out = os.path.join(target, "bench-results")

def est(group, name):
    path = os.path.join(crit, group, name, "new", "estimates.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        data = json.load(f)
    return data["median"]["point_estimate"] / 1000.0  # ns -> µs

def fmt(v, unit=""):
    return "n/a" if v is None else f"{v:.2f}{unit}"

print("\n### Micro (criterion medians, µs; ratios against (a) in the same run)\n")
print("| alg | (a) raw jsonwebtoken | (b) JwtValidator | (c) layers | (d) no auth | (e) cache hit "
      "| jwt-authorizer | axum-jwt-auth | (b)/(a) | ((c)-(d))/(a) | (e)/(a) | jwt-authorizer/(a) | axum-jwt-auth/(a) |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for group in ["rs256", "es256", "eddsa"]:
    a, b, c, d, e = (est(group, n) for n in ["a_raw", "b_validator", "c_layer", "d_no_auth", "e_cache_hit"])
    ja, aja = est(group, "peer_jwt_authorizer"), est(group, "peer_axum_jwt_auth")
    ratio = lambda x: None if x is None or a is None else x / a
    layer = None if None in (a, c, d) else (c - d) / a
    print(f"| {group.upper()} | {fmt(a)} | {fmt(b)} | {fmt(c)} | {fmt(d)} | {fmt(e)} | {fmt(ja)} | {fmt(aja)} "
          f"| {fmt(ratio(b))} | {fmt(layer)} | {fmt(ratio(e), '')} | {fmt(ratio(ja))} | {fmt(ratio(aja))} |")

def unit(value, suffix):
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[suffix]
    return float(value) * scale

runs = {}
for path in sorted(glob.glob(os.path.join(out, "wrk-*.txt"))):
    name = re.sub(r"-\d+\.txt$", "", os.path.basename(path))[4:]
    text = open(path).read()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)", text, re.M)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)", text, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if not (rps and p50 and p99):
        continue
    runs.setdefault(name, []).append((float(rps.group(1)), unit(*p50.groups()), unit(*p99.groups()),
                                      int(non2xx.group(1)) if non2xx else 0))
if runs:
    print("\n### Load (wrk, ES256 demo token, median of rounds by req/s)\n")
    print("| server / route | req/s | p50 ms | p99 ms | non-2xx | req/s vs best peer |")
    print("|---|---|---|---|---|---|")
    med = {}
    for name, rs in runs.items():
        rs.sort()
        med[name] = rs[len(rs) // 2]
    peers = [med[n][0] for n in ("jwt_authorizer_orders", "axum_jwt_auth_orders") if n in med]
    best = max(peers) if peers else None
    order = ["example_healthz", "example_orders", "ours_orders", "ours_cached_orders",
             "jwt_authorizer_orders", "axum_jwt_auth_orders"]
    for name in order:
        if name not in med:
            continue
        rps, p50, p99, bad = med[name]
        vs = f"{rps / best:.2f}" if best else "n/a"
        print(f"| {name} | {rps:.0f} | {p50:.2f} | {p99:.2f} | {bad} | {vs} |")
PY
