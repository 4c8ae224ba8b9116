/*
 * xent_bwd.cu - glogits = (softmax(logits) - onehot(target)) / M, one block
 * per row. Shape: M rows, N = V. Grid: M blocks. Reference: engine/src/cpu/xent.c.
 */
#include "arb_common.cuh"

template <ARB_SPEC_PARAMS>
__global__ void __launch_bounds__(WARPS * 32)
    xent_bwd_kernel(const float *__restrict__ logits, const int *__restrict__ target,
                    float *__restrict__ glogits)
{
    constexpr int THREADS = WARPS * 32, V = N;
    __shared__ float scratch[32];
    const i64 base = (i64)blockIdx.x * V;
    float mx = -3.402823466e38f;
    for (int j = threadIdx.x; j < V; j += THREADS)
        mx = fmaxf(mx, logits[base + j]);
    mx = arb_block_max<WARPS>(mx, scratch);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < V; j += THREADS)
        sum += expf(logits[base + j] - mx);
    sum = arb_block_sum<WARPS>(sum, scratch);
    const float inv_sum = 1.0f / sum, inv_m = 1.0f / (float)M;
    const int t = target[blockIdx.x];
    for (int j = threadIdx.x; j < V; j += THREADS) {
        float p = expf(logits[base + j] - mx) * inv_sum;
        glogits[base + j] = (p - (j == t ? 1.0f : 0.0f)) * inv_m;
    }
}
