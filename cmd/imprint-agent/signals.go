package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

// stopper implements the two-stage stop of STYLE.md 3.2: the first
// SIGINT/SIGTERM asks the run to stop at the next step boundary
// (Agent.Stopping), the second cancels the context and aborts the running
// step. In both cases the journal lets `imprint-agent resume` go on.
type stopper struct {
	requested atomic.Bool
}

func (s *stopper) Stopping() bool { return s.requested.Load() }

// watch returns a context cancelled on the second signal.
func (s *stopper) watch(parent context.Context, out io.Writer) (context.Context, func()) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-ch:
				if s.requested.CompareAndSwap(false, true) {
					fmt.Fprintf(out, "\nimprint-agent: %v: stopping after the current step (again to abort it)\n", sig)
					continue
				}
				fmt.Fprintf(out, "\nimprint-agent: %v: aborting the current step\n", sig)
				cancel()
				return
			}
		}
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}
