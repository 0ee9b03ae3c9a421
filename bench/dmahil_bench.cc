// dmahil-bench: how fast the oracle and the model are, relative to the machine.
//   pattern fill   vs memcpy   (the CPU writing a buffer; memcpy into a faulted-in buffer)
//   pattern verify vs memcmp   (the checker reading a buffer; memcmp of two equal buffers)
//   virtual-board CPU write + clean/invalidate + device read vs two memcpy of that size
// Each line prints MB/s of both (median times) and the ratio (the median of baseline time /
// our time over --runs pairs of runs, baseline then ours, each after an untimed run of
// itself). Fill and
// verify are measured on every path of common/pattern_fast.h the CPU has; the floors apply to the
// default path. With --check the exit status is 1 if a ratio is below its floor.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "common/pattern.h"
#include "common/pattern_fast.h"
#include "common/validate.h"
#include "sim/virtual_board.h"

namespace {

namespace pattern = dmahil::pattern;

constexpr double kFillFloor = 0.8;    // fill / memcpy
constexpr double kVerifyFloor = 0.8;  // verify / memcmp
constexpr double kModelFloor = 0.1;   // model / memcpy

bool g_wall_clock = false;  // --wall-clock

// Seconds on the clock the bench measures with: this thread's CPU time (the machine may
// be shared: wall time would charge other processes' time slices to the longer
// measurements), or wall time with --wall-clock.
double Now() {
  if (g_wall_clock)
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double Seconds(const std::function<void()>& fn) {
  const double t0 = Now();
  fn();
  return Now() - t0;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// A measurement against its baseline: `runs` pairs (baseline, then ours), so that both
// of a pair see the same load on a shared machine. Each timed run follows an untimed run
// of the same function, so each is timed in its own steady state (its data as warm as
// back-to-back runs leave it), never in the state the other one left.
struct Pair {
  double base = 0;   // median seconds of the baseline
  double ours = 0;   // median seconds of ours
  double ratio = 0;  // median of the pairs' base / ours
};

Pair Measure(int runs, const std::function<void()>& base, const std::function<void()>& ours) {
  std::vector<double> b, o, r;
  for (int i = 0; i < runs; ++i) {
    base();
    b.push_back(Seconds(base));
    ours();
    o.push_back(Seconds(ours));
    r.push_back(b.back() / o.back());
  }
  return {Median(b), Median(o), Median(r)};
}

// One result line; returns false if floor > 0 and the ratio is below it.
bool Report(const std::string& what, const char* baseline, size_t bytes, const Pair& m,
            double floor) {
  const bool ok = floor <= 0 || m.ratio >= floor;
  const std::string verdict =
      floor <= 0 ? "" : fmt::format("floor {:.2f}  {}", floor, ok ? "ok" : "BELOW");
  fmt::print("{:<40} {:>8.0f} MB/s   {:<7} {:>8.0f} MB/s   ratio {:6.3f}   {}\n", what,
             static_cast<double>(bytes) / m.ours / 1e6, baseline,
             static_cast<double>(bytes) / m.base / 1e6, m.ratio, verdict);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dmahil-bench: pattern fill/verify and the virtual board against memcpy/memcmp"};
  bool check = false;
  int runs = 7;
  size_t mib = 64;
  size_t model_mib = 8;
  std::string board_file = std::string(DMAHIL_SOURCE_DIR) + "/boards/zcu102-virtual.textproto";
  app.add_flag("--check", check,
               "exit 1 if a ratio is below its floor (fill 0.8, verify 0.8, model 0.1)");
  app.add_option("--runs", runs, "timed runs per measurement; the median is reported")
      ->check(CLI::Range(1, 1000));
  app.add_option("--mib", mib, "pattern buffer size, MiB")->check(CLI::Range(1, 4096));
  app.add_option("--model-mib", model_mib, "virtual-board transfer size, MiB (inside dom0 RAM)")
      ->check(CLI::Range(1, 256));
  app.add_flag("--wall-clock", g_wall_clock,
               "time with the wall clock, not this thread's CPU time");
  app.add_option("board", board_file, "virtual board file for the model")->check(CLI::ExistingFile);
  CLI11_PARSE(app, argc, argv);

  const size_t bytes = mib << 20;
  const pattern::Spec spec{1, 2, 3, 0, 64};
  const size_t lines = bytes / spec.line_size;
  std::vector<uint8_t> a(bytes), b(bytes);
  std::memset(a.data(), 1, bytes);  // fault both buffers in before anything is timed
  std::memset(b.data(), 2, bytes);

  const pattern::Path best = pattern::BestPath();
  std::string paths;
  for (pattern::Path p : pattern::AvailablePaths())
    paths += fmt::format(" {}", pattern::PathName(p));
  fmt::print(
      "dmahil-bench: {} MiB buffers, model {} MiB, median of {} runs ({}); pattern path {} "
      "(available:{})\n",
      mib, model_mib, runs, g_wall_clock ? "wall clock" : "thread CPU time",
      pattern::PathName(best), paths);

  bool ok = true;
  pattern::Fill(spec, a.data(), bytes);
  std::memcpy(b.data(), a.data(), bytes);
  const auto copy = [&] { std::memcpy(b.data(), a.data(), bytes); };
  volatile int cmp_sink = 0;
  const auto cmp = [&] { cmp_sink = cmp_sink + std::memcmp(a.data(), b.data(), bytes); };
  // The default path last, so that its lines are the ones a reader looks at.
  std::vector<pattern::Path> order;
  for (pattern::Path p : pattern::AvailablePaths())
    if (p != best) order.push_back(p);
  order.push_back(best);
  for (pattern::Path p : order) {
    const bool floors = p == best;
    const Pair fill = Measure(runs, copy, [&] { pattern::FastFill(spec, a.data(), bytes, p); });
    ok &= Report(fmt::format("pattern fill {} (64 B lines)", pattern::PathName(p)), "memcpy", bytes,
                 fill, floors ? kFillFloor : 0);
    size_t good = 0;
    const Pair verify = Measure(runs, cmp, [&] {
      good = pattern::FastCheck(
          spec, a.data(), bytes, [](const pattern::Finding&) {}, p);
    });
    if (good != lines || cmp_sink != 0) {
      fmt::print(stderr, "pattern verify {}: {} of {} lines ok after a fill (memcmp {})\n",
                 pattern::PathName(p), good, lines, static_cast<int>(cmp_sink));
      return 2;
    }
    ok &= Report(fmt::format("pattern verify {}", pattern::PathName(p)), "memcmp", bytes, verify,
                 floors ? kVerifyFloor : 0);
  }

  dmahil::sim::VirtualBoard vb(dmahil::LoadBoard(board_file), {}, 1);
  const size_t dma_bytes = model_mib << 20;
  a.resize(std::max(bytes, dma_bytes));
  b.resize(a.size());
  pattern::FastFill(spec, a.data(), dma_bytes);
  const uint64_t base_addr = 0x10000000;                     // dom0 RAM on the shipped boards
  std::vector<double> phase_write, phase_clean, phase_read;  // per run, for the detail line
  const auto copy_twice = [&] {
    std::memcpy(b.data(), a.data(), dma_bytes);
    std::memcpy(a.data(), b.data(), dma_bytes);
  };
  const Pair model = Measure(runs, copy_twice, [&] {
    const double t0 = Now();
    vb.CpuWrite(dmahil::sim::kDom0, base_addr, a.data(), dma_bytes);
    const double t1 = Now();
    vb.CpuCleanInvalidate(dmahil::sim::kDom0, base_addr, dma_bytes);
    const double t2 = Now();
    uint64_t fault = 0;
    vb.device().Read(vb.dma().PhysToDma(base_addr), b.data(), dma_bytes, &fault);
    phase_write.push_back(t1 - t0);
    phase_clean.push_back(t2 - t1);
    phase_read.push_back(Now() - t2);
  });
  if (std::memcmp(a.data(), b.data(), dma_bytes) != 0) {
    fmt::print(stderr, "model: the device did not read what the CPU wrote and cleaned\n");
    return 2;
  }
  ok &= Report("model: CPU write+clean, device read", "memcpy", dma_bytes, model, kModelFloor);
  const auto median_ms = [](const std::vector<double>& t) { return Median(t) * 1e3; };
  fmt::print(
      "  model phases (median ms): CPU write {:.2f}, clean+invalidate {:.2f}, device read {:.2f}\n",
      median_ms(phase_write), median_ms(phase_clean), median_ms(phase_read));
  return check && !ok ? 1 : 0;
}
