#include "raftfl/node/config.hpp"

#include "raftfl/common/entropy.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <span>
#include <sstream>
#include <system_error>
#include <utility>

// The shared libtomlplusplus that Debian ships holds only the throwing parser.
#if !TOML_EXCEPTIONS
#error "raftfl_node_config needs toml++ with exceptions enabled"
#endif

namespace raftfl::node {
namespace {

constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();

// Bounds that catch a misplaced digit. Timeouts of an hour still fit an int of ticks at a
// 1 ms tick.
constexpr std::int64_t kMaxMillis = 3'600'000;
constexpr std::int64_t kMaxTickMillis = 60'000;
constexpr std::int64_t kMaxRounds = 1'000'000'000;
constexpr std::int64_t kMinFrameBytes = std::int64_t{64} << 10;
// Cap'n Proto addresses a message in 32-bit words per segment; a frame far below that
// limit keeps one message from pinning gigabytes of receive buffer.
constexpr std::int64_t kMaxFrameBytes = std::int64_t{1} << 30;
constexpr std::int64_t kMaxPollBudgetMicros = 1'000'000;
// CPU_SETSIZE: the largest CPU number that sched_setaffinity's fixed cpu_set_t can name.
constexpr std::int64_t kMaxCpu = 1023;

// Messages must stay on one line whatever the file contains.
std::string printable(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  return out;
}

std::string one_line(std::string_view text) {
  std::string out(text);
  std::replace_if(out.begin(), out.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  return out;
}

std::string_view type_name(toml::node_type type) {
  switch (type) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::none: break;
  }
  return "nothing";
}

bool is_wildcard_host(std::string_view host) { return host == "0.0.0.0" || host == "::"; }

class Reader {
 public:
  explicit Reader(std::string_view source) : source_(source) {}

  [[noreturn]] void fail(std::string_view key, std::string_view reason) const {
    std::string message(source_);
    message += ": ";
    message += key;
    message += ": ";
    message += reason;
    throw ConfigError(one_line(message));
  }

  // The file's shape before its values: a misspelt table or key is the likeliest mistake
  // and must not hide behind "required" errors for the keys it was meant to set.
  void check_shape(const toml::table& root) const {
    static constexpr std::array<std::string_view, 8> kTables = {"node",    "network",  "raft",   "storage",
                                                                "reactor", "training", "gossip", "coordinator"};
    static constexpr std::array<std::string_view, 9> kRoot = {"node",     "network", "raft",        "storage", "reactor",
                                                              "training", "gossip",  "coordinator", "peers"};
    static constexpr std::array<std::string_view, 2> kPeer = {"id", "address"};
    reject_unknown(root, "", kRoot);
    for (std::string_view name : kTables) {
      const toml::node* node = root.get(name);
      if (node == nullptr) continue;
      if (!node->is_table()) fail(name, "must be a table, not " + std::string(type_name(node->type())));
      reject_unknown(*node->as_table(), std::string(name) + ".", known_keys(name));
    }
    if (const toml::node* peers = root.get("peers")) {
      const toml::array* array = peers->as_array();
      if (array == nullptr) fail("peers", "must be an array of tables ([[peers]]), not " + std::string(type_name(peers->type())));
      for (std::size_t i = 0; i < array->size(); ++i) {
        const toml::node& element = *array->get(i);
        std::string prefix = "peers[" + std::to_string(i) + "]";
        if (!element.is_table()) fail(prefix, "must be a table, not " + std::string(type_name(element.type())));
        reject_unknown(*element.as_table(), prefix + ".", kPeer);
      }
    }
  }

  std::optional<std::int64_t> integer(const toml::table* table, std::string_view prefix, std::string_view key,
                                      std::int64_t min, std::int64_t max) const {
    const toml::node* node = table == nullptr ? nullptr : table->get(key);
    if (node == nullptr) return std::nullopt;
    std::string name = std::string(prefix) + "." + std::string(key);
    const auto* value = node->as_integer();
    if (value == nullptr) fail(name, "must be an integer, not " + std::string(type_name(node->type())));
    std::int64_t v = value->get();
    if (v < min || v > max) {
      std::string reason = max == kInt64Max ? "must be at least " + std::to_string(min)
                                            : "must be between " + std::to_string(min) + " and " + std::to_string(max);
      fail(name, reason + ", not " + std::to_string(v));
    }
    return v;
  }

