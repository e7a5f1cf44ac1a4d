package startup

import (
	"fmt"
	"strconv"

	"github.com/ctmpipe/ctmpipe/internal/settings"
	"github.com/ctmpipe/ctmpipe/pkg/replicas"
)

// ReplicaSettings are REDIS_MIN_REPLICAS and REDIS_REPLICA_TIMEOUT for --help;
// every binary that writes to Redis lists them.
func ReplicaSettings() []settings.Setting {
	return []settings.Setting{
		{Env: "REDIS_MIN_REPLICAS", Flag: "redis-min-replicas", Default: "0", Help: "replicas that must confirm (WAIT) a write that has to survive a Redis failover before it counts as done: a context before the webhook's 200, the ledger's claim and post marker before a POST and its sent mark before the ack, registry and pause records; 0: the primary's answer is enough (a failover can then lose a click answered 200 or send a conversion twice); 1 with a replica"},
		{Env: "REDIS_REPLICA_TIMEOUT", Flag: "redis-replica-timeout", Default: "500ms", Help: "how long such a write waits for REDIS_MIN_REPLICAS replicas; unconfirmed, ingest answers 503 (Meta retries) and the sender does not post (the events come again); shorter than the Redis read timeout"},
	}
}

// ReplicasFrom reads the two settings from v (parsed with ReplicaSettings).
func ReplicasFrom(v *settings.Values) (replicas.Config, error) {
	n, err := strconv.Atoi(v.Text("REDIS_MIN_REPLICAS"))
	if err != nil || n < 0 {
		return replicas.Config{}, fmt.Errorf("config: REDIS_MIN_REPLICAS: want 0 or a positive integer")
	}
	return replicas.Config{Min: n, Timeout: v.Duration("REDIS_REPLICA_TIMEOUT")}, v.Err()
}
