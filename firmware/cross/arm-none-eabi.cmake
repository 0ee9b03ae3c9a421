# CMake toolchain file: bare-metal Arm Cortex-R5F with Debian's gcc-arm-none-eabi and
# libnewlib-arm-none-eabi (newlib-nano). Used by firmware/cross/ (ci/firmware-cross.sh).
#
# Why Cortex-R5F: it is the hard real-time core next to the FPGA fabric on the parts a
# DMA engine of this harness runs on (the RPU of Zynq UltraScale+ MPSoC, e.g. the ZCU102
# reference board, and of Versal): tightly coupled memory, no MMU needed, AXI access to the
# PCIe DMA master. ARMv7-R, Thumb-2, VFPv3-D16 double-precision FPU, hard-float ABI
# (newlib's thumb/v7+fp/hard multilib).
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_CXX_COMPILER arm-none-eabi-g++)
# No OS to run test programs on: CMake's compiler checks build a static library.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

set(DMAHIL_CPU_FLAGS "-mcpu=cortex-r5 -mfpu=vfpv3-d16 -mfloat-abi=hard -mthumb")
# Freestanding C++: no exceptions, no RTTI, no thread-safe statics (no OS), no
# __cxa_atexit (nothing is ever destroyed); one section per function/object so the link
# drops what the image does not use.
set(CMAKE_CXX_FLAGS_INIT "${DMAHIL_CPU_FLAGS} -ffreestanding -fno-exceptions -fno-rtti \
-fno-threadsafe-statics -fno-use-cxa-atexit -ffunction-sections -fdata-sections")
set(CMAKE_C_FLAGS_INIT "${DMAHIL_CPU_FLAGS} -ffreestanding -ffunction-sections -fdata-sections")
# newlib-nano for memcpy/memset/strlen; nosys: no system calls; our own startup code.
set(CMAKE_EXE_LINKER_FLAGS_INIT "${DMAHIL_CPU_FLAGS} --specs=nano.specs --specs=nosys.specs \
-nostartfiles -Wl,--gc-sections")

# Programs (protoc, the nanopb generator) come from the build host; everything else from
# the cross toolchain.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
