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
    float sum = 0.0f;
    for (int j = threadIdx.x; j < V; j += THREADS)
        sum += expf(row[j] - mx);
    sum = arb_block_sum<WARPS>(sum, scratch);
    if (threadIdx.x == 0) {
        float loss = mx + logf(sum) - row[target[blockIdx.x]];
        atomicAdd(loss_sum, loss);
        if (!(loss - loss == 0.0f) && guard) /* NaN or infinite */
            *guard = 1;
    }
}
