// raftfl-bench-pingpong: round-trip latency of one small message between two processes
// over loopback TCP, for several ways of waiting for the socket, side by side in one run.
// The parent measures; a forked child echoes. Both sides of a mode wait the same way.
//
// What it showed on the 2-vCPU development VM (kernel 6.18 under the PVM hypervisor),
// medians of repeated runs, p50 of a 256-byte round trip, ends pinned to different CPUs
// (--cpus 0,1) / to the same CPU (--cpus 0,0):
//   epoll-poll 15 / 8000 us; blocking 27 / 17; reactor-sleep 32 / 23; reactor-poll 109 /
//   427; reactor-poll-spinread 11 / 845; uring-defer-poll 15 / 421;
//   uring-defer-poll-yield 16 / 21. Unpinned runs land on one or the other.
//
// 1. The wake-up cost is an inter-processor interrupt, and the cheap modes send none (the
//    IPI/rtt column). Under this hypervisor an IPI to a vCPU that is running costs ~45 us,
//    and the sender pays it inside its system call (an io_uring_submit carrying the send
//    took 33 us p50 instead of 6 us); waking an idle vCPU costs less, ~6-10 us.
// 2. Spinning on Asio's io_uring backend, which is what net::Reactor's poll budget does,
//    is slower than sleeping. Asio sets up its ring without COOP_TASKRUN, so the kernel
//    completes a socket read as task work and kicks the owning thread with an IPI
//    whenever it is running on another CPU, which is exactly when it spins. Entering the
//    kernel between polls (asio-poll-syscall) does not help: the cost is on the sending
//    side. Trying a synchronous read first (reactor-poll-trysync) does not help either,
//    because the fallback async_wait is an io_uring poll that is kicked the same way.
// 3. A ring set up with SINGLE_ISSUER|DEFER_TASKRUN|TASKRUN_FLAG (or COOP_TASKRUN|
//    TASKRUN_FLAG) sends no IPI: the kernel raises IORING_SQ_TASKRUN in the shared ring,
//    and io_uring_peek_cqe enters the kernel only then. Spinning on such a ring matches
//    the epoll_wait(0) spin without a system call while idle. Asio's epoll backend gets
//    there too: the same net::Reactor, built without ASIO_DISABLE_EPOLL, measured
//    reactor-poll 16 us with no IPI. Spinning on read_some before arming any wait
//    (reactor-poll-spinread) also gets there, at a system call per connection per spin.
// 4. Every spin loses when the two ends share a CPU, which is routine on two vCPUs shared
//    with other work: each side burns its whole budget before the other runs, so a round
//    trip costs twice the budget, and an unbounded spin a scheduler slice. A
//    sched_yield() between empty polls removes that (uring-defer-poll-yield 21 us on one
//    CPU, 16 us apart).
//
// So a reactor that waits well here: completions that arrive without an IPI (its own ring
// with DEFER_TASKRUN, one ring per reactor thread, or Asio on epoll rather than io_uring
// for sockets), a bounded spin that yields the CPU between empty polls, then a sleep in the
// kernel. net::Reactor's poll budget on Asio's io_uring backend should stay at 0 until then.
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <optional>
#include <sstream>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "raftfl/net/reactor.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
namespace net = raftfl::net;
using asio::ip::tcp;

constexpr const char* kProgram = "raftfl-bench-pingpong";
constexpr unsigned kStallSeconds = 30;

// ---------------------------------------------------------------------------------------
// Watchdog and child cleanup. The handlers only use async-signal-safe calls.

volatile sig_atomic_t g_child_pid = 0;
const char* volatile g_mode_name = "";
const char* volatile g_side = "measuring side";

void write_stderr(const char* s) {
  std::size_t n = std::strlen(s);
  while (n > 0) {
    const ssize_t k = ::write(STDERR_FILENO, s, n);
    if (k <= 0) return;
    s += k;
    n -= static_cast<std::size_t>(k);
  }
}

