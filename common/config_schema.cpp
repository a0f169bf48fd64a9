// Every config key, declared once. See Note [strict config] in config.h.
#include "common/config_schema.h"

namespace ocm::config_detail {
namespace {

void declare_phase(Schema& s, const std::string& section, PhaseConfig& (*access)(Config&),
                   int64_t steps) {
  SectionDecl<PhaseConfig>(s, section, access)
      .integer("steps", &PhaseConfig::steps, steps, at_least(1), "optimizer steps in this phase")
      .integer("batch_size", &PhaseConfig::batch_size, 128, at_least(1),
               "global batch size, summed over all ranks")
      .number("lr", &PhaseConfig::lr, 2e-4, above_up_to(0, 1), "peak learning rate");
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
  SectionDecl<ModelConfig>(s, "model", [](Config& c) -> ModelConfig& { return c.model; });
  declare_phase(
      s, "phases.score", [](Config& c) -> PhaseConfig& { return c.phases.score; }, 100000);
  declare_phase(
      s, "phases.ocm", [](Config& c) -> PhaseConfig& { return c.phases.ocm; }, 20000);
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
