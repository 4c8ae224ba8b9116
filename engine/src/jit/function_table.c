/*
 * function_table.c - the in-memory table from spec to loaded function.
 *
 * The launch path: hash the requested spec, walk one bucket under the
 * engine lock, return the ready entry. A new spec is inserted as LOADING and
 * materialized (cache, NVRTC, driver) outside the lock; threads asking for
 * the same spec meanwhile wait on the condition variable, so one compile
 * runs per key while other keys proceed (single flight per key).
 */
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

arb_blocks_origin arb_engine_resolve_blocks(arb_engine *e, arb_spec *spec)
{
    arb_blocks_origin origin = arb_engine_lookup_tuning(e, spec);
    pthread_mutex_lock(&e->lock);
    arb_kernel_counters *c = arb_engine_counters(e, spec->kernel);
    if (origin == ARB_BLOCKS_TUNED) {
        e->stats.tuned++;
        c->tuned++;
    } else if (origin == ARB_BLOCKS_NEAREST) {
        e->stats.nearest++;
        c->nearest++;
    } else {
        e->stats.defaults++;
        c->defaults++;
    }
    pthread_mutex_unlock(&e->lock);
    return origin;
}

/* Resolve, check and load one entry (called without the lock). */
static arb_status fill_entry(arb_engine *e, arb_table_entry *entry)
{
    arb_function *f = &entry->fn;
    f->spec = entry->request;
    f->origin = ARB_BLOCKS_DEFAULT;
    if (!entry->exact)
        f->origin = arb_engine_resolve_blocks(e, &f->spec);
    arb_status st = arb_spec_check(&f->spec, &entry->error);
    if (st)
        return st;
    if (!e->cu)
        return ARB_FAIL(&entry->error, ARB_ERR_NO_DEVICE,
                        "this engine compiles only (no GPU): kernels cannot be loaded");
    int compiled = 0;
    st = arb_engine_materialize(e, &f->spec, 1, &entry->module, &f->fn, &f->spill_bytes,
                                &compiled, NULL, &entry->error);
    if (st)
        return st;
    const arb_kernel_def *def = arb_kernel_find(f->spec.kernel);
    def->launch_dims(&f->spec, f->grid, f->block, &f->smem_bytes);
    f->registers = -1;
    e->cu->FuncGetAttribute(&f->registers, CU_FUNC_ATTRIBUTE_NUM_REGS, f->fn);
    if (f->smem_bytes > 48 * 1024) {
        CUresult rc = e->cu->FuncSetAttribute(f->fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                              (int)f->smem_bytes);
        if (rc != CUDA_SUCCESS)
            return ARB_FAIL(&entry->error, ARB_ERR_CUDA,
                            "%s needs %u bytes of shared memory, more than the device allows",
                            f->spec.kernel, f->smem_bytes);
    }
    return ARB_OK;
}

arb_status arb_engine_function(arb_engine *e, const arb_spec *spec, int exact,
                               const arb_function **out, arb_err *err)
{
    uint64_t hash = arb_spec_hash(spec, exact);
    arb_table_entry **bucket = &e->buckets[hash % ARB_TABLE_BUCKETS];
    pthread_mutex_lock(&e->lock);
    e->stats.lookups++;
    arb_table_entry *entry = *bucket;
    while (entry && !(entry->hash == hash && entry->exact == exact &&
                      arb_spec_equal(&entry->request, spec)))
        entry = entry->next;
    if (entry) {
        while (entry->state == ENTRY_LOADING)
            pthread_cond_wait(&e->loaded, &e->lock);
        int ready = entry->state == ENTRY_READY;
        pthread_mutex_unlock(&e->lock);
        if (ready) {
            *out = &entry->fn;
            return ARB_OK;
        }
        arb_err_copy(err, &entry->error);
        return entry->error.status;
    }
    entry = calloc(1, sizeof(*entry));
    if (!entry) {
        pthread_mutex_unlock(&e->lock);
        return ARB_FAIL(err, ARB_ERR_NOMEM, "out of memory in the function table");
    }
    entry->request = *spec;
    entry->exact = exact;
    entry->hash = hash;
    entry->state = ENTRY_LOADING;
    entry->next = *bucket;
    *bucket = entry;
    pthread_mutex_unlock(&e->lock);

    arb_status st = fill_entry(e, entry);

    pthread_mutex_lock(&e->lock);
    entry->state = st == ARB_OK ? ENTRY_READY : ENTRY_FAILED;
    pthread_cond_broadcast(&e->loaded);
    pthread_mutex_unlock(&e->lock);
    if (st) {
        arb_err_copy(err, &entry->error);
        return st;
    }
    *out = &entry->fn;
    return ARB_OK;
}
