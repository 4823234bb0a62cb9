package transport

import (
	"fmt"

	zmq "github.com/pebbe/zmq4"
)

// openZMQ creates the zmq socket behind an Endpoint or a Socket: the
// high-water marks and message size limit of opt, the linger of Close, IPv6 when the host is an IPv6 literal, the
// identity and subscriptions of opt, then bound to or connected to addr.
// It returns the resolved address (the real port of a "tcp://host:0" bind).
func openZMQ(t SocketType, addr string, bind bool, opt Options) (_ *zmq.Socket, resolved string, err error) {
	var zt zmq.Type
	switch t {
	case Router:
		zt = zmq.ROUTER
	case Dealer:
		zt = zmq.DEALER
	case Pub:
		zt = zmq.PUB
	case Sub:
		zt = zmq.SUB
	case XPub:
		zt = zmq.XPUB
	default:
		return nil, "", fmt.Errorf("transport: unknown socket type %d", int(t))
	}
	scheme, host, _, err := ParseAddress(addr)
	if err != nil {
		return nil, "", err
	}
	ctx, err := sharedContext()
	if err != nil {
		return nil, "", err
	}
	sock, err := ctx.NewSocket(zt)
	if err != nil {
		return nil, "", fmt.Errorf("transport: new %v socket: %w", zt, err)
	}
	defer func() {
		if err != nil {
			_ = sock.SetLinger(0)
			_ = sock.Close()
		}
	}()
	// HWM 0 (unlimited) unless opt says otherwise: at a finite mark
	// ROUTER and PUB drop silently, so a caller that sets one also says how
	// it learns about it (RouterMandatory's backlog, XPubNoDrop with TrySend).
	if opt.SendHWM < 0 || opt.RecvHWM < 0 || opt.MaxMsgSize < 0 {
		return nil, "", fmt.Errorf("transport: negative HWM or message size limit")
	}
	if err := sock.SetSndhwm(opt.SendHWM); err != nil {
		return nil, "", fmt.Errorf("transport: set send HWM: %w", err)
	}
	if err := sock.SetRcvhwm(opt.RecvHWM); err != nil {
		return nil, "", fmt.Errorf("transport: set receive HWM: %w", err)
	}
	if opt.MaxMsgSize > 0 {
		if err := sock.SetMaxmsgsize(opt.MaxMsgSize); err != nil {
			return nil, "", fmt.Errorf("transport: set max message size: %w", err)
		}
	}
	if opt.XPubNoDrop && t == XPub {
		if err := sock.SetXpubNodrop(true); err != nil {
			return nil, "", fmt.Errorf("transport: set xpub nodrop: %w", err)
		}
	}
	if err := sock.SetLinger(linger); err != nil {
		return nil, "", fmt.Errorf("transport: set linger: %w", err)
	}
	if scheme == "tcp" && isIPv6Host(host) {
		if err := sock.SetIpv6(true); err != nil {
			return nil, "", fmt.Errorf("transport: set ipv6: %w", err)
		}
	}
	if opt.RouterMandatory && t == Router {
		if err := sock.SetRouterMandatory(1); err != nil {
			return nil, "", fmt.Errorf("transport: set router mandatory: %w", err)
		}
	}
	if len(opt.Identity) > 0 && (t == Router || t == Dealer) {
		if err := sock.SetIdentity(string(opt.Identity)); err != nil {
			return nil, "", fmt.Errorf("transport: set identity %q: %w", opt.Identity, err)
		}
	}
	if t == Sub {
		topics := opt.Subscribe
		if topics == nil {
			topics = [][]byte{nil}
		}
		for _, topic := range topics {
			if err := sock.SetSubscribe(string(topic)); err != nil {
				return nil, "", fmt.Errorf("transport: subscribe %q: %w", topic, err)
			}
		}
	}
	resolved = addr
	if bind {
		if err := sock.Bind(addr); err != nil {
			return nil, "", fmt.Errorf("transport: bind %v to %s: %w", t, addr, err)
		}
		if resolved, err = sock.GetLastEndpoint(); err != nil {
			return nil, "", fmt.Errorf("transport: last endpoint of %s: %w", addr, err)
		}
	} else if err := sock.Connect(addr); err != nil {
		return nil, "", fmt.Errorf("transport: connect %v to %s: %w", t, addr, err)
	}
	return sock, resolved, nil
}
