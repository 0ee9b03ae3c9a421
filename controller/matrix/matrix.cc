#include "controller/matrix/matrix.h"

#include <algorithm>
#include <chrono>
#include <numeric>
#include <regex>
#include <set>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <google/protobuf/text_format.h>

#include "common/config.h"
#include "common/farm_expectations.h"
#include "common/fault_catalogue.h"
#include "common/validate.h"
#include "controller/matrix/matrix_report.h"
#include "controller/report/names.h"
#include "controller/report/results_json.h"
#include "controller/report/write_file.h"
#include "controller/run/board_kind.h"
#include "controller/run/campaign.h"

namespace dmahil::matrix {
namespace {

namespace fs = std::filesystem;

std::string Join(const std::vector<std::string>& lines) {
  std::string all;
  for (const std::string& l : lines) all += (all.empty() ? "" : "\n") + l;
  return all;
}

// The *.textproto files of `dir`, sorted by file name.
std::vector<fs::path> TextprotoFiles(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const fs::directory_entry& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".textproto") files.push_back(e.path());
  std::sort(files.begin(), files.end(), [](const fs::path& a, const fs::path& b) {
    return a.filename().string() < b.filename().string();
  });
  return files;
}

// What one board run says about its fault (or, for kNoFault, about false positives).
struct RunOutcome {
  bool detected = false;         // some FAIL (clean: some FAIL or mismatching line)
  bool caught = false;           // some FAIL with the expected diagnosis (fault runs)
  bool wrong_diagnosis = false;  // some FAIL with another diagnosis (fault runs)
  bool error = false;            // some ERROR / unspecified result
};

RunOutcome Classify(const std::vector<v1::FixtureResult>& results, const std::string& expected,
                    bool clean) {
  RunOutcome o;
  for (const v1::FixtureResult& r : results) {
    const v1::Verdict v = report::EffectiveVerdict(r.verdict());
    if (v == v1::VERDICT_ERROR) o.error = true;
    if (clean && r.mismatching_lines() > 0) o.detected = true;
    if (v != v1::VERDICT_FAIL) continue;
    o.detected = true;
    if (clean) continue;
    if (report::DiagnosisName(r.diagnosis()) == expected)
      o.caught = true;
    else
      o.wrong_diagnosis = true;
  }
  return o;
}

// `detail` with the port of every "<IPv4>:<port>" endpoint replaced by "<port>": agents
// listen on ephemeral loopback ports, which would make reports differ between runs.
std::string MaskPorts(const std::string& detail) {
  static const std::regex kEndpoint(R"((\b\d{1,3}(?:\.\d{1,3}){3}):\d+\b)");
  return std::regex_replace(detail, kEndpoint, "$1:<port>");
}

const std::string& ExpectedDiagnosis(const MatrixPlan& plan, const std::string& fault) {
  static const std::string kNone;
  for (const PlanFault& f : plan.faults)
    if (f.id == fault) return f.diagnosis;
  return kNone;
}

}  // namespace