void kill_and_reap_child_from_signal() {
  const pid_t pid = g_child_pid;
  if (pid > 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
}

void on_alarm(int) {
  write_stderr(kProgram);
  write_stderr(": mode '");
  write_stderr(g_mode_name);
  write_stderr("' stalled: the ");
  write_stderr(g_side);
  write_stderr(" made no progress for 30 s; giving up\n");
  kill_and_reap_child_from_signal();
  ::_exit(3);
}

void on_terminate_signal(int sig) {
  kill_and_reap_child_from_signal();
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void watchdog_progress() { ::alarm(kStallSeconds); }
void watchdog_off() { ::alarm(0); }

// Re-arms the alarm at most once a second: alarm() is a system call that would add to
// what we measure, and re-arming every so many round trips would misfire on a mode whose
// round trips are legitimately slow (an unbounded spin on a shared CPU takes milliseconds).
class Progress {
 public:
  void note(Clock::time_point now) {
    if (now - last_ < std::chrono::seconds(1)) return;
    watchdog_progress();
    last_ = now;
  }

 private:
  Clock::time_point last_ = Clock::now();
};

// ---------------------------------------------------------------------------------------
// Options

enum class Mode {
  kBlocking,
  kEpollPoll,
  kReactorSleep,
  kReactorPoll,
  kReactorPollTrySync,
  kReactorPollSpinRead,
  kAsioPollSyscall,
  kAsioPollYield,
  kUringSleep,
  kUringPoll,
  kUringCoopPoll,
  kUringDeferPoll,
  kUringDeferPollYield,
};

struct ModeInfo {
  Mode mode;
  const char* name;
  const char* what;
};

constexpr ModeInfo kModes[] = {
    {Mode::kBlocking, "blocking", "blocking read/write"},
    {Mode::kEpollPoll, "epoll-poll", "non-blocking socket, epoll_wait(0) spin"},
    {Mode::kReactorSleep, "reactor-sleep", "net::Reactor, budget 0, async_write/async_read"},
    {Mode::kReactorPoll, "reactor-poll", "net::Reactor polling, async_write/async_read"},
    {Mode::kReactorPollTrySync, "reactor-poll-trysync", "polling; read_some first, async_wait on would_block"},
    {Mode::kReactorPollSpinRead, "reactor-poll-spinread", "polling; retry read_some via post() within budget"},
    {Mode::kAsioPollSyscall, "asio-poll-syscall", "own io_context loop: getppid() between empty polls"},
    {Mode::kAsioPollYield, "asio-poll-yield", "own io_context loop: sched_yield() between empty polls"},
    {Mode::kUringSleep, "uring-sleep", "raw liburing, default ring, wait_cqe at once"},
    {Mode::kUringPoll, "uring-poll", "raw liburing, default ring, peek spin then wait"},
    {Mode::kUringCoopPoll, "uring-coop-poll", "raw liburing, COOP_TASKRUN|TASKRUN_FLAG, peek spin"},
    {Mode::kUringDeferPoll, "uring-defer-poll", "raw liburing, SINGLE_ISSUER|DEFER_TASKRUN, peek spin"},
    {Mode::kUringDeferPollYield, "uring-defer-poll-yield", "as uring-defer-poll, sched_yield() between peeks"},
};

const ModeInfo& info(Mode m) {
  for (const auto& i : kModes)
    if (i.mode == m) return i;
  throw std::logic_error("unknown mode");
}

struct Config {
  std::size_t round_trips = 20000;
  std::size_t warmup = 1000;
  std::size_t size = 256;
  std::chrono::microseconds poll_budget{200};
  bool json_only = false;
  int parent_cpu = -1;
  int child_cpu = -1;
  std::vector<Mode> modes;
};

void print_usage(std::FILE* to) {
  std::fprintf(to,
               "usage: %s [--round-trips N] [--warmup N] [--size BYTES] [--poll-budget-us US]\n"
               "          [--modes a,b,...] [--cpus PARENT,CHILD] [--json]\n"
               "defaults: 20000 round trips after 1000 warm-up, 256 bytes, budget 200 us, all modes,\n"
               "unpinned. --json prints only one JSON object per mode. Modes:\n",
               kProgram);
  for (const auto& m : kModes) std::fprintf(to, "  %-22s %s\n", m.name, m.what);
}

[[noreturn]] void usage_error(const std::string& why) {
  std::fprintf(stderr, "%s: %s\n", kProgram, why.c_str());
  print_usage(stderr);
  std::exit(2);
}

std::size_t parse_count(std::string_view flag, std::string_view text, std::size_t min, std::size_t max) {
  std::size_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size() || v < min || v > max)
    usage_error(std::string(flag) + " wants a whole number in [" + std::to_string(min) + ", " +
                std::to_string(max) + "], not '" + std::string(text) + "'");
  return v;
}

std::vector<std::string_view> split_commas(std::string_view s) {
  std::vector<std::string_view> out;
  while (true) {
    const auto comma = s.find(',');
    out.push_back(s.substr(0, comma));
    if (comma == std::string_view::npos) return out;
    s.remove_prefix(comma + 1);
  }
}

Config parse_args(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) usage_error(std::string(a) + " needs a value");
      return argv[++i];
    };
    if (a == "--round-trips") {
      c.round_trips = parse_count(a, value(), 1, 100'000'000);
    } else if (a == "--warmup") {
      c.warmup = parse_count(a, value(), 0, 100'000'000);
    } else if (a == "--size") {
      // A message must fit one socket buffer so that a send never waits for the peer.
      c.size = parse_count(a, value(), 1, 64 * 1024);
    } else if (a == "--poll-budget-us") {
      c.poll_budget = std::chrono::microseconds(parse_count(a, value(), 0, 10'000'000));
    } else if (a == "--json") {
      c.json_only = true;
    } else if (a == "--cpus") {
      const auto parts = split_commas(value());
      if (parts.size() != 2) usage_error("--cpus wants PARENT,CHILD");
      c.parent_cpu = static_cast<int>(parse_count(a, parts[0], 0, CPU_SETSIZE - 1));
      c.child_cpu = static_cast<int>(parse_count(a, parts[1], 0, CPU_SETSIZE - 1));
    } else if (a == "--modes") {
      c.modes.clear();
      for (const auto name : split_commas(value())) {
        const auto* found = std::find_if(std::begin(kModes), std::end(kModes),
                                         [&](const ModeInfo& m) { return name == m.name; });
        if (found == std::end(kModes)) usage_error("unknown mode '" + std::string(name) + "'");
        c.modes.push_back(found->mode);
      }
    } else if (a == "--help" || a == "-h") {
      print_usage(stdout);
      std::exit(0);
    } else {
      usage_error("unknown argument '" + std::string(a) + "'");
    }
  }
  if (c.modes.empty())
    for (const auto& m : kModes) c.modes.push_back(m.mode);
  return c;
}

