// `ocm data prepare KIND --source S --out DIR`, `ocm data verify DIR`, `ocm data info DIR`.
#include <iostream>
#include <memory>

#include "apps/command.h"
#include "common/error.h"
#include "common/log.h"
#include "data/converters.h"
#include "data/dataset.h"
#include "dist/topology.h"
#include "eval/mixture_truth.h"

namespace ocm::app {
namespace data_command {
namespace {

struct DataOptions {
  std::string kind;
  std::string source;
  std::string out;
  data::ShardLayout layout;
  int64_t resolution = 0;
  int64_t count = 50000;
  int64_t test_count = 10000;
  uint64_t seed = 0;
  std::string dir;
};

void print_info(const data::Manifest& m, const std::string& dir) {
  std::cout << dir << ": " << m.kind << " (" << m.dtype << ", element shape";
  for (const int64_t d : m.element_shape)
    std::cout << " " << d;
  std::cout << ")"
            << (m.mixture ? ", drawn from a mixture of " +
                                std::to_string(m.mixture->weights.size()) + " Gaussians"
                          : "")
            << (m.has_labels ? ", " + std::to_string(m.num_classes) + " classes" : ", unlabelled")
            << "\nsource: " << m.source << "\n";
  for (const auto& [name, split] : m.splits) {
    std::cout << "  " << name << ": " << split.count << " elements in " << split.shards.size()
              << " shard" << (split.shards.size() == 1 ? "" : "s") << "\n";
  }
}

CommandRunner configure(CLI::App& command) {
  command.require_subcommand(1);
  auto options = std::make_shared<DataOptions>();
  CLI::App* prepare =
      command.add_subcommand("prepare", "Convert a source dataset into ocm's sharded HDF5 format");
  prepare
      ->add_option("kind", options->kind,
                   "fashion-mnist, mnist, cifar10, folder, arrays or mixture")
      ->required()
      ->check(CLI::IsMember({"fashion-mnist", "mnist", "cifar10", "folder", "arrays", "mixture"}));
  prepare->add_option("--source", options->source,
                      "IDX directory (fashion-mnist default: /usr/share/datasets/fashion-mnist), "
                      "cifar-10-binary.tar.gz or its extracted folder, a folder of class folders, "
                      "a .npy / HDF5 float array, or a mixture spec (JSON, like "
                      "configs/gmm2d_mixture.json)");
  prepare->add_option("--resolution", options->resolution, "folder: output image size (square)");
  prepare->add_option("--count", options->count, "mixture: training elements (default 50000)");
  prepare->add_option("--test-count", options->test_count,
                      "mixture: test elements (default 10000)");
  prepare->add_option("--seed", options->seed, "mixture: seed of the draws");
  prepare->add_option("--out", options->out, "New dataset directory")->required();
  prepare
      ->add_option("--shard-size", options->layout.shard_bytes,
                   "Bytes of data per shard (default 1 GiB)")
      ->check(CLI::PositiveNumber);
  CLI::App* verify =
      command.add_subcommand("verify", "Check every shard's checksum, shape and labels");
  verify->add_option("dir", options->dir, "Dataset directory")->required();
  CLI::App* info = command.add_subcommand("info", "Describe a dataset");
  info->add_option("dir", options->dir, "Dataset directory")->required();

  return [options, prepare, verify, info]() {
    if (prepare->parsed()) {
      std::string source = options->source;
      if (source.empty()) {
        if (options->kind != "fashion-mnist") {
          throw UserError("ocm data prepare " + options->kind, "no --source given",
                          "the source to convert (see `ocm data prepare --help`)");
        }
        source = "/usr/share/datasets/fashion-mnist";
      }
      if (options->kind == "folder") {
        if (options->resolution < 1) {
          throw UserError("ocm data prepare folder", "no --resolution given",
                          "the output image size, e.g. --resolution 64");
        }
        // Run under mpirun to split the images over ranks (Note [parallel conversion]).
        const dist::Topology& topology = dist::init_processes();
        init_logging({"info", topology.rank, ""});
        data::ConversionGroup group{topology.rank, topology.world_size, dist::barrier,
                                    dist::gather_strings};
        data::convert_folder(source, options->out, options->resolution, options->layout, group);
        if (topology.rank != 0)
          return 0;
      } else if (options->kind == "mixture") {
        eval::write_mixture_dataset({source, options->out, options->count, options->test_count,
                                     options->seed, options->layout});
      } else if (options->kind == "arrays") {
        data::convert_arrays(source, options->out, options->layout);
      } else if (options->kind == "cifar10") {
        data::convert_cifar10(source, options->out, options->layout);
      } else {
        data::convert_idx(options->kind, source, options->out, options->layout);
      }
      print_info(data::Dataset(options->out).manifest(), options->out);
    }
    if (verify->parsed()) {
      const int64_t checked = data::verify_dataset(options->dir);
      std::cout << options->dir << ": OK, " << checked
                << " elements in shards with matching sha256\n";
    }
    if (info->parsed())
      print_info(data::Dataset(options->dir).manifest(), options->dir);
    return 0;
  };
}

const CommandRegistration registration{
    {"data", "Prepare, verify and describe datasets", configure}};

}  // namespace
}  // namespace data_command
}  // namespace ocm::app
