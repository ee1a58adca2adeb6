// What a job that did not succeed still hands back (docs/COMPUTE.md,
// "Withdrawal"): the newest checkpoint of each task that did not finish,
// as an artifact ("checkpoint.pt" for training), and the training log read
// back from the job's EPOCH events when no train task finished to report
// it. `impulse-client fetch` then writes both, whatever ended the job.
//
// Thread-safe: uses only the thread-safe Store and BlobStore.
#pragma once

#include "coordinator/blob_store.h"
#include "coordinator/store.h"
#include "impulse/v1/job.pb.h"

namespace impulse::coordinator {

// Adds them to `job` (as Store::GetJob returned it) when the job ended
// without succeeding; leaves any other job alone. A checkpoint blob that is
// gone is skipped. Fails only as Store::ReadEvents does.
Status AddPartialResults(Store& store, BlobStore& blobs, v1::Job& job);

}  // namespace impulse::coordinator
