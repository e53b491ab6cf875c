"""llama.cpp's native libraries as the rest of the app sees them: which ggml backends and
devices load (``ggml_backends``), and where llama.cpp's log goes (``llama_log``). Below both the
model plan and the backends, so each can ask without importing the other."""
