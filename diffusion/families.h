// Internal to diffusion/: the constructors of each network family, without the checks that
// make_network and friends (networks.h) apply first.
#pragma once

#include <memory>

#include "diffusion/networks.h"

namespace ocm::diffusion {

std::shared_ptr<torch::nn::Module> make_ddpm_unet(const UNetOptions& options);
std::shared_ptr<Head> make_ddpm_head(const HeadOptions& options);
std::shared_ptr<torch::nn::Module> make_iddpm_unet(const IddpmOptions& options);
std::shared_ptr<Head> make_iddpm_head(const HeadOptions& options);
std::shared_ptr<torch::nn::Module> make_mlp_network(const MlpOptions& options);
std::shared_ptr<Head> make_mlp_head(const HeadOptions& options);

}  // namespace ocm::diffusion