MatrixPlan MakePlan(const MatrixRequest& request) {
  MatrixPlan plan;
  plan.seed = request.seed;
  plan.seeds = request.seeds;
  std::vector<std::string> errors;
  if (request.seeds == 0) errors.push_back("dmahil matrix: --seeds must be at least 1");

  if (request.board_files.empty())
    errors.push_back("dmahil matrix: give at least one --board <board file>");
  std::map<std::string, fs::path> board_names;
  for (const fs::path& file : request.board_files) {
    PlanBoard b;
    b.file = file;
    SourceMap source;
    try {
      b.board = controller::LoadBoardWithKind(file, &source);
    } catch (const ConfigError& e) {
      errors.push_back(e.what());
      continue;
    }
    if (const controller::BoardKindTraits traits = controller::TraitsOf(b.board);
        !traits.runs_model) {
      errors.push_back(fmt::format(
          "{}: board kind {}: the matrix injects faults into the model, which {} boards do not "
          "run",
          source.Where("kind"), v1::BoardKind_Name(b.board.kind()), traits.name));
      continue;
    }
    b.name = b.board.name().empty() ? file.stem().string() : b.board.name();
    if (!IsFileName(b.name)) {  // the board's runs are folders <out>/runs/seed-N/<name>
      errors.push_back(
          fmt::format("{}: board name \"{}\" (from the file name) must be usable as a folder name: "
                      "1..{} letters, digits, '.', '_', '+' or '-'; set name: in the file",
                      source.Where("name"), b.name, kMaxNameBytes));
      continue;
    }
    if (auto [it, fresh] = board_names.emplace(b.name, file); !fresh) {
      errors.push_back(
          fmt::format("{}: board name \"{}\" is also the name of {}; each --board "
                      "must name a different board",
                      source.Where("name"), b.name, it->second.string()));
      continue;
    }
    plan.boards.push_back(std::move(b));
  }

  std::vector<fs::path> fixture_files;
  for (const fs::path& p : request.fixture_paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      const auto found = TextprotoFiles(p);
      if (found.empty())
        errors.push_back(
            fmt::format("{}: no *.textproto fixture files in this folder", p.string()));
      fixture_files.insert(fixture_files.end(), found.begin(), found.end());
    } else {
      fixture_files.push_back(p);
    }
  }
  if (request.fixture_paths.empty())
    errors.push_back("dmahil matrix: give at least one --fixtures <file or folder>");
  std::map<std::string, fs::path> fixture_names;
  for (const fs::path& file : fixture_files) {
    SourceMap source;
    PlanFixture f;
    f.file = file;
    try {
      f.name = LoadFixture(file, &source).name();
    } catch (const ConfigError& e) {
      errors.push_back(e.what());
      continue;
    }
    if (auto [it, fresh] = fixture_names.emplace(f.name, file); !fresh) {
      errors.push_back(
          fmt::format("{}: fixture name \"{}\" is also used by {}; fixture names "
                      "must be unique in a matrix",
                      source.Where("name"), f.name, it->second.string()));
      continue;
    }
    plan.fixtures.push_back(std::move(f));
  }

  std::set<std::string> wanted;
  for (const std::string& id : request.faults) {
    if (id == kNoFault) continue;  // clean runs are always part of the matrix
    const FaultInfo* f = FindFault(id);
    if (f == nullptr) {
      std::vector<std::string_view> known;
      for (const FaultInfo& k : FaultCatalogue())
        if (k.modelled()) known.push_back(k.name);
      errors.push_back(
          fmt::format("dmahil matrix: --faults: unknown fault \"{}\"; the modelled faults are: {}",
                      id, fmt::join(known, " ")));
    } else if (!f->modelled()) {
      errors.push_back(fmt::format(
          "dmahil matrix: --faults: fault \"{}\" is catalogued but not modelled yet, so it "
          "cannot be injected",
          id));
    } else {
      wanted.insert(id);
    }
  }
  const bool all_faults = request.faults.empty();
  for (const FaultInfo& f : FaultCatalogue()) {
    if (!f.modelled()) {
      plan.not_modelled.emplace_back(f.name);
    } else if (all_faults || wanted.count(std::string(f.name)) != 0) {
      // The matrix runs virtual boards: the diagnosis of a board with caches.
      plan.faults.push_back(
          {std::string(f.name), DiagnosisKebabName(f.Diagnosis(BoardClass::kCached))});
    }
  }
  if (!errors.empty()) throw ConfigError(Join(errors));

  for (const PlanBoard& b : plan.boards) {
    std::vector<std::string> row;
    for (const PlanFault& f : plan.faults) row.push_back(FindFault(f.id)->cannot_manifest(b.board));
    plan.cannot_manifest.push_back(std::move(row));
  }
  return plan;
}

