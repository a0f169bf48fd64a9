#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ocm {

// Note [strict config]
// A run is described by one YAML file. Every key of every section is declared exactly once, in
// common/config_schema.cpp, with its type, default, allowed range and a one-line doc; that
// declaration fills the matching field below. Anything the schema does not declare is an error
// (with a did-you-mean), and every value is type- and range-checked where it is read: in the
// file, or in a `--set section.key=value` override, which goes through the same checks. The
// resolved config (defaults, file and overrides merged) is what `ocm config show` prints and
// what a run directory keeps.

struct RunConfig {
  std::string dir;
  int64_t seed;
  int64_t max_bad_steps;
  std::string generator;
};

struct DataConfig {
  std::string path;
  std::string split;
  bool horizontal_flip;
  int64_t loader_threads;
};

struct DiffusionConfig {
  std::string schedule;
  int64_t num_timesteps;
};

struct ModelConfig {
  std::string kind;
  int64_t ch;
  std::vector<int64_t> ch_mult;
  int64_t num_res_blocks;
  std::vector<int64_t> attn_resolutions;
  double dropout;
  std::string head;
  int64_t width;
  int64_t depth;
  std::string time_input;
  int64_t num_heads;
  int64_t num_head_channels;
  bool use_scale_shift_norm;
  bool resblock_updown;
  bool learn_sigma;
};

struct PhaseConfig {
  int64_t steps;
  int64_t batch_size;
  int64_t micro_batch;
  std::string optimizer;
  double lr;
  int64_t warmup;
  double beta1;
  double beta2;
  double weight_decay;
  double grad_clip;
  double ema;
};

struct OcmPhaseConfig : PhaseConfig {
  int64_t probes;
};

struct PhasesConfig {
  PhaseConfig score;
  OcmPhaseConfig ocm;
};

struct DistConfig {
  std::string device;
  std::string precision;
  bool channels_last;
  int64_t threads;
  double bucket_mb;
  double timeout_s;
  int64_t check_every;
};

struct CheckpointConfig {
  int64_t every;
  int64_t keep_last;
  int64_t keep_every;
};

struct LogConfig {
  std::string level;
  int64_t every;
  bool rank_files;
};

struct Config {
  RunConfig run;
  DataConfig data;
  DiffusionConfig diffusion;
  ModelConfig model;
  PhasesConfig phases;
  DistConfig dist;
  CheckpointConfig checkpoint;
  LogConfig log;
};

// All defaults, as declared in the schema.
Config default_config();

// Reads and checks a config file, then applies `section.key=value` overrides in order.
// Throws UserError naming the file, line and key of the first problem.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// The same from YAML text; `source` names it in error messages.
Config parse_config(const std::string& yaml_text, const std::string& source,
                    const std::vector<std::string>& overrides = {});

// The resolved config as YAML, every key present, each with its doc as a comment.
// parse_config(to_yaml(c)) reproduces c exactly.
std::string to_yaml(const Config& config);

// "section.key: A -> B" for every key of `sections` (and their subsections) whose value in
// `after` differs from `before`, in declaration order.
std::vector<std::string> config_differences(const Config& before, const Config& after,
                                            const std::vector<std::string>& sections);

// The values of every key of `sections`, one "path: value" line each: what a hash of the
// settings a checkpoint depends on is taken over.
std::string config_values(const Config& config, const std::vector<std::string>& sections);

// One line per declared key: path, type, default, allowed values, doc.
std::string describe_config_keys();

}  // namespace ocm
