/*
 * mma_ptx.cuh - inline-PTX wrappers for the tensor-core kernels: shared
 * addresses, cp.async, ldmatrix, mma.sync (bf16 m16n8k16, tf32 m16n8k8) and
 * the conversions that split fp32 into bf16 pieces. NVRTC sees no CUDA
 * headers, so these stand in for cuda_bf16.h and the pipeline primitives.
 */
#ifndef ARB_MMA_PTX_CUH
#define ARB_MMA_PTX_CUH

#include "arb_common.cuh"

__device__ __forceinline__ u32 arb_smem_addr(const void *p)
{
    u32 addr;
    asm("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(addr) : "l"(p));
    return addr;
}

/* 16-byte async copy; bytes < 16 zero-fills the rest (0: all zeros). */
__device__ __forceinline__ void arb_cp_async16(void *smem, const void *gmem, int bytes)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(arb_smem_addr(smem)),
                 "l"(gmem), "r"(bytes));
}

__device__ __forceinline__ void arb_cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void arb_cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::); }

/* Wait until at most N of this thread's most recent cp.async groups are pending. */
template <int N>
__device__ __forceinline__ void arb_cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void arb_ldmatrix_x4(u32 (&r)[4], const void *smem)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(arb_smem_addr(smem)));
}

__device__ __forceinline__ void arb_ldmatrix_x4_trans(u32 (&r)[4], const void *smem)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(arb_smem_addr(smem)));
}

/* D += A * B, m16n8k16, bf16 inputs, fp32 accumulators. */
__device__ __forceinline__ void arb_mma_bf16(float (&d)[4], const u32 (&a)[4], u32 b0, u32 b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, "
                 "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* D += A * B, m16n8k8, tf32 inputs, fp32 accumulators. */
__device__ __forceinline__ void arb_mma_tf32(float (&d)[4], const u32 (&a)[4], u32 b0, u32 b1)
{
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, "
                 "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* Two floats to a bf16x2 register, round to nearest even: lo in bits 0-15. */
__device__ __forceinline__ u32 arb_pack_bf16x2(float lo, float hi)
{
    u32 r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

/* The two floats a bf16x2 register holds. */
__device__ __forceinline__ float arb_bf16_lo(u32 v) { return __uint_as_float(v << 16); }
__device__ __forceinline__ float arb_bf16_hi(u32 v) { return __uint_as_float(v & 0xffff0000u); }

__device__ __forceinline__ u32 arb_to_tf32(float x)
{
    u32 r;
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
    return r;
}

#endif /* ARB_MMA_PTX_CUH */
