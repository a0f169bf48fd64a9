#pragma once

#include <string>

#include <torch/types.h>

namespace ocm::eval {

// An HDF5 file with one dataset: `images` uint8 [N, H, W, C], or `arrays` float32 [N, ...] for
// vector data. Written atomically (Note [atomic write]); throws UserError when it cannot be.
void write_samples(const std::string& path, const torch::Tensor& samples);

// A PNG of up to columns x columns uint8 images [N, H, W, C] (1 or 3 channels), tiled row by row
// with a 2-pixel gap. Images under 64 pixels on their longer side are enlarged by a whole factor
// (nearest neighbour) to cells of at least 84 pixels, so a 28 x 28 sample shows at 84 x 84.
// Written atomically (Note [atomic write]); throws UserError when it cannot be.
void write_grid(const std::string& path, const torch::Tensor& images, int64_t columns = 8);

}  // namespace ocm::eval
