#pragma once

// The training the multi-process training tests share: the MLP on the first 8,000
// Fashion-MNIST images, short exchanges and start-up, no evaluation before the final one.

#include <chrono>
#include <cstdint>

#include "raftfl/node/config.hpp"

namespace raftfl::app::testing {

inline void train_small_mlp(node::NodeConfig& c, std::uint64_t rounds, int local_steps) {
  c.training.enabled = true;
  c.training.dataset_dir = RAFTFL_FASHION_MNIST_DIR;
  c.training.model = node::ModelKind::kMlp;
  c.training.rounds = rounds;
  c.training.local_steps = local_steps;
  c.training.train_subset = 8000;
  c.training.eval_every = 0;
  c.gossip.exchange_timeout = std::chrono::seconds(3);
  c.coordinator.start_grace = std::chrono::seconds(3);
}

}  // namespace raftfl::app::testing