  // A number (integer or float) in [min, max].
  std::optional<double> number(const toml::table* table, std::string_view prefix, std::string_view key, double min,
                               double max) const {
    const toml::node* node = table == nullptr ? nullptr : table->get(key);
    if (node == nullptr) return std::nullopt;
    std::string name = std::string(prefix) + "." + std::string(key);
    double v = 0;
    if (const auto* f = node->as_floating_point()) {
      v = f->get();
    } else if (const auto* i = node->as_integer()) {
      v = static_cast<double>(i->get());
    } else {
      fail(name, "must be a number, not " + std::string(type_name(node->type())));
    }
    if (!(v >= min && v <= max)) {
      std::ostringstream reason;
      reason << "must be between " << min << " and " << max << ", not " << v;
      fail(name, reason.str());
    }
    return v;
  }

  std::optional<bool> boolean(const toml::table* table, std::string_view prefix, std::string_view key) const {
    const toml::node* node = table == nullptr ? nullptr : table->get(key);
    if (node == nullptr) return std::nullopt;
    const auto* value = node->as_boolean();
    if (value == nullptr)
      fail(std::string(prefix) + "." + std::string(key), "must be true or false, not " + std::string(type_name(node->type())));
    return value->get();
  }

  // A string that must be one of `allowed`.
  std::optional<std::string> choice(const toml::table* table, std::string_view prefix, std::string_view key,
                                    std::initializer_list<std::string_view> allowed) const {
    auto text = string(table, prefix, key);
    if (!text) return std::nullopt;
    if (std::find(allowed.begin(), allowed.end(), *text) != allowed.end()) return text;
    std::string list;
    for (auto a : allowed) list += (list.empty() ? "\"" : ", \"") + std::string(a) + "\"";
    fail(std::string(prefix) + "." + std::string(key), "must be one of " + list + ", not " + printable(*text));
  }

  std::optional<std::string> string(const toml::table* table, std::string_view prefix, std::string_view key) const {
    const toml::node* node = table == nullptr ? nullptr : table->get(key);
    if (node == nullptr) return std::nullopt;
    const auto* value = node->as_string();
    if (value == nullptr) {
      fail(std::string(prefix) + "." + std::string(key), "must be a string, not " + std::string(type_name(node->type())));
    }
    return value->get();
  }

  std::optional<Endpoint> endpoint(const toml::table* table, std::string_view prefix, std::string_view key) const {
    std::optional<std::string> text = string(table, prefix, key);
    if (!text) return std::nullopt;
    try {
      return parse_endpoint(*text);
    } catch (const ConfigError& e) {
      fail(std::string(prefix) + "." + std::string(key), e.what());
    }
  }

 private:
  static std::span<const std::string_view> known_keys(std::string_view table) {
    static constexpr std::array<std::string_view, 3> kNode = {"id", "cluster_id", "data_dir"};
    static constexpr std::array<std::string_view, 7> kNetwork = {
        "listen", "admin", "transport", "max_frame_bytes", "send_queue_bytes", "reconnect_min_ms", "reconnect_max_ms"};
    static constexpr std::array<std::string_view, 9> kRaft = {
        "tick_ms", "election_timeout_min_ms", "election_timeout_max_ms", "heartbeat_ms", "max_inflight",
        "max_entries_per_message", "max_bytes_per_message", "snapshot_every", "max_log_entries"};
    static constexpr std::array<std::string_view, 1> kStorage = {"kind"};
    static constexpr std::array<std::string_view, 2> kReactor = {"poll_budget_us", "cpu"};
    if (table == "node") return kNode;
    if (table == "network") return kNetwork;
    if (table == "raft") return kRaft;
    if (table == "storage") return kStorage;
    if (table == "reactor") return kReactor;
    static constexpr std::array<std::string_view, 20> kTraining = {
        "enabled",        "dataset_dir",     "model",        "rounds",          "local_steps",
        "batch_size",     "learning_rate",   "momentum",     "weight_decay",    "partition",
        "dirichlet_alpha", "partition_seed", "min_samples_per_node", "train_subset", "model_seed",
        "eval_every",     "eval_samples",    "threads",      "checkpoint_every", "consensus_rounds"};
    static constexpr std::array<std::string_view, 6> kGossip = {"sparsifier", "density", "encoding", "chunk_bytes",
                                                                "exchange_timeout_ms", "all_reduce"};
    static constexpr std::array<std::string_view, 6> kCoordinator = {
        "rounds_ahead", "bandwidth_threshold", "history_rounds", "bandwidth_change", "start_grace_ms",
        "bandwidth_interval_ms"};
    if (table == "training") return kTraining;
    if (table == "gossip") return kGossip;
    if (table == "coordinator") return kCoordinator;
    return {};
  }

