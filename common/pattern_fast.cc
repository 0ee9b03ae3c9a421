#include "common/pattern_fast.h"

#include <algorithm>
#include <array>
#include <bit>
#include <stdexcept>
#include <string>

#include "common/pattern_simd.h"

namespace dmahil::pattern {
namespace {

// Non-temporal stores from this size on (x86): the buffer would not stay in the caches.
constexpr size_t kStreamBytes = size_t{8} << 20;

struct Kernels {
  size_t (*match)(const simd::Params&, const uint8_t*, size_t);
  size_t (*fill)(const simd::Params&, uint8_t*, size_t, bool);
  size_t block_bytes_min;  // lanes * 8: a block is max(line, this) bytes
};

struct Available {
  std::array<Path, 5> paths{};
  size_t count = 0;
};

Available Detect() {
  Available a;
  a.paths[a.count++] = Path::kScalar;
#if defined(__x86_64__)
  __builtin_cpu_init();
  a.paths[a.count++] = Path::kSse2;
  if (__builtin_cpu_supports("avx2")) a.paths[a.count++] = Path::kAvx2;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq"))
    a.paths[a.count++] = Path::kAvx512;
#elif defined(__aarch64__)
  a.paths[a.count++] = Path::kNeon;  // Advanced SIMD is mandatory in AArch64
#endif
  return a;
}

const Available& Paths() {
  static const Available available = Detect();
  return available;
}

bool IsAvailable(Path path) {
  const Available& a = Paths();
  return std::find(a.paths.begin(), a.paths.begin() + a.count, path) != a.paths.begin() + a.count;
}

// The kernels of a vector path; nullptr members for kScalar.
Kernels KernelsOf(Path path) {
  switch (path) {
#if defined(__x86_64__)
    case Path::kSse2:
      return {simd::MatchBlocksSse2, simd::FillBlocksSse2, 16};
    case Path::kAvx2:
      return {simd::MatchBlocksAvx2, simd::FillBlocksAvx2, 32};
    case Path::kAvx512:
      return {simd::MatchBlocksAvx512, simd::FillBlocksAvx512, 64};
#endif
#if defined(__aarch64__)
    case Path::kNeon:
      return {simd::MatchBlocksNeon, simd::FillBlocksNeon, 16};
#endif
    default:
      return {nullptr, nullptr, 0};
  }
}

Kernels Prepare(const Spec& spec, Path path) {
  if (!ValidLineSize(spec.line_size))
    throw std::invalid_argument("pattern line size " + std::to_string(spec.line_size) +
                                " is not a power of two in [16, 4096]");
  if (!IsAvailable(path))
    throw std::invalid_argument("pattern path " + std::string(PathName(path)) +
                                " is not available on this CPU");
  return KernelsOf(path);
}

simd::Params ParamsOf(const Spec& spec) {
  return {spec.seed, HeaderWord0(spec.seed, spec.buffer_id, spec.generation), spec.first_line,
          static_cast<unsigned>(std::countr_zero(spec.line_size / 8))};
}

bool LineMatches(const Spec& spec, uint64_t w0, uint32_t line, const uint8_t* p) {
  for (uint32_t k = 0; k < spec.line_size / 8; ++k)
    if (detail::Load(p + 8 * k) != LineWord(spec.seed, w0, line, k)) return false;
  return true;
}

}  // namespace

std::string_view PathName(Path path) {
  switch (path) {
    case Path::kScalar:
      return "scalar";
    case Path::kSse2:
      return "sse2";
    case Path::kAvx2:
      return "avx2";
    case Path::kAvx512:
      return "avx512";
    case Path::kNeon:
      return "neon";
  }
  return "unknown";
}

std::span<const Path> AvailablePaths() {
  const Available& a = Paths();
  return {a.paths.data(), a.count};
}

Path BestPath() {
  // The last available path, except that SSE2 (two lanes and a multiply built from three
  // 32-bit ones) is slower than the scalar engine: dmahil-bench measures every path.
  static const Path best = [] {
    const Path last = AvailablePaths().back();
    return last == Path::kSse2 ? Path::kScalar : last;
  }();
  return best;
}

void FastFill(const Spec& spec, uint8_t* out, size_t bytes, Path path) {
  const Kernels k = Prepare(spec, path);
  const size_t lines = bytes / spec.line_size;
  size_t done = 0;
  if (k.fill != nullptr) {
    const bool stream =
        bytes >= kStreamBytes && reinterpret_cast<uintptr_t>(out) % k.block_bytes_min == 0;
    done = k.fill(ParamsOf(spec), out, lines, stream);
  }
  for (size_t i = done; i < lines; ++i)
    FillLine(spec, spec.first_line + static_cast<uint32_t>(i), out + i * spec.line_size);
}

size_t MatchingLines(const Spec& spec, const uint8_t* data, size_t lines, Path path) {
  const Kernels k = Prepare(spec, path);
  const uint64_t w0 = HeaderWord0(spec.seed, spec.buffer_id, spec.generation);
  const size_t block_lines =
      k.match == nullptr ? 1 : std::max<size_t>(1, k.block_bytes_min / spec.line_size);
  size_t i = 0;
  while (i < lines) {
    if (k.match != nullptr) {
      simd::Params p = ParamsOf(spec);
      p.first_line = spec.first_line + static_cast<uint32_t>(i);
      i += k.match(p, data + i * spec.line_size, lines - i);
    }
    // The block the kernel stopped at (it holds a difference), or the lines after the
    // last whole block: line by line.
    const size_t end = std::min(lines, i + block_lines);
    for (; i < end; ++i)
      if (!LineMatches(spec, w0, spec.first_line + static_cast<uint32_t>(i),
                       data + i * spec.line_size))
        return i;
  }
  return lines;
}

}  // namespace dmahil::pattern
