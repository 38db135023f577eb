#include "raftfl/node/config.hpp"

#include "raftfl/raft/raft.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace raftfl::node {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

// Identical to the example in the README's "The node configuration file": the documented
// file must parse.
constexpr std::string_view kDocExample = R"(# raftfl node 1 of 3
[node]
id = 1
cluster_id = 7
data_dir = "/var/lib/raftfl/node1"

[network]
listen = "127.0.0.1:7001"
admin = "127.0.0.1:8001"
transport = "tcp"
max_frame_bytes = 83_886_080    # 80 MiB
send_queue_bytes = 134_217_728  # 128 MiB per peer
reconnect_min_ms = 10
reconnect_max_ms = 1000

[[peers]]
id = 2
address = "127.0.0.1:7002"

[[peers]]
id = 3
address = "127.0.0.1:7003"

[raft]
tick_ms = 10
election_timeout_min_ms = 150
election_timeout_max_ms = 300
heartbeat_ms = 50
max_inflight = 64
max_entries_per_message = 256
max_bytes_per_message = 1_048_576
snapshot_every = 10_000
max_log_entries = 100_000
max_term_ahead = 4_294_967_296
target_voters = 3
failure_timeout_ms = 1500

[storage]
kind = "disk"

[reactor]
poll_budget_us = 50
cpu = -1

[training]
enabled = true
model = "cnn"
rounds = 250
local_steps = 2
consensus_rounds = 10
eval_every = 25
eval_samples = 500

[gossip]
sparsifier = "random-k"
density = 0.1
)";

// Every key set, none to its default, so that a key read into the wrong field shows.
constexpr std::string_view kFullFile = R"([node]
id = 4
cluster_id = 99
data_dir = "data/node4"

[network]
listen = "[::1]:7004"
admin = "0.0.0.0:8004"
transport = "zmq"
max_frame_bytes = 1_000_000
send_queue_bytes = 2_000_000
reconnect_min_ms = 20
reconnect_max_ms = 5000
snapshot_chunk_bytes = 65_536
snapshot_bytes_per_second = 10_000_000

[raft]
tick_ms = 5
election_timeout_min_ms = 200
election_timeout_max_ms = 400
heartbeat_ms = 40
max_inflight = 16
max_entries_per_message = 128
max_bytes_per_message = 500_000
snapshot_every = 0
max_log_entries = 5000

[storage]
kind = "memory"

[reactor]
poll_budget_us = 75
cpu = 1

[[peers]]
id = 1
address = "10.0.0.1:7001"

[[peers]]
id = 7
address = "node7.example:7007"
)";

NodeConfig expected_full() {
  NodeConfig c;
  c.id = 4;
  c.cluster_id = 99;
  c.data_dir = "data/node4";
  c.listen = {"::1", 7004};
  c.admin = {"0.0.0.0", 8004};
  c.transport = TransportKind::kZmq;
  c.max_frame_bytes = 1'000'000;
  c.send_queue_bytes = 2'000'000;
  c.reconnect_min = 20ms;
  c.reconnect_max = 5000ms;
  c.snapshot_chunk_bytes = 65'536;
  c.snapshot_bytes_per_second = 10'000'000;
  c.peers = {{1, {"10.0.0.1", 7001}}, {7, {"node7.example", 7007}}};
  c.tick = 5ms;
  c.election_timeout_min = 200ms;
  c.election_timeout_max = 400ms;
  c.heartbeat = 40ms;
  c.max_inflight = 16;
  c.max_entries_per_message = 128;
  c.max_bytes_per_message = 500'000;
  c.snapshot_every = 0;
  c.max_log_entries = 5000;
  c.storage = StorageKind::kMemory;
  c.poll_budget = 75us;
  c.cpu = 1;
  return c;
}

// Field by field, so that a failure names the field rather than dumping two structs.
void expect_same(const NodeConfig& a, const NodeConfig& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.cluster_id, b.cluster_id);
  EXPECT_EQ(a.data_dir, b.data_dir);
  EXPECT_EQ(a.listen.to_string(), b.listen.to_string());
  EXPECT_EQ(a.admin.to_string(), b.admin.to_string());
  EXPECT_EQ(a.transport, b.transport);
  EXPECT_EQ(a.max_frame_bytes, b.max_frame_bytes);
  EXPECT_EQ(a.send_queue_bytes, b.send_queue_bytes);
  EXPECT_EQ(a.reconnect_min, b.reconnect_min);
  EXPECT_EQ(a.reconnect_max, b.reconnect_max);
  EXPECT_EQ(a.snapshot_chunk_bytes, b.snapshot_chunk_bytes);
  EXPECT_EQ(a.snapshot_bytes_per_second, b.snapshot_bytes_per_second);
  ASSERT_EQ(a.peers.size(), b.peers.size());
  for (std::size_t i = 0; i < a.peers.size(); ++i) {
    EXPECT_EQ(a.peers[i].id, b.peers[i].id) << "peer " << i;
    EXPECT_EQ(a.peers[i].address.to_string(), b.peers[i].address.to_string()) << "peer " << i;
  }
  EXPECT_EQ(a.tick, b.tick);
  EXPECT_EQ(a.election_timeout_min, b.election_timeout_min);
  EXPECT_EQ(a.election_timeout_max, b.election_timeout_max);
  EXPECT_EQ(a.heartbeat, b.heartbeat);
  EXPECT_EQ(a.max_inflight, b.max_inflight);
  EXPECT_EQ(a.max_entries_per_message, b.max_entries_per_message);
  EXPECT_EQ(a.max_bytes_per_message, b.max_bytes_per_message);
  EXPECT_EQ(a.snapshot_every, b.snapshot_every);
  EXPECT_EQ(a.max_log_entries, b.max_log_entries);
  EXPECT_EQ(a.storage, b.storage);
  EXPECT_EQ(a.poll_budget, b.poll_budget);
  EXPECT_EQ(a.cpu, b.cpu);
  EXPECT_TRUE(a == b);
}

NodeConfig parse(std::string_view text) { return parse_node_config(text, "node.toml"); }

