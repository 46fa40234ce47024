// Names of the files a run keeps with the coordinator besides artifacts.
#ifndef DISTILL_COMMON_RUN_FILES_H_
#define DISTILL_COMMON_RUN_FILES_H_

namespace distill {

// The run's final checkpoint.
inline constexpr char kCheckpointFile[] = "checkpoint";
// The latest resume point: written at the end of an epoch, it lets a new
// attempt go on where a lost one stopped. Each replaces the one before; it
// goes when the run ends.
inline constexpr char kResumeFile[] = "resume.pt";

}  // namespace distill

#endif  // DISTILL_COMMON_RUN_FILES_H_
