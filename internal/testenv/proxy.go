package testenv

import (
	"fmt"
	"net"
	"sync"
)

// Proxy is a TCP proxy on 127.0.0.1 in front of a server (Redis, a broker),
// for faults the server cannot make itself: a reply lost after the server
// acted on the request, connections refused while the server runs.
//
// It assumes a request/response protocol with one request in flight per
// connection (go-redis without pipelining): it pairs each chunk the server
// sends with the last chunk the client sent. All methods are safe for
// concurrent use.
type Proxy struct {
	target string
	addr   string

	mu          sync.Mutex
	ln          net.Listener // nil while refusing
	conns       map[*proxyConn]struct{}
	lose        func(request, reply []byte) bool // one-shot; nil: none armed
	refuseAfter bool                             // refuse once lose fired
	lost        int
	closed      bool
	stalled     bool
	resume      chan struct{} // closed when a stall ends
	wg          sync.WaitGroup
}

type proxyConn struct {
	client, server net.Conn
	mu             sync.Mutex
	lastReq        []byte
}

// StartProxy listens on a free port of 127.0.0.1 and forwards every
// connection to target. The caller must Close it.
func StartProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("testenv: proxy listen: %w", err)
	}
	p := &Proxy{target: target, addr: ln.Addr().String(), ln: ln, conns: map[*proxyConn]struct{}{}}
	p.wg.Add(1)
	go p.accept(ln)
	return p, nil
}

// Addr is the proxy's host:port; it stays the same across Refuse.
func (p *Proxy) Addr() string { return p.addr }

// LoseReply arms a one-shot fault: the first server reply for which
// match(request, reply) is true (request: the client's last chunk on that
// connection) is read from the server — so the server did act on the
// request — and dropped, and the client's connection is closed: the client
// sees a lost connection and cannot know the request ran.
func (p *Proxy) LoseReply(match func(request, reply []byte) bool) {
	p.mu.Lock()
	p.lose, p.refuseAfter = match, false
	p.mu.Unlock()
}

// LoseReplyThenRefuse is LoseReply followed, before the client's connection
// closes, by Refuse(true): a client that tries again gets "connection
// refused" although its first attempt ran.
func (p *Proxy) LoseReplyThenRefuse(match func(request, reply []byte) bool) {
	p.mu.Lock()
	p.lose, p.refuseAfter = match, true
	p.mu.Unlock()
}

// Lost returns how many replies LoseReply dropped so far.
func (p *Proxy) Lost() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lost
}

// Refuse(true) stops listening (new connections are refused, as by a server
// that is down) and closes every open connection; Refuse(false) listens on
// the same address again.
func (p *Proxy) Refuse(on bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refuseLocked(on)
}

func (p *Proxy) refuseLocked(on bool) error {
	if p.closed {
		return nil
	}
	if on {
		if p.ln != nil {
			_ = p.ln.Close()
			p.ln = nil
		}
		for c := range p.conns {
			c.close()
		}
		return nil
	}
	if p.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("testenv: proxy listen again on %s: %w", p.addr, err)
	}
	p.ln = ln
	p.wg.Add(1)
	go p.accept(ln)
	return nil
}

// Stall holds (on) or lets go (off) every byte in both directions without
// closing a connection: the server and the client both still see the other
// connected, and nothing arrives — a replica that stopped reading, a network
// that drops packets.
func (p *Proxy) Stall(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on == p.stalled {
		return
	}
	p.stalled = on
	if on {
		p.resume = make(chan struct{})
	} else {
		close(p.resume)
	}
}

// wait blocks while the proxy is stalled.
func (p *Proxy) wait() {
	p.mu.Lock()
	stalled, resume := p.stalled, p.resume
	p.mu.Unlock()
	if stalled {
		<-resume
	}
}

// Close stops the proxy and closes every connection. Safe to call twice.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	_ = p.refuseLocked(true)
	p.closed = true
	if p.stalled {
		p.stalled = false
		close(p.resume)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		cc, err := ln.Accept()
		if err != nil {
			return
		}
		sc, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = cc.Close()
			continue
		}
		c := &proxyConn{client: cc, server: sc}
		p.mu.Lock()
		if p.closed || p.ln != ln {
			p.mu.Unlock()
			c.close()
			continue
		}
		p.conns[c] = struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go p.up(c)
		go p.down(c)
	}
}

func (c *proxyConn) close() {
	_ = c.client.Close()
	_ = c.server.Close()
}

func (p *Proxy) forget(c *proxyConn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.close()
}

// up copies client -> server and remembers the last request.
func (p *Proxy) up(c *proxyConn) {
	defer p.wg.Done()
	defer p.forget(c)
	buf := make([]byte, 64<<10)
	for {
		n, err := c.client.Read(buf)
		if n > 0 {
			c.mu.Lock()
			c.lastReq = append(c.lastReq[:0], buf[:n]...)
			c.mu.Unlock()
			p.wait()
			if _, werr := c.server.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// down copies server -> client, dropping the reply LoseReply asked for.
func (p *Proxy) down(c *proxyConn) {
	defer p.wg.Done()
	defer p.forget(c)
	buf := make([]byte, 64<<10)
	for {
		n, err := c.server.Read(buf)
		if n > 0 {
			c.mu.Lock()
			req := append([]byte(nil), c.lastReq...)
			c.mu.Unlock()
			p.mu.Lock()
			lose := p.lose != nil && p.lose(req, buf[:n])
			if lose {
				p.lose = nil
				p.lost++
				if p.refuseAfter {
					_ = p.refuseLocked(true)
				}
			}
			p.mu.Unlock()
			if lose {
				return // forget closes both sides: the reply never reaches the client
			}
			p.wait()
			if _, werr := c.client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
