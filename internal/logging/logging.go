// Package logging builds the one logger every ctmpipe binary uses: JSON
// lines with ISO-8601 timestamps and durations as strings ("1.5s"), at the
// level LOG_LEVEL gives, and routes the libraries' own output through it
// (go-redis's pool messages, nats.go's asynchronous errors, the embedded
// nats-server's log), so that nothing reaches stderr in another format.
package logging

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Sample is the option of a service whose log could be flooded by one
// message (ingest answering 503 thousands of times a second): past 10
// entries a second with the same message, every 100th is kept.
var Sample = zap.WrapCore(func(c zapcore.Core) zapcore.Core {
	return zapcore.NewSamplerWithOptions(c, time.Second, 10, 100)
})

// New returns the JSON logger at level writing to w, with opts (Sample) and
// makes it go-redis's logger too (process-wide, at debug level: go-redis
// logs each failed dial, which the services already report once by
// themselves).
func New(w io.Writer, level zapcore.Level, opts ...zap.Option) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	enc.EncodeDuration = zapcore.StringDurationEncoder
	out := zapcore.Lock(zapcore.AddSync(w))
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), out, level)
	log := zap.New(core, append([]zap.Option{zap.ErrorOutput(out)}, opts...)...)
	redis.SetLogger(redisLog{log.Named("redis").Sugar()})
	return log
}

// redisLog is go-redis's logger interface on zap.
type redisLog struct{ log *zap.SugaredLogger }

func (r redisLog) Printf(_ context.Context, format string, v ...any) { r.log.Debugf(format, v...) }

// NATS returns the nats.Connect options that send nats.go's asynchronous
// errors (slow consumer, permission violation; printed on stderr by
// default) and its disconnects to log. Options given after them win.
func NATS(log *zap.Logger) []nats.Option {
	log = log.Named("nats")
	return []nats.Option{
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				log.Warn("nats async error", zap.String("subject", sub.Subject), zap.Error(err))
				return
			}
			log.Warn("nats async error", zap.Error(err))
		}),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if nc.IsClosed() {
				return // our own Close at shutdown
			}
			log.Warn("nats disconnected; reconnecting", zap.Error(err))
		}),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("nats reconnected") }),
		nats.LameDuckModeHandler(func(*nats.Conn) { log.Info("nats server entered lame duck mode; moving to another") }),
	}
}

// ServerLogger is nats-server's server.Logger, declared here so that the
// binaries without an embedded server do not link it.
type ServerLogger interface {
	Noticef(format string, v ...any)
	Warnf(format string, v ...any)
	Fatalf(format string, v ...any)
	Errorf(format string, v ...any)
	Debugf(format string, v ...any)
	Tracef(format string, v ...any)
}

// Server adapts log to the embedded nats-server's Logger (set it with
// server.SetLoggerV2 and Options.NoLog false).
func Server(log *zap.Logger) ServerLogger { return serverLog{log.Named("nats-server").Sugar()} }

type serverLog struct{ log *zap.SugaredLogger }

// Noticef logs at debug: an embedded server's notices (its start-up banner
// and settings, some 30 lines) would bury the all-in-one's own banner; its
// warnings and errors keep their levels, LOG_LEVEL=debug shows the rest.
func (s serverLog) Noticef(format string, v ...any) { s.log.Debugf(format, v...) }
func (s serverLog) Warnf(format string, v ...any)   { s.log.Warnf(format, v...) }
func (s serverLog) Fatalf(format string, v ...any)  { s.log.Errorf("fatal: "+format, v...) }
func (s serverLog) Errorf(format string, v ...any)  { s.log.Errorf(format, v...) }
func (s serverLog) Debugf(format string, v ...any)  { s.log.Debugf(format, v...) }
func (s serverLog) Tracef(format string, v ...any)  { s.log.Debug(fmt.Sprintf(format, v...)) }
