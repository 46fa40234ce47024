#include "common/sweep_expansion.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/catalog.h"
#include "common/scalar_text.h"
#include "common/validation.h"

namespace distill {
namespace {

using google::protobuf::FieldDescriptor;

absl::Status Bad(const std::string& path, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", why));
}

// One field set by an axis: its path, the value's text, and the name part.
struct Setting {
  std::string path;
  std::string value;
};

// A uniform double in [0, 1) from 53 bits: the same on every platform,
// unlike std::uniform_real_distribution.
double Uniform(std::mt19937_64& generator) {
  return double(generator() >> 11) * 0x1.0p-53;
}

std::string FormatDraw(double x) { return absl::StrFormat("%.4g", x); }

// How a value shows in a member's name: a TorchScript teacher by its
// file's name without directory or ".pt" ("/" separates a name's parts).
std::string ValueLabel(const Setting& setting) {
  if (setting.path != "teacher.torchscript") return setting.value;
  std::string label = setting.value;
  if (size_t slash = label.rfind('/'); slash != std::string::npos)
    label = label.substr(slash + 1);
  if (absl::EndsWith(label, ".pt")) label.resize(label.size() - 3);
  return label;
}

}  // namespace

namespace {

// Sets scalar `field` of `message` from `value`, the text an axis gives
// (common/scalar_text.h); the error names `path`.
absl::Status SetScalar(const std::string& path, const std::string& value,
                       const FieldDescriptor* field,
                       google::protobuf::Message* message) {
  if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE)
    return Bad(path, "cannot be set by an axis");
  const std::string expected = SetScalarFromText(value, field, message);
  if (expected.empty()) return absl::OkStatus();
  return Bad(path, absl::StrCat("\"", value, "\" is not ", expected));
}

// Sets the scalar at `path` of `spec`, whatever the path's first part.
absl::Status SetField(const std::string& path, const std::string& value,
                      v1::ExperimentSpec* spec) {
  const std::vector<std::string> parts = absl::StrSplit(path, '.');
  google::protobuf::Message* message = spec;
  for (size_t i = 0; i < parts.size(); ++i) {
    const google::protobuf::Descriptor* descriptor = message->GetDescriptor();
    const FieldDescriptor* field = descriptor->FindFieldByName(parts[i]);
    if (field == nullptr) {
      return Bad(path, absl::StrCat("no field \"", parts[i], "\" in ",
                                    descriptor->name()));
    }
    if (field->is_repeated()) {
      return Bad(path, absl::StrCat(parts[i], " is a list, not a scalar"));
    }
    const bool last = i + 1 == parts.size();
    if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
      if (!last) return Bad(path, absl::StrCat(parts[i], " is a scalar"));
      return SetScalar(path, value, field, message);
    }
    if (last) {
      return Bad(path,
                 absl::StrCat(parts[i], " is a group of fields, not a scalar"));
    }
    message = message->GetReflection()->MutableMessage(message, field);
  }
  return Bad(path, "cannot be set by an axis");
}

}  // namespace

absl::Status SetSpecField(const std::string& path, const std::string& value,
                          v1::ExperimentSpec* spec) {
  const std::vector<std::string> parts = absl::StrSplit(path, '.');
  if (path.empty() || parts.empty()) return Bad("axis", "the path is empty");
  if (parts[0] == "kind" || parts[0] == "name" || parts[0] == "teacher") {
    return Bad(path,
               "a sweep's axes cannot set kind, name or the teacher (the "
               "sweep's teacher stage does)");
  }
  return SetField(path, value, spec);
}

bool IsTeacherAxis(const std::string& path) {
  return absl::StartsWith(path, "teacher.");
}

absl::Status SetTeacherField(const std::string& path, const std::string& value,
                             v1::ExperimentSpec* spec) {
  if (path != "teacher.torchscript" &&
      !absl::StartsWith(path, "teacher.vit.")) {
    return Bad(path,
               "a teacher axis sets teacher.vit.* or teacher.torchscript of "
               "the teacher stage's teacher.train");
  }
  return SetField(path, value, spec);
}

std::string AxisLabel(const std::string& path) {
  if (path == "losses.ikd.temperature") return "T";
  if (path == "optimizer.lr") return "lr";
  if (path == "teacher.torchscript") return "teacher";
  std::string label = path;
  if (absl::StartsWith(label, "losses.")) label = label.substr(7);
  if (absl::StartsWith(label, "teacher.")) label = label.substr(8);
  if (absl::EndsWith(label, "_weight"))
    label = label.substr(0, label.size() - 7);
  return label;
}