  // Reports the unknown key that comes first in the file, not first in the table's
  // (sorted) order, so that the message points where the reader will look.
  void reject_unknown(const toml::table& table, std::string_view prefix,
                      std::span<const std::string_view> known) const {
    const toml::key* first = nullptr;
    const toml::node* first_node = nullptr;
    for (auto&& [key, node] : table) {
      if (std::find(known.begin(), known.end(), key.str()) != known.end()) continue;
      if (first == nullptr || key.source().begin < first->source().begin) {
        first = &key;
        first_node = &node;
      }
    }
    if (first == nullptr) return;
    bool is_table = first_node->is_table() || first_node->is_array_of_tables();
    fail(std::string(prefix) + std::string(first->str()), is_table ? "unknown table" : "unknown key");
  }

  std::string_view source_;
};

const toml::table* table_of(const toml::table& root, std::string_view name) {
  const toml::node* node = root.get(name);
  return node == nullptr ? nullptr : node->as_table();
}

template <typename T>
void assign(std::optional<std::int64_t> value, T& out) {
  if (value) out = static_cast<T>(*value);
}

template <typename Rep, typename Period>
void assign(std::optional<std::int64_t> value, std::chrono::duration<Rep, Period>& out) {
  if (value) out = std::chrono::duration<Rep, Period>(*value);
}

// Ticks that cover `d` in full: a timeout never fires before the time the file asks for.
std::int64_t ticks_of(std::chrono::milliseconds d, std::chrono::milliseconds tick) {
  std::int64_t whole = d.count() / tick.count();
  return d.count() % tick.count() > 0 ? whole + 1 : whole;
}

void parse_training(const Reader& r, const toml::table& root, NodeConfig& c) {
  const toml::table* t = table_of(root, "training");
  TrainingConfig& tc = c.training;
  if (auto v = r.boolean(t, "training", "enabled")) tc.enabled = *v;
  if (auto v = r.string(t, "training", "dataset_dir")) {
    if (v->empty()) r.fail("training.dataset_dir", "must not be empty");
    tc.dataset_dir = *v;
  }
  if (auto v = r.choice(t, "training", "model", {"cnn", "mlp"})) tc.model = *v;
  assign(r.integer(t, "training", "rounds", 1, kMaxRounds), tc.rounds);
  assign(r.integer(t, "training", "local_steps", 1, 1000000), tc.local_steps);
  assign(r.integer(t, "training", "batch_size", 1, 65536), tc.batch_size);
  if (auto v = r.number(t, "training", "learning_rate", 0.0, 100.0)) tc.learning_rate = *v;
  if (auto v = r.number(t, "training", "momentum", 0.0, 0.999)) tc.momentum = *v;
  if (auto v = r.number(t, "training", "weight_decay", 0.0, 1.0)) tc.weight_decay = *v;
  if (auto v = r.choice(t, "training", "partition", {"dirichlet", "iid"})) tc.partition = *v;
  if (auto v = r.number(t, "training", "dirichlet_alpha", 1e-3, 1e6)) tc.dirichlet_alpha = *v;
  assign(r.integer(t, "training", "partition_seed", 0, kInt64Max), tc.partition_seed);
  assign(r.integer(t, "training", "min_samples_per_node", 1, kInt64Max), tc.min_samples_per_node);
  assign(r.integer(t, "training", "train_subset", 0, kInt64Max), tc.train_subset);
  assign(r.integer(t, "training", "model_seed", 0, kInt64Max), tc.model_seed);
  assign(r.integer(t, "training", "eval_every", 0, 1000000), tc.eval_every);
  assign(r.integer(t, "training", "eval_samples", 1, kInt64Max), tc.eval_samples);
  assign(r.integer(t, "training", "threads", 1, 1024), tc.threads);
  assign(r.integer(t, "training", "checkpoint_every", 0, 1000000), tc.checkpoint_every);
  assign(r.integer(t, "training", "consensus_rounds", 0, kMaxRounds), tc.consensus_rounds);

  const toml::table* g = table_of(root, "gossip");
  GossipConfig& gc = c.gossip;
  if (auto v = r.choice(g, "gossip", "sparsifier", {"random-k", "top-k", "dense"})) gc.sparsifier = *v;
  if (auto v = r.number(g, "gossip", "density", 0.0, 1.0)) gc.density = *v;
  if (auto v = r.choice(g, "gossip", "encoding", {"fp32", "bf16"})) gc.encoding = *v;
  assign(r.integer(g, "gossip", "chunk_bytes", 4096, kMaxFrameBytes / 2), gc.chunk_bytes);
  assign(r.integer(g, "gossip", "exchange_timeout_ms", 1, kMaxMillis), gc.exchange_timeout);
  if (auto v = r.boolean(g, "gossip", "all_reduce")) gc.all_reduce = *v;

  const toml::table* k = table_of(root, "coordinator");
  CoordinatorConfig& kc = c.coordinator;
  assign(r.integer(k, "coordinator", "rounds_ahead", 1, 64), kc.rounds_ahead);
  if (auto v = r.number(k, "coordinator", "bandwidth_threshold", 0.0, 1e15)) kc.bandwidth_threshold = *v;
  assign(r.integer(k, "coordinator", "history_rounds", 1, 64), kc.history_rounds);
  if (auto v = r.number(k, "coordinator", "bandwidth_change", 0.0, 1e6)) kc.bandwidth_change = *v;
  assign(r.integer(k, "coordinator", "start_grace_ms", 0, kMaxMillis), kc.start_grace);
  assign(r.integer(k, "coordinator", "bandwidth_interval_ms", 1, kMaxMillis), kc.bandwidth_interval);
}

void check_relations(const Reader& r, const NodeConfig& c) {
  if (c.gossip.all_reduce && c.gossip.sparsifier != "dense")
    r.fail("gossip.all_reduce", "needs gossip.sparsifier = \"dense\" (the reference averages whole models)");
  if (c.training.consensus_rounds >= c.training.rounds && c.training.consensus_rounds > 0) {
    r.fail("training.consensus_rounds",
           "must be less than training.rounds (" + std::to_string(c.training.rounds) + "): some rounds must train");
  }
  if (c.id == raft::kNoNode) r.fail("node.id", "required");
  if (c.storage == StorageKind::kDisk && c.data_dir.empty()) r.fail("node.data_dir", "required when storage.kind = \"disk\"");
  if (c.listen.host.empty()) r.fail("network.listen", "required");
  if (c.admin.host.empty()) r.fail("network.admin", "required");

  if (c.admin.port != 0 && c.admin.port == c.listen.port) {
    if (c.admin.host == c.listen.host) r.fail("network.admin", "must differ from network.listen (" + c.listen.to_string() + ")");
    if (is_wildcard_host(c.admin.host) || is_wildcard_host(c.listen.host)) {
      r.fail("network.admin", "port " + std::to_string(c.admin.port) + " is also bound by network.listen (" +
                                  c.listen.to_string() + ")");
    }
  }
  if (c.send_queue_bytes < c.max_frame_bytes) {
    r.fail("network.send_queue_bytes", "must be at least network.max_frame_bytes (" + std::to_string(c.max_frame_bytes) + ")");
  }
  if (c.reconnect_min > c.reconnect_max) {
    r.fail("network.reconnect_min_ms",
           "must be at most network.reconnect_max_ms (" + std::to_string(c.reconnect_max.count()) + ")");
  }

  for (std::size_t i = 0; i < c.peers.size(); ++i) {
    const PeerConfig& peer = c.peers[i];
    std::string prefix = "peers[" + std::to_string(i) + "]";
    if (peer.id == c.id) {
      r.fail(prefix + ".id", "must differ from node.id (" + std::to_string(c.id) + "): peers are the other voters");
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (c.peers[j].id == peer.id) {
        r.fail(prefix + ".id", "duplicate of peers[" + std::to_string(j) + "].id (" + std::to_string(peer.id) + ")");
      }
      if (c.peers[j].address == peer.address) {
        r.fail(prefix + ".address",
               "same as peers[" + std::to_string(j) + "].address (" + peer.address.to_string() + ")");
      }
    }
    if (c.listen.port != 0 && peer.address == c.listen) {
      r.fail(prefix + ".address", "same as network.listen (" + c.listen.to_string() + ") of this node");
    }
  }

  if (c.election_timeout_min >= c.election_timeout_max) {
    r.fail("raft.election_timeout_min_ms",
           "must be less than raft.election_timeout_max_ms (" + std::to_string(c.election_timeout_max.count()) + ")");
  }
  if (c.heartbeat >= c.election_timeout_min) {
    r.fail("raft.heartbeat_ms",
           "must be less than raft.election_timeout_min_ms (" + std::to_string(c.election_timeout_min.count()) + ")");
  }
  if (c.tick > c.heartbeat) {
    r.fail("raft.tick_ms", "must be at most raft.heartbeat_ms (" + std::to_string(c.heartbeat.count()) + ")");
  }
  // Rounding up to whole ticks can merge timings that differ by less than a tick, and the
  // engine needs them strictly ordered in ticks.
  std::int64_t heartbeat_ticks = ticks_of(c.heartbeat, c.tick);
  std::int64_t min_ticks = ticks_of(c.election_timeout_min, c.tick);
  std::int64_t max_ticks = ticks_of(c.election_timeout_max, c.tick);
  std::string tick = " at raft.tick_ms = " + std::to_string(c.tick.count());
  if (min_ticks >= max_ticks) {
    r.fail("raft.election_timeout_min_ms", "must be less than raft.election_timeout_max_ms in whole ticks" + tick +
                                               " (both round up to " + std::to_string(max_ticks) + " ticks)");
  }
  if (heartbeat_ticks >= min_ticks) {
    r.fail("raft.heartbeat_ms", "must be less than raft.election_timeout_min_ms in whole ticks" + tick +
                                    " (both round up to " + std::to_string(min_ticks) + " ticks)");
  }

  if (c.max_bytes_per_message >= c.max_frame_bytes) {
    r.fail("raft.max_bytes_per_message",
           "must be less than network.max_frame_bytes (" + std::to_string(c.max_frame_bytes) +
               "): a full batch and its envelope must fit in one frame");
  }
  if (c.snapshot_every != 0 && c.snapshot_every >= c.max_log_entries) {
    r.fail("raft.snapshot_every", "must be less than raft.max_log_entries (" + std::to_string(c.max_log_entries) +
                                      ") or 0 (never): the log would fill and refuse proposals before a snapshot");
  }
}

std::string toml_string(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\f': out += "\\f"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          static constexpr char kHex[] = "0123456789ABCDEF";
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

// Shortest text that reads back as the same double, always with a '.' or exponent so
// that TOML keeps it a float.
std::string toml_number(double v) {
  char buf[64];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string text(buf);
  if (text.find_first_of(".eEn") == std::string::npos) text += ".0";
  return text;
}

bool is_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

bool is_ipv6_char(char c) {
  return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') || c == ':' || c == '.';
}

[[noreturn]] void bad_endpoint(std::string_view text, std::string_view reason) {
  throw ConfigError("invalid address " + printable(text) + ": " + std::string(reason));
}

}  // namespace

std::string Endpoint::to_string() const {
  std::string port_text = std::to_string(port);
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + port_text;
  return host + ":" + port_text;
}

std::string_view to_string(TransportKind kind) { return kind == TransportKind::kZmq ? "zmq" : "tcp"; }
std::string_view to_string(StorageKind kind) { return kind == StorageKind::kMemory ? "memory" : "disk"; }

Endpoint parse_endpoint(std::string_view text) {
  if (text.empty()) bad_endpoint(text, "empty (expected HOST:PORT)");

  Endpoint endpoint;
  std::string_view port_text;
  if (text.front() == '[') {
    std::size_t close = text.find(']');
    if (close == std::string_view::npos) bad_endpoint(text, "missing ']' after the IPv6 address");
    std::string_view host = text.substr(1, close - 1);
    std::string_view address = host.substr(0, host.find('%'));
    std::string_view zone = host.substr(address.size());
    if (address.empty()) bad_endpoint(text, "empty host between '[' and ']'");
    if (address.find(':') == std::string_view::npos ||
        !std::all_of(address.begin(), address.end(), is_ipv6_char)) {
      bad_endpoint(text, "brackets must hold an IPv6 address");
    }
    if (!zone.empty() && (zone.size() == 1 || !std::all_of(zone.begin() + 1, zone.end(), is_host_char))) {
      bad_endpoint(text, "invalid IPv6 zone");
    }
    if (close + 1 >= text.size() || text[close + 1] != ':') bad_endpoint(text, "missing port (expected [HOST]:PORT)");
    endpoint.host = std::string(host);
    port_text = text.substr(close + 2);
  } else {
    std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) bad_endpoint(text, "missing port (expected HOST:PORT)");
    std::string_view host = text.substr(0, colon);
    if (host.find(':') != std::string_view::npos) bad_endpoint(text, "an IPv6 address must be in brackets, e.g. [::1]:7001");
    if (host.empty()) bad_endpoint(text, "missing host (expected HOST:PORT)");
    if (!std::all_of(host.begin(), host.end(), is_host_char)) {
      bad_endpoint(text, "the host must be a name or an IP address (letters, digits, '-', '.', '_')");
    }
    endpoint.host = std::string(host);
    port_text = text.substr(colon + 1);
  }
  if (endpoint.host.size() > 253) bad_endpoint(text, "the host is longer than 253 characters");

