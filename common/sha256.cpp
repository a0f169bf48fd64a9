// SHA-256 (FIPS 180-4), written here so that checksums need no crypto library on any host.
#include "common/sha256.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <vector>

#include "common/error.h"
#include "common/sha256_blocks.h"

namespace ocm {
namespace {

uint32_t rotate_right(uint32_t x, int n) {
  return (x >> n) | (x << (32 - n));
}

// Note [SHA-256 speed]
// Every checkpoint, statistics file and dataset shard is hashed as it is written and again as it
// is verified, so the hash runs over the whole state (2 GB for a 121M-parameter network with EMA
// and Adam). On a 2-core Xeon the portable rounds below hash about 100 MB/s, an eighth of what
// `dd conv=fsync` writes to its disk (780 MB/s); the x86 SHA extensions (Intel since Ice Lake,
// every AMD Zen) do the same rounds in hardware at about 800 MB/s there, close to OpenSSL's
// 940. Both are ours, so no crypto library is needed. update() hands whole blocks straight from
// the caller's buffer to the faster one this CPU has, and a test holds the two to one digest.
void compress(std::array<uint32_t, 8>& state, const uint8_t* data, size_t blocks) {
  if (!sha256_detail::compress_with_sha_extensions(state.data(), data, blocks))
    sha256_detail::compress_portable(state.data(), data, blocks);
}

}  // namespace

namespace sha256_detail {

void compress_portable(uint32_t state[8], const uint8_t* data, size_t blocks) {
  for (; blocks > 0; --blocks, data += 64) {
    std::array<uint32_t, 64> w;
    for (int i = 0; i < 16; ++i) {
      w[i] = (uint32_t{data[4 * i]} << 24) | (uint32_t{data[4 * i + 1]} << 16) |
             (uint32_t{data[4 * i + 2]} << 8) | data[4 * i + 3];
    }
    for (int i = 16; i < 64; ++i) {
      const uint32_t s0 =
          rotate_right(w[i - 15], 7) ^ rotate_right(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const uint32_t s1 =
          rotate_right(w[i - 2], 17) ^ rotate_right(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (int i = 0; i < 64; ++i) {
      const uint32_t s1 = rotate_right(e, 6) ^ rotate_right(e, 11) ^ rotate_right(e, 25);
      const uint32_t choice = (e & f) ^ (~e & g);
      const uint32_t t1 = h + s1 + choice + kRoundConstants[i] + w[i];
      const uint32_t s0 = rotate_right(a, 2) ^ rotate_right(a, 13) ^ rotate_right(a, 22);
      const uint32_t majority = (a & b) ^ (a & c) ^ (b & c);
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + s0 + majority;
    }
    const uint32_t add[8] = {a, b, c, d, e, f, g, h};
    for (int i = 0; i < 8; ++i)
      state[i] += add[i];
  }
}

}  // namespace sha256_detail

void Sha256::update(const uint8_t* data, size_t n) {
  total_bytes_ += n;
  if (filled_ > 0) {
    const size_t take = std::min(n, block_.size() - filled_);
    std::copy(data, data + take, block_.begin() + static_cast<std::ptrdiff_t>(filled_));
    filled_ += take;
    data += take;
    n -= take;
    if (filled_ < block_.size())
      return;
    compress(state_, block_.data(), 1);
    filled_ = 0;
  }
  const size_t whole = n / block_.size();
  if (whole > 0)
    compress(state_, data, whole);
  data += whole * block_.size();
  n -= whole * block_.size();
  std::copy(data, data + n, block_.begin());
  filled_ = n;
}

std::string Sha256::hex_digest() {
  const uint64_t bits = total_bytes_ * 8;
  const uint8_t one = 0x80, zero = 0;
  update(&one, 1);
  while (filled_ != 56)
    update(&zero, 1);
  for (int shift = 56; shift >= 0; shift -= 8) {
    const auto byte = static_cast<uint8_t>(bits >> shift);
    update(&byte, 1);
  }
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (const uint32_t word : state_) {
    for (int shift = 28; shift >= 0; shift -= 4)
      out += hex[(word >> shift) & 15];
  }
  return out;
}

std::string sha256_file(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file)
    throw UserError(path, "cannot be opened", "a readable file");
  Sha256 hash;
  std::vector<uint8_t> buffer(1 << 20);
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), file.get())) > 0)
    hash.update(buffer.data(), n);
  if (std::ferror(file.get()))
    throw UserError(path, "could not be read to the end", "a readable file");
  return hash.hex_digest();
}

}  // namespace ocm
