#include "raftfl/node/config.hpp"

#include "raftfl/common/entropy.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <span>
#include <sstream>
#include <system_error>
#include <type_traits>
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
// A snapshot piece carries the snapshot's configuration too; below this the pieces would
// be mostly header.
constexpr std::int64_t kMinSnapshotChunkBytes = std::int64_t{4} << 10;
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

  std::int64_t integer(const toml::node& node, std::string_view name, std::int64_t min, std::int64_t max) const {
    const auto* value = node.as_integer();
    if (value == nullptr) fail(name, "must be an integer, not " + std::string(type_name(node.type())));
    std::int64_t v = value->get();
    if (v < min || v > max) {
      std::string reason = max == kInt64Max ? "must be at least " + std::to_string(min)
                                            : "must be between " + std::to_string(min) + " and " + std::to_string(max);
      fail(name, reason + ", not " + std::to_string(v));
    }
    return v;
  }

  // A number (integer or float) in [min, max].
  double number(const toml::node& node, std::string_view name, double min, double max) const {
    double v = 0;
    if (const auto* f = node.as_floating_point()) {
      v = f->get();
    } else if (const auto* i = node.as_integer()) {
      v = static_cast<double>(i->get());
    } else {
      fail(name, "must be a number, not " + std::string(type_name(node.type())));
    }
    if (!(v >= min && v <= max)) {
      std::ostringstream reason;
      reason << "must be between " << min << " and " << max << ", not " << v;
      fail(name, reason.str());
    }
    return v;
  }

  bool boolean(const toml::node& node, std::string_view name) const {
    const auto* value = node.as_boolean();
    if (value == nullptr) fail(name, "must be true or false, not " + std::string(type_name(node.type())));
    return value->get();
  }

  std::string string(const toml::node& node, std::string_view name) const {
    const auto* value = node.as_string();
    if (value == nullptr) fail(name, "must be a string, not " + std::string(type_name(node.type())));
    return value->get();
  }

  Endpoint endpoint(const toml::node& node, std::string_view name) const {
    std::string text = string(node, name);
    try {
      return parse_endpoint(text);
    } catch (const ConfigError& e) {
      fail(name, e.what());
    }
  }

  // Reports the unknown key that comes first in the file, not first in the table's
  // (sorted) order, so that the message points where the reader will look.
  template <typename Known>
  void reject_unknown(const toml::table& table, std::string_view prefix, Known is_known) const {
    const toml::key* first = nullptr;
    const toml::node* first_node = nullptr;
    for (auto&& [key, node] : table) {
      if (is_known(key.str())) continue;
      if (first == nullptr || key.source().begin < first->source().begin) {
        first = &key;
        first_node = &node;
      }
    }
    if (first == nullptr) return;
    bool is_table = first_node->is_table() || first_node->is_array_of_tables();
    fail(std::string(prefix) + std::string(first->str()), is_table ? "unknown table" : "unknown key");
  }

 private:
  std::string_view source_;
};

// The names of each choice, in the order that error messages list them.
template <typename Kind>
struct Named {
  std::string_view name;
  Kind kind;
};

constexpr std::array<Named<TransportKind>, 2> kTransportNames{{{"tcp", TransportKind::kTcp}, {"zmq", TransportKind::kZmq}}};
constexpr std::array<Named<StorageKind>, 2> kStorageNames{{{"disk", StorageKind::kDisk}, {"memory", StorageKind::kMemory}}};
constexpr std::array<Named<ModelKind>, 2> kModelNames{{{"cnn", ModelKind::kCnn}, {"mlp", ModelKind::kMlp}}};
constexpr std::array<Named<PartitionKind>, 2> kPartitionNames{
    {{"dirichlet", PartitionKind::kDirichlet}, {"iid", PartitionKind::kIid}}};
constexpr std::array<Named<SparsifierKind>, 3> kSparsifierNames{
    {{"random-k", SparsifierKind::kRandomK}, {"top-k", SparsifierKind::kTopK}, {"dense", SparsifierKind::kDense}}};
constexpr std::array<Named<EncodingKind>, 2> kEncodingNames{{{"fp32", EncodingKind::kFp32}, {"bf16", EncodingKind::kBf16}}};

