#include "faults.hpp"

#include <array>
#include <utility>

namespace raftfl::sim {
namespace {

constexpr std::array<std::pair<const char*, Fault>, 9> kNames{{
    {"drop", Fault::kDrop},
    {"dup", Fault::kDuplicate},
    {"delay", Fault::kDelay},
    {"partition", Fault::kPartition},
    {"asym", Fault::kAsymmetric},
    {"crash", Fault::kCrash},
    {"membership", Fault::kMembership},
    {"transfer", Fault::kTransfer},
    {"compact", Fault::kCompact},
}};

}  // namespace

FaultSet FaultSet::all() {
  FaultSet s;
  for (const auto& [name, f] : kNames) s.add(f);
  return s;
}

std::optional<FaultSet> FaultSet::parse(std::string_view text, std::string* error) {
  if (text == "all") return all();
  if (text == "none") return none();
  FaultSet s;
  while (!text.empty()) {
    std::size_t comma = text.find(',');
    std::string_view name = text.substr(0, comma);
    bool known = false;
    for (const auto& [n, f] : kNames) {
      if (name == n) {
        s.add(f);
        known = true;
      }
    }
    if (!known) {
      std::string names;
      for (const auto& [n, f] : kNames) names += std::string(names.empty() ? "" : ",") + n;
      *error = "unknown fault '" + std::string(name) + "' (known: all, none, " + names + ")";
      return std::nullopt;
    }
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
  }
  return s;
}

std::string FaultSet::to_string() const {
  std::string out;
  std::size_t count = 0;
  for (const auto& [name, f] : kNames) {
    if (!has(f)) continue;
    out += std::string(out.empty() ? "" : ",") + name;
    ++count;
  }
  if (count == kNames.size()) return "all";
  return out.empty() ? "none" : out;
}

}  // namespace raftfl::sim
