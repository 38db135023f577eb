#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace raftfl::net {

// Runs `job` on another thread and resumes the awaiting coroutine on `home` with the job's
// result, or rethrows its exception there. `submit` hands a copyable callable to that
// thread (a storage reactor's post, the training pool's queue). The job and the result
// live in the awaiting frame, which outlives the hop: the coroutine is suspended until the
// completion is posted back.
template <typename Submit, typename Job>
asio::awaitable<std::invoke_result_t<Job&>> run_elsewhere(Submit submit, asio::any_io_executor home, Job& job) {
  using Result = std::invoke_result_t<Job&>;
  constexpr bool kVoid = std::is_void_v<Result>;
  std::optional<std::conditional_t<kVoid, bool, Result>> result;
  std::exception_ptr error;
  co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
      [&](auto handler) {
        // The handler is move-only and the thread's queue may want a copyable callable.
        auto resume = std::make_shared<decltype(handler)>(std::move(handler));
        submit([&job, &result, &error, resume, home]() mutable {
          try {
            if constexpr (kVoid) {
              job();
              result.emplace(true);
            } else {
              result.emplace(job());
            }
          } catch (...) {
            error = std::current_exception();
          }
          // The last reference goes home with the completion, so the handler is never
          // destroyed on this thread after the coroutine has resumed.
          asio::post(home, [resume = std::move(resume)] { (*resume)(); });
        });
      },
      asio::use_awaitable);
  if (error) std::rethrow_exception(error);
  if constexpr (!kVoid) co_return std::move(*result);
}

}  // namespace raftfl::net
