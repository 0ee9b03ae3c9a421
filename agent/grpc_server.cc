#include "agent/grpc_server.h"

#include <memory>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <google/protobuf/descriptor.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/support/server_interceptor.h>

namespace dmahil::agent {
namespace {

namespace gx = grpc::experimental;

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    default:
      return "an unknown code";
  }
}

/// "dmahil.v1.DmaMapRequest" for "/dmahil.v1.Agent/DmaMap", from the generated descriptors.
std::string RequestTypeOf(std::string_view method) {
  std::string name(method.substr(method.starts_with('/') ? 1 : 0));
  if (const size_t slash = name.rfind('/'); slash != std::string::npos) name[slash] = '.';
  const google::protobuf::MethodDescriptor* m =
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(name);
  return m ? m->input_type()->full_name() : std::string("the method's request message");
}

/// One call's interceptor: notes whether the request failed to decode (the sync server
/// reports POST_RECV_MESSAGE with no message then) and fills in an empty refusal message.
class RefusalMessageInterceptor final : public gx::Interceptor {
 public:
  explicit RefusalMessageInterceptor(const char* method) : method_(method ? method : "?") {}

  void Intercept(gx::InterceptorBatchMethods* batch) override {
    if (batch->QueryInterceptionHookPoint(gx::InterceptionHookPoints::POST_RECV_MESSAGE) &&
        batch->GetRecvMessage() == nullptr)
      undecodable_ = true;
    if (batch->QueryInterceptionHookPoint(gx::InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status s = batch->GetSendStatus();
      if (!s.ok() && s.error_message().empty())
        batch->ModifySendStatus(grpc::Status(s.error_code(),
                                             RefusalMessage(method_, s.error_code(), undecodable_),
                                             s.error_details()));
    }
    batch->Proceed();
  }

 private:
  std::string method_;
  bool undecodable_ = false;
};

class RefusalMessageFactory final : public gx::ServerInterceptorFactoryInterface {
 public:
  gx::Interceptor* CreateServerInterceptor(gx::ServerRpcInfo* info) override {
    return new RefusalMessageInterceptor(info->method());
  }
};

}  // namespace

std::string RefusalMessage(std::string_view method, grpc::StatusCode code, bool undecodable) {
  if (undecodable)
    return fmt::format(
        "{}: the request could not be decoded as a {} ({} from gRPC: its bytes are not that "
        "protobuf message; a client built from another agent.proto, or corrupted bytes)",
        method, RequestTypeOf(method), CodeName(code));
  if (code == grpc::StatusCode::UNIMPLEMENTED) {
    // gRPC's sync server answers a method no service registered under the name "unknown".
    if (!method.starts_with('/'))
      return "the method called is not one this agent serves (UNIMPLEMENTED: a misspelled "
             "method, or a client built from a newer agent.proto than this agent's)";
    return fmt::format(
        "{}: this agent does not serve that method (UNIMPLEMENTED: a client built from a "
        "newer agent.proto than this agent's?)",
        method);
  }
  return fmt::format("{}: refused with {} and no message from the server", method, CodeName(code));
}

void AddAgentServerOptions(grpc::ServerBuilder& builder) {
  builder.SetMaxReceiveMessageSize(kMaxAgentRequestBytes);
  grpc::ResourceQuota quota("dmahil-agent");
  quota.SetMaxThreads(kMaxAgentThreads);
  builder.SetResourceQuota(quota);
  std::vector<std::unique_ptr<gx::ServerInterceptorFactoryInterface>> creators;
  creators.push_back(std::make_unique<RefusalMessageFactory>());
  builder.experimental().SetInterceptorCreators(std::move(creators));
}

}  // namespace dmahil::agent
