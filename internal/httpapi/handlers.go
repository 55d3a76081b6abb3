package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/consortium/consortium/internal/api"
	"github.com/consortium/consortium/internal/registry"
)

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) error {
	p, _ := principal(r)
	writeJSON(w, http.StatusOK, map[string]any{"name": p.Name, "admin": p.Admin})
	return nil
}

func (s *Server) addMember(w http.ResponseWriter, r *http.Request) error {
	p, _ := principal(r)
	if !p.Admin {
		return registry.ErrForbidden
	}
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	req, err := DecodeMember(b)
	if err != nil {
		return err
	}
	cred, err := s.reg.AddMember(r.Context(), p, req.Name)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, MemberCreated{Name: req.Name, Credential: cred.String(), Created: time.Now().UTC()})
	return nil
}

func (s *Server) listMembers(w http.ResponseWriter, r *http.Request) error {
	p, _ := principal(r)
	ms, err := s.reg.Members(p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.MemberList{Members: ms})
	return nil
}

func (s *Server) revokeMember(w http.ResponseWriter, r *http.Request) error {
	p, _ := principal(r)
	v, err := s.reg.RevokeMember(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// rotateCredential is POST /v1/members/{name}/credential: a new credential
// for the member, shown once; the one it replaces stays valid for the
// grace period (registry.RotateCredential says who may).
func (s *Server) rotateCredential(w http.ResponseWriter, r *http.Request) error {
	p, _ := principal(r)
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	grace, err := DecodeCredential(b)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	rot, err := s.reg.RotateCredential(r.Context(), p, name, grace)
	if err != nil {
		return err
	}
	out := api.CredentialRotated{Name: name, Credential: rot.Credential.String()}
	if !rot.PreviousValidUntil.IsZero() {
		t := rot.PreviousValidUntil
		out.PreviousValidUntil = &t
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) error {
	p, _ := principal(r)
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	req, err := DecodeRegister(b)
	if err != nil {
		return err
	}
	v, created, err := s.reg.Register(r.Context(), p, registry.Registration{Role: req.Role, ENR: req.ENR, PublicENR: req.PublicENR, Status: req.Status})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, RegisterResponse{NodeView: v, TTLSeconds: v.Expires.Sub(s.reg.Now()).Seconds()})
	return nil
}

func (s *Server) renew(w http.ResponseWriter, r *http.Request) error {
	p, _ := principal(r)
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	req, err := DecodeRenew(b)
	if err != nil {
		return err
	}
	v, err := s.reg.Renew(r.Context(), p, r.PathValue("id"), req.Status)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, RenewResponse{ID: v.ID, Expires: v.Expires, TTLSeconds: v.Expires.Sub(s.reg.Now()).Seconds()})
	return nil
}

func (s *Server) removeNode(w http.ResponseWriter, r *http.Request) error {
	p, _ := principal(r)
	id := r.PathValue("id")
	if err := s.reg.Remove(r.Context(), p, id); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "removed": true})
	return nil
}

func (s *Server) freeNode(w http.ResponseWriter, r *http.Request) error {
	p, _ := principal(r)
	if len(r.URL.Query()) > 0 {
		return errBadRequest(api.CodeBadQuery, "POST /v1/nodes/{id}/free takes no query parameters")
	}
	if b, err := readBody(w, r); err != nil {
		return err
	} else if err := decodeStrict(b, &struct{}{}, true); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := s.reg.Free(r.Context(), p, id); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "freed": true})
	return nil
}

func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) error {
	p, _ := principal(r)
	if len(r.URL.Query()) > 0 {
		return errBadRequest(api.CodeBadQuery, "GET /v1/nodes takes no query parameters")
	}
	writeJSON(w, http.StatusOK, api.NodeList{Index: s.reg.Index(), Nodes: s.reg.Nodes(p)})
	return nil
}

