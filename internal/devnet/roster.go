package devnet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/consortium/consortium/internal/auth"
	"github.com/consortium/consortium/internal/consortiuminit"
	"github.com/ethereum/go-ethereum/common"
)

func readManifest(dir string) (consortiuminit.Manifest, bool, error) {
	var m consortiuminit.Manifest
	b, err := os.ReadFile(filepath.Join(dir, consortiuminit.ManifestFile))
	if errors.Is(err, fs.ErrNotExist) {
		return m, false, nil
	}
	if errors.Is(err, fs.ErrPermission) || (err != nil && strings.Contains(err.Error(), "not a directory")) {
		return m, false, fmt.Errorf("%w (%v)", consortiuminit.ErrUnwritable, err)
	}
	if err != nil {
		return m, false, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, false, fmt.Errorf("%s: %w", filepath.Join(dir, consortiuminit.ManifestFile), err)
	}
	return m, true, nil
}

// checkMembers applies init's rules, so a bad list fails before anything
// (a geth build) starts.
func checkMembers(members []string) error {
	seen := map[string]bool{}
	for _, m := range members {
		if auth.ValidName(m) != nil {
			return fmt.Errorf("%w (got %q)", consortiuminit.ErrBadMember, m)
		}
		if seen[m] {
			return fmt.Errorf("%w (%q)", consortiuminit.ErrDuplicateMember, m)
		}
		seen[m] = true
	}
	return nil
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func memberNames(ms []consortiuminit.Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

// roster lists every node of the consortium (all, whose order fixes the
// ports) and those to run: the first nodes of each role that nodes asks of
// each init member, and every node of a member that joined later.
func roster(m consortiuminit.Manifest, added []consortiuminit.Member, nodes Nodes) (all, run []nodeSpec, err error) {
	for _, mem := range m.Members {
		want := nodes.For(mem.Name)
		have := map[consortiuminit.Role]int{}
		for _, n := range mem.Nodes {
			s := nodeSpec{Member: mem.Name, Node: n, Index: len(all), FeeRecipient: feeOf(mem)}
			all = append(all, s)
			have[n.Role]++
			if have[n.Role] <= roleCount(want, n.Role) {
				run = append(run, s)
			}
		}
		for _, role := range []consortiuminit.Role{consortiuminit.RoleBootnode, consortiuminit.RoleValidator, consortiuminit.RoleTx, consortiuminit.RolePublic} {
			if have[role] < roleCount(want, role) {
				return nil, nil, fmt.Errorf("%w (member %s has %d %s nodes, --nodes asks for %d)", ErrDirMismatch, mem.Name, have[role], role, roleCount(want, role))
			}
		}
	}
	for _, mem := range added {
		for _, n := range mem.Nodes {
			s := nodeSpec{Member: mem.Name, Node: n, Index: len(all), FeeRecipient: feeOf(mem)}
			all = append(all, s)
			run = append(run, s)
		}
	}
	if len(all) > portStride {
		return nil, nil, fmt.Errorf("%w (%d nodes; at most %d)", ErrBadNodes, len(all), portStride)
	}
	return all, run, nil
}

func roleCount(r Roles, role consortiuminit.Role) int {
	switch role {
	case consortiuminit.RoleBootnode:
		return r.Bootnodes
	case consortiuminit.RoleValidator:
		return r.Validators
	case consortiuminit.RoleTx:
		return r.Tx
	case consortiuminit.RolePublic:
		return r.Public
	}
	return 0
}

// consensusOf is the kind of an existing consortium (consortiuminit reads
// a consortium.json that names none, made before BFT existed, as Clique).
func consensusOf(m consortiuminit.Manifest) Consensus {
	if m.Consensus == "" {
		return Clique
	}
	return m.Consensus
}

// proposersOf maps each member's fee recipient (the miner of the blocks its
// validator proposes) to the member, and each member to the label of its
// validator node: how a BFT block line names its proposer.
func proposersOf(m consortiuminit.Manifest) (map[common.Address]string, map[string]string) {
	proposers, validators := map[common.Address]string{}, map[string]string{}
	for _, mem := range m.Members {
		if mem.FeeRecipient != nil {
			proposers[mem.FeeRecipient.Address] = mem.Name
		}
		if mem.Validator != nil {
			validators[mem.Name] = mem.Name + "/" + mem.Validator.Node
		}
	}
	return proposers, validators
}

func feeOf(m consortiuminit.Member) common.Address {
	if m.FeeRecipient == nil {
		return common.Address{}
	}
	return m.FeeRecipient.Address
}

// ReadConsensus is the kind of the consortium in dir.
func ReadConsensus(dir string) (Consensus, error) {
	m, exists, err := readManifest(dir)
	if err != nil || !exists {
		return "", err
	}
	return consensusOf(m), nil
}

// validatorNames maps each CometBFT validator address (upper-case hex, as
// consensus.Status gives it) to its member.
func validatorNames(m consortiuminit.Manifest) map[string]string {
	names := map[string]string{}
	for _, mem := range m.Members {
		if mem.Validator != nil {
			names[mem.Validator.Address.String()] = mem.Name
		}
	}
	return names
}
