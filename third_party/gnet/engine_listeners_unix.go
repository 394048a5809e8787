// Copyright (c) 2019 The Gnet Authors. All rights reserved.
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
//     http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package gnet

import (
	"errors"
	"time"

	"github.com/panjf2000/gnet/v2/pkg/queue"
)

// blastbeat patch: listeners added and closed while the engine runs (a
// configuration reload). Without WithReusePort one loop, the ingress,
// polls every listener and is the only goroutine that uses eng.listeners
// until the engine stops (the other loops have a copy, made at start;
// closeEventLoops runs after every loop returned), so both changes run
// on it, through its task queue.

// With WithReusePort every loop accepts on a listener socket of its own
// (SO_REUSEPORT): a change runs on every loop, each binding its own. With
// WithLoopAccept (patch 11) too, but the first loop binds the socket and
// the others poll duplicates of it.

func (eng *engine) addListener(protoAddr string) error {
	<-eng.started
	network, addr, err := parseProtoAddr(protoAddr)
	if err != nil {
		return err
	}
	var loops []*eventloop
	if eng.ingress != nil {
		loops = []*eventloop{eng.ingress}
	} else {
		eng.eventLoops.iterate(func(_ int, el *eventloop) bool { loops = append(loops, el); return true })
	}
	var added []*eventloop
	var first *listener
	for _, el := range loops {
		var ln *listener
		var err error
		// LoopAccept: one socket, polled by every loop; so too a unix
		// socket (SO_REUSEPORT does not apply to it: each loop would
		// remove the path and bind its own) and an inherited one.
		if first != nil && (!eng.opts.ReusePort || network == "unix" || first.inherited) {
			ln, err = first.share()
		} else {
			ln, err = initListener(network, addr, eng.opts)
		}
		if err == nil {
			if first == nil {
				first = ln
			}
			err = el.runTask(func() error {
				el.listeners[ln.fd] = ln
				if err := el.pollListener(ln); err != nil {
					delete(el.listeners, ln.fd)
					return err
				}
				return nil
			})
			if err != nil {
				ln.close()
			}
		}
		if err != nil {
			for _, done := range added {
				_ = done.closeListenerTask(network, addr)
			}
			return err
		}
		added = append(added, el)
	}
	return nil
}

func (eng *engine) closeListener(protoAddr string) error {
	<-eng.started
	network, addr, err := parseProtoAddr(protoAddr)
	if err != nil {
		return err
	}
	if eng.ingress != nil {
		return eng.ingress.closeListenerTask(network, addr)
	}
	var first error
	eng.eventLoops.iterate(func(_ int, el *eventloop) bool {
		if err := el.closeListenerTask(network, addr); err != nil && first == nil {
			first = err
		}
		return true
	})
	return first
}

// closeListenerTask closes, on el, its listener for addr.
func (el *eventloop) closeListenerTask(network, addr string) error {
	return el.runTask(func() error {
		for fd, ln := range el.listeners {
			// An inherited socket (fd://N) keeps its address N, and its
			// network became the socket's own.
			if ln.address == addr && (ln.network == network || network == "fd" && ln.inherited) {
				_ = el.poller.Delete(fd)
				ln.close()
				delete(el.listeners, fd)
				return nil
			}
		}
		return errors.New("gnet: no listener " + network + "://" + addr)
	})
}

// runTask runs fn on el's goroutine and returns its error.
func (el *eventloop) runTask(fn func() error) error {
	done := make(chan error, 1)
	err := el.poller.Trigger(queue.HighPriority, func(any) error {
		done <- fn()
		return nil
	}, nil)
	if err != nil {
		return err
	}
	return waitTask(done)
}

// taskWait bounds the wait for a task of the ingress loop, which runs no
// more once the engine stopped.
const taskWait = 5 * time.Second

func waitTask(done <-chan error) error {
	select {
	case err := <-done:
		return err
	case <-time.After(taskWait):
		return errors.New("gnet: the accepting loop did not run the listener change (engine stopping?)")
	}
}
