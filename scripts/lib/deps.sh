# shellcheck shell=bash
# The system packages futura's scripts need, in one place, and a function that
# installs whichever are missing. Sourced by scripts/test and scripts/demo.

# g++, cmake, ninja, ccache: the build. Boost 1.81 (all libraries + b2),
# TBB and Google Benchmark: the library, its tests and its benchmarks.
# python3 + joblib + numpy: the Python peers in bench/. clang, lld and the
# clang runtime: the fuzz target (libFuzzer).
FUTURA_PACKAGES=(
    g++
    cmake
    ninja-build
    ccache
    libboost1.81-all-dev
    libboost1.81-tools-dev
    libtbb-dev
    libbenchmark-dev
    python3
    python3-joblib
    python3-numpy
    python3-matplotlib # the benchmark charts (bench/charts.py)
    clang
    lld
    libclang-rt-14-dev
    openmpi-bin    # futura::mpi: mpiexec for its tests and benchmark
    libopenmpi-dev # (Boost.MPI itself comes with libboost1.81-all-dev)
    python3-mpi4py # the benchmark's peer (mpi4py.futures)
)

# futura_install_packages PACKAGE...
# Installs the given Debian packages that are not installed yet; quiet, and
# touches neither the network nor apt's lists, when all of them are.
futura_install_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]]; then
            missing+=("$pkg")
        fi
    done
    ((${#missing[@]} > 0)) || return 0

    local sudo=()
    if ((EUID != 0)); then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        else
            echo "error: missing packages (${missing[*]}) and not root, no sudo" >&2
            return 1
        fi
    fi
    echo "==> installing missing packages: ${missing[*]}"
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# futura_install_deps: everything in FUTURA_PACKAGES.
futura_install_deps() {
    futura_install_packages "${FUTURA_PACKAGES[@]}"
}