std::string error_of(std::string_view text) {
  try {
    parse(text);
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ConfigError for:\n" << text;
  return {};
}

// A valid file with some keys replaced, removed or added. Keys are "table.key" (or a
// bare root key); a value of nullopt removes the key.
struct Edit {
  std::string key;
  std::optional<std::string> value;
};

std::string make_config(const std::vector<Edit>& edits, std::string_view tail = "") {
  std::vector<Edit> keys = {
      {"node.id", "1"},
      {"node.data_dir", "\"/var/lib/raftfl\""},
      {"network.listen", "\"127.0.0.1:7001\""},
      {"network.admin", "\"127.0.0.1:8001\""},
  };
  for (const Edit& edit : edits) {
    auto it = std::find_if(keys.begin(), keys.end(), [&](const Edit& k) { return k.key == edit.key; });
    if (it == keys.end()) {
      keys.push_back(edit);
    } else {
      it->value = edit.value;
    }
  }
  std::string text;
  for (const Edit& k : keys) {
    if (k.value && k.key.find('.') == std::string::npos) text += k.key + " = " + *k.value + "\n";
  }
  std::vector<std::string> tables;
  for (const Edit& k : keys) {
    std::size_t dot = k.key.find('.');
    if (dot == std::string::npos) continue;
    std::string table = k.key.substr(0, dot);
    if (std::find(tables.begin(), tables.end(), table) == tables.end()) tables.push_back(table);
  }
  for (const std::string& table : tables) {
    text += "[" + table + "]\n";
    for (const Edit& k : keys) {
      if (k.value && k.key.starts_with(table + ".")) text += k.key.substr(table.size() + 1) + " = " + *k.value + "\n";
    }
  }
  text += tail;
  return text;
}

TEST(NodeConfigTest, ParsesFullFile) { expect_same(parse(kFullFile), expected_full()); }

TEST(NodeConfigTest, ParsesDocumentationExample) {
  NodeConfig c = parse(kDocExample);
  NodeConfig expected;
  expected.id = 1;
  expected.cluster_id = 7;
  expected.data_dir = "/var/lib/raftfl/node1";
  expected.listen = {"127.0.0.1", 7001};
  expected.admin = {"127.0.0.1", 8001};
  expected.peers = {{2, {"127.0.0.1", 7002}}, {3, {"127.0.0.1", 7003}}};
  expected.poll_budget = 50us;
  expected.training.enabled = true;
  expected.training.rounds = 250;
  expected.training.local_steps = 2;
  expected.training.consensus_rounds = 10;
  expected.training.eval_every = 25;
  expected.training.eval_samples = 500;
  expect_same(c, expected);
}

TEST(NodeConfigTest, DefaultsApplyWhenOptionalKeysAreMissing) {
  NodeConfig c = parse(make_config({}));
  NodeConfig expected;
  expected.id = 1;
  expected.data_dir = "/var/lib/raftfl";
  expected.listen = {"127.0.0.1", 7001};
  expected.admin = {"127.0.0.1", 8001};
  expect_same(c, expected);
  EXPECT_EQ(c.cluster_id, 1u);
  EXPECT_EQ(c.transport, TransportKind::kTcp);
  EXPECT_EQ(c.max_frame_bytes, 80u << 20);
  EXPECT_EQ(c.send_queue_bytes, 128u << 20);
  EXPECT_EQ(c.reconnect_min, 10ms);
  EXPECT_EQ(c.reconnect_max, 1000ms);
  EXPECT_EQ(c.snapshot_chunk_bytes, 1u << 20);
  EXPECT_EQ(c.snapshot_bytes_per_second, 0u);
  EXPECT_TRUE(c.peers.empty());
  EXPECT_EQ(c.tick, 10ms);
  EXPECT_EQ(c.election_timeout_min, 150ms);
  EXPECT_EQ(c.election_timeout_max, 300ms);
  EXPECT_EQ(c.heartbeat, 50ms);
  EXPECT_EQ(c.max_inflight, 64u);
  EXPECT_EQ(c.max_entries_per_message, 256u);
  EXPECT_EQ(c.max_bytes_per_message, 1u << 20);
  EXPECT_EQ(c.snapshot_every, 10000u);
  EXPECT_EQ(c.max_log_entries, 100000u);
  EXPECT_EQ(c.storage, StorageKind::kDisk);
  EXPECT_EQ(c.poll_budget, 0us);
  EXPECT_EQ(c.cpu, -1);
}

TEST(NodeConfigTest, MemoryStorageNeedsNoDataDir) {
  NodeConfig c = parse(make_config({{"node.data_dir", std::nullopt}, {"storage.kind", "\"memory\""}}));
  EXPECT_EQ(c.storage, StorageKind::kMemory);
  EXPECT_TRUE(c.data_dir.empty());
}

TEST(NodeConfigTest, ListenAndAdminMayShareAnyPort) {
  NodeConfig c = parse(make_config({{"network.listen", "\"127.0.0.1:0\""}, {"network.admin", "\"127.0.0.1:0\""}}));
  EXPECT_EQ(c.listen.port, 0);
  EXPECT_EQ(c.admin.port, 0);
}

TEST(NodeConfigTest, KeysMayBeDottedOrInline) {
  NodeConfig c = parse(
      "node = { id = 3, data_dir = \"d\" }\n"
      "network.listen = \"h:1\"\n"
      "network.admin = \"h:2\"\n"
      "peers = [ { id = 1, address = \"h:3\" } ]\n");
  EXPECT_EQ(c.id, 3u);
  EXPECT_EQ(c.admin.port, 2);
  ASSERT_EQ(c.peers.size(), 1u);
  EXPECT_EQ(c.peers[0].address.port, 3);
}

TEST(NodeConfigTest, RoundTripsThroughToToml) {
  std::vector<NodeConfig> configs = {expected_full(), parse(kDocExample), parse(make_config({}))};
  NodeConfig awkward = parse(make_config({{"storage.kind", "\"memory\""}, {"node.data_dir", std::nullopt}}));
  configs.push_back(awkward);
  awkward.data_dir = "/srv/we\"ird\\dir\t\x01/n\xc3\xa9ud";
  awkward.listen = {"fe80::1%eth0", 0};
  awkward.admin = {"localhost", 0};
  configs.push_back(awkward);
  for (const NodeConfig& c : configs) {
    std::string text = to_toml(c);
    SCOPED_TRACE(text);
    expect_same(parse(text), c);
  }
}

TEST(NodeConfigTest, ToTomlWritesEveryKey) {
  std::string text = to_toml(expected_full());
  for (std::string_view key :
       {"id", "cluster_id", "data_dir", "listen", "admin", "transport", "max_frame_bytes", "send_queue_bytes",
        "reconnect_min_ms", "reconnect_max_ms", "snapshot_chunk_bytes", "snapshot_bytes_per_second", "tick_ms", "election_timeout_min_ms", "election_timeout_max_ms",
        "heartbeat_ms", "max_inflight", "max_entries_per_message", "max_bytes_per_message", "snapshot_every",
        "max_log_entries", "kind", "poll_budget_us", "cpu", "[[peers]]", "address"}) {
    EXPECT_THAT(text, HasSubstr("\n" + std::string(key))) << key;
  }
}

TEST(NodeConfigTest, RaftOptionsConvertMillisecondsToTicks) {
  NodeConfig c = parse(make_config({{"node.id", "3"}}));
  raft::Options o = c.raft_options();
  EXPECT_EQ(o.id, 3u);
  EXPECT_EQ(o.election_timeout_min_ticks, 15);
  EXPECT_EQ(o.election_timeout_max_ticks, 30);
  EXPECT_EQ(o.heartbeat_interval_ticks, 5);
  EXPECT_EQ(o.max_inflight_messages, 64u);
  EXPECT_EQ(o.max_entries_per_message, 256u);
  EXPECT_EQ(o.max_bytes_per_message, 1u << 20);
  EXPECT_EQ(raft::options_error(o), nullptr);
}

// The ticks at which an engine built from `config` starts its first `n` elections, ticked
// alone (nobody answers, so each election times out and the next one is drawn).
std::vector<int> campaign_ticks(const NodeConfig& config, int n) {
  auto boot = std::make_shared<raft::Snapshot>();
  boot->meta.config.voters = {1, 2, 3};
  raft::Raft engine(config.raft_options(), raft::PersistedState{{}, boot, {}});
  std::vector<int> ticks;
  for (int t = 1; static_cast<int>(ticks.size()) < n && t < 100000; ++t) {
    engine.tick();
    if (!engine.has_ready()) continue;  // only a campaign has something to send
    ticks.push_back(t);
    engine.advance(engine.ready());
  }
  return ticks;
}

TEST(NodeConfigTest, NodesDrawDifferentElectionTimeouts) {
  // Every node of a cluster, and every restart of one, must draw its own timeouts: with
  // one sequence for all, split votes repeat round after round.
  NodeConfig one = parse(make_config({{"node.id", "1"}}));
  NodeConfig two = parse(make_config({{"node.id", "2"}}));
  std::vector<int> a = campaign_ticks(one, 20);
  ASSERT_EQ(a.size(), 20u);
  EXPECT_NE(a, campaign_ticks(two, 20));
  EXPECT_NE(a, campaign_ticks(one, 20)) << "a restarted node replays its old timeouts";
}

TEST(NodeConfigTest, RaftOptionsRoundTimingsUp) {
  NodeConfig c = parse(make_config({{"raft.tick_ms", "7"},
                                    {"raft.election_timeout_min_ms", "150"},
                                    {"raft.election_timeout_max_ms", "301"},
                                    {"raft.heartbeat_ms", "49"}}));
  raft::Options o = c.raft_options();
  EXPECT_EQ(o.election_timeout_min_ticks, 22);  // 21.4
  EXPECT_EQ(o.election_timeout_max_ticks, 43);  // 43.0: exact, not rounded past
  EXPECT_EQ(o.heartbeat_interval_ticks, 7);     // 7.0
  EXPECT_EQ(raft::options_error(o), nullptr);

  c.heartbeat = 50ms;
  EXPECT_EQ(c.raft_options().heartbeat_interval_ticks, 8);  // 7.1
}

TEST(NodeConfigTest, EveryAcceptedTimingIsValidForTheEngine) {
  // The checks on milliseconds and on ticks together must leave nothing the engine refuses.
  for (int tick : {1, 3, 7, 10, 25}) {
    for (int heartbeat = tick; heartbeat <= 60; heartbeat += 7) {
      for (int min = heartbeat + 1; min <= 90; min += 11) {
        for (int max = min + 1; max <= 120; max += 13) {
          std::string text = make_config({{"raft.tick_ms", std::to_string(tick)},
                                          {"raft.heartbeat_ms", std::to_string(heartbeat)},
                                          {"raft.election_timeout_min_ms", std::to_string(min)},
                                          {"raft.election_timeout_max_ms", std::to_string(max)}});
          try {
            NodeConfig c = parse(text);
            EXPECT_EQ(raft::options_error(c.raft_options()), nullptr) << text;
          } catch (const ConfigError&) {
          }
        }
      }
    }
  }
}

TEST(NodeConfigTest, SyntaxErrorNamesLineAndColumn) {
  std::string message = error_of("[node]\nid = 1\nlisten = = \"x\"\n");
  EXPECT_THAT(message, MatchesRegex("node\\.toml:3:[0-9]+: .+"));
  EXPECT_EQ(message.find('\n'), std::string::npos);

  message = error_of("[node]\nid = 1\n\nid = 2\n");
  EXPECT_THAT(message, MatchesRegex("node\\.toml:4:[0-9]+: .+"));
}

TEST(NodeConfigTest, LoadsFile) {
  std::string dir = ::testing::TempDir() + "raftfl-config-test-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  std::filesystem::path file = std::filesystem::path(dir) / "node1.toml";
  std::ofstream(file) << kDocExample;
  EXPECT_EQ(load_node_config(file), parse(kDocExample));

  std::ofstream(file) << "[node]\nid = 0\n";
  try {
    load_node_config(file);
    ADD_FAILURE() << "no ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), file.string() + ": node.id: must be at least 1, not 0");
  }
  std::filesystem::remove_all(dir);
}

TEST(NodeConfigTest, MissingFileIsNamed) {
  std::filesystem::path file = "/nonexistent/raftfl/node.toml";
  try {
    load_node_config(file);
    ADD_FAILURE() << "no ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), StartsWith("/nonexistent/raftfl/node.toml: cannot open: "));
  }
  try {
    load_node_config(::testing::TempDir());
    ADD_FAILURE() << "no ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr(": cannot read: is a directory"));
  }
}

TEST(EndpointTest, ParsesHostAndPort) {
  EXPECT_EQ(parse_endpoint("127.0.0.1:7001"), (Endpoint{"127.0.0.1", 7001}));
  EXPECT_EQ(parse_endpoint("node-1.example_x:0"), (Endpoint{"node-1.example_x", 0}));
  EXPECT_EQ(parse_endpoint("[::1]:65535"), (Endpoint{"::1", 65535}));
  EXPECT_EQ(parse_endpoint("[fe80::1%eth0]:7"), (Endpoint{"fe80::1%eth0", 7}));
  EXPECT_EQ(parse_endpoint("[::ffff:10.0.0.1]:80"), (Endpoint{"::ffff:10.0.0.1", 80}));
}

TEST(EndpointTest, PrintsIpv6InBrackets) {
  EXPECT_EQ((Endpoint{"::1", 7001}).to_string(), "[::1]:7001");
  EXPECT_EQ((Endpoint{"10.0.0.1", 7001}).to_string(), "10.0.0.1:7001");
}

TEST(EndpointTest, RefusesMalformedAddresses) {
  struct Case {
    std::string_view text;
    std::string_view reason;
  };
  for (const Case& c : std::vector<Case>{
           {"", "empty"},
           {"localhost", "missing port"},
           {"localhost:", "missing port"},
           {":7001", "missing host"},
           {"::1:7001", "an IPv6 address must be in brackets"},
           {"[::1:7001", "missing ']'"},
           {"[::1]7001", "missing port"},
           {"[]:7001", "empty host"},
           {"[host]:7001", "brackets must hold an IPv6 address"},
           {"[fe80::1%]:7001", "invalid IPv6 zone"},
           {"host name:7001", "the host must be a name or an IP address"},
           {"host:65536", "the port must be a number between 0 and 65535"},
           {"host:99999999999999999999", "the port must be a number between 0 and 65535"},
           {"host:-1", "the port must be a number between 0 and 65535"},
           {"host:+1", "the port must be a number between 0 and 65535"},
           {"host:70a", "the port must be a number between 0 and 65535"},
       }) {
    try {
      parse_endpoint(c.text);
      ADD_FAILURE() << "accepted " << c.text;
    } catch (const ConfigError& e) {
      std::string message = e.what();
      EXPECT_THAT(message, StartsWith("invalid address \"" + std::string(c.text) + "\": ")) << c.text;
      EXPECT_THAT(message, HasSubstr(c.reason)) << c.text;
    }
  }
}

struct BadCase {
  std::string name;
  std::string text;
  std::string key;
  std::string reason;
};

std::ostream& operator<<(std::ostream& out, const BadCase& c) { return out << c.name; }

class BadConfigTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfigTest, NamesKeyAndReason) {
  const BadCase& c = GetParam();
  std::string message = error_of(c.text);
  SCOPED_TRACE(c.text);
  EXPECT_THAT(message, StartsWith("node.toml: " + c.key + ": "));
  EXPECT_THAT(message, HasSubstr(c.reason));
  EXPECT_EQ(message.find('\n'), std::string::npos);
}

