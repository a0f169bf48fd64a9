#include "common/sha256.h"

#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/sha256_blocks.h"
#include "tests/support/temp_dir.h"

namespace ocm {
namespace {

std::string digest_of(const std::string& text) {
  Sha256 hash;
  hash.update(reinterpret_cast<const uint8_t*>(text.data()), text.size());
  return hash.hex_digest();
}

// FIPS 180-2 appendix B's examples.
TEST(Sha256, KnownDigests) {
  EXPECT_EQ(digest_of(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(digest_of("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(digest_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(digest_of(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, PiecesOfAnySizeGiveTheDigestOfTheWhole) {
  const std::string million(1000000, 'a');
  std::mt19937 draw(7);
  Sha256 hash;
  for (size_t at = 0; at < million.size();) {
    const size_t piece = std::min<size_t>(draw() % 300, million.size() - at);
    hash.update(reinterpret_cast<const uint8_t*>(million.data()) + at, piece);
    at += piece;
  }
  EXPECT_EQ(hash.hex_digest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, FilesHashTheirBytes) {
  const test::TempDir tmp("ocm-sha256-test");
  std::ofstream(tmp.join("abc")) << "abc";
  std::ofstream(tmp.join("empty")).close();
  EXPECT_EQ(sha256_file(tmp.join("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_file(tmp.join("empty")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

// Note [SHA-256 speed]: the hardware rounds must fold every block exactly as the portable ones.
TEST(Sha256, HardwareRoundsMatchThePortableOnes) {
  std::mt19937 draw(11);
  std::vector<uint8_t> data(64 * 97);
  for (uint8_t& byte : data)
    byte = static_cast<uint8_t>(draw());
  for (const size_t blocks : {size_t{1}, size_t{2}, size_t{97}}) {
    uint32_t portable[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                            0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    uint32_t hardware[8];
    std::copy(portable, portable + 8, hardware);
    sha256_detail::compress_portable(portable, data.data(), blocks);
    if (!sha256_detail::compress_with_sha_extensions(hardware, data.data(), blocks))
      GTEST_SKIP() << "this CPU has no SHA extensions; only the portable rounds ran";
    EXPECT_TRUE(std::equal(portable, portable + 8, hardware)) << blocks << " blocks";
  }
}

}  // namespace
}  // namespace ocm
