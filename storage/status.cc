#include "storage/status.h"

namespace pgtrail {

const char* Status::CodeName() const {
  switch (code_) {
    case kOk: return "ok";
    case kInvalidArgument: return "invalid argument";
    case kNotFound: return "not found";
    case kCorruption: return "corruption";
    case kUnavailable: return "unavailable";
    case kFailedPrecondition: return "refused";
    case kIOError: return "i/o error";
    case kInternal: return "internal error";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return message_;
}

int Status::ExitCode() const {
  // Stable exit statuses, in the spirit of pgBackRest's error catalogue.
  // 1 is left to "usage" errors from option parsing (see tools/cli.h).
  switch (code_) {
    case kOk: return 0;
    case kInvalidArgument: return 2;
    case kNotFound: return 3;
    case kCorruption: return 4;
    case kUnavailable: return 5;
    case kFailedPrecondition: return 6;
    case kIOError: return 7;
    case kInternal: return 8;
  }
  return 8;
}

}  // namespace pgtrail
