// Status and Result<T>: the one error type of pgtrail.
//
// Error policy (STYLE.md, written once):
//   bad bytes from the wire or disk   -> kCorruption
//   lost connection / server gone     -> kUnavailable (the agent reconnects)
//   bad user input                    -> kInvalidArgument, message says what was expected
//   a refused but well-formed request -> kFailedPrecondition (non-empty target, ...)
//   missing store / object            -> kNotFound
//   anything from the OS or libraries -> kIOError
//   a broken invariant                -> assert, never a Status
//
// Each code maps to one stable process exit status (ExitCode()).
#ifndef PGTRAIL_STORAGE_STATUS_H_
#define PGTRAIL_STORAGE_STATUS_H_

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace pgtrail {

class [[nodiscard]] Status {
 public:
  // Never renumber: codes map to exit statuses.
  enum Code {
    kOk = 0,
    kInvalidArgument = 1,
    kNotFound = 2,
    kCorruption = 3,
    kUnavailable = 4,
    kFailedPrecondition = 5,
    kIOError = 6,
    kInternal = 7,
  };

  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string m) { return Status(kInvalidArgument, std::move(m)); }
  static Status NotFound(std::string m) { return Status(kNotFound, std::move(m)); }
  static Status Corruption(std::string m) { return Status(kCorruption, std::move(m)); }
  static Status Unavailable(std::string m) { return Status(kUnavailable, std::move(m)); }
  static Status FailedPrecondition(std::string m) {
    return Status(kFailedPrecondition, std::move(m));
  }
  static Status IOError(std::string m) { return Status(kIOError, std::move(m)); }
  static Status Internal(std::string m) { return Status(kInternal, std::move(m)); }

  bool ok() const { return code_ == kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // A short lowercase name for the code, used as the message prefix.
  const char* CodeName() const;
  // "corruption: pgoutput Insert: truncated tuple" style.
  std::string ToString() const;
  // Process exit status for this code: 0 for OK, otherwise 1..127, stable.
  int ExitCode() const;

  // Returns a copy with "context: " prepended to the message.
  Status WithContext(const std::string& context) const {
    if (ok()) return *this;
    return Status(code_, context + ": " + message_);
  }

 private:
  Code code_ = kOk;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok() && "Result built from an OK status without a value");
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace pgtrail

#define PGTRAIL_CONCAT_INNER(a, b) a##b
#define PGTRAIL_CONCAT(a, b) PGTRAIL_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                    \
  do {                                           \
    ::pgtrail::Status _pgtrail_st = (expr);      \
    if (!_pgtrail_st.ok()) return _pgtrail_st;   \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()

// ASSIGN_OR_RETURN(auto x, Foo()); or ASSIGN_OR_RETURN(x, Foo());
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(PGTRAIL_CONCAT(_pgtrail_res_, __LINE__), lhs, expr)

#endif  // PGTRAIL_STORAGE_STATUS_H_
