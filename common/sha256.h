#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace ocm {

// Incremental SHA-256 (FIPS 180-4).
class Sha256 {
 public:
  void update(const uint8_t* data, size_t n);
  // Lowercase hex; the object is spent afterwards.
  std::string hex_digest();

 private:
  std::array<uint32_t, 8> state_ = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::array<uint8_t, 64> block_{};
  size_t filled_ = 0;
  uint64_t total_bytes_ = 0;
};

// Lowercase hex SHA-256 of a file's bytes. Throws UserError when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace ocm
