// Batched libzmq I/O for BlastBeat: one cgo call moves a whole batch of
// 4-frame ROUTER messages ([identity, sid, type, body]) or 3-frame DEALER
// messages, instead of several calls per frame.
#include <zmq.h>
#include <string.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#define BB_MAXFRAMES 4
#define BB_MAXMSGS 256

typedef struct {
	zmq_msg_t frames[BB_MAXMSGS * BB_MAXFRAMES];
	zmq_msg_t scratch;
} bb_batch;

static bb_batch *bb_batch_new(void) { return (bb_batch *)calloc(1, sizeof(bb_batch)); }
static void bb_batch_free(bb_batch *b) { free(b); }

// bb_recv receives, without blocking, up to maxmsgs messages of exactly
// nframes frames (others are dropped and counted in *dropped) or until
// maxbytes are held. Frame sizes go to sizes[]. It returns the number of
// messages held (their frames stay in b until bb_copy); *left is 1 when
// it stopped at a limit (more may wait) and 0 when libzmq had nothing
// more (EAGAIN). It reads no ZMQ_EVENTS: each read processes libzmq's
// commands, with a poll and a getpid, so the caller reads it once,
// before it sleeps.
static int bb_recv(void *sock, bb_batch *b, int nframes, int maxmsgs, size_t maxbytes,
		size_t *sizes, int *dropped, int *left) {
	int nm = 0;
	size_t bytes = 0;
	*dropped = 0;
	*left = 1;
	// Malformed messages (dropped) count against maxmsgs too: a peer
	// that sends only those cannot keep the call from returning.
	while (nm + *dropped < maxmsgs && bytes < maxbytes) {
		int count = 0, more = 1, flags = ZMQ_DONTWAIT;
		int base = nm * nframes;
		while (more) {
			zmq_msg_t *m = count < nframes ? &b->frames[base + count] : &b->scratch;
			zmq_msg_init(m);
			int rc;
			// EINTR: Go's preemption signals (SIGURG) interrupt libzmq calls.
			while ((rc = zmq_msg_recv(m, sock, flags)) < 0 && errno == EINTR)
				;
			if (rc < 0) {
				zmq_msg_close(m);
				if (count == 0) { // EAGAIN: nothing more now
					*left = 0;
					goto done;
				}
				break; // cannot happen mid-message
			}
			more = zmq_msg_more(m);
			if (count >= nframes) zmq_msg_close(m);
			count++;
		}
		if (count != nframes) {
			for (int i = 0; i < count && i < nframes; i++) zmq_msg_close(&b->frames[base + i]);
			(*dropped)++;
			continue;
		}
		for (int i = 0; i < nframes; i++) {
			sizes[base + i] = zmq_msg_size(&b->frames[base + i]);
			bytes += sizes[base + i];
		}
		nm++;
	}
done:
	return nm;
}

// bb_copy copies the n frames held in b back to back into dst, and
// releases them.
static void bb_copy(bb_batch *b, int n, char *dst) {
	for (int i = 0; i < n; i++) {
		size_t sz = zmq_msg_size(&b->frames[i]);
		if (sz) memcpy(dst, zmq_msg_data(&b->frames[i]), sz);
		dst += sz;
		zmq_msg_close(&b->frames[i]);
	}
}

// bb_send sends nmsgs messages of nframes frames each, whose bytes lie back
// to back in buf with their lengths in lens[]. Every frame is sent with
// ZMQ_DONTWAIT; only the first frame of a message can fail (ROUTER
// mandatory routing and the high-water mark are checked there). It
// returns how many messages were sent; on a failure *err gets errno
// (negated when the failure was past the first frame). Like bb_recv it
// reads no ZMQ_EVENTS.
static int bb_send(void *sock, const char *buf, const uint32_t *lens, int nframes, int nmsgs,
		int *err) {
	int i;
	*err = 0;
	for (i = 0; i < nmsgs; i++) {
		for (int f = 0; f < nframes; f++) {
			uint32_t l = lens[i * nframes + f];
			int flags = ZMQ_DONTWAIT | (f < nframes - 1 ? ZMQ_SNDMORE : 0);
			int rc;
			while ((rc = zmq_send(sock, buf, l, flags)) < 0 && errno == EINTR)
				;
			if (rc < 0) {
				*err = errno;
				if (f > 0) *err = -errno; // mid-message: should not happen
				goto out;
			}
			buf += l;
		}
	}
out:
	return i;
}

