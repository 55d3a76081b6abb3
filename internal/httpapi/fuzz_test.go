package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/httpapi"
	"github.com/consortium/consortium/internal/registry"
	"github.com/consortium/consortium/internal/store/sqlite"
	"github.com/consortium/consortium/internal/testutil"
)

func FuzzDecodeRegister(f *testing.F) {
	k := testutil.Key(f)
	f.Add([]byte(`{"enr":"` + testutil.ENR(f, k, 1, "10.0.0.1", 30303, 30303) + `","role":"validator"}`))
	f.Add([]byte(`{"enr":"x","role":"public","public_enr":"y","status":{"head":1}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := httpapi.DecodeRegister(b)
		if err == nil && (req.ENR == "" || req.Role == "") {
			t.Fatal("accepted a registration without enr or role")
		}
	})
}

func FuzzDecodeRenew(f *testing.F) {
	f.Add([]byte(``))
	f.Add([]byte(`{"status":{"client":"Geth/v1","head":5,"peers":3,"syncing":false,"peer_ids":[]}}`))
	f.Add([]byte(`{"status":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := httpapi.DecodeRenew(b)
		if err == nil && req.Status != nil {
			// Whatever decodes must re-encode and decode to the same.
			j, _ := json.Marshal(req)
			again, err := httpapi.DecodeRenew(j)
			if err != nil || again.Status.Head != req.Status.Head {
				t.Fatalf("round trip: %v", err)
			}
		}
	})
}

func FuzzDecodeCredential(f *testing.F) {
	f.Add([]byte(``))
	f.Add([]byte(`{"grace":"24h"}`))
	f.Add([]byte(`{"grace":"0s"}`))
	f.Add([]byte(`{"grace":"-1h"}`))
	f.Add([]byte(`{"grace":5}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := httpapi.DecodeCredential(b)
		if err != nil {
			if !strings.Contains(err.Error(), "JSON") && !strings.Contains(err.Error(), "grace") {
				t.Fatalf("unclear error %q", err)
			}
			return
		}
		if len(bytes.TrimSpace(b)) == 0 && d != registry.DefaultCredentialGrace {
			t.Fatalf("empty body: grace %v, want the default", d)
		}
	})
}

func FuzzParseWaitQuery(f *testing.F) {
	for _, s := range []string{"index=1&wait=30s", "format=toml", "wait=-1s", "index=x", "a=b", "index=1&index=2", "wait=1000h", "index=3&delta=1", "delta=1&format=enr", "delta=yes"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := url.ParseQuery(s)
		if err != nil {
			return
		}
		wq, err := httpapi.ParseWaitQuery(q, time.Minute)
		if err != nil {
			return
		}
		if wq.Wait < 0 || wq.Wait > time.Minute {
			t.Fatalf("wait %v outside [0, max]", wq.Wait)
		}
		switch wq.Format {
		case "json", "bootnodes", "toml", "enr":
		default:
			t.Fatalf("format %q", wq.Format)
		}
		if wq.Delta && wq.Format != "json" {
			t.Fatalf("delta accepted with format %q", wq.Format)
		}
	})
}

func FuzzDecodeLegacyPost(f *testing.F) {
	f.Add("application/x-www-form-urlencoded", []byte("enode=enode://abc@1.2.3.4:30303&network=a"), "")
	f.Add("application/json", []byte(`{"enode":"x"}`), "network=b")
	f.Add("text/plain", []byte("enode://abc@1.2.3.4:30303\n"), "")
	f.Fuzz(func(t *testing.T, ct string, b []byte, q string) {
		vals, _ := url.ParseQuery(q)
		lp, err := httpapi.DecodeLegacyPost(ct, b, vals)
		if err == nil && lp.Enode == "" {
			t.Fatal("accepted an empty enode")
		}
	})
}

// FuzzRegisterEndpoint drives the whole handler with arbitrary bodies and
// IDs: no 5xx, no 200 for garbage, and nothing refused is stored.
func FuzzRegisterEndpoint(f *testing.F) {
	k := testutil.Key(f)
	good := testutil.ENR(f, k, 1, "10.0.0.1", 30303, 30303)
	f.Add([]byte(`{"enr":"`+good+`","role":"validator"}`), testutil.ID(k))
	f.Add([]byte(`{"enr":"enr:-","role":"tx"}`), "00")
	f.Add([]byte(`{"status":{"peers":-1}}`), strings.Repeat("a", 64))
	ctx := context.Background()
	st, err := sqlite.Open(ctx, f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg, err := registry.Open(ctx, st, registry.Config{Logger: quiet})
	if err != nil {
		f.Fatal(err)
	}
	adm, _, _ := reg.EnsureAdmin(ctx)
	cred, err := reg.AddMember(ctx, registry.Principal{Name: "admin", Admin: true}, "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	_ = adm
	srv := httpapi.New(httpapi.Config{Registry: reg, Logger: quiet, RateLimit: 1e9})
	f.Fuzz(func(t *testing.T, body []byte, id string) {
		for _, target := range []string{"/v1/nodes", "/v1/nodes/" + url.PathEscape(id) + "/renew"} {
			before := len(reg.Nodes(registry.Principal{Name: "fuzz"}))
			req := httptest.NewRequest("POST", target, bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+cred.String())
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("%s: %d %s", target, rec.Code, rec.Body)
			}
			if rec.Code >= 400 {
				var eb httpapi.ErrorBody
				if json.Unmarshal(rec.Body.Bytes(), &eb) != nil || eb.Error == "" {
					t.Fatalf("error body %q", rec.Body)
				}
				if after := len(reg.Nodes(registry.Principal{Name: "fuzz"})); after != before {
					t.Fatal("refused request changed the node list")
				}
			}
			if rec.Code == http.StatusOK || rec.Code == http.StatusCreated {
				if target == "/v1/nodes" && !bytes.Contains(body, []byte("enr:")) {
					t.Fatalf("accepted a body without an ENR: %q", body)
				}
			}
		}
	})
}
