#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace raftfl::train {

// The learning rate of a round. Decentralized training needs it to fall: with a constant
// rate each worker's last local steps pull its model toward its own shard by the same
// amount every round, so the workers' models never come closer than that drift however
// well the gossip mixes (dense gossip on non-IID Fashion-MNIST: own models 82%, their
// average 85%). A rate that decays lets the mixing win at the end.
enum class LrScheduleKind : std::uint8_t {
  kConstant,
  kCosine,  // from the peak down to final_fraction of it along half a cosine
  kStep,    // the peak, then a tenth of it after half the rounds, a hundredth after three quarters
};

struct LrSchedule {
  LrScheduleKind kind = LrScheduleKind::kConstant;
  double peak = 0.05;
  std::uint64_t warmup_rounds = 0;  // linear from peak / warmup_rounds up to the peak
  double final_fraction = 0.0;      // cosine: the rate of the last round, as a fraction of the peak
};

// The rate for `round` (1-based) of `rounds`.
double learning_rate(const LrSchedule& schedule, std::uint64_t round, std::uint64_t rounds);

std::string_view to_string(LrScheduleKind kind);  // "constant", "cosine", "step"
std::optional<LrScheduleKind> parse_lr_schedule(std::string_view name);

}  // namespace raftfl::train
