// SPDX-License-Identifier: Apache-2.0
/*
 * Crash test: a child process writes (and sometimes deletes) objects of
 * random sizes, 0 bytes to several chunks, eight at a time, and reports
 * every acknowledgement to the parent through a pipe.  The parent kill -9s
 * it at a random moment, reopens the store and checks that
 *   - every acknowledged object reads back byte-identical,
 *   - every acknowledged delete stuck,
 *   - every visible object is whole (its bytes match its key's recipe),
 *   - after compaction no byte of segment space is garbage: orphaned
 *     chunks from the killed writes are reclaimed,
 *   - at the end, with every object deleted, nothing is live and no byte
 *     is left (no chunk refcount leaked by a crash).
 * STRATA_CRASH_ROUNDS sets the number of rounds (default 50).
 *
 * A second case does the same while the tier mover works all the time: the
 * writer's hot tier holds 2 MiB, so it demotes (and spills) constantly, and
 * the writer also reads what it wrote, each cold read promoting its chunks
 * (promote_reads 1): kill -9 lands in the middle of copies and switches.
 * In both, the writer also starts a compaction every 10 ms (most find
 * one running or nothing to do), so kills land in its copies too.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "storeutil.h"
#include "testutil.h"
#include "strata/error.h"
#include "banned.h"

#define CHUNK (64u << 10)
#define MAXKEYS 4096

/* Key "o/<round>/<n>/<size>": the bytes are tu_fill(size, seed(key)). */
static uint64_t key_seed(unsigned round, unsigned n)
{
	/* Every third object starts like others (one of five streams):
	 * their full chunks are shared, refcounted, deduplicated. */
	if (n % 3 == 0)
		return 1u + n / 3 % 5;
	return (uint64_t)round * 1000003u + n;
}

static int parse_key(const char *k, unsigned *round, unsigned *n, size_t *size)
{
	return sscanf(k, "o/%u/%u/%zu", round, n, size) == 3 ? 0 : -1;
}

/* ---- the child ---- */

static int tier_pressure;	/* the second case */

static void writer_opts(struct tenv *e)
{
	if (!tier_pressure)
		return;
	e->o.tier[STORE_TIER_HOT].capacity = 2u << 20;
	/* Demotion drains to 40%: room for promotions between rounds of
	 * demotion. */
	e->o.tier[STORE_TIER_HOT].low_pct = 40;
	e->o.mover_interval_ms = 5;
	e->o.mover_rate = 0;
	e->o.promote_reads = 1;
	e->o.cache_bytes = -1;		/* reads reach the tiers */
}

struct writer {
	struct tenv *e;
	unsigned round, next;
	int fd;
	uint64_t rng;
	char acked[64][64];
	unsigned nacked;
	uint8_t *buf;
};

static uint64_t rnd(struct writer *w)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return w->rng;
}

static void report(struct writer *w, char tag, const char *key)
{
	char line[128];
	int n = snprintf(line, sizeof(line), "%c %s\n", tag, key);

	/* One write per line: atomic on a pipe. */
	if (write(w->fd, line, (size_t)n) != n)
		_exit(3);
}

static void start_one(struct writer *w);

struct op {
	struct writer *w;
	char key[64];
	uint8_t *want;		/* a get: the bytes expected */
	size_t want_len, got;
};

static void put_done(void *arg, int status, const struct store_object_info *i)
{
	struct op *op = arg;
	struct writer *w = op->w;

	(void)i;
	if (status)
		_exit(4);
	report(w, 'P', op->key);
	if (w->nacked < 64)
		memcpy(w->acked[w->nacked++], op->key, 64);
	free(op);
	start_one(w);
}

static void del_done(void *arg, int status)
{
	struct op *op = arg;
	struct writer *w = op->w;

	if (status)
		_exit(5);
	report(w, 'D', op->key);
	free(op);
	start_one(w);
}

static int get_data(void *arg, const void *buf, size_t len)
{
	struct op *op = arg;

	if (op->got + len > op->want_len ||
	    memcmp(op->want + op->got, buf, len))
		_exit(9);	/* read back wrong bytes */
	op->got += len;
	return 0;
}

static void get_done(void *arg, int status)
{
	struct op *op = arg;
	struct writer *w = op->w;

	/* Deleted meanwhile is fine; anything else is a failure. */
	if (status && status != STRATA_ENOOBJECT)
		_exit(10);
	if (!status && op->got != op->want_len)
		_exit(11);
	free(op->want);
	free(op);
	start_one(w);
}

