#include "raftfl/wire/control_codec.hpp"

#include <capnp/serialize.h>
#include <kj/exception.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <type_traits>

#include "raftfl/schemas/control.capnp.h"

namespace raftfl::wire {
namespace {

using control::NodeId;

// Hard caps of our own (Cap'n Proto's default traversal limit is not a size
// policy): a control entry is a few kilobytes even for 1,000 nodes, a snapshot holds at
// most a dense bandwidth matrix.
constexpr std::size_t kMaxEntryBytes = std::size_t{16} << 20;
constexpr std::size_t kMaxSnapshotBytes = std::size_t{1} << 30;

static_assert(static_cast<int>(control::MembershipChange::Op::kRemove) ==
              static_cast<int>(schema::MembershipOp::REMOVE));

void encode_member(const control::Member& m, schema::Member::Builder out) {
  out.setId(m.id);
  out.setEndpoint(m.endpoint);
  out.setVoter(m.voter);
  out.setCapabilities(m.capabilities);
  out.setFailed(m.failed);
  auto shards = out.initShards(static_cast<unsigned>(m.shards.size()));
  for (unsigned i = 0; i < shards.size(); ++i) shards.set(i, m.shards[i]);
}

control::Member decode_member(schema::Member::Reader in) {
  control::Member m;
  m.id = in.getId();
  m.endpoint = std::string(in.getEndpoint().cStr(), in.getEndpoint().size());
  m.voter = in.getVoter();
  m.capabilities = in.getCapabilities();
  m.failed = in.getFailed();
  for (std::uint32_t shard : in.getShards()) m.shards.push_back(shard);
  return m;
}

void encode_coordinator(NodeId leader, std::uint64_t term, control::Round first_round,
                        schema::Coordinator::Builder out) {
  out.setLeader(leader);
  out.setTerm(term);
  out.setFirstRound(first_round);
}

void encode_topology(const control::Topology& t, schema::Topology::Builder out) {
  out.setRound(t.round);
  out.setCoordinatorTerm(t.coordinator_term);
  out.setMaskSeed(t.mask_seed);
  out.setSpectralGap(t.spectral_gap);
  auto matching = out.initMatching();
  auto pairs = matching.initPairs(static_cast<unsigned>(t.matching.pairs.size()));
  for (unsigned i = 0; i < pairs.size(); ++i) {
    pairs[i].setA(t.matching.pairs[i].first);
    pairs[i].setB(t.matching.pairs[i].second);
  }
  auto idle = matching.initIdle(static_cast<unsigned>(t.matching.idle.size()));
  for (unsigned i = 0; i < idle.size(); ++i) idle.set(i, t.matching.idle[i]);
  auto fresh = out.initFresh(static_cast<unsigned>(t.fresh.size()));
  for (unsigned i = 0; i < fresh.size(); ++i) fresh.set(i, t.fresh[i]);
}

control::Topology decode_topology(schema::Topology::Reader in) {
  control::Topology t;
  t.round = in.getRound();
  t.coordinator_term = in.getCoordinatorTerm();
  t.mask_seed = in.getMaskSeed();
  t.spectral_gap = in.getSpectralGap();
  auto matching = in.getMatching();
  t.matching.pairs.reserve(matching.getPairs().size());
  for (auto pair : matching.getPairs()) {
    if (pair.getA() == pair.getB()) {
      throw DecodeError("control topology of round " + std::to_string(t.round) + " pairs node " +
                        std::to_string(pair.getA()) + " with itself");
    }
    t.matching.pairs.emplace_back(pair.getA(), pair.getB());
  }
  t.matching.idle.reserve(matching.getIdle().size());
  for (std::uint64_t id : matching.getIdle()) t.matching.idle.push_back(id);
  t.fresh.reserve(in.getFresh().size());
  for (std::uint64_t id : in.getFresh()) t.fresh.push_back(id);
  return t;
}

void encode_cells(const std::vector<control::BandwidthCell>& cells, capnp::List<schema::BandwidthCell>::Builder out) {
  for (unsigned i = 0; i < out.size(); ++i) {
    out[i].setFrom(cells[i].from);
    out[i].setTo(cells[i].to);
    out[i].setBytesPerSecond(cells[i].bytes_per_second);
  }
}

control::BandwidthCell decode_cell(schema::BandwidthCell::Reader in) {
  return control::BandwidthCell{in.getFrom(), in.getTo(), in.getBytesPerSecond()};
}

// The payload after its tag (or a whole snapshot) copied into words: a std::string_view
// has no alignment guarantee and Cap'n Proto reads words in place.
kj::Array<capnp::word> aligned_words(std::string_view bytes, std::size_t max_bytes, const char* what) {
  if (bytes.size() > max_bytes) {
    throw DecodeError(std::string(what) + " of " + std::to_string(bytes.size()) + " bytes exceeds the limit");
  }
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) {
    throw DecodeError(std::string(what) + " of " + std::to_string(bytes.size()) + " bytes is not whole words");
  }
  auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  return words;
}

// Every pointer the reader follows costs traversal budget: twice the message's own size is
// more than an honest message needs (each word is read once) and bounds what a crafted one
// with overlapping pointers can make us read.
capnp::ReaderOptions reader_options(std::size_t words) {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = 2 * words + 64;
  options.nestingLimit = 16;
  return options;
}

template <typename Root, typename Decode>
auto read_flat(kj::ArrayPtr<const capnp::word> words, const char* what, Decode decode) {
  try {
    capnp::FlatArrayMessageReader reader(words, reader_options(words.size()));
    if (reader.getEnd() != words.end()) throw DecodeError(std::string(what) + " has bytes after its message");
    return decode(reader.getRoot<Root>());
  } catch (const kj::Exception& e) {
    // kj's description can run over several lines; one line is what the logs want.
    std::string reason(e.getDescription().cStr());
    if (auto nl = reason.find('\n'); nl != std::string::npos) reason.resize(nl);
    throw DecodeError(std::string(what) + " is malformed: " + reason);
  }
}

std::string with_tag(kj::ArrayPtr<const capnp::word> words) {
  const auto bytes = words.asBytes();
  std::string out;
  out.reserve(kControlEntryTag.size() + bytes.size());
  out.append(kControlEntryTag);
  out.append(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
  return out;
}

control::Command decode_entry(schema::ControlEntry::Reader in) {
  switch (in.which()) {
    case schema::ControlEntry::NO_OP:
      return control::NoOp{};
    case schema::ControlEntry::COORDINATOR: {
      auto c = in.getCoordinator();
      return control::CoordinatorChange{c.getLeader(), c.getTerm(), c.getFirstRound()};
    }
    case schema::ControlEntry::TOPOLOGY:
      return decode_topology(in.getTopology());
    case schema::ControlEntry::BANDWIDTH: {
      control::BandwidthUpdate u;
      auto cells = in.getBandwidth().getCells();
      u.cells.reserve(cells.size());
      for (auto cell : cells) u.cells.push_back(decode_cell(cell));
      return u;
    }
    case schema::ControlEntry::MEMBERSHIP: {
      auto m = in.getMembership();
      const auto op = static_cast<std::uint16_t>(m.getOp());
      if (op > static_cast<std::uint16_t>(schema::MembershipOp::REMOVE)) {
        throw DecodeError("control membership entry has unknown op " + std::to_string(op));
      }
      return control::MembershipChange{static_cast<control::MembershipChange::Op>(op), decode_member(m.getMember())};
    }
    case schema::ControlEntry::WORKER_HEALTH: {
      auto h = in.getWorkerHealth();
      return control::WorkerHealth{h.getId(), h.getFailed()};
    }
    case schema::ControlEntry::DATA_PLAN:
      return control::DataPlan{in.getDataPlan().getShardCount()};
  }
  throw DecodeError("control entry has unknown kind " + std::to_string(static_cast<unsigned>(in.which())));
}

}  // namespace

std::string encode_control_command(const control::Command& command) {
  capnp::MallocMessageBuilder message;
  auto entry = message.initRoot<schema::ControlEntry>();
  std::visit(
      [&](const auto& c) {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, control::NoOp>) {
          entry.setNoOp();
        } else if constexpr (std::is_same_v<T, control::CoordinatorChange>) {
          encode_coordinator(c.leader, c.term, c.first_round, entry.initCoordinator());
        } else if constexpr (std::is_same_v<T, control::Topology>) {
          encode_topology(c, entry.initTopology());
        } else if constexpr (std::is_same_v<T, control::BandwidthUpdate>) {
          encode_cells(c.cells, entry.initBandwidth().initCells(static_cast<unsigned>(c.cells.size())));
        } else if constexpr (std::is_same_v<T, control::WorkerHealth>) {
          auto h = entry.initWorkerHealth();
          h.setId(c.id);
          h.setFailed(c.failed);
        } else if constexpr (std::is_same_v<T, control::DataPlan>) {
          entry.initDataPlan().setShardCount(c.shard_count);
        } else {
          static_assert(std::is_same_v<T, control::MembershipChange>);
          auto m = entry.initMembership();
          m.setOp(static_cast<schema::MembershipOp>(c.op));
          encode_member(c.member, m.initMember());
        }
      },
      command);
  return with_tag(capnp::messageToFlatArray(message));
}

