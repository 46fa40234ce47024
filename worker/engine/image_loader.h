#ifndef DISTILL_WORKER_ENGINE_IMAGE_LOADER_H_
#define DISTILL_WORKER_ENGINE_IMAGE_LOADER_H_

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "worker/engine/images.h"

namespace distill::engine {

struct ImageBatch {
  torch::Tensor images;  // N x 3 x size x size float.
  torch::Tensor labels;  // N int64.
};

// Decodes and transforms batches of an ImageList on `threads` threads, up to
// `prefetch` batches ahead of the consumer, in order. An unreadable image is
// an error naming it; an image that takes longer than `timeout` is an error
// naming it, not a hang. Start and Next must be called from one thread;
// the loader threads share the jobs under mu_.
class ImageBatchLoader {
 public:
  ImageBatchLoader(const ImageList& list, ImageTransform transform, int threads,
                   int prefetch, uint64_t seed,
                   absl::Duration timeout = absl::Seconds(60));
  ~ImageBatchLoader();
  ImageBatchLoader(const ImageBatchLoader&) = delete;
  ImageBatchLoader& operator=(const ImageBatchLoader&) = delete;

  // Begins an epoch over `order` (indices into the list) in batches of
  // `batch_size`; the last partial batch is kept.
  void Start(const torch::Tensor& order, int64_t batch_size);
  // The next batch of the epoch; nullopt after the last.
  absl::StatusOr<std::optional<ImageBatch>> Next();

 private:
  struct Job {
    std::vector<int64_t> indices;
    bool taken = false;
    std::optional<absl::StatusOr<ImageBatch>> result;
    std::string current_file;
  };
  void Work();
  absl::StatusOr<ImageBatch> Load(Job& job, std::mt19937_64& rng);
  void StopWorkers();
  // Queues the epoch's next batch, if any is left.
  void QueueNext() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ImageList& list_;
  const ImageTransform transform_;
  const int prefetch_;
  const uint64_t seed_;
  const absl::Duration timeout_;
  absl::Mutex mu_;
  // Queued or done; a job's fields are written by the thread that took it,
  // under mu_.
  std::map<int64_t, Job> jobs_ ABSL_GUARDED_BY(mu_);
  std::vector<std::vector<int64_t>> epoch_ ABSL_GUARDED_BY(mu_);  // Batches.
  int64_t next_to_queue_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t next_to_return_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;  // Jobs being loaded.
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace distill::engine

#endif  // DISTILL_WORKER_ENGINE_IMAGE_LOADER_H_
