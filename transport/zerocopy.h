// Helpers for transport/zerocopy.go: sending and receiving zmq message
// parts without copying their bytes. Declarations only (zerocopy.go has an
// //export, so its preamble may not define anything).

#ifndef TRANSPORT_ZEROCOPY_H
#define TRANSPORT_ZEROCOPY_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

// One received part.
typedef struct {
	void *data;
	size_t size;
	int more;
} tp_part;

// tp_recv receives one part into msg, which the caller provides (and may
// keep in Go memory: libzmq keeps no pointer to a zmq_msg_t itself). It
// returns 0, the caller then owning msg until tp_msg_close, or -1 with
// errno set and msg closed. A part of at least share_min bytes (share_min
// > 0) is marked shared, so that later zmq_msg_copy calls on it, even
// concurrent ones, only touch libzmq's atomic reference count.
int tp_recv(void *sock, int flags, size_t share_min, zmq_msg_t *msg, tp_part *out);

// tp_recv_parts receives the parts of one message, at most max of them,
// into msgs[0..n) and out[0..n) (both provided by the caller, as for
// tp_recv): one call instead of one per part. It returns n; out[n-1].more
// says whether more parts of the message wait (then call it again). It
// returns -1 with errno set and nothing held if the first part fails (a
// later part of a message that has begun is always there: an interrupted
// receive of one is retried). With srcfd not NULL, a non-negative
// tp_msg_srcfd of a part is stored there (the caller sets it to -1).
int tp_recv_parts(void *sock, int flags, zmq_msg_t *msgs, tp_part *out, int max, int *srcfd);

// tp_msg_srcfd returns the descriptor of the connection a received message
// came through (ZMQ_SRCFD), or -1 (inproc, or unknown).
int tp_msg_srcfd(zmq_msg_t *msg);

// tp_close_parts closes msgs[0..n).
void tp_close_parts(zmq_msg_t *msgs, int n);

// tp_copy copies n bytes (memcpy) from src to dst.
void tp_copy(void *dst, const void *src, size_t n);

// tp_msg_close closes a message from tp_recv.
void tp_msg_close(zmq_msg_t *msg);

// The send functions return 0, or -1 with errno set (EAGAIN: try again
// later; the part was not queued).

// tp_send_pinned sends size bytes at data as one part without copying them.
// data must stay valid and unchanged until libzmq releases the part, which
// it reports by calling the Go function transportUnpin(id). It does so
// exactly once, also when the send fails (then before tp_send_pinned
// returns).
int tp_send_pinned(void *sock, void *data, size_t size, uintptr_t id, int flags);

// tp_send_shared sends the first size bytes of held (a message from
// tp_recv). The whole message is sent without copying: libzmq's reference
// count keeps the bytes alive until it is done with them. A shorter prefix
// is copied.
int tp_send_shared(void *sock, zmq_msg_t *held, size_t size, int flags);

// tp_socket_type returns the ZMQ_TYPE of sock, or -1 with errno set.
int tp_socket_type(void *sock);

#endif
