// loader.h - libbpf side of the datapath, free of N-API so that it runs on worker threads.
//
// Invariants: every function returns 0 or -errno and, on failure, names the operation that
// failed in *op (a static string). A Loader owns its bpf_objects and bpf_links; Close() releases
// them without touching the pins (redirection keeps working), Uninstall() removes the pins too.
#ifndef NATIVE_ADDON_LOADER_H_
#define NATIVE_ADDON_LOADER_H_

#include <cstdint>
#include <string>
#include <vector>

struct bpf_object;
struct bpf_link;

namespace nodemesh {

// Indexes of the maps the addon writes or reads; names come from mesh_shared.h.
enum MapIndex {
  kMapNetns,
  kMapCgroups,
  kMapDsts,
  kMapConfig,
  kMapExclCidrs,
  kMapExclPorts,
  kMapOrigSock,
  kMapOrigFlow,
  kMapDrops,
  kMapPortMtls,
  kMapCount
};

// The programs, one BPF object each: connect4, sockops, cgroup_skb ingress, getpeername4.
constexpr int kProgCount = 4;

// The optional sockmap shortcut's maps (sockmap.bpf.c), by index.
enum SockmapMapIndex { kSmPairs, kSmStats, kSmTcp, kSmPending, kSmMapCount };

struct InstallRequest {
  std::string objects[kProgCount];  // paths of connect, sockops, ingress, getpeername .bpf.o
  // sockmap.bpf.o, or empty: the shortcut is not wanted, and a pinned link of it is detached.
  std::string sockmap_object;
  std::string pin_dir;       // per-instance bpffs directory
  std::string cgroup_path;   // cgroup v2 root to attach to
};

struct KernelObjects {
  std::vector<uint32_t> progs, maps, links;
};

class Loader {
 public:
  Loader() = default;
  ~Loader() { Close(); }
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  int Install(const InstallRequest& req, const char** op);
  void Close();
  int Uninstall(const char** op);
  bool adopted() const { return adopted_; }
  bool loaded() const { return objs_[0] != nullptr; }
  int map_fd(MapIndex i) const { return map_fds_[i]; }
  int Objects(KernelObjects* out) const;
  // The shortcut: attached, or why not (sockmap_error() -errno, sockmap_op(); 0 = not asked).
  bool sockmap() const { return sm_obj_ != nullptr; }
  int sockmap_error() const { return sm_err_; }
  const char* sockmap_op() const { return sm_op_; }
  const std::string& sockmap_log() const { return sm_log_; }
  int sockmap_map_fd(SockmapMapIndex i) const { return sm_map_fds_[i]; }

 private:
  int LoadSockmap(const std::string& path, int cgroup_fd, const char** op);
  void CloseSockmap(bool undo);
  int DropSockmapLink(const char** op);
  int LoadObject(int i, const std::string& path, const char** op);
  int AttachOrAdopt(int i, const char* prog_name, const char* link_name, int cgroup_fd,
                    bool* existed, const char** op);
  void RollBack(bool fresh);

  bpf_object* objs_[kProgCount] = {};
  bpf_link* links_[kProgCount] = {};
  bool attached_now_[kProgCount] = {};
  int map_fds_[kMapCount] = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1};
  bool adopted_ = false;
  std::string pin_dir_;
  bpf_object* sm_obj_ = nullptr;
  bpf_link* sm_link_ = nullptr;
  bool sm_attached_now_ = false;
  int sm_map_fds_[kSmMapCount] = {-1, -1, -1, -1};
  bool sm_pins_existed_[kSmMapCount] = {};
  int sm_err_ = 0;
  const char* sm_op_ = "";
  std::string sm_log_;
};

// Removes every pin under pin_dir (detaching pinned links first) and the directory itself.
int PurgePins(const std::string& pin_dir, const char** op);

// Everything libbpf printed on this thread since the last call (verifier logs included).
std::string TakeLibbpfLog();
void InstallLibbpfLogger();

}  // namespace nodemesh

#endif  // NATIVE_ADDON_LOADER_H_
