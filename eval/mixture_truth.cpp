#include "eval/mixture_truth.h"

#include <fstream>
#include <sstream>

#include <torch/torch.h>

#include "common/error.h"
#include "common/files.h"
#include "common/seeding.h"
#include "diffusion/random.h"

namespace ocm::eval {
namespace {

constexpr auto kFloat64 = torch::kFloat64;

torch::Tensor rows_tensor(const std::vector<std::vector<double>>& rows) {
  std::vector<torch::Tensor> out;
  for (const auto& row : rows)
    out.push_back(torch::tensor(row, kFloat64));
  return torch::stack(out);
}

std::vector<int64_t> index_range(int64_t begin, int64_t end) {
  std::vector<int64_t> out;
  for (int64_t i = begin; i < end; ++i)
    out.push_back(i);
  return out;
}

// Streams of the dataset's elements, apart from evaluation's: split s draws with extra = s.
enum StreamExtra : uint64_t { kTrainSplit = 1, kTestSplit = 2, kMmdTruth = 3, kBandwidth = 4 };

data::MixtureSpec read_spec(const std::string& path) {
  if (files::file_size(path) < 0)
    throw UserError(path, "cannot be read",
                    "a mixture spec (JSON), e.g. configs/gmm2d_mixture.json");
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return data::mixture_from_json(text.str(), path);
}

}  // namespace

std::shared_ptr<diffusion::GaussianMixture> mixture_model(const data::MixtureSpec& spec,
                                                          const diffusion::Schedule& schedule) {
  return std::make_shared<diffusion::GaussianMixture>(torch::tensor(spec.weights, kFloat64),
                                                      rows_tensor(spec.means),
                                                      rows_tensor(spec.stds), schedule);
}

void write_mixture_dataset(const MixtureDatasetOptions& o) {
  const data::MixtureSpec spec = read_spec(o.spec_path);
  for (const auto& [name, count] : {std::pair{"train", o.train}, std::pair{"test", o.test}}) {
    if (count < 1 || count > (int64_t{1} << 32))
      throw UserError(std::string("--") + (std::string(name) == "train" ? "count" : "test-count"),
                      "is " + std::to_string(count), "between 1 and 2^32 elements");
  }
  // Sampling does not use the schedule; any will do.
  const auto truth = mixture_model(spec, diffusion::Schedule("linear", 1000));
  data::Manifest header;
  header.kind = "arrays";
  header.dtype = "float32";
  header.element_shape = {truth->dim()};
  header.source = "draws from the mixture of " + files::absolute(o.spec_path) + ", seed " +
                  std::to_string(o.seed);
  header.mixture = spec;
  data::DatasetWriter writer(o.out_dir, header, o.layout);
  constexpr int64_t kChunk = 8192;
  for (const auto& [name, count, extra] :
       {std::tuple{"train", o.train, kTrainSplit}, std::tuple{"test", o.test, kTestSplit}}) {
    for (int64_t first = 0; first < count; first += kChunk) {
      diffusion::SampleRandom random(o.seed, RandomPurpose::kStatistics,
                                     index_range(first, std::min(count, first + kChunk)), extra);
      const torch::Tensor x = truth->sample_data(random).to(torch::kFloat32).contiguous();
      writer.append(name, x.data_ptr<float>(), nullptr, x.size(0));
    }
  }
  writer.commit();
}

double unbiased_mmd2(const torch::Tensor& x, const torch::Tensor& y, double bandwidth) {
  const auto kernel = [&](const torch::Tensor& a, const torch::Tensor& b) {
    return torch::exp(-torch::cdist(a, b).square() / (2 * bandwidth * bandwidth));
  };
  const torch::Tensor xd = x.to(kFloat64).flatten(1), yd = y.to(kFloat64).flatten(1);
  const double n = static_cast<double>(xd.size(0)), m = static_cast<double>(yd.size(0));
  // k(x, x) = 1 on the diagonals, which the unbiased estimate leaves out.
  const double xx = (kernel(xd, xd).sum().item<double>() - n) / (n * (n - 1));
  const double yy = (kernel(yd, yd).sum().item<double>() - m) / (m * (m - 1));
  const double xy = kernel(xd, yd).mean().item<double>();
  return xx + yy - 2 * xy;
}

double mmd_bandwidth(const diffusion::GaussianMixture& truth) {
  diffusion::SampleRandom random(0, RandomPurpose::kStatistics, index_range(0, 2000), kBandwidth);
  const torch::Tensor x = truth.sample_data(random);
  const torch::Tensor distances = torch::pdist(x);
  return distances.median().item<double>();
}

torch::Tensor true_draws(const diffusion::GaussianMixture& truth,
                         const std::vector<int64_t>& indices, uint64_t seed) {
  diffusion::SampleRandom random(seed, RandomPurpose::kStatistics, indices, kMmdTruth);
  return truth.sample_data(random);
}

}  // namespace ocm::eval