const std::string kPeer2 = "[[peers]]\nid = 2\naddress = \"127.0.0.1:7002\"\n";
const std::string kPeer3 = "[[peers]]\nid = 3\naddress = \"127.0.0.1:7003\"\n";

std::vector<BadCase> bad_cases() {
  return {
      // The shape of the file.
      {"UnknownKey", make_config({{"network.lisen", "\"127.0.0.1:7001\""}}), "network.lisen", "unknown key"},
      {"UnknownTable", make_config({{"networkk.listen", "\"127.0.0.1:7001\""}}), "networkk", "unknown table"},
      {"UnknownSubtable", make_config({}, "[network.tls]\ncert = \"x\"\n"), "network.tls", "unknown table"},
      {"UnknownRootKey", make_config({{"verbose", "true"}}), "verbose", "unknown key"},
      {"UnknownPeerKey", make_config({}, kPeer2 + "weight = 3\n"), "peers[0].weight", "unknown key"},
      {"FirstUnknownKeyInFileOrder", make_config({{"node.zzz", "1"}, {"node.aaa", "1"}}), "node.zzz", "unknown key"},
      {"TableNotATable", "node = 5\n", "node", "must be a table, not an integer"},
      {"PeersNotAnArray", make_config({{"peers", "\"x\""}}), "peers", "must be an array of tables"},
      {"PeerNotATable", make_config({{"peers", "[1]"}}), "peers[0]", "must be a table, not an integer"},

      // [node]
      {"IdMissing", make_config({{"node.id", std::nullopt}}), "node.id", "required"},
      {"IdZero", make_config({{"node.id", "0"}}), "node.id", "must be at least 1, not 0"},
      {"IdNegative", make_config({{"node.id", "-4"}}), "node.id", "must be at least 1, not -4"},
      {"IdString", make_config({{"node.id", "\"1\""}}), "node.id", "must be an integer, not a string"},
      {"IdFloat", make_config({{"node.id", "1.0"}}), "node.id", "must be an integer, not a floating-point number"},
      {"ClusterIdZero", make_config({{"node.cluster_id", "0"}}), "node.cluster_id", "must be at least 1, not 0"},
      {"DataDirMissing", make_config({{"node.data_dir", std::nullopt}}), "node.data_dir",
       "required when storage.kind = \"disk\""},
      {"DataDirEmpty", make_config({{"node.data_dir", "\"\""}}), "node.data_dir", "must not be empty"},
      {"DataDirNotString", make_config({{"node.data_dir", "5"}}), "node.data_dir", "must be a string, not an integer"},

      // [network]
      {"ListenMissing", make_config({{"network.listen", std::nullopt}}), "network.listen", "required"},
      {"AdminMissing", make_config({{"network.admin", std::nullopt}}), "network.admin", "required"},
      {"ListenNotString", make_config({{"network.listen", "7001"}}), "network.listen", "must be a string"},
      {"ListenNoPort", make_config({{"network.listen", "\"localhost\""}}), "network.listen",
       "invalid address \"localhost\": missing port"},
      {"ListenBareIpv6", make_config({{"network.listen", "\"::1:7001\""}}), "network.listen",
       "an IPv6 address must be in brackets"},
      {"ListenPortTooLarge", make_config({{"network.listen", "\"h:65536\""}}), "network.listen",
       "the port must be a number between 0 and 65535"},
      {"ListenControlCharacter", make_config({{"network.listen", "\"h\\n:1\""}}), "network.listen",
       "invalid address \"h\\x0a:1\""},
      {"AdminSameAsListen", make_config({{"network.admin", "\"127.0.0.1:7001\""}}), "network.admin",
       "must differ from network.listen (127.0.0.1:7001)"},
      {"AdminPortBoundByWildcardListen",
       make_config({{"network.listen", "\"0.0.0.0:7001\""}, {"network.admin", "\"127.0.0.1:7001\""}}), "network.admin",
       "port 7001 is also bound by network.listen (0.0.0.0:7001)"},
      {"TransportUnknown", make_config({{"network.transport", "\"udp\""}}), "network.transport",
       "must be \"tcp\" or \"zmq\", not \"udp\""},
      {"MaxFrameTooSmall", make_config({{"network.max_frame_bytes", "65535"}}), "network.max_frame_bytes",
       "must be between 65536 and 1073741824, not 65535"},
      {"MaxFrameTooLarge", make_config({{"network.max_frame_bytes", "1073741825"}}), "network.max_frame_bytes",
       "must be between 65536 and 1073741824, not 1073741825"},
      {"SendQueueZero", make_config({{"network.send_queue_bytes", "0"}}), "network.send_queue_bytes",
       "must be at least 1, not 0"},
      {"SendQueueBelowFrame", make_config({{"network.send_queue_bytes", "83886079"}}), "network.send_queue_bytes",
       "must be at least network.max_frame_bytes (83886080)"},
      {"SnapshotChunkTooSmall", make_config({{"network.snapshot_chunk_bytes", "4095"}}), "network.snapshot_chunk_bytes",
       "must be between 4096 and 536870912, not 4095"},
      {"SnapshotChunkAboveHalfAFrame",
       make_config({{"network.max_frame_bytes", "1_000_000"}, {"network.snapshot_chunk_bytes", "500_001"}}),
       "network.snapshot_chunk_bytes", "must be at most half of network.max_frame_bytes (500000)"},
      {"ReconnectMinZero", make_config({{"network.reconnect_min_ms", "0"}}), "network.reconnect_min_ms",
       "must be between 1 and 3600000, not 0"},
      {"ReconnectMinAboveMax", make_config({{"network.reconnect_min_ms", "2000"}}), "network.reconnect_min_ms",
       "must be at most network.reconnect_max_ms (1000)"},

      // [[peers]]
      {"PeerIdMissing", make_config({}, "[[peers]]\naddress = \"h:1\"\n"), "peers[0].id", "required"},
      {"PeerIdZero", make_config({}, "[[peers]]\nid = 0\naddress = \"h:1\"\n"), "peers[0].id",
       "must be at least 1, not 0"},
      {"PeerIdIsOwnId", make_config({}, "[[peers]]\nid = 1\naddress = \"h:1\"\n"), "peers[0].id",
       "must differ from node.id (1)"},
      {"PeerIdDuplicate", make_config({}, kPeer2 + kPeer3 + "[[peers]]\nid = 2\naddress = \"h:1\"\n"), "peers[2].id",
       "duplicate of peers[0].id (2)"},
      {"PeerAddressMissing", make_config({}, "[[peers]]\nid = 2\n"), "peers[0].address", "required"},
      {"PeerAddressMalformed", make_config({}, "[[peers]]\nid = 2\naddress = \"h\"\n"), "peers[0].address",
       "invalid address \"h\": missing port"},
      {"PeerAddressNotString", make_config({}, "[[peers]]\nid = 2\naddress = 7002\n"), "peers[0].address",
       "must be a string, not an integer"},
      {"PeerPortZero", make_config({}, "[[peers]]\nid = 2\naddress = \"h:0\"\n"), "peers[0].address",
       "the port must be between 1 and 65535, not 0"},
      {"PeerAddressDuplicate", make_config({}, kPeer2 + "[[peers]]\nid = 3\naddress = \"127.0.0.1:7002\"\n"),
       "peers[1].address", "same as peers[0].address (127.0.0.1:7002)"},
      {"PeerAddressIsOwnListen", make_config({}, "[[peers]]\nid = 2\naddress = \"127.0.0.1:7001\"\n"),
       "peers[0].address", "same as network.listen (127.0.0.1:7001)"},

      // [raft]
      {"TickZero", make_config({{"raft.tick_ms", "0"}}), "raft.tick_ms", "must be between 1 and 60000, not 0"},
      {"TickAboveHeartbeat", make_config({{"raft.tick_ms", "60"}}), "raft.tick_ms",
       "must be at most raft.heartbeat_ms (50)"},
      {"ElectionMinNotBelowMax", make_config({{"raft.election_timeout_min_ms", "300"}}), "raft.election_timeout_min_ms",
       "must be less than raft.election_timeout_max_ms (300)"},
      {"ElectionMinEqualMaxInTicks",
       make_config({{"raft.election_timeout_min_ms", "151"}, {"raft.election_timeout_max_ms", "159"}}),
       "raft.election_timeout_min_ms",
       "must be less than raft.election_timeout_max_ms in whole ticks at raft.tick_ms = 10 (both round up to 16 ticks)"},
      {"ElectionMaxTooLarge", make_config({{"raft.election_timeout_max_ms", "3600001"}}),
       "raft.election_timeout_max_ms", "must be between 1 and 3600000, not 3600001"},
      {"HeartbeatNotBelowElection", make_config({{"raft.heartbeat_ms", "150"}}), "raft.heartbeat_ms",
       "must be less than raft.election_timeout_min_ms (150)"},
      {"HeartbeatEqualElectionInTicks", make_config({{"raft.heartbeat_ms", "145"}}), "raft.heartbeat_ms",
       "must be less than raft.election_timeout_min_ms in whole ticks at raft.tick_ms = 10 (both round up to 15 ticks)"},
      {"HeartbeatString", make_config({{"raft.heartbeat_ms", "\"50ms\""}}), "raft.heartbeat_ms",
       "must be an integer, not a string"},
      {"MaxInflightZero", make_config({{"raft.max_inflight", "0"}}), "raft.max_inflight", "must be at least 1, not 0"},
      {"MaxEntriesZero", make_config({{"raft.max_entries_per_message", "0"}}), "raft.max_entries_per_message",
       "must be at least 1, not 0"},
      {"MaxBytesZero", make_config({{"raft.max_bytes_per_message", "0"}}), "raft.max_bytes_per_message",
       "must be at least 1, not 0"},
      {"MaxBytesNotBelowFrame", make_config({{"raft.max_bytes_per_message", "83886080"}}),
       "raft.max_bytes_per_message", "must be less than network.max_frame_bytes (83886080)"},
      {"MaxLogEntriesZero", make_config({{"raft.max_log_entries", "0"}}), "raft.max_log_entries",
       "must be at least 1, not 0"},
      {"SnapshotEveryNegative", make_config({{"raft.snapshot_every", "-1"}}), "raft.snapshot_every",
       "must be at least 0, not -1"},
      {"SnapshotEveryNotBelowLogBound", make_config({{"raft.snapshot_every", "100000"}}), "raft.snapshot_every",
       "must be less than raft.max_log_entries (100000) or 0 (never)"},

      // [storage] and [reactor]
      {"StorageKindUnknown", make_config({{"storage.kind", "\"ssd\""}}), "storage.kind",
       "must be \"disk\" or \"memory\", not \"ssd\""},
      {"StorageKindNotString", make_config({{"storage.kind", "true"}}), "storage.kind", "must be a string, not a boolean"},
      {"PollBudgetNegative", make_config({{"reactor.poll_budget_us", "-1"}}), "reactor.poll_budget_us",
       "must be between 0 and 1000000, not -1"},
      {"PollBudgetTooLarge", make_config({{"reactor.poll_budget_us", "1000001"}}), "reactor.poll_budget_us",
       "must be between 0 and 1000000, not 1000001"},
      {"CpuBelowMinusOne", make_config({{"reactor.cpu", "-2"}}), "reactor.cpu", "must be between -1 and 1023, not -2"},
      {"CpuTooLarge", make_config({{"reactor.cpu", "1024"}}), "reactor.cpu", "must be between -1 and 1023, not 1024"},

      // [training]
      {"TrainingUnknownKey", make_config({{"training.modle", "\"cnn\""}}), "training.modle", "unknown key"},
      {"TrainingNotATable", make_config({{"training", "5"}}), "training", "must be a table, not an integer"},
      {"TrainingEnabledInteger", make_config({{"training.enabled", "1"}}), "training.enabled",
       "must be true or false, not an integer"},
      {"TrainingDatasetDirEmpty", make_config({{"training.dataset_dir", "\"\""}}), "training.dataset_dir",
       "must not be empty"},
      {"TrainingDatasetDirNotString", make_config({{"training.dataset_dir", "3"}}), "training.dataset_dir",
       "must be a string, not an integer"},
      {"TrainingModelUnknown", make_config({{"training.model", "\"resnet\""}}), "training.model",
       "must be one of \"cnn\", \"mlp\", not \"resnet\""},
      {"TrainingRoundsString", make_config({{"training.rounds", "\"ten\""}}), "training.rounds",
       "must be an integer, not a string"},
      {"TrainingRoundsZero", make_config({{"training.rounds", "0"}}), "training.rounds",
       "must be between 1 and 1000000000, not 0"},
      {"TrainingRoundsFloat", make_config({{"training.rounds", "10.0"}}), "training.rounds",
       "must be an integer, not a floating-point number"},
      {"TrainingLocalStepsZero", make_config({{"training.local_steps", "0"}}), "training.local_steps",
       "must be between 1 and 1000000, not 0"},
      {"TrainingBatchSizeTooLarge", make_config({{"training.batch_size", "65537"}}), "training.batch_size",
       "must be between 1 and 65536, not 65537"},
      {"TrainingLearningRateNegative", make_config({{"training.learning_rate", "-0.5"}}), "training.learning_rate",
       "must be between 0 and 100, not -0.5"},
      {"TrainingLearningRateNaN", make_config({{"training.learning_rate", "nan"}}), "training.learning_rate",
       "must be between 0 and 100, not "},
      {"TrainingLearningRateString", make_config({{"training.learning_rate", "\"0.1\""}}), "training.learning_rate",
       "must be a number, not a string"},
      {"TrainingMomentumOne", make_config({{"training.momentum", "1.0"}}), "training.momentum",
       "must be between 0 and 0.999, not 1"},
      {"TrainingPartitionUnknown", make_config({{"training.partition", "\"x\""}}), "training.partition",
       "must be one of \"dirichlet\", \"iid\", not \"x\""},
      {"TrainingDirichletAlphaTooSmall", make_config({{"training.dirichlet_alpha", "0.0"}}), "training.dirichlet_alpha",
       "must be between 0.001 and 1e+06, not 0"},
      {"TrainingMinSamplesZero", make_config({{"training.min_samples_per_node", "0"}}),
       "training.min_samples_per_node", "must be at least 1, not 0"},
      {"TrainingEvalEveryNegative", make_config({{"training.eval_every", "-1"}}), "training.eval_every",
       "must be between 0 and 1000000, not -1"},
      {"TrainingThreadsZero", make_config({{"training.threads", "0"}}), "training.threads",
       "must be between 1 and 1024, not 0"},
      {"TrainingCheckpointEveryNegative", make_config({{"training.checkpoint_every", "-1"}}),
       "training.checkpoint_every", "must be between 0 and 1000000, not -1"},

      // [gossip]
      {"GossipUnknownKey", make_config({{"gossip.dnsity", "0.1"}}), "gossip.dnsity", "unknown key"},
      {"GossipSparsifierUnknown", make_config({{"gossip.sparsifier", "\"topk\""}}), "gossip.sparsifier",
       "must be one of \"random-k\", \"top-k\", \"dense\", not \"topk\""},
      {"GossipDensityTooLarge", make_config({{"gossip.density", "1.5"}}), "gossip.density",
       "must be between 0 and 1, not 1.5"},
      {"GossipDensityNegative", make_config({{"gossip.density", "-0.1"}}), "gossip.density",
       "must be between 0 and 1, not -0.1"},
      {"GossipDensityBoolean", make_config({{"gossip.density", "true"}}), "gossip.density",
       "must be a number, not a boolean"},
      {"GossipEncodingUnknown", make_config({{"gossip.encoding", "\"fp16\""}}), "gossip.encoding",
       "must be one of \"fp32\", \"bf16\", not \"fp16\""},
      {"GossipChunkBytesTooSmall", make_config({{"gossip.chunk_bytes", "4095"}}), "gossip.chunk_bytes",
       "must be between 4096 and 536870912, not 4095"},
      {"GossipExchangeTimeoutZero", make_config({{"gossip.exchange_timeout_ms", "0"}}), "gossip.exchange_timeout_ms",
       "must be between 1 and 3600000, not 0"},

      // [coordinator]
      {"CoordinatorUnknownKey", make_config({{"coordinator.round_ahead", "2"}}), "coordinator.round_ahead",
       "unknown key"},
      {"CoordinatorRoundsAheadZero", make_config({{"coordinator.rounds_ahead", "0"}}), "coordinator.rounds_ahead",
       "must be between 1 and 64, not 0"},
      {"CoordinatorBandwidthThresholdNegative", make_config({{"coordinator.bandwidth_threshold", "-1.0"}}),
       "coordinator.bandwidth_threshold", "must be between 0 and 1e+15, not -1"},
      {"CoordinatorHistoryRoundsTooLarge", make_config({{"coordinator.history_rounds", "65"}}),
       "coordinator.history_rounds", "must be between 1 and 64, not 65"},
      {"CoordinatorBandwidthChangeString", make_config({{"coordinator.bandwidth_change", "\"20%\""}}),
       "coordinator.bandwidth_change", "must be a number, not a string"},
      {"CoordinatorStartGraceNegative", make_config({{"coordinator.start_grace_ms", "-1"}}),
       "coordinator.start_grace_ms", "must be between 0 and 3600000, not -1"},
      {"CoordinatorBandwidthIntervalZero", make_config({{"coordinator.bandwidth_interval_ms", "0"}}),
       "coordinator.bandwidth_interval_ms", "must be between 1 and 3600000, not 0"},
  };
}

