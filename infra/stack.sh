#!/usr/bin/env bash
# The native SplitLab stack, no Docker needed: real Redis, Postgres 15, Apache Kafka (KRaft),
# Prometheus and Alertmanager on loopback, with every byte of state under .stack/.
#
#   infra/stack.sh up      install what is missing, start what is not running, wait until healthy
#   infra/stack.sh down    stop what this script started (by process id), keep the data
#   infra/stack.sh status  one line per component: running (pid) / stopped
#   infra/stack.sh reset   down, then delete .stack/ data (asks nothing: for CI and tests)
#   infra/stack.sh start|stop COMPONENT   one component (redis, postgres, kafka, prometheus, alertmanager)
#
# Ports and credentials come from the environment, else from .env, else the defaults below, so
# the stack can coexist with other services. Every step is idempotent: `up` twice reuses what runs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=infra/env.sh
source "$ROOT/infra/env.sh"
load_dotenv "$ROOT/.env"

STATE="${SPLITLAB_STACK_DIR:-$ROOT/.stack}"
REDIS_PORT="${SPLITLAB_STACK_REDIS_PORT:-6379}"
PG_PORT="${SPLITLAB_STACK_POSTGRES_PORT:-5432}"
KAFKA_PORT="${SPLITLAB_STACK_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${SPLITLAB_STACK_KAFKA_CONTROLLER_PORT:-9095}"
PROM_PORT="${SPLITLAB_STACK_PROMETHEUS_PORT:-9090}"
AM_PORT="${SPLITLAB_STACK_ALERTMANAGER_PORT:-9093}"
PG_USER="${SPLITLAB_POSTGRES_USER:-splitlab}"
PG_PASSWORD="${SPLITLAB_POSTGRES_PASSWORD:-splitlab}"
PG_DATABASES="${SPLITLAB_POSTGRES_DATABASES:-splitlab splitlab_test}"
PG_BIN="/usr/lib/postgresql/15/bin"
KAFKA_LIBS="$STATE/kafka/libs"
KAFKA_HEAP="${SPLITLAB_STACK_KAFKA_HEAP:--Xms256m -Xmx512m}"
# Services whose /metrics Prometheus scrapes on loopback (name=port).
SCRAPE_TARGETS="${SPLITLAB_STACK_SCRAPE_TARGETS:-assignment=8001 router=8002 analyzer=8003 trainer=8004 analyzer-consumer=9108}"
COMPONENTS=(redis postgres kafka prometheus alertmanager)

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] error: %s\n' "$*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # wait_for DESCRIPTION SECONDS COMMAND...
  local what="$1" seconds="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
  log "$what is ready"
}

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# --------------------------------------------------------------------------- install
install_missing() { # the system tools (infra/tools.txt), then the Kafka jars
  bash "$ROOT/infra/tools.sh" install
  install_kafka_jars
}

install_kafka_jars() {
  local stamp="$KAFKA_LIBS/.pom.sha256" want
  want="$(sha256sum "$ROOT/infra/kafka/pom.xml" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then return; fi
  log "fetching the Kafka broker jars from Maven Central (infra/kafka/pom.xml)"
  rm -rf "$KAFKA_LIBS" && mkdir -p "$KAFKA_LIBS"
  mvn -q -B -f "$ROOT/infra/kafka/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS" >"$STATE/kafka/mvn.log" 2>&1 \
    || die "mvn failed; see $STATE/kafka/mvn.log"
  echo "$want" >"$stamp"
}

