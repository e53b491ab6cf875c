"""The managed Jupyter kernel: its venv, its environment, its session and outputs."""
