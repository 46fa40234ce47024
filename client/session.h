// What every command of the CLI runs with: the coordinator's stubs, the
// output streams, and the calls several commands make.
#ifndef DISTILL_CLIENT_SESSION_H_
#define DISTILL_CLIENT_SESSION_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/time_text.h"
#include "distill/v1/admin_service.grpc.pb.h"
#include "distill/v1/experiment_service.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "render/text.h"

namespace distill {

// The process's exit codes.
inline constexpr int kExitOk = 0;
// The run, the sweep or the check the command waited for failed.
inline constexpr int kExitFailed = 1;
// The command line or a spec file is wrong (nothing was sent).
inline constexpr int kExitUsage = 2;
// The coordinator could not be reached, or refused the call.
inline constexpr int kExitRefused = 3;

class Session {
 public:
  Session(std::shared_ptr<grpc::Channel> channel, std::ostream& out,
          std::ostream& err, bool tty);

  v1::ExperimentService::Stub& experiments() { return *experiments_; }
  v1::AdminService::Stub& admin() { return *admin_; }
  grpc::health::v1::Health::Stub& health() { return *health_; }
  std::ostream& out() { return out_; }
  std::ostream& err() { return err_; }
  // Whether out() is a terminal (a live line rewrites itself).
  bool tty() const { return tty_; }

  // "WHAT: CODE: message" on err() (terminal-safe); kExitRefused.
  int Refused(const std::string& what, const grpc::Status& status);
  // `message` on err() (terminal-safe); kExitUsage.
  int Usage(const std::string& what, const std::string& message);

  grpc::Status GetRun(int64_t id, v1::Run* run);
  grpc::Status GetSweepResults(const std::string& sweep,
                               v1::SweepResults* results);
  // The run's file `name`, or the refusal as "CODE: message".
  absl::StatusOr<std::string> DownloadFile(int64_t id, const std::string& name);
  // The first event of a watch of the run: the run and its history, each
  // key spread over at most `points_per_key` points (0: the default).
  grpc::Status FirstEvent(int64_t id, int64_t points_per_key,
                          v1::RunEvent* event);

  // Every page of a listing (the coordinator answers a page at a time):
  // `call` asks for the page `request` names, `items` picks its entries;
  // stops once `limit` (> 0) entries are in.
  template <typename Response, typename Request, typename Call, typename Items,
            typename Item>
  static grpc::Status AllPages(Request request, Call call, Items items,
                               std::vector<Item>* out, int64_t limit = 0) {
    do {
      grpc::ClientContext context;
      Response response;
      grpc::Status status = call(&context, request, &response);
      if (!status.ok()) return status;
      for (const Item& item : items(response)) out->push_back(item);
      request.set_page_token(response.next_page_token());
      if (limit > 0 && int64_t(out->size()) >= limit) break;
    } while (!request.page_token().empty());
    return grpc::Status::OK;
  }

 private:
  std::unique_ptr<v1::ExperimentService::Stub> experiments_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
  std::ostream& out_;
  std::ostream& err_;
  const bool tty_;
};

// What a command does once its words and flags are parsed.
using Command = std::function<int(Session&)>;

// A run id from the command line: a positive whole number.
bool ParseRunId(const std::string& text, int64_t* id);

}  // namespace distill

#endif  // DISTILL_CLIENT_SESSION_H_
