# dmahil_add_wire_library(<target> ENGINE <engine-target> [WARNINGS <flags>...])
#
# The firmware's own device-protocol handler (firmware/wire/frame_handler.cc, see
# docs/device-protocol.md) as a static library <target>, over:
#   <target>_nanopb: the nanopb 0.4.7 runtime (firmware/third_party/nanopb, the sources of
#     Debian's nanopb package) and the C code that Debian's nanopb generator
#     (protoc-gen-nanopb, run through protoc on the build host) makes from
#     proto/dmahil/v1/{pattern,device}.proto with the options in firmware/wire/options/.
# All of it is compiled as C++ with -fno-exceptions -fno-rtti and PB_BUFFER_ONLY (memory
# streams only), so the host build, the arm-none-eabi cross build (firmware/cross/) and the
# libFuzzer build (firmware/fuzz/) compile exactly the same code. Generated files are
# named *.npb.{h,c} so they never clash with libprotobuf's *.pb.h in the host build.
# <engine-target> provides firmware/engine.h (the CommandProcessor); WARNINGS apply to
# frame_handler.cc only (third-party and generated code are compiled without them).
#
# Included by firmware/CMakeLists.txt, firmware/cross/CMakeLists.txt and
# firmware/fuzz/CMakeLists.txt.
set(DMAHIL_WIRE_REPO_ROOT "${CMAKE_CURRENT_LIST_DIR}/../.." CACHE INTERNAL "")

function(dmahil_add_wire_library target)
  cmake_parse_arguments(W "" "ENGINE" "WARNINGS" ${ARGN})
  # Host programs, even in a cross build (the toolchain file leaves programs to the host).
  find_program(DMAHIL_PROTOC protoc REQUIRED)
  find_program(DMAHIL_PROTOC_GEN_NANOPB protoc-gen-nanopb REQUIRED)

  set(root "${DMAHIL_WIRE_REPO_ROOT}")
  set(gen "${CMAKE_CURRENT_BINARY_DIR}/${target}_gen")
  set(protos dmahil/v1/pattern.proto dmahil/v1/device.proto)
  set(outputs)
  set(proto_deps)
  foreach(p ${protos})
    string(REGEX REPLACE "\\.proto$" "" stem "${p}")
    list(APPEND outputs "${gen}/${stem}.npb.c" "${gen}/${stem}.npb.h")
    list(APPEND proto_deps "${root}/proto/${p}" "${root}/firmware/wire/options/${stem}.options")
  endforeach()
  add_custom_command(
    OUTPUT ${outputs}
    COMMAND "${CMAKE_COMMAND}" -E make_directory "${gen}"
    COMMAND "${DMAHIL_PROTOC}" "--plugin=protoc-gen-nanopb=${DMAHIL_PROTOC_GEN_NANOPB}"
            -I "${root}/proto" "--nanopb_opt=-e.npb"
            "--nanopb_opt=-I${root}/firmware/wire/options" "--nanopb_out=${gen}" ${protos}
    DEPENDS ${proto_deps}
    COMMENT "nanopb: generating the device protocol's C code"
    VERBATIM)

  set(np "${root}/firmware/third_party/nanopb")
  set(c_sources "${np}/pb_common.c" "${np}/pb_decode.c" "${np}/pb_encode.c"
                "${gen}/dmahil/v1/pattern.npb.c" "${gen}/dmahil/v1/device.npb.c")
  set_source_files_properties(${c_sources} PROPERTIES LANGUAGE CXX)
  add_library(${target}_nanopb STATIC ${c_sources})
  target_include_directories(${target}_nanopb SYSTEM PUBLIC "${np}" "${gen}")
  target_compile_definitions(${target}_nanopb PUBLIC PB_BUFFER_ONLY=1)
  target_compile_options(${target}_nanopb PRIVATE -fno-exceptions -fno-rtti)

  add_library(${target} STATIC "${root}/firmware/wire/frame_handler.cc")
  target_include_directories(${target} PUBLIC "${root}")
  target_link_libraries(${target} PUBLIC ${W_ENGINE} ${target}_nanopb)
  target_compile_options(${target} PRIVATE -fno-exceptions -fno-rtti ${W_WARNINGS})
endfunction()