bool is_control_payload(std::string_view payload) { return payload.substr(0, kControlEntryTag.size()) == kControlEntryTag; }

std::optional<control::Command> decode_control_command(std::string_view payload) {
  if (!is_control_payload(payload)) return std::nullopt;
  const auto words = aligned_words(payload.substr(kControlEntryTag.size()), kMaxEntryBytes, "control entry");
  return read_flat<schema::ControlEntry>(words, "control entry", decode_entry);
}

std::string encode_control_snapshot(const control::ControlData& data) {
  capnp::MallocMessageBuilder message;
  auto snap = message.initRoot<schema::ControlSnapshot>();
  auto members = snap.initMembers(static_cast<unsigned>(data.members.size()));
  unsigned i = 0;
  for (const auto& [id, member] : data.members) encode_member(member, members[i++]);
  encode_coordinator(data.coordinator.leader, data.coordinator.term, data.coordinator.first_round,
                     snap.initCoordinator());
  snap.setLastRound(data.last_round);
  auto topologies = snap.initTopologies(static_cast<unsigned>(data.topologies.size()));
  i = 0;
  for (const auto& [round, t] : data.topologies) encode_topology(t, topologies[i++]);
  auto cells = snap.initBandwidth(static_cast<unsigned>(data.bandwidth.size()));
  i = 0;
  for (const auto& [key, value] : data.bandwidth) {
    cells[i].setFrom(key.first);
    cells[i].setTo(key.second);
    cells[i].setBytesPerSecond(value);
    ++i;
  }
  snap.setShardCount(data.shard_count);
  auto words = capnp::messageToFlatArray(message);
  const auto bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

control::ControlData decode_control_snapshot(std::string_view bytes) {
  const auto words = aligned_words(bytes, kMaxSnapshotBytes, "control snapshot");
  return read_flat<schema::ControlSnapshot>(words, "control snapshot", [](schema::ControlSnapshot::Reader in) {
    // A snapshot is state, not a command: what apply() could never have produced is refused
    // here rather than installed.
    control::ControlData data;
    data.shard_count = in.getShardCount();
    for (auto m : in.getMembers()) {
      control::Member member = decode_member(m);
      if (member.id == 0) throw DecodeError("control snapshot has a member with id 0");
      if (!std::is_sorted(member.shards.begin(), member.shards.end()) ||
          std::adjacent_find(member.shards.begin(), member.shards.end()) != member.shards.end() ||
          (!member.shards.empty() && member.shards.back() >= data.shard_count)) {
        throw DecodeError("control snapshot gives member " + std::to_string(member.id) + " shards outside 0.." +
                          std::to_string(data.shard_count));
      }
      const NodeId id = member.id;
      if (!data.members.emplace(id, std::move(member)).second) {
        throw DecodeError("control snapshot lists member " + std::to_string(id) + " twice");
      }
    }
    auto c = in.getCoordinator();
    data.coordinator = control::Coordinator{c.getLeader(), c.getTerm(), c.getFirstRound()};
    data.last_round = in.getLastRound();
    for (auto t : in.getTopologies()) {
      control::Topology topology = decode_topology(t);
      const control::Round round = topology.round;
      if (round == 0 || round > data.last_round) {
        throw DecodeError("control snapshot has a topology of round " + std::to_string(round) + " beyond last round " +
                          std::to_string(data.last_round));
      }
      if (!data.topologies.emplace(round, std::move(topology)).second) {
        throw DecodeError("control snapshot has two topologies of round " + std::to_string(round));
      }
    }
    if (data.topologies.size() > control::kTopologiesKept) {
      throw DecodeError("control snapshot keeps " + std::to_string(data.topologies.size()) + " topologies");
    }
    for (auto cell : in.getBandwidth()) {
      const control::BandwidthCell b = decode_cell(cell);
      if (b.from == b.to || !std::isfinite(b.bytes_per_second) || b.bytes_per_second < 0.0) {
        throw DecodeError("control snapshot has an invalid bandwidth cell " + std::to_string(b.from) + "->" +
                          std::to_string(b.to));
      }
      if (!data.bandwidth.emplace(std::make_pair(b.from, b.to), b.bytes_per_second).second) {
        throw DecodeError("control snapshot has bandwidth cell " + std::to_string(b.from) + "->" +
                          std::to_string(b.to) + " twice");
      }
    }
    return data;
  });
}

}  // namespace raftfl::wire
