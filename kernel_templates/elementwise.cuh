/*
 * elementwise.cuh - the loop shape of the glue kernels (relu_fwd, relu_bwd,
 * add): each thread takes 4 consecutive elements, as one 16-byte load and
 * store per array when every array is 16-byte aligned, else one element at
 * a time (the tail, or slices that start mid-vector). One element per thread
 * measured about half the copy rate (relu_fwd 58%, add 68%): too few bytes
 * in flight per thread.
 */
#ifndef ARB_ELEMENTWISE_CUH
#define ARB_ELEMENTWISE_CUH

#include "arb_common.cuh"

/* The first of this thread's 4 elements (grid: ceil(ceil(M/4) / THREADS)). */
template <int THREADS>
__device__ __forceinline__ i64 arb_vec4_first()
{
    return ((i64)blockIdx.x * THREADS + threadIdx.x) * 4;
}

__device__ __forceinline__ bool arb_aligned16(const void *p)
{
    return ((unsigned long long)p & 15ull) == 0;
}

#endif /* ARB_ELEMENTWISE_CUH */
