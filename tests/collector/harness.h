/* SPDX-License-Identifier: Apache-2.0 */
/* harness.h - run kl-collector and workloads, read `raw`, for the live tests. */
#ifndef KL_TEST_HARNESS_H
#define KL_TEST_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <kloudlens/record.h>
#include <kloudlens/shm.h>

struct kh_collector {
	pid_t pid;
	char dir[256];
	char ready[300];
};

/* A private rings dir under /tmp (never /dev/shm/kloudlens). */
int kh_tmpdir(char *buf, size_t len, const char *tag);
void kh_rmdir(const char *dir);
const char *kh_bin(const char *rel);     /* $KLOUDLENS_BUILD_ROOT/rel (static buffer per call site: copy it) */
bool kh_require_live(void);
/* Start kl-collector --dir @dir plus @extra (NULL-terminated); waits until attached. */
int kh_start_collector(struct kh_collector *k, const char *dir, const char *const *extra);
int kh_stop_collector(struct kh_collector *k);

/* Reader thread: calls @fn for every record until kh_reader_stop(). */
typedef void (*kh_rec_fn)(void *ctx, uint16_t type, const void *rec, uint32_t len);
struct kh_reader;
int kh_reader_start(struct kh_reader **out, const char *dir, kh_rec_fn fn, void *ctx);
/* Totals seen by the reader's consumer slot. */
void kh_reader_stop(struct kh_reader *r, uint64_t *dropped, uint64_t *missed);

/* Spawn @argv held at a gate; kh_go() lets it exec. stdout goes to *@out_fd. */
struct kh_proc {
	pid_t pid;
	int gate;
	int out;
};
int kh_spawn(struct kh_proc *p, char *const argv[]);
/* Same, moved into the cgroup v2 directory @cgroup before it waits at the gate. */
int kh_spawn_in(struct kh_proc *p, char *const argv[], const char *cgroup);
/* mkdir a private cgroup v2 directory; path in @buf. */
int kh_cgroup_create(char *buf, size_t len, const char *tag);
void kh_go(struct kh_proc *p);
/* Wait for exit; returns the wait status; reads stdout into @buf. */
int kh_wait(struct kh_proc *p, char *buf, size_t len);

uint64_t kh_now_ns(void);
/* Field @id of a record as a NUL-terminated string in @buf ("" if absent). */
const char *kh_field(uint16_t type, const void *rec, uint32_t len, uint16_t id, char *buf, size_t blen, uint16_t *flen);

#endif
