// `ocm covariance RUN|CHECKPOINT --steps K -n N --probes M`: the learned covariance, step by step.
#include <cstdio>
#include <memory>

#include "apps/command.h"
#include "apps/eval_commands.h"
#include "common/error.h"
#include "dist/communicator.h"
#include "eval/covariance_check.h"
#include "eval/evaluate.h"
#include "eval/trained_model.h"

namespace ocm::app {
namespace covariance_command {
namespace {

struct CovarianceOptions {
  std::string model;
  int64_t count = 256;
  eval::CovarianceCheckRequest request;
  double timeout = 0;
};

void print_rows(const std::vector<eval::CovarianceCheckRow>& rows) {
  std::printf(
      "Mean c_t per dimension (head, Monte Carlo, analytic, realised (x0 - x0_hat)^2), the "
      "head's error against Monte Carlo, the background (x0 = -1) and each step's KL term of the "
      "bound in nats/dim.\n\n");
  std::printf(
      "| t -> s | head | MC | analytic | err^2 | rel. RMS | head < MC/2 | bg head | bg err^2 | "
      "bg share | KL fixed-small | KL analytic | KL head | KL MC |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& r : rows) {
    std::printf(
        "| %lld -> %lld | %.4g | %.4g | %.4g | %.4g | %.3f | %.3f | %.4g | %.4g | %.3f | %.4g | "
        "%.4g | %.4g | %.4g |\n",
        static_cast<long long>(r.t), static_cast<long long>(r.s), r.head, r.monte_carlo, r.analytic,
        r.squared_error, r.relative_rms, r.underestimated, r.background_head, r.background_error,
        r.background_share, r.kl_fixed_small, r.kl_analytic, r.kl_head, r.kl_monte_carlo);
  }
}

CommandRunner configure(CLI::App& command) {
  auto o = std::make_shared<CovarianceOptions>();
  eval::CovarianceCheckRequest& r = o->request;
  command.add_option("model", o->model, "Run directory (newest checkpoint) or checkpoint file")
      ->required();
  command.add_option("--steps", r.steps, "K of the linear trajectory whose steps are checked");
  command.add_option("-n,--num-elements", o->count, "Held-out elements (test split)");
  command.add_option("--probes", r.probes, "Rademacher probes of the Monte Carlo reference");
  command.add_option("--batch", r.batch, "Elements per forward pass on a rank");
  command.add_option("--seed", r.seed, "Seed of the noise and the probes");
  add_timeout_option(command, o->timeout, "the run's dist.timeout_s");
  return [o]() {
    const EvalProcess process = start_eval_process();
    eval::TrainedModel model = eval::load_trained_model(o->model, process.device);
    auto communicator =
        dist::make_cpu_communicator(o->timeout > 0 ? o->timeout : model.config.dist.timeout_s);
    const eval::HeldOutElements held_out = eval::held_out_elements(model);
    if (o->count > held_out.count)
      throw UserError("-n " + std::to_string(o->count),
                      "is more than the " + std::to_string(held_out.count) + " elements of " +
                          held_out.description,
                      "at most " + std::to_string(held_out.count));
    eval::CovarianceCheckRequest request = o->request;
    request.head = model.head != nullptr;
    const auto rows = eval::check_covariance(*model.denoiser, *model.schedule, o->count,
                                             held_out.read, request, *communicator);
    if (communicator->rank() == 0)
      print_rows(rows);
    return 0;
  };
}

const CommandRegistration registration{
    {"covariance",
     "Compare the learned covariance with Monte Carlo, analytic and the realised error, per step",
     configure}};

}  // namespace
}  // namespace covariance_command
}  // namespace ocm::app
