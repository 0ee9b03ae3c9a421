// The NEON kernels of the pattern engine (common/pattern_simd.h): 2 lanes on aarch64.
// NEON has no 64-bit multiply; it is built from vmull_u32 / vmlal_u32.
#if defined(__aarch64__)

#include <arm_neon.h>

#include "common/pattern_simd.h"

namespace dmahil::pattern::simd {
namespace {

struct Neon {
  using T = uint64x2_t;
  using Mask = uint64x2_t;
  static constexpr size_t kLanes = 2;

  static T Set1(uint64_t v) { return vdupq_n_u64(v); }
  static T Iota() { return vcombine_u64(vcreate_u64(0), vcreate_u64(1)); }
  static T Add(T a, T b) { return vaddq_u64(a, b); }
  static T Xor(T a, T b) { return veorq_u64(a, b); }
  static T Or(T a, T b) { return vorrq_u64(a, b); }
  static T And(T a, T b) { return vandq_u64(a, b); }
  template <int N>
  static T Srli(T x) {
    return vshrq_n_u64(x, N);
  }
  template <int N>
  static T Slli(T x) {
    return vshlq_n_u64(x, N);
  }
  static T SrlVar(T x, unsigned n) { return vshlq_u64(x, vdupq_n_s64(-static_cast<int64_t>(n))); }
  // x * c mod 2^64 = lo(x) lo(c) + (hi(x) lo(c) + lo(x) hi(c)) << 32.
  static T Mul(T x, uint64_t c) {
    const uint32x2_t lo = vmovn_u64(x);
    const uint32x2_t hi = vshrn_n_u64(x, 32);
    const uint32x2_t cl = vdup_n_u32(static_cast<uint32_t>(c));
    const uint32x2_t ch = vdup_n_u32(static_cast<uint32_t>(c >> 32));
    const uint64x2_t cross = vmlal_u32(vmull_u32(hi, cl), lo, ch);
    return vaddq_u64(vmull_u32(lo, cl), vshlq_n_u64(cross, 32));
  }
  static Mask Eq(T a, T b) { return vceqq_u64(a, b); }
  static T Select(Mask m, T a, T b) { return vbslq_u64(m, a, b); }
  static T Load(const uint8_t* p) { return vreinterpretq_u64_u8(vld1q_u8(p)); }
  static void Store(uint8_t* p, T v) { vst1q_u8(p, vreinterpretq_u8_u64(v)); }
  static void Stream(uint8_t* p, T v) { Store(p, v); }
  static void StreamFence() {}
  // [w0, w1]: a line of two lanes holds nothing but its header.
  static T WithHeader(T, uint64_t w0, uint64_t w1) {
    return vcombine_u64(vcreate_u64(w0), vcreate_u64(w1));
  }
  static bool IsZero(T x) { return vmaxvq_u32(vreinterpretq_u32_u64(x)) == 0; }
};

}  // namespace

size_t MatchBlocksNeon(const Params& p, const uint8_t* data, size_t lines) {
  return MatchBlocks<Neon>(p, data, lines);
}

size_t FillBlocksNeon(const Params& p, uint8_t* out, size_t lines, bool stream) {
  return FillBlocks<Neon>(p, out, lines, stream);
}

}  // namespace dmahil::pattern::simd

#endif  // __aarch64__