constexpr std::span<const Named<TransportKind>> names_of(TransportKind) { return kTransportNames; }
constexpr std::span<const Named<StorageKind>> names_of(StorageKind) { return kStorageNames; }
constexpr std::span<const Named<ModelKind>> names_of(ModelKind) { return kModelNames; }
constexpr std::span<const Named<PartitionKind>> names_of(PartitionKind) { return kPartitionNames; }
constexpr std::span<const Named<SparsifierKind>> names_of(SparsifierKind) { return kSparsifierNames; }
constexpr std::span<const Named<EncodingKind>> names_of(EncodingKind) { return kEncodingNames; }

// Error messages are part of the interface: the two node-level choices have always said
// "must be A or B", the training and gossip ones "must be one of A, B".
template <typename Kind>
constexpr bool kListedWithOr = std::is_same_v<Kind, TransportKind> || std::is_same_v<Kind, StorageKind>;

template <typename Kind>
std::string_view name_of(Kind kind) {
  for (const auto& n : names_of(Kind{})) {
    if (n.kind == kind) return n.name;
  }
  return "?";
}

template <typename Kind>
std::string listing() {
  std::string list;
  auto names = names_of(Kind{});
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) list += kListedWithOr<Kind> ? " or " : ", ";
    list += "\"" + std::string(names[i].name) + "\"";
  }
  return list;
}

template <typename Kind>
Kind read_choice(const Reader& r, const toml::node& node, std::string_view name) {
  std::string text = r.string(node, name);
  for (const auto& n : names_of(Kind{})) {
    if (n.name == text) return n.kind;
  }
  r.fail(name, (kListedWithOr<Kind> ? "must be " : "must be one of ") + listing<Kind>() + ", not " + printable(text));
}

// One key of the file: where it lives in NodeConfig, its bounds and its help line. The
// member's type decides how the value is read and written.
struct Key;
using ReadFn = void (*)(const Reader&, const toml::node&, const Key&, NodeConfig&);
using WriteFn = std::optional<std::string> (*)(const NodeConfig&);
using TypeFn = std::string (*)();

struct Key {
  std::string_view table;
  std::string_view name;
  std::int64_t min = 0;  // integers
  std::int64_t max = 0;
  double low = 0;  // numbers
  double high = 0;
  std::string_view help;
  ReadFn read = nullptr;
  WriteFn write = nullptr;
  TypeFn type = nullptr;

  std::string full_name() const { return std::string(table) + "." + std::string(name); }
};

template <typename T>
constexpr bool kIsDuration = false;
template <typename Rep, typename Period>
constexpr bool kIsDuration<std::chrono::duration<Rep, Period>> = true;

template <auto... Path>
auto& member(NodeConfig& c) {
  return (c.*....*Path);
}

template <auto... Path>
const auto& member(const NodeConfig& c) {
  return (c.*....*Path);
}

template <typename T>
void read_value(const Reader& r, const toml::node& node, const Key& k, T& out) {
  const std::string name = k.full_name();
  if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, std::optional<bool>>) {
    out = r.boolean(node, name);
  } else if constexpr (std::is_floating_point_v<T>) {
    out = r.number(node, name, k.low, k.high);
  } else if constexpr (std::is_same_v<T, std::filesystem::path>) {
    std::string text = r.string(node, name);
    if (text.empty()) r.fail(name, "must not be empty");
    out = text;
  } else if constexpr (std::is_same_v<T, Endpoint>) {
    out = r.endpoint(node, name);
  } else if constexpr (std::is_enum_v<T>) {
    out = read_choice<T>(r, node, name);
  } else if constexpr (kIsDuration<T>) {
    out = T(r.integer(node, name, k.min, k.max));
  } else {
    static_assert(std::is_integral_v<T>);
    out = static_cast<T>(r.integer(node, name, k.min, k.max));
  }
}

