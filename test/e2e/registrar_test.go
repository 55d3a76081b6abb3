//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// What the suite reads from the registrar, over https on the host's
// loopback, and from docker about containers.

// get fetches a registrar path with a credential (none when cred is "").
func (c *consortium) get(path, cred string) (int, []byte, error) {
	req, err := http.NewRequest("GET", c.registrar+path, nil)
	if err != nil {
		return 0, nil, err
	}
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// nodeView is the part of the registrar's node view the suite reads.
type nodeView struct {
	ID          string    `json:"id"`
	Member      string    `json:"member"`
	Role        string    `json:"role"`
	Enode       string    `json:"enode"`
	PublicEnode string    `json:"public_enode"`
	Live        bool      `json:"live"`
	Expires     time.Time `json:"expires"`
	Updated     time.Time `json:"updated"`
}

func (c *consortium) registrarNodes() ([]nodeView, error) {
	code, b, err := c.get("/v1/nodes", c.admin)
	if err != nil {
		return nil, err
	}
	if code != 200 {
		return nil, fmt.Errorf("GET /v1/nodes: %d %s", code, b)
	}
	var v struct {
		Nodes []nodeView `json:"nodes"`
	}
	return v.Nodes, json.Unmarshal(b, &v)
}

// startedAt is when docker last started a container.
func startedAt(id string) (string, error) {
	out, err := run(context.Background(), nil, "docker", "inspect", "-f", "{{.State.StartedAt}}", id)
	return strings.TrimSpace(out), err
}

func itoa(i int) string { return strconv.Itoa(i) }
