// loader.cc - load the BPF objects with maps pinned by name under the instance's pin
// directory, then attach each program at the cgroup v2 root through a pinned bpf_link, or adopt
// the pinned link left by a previous agent (updating its program in place, never attaching a
// second copy). One roll-back path undoes whatever this call created.
#include "loader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "mesh_shared.h"

namespace nodemesh {

namespace {

const char* const kMapNames[kMapCount] = {
    NM_MAP_NETNS,      NM_MAP_CGROUPS,    NM_MAP_DSTS,     NM_MAP_CONFIG,
    NM_MAP_EXCL_CIDRS, NM_MAP_EXCL_PORTS, NM_MAP_ORIG_SOCK, NM_MAP_ORIG_FLOW,
    NM_MAP_DROPS,      NM_MAP_PORT_MTLS};
const char* const kProgNames[kProgCount] = {NM_PROG_CONNECT4, NM_PROG_SOCKOPS, NM_PROG_INGRESS,
                                           NM_PROG_GETPEERNAME4};
const char* const kLinkNames[kProgCount] = {NM_LINK_CONNECT4, NM_LINK_SOCKOPS, NM_LINK_INGRESS,
                                           NM_LINK_GETPEERNAME4};
const char* const kSockmapMapNames[kSmMapCount] = {NM_MAP_SOCK_PAIRS, NM_MAP_SM_STATS,
                                                   NM_MAP_SM_TCP, NM_MAP_SM_PENDING};
// Every link a pin directory can hold; PurgePins detaches each.
const char* const kAllLinkNames[] = {NM_LINK_CONNECT4, NM_LINK_SOCKOPS, NM_LINK_INGRESS,
                                     NM_LINK_GETPEERNAME4, NM_LINK_SOCKMAP_OPS};

thread_local std::string tls_log;

int LibbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char buf[1024];
  int n = vsnprintf(buf, sizeof(buf), fmt, args);
  if (tls_log.size() < 16384) tls_log.append(buf, n < 0 ? 0 : std::min<size_t>(n, sizeof(buf) - 1));
  return 0;
}

int Fail(const char** op, const char* what, int err) {
  *op = what;
  return err < 0 ? err : -EIO;
}

bool DirIsEmpty(const std::string& dir, bool* exists) {
  DIR* d = opendir(dir.c_str());
  *exists = d != nullptr;
  if (!d) return true;
  bool empty = true;
  while (struct dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
      empty = false;
      break;
    }
  }
  closedir(d);
  return empty;
}

}  // namespace

void InstallLibbpfLogger() { libbpf_set_print(LibbpfPrint); }

std::string TakeLibbpfLog() {
  std::string out;
  out.swap(tls_log);
  return out;
}

int Loader::LoadObject(int i, const std::string& path, const char** op) {
  LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir_.c_str());
  bpf_object* obj = bpf_object__open_file(path.c_str(), &opts);
  if (!obj) return Fail(op, "open bpf object", -errno);
  objs_[i] = obj;
  int err = bpf_object__load(obj);
  if (err) return Fail(op, "load bpf object", err);
  return 0;
}

int Loader::AttachOrAdopt(int i, const char* prog_name, const char* link_name, int cgroup_fd,
                          bool* existed, const char** op) {
  bpf_program* prog = bpf_object__find_program_by_name(objs_[i], prog_name);
  if (!prog) return Fail(op, "find bpf program", -ENOENT);
  std::string path = pin_dir_ + "/" + link_name;
  *existed = access(path.c_str(), F_OK) == 0;
  if (*existed) {
    bpf_link* link = bpf_link__open(path.c_str());
    if (!link) return Fail(op, "open pinned link", -errno);
    links_[i] = link;
    int err = bpf_link__update_program(link, prog);
    if (err) return Fail(op, "update pinned link", err);
    return 0;
  }
  bpf_link* link = bpf_program__attach_cgroup(prog, cgroup_fd);
  if (!link) return Fail(op, "attach to cgroup", -errno);
  links_[i] = link;
  attached_now_[i] = true;
  int err = bpf_link__pin(link, path.c_str());
  if (err) return Fail(op, "pin link", err);
  return 0;
}