INSTANTIATE_TEST_SUITE_P(Rules, BadConfigTest, ::testing::ValuesIn(bad_cases()),
                         [](const ::testing::TestParamInfo<BadCase>& param) { return param.param.name; });

TEST(NodeConfigTest, MessagesAreExact) {
  EXPECT_EQ(error_of(make_config({{"raft.election_timeout_min_ms", "300"}})),
            "node.toml: raft.election_timeout_min_ms: must be less than raft.election_timeout_max_ms (300)");
  EXPECT_EQ(error_of(make_config({{"network.lisen", "\"x\""}})), "node.toml: network.lisen: unknown key");
}


// [training], [gossip] and [coordinator]: every key set, none to its default.
const std::vector<Edit> kTrainingEdits = {
    {"training.enabled", "true"},
    {"training.dataset_dir", "\"/data/fashion\""},
    {"training.model", "\"mlp\""},
    {"training.rounds", "250"},
    {"training.local_steps", "3"},
    {"training.batch_size", "64"},
    {"training.learning_rate", "0.01"},
    {"training.momentum", "0.5"},
    {"training.weight_decay", "1e-4"},
    {"training.partition", "\"iid\""},
    {"training.dirichlet_alpha", "0.3"},
    {"training.partition_seed", "42"},
    {"training.min_samples_per_node", "10"},
    {"training.train_subset", "6000"},
    {"training.model_seed", "9"},
    {"training.eval_every", "0"},
    {"training.eval_samples", "500"},
    {"training.threads", "4"},
    {"training.checkpoint_every", "0"},
    {"gossip.sparsifier", "\"top-k\""},
    {"gossip.density", "0.05"},
    {"gossip.encoding", "\"bf16\""},
    {"gossip.chunk_bytes", "65536"},
    {"gossip.exchange_timeout_ms", "2500"},
    {"coordinator.rounds_ahead", "3"},
    {"coordinator.bandwidth_threshold", "1.25e6"},
    {"coordinator.history_rounds", "8"},
    {"coordinator.bandwidth_change", "0.35"},
    {"coordinator.start_grace_ms", "100"},
    {"coordinator.bandwidth_interval_ms", "250"},
    {"coordinator.start_workers", "8"},
    {"coordinator.failure_rounds", "9"},
    {"training.shards", "12"},
};

