#include "raftfl/common/failure.hpp"

#include <cstdio>
#include <cstdlib>

#include "raftfl/common/log.hpp"

namespace raftfl::common {

std::string describe(std::exception_ptr error) {
  if (!error) return "no exception";
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

void log_failure(std::string_view component, std::string_view context, std::exception_ptr error) {
  std::string text(context);
  text += ": ";
  text += describe(error);
  log::line(log::Level::kError, component, text);
}

void exit_on_failure(std::string_view component, std::string_view context, std::exception_ptr error) {
  log_failure(component, context, error);
  std::fflush(stderr);
  std::_Exit(1);
}

}  // namespace raftfl::common