int Loader::Install(const InstallRequest& req, const char** op) {
  pin_dir_ = req.pin_dir;
  bool dir_exists = false;
  bool fresh = DirIsEmpty(pin_dir_, &dir_exists);
  if (!dir_exists && mkdir(pin_dir_.c_str(), 0700) != 0 && errno != EEXIST)
    return Fail(op, "create pin directory", -errno);

  int cgroup_fd = open(req.cgroup_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cgroup_fd < 0) {
    int err = Fail(op, "open cgroup", -errno);
    RollBack(fresh);
    return err;
  }
  int err = 0;
  for (int i = 0; !err && i < kProgCount; i++) err = LoadObject(i, req.objects[i], op);
  bool existed[kProgCount] = {};
  for (int i = 0; !err && i < kProgCount; i++)
    err = AttachOrAdopt(i, kProgNames[i], kLinkNames[i], cgroup_fd, &existed[i], op);
  if (!err && !req.sockmap_object.empty()) {
    // Optional: a failure here leaves the mesh as it is without the shortcut (sockmap_error()).
    TakeLibbpfLog();
    sm_err_ = LoadSockmap(req.sockmap_object, cgroup_fd, &sm_op_);
    if (sm_err_) {
      sm_log_ = TakeLibbpfLog();
      CloseSockmap(true);
    }
  } else if (!err) {
    // Not wanted: a previous agent's shortcut stops pairing new connections (paired ones go on).
    const char* ignored = "";
    DropSockmapLink(&ignored);
  }
  close(cgroup_fd);
  for (int m = 0; !err && m < kMapCount; m++) {
    bpf_map* map = bpf_object__find_map_by_name(objs_[0], kMapNames[m]);
    map_fds_[m] = map ? bpf_map__fd(map) : -1;
    if (map_fds_[m] < 0) err = Fail(op, "find bpf map", -ENOENT);
  }
  if (err) {
    RollBack(fresh);
    return err;
  }
  // Adopted when a previous agent's links were there (an older one may lack a newer program's link).
  adopted_ = existed[0] && existed[1];
  return 0;
}

// The shortcut of sockmap.bpf.c: its maps (pinned by name like the others), the sk_msg program
// attached to nm_sock_pairs (before the sockops program can add a socket: a socket takes the map's
// programs when it is added), then the sockops program through its pinned link, adopted if there.
int Loader::LoadSockmap(const std::string& path, int cgroup_fd, const char** op) {
  for (int m = 0; m < kSmMapCount; m++)
    sm_pins_existed_[m] = access((pin_dir_ + "/" + kSockmapMapNames[m]).c_str(), F_OK) == 0;
  LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir_.c_str());
  bpf_object* obj = bpf_object__open_file(path.c_str(), &opts);
  if (!obj) return Fail(op, "open sockmap bpf object", -errno);
  sm_obj_ = obj;
  int err = bpf_object__load(obj);
  if (err) return Fail(op, "load sockmap bpf object", err);
  for (int m = 0; m < kSmMapCount; m++) {
    bpf_map* map = bpf_object__find_map_by_name(obj, kSockmapMapNames[m]);
    sm_map_fds_[m] = map ? bpf_map__fd(map) : -1;
    if (sm_map_fds_[m] < 0) return Fail(op, "find sockmap bpf map", -ENOENT);
  }
  bpf_program* msg = bpf_object__find_program_by_name(obj, NM_PROG_SK_MSG);
  bpf_program* ops = bpf_object__find_program_by_name(obj, NM_PROG_SOCKMAP_OPS);
  if (!msg || !ops) return Fail(op, "find sockmap bpf program", -ENOENT);
  // Replaces a previous agent's program on the map; sockets paired before keep the one they took.
  if (bpf_prog_attach(bpf_program__fd(msg), sm_map_fds_[kSmPairs], BPF_SK_MSG_VERDICT, 0) != 0)
    return Fail(op, "attach sk_msg to nm_sock_pairs", -errno);
  std::string link_path = pin_dir_ + "/" + NM_LINK_SOCKMAP_OPS;
  if (access(link_path.c_str(), F_OK) == 0) {
    sm_link_ = bpf_link__open(link_path.c_str());
    if (!sm_link_) return Fail(op, "open pinned sockmap link", -errno);
    err = bpf_link__update_program(sm_link_, ops);
    return err ? Fail(op, "update pinned sockmap link", err) : 0;
  }
  sm_link_ = bpf_program__attach_cgroup(ops, cgroup_fd);
  if (!sm_link_) return Fail(op, "attach sockmap sockops to cgroup", -errno);
  sm_attached_now_ = true;
  err = bpf_link__pin(sm_link_, link_path.c_str());
  return err ? Fail(op, "pin sockmap link", err) : 0;
}

// Releases the shortcut's objects; `undo` also detaches a link attached by this call and removes
// the map pins this call created (a failed optional load leaves nothing behind).
void Loader::CloseSockmap(bool undo) {
  if (sm_link_) {
    if (undo && sm_attached_now_) {
      bpf_link__unpin(sm_link_);
      bpf_link__detach(sm_link_);
    }
    bpf_link__destroy(sm_link_);
  }
  sm_link_ = nullptr;
  sm_attached_now_ = false;
  if (undo) {
    for (int m = 0; m < kSmMapCount; m++)
      if (sm_obj_ && !sm_pins_existed_[m]) unlink((pin_dir_ + "/" + kSockmapMapNames[m]).c_str());
  }
  if (sm_obj_) bpf_object__close(sm_obj_);
  sm_obj_ = nullptr;
  for (int m = 0; m < kSmMapCount; m++) sm_map_fds_[m] = -1;
}