// ---------------------------------------------------------------------------------------
// Small POSIX helpers

[[noreturn]] void throw_errno(const char* what) { throw std::system_error(errno, std::generic_category(), what); }

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

void set_nodelay(int fd) {
  const int one = 1;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) throw_errno("setsockopt(TCP_NODELAY)");
}

void set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) throw_errno("fcntl(O_NONBLOCK)");
}

void pin_process(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (::sched_setaffinity(0, sizeof set, &set) != 0) throw_errno("sched_setaffinity");
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  if (!(in >> one >> five >> fifteen)) return "unknown";
  return one + " " + five + " " + fifteen;
}

Fd listen_loopback(std::uint16_t& port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) throw_errno("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw_errno("bind");
  if (::listen(fd.get(), 1) != 0) throw_errno("listen");
  socklen_t len = sizeof addr;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) throw_errno("getsockname");
  port = ntohs(addr.sin_port);
  return fd;
}

Fd connect_loopback(std::uint16_t port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) throw_errno("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw_errno("connect");
  set_nodelay(fd.get());
  return fd;
}

// ---------------------------------------------------------------------------------------
// Samples

struct Result {
  Mode mode = Mode::kBlocking;
  std::vector<std::int64_t> ns;  // one per measured round trip, sorted after finish()
  Clock::duration wall{};
  std::optional<std::uint64_t> parent_sleeps;
  std::optional<double> ipis_per_rtt;
};

// Reschedule and function-call interrupts received, all CPUs together: what a cross-CPU
// wake-up or an io_uring task-work kick sends. On this virtual machine an IPI costs its
// sender up to tens of microseconds, so this count explains most of the figures. It also
// counts the rest of the machine's IPIs (tens a second when idle).
std::optional<std::uint64_t> ipi_count() {
  std::ifstream in("/proc/interrupts");
  std::string line;
  std::uint64_t total = 0;
  bool found = false;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string name;
    fields >> name;
    if (name != "RES:" && name != "CAL:") continue;
    found = true;
    std::string field;
    while (fields >> field) {
      std::uint64_t v = 0;
      const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), v);
      if (ec != std::errc{} || end != field.data() + field.size()) break;
      total += v;
    }
  }
  if (!found) return std::nullopt;
  return total;
}

class Recorder {
 public:
  Recorder(const Config& c, Result& r) : warmup_(c.warmup), total_(c.warmup + c.round_trips), result_(r) {
    result_.ns.reserve(c.round_trips);
    if (warmup_ == 0) ipis_at_start_ = ipi_count();
  }
  bool done() const { return seen_ == total_; }
  void add(Clock::time_point t0, Clock::time_point t1) {
    if (seen_ == warmup_) start_ = t0;
    if (seen_ >= warmup_) result_.ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
    ++seen_;
    // Read between round trips, outside every timed interval.
    if (seen_ == warmup_) ipis_at_start_ = ipi_count();
    if (seen_ == total_) {
      result_.wall = t1 - start_;
      const auto ipis_at_end = ipi_count();
      if (ipis_at_start_ && ipis_at_end)
        result_.ipis_per_rtt = static_cast<double>(*ipis_at_end - *ipis_at_start_) / static_cast<double>(total_ - warmup_);
    }
    progress_.note(t1);
  }

 private:
  std::size_t warmup_;
  std::size_t total_;
  std::size_t seen_ = 0;
  Clock::time_point start_{};
  std::optional<std::uint64_t> ipis_at_start_;
  Progress progress_;
  Result& result_;
};

// The echo side's watchdog: a backstop, since the measuring side's watchdog kills it.
struct EchoTicker {
  Progress progress;
  void tick() { progress.note(Clock::now()); }
};

// ---------------------------------------------------------------------------------------
// blocking: the baseline, what the kernel alone costs.

void write_full(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
    if (k < 0) {
      if (errno == EINTR) continue;
      throw_errno("send");
    }
    p += k;
    n -= static_cast<std::size_t>(k);
  }
}

// False on end of stream at a message boundary.
bool read_full(int fd, char* p, std::size_t n) {
  std::size_t got = 0;
  while (got < n) {
    const ssize_t k = ::recv(fd, p + got, n - got, 0);
    if (k < 0) {
      if (errno == EINTR) continue;
      throw_errno("recv");
    }
    if (k == 0) {
      if (got == 0) return false;
      throw std::runtime_error("peer closed in the middle of a message");
    }
    got += static_cast<std::size_t>(k);
  }
  return true;
}

void blocking_ping(int fd, const Config& c, Result& r) {
  std::vector<char> msg(c.size, 'p'), reply(c.size);
  for (Recorder rec(c, r); !rec.done();) {
    const auto t0 = Clock::now();
    write_full(fd, msg.data(), msg.size());
    if (!read_full(fd, reply.data(), reply.size())) throw std::runtime_error("echo side closed the connection");
    rec.add(t0, Clock::now());
  }
}

