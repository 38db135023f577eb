#pragma once

// One round's model exchange between two peers (docs/ARCHITECTURE.md, "A round", step 2), over flat
// float spans and independent of any transport: what a worker sends, how a model that
// arrives in chunks is put together and checked, and how it is averaged in.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "raftfl/gossip/top_k.hpp"
#include "raftfl/gossip/value_encoding.hpp"

namespace raftfl::gossip {

enum class Sparsifier : std::uint8_t {
  kRandomK,  // shared mask from the round's seed: only values travel
  kTopK,     // each side's largest accumulated updates (error feedback): indices travel too
  kDense,    // every coordinate
};

std::string_view to_string(Sparsifier sparsifier);  // "random-k", "top-k", "dense"
std::optional<Sparsifier> parse_sparsifier(std::string_view name);

struct ExchangeSpec {
  Sparsifier sparsifier = Sparsifier::kRandomK;
  double density = 0.1;  // fraction of coordinates sent; ignored for kDense
  Encoding encoding = Encoding::kFp32;
};

// A peer's model message that does not fit ours or contradicts itself: the exchange is
// abandoned for the round (the worker keeps its own model), the process goes on.
class ExchangeError : public std::runtime_error {
 public:
  explicit ExchangeError(const std::string& what) : std::runtime_error(what) {}
};

// What every chunk of one exchange carries besides its values.
struct ChunkHeader {
  std::uint64_t round = 0;
  Sparsifier sparsifier = Sparsifier::kRandomK;
  Encoding encoding = Encoding::kFp32;
  std::uint64_t parameter_count = 0;
  std::uint64_t total_values = 0;
  std::uint64_t offset = 0;  // of this chunk's first value
};

// The model one worker sends in one round. `indices` are the coordinates the values
// belong to, ascending; they travel only with top-k (the other side derives the rest).
struct OutgoingModel {
  ChunkHeader header;  // offset 0; each chunk sets its own
  std::vector<std::uint32_t> indices;
  std::vector<std::byte> encoded_values;
  std::size_t value_count() const { return indices.size(); }
  bool indices_travel() const { return header.sparsifier == Sparsifier::kTopK; }
  // [first, first + count) value ranges of at most `chunk_values` each; one empty range
  // for an empty model, so that the peer still hears from us.
  std::vector<std::pair<std::size_t, std::size_t>> chunks(std::size_t chunk_values) const;
  // Bytes of values and indices on the wire (headers not counted).
  std::size_t payload_bytes() const;
};

// A peer's model being put together from its chunks.
class IncomingModel {
 public:
  // Checks a chunk against ours (round, parameter count, sparsifier, encoding) and the
  // chunks before it, and stores it. Throws ExchangeError on any inconsistency: overlap,
  // a range past total_values, a count of indices different from the values, an index out
  // of range.
  void add(const ChunkHeader& header, std::span<const std::byte> values, std::span<const std::uint32_t> indices,
           std::uint64_t expected_round, const ExchangeSpec& spec, std::uint64_t parameter_count);
  bool complete() const { return started_ && received_ == total_; }
  std::size_t bytes_received() const { return bytes_; }
  const std::vector<float>& values() const { return values_; }
  const std::vector<std::uint32_t>& indices() const { return indices_; }  // top-k only

 private:
  bool started_ = false;
  std::uint64_t total_ = 0;
  std::uint64_t received_ = 0;
  std::size_t bytes_ = 0;
  std::map<std::uint64_t, std::uint64_t> ranges_;  // offset -> count, to refuse overlaps
  std::vector<float> values_;
  std::vector<std::uint32_t> indices_;
};

// A worker's side of every exchange: it owns the top-k error feedback across rounds.
class ModelExchanger {
 public:
  ModelExchanger(ExchangeSpec spec, std::size_t parameter_count);

  const ExchangeSpec& spec() const { return spec_; }
  std::size_t parameter_count() const { return n_; }

  // What to send for `round`: random-k takes the mask drawn from `mask_seed`, top-k the
  // coordinates of the largest accumulated change since its previous call, dense all.
  // Values are the model's own at those coordinates (the peer averages with them).
  OutgoingModel prepare(std::span<const float> params, std::uint64_t round, std::uint64_t mask_seed);

  // x_i <- (x_i + x_j) / 2 on the exchanged coordinates. Random-k and dense: the shared
  // mask (both peers end bit-equal there with fp32 values). Top-k: the peer's coordinates;
  // each side averages where the other one sent, so the two moves are not symmetric
  // (see NOTES.md). Throws ExchangeError if `peer` does not fit `mine`.
  void absorb(std::span<float> params, const OutgoingModel& mine, const IncomingModel& peer) const;

 private:
  ExchangeSpec spec_;
  std::size_t n_;
  std::optional<TopKCompressor> top_k_;
  std::vector<float> last_prepared_;  // top-k: the model at the previous prepare()
};

// The all-reduce reference (every node averages with every other): x <- mean of x and the
// dense models received. Throws ExchangeError if one is incomplete or not dense of x's size.
void average_all(std::span<float> params, const std::vector<const IncomingModel*>& received);

}  // namespace raftfl::gossip
