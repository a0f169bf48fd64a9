#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/types.h>

#include "common/config.h"
#include "diffusion/gaussian_mixture.h"
#include "diffusion/model.h"
#include "diffusion/schedule.h"

namespace ocm::eval {

// A trained run, ready to sample: the EMA score network (the OCM phase's frozen trunk once that
// phase has run) and, after the OCM phase, the head's EMA weights.
struct TrainedModel {
  Config config;  // the config the checkpoint recorded
  std::string checkpoint_path;
  std::string run_dir;  // where eval results go: the checkpoint's run directory
  int64_t step = 0;
  std::string phase;
  std::vector<int64_t> sample_shape;  // [C, H, W] for images, the element shape for arrays
  bool images = true;
  torch::Device device{torch::kCPU};
  std::shared_ptr<torch::nn::Module> network;
  std::shared_ptr<diffusion::Head> head;  // null before the OCM phase
  std::unique_ptr<diffusion::Schedule> schedule;
  std::unique_ptr<diffusion::NetworkDenoiser> denoiser;
  // The distribution the training data were drawn from, when the dataset records one
  // (`ocm data prepare mixture`): what --cov exact, --metric mmd and h-error compare with.
  std::shared_ptr<diffusion::GaussianMixture> truth;
};

// `path` is a run directory (its newest valid checkpoint is used) or a checkpoint file. Throws
// UserError when there is no valid checkpoint or it does not fit the config it records.
TrainedModel load_trained_model(const std::string& path, const torch::Device& device);

// Elements at the given indices of a dataset split, as model input on the model's device.
using ElementReader = std::function<torch::Tensor(const std::vector<int64_t>&)>;

// The elements that bits/dim and `ocm covariance` are measured on: the test split, or the
// training split of a dataset without one. `read(indices)` returns them as model input on the
// model's device.
struct HeldOutElements {
  std::string description;  // "<dataset path> <split>"
  int64_t count = 0;
  ElementReader read;
};
HeldOutElements held_out_elements(const TrainedModel& model);

}  // namespace ocm::eval
