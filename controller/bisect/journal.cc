#include "controller/bisect/journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include <fmt/format.h>

#include "controller/bisect/report.h"

namespace dmahil::bisect {
namespace {

/// The first key whose value differs between two headers, for the error message.
std::string FirstDifference(const nlohmann::json& a, const nlohmann::json& b) {
  for (const auto& [key, value] : a.items())
    if (!b.contains(key) || b.at(key) != value) return key;
  for (const auto& [key, value] : b.items())
    if (!a.contains(key)) return key;
  return "?";
}

}  // namespace

Journal::Journal(const std::filesystem::path& path, const nlohmann::json& header) {
  // A journal without one complete line (killed while writing the header) holds nothing.
  const bool resume = Load(path, header);
  // "e": O_CLOEXEC, so hooks and boards started later do not inherit the journal.
  file_ = std::fopen(path.c_str(), resume ? "ae" : "we");
  if (file_ == nullptr)
    throw BisectError(
        fmt::format("cannot open journal {}: {}", path.string(), std::strerror(errno)));
  if (resume) return;
  Append(header);
  // The new file's folder entry must survive a power cut too.
  const std::string dir = path.has_parent_path() ? path.parent_path().string() : ".";
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

Journal::~Journal() {
  if (file_ != nullptr) std::fclose(file_);
}

bool Journal::Load(const std::filesystem::path& path, const nlohmann::json& header) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::vector<std::string> lines;
  std::string line;
  uint64_t good_bytes = 0;
  bool torn = false;
  while (std::getline(in, line)) {
    if (in.eof()) {  // no '\n' after it: written in part when the controller died
      torn = true;
      break;
    }
    lines.push_back(line);
  }
  for (size_t i = 0; i < lines.size(); ++i) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(lines[i]);
    } catch (const nlohmann::json::exception& e) {
      throw BisectError(
          fmt::format("{}:{}: not a journal record: {}", path.string(), i + 1, e.what()));
    }
    good_bytes += lines[i].size() + 1;
    if (!j.is_object())
      throw BisectError(
          fmt::format("{}:{}: not a journal record (not a JSON object)", path.string(), i + 1));
    const std::string type = j.value("type", "");
    if (i == 0) {
      if (type != "header" || j != header)
        throw BisectError(fmt::format(
            "{} belongs to another bisection ({} differs): use another --out, or remove it to "
            "start again",
            path.string(), type != "header" ? "type" : FirstDifference(j, header)));
      continue;
    }
    try {
      if (type == "prepared") {
        prepared_.emplace(
            j.at("rev").get<std::string>(),
            Preparation{j.at("skip").get<bool>() ? Prepared::kSkip : Prepared::kReady,
                        j.value("build_ms", uint64_t{0}), j.value("deploy_ms", uint64_t{0})});
      } else if (type == "step") {
        steps_.insert(
            {j.at("rev").get<std::string>(), j.at("kind").get<std::string>() == "measure"});
      } else if (type == "run") {
        RunOutcome out;
        out.failures = j.at("failures").get<std::vector<std::string>>();
        out.board_ms = j.at("board_ms").get<uint64_t>();
        runs_[{j.at("rev").get<std::string>(), j.at("run").get<uint32_t>()}] = out;
        ++loaded_runs_;
      }
    } catch (const nlohmann::json::exception& e) {
      throw BisectError(
          fmt::format("{}:{}: bad {} record: {}", path.string(), i + 1, type, e.what()));
    }
  }
  if (lines.empty()) return false;
  if (torn) std::filesystem::resize_file(path, good_bytes);
  return true;
}

std::optional<Preparation> Journal::FindPrepared(const std::string& rev) const {
  const auto it = prepared_.find(rev);
  if (it == prepared_.end()) return std::nullopt;
  return it->second;
}

std::optional<RunOutcome> Journal::FindRun(const std::string& rev, uint32_t run_index) const {
  const auto it = runs_.find({rev, run_index});
  if (it == runs_.end()) return std::nullopt;
  return it->second;
}

void Journal::Append(const nlohmann::json& record) {
  const std::string line = record.dump() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0 ||
      fsync(fileno(file_)) != 0)
    throw BisectError(fmt::format("cannot write the journal: {}", std::strerror(errno)));
}

void Journal::AppendPrepared(const std::string& rev, const Preparation& prepared) {
  prepared_.emplace(rev, prepared);
  Append({{"type", "prepared"},
          {"rev", rev},
          {"skip", prepared.skip()},
          {"build_ms", prepared.build_ms},
          {"deploy_ms", prepared.deploy_ms}});
}

void Journal::AppendRun(const std::string& rev, uint32_t run_index, const RunOutcome& outcome) {
  runs_[{rev, run_index}] = outcome;
  Append({{"type", "run"},
          {"rev", rev},
          {"run", run_index},
          {"failures", outcome.failures},
          {"board_ms", outcome.board_ms}});
}

void Journal::AppendStep(const StepRecord& step) {
  const bool measure = step.kind == StepKind::kMeasure;
  // A resumed bisection finishes its replayed steps again: log each step once.
  if (!steps_.insert({step.rev, measure}).second) return;
  Append({{"type", "step"},
          {"kind", measure ? "measure" : "test"},
          {"index", step.index},
          {"rev", step.rev},
          {"alpha", step.alpha},
          {"planned", step.planned},
          {"miss", step.miss},
          {"runs", step.runs},
          {"detections", step.detections},
          {"verdict", VerdictName(step.verdict)},
          {"capped", step.capped},
          {"board_ms", step.board_ms},
          {"build_ms", step.build_ms},
          {"deploy_ms", step.deploy_ms},
          {"diagnosis", step.diagnosis},
          {"note", step.note}});
}

Preparation ReplayRunner::Prepare(const std::string& rev) {
  if (const auto done = journal_.FindPrepared(rev)) {
    if (!done->skip()) prepared_from_journal_ = rev;
    return *done;
  }
  const Preparation p = live_.Prepare(rev);
  prepared_from_journal_.clear();
  journal_.AppendPrepared(rev, p);
  return p;
}

RunOutcome ReplayRunner::Run(const std::string& rev, uint32_t run_index) {
  if (const auto done = journal_.FindRun(rev, run_index)) {
    ++replayed_runs_;
    return *done;
  }
  if (prepared_from_journal_ == rev) {
    // Resumed in the middle of this revision's step: the board may hold anything now.
    const Preparation again = live_.Prepare(rev);
    journal_.AppendPrepared(rev, again);
    if (again.skip())
      throw BisectError(fmt::format("{} built before but its build hook now exits 125", rev));
    prepared_from_journal_.clear();
  }
  const RunOutcome out = live_.Run(rev, run_index);
  ++live_runs_;
  journal_.AppendRun(rev, run_index, out);
  return out;
}

}  // namespace dmahil::bisect
