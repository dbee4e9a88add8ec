"""The `zhike` command line (serve, worker, one command per operation, admin).

numpy's BLAS runs single-threaded in Zhike's processes: Zhike keeps its own threads busy (the output pool, the
progress writer, batch renderers), and OpenBLAS's spinning helper threads on top of them burnt a quarter of the CPU
of a labelled batch design (bench/batch_labels.py) for no speed. Set before numpy is first imported; torch keeps its
own thread pool.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
