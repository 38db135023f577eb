#pragma once

#include <string>

#include "raftfl/node/training_roles.hpp"

namespace raftfl::app {

// The executable that runs training nodes, installed beside `raftfl`.
inline constexpr const char* kTrainingBinary = "raftfl-train";

// `raftfl node --config FILE [--join HOST:PORT]`. Without `training` (the `raftfl` binary,
// which never loads LibTorch), a configuration with training.enabled is handed to
// kTrainingBinary. With `join_contact` (a member's admin endpoint), a node whose data
// directory is empty joins that running cluster as a learner instead of starting one.
int run_node(const std::string& config_file, const std::string& join_contact = {},
             const node::TrainingRolesFactory& training = {});

}  // namespace raftfl::app
