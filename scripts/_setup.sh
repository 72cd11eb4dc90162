# Shared set-up for scripts/run and scripts/test: sourced, not run.
# Creates .venv with Python 3.11 and installs the Python and npm packages the project
# pins, redoing each step only when its inputs changed, so a second run is fast.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STAMPS="$VENV/.elicence-stamps"

log() { printf '\033[2m[setup] %s\033[0m\n' "$*" >&2; }

find_python() {
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))'; then
      echo "$candidate"; return 0
    fi
  done
  echo "elicence needs Python 3.11 or newer on PATH" >&2
  return 1
}

stamp_of() { cat "$@" 2>/dev/null | sha256sum | cut -d' ' -f1; }

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating .venv"
    "$(find_python)" -m venv "$VENV"
  fi
  mkdir -p "$STAMPS"
  # The install also compiles issuer/_wrap.c, so its source is part of the stamp, and a
  # missing compiled module (a `git clean`) means installing again. The module is
  # optional: without a compiler the install goes on, and issuing uses its Python paths.
  local want; want="$(stamp_of "$ROOT/pyproject.toml" "$ROOT/setup.py" "$ROOT/issuer/_wrap.c")"
  if [ "$(cat "$STAMPS/pip" 2>/dev/null)" != "$want" ] ||
     { ! compgen -G "$ROOT/issuer/_wrap.*.so" >/dev/null && command -v cc >/dev/null 2>&1; }; then
    ensure_build_tools || log "no C compiler: issuing will use its Python paths"
    log "installing Python packages and compiling issuer/_wrap.c (first run, or their sources changed)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT[test]"
    echo "$want" > "$STAMPS/pip"
  fi
}

# What compiling issuer/_wrap.c needs: a C compiler and OpenSSL's headers (the Python
# headers come with Python).
ensure_build_tools() {
  local missing=()
  command -v cc >/dev/null 2>&1 || missing+=(gcc)
  [ -f /usr/include/openssl/sha.h ] || missing+=(libssl-dev)
  apt_install "${missing[@]}"
}

ensure_npm() {
  local want; want="$(stamp_of "$ROOT/package.json" "$ROOT/package-lock.json")"
  if [ ! -d "$ROOT/node_modules" ] || [ "$(cat "$STAMPS/npm" 2>/dev/null)" != "$want" ]; then
    command -v npm >/dev/null 2>&1 || { echo "npm (Node.js 20) is needed for solc and anvil" >&2; return 1; }
    log "installing npm packages (solc, OpenZeppelin Contracts, anvil)"
    (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$STAMPS/npm"
  fi
}

# Debian packages the tests need: a headless browser and its driver (web page tests), a
# Chinese font for its screenshots, and the load packages below (wrk, PostgreSQL's server).
# Installed only when a command is missing.
ensure_apt() {
  local missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
  mapfile -t -O "${#missing[@]}" missing < <(load_packages_missing)
  # A Chinese font, so the page screenshots the browser tests save are readable.
  dpkg -s fonts-wqy-microhei >/dev/null 2>&1 || missing+=(fonts-wqy-microhei)
  apt_install "${missing[@]}"
}

# The load benchmarks' Debian packages (scripts/bench_api, scripts/bench_replica), so
# that they run on a fresh machine as scripts/test does.
ensure_load_tools() {
  local missing=()
  mapfile -t missing < <(load_packages_missing)
  apt_install "${missing[@]}"
}

# Prints the load packages missing here, one a line: wrk, and PostgreSQL's server (the
# tests and the benchmarks start a throw-away one: tests/postgres.py).
load_packages_missing() {
  command -v wrk >/dev/null 2>&1 || echo wrk
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || echo postgresql
}

# Installs the Debian packages named (none: nothing to do), as root or through sudo.
apt_install() {
  local missing=("$@")
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null 2>&1; then
    echo "missing Debian packages (${missing[*]}): install them, or run as root" >&2
    return 1
  fi
  local as_root=(); [ "$(id -u)" = 0 ] || as_root=(sudo)
  log "installing Debian packages: ${missing[*]}"
  "${as_root[@]}" apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

export PATH="$VENV/bin:$PATH"