// Nullopt leaves the key out: TOML has no way to say "not set" for an empty path.
template <typename T>
std::optional<std::string> toml_value(const T& v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v ? "true" : "false";
  } else if constexpr (std::is_same_v<T, std::optional<bool>>) {
    if (!v) return std::nullopt;
    return *v ? "true" : "false";
  } else if constexpr (std::is_floating_point_v<T>) {
    return toml_number(v);
  } else if constexpr (std::is_same_v<T, std::filesystem::path>) {
    if (v.empty()) return std::nullopt;
    return toml_string(v.string());
  } else if constexpr (std::is_same_v<T, Endpoint>) {
    return toml_string(v.to_string());
  } else if constexpr (std::is_enum_v<T>) {
    return toml_string(name_of(v));
  } else if constexpr (kIsDuration<T>) {
    return std::to_string(v.count());
  } else {
    return std::to_string(v);
  }
}

template <typename T>
std::string type_text() {
  if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, std::optional<bool>>) {
    return "boolean";
  } else if constexpr (std::is_floating_point_v<T>) {
    return "number";
  } else if constexpr (std::is_same_v<T, std::filesystem::path>) {
    return "string";
  } else if constexpr (std::is_same_v<T, Endpoint>) {
    return "address";
  } else if constexpr (std::is_enum_v<T>) {
    return listing<T>();
  } else {
    return "integer";
  }
}

template <auto... Path>
void read_member(const Reader& r, const toml::node& node, const Key& k, NodeConfig& c) {
  read_value(r, node, k, member<Path...>(c));
}

template <auto... Path>
std::optional<std::string> write_member(const NodeConfig& c) {
  return toml_value(member<Path...>(c));
}

template <auto... Path>
std::string type_of_member() {
  return type_text<std::remove_cvref_t<decltype(member<Path...>(std::declval<const NodeConfig&>()))>>();
}

template <auto... Path>
constexpr Key bind(std::string_view table, std::string_view name, std::string_view help) {
  Key k;
  k.table = table;
  k.name = name;
  k.help = help;
  k.read = &read_member<Path...>;
  k.write = &write_member<Path...>;
  k.type = &type_of_member<Path...>;
  return k;
}

template <auto... Path>
constexpr Key integer(std::string_view table, std::string_view name, std::int64_t min, std::int64_t max,
                      std::string_view help) {
  Key k = bind<Path...>(table, name, help);
  k.min = min;
  k.max = max;
  return k;
}

template <auto... Path>
constexpr Key number(std::string_view table, std::string_view name, double low, double high, std::string_view help) {
  Key k = bind<Path...>(table, name, help);
  k.low = low;
  k.high = high;
  return k;
}

using N = NodeConfig;
using T = TrainingConfig;
using G = GossipConfig;
using K = CoordinatorConfig;
constexpr auto kTraining = &N::training;
constexpr auto kGossip = &N::gossip;
constexpr auto kCoordinator = &N::coordinator;

// In file order: parse order, to_toml order and the order of the tables below.
constexpr std::array kTables = {std::string_view("node"), std::string_view("network"), std::string_view("raft"),
                                std::string_view("storage"), std::string_view("reactor"), std::string_view("training"),
                                std::string_view("gossip"), std::string_view("coordinator")};

