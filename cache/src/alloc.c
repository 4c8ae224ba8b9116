/*
 * alloc.c - the one door through which cache/src allocates memory, so that
 * tests can make the n-th allocation fail (cache_testing.h). Memory comes
 * from malloc and is released with free(): callers of the public API free
 * what get returns with arb_cache_entry_free, which calls free().
 *
 * Disarmed (always, outside tests), the cost is one relaxed atomic load.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cache_internal.h"
#include "cache_testing.h"

static atomic_long fail_at;     /* 0: disarmed; else the allocation number to fail */
static atomic_int fail_always;  /* fail every allocation after fail_at too */
static atomic_long seen;        /* allocations counted since arming */
static atomic_long injected;    /* failures injected since arming */

void cache_testing_fail_alloc(long n, int always)
{
    atomic_store(&fail_at, 0);
    if (n <= 0)
        return; /* disarmed; the counters keep what the last arming saw */
    atomic_store(&seen, 0);
    atomic_store(&injected, 0);
    atomic_store(&fail_always, always ? 1 : 0);
    atomic_store(&fail_at, n);
}

int cache_testing_alloc_fault(void)
{
    long at = atomic_load_explicit(&fail_at, memory_order_relaxed);
    if (at == 0)
        return 0;
    long n = atomic_fetch_add(&seen, 1) + 1;
    if (n == at || (n > at && atomic_load(&fail_always))) {
        atomic_fetch_add(&injected, 1);
        return 1;
    }
    return 0;
}

long cache_testing_alloc_faults(void)
{
    return atomic_load(&injected);
}

void *cache_malloc(size_t n)
{
    return cache_testing_alloc_fault() ? NULL : malloc(n ? n : 1);
}

void *cache_calloc(size_t n, size_t size)
{
    return cache_testing_alloc_fault() ? NULL : calloc(n ? n : 1, size ? size : 1);
}

void *cache_realloc(void *p, size_t n)
{
    /* A failed realloc leaves p alone, as realloc does. */
    return cache_testing_alloc_fault() ? NULL : realloc(p, n ? n : 1);
}

char *cache_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = cache_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

char *cache_strndup(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    char *d = cache_malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}
