// SHA-256 block compression with the x86 SHA extensions (Note [SHA-256 speed]).
#include "common/sha256_blocks.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>

namespace ocm::sha256_detail {
namespace {

// The instructions keep the state as two registers, (a, b, e, f) and (c, d, g, h), each with its
// first word in the top lane; the message words are big-endian in memory.
__attribute__((target("sha,sse4.1"))) void compress_blocks(uint32_t state[8], const uint8_t* data,
                                                           size_t blocks) {
  const __m128i big_endian = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  const __m128i dcba = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state));
  const __m128i hgfe = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state + 4));
  const __m128i cdab = _mm_shuffle_epi32(dcba, 0xB1);
  const __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);
  __m128i abef = _mm_alignr_epi8(cdab, efgh, 8);
  __m128i cdgh = _mm_blend_epi16(efgh, cdab, 0xF0);
  for (; blocks > 0; --blocks, data += 64) {
    const __m128i abef_in = abef, cdgh_in = cdgh;
    __m128i w[4];  // message words 4g .. 4g+3 of the last four groups, by g mod 4
#pragma GCC unroll 16
    for (int g = 0; g < 16; ++g) {
      __m128i& words = w[g % 4];
      if (g < 4) {
        words = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(data + 16 * g)),
                                 big_endian);
      } else {
        // W[i] = W[i-16] + s0(W[i-15]) + W[i-7] + s1(W[i-2]) for four i at once.
        const __m128i& w7 = w[(g + 3) % 4];
        const __m128i sum = _mm_add_epi32(_mm_sha256msg1_epu32(words, w[(g + 1) % 4]),
                                          _mm_alignr_epi8(w7, w[(g + 2) % 4], 4));
        words = _mm_sha256msg2_epu32(sum, w7);
      }
      const __m128i k = _mm_add_epi32(
          words, _mm_load_si128(reinterpret_cast<const __m128i*>(kRoundConstants + 4 * g)));
      cdgh = _mm_sha256rnds2_epu32(cdgh, abef, k);
      abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(k, 0x0E));
    }
    abef = _mm_add_epi32(abef, abef_in);
    cdgh = _mm_add_epi32(cdgh, cdgh_in);
  }
  const __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
  const __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state), _mm_blend_epi16(feba, dchg, 0xF0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state + 4), _mm_alignr_epi8(dchg, feba, 8));
}

}  // namespace

bool compress_with_sha_extensions(uint32_t state[8], const uint8_t* data, size_t blocks) {
  // CPUID leaf 7 EBX bit 29: SHA; leaf 1 ECX bit 19: SSE4.1 (asked directly: clang's
  // __builtin_cpu_supports does not know "sha").
  static const bool available = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    const bool sse41 = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 19)) != 0;
    return sse41 && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29)) != 0;
  }();
  if (!available)
    return false;
  compress_blocks(state, data, blocks);
  return true;
}

}  // namespace ocm::sha256_detail

#else

namespace ocm::sha256_detail {
bool compress_with_sha_extensions(uint32_t*, const uint8_t*, size_t) {
  return false;
}
}  // namespace ocm::sha256_detail

#endif