v1::Farm MatrixFarm(const MatrixPlan& plan, std::vector<std::pair<size_t, std::string>>* runs) {
  v1::Farm farm;
  farm.set_name("matrix");
  farm.set_seed(plan.seed);
  for (const PlanFixture& f : plan.fixtures)
    farm.add_fixture_file(fs::absolute(f.file).lexically_normal().string());
  if (runs != nullptr) runs->clear();
  for (size_t b = 0; b < plan.boards.size(); ++b) {
    const PlanBoard& pb = plan.boards[b];
    const std::string file = fs::absolute(pb.file).lexically_normal().string();
    v1::FarmBoard* clean = farm.add_board();
    clean->set_name(pb.name);
    clean->set_board_file(file);
    if (runs != nullptr) runs->emplace_back(b, std::string(kNoFault));
    for (size_t f = 0; f < plan.faults.size(); ++f) {
      if (!plan.cannot_manifest[b][f].empty()) continue;
      v1::FarmBoard* e = farm.add_board();
      e->set_name(fmt::format("{}+{}", pb.name, plan.faults[f].id));
      e->set_board_file(file);
      e->add_faults(plan.faults[f].id);
      e->set_expect(plan.faults[f].diagnosis);
      if (runs != nullptr) runs->emplace_back(b, plan.faults[f].id);
    }
  }
  return farm;
}

std::vector<BoardRun> RunMatrix(const MatrixPlan& plan, const RunnerOptions& options) {
  fs::create_directories(options.out_dir);
  std::vector<std::pair<size_t, std::string>> layout;
  const v1::Farm farm_msg = MatrixFarm(plan, &layout);
  std::string text;
  google::protobuf::TextFormat::PrintToString(farm_msg, &text);
  const fs::path farm_file = options.out_dir / "farm.textproto";
  report::WriteFileAtomically(
      farm_file,
      "# proto-file: proto/dmahil/v1/farm.proto\n# proto-message: dmahil.v1.Farm\n#\n"
      "# Written by `dmahil matrix`: every board run of one seed. Reproduce seed S with\n"
      "#   dmahil run --farm <this file> --seed S\n" +
          text);
  // The farm in memory, from what the plan loaded and validated; farm.textproto above is
  // only for reproducing one seed with `dmahil run`.
  LoadedFarm farm;
  farm.file = farm_file;
  farm.farm = farm_msg;
  size_t entry = 0;
  for (const auto& [b, fault] : layout) {
    LoadedBoard lb;
    lb.entry = farm_msg.board(static_cast<int>(entry++));
    lb.file = fs::absolute(plan.boards[b].file).lexically_normal();
    lb.board = plan.boards[b].board;
    farm.boards.push_back(std::move(lb));
  }
  for (const PlanFixture& f : plan.fixtures) {
    LoadedFixture lf;
    lf.file = fs::absolute(f.file).lexically_normal();
    lf.fixture = LoadFixture(lf.file, &lf.source);
    farm.fixtures.push_back(std::move(lf));
  }
  controller::ValidateFarmExpectations(farm);

  const fs::path runs_dir = options.out_dir / "runs";
  fs::remove_all(runs_dir);
  controller::CampaignOptions copt;
  copt.vboard = options.vboard;
  copt.boot_timeout_ms = options.boot_timeout_ms;
  copt.parallel =
      options.parallel != 0 ? options.parallel : std::max(1u, std::thread::hardware_concurrency());

  std::map<std::string, size_t> index;  // farm board name -> layout index
  for (size_t i = 0; i < farm.boards.size(); ++i) index[farm.boards[i].entry.name()] = i;

  std::vector<BoardRun> all;
  all.reserve(size_t{plan.seeds} * layout.size());
  for (uint32_t s = 0; s < plan.seeds; ++s) {
    copt.seed = plan.RunSeed(s);
    copt.out_dir = runs_dir / fmt::format("seed-{}", copt.seed);
    const std::vector<v1::FixtureResult> results = controller::RunCampaign(farm, copt);

    std::vector<BoardRun> runs(layout.size());
    for (size_t i = 0; i < layout.size(); ++i) {
      runs[i].board = layout[i].first;
      runs[i].fault = layout[i].second;
      runs[i].run_seed = copt.seed;
    }
    for (const v1::FixtureResult& r : results) {
      const auto it = index.find(r.board());
      if (it == index.end())
        throw std::logic_error(fmt::format("campaign returned an unknown board \"{}\"", r.board()));
      runs[it->second].results.push_back(r);
    }

    bool keep_seed = false;
    for (size_t i = 0; i < layout.size(); ++i) {
      const bool clean = runs[i].fault == kNoFault;
      const RunOutcome o = Classify(runs[i].results, ExpectedDiagnosis(plan, runs[i].fault), clean);
      const bool notable = o.error || (clean ? o.detected : (!o.caught || o.wrong_diagnosis));
      keep_seed |= notable;
      if (!notable) fs::remove_all(report::OutputChild(copt.out_dir, farm.boards[i].entry.name()));
    }
    if (keep_seed)
      report::WriteResultsJson(copt.out_dir / "results.json", results,
                               report::RunInfo{copt.seed, farm.farm.name()});
    else
      fs::remove_all(copt.out_dir);

    for (BoardRun& run : runs) {
      for (v1::FixtureResult& r : run.results) {
        r.clear_segments();
        r.clear_line_map();
      }
      all.push_back(std::move(run));
    }
    if (options.progress) options.progress(s + 1, plan.seeds);
  }
  std::error_code ec;
  fs::remove(runs_dir, ec);  // only succeeds if no seed was kept
  return all;
}

