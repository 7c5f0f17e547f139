// The hubs a provisioning service assigns devices to ("linked IoT hubs"), and how a device is
// created on one: the local hub of this process (through hub::Hub) or another Orrery — or
// any IoT Hub-compatible — hub reached over its service REST API with a service connection
// string (a policy with RegistryWrite and ServiceConnect, e.g. iothubowner).
//
// Allocation is pure: ChooseHub picks among candidates by DPS's policies (evenly weighted
// distribution by hashing, static), deterministically for a registration id.
//
// Thread safety: HubTarget implementations are safe from any thread; callbacks run on the
// store's writer thread (local) or the HTTP client's executor (remote).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/json/object.hpp>

#include "base/error.h"
#include "dps/wire.h"
#include "hub/identity.h"
#include "net/tls.h"

namespace orrery::hub {
class Hub;
}

namespace orrery::dps {

// What DPS asks a hub to hold for a registered device.
struct DeviceSpec {
  std::string device_id;
  hub::Authentication auth;
  bool iot_edge = false;
  // Tags and desired properties to apply ({"tags":…, "properties":{"desired":…}}); nullopt
  // keeps the twin as it is.
  std::optional<boost::json::object> twin;
  // true: the twin's tags and desired properties become exactly `twin` (initial assignment,
  // data reset, migration); false: `twin` is merged as a patch.
  bool replace_twin = true;
};

class HubTarget {
 public:
  virtual ~HubTarget() = default;
  // Creates the device, or updates an existing one's authentication and capabilities (its
  // status is left alone: an operator's disable stands), then applies the twin.
  virtual void Provision(DeviceSpec spec, std::function<void(Status)> done) = 0;
  // The device's tags and desired properties ({"tags":…,"properties":{"desired":…}}) for
  // migrating its data to another hub; kDeviceNotFound when it does not exist there.
  virtual void ReadTwin(std::string device_id,
                        std::function<void(Result<boost::json::object>)> done) = 0;
};

// The hub of this process.
std::shared_ptr<HubTarget> LocalHubTarget(hub::Hub* hub);

// A hub reached over HTTPS: `connection_string` is "HostName=…;SharedAccessKeyName=…;
// SharedAccessKey=…" (the host may carry a port). kInvalidArgument for a bad string.
Result<std::shared_ptr<HubTarget>> RemoteHubTarget(boost::asio::any_io_executor executor,
                                                   std::string_view connection_string,
                                                   net::TlsClientOptions tls);

struct LinkedHub {
  std::string host_name;                // what devices connect to: the registration's assignedHub
  int weight = 1;                       // allocationWeight (evenly weighted distribution)
  bool apply_allocation_policy = true;  // a candidate for enrollments that name no hubs
  bool local = false;
  std::shared_ptr<HubTarget> target;
};

// Weighted rendezvous hashing: each candidate scores by a hash of (registration id, host
// name) scaled by its weight; the best wins. The same registration id always lands on the
// same hub while the set is unchanged, and shares follow the weights. REQUIRES: candidates
// not empty, weights > 0.
size_t ChooseHashed(const std::vector<const LinkedHub*>& candidates,
                    std::string_view registration_id);

}  // namespace orrery::dps
