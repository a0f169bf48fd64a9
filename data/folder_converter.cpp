// `ocm data prepare folder`: a tree of JPEG/PNG images, class = sub-folder, the ImageNet route.
#include <stb/stb_image.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <set>

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "common/files.h"
#include "data/converters.h"

namespace ocm::data {
namespace {

// Note [parallel conversion]
// Every rank lists the same files in the same (sorted) order and converts its contiguous share
// of each split into shards of its own, numbered from rank * 1000000, in the shared temporary
// directory that rank 0 created. Rank 0 then gathers the ranks' shard lists and writes one
// manifest in rank order, so the dataset is the same for any number of ranks except for how its
// shards are cut. Unreadable images are skipped with a warning naming the file (one bad JPEG
// in a million should not stop an ImageNet conversion); a split left with no image is an error.

bool is_image_name(const std::string& path) {
  std::string extension = files::extension(path);
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return extension == ".jpg" || extension == ".jpeg" || extension == ".png";
}

std::vector<std::string> sorted_subdirectories(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : files::list_directory(dir)) {
    if (entry.is_directory)
      names.push_back(entry.name);
  }
  return names;
}

struct Item {
  std::string path;
  int64_t label;
};

// Per output pixel, the source pixels it covers and their weights (box filter over the area).
std::vector<std::vector<std::pair<int64_t, float>>> area_weights(int64_t source, int64_t target) {
  std::vector<std::vector<std::pair<int64_t, float>>> weights(target);
  const double scale = static_cast<double>(source) / static_cast<double>(target);
  for (int64_t o = 0; o < target; ++o) {
    const double begin = o * scale, end = (o + 1) * scale;
    for (auto s = static_cast<int64_t>(std::floor(begin));
         s < static_cast<int64_t>(std::ceil(end)) && s < source; ++s) {
      const double overlap = std::min(end, s + 1.0) - std::max(begin, static_cast<double>(s));
      if (overlap > 0)
        weights[o].emplace_back(s, static_cast<float>(overlap / scale));
    }
  }
  return weights;
}

// Decodes, centre-crops to a square and area-resamples to resolution^2 RGB; false if unreadable.
bool load_image(const std::string& path, int64_t resolution, uint8_t* out) {
  int width = 0, height = 0, channels = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load(path.c_str(), &width, &height, &channels, 3), &stbi_image_free);
  if (!pixels) {
    spdlog::warn("skipping {}: not a readable image ({})", path, stbi_failure_reason());
    return false;
  }
  const int64_t side = std::min(width, height);
  const int64_t left = (width - side) / 2, top = (height - side) / 2;
  const auto weights = area_weights(side, resolution);
  std::vector<float> rows(static_cast<size_t>(side * resolution * 3),
                          0.0f);  // [side][resolution][3]
  for (int64_t y = 0; y < side; ++y) {
    const stbi_uc* row = pixels.get() + ((top + y) * width + left) * 3;
    for (int64_t x = 0; x < resolution; ++x) {
      for (const auto& [s, w] : weights[x]) {
        for (int c = 0; c < 3; ++c)
          rows[(y * resolution + x) * 3 + c] += w * row[s * 3 + c];
      }
    }
  }
  for (int64_t y = 0; y < resolution; ++y) {
    for (int64_t x = 0; x < resolution; ++x) {
      for (int c = 0; c < 3; ++c) {
        float value = 0;
        for (const auto& [s, w] : weights[y])
          value += w * rows[(s * resolution + x) * 3 + c];
        out[(y * resolution + x) * 3 + c] =
            static_cast<uint8_t>(std::clamp(std::lround(value), 0L, 255L));
      }
    }
  }
  return true;
}

}  // namespace

void convert_folder(const std::string& source, const std::string& out_dir, int64_t resolution,
                    const ShardLayout& layout, const ConversionGroup& group) {
  if (resolution < 1 || resolution > 4096) {
    throw UserError("--resolution", "is " + std::to_string(resolution),
                    "an image size in [1, 4096]");
  }
  if (!files::is_directory(source))
    throw UserError(source, "is not a directory", "a folder of class folders of images");
  // Splits: train/ (with val/ and test/ when present) holding class folders, or class folders
  // directly.
  std::vector<std::pair<std::string, std::string>> splits;
  if (files::is_directory(files::join(source, "train"))) {
    for (const char* name : {"train", "val", "test"}) {
      if (files::is_directory(files::join(source, name)))
        splits.emplace_back(name, files::join(source, name));
    }
  } else {
    splits.emplace_back("train", source);
  }
  const std::vector<std::string> classes = sorted_subdirectories(splits.front().second);
  if (classes.empty()) {
    throw UserError(splits.front().second, "has no class folders",
                    "one sub-folder of images per class");
  }
  std::map<std::string, std::vector<Item>> items;
  for (const auto& [split, dir] : splits) {
    for (const std::string& class_name : sorted_subdirectories(dir)) {
      const auto found = std::find(classes.begin(), classes.end(), class_name);
      if (found == classes.end()) {
        throw UserError(files::join(dir, class_name),
                        "is a class that " + splits.front().second + " lacks",
                        "the same class folders in every split");
      }
      std::vector<std::string> images;
      const std::string class_dir = files::join(dir, class_name);
      for (const auto& entry : files::list_directory(class_dir)) {
        if (entry.is_regular_file && is_image_name(entry.name))
          images.push_back(files::join(class_dir, entry.name));
      }
      std::sort(images.begin(), images.end());
      for (auto& file : images)
        items[split].push_back({std::move(file), found - classes.begin()});
    }
    if (items[split].empty())
      throw UserError(dir, "holds no .jpg, .jpeg or .png files", "images");
  }

  Manifest header;
  header.kind = "images";
  header.dtype = "uint8";
  header.element_shape = {resolution, resolution, 3};
  header.has_labels = true;
  header.num_classes = static_cast<int64_t>(classes.size());
  header.source = "image folder " + files::absolute(source) + ", centre crop, area resampling to " +
                  std::to_string(resolution);
  std::unique_ptr<DatasetWriter> writer;
  if (group.rank == 0)
    writer = std::make_unique<DatasetWriter>(out_dir, header, layout, WriterPart{0, group.world});
  group.barrier();  // the temporary directory exists from here on
  if (group.rank != 0)
    writer = std::make_unique<DatasetWriter>(out_dir, header, layout,
                                             WriterPart{group.rank, group.world});

  const int64_t element = resolution * resolution * 3;
  int64_t skipped = 0;
  for (const auto& [split, list] : items) {
    const auto n = static_cast<int64_t>(list.size());
    const int64_t begin = n * group.rank / group.world, end = n * (group.rank + 1) / group.world;
    std::vector<uint8_t> image(static_cast<size_t>(element));
    for (int64_t i = begin; i < end; ++i) {
      if (!load_image(list[i].path, resolution, image.data())) {
        ++skipped;
        continue;
      }
      writer->append(split, image.data(), &list[i].label, 1);
    }
  }
  if (skipped > 0)
    spdlog::warn("rank {} skipped {} unreadable files", group.rank, skipped);
  const std::vector<std::string> parts = group.gather(writer->finish());
  if (group.rank == 0)
    writer->commit_parts(parts);
  group.barrier();
}

}  // namespace ocm::data
