#include "eval/statistics.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <vector>

#include <hdf5.h>
#include <torch/torch.h>

#include "common/error.h"
#include "common/files.h"
#include "common/hdf5.h"
#include "common/sha256.h"
#include "eval/npz_tensors.h"

namespace ocm::eval {

FeatureSums::FeatureSums(int64_t dim)
    : sum_(torch::zeros({dim}, torch::kFloat64)),
      outer_(torch::zeros({dim, dim}, torch::kFloat64)) {}

void FeatureSums::add(const torch::Tensor& features) {
  const torch::Tensor x = features.detach().to(torch::kFloat64).cpu();
  if (x.dim() != 2 || x.size(1) != dim())
    throw std::logic_error("features of the wrong shape for these sums");
  count_ += x.size(0);
  sum_ += x.sum(0);
  outer_.addmm_(x.t(), x);
}

void FeatureSums::reduce(dist::Communicator& communicator) {
  torch::Tensor packed = torch::cat(
      {torch::tensor({static_cast<double>(count_)}, torch::kFloat64), sum_, outer_.reshape({-1})});
  communicator.sum_async(packed)->wait();
  count_ = static_cast<int64_t>(std::llround(packed[0].item<double>()));
  sum_.copy_(packed.narrow(0, 1, dim()));
  outer_.copy_(packed.narrow(0, 1 + dim(), dim() * dim()).view({dim(), dim()}));
}

torch::Tensor FeatureSums::mean() const {
  return sum_ / static_cast<double>(count_);
}

torch::Tensor FeatureSums::covariance() const {
  const double n = static_cast<double>(count_);
  const torch::Tensor mu = mean();
  return (outer_ - n * torch::outer(mu, mu)) / (n - 1);
}

FeatureStatistics statistics_of(const FeatureSums& sums, const std::string& features,
                                const std::string& source) {
  if (sums.count() < 2)
    throw UserError(source, "has " + std::to_string(sums.count()) + " feature vectors",
                    "at least 2 for a covariance");
  return {sums.mean(), sums.covariance(), sums.count(), features, source};
}

namespace {

torch::Tensor symmetric_square_root(const torch::Tensor& s) {
  const auto [values, vectors] = torch::linalg_eigh(s);
  return torch::matmul(vectors * values.clamp_min(0).sqrt().unsqueeze(0), vectors.t());
}

}  // namespace

double frechet_distance(const FeatureStatistics& a, const FeatureStatistics& b) {
  if (a.mean.size(0) != b.mean.size(0)) {
    throw UserError(b.source, "has " + std::to_string(b.mean.size(0)) + "-dimensional features",
                    std::to_string(a.mean.size(0)) + " like " + a.source,
                    "Both sides must use the same feature network.");
  }
  torch::NoGradGuard no_grad;
  const torch::Tensor s1 = a.covariance.to(torch::kFloat64), s2 = b.covariance.to(torch::kFloat64);
  const torch::Tensor root = symmetric_square_root(s1);
  torch::Tensor middle = torch::matmul(torch::matmul(root, s2), root);
  middle = (middle + middle.t()) / 2;  // symmetric up to rounding; make it exactly so
  const double cross = torch::linalg_eigvalsh(middle).clamp_min(0).sqrt().sum().item<double>();
  const double mean_term = (a.mean - b.mean).square().sum().item<double>();
  return mean_term + s1.trace().item<double>() + s2.trace().item<double>() - 2 * cross;
}

namespace {

void write_dataset(hid_t file, const char* name, const torch::Tensor& tensor,
                   const std::string& path) {
  const torch::Tensor t = tensor.to(torch::kFloat64).contiguous().cpu();
  std::vector<hsize_t> dims(t.sizes().begin(), t.sizes().end());
  Hid space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  Hid dataset(
      H5Dcreate2(file, name, H5T_IEEE_F64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  if (!dataset.valid() ||
      H5Dwrite(dataset.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()) < 0)
    throw UserError(path, "could not be written", "a writable location with free space");
}

torch::Tensor read_dataset(hid_t file, const char* name, int rank, const std::string& path) {
  if (H5Lexists(file, name, H5P_DEFAULT) <= 0)
    throw UserError(path, std::string("has no dataset `") + name + "`",
                    "a statistics file of `ocm stats` (mu, sigma)");
  Hid dataset(H5Dopen2(file, name, H5P_DEFAULT));
  Hid space(H5Dget_space(dataset.get()));
  if (H5Sget_simple_extent_ndims(space.get()) != rank)
    throw UserError(path + ":" + name, "has the wrong rank", std::to_string(rank));
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  std::vector<int64_t> shape(dims.begin(), dims.end());
  for (const int64_t d : shape) {
    if (d < 1 || d > 65536)
      throw UserError(path + ":" + name, "has a dimension of " + std::to_string(d),
                      "1 to 65536 features");
  }
  torch::Tensor out = torch::empty(shape, torch::kFloat64);
  if (H5Dread(dataset.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data_ptr()) < 0)
    throw UserError(path + ":" + name, "cannot be read", "an intact statistics file");
  return out;
}

// Shapes [D] and [D, D], D in 1..65536, finite: what both file formats must hold.
void check_statistics(const FeatureStatistics& s, const std::string& path) {
  const int64_t d = s.mean.size(0);
  if (d < 1 || d > 65536)
    throw UserError(path + ":mu", "has " + std::to_string(d) + " features", "1 to 65536 features");
  if (s.covariance.size(0) != d || s.covariance.size(1) != d)
    throw UserError(
        path,
        "has mu of " + std::to_string(d) + " and sigma of shape " + c10::str(s.covariance.sizes()),
        "sigma of shape [D, D] for mu of D");
  if (!torch::isfinite(s.mean).all().item<bool>() ||
      !torch::isfinite(s.covariance).all().item<bool>())
    throw UserError(path, "holds non-finite values", "finite statistics");
}

// `mu` and `sigma` of an .npz: EDM's fid.py and pytorch-fid write these (float64), and a
// guided-diffusion reference batch holds them beside its images. Such files record neither the
// count nor the feature network.
FeatureStatistics load_npz_statistics(const std::string& path) {
  const std::map<std::string, data::NpyArray> arrays = data::read_npz(path);
  FeatureStatistics s;
  for (const auto& [name, rank] : {std::pair<std::string, int64_t>{"mu", 1}, {"sigma", 2}}) {
    const auto found = arrays.find(name);
    if (found == arrays.end())
      throw UserError(path, "has no array `" + name + "`",
                      "mu [D] and sigma [D, D], as EDM's fid.py and pytorch-fid write them");
    if (static_cast<int64_t>(found->second.shape.size()) != rank)
      throw UserError(path + ":" + name,
                      "has " + std::to_string(found->second.shape.size()) + " dimensions",
                      std::to_string(rank));
    (rank == 1 ? s.mean : s.covariance) = float64_tensor_of(found->second, path + ":" + name);
  }
  check_statistics(s, path);
  s.features = "unrecorded (" + files::filename(path) + ")";
  s.source = path;
  return s;
}

}  // namespace

void save_statistics(const std::string& path, const FeatureStatistics& s) {
  if (files::extension(path) == ".npz") {
    data::write_npz(path, {{"mu", npy_of(s.mean.to(torch::kFloat64))},
                           {"sigma", npy_of(s.covariance.to(torch::kFloat64))}});
    return;
  }
  silence_hdf5_errors();
  std::string digest;
  files::write_atomically(path, [&](const std::string& temporary) {
    {
      Hid file(H5Fcreate(temporary.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
      if (!file.valid())
        throw UserError(path, "cannot be created", "a writable location");
      write_dataset(file.get(), "mu", s.mean, path);
      write_dataset(file.get(), "sigma", s.covariance, path);
      write_attribute(file.get(), "count", s.count);
      write_attribute(file.get(), "features", s.features);
      write_attribute(file.get(), "source", s.source);
    }
    digest = sha256_file(temporary);
  });
  files::write_text_atomically(path + ".sha256", digest + "  " + files::filename(path) + "\n");
}

FeatureStatistics load_statistics(const std::string& path) {
  if (!files::is_regular_file(path))
    throw UserError(path, "does not exist", "a statistics file written by `ocm stats`");
  if (files::extension(path) == ".npz")
    return load_npz_statistics(path);
  // Note [verified before HDF5]: the file must match the SHA-256 recorded when it was written.
  std::ifstream recorded_file(path + ".sha256");
  std::string recorded;
  if (!(recorded_file >> recorded))
    throw UserError(path, "has no checksum file " + files::filename(path) + ".sha256 beside it",
                    "statistics written by `ocm stats`, with their .sha256, or an .npz of mu "
                    "and sigma",
                    "For a file of ocm 0.2 you trust: sha256sum FILE > FILE.sha256.");
  const std::string digest = sha256_file(path);
  if (digest != recorded)
    throw UserError(path, "has sha256 " + digest, recorded + " as " + path + ".sha256 records",
                    "The file is damaged or was changed after `ocm stats` wrote it.");
  return read_statistics_file(path);
}

FeatureStatistics read_statistics_file(const std::string& path) {
  silence_hdf5_errors();
  Hid file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!file.valid())
    throw UserError(path, "is not an HDF5 file", "a statistics file written by `ocm stats`");
  FeatureStatistics s;
  s.mean = read_dataset(file.get(), "mu", 1, path);
  s.covariance = read_dataset(file.get(), "sigma", 2, path);
  check_statistics(s, path);
  read_attribute(file.get(), "count", &s.count);
  read_attribute(file.get(), "features", &s.features);
  read_attribute(file.get(), "source", &s.source);
  if (s.source.empty())
    s.source = path;
  return s;
}

}  // namespace ocm::eval
