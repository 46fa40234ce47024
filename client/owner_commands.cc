// The verbs of fair share: owners (list) and owners set (an admin's shares
// and caps; README "A lab shares its GPUs").
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/commands.h"
#include "render/terminal.h"
#include "render/text.h"

namespace distill {
namespace {

std::string Hours(double seconds) {
  return absl::StrFormat("%.1f", seconds / 3600);
}

std::string CapText(const v1::Owner& o) {
  const std::string cap =
      o.max_running() > 0 ? absl::StrCat(o.max_running()) : "none";
  return o.max_running_is_default() ? absl::StrCat(cap, " (default)") : cap;
}

int ListOwners(Session& s, const std::string& format_name) {
  grpc::ClientContext context;
  v1::ListOwnersResponse response;
  grpc::Status status =
      s.experiments().ListOwners(&context, v1::ListOwnersRequest(), &response);
  if (!status.ok()) return s.Refused("owners", status);
  const OutputFormat format = FormatOf(format_name);
  if (format == OutputFormat::kJson) {
    s.out() << ToJson(response) << "\n";
    return kExitOk;
  }
  if (format == OutputFormat::kCsv) {
    s.out() << "owner,shares,max_running,running,queued,gpu_seconds,"
               "gpu_seconds_total,usage_fraction,share_fraction\n";
    for (const v1::Owner& o : response.owners()) {
      s.out() << CsvField(o.name()) << "," << o.shares() << ","
              << o.max_running() << "," << o.running() << "," << o.queued()
              << "," << o.gpu_seconds() << "," << o.gpu_seconds_total() << ","
              << o.usage_fraction() << "," << o.share_fraction() << "\n";
    }
    return kExitOk;
  }
  s.out() << absl::StrFormat("%-24s %7s %-13s %7s %7s %12s %10s  %s\n", "OWNER",
                             "SHARES", "MAX RUNNING", "RUNNING", "QUEUED",
                             "GPU-HOURS *", "IN ALL", "USED / SHARE");
  double used = 0;  // Decayed GPU time of every owner.
  for (const v1::Owner& o : response.owners()) used += o.gpu_seconds();
  for (const v1::Owner& o : response.owners()) {
    s.out() << absl::StrFormat(
        "%-24s %7g %-13s %7d %7d %12s %10s  %3.0f%% / %3.0f%%%s\n",
        TerminalSafe(o.name()), o.shares(), CapText(o), o.running(), o.queued(),
        Hours(o.gpu_seconds()), Hours(o.gpu_seconds_total()),
        100 * o.usage_fraction(), 100 * o.share_fraction(),
        o.usage_fraction() < o.share_fraction() && used > 0
            ? "  below its share"
            : "");
  }
  s.out() << absl::StrFormat(
      "* decayed: an hour used counts half after %s; the owner furthest "
      "below its share is served first\n",
      Hours(response.half_life_seconds()) + " h");
  return kExitOk;
}

struct Policy {
  std::string owner;
  double shares = 1;
  std::string max_running = "default";
};

int SetPolicy(Session& s, const Policy& p) {
  v1::SetOwnerPolicyRequest request;
  request.set_owner(p.owner);
  request.set_shares(p.shares);
  if (p.max_running != "default") {
    int cap;
    if (!absl::SimpleAtoi(p.max_running, &cap)) {
      return s.Usage("owners set",
                     absl::StrCat("--max_running takes a number or default, "
                                  "got \"",
                                  p.max_running, "\""));
    }
    request.set_max_running(cap);
  }
  grpc::ClientContext context;
  v1::Owner owner;
  grpc::Status status = s.admin().SetOwnerPolicy(&context, request, &owner);
  if (!status.ok()) return s.Refused("owners set", status);
  s.out() << "owner " << TerminalSafe(owner.name()) << ": shares "
          << owner.shares() << ", max running " << CapText(owner) << "\n";
  return kExitOk;
}

}  // namespace

void AddOwnerCommands(CLI::App& app, Command* chosen) {
  CLI::App* owners = app.add_subcommand(
      "owners",
      "fair share: each owner's shares, cap, runs and GPU time (README \"A "
      "lab shares its GPUs\")");
  auto format = std::make_shared<std::string>("table");
  AddFormatFlag(owners, format.get());
  owners->callback([=] {
    if (owners->get_subcommands().empty())
      *chosen = [=](Session& s) { return ListOwners(s, *format); };
  });
  auto p = std::make_shared<Policy>();
  CLI::App* set = owners->add_subcommand(
      "set", "(admin) an owner's shares and cap on running runs");
  set->add_option("owner", p->owner, "the owner (a token's name)")->required();
  set->add_option("--shares", p->shares,
                  "its weight in fair share (1: an equal part)")
      ->capture_default_str();
  set->add_option("--max_running", p->max_running,
                  "at most this many running at once; 0: no cap; default: "
                  "the coordinator's --max_running_per_owner")
      ->capture_default_str();
  set->callback(
      [=] { *chosen = [=](Session& s) { return SetPolicy(s, *p); }; });
}

}  // namespace distill
