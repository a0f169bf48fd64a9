#pragma once

#include <string>

#include <torch/types.h>

namespace ocm::eval {

// Samples in the format `path`'s extension names, written atomically (Note [atomic write]):
// - .h5 / .hdf5: one dataset, `images` uint8 [N, H, W, C] or `arrays` float32 [N, ...] for
//   vector data;
// - .npz: `arr_0`, the same array, as the guided-diffusion evaluator reads it;
// - .png: a grid of the first 64 images (write_grid).
// Throws UserError when it cannot be written.
void write_samples(const std::string& path, const torch::Tensor& samples);

// Throws UserError (exit 2) unless `path` ends in one of write_samples' extensions, and for .png
// unless the samples are images: checked before any sampling starts.
void check_samples_path(const std::string& path, bool images);

// A PNG of up to columns x columns uint8 images [N, H, W, C] (1 or 3 channels), tiled row by row
// with a 2-pixel gap. Images under 64 pixels on their longer side are enlarged by a whole factor
// (nearest neighbour) to cells of at least 84 pixels, so a 28 x 28 sample shows at 84 x 84.
// Written atomically (Note [atomic write]); throws UserError when it cannot be.
void write_grid(const std::string& path, const torch::Tensor& images, int64_t columns = 8);

}  // namespace ocm::eval