static void start_one(struct writer *w)
{
	struct op *op = calloc(1, sizeof(*op));
	struct store_put *p;
	size_t size;

	op->w = w;
	if (tier_pressure && w->nacked && rnd(w) % 3 == 0) {
		unsigned i = (unsigned)(rnd(w) % w->nacked), round, n;

		memcpy(op->key, w->acked[i], 64);
		if (op->key[0] &&
		    !parse_key(op->key, &round, &n, &op->want_len)) {
			op->want = malloc(op->want_len + 1);
			tu_fill(op->want, op->want_len, key_seed(round, n));
			if (store_get(w->e->s, "crash", op->key,
				      strlen(op->key), 0, UINT64_MAX, NULL,
				      get_data, get_done, op, NULL))
				_exit(12);
			return;
		}
	}
	if (w->nacked && rnd(w) % 8 == 0) {
		unsigned i = (unsigned)(rnd(w) % w->nacked);

		memcpy(op->key, w->acked[i], 64);
		w->acked[i][0] = 0;
		memcpy(w->acked[i], w->acked[--w->nacked], 64);
		if (op->key[0]) {
			report(w, 'd', op->key);	/* intent */
			if (store_delete(w->e->s, "crash", op->key,
					 strlen(op->key), del_done, op))
				_exit(6);
			return;
		}
	}
	switch (rnd(w) % 4) {
	case 0: size = rnd(w) % 100; break;
	case 1: size = rnd(w) % CHUNK; break;
	default: size = rnd(w) % (7 * CHUNK / 2); break;
	}
	snprintf(op->key, sizeof(op->key), "o/%u/%u/%zu", w->round, w->next,
		 size);
	tu_fill(w->buf, size, key_seed(w->round, w->next));
	w->next++;
	if (store_put_begin(w->e->s, "crash", op->key, strlen(op->key), NULL,
			    &p) ||
	    store_put_write(p, w->buf, size))
		_exit(7);
	store_put_commit(p, put_done, op);
}

/* Compaction all the time too, so that kill -9 lands in its copies and
 * switches (it is busy, EBUSY, most of the time: fine). */
static void compact_tick(uv_timer_t *t)
{
	struct tenv *e = t->data;

	(void)store_compact(e->s, 10, NULL, NULL);
}

static void child(const char *root, unsigned round, int fd)
{
	struct tenv e;
	struct writer w = { .e = &e, .round = round, .fd = fd };
	uv_timer_t compact;

	alarm(20);		/* never outlive a broken parent */
	tenv_init(&e, root);
	writer_opts(&e);
	if (tenv_open(&e))
		_exit(2);
	w.rng = (uint64_t)getpid() * 2654435761u + round;
	w.buf = malloc(4 * CHUNK);
	uv_timer_init(&e.loop, &compact);
	compact.data = &e;
	uv_timer_start(&compact, compact_tick, 10, 10);
	for (int i = 0; i < 8; i++)
		start_one(&w);
	uv_run(&e.loop, UV_RUN_DEFAULT);
	_exit(8);
}

/* ---- the parent ---- */

struct ack {
	char key[64];
	char state;		/* 'P' acked put, 'd' delete issued, 'D' deleted */
};

static void verify_key(struct tenv *e, const char *key)
{
	unsigned round, n;
	size_t size, glen;
	uint8_t *want, *got;

	ck_assert_msg(parse_key(key, &round, &n, &size) == 0, "bad key %s", key);
	want = tu_xmalloc(size);
	tu_fill(want, size, key_seed(round, n));
	ck_assert_int_eq(tenv_get(e, "crash", key, 0, UINT64_MAX, &got, &glen), 0);
	ck_assert_msg(glen == size && memcmp(got, want, size) == 0,
		      "object %s differs after the crash", key);
	free(want);
	free(got);
}

static size_t read_acks(int fd, struct ack *acks, size_t n)
{
	static char buf[1 << 20];
	size_t len = 0;
	ssize_t r;
	char *line, *save = NULL;

	while ((r = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)r;
	buf[len] = 0;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		size_t i;

		if (strlen(line) < 3 || strlen(line) > 62)
			continue;
		for (i = 0; i < n; i++)
			if (strcmp(acks[i].key, line + 2) == 0)
				break;
		if (i == n) {
			ck_assert_uint_lt(n, MAXKEYS);
			memcpy(acks[n].key, line + 2, strlen(line + 2) + 1);
			n++;
		}
		acks[i].state = line[0];
	}
	return n;
}

