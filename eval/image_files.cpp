#include "eval/image_files.h"

#include <stb/stb_image_write.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include <hdf5.h>
#include <torch/torch.h>

#include "common/error.h"
#include "common/files.h"
#include "common/hdf5.h"
#include "eval/npz_tensors.h"

namespace ocm::eval {

namespace {

bool is_hdf5_name(const std::string& path) {
  return files::extension(path) == ".h5" || files::extension(path) == ".hdf5";
}

void write_hdf5_samples(const std::string& path, const torch::Tensor& samples) {
  silence_hdf5_errors();
  const torch::Tensor data = samples.contiguous().cpu();
  const bool images = data.scalar_type() == torch::kUInt8;
  files::write_atomically(path, [&](const std::string& temporary) {
    Hid file(H5Fcreate(temporary.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    if (!file.valid())
      throw UserError(path, "cannot be created", "a writable location for the samples");
    std::vector<hsize_t> dims(data.sizes().begin(), data.sizes().end());
    Hid space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
    Hid dataset(H5Dcreate2(file.get(), images ? "images" : "arrays",
                           images ? H5T_STD_U8LE : H5T_IEEE_F32LE, space.get(), H5P_DEFAULT,
                           H5P_DEFAULT, H5P_DEFAULT));
    if (!dataset.valid() ||
        (data.numel() > 0 && H5Dwrite(dataset.get(), images ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT,
                                      H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data_ptr()) < 0))
      throw UserError(path, "could not be written", "free disk space");
  });
}

}  // namespace

void check_samples_path(const std::string& path, bool images) {
  const std::string extension = files::extension(path);
  if (!is_hdf5_name(path) && extension != ".npz" && extension != ".png")
    throw UserError(path, "has the extension '" + extension + "'",
                    ".h5 or .hdf5 (HDF5), .npz (numpy) or .png (a grid)");
  if (extension == ".png" && !images)
    throw UserError(path, "asks for a PNG of vector data", ".h5 or .npz for vector samples");
}

void write_samples(const std::string& path, const torch::Tensor& samples) {
  check_samples_path(path, samples.scalar_type() == torch::kUInt8);
  if (is_hdf5_name(path))
    write_hdf5_samples(path, samples);
  else if (files::extension(path) == ".npz")
    data::write_npz(path, {{"arr_0", npy_of(samples)}});
  else
    write_grid(path, samples);
}

namespace {

// Small images (28 x 28 Fashion-MNIST, 32 x 32 CIFAR) would be specks in a grid at their own
// size, so they are enlarged to at least kMinCell pixels; from 64 pixels up they are left as they
// are.
constexpr int64_t kMinCell = 84, kLargeImage = 64, kGap = 2;

int64_t scale_factor(int64_t h, int64_t w) {
  const int64_t side = std::max(h, w);
  return side >= kLargeImage ? 1 : (kMinCell + side - 1) / side;
}

// Copies image [h, w, c] into the canvas at (x0, y0), each pixel repeated factor x factor times
// (nearest neighbour, so no colours appear that the sample does not have).
void paste_scaled(const uint8_t* image, int64_t h, int64_t w, int64_t c, int64_t factor,
                  uint8_t* canvas, int64_t canvas_width, int64_t x0, int64_t y0) {
  for (int64_t y = 0; y < h * factor; ++y) {
    const uint8_t* source = image + (y / factor) * w * c;
    uint8_t* target = canvas + ((y0 + y) * canvas_width + x0) * c;
    for (int64_t x = 0; x < w * factor; ++x)
      std::copy_n(source + (x / factor) * c, c, target + x * c);
  }
}

}  // namespace

void write_grid(const std::string& path, const torch::Tensor& images, int64_t columns) {
  const torch::Tensor data = images.contiguous().cpu();
  const int64_t n = std::min(data.size(0), columns * columns);
  if (n == 0)
    return;
  const int64_t h = data.size(1), w = data.size(2), c = data.size(3);
  const int64_t factor = scale_factor(h, w), cell_h = h * factor, cell_w = w * factor;
  const int64_t cols = std::min(columns, n), rows = (n + cols - 1) / cols;
  const int64_t width = cols * (cell_w + kGap) + kGap, height = rows * (cell_h + kGap) + kGap;
  std::vector<uint8_t> canvas(static_cast<size_t>(width * height * c), 255);
  const uint8_t* pixels = data.data_ptr<uint8_t>();
  for (int64_t i = 0; i < n; ++i)
    paste_scaled(pixels + i * h * w * c, h, w, c, factor, canvas.data(), width,
                 kGap + (i % cols) * (cell_w + kGap), kGap + (i / cols) * (cell_h + kGap));
  files::write_atomically(path, [&](const std::string& temporary) {
    if (stbi_write_png(temporary.c_str(), static_cast<int>(width), static_cast<int>(height),
                       static_cast<int>(c), canvas.data(), static_cast<int>(width * c)) == 0)
      throw UserError(path, "could not be written", "a writable location for the PNG");
  });
}

}  // namespace ocm::eval
