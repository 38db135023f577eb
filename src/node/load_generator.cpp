#include "raftfl/node/load_generator.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <memory>

#include "raftfl/common/entropy.hpp"
#include "raftfl/common/json_writer.hpp"
#include "raftfl/node/kv_state_machine.hpp"

namespace raftfl::node {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kAwait = asio::experimental::as_tuple(asio::use_awaitable);

// A put in the client's own session, as `raftfl put` sends it, so that the benchmark pays
// for what a client's write costs: the session check, the map update. Each client writes
// one key of its own; the value is `bytes` long.
std::string payload_of(std::size_t bytes, std::uint64_t client, std::uint64_t seq) {
  std::string value(bytes, '.');
  for (std::size_t i = 0; i < 8 && i < bytes; ++i) value[i] = static_cast<char>('0' + (seq >> (4 * i)) % 10);
  return KvStateMachine::encode_session_put(client, seq, "bench-" + std::to_string(client), value);
}

}  // namespace

std::string to_json(const LoadResult& r) {
  const double secs = r.seconds > 0 ? r.seconds : 1;
  JsonWriter w;
  w.begin_object();
  w.field("clients", r.clients).field("seconds", r.seconds).field("ops", r.ops).field("errors", r.errors);
  w.field("ops_per_sec", static_cast<double>(r.ops) / secs);
  w.field("p50_us", static_cast<double>(r.commit_latency_ns.quantile(0.50)) / 1000.0);
  w.field("p99_us", static_cast<double>(r.commit_latency_ns.quantile(0.99)) / 1000.0);
  w.field("p999_us", static_cast<double>(r.commit_latency_ns.quantile(0.999)) / 1000.0);
  w.field("max_us", static_cast<double>(r.commit_latency_ns.max()) / 1000.0);
  if (!r.first_error.empty()) w.field("first_error", r.first_error);
  w.end_object();
  return w.str();
}

asio::awaitable<LoadResult> LoadGenerator::run(int clients, std::chrono::milliseconds duration, std::size_t payload_bytes) {
  auto result = std::make_shared<LoadResult>();
  result->clients = clients;
  const auto start = Clock::now();
  const auto deadline = start + duration;
  auto remaining = std::make_shared<int>(clients);
  asio::steady_timer all_done(io_, Clock::time_point::max());
  // Fresh sessions for every run: a later run's puts must not look like repeats.
  session_base_ = common::random_seed() & ~std::uint64_t{0xffff};
  for (int c = 0; c < clients; ++c) {
    asio::co_spawn(
        io_,
        [this, result, deadline, payload_bytes, client = session_base_ + static_cast<std::uint64_t>(c)]() -> asio::awaitable<void> {
          std::uint64_t seq = 0;
          while (Clock::now() < deadline && !stopped_) {
            const auto t0 = Clock::now();
            const auto outcome = co_await node_.propose(payload_of(payload_bytes, client, ++seq));
            if (outcome.ok) {
              ++result->ops;
              result->commit_latency_ns.record(
                  static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count()));
            } else {
              ++result->errors;
              if (result->first_error.empty()) result->first_error = outcome.error;
              // Not the leader (any more): stop rather than spin on refusals.
              if (!node_.is_leader()) co_return;
              asio::steady_timer backoff(io_, std::chrono::milliseconds(1));
              co_await backoff.async_wait(kAwait);
            }
          }
        },
        [remaining, &all_done](std::exception_ptr) {
          if (--*remaining == 0) all_done.cancel();
        });
  }
  if (clients > 0) co_await all_done.async_wait(kAwait);
  result->seconds = std::chrono::duration<double>(Clock::now() - start).count();
  co_return std::move(*result);
}

void LoadGenerator::set_background(int clients, std::size_t payload_bytes) {
  ++generation_;
  if (stopped_) return;  // clients of an earlier generation see the change and end
  for (int c = 0; c < clients; ++c) asio::co_spawn(io_, background_client(generation_, payload_bytes), asio::detached);
}

asio::awaitable<void> LoadGenerator::background_client(std::uint64_t generation, std::size_t payload_bytes) {
  std::uint64_t seq = 0;
  const std::uint64_t client = common::random_seed();
  asio::steady_timer idle(io_);
  while (generation == generation_) {
    if (!node_.is_leader()) {
      idle.expires_after(std::chrono::milliseconds(1));
      co_await idle.async_wait(kAwait);
      continue;
    }
    const auto outcome = co_await node_.propose(payload_of(payload_bytes, client, ++seq));
    if (!outcome.ok) {
      idle.expires_after(std::chrono::milliseconds(1));
      co_await idle.async_wait(kAwait);
    }
  }
}

}  // namespace raftfl::node