std::string WithoutSeed(const std::string& member) {
  const size_t at = member.rfind("seed=");
  if (at == std::string::npos || (at != 0 && member[at - 1] != '/'))
    return member;
  return member.substr(0, at == 0 ? 0 : at - 1);
}

namespace {

// The teacher stage's spec; each teacher is it with the teacher axes'
// values.
v1::ExperimentSpec TeacherStage(const v1::SweepSpec& spec) {
  v1::ExperimentSpec stage = spec.base();
  if (spec.teacher().has_train()) {
    stage.clear_losses();
    stage.clear_student();
    stage.MergeFrom(spec.teacher().train());
    stage.set_kind(v1::TRAIN_TEACHER);
  }
  return stage;
}

// The sizes first (every list is bounded only by the message): axes,
// choices, random points, and the members they all make.
absl::Status CheckSizes(const v1::SweepSpec& spec) {
  if (spec.grid_size() > limits::kSweepAxes ||
      spec.random().axes_size() > limits::kSweepAxes) {
    return absl::InvalidArgumentError(
        absl::StrCat("grid and random.axes may list at most ",
                     limits::kSweepAxes, " axes each, got ", spec.grid_size(),
                     " and ", spec.random().axes_size()));
  }
  for (int a = 0; a < spec.random().axes_size(); ++a) {
    if (spec.random().axes(a).choices_size() > limits::kSweepChoices) {
      return absl::InvalidArgumentError(absl::StrCat(
          "random.axes[", a, "] may list at most ", limits::kSweepChoices,
          " choices, got ", spec.random().axes(a).choices_size()));
    }
  }
  double grid_size = 1;
  for (const v1::GridAxis& axis : spec.grid()) grid_size *= axis.values_size();
  const v1::RandomSearch& random = spec.random();
  if (random.axes_size() > 0 &&
      (random.count() < 1 || random.count() > limits::kSweepMembers)) {
    return absl::InvalidArgumentError(
        absl::StrCat("random.count must be in [1, ", limits::kSweepMembers,
                     "], got ", random.count()));
  }
  if (random.axes_size() == 0 && random.count() != 0) {
    return absl::InvalidArgumentError(
        "random.count is set but random.axes lists none");
  }
  const int rows = std::max(1, spec.members_size());
  const double total =
      rows * grid_size *
      std::max<double>(1, random.axes_size() > 0 ? random.count() : 0) *
      std::max<double>(1, spec.seeds_size());
  if (total > limits::kSweepMembers) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "the sweep expands to %.0f members (%d rows x %.0f grid points x %d "
        "random points x %d seeds), more than the limit of %d",
        total, rows, grid_size, random.axes_size() > 0 ? random.count() : 1,
        std::max(1, spec.seeds_size()), limits::kSweepMembers));
  }
  return absl::OkStatus();
}

// Each grid axis on its own, so that an error names it: values that set
// its field, none twice, a teacher axis only with a teacher stage.
absl::Status CheckGrid(const v1::SweepSpec& spec,
                       const v1::ExperimentSpec& teacher_stage) {
  for (int a = 0; a < spec.grid_size(); ++a) {
    const v1::GridAxis& axis = spec.grid(a);
    const std::string where = absl::StrCat("grid[", a, "] ", axis.path());
    if (axis.values().empty())
      return absl::InvalidArgumentError(where + ": no values");
    const bool teacher_axis = IsTeacherAxis(axis.path());
    if (teacher_axis && !spec.teacher().has_train()) {
      return absl::InvalidArgumentError(absl::StrCat(
          where,
          ": a teacher axis needs a teacher stage that trains (teacher.train); "
          "teacher.run_id names one existing teacher"));
    }
    std::set<std::string> seen;
    for (const std::string& value : axis.values()) {
      v1::ExperimentSpec probe = teacher_axis ? teacher_stage : spec.base();
      if (absl::Status s = teacher_axis
                               ? SetTeacherField(axis.path(), value, &probe)
                               : SetSpecField(axis.path(), value, &probe);
          !s.ok())
        return absl::InvalidArgumentError(
            absl::StrCat("grid[", a, "] ", s.message()));
      if (!seen.insert(value).second) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": the value ", value, " is listed twice"));
      }
    }
  }
  return absl::OkStatus();
}

// The seeds, each once and >= 0; one "no seed" when there are none.
absl::StatusOr<std::vector<std::optional<int64_t>>> SeedList(
    const v1::SweepSpec& spec) {
  std::vector<std::optional<int64_t>> out;
  std::set<int64_t> seen;
  for (int64_t seed : spec.seeds()) {
    if (seed < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("seeds must be >= 0, got ", seed));
    }
    if (!seen.insert(seed).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("seeds lists ", seed, " twice"));
    }
    out.push_back(seed);
  }
  if (out.empty()) out.push_back(std::nullopt);
  return out;
}

