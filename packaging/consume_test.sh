#!/usr/bin/env bash
# Installs the build into a scratch prefix and moves the prefix elsewhere
# (pmm.pc and the CMake package find everything relative to themselves), then
# builds two programs against it as a user would and runs them against the
# installed pmmd:
#   consumer.c           C, with `pkg-config --cflags --libs pmm`
#   cmake_consumer/      C++17, with find_package(pmm) and CMAKE_PREFIX_PATH
# and checks that find_package(pmm 1) and (before 1.0) find_package(pmm 0.2)
# are refused.
#   consume_test.sh BUILD_DIR PACKAGING_DIR [CFLAGS [CXXFLAGS [CXX]]]
# CFLAGS/CXXFLAGS/CXX: the build's own, e.g. -fsanitize=address, so the
# consumers link with the library as it was built.
set -euo pipefail
build=$1 src=$2 cflags=${3:-} cxxflags=${4:-} cxx=${5:-c++}
scratch=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$scratch"' EXIT
cmake --install "$build" --prefix "$scratch/staged" >"$scratch/install.log" 2>&1 ||
  { cat "$scratch/install.log"; echo "FAIL: cmake --install $build"; exit 1; }
mv "$scratch/staged" "$scratch/prefix"
prefix=$scratch/prefix

libdir=$(dirname "$(find "$prefix" -name pmm.pc)")
export PKG_CONFIG_PATH=$libdir
cc $cflags -o "$scratch/consumer" "$src/consumer.c" $(pkg-config --cflags --libs pmm) \
  -Wl,-rpath,"$(pkg-config --variable=libdir pmm)" || { echo "FAIL: building consumer.c"; exit 1; }

config=$(find "$prefix" -name pmmConfig.cmake)
[ -n "$config" ] || { echo "FAIL: no pmmConfig.cmake under $prefix"; exit 1; }
echo "CMake package: ${config#"$prefix"/}"
cmake -S "$src/cmake_consumer" -B "$scratch/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_CXX_FLAGS="$cxxflags" >"$scratch/cmake.log" 2>&1 ||
  { cat "$scratch/cmake.log"; echo "FAIL: configuring the find_package(pmm) consumer"; exit 1; }
cmake --build "$scratch/cmake-build" >>"$scratch/cmake.log" 2>&1 ||
  { cat "$scratch/cmake.log"; echo "FAIL: building the find_package(pmm) consumer"; exit 1; }
# The consumer links the moved prefix's libpmm, not the build tree's.
# (grep without -q reads all of ldd's output: -q exits at the first match,
# and under pipefail ldd's SIGPIPE then failed the test now and then.)
if ! ldd "$scratch/cmake-build/cmake_consumer" | grep "$prefix/.*libpmm.so" >/dev/null; then
  ldd "$scratch/cmake-build/cmake_consumer"; echo "FAIL: not linked to $prefix's libpmm"; exit 1
fi

export PMM_SOCKET=$scratch/pmm.sock
"$prefix/bin/pmmd" 2>"$scratch/pmmd.log" & pid=$!
for _ in $(seq 200); do [ -S "$PMM_SOCKET" ] && break; sleep 0.05; done
[ -S "$PMM_SOCKET" ] || { cat "$scratch/pmmd.log"; echo "FAIL: pmmd made no socket in 10 s"; exit 1; }
"$scratch/consumer" || { cat "$scratch/pmmd.log" >&2; exit 1; }
"$scratch/cmake-build/cmake_consumer" || { cat "$scratch/pmmd.log" >&2; exit 1; }

# Another major version, and (before 1.0) another minor one: the version
# file must refuse both, saying so.
for v in 1 0.2; do
  if cmake -S "$src/cmake_consumer" -B "$scratch/cmake-v$v" -DCMAKE_PREFIX_PATH="$prefix" \
       -DCMAKE_CXX_COMPILER="$cxx" -DPMM_REQUIRE_VERSION=$v >"$scratch/v$v.log" 2>&1; then
    echo "FAIL: find_package(pmm $v) accepted the installed pmm $(grep -o 'PACKAGE_VERSION "[^"]*"' \
      "$config"Version.cmake 2>/dev/null)"
    exit 1
  fi
  grep -q 'pmmConfig.cmake, version: ' "$scratch/v$v.log" || { cat "$scratch/v$v.log"; exit 1; }
  echo "find_package(pmm $v) refused: $(grep -m1 -o '[^/ ]*pmmConfig.cmake, version: .*' "$scratch/v$v.log")"
done
