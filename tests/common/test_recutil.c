/* SPDX-License-Identifier: Apache-2.0 */
/* Record validation, TLV tail bounds, JSON encoding, syscall names. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include <kloudlens/recutil.h>

static size_t mk_syscall(uint8_t *buf, size_t cap, const char *path)
{
	struct kl_syscall sc = { 0 };
	struct kl_tail_builder b;

	sc.ev.seq = 42;
	sc.ev.ts_ns = 1000;
	sc.ev.pid = 10;
	sc.ev.tid = 11;
	memcpy(sc.ev.comm, "cat", 4);
	sc.nr = 257;
	sc.ret = 3;
	sc.args[0] = (uint64_t)-100;
	memcpy(buf, &sc, sizeof(sc));
	kl_tail_init(&b, buf, sizeof(sc), cap);
	kl_tail_add_str(&b, KL_F_PATH, path);
	return kl_tail_finish(&b);
}

Test(recutil, valid_syscall_roundtrip)
{
	uint8_t buf[512];
	size_t len = mk_syscall(buf, sizeof(buf), "/etc/passwd");
	struct kl_field_view f;

	cr_assert_eq(kl_rec_validate(KL_REC_SYSCALL, buf, len), KL_REC_OK);
	cr_assert(kl_field_find(KL_REC_SYSCALL, buf, len, KL_F_PATH, &f));
	cr_assert_eq(f.len, 11);
	cr_assert_eq(memcmp(f.data, "/etc/passwd", 11), 0);
	cr_assert_not(f.truncated);
}

Test(recutil, rejects_and_counts_bad_records)
{
	uint8_t buf[512];
	size_t len = mk_syscall(buf, sizeof(buf), "/etc/passwd");
	uint64_t before;
	struct kl_event ev;

	before = kl_rec_rejected(KL_REC_E_SHORT);
	cr_assert_eq(kl_rec_validate(KL_REC_SYSCALL, buf, sizeof(struct kl_syscall) - 1), KL_REC_E_SHORT);
	cr_assert_eq(kl_rec_rejected(KL_REC_E_SHORT), before + 1);

	/* declared tail longer than the record */
	cr_assert_eq(kl_rec_validate(KL_REC_SYSCALL, buf, len - 1), KL_REC_E_TAIL_OVERRUN);

	/* field length overruns the tail */
	uint8_t bad[512];
	memcpy(bad, buf, len);
	struct kl_field fh;
	memcpy(&fh, bad + sizeof(struct kl_syscall), sizeof(fh));
	fh.len = 200;
	memcpy(bad + sizeof(struct kl_syscall), &fh, sizeof(fh));
	cr_assert_eq(kl_rec_validate(KL_REC_SYSCALL, bad, len), KL_REC_E_FIELD_OVERRUN);
	/* and the iterator refuses to hand it out even without validation */
	struct kl_field_view f;
	cr_assert_not(kl_field_find(KL_REC_SYSCALL, bad, len, KL_F_PATH, &f));

	/* bad field id */
	memcpy(bad, buf, len);
	fh.len = 11;
	fh.id = 0;
	memcpy(bad + sizeof(struct kl_syscall), &fh, sizeof(fh));
	cr_assert_eq(kl_rec_validate(KL_REC_SYSCALL, bad, len), KL_REC_E_BAD_FIELD);

	/* half a field header */
	memcpy(bad, buf, len);
	memcpy(&ev, bad, sizeof(ev));
	ev.tail_len = 2;
	memcpy(bad, &ev, sizeof(ev));
	cr_assert_eq(kl_rec_validate(KL_REC_SYSCALL, bad, sizeof(struct kl_syscall) + 2), KL_REC_E_FIELD_OVERRUN);

	cr_assert_eq(kl_rec_validate(999, buf, len), KL_REC_E_UNKNOWN_TYPE);
	cr_assert_eq(kl_rec_validate(KL_REC_PAD, buf, len), KL_REC_E_UNKNOWN_TYPE);
}

Test(recutil, tail_builder_truncates_and_flags)
{
	uint8_t buf[sizeof(struct kl_syscall) + 20];
	char longpath[100];
	struct kl_field_view f;
	struct kl_event ev;

	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = 0;
	size_t len = mk_syscall(buf, sizeof(buf), longpath);
	cr_assert_eq(len, sizeof(buf));
	cr_assert_eq(kl_rec_validate(KL_REC_SYSCALL, buf, len), KL_REC_OK);
	cr_assert(kl_field_find(KL_REC_SYSCALL, buf, len, KL_F_PATH, &f));
	cr_assert(f.truncated);
	cr_assert_eq(f.len, 16);
	memcpy(&ev, buf, sizeof(ev));
	cr_assert(ev.flags & KL_EV_TRUNCATED);
}