void blocking_echo(int fd, const Config& c) {
  std::vector<char> buf(c.size);
  for (EchoTicker t; read_full(fd, buf.data(), buf.size()); t.tick()) write_full(fd, buf.data(), buf.size());
}

// ---------------------------------------------------------------------------------------
// epoll-poll: what a socket-level busy poll can reach; the target for the reactor.

class EpollSpinner {
 public:
  explicit EpollSpinner(int fd) : fd_(fd), ep_(::epoll_create1(EPOLL_CLOEXEC)) {
    if (ep_.get() < 0) throw_errno("epoll_create1");
    set_nonblocking(fd_);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd_;
    if (::epoll_ctl(ep_.get(), EPOLL_CTL_ADD, fd_, &ev) != 0) throw_errno("epoll_ctl");
  }

  void send_all(const char* p, std::size_t n) {
    while (n > 0) {
      const ssize_t k = ::send(fd_, p, n, MSG_NOSIGNAL);
      if (k < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        throw_errno("send");
      }
      p += k;
      n -= static_cast<std::size_t>(k);
    }
  }

  bool recv_all(char* p, std::size_t n) {
    std::size_t got = 0;
    epoll_event ev{};
    while (got < n) {
      const int ready = ::epoll_wait(ep_.get(), &ev, 1, 0);
      if (ready < 0 && errno != EINTR) throw_errno("epoll_wait");
      if (ready <= 0) continue;
      const ssize_t k = ::recv(fd_, p + got, n - got, 0);
      if (k < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        throw_errno("recv");
      }
      if (k == 0) {
        if (got == 0) return false;
        throw std::runtime_error("peer closed in the middle of a message");
      }
      got += static_cast<std::size_t>(k);
    }
    return true;
  }

 private:
  int fd_;
  Fd ep_;
};

void epoll_ping(int fd, const Config& c, Result& r) {
  EpollSpinner s(fd);
  std::vector<char> msg(c.size, 'p'), reply(c.size);
  for (Recorder rec(c, r); !rec.done();) {
    const auto t0 = Clock::now();
    s.send_all(msg.data(), msg.size());
    if (!s.recv_all(reply.data(), reply.size())) throw std::runtime_error("echo side closed the connection");
    rec.add(t0, Clock::now());
  }
}

void epoll_echo(int fd, const Config& c) {
  EpollSpinner s(fd);
  std::vector<char> buf(c.size);
  for (EchoTicker t; s.recv_all(buf.data(), buf.size()); t.tick()) s.send_all(buf.data(), buf.size());
}

// ---------------------------------------------------------------------------------------
// reactor-*: net::Reactor with Asio coroutines, as the transports use it.

enum class AsioStyle {
  kAsync,     // async_write / async_read
  kTrySync,   // one non-blocking attempt, then async_wait
  kSpinRead,  // non-blocking attempts, yielding to the reactor between them, for the budget
};

constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);

asio::awaitable<void> write_msg(tcp::socket& s, std::span<const char> msg, AsioStyle style) {
  if (style == AsioStyle::kAsync) {
    auto [ec, n] = co_await asio::async_write(s, asio::buffer(msg.data(), msg.size()), kNoThrow);
    if (ec) throw std::system_error(ec, "async_write");
    co_return;
  }
  std::size_t done = 0;
  while (done < msg.size()) {
    asio::error_code ec;
    done += s.write_some(asio::buffer(msg.data() + done, msg.size() - done), ec);
    if (!ec) continue;
    if (ec != asio::error::would_block) throw std::system_error(ec, "write_some");
    auto [wec] = co_await s.async_wait(tcp::socket::wait_write, kNoThrow);
    if (wec) throw std::system_error(wec, "async_wait(write)");
  }
}

// False on end of stream at a message boundary.
asio::awaitable<bool> read_msg(tcp::socket& s, std::span<char> buf, AsioStyle style,
                               std::chrono::microseconds spin_budget) {
  if (style == AsioStyle::kAsync) {
    auto [ec, n] = co_await asio::async_read(s, asio::buffer(buf.data(), buf.size()), kNoThrow);
    if (ec == asio::error::eof && n == 0) co_return false;
    if (ec) throw std::system_error(ec, "async_read");
    co_return true;
  }
  std::size_t got = 0;
  std::optional<Clock::time_point> spin_until;
  while (got < buf.size()) {
    asio::error_code ec;
    got += s.read_some(asio::buffer(buf.data() + got, buf.size() - got), ec);
    if (!ec) continue;
    if (ec == asio::error::eof) {
      if (got == 0) co_return false;
      throw std::runtime_error("peer closed in the middle of a message");
    }
    if (ec != asio::error::would_block) throw std::system_error(ec, "read_some");
    if (style == AsioStyle::kSpinRead) {
      const auto now = Clock::now();
      if (!spin_until) spin_until = now + spin_budget;
      if (now < *spin_until) {
        // Through the ready queue rather than a tight loop, so that other connections'
        // handlers on the same reactor still run while this one spins.
        co_await asio::post(s.get_executor(), asio::use_awaitable);
        continue;
      }
    }
    auto [wec] = co_await s.async_wait(tcp::socket::wait_read, kNoThrow);
    if (wec) throw std::system_error(wec, "async_wait(read)");
  }
  co_return true;
}

