"""Data-parallel training on MPI (Horovod's model): allreduce as an IR op."""