// Every combination of the grid's values, in the grid's order.
std::vector<std::vector<Setting>> GridPoints(const v1::SweepSpec& spec) {
  std::vector<std::vector<Setting>> points = {{}};
  for (const v1::GridAxis& axis : spec.grid()) {
    std::vector<std::vector<Setting>> next;
    for (const auto& point : points) {
      for (const std::string& value : axis.values()) {
        next.push_back(point);
        next.back().push_back({axis.path(), value});
      }
    }
    points = std::move(next);
  }
  return points;
}

// One draw from a random axis, as the text its field is set from.
absl::StatusOr<std::string> Draw(const v1::RandomAxis& axis,
                                 const std::string& where,
                                 std::mt19937_64& generator) {
  switch (axis.distribution()) {
    case v1::UNIFORM:
    case v1::LOG_UNIFORM: {
      const bool log = axis.distribution() == v1::LOG_UNIFORM;
      if (!(axis.min() < axis.max()) || (log && axis.min() <= 0)) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": needs min < max", log ? " and 0 < min" : "",
                         ", got [", axis.min(), ", ", axis.max(), "]"));
      }
      const double u = Uniform(generator);
      const double x =
          log ? std::exp(std::log(axis.min()) +
                         u * (std::log(axis.max()) - std::log(axis.min())))
              : axis.min() + u * (axis.max() - axis.min());
      return FormatDraw(x);
    }
    case v1::CHOICE:
      if (axis.choices().empty())
        return absl::InvalidArgumentError(where + ": no choices");
      return axis.choices(
          int(Uniform(generator) * double(axis.choices_size())));
    default:
      return absl::InvalidArgumentError(
          where + ": distribution must be UNIFORM, LOG_UNIFORM or CHOICE");
  }
}

// random.count points drawn from the axes, each value checked as its
// field; one empty point without random axes.
absl::StatusOr<std::vector<std::vector<Setting>>> RandomPoints(
    const v1::SweepSpec& spec) {
  const v1::RandomSearch& random = spec.random();
  if (random.axes_size() == 0) return std::vector<std::vector<Setting>>{{}};
  std::vector<std::vector<Setting>> points;
  std::mt19937_64 generator(uint64_t(random.seed()));
  for (int r = 0; r < random.count(); ++r) {
    std::vector<Setting> point;
    for (int a = 0; a < random.axes_size(); ++a) {
      const v1::RandomAxis& axis = random.axes(a);
      const std::string where =
          absl::StrCat("random.axes[", a, "] ", axis.path());
      if (IsTeacherAxis(axis.path())) {
        return absl::InvalidArgumentError(absl::StrCat(
            where,
            ": a teacher axis must be a grid axis (each teacher trains once)"));
      }
      absl::StatusOr<std::string> value = Draw(axis, where, generator);
      if (!value.ok()) return value.status();
      v1::ExperimentSpec probe = spec.base();
      if (absl::Status s = SetSpecField(axis.path(), *value, &probe); !s.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("random.axes[", a, "] ", s.message()));
      }
      point.push_back({axis.path(), *std::move(value)});
    }
    points.push_back(std::move(point));
  }
  return points;
}

// The teachers: the stage as it is, or one per combination of the teacher
// axes' values, in the grid's order; `*point_teacher` says each grid
// point's.
absl::Status ExpandTeachers(const v1::SweepSpec& spec,
                            const v1::ExperimentSpec& teacher_stage,
                            const std::vector<std::vector<Setting>>& grid,
                            ExpandedSweep* expanded,
                            std::vector<int>* point_teacher) {
  if (!spec.teacher().has_train()) {
    point_teacher->assign(grid.size(), 0);
    return absl::OkStatus();
  }
  std::map<std::string, int> teacher_of;    // Teacher name -> index.
  std::vector<std::string> teacher_wanted;  // Each teacher's spec, unresolved.
  for (const auto& point : grid) {
    v1::ExperimentSpec t = teacher_stage;
    std::vector<std::string> name_parts = {"teacher"};
    for (const Setting& setting : point) {
      if (!IsTeacherAxis(setting.path)) continue;
      // Checked by CheckGrid; cannot fail here.
      if (absl::Status s = SetTeacherField(setting.path, setting.value, &t);
          !s.ok())
        return s;
      name_parts.push_back(
          absl::StrCat(AxisLabel(setting.path), "=", ValueLabel(setting)));
    }
    const std::string name = absl::StrJoin(name_parts, "/");
    auto [it, added] = teacher_of.try_emplace(name, expanded->teachers.size());
    point_teacher->push_back(it->second);
    const std::string wanted = t.SerializeAsString();
    if (!added) {
      if (teacher_wanted[it->second] != wanted) {
        return absl::InvalidArgumentError(absl::StrCat(
            "two teachers are both named \"", name,
            "\" (TorchScript files of the same name in other directories)"));
      }
      continue;
    }
    teacher_wanted.push_back(wanted);
    absl::StatusOr<v1::ExperimentSpec> resolved = ResolveAndValidate(t);
    if (!resolved.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          name == "teacher" ? "teacher.train"
                            : absl::StrCat("teacher \"", name, "\""),
          ": ", resolved.status().message()));
    }
    expanded->teachers.push_back({name, *std::move(resolved)});
  }
  return absl::OkStatus();
}

