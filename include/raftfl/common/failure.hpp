#pragma once

#include <exception>
#include <string>
#include <string_view>

namespace raftfl::common {

// What the exception in `error` says: what() of a std::exception, a fixed text for any
// other type, so that a failure of an unexpected type is still reported, never rethrown
// from a completion handler by accident.
std::string describe(std::exception_ptr error);

// Logs the failure in `error` as an error line of `component`: "<context>: <what>". Meant
// for the completion handler of a coroutine (asio::co_spawn hands it the exception the
// coroutine ended with), where nothing else would ever see it.
void log_failure(std::string_view component, std::string_view context, std::exception_ptr error);

// For failures after which the process must not go on (a write that may not have reached
// the disk, a broken engine invariant): logs as log_failure does, flushes stderr and ends
// the process with exit status 1 at once. No destructor runs: they would act on the very
// state that just proved broken (flush a log, answer a client). The supervisor restarts
// the node from its durable state.
[[noreturn]] void exit_on_failure(std::string_view component, std::string_view context, std::exception_ptr error);

}  // namespace raftfl::common
