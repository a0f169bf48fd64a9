// `ocm stats DATA --features NET --out stats.h5 [--split train]`.
#include <memory>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "apps/command.h"
#include "apps/eval_commands.h"
#include "common/error.h"
#include "common/files.h"
#include "data/dataset.h"
#include "dist/communicator.h"
#include "eval/features.h"
#include "eval/statistics.h"

namespace ocm::app {
namespace stats_command {
namespace {

struct StatsOptions {
  std::string data;
  std::string features;
  std::string out;
  std::string split = "train";
  int64_t count = 0;
  int64_t batch = 256;
  double timeout = 0;
};

int run_stats(const StatsOptions& o) {
  if (files::exists(o.out))
    throw UserError(o.out, "exists already", "a new file (nothing is overwritten)");
  const EvalProcess process = start_eval_process();
  const data::Dataset dataset(o.data);
  const data::Manifest& m = dataset.manifest();
  if (m.kind != "images")
    throw UserError(o.data, "holds " + m.kind, "images (features are of images)");
  if (!m.splits.count(o.split))
    throw UserError("--split " + o.split, "is not a split of " + o.data, "train, val or test");
  auto network = eval::load_feature_network(o.features, m.element_shape, process.device);
  auto communicator =
      dist::make_cpu_communicator(o.timeout > 0 ? o.timeout : dist::kDefaultTimeoutSeconds);
  const int64_t available = dataset.size(o.split);
  const int64_t count = o.count > 0 ? std::min(o.count, available) : available;
  const eval::FeatureSums sums =
      eval::dataset_feature_sums(dataset, o.split, count, *network, *communicator, o.batch);
  if (communicator->rank() == 0) {
    eval::save_statistics(
        o.out, eval::statistics_of(sums, network->description(), o.data + " " + o.split));
    spdlog::info("statistics of {} elements ({} features) written to {}", sums.count(),
                 network->dim(), o.out);
  }
  return 0;
}

CommandRunner configure(CLI::App& command) {
  auto o = std::make_shared<StatsOptions>();
  command.add_option("data", o->data, "Dataset directory")->required();
  command.add_option("--features", o->features, "Feature network (see `ocm eval --help`)")
      ->required();
  command
      .add_option("--out", o->out,
                  "Statistics file to write: mu, sigma in HDF5, or with the extension .npz as "
                  "EDM's fid.py and pytorch-fid keep them")
      ->required();
  command.add_option("--split", o->split, "Split to describe");
  command.add_option("--count", o->count, "Use the first N elements (default: all)");
  command.add_option("--batch", o->batch, "Images per forward pass")->check(CLI::PositiveNumber);
  add_timeout_option(command, o->timeout, "600");
  return [o]() { return run_stats(*o); };
}

const CommandRegistration registration{
    {"stats", "Feature mean and covariance of a dataset split, for FID/FD", configure}};

}  // namespace
}  // namespace stats_command
}  // namespace ocm::app
