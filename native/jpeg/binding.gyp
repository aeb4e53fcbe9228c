{
  "targets": [
    {
      "target_name": "stageward_jpeg",
      "sources": ["src/jpeg.c"],
      "libraries": ["-lturbojpeg"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