func (s *Server) getNode(w http.ResponseWriter, r *http.Request) error {
	p, _ := principal(r)
	v, err := s.reg.Node(p, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) error {
	p, _ := principal(r)
	var after uint64
	for k, vs := range r.URL.Query() {
		if k != "after" || len(vs) != 1 {
			return errBadRequest(api.CodeBadQuery, "GET /v1/events takes one parameter, after")
		}
		n, err := strconv.ParseUint(vs[0], 10, 64)
		if err != nil {
			return errBadRequest(api.CodeBadQuery, "after must be a non-negative integer")
		}
		after = n
	}
	ev := s.reg.Events(p, after)
	if ev == nil {
		ev = []registry.Event{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": ev})
	return nil
}

// peers answers a peer set, blocking when asked: with ?index=N (and usually
// If-None-Match) it waits until the node's set differs from the one the
// caller holds, or until ?wait runs out. A waiter holds no lock: it sleeps on
// the registry's change channel, which a writer closes without waiting.
func (s *Server) peers(w http.ResponseWriter, r *http.Request) error {
	p, _ := principal(r)
	wq, err := ParseWaitQuery(r.URL.Query(), s.cfg.MaxWait)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	inm := r.Header.Get("If-None-Match")
	ps, err := s.reg.PeerAnswer(p, id)
	if err != nil {
		return err
	}
	if wq.HasIndex && wq.Wait > 0 && unchanged(ps, inm, wq) {
		release, ok := s.watchSlot(p.Name)
		if !ok {
			return &httpError{http.StatusTooManyRequests, api.CodeTooManyWatches, fmt.Sprintf("this credential holds %d blocking queries already; wait for one to end (one per node is enough)", s.cfg.MaxWatches)}
		}
		defer release()
		s.m.watchers.Inc()
		defer s.m.watchers.Dec()
		timer := time.NewTimer(jitter(wq.Wait))
		defer timer.Stop()
		for unchanged(ps, inm, wq) {
			ch := s.reg.Changed()
			// Re-read after taking the channel so no change slips between.
			if ps, err = s.reg.PeerAnswer(p, id); err != nil {
				return err
			}
			if !unchanged(ps, inm, wq) {
				break
			}
			select {
			case <-ch:
				if ps, err = s.reg.PeerAnswer(p, id); err != nil {
					return err
				}
			case <-timer.C:
				return s.writePeers(w, r, ps, wq.Format, inm)
			case <-r.Context().Done():
				return nil
			}
		}
	}
	if wq.Delta && inm != "" && !etagMatch(inm, ps.ETag) {
		if d, ok := s.reg.Delta(ps, firstTag(inm)); ok {
			return writeDelta(w, d)
		}
	}
	return s.writePeers(w, r, ps, wq.Format, inm)
}

// firstTag is the first entity tag of an If-None-Match list, without W/.
func firstTag(inm string) string {
	t, _, _ := strings.Cut(inm, ",")
	return strings.TrimPrefix(strings.TrimSpace(t), "W/")
}

// writeDelta answers a watcher with what changed since the answer it holds:
// {"index","node","since","static_add","static_remove","bootnodes_add",
// "bootnodes_remove","consensus_add","consensus_remove"}, under the ETag of
// the full answer at index.
func writeDelta(w http.ResponseWriter, d *registry.PeerDelta) error {
	b := append([]byte(`{"index":`), strconv.FormatUint(d.Index, 10)...)
	b = append(b, `,"node":`...)
	b = appendJSONString(b, d.Node)
	b = append(b, `,"since":`...)
	b = strconv.AppendUint(b, d.Since, 10)
	for _, l := range []struct {
		name string
		v    []string
	}{{"static_add", d.StaticAdd}, {"static_remove", d.StaticRemove}, {"bootnodes_add", d.BootnodesAdd},
		{"bootnodes_remove", d.BootnodesRemove}, {"consensus_add", d.ConsensusAdd}, {"consensus_remove", d.ConsensusRemove}} {
		b = append(b, `,"`...)
		b = append(b, l.name...)
		b = append(b, `":[`...)
		for i, e := range l.v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, e)
		}
		b = append(b, ']')
	}
	b = append(b, "}\n"...)
	h := w.Header()
	h.Set("ETag", d.ETag)
	h.Set("X-Consortium-Index", strconv.FormatUint(d.Index, 10))
	h.Set("X-Consortium-Delta-Since", strconv.FormatUint(d.Since, 10))
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	return nil
}

// rolePeers answers ?role=R&format=F: the set a new node of the caller's
// member with that role would get (for cold-start configuration).
func (s *Server) rolePeers(w http.ResponseWriter, r *http.Request) error {
	p, _ := principal(r)
	q := r.URL.Query()
	role := q.Get("role")
	q.Del("role")
	wq, err := ParseWaitQuery(q, s.cfg.MaxWait)
	if err != nil {
		return err
	}
	if wq.HasIndex || wq.Delta {
		return errBadRequest(api.CodeBadQuery, "GET /v1/peers does not block; it takes role and format")
	}
	ps, err := s.reg.RoleAnswer(p, role)
	if err != nil {
		return err
	}
	return s.writePeers(w, r, ps, wq.Format, r.Header.Get("If-None-Match"))
}

// unchanged reports whether the caller already holds ps: by ETag when it
// sent one, else by index.
func unchanged(ps *registry.PeerAnswer, inm string, wq WaitQuery) bool {
	if inm != "" {
		return etagMatch(inm, ps.ETag)
	}
	return ps.Index <= wq.Index
}

func etagMatch(inm, etag string) bool {
	for _, t := range strings.Split(inm, ",") {
		t = strings.TrimSpace(t)
		t = strings.TrimPrefix(t, "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

func (s *Server) writePeers(w http.ResponseWriter, r *http.Request, ps *registry.PeerAnswer, format, inm string) error {
	h := w.Header()
	h.Set("ETag", ps.ETag)
	h.Set("X-Consortium-Index", strconv.FormatUint(ps.Index, 10))
	h.Set("Cache-Control", "no-cache")
	if inm != "" && etagMatch(inm, ps.ETag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	var ct string
	switch format {
	case "bootnodes", "enr":
		ct = "text/plain; charset=utf-8"
	case "toml":
		ct = "application/toml"
	default:
		ct = "application/json"
	}
	body := render(ps, format)
	n := 0
	for _, b := range body {
		n += len(b)
	}
	h.Set("Vary", "Accept-Encoding")
	if n >= gzipMin && acceptsGzip(r.Header.Get("Accept-Encoding")) {
		// Compressed from the group's cached chunks (gzip.go).
		body, n = gzipBody(body, groupsOf(ps, format))
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Type", ct)
	h.Set("Content-Length", strconv.Itoa(n))
	w.WriteHeader(http.StatusOK)
	for _, b := range body {
		if len(b) == 0 {
			continue
		}
		if _, err := w.Write(b); err != nil {
			return nil // the client went away; nothing to tell it
		}
	}
	return nil
}

// The list encodings of the formats. The registry renders each list once
// per group and encoding, and an answer is that rendering with the node's
// own element cut out: no per-node copy of a large list is ever made.
var (
	jsonList = &registry.Encoding{Sep: ",", Append: appendJSONString}
	tomlList = &registry.Encoding{Sep: api.TOMLSep, Append: api.AppendTOMLString}
	enrLines = &registry.Encoding{Sep: "\n", Append: appendRaw}
	bootLine = &registry.Encoding{Sep: ",", Append: appendRaw}
)

func appendRaw(dst []byte, s string) []byte { return append(dst, s...) }

// appendJSONString encodes s as encoding/json encodes a string in a slice,
// HTML escaping included, so the spliced body is byte for byte what
// json.Marshal of the whole set writes.
func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s)
	return append(dst, b...)
}

// render returns the body of ps in format as pieces to write one after the
// other: fixed text around lists shared with the node's group.
func render(ps *registry.PeerAnswer, format string) [][]byte {
	switch format {
	case "bootnodes":
		b0, b1 := ps.Joined(registry.BootnodeList, bootLine)
		return [][]byte{b0, b1, []byte("\n")}
	case "enr":
		if ps.Len(registry.ENRList) == 0 {
			return nil
		}
		e0, e1 := ps.Joined(registry.ENRList, enrLines)
		return [][]byte{e0, e1, []byte("\n")}
	case "toml":
		// The static peers are the trusted ones too (api.PeerConfig).
		s0, s1 := ps.Joined(registry.StaticList, tomlList)
		b0, b1 := ps.Joined(registry.BootnodeList, tomlList)
		return api.P2PSection([][]byte{s0, s1}, [][]byte{s0, s1}, [][]byte{b0, b1})
	}
	// The JSON of registry.PeerSet: {"index","node","static","bootnodes","consensus"}.
	s0, s1 := ps.Joined(registry.StaticList, jsonList)
	b0, b1 := ps.Joined(registry.BootnodeList, jsonList)
	c0, c1 := ps.Joined(registry.ConsensusList, jsonList)
	head := append([]byte(`{"index":`), strconv.FormatUint(ps.Index, 10)...)
	head = append(head, `,"node":`...)
	head = appendJSONString(head, ps.Node)
	head = append(head, `,"static":[`...)
	return [][]byte{head, s0, s1, []byte(`],"bootnodes":[`), b0, b1, []byte(`],"consensus":[`), c0, c1, []byte("]}\n")}
}
