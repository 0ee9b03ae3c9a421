# CMake toolchain file: Linux on arm64 (aarch64) with Debian's cross compilers
# (g++-aarch64-linux-gnu 12) against an arm64 Debian sysroot that qemu/sysroot.sh builds
# from `apt-get download` + `dpkg-deb -x` of the -dev packages (build-qemu/sysroot).
# Used by qemu/build-agent.sh for the qemu-xen-arm64 board's agent:
#
#   cmake -S . -B build-qemu/agent-aarch64 -DDMAHIL_AGENT_ONLY=ON \
#         -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake [-DDMAHIL_SYSROOT=DIR]
#
# Code generators (protoc, grpc_cpp_plugin, protoc-gen-nanopb) are the HOST's programs:
# programs are never searched in the sysroot (CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER),
# and the gRPC::grpc_cpp_plugin target that the arm64 gRPCTargets.cmake imports from
# <sysroot>/usr/bin resolves to the host plugin through the symlinks qemu/sysroot.sh makes.
# The host and sysroot protobuf/gRPC versions must match (qemu/sysroot.sh pins them).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

# The sysroot: -DDMAHIL_SYSROOT=DIR, else $DMAHIL_SYSROOT, else <repo>/build-qemu/sysroot.
# try_compile projects re-read this file; CMAKE_TRY_COMPILE_PLATFORM_VARIABLES passes the
# value on to them.
if(NOT DMAHIL_SYSROOT)
  if(DEFINED ENV{DMAHIL_SYSROOT})
    set(DMAHIL_SYSROOT "$ENV{DMAHIL_SYSROOT}")
  else()
    get_filename_component(DMAHIL_SYSROOT "${CMAKE_CURRENT_LIST_DIR}/../build-qemu/sysroot"
                           ABSOLUTE)
  endif()
endif()
if(NOT EXISTS "${DMAHIL_SYSROOT}/usr/include/aarch64-linux-gnu/bits")
  message(FATAL_ERROR "aarch64 sysroot '${DMAHIL_SYSROOT}' has no libc6-dev:arm64 headers: "
                      "run qemu/sysroot.sh first (or pass -DDMAHIL_SYSROOT=DIR)")
endif()
set(DMAHIL_SYSROOT "${DMAHIL_SYSROOT}" CACHE PATH "arm64 sysroot (qemu/sysroot.sh)")
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES DMAHIL_SYSROOT)

set(CMAKE_SYSROOT "${DMAHIL_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH "${DMAHIL_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config (gRPC's Findre2.cmake and Findc-ares.cmake fall back to it) must read the
# sysroot's arm64 .pc files and prefix their paths with the sysroot, never the host's.
set(ENV{PKG_CONFIG_DIR} "")
set(ENV{PKG_CONFIG_PATH} "")
set(ENV{PKG_CONFIG_LIBDIR} "${DMAHIL_SYSROOT}/usr/lib/aarch64-linux-gnu/pkgconfig:\
${DMAHIL_SYSROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${DMAHIL_SYSROOT}")

# ld resolves the DT_NEEDED of shared libraries it links against (libgrpc++ -> libabsl_*,
# libssl3, ...) through -rpath-link; Debian's multiarch directories inside the sysroot.
set(DMAHIL_SYSROOT_LIBDIRS
    "${DMAHIL_SYSROOT}/lib/aarch64-linux-gnu" "${DMAHIL_SYSROOT}/usr/lib/aarch64-linux-gnu")
string(REPLACE ";" ":" _dmahil_rpath_link "${DMAHIL_SYSROOT_LIBDIRS}")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-Wl,-rpath-link,${_dmahil_rpath_link}")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-Wl,-rpath-link,${_dmahil_rpath_link}")
