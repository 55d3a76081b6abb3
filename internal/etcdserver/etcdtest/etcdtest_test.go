package etcdtest

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// A three-member cluster serves with one member down, and members stopped
// and restarted on their ports keep their data.
func TestThreeMembersStopStart(t *testing.T) {
	c := StartCluster(t, 3)
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	// A write proposed as its leader dies is lost without an answer: try
	// for a second at a time while a new leader is elected.
	put := func(k string) error {
		var err error
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err = cli.Put(ctx, k, "v")
			cancel()
			if err == nil {
				return nil
			}
		}
		return err
	}
	if err := put("a"); err != nil {
		t.Fatal(err)
	}
	c.Stop(0)
	if c.Running(0) {
		t.Fatal("member 0 still running")
	}
	if err := put("b"); err != nil {
		t.Fatalf("one member down: %v", err)
	}
	c.Stop(1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, err = cli.Put(ctx, "c", "v")
	cancel()
	if err == nil {
		t.Fatal("write accepted without a quorum")
	}
	c.Start(0, 1)
	if err := put("d"); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	// Member 0 was down for "b": it caught up from the others.
	c.Stop(1, 2)
	c.Start(1)
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// "c" may be there too: the write timed out, not refused, and was
	// committed once the quorum came back.
	for _, k := range []string{"a", "b", "d"} {
		resp, err := cli.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Count != 1 {
			t.Fatalf("key %s lost", k)
		}
	}
}