constexpr auto kKeys = std::to_array<Key>({
    integer<&N::id>("node", "id", 1, kInt64Max, "this node's Raft id; unique in the cluster; required"),
    integer<&N::cluster_id>("node", "cluster_id", 1, kInt64Max, "carried in every message; other clusters are refused"),
    bind<&N::data_dir>("node", "data_dir", "where the log and snapshots live; required with storage.kind = \"disk\""),
    bind<&N::leave_on_stop>("node", "leave_on_stop",
                            "on SIGTERM, leave the cluster's configuration first; unset: learners do, voters do not"),

    bind<&N::listen>("network", "listen", "HOST:PORT for Raft traffic from the peers; required"),
    bind<&N::admin>("network", "admin", "HOST:PORT of the admin endpoint; required"),
    bind<&N::transport>("network", "transport", "which transport carries Raft messages"),
    integer<&N::max_frame_bytes>("network", "max_frame_bytes", kMinFrameBytes, kMaxFrameBytes,
                                 "largest frame sent or accepted"),
    integer<&N::send_queue_bytes>("network", "send_queue_bytes", 1, kInt64Max,
                                  "bytes queued per peer before sends are refused"),
    integer<&N::reconnect_min>("network", "reconnect_min_ms", 1, kMaxMillis, "first delay before reconnecting to a peer"),
    integer<&N::reconnect_max>("network", "reconnect_max_ms", 1, kMaxMillis, "longest delay between reconnections"),
    integer<&N::snapshot_chunk_bytes>("network", "snapshot_chunk_bytes", kMinSnapshotChunkBytes, kMaxFrameBytes / 2,
                                      "snapshot bytes per message when a snapshot is streamed to a follower"),
    integer<&N::snapshot_bytes_per_second>("network", "snapshot_bytes_per_second", 0, kInt64Max,
                                           "rate limit of snapshot streaming, all followers together; 0: none"),

    integer<&N::tick>("raft", "tick_ms", 1, kMaxTickMillis, "the engine's clock period"),
    integer<&N::election_timeout_min>("raft", "election_timeout_min_ms", 1, kMaxMillis, "shortest election timeout"),
    integer<&N::election_timeout_max>("raft", "election_timeout_max_ms", 1, kMaxMillis, "longest election timeout"),
    integer<&N::heartbeat>("raft", "heartbeat_ms", 1, kMaxMillis, "how often a leader sends heartbeats"),
    integer<&N::max_inflight>("raft", "max_inflight", 1, kInt64Max, "unacknowledged append messages per follower"),
    integer<&N::max_entries_per_message>("raft", "max_entries_per_message", 1, kInt64Max, "entries per append message"),
    integer<&N::max_bytes_per_message>("raft", "max_bytes_per_message", 1, kInt64Max, "entry bytes per append message"),
    integer<&N::snapshot_every>("raft", "snapshot_every", 0, kInt64Max, "entries applied between snapshots; 0: never"),
    integer<&N::max_log_entries>("raft", "max_log_entries", 1, kInt64Max, "proposals are refused above it"),
    integer<&N::max_term_ahead>("raft", "max_term_ahead", 1, kInt64Max, "a peer's message whose term is further ahead is dropped"),
    integer<&N::target_voters>("raft", "target_voters", 1, 9, "voters the leader keeps by promoting caught-up learners"),
    integer<&N::failure_timeout>("raft", "failure_timeout_ms", 0, kMaxMillis,
                                 "a voter not heard from for this long is replaced by a learner; 0: never"),

    bind<&N::storage>("storage", "kind", "\"disk\" survives restarts, \"memory\" does not"),

    integer<&N::poll_budget>("reactor", "poll_budget_us", 0, kMaxPollBudgetMicros,
                             "how long the reactor polls before it sleeps; 0: sleep at once"),
    integer<&N::cpu>("reactor", "cpu", -1, kMaxCpu, "the CPU the reactor thread is pinned to; -1: none"),

    bind<kTraining, &T::enabled>("training", "enabled", "run a worker, and the coordinator while leading"),
    bind<kTraining, &T::dataset_dir>("training", "dataset_dir", "the Fashion-MNIST IDX files"),
    bind<kTraining, &T::model>("training", "model", "the FedAvg CNN or 2NN"),
    integer<kTraining, &T::rounds>("training", "rounds", 1, kMaxRounds, "rounds of the run"),
    integer<kTraining, &T::local_steps>("training", "local_steps", 1, 1000000, "SGD steps per round"),
    integer<kTraining, &T::batch_size>("training", "batch_size", 1, 65536, "images per SGD step"),
    number<kTraining, &T::learning_rate>("training", "learning_rate", 0.0, 100.0, "SGD learning rate"),
    number<kTraining, &T::momentum>("training", "momentum", 0.0, 0.999, "SGD momentum"),
    number<kTraining, &T::weight_decay>("training", "weight_decay", 0.0, 1.0, "SGD weight decay"),
    bind<kTraining, &T::partition>("training", "partition", "how the training images are split over the nodes"),
    number<kTraining, &T::dirichlet_alpha>("training", "dirichlet_alpha", 1e-3, 1e6, "skew of the Dirichlet split"),
    integer<kTraining, &T::partition_seed>("training", "partition_seed", 0, kInt64Max, "seed of the split"),
    integer<kTraining, &T::min_samples_per_node>("training", "min_samples_per_node", 1, kInt64Max,
                                                 "smallest shard of the split"),
    integer<kTraining, &T::train_subset>("training", "train_subset", 0, kInt64Max,
                                         "use the first N training images; 0: all"),
    integer<kTraining, &T::model_seed>("training", "model_seed", 0, kInt64Max, "seed of the common initial model"),
    integer<kTraining, &T::eval_every>("training", "eval_every", 0, 1000000,
                                       "rounds between test evaluations; 0: only the final one"),
    integer<kTraining, &T::eval_samples>("training", "eval_samples", 1, kInt64Max, "test images per evaluation"),
    integer<kTraining, &T::threads>("training", "threads", 1, 1024, "LibTorch threads of the training pool"),
    integer<kTraining, &T::checkpoint_every>("training", "checkpoint_every", 0, 1000000,
                                             "rounds between model checkpoints; 0: never"),
    integer<kTraining, &T::consensus_rounds>("training", "consensus_rounds", 0, kMaxRounds,
                                             "last rounds that only average whole models"),
    integer<kTraining, &T::shards>("training", "shards", 0, 1000000,
                                   "parts the training set is cut into; 0: one per configured node"),

    bind<kGossip, &G::sparsifier>("gossip", "sparsifier", "which coordinates of the model are sent"),
    number<kGossip, &G::density>("gossip", "density", 0.0, 1.0, "fraction of coordinates sent"),
    bind<kGossip, &G::encoding>("gossip", "encoding", "values on the wire"),
    integer<kGossip, &G::chunk_bytes>("gossip", "chunk_bytes", 4096, kMaxFrameBytes / 2,
                                      "largest model chunk per message"),
    integer<kGossip, &G::exchange_timeout>("gossip", "exchange_timeout_ms", 1, kMaxMillis,
                                           "how long a worker waits for its peer's model"),
    bind<kGossip, &G::all_reduce>("gossip", "all_reduce", "the benchmark's dense all-reduce reference"),

    integer<kCoordinator, &K::rounds_ahead>("coordinator", "rounds_ahead", 1, 64,
                                            "k: Topology entries committed ahead of the workers"),
    number<kCoordinator, &K::bandwidth_threshold>("coordinator", "bandwidth_threshold", 0.0, 1e15,
                                                  "B, bytes per second: faster links are preferred pairs"),
    integer<kCoordinator, &K::history_rounds>("coordinator", "history_rounds", 1, 64,
                                              "T: rounds whose pairs must connect the workers"),
    number<kCoordinator, &K::bandwidth_change>("coordinator", "bandwidth_change", 0.0, 1e6,
                                               "relative change of a link worth committing"),
    integer<kCoordinator, &K::start_grace>("coordinator", "start_grace_ms", 0, kMaxMillis,
                                           "round 1 waits this long for the workers"),
    integer<kCoordinator, &K::bandwidth_interval>("coordinator", "bandwidth_interval_ms", 1, kMaxMillis,
                                                  "how often bandwidth changes are committed"),
    integer<kCoordinator, &K::start_workers>("coordinator", "start_workers", 0, 1000000,
                                             "workers round 1 waits for (joiners included)"),
    integer<kCoordinator, &K::failure_rounds>("coordinator", "failure_rounds", 0, 1000000,
                                              "rounds of missing reports that mark a worker failed"),
});