# --------------------------------------------------------------------------- redis
start_redis() {
  local dir="$STATE/redis"
  mkdir -p "$dir"
  if pid_alive "$dir/redis.pid"; then log "redis already running"; return; fi
  port_open "$REDIS_PORT" && die "port $REDIS_PORT is taken by another process; set SPLITLAB_STACK_REDIS_PORT"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" \
    --appendonly yes --appendfsync everysec --save "" --protected-mode yes
  wait_for "redis :$REDIS_PORT" 20 redis_ready || die "redis did not start; see $dir/redis.log"
}
redis_ready() { [[ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" == "PONG" ]]; }
stop_redis() { stop_pidfile redis "$STATE/redis/redis.pid"; }

# --------------------------------------------------------------------------- postgres
as_postgres() { runuser -u postgres -- "$@"; }

# Postgres runs as the postgres user, which must reach its data folder. When the checkout sits
# below a folder that user cannot enter (a private home, say), the cluster lives under /var/lib.
PG_DIR="$STATE/postgres"
postgres_dir() {
  mkdir -p "$STATE/postgres"
  if ! runuser -u postgres -- test -x "$STATE/postgres" 2>/dev/null; then
    PG_DIR="/var/lib/splitlab-stack/$(printf '%s' "$STATE" | md5sum | cut -c1-12)/postgres"
    mkdir -p "$PG_DIR"
  fi
}

start_postgres() {
  local dir="$PG_DIR"
  mkdir -p "$dir/run"
  chown -R postgres:postgres "$dir"
  if [[ ! -f "$dir/data/PG_VERSION" ]]; then
    log "initdb $dir/data"
    as_postgres "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth-local=peer \
      --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || die "initdb failed; see $dir/initdb.log"
  fi
  if as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    log "postgres already running"
  else
    port_open "$PG_PORT" && die "port $PG_PORT is taken by another process; set SPLITLAB_STACK_POSTGRES_PORT"
    as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
      -o "-p $PG_PORT -k $dir/run -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on" \
      start >/dev/null || die "postgres did not start; see $dir/postgres.log"
    log "postgres :$PG_PORT is ready"
  fi
  ensure_postgres_role
}

psql_admin() { as_postgres psql -h "$PG_DIR/run" -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qtA "$@"; }

ensure_postgres_role() {
  local pw="${PG_PASSWORD//\'/\'\'}"
  if [[ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$PG_USER'")" != "1" ]]; then
    psql_admin -c "CREATE ROLE \"$PG_USER\" LOGIN PASSWORD '$pw' CREATEDB"
  else
    psql_admin -c "ALTER ROLE \"$PG_USER\" PASSWORD '$pw'" >/dev/null
  fi
  local db
  for db in $PG_DATABASES; do
    if [[ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" != "1" ]]; then
      psql_admin -c "CREATE DATABASE \"$db\" OWNER \"$PG_USER\""
      log "created database $db"
    fi
  done
}

stop_postgres() {
  local dir="$PG_DIR"
  if [[ -f "$dir/data/PG_VERSION" ]] && as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null && log "postgres stopped"
  fi
}

# --------------------------------------------------------------------------- kafka
start_kafka() {
  local dir="$STATE/kafka"
  mkdir -p "$dir"
  if pid_alive "$dir/kafka.pid"; then log "kafka already running"; return; fi
  port_open "$KAFKA_PORT" && die "port $KAFKA_PORT is taken by another process; set SPLITLAB_STACK_KAFKA_PORT"
  sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
    -e "s|@DATA_DIR@|$dir/data|g" "$ROOT/infra/kafka/server.properties" >"$dir/server.properties"
  local java_opts=(-cp "$KAFKA_LIBS/*" "-Dlog4j.configuration=file:$ROOT/infra/kafka/log4j.properties")
  if [[ ! -f "$dir/data/meta.properties" ]]; then
    local cluster_id
    cluster_id="$(java "${java_opts[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)"
    java "${java_opts[@]}" kafka.tools.StorageTool format -t "$cluster_id" \
      -c "$dir/server.properties" >"$dir/format.log" 2>&1 || die "kafka storage format failed; see $dir/format.log"
    log "formatted kafka storage (cluster $cluster_id)"
  fi
  # shellcheck disable=SC2086
  nohup java $KAFKA_HEAP -XX:+UseG1GC "${java_opts[@]}" kafka.Kafka "$dir/server.properties" \
    >"$dir/kafka.log" 2>&1 </dev/null &
  echo $! >"$dir/kafka.pid"
  wait_for "kafka :$KAFKA_PORT" 90 kafka_ready || die "kafka did not start; see $dir/kafka.log"
}
kafka_ready() {
  pid_alive "$STATE/kafka/kafka.pid" || return 1
  port_open "$KAFKA_PORT" && grep -q 'Kafka Server started' "$STATE/kafka/kafka.log"
}
stop_kafka() { stop_pidfile kafka "$STATE/kafka/kafka.pid" 30; }

# --------------------------------------------------------------------------- prometheus
write_scrape_targets() {
  local dir="$STATE/prometheus/targets" entry name port
  mkdir -p "$dir"
  for entry in $SCRAPE_TARGETS; do
    name="${entry%%=*}" port="${entry#*=}"
    printf '[{"targets": ["127.0.0.1:%s"], "labels": {"service": "%s"}}]\n' "$port" "$name" >"$dir/$name.json"
  done
  printf '[{"targets": ["127.0.0.1:%s"]}]\n' "$AM_PORT" >"$dir/alertmanagers.json"
}

start_prometheus() {
  local dir="$STATE/prometheus"
  mkdir -p "$dir/data"
  write_scrape_targets
  # The same prometheus.yml serves docker-compose; only the file_sd target files differ.
  ln -sfn "$ROOT/infra/prometheus/rules" "$dir/rules"
  sed -e "s|/etc/prometheus/targets|$dir/targets|g" -e "s|/etc/prometheus/rules|$dir/rules|g" \
    "$ROOT/infra/prometheus/prometheus.yml" >"$dir/prometheus.yml"
  if pid_alive "$dir/prometheus.pid"; then
    kill -HUP "$(cat "$dir/prometheus.pid")" && log "prometheus already running (config reloaded)"
    return
  fi
  port_open "$PROM_PORT" && die "port $PROM_PORT is taken by another process; set SPLITLAB_STACK_PROMETHEUS_PORT"
  promtool check config "$dir/prometheus.yml" >/dev/null || die "invalid prometheus config"
  nohup prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
    --web.listen-address="127.0.0.1:$PROM_PORT" --web.enable-lifecycle \
    --storage.tsdb.retention.time=7d >"$dir/prometheus.log" 2>&1 </dev/null &
  echo $! >"$dir/prometheus.pid"
  wait_for "prometheus :$PROM_PORT" 60 http_ok "http://127.0.0.1:$PROM_PORT/-/ready" \
    || die "prometheus did not start; see $dir/prometheus.log"
}
stop_prometheus() { stop_pidfile prometheus "$STATE/prometheus/prometheus.pid"; }

start_alertmanager() {
  local dir="$STATE/alertmanager"
  mkdir -p "$dir/data"
  if pid_alive "$dir/alertmanager.pid"; then log "alertmanager already running"; return; fi
  port_open "$AM_PORT" && die "port $AM_PORT is taken by another process; set SPLITLAB_STACK_ALERTMANAGER_PORT"
  nohup prometheus-alertmanager --config.file="$ROOT/infra/alertmanager/alertmanager.yml" \
    --storage.path="$dir/data" --web.listen-address="127.0.0.1:$AM_PORT" \
    --cluster.listen-address= >"$dir/alertmanager.log" 2>&1 </dev/null &
  echo $! >"$dir/alertmanager.pid"
  wait_for "alertmanager :$AM_PORT" 60 http_ok "http://127.0.0.1:$AM_PORT/-/ready" \
    || die "alertmanager did not start; see $dir/alertmanager.log"
}
stop_alertmanager() { stop_pidfile alertmanager "$STATE/alertmanager/alertmanager.pid"; }

http_ok() { curl -fs -o /dev/null --max-time 2 "$1"; }

# --------------------------------------------------------------------------- shared
stop_pidfile() { # stop_pidfile NAME PIDFILE [GRACE_SECONDS]
  local name="$1" pidfile="$2" grace="${3:-15}" pid
  pid_alive "$pidfile" || { rm -f "$pidfile"; return 0; }
  pid="$(cat "$pidfile")"
  kill -TERM "$pid"
  local deadline=$((SECONDS + grace))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.3; done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name did not stop in ${grace}s; killing"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  log "$name stopped"
}

status() {
  local c pidfile state
  for c in "${COMPONENTS[@]}"; do
    case "$c" in
      postgres)
        if [[ -f "$PG_DIR/data/postmaster.pid" ]] && kill -0 "$(head -n1 "$PG_DIR/data/postmaster.pid")" 2>/dev/null; then
          state="running (pid $(head -n1 "$PG_DIR/data/postmaster.pid"), port $PG_PORT)"
        else state="stopped"; fi ;;
      *)
        pidfile="$STATE/$c/$c.pid"
        if pid_alive "$pidfile"; then state="running (pid $(cat "$pidfile"))"; else state="stopped"; fi ;;
    esac
    printf '%-13s %s\n' "$c" "$state"
  done
}

up() {
  mkdir -p "$STATE"
  chmod 755 "$STATE"
  install_missing
  start_redis
  start_postgres
  start_kafka
  start_alertmanager
  start_prometheus
}

down() {
  local i
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do "stop_${COMPONENTS[$i]}"; done
}

component() { # validates a component name
  local c
  for c in "${COMPONENTS[@]}"; do [[ "$c" == "$1" ]] && return 0; done
  die "unknown component '$1'; choose one of: ${COMPONENTS[*]}"
}

postgres_dir

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  reset) down; rm -rf "$STATE/redis" "$PG_DIR" "$STATE/kafka/data" "$STATE/prometheus" "$STATE/alertmanager" ;;
  start) component "${2:-}"; mkdir -p "$STATE"; [[ "$2" == kafka ]] && install_kafka_jars; "start_$2" ;;
  stop) component "${2:-}"; "stop_$2" ;;
  install) mkdir -p "$STATE"; install_missing ;;
  *) echo "usage: $0 up|down|status|reset|install|start COMPONENT|stop COMPONENT" >&2; exit 2 ;;
esac
