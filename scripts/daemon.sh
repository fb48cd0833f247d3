# Start and stop a cistrack daemon from a bash script (source this file):
#
#   source scripts/daemon.sh
#   trap stop_daemon EXIT
#   start_daemon LOG [serve options...]   # sets $daemon (pid), $port and $daemon_url
#   ...curl "$daemon_url/v1/builds"...
#   stop_daemon
#
# Needs $bin (the cistrack binary) and $cfg (the builds config). start_daemon picks a free-looking
# port, waits up to 60 s for /healthz, and fails with the daemon's log if it exits or never
# answers.
daemon=
port=
daemon_url=

start_daemon() {
  local log=$1
  shift
  port=$((20000 + RANDOM % 20000))
  daemon_url="http://127.0.0.1:$port"
  "$bin" -q --config "$cfg" serve --bind "127.0.0.1:$port" "$@" > "$log" 2>&1 &
  daemon=$!
  for _ in $(seq 1 300); do
    curl -fs "$daemon_url/healthz" > /dev/null 2>&1 && return 0
    if ! kill -0 "$daemon" 2>/dev/null; then
      echo "the daemon exited before answering; its log:" >&2
      cat "$log" >&2
      daemon=
      return 1
    fi
    sleep 0.2
  done
  echo "the daemon did not answer /healthz within 60 s; its log:" >&2
  cat "$log" >&2
  return 1
}

stop_daemon() {
  if [[ -n $daemon ]]; then
    kill "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
    daemon=
  fi
}
