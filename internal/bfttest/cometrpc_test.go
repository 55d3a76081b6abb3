package bfttest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/consortium/consortium/internal/registry"
)

// commitInfo is what one CometBFT block says of consensus: its proposer and
// the validators whose precommits for the block before it it carries.
type commitInfo struct {
	Height   int64
	Proposer string
	Signers  map[string]bool // validator address (upper-case hex) -> signed
}

// cometBlock reads block height (0: the latest) from n's CometBFT RPC.
func (n *node) cometBlock(height int64) (*commitInfo, error) {
	url := "http://127.0.0.1:" + strconv.Itoa(n.cmtRPC) + "/block"
	if height > 0 {
		url += "?height=" + strconv.FormatInt(height, 10)
	}
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Result *struct {
			Block struct {
				Header struct {
					Height   string `json:"height"`
					Proposer string `json:"proposer_address"`
				} `json:"header"`
				LastCommit struct {
					Signatures []struct {
						Flag      int    `json:"block_id_flag"`
						Validator string `json:"validator_address"`
					} `json:"signatures"`
				} `json:"last_commit"`
			} `json:"block"`
		} `json:"result"`
		Error *struct {
			Message string `json:"message"`
			Data    string `json:"data"`
		} `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("%s: %v", url, err)
	}
	if out.Error != nil || out.Result == nil {
		return nil, fmt.Errorf("%s: error %+v", url, out.Error)
	}
	b := out.Result.Block
	h, err := strconv.ParseInt(b.Header.Height, 10, 64)
	if err != nil {
		return nil, err
	}
	ci := &commitInfo{Height: h, Proposer: b.Header.Proposer, Signers: map[string]bool{}}
	for _, s := range b.LastCommit.Signatures {
		// 2 is BlockIDFlagCommit: a precommit for the block.
		if s.Flag == 2 {
			ci.Signers[s.Validator] = true
		}
	}
	return ci, nil
}

// reportsConsensus checks what the registrar holds of n's status: a
// consensus view that names all four validators after their members.
func (c *cluster) reportsConsensus(n *node) error {
	req, _ := http.NewRequest("GET", c.regURL+"/v1/nodes/"+n.spec.ID, nil)
	req.Header.Set("Authorization", "Bearer "+c.regAdmin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var v registry.NodeView
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return err
	}
	if v.Status == nil || v.Status.Consensus == nil {
		return fmt.Errorf("no consensus view in %s's status (%d)", n.name, resp.StatusCode)
	}
	cs := v.Status.Consensus
	names := map[string]bool{}
	for _, val := range cs.Validators {
		names[val.Name] = true
	}
	if cs.Height < 1 || len(cs.Validators) != len(members) || cs.Validator != c.member(n.member).Validator.Address.String() {
		return fmt.Errorf("consensus view %+v", cs)
	}
	for _, m := range members {
		if !names[m] {
			return fmt.Errorf("validator of %s not named in %+v", m, cs.Validators)
		}
	}
	return nil
}
