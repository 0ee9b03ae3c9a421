// Xen domain lookup through xenstore (libxenstore), for dom0's relay: `--guest-domain
// domu` -> the domain id whose /local/domain/<id>/name is "domu" (what `xl domid domu`
// prints; libxl keeps the name at that node).
#pragma once

#include <string>
#include <string_view>

namespace dmahil::agent::transport {

/// The id of the domain named `name`. Throws TransportError if xenstore cannot be opened
/// or listed (not running on Xen, xenstored not started) or if no domain (or more than
/// one) has that name; the message lists the names that were found.
int FindDomainIdByName(std::string_view name);

/// This domain's id: xenstore's "domid" node, relative to /local/domain/<own id> (the
/// guest agent reports it). Throws TransportError if xenstore cannot be opened or read,
/// or the value is not a domain id (0..0x7fef).
int OwnDomainId();

/// "/local/domain/<domid>/<relative_path>": where a guest's relative xenstore path lives,
/// as dom0 must name it (libxenvchan_client_init takes an absolute path).
std::string GuestXenstorePath(int domid, std::string_view relative_path);

}  // namespace dmahil::agent::transport
