#include "server/operations/notifier.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <httplib.h>

#include <algorithm>
#include <map>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/log.h"
#include "common/metric_keys.h"
#include "common/run_status.h"
#include "render/claims.h"

namespace distill {
namespace {

// What a client named, safe in Slack's and Mattermost's text (their three
// control characters escaped; the JSON writer escapes the rest).
std::string Quoted(const std::string& text) {
  return absl::StrReplaceAll(text.substr(0, 256),
                             {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}});
}

// "https://hooks.example:443" and "/services/...": a URL split where
// cpp-httplib's client takes it. Empty first half: not http(s).
std::pair<std::string, std::string> SplitUrl(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos || (url.compare(0, scheme, "http") != 0 &&
                                      url.compare(0, scheme, "https") != 0)) {
    return {"", ""};
  }
  const size_t path = url.find('/', scheme + 3);
  if (path == std::string::npos) return {url, "/"};
  return {url.substr(0, path), url.substr(path)};
}

// The host of `url`, for logs (the rest of a webhook's URL is its secret).
std::string HostOf(const std::string& url) {
  const std::string base = SplitUrl(url).first;
  const size_t at = base.find("://");
  return at == std::string::npos ? "(not http)" : base.substr(at + 3);
}

// The best succeeded member by top-1: "H/seed=1 (run 12), top-1 86.4%".
std::string BestMember(const v1::SweepResults& results) {
  const v1::MemberResult* best = nullptr;
  for (const v1::MemberResult& m : results.members()) {
    if (m.status() != v1::SUCCEEDED || !m.has_top1()) continue;
    if (best == nullptr || m.top1() > best->top1()) best = &m;
  }
  if (best == nullptr) return "";
  return absl::StrFormat("%s (run %d), top-1 %.1f%%", Quoted(best->name()),
                         best->run_id(), 100 * best->top1());
}

}  // namespace

bool SweepEnded(const v1::SweepResults& results) {
  for (const v1::MemberResult& m : results.members()) {
    if (!IsTerminal(m.status())) return false;
  }
  for (const v1::TeacherResult& t : results.teachers()) {
    if (!IsTerminal(t.status())) return false;
  }
  return results.members_size() > 0;
}

std::string SweepNotification(const v1::SweepResults& results,
                              const std::string& pages_url) {
  std::map<std::string, int> counts;
  for (const v1::MemberResult& m : results.members())
    ++counts[v1::RunStatus_Name(m.status())];
  std::vector<std::string> by_status;
  for (const auto& [status, n] : counts)
    by_status.push_back(absl::StrCat(n, " ", status));
  const bool failed = counts.contains("FAILED");
  std::string text = absl::StrCat("sweep ", results.sweep().id(), " \"",
                                  Quoted(results.sweep().name()), "\" ",
                                  failed ? "ended with failures" : "ended",
                                  ": ", absl::StrJoin(by_status, ", "));
  if (!results.sweep().owner().empty())
    absl::StrAppend(&text, " (owner ", Quoted(results.sweep().owner()), ")");
  if (const std::string best = BestMember(results); !best.empty())
    absl::StrAppend(&text, "\nbest: ", best);
  const std::vector<ClaimVerdict> claims = JudgeClaims(results);
  if (!claims.empty()) {
    std::map<Verdict, int> tally;
    for (const ClaimVerdict& c : claims) ++tally[c.verdict];
    absl::StrAppend(&text, "\nclaims: ", tally[Verdict::kHolds], " hold, ",
                    tally[Verdict::kFails], " do not, ",
                    tally[Verdict::kUndecided], " undecided");
    for (const ClaimVerdict& c : claims) {
      absl::StrAppend(&text, "\n• ", VerdictWord(c.verdict), ": ",
                      Quoted(c.text));
    }
  }
  if (!pages_url.empty()) {
    absl::StrAppend(&text, "\n", pages_url, "/sweeps/", results.sweep().id());
  }
  google::protobuf::Struct body;
  (*body.mutable_fields())["text"].set_string_value(text);
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(body, &json);
  return json;
}

Notifier::Notifier(Scheduler* scheduler, EventQueue* ended,
                   NotifierOptions options)
    : scheduler_(scheduler),
      ended_(ended),
      options_(std::move(options)),
      thread_([this] { Loop(); }) {}

Notifier::~Notifier() {
  stop_.Notify();
  ended_->Close();
  thread_.join();
}

void Notifier::Loop() {
  while (!stop_.HasBeenNotified()) {
    if (std::optional<int64_t> id = ended_->Pop(absl::Milliseconds(500)))
      Check(*id);
  }
}

void Notifier::Check(int64_t id) {
  absl::StatusOr<v1::SweepResults> results =
      scheduler_->SweepResults(absl::StrCat(id));
  if (!results.ok()) {
    DISTILL_LOG(WARNING) << "notification of sweep " << id << ": "
                         << results.status().message();
    return;
  }
  if (!SweepEnded(*results)) return;
  std::string ended_runs;
  for (const v1::MemberResult& m : results->members())
    absl::StrAppend(&ended_runs, m.run_id(), ":", m.status(), ",");
  if (told_[id] == ended_runs) return;
  told_[id] = ended_runs;
  const std::string body = SweepNotification(*results, options_.pages_url);
  std::vector<std::string> urls;
  if (!options_.url.empty()) urls.push_back(options_.url);
  const std::string& own = results->sweep().spec().notify().url();
  if (!own.empty() && own != options_.url) urls.push_back(own);
  for (const std::string& url : urls) {
    const bool sent = Post(url, body);
    if (options_.metrics != nullptr)
      options_.metrics->Notified(sent ? "sent" : "failed");
    if (sent) {
      DISTILL_LOG(INFO) << "told " << HostOf(url) << " that sweep " << id
                        << " ended";
    }
  }
}

bool Notifier::Post(const std::string& url, const std::string& body) {
  const auto [base, path] = SplitUrl(url);
  if (base.empty()) {
    DISTILL_LOG(WARNING) << "a notify URL is not http(s); nothing posted";
    return false;
  }
  std::mt19937_64 random(std::random_device{}());
  absl::Duration wait = options_.first_backoff;
  for (int attempt = 1; attempt <= options_.attempts; ++attempt) {
    httplib::Client client(base);
    const int64_t seconds = absl::ToInt64Seconds(options_.timeout);
    client.set_connection_timeout(seconds, 0);
    client.set_read_timeout(seconds, 0);
    client.set_write_timeout(seconds, 0);
    httplib::Result answer = client.Post(path, body, "application/json");
    if (answer && answer->status / 100 == 2) return true;
    const std::string why = answer ? absl::StrCat("HTTP ", answer->status)
                                   : httplib::to_string(answer.error());
    if (attempt == options_.attempts) {
      DISTILL_LOG(WARNING) << "notification to " << HostOf(url) << " failed "
                           << attempt << " times (last: " << why
                           << "); given up";
      return false;
    }
    // Backoff with up to as much again of jitter, so that coordinators
    // told at once do not retry at once.
    const absl::Duration jittered =
        wait * (1 + std::uniform_real_distribution<double>(0, 1)(random));
    DISTILL_LOG(WARNING) << "notification to " << HostOf(url) << ": " << why
                         << "; again in " << jittered;
    if (stop_.WaitForNotificationWithTimeout(jittered)) return false;
    wait *= 2;
  }
  return false;
}

}  // namespace distill
