#pragma once

#include "commands.hpp"
#include "raftfl/node/config.hpp"

namespace raftfl::app {

// The training keys of one node of a local cluster (`raftfl demo`, `raftfl bench tta`).
void configure_training_node(node::NodeConfig& config, const DemoOptions& options);

}  // namespace raftfl::app
