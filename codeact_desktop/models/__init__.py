"""Model files: inspection of GGUF files (and later the catalogue and downloads)."""
