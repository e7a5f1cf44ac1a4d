// Package pprofserver serves Go's profiling endpoints (/debug/pprof/) on an
// address of their own, for PPROF_ADDR: never on the webhook or metrics
// listener, so that turning profiling on cannot expose it to Meta or to a
// scraper. Profiles reveal internals; bind it to localhost.
package pprofserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"go.uber.org/zap"
)

// Start listens on addr and serves /debug/pprof/ until stop is called. It
// logs the bound address (port 0 picks a free one) and returns it.
func Start(addr string, log *zap.Logger) (bound string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("pprof listen (PPROF_ADDR): %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("pprof server stopped", zap.Error(err))
		}
	}()
	bound = ln.Addr().String()
	log.Info("pprof listening", zap.String("addr", bound))
	return bound, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx) // a profile in progress is cut short; nothing to keep
		<-done
	}, nil
}
