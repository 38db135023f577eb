#pragma once

#include <asio/io_context.hpp>
#include <capnp/message.h>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include "io_context_test_support.hpp"
#include "raftfl/net/transport.hpp"
#include "raftfl/wire/raft_codec.hpp"

namespace raftfl::net {

// The node under attack in the hostile-input tests of every transport: node 2 of cluster
// 7, which knows nodes 1 and 3 and accepts frames of up to 1 MiB. It records the commit
// index and the sender of every Raft message it is handed.
class HostileInputFixture : public ::testing::Test {
 protected:
  using Factory = std::unique_ptr<Transport> (*)(asio::io_context&, TransportOptions);

  void start_transport(Factory make) {
    TransportOptions o;
    o.cluster_id = 7;
    o.self = 2;
    o.peers = {{1, "127.0.0.1", 1}, {3, "127.0.0.1", 1}};
    o.max_frame_bytes = 1 << 20;
    transport_ = make(context_, o);
    transport_->start([this](NodeId from, capnp::MessageReader& reader) {
      received_.push_back(wire::decode_raft_message(reader).commit);
      froms_.push_back(from);
    });
  }

  void TearDown() override {
    transport_.reset();
    test::drain(context_);
  }

  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    return test::run_until(context_, done, limit);
  }

  asio::io_context context_{1};
  std::unique_ptr<Transport> transport_;
  std::vector<std::uint64_t> received_;
  std::vector<NodeId> froms_;
};

}  // namespace raftfl::net
