/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Linked into every criterion test binary (the `criterion` dependency in
 * the top meson.build). Criterion runs each test in a "boxfort-worker"
 * process; the process meson starts is only its runner, and that runner
 * now and then loses one 48-byte record of its own timeout watchdog (a
 * race inside libcriterion 2.4: calloc in the deadline bookkeeping, no
 * test code on the stack). Under LSan's abort_on_error that failed a
 * whole test binary whose tests had all passed (CI, exporter-stream).
 * So LSan stays on where our code runs — the workers, and every daemon
 * a test starts — and is off in the runner alone.
 */
#include <errno.h>
#include <string.h>

__attribute__((visibility("default"))) int __lsan_is_turned_off(void);

int __lsan_is_turned_off(void)
{
	return strcmp(program_invocation_short_name, "boxfort-worker") != 0;
}
