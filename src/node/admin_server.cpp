#include "raftfl/node/admin_server.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/read_until.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <charconv>
#include <sstream>
#include <system_error>
#include <vector>

#include "raftfl/common/json_writer.hpp"
#include "raftfl/common/log.hpp"
#include "node_status.hpp"

namespace raftfl::node {
namespace {

using asio::ip::tcp;
constexpr auto kAwait = asio::experimental::as_tuple(asio::use_awaitable);
// A command line longer than this is refused: the endpoint takes keys and values, not bulk data.
constexpr std::size_t kMaxLineBytes = 1 << 20;
// A linearizable get asks the leader (each attempt a heartbeat round) until this deadline.
constexpr auto kReadDeadline = std::chrono::seconds(5);
constexpr auto kReadAttempt = std::chrono::milliseconds(1000);
constexpr auto kReadRetryPause = std::chrono::milliseconds(50);

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> words;
  std::istringstream in(line);
  for (std::string w; in >> w;) words.push_back(std::move(w));
  return words;
}

bool parse_number(const std::string& text, std::uint64_t& out) {
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end;
}

std::string error_json(std::string_view what) {
  JsonWriter w;
  w.begin_object().field("ok", false).field("error", what).end_object();
  return w.str();
}

}  // namespace

AdminServer::AdminServer(asio::io_context& io, RaftDriver& node, const Endpoint& listen)
    : io_(io), node_(node), load_(io, node), membership_(node), acceptor_(io) {
  try {
    tcp::resolver resolver(io);
    const tcp::endpoint ep = *resolver.resolve(listen.host, std::to_string(listen.port)).begin();
    acceptor_.open(ep.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
  } catch (const std::system_error& e) {
    throw std::system_error(e.code(), "admin endpoint: cannot listen on " + listen.host + ":" + std::to_string(listen.port));
  }
}

void AdminServer::start() { asio::co_spawn(io_, accept_loop(), asio::detached); }

void AdminServer::stop() {
  stopped_ = true;
  load_.stop();
  asio::error_code ignored;
  acceptor_.close(ignored);
  for (auto& weak : sessions_) {
    if (auto socket = weak.lock()) socket->close(ignored);
  }
  sessions_.clear();
}

asio::awaitable<void> AdminServer::accept_loop() {
  while (!stopped_) {
    auto [ec, socket] = co_await acceptor_.async_accept(kAwait);
    if (stopped_) co_return;
    if (ec) {
      // As in the TCP transport: a failed accept (a connection reset before it was taken, a
      // file descriptor limit) must not end the loop and leave the endpoint deaf.
      if (ec == asio::error::operation_aborted) continue;
      log::line(log::Level::kWarn, "admin", std::string("accept failed: ") + ec.message());
      // Out of file descriptors every accept fails at once: pause rather than spin.
      asio::steady_timer pause(acceptor_.get_executor(), std::chrono::milliseconds(100));
      co_await pause.async_wait(kAwait);
      continue;
    }
    // Checked, not thrown: an exception would end the loop, silently (detached).
    asio::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    auto shared = std::make_shared<tcp::socket>(std::move(socket));
    sessions_.remove_if([](const auto& weak) { return weak.expired(); });
    sessions_.push_back(shared);
    asio::co_spawn(io_, session(std::move(shared)), asio::detached);
  }
}

asio::awaitable<void> AdminServer::session(std::shared_ptr<tcp::socket> shared) {
  tcp::socket& socket = *shared;
  std::string buffer;
  while (!stopped_) {
    auto [ec, n] = co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer, kMaxLineBytes), '\n', kAwait);
    if (ec) {
      if (ec == asio::error::not_found) {
        const std::string reply = error_json("command line longer than 1 MiB") + "\n";
        co_await asio::async_write(socket, asio::buffer(reply), kAwait);
      }
      co_return;
    }
    std::string line = buffer.substr(0, n - 1);
    buffer.erase(0, n);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::string reply = co_await handle(line);
    reply += '\n';
    auto [wec, m] = co_await asio::async_write(socket, asio::buffer(reply), kAwait);
    if (wec) co_return;
  }
}