bool is_known_key(std::string_view table, std::string_view key) {
  return std::any_of(kKeys.begin(), kKeys.end(), [&](const Key& k) { return k.table == table && k.name == key; });
}

constexpr std::array<std::string_view, 2> kPeerKeys = {"id", "address"};

// The file's shape before its values: a misspelt table or key is the likeliest mistake
// and must not hide behind "required" errors for the keys it was meant to set.
void check_shape(const Reader& r, const toml::table& root) {
  r.reject_unknown(root, "", [](std::string_view name) {
    return name == "peers" || std::find(kTables.begin(), kTables.end(), name) != kTables.end();
  });
  for (std::string_view name : kTables) {
    const toml::node* node = root.get(name);
    if (node == nullptr) continue;
    if (!node->is_table()) r.fail(name, "must be a table, not " + std::string(type_name(node->type())));
    r.reject_unknown(*node->as_table(), std::string(name) + ".",
                     [name](std::string_view key) { return is_known_key(name, key); });
  }
  if (const toml::node* peers = root.get("peers")) {
    const toml::array* array = peers->as_array();
    if (array == nullptr) {
      r.fail("peers", "must be an array of tables ([[peers]]), not " + std::string(type_name(peers->type())));
    }
    for (std::size_t i = 0; i < array->size(); ++i) {
      const toml::node& element = *array->get(i);
      std::string prefix = "peers[" + std::to_string(i) + "]";
      if (!element.is_table()) r.fail(prefix, "must be a table, not " + std::string(type_name(element.type())));
      r.reject_unknown(*element.as_table(), prefix + ".", [](std::string_view key) {
        return std::find(kPeerKeys.begin(), kPeerKeys.end(), key) != kPeerKeys.end();
      });
    }
  }
}

