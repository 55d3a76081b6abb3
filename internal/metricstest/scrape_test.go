package metricstest

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// sample is one line of Prometheus' text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

type samples []sample

// scrape reads url in the text format.
func scrape(t testing.TB, url string) samples {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("%s: %d %s", url, res.StatusCode, b)
	}
	var out samples
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<22)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parseLine(line)
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		out = append(out, s)
	}
	return out
}

// parseLine reads `name{a="x",b="y"} value`; label values are Go-quoted
// in all but name, which is enough for what our exporters write.
func parseLine(line string) (sample, error) {
	s := sample{labels: map[string]string{}}
	sp := strings.LastIndexByte(line, ' ')
	if sp < 0 {
		return s, fmt.Errorf("no value in %q", line)
	}
	v, err := strconv.ParseFloat(line[sp+1:], 64)
	if err != nil {
		return s, fmt.Errorf("value of %q: %v", line, err)
	}
	s.value = v
	head := line[:sp]
	i := strings.IndexByte(head, '{')
	if i < 0 {
		s.name = head
		return s, nil
	}
	s.name = head[:i]
	rest := strings.TrimSuffix(head[i+1:], "}")
	for rest != "" {
		eq := strings.IndexByte(rest, '=')
		if eq < 0 {
			return s, fmt.Errorf("labels of %q", line)
		}
		key := rest[:eq]
		val, tail, err := unquotePrefix(rest[eq+1:])
		if err != nil {
			return s, fmt.Errorf("label %s of %q: %v", key, line, err)
		}
		s.labels[key] = val
		rest = strings.TrimPrefix(tail, ",")
	}
	return s, nil
}

func unquotePrefix(s string) (string, string, error) {
	if s == "" || s[0] != '"' {
		return "", "", fmt.Errorf("not quoted")
	}
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			v, err := strconv.Unquote(s[:i+1])
			return v, s[i+1:], err
		}
	}
	return "", "", fmt.Errorf("unterminated")
}

// sum adds the values of name's samples whose labels include match.
// ok reports whether any sample matched.
func (ss samples) sum(name string, match ...string) (total float64, ok bool) {
	for _, s := range ss {
		if s.name != name {
			continue
		}
		hit := true
		for i := 0; i+1 < len(match); i += 2 {
			if s.labels[match[i]] != match[i+1] {
				hit = false
			}
		}
		if hit {
			total += s.value
			ok = true
		}
	}
	return total, ok
}

func (ss samples) has(name string) bool {
	for _, s := range ss {
		if s.name == name || strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(s.name, "_bucket"), "_sum"), "_count") == name {
			return true
		}
	}
	return false
}

var docRow = regexp.MustCompile("(?m)^\\| `(consortium_[a-z0-9_]+)` \\|")

// documented returns the metric names docs/dashboard.md lists in its
// tables, in order, with the section each is under.
func documented(t testing.TB) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../../docs/dashboard.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	section := ""
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "### ") {
			section = strings.ToLower(strings.TrimPrefix(line, "### "))
		}
		if m := docRow.FindStringSubmatch(line); m != nil {
			if prev, dup := out[m[1]]; dup {
				t.Errorf("%s is documented twice (%s, %s)", m[1], prev, section)
			}
			out[m[1]] = section
		}
	}
	return out
}