  if (port_text.empty()) bad_endpoint(text, "missing port (expected HOST:PORT)");
  unsigned long port = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9' || port > 65535) {
      port = 65536;
      break;
    }
    port = port * 10 + static_cast<unsigned long>(c - '0');
  }
  if (port > 65535) bad_endpoint(text, "the port must be a number between 0 and 65535");
  endpoint.port = static_cast<std::uint16_t>(port);
  return endpoint;
}

NodeConfig parse_node_config(std::string_view toml_text, std::string_view source_name) {
  toml::table root;
  try {
    root = toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& e) {
    const toml::source_position& at = e.source().begin;
    std::ostringstream message;
    message << source_name << ':' << at.line << ':' << at.column << ": " << e.description();
    throw ConfigError(one_line(message.str()));
  }

  Reader r(source_name);
  r.check_shape(root);
  NodeConfig c;

  const toml::table* node = table_of(root, "node");
  assign(r.integer(node, "node", "id", 1, kInt64Max), c.id);
  assign(r.integer(node, "node", "cluster_id", 1, kInt64Max), c.cluster_id);
  if (auto dir = r.string(node, "node", "data_dir")) {
    if (dir->empty()) r.fail("node.data_dir", "must not be empty");
    c.data_dir = *dir;
  }

  const toml::table* network = table_of(root, "network");
  if (auto listen = r.endpoint(network, "network", "listen")) c.listen = *listen;
  if (auto admin = r.endpoint(network, "network", "admin")) c.admin = *admin;
  if (auto transport = r.string(network, "network", "transport")) {
    if (*transport == "tcp") {
      c.transport = TransportKind::kTcp;
    } else if (*transport == "zmq") {
      c.transport = TransportKind::kZmq;
    } else {
      r.fail("network.transport", "must be \"tcp\" or \"zmq\", not " + printable(*transport));
    }
  }
  assign(r.integer(network, "network", "max_frame_bytes", kMinFrameBytes, kMaxFrameBytes), c.max_frame_bytes);
  assign(r.integer(network, "network", "send_queue_bytes", 1, kInt64Max), c.send_queue_bytes);
  assign(r.integer(network, "network", "reconnect_min_ms", 1, kMaxMillis), c.reconnect_min);
  assign(r.integer(network, "network", "reconnect_max_ms", 1, kMaxMillis), c.reconnect_max);

  if (const toml::node* peers = root.get("peers")) {
    const toml::array& array = *peers->as_array();
    for (std::size_t i = 0; i < array.size(); ++i) {
      const toml::table* entry = array.get(i)->as_table();
      std::string prefix = "peers[" + std::to_string(i) + "]";
      PeerConfig peer;
      std::optional<std::int64_t> id = r.integer(entry, prefix, "id", 1, kInt64Max);
      if (!id) r.fail(prefix + ".id", "required");
      peer.id = static_cast<raft::NodeId>(*id);
      std::optional<Endpoint> address = r.endpoint(entry, prefix, "address");
      if (!address) r.fail(prefix + ".address", "required");
      if (address->port == 0) r.fail(prefix + ".address", "the port must be between 1 and 65535, not 0");
      peer.address = *address;
      c.peers.push_back(std::move(peer));
    }
  }

  const toml::table* raft = table_of(root, "raft");
  assign(r.integer(raft, "raft", "tick_ms", 1, kMaxTickMillis), c.tick);
  assign(r.integer(raft, "raft", "election_timeout_min_ms", 1, kMaxMillis), c.election_timeout_min);
  assign(r.integer(raft, "raft", "election_timeout_max_ms", 1, kMaxMillis), c.election_timeout_max);
  assign(r.integer(raft, "raft", "heartbeat_ms", 1, kMaxMillis), c.heartbeat);
  assign(r.integer(raft, "raft", "max_inflight", 1, kInt64Max), c.max_inflight);
  assign(r.integer(raft, "raft", "max_entries_per_message", 1, kInt64Max), c.max_entries_per_message);
  assign(r.integer(raft, "raft", "max_bytes_per_message", 1, kInt64Max), c.max_bytes_per_message);
  assign(r.integer(raft, "raft", "snapshot_every", 0, kInt64Max), c.snapshot_every);
  assign(r.integer(raft, "raft", "max_log_entries", 1, kInt64Max), c.max_log_entries);

  if (auto kind = r.string(table_of(root, "storage"), "storage", "kind")) {
    if (*kind == "disk") {
      c.storage = StorageKind::kDisk;
    } else if (*kind == "memory") {
      c.storage = StorageKind::kMemory;
    } else {
      r.fail("storage.kind", "must be \"disk\" or \"memory\", not " + printable(*kind));
    }
  }

  const toml::table* reactor = table_of(root, "reactor");
  assign(r.integer(reactor, "reactor", "poll_budget_us", 0, kMaxPollBudgetMicros), c.poll_budget);
  assign(r.integer(reactor, "reactor", "cpu", -1, kMaxCpu), c.cpu);

  parse_training(r, root, c);
  check_relations(r, c);
  return c;
}

