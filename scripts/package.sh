#!/usr/bin/env bash
# Builds the Debian package taskgroupd_<version>_<arch>.deb (installing missing Debian packages
# first) and prints its path on the last line. A Release build with Debian's hardening flags
# (dpkg-buildflags) and the prefix /usr, in build/package ($TG_PACKAGE_DIR), packaged by CPack's
# DEB generator from what `cmake --install` installs (packaging/deb/).
#
#   scripts/package.sh                     the working tree, versioned after HEAD
#   scripts/package.sh --version-of REV --out DIR
#   scripts/package.sh --version VERSION --out DIR
#                                          the same build, but with the version (and changelog)
#                                          of commit REV, or VERSION, into DIR: an "older"
#                                          package, for testing an upgrade (its binaries are
#                                          the working tree's)
#   scripts/package.sh --print-version [REV]
#
# The version is the project's (CMakeLists.txt) + "+git<N>.g<hash>", N = the number of commits
# in the history of the commit: a commit's package is newer than its parents'. A tree with
# uncommitted changes to tracked files gets ".dirty" appended. Outside git: the project's.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

# version_of REV: the package version of commit REV (HEAD: of the working tree).
version_of() {
  local rev=$1 base
  if ! git rev-parse --verify -q "$rev^{commit}" >/dev/null 2>&1; then
    sed -n 's/^project(taskgroupd VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt
    return
  fi
  base=$(git show "$rev:CMakeLists.txt" | sed -n 's/^project(taskgroupd VERSION \([0-9.]*\).*/\1/p')
  local v="$base+git$(git rev-list --count "$rev").g$(git rev-parse --short=7 "$rev")"
  if [[ $rev == HEAD ]] && [[ -n $(git status --porcelain --untracked-files=no) ]]; then
    v+=.dirty
  fi
  echo "$v"
}

rev=HEAD
version=
out=
if [[ ${1:-} == --print-version ]]; then version_of "${2:-HEAD}"; exit 0; fi
while (($#)); do
  case $1 in
    --version-of) rev=${2:?}; shift 2 ;;
    --version) version=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    *) usage ;;
  esac
done

scripts/deps.sh

build=${TG_PACKAGE_DIR:-build/package}
out=${out:-$build}
mkdir -p "$out"
out=$(readlink -f "$out")
if [[ -n $version ]]; then
  date=$(date -u -R)
  changes="The working tree, packaged as version $version."
elif git rev-parse --verify -q "$rev^{commit}" >/dev/null 2>&1; then
  version=$(version_of "$rev")
  date=$(date -u -R -d "@$(git log -1 --format=%ct "$rev")")
  changes="Snapshot of commit $(git rev-parse --short=7 "$rev"): $(git log -1 --format=%s "$rev")"
else
  version=$(version_of "$rev")
  date=$(date -u -R)
  changes="Built from a source tree outside git."
fi

changes=${changes:0:76}  # "  * " first: a changelog line has at most 80 characters.

# Debian's flags (hardening: fortify, stack protector, relro, bindnow), without -g: the
# package ships stripped binaries and no debug symbols.
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
cxxflags="$(dpkg-buildflags --get CPPFLAGS) $(dpkg-buildflags --get CXXFLAGS)"
cxxflags=$(sed -E 's/(^| )-g( |$)/ /' <<<"$cxxflags")
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DTG_BUILD_TESTS=OFF -DCMAKE_INSTALL_PREFIX=/usr \
  -DCMAKE_CXX_FLAGS="$cxxflags" -DCMAKE_EXE_LINKER_FLAGS="$(dpkg-buildflags --get LDFLAGS)" \
  -DCMAKE_MODULE_LINKER_FLAGS="$(dpkg-buildflags --get LDFLAGS)" "${launcher[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)" >&2

cpack=$(dirname "$(command -v cmake)")/cpack
rm -f "$out"/taskgroupd_*.deb  # One package in the directory: ./taskgroupd_*.deb names it.
# cpack's progress to stderr: the last line of stdout is the package's path.
"$cpack" --config "$build/CPackConfig.cmake" -G DEB -B "$out" -R "$version" \
  -D CPACK_TG_CHANGELOG_DATE="$date" -D CPACK_TG_CHANGES="$changes" >&2
rm -rf "$out/_CPack_Packages"
deb=$out/taskgroupd_${version}_$(dpkg --print-architecture).deb
[[ -f $deb ]] || { echo "package.sh: cpack made no $deb" >&2; exit 1; }
echo "$deb"