void read_table(const Reader& r, const toml::table& root, std::string_view table, NodeConfig& c) {
  const toml::node* node = root.get(table);
  const toml::table* values = node == nullptr ? nullptr : node->as_table();
  if (values == nullptr) return;
  for (const Key& k : kKeys) {
    if (k.table != table) continue;
    if (const toml::node* value = values->get(k.name)) k.read(r, *value, k, c);
  }
}

void read_peers(const Reader& r, const toml::table& root, NodeConfig& c) {
  const toml::node* peers = root.get("peers");
  if (peers == nullptr) return;
  const toml::array& array = *peers->as_array();
  for (std::size_t i = 0; i < array.size(); ++i) {
    const toml::table& entry = *array.get(i)->as_table();
    std::string prefix = "peers[" + std::to_string(i) + "]";
    PeerConfig peer;
    const toml::node* id = entry.get("id");
    if (id == nullptr) r.fail(prefix + ".id", "required");
    peer.id = static_cast<raft::NodeId>(r.integer(*id, prefix + ".id", 1, kInt64Max));
    const toml::node* address = entry.get("address");
    if (address == nullptr) r.fail(prefix + ".address", "required");
    peer.address = r.endpoint(*address, prefix + ".address");
    if (peer.address.port == 0) r.fail(prefix + ".address", "the port must be between 1 and 65535, not 0");
    c.peers.push_back(std::move(peer));
  }
}

void read_tables(const Reader& r, const toml::table& root, NodeConfig& c) {
  for (std::string_view table : kTables) {
    read_table(r, root, table, c);
    // A peer's address is checked against this node's own, so the node's are read first.
    if (table == "network") read_peers(r, root, c);
  }
}

// Ticks that cover `d` in full: a timeout never fires before the time the file asks for.
std::int64_t ticks_of(std::chrono::milliseconds d, std::chrono::milliseconds tick) {
  std::int64_t whole = d.count() / tick.count();
  return d.count() % tick.count() > 0 ? whole + 1 : whole;
}

void check_training(const Reader& r, const NodeConfig& c) {
  if (c.gossip.all_reduce && c.gossip.sparsifier != SparsifierKind::kDense)
    r.fail("gossip.all_reduce", "needs gossip.sparsifier = \"dense\" (the reference averages whole models)");
  if (c.training.consensus_rounds >= c.training.rounds && c.training.consensus_rounds > 0) {
    r.fail("training.consensus_rounds",
           "must be less than training.rounds (" + std::to_string(c.training.rounds) + "): some rounds must train");
  }
}

void check_node(const Reader& r, const NodeConfig& c, IdRule id_rule) {
  if (c.id == raft::kNoNode && id_rule == IdRule::kRequired) r.fail("node.id", "required");
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
  if (c.snapshot_chunk_bytes > c.max_frame_bytes / 2) {
    // The other half is room for the piece's header, the cluster's configuration.
    r.fail("network.snapshot_chunk_bytes",
           "must be at most half of network.max_frame_bytes (" + std::to_string(c.max_frame_bytes / 2) + ")");
  }
  if (c.reconnect_min > c.reconnect_max) {
    r.fail("network.reconnect_min_ms",
           "must be at most network.reconnect_max_ms (" + std::to_string(c.reconnect_max.count()) + ")");
  }
}

void check_peers(const Reader& r, const NodeConfig& c) {
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
}

void check_raft_timing(const Reader& r, const NodeConfig& c) {
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
}

