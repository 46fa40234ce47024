#include "worker/engine/teacher_outputs.h"

#include <unistd.h>

#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "worker/engine/judge.h"

namespace distill::engine {

absl::StatusOr<std::unique_ptr<Teacher>> LoadFrozenTeacher(
    const RunConfig& config, const std::string& checkpoint) {
  const torch::Device device(config.device);
  return config.teacher_torchscript.empty()
             ? LoadTeacherCheckpoint(checkpoint, device)
             : LoadTorchScriptTeacher(config.teacher_torchscript, device);
}

std::string TeacherFile(const RunConfig& config,
                        const std::string& checkpoint) {
  return config.teacher_torchscript.empty() ? checkpoint
                                            : config.teacher_torchscript;
}

// A new field of DatasetConfig must be sorted into TeacherCacheKey's kept or
// left-out options before this compiles again.
// (Two strings, four int64_t, two bools padded to eight bytes.)
static_assert(sizeof(DatasetConfig) ==
                  2 * sizeof(std::string) + 4 * sizeof(int64_t) + 8,
              "DatasetConfig changed: does the new option change the "
              "teacher's outputs? Update TeacherCacheKey, then this");

absl::StatusOr<std::string> TeacherCacheKey(const RunConfig& config,
                                            const std::string& teacher_file,
                                            const TeacherCache& cache) {
  if (teacher_file.empty()) return std::string();
  absl::StatusOr<std::string> teacher = cache.file_digest(teacher_file);
  if (!teacher.ok()) {
    return absl::Status(teacher.status().code(),
                        absl::StrCat("teacher ", teacher_file, ": ",
                                     teacher.status().message()));
  }
  std::string key =
      absl::StrCat("distill teacher outputs v2\nteacher ", *teacher, "\n");
  const std::vector<std::string> files = DatasetFiles(config.dataset);
  if (files.empty()) return std::string();
  for (const std::string& file : files) {
    absl::StatusOr<std::string> sha = cache.file_digest(file);
    if (!sha.ok()) return std::string();
    absl::StrAppend(&key, "data ", *sha, "\n");
  }
  const DatasetConfig& d = config.dataset;
  absl::StrAppend(&key, "dataset ", d.name, "\ntrain_limit ", d.train_limit,
                  "\ntest_limit ", d.test_limit, "\nimage_size ", d.image_size,
                  "\ncrop_to_boxes ", d.crop_to_boxes, "\ndevice ",
                  config.device, "\n");
  return key;
}

absl::StatusOr<std::string> TeacherCacheEntry(const RunConfig& config,
                                              const std::string& teacher_file,
                                              const TeacherCache& cache) {
  if (cache.dir.empty()) return std::string();
  absl::StatusOr<std::string> key =
      TeacherCacheKey(config, teacher_file, cache);
  if (!key.ok() || key->empty()) return key;
  std::error_code error;
  std::filesystem::create_directories(cache.dir, error);
  if (error) {
    return absl::UnavailableError(absl::StrCat(
        "cannot create the teacher cache ", cache.dir, ": ", error.message()));
  }
  const std::string entry =
      absl::StrCat(cache.dir, "/", cache.text_digest(*key), ".pt");
  if (cache.on_use) cache.on_use(entry);
  return entry;
}

absl::StatusOr<TeacherOutputs> ComputeTeacherOutputs(
    Data& data, Teacher* teacher, const RunConfig& config,
    const std::string& teacher_checkpoint, const std::string& entry) {
  std::error_code error;
  if (!entry.empty() && std::filesystem::exists(entry, error)) {
    std::vector<torch::Tensor> t;
    try {
      torch::load(t, entry);
    } catch (const c10::Error&) {
      t.clear();  // A damaged entry is recomputed and replaced.
    }
    if (t.size() == 4 && t[0].size(0) == data.train->size() &&
        t[2].size(0) == data.test->size()) {
      return TeacherOutputs{{t[0], t[1]}, {t[2], t[3]}, true};
    }
  }
  std::unique_ptr<Teacher> loaded;
  if (teacher == nullptr) {
    absl::StatusOr<std::unique_ptr<Teacher>> t =
        LoadFrozenTeacher(config, teacher_checkpoint);
    if (!t.ok()) return t.status();
    loaded = *std::move(t);
    teacher = loaded.get();
  }
  const ForwardFn forward = [teacher](const torch::Tensor& images) {
    return teacher->Forward(images);
  };
  const torch::Device device(config.device);
  absl::StatusOr<LogitsAndEmbedding> train =
      Predict(forward, *data.train, 0, device);
  if (!train.ok()) return train.status();
  absl::StatusOr<LogitsAndEmbedding> test =
      Predict(forward, *data.test, 0, device);
  if (!test.ok()) return test.status();
  if (!entry.empty()) {
    // Written whole, then renamed: a concurrent reader never sees half. A
    // cache that cannot be written costs only the next run's time.
    const std::string temp = absl::StrCat(entry, ".tmp-", ::getpid());
    std::vector<torch::Tensor> t = {train->first, train->second, test->first,
                                    test->second};
    try {
      torch::save(t, temp);
      std::filesystem::rename(temp, entry, error);
    } catch (const c10::Error&) {
      std::filesystem::remove(temp, error);
    }
  }
  return TeacherOutputs{*std::move(train), *std::move(test), false};
}

}  // namespace distill::engine
