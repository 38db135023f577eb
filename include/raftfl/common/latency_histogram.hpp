#pragma once

#include <array>
#include <bit>
#include <cstdint>

namespace raftfl {

// Log-linear latency histogram: fixed memory whatever the run length (the benchmark's
// clients record millions of samples into a node that must stay under 64 MiB), relative
// error under 1/64 per sample.
class LatencyHistogram {
 public:
  void record(std::uint64_t nanos) {
    ++counts_[bucket_of(nanos)];
    ++total_;
    if (nanos > max_) max_ = nanos;
  }
  void merge(const LatencyHistogram& other) {
    for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
    if (other.max_ > max_) max_ = other.max_;
  }
  std::uint64_t count() const { return total_; }
  std::uint64_t max() const { return max_; }
  // The smallest recorded value v such that a fraction q of samples are <= v (upper edge
  // of its bucket).
  std::uint64_t quantile(double q) const {
    if (total_ == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_ - 1)) + 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) {
        const auto edge = upper_edge(i);
        return edge < max_ ? edge : max_;
      }
    }
    return max_;
  }

 private:
  static constexpr unsigned kSubBits = 6;  // 64 linear sub-buckets per power of two
  static constexpr std::size_t kSub = std::size_t{1} << kSubBits;

  static std::size_t bucket_of(std::uint64_t v) {
    if (v < kSub) return static_cast<std::size_t>(v);
    const unsigned magnitude = 63u - static_cast<unsigned>(std::countl_zero(v));  // >= kSubBits
    const unsigned shift = magnitude - kSubBits;
    return (shift + 1) * kSub + static_cast<std::size_t>((v >> shift) - kSub);
  }
  static std::uint64_t upper_edge(std::size_t bucket) {
    if (bucket < kSub) return bucket;
    const std::size_t shift = bucket / kSub - 1;
    const std::uint64_t base = (kSub + bucket % kSub) << shift;
    return base + ((std::uint64_t{1} << shift) - 1);
  }

  std::array<std::uint64_t, (64 - kSubBits + 1) * kSub> counts_{};
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace raftfl
