#include "trainer/classifier_training.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "checkpoints/checkpoint.h"
#include "checkpoints/layout.h"
#include "common/error.h"
#include "common/files.h"
#include "common/seeding.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/sampler.h"
#include "diffusion/classifier.h"
#include "trainer/optimizer.h"

namespace ocm::trainer {

using diffusion::Classifier;

namespace {

double test_accuracy(Classifier& net, const data::Dataset& dataset) {
  const std::string split = dataset.manifest().splits.count("test") ? "test" : "train";
  const int64_t n = std::min<int64_t>(dataset.size(split), 10000);
  const auto& e = dataset.manifest().element_shape;
  torch::NoGradGuard no_grad;
  net->eval();
  int64_t correct = 0;
  for (int64_t first = 0; first < n; first += 500) {
    std::vector<int64_t> indices;
    for (int64_t i = first; i < std::min(n, first + 500); ++i)
      indices.push_back(i);
    torch::Tensor images =
        torch::empty({static_cast<int64_t>(indices.size()), e[0], e[1], e[2]}, torch::kUInt8);
    torch::Tensor labels = torch::empty({static_cast<int64_t>(indices.size())}, torch::kInt64);
    dataset.read(split, indices, images.data_ptr(), labels.data_ptr<int64_t>());
    const torch::Tensor predicted = net->forward(data::images_to_float(images)).argmax(1);
    correct += predicted.eq(labels).sum().item<int64_t>();
  }
  net->train();
  return static_cast<double>(correct) / static_cast<double>(n);
}

// The step of the newest classifier checkpoint in `dir`, its weights and Adam state loaded; 0 when
// there is none.
int64_t resume_classifier(const std::string& dir, const NamedTensors& parameters, Adam& adam) {
  auto found = checkpoints::load_newest_valid(dir);
  if (!found)
    return 0;
  if (found->checkpoint.phase != "classifier")
    throw UserError(found->path, "is not a classifier checkpoint",
                    "an empty --out directory or one of `ocm classifier train`");
  checkpoints::load_tensors(checkpoints::prefix::kClassifier, found->checkpoint.tensors, parameters,
                            found->path);
  adam.load(found->checkpoint.tensors, found->path);
  spdlog::info("resuming the classifier from {}", found->path);
  return found->checkpoint.step;
}

void save_classifier(const std::string& dir, int64_t step, const NamedTensors& parameters,
                     const Adam& adam, const data::Manifest& m) {
  checkpoints::Checkpoint c;
  c.step = step;
  c.phase = "classifier";
  c.config_hash = "classifier";
  checkpoints::save_tensors(checkpoints::prefix::kClassifier, parameters, c.tensors);
  adam.save(c.tensors);
  checkpoints::write_counter(c.tensors, checkpoints::kClassifierChannels, m.element_shape[2]);
  checkpoints::write_counter(c.tensors, checkpoints::kClassifierClasses, m.num_classes);
  checkpoints::save_checkpoint(dir, c, {2, 0, {}});
}

}  // namespace

double train_classifier(const ClassifierTraining& options) {
  const data::Dataset dataset(options.data);
  const data::Manifest& m = dataset.manifest();
  if (m.kind != "images" || !m.has_labels)
    throw UserError(options.data, "is not a labelled image dataset",
                    "images with labels, e.g. `ocm data prepare fashion-mnist`");
  const std::string checkpoint_dir = files::join(options.out, "checkpoints");
  torch::manual_seed(
      derive_seed({static_cast<uint64_t>(RandomPurpose::kInitialization), options.seed, 3}));
  Classifier net(m.element_shape[2], m.num_classes);
  const NamedTensors parameters = checkpoints::named_parameters(*net);
  PhaseConfig phase{};
  phase.optimizer = "adam";
  phase.beta1 = 0.9;
  phase.beta2 = 0.999;
  Adam adam(parameters, phase);
  const int64_t start = resume_classifier(checkpoint_dir, parameters, adam);
  data::GlobalBatchSampler sampler(dataset.size("train"), options.batch, options.seed);
  data::LoaderOptions loader_options;
  loader_options.start_step = start;
  loader_options.horizontal_flip = true;
  loader_options.seed = options.seed;
  data::Loader loader(dataset, sampler, loader_options);
  for (int64_t step = start; step < options.steps; ++step) {
    const data::Batch batch = loader.next();
    for (auto& p : net->parameters())
      p.mutable_grad().reset();
    const torch::Tensor loss = torch::cross_entropy_loss(net->forward(batch.data), batch.labels);
    loss.backward();
    adam.step(step < 100 ? options.lr * static_cast<double>(step + 1) / 100 : options.lr);
    if ((step + 1) % 200 == 0 || step + 1 == options.steps) {
      spdlog::info("classifier step {}/{}  loss {:.4f}", step + 1, options.steps,
                   loss.item<double>());
      save_classifier(checkpoint_dir, step + 1, parameters, adam, m);
    }
  }
  const double accuracy = test_accuracy(net, dataset);
  spdlog::info("classifier test accuracy {:.4f} ({})", accuracy, options.out);
  return accuracy;
}

}  // namespace ocm::trainer
