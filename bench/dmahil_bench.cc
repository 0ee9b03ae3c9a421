// dmahil-bench: how fast the oracle and the model are, relative to the machine.
//   pattern fill   vs memcpy   (the CPU writing a buffer)
//   pattern verify vs memcmp   (the checker reading a buffer)
//   virtual-board CPU write + device read through the cache and dma-ranges vs memcpy
// Each line prints MB/s of both and the ratio (ours / baseline), from the best of 5 runs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#include "common/pattern.h"
#include "common/validate.h"
#include "sim/virtual_board.h"

namespace {

double BestSeconds(const std::function<void()>& fn) {
  double best = 1e9;
  for (int i = 0; i < 5; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

void Report(const char* what, const char* baseline, size_t size, double ours, double base) {
  const double bytes = static_cast<double>(size);
  std::printf("%-34s %9.0f MB/s   %-8s %9.0f MB/s   ratio %.3f\n", what, bytes / ours / 1e6,
              baseline, bytes / base / 1e6, base / ours);
}

}  // namespace

int main(int argc, char** argv) {
  const size_t bytes = 64u << 20;
  std::vector<uint8_t> a(bytes), b(bytes);
  const dmahil::pattern::Spec spec{1, 2, 3, 0, 64};
  volatile size_t sink = 0;

  const double fill = BestSeconds([&] { dmahil::pattern::Fill(spec, a.data(), bytes); });
  const double copy = BestSeconds([&] { std::memcpy(b.data(), a.data(), bytes); });
  Report("pattern fill (64 B lines)", "memcpy", bytes, fill, copy);

  const double verify = BestSeconds(
      [&] { sink = sink + dmahil::pattern::Check(spec, a.data(), bytes, [](const auto&) {}); });
  const double cmp = BestSeconds([&] { sink = sink + std::memcmp(a.data(), b.data(), bytes); });
  Report("pattern verify", "memcmp", bytes, verify, cmp);

  const std::string board_file =
      argc > 1 ? argv[1] : std::string(DMAHIL_SOURCE_DIR) + "/boards/zcu102-virtual.textproto";
  dmahil::sim::VirtualBoard vb(dmahil::LoadBoard(board_file), {}, 1);
  const size_t dma_bytes = 8u << 20;
  const uint64_t base_addr = 0x10000000;  // dom0 RAM on the shipped boards
  const double model = BestSeconds([&] {
    vb.CpuWrite(dmahil::sim::kDom0, base_addr, a.data(), dma_bytes);
    vb.CpuCleanInvalidate(dmahil::sim::kDom0, base_addr, dma_bytes);
    uint64_t fault = 0;
    vb.device().Read(vb.dma().PhysToDma(base_addr), b.data(), dma_bytes, &fault);
  });
  const double model_base = BestSeconds([&] {
    std::memcpy(b.data(), a.data(), dma_bytes);
    std::memcpy(a.data(), b.data(), dma_bytes);
  });
  Report("model: CPU write+clean, device read", "memcpy", dma_bytes, model, model_base);
  return sink == 42 ? 1 : 0;
}