void expect_same_training(const NodeConfig& a, const NodeConfig& b) {
  const TrainingConfig& x = a.training;
  const TrainingConfig& y = b.training;
  EXPECT_EQ(x.enabled, y.enabled);
  EXPECT_EQ(x.dataset_dir, y.dataset_dir);
  EXPECT_EQ(x.model, y.model);
  EXPECT_EQ(x.rounds, y.rounds);
  EXPECT_EQ(x.local_steps, y.local_steps);
  EXPECT_EQ(x.batch_size, y.batch_size);
  EXPECT_EQ(x.learning_rate, y.learning_rate);
  EXPECT_EQ(x.momentum, y.momentum);
  EXPECT_EQ(x.weight_decay, y.weight_decay);
  EXPECT_EQ(x.partition, y.partition);
  EXPECT_EQ(x.dirichlet_alpha, y.dirichlet_alpha);
  EXPECT_EQ(x.partition_seed, y.partition_seed);
  EXPECT_EQ(x.min_samples_per_node, y.min_samples_per_node);
  EXPECT_EQ(x.train_subset, y.train_subset);
  EXPECT_EQ(x.model_seed, y.model_seed);
  EXPECT_EQ(x.eval_every, y.eval_every);
  EXPECT_EQ(x.eval_samples, y.eval_samples);
  EXPECT_EQ(x.threads, y.threads);
  EXPECT_EQ(x.checkpoint_every, y.checkpoint_every);
  EXPECT_TRUE(x == y);
  EXPECT_EQ(a.gossip.sparsifier, b.gossip.sparsifier);
  EXPECT_EQ(a.gossip.density, b.gossip.density);
  EXPECT_EQ(a.gossip.encoding, b.gossip.encoding);
  EXPECT_EQ(a.gossip.chunk_bytes, b.gossip.chunk_bytes);
  EXPECT_EQ(a.gossip.exchange_timeout, b.gossip.exchange_timeout);
  EXPECT_TRUE(a.gossip == b.gossip);
  EXPECT_EQ(a.coordinator.rounds_ahead, b.coordinator.rounds_ahead);
  EXPECT_EQ(a.coordinator.bandwidth_threshold, b.coordinator.bandwidth_threshold);
  EXPECT_EQ(a.coordinator.history_rounds, b.coordinator.history_rounds);
  EXPECT_EQ(a.coordinator.bandwidth_change, b.coordinator.bandwidth_change);
  EXPECT_EQ(a.coordinator.start_grace, b.coordinator.start_grace);
  EXPECT_EQ(a.coordinator.bandwidth_interval, b.coordinator.bandwidth_interval);
  EXPECT_EQ(a.coordinator.start_workers, b.coordinator.start_workers);
  EXPECT_EQ(a.coordinator.failure_rounds, b.coordinator.failure_rounds);
  EXPECT_EQ(a.training.shards, b.training.shards);
  EXPECT_TRUE(a.coordinator == b.coordinator);
}

