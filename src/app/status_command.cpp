#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>
#include <vector>

#include "admin_client.hpp"
#include "commands.hpp"
#include "raftfl/common/entropy.hpp"

namespace raftfl::app {
namespace {

bool parse_endpoint_arg(const std::string& text, node::Endpoint& out) {
  try {
    out = node::parse_endpoint(text);
    return true;
  } catch (const node::ConfigError& e) {
    std::fprintf(stderr, "raftfl: --endpoint '%s': %s\n", text.c_str(), e.what());
    return false;
  }
}

// A put goes on (to the next endpoint, then again) until acknowledged or this deadline.
constexpr auto kPutDeadline = std::chrono::seconds(10);
constexpr auto kPutRetryPause = std::chrono::milliseconds(200);

std::string yes_no(const nlohmann::json& v) { return v.get<bool>() ? "yes" : "no"; }

// Accuracies are fractions, negative while unknown.
std::string percent(const nlohmann::json& v) {
  const double x = v.get<double>();
  if (x < 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f%%", x * 100);
  return buf;
}

}  // namespace

int run_status(const std::string& endpoint_text, bool json) {
  node::Endpoint endpoint;
  if (!parse_endpoint_arg(endpoint_text, endpoint)) return kExitUsage;
  std::string reply;
  try {
    reply = admin_request(endpoint, "status");
  } catch (const AdminError& e) {
    std::fprintf(stderr, "raftfl: status: %s\n", e.what());
    return kExitFailure;
  }
  if (json) {
    std::cout << reply << "\n";
    return kExitOk;
  }
  try {
    const auto s = nlohmann::json::parse(reply);
    std::printf("node %llu of cluster %llu: %s, term %llu, leader %llu\n", s.at("id").get<unsigned long long>(),
                s.at("cluster_id").get<unsigned long long>(), s.at("role").get<std::string>().c_str(),
                s.at("term").get<unsigned long long>(), s.at("leader").get<unsigned long long>());
    std::printf("commit %llu, applied %llu, log %llu..%llu, snapshot at %llu\n", s.at("commit").get<unsigned long long>(),
                s.at("applied").get<unsigned long long>(), s.at("first_index").get<unsigned long long>(),
                s.at("last_index").get<unsigned long long>(), s.at("snapshot_index").get<unsigned long long>());
    std::printf("transport %s, storage %s, %llu keys (digest %s)\n", s.at("transport").get<std::string>().c_str(),
                s.at("storage").get<std::string>().c_str(), s.at("kv_keys").get<unsigned long long>(),
                s.at("kv_digest").get<std::string>().c_str());
    std::printf("%-6s %-6s %-10s %-10s %-10s %-10s %s\n", "member", "voter", "match", "next", "state", "connected",
                "health");
    for (const auto& m : s.at("members")) {
      std::printf("%-6llu %-6s %-10llu %-10llu %-10s %-10s %s\n", m.at("id").get<unsigned long long>(),
                  yes_no(m.at("voter")).c_str(), m.at("match").get<unsigned long long>(),
                  m.at("next").get<unsigned long long>(), m.at("state").get<std::string>().c_str(),
                  yes_no(m.at("connected")).c_str(), m.value("health", std::string("-")).c_str());
    }
    if (s.contains("control")) {
      const auto& c = s.at("control");
      std::printf("control: coordinator %llu (term %llu), rounds planned up to %llu, %zu members, %llu bandwidth cells\n",
                  c.at("coordinator").get<unsigned long long>(), c.at("coordinator_term").get<unsigned long long>(),
                  c.at("last_round").get<unsigned long long>(), c.at("members").size(),
                  c.at("bandwidth_cells").get<unsigned long long>());
    }
    if (s.contains("worker")) {
      const auto& w = s.at("worker");
      std::printf("worker: round %llu (%llu done), last loss %.4f, last accuracy %s, final accuracy %s, %llu peer timeouts%s\n",
                  w.at("round").get<unsigned long long>(), w.at("rounds_done").get<unsigned long long>(),
                  w.at("last_loss").get<double>(), percent(w.at("last_accuracy")).c_str(),
                  percent(w.at("final_accuracy")).c_str(), w.at("peer_timeouts").get<unsigned long long>(),
                  w.at("failed").get<bool>() ? ", FAILED" : w.at("done").get<bool>() ? ", done" : "");
    }
  } catch (const nlohmann::json::exception& e) {
    std::fprintf(stderr, "raftfl: status: unreadable reply from %s: %s\n", endpoint_text.c_str(), e.what());
    return kExitFailure;
  }
  return kExitOk;
}

int run_put(const std::string& endpoints_text, const std::string& key, const std::string& value) {
  std::vector<node::Endpoint> endpoints;
  for (std::size_t from = 0; from <= endpoints_text.size();) {
    const auto comma = std::min(endpoints_text.find(',', from), endpoints_text.size());
    node::Endpoint e;
    if (!parse_endpoint_arg(endpoints_text.substr(from, comma - from), e)) return kExitUsage;
    endpoints.push_back(e);
    from = comma + 1;
  }
  if (key.empty() || key.find_first_of(" \t\r\n") != std::string::npos || value.find_first_of(" \t\r\n") != std::string::npos ||
      value.empty()) {
    std::fprintf(stderr, "raftfl: put: keys and values are single words (no spaces)\n");
    return kExitUsage;
  }
  // One session per invocation: a retry after an unknown outcome (a deposed leader, a
  // lost connection) carries the same (client, seq), and the state machine applies it once.
  const std::uint64_t client = common::random_seed();
  const std::string line = "put " + key + " " + value + " " + std::to_string(client) + " 1";
  const auto deadline = std::chrono::steady_clock::now() + kPutDeadline;
  std::string last_error;
  for (std::size_t attempt = 0; std::chrono::steady_clock::now() < deadline; ++attempt) {
    const auto& endpoint = endpoints[attempt % endpoints.size()];
    try {
      const auto reply = admin_request(endpoint, line);
      const auto parsed = nlohmann::json::parse(reply);
      if (parsed.value("ok", false)) {
        std::cout << reply << "\n";
        return kExitOk;
      }
      last_error = endpoint.to_string() + ": " + parsed.value("error", std::string("refused"));
    } catch (const std::exception& e) {
      last_error = e.what();
    }
    if (attempt + 1 >= endpoints.size()) std::this_thread::sleep_for(kPutRetryPause);
  }
  std::fprintf(stderr, "raftfl: put: not acknowledged within %lld s (last: %s)\n",
               static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(kPutDeadline).count()),
               last_error.c_str());
  return kExitFailure;
}

int run_get(const std::string& endpoint_text, const std::string& key, bool stale) {
  node::Endpoint endpoint;
  if (!parse_endpoint_arg(endpoint_text, endpoint)) return kExitUsage;
  try {
    // Longer than the node's own deadline for a linearizable read, so that its answer arrives.
    const auto reply = admin_request(endpoint, (stale ? "get-stale " : "get ") + key, std::chrono::seconds(8));
    std::cout << reply << "\n";
    return nlohmann::json::parse(reply).value("found", false) ? kExitOk : kExitFailure;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "raftfl: get: %s\n", e.what());
    return kExitFailure;
  }
}

}  // namespace raftfl::app
