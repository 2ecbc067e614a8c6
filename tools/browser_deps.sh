#!/usr/bin/env bash
# `make test`'s set-up for the explain tests that need programs outside Python: Graphviz's `dot`
# (--format svg) and Chromium (the HTML page in a headless browser). When one is missing and
# apt-get is usable (root, or passwordless sudo), install it:
#     apt-get install -y --no-install-recommends graphviz chromium
# running `apt-get update` first only if that install fails. Otherwise say in one line that those
# tests will skip, and why. Never fails: the rest of `make test` does not need these programs.
set -u

missing=()
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0

skip="the explain SVG and headless-browser tests will skip"
what="${missing[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
    echo "browser-deps: ${what} missing and no apt-get here: ${skip} (install ${what} to run them)"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if [ "$(id -u)" = 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
    sudo=(sudo -n env DEBIAN_FRONTEND=noninteractive)  # sudo resets the environment
else
    echo "browser-deps: ${what} missing, and apt-get needs root (no passwordless sudo): ${skip}"
    exit 0
fi

install() {
    "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" 2>&1
}
echo "browser-deps: installing ${what} with apt-get (for the explain SVG and headless-browser tests)"
if ! log=$(install); then
    if ! log=$("${sudo[@]}" apt-get update 2>&1 && install); then
        last="${log%$'\n'}"
        last="${last##*$'\n'}"
        echo "browser-deps: apt-get could not install ${what} (${last}): ${skip}"
    fi
fi
exit 0
