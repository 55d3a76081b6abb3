package consensus

import (
	"testing"
	"time"
)

// The round crosses three gossip hops per step (validator, public node,
// public node, validator); with CometBFT's 100 ms default sleep per hop a
// 1 s target gave a block every 1.4 s. The sleep must stay a small part of
// the block time, and the timeouts must leave room for the round.
func TestCometConfigTiming(t *testing.T) {
	for _, bt := range []time.Duration{100 * time.Millisecond, time.Second, 2 * time.Second, 10 * time.Second} {
		c, err := Config{Home: t.TempDir(), EngineURL: "http://127.0.0.1:8551", JWTSecret: make([]byte, 32), BlockTime: bt}.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		cc := c.cometConfig().Consensus
		if g := cc.PeerGossipSleepDuration; g > bt/20 && g > 5*time.Millisecond || g > 100*time.Millisecond || g < 5*time.Millisecond {
			t.Errorf("block time %v: peer gossip sleep %v, want at most 5%% of the block time within [5 ms, 100 ms]", bt, g)
		}
		if tc := cc.TimeoutCommit; tc >= bt || tc < bt/2 { //nolint:staticcheck // the v1.0 knob
			t.Errorf("block time %v: timeout_commit %v, want in [bt/2, bt)", bt, tc)
		}
		if err := cc.ValidateBasic(); err != nil {
			t.Errorf("block time %v: %v", bt, err)
		}
	}
	c, _ := Config{Home: t.TempDir(), EngineURL: "http://127.0.0.1:8551", JWTSecret: make([]byte, 32)}.withDefaults()
	if g := c.cometConfig().Consensus.PeerGossipSleepDuration; g != 20*time.Millisecond {
		t.Errorf("default block time: gossip sleep %v, want 20ms", g)
	}
}
