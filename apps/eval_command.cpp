// `ocm eval RUN|CHECKPOINT --steps 5,10,25 --sampler ddpm,ddim --cov ... --metric fd,nll ...`.
#include <memory>

#include "apps/command.h"
#include "apps/eval_commands.h"
#include "dist/communicator.h"
#include "eval/evaluate.h"
#include "eval/trained_model.h"

namespace ocm::app {
namespace eval_command {
namespace {

struct EvalOptions {
  std::string model;
  eval::EvalRequest request;
  double timeout = 0;
};

CommandRunner configure(CLI::App& command) {
  auto o = std::make_shared<EvalOptions>();
  eval::EvalRequest& r = o->request;
  command.add_option("model", o->model, "Run directory (newest checkpoint) or checkpoint file")
      ->required();
  command.add_option("--steps", r.steps, "Sampling steps K, e.g. 5,10,25")->delimiter(',');
  command.add_option("--sampler", r.samplers, "ddpm and/or ddim")
      ->delimiter(',')
      ->check(CLI::IsMember({"ddpm", "ddim"}));
  command
      .add_option("--cov", r.covs,
                  "fixed-small, fixed-large, analytic, ocm, ocm-mc, learned, exact")
      ->delimiter(',');
  command
      .add_option("--metric", r.metrics,
                  "fid (Inception features), fd (any feature network), is (Inception Score), pr "
                  "(precision and recall, k = 3), nll (bits/dim); for data of a known mixture, "
                  "mmd and h-error (the head against the exact h*)")
      ->delimiter(',');
  command.add_option("--baseline", r.baseline,
                     "The covariance results.md gives every other's difference to, paired by seed "
                     "(default fixed-small)");
  command.add_option("--eta", r.eta, "DDIM eta");
  command.add_option("--cov-scale", r.cov_scale,
                     "Multiply each covariance's c_t by this (default 1): a diagnostic of its "
                     "calibration; 0 gives fixed-small's samples");
  command.add_option(
      "--clip-pixel", r.clip_pixel,
      "Images: clip the sigma of the step into t_1 at P * 2/255 * sqrt(pi/2) "
      "(default 1; the OCM paper's DDPM runs on CIFAR10 LS and CelebA used 2; 0: off)");
  command.add_option("--trajectory", r.trajectory, "linear or quadratic")
      ->check(CLI::IsMember({"linear", "quadratic"}));
  command.add_option(
      "--num-samples", r.num_samples,
      "Samples per setting for fid/fd/is/pr (default 50000, as the field compares); pr "
      "also takes this many training elements, or all there are");
  command.add_option("--features", r.features,
                     "Feature network: inception-2015-12-05.pt (TorchScript) or a classifier "
                     "directory of `ocm classifier train`");
  command.add_option("--ref", r.reference,
                     "Reference statistics: an HDF5 file of `ocm stats`, or an .npz with mu and "
                     "sigma (EDM's fid.py, pytorch-fid, a guided-diffusion reference batch); "
                     "default: computed from the run's training split");
  command.add_option("--is-splits", r.is_splits,
                     "Splits of each setting's samples for is (default 10, as published)");
  command.add_option("--nll-samples", r.nll_samples, "Test elements for nll (default: all)");
  command.add_flag(
      "--save-samples", r.save_samples,
      "Write each fid/fd/is/pr setting's samples to eval/samples/<setting>[-seedS].npz "
      "(arr_0 uint8 [N, H, W, C], the guided-diffusion evaluator's layout)");
  command.add_flag("--nll-unclipped", r.nll_unclipped,
                   "Images: leave x0_hat unclipped in the bound (ocm 0.2's numbers); by default "
                   "it is clipped to [-1, 1] as the published likelihood code does");
  command.add_option("--batch", r.batch, "Samples per forward pass on a rank");
  command
      .add_option("--analytic-samples", r.analytic_samples,
                  "Training elements behind each Analytic-DPM Gamma table (default 2048)")
      ->check(CLI::PositiveNumber);
  command
      .add_option(
          "--seed,--seeds", r.seeds,
          "Seeds of the samples, e.g. 0,1,2: fid/fd/is/pr/mmd once per seed, reported as mean "
          "and spread; nll and h-error use the first")
      ->delimiter(',');
  add_timeout_option(command, o->timeout, "the run's dist.timeout_s");
  return [o]() {
    const EvalProcess process = start_eval_process();
    eval::TrainedModel model = eval::load_trained_model(o->model, process.device);
    auto communicator =
        dist::make_cpu_communicator(o->timeout > 0 ? o->timeout : model.config.dist.timeout_s);
    eval::evaluate(model, o->request, *communicator);
    return 0;
  };
}

const CommandRegistration registration{
    {"eval", "FID/FD and bits/dim over a grid of samplers, covariances and step counts",
     configure}};

}  // namespace
}  // namespace eval_command
}  // namespace ocm::app
