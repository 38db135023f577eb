// A node that finds its engine's invariants broken stops: exit status 1, the reason in its
// log, whatever the transport. The test process plays node 2 of a two-node cluster, with
// a transport of its own, and sends node 1 an append that rewrites an entry node 1 has
// already committed, as a buggy leader could.
#include <sys/wait.h>

#include <asio/io_context.hpp>
#include <capnp/message.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "cluster_test_support.hpp"
#include "io_context_test_support.hpp"
#include "local_cluster.hpp"
#include "raftfl/net/transport.hpp"
#include "raftfl/wire/raft_codec.hpp"

namespace raftfl::app {
namespace {

using namespace std::chrono_literals;

// An append of entry 1 of `term`, a membership change whose payload does not decode: a
// leader that replicates it has a damaged log, and a follower cannot know its
// configuration any more. (A message that would rewrite a committed entry no longer gets
// that far: its entries do not follow its index, and the engine drops it as impossible.)
std::unique_ptr<capnp::MessageBuilder> undecodable_membership_append(raft::Term term) {
  raft::Message m;
  m.type = raft::MessageType::kAppend;
  m.from = 2;
  m.to = 1;
  m.term = term;
  m.entries.push_back(raft::Entry{term, 1, raft::EntryType::kConfChange, raft::Payload(std::string("not a change"))});
  m.commit = 1;
  auto out = std::make_unique<capnp::MallocMessageBuilder>();
  wire::encode_raft_message(m, 42, *out);
  return out;
}

class FatalError : public ::testing::TestWithParam<node::TransportKind> {};

TEST_P(FatalError, AnAppendThatBreaksAnEngineInvariantStopsTheNode) {
  LocalClusterOptions o;
  o.nodes = 2;
  o.dir = testing::test_dir("raftfl-fatal");
  o.binary = RAFTFL_BINARY;
  o.transport = GetParam();
  LocalCluster cluster(o);

  asio::io_context io{1};
  net::TransportOptions t;
  t.cluster_id = 42;
  t.self = 2;
  t.listen_port = cluster.config(2).listen.port;
  t.peers = {{1, "127.0.0.1", cluster.config(1).listen.port}};
  auto transport = GetParam() == node::TransportKind::kTcp ? net::make_tcp_transport(io, t) : net::make_zmq_transport(io, t);
  transport->start([](net::NodeId, capnp::MessageReader&) {});
  cluster.start(1);
  ASSERT_TRUE(test::run_until(io, [&] { return transport->connected(1); }, 15s)) << "node 1 never connected\n"
                                                                                 << testing::log_of(cluster);

  // A term far above any node 1 reaches by itself, so that it follows the append.
  ASSERT_TRUE(transport->send(1, undecodable_membership_append(100)));
  std::optional<int> status;
  test::run_until(io, [&] { return (status = cluster.wait_exit(1, 0ms)).has_value(); }, 15s);
  transport->stop();
  test::drain(io);

  ASSERT_TRUE(status.has_value()) << "node 1 is still running\n" << testing::log_of(cluster);
  ASSERT_TRUE(WIFEXITED(*status)) << "wait status " << *status << "\n" << testing::log_of(cluster);
  EXPECT_EQ(WEXITSTATUS(*status), 1) << testing::log_of(cluster);
  std::ifstream in(cluster.log_file(1));
  const std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(log.find("fatal: undecodable membership entry at index 1"), std::string::npos) << log;
}

INSTANTIATE_TEST_SUITE_P(Transports, FatalError, ::testing::Values(node::TransportKind::kTcp, node::TransportKind::kZmq),
                         [](const auto& param_info) { return param_info.param == node::TransportKind::kTcp ? "tcp" : "zmq"; });

}  // namespace
}  // namespace raftfl::app
