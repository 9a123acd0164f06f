# The same addon as CMakeLists.txt, built with node-gyp (`npm run build:native:gyp`) into
# build/Release/, with the BPF objects next to it (native/index.ts loads them from there).
{
  "variables": {
    "bpf_cflags": [
      "-target", "bpf", "-O2", "-g", "-Wall", "-Werror",
      "-Inative/include", "-Inative/bpf", "-I/usr/include/<!(gcc -print-multiarch)"
    ]
  },
  "targets": [
    {
      "target_name": "nodemesh_bpf",
      "type": "none",
      "actions": [
        {
          "action_name": "connect_bpf",
          "inputs": ["native/bpf/connect.bpf.c", "native/bpf/maps.h", "native/include/mesh_shared.h"],
          "outputs": ["<(PRODUCT_DIR)/connect.bpf.o"],
          "action": ["clang", "<@(bpf_cflags)", "-c", "native/bpf/connect.bpf.c", "-o", "<(PRODUCT_DIR)/connect.bpf.o"]
        },
        {
          "action_name": "sockops_bpf",
          "inputs": ["native/bpf/sockops.bpf.c", "native/bpf/maps.h", "native/include/mesh_shared.h"],
          "outputs": ["<(PRODUCT_DIR)/sockops.bpf.o"],
          "action": ["clang", "<@(bpf_cflags)", "-c", "native/bpf/sockops.bpf.c", "-o", "<(PRODUCT_DIR)/sockops.bpf.o"]
        },
        {
          "action_name": "ingress_bpf",
          "inputs": ["native/bpf/ingress.bpf.c", "native/bpf/maps.h", "native/include/mesh_shared.h"],
          "outputs": ["<(PRODUCT_DIR)/ingress.bpf.o"],
          "action": ["clang", "<@(bpf_cflags)", "-c", "native/bpf/ingress.bpf.c", "-o", "<(PRODUCT_DIR)/ingress.bpf.o"]
        },
        {
          "action_name": "getpeername_bpf",
          "inputs": ["native/bpf/getpeername.bpf.c", "native/bpf/maps.h", "native/include/mesh_shared.h"],
          "outputs": ["<(PRODUCT_DIR)/getpeername.bpf.o"],
          "action": ["clang", "<@(bpf_cflags)", "-c", "native/bpf/getpeername.bpf.c", "-o", "<(PRODUCT_DIR)/getpeername.bpf.o"]
        },
        {
          "action_name": "sockmap_bpf",
          "inputs": ["native/bpf/sockmap.bpf.c", "native/bpf/maps.h", "native/include/mesh_shared.h"],
          "outputs": ["<(PRODUCT_DIR)/sockmap.bpf.o"],
          "action": ["clang", "<@(bpf_cflags)", "-c", "native/bpf/sockmap.bpf.c", "-o", "<(PRODUCT_DIR)/sockmap.bpf.o"]
        }
      ]
    },
    {
      "target_name": "nodemesh_native",
      "dependencies": ["nodemesh_bpf"],
      "sources": [
        "native/addon/module.cc",
        "native/addon/datapath.cc",
        "native/addon/loader.cc",
        "native/addon/sockets.cc",
        "native/addon/fdcopy.cc",
        "native/addon/source_address.cc",
        "native/addon/sockmap.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native/include"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc!": ["-std=gnu++17", "-fno-rtti"],
      "libraries": ["<!@(pkg-config --libs libbpf libelf zlib)"]
    }
  ]
}