int Loader::DropSockmapLink(const char** op) {
  std::string path = pin_dir_ + "/" + NM_LINK_SOCKMAP_OPS;
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return errno == ENOENT ? 0 : Fail(op, "open pinned sockmap link", -errno);
  bpf_link_detach(fd);
  close(fd);
  return unlink(path.c_str()) == 0 ? 0 : Fail(op, "remove sockmap link pin", -errno);
}

// Undo this call: links attached now are detached and unpinned; on a fresh install the maps
// pinned by libbpf and the directory go too. Pins adopted from a running instance are kept.
void Loader::RollBack(bool fresh) {
  CloseSockmap(true);
  for (int i = 0; i < kProgCount; i++) {
    if (links_[i] && attached_now_[i]) {
      bpf_link__unpin(links_[i]);
      bpf_link__detach(links_[i]);
    }
  }
  if (fresh) {
    for (int m = 0; m < kMapCount; m++) unlink((pin_dir_ + "/" + kMapNames[m]).c_str());
    rmdir(pin_dir_.c_str());
  }
  Close();
}

void Loader::Close() {
  CloseSockmap(false);
  for (int i = 0; i < kProgCount; i++) {
    if (links_[i]) bpf_link__destroy(links_[i]);  // a pinned link stays attached
    links_[i] = nullptr;
    attached_now_[i] = false;
  }
  for (int i = 0; i < kProgCount; i++) {
    if (objs_[i]) bpf_object__close(objs_[i]);
    objs_[i] = nullptr;
  }
  for (int m = 0; m < kMapCount; m++) map_fds_[m] = -1;
}

int Loader::Uninstall(const char** op) {
  for (int i = 0; i < kProgCount; i++) {
    if (links_[i]) bpf_link__detach(links_[i]);
  }
  if (sm_link_) bpf_link__detach(sm_link_);
  Close();
  return PurgePins(pin_dir_, op);
}

int Loader::Objects(KernelObjects* out) const {
  for (int i = 0; i < kProgCount; i++) {
    if (!links_[i]) continue;
    struct bpf_link_info info = {};
    uint32_t len = sizeof(info);
    int err = bpf_obj_get_info_by_fd(bpf_link__fd(links_[i]), &info, &len);
    if (err) return err;
    out->links.push_back(info.id);
    out->progs.push_back(info.prog_id);
  }
  for (int m = 0; m < kMapCount; m++) {
    if (map_fds_[m] < 0) continue;
    struct bpf_map_info info = {};
    uint32_t len = sizeof(info);
    int err = bpf_obj_get_info_by_fd(map_fds_[m], &info, &len);
    if (err) return err;
    out->maps.push_back(info.id);
  }
  if (sm_link_) {
    struct bpf_link_info info = {};
    uint32_t len = sizeof(info);
    int err = bpf_obj_get_info_by_fd(bpf_link__fd(sm_link_), &info, &len);
    if (err) return err;
    out->links.push_back(info.id);
    out->progs.push_back(info.prog_id);
    bpf_program* msg = bpf_object__find_program_by_name(sm_obj_, NM_PROG_SK_MSG);
    struct bpf_prog_info pinfo = {};
    len = sizeof(pinfo);
    if (msg && bpf_obj_get_info_by_fd(bpf_program__fd(msg), &pinfo, &len) == 0)
      out->progs.push_back(pinfo.id);
  }
  for (int m = 0; m < kSmMapCount; m++) {
    if (sm_map_fds_[m] < 0) continue;
    struct bpf_map_info info = {};
    uint32_t len = sizeof(info);
    int err = bpf_obj_get_info_by_fd(sm_map_fds_[m], &info, &len);
    if (err) return err;
    out->maps.push_back(info.id);
  }
  return 0;
}

int PurgePins(const std::string& pin_dir, const char** op) {
  for (const char* name : kAllLinkNames) {
    std::string path = pin_dir + "/" + name;
    int fd = bpf_obj_get(path.c_str());
    if (fd >= 0) {
      bpf_link_detach(fd);  // detach even if another process still holds the link
      close(fd);
    }
  }
  DIR* d = opendir(pin_dir.c_str());
  if (!d) return errno == ENOENT ? 0 : Fail(op, "open pin directory", -errno);
  int err = 0;
  while (struct dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (unlinkat(dirfd(d), e->d_name, 0) != 0 && !err) err = Fail(op, "remove pin", -errno);
  }
  closedir(d);
  if (!err && rmdir(pin_dir.c_str()) != 0) err = Fail(op, "remove pin directory", -errno);
  return err;
}

}  // namespace nodemesh
