# shellcheck shell=bash
# Helpers shared by scripts/test and scripts/demo. Expect the cwd to be the
# repository root.

FUTURA_JOBS="${FUTURA_JOBS:-$(nproc)}"

# ccache keys on paths relative to the clone, not absolute ones, so that a fresh
# clone (CI's) reuses what any other clone on the machine compiled. (The cost:
# debug info names the directory of whichever clone compiled an object first.)
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
export CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-true}"

# futura_banner TEXT: a line that stands out in a long CI log.
futura_banner() {
    printf '\n==================== %s ====================\n' "$*"
}

# futura_configure DIR CMAKE-ARGS...: configure DIR for Ninja, with ccache
# as the compiler launcher when there is one.
futura_configure() {
    local dir=$1
    shift
    local launcher=()
    if command -v ccache >/dev/null 2>&1; then
        launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    fi
    cmake -S . -B "$dir" -G Ninja "${launcher[@]}" "$@"
}

# futura_build DIR [TARGET...]: build DIR (all of it when no target is named).
futura_build() {
    local dir=$1
    shift
    local targets=()
    (($# == 0)) || targets=(--target "$@")
    cmake --build "$dir" -j "$FUTURA_JOBS" "${targets[@]}"
}
