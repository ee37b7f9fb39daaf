// distributed.cpp: libtorch's own c10d, as torch.distributed uses it: a TCPStore for the
// rendezvous and a ProcessGroupGloo for the collectives (see include/ctorch.h, "Distributed").
//
// The wheel ships c10d's headers but not Gloo's, which ProcessGroupGloo.hpp includes; the
// declarations it needs from them are in declarations/gloo/ (types it holds by pointer, and the
// store interface it subclasses). Nothing here touches Gloo's internals: libtorch builds and
// runs the group.
#include "ctorch.h"
#include "shim.hpp"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstdlib>
#include <vector>

struct ct_process_group_s {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
  int world_size;
  std::chrono::milliseconds timeout;
};

static std::vector<at::Tensor> tensors_of(const ct_tensor *tensors, int n) {
  std::vector<at::Tensor> list;
  list.reserve((size_t)n);
  for (int i = 0; i < n; i++) list.push_back(T(tensors[i]));
  return list;
}

// The network device Gloo's pairs use: the interface GLOO_SOCKET_IFNAME names (as in
// torch.distributed), loopback for a job on one machine, else the address this machine's host
// name resolves to. (MASTER_ADDR is node 0's address, not this node's.)
static std::shared_ptr<::gloo::transport::Device> device_for(const std::string &master) {
  if (const char *interface = std::getenv("GLOO_SOCKET_IFNAME"); interface != nullptr && *interface != 0) {
    return c10d::ProcessGroupGloo::createDeviceForInterface(interface);
  }
  if (master == "127.0.0.1" || master == "localhost" || master == "::1") {
    return c10d::ProcessGroupGloo::createDeviceForHostname(master);
  }
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

static ct_process_group join(const char *host, int port, int rank, int world_size, std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions options;
  options.port = (uint16_t)port;
  options.isServer = rank == 0;
  options.numWorkers = world_size;
  options.waitWorkers = true;
  options.timeout = timeout;
  auto store = c10::make_intrusive<c10d::TCPStore>(host, options);
  auto gloo = c10d::ProcessGroupGloo::Options::create(timeout);
  gloo->devices.push_back(device_for(host));
  gloo->threads = 1;  // one collective at a time: the trainers wait on each
  auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world_size, gloo);
  return new ct_process_group_s{store, group, world_size, timeout};
}

ct_process_group ct_dist_init(const char *host, int port, int rank, int world_size, int64_t timeout_ms) {
  PROTECT(return join(host, port, rank, world_size, std::chrono::milliseconds(timeout_ms));, nullptr)
}

void ct_dist_free(ct_process_group group) { delete group; }

// Each tensor is its own collective: Gloo's multi-tensor form means one tensor per device, all
// of one size.
int ct_dist_all_reduce(ct_process_group group, const ct_tensor *tensors, int n, int op) {
  // Gloo sums; the mean is the sum over the world size (Gloo has no AVG).
  STATUS(c10d::AllreduceOptions options; options.reduceOp = c10d::ReduceOp::SUM; options.timeout = group->timeout;
         for (auto &tensor : tensors_of(tensors, n)) {
           std::vector<at::Tensor> one{tensor};
           group->group->allreduce(one, options)->wait(group->timeout);
           if (op == 1) tensor.div_(group->world_size);
         })
}

int ct_dist_broadcast(ct_process_group group, const ct_tensor *tensors, int n, int root) {
  STATUS(c10d::BroadcastOptions options; options.rootRank = root; options.timeout = group->timeout;
         for (auto &tensor : tensors_of(tensors, n)) {
           std::vector<at::Tensor> one{tensor};
           group->group->broadcast(one, options)->wait(group->timeout);
         })
}

int ct_dist_barrier(ct_process_group group) {
  STATUS(c10d::BarrierOptions options; options.timeout = group->timeout; group->group->barrier(options)->wait(group->timeout))
}
