// The vector kernels of the pattern engine (common/pattern_fast.h), one template over a
// small "lanes of 64-bit words" type V that each instruction-set file
// (common/pattern_x86_*.cc, common/pattern_neon.cc) defines for itself.
//
// Internal to common/: include it only from those files and pattern_fast.cc. It uses
// nothing but <cstddef>/<cstdint> and templates, so that a file compiled with -mavx2 or
// -mavx512f emits no out-of-line function another file could pick up (every
// instantiation is over a V in that file's anonymous namespace).
//
// The words are the ones of common/pattern.h's header comment, computed for L lanes at
// once: the words of a range are numbered j = 0, 1, ...; word j is word k = j mod W of line
// first_line + j / W (W = line_size / 8, a power of two; line indices wrap at 32 bits as
// in pattern::Fill). Per lane, with y = SplitMix64(k == 1 ? word0 * 31 + line
//                                                        : word0 ^ line << 20 ^ k):
//   k == 0: word0;  k == 1: line << 32 | y >> 32 (= Check32);  k >= 2: SplitMix64(seed ^ y).
// Two generators: LineVectors when a line holds at least one vector (the usual case),
// WordStream otherwise.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dmahil::pattern::simd {

/// What a kernel needs of a pattern::Spec, for a range starting at line first_line.
/// Trivial (no initialisers), so that no file emits code for it.
struct Params {
  uint64_t seed;
  uint64_t word0;       // pattern::HeaderWord0(seed, buffer_id, generation)
  uint32_t first_line;  // line index of the first line of the range
  unsigned word_shift;  // log2(line_size / 8): 1 (16 B) .. 9 (4096 B)
};

/// SplitMix64 of common/pattern.h, on one word (a template, as everything here).
template <class V>
uint64_t ScalarSplitMix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

/// SplitMix64 on every lane.
template <class V>
typename V::T SplitMix(typename V::T x) {
  x = V::Add(x, V::Set1(0x9E3779B97F4A7C15ULL));
  x = V::Mul(V::Xor(x, V::template Srli<30>(x)), 0xBF58476D1CE4E5B9ULL);
  x = V::Mul(V::Xor(x, V::template Srli<27>(x)), 0x94D049BB133111EBULL);
  return V::Xor(x, V::template Srli<31>(x));
}

/// The expected words of a range, L lanes (V::kLanes) at a time, in order, for any line
/// size; used when a line holds fewer than L words (16- and 32-byte lines with AVX2 and
/// AVX-512), where one vector spans several lines.
template <class V>
class WordStream {
 public:
  using T = typename V::T;

  explicit WordStream(const Params& p)
      : seed_(V::Set1(p.seed)),
        w0_(V::Set1(p.word0)),
        c31_(V::Set1(p.word0 * 31)),
        first_(V::Set1(p.first_line)),
        kmask_(V::Set1((uint64_t{1} << p.word_shift) - 1)),
        low32_(V::Set1(0xFFFFFFFFull)),
        one_(V::Set1(1)),
        zero_(V::Set1(0)),
        step_(V::Set1(V::kLanes)),
        j_(V::Iota()),
        shift_(p.word_shift) {}

  /// The next L words.
  T Next() {
    const T line = V::And(V::Add(first_, V::SrlVar(j_, shift_)), low32_);
    const T k = V::And(j_, kmask_);
    j_ = V::Add(j_, step_);
    const auto is1 = V::Eq(k, one_);
    const T body_in = V::Xor(V::Xor(w0_, V::template Slli<20>(line)), k);
    const T y = SplitMix<V>(V::Select(is1, V::Add(c31_, line), body_in));
    const T body = SplitMix<V>(V::Xor(seed_, y));
    const T w1 = V::Or(V::template Slli<32>(line), V::template Srli<32>(y));
    return V::Select(V::Eq(k, zero_), w0_, V::Select(is1, w1, body));
  }

 private:
  T seed_, w0_, c31_, first_, kmask_, low32_, one_, zero_, step_;
  T j_;
  unsigned shift_;
};

/// The expected lines of a range when a line has at least L words (W >= L), the usual
/// case: per line, the two header words in scalar code and the body L words at a time,
/// with the word index k of each lane known in advance.
template <class V>
class LineVectors {
 public:
  using T = typename V::T;

  explicit LineVectors(const Params& p)
      : seed_(V::Set1(p.seed)),
        iota_(V::Iota()),
        step_(V::Set1(V::kLanes)),
        word0_(p.word0),
        first_line_(p.first_line) {}

  /// Starts line i of the range; returns its first L words.
  T Begin(size_t i) {
    const uint32_t line = first_line_ + static_cast<uint32_t>(i);
    const uint64_t w1 = (uint64_t{line} << 32) | (ScalarSplitMix<V>(word0_ * 31 + line) >> 32);
    base_ = V::Set1(word0_ ^ (uint64_t{line} << 20));
    k_ = iota_;
    return V::WithHeader(Body(), word0_, w1);
  }
  /// The next L words of the line.
  T Next() {
    k_ = V::Add(k_, step_);
    return Body();
  }

