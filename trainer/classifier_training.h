#pragma once

#include <cstdint>
#include <string>

namespace ocm::trainer {

struct ClassifierTraining {
  std::string data;  // labelled image dataset of `ocm data prepare`
  std::string out;   // directory: the classifier's checkpoints (phase "classifier")
  int64_t steps = 3000;
  int64_t batch = 128;
  double lr = 1e-3;
  uint64_t seed = 0;
};

// Trains diffusion::Classifier on the dataset's train split (resuming from `out` when it holds
// a checkpoint), writes checkpoints with tensors "classifier/model/...",
// "classifier/in_channels" and "classifier/classes", and returns the test-split accuracy.
double train_classifier(const ClassifierTraining& options);

}  // namespace ocm::trainer
