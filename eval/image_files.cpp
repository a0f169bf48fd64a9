#include "eval/image_files.h"

#include <stb/stb_image_write.h>

#include <cstdio>
#include <vector>

#include <hdf5.h>
#include <torch/torch.h>

#include "common/error.h"
#include "common/files.h"
#include "common/hdf5.h"

namespace ocm::eval {

void write_samples(const std::string& path, const torch::Tensor& samples) {
  silence_hdf5_errors();
  const torch::Tensor data = samples.contiguous().cpu();
  const bool images = data.scalar_type() == torch::kUInt8;
  const std::string temporary = path + ".tmp";
  {
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
  }
  files::sync(temporary);
  if (std::rename(temporary.c_str(), path.c_str()) != 0)
    throw UserError(path, "could not be renamed into place", "a writable location");
}

void write_grid(const std::string& path, const torch::Tensor& images, int64_t columns) {
  const torch::Tensor data = images.contiguous().cpu();
  const int64_t n = std::min(data.size(0), columns * columns);
  if (n == 0)
    return;
  const int64_t h = data.size(1), w = data.size(2), c = data.size(3);
  const int64_t cols = std::min(columns, n), rows = (n + cols - 1) / cols;
  constexpr int64_t kGap = 2;
  const int64_t width = cols * (w + kGap) + kGap, height = rows * (h + kGap) + kGap;
  std::vector<uint8_t> canvas(static_cast<size_t>(width * height * c), 255);
  const uint8_t* pixels = data.data_ptr<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t x0 = kGap + (i % cols) * (w + kGap), y0 = kGap + (i / cols) * (h + kGap);
    for (int64_t y = 0; y < h; ++y) {
      std::copy_n(pixels + ((i * h + y) * w) * c, w * c,
                  canvas.begin() + ((y0 + y) * width + x0) * c);
    }
  }
  if (stbi_write_png(path.c_str(), static_cast<int>(width), static_cast<int>(height),
                     static_cast<int>(c), canvas.data(), static_cast<int>(width * c)) == 0)
    throw UserError(path, "could not be written", "a writable location for the PNG");
}

}  // namespace ocm::eval
