#!/usr/bin/env bash
# SplitLab's own processes on this machine, in the background, stopped by process id.
#
#   infra/services.sh up      start every service that is not running, wait until all /readyz are 200
#   infra/services.sh down    stop them (SIGTERM, then SIGKILL after a grace period)
#   infra/services.sh status  one line per process
#   infra/services.sh urls    where each service, Prometheus and Alertmanager answer
#
# SPLITLAB_PROCESSES (space-separated) limits them to a subset, e.g. a test that needs no trainer:
#   SPLITLAB_PROCESSES="assignment router analyzer analyzer-consumer" infra/services.sh up
#
# Ports come from SPLITLAB_{ASSIGNMENT,ROUTER,ANALYZER,TRAINER}_URL (environment, else .env);
# pid files and logs go to $SPLITLAB_STATE_DIR/run and $SPLITLAB_STATE_DIR/logs (default .stack).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=infra/env.sh
source "$ROOT/infra/env.sh"
load_dotenv "$ROOT/.env"
cd "$ROOT"

STATE="${SPLITLAB_STATE_DIR:-$ROOT/.stack}"
BIN="$ROOT/.venv/bin"
RUN="$STATE/run"
LOGS="$STATE/logs"
READY_TIMEOUT="${SPLITLAB_READY_TIMEOUT:-120}"
ALL_PROCESSES=(assignment router analyzer analyzer-consumer trainer trainer-worker trainer-beat)
# shellcheck disable=SC2206
PROCESSES=(${SPLITLAB_PROCESSES:-${ALL_PROCESSES[*]}})
for p in "${PROCESSES[@]}"; do
  [[ " ${ALL_PROCESSES[*]} " == *" $p "* ]] || { echo "SPLITLAB_PROCESSES: unknown process '$p' (known: ${ALL_PROCESSES[*]})" >&2; exit 2; }
done
READY_ARGS=()
for p in "${PROCESSES[@]}"; do
  case "$p" in assignment | router | analyzer | trainer) READY_ARGS+=(--service "$p") ;; esac
done

log() { printf '[services] %s\n' "$*" >&2; }

port_of() { # port_of URL -> the port of http://host:port[/...]
  local rest="${1#*://}"
  rest="${rest%%/*}"
  echo "${rest##*:}"
}

command_for() {
  local name="$1" url_var port
  case "$name" in
    analyzer-consumer)
      echo "$BIN/splitlab-analyzer-consumer"
      ;;
    trainer-worker)
      echo "$BIN/celery -A splitlab_trainer.worker worker -P prefork -c 1 -n trainer@%h --loglevel INFO"
      ;;
    trainer-beat)
      # Beat sends the trainer's schedule task; its own state file under the state folder.
      echo "$BIN/celery -A splitlab_trainer.worker beat --loglevel INFO --schedule $RUN/celerybeat-schedule"
      ;;
    *)
      url_var="SPLITLAB_${name^^}_URL"
      port="$(port_of "${!url_var:-http://127.0.0.1:$(default_port "$name")}")"
      echo "$BIN/uvicorn splitlab_${name}.app:create_app --factory --host 127.0.0.1 --port $port --no-access-log --log-level warning"
      ;;
  esac
}

default_port() {
  case "$1" in assignment) echo 8001 ;; router) echo 8002 ;; analyzer) echo 8003 ;; trainer) echo 8004 ;; esac
}

alive() { [[ -f "$RUN/$1.pid" ]] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

start() {
  local name="$1"
  if alive "$name"; then log "$name already running (pid $(cat "$RUN/$name.pid"))"; return; fi
  # shellcheck disable=SC2046
  nohup $(command_for "$name") >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
  log "$name started (pid $!, log $LOGS/$name.log)"
}

stop() {
  local name="$1" pid
  alive "$name" || { rm -f "$RUN/$name.pid"; return 0; }
  pid="$(cat "$RUN/$name.pid")"
  kill -TERM "$pid"
  local deadline=$((SECONDS + 20))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  kill -0 "$pid" 2>/dev/null && { log "$name did not stop; killing"; kill -KILL "$pid" 2>/dev/null || true; }
  rm -f "$RUN/$name.pid"
  log "$name stopped"
}

case "${1:-}" in
  up)
    [[ -x "$BIN/uvicorn" ]] || { log "no virtualenv: run 'make install' first"; exit 1; }
    mkdir -p "$RUN" "$LOGS"
    for p in "${PROCESSES[@]}"; do start "$p"; done
    if ((${#READY_ARGS[@]})); then
      "$BIN/splitlab" ready --timeout "$READY_TIMEOUT" "${READY_ARGS[@]}" || {
        log "not every service became ready; see $LOGS/"
        exit 1
      }
    fi
    ;;
  down)
    stop simulator # the demo's traffic (`make run`), if it runs
    for ((i = ${#PROCESSES[@]} - 1; i >= 0; i--)); do stop "${PROCESSES[$i]}"; done
    ;;
  status)
    for p in "${PROCESSES[@]}"; do
      if alive "$p"; then printf '%-15s running (pid %s)\n' "$p" "$(cat "$RUN/$p.pid")"
      else printf '%-15s stopped\n' "$p"; fi
    done
    if alive simulator; then printf '%-15s running (pid %s, the demo'"'"'s traffic)\n' simulator "$(cat "$RUN/simulator.pid")"; fi
    ;;
  urls)
    # Where each part answers, from the same settings the processes were started with.
    for name in assignment router analyzer trainer; do
      url_var="SPLITLAB_${name^^}_URL"
      printf '  %-11s %s/docs\n' "$name" "${!url_var:-http://127.0.0.1:$(default_port "$name")}"
    done
    printf '  %-11s %s   alertmanager %s\n' prometheus \
      "http://127.0.0.1:${SPLITLAB_STACK_PROMETHEUS_PORT:-9090}" \
      "http://127.0.0.1:${SPLITLAB_STACK_ALERTMANAGER_PORT:-9093}"
    printf '  %-11s SPLITLAB_ADMIN_API_KEY in .env\n' "admin key"
    ;;
  *) echo "usage: $0 up|down|status|urls" >&2; exit 2 ;;
esac
