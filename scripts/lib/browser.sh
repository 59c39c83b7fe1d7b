# Sourced by the scripts: make sure Debian's headless browser for the browser tests is installed.
# tests/browser.py drives /usr/bin/chromium through /usr/bin/chromedriver (packages
# 'chromium' and 'chromium-driver'); nothing is downloaded at test time.

ensure_chromium() {
  local pkgs="chromium chromium-driver"
  [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[browser] installing Debian's chromium and chromium-driver" >&2
    # shellcheck disable=SC2086  # two package names, split on purpose
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $pkgs >/dev/null \
      || { apt-get update -q >/dev/null \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $pkgs >/dev/null; }
  fi
  [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] \
    || { echo "chromium/chromedriver not found (/usr/bin/chromium, /usr/bin/chromedriver): apt-get install $pkgs" >&2; exit 1; }
}
