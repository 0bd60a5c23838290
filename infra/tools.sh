#!/usr/bin/env bash
# The system tools SplitLab needs, from the one list in infra/tools.txt.
#
#   infra/tools.sh install   install the missing ones with apt-get (idempotent: nothing to do, no apt call)
#   infra/tools.sh check     each tool with its version or MISSING and the command that installs it,
#                            then the Python toolchain and which stack ports and services answer;
#                            exits 1 when a tool is missing (`make doctor`)
#   infra/tools.sh missing   the Debian packages that would be installed, one a line
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=infra/env.sh
source "$ROOT/infra/env.sh"
load_dotenv "$ROOT/.env"
LIST="$ROOT/infra/tools.txt"

log() { printf '[tools] %s\n' "$*" >&2; }

entries() { # command<TAB>package<TAB>purpose, one tool a line
  grep -vE '^\s*(#|$)' "$LIST" | sed -E 's/^(\S+)\s+(\S+)\s+(.*)$/\1\t\2\t\3/'
}

present() { if [[ "$1" == /* ]]; then [[ -x "$1" ]]; else command -v "$1" >/dev/null 2>&1; fi; }

missing_packages() {
  local cmd pkg _
  while IFS=$'\t' read -r cmd pkg _; do
    present "$cmd" || echo "$pkg"
  done < <(entries) | sort -u
}

install() {
  local packages
  mapfile -t packages < <(missing_packages)
  ((${#packages[@]})) || return 0
  if [[ $EUID -ne 0 ]]; then
    log "missing: ${packages[*]}; run as root, or: sudo apt-get install -y ${packages[*]}"
    exit 1
  fi
  log "apt-get update"
  apt-get update -qq >/dev/null
  log "installing ${packages[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  local still
  still="$(missing_packages | tr '\n' ' ')"
  [[ -z "$still" ]] || { log "still missing after apt-get: $still"; exit 1; }
}

version_of() { # the first line a tool prints about its version
  local cmd="$1" out
  case "$(basename "$cmd")" in
    java) out="$(java -version 2>&1)" ;;
    wrk) out="$(wrk -v 2>&1 || true)" ;;
    runuser) out="$(runuser --version 2>&1)" ;;
    docker-compose) out="$(docker-compose version --short 2>&1)" ;;
    *) out="$("$cmd" --version 2>&1 || true)" ;;
  esac
  out="${out%%$'\n'*}"
  printf '%s' "$out" | sed -E 's/\x1b\[[0-9;]*m//g' | cut -c1-60
}

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

port_of() { local rest="${1#*://}"; rest="${rest%%/*}"; echo "${rest##*:}"; }

check() {
  local cmd pkg purpose missing=()
  printf '%-24s %-8s %-34s %s\n' TOOL STATE "NEEDED BY" VERSION
  while IFS=$'\t' read -r cmd pkg purpose; do
    if present "$cmd"; then
      printf '%-24s %-8s %-34s %s\n' "$(basename "$cmd")" ok "$purpose" "$(version_of "$cmd")"
    else
      printf '%-24s %-8s %-34s %s\n' "$(basename "$cmd")" MISSING "$purpose" "apt-get install -y $pkg"
      missing+=("$pkg")
    fi
  done < <(entries)
  echo
  local py uv_version venv
  py="$(python3 --version 2>&1 || echo 'python3 MISSING')"
  uv_version="$(python3 -m uv --version 2>/dev/null || echo 'MISSING (make install: pip install uv)')"
  if [[ -x "$ROOT/.venv/bin/python" ]]; then venv="present"; else venv="absent (make install creates it)"; fi
  printf '%-24s %s\n' python3 "$py" uv "$uv_version" .venv "$venv"
  echo
  local name port
  printf '%-24s %s\n' SERVICE STATE
  for name in redis:"${SPLITLAB_STACK_REDIS_PORT:-6379}" postgres:"${SPLITLAB_STACK_POSTGRES_PORT:-5432}" \
    kafka:"${SPLITLAB_STACK_KAFKA_PORT:-9092}" prometheus:"${SPLITLAB_STACK_PROMETHEUS_PORT:-9090}" \
    alertmanager:"${SPLITLAB_STACK_ALERTMANAGER_PORT:-9093}" \
    assignment:"$(port_of "${SPLITLAB_ASSIGNMENT_URL:-http://127.0.0.1:8001}")" \
    router:"$(port_of "${SPLITLAB_ROUTER_URL:-http://127.0.0.1:8002}")" \
    analyzer:"$(port_of "${SPLITLAB_ANALYZER_URL:-http://127.0.0.1:8003}")" \
    trainer:"$(port_of "${SPLITLAB_TRAINER_URL:-http://127.0.0.1:8004}")"; do
    port="${name#*:}" name="${name%%:*}"
    if answers "$port"; then printf '%-24s %s\n' "$name" "answers on :$port"
    else printf '%-24s %s\n' "$name" "not running (:$port; make up starts it)"; fi
  done
  if ((${#missing[@]})); then
    echo
    echo "missing: ${#missing[@]} tool(s); install them with: make tools  (or: apt-get install -y $(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' '))"
    return 1
  fi
  echo
  echo "every tool is installed"
}

case "${1:-}" in
  install) install ;;
  check) check ;;
  missing) missing_packages ;;
  *) echo "usage: $0 install|check|missing" >&2; exit 2 ;;
esac
