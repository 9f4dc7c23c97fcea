"""Celery app and tasks, the sweeper, and the realtime worker pool.

llama.cpp's OpenMP threads spin while waiting by default; on a CPU shared with other workers that
collapsed generation from ~100 to 2-3 tokens/s (measured here, see bench/models.py). Passive waiting
costs nothing when the CPU is free, so every worker process gets it before any model library loads.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