asio::awaitable<void> asio_ping(tcp::socket& s, const Config& c, AsioStyle style, Result& r) {
  std::vector<char> msg(c.size, 'p'), reply(c.size);
  for (Recorder rec(c, r); !rec.done();) {
    const auto t0 = Clock::now();
    co_await write_msg(s, msg, style);
    if (!co_await read_msg(s, reply, style, c.poll_budget)) throw std::runtime_error("echo side closed the connection");
    rec.add(t0, Clock::now());
  }
}

asio::awaitable<void> asio_echo(tcp::socket& s, const Config& c, AsioStyle style) {
  std::vector<char> buf(c.size);
  for (EchoTicker t; co_await read_msg(s, buf, style, c.poll_budget); t.tick()) co_await write_msg(s, buf, style);
}

AsioStyle style_of(Mode m) {
  switch (m) {
    case Mode::kReactorPollTrySync:
      return AsioStyle::kTrySync;
    case Mode::kReactorPollSpinRead:
      return AsioStyle::kSpinRead;
    default:
      return AsioStyle::kAsync;
  }
}

// net::Reactor's polling loop with one change: between two empty polls it makes a system
// call. Asio's ring is set up without COOP_TASKRUN, so a socket completion is left as task
// work, which any system call runs on its way out; getppid() tests whether the time goes
// to a poller that never enters the kernel (it does not: the peer pays for the IPI that
// kicks this thread). sched_yield() tests whether yielding to a peer that shares this CPU
// helps (it does).
class EnteringLoop {
 public:
  EnteringLoop(std::chrono::microseconds budget, bool yield) : budget_(budget), yield_(yield) {}
  asio::io_context& context() { return context_; }
  void stop() { context_.stop(); }
  std::uint64_t sleeps() const { return sleeps_; }
  void run_here() {
    auto guard = asio::make_work_guard(context_);
    auto last_work = Clock::now();
    while (!context_.stopped()) {
      if (context_.poll() > 0) {
        last_work = Clock::now();
        continue;
      }
      if (context_.stopped()) break;
      if (Clock::now() - last_work >= budget_) {
        ++sleeps_;
        context_.run_one();
        last_work = Clock::now();
      } else if (yield_) {
        ::sched_yield();
      } else {
        ::syscall(SYS_getppid);
      }
    }
  }

 private:
  asio::io_context context_{1};
  std::chrono::microseconds budget_;
  bool yield_;
  std::uint64_t sleeps_ = 0;
};

template <class Loop>
void run_on_loop(Loop& loop, Fd& fd, const Config& c, Mode m, Result* ping) {
  // Local, so that it closes before the loop's io_context goes.
  tcp::socket socket(loop.context(), tcp::v4(), fd.get());
  fd.release();
  const auto style = style_of(m);
  if (style != AsioStyle::kAsync) socket.non_blocking(true);
  std::exception_ptr failure;
  auto body = ping ? asio_ping(socket, c, style, *ping) : asio_echo(socket, c, style);
  asio::co_spawn(loop.context(), std::move(body), [&](std::exception_ptr e) {
    failure = e;
    loop.stop();
  });
  loop.run_here();
  if constexpr (requires { loop.sleeps(); }) {
    if (ping && m != Mode::kReactorSleep) ping->parent_sleeps = loop.sleeps();
  }
  if (failure) std::rethrow_exception(failure);
}

// Runs one side on this thread; `ping` null means the echo side.
void run_asio(Fd& fd, const Config& c, Mode m, Result* ping) {
  if (m == Mode::kAsioPollSyscall || m == Mode::kAsioPollYield) {
    EnteringLoop loop(c.poll_budget, m == Mode::kAsioPollYield);
    return run_on_loop(loop, fd, c, m, ping);
  }
  const auto budget = m == Mode::kReactorSleep ? 0us : c.poll_budget;
  net::Reactor reactor(net::ReactorOptions{.poll_budget = budget, .cpu = -1, .name = "pingpong"});
  run_on_loop(reactor, fd, c, m, ping);
}

// ---------------------------------------------------------------------------------------
// uring-*: a minimal io_uring loop without Asio, to separate what Asio adds from what the
// ring's completion delivery costs, and to try the ring set-up flags Asio does not use.

unsigned ring_flags(Mode m) {
  switch (m) {
    case Mode::kUringCoopPoll:
      return IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    case Mode::kUringDeferPoll:
    case Mode::kUringDeferPollYield:
      return IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    default:
      return 0;
  }
}

bool is_uring_mode(Mode m) {
  return m == Mode::kUringSleep || m == Mode::kUringPoll || m == Mode::kUringCoopPoll || m == Mode::kUringDeferPoll ||
         m == Mode::kUringDeferPollYield;
}

