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
    const google::protobuf::Reflection* reflection = message->GetReflection();
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (i + 1 == parts.size()) {
        return Bad(path, absl::StrCat(parts[i],
                                      " is a group of fields, not a scalar"));
      }
      message = reflection->MutableMessage(message, field);
      continue;
    }
    if (i + 1 != parts.size()) {
      return Bad(path, absl::StrCat(parts[i], " is a scalar"));
    }
    const std::string quoted = absl::StrCat("\"", value, "\"");
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_DOUBLE:
      case FieldDescriptor::CPPTYPE_FLOAT: {
        double x = 0;
        if (!absl::SimpleAtod(value, &x) || !std::isfinite(x))
          return Bad(path, absl::StrCat(quoted, " is not a number"));
        if (field->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
          reflection->SetDouble(message, field, x);
        } else {
          reflection->SetFloat(message, field, float(x));
        }
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_INT32:
      case FieldDescriptor::CPPTYPE_INT64: {
        int64_t x = 0;
        if (!absl::SimpleAtoi(value, &x))
          return Bad(path, absl::StrCat(quoted, " is not a whole number"));
        if (field->cpp_type() == FieldDescriptor::CPPTYPE_INT32) {
          if (x < std::numeric_limits<int32_t>::min() ||
              x > std::numeric_limits<int32_t>::max()) {
            return Bad(path, absl::StrCat(quoted, " is out of range"));
          }
          reflection->SetInt32(message, field, int32_t(x));
        } else {
          reflection->SetInt64(message, field, x);
        }
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_BOOL: {
        const std::string v = absl::AsciiStrToLower(value);
        if (v != "true" && v != "false")
          return Bad(path, absl::StrCat(quoted, " is not true or false"));
        reflection->SetBool(message, field, v == "true");
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_ENUM: {
        const auto* type = field->enum_type();
        const auto* found = type->FindValueByName(absl::AsciiStrToUpper(value));
        if (found == nullptr) {
          std::vector<std::string> names;
          for (int k = 0; k < type->value_count(); ++k)
            names.push_back(type->value(k)->name());
          return Bad(path, absl::StrCat(quoted, " is not one of ",
                                        absl::StrJoin(names, ", ")));
        }
        reflection->SetEnum(message, field, found);
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_STRING:
        reflection->SetString(message, field, value);
        return absl::OkStatus();
      default:
        return Bad(path, "cannot be set by an axis");
    }
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

absl::StatusOr<ExpandedSweep> ExpandSweep(const v1::SweepSpec& spec) {
  if (absl::Status s = ValidateSweepShape(spec); !s.ok()) return s;
  ExpandedSweep expanded;
  // The teacher stage's spec; each teacher is it with the teacher axes' values.
  v1::ExperimentSpec teacher_stage = spec.base();
  if (spec.teacher().has_train()) {
    teacher_stage.clear_losses();
    teacher_stage.clear_student();
    teacher_stage.MergeFrom(spec.teacher().train());
    teacher_stage.set_kind(v1::TRAIN_TEACHER);
  }

  // The sizes first (every list is bounded only by the message), then each
  // axis checked on its own, so that an error names it.
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

  std::vector<std::vector<Setting>> grid_points = {{}};
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
  std::set<int64_t> seeds;
  for (int64_t seed : spec.seeds()) {
    if (seed < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("seeds must be >= 0, got ", seed));
    }
    if (!seeds.insert(seed).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("seeds lists ", seed, " twice"));
    }
  }
  for (const v1::GridAxis& axis : spec.grid()) {
    std::vector<std::vector<Setting>> next;
    for (const auto& point : grid_points) {
      for (const std::string& value : axis.values()) {
        next.push_back(point);
        next.back().push_back({axis.path(), value});
      }
    }
    grid_points = std::move(next);
  }
  std::vector<std::vector<Setting>> random_points = {{}};
  if (random.axes_size() > 0) {
    random_points.clear();
    std::mt19937_64 generator(uint64_t(random.seed()));
    for (int r = 0; r < random.count(); ++r) {
      std::vector<Setting> point;
      for (int a = 0; a < random.axes_size(); ++a) {
        const v1::RandomAxis& axis = random.axes(a);
        const std::string where =
            absl::StrCat("random.axes[", a, "] ", axis.path());
        if (IsTeacherAxis(axis.path())) {
          return absl::InvalidArgumentError(
              absl::StrCat(where,
                           ": a teacher axis must be a grid axis (each teacher "
                           "trains once)"));
        }
        std::string value;
        switch (axis.distribution()) {
          case v1::UNIFORM:
          case v1::LOG_UNIFORM: {
            const bool log = axis.distribution() == v1::LOG_UNIFORM;
            if (!(axis.min() < axis.max()) || (log && axis.min() <= 0)) {
              return absl::InvalidArgumentError(absl::StrCat(
                  where, ": needs min < max", log ? " and 0 < min" : "",
                  ", got [", axis.min(), ", ", axis.max(), "]"));
            }
            const double u = Uniform(generator);
            const double x = log ? std::exp(std::log(axis.min()) +
                                            u * (std::log(axis.max()) -
                                                 std::log(axis.min())))
                                 : axis.min() + u * (axis.max() - axis.min());
            value = FormatDraw(x);
            break;
          }
          case v1::CHOICE:
            if (axis.choices().empty()) {
              return absl::InvalidArgumentError(where + ": no choices");
            }
            value = axis.choices(
                int(Uniform(generator) * double(axis.choices_size())));
            break;
          default:
            return absl::InvalidArgumentError(
                where +
                ": distribution must be UNIFORM, LOG_UNIFORM or CHOICE");
        }
        v1::ExperimentSpec probe = spec.base();
        if (absl::Status s = SetSpecField(axis.path(), value, &probe);
            !s.ok()) {
          return absl::InvalidArgumentError(
              absl::StrCat("random.axes[", a, "] ", s.message()));
        }
        point.push_back({axis.path(), value});
      }
      random_points.push_back(std::move(point));
    }
  }
  std::vector<std::optional<int64_t>> seed_list = {std::nullopt};
  if (!spec.seeds().empty()) {
    seed_list.clear();
    for (int64_t seed : spec.seeds()) seed_list.push_back(seed);
  }

  // The teachers: the stage as it is, or one per combination of the teacher
  // axes' values, in the grid's order.
  std::map<std::string, int> teacher_of;    // Teacher name -> index.
  std::vector<int> point_teacher;           // Grid point -> its teacher.
  std::vector<std::string> teacher_wanted;  // Each teacher's spec, unresolved.
  if (spec.teacher().has_train()) {
    for (const auto& point : grid_points) {
      v1::ExperimentSpec t = teacher_stage;
      std::vector<std::string> name_parts = {"teacher"};
      for (const Setting& setting : point) {
        if (!IsTeacherAxis(setting.path)) continue;
        // Checked above; cannot fail here.
        if (absl::Status s = SetTeacherField(setting.path, setting.value, &t);
            !s.ok())
          return s;
        name_parts.push_back(
            absl::StrCat(AxisLabel(setting.path), "=", ValueLabel(setting)));
      }
      const std::string name = absl::StrJoin(name_parts, "/");
      auto [it, added] = teacher_of.try_emplace(name, expanded.teachers.size());
      point_teacher.push_back(it->second);
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
      expanded.teachers.push_back({name, *std::move(resolved)});
    }
  } else {
    point_teacher.assign(grid_points.size(), 0);
  }

  std::set<std::string> names;
  for (int row = 0; row < rows; ++row) {
    const bool has_rows = spec.members_size() > 0;
    for (size_t g = 0; g < grid_points.size(); ++g) {
      const std::vector<Setting>& grid_point = grid_points[g];
      for (const auto& random_point : random_points) {
        for (const std::optional<int64_t>& seed : seed_list) {
          std::vector<std::string> name_parts;
          if (has_rows) name_parts.push_back(spec.members(row).name());
          v1::ExperimentSpec m = spec.base();
          m.set_kind(v1::DISTILL);
          if (has_rows) *m.mutable_losses() = spec.members(row).losses();
          m.mutable_teacher()->Clear();
          for (const auto* point : {&grid_point, &random_point}) {
            for (const Setting& setting : *point) {
              // Checked above; cannot fail here. A teacher axis names the
              // member but sets its teacher's spec.
              if (!IsTeacherAxis(setting.path)) {
                if (absl::Status s =
                        SetSpecField(setting.path, setting.value, &m);
                    !s.ok())
                  return s;
              }
              name_parts.push_back(absl::StrCat(AxisLabel(setting.path), "=",
                                                ValueLabel(setting)));
            }
          }
          if (seed) {
            m.set_seed(*seed);
            name_parts.push_back(absl::StrCat("seed=", *seed));
          }
          const std::string name = absl::StrJoin(name_parts, "/");
          if (name.size() > limits::kNameBytes) {
            return absl::InvalidArgumentError(absl::StrCat(
                "member name \"", name.substr(0, 64), "...\" is longer than ",
                limits::kNameBytes, " bytes"));
          }
          if (!names.insert(name).second) {
            return absl::InvalidArgumentError(absl::StrCat(
                "two members are both named \"", name,
                "\" (random draws that coincide: widen the range or use "
                "fewer points)"));
          }
          absl::StatusOr<v1::ExperimentSpec> resolved =
              ResolveAndValidate(m, TeacherReference::kProvided);
          if (!resolved.ok()) {
            return absl::InvalidArgumentError(absl::StrCat(
                "member \"", name, "\": ", resolved.status().message()));
          }
          expanded.members.push_back(
              {name, *std::move(resolved), point_teacher[g]});
        }
      }
    }
  }
  return expanded;
}

}  // namespace distill
