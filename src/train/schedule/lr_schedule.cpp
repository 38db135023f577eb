#include "raftfl/train/lr_schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace raftfl::train {

double learning_rate(const LrSchedule& s, std::uint64_t round, std::uint64_t rounds) {
  round = std::max<std::uint64_t>(round, 1);
  rounds = std::max(rounds, round);
  if (round <= s.warmup_rounds) return s.peak * static_cast<double>(round) / static_cast<double>(s.warmup_rounds);
  switch (s.kind) {
    case LrScheduleKind::kConstant:
      return s.peak;
    case LrScheduleKind::kCosine: {
      const auto span = rounds - s.warmup_rounds;
      // 0 on the first round after the warm-up, 1 on the last.
      const double t = span <= 1 ? 1.0 : static_cast<double>(round - s.warmup_rounds - 1) / static_cast<double>(span - 1);
      const double floor = s.peak * s.final_fraction;
      return floor + (s.peak - floor) * 0.5 * (1.0 + std::cos(std::numbers::pi * t));
    }
    case LrScheduleKind::kStep: {
      const double progress = static_cast<double>(round) / static_cast<double>(rounds);
      if (progress > 0.75) return s.peak * 0.01;
      if (progress > 0.5) return s.peak * 0.1;
      return s.peak;
    }
  }
  return s.peak;
}

std::string_view to_string(LrScheduleKind kind) {
  switch (kind) {
    case LrScheduleKind::kConstant: return "constant";
    case LrScheduleKind::kCosine: return "cosine";
    case LrScheduleKind::kStep: return "step";
  }
  return "?";
}

std::optional<LrScheduleKind> parse_lr_schedule(std::string_view name) {
  if (name == "constant") return LrScheduleKind::kConstant;
  if (name == "cosine") return LrScheduleKind::kCosine;
  if (name == "step") return LrScheduleKind::kStep;
  return std::nullopt;
}

}  // namespace raftfl::train