class Ring {
 public:
  Ring(unsigned flags, std::chrono::microseconds budget, bool yield) : budget_(budget), yield_(yield) {
    io_uring_params p{};
    p.flags = flags;
    if (const int r = ::io_uring_queue_init_params(16, &ring_, &p); r < 0)
      throw std::system_error(-r, std::generic_category(), "io_uring_queue_init_params");
  }
  ~Ring() { ::io_uring_queue_exit(&ring_); }
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  void send(int fd, const char* p, std::size_t n, std::uint64_t tag) {
    ::io_uring_prep_send(sqe(), fd, p, n, MSG_NOSIGNAL);
    ::io_uring_sqe_set_data64(last_, tag);
  }
  void recv(int fd, char* p, std::size_t n, std::uint64_t tag) {
    ::io_uring_prep_recv(sqe(), fd, p, n, 0);
    ::io_uring_sqe_set_data64(last_, tag);
  }
  void submit() {
    if (const int r = ::io_uring_submit(&ring_); r < 0) throw std::system_error(-r, std::generic_category(), "io_uring_submit");
  }

  struct Completion {
    std::uint64_t tag;
    int res;
  };
  // Peeks for the poll budget, then sleeps: the same policy as net::Reactor. With
  // TASKRUN_FLAG the peek enters the kernel only when the kernel has flagged pending
  // completion work.
  Completion next() {
    io_uring_cqe* cqe = nullptr;
    const auto start = budget_.count() > 0 ? Clock::now() : Clock::time_point{};
    for (;;) {
      int r = ::io_uring_peek_cqe(&ring_, &cqe);
      if (r == -EAGAIN && (budget_.count() == 0 || Clock::now() - start >= budget_)) {
        ++sleeps_;
        r = ::io_uring_wait_cqe(&ring_, &cqe);
      }
      if (r == -EAGAIN || r == -EINTR) {
        // Lets a peer that shares this CPU run instead of waiting out our budget.
        if (yield_) ::sched_yield();
        continue;
      }
      if (r < 0) throw std::system_error(-r, std::generic_category(), "io_uring completion");
      const Completion out{::io_uring_cqe_get_data64(cqe), cqe->res};
      ::io_uring_cqe_seen(&ring_, cqe);
      return out;
    }
  }
  std::uint64_t sleeps() const { return sleeps_; }

 private:
  io_uring_sqe* sqe() {
    last_ = ::io_uring_get_sqe(&ring_);
    if (!last_) throw std::runtime_error("io_uring submission queue full");
    return last_;
  }

  io_uring ring_{};
  io_uring_sqe* last_ = nullptr;
  std::chrono::microseconds budget_;
  bool yield_;
  std::uint64_t sleeps_ = 0;
};

// Fails early, before any fork, where the kernel lacks a set-up flag.
std::optional<std::string> uring_unsupported(Mode m) {
  io_uring ring{};
  io_uring_params p{};
  p.flags = ring_flags(m);
  const int r = ::io_uring_queue_init_params(4, &ring, &p);
  if (r < 0) return std::string("io_uring set-up flags not supported here: ") + std::strerror(-r);
  ::io_uring_queue_exit(&ring);
  return std::nullopt;
}

enum : std::uint64_t { kSendTag = 1, kRecvTag = 2 };

std::chrono::microseconds uring_budget(const Config& c, Mode m) { return m == Mode::kUringSleep ? 0us : c.poll_budget; }

void uring_ping(int fd, const Config& c, Mode m, Result& r) {
  std::vector<char> msg(c.size, 'p'), reply(c.size);
  // After the buffers: on an error the ring goes first, cancelling what still points into them.
  Ring ring(ring_flags(m), uring_budget(c, m), m == Mode::kUringDeferPollYield);
  for (Recorder rec(c, r); !rec.done();) {
    const auto t0 = Clock::now();
    // Both in one submission: one system call per round trip on this side.
    ring.send(fd, msg.data(), msg.size(), kSendTag);
    ring.recv(fd, reply.data(), reply.size(), kRecvTag);
    ring.submit();
    std::size_t sent = 0, got = 0;
    while (sent < msg.size() || got < reply.size()) {
      const auto done = ring.next();
      if (done.res < 0) throw std::system_error(-done.res, std::generic_category(), done.tag == kSendTag ? "send" : "recv");
      if (done.tag == kSendTag) {
        sent += static_cast<std::size_t>(done.res);
        if (sent < msg.size()) {
          ring.send(fd, msg.data() + sent, msg.size() - sent, kSendTag);
          ring.submit();
        }
      } else {
        if (done.res == 0) throw std::runtime_error("echo side closed the connection");
        got += static_cast<std::size_t>(done.res);
        if (got < reply.size()) {
          ring.recv(fd, reply.data() + got, reply.size() - got, kRecvTag);
          ring.submit();
        }
      }
    }
    rec.add(t0, Clock::now());
  }
  if (m != Mode::kUringSleep) r.parent_sleeps = ring.sleeps();
}