NodeConfig load_node_config(const std::filesystem::path& file) {
  std::string name = file.string();
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) throw ConfigError(name + ": cannot read: is a directory");
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ConfigError(name + ": cannot open: " + std::strerror(errno));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw ConfigError(name + ": cannot read: " + std::strerror(errno));
  return parse_node_config(text, name);
}

std::string to_toml(const NodeConfig& c) {
  std::ostringstream out;
  out << "[node]\n"
      << "id = " << c.id << '\n'
      << "cluster_id = " << c.cluster_id << '\n';
  // An empty path means "not set", which TOML can only say by leaving the key out.
  if (!c.data_dir.empty()) out << "data_dir = " << toml_string(c.data_dir.string()) << '\n';

  out << "\n[network]\n"
      << "listen = " << toml_string(c.listen.to_string()) << '\n'
      << "admin = " << toml_string(c.admin.to_string()) << '\n'
      << "transport = " << toml_string(to_string(c.transport)) << '\n'
      << "max_frame_bytes = " << c.max_frame_bytes << '\n'
      << "send_queue_bytes = " << c.send_queue_bytes << '\n'
      << "reconnect_min_ms = " << c.reconnect_min.count() << '\n'
      << "reconnect_max_ms = " << c.reconnect_max.count() << '\n';

  out << "\n[raft]\n"
      << "tick_ms = " << c.tick.count() << '\n'
      << "election_timeout_min_ms = " << c.election_timeout_min.count() << '\n'
      << "election_timeout_max_ms = " << c.election_timeout_max.count() << '\n'
      << "heartbeat_ms = " << c.heartbeat.count() << '\n'
      << "max_inflight = " << c.max_inflight << '\n'
      << "max_entries_per_message = " << c.max_entries_per_message << '\n'
      << "max_bytes_per_message = " << c.max_bytes_per_message << '\n'
      << "snapshot_every = " << c.snapshot_every << '\n'
      << "max_log_entries = " << c.max_log_entries << '\n';

  out << "\n[storage]\n"
      << "kind = " << toml_string(to_string(c.storage)) << '\n';

  out << "\n[reactor]\n"
      << "poll_budget_us = " << c.poll_budget.count() << '\n'
      << "cpu = " << c.cpu << '\n';

  const TrainingConfig& t = c.training;
  out << "\n[training]\n"
      << "enabled = " << (t.enabled ? "true" : "false") << '\n'
      << "dataset_dir = " << toml_string(t.dataset_dir.string()) << '\n'
      << "model = " << toml_string(t.model) << '\n'
      << "rounds = " << t.rounds << '\n'
      << "local_steps = " << t.local_steps << '\n'
      << "batch_size = " << t.batch_size << '\n'
      << "learning_rate = " << toml_number(t.learning_rate) << '\n'
      << "momentum = " << toml_number(t.momentum) << '\n'
      << "weight_decay = " << toml_number(t.weight_decay) << '\n'
      << "partition = " << toml_string(t.partition) << '\n'
      << "dirichlet_alpha = " << toml_number(t.dirichlet_alpha) << '\n'
      << "partition_seed = " << t.partition_seed << '\n'
      << "min_samples_per_node = " << t.min_samples_per_node << '\n'
      << "train_subset = " << t.train_subset << '\n'
      << "model_seed = " << t.model_seed << '\n'
      << "eval_every = " << t.eval_every << '\n'
      << "eval_samples = " << t.eval_samples << '\n'
      << "threads = " << t.threads << '\n'
      << "checkpoint_every = " << t.checkpoint_every << '\n'
      << "consensus_rounds = " << t.consensus_rounds << '\n';
  out << "\n[gossip]\n"
      << "sparsifier = " << toml_string(c.gossip.sparsifier) << '\n'
      << "density = " << toml_number(c.gossip.density) << '\n'
      << "encoding = " << toml_string(c.gossip.encoding) << '\n'
      << "chunk_bytes = " << c.gossip.chunk_bytes << '\n'
      << "exchange_timeout_ms = " << c.gossip.exchange_timeout.count() << '\n'
      << "all_reduce = " << (c.gossip.all_reduce ? "true" : "false") << '\n';
  out << "\n[coordinator]\n"
      << "rounds_ahead = " << c.coordinator.rounds_ahead << '\n'
      << "bandwidth_threshold = " << toml_number(c.coordinator.bandwidth_threshold) << '\n'
      << "history_rounds = " << c.coordinator.history_rounds << '\n'
      << "bandwidth_change = " << toml_number(c.coordinator.bandwidth_change) << '\n'
      << "start_grace_ms = " << c.coordinator.start_grace.count() << '\n'
      << "bandwidth_interval_ms = " << c.coordinator.bandwidth_interval.count() << '\n';

  for (const PeerConfig& peer : c.peers) {
    out << "\n[[peers]]\n"
        << "id = " << peer.id << '\n'
        << "address = " << toml_string(peer.address.to_string()) << '\n';
  }
  return out.str();
}

raft::Options NodeConfig::raft_options() const {
  if (tick.count() <= 0) throw std::invalid_argument("NodeConfig::raft_options: tick must be positive");
  auto ticks = [&](std::chrono::milliseconds d) {
    return static_cast<int>(std::clamp<std::int64_t>(ticks_of(d, tick), 0, INT_MAX));
  };
  raft::Options options;
  options.id = id;
  options.seed = common::random_seed();
  options.election_timeout_min_ticks = ticks(election_timeout_min);
  options.election_timeout_max_ticks = ticks(election_timeout_max);
  options.heartbeat_interval_ticks = ticks(heartbeat);
  options.max_inflight_messages = max_inflight;
  options.max_entries_per_message = max_entries_per_message;
  options.max_bytes_per_message = max_bytes_per_message;
  return options;
}

}  // namespace raftfl::node
