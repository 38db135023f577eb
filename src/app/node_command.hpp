#pragma once

#include <string>

#include "raftfl/node/training_roles.hpp"

namespace raftfl::app {

// The executable that runs training nodes, installed beside `raftfl`.
inline constexpr const char* kTrainingBinary = "raftfl-train";

// How a node with an empty data directory begins.
struct NodeStart {
  // A member's admin endpoint: join that running cluster as a learner.
  std::string join;
  // Found a cluster of this node alone, to be grown by joins. Without it (and without
  // `join`), a node whose file lists no [[peers]] refuses an empty data directory: a
  // joiner started without --join would otherwise found a cluster of its own.
  bool bootstrap = false;
};

// `raftfl node --config FILE [--join HOST:PORT | --bootstrap]`. Without `training` (the
// `raftfl` binary, which never loads LibTorch), a configuration with training.enabled is
// handed to kTrainingBinary with the same arguments.
int run_node(const std::string& config_file, const NodeStart& start = {},
             const node::TrainingRolesFactory& training = {});

}  // namespace raftfl::app
