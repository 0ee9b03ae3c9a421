// The SSE2 kernels of the pattern engine (common/pattern_simd.h): 2 lanes, the x86-64
// baseline. SSE2 has no 64-bit multiply or compare; both are built from 32-bit pieces.
#if defined(__x86_64__)

#include <emmintrin.h>

#include "common/pattern_simd.h"

namespace dmahil::pattern::simd {
namespace {

struct Sse2 {
  using T = __m128i;
  using Mask = __m128i;
  static constexpr size_t kLanes = 2;

  static T Set1(uint64_t v) { return _mm_set1_epi64x(static_cast<long long>(v)); }
  static T Iota() { return _mm_set_epi64x(1, 0); }
  static T Add(T a, T b) { return _mm_add_epi64(a, b); }
  static T Xor(T a, T b) { return _mm_xor_si128(a, b); }
  static T Or(T a, T b) { return _mm_or_si128(a, b); }
  static T And(T a, T b) { return _mm_and_si128(a, b); }
  template <int N>
  static T Srli(T x) {
    return _mm_srli_epi64(x, N);
  }
  template <int N>
  static T Slli(T x) {
    return _mm_slli_epi64(x, N);
  }
  static T SrlVar(T x, unsigned n) {
    return _mm_srl_epi64(x, _mm_cvtsi32_si128(static_cast<int>(n)));
  }
  // x * c mod 2^64 = lo(x) lo(c) + (hi(x) lo(c) + lo(x) hi(c)) << 32.
  static T Mul(T x, uint64_t c) {
    const T cl = Set1(c);
    const T ch = Set1(c >> 32);
    const T cross = _mm_add_epi64(_mm_mul_epu32(_mm_srli_epi64(x, 32), cl), _mm_mul_epu32(x, ch));
    return _mm_add_epi64(_mm_mul_epu32(x, cl), _mm_slli_epi64(cross, 32));
  }
  static Mask Eq(T a, T b) {
    const T m = _mm_cmpeq_epi32(a, b);
    return _mm_and_si128(m, _mm_shuffle_epi32(m, _MM_SHUFFLE(2, 3, 0, 1)));
  }
  static T Select(Mask m, T a, T b) {
    return _mm_or_si128(_mm_and_si128(m, a), _mm_andnot_si128(m, b));
  }
  static T Load(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
  static void Store(uint8_t* p, T v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v); }
  static void Stream(uint8_t* p, T v) { _mm_stream_si128(reinterpret_cast<__m128i*>(p), v); }
  static void StreamFence() { _mm_sfence(); }
  // [w0, w1]: a line of two lanes holds nothing but its header.
  static T WithHeader(T, uint64_t w0, uint64_t w1) {
    return _mm_set_epi64x(static_cast<long long>(w1), static_cast<long long>(w0));
  }
  static bool IsZero(T x) {
    return _mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_setzero_si128())) == 0xFFFF;
  }
};

}  // namespace

size_t MatchBlocksSse2(const Params& p, const uint8_t* data, size_t lines) {
  return MatchBlocks<Sse2>(p, data, lines);
}

size_t FillBlocksSse2(const Params& p, uint8_t* out, size_t lines, bool stream) {
  return FillBlocks<Sse2>(p, out, lines, stream);
}

}  // namespace dmahil::pattern::simd

#endif  // __x86_64__
