// BlockDevice against a regular file on the build machine's file system (O_DIRECT works
// on ext4 and xfs): the bytes a pwritev/preadv moved are checked in the file itself.
#include "agent/linux_xen/block_device.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace dmahil::agent::linux_xen {
namespace {

namespace fs = std::filesystem;

class BlockDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/var/tmp/dmahil-block-XXXXXX";  // a disk file system: tmpfs has no O_DIRECT
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    disk_ = dir_ / "disk.img";
    std::ofstream(disk_, std::ios::binary).close();
    fs::resize_file(disk_, 1 << 20);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Slurp(uint64_t offset, uint64_t n) const {
    std::ifstream f(disk_, std::ios::binary);
    f.seekg(static_cast<std::streamoff>(offset));
    std::string s(n, '\0');
    f.read(s.data(), static_cast<std::streamsize>(n));
    return s;
  }
  // A page-aligned buffer (O_DIRECT), freed by the fixture.
  uint8_t* Pages(size_t n) {
    void* p = ::mmap(nullptr, n * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT_NE(p, MAP_FAILED);
    maps_.emplace_back(p, n * 4096);
    return static_cast<uint8_t*>(p);
  }
  void FreePages() {
    for (auto [p, n] : maps_) ::munmap(p, n);
    maps_.clear();
  }

  fs::path dir_;
  fs::path disk_;
  std::vector<std::pair<void*, size_t>> maps_;
};

TEST_F(BlockDeviceTest, WritesAndReadsTheBytesAtTheDiskOffsetInEveryIovecShape) {
  auto dev = BlockDevice::Open(disk_.string());
  EXPECT_EQ(dev->bytes(), 1u << 20);
  EXPECT_EQ(dev->sector_size(), 4096u);
  uint8_t* buf = Pages(4);
  for (uint32_t segments : {1u, 3u, 4u}) {
    for (size_t i = 0; i < 4 * 4096; ++i) buf[i] = static_cast<uint8_t>(i * 7 + segments);
    uint64_t us = ~uint64_t{0};
    ASSERT_TRUE(dev->Transfer(true, buf, 4 * 4096, 0x10000, segments, &us).ok());
    EXPECT_NE(us, ~uint64_t{0});
    EXPECT_EQ(Slurp(0x10000, 4 * 4096), std::string(reinterpret_cast<char*>(buf), 4 * 4096))
        << segments << " iovecs";
    std::vector<uint8_t> want(buf, buf + 4 * 4096);
    std::memset(buf, 0xee, 4 * 4096);
    ASSERT_TRUE(dev->Transfer(false, buf, 4 * 4096, 0x10000, segments, &us).ok());
    EXPECT_EQ(std::vector<uint8_t>(buf, buf + 4 * 4096), want) << segments << " iovecs";
  }
  EXPECT_EQ(Slurp(0, 4096), std::string(4096, '\0'));  // nothing outside the range
  FreePages();
}

TEST_F(BlockDeviceTest, ErrorsNameTheCallTheDeviceAndTheErrno) {
  auto dev = BlockDevice::Open(disk_.string());
  uint8_t* buf = Pages(2);
  uint64_t us = 0;
  // O_DIRECT refuses a buffer that is not sector-aligned: EINVAL, nothing written.
  const grpc::Status s = dev->Transfer(true, buf + 1, 4096, 0, 1, &us);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("pwritev of 4096 bytes in 1 iovecs at 0x0 on " + disk_.string()),
            std::string::npos)
      << s.error_message();
  // Past the end of a regular file a read is short: DATA_LOSS, not success.
  const grpc::Status r = dev->Transfer(false, buf, 8192, (1 << 20) - 4096, 2, &us);
  EXPECT_EQ(r.error_code(), grpc::StatusCode::DATA_LOSS) << r.error_message();
  FreePages();

  try {
    BlockDevice::Open((dir_ / "missing").string());
    ADD_FAILURE() << "opened a missing device";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find((dir_ / "missing").string()), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("No such file"), std::string::npos) << e.what();
  }
}

TEST_F(BlockDeviceTest, AFileSystemOrPartitionTableIsRefusedUnlessDestructive) {
  EXPECT_EQ(Signature(disk_.string()), "");  // all zeros: nothing to destroy
  // An ext2 superblock's magic (0xEF53, little-endian at byte 1024 + 0x38) is all
  // libblkid needs to call the disk "ext2".
  {
    std::fstream f(disk_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1024 + 0x38);
    f.write("\x53\xef", 2);
  }
  EXPECT_EQ(Signature(disk_.string()), "ext2");
  try {
    BlockDevice::Open(disk_.string());
    ADD_FAILURE() << "opened a disk carrying ext2";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(disk_.string() + ": carries a \"ext2\" signature"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("--destructive"), std::string::npos) << e.what();
  }
  const auto dev = BlockDevice::Open(disk_.string(), true);
  EXPECT_EQ(dev->signature(), "ext2");
  // An MBR partition table: the 0x55aa boot signature and one Linux partition.
  {
    std::fstream f(disk_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1024 + 0x38);
    f.write("\0\0", 2);
    f.seekp(446 + 4);
    f.put('\x83');  // a Linux partition: an MBR ("dos") table
    f.seekp(446 + 8);
    f.write("\x01\0\0\0\xff\0\0\0", 8);  // LBA 1, 255 sectors
    f.seekp(510);
    f.write("\x55\xaa", 2);
  }
  EXPECT_EQ(Signature(disk_.string()), "dos");
  EXPECT_THROW(BlockDevice::Open(disk_.string()), std::runtime_error);
}

TEST(IsMounted, MatchesTheDeviceFieldOfMountinfo) {
  std::istringstream info(
      "22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
      "23 22 0:21 / /proc rw shared:12 - proc proc rw\n"
      "40 22 259:0 / /mnt rw shared:30 - ext4 /dev/nvme0n1 rw\n");
  EXPECT_TRUE(IsMounted(makedev(259, 0), info));
  info.clear();
  info.seekg(0);
  EXPECT_FALSE(IsMounted(makedev(202, 16), info));  // /dev/xvdb: not mounted
  info.clear();
  info.seekg(0);
  EXPECT_FALSE(IsMounted(makedev(259, 1), info));  // a partition is another device
}

}  // namespace
}  // namespace dmahil::agent::linux_xen
