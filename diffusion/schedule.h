#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ocm::diffusion {

// The discrete forward process of docs/maths.md section 1, in double precision.
class Schedule {
 public:
  // kind: "linear" (1e-4 -> 0.02) or "cosine" (Nichol & Dhariwal, s = 0.008, betas <= 0.999).
  Schedule(const std::string& kind, int64_t num_timesteps);

  int64_t num_timesteps() const { return static_cast<int64_t>(betas_.size()) - 1; }
  double beta(int64_t n) const { return betas_.at(n); }  // n in 1..N
  double abar(int64_t n) const { return abar_.at(n); }   // n in 0..N, abar(0) = 1
  const std::vector<double>& abars() const { return abar_; }

 private:
  std::vector<double> betas_;  // index 0 unused
  std::vector<double> abar_;
};

// The K timesteps a K-step sampler visits, decreasing, followed by 0:
// linear t_k = round(1 + k (N - 1) / (K - 1)), summed and rounded as the published code does
// (Note [published linear trajectory]); quadratic t_k = round(1 + (N - 1) (k / (K - 1))^2).
// Halves round to even. Where rounding would repeat a time, the next free one is taken.
// Throws UserError when K < 2 or K > N.
std::vector<int64_t> trajectory(const std::string& kind, int64_t num_steps, int64_t num_timesteps);

}  // namespace ocm::diffusion
