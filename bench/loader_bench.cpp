#include "bench/loader_bench.h"

#include <chrono>

#include "common/files.h"
#include "common/seeding.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/sampler.h"

namespace ocm::bench {
namespace {

struct Layout {
  std::string name;
  data::ShardLayout layout;
};

void generate(const std::string& dir, int64_t size, int64_t channels, int64_t count,
              const data::ShardLayout& layout) {
  data::Manifest header;
  header.kind = "images";
  header.dtype = "uint8";
  header.element_shape = {size, size, channels};
  header.has_labels = true;
  header.num_classes = 10;
  header.source = "synthetic images from ocm bench loader";
  data::DatasetWriter writer(dir, header, layout);
  const int64_t block = 1024;
  const int64_t element = size * size * channels;
  std::vector<uint8_t> pixels(block * element);
  std::vector<int64_t> labels(block);
  RandomStream noise(1);
  for (int64_t first = 0; first < count; first += block) {
    const int64_t n = std::min(block, count - first);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t image = first + i;
      labels[i] = image % 10;
      for (int64_t p = 0; p < element; ++p) {
        const int64_t y = p / (size * channels), x = (p / channels) % size, c = p % channels;
        pixels[i * element + p] = static_cast<uint8_t>(
            (x * (1 + image % 7) + y * (2 + c) + image) % 256 + noise.below(8));
      }
    }
    writer.append("train", pixels.data(), labels.data(), n);
  }
  writer.commit();
}

int64_t directory_bytes(const std::string& dir) {
  int64_t total = 0;
  for (const auto& entry : files::list_directory(dir))
    total += files::file_size(files::join(dir, entry.name));
  return total;
}

}  // namespace

void run_loader_bench(const LoaderBenchOptions& options, std::ostream& out) {
  for (const int64_t size : options.sizes) {
    std::vector<Layout> layouts = {{"default", {options.shard_bytes, 0, 0}}};
    if (options.compare_layouts) {
      const int64_t shard = options.shard_bytes;
      const int64_t image_bytes = size * size * options.channels;
      layouts.push_back(
          {"chunk-16KiB", {shard, std::max<int64_t>(1, (16 << 10) / image_bytes), 0}});
      layouts.push_back({"chunk-64-images", {shard, 64, 0}});
      layouts.push_back({"default-gzip1", {shard, 0, 1}});
    }
    for (const Layout& layout : layouts) {
      const std::string dir =
          files::join(options.dir, "images-" + std::to_string(size) + "-" +
                                       std::to_string(options.count) + "-" + layout.name);
      if (!files::exists(dir)) {
        files::create_directories(options.dir);
        generate(dir, size, options.channels, options.count, layout.layout);
      }
      const data::Dataset dataset(dir);
      const data::GlobalBatchSampler sampler(dataset.size("train"), options.batch, 0);
      for (const int threads : options.threads) {
        data::LoaderOptions loader_options;
        loader_options.threads = threads;
        loader_options.horizontal_flip = true;
        loader_options.queue_depth = 2 * threads;
        data::Loader loader(dataset, sampler, loader_options);
        loader.next();  // the first batch opens the shards
        const auto start = std::chrono::steady_clock::now();
        for (int64_t step = 1; step < options.steps; ++step)
          loader.next();
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        out << "{\"bench\":\"loader\",\"size\":" << size << ",\"channels\":" << options.channels
            << ",\"shards\":" << dataset.manifest().split("train", dir).shards.size()
            << ",\"layout\":\"" << layout.name << "\",\"images\":" << options.count
            << ",\"dataset_bytes\":" << directory_bytes(dir) << ",\"threads\":" << threads
            << ",\"batch\":" << options.batch << ",\"images_per_s\":"
            << static_cast<double>((options.steps - 1) * options.batch) / seconds << "}\n";
        out.flush();
      }
    }
  }
}

}  // namespace ocm::bench
