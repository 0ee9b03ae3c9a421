// The AVX2 kernels of the pattern engine (common/pattern_simd.h): 4 lanes. Compiled with
// -mavx2 (common/CMakeLists.txt) and called only when the CPU has AVX2
// (pattern_fast.cc). AVX2 has no 64-bit multiply; it is built from _mm256_mul_epu32.
#if defined(__x86_64__)

#include <immintrin.h>

#include "common/pattern_simd.h"

namespace dmahil::pattern::simd {
namespace {

struct Avx2 {
  using T = __m256i;
  using Mask = __m256i;
  static constexpr size_t kLanes = 4;

  static T Set1(uint64_t v) { return _mm256_set1_epi64x(static_cast<long long>(v)); }
  static T Iota() { return _mm256_set_epi64x(3, 2, 1, 0); }
  static T Add(T a, T b) { return _mm256_add_epi64(a, b); }
  static T Xor(T a, T b) { return _mm256_xor_si256(a, b); }
  static T Or(T a, T b) { return _mm256_or_si256(a, b); }
  static T And(T a, T b) { return _mm256_and_si256(a, b); }
  template <int N>
  static T Srli(T x) {
    return _mm256_srli_epi64(x, N);
  }
  template <int N>
  static T Slli(T x) {
    return _mm256_slli_epi64(x, N);
  }
  static T SrlVar(T x, unsigned n) {
    return _mm256_srl_epi64(x, _mm_cvtsi32_si128(static_cast<int>(n)));
  }
  // x * c mod 2^64 = lo(x) lo(c) + (hi(x) lo(c) + lo(x) hi(c)) << 32, with both cross
  // products from one 32-bit multiply against c with its halves swapped.
  static T Mul(T x, uint64_t c) {
    const T cross = _mm256_mullo_epi32(x, Set1((c << 32) | (c >> 32)));
    const T sum = _mm256_add_epi32(cross, _mm256_srli_epi64(cross, 32));
    return _mm256_add_epi64(_mm256_mul_epu32(x, Set1(c)), _mm256_slli_epi64(sum, 32));
  }
  static Mask Eq(T a, T b) { return _mm256_cmpeq_epi64(a, b); }
  static T Select(Mask m, T a, T b) { return _mm256_blendv_epi8(b, a, m); }
  static T Load(const uint8_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  }
  static void Store(uint8_t* p, T v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
  static void Stream(uint8_t* p, T v) { _mm256_stream_si256(reinterpret_cast<__m256i*>(p), v); }
  static void StreamFence() { _mm_sfence(); }
  // v with lanes 0 and 1 replaced by w0 and w1.
  static T WithHeader(T v, uint64_t w0, uint64_t w1) {
    const __m128i h = _mm_set_epi64x(static_cast<long long>(w1), static_cast<long long>(w0));
    return _mm256_blend_epi32(v, _mm256_castsi128_si256(h), 0x0F);
  }
  static bool IsZero(T x) { return _mm256_testz_si256(x, x) != 0; }
};

}  // namespace

size_t MatchBlocksAvx2(const Params& p, const uint8_t* data, size_t lines) {
  return MatchBlocks<Avx2>(p, data, lines);
}

size_t FillBlocksAvx2(const Params& p, uint8_t* out, size_t lines, bool stream) {
  return FillBlocks<Avx2>(p, out, lines, stream);
}

}  // namespace dmahil::pattern::simd

#endif  // __x86_64__
