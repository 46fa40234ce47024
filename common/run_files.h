// The files a run keeps with the coordinator. The checkpoint is the trained
// model; every other file a run uploads (a resume point, tsne.csv) is a run
// file too, content-addressed the same way.
#ifndef DISTILL_COMMON_RUN_FILES_H_
#define DISTILL_COMMON_RUN_FILES_H_

#include <cstddef>

namespace distill {

// The run's final checkpoint.
inline constexpr char kCheckpointFile[] = "checkpoint";
// The latest resume point: written at the end of an epoch, it lets a new
// attempt go on where a lost one stopped. Each replaces the one before; it
// goes when the run ends.
inline constexpr char kResumeFile[] = "resume.pt";
// A DISTILL run's training state at its end (the resume point of its last
// epoch's steps): what `distill fork --continue` goes on from. Kept, and
// dropped by retention, with the checkpoint.
inline constexpr char kStateFile[] = "state.pt";
// The t-SNE maps of an evaluation (model,x,y,label per test image): what
// `distill tsne` plots and the report draws.
inline constexpr char kTsneFile[] = "tsne.csv";
// Bytes in each chunk of a run file's upload or download stream.
inline constexpr size_t kFileChunkBytes = size_t{1} << 20;

}  // namespace distill

#endif  // DISTILL_COMMON_RUN_FILES_H_
