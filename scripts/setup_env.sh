#!/usr/bin/env bash
# Create or update the project's virtual environment in <repo>/.venv.
#
#   bash scripts/setup_env.sh          # runtime requirements (train, preprocess, export)
#   bash scripts/setup_env.sh --test   # + test tools, TFLite conversion route, Chromium,
#                                      #   and web/ npm packages (for the browser tests)
#
# Safe to re-run: every step is skipped or is a no-op when its work is already done,
# so a second run takes a few seconds. Never reads standard input.
set -euo pipefail

usage() {
    echo "usage: bash scripts/setup_env.sh [--test]" >&2
    exit 2
}

WITH_TEST=0
for arg in "$@"; do
    case "$arg" in
        --test) WITH_TEST=1 ;;
        -h|--help) usage ;;
        *) echo "setup_env.sh: unknown argument '$arg'" >&2; usage ;;
    esac
done

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
VENV="$REPO_ROOT/.venv"
REQUIRED_PY="3.11"

log() { echo "[setup_env] $*"; }
die() { echo "[setup_env] error: $*" >&2; exit 1; }

export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1

py_version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }

find_python() {
    local cand
    for cand in python3.11 python3; do
        if command -v "$cand" >/dev/null 2>&1 && [[ "$(py_version "$cand")" == "$REQUIRED_PY" ]]; then
            command -v "$cand"
            return 0
        fi
    done
    return 1
}

# --- virtual environment ---------------------------------------------------------
if [[ -x "$VENV/bin/python" ]]; then
    have="$(py_version "$VENV/bin/python" || true)"
    [[ "$have" == "$REQUIRED_PY" ]] \
        || die ".venv uses Python '${have:-unknown}', need $REQUIRED_PY: remove .venv and re-run"
else
    PYTHON="$(find_python)" || die "Python $REQUIRED_PY not found (tried python3.11, python3)"
    log "creating .venv with $PYTHON"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
PIP=("$VENV/bin/python" -m pip)

# --- Python packages ---------------------------------------------------------------
# One resolver run over every file, so conflicts between them are reported, not hidden.
REQ_ARGS=(-r requirements.txt)
if [[ "$WITH_TEST" == 1 ]]; then
    REQ_ARGS+=(-r requirements-test.txt -r conversion_requirements.txt)
fi
log "pip install ${REQ_ARGS[*]}"
"${PIP[@]}" install --quiet "${REQ_ARGS[@]}"
"${PIP[@]}" check

if [[ "$WITH_TEST" == 0 ]]; then
    log "done (runtime environment in .venv)"
    exit 0
fi

# --- Debian packages for the tests: Chromium (browser tests), opencv-doc (real photos/clips) -----
APT_PACKAGES=()
[[ -x /usr/bin/chromium ]] || APT_PACKAGES+=(chromium)
[[ -f /usr/share/doc/opencv-doc/examples/data/messi5.jpg ]] || dpkg -s opencv-doc >/dev/null 2>&1 \
    || APT_PACKAGES+=(opencv-doc)
if [[ ${#APT_PACKAGES[@]} == 0 ]]; then
    log "chromium and opencv-doc already installed"
elif ! command -v apt-get >/dev/null 2>&1; then
    log "warning: no apt-get; install ${APT_PACKAGES[*]} for the browser and extraction tests"
else
    SUDO=()
    if [[ "$(id -u)" != 0 ]]; then
        SUDO=(sudo -n)  # non-interactive: fails instead of asking for a password
    fi
    log "installing ${APT_PACKAGES[*]} with apt-get"
    if ! { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q \
            && "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
                --no-install-recommends "${APT_PACKAGES[@]}"; } </dev/null; then
        [[ "$(id -u)" == 0 ]] && die "apt-get could not install ${APT_PACKAGES[*]}"
        log "warning: could not install ${APT_PACKAGES[*]} without root; run as root for those tests"
    fi
fi

# --- web/ npm packages -------------------------------------------------------------
# npm ci wipes node_modules on every run, so skip it while the lock file is unchanged.
LOCK="web/package-lock.json"
STAMP="web/node_modules/.setup_env-lock.sha256"
if [[ -f "$LOCK" ]]; then
    command -v npm >/dev/null 2>&1 || die "npm not found; install Node.js and npm for web/"
    want="$(sha256sum "$LOCK" | cut -d' ' -f1)"
    if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
        log "web/node_modules up to date"
    else
        log "npm ci in web/"
        (cd web && npm ci --no-audit --no-fund </dev/null)
        echo "$want" > "$STAMP"
    fi
fi

log "done (runtime + test environment in .venv)"
