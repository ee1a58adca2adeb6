// The one mapping between impulse::Status and grpc::Status.
#pragma once

#include <grpcpp/support/status.h>

#include "impulse/status.h"

namespace impulse {

grpc::Status ToGrpc(const Status& status);
Status FromGrpc(const grpc::Status& status);

}  // namespace impulse