// bb_send_one sends one message of up to 4 frames given as separate
// buffers (no copy into a batch buffer first: for large bodies). It
// returns 0 or errno; only the first frame can fail.
static int bb_send_one(void *sock, int nframes, const char *f0, size_t l0, const char *f1, size_t l1,
		const char *f2, size_t l2, const char *f3, size_t l3) {
	const char *f[4] = {f0, f1, f2, f3};
	size_t l[4] = {l0, l1, l2, l3};
	for (int i = 0; i < nframes; i++) {
		int flags = ZMQ_DONTWAIT | (i < nframes - 1 ? ZMQ_SNDMORE : 0);
		int rc;
		while ((rc = zmq_send(sock, f[i], l[i], flags)) < 0 && errno == EINTR)
			;
		if (rc < 0) return i == 0 ? errno : -errno;
	}
	return 0;
}

// bb_events returns ZMQ_EVENTS.
static int bb_events(void *sock) {
	int ev = 0;
	size_t len = sizeof(int);
	while (zmq_getsockopt(sock, ZMQ_EVENTS, &ev, &len) < 0) {
		if (errno != EINTR) return 0;
	}
	return ev;
}

// Bodies sent by reference (bb_send_ref): libzmq reads the body straight
// from the caller's buffer instead of copying it, and calls bb_ref_done
// once it no longer needs it, from whichever of its threads dropped the
// message last. Each buffer lent so has a bb_ref record; bb_ref_done
// pushes it onto its queue (a lock-free stack: any thread pushes, the
// owner of the Batcher takes), and the owner gives the buffer back.
typedef struct bb_ref {
	struct bb_ref *next;
	struct bb_refq *q;
	int slot; // the Go side's index of the lent buffer
} bb_ref;

typedef struct bb_refq {
	bb_ref *head; // pushed by bb_ref_done, from any thread
	bb_ref *rest; // taken and not yet returned (the owner's only)
} bb_refq;

static bb_refq *bb_refq_new(void) { return (bb_refq *)calloc(1, sizeof(bb_refq)); }
static void bb_refq_free(bb_refq *q) { free(q); }

static bb_ref *bb_ref_new(bb_refq *q, int slot) {
	bb_ref *r = (bb_ref *)calloc(1, sizeof(bb_ref));
	if (r) {
		r->q = q;
		r->slot = slot;
	}
	return r;
}
static void bb_ref_free(bb_ref *r) { free(r); }

// bb_ref_done is libzmq's free function of a body sent by reference.
static void bb_ref_done(void *data, void *hint) {
	(void)data;
	bb_ref *r = (bb_ref *)hint;
	bb_refq *q = r->q;
	bb_ref *h = __atomic_load_n(&q->head, __ATOMIC_RELAXED);
	do {
		r->next = h;
	} while (!__atomic_compare_exchange_n(&q->head, &h, r, 1, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
}

// bb_ref_take writes the slots of up to max records given back into out
// and returns how many.
static int bb_ref_take(bb_refq *q, int *out, int max) {
	int n = 0;
	while (n < max) {
		if (!q->rest) {
			q->rest = __atomic_exchange_n(&q->head, (bb_ref *)0, __ATOMIC_ACQUIRE);
			if (!q->rest) break;
		}
		bb_ref *r = q->rest;
		q->rest = r->next;
		r->next = 0;
		out[n++] = r->slot;
	}
	return n;
}

// bb_send_ref is bb_send_one for 4 frames whose last one, the body, libzmq
// takes by reference: r goes to bb_ref_done exactly once, when libzmq is
// done with the body, or at once when the message was not sent. It
// returns 0 or errno as bb_send_one does.
static int bb_send_ref(void *sock, const char *f0, size_t l0, const char *f1, size_t l1,
		const char *f2, size_t l2, char *body, size_t bl, bb_ref *r) {
	const char *f[3] = {f0, f1, f2};
	size_t l[3] = {l0, l1, l2};
	int rc;
	for (int i = 0; i < 3; i++) {
		while ((rc = zmq_send(sock, f[i], l[i], ZMQ_DONTWAIT | ZMQ_SNDMORE)) < 0 && errno == EINTR)
			;
		if (rc < 0) {
			int e = i == 0 ? errno : -errno;
			bb_ref_done(body, r);
			return e;
		}
	}
	zmq_msg_t m;
	if (zmq_msg_init_data(&m, body, bl, bb_ref_done, r) != 0) {
		// Only when out of memory: send a copy instead.
		bb_ref_done(body, r);
		while ((rc = zmq_send(sock, body, bl, ZMQ_DONTWAIT)) < 0 && errno == EINTR)
			;
		return rc < 0 ? -errno : 0;
	}
	while ((rc = zmq_msg_send(&m, sock, ZMQ_DONTWAIT)) < 0 && errno == EINTR)
		;
	if (rc < 0) {
		int e = -errno;
		zmq_msg_close(&m); // calls bb_ref_done
		return e;
	}
	return 0;
}