std::string_view RowStatusName(RowStatus status) {
  switch (status) {
    case RowStatus::kClean:
      return "clean";
    case RowStatus::kFalsePositive:
      return "false-positive";
    case RowStatus::kDetected:
      return "detected";
    case RowStatus::kWrongDiagnosis:
      return "wrong-diagnosis";
    case RowStatus::kWeak:
      return "weak";
    case RowStatus::kMissed:
      return "missed";
    case RowStatus::kNotApplicable:
      return "n/a";
  }
  return "missed";
}

double Cell::MedianIterations() const {
  if (failed_iterations.empty()) return -1;
  std::vector<uint32_t> v = failed_iterations;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2]
                    : (static_cast<double>(v[n / 2 - 1]) + static_cast<double>(v[n / 2])) / 2;
}

Matrix Aggregate(const MatrixPlan& plan, const std::vector<BoardRun>& runs) {
  const size_t per_board = 1 + plan.faults.size();
  Matrix m;
  for (size_t b = 0; b < plan.boards.size(); ++b)
    for (size_t f = 0; f < per_board; ++f) {
      Row row;
      row.board = b;
      row.fault = f == 0 ? std::string(kNoFault) : plan.faults[f - 1].id;
      row.expected = f == 0 ? "" : plan.faults[f - 1].diagnosis;
      if (f > 0) row.cannot_manifest = plan.cannot_manifest.at(b).at(f - 1);
      if (row.cannot_manifest.empty()) row.cells.resize(plan.fixtures.size());
      m.rows.push_back(std::move(row));
    }

  // Aggregate in (seed, board, fault) order whatever the input order, so that everything
  // order-dependent (first error) is deterministic.
  std::map<std::string, size_t> fault_index{{std::string(kNoFault), 0}};
  for (size_t f = 0; f < plan.faults.size(); ++f) fault_index[plan.faults[f].id] = f + 1;
  std::vector<size_t> order(runs.size());
  std::iota(order.begin(), order.end(), size_t{0});
  auto row_of = [&](const BoardRun& r) {
    const auto it = fault_index.find(r.fault);
    if (r.board >= plan.boards.size() || it == fault_index.end())
      throw std::invalid_argument(
          fmt::format("board run (board {}, fault \"{}\") is not in the plan", r.board, r.fault));
    return r.board * per_board + it->second;
  };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::make_pair(runs[a].run_seed, row_of(runs[a])) <
           std::make_pair(runs[b].run_seed, row_of(runs[b]));
  });

  for (size_t i : order) {
    const BoardRun& run = runs[i];
    Row& row = m.rows[row_of(run)];
    const std::string run_name = fmt::format("{}+{}", plan.boards[run.board].name, run.fault);
    if (!row.cannot_manifest.empty())
      throw std::invalid_argument(fmt::format(
          "board run {}: the fault cannot manifest there, so it is never run", run_name));
    if (run.results.size() != plan.fixtures.size())
      throw std::invalid_argument(fmt::format("board run {} seed {}: {} results for {} fixtures",
                                              run_name, run.run_seed, run.results.size(),
                                              plan.fixtures.size()));
    const bool clean = run.fault == kNoFault;
    for (size_t x = 0; x < plan.fixtures.size(); ++x) {
      const v1::FixtureResult& r = run.results[x];
      if (r.fixture() != plan.fixtures[x].name)
        throw std::invalid_argument(
            fmt::format("board run {} seed {}: result {} is fixture "
                        "\"{}\", the plan has \"{}\"",
                        run_name, run.run_seed, x, r.fixture(), plan.fixtures[x].name));
      Cell& c = row.cells[x];
      ++c.runs;
      c.mismatching_lines += r.mismatching_lines();
      c.lines_checked += r.lines_checked();
      const v1::Verdict v = report::EffectiveVerdict(r.verdict());
      if (v == v1::VERDICT_NOT_APPLICABLE) {
        ++c.not_applicable;
        if (c.not_applicable_reason.empty()) c.not_applicable_reason = r.detail();
      } else if (v == v1::VERDICT_ERROR) {
        ++c.errors;
        ++m.error_results;
        ++m.error_details[MaskPorts(r.detail())];
        if (c.first_error.empty())
          c.first_error = fmt::format("seed {}: {}", run.run_seed, MaskPorts(r.detail()));
        if (m.first_error.empty())
          m.first_error = fmt::format("{} seed {} / {}: {}", run_name, run.run_seed, r.fixture(),
                                      MaskPorts(r.detail()));
      } else if (v == v1::VERDICT_FAIL) {
        ++c.detected;
        c.failed_iterations.push_back(r.failed_iteration());
        const std::string diag(report::DiagnosisName(r.diagnosis()));
        ++c.diagnoses[diag];
        if (!clean) ++(diag == row.expected ? c.right_diagnosis : c.wrong_diagnosis);
      }
      if (clean) {
        m.clean.mismatching_lines += r.mismatching_lines();
        m.clean.lines_checked += r.lines_checked();
        if (v == v1::VERDICT_FAIL || r.mismatching_lines() > 0) ++m.clean.false_positive_results;
      }
    }
    const RunOutcome o = Classify(run.results, row.expected, clean);
    ++row.runs;
    row.detected_runs += o.detected ? 1 : 0;
    row.caught_runs += o.caught ? 1 : 0;
    if (o.error) {
      ++row.error_runs;
      row.error_seeds.push_back(run.run_seed);
    }
    if (clean ? o.detected : !o.caught) row.missed_seeds.push_back(run.run_seed);
    if (clean) {
      ++m.clean.runs;
      m.clean.false_positive_runs += o.detected ? 1 : 0;
    }
  }

  for (Row& row : m.rows) {
    const uint64_t n = row.runs;
    if (!row.cannot_manifest.empty())
      row.status = RowStatus::kNotApplicable;
    else if (row.fault == kNoFault)
      row.status = row.detected_runs == 0 ? RowStatus::kClean : RowStatus::kFalsePositive;
    else if (n > 0 && row.caught_runs * 100ULL >= kDetectedPercent * n)
      row.status = RowStatus::kDetected;
    else if (n > 0 && row.detected_runs * 100ULL >= kDetectedPercent * n)
      row.status = RowStatus::kWrongDiagnosis;
    else if (row.detected_runs > 0)
      row.status = RowStatus::kWeak;
    else
      row.status = RowStatus::kMissed;
  }
  return m;
}

