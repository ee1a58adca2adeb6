// Status and Result<T>: how every component boundary reports failure.
//
// Each code maps 1:1 onto a grpc::StatusCode (impulse/grpc_status.h does the
// mapping, in one place). Add a code only when some caller branches on it.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace impulse {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // the caller's input is wrong; retrying will not help
  kNotFound,            // no such job, task, blob or dataset in this project
  kAlreadyExists,
  kFailedPrecondition,  // valid input, but the system's state refuses it
  kResourceExhausted,   // over a budget or a limit
  kAborted,             // a stale lease or fencing token; drop the work
  kUnavailable,         // Redis or the coordinator is unreachable; retry later
  kDeadlineExceeded,
  kDataLoss,            // bytes do not match their sha256
  kCancelled,           // the work was cancelled by its owner
  kInternal,            // a bug or a broken invariant
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message)
      : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "CODE_NAME: message", for logs and one-line user errors.
  std::string ToString() const;

  // The same code with "context: " put before the message.
  Status WithContext(const std::string& context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
inline Status FailedPrecondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
inline Status ResourceExhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
inline Status Aborted(std::string m) { return {StatusCode::kAborted, std::move(m)}; }
inline Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status DeadlineExceeded(std::string m) { return {StatusCode::kDeadlineExceeded, std::move(m)}; }
inline Status DataLoss(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
inline Status Cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : data_(std::move(status)) {  // NOLINT
    if (std::get<Status>(data_).ok()) {
      data_ = Status(StatusCode::kInternal, "Result built from an OK Status");
    }
  }

  bool ok() const { return std::holds_alternative<T>(data_); }
  Status status() const { return ok() ? Status() : std::get<Status>(data_); }

  // REQUIRES: ok().
  T& value() & { return std::get<T>(data_); }
  const T& value() const& { return std::get<T>(data_); }
  T&& value() && { return std::get<T>(std::move(data_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> data_;
};

}  // namespace impulse

// Returns the Status from the enclosing function when it is not OK.
#define IMPULSE_RETURN_IF_ERROR(expr)             \
  do {                                            \
    ::impulse::Status impulse_status_ = (expr);   \
    if (!impulse_status_.ok()) return impulse_status_; \
  } while (0)

#define IMPULSE_CONCAT_INNER(a, b) a##b
#define IMPULSE_CONCAT(a, b) IMPULSE_CONCAT_INNER(a, b)

// IMPULSE_ASSIGN_OR_RETURN(auto x, MakeX()); returns the Status on failure.
#define IMPULSE_ASSIGN_OR_RETURN(lhs, expr) \
  IMPULSE_ASSIGN_OR_RETURN_IMPL(IMPULSE_CONCAT(impulse_result_, __LINE__), lhs, expr)
#define IMPULSE_ASSIGN_OR_RETURN_IMPL(result, lhs, expr) \
  auto result = (expr);                                  \
  if (!result.ok()) return result.status();              \
  lhs = std::move(result).value()