TEST(NodeConfigTest, TrainingGossipCoordinatorDefaultsWhenAbsent) {
  NodeConfig c = parse(make_config({}));
  const TrainingConfig& t = c.training;
  EXPECT_FALSE(t.enabled);
  EXPECT_EQ(t.dataset_dir, std::filesystem::path("/usr/share/datasets/fashion-mnist"));
  EXPECT_EQ(t.model, ModelKind::kCnn);
  EXPECT_EQ(t.rounds, 100u);
  EXPECT_EQ(t.local_steps, 10);
  EXPECT_EQ(t.batch_size, 32);
  EXPECT_EQ(t.learning_rate, 0.05);
  EXPECT_EQ(t.momentum, 0.9);
  EXPECT_EQ(t.weight_decay, 0.0);
  EXPECT_EQ(t.partition, PartitionKind::kDirichlet);
  EXPECT_EQ(t.dirichlet_alpha, 0.5);
  EXPECT_EQ(t.partition_seed, 1u);
  EXPECT_EQ(t.min_samples_per_node, 64u);
  EXPECT_EQ(t.train_subset, 0u);
  EXPECT_EQ(t.model_seed, 1u);
  EXPECT_EQ(t.eval_every, 5);
  EXPECT_EQ(t.eval_samples, 1000u);
  EXPECT_EQ(t.threads, 1);
  EXPECT_EQ(t.checkpoint_every, 10);
  EXPECT_EQ(c.gossip.sparsifier, SparsifierKind::kRandomK);
  EXPECT_EQ(c.gossip.density, 0.1);
  EXPECT_EQ(c.gossip.encoding, EncodingKind::kFp32);
  EXPECT_EQ(c.gossip.chunk_bytes, 1u << 20);
  EXPECT_EQ(c.gossip.exchange_timeout, 5000ms);
  EXPECT_EQ(c.coordinator.rounds_ahead, 2u);
  EXPECT_EQ(c.coordinator.bandwidth_threshold, 0.0);
  EXPECT_EQ(c.coordinator.history_rounds, 5);
  EXPECT_EQ(c.coordinator.bandwidth_change, 0.2);
  EXPECT_EQ(c.coordinator.start_grace, 5000ms);
  EXPECT_EQ(c.coordinator.bandwidth_interval, 1000ms);
  EXPECT_EQ(c.coordinator.start_workers, 0u);
  EXPECT_EQ(c.coordinator.failure_rounds, 5u);
  EXPECT_EQ(c.training.shards, 0u);
  // Empty tables are the same as absent ones.
  NodeConfig empty_tables = parse(make_config({}, "[training]\n[gossip]\n[coordinator]\n"));
  expect_same_training(empty_tables, c);
}