int ExitCode(const Matrix& matrix) {
  if (matrix.error_results > 0) return 2;
  if (matrix.clean.false_positive_runs > 0 || matrix.clean.mismatching_lines > 0) return 1;
  for (const Row& row : matrix.rows) {
    if (row.status == RowStatus::kNotApplicable || row.status == RowStatus::kClean) continue;
    if (row.status != RowStatus::kDetected) return 1;
  }
  return 0;
}

int MatrixCommand(const CommandLine& command, std::ostream& out, std::ostream& err) {
  const MatrixRequest& req = command.request;
  // The seed goes out before anything runs, so even a run that hangs can be reproduced.
  err << fmt::format("dmahil matrix: seed {} ({} seeds: run i uses seed {} + i)\n", req.seed,
                     req.seeds, req.seed)
      << std::flush;
  MatrixPlan plan;
  try {
    plan = MakePlan(req);
  } catch (const ConfigError& e) {
    err << e.what() << "\n";
    return 2;
  }
  size_t runs_per_seed = 0;
  for (size_t b = 0; b < plan.boards.size(); ++b) {
    ++runs_per_seed;
    for (const std::string& why : plan.cannot_manifest[b]) runs_per_seed += why.empty() ? 1 : 0;
  }
  err << fmt::format(
             "dmahil matrix: {} boards x {} fixtures x (clean + {} faults): {} board runs per "
             "seed, {} in all\n",
             plan.boards.size(), plan.fixtures.size(), plan.faults.size(), runs_per_seed,
             runs_per_seed * plan.seeds)
      << std::flush;

  RunnerOptions ropt;
  ropt.out_dir = command.out_dir;
  ropt.vboard = command.vboard;
  ropt.parallel = command.parallel;
  ropt.boot_timeout_ms = command.boot_timeout_ms;
  const auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  const uint32_t step = std::max(1u, plan.seeds / 10);
  ropt.progress = [&](uint32_t done, uint32_t total) {
    if (done % step == 0 || done == total)
      err << fmt::format("dmahil matrix: {}/{} seeds done, {:.1f} s\n", done, total, elapsed())
          << std::flush;
  };
  std::vector<BoardRun> runs;
  try {
    runs = RunMatrix(plan, ropt);
  } catch (const std::exception& e) {  // the farm or the out folder could not be written
    err << "dmahil matrix: " << e.what() << "\n";
    return 2;
  }
  const double seconds = elapsed();
  const Matrix m = Aggregate(plan, runs);
  const int code = ExitCode(m);
  try {
    WriteMatrixJson(command.out_dir / "matrix.json", plan, m);
  } catch (const std::exception& e) {
    err << "dmahil matrix: " << e.what() << "\n";
    return 2;
  }
  TableOptions topt;
  topt.farm_file = (command.out_dir / "farm.textproto").string();
  out << RenderMatrixTable(plan, m, topt);
  out << fmt::format(
      "wall time {:.1f} s for {} board runs ({:.3f} s of wall time per board run, {} at once)\n",
      seconds, runs.size(), runs.empty() ? 0.0 : seconds / static_cast<double>(runs.size()),
      command.parallel != 0 ? command.parallel : std::max(1u, std::thread::hardware_concurrency()));
  out << fmt::format(
      "reports: {}/matrix.json; farm: {}/farm.textproto{}\n", command.out_dir.string(),
      command.out_dir.string(),
      fs::exists(command.out_dir / "runs")
          ? fmt::format("; board runs to look at: {}/runs/", command.out_dir.string())
          : "");
  return code;
}

}  // namespace dmahil::matrix
