package registrartest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/consortium/consortium/internal/api"
)

// AddMember adds a member through the API, as `consortium member add` does,
// and returns its credential. It fails the test if the registrar refuses.
func (r *Registrar) AddMember(t testing.TB, name string) string {
	t.Helper()
	cred, err := r.addMember(name)
	if err != nil {
		t.Fatalf("adding member %s: %v", name, err)
	}
	return cred
}

func (r *Registrar) addMember(name string) (string, error) {
	body, err := json.Marshal(api.MemberRequest{Name: name})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequest(http.MethodPost, r.URL+"/v1/members", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+r.Admin)
	req.Header.Set("Content-Type", "application/json")
	res, err := r.client.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return "", fmt.Errorf("reading the answer: %w", err)
	}
	if res.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("status %d: %s", res.StatusCode, b)
	}
	var mc api.MemberCreated
	if err := json.Unmarshal(b, &mc); err != nil {
		return "", fmt.Errorf("decoding %q: %w", b, err)
	}
	return mc.Credential, nil
}