TEST(NodeConfigTest, ParsesEveryTrainingGossipCoordinatorKey) {
  NodeConfig c = parse(make_config(kTrainingEdits));
  NodeConfig expected = parse(make_config({}));
  TrainingConfig& t = expected.training;
  t.enabled = true;
  t.dataset_dir = "/data/fashion";
  t.model = ModelKind::kMlp;
  t.rounds = 250;
  t.local_steps = 3;
  t.batch_size = 64;
  t.learning_rate = 0.01;
  t.momentum = 0.5;
  t.weight_decay = 1e-4;
  t.partition = PartitionKind::kIid;
  t.dirichlet_alpha = 0.3;
  t.partition_seed = 42;
  t.min_samples_per_node = 10;
  t.train_subset = 6000;
  t.model_seed = 9;
  t.eval_every = 0;
  t.eval_samples = 500;
  t.threads = 4;
  t.checkpoint_every = 0;
  expected.gossip.sparsifier = SparsifierKind::kTopK;
  expected.gossip.density = 0.05;
  expected.gossip.encoding = EncodingKind::kBf16;
  expected.gossip.chunk_bytes = 65536;
  expected.gossip.exchange_timeout = 2500ms;
  expected.coordinator.rounds_ahead = 3;
  expected.coordinator.bandwidth_threshold = 1.25e6;
  expected.coordinator.history_rounds = 8;
  expected.coordinator.bandwidth_change = 0.35;
  expected.coordinator.start_grace = 100ms;
  expected.coordinator.bandwidth_interval = 250ms;
  expected.coordinator.start_workers = 8;
  expected.coordinator.failure_rounds = 9;
  expected.training.shards = 12;
  expect_same_training(c, expected);
  expect_same(c, expected);
}