void check_raft_sizes(const Reader& r, const NodeConfig& c) {
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

void check_relations(const Reader& r, const NodeConfig& c, IdRule id_rule) {
  check_training(r, c);
  check_node(r, c, id_rule);
  check_peers(r, c);
  check_raft_timing(r, c);
  check_raft_sizes(r, c);
}

toml::table parse_toml(std::string_view toml_text, std::string_view source_name) {
  try {
    return toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& e) {
    const toml::source_position& at = e.source().begin;
    std::ostringstream message;
    message << source_name << ':' << at.line << ':' << at.column << ": " << e.description();
    throw ConfigError(one_line(message.str()));
  }
}

std::string range_text(const Key& k) {
  if (k.low != k.high) {
    std::ostringstream out;
    out << k.low << " to " << k.high;
    return out.str();
  }
  if (k.min == k.max) return "";
  if (k.max == kInt64Max) return "at least " + std::to_string(k.min);
  return std::to_string(k.min) + " to " + std::to_string(k.max);
}

}  // namespace

std::string Endpoint::to_string() const {
  std::string port_text = std::to_string(port);
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + port_text;
  return host + ":" + port_text;
}

std::string_view to_string(TransportKind kind) { return name_of(kind); }
std::string_view to_string(StorageKind kind) { return name_of(kind); }
std::string_view to_string(ModelKind kind) { return name_of(kind); }
std::string_view to_string(PartitionKind kind) { return name_of(kind); }
std::string_view to_string(SparsifierKind kind) { return name_of(kind); }
std::string_view to_string(EncodingKind kind) { return name_of(kind); }

template <typename Kind>
std::optional<Kind> kind_from_string(std::string_view text) {
  for (const auto& n : names_of(Kind{})) {
    if (n.name == text) return n.kind;
  }
  return std::nullopt;
}

template std::optional<TransportKind> kind_from_string<TransportKind>(std::string_view);
template std::optional<StorageKind> kind_from_string<StorageKind>(std::string_view);
template std::optional<ModelKind> kind_from_string<ModelKind>(std::string_view);
template std::optional<PartitionKind> kind_from_string<PartitionKind>(std::string_view);
template std::optional<SparsifierKind> kind_from_string<SparsifierKind>(std::string_view);
template std::optional<EncodingKind> kind_from_string<EncodingKind>(std::string_view);

const std::vector<ConfigKey>& config_keys() {
  static const std::vector<ConfigKey> keys = [] {
    std::vector<ConfigKey> out;
    for (const Key& k : kKeys) out.push_back({k.table, k.name, k.type(), range_text(k), k.help});
    return out;
  }();
  return keys;
}

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

NodeConfig parse_node_config(std::string_view toml_text, std::string_view source_name, IdRule id_rule) {
  toml::table root = parse_toml(toml_text, source_name);
  Reader r(source_name);
  check_shape(r, root);
  NodeConfig c;
  read_tables(r, root, c);
  check_relations(r, c, id_rule);
  return c;
}

NodeConfig load_node_config(const std::filesystem::path& file, IdRule id_rule) {
  std::string name = file.string();
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) throw ConfigError(name + ": cannot read: is a directory");
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ConfigError(name + ": cannot open: " + std::strerror(errno));
  std::string text;
  try {
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  } catch (const std::ios_base::failure& e) {
    // libstdc++'s filebuf throws on a failed read(2), with its errno as the code; the
    // stream's badbit is never set on this path.
    throw ConfigError(name + ": cannot read: " + e.code().message());
  }
  return parse_node_config(text, name, id_rule);
}

std::string to_toml(const NodeConfig& c) {
  std::string out;
  for (std::string_view table : kTables) {
    out += (out.empty() ? "[" : "\n[") + std::string(table) + "]\n";
    for (const Key& k : kKeys) {
      if (k.table != table) continue;
      if (std::optional<std::string> value = k.write(c)) out += std::string(k.name) + " = " + *value + '\n';
    }
  }
  for (const PeerConfig& peer : c.peers) {
    out += "\n[[peers]]\nid = " + std::to_string(peer.id) + "\naddress = " + toml_string(peer.address.to_string()) + '\n';
  }
  return out;
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
  options.max_term_ahead = max_term_ahead;
  return options;
}

}  // namespace raftfl::node