void uring_echo(int fd, const Config& c, Mode m) {
  // Two buffers: the next message may be read while the reply is still being sent.
  std::vector<char> in(c.size), out(c.size);
  Ring ring(ring_flags(m), uring_budget(c, m), m == Mode::kUringDeferPollYield);
  std::size_t got = 0, to_send = 0, sent = 0;
  ring.recv(fd, in.data(), in.size(), kRecvTag);
  ring.submit();
  for (EchoTicker t;;) {
    const auto done = ring.next();
    if (done.res < 0) throw std::system_error(-done.res, std::generic_category(), done.tag == kSendTag ? "send" : "recv");
    if (done.tag == kSendTag) {
      sent += static_cast<std::size_t>(done.res);
      if (sent < to_send) {
        ring.send(fd, out.data() + sent, to_send - sent, kSendTag);
        ring.submit();
      }
      continue;
    }
    if (done.res == 0) {
      if (got == 0) return;
      throw std::runtime_error("peer closed in the middle of a message");
    }
    got += static_cast<std::size_t>(done.res);
    if (got < in.size()) {
      ring.recv(fd, in.data() + got, in.size() - got, kRecvTag);
    } else {
      std::memcpy(out.data(), in.data(), in.size());
      to_send = out.size();
      sent = 0;
      got = 0;
      ring.send(fd, out.data(), out.size(), kSendTag);
      ring.recv(fd, in.data(), in.size(), kRecvTag);
      t.tick();
    }
    ring.submit();
  }
}

// ---------------------------------------------------------------------------------------
// One mode: fork the echo side, connect, measure, reap.

void echo_side(Fd& fd, const Config& c, Mode m) {
  switch (m) {
    case Mode::kBlocking:
      return blocking_echo(fd.get(), c);
    case Mode::kEpollPoll:
      return epoll_echo(fd.get(), c);
    case Mode::kReactorSleep:
    case Mode::kReactorPoll:
    case Mode::kReactorPollTrySync:
    case Mode::kReactorPollSpinRead:
    case Mode::kAsioPollSyscall:
    case Mode::kAsioPollYield:
      return run_asio(fd, c, m, nullptr);
    case Mode::kUringSleep:
    case Mode::kUringPoll:
    case Mode::kUringCoopPoll:
    case Mode::kUringDeferPoll:
    case Mode::kUringDeferPollYield:
      return uring_echo(fd.get(), c, m);
  }
}

void ping_side(Fd& fd, const Config& c, Mode m, Result& r) {
  switch (m) {
    case Mode::kBlocking:
      return blocking_ping(fd.get(), c, r);
    case Mode::kEpollPoll:
      return epoll_ping(fd.get(), c, r);
    case Mode::kReactorSleep:
    case Mode::kReactorPoll:
    case Mode::kReactorPollTrySync:
    case Mode::kReactorPollSpinRead:
    case Mode::kAsioPollSyscall:
    case Mode::kAsioPollYield:
      return run_asio(fd, c, m, &r);
    case Mode::kUringSleep:
    case Mode::kUringPoll:
    case Mode::kUringCoopPoll:
    case Mode::kUringDeferPoll:
    case Mode::kUringDeferPollYield:
      return uring_ping(fd.get(), c, m, r);
  }
}

[[noreturn]] void child_main(pid_t parent, std::uint16_t port, const Config& c, Mode m) {
  int status = 0;
  try {
    g_child_pid = 0;
    g_side = "echo side";
    // An echo side must not outlive a measuring side killed without a chance to clean up.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent) ::_exit(1);
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    pin_process(c.child_cpu);
    watchdog_progress();
    Fd fd = connect_loopback(port);
    echo_side(fd, c, m);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: mode '%s' failed on the echo side: %s\n", kProgram, info(m).name, e.what());
    status = 1;
  }
  // _exit: the parent's stdio buffers and atexit handlers belong to the parent.
  std::fflush(stderr);
  ::_exit(status);
}

// Owns the forked echo process: whatever happens on the measuring side, the child is
// killed (if still running) and reaped before this goes.
class Child {
 public:
  explicit Child(pid_t pid) : pid_(pid) { g_child_pid = pid; }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      reap();
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  bool exited() {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      forget();
      status_ = status;
      return true;
    }
    return false;
  }
  // After the measuring side closed the connection the echo side ends by itself.
  int wait() {
    reap();
    return status_;
  }
  std::string describe_status() const {
    if (WIFEXITED(status_)) return "exited with status " + std::to_string(WEXITSTATUS(status_));
    if (WIFSIGNALED(status_)) return std::string("killed by signal ") + ::strsignal(WTERMSIG(status_));
    return "ended oddly";
  }

 private:
  void reap() {
    if (pid_ <= 0) return;
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    status_ = status;
    forget();
  }
  void forget() {
    pid_ = 0;
    g_child_pid = 0;
  }
  pid_t pid_;
  int status_ = 0;
};

Fd accept_from(int listen_fd, Child& child) {
  // Shorter than the watchdog, so that this clearer message wins.
  const auto deadline = Clock::now() + std::chrono::seconds(kStallSeconds - 5);
  while (Clock::now() < deadline) {
    pollfd p{listen_fd, POLLIN, 0};
    const int r = ::poll(&p, 1, 100);
    if (r < 0 && errno != EINTR) throw_errno("poll");
    if (r > 0) {
      Fd fd(::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC));
      if (fd.get() < 0) throw_errno("accept4");
      set_nodelay(fd.get());
      return fd;
    }
    if (child.exited()) throw std::runtime_error("echo side " + child.describe_status() + " before connecting");
  }
  throw std::runtime_error("echo side did not connect within 25 s");
}

