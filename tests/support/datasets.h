// Small datasets written by tests with the real writer.
#pragma once

#include <string>
#include <vector>

#include "common/seeding.h"
#include "data/dataset.h"

namespace ocm::test {

// size x size images of `channels` channels in `dir` (8x8 grey by default): a horizontal ramp
// plus noise (something a network can learn), with `train` and, when `test` > 0, `test` elements.
inline void write_ramp_images(const std::string& dir, int64_t train, int64_t test, uint64_t seed,
                              int64_t size = 8, int64_t channels = 1) {
  data::Manifest header;
  header.kind = "images";
  header.element_shape = {size, size, channels};
  header.dtype = "uint8";
  header.source = "test ramp images";
  data::DatasetWriter writer(dir, header);
  RandomStream random(seed);
  const int64_t pixels_per_image = size * size * channels;
  std::vector<uint8_t> pixels(static_cast<size_t>((train + test) * pixels_per_image));
  for (size_t i = 0; i < pixels.size(); ++i) {
    const auto column = static_cast<int64_t>(i) / channels % size;
    pixels[i] = static_cast<uint8_t>(column * 240 / size + random.below(20));
  }
  writer.append("train", pixels.data(), nullptr, train);
  if (test > 0)
    writer.append("test", pixels.data() + train * pixels_per_image, nullptr, test);
  writer.commit();
}

}  // namespace ocm::test
