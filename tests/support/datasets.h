// Small datasets written by tests with the real writer.
#pragma once

#include <string>
#include <vector>

#include "common/seeding.h"
#include "data/dataset.h"

namespace ocm::test {

// 8x8 grey images in `dir`: a horizontal ramp plus noise (something a network can learn), with
// `train` and, when `test` > 0, `test` elements.
inline void write_ramp_images(const std::string& dir, int64_t train, int64_t test, uint64_t seed) {
  data::Manifest header;
  header.kind = "images";
  header.element_shape = {8, 8, 1};
  header.dtype = "uint8";
  header.source = "test ramp images";
  data::DatasetWriter writer(dir, header);
  RandomStream random(seed);
  std::vector<uint8_t> pixels(static_cast<size_t>(train + test) * 64);
  for (size_t i = 0; i < pixels.size(); ++i)
    pixels[i] = static_cast<uint8_t>((i % 8) * 30 + random.below(20));
  writer.append("train", pixels.data(), nullptr, train);
  if (test > 0)
    writer.append("test", pixels.data() + train * 64, nullptr, test);
  writer.commit();
}

}  // namespace ocm::test
