#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace ocm::data {

// MNIST-format IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz and the t10k-
// pair) from `source_dir` into an images dataset [n, H, W, 1] with train and test splits.
// `name` ("fashion-mnist" or "mnist") is recorded as the source. Throws UserError naming the
// file on a wrong magic, truncated data or mismatched counts; nothing is left at out_dir then.
void convert_idx(const std::string& name, const std::string& source_dir, const std::string& out_dir,
                 const ShardLayout& layout);

// CIFAR-10's binary version: the official cifar-10-binary.tar.gz read as it is, or its extracted
// folder, into an images dataset [n, 32, 32, 3] with train (data_batch_1..5 in order) and test
// (test_batch) splits. Every batch is checked (record size, labels) before anything is written.
void convert_cifar10(const std::string& source, const std::string& out_dir,
                     const ShardLayout& layout);

// Float arrays for vector or latent data: a .npy file (float32 or float64, C order; one "train"
// split) or an HDF5 file whose datasets named train, val and test become the splits. Rows are
// elements; values are stored as float32 and must be finite. No labels.
void convert_arrays(const std::string& source, const std::string& out_dir,
                    const ShardLayout& layout);

// How the processes of one conversion cooperate; the defaults are a single process.
struct ConversionGroup {
  int rank = 0;
  int world = 1;
  std::function<void()> barrier = [] {};
  // Every rank's text in rank order on rank 0, an empty list elsewhere.
  std::function<std::vector<std::string>(const std::string&)> gather = [](const std::string& mine) {
    return std::vector<std::string>{mine};
  };
};

// A folder of images, class = sub-folder (source/CLASS/*.jpg), or source/train/CLASS/... with
// val/ and test/ beside it as further splits; each image centre-cropped to a square and
// area-resampled to resolution x resolution RGB. The files are split over the group's ranks
// (Note [parallel conversion]); unreadable images are skipped with a warning.
void convert_folder(const std::string& source, const std::string& out_dir, int64_t resolution,
                    const ShardLayout& layout, const ConversionGroup& group = {});

}  // namespace ocm::data
