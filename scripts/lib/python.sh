# Sourced by the scripts: make sure the project's Python environment exists and is current.
# The venv lives in the clone (.venv); pip's own wheel cache makes a fresh clone's
# install quick. It is rebuilt when pyproject.toml changes.

ensure_venv() {
  local root="$1" py="${PYTHON:-python3}"
  local stamp="$root/.venv/.pyproject.sha256" want
  if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "Python 3.11 or newer is needed (found: $("$py" --version 2>&1)). Set PYTHON=/path/to/python3.11" >&2
    exit 1
  fi
  want="$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)"
  if [ -x "$root/.venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return 0; fi
  echo "[python] preparing .venv (dependencies from pyproject.toml)" >&2
  [ -x "$root/.venv/bin/python" ] || "$py" -m venv "$root/.venv"
  "$root/.venv/bin/python" -m pip install -q --disable-pip-version-check -e "$root[dev]" >&2
  echo "$want" > "$stamp"
}
