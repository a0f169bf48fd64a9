// `ocm bench loader`: measurements that print JSON lines (bench/README.md).
#include <iostream>
#include <memory>

#include "apps/command.h"
#include "bench/allreduce_bench.h"
#include "bench/loader_bench.h"

namespace ocm::app {
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
  return [options, allreduce_options, loader, allreduce]() {
    if (loader->parsed())
      bench::run_loader_bench(*options, std::cout);
    if (allreduce->parsed())
      bench::run_allreduce_bench(*allreduce_options, std::cout);
    return 0;
  };
}

const CommandRegistration registration{{"bench", "Benchmarks that print JSON lines", configure}};

}  // namespace
}  // namespace ocm::app
