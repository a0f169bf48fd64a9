// Every config key, declared once. See Note [strict config] in config.h.
#include "common/config_schema.h"

namespace ocm::config_detail {
namespace {

template <class Phase>
SectionDecl<Phase> declare_phase(Schema& s, const std::string& section, Phase& (*access)(Config&),
                                 int64_t steps) {
  SectionDecl<Phase> decl(s, section, access);
  decl.integer("steps", &Phase::steps, steps, at_least(1), "optimizer steps in this phase")
      .integer("batch_size", &Phase::batch_size, 128, at_least(1),
               "global batch size, summed over all ranks")
      .number("lr", &Phase::lr, 2e-4, above_up_to(0, 1), "peak learning rate");
  return decl;
}

Schema declare() {
  Schema s;
  SectionDecl<RunConfig>(s, "run", [](Config& c) -> RunConfig& { return c.run; })
      .text("dir", &RunConfig::dir, "runs/default",
            "run directory: config, checkpoints, logs and eval results")
      .integer("seed", &RunConfig::seed, 0, at_least(0),
               "seed of every random draw (data order, noise, timesteps, probes)");
  SectionDecl<DataConfig>(s, "data", [](Config& c) -> DataConfig& { return c.data; });
  SectionDecl<DiffusionConfig>(s, "diffusion",
                               [](Config& c) -> DiffusionConfig& { return c.diffusion; })
      .choice("schedule", &DiffusionConfig::schedule, "linear", {"linear", "cosine"},
              "noise schedule beta_n")
      .integer("num_timesteps", &DiffusionConfig::num_timesteps, 1000, at_least(2),
               "N, the number of discrete forward steps");
  SectionDecl<ModelConfig>(s, "model", [](Config& c) -> ModelConfig& { return c.model; })
      .choice("kind", &ModelConfig::kind, "unet", {"unet", "mlp"},
              "eps network: unet for images, mlp for vector data")
      .integer("ch", &ModelConfig::ch, 128, at_least(1), "unet: base channel count")
      .integers("ch_mult", &ModelConfig::ch_mult, {1, 2, 2, 2}, at_least(1),
                "unet: channel multiplier per level; n levels need a size divisible by 2^(n-1)")
      .integer("num_res_blocks", &ModelConfig::num_res_blocks, 2, at_least(1),
               "unet: residual blocks per level")
      .integers("attn_resolutions", &ModelConfig::attn_resolutions, {16}, at_least(1),
                "unet: feature-map sizes that get self-attention")
      .number("dropout", &ModelConfig::dropout, 0.1, at_least_below(0, 1),
              "dropout in residual blocks")
      .choice("head", &ModelConfig::head, "simple", {"simple", "complex", "mlp"},
              "OCM head: simple or complex on a unet, mlp on an mlp")
      .integer("width", &ModelConfig::width, 256, at_least(1), "mlp: hidden units")
      .integer("depth", &ModelConfig::depth, 3, at_least(0), "mlp: residual blocks");
  declare_phase(
      s, "phases.score", +[](Config& c) -> PhaseConfig& { return c.phases.score; }, 100000);
  declare_phase(
      s, "phases.ocm", +[](Config& c) -> OcmPhaseConfig& { return c.phases.ocm; }, 20000)
      .integer("probes", &OcmPhaseConfig::probes, 1, at_least(1),
               "Rademacher probes per sample; their targets are averaged");
  SectionDecl<DistConfig>(s, "dist", [](Config& c) -> DistConfig& { return c.dist; });
  SectionDecl<CheckpointConfig>(s, "checkpoint",
                                [](Config& c) -> CheckpointConfig& { return c.checkpoint; });
  SectionDecl<LogConfig>(s, "log", [](Config& c) -> LogConfig& { return c.log; })
      .choice("level", &LogConfig::level, "info",
              {"trace", "debug", "info", "warn", "error", "off"},
              "console and file log level; the OCM_LOG_LEVEL environment variable wins")
      .integer("every", &LogConfig::every, 100, at_least(1), "steps between metric lines")
      .boolean("rank_files", &LogConfig::rank_files, true,
               "every rank also logs to <run dir>/logs/rank-N.log");
  SectionDecl<EvalConfig>(s, "eval", [](Config& c) -> EvalConfig& { return c.eval; });
  return s;
}

}  // namespace

const Schema& schema() {
  static const Schema instance = declare();
  return instance;
}

}  // namespace ocm::config_detail
