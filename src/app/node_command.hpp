#pragma once

#include <string>

#include "raftfl/node/training_roles.hpp"

namespace raftfl::app {

// The executable that runs training nodes, installed beside `raftfl`.
inline constexpr const char* kTrainingBinary = "raftfl-train";

// `raftfl node --config FILE`. Without `training` (the `raftfl` binary, which never loads
// LibTorch), a configuration with training.enabled is handed to kTrainingBinary.
int run_node(const std::string& config_file, const node::TrainingRolesFactory& training = {});

}  // namespace raftfl::app
