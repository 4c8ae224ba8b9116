/*
 * xent_fwd.cu - the summed softmax cross-entropy: each block takes one row
 * of V logits, computes logsumexp - logit[target] (max-subtracted, so +-80
 * stays finite) and adds it to *loss_sum (zeroed by the op). A non-finite
 * row loss sets *guard, which makes the step's update kernels do nothing.
 * Shape: M rows, N = V. Grid: M blocks. Reference: engine/src/cpu/xent.c.
 */
#include "arb_common.cuh"

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32)
    xent_fwd_kernel(const float *__restrict__ logits, const int *__restrict__ target,
                    float *__restrict__ loss_sum, int *__restrict__ guard)
{
    constexpr int THREADS = WARPS * 32, V = N;
    __shared__ float scratch[32];
    const float *row = logits + (i64)blockIdx.x * V;
    float mx = -3.402823466e38f;
    for (int j = threadIdx.x; j < V; j += THREADS)
        mx = fmaxf(mx, row[j]);
    mx = arb_block_max<WARPS>(mx, scratch);
    /* The sum and its log in double: when the target's logit dominates, the
     * sum is 1 + tiny and the loss is that tiny, which fp32 would carry with
     * an absolute error of ~1e-7 (seen: 4e-4 relative on a loss of 1.8e-4).
     * A row is at most a few thousand exps: double costs nothing here. */
    __shared__ double dscratch[32];
    double sum = 0.0;
    for (int j = threadIdx.x; j < V; j += THREADS)
        sum += exp((double)row[j] - (double)mx);
    for (int o = 16; o > 0; o >>= 1)
        sum += __shfl_xor_sync(0xffffffffu, sum, o);
    if ((threadIdx.x & 31) == 0)
        dscratch[threadIdx.x >> 5] = sum;
    __syncthreads();
    if (threadIdx.x == 0) {
        double total = 0.0;
        for (int w = 0; w < WARPS; w++)
            total += dscratch[w];
        float loss = (float)(log(total) - ((double)row[target[blockIdx.x]] - (double)mx));
        atomicAdd(loss_sum, loss);
        if (!(loss - loss == 0.0f) && guard) /* NaN or infinite */
            *guard = 1;
    }
}
