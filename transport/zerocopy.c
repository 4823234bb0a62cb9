// See zerocopy.h.

#include <errno.h>
#include <string.h>

#include "zerocopy.h"
#include "_cgo_export.h"

int tp_recv(void *sock, int flags, size_t share_min, zmq_msg_t *m, tp_part *out) {
	zmq_msg_init(m);
	if (zmq_msg_recv(m, sock, flags) < 0) {
		int e = errno;
		zmq_msg_close(m);
		errno = e;
		return -1;
	}
	if (share_min > 0 && zmq_msg_size(m) >= share_min) {
		// zmq_msg_copy turns a message shared (flag and count 2, not
		// atomically); closing the copy leaves it shared with count 1.
		zmq_msg_t tmp;
		zmq_msg_init(&tmp);
		if (zmq_msg_copy(&tmp, m) == 0) {
			zmq_msg_close(&tmp);
		}
	}
	out->data = zmq_msg_data(m);
	out->size = zmq_msg_size(m);
	out->more = zmq_msg_more(m);
	return 0;
}

int tp_recv_parts(void *sock, int flags, zmq_msg_t *msgs, tp_part *out, int max, int *srcfd) {
	for (int n = 0; n < max; n++) {
		int rc;
		while ((rc = tp_recv(sock, flags, 0, &msgs[n], &out[n])) != 0 && n > 0 && errno == EINTR) {
		}
		if (rc != 0) {
			int e = errno;
			tp_close_parts(msgs, n);
			errno = e;
			return -1;
		}
		if (srcfd != NULL) {
			// Any part may carry it: a ROUTER's identity part has the
			// descriptor only when the message was not prefetched by a
			// poll, the data parts always.
			int fd = tp_msg_srcfd(&msgs[n]);
			if (fd >= 0) {
				*srcfd = fd;
			}
		}
		if (!out[n].more) {
			return n + 1;
		}
	}
	return max;
}

int tp_msg_srcfd(zmq_msg_t *msg) {
	// ZMQ_SRCFD is deprecated in favour of the "__fd" metadata property,
	// which is what libzmq 4.3 reads for it; both exist in Debian's 4.3.4.
	return zmq_msg_get(msg, ZMQ_SRCFD);
}

void tp_close_parts(zmq_msg_t *msgs, int n) {
	for (int i = 0; i < n; i++) {
		zmq_msg_close(&msgs[i]);
	}
}

void tp_copy(void *dst, const void *src, size_t n) {
	memcpy(dst, src, n);
}

void tp_msg_close(zmq_msg_t *msg) {
	zmq_msg_close(msg);
}

static void tp_release_pinned(void *data, void *hint) {
	(void)data;
	transportUnpin((uintptr_t)hint);
}

int tp_send_pinned(void *sock, void *data, size_t size, uintptr_t id, int flags) {
	zmq_msg_t m;
	if (zmq_msg_init_data(&m, data, size, tp_release_pinned, (void *)id) != 0) {
		// libzmq has not taken the buffer: release it here, as promised.
		int e = errno;
		transportUnpin(id);
		errno = e;
		return -1;
	}
	if (zmq_msg_send(&m, sock, flags) < 0) {
		int e = errno;
		zmq_msg_close(&m); // calls tp_release_pinned
		errno = e;
		return -1;
	}
	return 0;
}

int tp_send_shared(void *sock, zmq_msg_t *held, size_t size, int flags) {
	if (size != zmq_msg_size(held)) {
		return zmq_send(sock, zmq_msg_data(held), size, flags) < 0 ? -1 : 0;
	}
	zmq_msg_t m;
	zmq_msg_init(&m);
	if (zmq_msg_copy(&m, held) != 0) {
		int e = errno;
		zmq_msg_close(&m);
		errno = e;
		return -1;
	}
	if (zmq_msg_send(&m, sock, flags) < 0) {
		int e = errno;
		zmq_msg_close(&m);
		errno = e;
		return -1;
	}
	return 0;
}

int tp_socket_type(void *sock) {
	int t = 0;
	size_t n = sizeof t;
	if (zmq_getsockopt(sock, ZMQ_TYPE, &t, &n) != 0) {
		return -1;
	}
	return t;
}
