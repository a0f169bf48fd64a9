// The metrics of generated images in a feature network's space (FID/FD, Inception Score,
// precision and recall), all from one pass of the network over each setting's samples.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "diffusion/covariance.h"
#include "dist/communicator.h"
#include "eval/evaluate.h"
#include "eval/features.h"
#include "eval/generate.h"
#include "eval/report.h"
#include "eval/statistics.h"
#include "eval/trained_model.h"

namespace ocm::eval {

// The neighbourhood size of precision and recall, as published (k = 3).
constexpr int64_t kPrecisionRecallNeighbours = 3;

// What generated samples are compared with: the feature network, the reference statistics (fid
// / fd) and the real features of precision and recall.
struct Reference {
  std::unique_ptr<FeatureNetwork> network;
  std::string metric;  // fid or fd: what the network's Frechet distance is called
  std::optional<FeatureStatistics> statistics;  // fid / fd
  int64_t classes = 0;                          // is: the network's number of classes
  torch::Tensor real_features;  // pr: [M, D] float64 of the training split's first M, every rank
  std::string real_source;      // pr: "<data path> <split>[0:M]"
};

// Loads --features and computes or reads what the request's metrics need; throws UserError
// naming the option or file when they cannot be had (fid without Inception, is without a
// classifying network, statistics of another size, too few elements for pr).
Reference load_reference(const EvalRequest& request, const TrainedModel& model,
                         dist::Communicator& communicator);

// Where one setting's grid, and with --save-samples its samples, go.
struct SampleFiles {
  std::string grid;
  std::string samples;  // "" unless --save-samples
};

// Note [features pass]
// Each rank draws its contiguous share of sample indices [0, num_samples) and runs the feature
// network once over each batch; from that one pass come the Frechet distance's float64 sums
// (added over ranks), the Inception Score's per-split sums (Note [Inception Score]; the class
// probabilities are a second call of the network, made only for is) and, for precision and
// recall, the features themselves, gathered on every rank (Note [precision and recall]). The
// results are the request's fid/fd, is, precision and recall of this setting and seed, in that
// order; rank 0 writes the grid and, with --save-samples, the samples.
std::vector<EvalResult> features_pass_results(TrainedModel& model, const SamplingSetting& setting,
                                              const diffusion::AnalyticTable* table,
                                              const Reference& reference,
                                              const EvalRequest& request, uint64_t seed,
                                              dist::Communicator& communicator,
                                              const SampleFiles& outputs);

}  // namespace ocm::eval
