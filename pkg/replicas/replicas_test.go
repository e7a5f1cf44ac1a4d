package replicas

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/ctmpipe/ctmpipe/internal/redistest"
)

// write sets keys in one durable pipeline and returns the pipeline's error,
// else the Writes' verdict.
func write(ctx context.Context, rdb redis.UniversalClient, keys ...string) error {
	dctx, w := Durable(ctx)
	_, err := rdb.Pipelined(dctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Set(dctx, k, "v", time.Minute)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return w.Err()
}

func TestWaitOnPrimary(t *testing.T) {
	primary := redistest.Start(t)
	replica := redistest.StartReplica(t, primary)
	rdb := redis.NewClient(&redis.Options{Addr: primary.Addr, ReadTimeout: time.Second})
	t.Cleanup(func() { rdb.Close() })
	m := NewMetrics(prometheus.NewRegistry())
	cfg := Config{Min: 1, Timeout: 200 * time.Millisecond}
	if err := Install(rdb, cfg, m); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := write(ctx, rdb, "a", "b"); err != nil {
		t.Fatalf("durable write with a replica: %v; want confirmed", err)
	}
	if err := cfg.Ready(ctx, rdb); err != nil {
		t.Errorf("Ready with a replica: %v", err)
	}
	// A plain pipeline carries no WAIT.
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error { p.Set(ctx, "c", "v", 0); return nil }); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.waits); got != 1 {
		t.Errorf("waits = %v; want 1 (the durable write only)", got)
	}

	replica.Pause()
	err := write(ctx, rdb, "d")
	if !IsNotReplicated(err) {
		t.Fatalf("durable write with the replica stopped = %v; want NotReplicatedError", err)
	}
	if want := "confirmed by 0 of 1 replicas within 200ms"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q lacks %q", err, want)
	}
	if got := testutil.ToFloat64(m.timeouts); got != 1 {
		t.Errorf("timeouts = %v; want 1", got)
	}
	primary.DropReplicas(t)
	if err := cfg.Ready(ctx, rdb); err == nil || !strings.Contains(err.Error(), "0 replicas connected, REDIS_MIN_REPLICAS is 1") {
		t.Errorf("Ready with no replica connected = %v; want the counts", err)
	}
	replica.Resume()
	primary.WaitReplicas(t, 1)
	if err := write(ctx, rdb, "e"); err != nil {
		t.Errorf("durable write after the replica came back: %v", err)
	}
}

// On Redis Cluster each node's part of a pipeline waits on that node: a
// write to keys on two masters is confirmed only when both masters' replicas
// have their part, and one stopped replica refuses it.
func TestWaitOnCluster(t *testing.T) {
	masters := redistest.StartClusterN(t, 2)
	replicas := redistest.StartClusterReplicas(t, masters)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{masters[0].Addr}, ReadTimeout: time.Second})
	t.Cleanup(func() { rdb.Close() })
	m := NewMetrics(nil)
	cfg := Config{Min: 1, Timeout: 200 * time.Millisecond}
	if err := Install(rdb, cfg, m); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	keys := make([]string, 20)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i) // spread over both masters
	}
	if err := write(ctx, rdb, keys...); err != nil {
		t.Fatalf("durable write on the cluster: %v; want confirmed", err)
	}
	if got := testutil.ToFloat64(m.waits); got != 2 {
		t.Errorf("waits = %v; want 2 (one per master written)", got)
	}
	if err := cfg.Ready(ctx, rdb); err != nil {
		t.Errorf("Ready: %v", err)
	}
	replicas[1].Pause()
	t.Cleanup(replicas[1].Resume)
	if err := write(ctx, rdb, keys...); !IsNotReplicated(err) {
		t.Errorf("durable write with one master's replica stopped = %v; want NotReplicatedError", err)
	}
	// Keys of the master whose replica answers are still confirmed
	// (StartClusterN gives masters[0] slots 0-8191).
	for _, k := range keys {
		if rdb.ClusterKeySlot(ctx, k).Val() < 8192 {
			if err := write(ctx, rdb, k); err != nil {
				t.Errorf("durable write to the master whose replica answers: %v", err)
			}
			break
		}
	}
}

func TestInstallRefuses(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ReadTimeout: 500 * time.Millisecond})
	defer rdb.Close()
	if err := Install(rdb, Config{Min: 1, Timeout: 500 * time.Millisecond}, nil); err == nil || !strings.Contains(err.Error(), "shorter than the Redis read timeout") {
		t.Errorf("Install with a timeout as long as the read timeout = %v; want refused", err)
	}
	if err := Install(rdb, Config{Min: 1}, nil); err == nil {
		t.Error("Install with no timeout: want refused (WAIT 0 blocks forever)")
	}
	if err := Install(rdb, Config{}, nil); err != nil {
		t.Errorf("Install with Min 0 = %v; want nil (nothing to do)", err)
	}
}

func TestOnlineReplicas(t *testing.T) {
	info := "# Replication\r\nrole:master\r\nconnected_slaves:2\r\nslave0:ip=127.0.0.1,port=1,state=online,offset=10,lag=0\r\n" +
		"slave1:ip=127.0.0.1,port=2,state=wait_bgsave,offset=0,lag=0\r\nmaster_failover_state:no-failover\r\n"
	if got := onlineReplicas(info); got != 1 {
		t.Errorf("onlineReplicas = %d; want 1 (one is still loading)", got)
	}
}