asio::awaitable<std::string> AdminServer::handle(const std::string& line) {
  const auto words = split(line);
  if (words.empty()) co_return error_json("empty command; try: status, put, get, bench, autoload, member list");
  const std::string& cmd = words[0];
  if (cmd == "status" && words.size() == 1) {
    co_return to_json(node_status(node_, node_.state()), [this](JsonWriter& w) {
      w.key("control");
      write_control(w, node_.state().control());
      if (status_extension_) status_extension_(w);
    });
  }
  if (cmd == "put" && (words.size() == 3 || words.size() == 5)) {
    std::uint64_t client = 0, seq = 0;
    if (words.size() == 5 && (!parse_number(words[3], client) || !parse_number(words[4], seq) || seq == 0))
      co_return error_json("usage: put KEY VALUE [CLIENT SEQ] (SEQ from 1)");
    std::string command = words.size() == 5 ? KvStateMachine::encode_session_put(client, seq, words[1], words[2])
                                            : KvStateMachine::encode_put(words[1], words[2]);
    const auto outcome = co_await node_.propose(std::move(command));
    JsonWriter w;
    w.begin_object().field("ok", outcome.ok);
    if (outcome.ok) w.field("index", outcome.index);
    else w.field("error", outcome.error).field("leader", outcome.leader);
    co_return w.end_object().str();
  }
  if ((cmd == "get" || cmd == "get-stale") && words.size() == 2) {
    const bool stale = cmd == "get-stale";
    ReadOutcome read;
    if (!stale) {
      // One read can outlast a leader change: the engine does not retry a read whose
      // leader went away, so ask again until the deadline.
      const auto deadline = std::chrono::steady_clock::now() + kReadDeadline;
      for (;;) {
        read = co_await node_.read_barrier(kReadAttempt);
        if (read.ok || node_.stopping() || std::chrono::steady_clock::now() >= deadline) break;
        asio::steady_timer pause(io_, kReadRetryPause);  // a named local: see NOTES.md on GCC 12
        co_await pause.async_wait(kAwait);
      }
      if (!read.ok) co_return error_json("linearizable read failed: " + read.error);
    }
    const auto value = node_.state().kv().get(words[1]);
    JsonWriter w;
    w.begin_object().field("found", value.has_value());
    if (value) w.field("value", *value);
    w.field("applied", node_.state().kv().applied()).field("stale", stale);
    if (!stale) w.field("read_index", read.index);
    co_return w.end_object().str();
  }
  if (cmd == "topology" && words.size() == 2) {
    std::uint64_t round = 0;
    if (!parse_number(words[1], round)) co_return error_json("usage: topology ROUND");
    const auto* t = node_.state().control().topology(round);
    if (t == nullptr) co_return error_json("no topology for round " + words[1] + " here (not yet committed, or dropped as old)");
    JsonWriter w;
    w.begin_object().field("ok", true);
    write_topology_fields(w, *t);
    co_return w.end_object().str();
  }
  if (cmd == "bench" && words.size() == 4) {
    std::uint64_t clients = 0, millis = 0, bytes = 0;
    if (!parse_number(words[1], clients) || !parse_number(words[2], millis) || !parse_number(words[3], bytes) ||
        clients == 0 || clients > 4096 || millis == 0 || bytes > (1u << 20))
      co_return error_json("usage: bench CLIENTS(1-4096) MILLIS(>0) BYTES(0-1048576)");
    if (!node_.is_leader()) co_return error_json("not the leader");
    const auto result = co_await load_.run(static_cast<int>(clients), std::chrono::milliseconds(millis), bytes);
    co_return to_json(result);
  }
  if (cmd == "autoload" && words.size() == 3) {
    std::uint64_t clients = 0, bytes = 0;
    if (!parse_number(words[1], clients) || !parse_number(words[2], bytes) || clients > 4096 || bytes > (1u << 20))
      co_return error_json("usage: autoload CLIENTS(0-4096) BYTES(0-1048576)");
    load_.set_background(static_cast<int>(clients), bytes);
    JsonWriter w;
    co_return w.begin_object().field("ok", true).field("clients", clients).end_object().str();
  }
  auto membership = co_await membership_.handle(words);
  if (membership) co_return *membership;
  co_return error_json("unknown command or wrong arguments: '" + cmd +
                       "'; commands: status | put KEY VALUE [CLIENT SEQ] | get KEY | get-stale KEY | topology ROUND | bench CLIENTS MILLIS BYTES | "
                       "autoload CLIENTS BYTES | join ID RAFT ADMIN | member list|add|promote|remove");
}

}  // namespace raftfl::node
