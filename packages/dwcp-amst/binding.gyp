{
  "variables": {
    "have_rdma%": "<!(node scripts/detect-rdma.mjs)"
  },
  "targets": [
    {
      "target_name": "amst_rdma",
      "sources": ["native/rdma.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17"],
      "conditions": [
        ["have_rdma==1", {
          "defines": ["AMST_HAVE_RDMA"],
          "libraries": ["-libverbs", "-lrdmacm"]
        }]
      ]
    }
  ]
}
