# Sourced by scripts/test: validate schemas/asyncapi/*.json with the official AsyncAPI CLI.
#
# The CLI comes from the npm registry at the version (and the whole dependency tree)
# pinned in tools/asyncapi-cli/package-lock.json, installed once into
# $ALUMNI_CACHE_DIR/npm/asyncapi-cli-<version> (default .run/cache, kept between runs;
# npm's own download cache makes a reinstall work offline). A new pin installs beside the old.

ASYNCAPI_CLI_VERSION=6.2.0

ensure_npm() {
  command -v npm >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[asyncapi] installing Debian's npm (and nodejs)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends npm >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends npm >/dev/null; }
  fi
  command -v npm >/dev/null 2>&1 || { echo "npm not found: apt-get install npm" >&2; exit 1; }
}

# Prints the path of the pinned CLI, installing it first if it is not there yet.
ensure_asyncapi_cli() {
  local root="$1"
  local dir="${ALUMNI_CACHE_DIR:-$root/.run/cache}/npm/asyncapi-cli-$ASYNCAPI_CLI_VERSION"
  local bin="$dir/node_modules/.bin/asyncapi"
  if [ ! -x "$bin" ] || ! cmp -s "$root/tools/asyncapi-cli/package-lock.json" "$dir/package-lock.json"; then
    ensure_npm
    echo "[asyncapi] installing @asyncapi/cli $ASYNCAPI_CLI_VERSION into $dir (once; a few minutes)" >&2
    rm -rf "$dir" && mkdir -p "$dir"
    cp "$root/tools/asyncapi-cli/package.json" "$root/tools/asyncapi-cli/package-lock.json" "$dir/"
    # npm ci: exactly the lock file's tree. No install scripts: validate needs none.
    (cd "$dir" && npm ci --prefer-offline --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null) \
      || { echo "[asyncapi] npm ci failed in $dir" >&2; rm -rf "$dir"; exit 1; }
  fi
  # The CLI reports usage to its makers unless told not to; a config file of our own says no.
  [ -f "$dir/analytics.json" ] \
    || echo '{"analyticsEnabled":"false","infoMessageShown":"true","userID":"usn-alumni-ci"}' >"$dir/analytics.json"
  echo "$bin"
}

# Validates every generated document (in parallel: each run is mostly the CLI starting);
# a document with an error or a warning fails the check, with the CLI's diagnostics.
validate_asyncapi_documents() {
  local root="$1" cli dir doc failed=0 n=0
  cli="$(ensure_asyncapi_cli "$root")"
  dir="$(dirname "$(dirname "$(dirname "$cli")")")"
  local out="$dir/validate.$$"
  mkdir -p "$out"
  local -a pids=() docs=()
  for doc in "$root"/schemas/asyncapi/*.json; do
    ASYNCAPI_METRICS_CONFIG_PATH="$dir/analytics.json" CI=true SUPPRESS_NO_CONFIG_WARNING=1 \
      "$cli" validate --fail-severity warn "$doc" >"$out/$n.log" 2>&1 &
    pids+=("$!") docs+=("$doc") n=$((n + 1))
  done
  for n in "${!pids[@]}"; do
    if ! wait "${pids[$n]}"; then
      echo "[asyncapi] ${docs[$n]} is not valid AsyncAPI:" >&2
      grep -v '^WARNING: \|^$' "$out/$n.log" >&2 || true
      failed=1
    fi
  done
  rm -rf "$out"
  [ "$failed" = 0 ] || exit 1
  echo "[asyncapi] ${#docs[@]} documents valid (@asyncapi/cli $ASYNCAPI_CLI_VERSION)"
}