// One member: row `row` (if the sweep has rows) at a grid point, a random
// point and a seed, named after what it sets, its spec resolved and
// validated.
absl::StatusOr<SweepMemberSpec> Member(
    const v1::SweepSpec& spec, int row,
    const std::vector<const std::vector<Setting>*>& points,
    std::optional<int64_t> seed, int teacher) {
  const bool has_rows = spec.members_size() > 0;
  std::vector<std::string> name_parts;
  if (has_rows) name_parts.push_back(spec.members(row).name());
  v1::ExperimentSpec m = spec.base();
  m.set_kind(v1::DISTILL);
  if (has_rows) *m.mutable_losses() = spec.members(row).losses();
  m.mutable_teacher()->Clear();
  for (const auto* point : points) {
    for (const Setting& setting : *point) {
      // Checked before; cannot fail here. A teacher axis names the member
      // but sets its teacher's spec.
      if (!IsTeacherAxis(setting.path)) {
        if (absl::Status s = SetSpecField(setting.path, setting.value, &m);
            !s.ok())
          return s;
      }
      name_parts.push_back(
          absl::StrCat(AxisLabel(setting.path), "=", ValueLabel(setting)));
    }
  }
  if (seed) {
    m.set_seed(*seed);
    name_parts.push_back(absl::StrCat("seed=", *seed));
  }
  const std::string name = absl::StrJoin(name_parts, "/");
  if (name.size() > limits::kNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("member name \"", name.substr(0, 64),
                     "...\" is longer than ", limits::kNameBytes, " bytes"));
  }
  absl::StatusOr<v1::ExperimentSpec> resolved =
      ResolveAndValidate(m, TeacherReference::kProvided);
  if (!resolved.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("member \"", name, "\": ", resolved.status().message()));
  }
  return SweepMemberSpec{name, *std::move(resolved), teacher};
}

}  // namespace

absl::StatusOr<ExpandedSweep> ExpandSweep(const v1::SweepSpec& spec) {
  if (absl::Status s = ValidateSweepShape(spec); !s.ok()) return s;
  const v1::ExperimentSpec teacher_stage = TeacherStage(spec);
  if (absl::Status s = CheckSizes(spec); !s.ok()) return s;
  if (absl::Status s = CheckGrid(spec, teacher_stage); !s.ok()) return s;
  absl::StatusOr<std::vector<std::optional<int64_t>>> seeds = SeedList(spec);
  if (!seeds.ok()) return seeds.status();
  const std::vector<std::vector<Setting>> grid = GridPoints(spec);
  absl::StatusOr<std::vector<std::vector<Setting>>> random = RandomPoints(spec);
  if (!random.ok()) return random.status();
  ExpandedSweep expanded;
  std::vector<int> point_teacher;  // Grid point -> its teacher.
  if (absl::Status s =
          ExpandTeachers(spec, teacher_stage, grid, &expanded, &point_teacher);
      !s.ok()) {
    return s;
  }
  std::set<std::string> names;
  for (int row = 0; row < std::max(1, spec.members_size()); ++row) {
    for (size_t g = 0; g < grid.size(); ++g) {
      for (const std::vector<Setting>& random_point : *random) {
        for (const std::optional<int64_t>& seed : *seeds) {
          absl::StatusOr<SweepMemberSpec> member = Member(
              spec, row, {&grid[g], &random_point}, seed, point_teacher[g]);
          if (!member.ok()) return member.status();
          if (!names.insert(member->name).second) {
            return absl::InvalidArgumentError(absl::StrCat(
                "two members are both named \"", member->name,
                "\" (random draws that coincide: widen the range or use "
                "fewer points)"));
          }
          expanded.members.push_back(*std::move(member));
        }
      }
    }
  }
  return expanded;
}

}  // namespace distill
