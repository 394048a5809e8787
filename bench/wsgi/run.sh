#!/usr/bin/env bash
# bench/wsgi/run.sh: requests/s of one Flask "hello" app (hello_app.py)
#   - behind blastbeat, served by python/blastbeat (1 node process, then 2),
#   - behind nginx proxy_pass, served by gunicorn -w 2 (sync workers),
#   - (reference) gunicorn -w 2 alone,
# on this machine, one after the other in the same run, with
#   wrk -t2 -c32 -d10s http://127.0.0.1:PORT/
# Everything listens on 127.0.0.1 only. The script starts every process
# itself, kills only the PIDs it started, and is bounded in time
# (timeout(1) stops it after $LIMIT seconds, 300 by default).
#
# Usage: bench/wsgi/run.sh            (from anywhere in the repo)
#   DURATION=10s CONNS=32 THREADS=8 LIMIT=300 bench/wsgi/run.sh
# Needs: /usr/bin/python3 with zmq and flask (python3-zmq, python3-flask),
# gunicorn, nginx, wrk, curl, and Go (blastbeat is built from this tree
# into the temp dir; BLASTBEAT=path/to/blastbeat uses that binary instead).
set -euo pipefail

LIMIT=${LIMIT:-300}
# Bounded in time: the script runs under timeout(1), which sends it
# SIGTERM after $LIMIT seconds; its traps then stop what it started.
if [ -z "${BB_WSGI_BENCH_TIMED:-}" ]; then
	export BB_WSGI_BENCH_TIMED=1
	exec timeout -s TERM "$LIMIT" "$0" "$@"
fi

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/bench/wsgi
PY=/usr/bin/python3
DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
THREADS=${THREADS:-8}
WORK=$(mktemp -d /tmp/bb-wsgi-bench.XXXXXX)
PIDS=()

stop_pids() {
	local p
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	PIDS=()
}
cleanup() {
	stop_pids
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "run.sh: stopped (signal, or over ${LIMIT}s)" >&2; exit 1' INT TERM

start() { # start LOGNAME CMD...: run CMD in the background, remember its PID
	local log=$WORK/$1.log
	shift
	"$@" >"$log" 2>&1 &
	PIDS+=($!)
}
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_ok() { # wait_ok URL: until it answers 200 (10 s)
	for _ in $(seq 200); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$1" || true)" = 200 ] && return 0
		sleep 0.05
	done
	echo "run.sh: $1 never answered 200" >&2
	tail -n 20 "$WORK"/*.log >&2 || true
	return 1
}
RESULTS=()
bench() { # bench NAME URL
	local name=$1 url=$2 out
	out=$WORK/$(echo "$1" | tr -c 'a-zA-Z0-9\n' '_').wrk
	timeout 10 wrk -t2 -c"$CONNS" -d2s "$url" >/dev/null # warm-up
	timeout 120 wrk -t2 -c"$CONNS" -d"$DURATION" --latency "$url" >"$out"
	echo "== $name: wrk -t2 -c$CONNS -d$DURATION $url"
	sed 's/^/   /' "$out"
	if grep -q 'Non-2xx' "$out"; then echo "run.sh: $name had non-2xx answers" >&2; fi
	RESULTS+=("$(printf '%-40s %10s req/s   p50 %8s   p99 %8s' "$name" \
		"$(awk '/Requests\/sec/ {print $2}' "$out")" \
		"$(awk '$1 == "50%" {print $2}' "$out")" \
		"$(awk '$1 == "99%" {print $2}' "$out")")")
}

for tool in wrk nginx gunicorn curl; do
	command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing" >&2; exit 1; }
done
$PY -c 'import zmq, flask' || { echo "run.sh: $PY cannot import zmq and flask" >&2; exit 1; }
# The proxy is built from this tree (as `make build` would), unless
# BLASTBEAT names a binary.
BB=${BLASTBEAT:-}
if [ -z "$BB" ]; then
	(cd "$ROOT" && go build -o "$WORK/blastbeat" ./cmd/blastbeat)
	BB=$WORK/blastbeat
fi

echo "machine: $(nproc) cores, $(uname -sr); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "python: $($PY -c 'import sys, zmq, flask; print(sys.version.split()[0], "pyzmq", zmq.__version__, "libzmq", zmq.zmq_version(), "flask", flask.__version__)')"
echo "gunicorn: $(gunicorn --version 2>&1 | head -1); $(nginx -v 2>&1)"
echo

# --- blastbeat + python/blastbeat, 1 then 2 node processes -----------------
for nodes in 1 2; do
	HTTP=$(free_port)
	ZMQ=$(free_port)
	{
		echo "[blastbeat]"
		echo "bind = 127.0.0.1:$HTTP"
		echo "zmq = tcp://127.0.0.1:$ZMQ"
		echo "log-level = warn"
		echo
		echo "[blastbeat:*]"
		for i in $(seq "$nodes"); do echo "node = hello$i"; done
	} >"$WORK/bb.ini"
	start blastbeat "$BB" "$WORK/bb.ini"
	for i in $(seq "$nodes"); do
		start "node$i" env PYTHONPATH="$ROOT/python:$HERE" $PY -m blastbeat.wsgi \
			--node "hello$i" --connect "tcp://127.0.0.1:$ZMQ" --threads "$THREADS" --log-level warning hello_app:app
	done
	wait_ok "http://127.0.0.1:$HTTP/"
	# every node must be serving before the run (the proxy spreads sessions
	# over the live nodes)
	sleep 1
	bench "blastbeat + python/blastbeat x$nodes" "http://127.0.0.1:$HTTP/"
	stop_pids
done

# --- nginx proxy_pass + gunicorn -w 2 --------------------------------------
UP=$(free_port)
HTTP=$(free_port)
start gunicorn gunicorn -w 2 -b "127.0.0.1:$UP" --chdir "$HERE" --log-level warning hello_app:app
mkdir -p "$WORK/nginx"
NGINX_USER=""
[ "$(id -u)" = 0 ] && NGINX_USER="user root;" # workers must reach the temp dir
cat >"$WORK/nginx.conf" <<NGINX
$NGINX_USER
worker_processes $(nproc);
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $WORK/nginx/client_body;
    proxy_temp_path $WORK/nginx/proxy_temp;
    fastcgi_temp_path $WORK/nginx/fastcgi_temp;
    uwsgi_temp_path $WORK/nginx/uwsgi_temp;
    scgi_temp_path $WORK/nginx/scgi_temp;
    upstream app {
        server 127.0.0.1:$UP;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$HTTP;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
        }
    }
}
NGINX
start nginx nginx -p "$WORK/nginx" -c "$WORK/nginx.conf" -g 'daemon off;'
wait_ok "http://127.0.0.1:$UP/"
wait_ok "http://127.0.0.1:$HTTP/"
bench "nginx proxy_pass + gunicorn -w 2" "http://127.0.0.1:$HTTP/"
bench "gunicorn -w 2 alone (reference)" "http://127.0.0.1:$UP/"
stop_pids

echo
echo "== summary ($(nproc) cores; load after: $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%s\n' "${RESULTS[@]}"
