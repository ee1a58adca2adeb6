#include "impulse/grpc_status.h"

namespace impulse {
namespace {

struct CodePair {
  StatusCode ours;
  grpc::StatusCode theirs;
};

constexpr CodePair kCodes[] = {
    {StatusCode::kOk, grpc::StatusCode::OK},
    {StatusCode::kInvalidArgument, grpc::StatusCode::INVALID_ARGUMENT},
    {StatusCode::kNotFound, grpc::StatusCode::NOT_FOUND},
    {StatusCode::kAlreadyExists, grpc::StatusCode::ALREADY_EXISTS},
    {StatusCode::kFailedPrecondition, grpc::StatusCode::FAILED_PRECONDITION},
    {StatusCode::kResourceExhausted, grpc::StatusCode::RESOURCE_EXHAUSTED},
    {StatusCode::kAborted, grpc::StatusCode::ABORTED},
    {StatusCode::kUnavailable, grpc::StatusCode::UNAVAILABLE},
    {StatusCode::kDeadlineExceeded, grpc::StatusCode::DEADLINE_EXCEEDED},
    {StatusCode::kDataLoss, grpc::StatusCode::DATA_LOSS},
    {StatusCode::kCancelled, grpc::StatusCode::CANCELLED},
    {StatusCode::kInternal, grpc::StatusCode::INTERNAL},
};

}  // namespace

grpc::Status ToGrpc(const Status& status) {
  for (const auto& pair : kCodes) {
    if (pair.ours == status.code()) return grpc::Status(pair.theirs, status.message());
  }
  return grpc::Status(grpc::StatusCode::INTERNAL, status.message());
}

Status FromGrpc(const grpc::Status& status) {
  for (const auto& pair : kCodes) {
    if (pair.theirs == status.error_code()) return Status(pair.ours, status.error_message());
  }
  // UNKNOWN, UNIMPLEMENTED, PERMISSION_DENIED, ...: nothing branches on them.
  return Status(StatusCode::kInternal, status.error_message());
}

}  // namespace impulse
