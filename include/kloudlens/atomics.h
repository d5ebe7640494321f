/* SPDX-License-Identifier: Apache-2.0 */
/*
 * atomics.h - the one place KloudLens spells memory ordering.
 * Every caller of load_acquire/store_release names, in a comment, the
 * barrier it pairs with. Never `volatile` for ordering.
 */
#ifndef KLOUDLENS_ATOMICS_H
#define KLOUDLENS_ATOMICS_H

#include <stdatomic.h>
#include <stdint.h>

#define load_acquire(p)      atomic_load_explicit((p), memory_order_acquire)
#define store_release(p, v)  atomic_store_explicit((p), (v), memory_order_release)
#define load_relaxed(p)      atomic_load_explicit((p), memory_order_relaxed)
#define store_relaxed(p, v)  atomic_store_explicit((p), (v), memory_order_relaxed)
#define add_relaxed(p, v)    atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define full_fence()         atomic_thread_fence(memory_order_seq_cst)
#define acquire_fence()      atomic_thread_fence(memory_order_acquire)

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

#endif