static void kill9(unsigned rounds)
{
	char *root = tu_tmpdir("crash");
	struct ack *acks = calloc(MAXKEYS, sizeof(*acks));
	uint64_t total_acked = 0, total_visible = 0;
	struct tenv e;

	srand((unsigned)time(NULL));
	tenv_init(&e, root);
	ck_assert_int_eq(tenv_open(&e), 0);
	ck_assert_int_eq(tenv_mb(&e, "crash"), 0);
	tenv_release(&e, 0);

	for (unsigned round = 1; round <= rounds; round++) {
		struct store_list_opts lo = { 0 };
		struct store_list_result *r;
		struct store_stats st;
		char prefix[32];
		int pfd[2], status;
		size_t nacks;
		pid_t pid;

		ck_assert_int_eq(pipe(pfd), 0);
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			close(pfd[0]);
			child(root, round, pfd[1]);
		}
		close(pfd[1]);
		/* Sometimes during start-up and recovery, mostly mid-write. */
		usleep((useconds_t)(rand() % 10 == 0 ? rand() % 20000
						     : 20000 + rand() % 230000));
		kill(pid, SIGKILL);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
			      "writer died on its own (status %d)", status);
		memset(acks, 0, MAXKEYS * sizeof(*acks));
		nacks = read_acks(pfd[0], acks, 0);
		close(pfd[0]);

		tenv_init(&e, root);
		ck_assert_int_eq(tenv_open(&e), 0);
		for (size_t i = 0; i < nacks; i++) {
			uint8_t *got;
			size_t glen;

			if (acks[i].state == 'P') {
				verify_key(&e, acks[i].key);
				total_acked++;
			} else if (acks[i].state == 'D') {
				ck_assert_int_eq(tenv_get(&e, "crash", acks[i].key,
							  0, UINT64_MAX, &got, &glen),
						 STRATA_ENOOBJECT);
			}
		}
		/* Whatever is visible from this round is whole. */
		snprintf(prefix, sizeof(prefix), "o/%u/", round);
		lo.prefix = prefix;
		lo.prefixlen = strlen(prefix);
		lo.limit = 10000;
		ck_assert_int_eq(store_list(e.s, "crash", &lo, &r), 0);
		for (size_t i = 0; i < r->n; i++) {
			verify_key(&e, r->e[i].key);
			total_visible++;
			/* Keep a quarter, so the store grows slowly and
			 * deletes and compaction see crashes too. */
			if (i % 4)
				ck_assert_int_eq(tenv_rm(&e, "crash", r->e[i].key), 0);
		}
		store_list_result_free(r);
		/* Orphans of the killed writes are reclaimed. */
		ck_assert_int_eq(tenv_compact(&e, 0), 0);
		ck_assert_int_eq(store_stats(e.s, &st), 0);
		ck_assert_uint_eq(tenv_disk_bytes(&e),
				  st.live_bytes[0] + st.live_bytes[1] +
				  64 * st.segments);
		tenv_release(&e, 0);
	}
	/* Every survivor of every round is still intact. */
	tenv_init(&e, root);
	ck_assert_int_eq(tenv_open(&e), 0);
	{
		struct store_list_opts lo = { .limit = 10000 };
		struct store_list_result *r;
		struct store_stats st;

		ck_assert_int_eq(store_list(e.s, "crash", &lo, &r), 0);
		for (size_t i = 0; i < r->n; i++)
			verify_key(&e, r->e[i].key);
		fprintf(stderr, "crash: %u rounds, %llu acked puts verified, %llu visible checked, %zu survivors\n",
			rounds, (unsigned long long)total_acked,
			(unsigned long long)total_visible, r->n);
		ck_assert_uint_gt(total_acked, rounds);	/* it did something */
		ck_assert_int_eq(store_stats(e.s, &st), 0);
		/* The writers' moves left data in both tiers. */
		if (tier_pressure)
			ck_assert_uint_gt(st.live_bytes[STORE_TIER_COLD], 0);
		/* Refcounts are right: with every object deleted, no chunk
		 * is left live and compaction leaves no byte behind. */
		for (size_t i = 0; i < r->n; i++)
			ck_assert_int_eq(tenv_rm(&e, "crash", r->e[i].key), 0);
		store_list_result_free(r);
		ck_assert_int_eq(tenv_compact(&e, 0), 0);
		ck_assert_int_eq(store_stats(e.s, &st), 0);
		ck_assert_uint_eq(st.live_bytes[0] + st.live_bytes[1], 0);
		ck_assert_uint_eq(tenv_disk_bytes(&e), 64 * st.segments);
	}
	tenv_release(&e, 1);
	free(root);
	free(acks);
}

START_TEST(kill9_rounds)
{
	const char *env = getenv("STRATA_CRASH_ROUNDS");

	tier_pressure = 0;
	kill9(env ? (unsigned)strtoul(env, NULL, 10) : 50);
}
END_TEST

START_TEST(kill9_during_tier_moves)
{
	const char *env = getenv("STRATA_CRASH_ROUNDS");

	tier_pressure = 1;
	kill9(env ? (unsigned)strtoul(env, NULL, 10) / 2 + 1 : 25);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("crash");
	TCase *tc = tcase_create("kill9");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, kill9_rounds);
	tcase_add_test(tc, kill9_during_tier_moves);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
