// raftfl-train: a node that trains. `raftfl node` hands every configuration with
// training.enabled to it, so that only processes that train load LibTorch.
#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "node_command.hpp"

int main(int argc, char** argv) {
  using namespace raftfl::app;
  CLI::App app{"raftfl-train: a raftfl node that trains (`raftfl node` starts it when training.enabled)"};
  app.require_subcommand(1);
  std::string config_file;
  auto* node = app.add_subcommand("node", "run one training node");
  node->add_option("--config", config_file, "the node's TOML configuration file")->required();
  NodeStart start;
  auto* join = node->add_option("--join", start.join, "a member's admin endpoint, HOST:PORT: join that cluster as a learner");
  node->add_flag("--bootstrap", start.bootstrap, "found a cluster of this node alone")->excludes(join);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  return run_node(config_file, start, raftfl::node::make_training_roles);
}
