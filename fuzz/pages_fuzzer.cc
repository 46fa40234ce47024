// libFuzzer, the pages' whole path: the bytes a browser (or anyone) sends
// on the pages' port, parsed as the server parses them (several requests
// on one connection) and answered by the pages over a scheduler and SQLite
// store holding a sweep, its runs, metrics, tags and a t-SNE file, with
// tokens on or off (the input's first byte). Any request may be refused;
// none may crash, hang or throw, and every answer carries the security
// headers.
#include <google/protobuf/stubs/logging.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "absl/strings/string_view.h"
#include "common/sha256.h"
#include "common/token.h"
#include "http/http_server.h"
#include "server/base/clock.h"
#include "server/base/no_throw.h"
#include "server/scheduling/auth.h"
#include "server/scheduling/scheduler.h"
#include "server/storage/run_file_store.h"
#include "server/storage/store.h"
#include "server/web/pages.h"
#include "tests/scheduler_steps.h"

namespace distill {
namespace {

// The viewer token's secret; the seeds carry it.
constexpr char kViewerSecret[] =
    "distill_fuzzviewerfuzzviewerfuzzviewerfuzzviewerfuzzviewerfuzzview";

struct World {
  std::string dir;
  std::unique_ptr<Store> store;
  std::unique_ptr<RunFileStore> files;
  FakeClock clock;
  std::unique_ptr<Scheduler> scheduler;
  Authenticator open;
  std::unique_ptr<Authenticator> tokens;
  std::unique_ptr<Pages> open_pages, token_pages;
};

void Check(bool ok) {
  if (!ok) std::abort();
}

// A sweep "fuzz <b>" of a teacher that ran and two students, one tagged
// and noted; the teacher has metrics and a tsne.csv.
void Populate(Scheduler& s) {
  v1::SweepSpec sweep;
  sweep.set_name("fuzz <b>");
  v1::ExperimentSpec* teacher = sweep.mutable_teacher()->mutable_train();
  teacher->mutable_teacher()->mutable_vit()->set_preset("small-28");
  for (const char* name : {"D", "G<i>"}) {
    v1::SweepMember* m = sweep.add_members();
    m->set_name(name);
    m->mutable_losses()->set_ce(1);
  }
  absl::StatusOr<v1::SubmitSweepResponse> submitted = s.SubmitSweep(sweep);
  Check(submitted.ok());
  v1::AnnotateRequest note;
  note.set_run_id(submitted->runs(1).id());
  note.set_note("a note <script>");
  (*note.mutable_set_tags())["keep"] = "yes";
  Check(s.Annotate(note).ok());
  v1::RegisterWorkerRequest worker;
  worker.set_hostname("gpu1");
  const std::string worker_id = s.RegisterWorker(worker)->worker_id();
  const v1::Run run = s.LeaseRun(worker_id)->run();
  Check(s.ReportMetrics(EpochReport(run, 3)).ok());
  Check(UploadRunFile(s, run, "model,x,y,label\nteacher,1,2,3\nstudent,4,5,6\n",
                      "tsne.csv")
            .ok());
  Check(UploadRunFile(s, run, "weights").ok());
  v1::CompleteRunRequest complete;
  complete.set_run_id(run.id());
  complete.set_attempt(run.attempt());
  complete.set_checkpoint_sha256(Sha256Hex("weights"));
  (*complete.mutable_results())["eval/top1"] = 0.7;
  Check(s.CompleteRun(complete).ok());
}

World& TheWorld() {
  static World* const world = [] {
    auto* w = new World;
    char name[] = "/tmp/distill_pages_fuzzer_XXXXXX";
    w->dir = ::mkdtemp(name);
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(TheWorld().dir, ignored);
    });
    w->store = *Store::OpenSqlite(w->dir + "/distill.db");
    w->files = *RunFileStore::OpenDirectory(w->dir + "/run-files");
    w->scheduler =
        std::make_unique<Scheduler>(w->store.get(), w->files.get(), &w->clock);
    Populate(*w->scheduler);
    TokenRecord viewer;
    viewer.id = 1;
    viewer.name = "viewer";
    viewer.role = v1::ROLE_VIEWER;
    viewer.sha256 = TokenDigest(kViewerSecret);
    TokenRecord worker = viewer;
    worker.id = 2;
    worker.name = "worker";
    worker.role = v1::ROLE_WORKER;
    worker.sha256 = TokenDigest(std::string(kViewerSecret) + "w");
    w->tokens = std::make_unique<Authenticator>(
        std::vector<TokenRecord>{viewer, worker});
    w->open_pages = std::make_unique<Pages>(w->scheduler.get(), &w->open);
    w->token_pages =
        std::make_unique<Pages>(w->scheduler.get(), w->tokens.get());
    return w;
  }();
  return *world;
}

}  // namespace
}  // namespace distill

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Protobuf's complaints about invalid UTF-8 in what it parsed are the
  // fuzzer's own doing, not findings.
  google::protobuf::SetLogHandler(nullptr);
  distill::AbortOnCaughtException(true);
  distill::TheWorld();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace distill;
  if (size == 0) return 0;
  World& world = TheWorld();
  const Pages& pages = (data[0] & 1) ? *world.token_pages : *world.open_pages;
  absl::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  HttpLimits limits;
  for (int i = 0; i < 8 && !bytes.empty(); ++i) {
    HttpRequest request;
    const HttpParse parse = ParseHttpRequest(bytes, limits, &request);
    if (parse.state == HttpParse::kIncomplete) break;
    if (parse.state == HttpParse::kBad) {
      Check(parse.error_status >= 400 && parse.error_status < 600);
      break;
    }
    Check(parse.consumed > 0 && parse.consumed <= bytes.size());
    bytes.remove_prefix(parse.consumed);
    request.peer = "127.0.0.1";
    request.tls = (data[0] & 2) != 0;
    const HttpResponse response = pages.Handle(request);
    Check(response.status >= 200 && response.status < 600);
    int security = 0;
    for (const auto& [name, value] : response.headers) {
      security += name == "Content-Security-Policy" ||
                  name == "X-Content-Type-Options" ||
                  name == "X-Frame-Options" || name == "Referrer-Policy";
    }
    Check(security == 4);
    const std::string wire =
        SerializeHttpResponse(response, true, request.method == "HEAD");
    Check(wire.rfind("HTTP/1.1 ", 0) == 0);
  }
  return 0;
}
