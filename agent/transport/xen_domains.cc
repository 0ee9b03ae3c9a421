#include "agent/transport/xen_domains.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "agent/transport/byte_channel.h"

extern "C" {
#include <xenstore.h>
}

namespace dmahil::agent::transport {
namespace {

struct XsCloser {
  void operator()(xs_handle* h) const { xs_close(h); }
};
struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

}  // namespace

int FindDomainIdByName(std::string_view name) {
  const std::unique_ptr<xs_handle, XsCloser> xs(xs_open(XS_OPEN_READONLY));
  if (!xs) {
    throw TransportError(std::string("xs_open (xenstore) failed: ") + strerror(errno) +
                         " (is this dom0 with xenstored running?)");
  }
  unsigned int count = 0;
  const std::unique_ptr<char*, FreeDeleter> ids(
      xs_directory(xs.get(), XBT_NULL, "/local/domain", &count));
  if (!ids) {
    throw TransportError(std::string("xs_directory /local/domain failed: ") + strerror(errno));
  }
  std::vector<int> matches;
  std::vector<std::string> seen;
  for (unsigned int i = 0; i < count; ++i) {
    const std::string id = ids.get()[i];
    const std::string node = "/local/domain/" + id + "/name";
    unsigned int len = 0;
    const std::unique_ptr<char, FreeDeleter> value(
        static_cast<char*>(xs_read(xs.get(), XBT_NULL, node.c_str(), &len)));
    if (!value) continue;  // a domain being created or destroyed has no name yet
    const std::string domain_name(value.get(), len);
    seen.push_back(domain_name + " (" + id + ")");
    if (domain_name == name) matches.push_back(std::atoi(id.c_str()));
  }
  if (matches.size() == 1) return matches.front();
  throw TransportError(
      fmt::format("xenstore: {} domains are named '{}' (domains: {})", matches.size(), name,
                  seen.empty() ? std::string("none") : fmt::format("{}", fmt::join(seen, ", "))));
}

int OwnDomainId() {
  const std::unique_ptr<xs_handle, XsCloser> xs(xs_open(0));
  if (!xs)
    throw TransportError(std::string("xs_open (xenstore) failed: ") + strerror(errno) +
                         " (is /dev/xen/xenbus there?)");
  unsigned int len = 0;
  // Relative paths are under /local/domain/<own id>; "domid" is the toolstack's.
  const std::unique_ptr<char, FreeDeleter> value(
      static_cast<char*>(xs_read(xs.get(), XBT_NULL, "domid", &len)));
  if (!value)
    throw TransportError(std::string("xenstore has no \"domid\" for this domain: ") +
                         strerror(errno));
  const std::string s(value.get(), len);
  char* end = nullptr;
  const long id = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || id < 0 || id >= 0x7ff0)
    throw TransportError("xenstore \"domid\" is \"" + s + "\", not a domain id");
  return static_cast<int>(id);
}

std::string GuestXenstorePath(int domid, std::string_view relative_path) {
  return "/local/domain/" + std::to_string(domid) + "/" + std::string(relative_path);
}

}  // namespace dmahil::agent::transport