Test(recutil, json_has_required_fields)
{
	uint8_t buf[512];
	size_t len = mk_syscall(buf, sizeof(buf), "/tmp/q\"uote\n\x01\xff\xc3\xa9");
	struct kl_buf b = { 0 };
	json_error_t je;

	kl_rec_to_json(&b, KL_REC_SYSCALL, buf, len, 7);
	json_t *j = json_loads(b.p, 0, &je);
	cr_assert_not_null(j, "invalid JSON: %s: %s", je.text, b.p);
	cr_assert_str_eq(json_string_value(json_object_get(j, "type")), "syscall");
	cr_assert_str_eq(json_string_value(json_object_get(j, "syscall")), "openat");
	cr_assert_eq(json_integer_value(json_object_get(j, "seq")), 42);
	cr_assert_eq(json_integer_value(json_object_get(j, "ring_seq")), 7);
	cr_assert_eq(json_integer_value(json_object_get(j, "pid")), 10);
	cr_assert_eq(json_integer_value(json_object_get(j, "tid")), 11);
	cr_assert_eq(json_integer_value(json_object_get(j, "ret")), 3);
	cr_assert_eq(json_integer_value(json_object_get(j, "ts_ns")), 1000);
	cr_assert_str_eq(json_string_value(json_object_get(j, "comm")), "cat");
	cr_assert(json_is_array(json_object_get(j, "args")));
	/* invalid UTF-8 byte escaped, valid é kept */
	cr_assert_str_eq(json_string_value(json_object_get(j, "path")), "/tmp/q\"uote\n\x01\xc3\xbf\xc3\xa9");
	json_decref(j);

	kl_buf_reset(&b);
	kl_rec_to_json(&b, KL_REC_SYSCALL, buf, 10, UINT64_MAX);
	j = json_loads(b.p, 0, &je);
	cr_assert_not_null(j);
	cr_assert_str_eq(json_string_value(json_object_get(j, "type")), "invalid");
	json_decref(j);
	kl_buf_free(&b);
}

Test(recutil, json_proc_exec_argv)
{
	uint8_t buf[512];
	struct kl_proc p = { 0 };
	struct kl_tail_builder tb;
	struct kl_buf b = { 0 };

	p.kind = KL_PROC_EXEC;
	p.ev.pid = 5;
	memcpy(buf, &p, sizeof(p));
	kl_tail_init(&tb, buf, sizeof(p), sizeof(buf));
	kl_tail_add(&tb, KL_F_ARGV, "/bin/true\0--x\0y z", 17);
	kl_tail_add_str(&tb, KL_F_EXE, "/usr/bin/true");
	size_t len = kl_tail_finish(&tb);
	kl_rec_to_json(&b, KL_REC_PROC, buf, len, UINT64_MAX);
	json_t *j = json_loads(b.p, 0, NULL);
	cr_assert_not_null(j, "%s", b.p);
	cr_assert_str_eq(json_string_value(json_object_get(j, "kind")), "exec");
	json_t *argv = json_object_get(j, "argv");
	cr_assert_eq(json_array_size(argv), 3);
	cr_assert_str_eq(json_string_value(json_array_get(argv, 2)), "y z");
	cr_assert_str_eq(json_string_value(json_object_get(j, "exe")), "/usr/bin/true");
	json_decref(j);
	kl_buf_free(&b);
}

Test(recutil, syscall_names)
{
	cr_assert_str_eq(kl_syscall_name(0), "read");
	cr_assert_str_eq(kl_syscall_name(257), "openat");
	cr_assert_eq(kl_syscall_nr("execve"), 59);
	cr_assert_eq(kl_syscall_nr("nosuch"), -1);
	cr_assert_null(kl_syscall_name(100000));
	cr_assert_str_eq(kl_category_name(KL_CAT_SOCK_LC), "sock_lc");
	cr_assert_eq(kl_category_from_name("bulk_net"), KL_CAT_BULK_NET);
}

Test(recutil, json_container_has_no_duplicate_keys)
{
	uint8_t buf[512];
	struct kl_container k = { 0 };
	struct kl_tail_builder tb;
	struct kl_buf b = { 0 };
	json_error_t je;

	k.kind = KL_CTR_START;
	k.runtime = KL_RT_CONTAINERD;
	memcpy(buf, &k, sizeof(k));
	kl_tail_init(&tb, buf, sizeof(k), sizeof(buf));
	kl_tail_add_str(&tb, KL_F_CONTAINER_ID, "abc");
	kl_tail_add_str(&tb, KL_F_RUNTIME, "containerd/runc");
	size_t len = kl_tail_finish(&tb);
	kl_rec_to_json(&b, KL_REC_CONTAINER, buf, len, UINT64_MAX);
	/* the runtime enum and the runtime binary once printed under one key */
	json_t *j = json_loads(b.p, JSON_REJECT_DUPLICATES, &je);
	cr_assert_not_null(j, "%s: %s", je.text, b.p);
	cr_assert_str_eq(json_string_value(json_object_get(j, "runtime")), "containerd");
	cr_assert_str_eq(json_string_value(json_object_get(j, "oci_runtime")), "containerd/runc");
	json_decref(j);
	kl_buf_free(&b);
}
