// `ocm bench ...`: measurements that print JSON lines (bench/README.md).
#include <iostream>
#include <memory>

#include "apps/command.h"
#include "bench/allreduce_bench.h"
#include "bench/checkpoint_bench.h"
#include "bench/loader_bench.h"
#include "bench/reducer_bench.h"
#include "bench/train_bench.h"

namespace ocm::app {
namespace bench_command {
namespace {

CommandRunner configure(CLI::App& command) {
  command.require_subcommand(1);
  auto options = std::make_shared<bench::LoaderBenchOptions>();
  CLI::App* loader =
      command.add_subcommand("loader", "Images/s of the data loader with no trainer attached");
  loader->add_option("--dir", options->dir, "Where generated datasets are kept and reused");
  loader->add_option("--sizes", options->sizes, "Image sizes, e.g. 28 32 64")
      ->check(CLI::Range(1, 4096));
  loader->add_option("--count", options->count, "Images per generated dataset")
      ->check(CLI::PositiveNumber);
  loader->add_option("--channels", options->channels, "Channels per image")
      ->check(CLI::Range(1, 4));
  loader->add_option("--threads", options->threads, "Loader thread counts to time")
      ->check(CLI::Range(1, 256));
  loader->add_option("--batch", options->batch, "Batch size")->check(CLI::PositiveNumber);
  loader->add_option("--steps", options->steps, "Batches timed per setting")
      ->check(CLI::Range(2, 1000000));
  loader
      ->add_option("--shard-size", options->shard_bytes,
                   "Bytes per shard of the generated datasets")
      ->check(CLI::PositiveNumber);
  loader->add_flag("--compare-layouts", options->compare_layouts,
                   "Also time one-image chunks, 64-image chunks and gzip-compressed chunks");
  auto allreduce_options = std::make_shared<bench::AllreduceBenchOptions>();
  CLI::App* allreduce = command.add_subcommand(
      "allreduce", "Communicator average vs raw MPI_Allreduce bandwidth (under mpirun)");
  allreduce->add_option("--sizes-kib", allreduce_options->sizes_kib, "Message sizes in KiB")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  allreduce->add_option("--repeats", allreduce_options->repeats, "Timed repeats per size")
      ->check(CLI::Range(1, 10000));
  auto reducer_options = std::make_shared<bench::ReducerBenchOptions>();
  CLI::App* reducer = command.add_subcommand(
      "reducer", "Share of gradient communication hidden behind backward (under mpirun)");
  reducer->add_option("--config", reducer_options->config, "Run config whose model is used");
  reducer->add_option("--shape", reducer_options->shape, "Sample shape, e.g. 1 28 28")
      ->expected(1, 3);
  reducer->add_option("--batch", reducer_options->batch, "Samples per rank")
      ->check(CLI::PositiveNumber);
  reducer->add_option("--iterations", reducer_options->iterations, "Timed steps")
      ->check(CLI::Range(1, 100000));
  reducer->add_option("--bucket-bytes", reducer_options->bucket_bytes, "Bucket size")
      ->check(CLI::PositiveNumber);
  auto train_options = std::make_shared<bench::TrainBenchOptions>();
  CLI::App* train = command.add_subcommand(
      "train", "Score-phase training images/s of `ocm train` (under mpirun: all ranks)");
  train->add_option("--config", train_options->config, "Run config (its dataset is used)");
  train->add_option("--batch", train_options->batch, "Global batch size")
      ->check(CLI::PositiveNumber);
  train->add_option("--steps", train_options->steps, "Timed steps")->check(CLI::Range(1, 100000));
  train->add_option("--warmup", train_options->warmup, "Untimed steps first")
      ->check(CLI::Range(0, 1000));
  train->add_option("--threads", train_options->threads, "Compute threads per rank (0: default)")
      ->check(CLI::Range(0, 1024));
  train->add_option("--set", train_options->overrides,
                    "Config overrides KEY=VALUE, e.g. dist.precision=bf16 (repeatable)");
  auto checkpoint_options = std::make_shared<bench::CheckpointBenchOptions>();
  CLI::App* checkpoint = command.add_subcommand(
      "checkpoint", "Training stall and background write MB/s of a checkpoint against dd");
  checkpoint->add_option("--dir", checkpoint_options->dir, "Directory on the file system to test");
  checkpoint
      ->add_option("--parameters", checkpoint_options->parameters,
                   "Network parameters (the state saved is 4x: weights, EMA, Adam moments)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 34));
  checkpoint->add_option("--repeats", checkpoint_options->repeats, "Timed repeats")
      ->check(CLI::Range(1, 100));
  return [=]() {
    if (loader->parsed())
      bench::run_loader_bench(*options, std::cout);
    if (allreduce->parsed())
      bench::run_allreduce_bench(*allreduce_options, std::cout);
    if (reducer->parsed())
      bench::run_reducer_bench(*reducer_options, std::cout);
    if (train->parsed())
      bench::run_train_bench(*train_options, std::cout);
    if (checkpoint->parsed())
      bench::run_checkpoint_bench(*checkpoint_options, std::cout);
    return 0;
  };
}

const CommandRegistration registration{{"bench", "Benchmarks that print JSON lines", configure}};

}  // namespace
}  // namespace bench_command
}  // namespace ocm::app
