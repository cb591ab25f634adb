"""The LLVM lowering of fused regions: kernels, the vector math library, the runtime."""