 private:
  T Body() const { return SplitMix<V>(V::Xor(seed_, SplitMix<V>(V::Xor(base_, k_)))); }

  T seed_, iota_, step_;
  T base_{}, k_{};
  uint64_t word0_;
  uint32_t first_line_;
};

/// Lines per kernel block: a block is max(W, L) words, whole lines and whole vectors.
template <class V>
constexpr size_t BlockLines(unsigned word_shift) {
  const size_t words = size_t{1} << word_shift;
  return words >= V::kLanes ? 1 : V::kLanes / words;
}

/// Number of leading lines of `data` (lines of 8 << p.word_shift bytes) in whole blocks
/// that all equal their expected lines: stops at the first block with a difference, so
/// the result is a multiple of BlockLines and the caller scans what follows.
template <class V>
size_t MatchBlocks(const Params& p, const uint8_t* data, size_t lines) {
  using T = typename V::T;
  if ((size_t{1} << p.word_shift) >= V::kLanes) {
    const size_t vectors = (size_t{1} << p.word_shift) / V::kLanes;  // per line
    LineVectors<V> expected(p);
    for (size_t i = 0; i < lines; ++i) {
      T diff = V::Xor(V::Load(data), expected.Begin(i));
      data += 8 * V::kLanes;
      for (size_t v = 1; v < vectors; ++v) {
        diff = V::Or(diff, V::Xor(V::Load(data), expected.Next()));
        data += 8 * V::kLanes;
      }
      if (!V::IsZero(diff)) return i;
    }
    return lines;
  }
  const size_t block_lines = BlockLines<V>(p.word_shift);
  const size_t vectors = (block_lines << p.word_shift) / V::kLanes;  // per block
  const size_t blocks = lines / block_lines;
  WordStream<V> words(p);
  for (size_t b = 0; b < blocks; ++b) {
    T diff = V::Xor(V::Load(data), words.Next());
    data += 8 * V::kLanes;
    for (size_t v = 1; v < vectors; ++v) {
      diff = V::Or(diff, V::Xor(V::Load(data), words.Next()));
      data += 8 * V::kLanes;
    }
    if (!V::IsZero(diff)) return b * block_lines;
  }
  return blocks * block_lines;
}

/// Writes the expected words of the whole blocks of `lines` lines to out; returns the
/// number of lines written (a multiple of BlockLines; the caller writes the rest).
/// stream: non-temporal stores (out must then be aligned to 8 * V::kLanes bytes).
template <class V>
size_t FillBlocks(const Params& p, uint8_t* out, size_t lines, bool stream) {
  const size_t block_lines = BlockLines<V>(p.word_shift);
  const size_t blocks = lines / block_lines;
  const size_t vectors = blocks * ((block_lines << p.word_shift) / V::kLanes);
  if ((size_t{1} << p.word_shift) >= V::kLanes) {
    const size_t per_line = (size_t{1} << p.word_shift) / V::kLanes;
    LineVectors<V> expected(p);
    for (size_t i = 0; i < lines; ++i) {
      if (stream) {
        V::Stream(out, expected.Begin(i));
        for (size_t v = 1; v < per_line; ++v) V::Stream(out + 8 * V::kLanes * v, expected.Next());
      } else {
        V::Store(out, expected.Begin(i));
        for (size_t v = 1; v < per_line; ++v) V::Store(out + 8 * V::kLanes * v, expected.Next());
      }
      out += 8 * V::kLanes * per_line;
    }
    if (stream) V::StreamFence();
    return lines;
  }
  WordStream<V> words(p);
  if (stream) {
    for (size_t v = 0; v < vectors; ++v, out += 8 * V::kLanes) V::Stream(out, words.Next());
    V::StreamFence();
  } else {
    for (size_t v = 0; v < vectors; ++v, out += 8 * V::kLanes) V::Store(out, words.Next());
  }
  return blocks * block_lines;
}

// The entry points of each instruction-set file (defined only where the target has it).
#if defined(__x86_64__)
size_t MatchBlocksSse2(const Params& p, const uint8_t* data, size_t lines);
size_t FillBlocksSse2(const Params& p, uint8_t* out, size_t lines, bool stream);
size_t MatchBlocksAvx2(const Params& p, const uint8_t* data, size_t lines);
size_t FillBlocksAvx2(const Params& p, uint8_t* out, size_t lines, bool stream);
size_t MatchBlocksAvx512(const Params& p, const uint8_t* data, size_t lines);
size_t FillBlocksAvx512(const Params& p, uint8_t* out, size_t lines, bool stream);
#endif
#if defined(__aarch64__)
size_t MatchBlocksNeon(const Params& p, const uint8_t* data, size_t lines);
size_t FillBlocksNeon(const Params& p, uint8_t* out, size_t lines, bool stream);
#endif

}  // namespace dmahil::pattern::simd
