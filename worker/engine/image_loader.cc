#include "worker/engine/image_loader.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace distill::engine {

ImageBatchLoader::ImageBatchLoader(const ImageList& list,
                                   ImageTransform transform, int threads,
                                   int prefetch, uint64_t seed,
                                   absl::Duration timeout)
    : list_(list),
      transform_(transform),
      prefetch_(std::max(1, prefetch)),
      seed_(seed),
      timeout_(timeout) {
  for (int i = 0; i < std::max(1, threads); ++i)
    threads_.emplace_back([this] { Work(); });
}

ImageBatchLoader::~ImageBatchLoader() { StopWorkers(); }

void ImageBatchLoader::StopWorkers() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

void ImageBatchLoader::QueueNext() {
  if (next_to_queue_ < int64_t(epoch_.size())) {
    jobs_[next_to_queue_].indices = epoch_[next_to_queue_];
    ++next_to_queue_;
  }
}

void ImageBatchLoader::Start(const torch::Tensor& order, int64_t batch_size) {
  absl::MutexLock lock(&mu_);
  // Finish the last epoch's work first.
  auto idle = [this]()
                  ABSL_SHARED_LOCKS_REQUIRED(mu_) { return in_flight_ == 0; };
  mu_.Await(absl::Condition(&idle));
  jobs_.clear();
  epoch_.clear();
  const torch::Tensor o = order.to(torch::kInt64).contiguous();
  const int64_t* p = o.data_ptr<int64_t>();
  for (int64_t i = 0; i < o.numel(); i += batch_size) {
    epoch_.emplace_back(p + i, p + std::min(o.numel(), i + batch_size));
  }
  next_to_queue_ = next_to_return_ = 0;
  while (next_to_queue_ < int64_t(epoch_.size()) &&
         next_to_queue_ < prefetch_) {
    QueueNext();
  }
}

absl::StatusOr<std::optional<ImageBatch>> ImageBatchLoader::Next() {
  absl::MutexLock lock(&mu_);
  if (next_to_return_ >= int64_t(epoch_.size())) return std::nullopt;
  const int64_t k = next_to_return_;
  auto ready = [this, k]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return jobs_[k].result.has_value();
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&ready), timeout_)) {
    return absl::DeadlineExceededError(absl::StrCat(
        "loading an image took longer than ", absl::FormatDuration(timeout_),
        ": ",
        jobs_[k].current_file.empty() ? "(waiting for a loader thread)"
                                      : jobs_[k].current_file));
  }
  absl::StatusOr<ImageBatch> result = *std::move(jobs_[k].result);
  jobs_.erase(k);
  ++next_to_return_;
  QueueNext();
  if (!result.ok()) return result.status();
  return std::optional<ImageBatch>(*std::move(result));
}

void ImageBatchLoader::Work() {
  // Plain tensors: training may use them in autograd.
  torch::NoGradGuard no_grad;
  absl::MutexLock lock(&mu_);
  while (true) {
    Job* job = nullptr;
    int64_t key = 0;
    auto work_or_stop = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      if (stop_) return true;
      for (auto& [k, j] : jobs_) {
        if (!j.taken) {
          job = &j;
          key = k;
          return true;
        }
      }
      return false;
    };
    mu_.Await(absl::Condition(&work_or_stop));
    if (stop_) return;
    job->taken = true;
    ++in_flight_;
    // Each batch has its own stream of randomness: results do not depend on
    // which thread loads it.
    std::mt19937_64 rng(
        seed_ ^ (uint64_t(key) * 0x9E3779B97F4A7C15ull) ^
        uint64_t(job->indices.empty() ? 0 : job->indices.front()));
    mu_.Unlock();
    absl::StatusOr<ImageBatch> result = Load(*job, rng);
    mu_.Lock();
    job->result = std::move(result);
    --in_flight_;
  }
}

absl::StatusOr<ImageBatch> ImageBatchLoader::Load(Job& job,
                                                  std::mt19937_64& rng) {
  std::vector<torch::Tensor> images;
  std::vector<int64_t> labels;
  for (int64_t i : job.indices) {
    {
      absl::MutexLock lock(&mu_);
      job.current_file = list_.paths[size_t(i)];
    }
    absl::StatusOr<torch::Tensor> hwc = ReadJpeg(list_.paths[size_t(i)]);
    if (!hwc.ok()) return hwc.status();
    images.push_back(TransformImage(
        *hwc, transform_, rng,
        list_.boxes.empty() ? nullptr : &list_.boxes[size_t(i)]));
    labels.push_back(list_.labels[size_t(i)]);
  }
  return ImageBatch{torch::stack(images), torch::tensor(labels, torch::kInt64)};
}

}  // namespace distill::engine
