package replicas

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Connected returns how many replicas are connected (state online) to the
// primary rdb writes to; on Redis Cluster the fewest of any master's.
func Connected(ctx context.Context, rdb redis.UniversalClient) (int, error) {
	if c, ok := rdb.(*redis.ClusterClient); ok {
		fewest := -1
		var mu sync.Mutex
		err := c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			n, err := connected(ctx, node)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			if fewest < 0 || n < fewest {
				fewest = n
			}
			return nil
		})
		return max(fewest, 0), err
	}
	return connected(ctx, rdb)
}

func connected(ctx context.Context, c redis.Cmdable) (int, error) {
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return 0, fmt.Errorf("redis: info replication: %w", err)
	}
	return onlineReplicas(info), nil
}

// onlineReplicas counts INFO replication's "slaveN:...,state=online,..."
// lines: a replica still loading its first copy is connected but has
// nothing to confirm with.
func onlineReplicas(info string) int {
	n := 0
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && strings.HasPrefix(k, "slave") && k != "slave_read_only" && strings.Contains(","+v+",", ",state=online,") {
			n++
		}
	}
	return n
}

// Ready is nil when at least c.Min replicas are connected (always when Min
// is 0), else an error saying how many are: /readyz then answers 503, since
// the writes would time out and be refused.
func (c Config) Ready(ctx context.Context, rdb redis.UniversalClient) error {
	if c.Min <= 0 {
		return nil
	}
	n, err := Connected(ctx, rdb)
	if err != nil {
		return err
	}
	if n < c.Min {
		return fmt.Errorf("redis: %d replicas connected, REDIS_MIN_REPLICAS is %d", n, c.Min)
	}
	return nil
}

// LogMode logs at start which durability mode runs: the replicas seen and
// what REDIS_MIN_REPLICAS asks for, with a warning when the two disagree.
func LogMode(ctx context.Context, log *zap.Logger, rdb redis.UniversalClient, c Config) {
	n, err := Connected(ctx, rdb)
	fields := []zap.Field{zap.Int("redis_min_replicas", c.Min), zap.Duration("redis_replica_timeout", c.Timeout)}
	if err != nil {
		log.Warn("redis replicas not known; writes wait for REDIS_MIN_REPLICAS replicas", append(fields, zap.Error(err))...)
		return
	}
	fields = append(fields, zap.Int("replicas_connected", n))
	switch {
	case c.Min > 0 && n >= c.Min:
		log.Info("redis writes wait for replicas: a failover loses no acknowledged write", fields...)
	case c.Min > 0:
		log.Warn("redis has fewer replicas than REDIS_MIN_REPLICAS: writes are refused (503, not posted) until they connect", fields...)
	case n > 0:
		log.Warn("redis has replicas but REDIS_MIN_REPLICAS is 0: a failover can lose a click answered 200 or send a conversion twice; set REDIS_MIN_REPLICAS=1", fields...)
	default:
		log.Info("redis writes are done when the primary answers (REDIS_MIN_REPLICAS 0, no replicas)", fields...)
	}
}