TEST(NodeConfigTest, TrainingNumbersAcceptIntegersAndBoundaries) {
  NodeConfig c = parse(make_config({{"training.learning_rate", "1"},
                                    {"training.momentum", "0.999"},
                                    {"gossip.density", "0"},
                                    {"gossip.sparsifier", "\"dense\""},
                                    {"coordinator.bandwidth_threshold", "1000"}}));
  EXPECT_EQ(c.training.learning_rate, 1.0);
  EXPECT_EQ(c.training.momentum, 0.999);
  EXPECT_EQ(c.gossip.density, 0.0);
  EXPECT_EQ(c.gossip.sparsifier, SparsifierKind::kDense);
  EXPECT_EQ(c.coordinator.bandwidth_threshold, 1000.0);
  EXPECT_EQ(parse(make_config({{"gossip.density", "1.0"}})).gossip.density, 1.0);
}

TEST(NodeConfigTest, TrainingGossipCoordinatorRoundTripThroughToToml) {
  std::vector<NodeConfig> configs = {parse(make_config({})), parse(make_config(kTrainingEdits))};
  NodeConfig awkward = parse(make_config(kTrainingEdits));
  awkward.training.learning_rate = 0.1 + 0.2;  // 0.30000000000000004
  awkward.training.weight_decay = 1e-4;
  awkward.training.momentum = 0.0;
  awkward.training.dirichlet_alpha = 1.0 / 3.0;
  awkward.training.dataset_dir = "/srv/da\"ta\\set";
  awkward.gossip.density = 0.05;
  awkward.gossip.sparsifier = SparsifierKind::kDense;
  awkward.coordinator.bandwidth_threshold = 123456789.125;
  awkward.coordinator.bandwidth_change = 1e-9;
  configs.push_back(awkward);
  awkward.gossip.density = 1.0 / 7.0;
  awkward.coordinator.bandwidth_threshold = 0.0;
  awkward.training.learning_rate = 100.0;
  configs.push_back(awkward);
  for (const NodeConfig& c : configs) {
    std::string text = to_toml(c);
    SCOPED_TRACE(text);
    NodeConfig back = parse(text);
    expect_same_training(back, c);
    EXPECT_TRUE(back == c);
  }
}

TEST(NodeConfigTest, ToTomlWritesEveryTrainingGossipCoordinatorKey) {
  std::string text = to_toml(parse(make_config(kTrainingEdits)));
  for (std::string_view table : {"[training]", "[gossip]", "[coordinator]"}) {
    EXPECT_THAT(text, HasSubstr("\n" + std::string(table) + "\n")) << table;
  }
  for (const Edit& e : kTrainingEdits) {
    std::string key = e.key.substr(e.key.find('.') + 1);
    EXPECT_THAT(text, HasSubstr("\n" + key + " = ")) << e.key;
  }
}

TEST(NodeConfigTest, TrainingMessagesAreExact) {
  EXPECT_EQ(error_of(make_config({{"training.modle", "\"cnn\""}})), "node.toml: training.modle: unknown key");
  EXPECT_EQ(error_of(make_config({{"gossip.density", "1.5"}})),
            "node.toml: gossip.density: must be between 0 and 1, not 1.5");
  EXPECT_EQ(error_of(make_config({{"training.enabled", "1"}})),
            "node.toml: training.enabled: must be true or false, not an integer");
  EXPECT_EQ(error_of(make_config({{"training.model", "\"resnet\""}})),
            "node.toml: training.model: must be one of \"cnn\", \"mlp\", not \"resnet\"");
}

// The key table drives the parser, the unknown-key check and to_toml; these hold it to
// all three for every key, including ones added later.
TEST(NodeConfigTest, EveryKeyOfTheTableIsParsed) {
  ASSERT_FALSE(config_keys().empty());
  for (const ConfigKey& k : config_keys()) {
    std::string name = std::string(k.table) + "." + std::string(k.key);
    EXPECT_THAT(error_of(make_config({{name, "[]"}})), StartsWith("node.toml: " + name + ": must be ")) << name;
  }
}

TEST(NodeConfigTest, ToTomlWritesEveryKeyOfTheTable) {
  // node.leave_on_stop has no default (unset: learners leave, voters stay): given one
  // here, and an unset one is left out and read back unset.
  EXPECT_EQ(to_toml(parse(make_config({}))).find("leave_on_stop"), std::string::npos);
  EXPECT_FALSE(parse(to_toml(parse(make_config({})))).leave_on_stop.has_value());
  EXPECT_EQ(parse(to_toml(parse(make_config({{"node.leave_on_stop", "true"}})))).leave_on_stop, true);
  std::string text = "\n" + to_toml(parse(make_config({{"node.leave_on_stop", "false"}})));
  for (const ConfigKey& k : config_keys()) {
    std::string table = "\n[" + std::string(k.table) + "]\n";
    std::size_t at = text.find(table);
    ASSERT_NE(at, std::string::npos) << k.table;
    std::size_t end = text.find("\n[", at + table.size());
    std::string section = text.substr(at, end == std::string::npos ? std::string::npos : end - at);
    EXPECT_THAT(section, HasSubstr("\n" + std::string(k.key) + " = ")) << k.table << "." << k.key;
  }
}

TEST(NodeConfigTest, TableDescribesEveryKey) {
  for (const ConfigKey& k : config_keys()) {
    EXPECT_FALSE(k.type.empty()) << k.key;
    EXPECT_FALSE(k.help.empty()) << k.key;
  }
  auto find = [](std::string_view table, std::string_view key) {
    const auto& keys = config_keys();
    return *std::find_if(keys.begin(), keys.end(), [&](const ConfigKey& k) { return k.table == table && k.key == key; });
  };
  EXPECT_EQ(find("gossip", "sparsifier").type, "\"random-k\", \"top-k\", \"dense\"");
  EXPECT_EQ(find("storage", "kind").type, "\"disk\" or \"memory\"");
  EXPECT_EQ(find("coordinator", "rounds_ahead").range, "1 to 64");
  EXPECT_EQ(find("raft", "max_inflight").range, "at least 1");
  EXPECT_EQ(find("gossip", "density").range, "0 to 1");
}

TEST(NodeConfigTest, KindNamesRoundTrip) {
  for (auto kind : {ModelKind::kCnn, ModelKind::kMlp}) EXPECT_EQ(kind_from_string<ModelKind>(to_string(kind)), kind);
  for (auto kind : {PartitionKind::kDirichlet, PartitionKind::kIid})
    EXPECT_EQ(kind_from_string<PartitionKind>(to_string(kind)), kind);
  for (auto kind : {SparsifierKind::kRandomK, SparsifierKind::kTopK, SparsifierKind::kDense})
    EXPECT_EQ(kind_from_string<SparsifierKind>(to_string(kind)), kind);
  for (auto kind : {EncodingKind::kFp32, EncodingKind::kBf16})
    EXPECT_EQ(kind_from_string<EncodingKind>(to_string(kind)), kind);
  EXPECT_EQ(to_string(SparsifierKind::kTopK), "top-k");
  EXPECT_EQ(to_string(StorageKind::kMemory), "memory");
  EXPECT_EQ(kind_from_string<ModelKind>("resnet"), std::nullopt);
  EXPECT_EQ(kind_from_string<TransportKind>("zmq"), TransportKind::kZmq);
}

}  // namespace
}  // namespace raftfl::node
