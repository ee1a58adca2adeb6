#include "impulse/status.h"

#include <gtest/gtest.h>

#include "impulse/grpc_status.h"
#include "impulse/task_names.h"

namespace impulse {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgument("odd: " + std::to_string(x));
  return x / 2;
}

Status HalfTwice(int x, int* out) {
  IMPULSE_ASSIGN_OR_RETURN(int once, Half(x));
  IMPULSE_ASSIGN_OR_RETURN(*out, Half(once));
  return Status::Ok();
}

TEST(StatusTest, ResultCarriesValueOrStatus) {
  int out = 0;
  EXPECT_TRUE(HalfTwice(8, &out).ok());
  EXPECT_EQ(out, 2);
  Status failed = HalfTwice(6, &out);
  EXPECT_EQ(failed.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(failed.message(), "odd: 3");
}

TEST(StatusTest, ResultFromOkStatusIsAnError) {
  Result<int> r = Status::Ok();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
}

TEST(StatusTest, GrpcMappingRoundTrips) {
  for (auto code : {StatusCode::kInvalidArgument, StatusCode::kNotFound,
                    StatusCode::kFailedPrecondition, StatusCode::kAborted,
                    StatusCode::kUnavailable, StatusCode::kDataLoss}) {
    Status back = FromGrpc(ToGrpc(Status(code, "m")));
    EXPECT_EQ(back.code(), code);
    EXPECT_EQ(back.message(), "m");
  }
  EXPECT_EQ(ToGrpc(InvalidArgument("x")).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(StatusTest, ToStringAndContext) {
  EXPECT_EQ(NotFound("job j1").WithContext("watch").ToString(), "NOT_FOUND: watch: job j1");
  EXPECT_EQ(Status::Ok().ToString(), "OK");
}

TEST(TaskNamesTest, WireNames) {
  EXPECT_EQ(TaskKindName(v1::TASK_KIND_GENERATE_FEATURES), "generate-features");
  EXPECT_EQ(ParseTaskKind("quantize-evaluate"), v1::TASK_KIND_QUANTIZE_EVALUATE);
  EXPECT_FALSE(ParseTaskKind("bogus").has_value());
  EXPECT_EQ(JobStateName(v1::JOB_STATE_WITHDRAWN), "WITHDRAWN");
  EXPECT_TRUE(IsTerminal(v1::JOB_STATE_CANCELLED));
  EXPECT_FALSE(IsTerminal(v1::JOB_STATE_RUNNING));
}

}  // namespace
}  // namespace impulse
