// Internal to diffusion/: the constructors of each network family, without the checks that
// make_network and friends (networks.h) apply first.
#pragma once

#include <memory>

#include "diffusion/networks.h"

// Each family lives in its own namespace so that the file-local names of one (kNormEps,
// ResampleImpl, ...) never meet another's when a unity build compiles them in one unit.
namespace ocm::diffusion::ddpm {
std::shared_ptr<torch::nn::Module> make_unet(const UNetOptions& options);
std::shared_ptr<Head> make_head(const HeadOptions& options);
}  // namespace ocm::diffusion::ddpm

namespace ocm::diffusion::iddpm {
std::shared_ptr<torch::nn::Module> make_unet(const IddpmOptions& options);
std::shared_ptr<Head> make_head(const HeadOptions& options);
}  // namespace ocm::diffusion::iddpm

namespace ocm::diffusion::mlp {
std::shared_ptr<torch::nn::Module> make_network(const MlpOptions& options);
std::shared_ptr<Head> make_head(const HeadOptions& options);
}  // namespace ocm::diffusion::mlp
