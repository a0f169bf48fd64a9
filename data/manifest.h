#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ocm::data {

// Note [dataset format]
// A dataset is a directory: manifest.json plus shard-NNNNN.h5 files (docs/dataset-format.md).
// Each shard holds a contiguous range of one split's elements: `images` (uint8 [n, H, W, C]) or
// `arrays` (float32 [n, ...]), and optionally `labels` (int64 [n]). The manifest lists, per
// split, its shards with their element ranges and sha256, so a reader can find element i
// without opening every shard, and `ocm data verify` can prove the bytes are the ones written.
constexpr int kFormatVersion = 1;

struct ShardEntry {
  std::string file;   // "shard-00012.h5", always inside the dataset directory
  int64_t begin = 0;  // first element of the split held by this shard
  int64_t end = 0;    // one past the last
  std::string sha256;
};

struct SplitEntry {
  int64_t count = 0;
  std::vector<ShardEntry> shards;
};

// The distribution a synthetic dataset was drawn from, sum_k w_k N(means[k], diag(stds[k]^2)),
// recorded so that evaluation can compare with the exact answer (docs/evaluation.md).
struct MixtureSpec {
  std::vector<double> weights;             // [K], positive, summing to 1
  std::vector<std::vector<double>> means;  // [K][D]
  std::vector<std::vector<double>> stds;   // [K][D], positive
};

struct Manifest {
  int format_version = kFormatVersion;
  std::string kind;                    // "images" or "arrays"
  std::vector<int64_t> element_shape;  // [H, W, C] for images, [...] for arrays
  std::string dtype;                   // "uint8" for images, "float32" for arrays
  bool has_labels = false;
  int64_t num_classes = 0;  // 0 when unlabelled
  std::string source;       // what it was converted from, for the record
  std::map<std::string, SplitEntry> splits;
  std::optional<MixtureSpec> mixture;  // arrays [D] drawn from a known mixture

  int64_t element_bytes() const;
  const SplitEntry& split(const std::string& name, const std::string& dataset_dir) const;
};

// Parses and validates manifest.json of `dataset_dir`. Everything is bounded and cross-checked
// (sizes, shapes, ranges, file names) before anything is allocated from it; a problem throws
// UserError naming the file and the field.
Manifest read_manifest(const std::string& dataset_dir);

// Writes manifest.json into `dir`, fsynced.
void write_manifest(const Manifest& manifest, const std::string& dir);

// A mixture as the manifest's `mixture` field holds it (also the spec file of `ocm data prepare
// mixture`), checked: K in [1, 1024], D in [1, 65536], finite numbers, weights > 0 summing to 1
// within 1e-6, stds > 0. `where` names the text's origin in errors.
MixtureSpec mixture_from_json(const std::string& text, const std::string& where);

// The manifest as JSON text, and back; `where` names the text's origin in errors.
std::string manifest_to_json(const Manifest& manifest);
Manifest manifest_from_json(const std::string& text, const std::string& where);

}  // namespace ocm::data
