package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/consortium/consortium/internal/api"
	"github.com/consortium/consortium/internal/registry"
)

// MaxBody is the largest request body accepted.
const MaxBody = 64 << 10

var errTooLarge = &httpError{http.StatusRequestEntityTooLarge, api.CodeTooLarge, "request body larger than 64 KiB"}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errTooLarge
		}
		return nil, errBadRequest(api.CodeBadBody, "could not read request body")
	}
	return b, nil
}

// decodeStrict decodes one JSON object, refusing unknown fields, trailing
// data and an empty body (unless allowEmpty).
func decodeStrict(b []byte, v any, allowEmpty bool) error {
	if len(bytes.TrimSpace(b)) == 0 {
		if allowEmpty {
			return nil
		}
		return errBadRequest(api.CodeBadJSON, "request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errBadRequest(api.CodeBadJSON, "invalid JSON body: "+clip(err.Error()))
	}
	if dec.More() {
		return errBadRequest(api.CodeBadJSON, "invalid JSON body: trailing data after the object")
	}
	return nil
}

func clip(s string) string {
	if len(s) > 160 {
		s = s[:160]
	}
	return strings.ToValidUTF8(s, "?")
}

// DecodeRegister decodes and bounds a registration body.
func DecodeRegister(b []byte) (RegisterRequest, error) {
	var req RegisterRequest
	if err := decodeStrict(b, &req, false); err != nil {
		return req, err
	}
	if req.ENR == "" || req.Role == "" {
		return req, errBadRequest(api.CodeMissingField, `"enr" and "role" are required`)
	}
	return req, nil
}

// DecodeRenew decodes a renewal body; an empty body is a plain renewal.
func DecodeRenew(b []byte) (RenewRequest, error) {
	var req RenewRequest
	err := decodeStrict(b, &req, true)
	return req, err
}

// DecodeMember decodes a member creation body.
func DecodeMember(b []byte) (MemberRequest, error) {
	var req MemberRequest
	if err := decodeStrict(b, &req, false); err != nil {
		return req, err
	}
	if req.Name == "" {
		return req, errBadRequest(api.CodeMissingField, `"name" is required`)
	}
	return req, nil
}

// DecodeCredential decodes the (optional) body of a credential rotation:
// the grace period of the credential it replaces, a Go duration; absent,
// registry.DefaultCredentialGrace.
func DecodeCredential(b []byte) (time.Duration, error) {
	var req api.CredentialRequest
	if err := decodeStrict(b, &req, true); err != nil {
		return 0, err
	}
	if req.Grace == nil {
		return registry.DefaultCredentialGrace, nil
	}
	d, err := time.ParseDuration(*req.Grace)
	if err != nil {
		return 0, errBadRequest(api.CodeInvalid, `"grace" must be a duration such as "24h" or "0s": `+clip(err.Error()))
	}
	return d, nil
}

// WaitQuery is the blocking-query part of a peer-set request.
type WaitQuery struct {
	Index    uint64
	HasIndex bool
	Wait     time.Duration
	Format   string
	// Delta (?delta=1, JSON only): answer a caller whose If-None-Match
	// names an earlier answer with what changed since (docs/api.md).
	Delta bool
}

// Formats of a peer set.
var formats = map[string]bool{"json": true, "bootnodes": true, "toml": true, "enr": true}

// ParseWaitQuery parses ?format=&index=&wait= strictly: unknown parameters
// and repeated ones are refused, so a typo does not silently mean "default".
func ParseWaitQuery(q url.Values, maxWait time.Duration) (WaitQuery, error) {
	wq := WaitQuery{Format: "json", Wait: maxWait}
	for k, vs := range q {
		if len(vs) != 1 {
			return wq, errBadRequest(api.CodeBadQuery, "query parameter "+strconv.Quote(clip(k))+" given more than once")
		}
		v := vs[0]
		switch k {
		case "format":
			if !formats[v] {
				return wq, errBadRequest(api.CodeBadQuery, `format must be one of json, bootnodes, toml, enr`)
			}
			wq.Format = v
		case "index":
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return wq, errBadRequest(api.CodeBadQuery, "index must be a non-negative integer")
			}
			wq.Index, wq.HasIndex = n, true
		case "wait":
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return wq, errBadRequest(api.CodeBadQuery, `wait must be a duration such as "30s"`)
			}
			if d > maxWait {
				d = maxWait
			}
			wq.Wait = d
		case "delta":
			switch v {
			case "1", "true":
				wq.Delta = true
			case "0", "false":
			default:
				return wq, errBadRequest(api.CodeBadQuery, "delta must be 1 or 0")
			}
		default:
			return wq, errBadRequest(api.CodeBadQuery, "unknown query parameter "+strconv.Quote(clip(k)))
		}
	}
	if wq.Delta && wq.Format != "json" {
		return wq, errBadRequest(api.CodeBadQuery, "delta answers are JSON only: leave out format, or delta")
	}
	return wq, nil
}

// LegacyPost is what the seed's open POST / carries.
type LegacyPost struct {
	Enode   string `json:"enode"`
	Network string `json:"network,omitempty"`
}

// DecodeLegacyPost accepts the shapes the seed's scripts sent: a form
// (enode=...&network=...), a JSON object, or the bare enode as the body.
func DecodeLegacyPost(contentType string, b []byte, q url.Values) (LegacyPost, error) {
	var lp LegacyPost
	ct := strings.ToLower(strings.TrimSpace(strings.Split(contentType, ";")[0]))
	switch ct {
	case "application/json":
		if err := decodeStrict(b, &lp, false); err != nil {
			return lp, err
		}
	case "application/x-www-form-urlencoded":
		f, err := url.ParseQuery(string(b))
		if err != nil {
			return lp, errBadRequest(api.CodeBadForm, "invalid form body")
		}
		lp.Enode, lp.Network = f.Get("enode"), f.Get("network")
	default:
		lp.Enode = string(b)
	}
	if lp.Network == "" {
		lp.Network = q.Get("network")
	}
	lp.Enode = strings.TrimSpace(lp.Enode)
	if lp.Enode == "" {
		return lp, errBadRequest(api.CodeMissingField, "an enode is required")
	}
	return lp, nil
}