Result run_mode(const Config& c, Mode m) {
  g_mode_name = info(m).name;
  g_side = "measuring side";
  watchdog_progress();
  Result r;
  r.mode = m;
  std::uint16_t port = 0;
  Fd listener = listen_loopback(port);
  std::fflush(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    listener.reset();
    child_main(parent, port, c, m);
  }
  Child child(pid);
  {
    Fd conn = accept_from(listener.get(), child);
    listener.reset();
    ping_side(conn, c, m, r);
  }
  if (child.wait() != 0) throw std::runtime_error("echo side " + child.describe_status());
  watchdog_off();
  std::sort(r.ns.begin(), r.ns.end());
  return r;
}

// ---------------------------------------------------------------------------------------
// Report

double percentile_us(const std::vector<std::int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  // Nearest rank.
  auto rank = static_cast<std::size_t>(p * static_cast<double>(sorted.size()) + 0.999999);
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return static_cast<double>(sorted[rank - 1]) / 1000.0;
}

struct Summary {
  double p50, p90, p99, p999, max, rtt_per_sec;
};

Summary summarize(const Result& r) {
  const double wall_s = std::chrono::duration<double>(r.wall).count();
  return {percentile_us(r.ns, 0.50),
          percentile_us(r.ns, 0.90),
          percentile_us(r.ns, 0.99),
          percentile_us(r.ns, 0.999),
          r.ns.empty() ? 0.0 : static_cast<double>(r.ns.back()) / 1000.0,
          wall_s > 0 ? static_cast<double>(r.ns.size()) / wall_s : 0.0};
}

void print_json(const Config& c, const Result& r, const std::string& load) {
  const auto s = summarize(r);
  std::printf(
      "{\"mode\":\"%s\",\"size\":%zu,\"round_trips\":%zu,\"p50_us\":%.2f,\"p90_us\":%.2f,\"p99_us\":%.2f,"
      "\"p999_us\":%.2f,\"max_us\":%.2f,\"rtt_per_sec\":%.0f,\"poll_budget_us\":%lld",
      info(r.mode).name, c.size, r.ns.size(), s.p50, s.p90, s.p99, s.p999, s.max, s.rtt_per_sec,
      static_cast<long long>(c.poll_budget.count()));
  if (r.parent_sleeps) std::printf(",\"parent_sleeps\":%llu", static_cast<unsigned long long>(*r.parent_sleeps));
  if (r.ipis_per_rtt) std::printf(",\"ipis_per_rtt\":%.2f", *r.ipis_per_rtt);
  std::printf(",\"loadavg\":\"%s\"}\n", load.c_str());
}

void print_table(const Config& c, const std::vector<Result>& results, const std::string& load_before) {
  std::printf("%zu-byte round trips between two processes over loopback TCP: %zu per mode after %zu warm-up;\n"
              "poll budget %lld us; load average before: %s, after: %s\n\n",
              c.size, c.round_trips, c.warmup, static_cast<long long>(c.poll_budget.count()), load_before.c_str(),
              load_average().c_str());
  std::printf("%-22s %9s %9s %9s %9s %9s %10s %8s %7s  %s\n", "mode", "p50 us", "p90 us", "p99 us", "p99.9 us",
              "max us", "rtt/s", "sleeps", "IPI/rtt", "how it waits");
  for (const auto& r : results) {
    const auto s = summarize(r);
    const std::string sleeps = r.parent_sleeps ? std::to_string(*r.parent_sleeps) : "-";
    char ipis[32] = "-";
    if (r.ipis_per_rtt) std::snprintf(ipis, sizeof ipis, "%.2f", *r.ipis_per_rtt);
    std::printf("%-22s %9.1f %9.1f %9.1f %9.1f %9.1f %10.0f %8s %7s  %s\n", info(r.mode).name, s.p50, s.p90, s.p99,
                s.p999, s.max, s.rtt_per_sec, sleeps.c_str(), ipis, info(r.mode).what);
  }
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  const Config c = parse_args(argc, argv);
  ::signal(SIGPIPE, SIG_IGN);
  ::signal(SIGALRM, on_alarm);
  ::signal(SIGINT, on_terminate_signal);
  ::signal(SIGTERM, on_terminate_signal);
  try {
    pin_process(c.parent_cpu);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: --cpus: %s\n", kProgram, e.what());
    return 2;
  }

  const std::string load_before = load_average();
  std::vector<Result> results;
  int failures = 0;
  for (const Mode m : c.modes) {
    if (is_uring_mode(m)) {
      if (const auto why = uring_unsupported(m)) {
        std::fprintf(stderr, "%s: mode '%s' skipped: %s\n", kProgram, info(m).name, why->c_str());
        continue;
      }
    }
    if (!c.json_only) std::fprintf(stderr, "%s: %s...\n", kProgram, info(m).name);
    try {
      results.push_back(run_mode(c, m));
      if (c.json_only) {
        print_json(c, results.back(), load_average());
        std::fflush(stdout);
      }
    } catch (const std::exception& e) {
      watchdog_off();
      std::fprintf(stderr, "%s: mode '%s' failed: %s\n", kProgram, info(m).name, e.what());
      ++failures;
    }
  }
  if (!c.json_only) {
    print_table(c, results, load_before);
    const auto load = load_average();
    for (const auto& r : results) print_json(c, r, load);
  }
  return failures == 0 ? 0 : 1;
}
