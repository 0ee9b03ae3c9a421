// The AVX-512 kernels of the pattern engine (common/pattern_simd.h): 8 lanes with the
// native 64-bit multiply of AVX-512DQ. Compiled with -mavx512f -mavx512dq
// (common/CMakeLists.txt) and called only when the CPU has both (pattern_fast.cc).
#if defined(__x86_64__)

#include <immintrin.h>

#include "common/pattern_simd.h"

namespace dmahil::pattern::simd {
namespace {

struct Avx512 {
  using T = __m512i;
  using Mask = __mmask8;
  static constexpr size_t kLanes = 8;
  // The shifts are the masked forms with every lane selected: GCC 12's unmasked ones
  // pass an "undefined" vector that -Wmaybe-uninitialized reports.
  static constexpr __mmask8 kAll = 0xFF;

  static T Set1(uint64_t v) { return _mm512_set1_epi64(static_cast<long long>(v)); }
  static T Iota() { return _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0); }
  static T Add(T a, T b) { return _mm512_add_epi64(a, b); }
  static T Xor(T a, T b) { return _mm512_xor_si512(a, b); }
  static T Or(T a, T b) { return _mm512_or_si512(a, b); }
  static T And(T a, T b) { return _mm512_and_si512(a, b); }
  template <int N>
  static T Srli(T x) {
    return _mm512_mask_srli_epi64(x, kAll, x, N);
  }
  template <int N>
  static T Slli(T x) {
    return _mm512_mask_slli_epi64(x, kAll, x, N);
  }
  static T SrlVar(T x, unsigned n) {
    return _mm512_mask_srl_epi64(x, kAll, x, _mm_cvtsi32_si128(static_cast<int>(n)));
  }
  static T Mul(T x, uint64_t c) { return _mm512_mullo_epi64(x, Set1(c)); }
  static Mask Eq(T a, T b) { return _mm512_cmpeq_epi64_mask(a, b); }
  static T Select(Mask m, T a, T b) { return _mm512_mask_blend_epi64(m, b, a); }
  static T Load(const uint8_t* p) { return _mm512_loadu_si512(p); }
  static void Store(uint8_t* p, T v) { _mm512_storeu_si512(p, v); }
  static void Stream(uint8_t* p, T v) { _mm512_stream_si512(reinterpret_cast<__m512i*>(p), v); }
  static void StreamFence() { _mm_sfence(); }
  // v with lanes 0 and 1 replaced by w0 and w1.
  static T WithHeader(T v, uint64_t w0, uint64_t w1) {
    const __m128i h = _mm_set_epi64x(static_cast<long long>(w1), static_cast<long long>(w0));
    return _mm512_mask_blend_epi64(0x03, v, _mm512_castsi128_si512(h));
  }
  static bool IsZero(T x) { return _mm512_test_epi64_mask(x, x) == 0; }
};

}  // namespace

size_t MatchBlocksAvx512(const Params& p, const uint8_t* data, size_t lines) {
  return MatchBlocks<Avx512>(p, data, lines);
}

size_t FillBlocksAvx512(const Params& p, uint8_t* out, size_t lines, bool stream) {
  return FillBlocks<Avx512>(p, out, lines, stream);
}

}  // namespace dmahil::pattern::simd

#endif  // __x86_64__
