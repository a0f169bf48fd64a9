// Every config key, declared once. See Note [strict config] in config.h.
#include "common/config_schema.h"

namespace ocm::config_detail {
namespace {

template <class Phase>
SectionDecl<Phase> declare_phase(Schema& s, const std::string& section, Phase& (*access)(Config&),
                                 int64_t steps, double ema) {
  SectionDecl<Phase> decl(s, section, access);
  decl.integer("steps", &Phase::steps, steps, at_least(1), "optimizer steps in this phase")
      .integer("batch_size", &Phase::batch_size, 128, at_least(1),
               "global batch size, summed over all ranks; the world size must divide it")
      .integer("micro_batch", &Phase::micro_batch, 0, at_least(0),
               "most samples per forward pass on one rank; a larger per-rank share is split "
               "and its gradients accumulated (0: never split)")
      .choice("optimizer", &Phase::optimizer, "adam", {"adam", "adamw"},
              "adam (weight decay added to the gradient) or adamw (decoupled weight decay)")
      .number("lr", &Phase::lr, 2e-4, above_up_to(0, 1), "peak learning rate")
      .integer("warmup", &Phase::warmup, 0, at_least(0),
               "steps of linear learning-rate warmup from 0 to lr")
      .number("beta1", &Phase::beta1, 0.9, at_least_below(0, 1), "Adam first-moment decay")
      .number("beta2", &Phase::beta2, 0.999, at_least_below(0, 1), "Adam second-moment decay")
      .number("weight_decay", &Phase::weight_decay, 0.0, at_least(0), "weight decay")
      .number("grad_clip", &Phase::grad_clip, 1.0, at_least(0),
              "largest global gradient norm, after averaging over ranks (0: no clipping)")
      .number("ema", &Phase::ema, ema, at_least_below(0, 1),
              "decay of the exponential moving average of the weights");
  return decl;
}

Schema declare() {
  Schema s;
  SectionDecl<RunConfig>(s, "run", [](Config& c) -> RunConfig& { return c.run; })
      .text("dir", &RunConfig::dir, "runs/default",
            "run directory: config, checkpoints, logs and eval results")
      .integer("seed", &RunConfig::seed, 0, at_least(0),
               "seed of every random draw (data order, noise, timesteps, probes)")
      .integer("max_bad_steps", &RunConfig::max_bad_steps, 20, at_least(1),
               "consecutive steps with a non-finite loss or gradient (each skipped) that abort "
               "the run")
      .choice("generator", &RunConfig::generator, "philox", {"philox", "stream"},
              "per-sample draws: philox (counter-based, drawn on the training device) or stream "
              "(a host stream per sample, copied; ocm 0.2). A resumed run keeps its checkpoint's");
  SectionDecl<DataConfig>(s, "data", [](Config& c) -> DataConfig& { return c.data; })
      .text("path", &DataConfig::path, "datasets/fashion_mnist",
            "dataset directory made by `ocm data prepare`")
      .text("split", &DataConfig::split, "train", "split to train on")
      .boolean("horizontal_flip", &DataConfig::horizontal_flip, false,
               "flip images left-right with probability 1/2 (per sample and step)")
      .integer("loader_threads", &DataConfig::loader_threads, 2, at_least(1),
               "threads per rank that read and convert batches");
  SectionDecl<DiffusionConfig>(s, "diffusion",
                               [](Config& c) -> DiffusionConfig& { return c.diffusion; })
      .choice("schedule", &DiffusionConfig::schedule, "linear", {"linear", "cosine"},
              "noise schedule beta_n")
      .integer("num_timesteps", &DiffusionConfig::num_timesteps, 1000, at_least(2),
               "N, the number of discrete forward steps");
  SectionDecl<ModelConfig>(s, "model", [](Config& c) -> ModelConfig& { return c.model; })
      .choice("kind", &ModelConfig::kind, "unet", {"unet", "iddpm", "mlp"},
              "eps network: unet (DDPM, Ho et al.) or iddpm (improved DDPM / guided diffusion) "
              "for images, mlp for vector data")
      .integer("ch", &ModelConfig::ch, 128, at_least(1), "unet, iddpm: base channel count")
      .integers("ch_mult", &ModelConfig::ch_mult, {1, 2, 2, 2}, at_least(1),
                "unet, iddpm: channel multiplier per level; n levels need a size divisible by "
                "2^(n-1)")
      .integer("num_res_blocks", &ModelConfig::num_res_blocks, 2, at_least(1),
               "unet, iddpm: residual blocks per level")
      .integers("attn_resolutions", &ModelConfig::attn_resolutions, {16}, at_least(1),
                "unet, iddpm: feature-map sizes that get self-attention")
      .number("dropout", &ModelConfig::dropout, 0.1, at_least_below(0, 1),
              "dropout in residual blocks")
      .choice("head", &ModelConfig::head, "simple", {"simple", "complex", "mlp"},
              "OCM head: simple or complex on a unet or iddpm, mlp on an mlp")
      .integer("width", &ModelConfig::width, 256, at_least(1), "mlp: hidden units")
      .integer("depth", &ModelConfig::depth, 3, at_least(0), "mlp: residual blocks")
      .choice("time_input", &ModelConfig::time_input, "auto",
              {"auto", "t", "t-1", "t*1000/N", "(t-1)*1000/N"},
              "the number the network is fed for step t in 1..N; auto: the family's published "
              "convention (unet t-1, iddpm (t-1)*1000/N, mlp t)")
      .integer("num_heads", &ModelConfig::num_heads, 1, at_least(1), "iddpm: attention heads")
      .integer("num_head_channels", &ModelConfig::num_head_channels, 0, at_least(0),
               "iddpm: channels per attention head, overriding num_heads (0: use num_heads)")
      .boolean("use_scale_shift_norm", &ModelConfig::use_scale_shift_norm, false,
               "iddpm: the time embedding scales and shifts the normalised features")
      .boolean("resblock_updown", &ModelConfig::resblock_updown, false,
               "iddpm: resample inside residual blocks instead of with a conv layer")
      .boolean("learn_sigma", &ModelConfig::learn_sigma, false,
               "iddpm: the network also outputs its reverse variance (2C channels); for "
               "imported published models, not trained here");
  declare_phase(
      s, "phases.score", +[](Config& c) -> PhaseConfig& { return c.phases.score; }, 100000, 0.9999);
  declare_phase(
      s, "phases.ocm", +[](Config& c) -> OcmPhaseConfig& { return c.phases.ocm; }, 20000, 0.999)
      .integer("probes", &OcmPhaseConfig::probes, 1, at_least(1),
               "Rademacher probes per sample; their targets are averaged");
  SectionDecl<DistConfig>(s, "dist", [](Config& c) -> DistConfig& { return c.dist; })
      .choice("device", &DistConfig::device, "auto", {"auto", "cpu", "cuda"},
              "auto: cuda:<local rank> when CUDA is available, else the CPU")
      .choice("precision", &DistConfig::precision, "auto", {"auto", "fp32", "bf16"},
              "training forward passes: bf16 runs them under CUDA autocast (weights, gradients "
              "and optimizer state stay fp32); auto: bf16 on CUDA, fp32 on the CPU")
      .boolean("channels_last", &DistConfig::channels_last, false,
               "store the networks' 4-D weights and inputs channels-last (NHWC), which CUDA's "
               "bf16 convolutions prefer")
      .integer("threads", &DistConfig::threads, 0, at_least(0),
               "compute threads per rank (0: the cores this process may use, shared among the "
               "ranks of its node)")
      .number("bucket_mb", &DistConfig::bucket_mb, 16, above_up_to(0, 4096),
              "gradient bucket size in MiB: one all-reduce per bucket (16 is the largest message "
              "size at Open MPI's peak bandwidth on our machines, `ocm bench allreduce`)")
      .number("timeout_s", &DistConfig::timeout_s, 600, above_up_to(0, 86400),
              "seconds a rank may wait for the others in a collective before the job is aborted")
      .integer("check_every", &DistConfig::check_every, 0, at_least(0),
               "steps between checks that every rank holds the same parameters (0: never)");
  SectionDecl<CheckpointConfig>(s, "checkpoint",
                                [](Config& c) -> CheckpointConfig& { return c.checkpoint; })
      .integer("every", &CheckpointConfig::every, 1000, at_least(1), "steps between checkpoints")
      .integer("keep_last", &CheckpointConfig::keep_last, 3, at_least(1),
               "newest checkpoints kept (the score phase's last one is always kept)")
      .integer("keep_every", &CheckpointConfig::keep_every, 0, at_least(0),
               "also keep every checkpoint whose step is a multiple of this (0: none)");
  SectionDecl<LogConfig>(s, "log", [](Config& c) -> LogConfig& { return c.log; })
      .choice("level", &LogConfig::level, "info",
              {"trace", "debug", "info", "warn", "error", "off"},
              "console and file log level; the OCM_LOG_LEVEL environment variable wins")
      .integer("every", &LogConfig::every, 100, at_least(1), "steps between metric lines")
      .boolean("rank_files", &LogConfig::rank_files, true,
               "every rank also logs to <run dir>/logs/rank-N.log");
  return s;
}

}  // namespace

const Schema& schema() {
  static const Schema instance = declare();
  return instance;
}

}  // namespace ocm::config_detail
