# Sourced by infra/*.sh: loads SPLITLAB_* values from .env without overriding the environment,
# so tests and CI can point a script at other ports by exporting variables.
load_dotenv() { # load_dotenv FILE
  [[ -f "$1" ]] || return 0
  local key value
  while IFS='=' read -r key value; do
    [[ "$key" =~ ^SPLITLAB_[A-Z0-9_]+$ ]] || continue
    [[ -n "${!key:-}" ]] && continue
    value="${value%\"}" value="${value#\"}"
    export "$key=$value"
  done < <(grep -E '^SPLITLAB_[A-Z0-9_]+=' "$1")
}
