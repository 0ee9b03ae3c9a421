#!/usr/bin/env bash
# Cross-builds the firmware's command path (firmware/engine.cc, common/pattern.h and the
# nanopb protocol handler firmware/wire/) for a bare-metal Cortex-R5F with Debian's
# gcc-arm-none-eabi (firmware/cross/), links a small image with a stub bus and transport,
# and fails if the image references the heap, exceptions or RTTI. Prints its sizes.
#   ci/firmware-cross.sh [BUILD_DIR]            (default BUILD_DIR: build-cross)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-cross}

PKGS=(cmake ninja-build protobuf-compiler nanopb gcc-arm-none-eabi binutils-arm-none-eabi
      libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib)
ci/apt-install.sh firmware-cross "${PKGS[@]}"

launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S firmware/cross -B "$BUILD" -G Ninja \
  -DCMAKE_TOOLCHAIN_FILE="$PWD/firmware/cross/arm-none-eabi.cmake" "${launcher[@]}" >/dev/null
cmake --build "$BUILD"
ELF="$BUILD/dmahil-firmware.elf"

# Symbols that mean a heap, exceptions or RTTI (mangled names): malloc & co. and sbrk,
# operator new/delete (_Znw*, _Zna*, _Zdl*, _Zda*), the C++ exception ABI and the
# unwinder, typeinfo objects and names (_ZTI*, _ZTS*).
FORBIDDEN='^(_?(malloc|free|calloc|realloc|memalign|posix_memalign|aligned_alloc)|_(malloc|free|calloc|realloc|memalign)_r|_?_sbrk(_r)?|_Zn[wa].*|_Zd[la].*|__cxa_(throw|rethrow|allocate_exception|free_exception|begin_catch|end_catch|call_unexpected|bad_cast|bad_typeid)|__gxx_personality_.*|__aeabi_unwind_cpp_pr[0-9]|_Unwind_.*|_ZTI.*|_ZTS.*)$'

# forbidden_symbols FILE: prints the forbidden symbols FILE defines or references.
forbidden_symbols() {
  arm-none-eabi-nm "$1" | awk '{print $NF}' | grep -E "$FORBIDDEN" | sort -u || true
}

# The check itself must be able to fail: an object using new, throw and typeid trips it.
probe_dir=$(mktemp -d)
trap 'rm -rf "$probe_dir"' EXIT
printf '%s\n' '#include <typeinfo>' 'struct B { virtual ~B(); };' \
  'const char* f(B& b) { int* p = new int(1); if (*p) throw 1; return typeid(b).name(); }' \
  >"$probe_dir/probe.cc"
arm-none-eabi-g++ -mcpu=cortex-r5 -mthumb -c "$probe_dir/probe.cc" -o "$probe_dir/probe.o"
probe=$(forbidden_symbols "$probe_dir/probe.o" | tr '\n' ' ')
for want in _Znwj __cxa_throw _ZTIi; do
  if [[ " $probe" != *" $want "* ]]; then
    echo "firmware-cross: the symbol check missed $want in a probe object (found: $probe)" >&2
    exit 1
  fi
done

bad=$(forbidden_symbols "$ELF")
if [ -n "$bad" ]; then
  echo "firmware-cross: FAIL: $ELF references the heap, exceptions or RTTI:" >&2
  echo "$bad" | sed 's/^/  /' >&2
  exit 1
fi
echo "firmware-cross: $ELF: no heap, exception or RTTI symbols"
arm-none-eabi-size "$ELF"
