#!/usr/bin/env bash
# Installs the Debian tools the tests need, idempotently:
#   prometheus, promtool, prometheus-alertmanager, amtool  -> <repo>/.tools/bin (symlinks)
#   Alertmanager's notification templates                  -> /usr/share/prometheus/alertmanager
#                                                              (needs root: Debian's binary hard-codes it;
#                                                              the files this script creates there are listed
#                                                              in .tools/outside-files and removed by --clean)
#   systemd-analyze                                        -> from the system `systemd` package
#
# Cheap route first: `apt-get download` + `dpkg-deb -x` into .tools/root (~30 MB of .debs,
# ~135 MB unpacked, no maintainer scripts, no prometheus.service enabled). `apt-get install`
# is only the fallback: it pulls ~375 MB of web-UI dependencies and enables a :9090 service.
#
# Usage: scripts/install-tools.sh [--force|--clean]  (env VOICEOPS_TOOLS_DIR overrides .tools)
#   --clean removes what this script wrote outside the checkout (`make clean` runs it).
# Exit status: 0 when every tool runs afterwards, 1 on failure, 2 on bad usage.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${VOICEOPS_TOOLS_DIR:-$ROOT/.tools}"
BIN="$TOOLS/bin"
UNPACK="$TOOLS/root"
DEB_PACKAGES=(prometheus prometheus-alertmanager)
DEB_BINARIES=(prometheus promtool prometheus-alertmanager amtool)
# Debian patches Alertmanager to read its built-in notification template from this absolute
# path (there is no flag for it); without the file it refuses every config.
AM_PACKAGED_DIR=/usr/share/prometheus/alertmanager
AM_TEMPLATE_DIR="${VOICEOPS_AM_TEMPLATE_DIR:-$AM_PACKAGED_DIR}"  # the override is for tests
# Every file created outside $TOOLS, one absolute path a line, so --clean can remove exactly those.
OUTSIDE="$TOOLS/outside-files"
FORCE=0
CLEAN=0
[[ "${1:-}" == "--force" ]] && FORCE=1
[[ "${1:-}" == "--clean" ]] && CLEAN=1
[[ $# -gt 1 || ( $# -eq 1 && $FORCE -eq 0 && $CLEAN -eq 0 ) ]] \
    && { echo "usage: $0 [--force|--clean]" >&2; exit 2; }

START=$(date +%s)
say() { echo "install-tools: $*"; }
die() { echo "install-tools: ERROR: $*" >&2; exit 1; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else die "need root for: $*"; fi; }

tool_runs() {  # a tool counts as installed only if it actually executes
    [[ -x "$BIN/$1" ]] && "$BIN/$1" --version >/dev/null 2>&1
}

all_tools_run() {
    local t
    for t in "${DEB_BINARIES[@]}"; do tool_runs "$t" || return 1; done
}

APT_UPDATED=0
apt_update_once() {
    [[ $APT_UPDATED -eq 1 ]] && return 0
    say "apt-get update"
    as_root apt-get update -qq || die "apt-get update failed"
    APT_UPDATED=1
}

apt_lists_empty() {
    ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null
}

link_binaries() {  # $1: directory holding the real binaries
    mkdir -p "$BIN"
    local t
    for t in "${DEB_BINARIES[@]}"; do
        [[ -x "$1/$t" ]] || return 1
        ln -sfnr "$1/$t" "$BIN/$t"  # relative inside .tools: survives moving the checkout
    done
    ln -sfnr "$1/prometheus-alertmanager" "$BIN/alertmanager"
}

download_and_unpack() {
    local dl
    dl="$(mktemp -d)"
    # apt-get download drops privileges to _apt; let it write there (else it warns and runs unsandboxed).
    chmod 0755 "$dl"
    if [[ $(id -u) -eq 0 ]] && id _apt >/dev/null 2>&1; then chown _apt "$dl"; fi
    if ! (cd "$dl" && apt-get download -qq "${DEB_PACKAGES[@]}"); then
        rm -rf "$dl"; return 1
    fi
    rm -rf "$UNPACK"; mkdir -p "$UNPACK"
    local deb
    for deb in "$dl"/*.deb; do
        say "unpack $(basename "$deb")"
        dpkg-deb -x "$deb" "$UNPACK" || { rm -rf "$dl"; return 1; }
    done
    rm -rf "$dl"
    link_binaries "$UNPACK/usr/bin"
}

install_deb_tools() {
    if [[ $FORCE -eq 0 ]] && all_tools_run; then
        say "prometheus/promtool/alertmanager/amtool already in $BIN"
        return 0
    fi
    apt_lists_empty && apt_update_once
    say "apt-get download ${DEB_PACKAGES[*]} -> $UNPACK"
    if download_and_unpack || { apt_update_once && download_and_unpack; }; then
        all_tools_run && return 0
        say "unpacked binaries do not run; falling back to apt-get install"
    else
        say "download route failed; falling back to apt-get install"
    fi
    apt_update_once
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${DEB_PACKAGES[@]}" \
        || die "apt-get install ${DEB_PACKAGES[*]} failed"
    link_binaries /usr/bin || die "apt-get install did not provide ${DEB_BINARIES[*]}"
    all_tools_run || die "installed tools do not run"
}

install_alertmanager_templates() {
    if [[ -f "$AM_TEMPLATE_DIR/default.tmpl" ]]; then
        say "alertmanager templates already in $AM_TEMPLATE_DIR"
        return 0
    fi
    [[ -f "$UNPACK$AM_PACKAGED_DIR/default.tmpl" ]] \
        || die "default.tmpl missing from the unpacked package ($UNPACK$AM_PACKAGED_DIR)"
    say "copy alertmanager templates to $AM_TEMPLATE_DIR (Debian's alertmanager reads them there;" \
        "listed in $OUTSIDE, removed by make clean)"
    local dir="$AM_TEMPLATE_DIR" missing=()
    while [[ ! -d "$dir" ]]; do missing=("$dir" "${missing[@]}"); dir="$(dirname "$dir")"; done
    as_root mkdir -p "$AM_TEMPLATE_DIR"
    mkdir -p "$TOOLS"
    local src
    for src in "$UNPACK$AM_PACKAGED_DIR"/*.tmpl; do
        local dst="$AM_TEMPLATE_DIR/$(basename "$src")"
        [[ -e "$dst" ]] && continue  # not ours: never overwritten, never removed
        as_root cp "$src" "$dst"
        echo "$dst" >> "$OUTSIDE"
    done
    # Directories we created, deepest last, so --clean removes them after their files.
    for dir in "${missing[@]}"; do echo "$dir/" >> "$OUTSIDE"; done
}

clean_outside() {  # remove what install_alertmanager_templates created, files first
    [[ -f "$OUTSIDE" ]] || { say "nothing outside the checkout to remove"; return 0; }
    local path
    while IFS= read -r path; do
        [[ "$path" == */ || -z "$path" ]] && continue
        rm -f -- "$path" && say "removed $path"
    done < "$OUTSIDE"
    tac "$OUTSIDE" | while IFS= read -r path; do
        [[ "$path" == */ ]] || continue
        rmdir -- "${path%/}" 2>/dev/null && say "removed ${path%/}/"
    done
    rm -f -- "$OUTSIDE"
}

if [[ $CLEAN -eq 1 ]]; then
    clean_outside
    exit 0
fi

install_systemd_analyze() {
    if command -v systemd-analyze >/dev/null 2>&1; then
        say "systemd-analyze already at $(command -v systemd-analyze)"
        return 0
    fi
    apt_lists_empty && apt_update_once
    say "apt-get install systemd (for systemd-analyze)"
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends systemd \
        || { apt_update_once && as_root env DEBIAN_FRONTEND=noninteractive \
             apt-get install -y -qq --no-install-recommends systemd; } \
        || die "apt-get install systemd failed"
    command -v systemd-analyze >/dev/null 2>&1 || die "systemd-analyze still missing"
}

install_deb_tools
install_alertmanager_templates
install_systemd_analyze

for t in "${DEB_BINARIES[@]}"; do
    say "$(printf '%-24s' "$t") $("$BIN/$t" --version 2>&1 | head -n1)"
done
say "$(printf '%-24s' systemd-analyze) $(systemd-analyze --version | head -n1)"
say "disk: $(du -sh "$TOOLS" 2>/dev/null | cut -f1) in $TOOLS; took $(( $(date +%s) - START ))s"
